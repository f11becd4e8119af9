//! Discovery documents (`/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}[/{version}]`) in
//! the legacy (non-aggregated) form, built from the kind table. kubectl asks for aggregated
//! discovery first and falls back to these when the response is plain `application/json`.

use serde_json::{Value, json};

use crate::kinds::{self, KINDS, Kind};

/// The Kubernetes version the emulator presents: its kinds, errors and OpenAPI documents
/// follow kube-apiserver v1.37 (the pinned kubectl is v1.37, and a client more than one minor
/// version away warns about skew).
pub const KUBERNETES_MINOR: &str = "37";
/// The patch release of [`KUBERNETES_MINOR`] the OpenAPI snapshot was taken from.
const KUBERNETES_PATCH: &str = "2";

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "emulationMajor": "1",
        "emulationMinor": KUBERNETES_MINOR,
        // The oldest version this one can roll back to, as kube-apiserver >= 1.33 reports it.
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": min_compatibility_minor(),
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.{KUBERNETES_PATCH}"),
        "gitCommit": concat!("kube-emulator-", env!("CARGO_PKG_VERSION")),
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.26.8",
        "compiler": "gc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

fn min_compatibility_minor() -> String {
    let minor: u32 = KUBERNETES_MINOR.parse().expect("a number");
    (minor - 1).to_string()
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_json(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

/// `/apis`.
pub fn group_list() -> Value {
    let groups: Vec<Value> = kinds::groups()
        .into_iter()
        .map(|(g, v)| group_json(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`, if served.
pub fn group(name: &str) -> Option<Value> {
    let (g, v) = kinds::groups().into_iter().find(|(g, _)| *g == name)?;
    let mut doc = group_json(g, v);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// The hash of the version a kind is stored in, as discovery publishes it (Kubernetes'
/// StorageVersionHash: base64 of the first 8 bytes of SHA-256 of "group/version/Kind").
fn storage_version_hash(kind: &'static Kind) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let stored = crate::ops::storage_kind(kind);
    let digest = Sha256::digest(format!(
        "{}/{}/{}",
        stored.group, stored.version, stored.kind
    ));
    base64::engine::general_purpose::STANDARD.encode(&digest[..8])
}

fn resource_json(kind: &'static Kind) -> Value {
    let mut r = json!({
        "name": kind.plural,
        "singularName": kind.singular,
        "namespaced": kind.namespaced,
        "kind": kind.kind,
        "verbs": kind.verbs,
    });
    if !kind.short_names.is_empty() {
        r["shortNames"] = json!(kind.short_names);
    }
    // Only what is stored has a storage version (not the reviews).
    if kind.storage != crate::kinds::Storage::Virtual {
        r["storageVersionHash"] = json!(storage_version_hash(kind));
    }
    r
}

/// `/api/v1` (group "") or `/apis/{group}/{version}`, if served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for kind in KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
    {
        resources.push(resource_json(kind));
        for sub in kind.subresources {
            resources.push(json!({
                "name": format!("{}/{}", kind.plural, sub.name),
                "singularName": "",
                "namespaced": kind.namespaced,
                "group": sub.group,
                "version": sub.version,
                "kind": sub.kind,
                "verbs": sub.verbs,
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    // kube-apiserver lists a group-version's resources by name.
    resources.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists_serviceaccount_token_subresource() {
        let v1 = resource_list("", "v1").unwrap();
        let names: Vec<&str> = v1["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"serviceaccounts/token"));
        assert!(names.contains(&"namespaces"));
        let sa = v1["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "serviceaccounts")
            .unwrap();
        assert_eq!(sa["shortNames"], json!(["sa"]));
        assert_eq!(sa["namespaced"], true);
    }

    #[test]
    fn groups_and_versions() {
        let list = group_list();
        assert!(
            list["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "rbac.authorization.k8s.io")
        );
        assert_eq!(
            group("coordination.k8s.io").unwrap()["preferredVersion"]["version"],
            "v1"
        );
        assert!(group("apps").is_none());
        assert!(resource_list("apps", "v1").is_none());
        assert_eq!(
            resource_list("authentication.k8s.io", "v1").unwrap()["resources"][0]["verbs"],
            json!(["create"])
        );
    }

    #[test]
    fn version_looks_like_kubernetes() {
        let v = version();
        assert_eq!(v["major"], "1");
        assert_eq!(v["gitVersion"], "v1.37.2");
        assert_eq!(v["minCompatibilityMinor"], "36");
    }
}
