//! The chart's schema of role bodies (`definitions.roleBody` of values.schema.json, used by
//! `roles`) is generated from the controller's parameter table (`roles::role_body_schema`):
//! this test fails when the two differ, and rewrites the file when asked to.

use serde_json::{Value, json};
use vault_auth_kubernetes::roles::role_body_schema;

const UPDATE: &str = "VAK_UPDATE_CHART_SCHEMA";

#[test]
fn the_charts_role_schema_is_generated_from_the_parameter_table() {
    let path = testkit::workspace_root().join("charts/vault-auth-kubernetes/values.schema.json");
    let text = std::fs::read_to_string(&path).expect("read values.schema.json");
    let mut schema: Value = serde_json::from_str(&text).expect("values.schema.json is JSON");
    let generated = role_body_schema();
    let uses_it = schema["properties"]["roles"]["additionalProperties"]
        == json!({"$ref": "#/definitions/roleBody"});
    if schema["definitions"]["roleBody"] == generated && uses_it {
        return;
    }
    if std::env::var_os(UPDATE).is_some() {
        schema["definitions"]["roleBody"] = generated;
        schema["properties"]["roles"]["additionalProperties"] =
            json!({"$ref": "#/definitions/roleBody"});
        let mut out = serde_json::to_string_pretty(&schema).unwrap();
        out.push('\n');
        std::fs::write(&path, out).expect("write values.schema.json");
        return;
    }
    panic!(
        "{} is not what the parameter table generates (definitions.roleBody, used by \
         roles.additionalProperties): regenerate it with\n  {UPDATE}=1 cargo test -p \
         vault-auth-kubernetes --test offline chart_schema",
        path.display()
    );
}
