use super::*;
use serde_json::json;

fn rule(value: serde_json::Value) -> PolicyRule {
    serde_json::from_value(value).unwrap()
}

fn request(verb: &str, group: &str, resource: &str, subresource: &str, name: &str) -> Attributes {
    Attributes {
        verb: verb.into(),
        api_group: group.into(),
        resource: resource.into(),
        subresource: subresource.into(),
        namespace: "ns".into(),
        name: name.into(),
        path: String::new(),
        resource_request: true,
    }
}

fn path_request(verb: &str, path: &str) -> Attributes {
    Attributes {
        verb: verb.into(),
        path: path.into(),
        ..Attributes::default()
    }
}

#[test]
fn verbs_groups_and_resources_must_all_match() {
    let r = rule(json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}));
    assert!(allows(&r, &request("get", "", "configmaps", "", "x")));
    assert!(allows(&r, &request("list", "", "configmaps", "", "")));
    assert!(!allows(&r, &request("delete", "", "configmaps", "", "x")));
    assert!(!allows(&r, &request("get", "apps", "configmaps", "", "x")));
    assert!(!allows(&r, &request("get", "", "secrets", "", "x")));
}

#[test]
fn wildcards_match_everything_in_their_field() {
    let r = rule(json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}));
    assert!(allows(
        &r,
        &request("deletecollection", "apps", "deployments", "", "")
    ));
    assert!(allows(
        &r,
        &request("create", "", "serviceaccounts", "token", "sa")
    ));
    assert!(
        !allows(&r, &path_request("get", "/api")),
        "resource rules never match paths"
    );
}

#[test]
fn subresources_need_their_own_grant() {
    let r = rule(json!({"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["*"]}));
    assert!(!allows(
        &r,
        &request("create", "", "serviceaccounts", "token", "sa")
    ));
    let r = rule(
        json!({"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}),
    );
    assert!(allows(
        &r,
        &request("create", "", "serviceaccounts", "token", "sa")
    ));
    assert!(!allows(
        &r,
        &request("create", "", "serviceaccounts", "", "")
    ));
    let r = rule(json!({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["update"]}));
    assert!(allows(
        &r,
        &request("update", "apps", "deployments", "status", "d")
    ));
    assert!(!allows(
        &r,
        &request("update", "apps", "deployments", "scale", "d")
    ));
    assert!(!allows(
        &r,
        &request("update", "apps", "deployments", "", "d")
    ));
}

#[test]
fn resource_names_restrict_to_named_objects() {
    let r = rule(json!({"apiGroups": [""], "resources": ["configmaps"],
                        "resourceNames": ["allowed"], "verbs": ["get", "list", "create"]}));
    assert!(allows(&r, &request("get", "", "configmaps", "", "allowed")));
    assert!(!allows(&r, &request("get", "", "configmaps", "", "other")));
    assert!(
        !allows(&r, &request("list", "", "configmaps", "", "")),
        "no name, no match"
    );
    assert!(!allows(&r, &request("create", "", "configmaps", "", "")));
}

#[test]
fn non_resource_urls_match_exactly_or_by_prefix() {
    let r = rule(json!({"nonResourceURLs": ["/version", "/apis/*"], "verbs": ["get"]}));
    assert!(allows(&r, &path_request("get", "/version")));
    assert!(!allows(&r, &path_request("get", "/version/extra")));
    assert!(allows(&r, &path_request("get", "/apis/apps/v1")));
    assert!(
        !allows(&r, &path_request("get", "/apis")),
        "/apis/* needs the slash"
    );
    assert!(!allows(&r, &path_request("post", "/version")));
    assert!(!allows(&r, &request("get", "", "version", "", "")));
    let all = rule(json!({"nonResourceURLs": ["*"], "verbs": ["*"]}));
    assert!(allows(&all, &path_request("delete", "/metrics")));
}

#[test]
fn null_and_missing_lists_read_as_empty() {
    let role = json!({"rules": [
        {"apiGroups": null, "nonResourceURLs": ["/healthz"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods"], "resourceNames": null, "verbs": ["get"]}
    ]});
    let rules = rules_of(&role);
    assert_eq!(rules.len(), 2);
    assert!(rules[0].api_groups.is_empty());
    assert!(rules_of(&json!({"rules": null})).is_empty());
    assert!(rules_of(&json!({})).is_empty());
}

#[test]
fn covering_needs_every_atom_held() {
    let owner = vec![rule(
        json!({"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get", "list"]}),
    )];
    let sub = vec![rule(
        json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}),
    )];
    assert_eq!(covers(&owner, &sub), (true, vec![]));
    let sub = vec![rule(
        json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "delete"]}),
    )];
    let (covered, missing) = covers(&owner, &sub);
    assert!(!covered);
    assert_eq!(
        missing,
        vec![rule(
            json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"]})
        )]
    );
}

#[test]
fn covering_respects_resource_names_and_subresources() {
    let named = vec![rule(
        json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get"]}),
    )];
    let sub_named = vec![rule(
        json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get"]}),
    )];
    let sub_any = vec![rule(
        json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}),
    )];
    assert!(covers(&named, &sub_named).0);
    assert!(
        !covers(&named, &sub_any).0,
        "a name-restricted grant does not cover all names"
    );
    assert!(covers(&sub_any, &sub_named).0);

    let status = vec![rule(
        json!({"apiGroups": ["apps"], "resources": ["*/status"], "verbs": ["get"]}),
    )];
    let wants = vec![rule(
        json!({"apiGroups": ["apps"], "resources": ["deployments/status"], "verbs": ["get"]}),
    )];
    assert!(covers(&status, &wants).0);
    let pods = vec![rule(
        json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}),
    )];
    let logs = vec![rule(
        json!({"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}),
    )];
    assert!(!covers(&pods, &logs).0);
}

#[test]
fn covering_non_resource_urls() {
    let owner = vec![rule(
        json!({"nonResourceURLs": ["/apis/*"], "verbs": ["get"]}),
    )];
    assert!(
        covers(
            &owner,
            &[rule(
                json!({"nonResourceURLs": ["/apis/apps"], "verbs": ["get"]})
            )]
        )
        .0
    );
    assert!(
        !covers(
            &owner,
            &[rule(
                json!({"nonResourceURLs": ["/metrics"], "verbs": ["get"]})
            )]
        )
        .0
    );
    let all = vec![rule(
        json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}),
    )];
    assert!(
        !covers(
            &all,
            &[rule(
                json!({"nonResourceURLs": ["/metrics"], "verbs": ["get"]})
            )]
        )
        .0
    );
}

#[test]
fn missing_rules_are_compacted_and_printed_like_kubernetes() {
    let owner: Vec<PolicyRule> = vec![];
    let sub = vec![
        rule(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]})),
        rule(
            json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a", "b"], "verbs": ["get"]}),
        ),
        rule(json!({"nonResourceURLs": ["/metrics"], "verbs": ["get"]})),
    ];
    let (_, missing) = covers(&owner, &sub);
    let printed: std::collections::BTreeSet<String> =
        compact(missing).iter().map(compact_string).collect();
    let printed: Vec<String> = printed.into_iter().collect();
    assert_eq!(
        printed,
        [
            r#"{APIGroups:[""], Resources:["configmaps"], ResourceNames:["a"], Verbs:["get"]}"#,
            r#"{APIGroups:[""], Resources:["configmaps"], ResourceNames:["b"], Verbs:["get"]}"#,
            r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}"#,
            r#"{NonResourceURLs:["/metrics"], Verbs:["get"]}"#,
        ]
    );
}
