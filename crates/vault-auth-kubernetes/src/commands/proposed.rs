//! `plan -f FILE|-`: the ConfigMap a change proposes (a pull request, `helm template` output),
//! read from manifests exactly as `validate` reads them, so that `plan` compares the proposal
//! with the live Vault and cluster instead of planning the ConfigMap already applied.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;

use super::manifest::read_manifest;
use super::validate::{input_name, read_input};
use crate::k8s::snapshot::ConfigMapState;
use crate::names::ROLES_CONFIGMAP;

/// The ConfigMap found in the files.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposed {
    /// Where it was found: `file:line`.
    pub source: String,
    pub data: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl Proposed {
    /// The cluster's ConfigMap as it would be once the proposal is applied (`kubectl apply`):
    /// the proposed data, the proposed annotations over the live ones; a new object when the
    /// cluster has none.
    pub fn apply_to(&self, live: ConfigMapState, namespace: &str) -> ConfigMapState {
        let mut cm = match live {
            ConfigMapState::Present(cm) => std::sync::Arc::unwrap_or_clone(cm),
            ConfigMapState::Missing => ConfigMap {
                metadata: ObjectMeta {
                    name: Some(ROLES_CONFIGMAP.to_string()),
                    namespace: Some(namespace.to_string()),
                    ..ObjectMeta::default()
                },
                ..ConfigMap::default()
            },
        };
        cm.data = Some(self.data.clone());
        let annotations = cm.metadata.annotations.get_or_insert_with(BTreeMap::new);
        annotations.extend(self.annotations.clone());
        ConfigMapState::Present(std::sync::Arc::new(cm))
    }
}

/// Reads `files` (`-`: stdin) and finds the one `vault-auth-roles` ConfigMap of `namespace`
/// in them. Anything that would keep the proposal from being applied as written is an error
/// naming the file and line: unreadable or not YAML, no such ConfigMap or several, another
/// namespace, a data value that is not a string (the API server refuses the whole object).
pub fn read_proposed(files: &[PathBuf], namespace: &str) -> Result<Proposed, String> {
    let mut found = Vec::new();
    for path in files {
        let name = input_name(path);
        let text = read_input(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
        let manifest = read_manifest(&text).map_err(|e| format!("{name}: not valid YAML: {e}"))?;
        found.extend(manifest.configmaps.into_iter().map(|cm| (name.clone(), cm)));
    }
    let names = || {
        files
            .iter()
            .map(|p| input_name(p))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (file, cm) = match found.len() {
        0 => {
            return Err(format!(
                "no ConfigMap {ROLES_CONFIGMAP} in {}: nothing to plan",
                names()
            ));
        }
        1 => found.remove(0),
        _ => {
            let places: Vec<String> = found
                .iter()
                .map(|(file, cm)| format!("{file}:{}", cm.line))
                .collect();
            return Err(format!(
                "{} ConfigMaps {ROLES_CONFIGMAP} found ({}): give the files of one",
                found.len(),
                places.join(", ")
            ));
        }
    };
    let source = format!("{file}:{}", cm.line);
    if let Some(other) = cm.namespace.as_deref().filter(|ns| *ns != namespace) {
        return Err(format!(
            "{source}: ConfigMap {ROLES_CONFIGMAP} is in namespace {other}, the controller's \
             is {namespace} (--namespace)"
        ));
    }
    let mut data = BTreeMap::new();
    for entry in cm.entries {
        match entry.value {
            Ok(text) => {
                data.insert(entry.key, text);
            }
            Err(what) => {
                return Err(format!(
                    "{file}:{}: data.{} is {what}: the API server refuses a ConfigMap whose data \
                     values are not strings (write the role's JSON as a string)",
                    entry.line, entry.key
                ));
            }
        }
    }
    Ok(Proposed {
        source,
        data,
        annotations: cm.annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: vault-auth-roles\n  \
                      annotations:\n    vault-auth-kubernetes/allow-empty: \"true\"\ndata:\n  \
                      web: '{\"bound_service_account_names\": [\"web\"]}'\n";

    #[test]
    fn finds_the_one_configmap_among_other_objects() {
        let dir = tempfile::tempdir().unwrap();
        let other = write(
            dir.path(),
            "a.yaml",
            "kind: Deployment\nmetadata: {name: x}\n",
        );
        let cm = write(dir.path(), "b.yaml", &format!("---\n{CM}"));
        let p = read_proposed(&[other, cm], "vault-auth").unwrap();
        assert!(p.source.ends_with("b.yaml:3"), "{}", p.source);
        assert_eq!(p.data.keys().collect::<Vec<_>>(), ["web"]);
        assert_eq!(p.annotations["vault-auth-kubernetes/allow-empty"], "true");
    }

    #[test]
    fn refuses_what_could_not_be_applied_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let none = write(dir.path(), "none.yaml", "kind: Deployment\n");
        let err = read_proposed(std::slice::from_ref(&none), "vault-auth").unwrap_err();
        assert!(
            err.starts_with("no ConfigMap vault-auth-roles in "),
            "{err}"
        );
        let cm = write(dir.path(), "cm.yaml", CM);
        let err = read_proposed(&[cm.clone(), cm], "vault-auth").unwrap_err();
        assert!(
            err.starts_with("2 ConfigMaps vault-auth-roles found"),
            "{err}"
        );
        let elsewhere = write(
            dir.path(),
            "ns.yaml",
            &CM.replace(
                "name: vault-auth-roles",
                "name: vault-auth-roles\n  namespace: x",
            ),
        );
        let err = read_proposed(&[elsewhere], "vault-auth").unwrap_err();
        assert!(
            err.contains("is in namespace x, the controller's is vault-auth"),
            "{err}"
        );
        let list = write(
            dir.path(),
            "list.yaml",
            &CM.replace(
                "web: '{\"bound_service_account_names\": [\"web\"]}'",
                "web: [1]",
            ),
        );
        let err = read_proposed(&[list], "vault-auth").unwrap_err();
        assert!(err.contains("list.yaml:8: data.web is a list"), "{err}");
        let missing = dir.path().join("missing.yaml");
        let err = read_proposed(&[missing], "vault-auth").unwrap_err();
        assert!(err.contains("missing.yaml: cannot read"), "{err}");
    }

    #[test]
    fn applied_over_the_live_configmap_keeps_its_identity() {
        let p = Proposed {
            source: "f:1".into(),
            data: BTreeMap::from([("a".into(), "{}".into())]),
            annotations: BTreeMap::new(),
        };
        let ConfigMapState::Present(cm) = p.apply_to(ConfigMapState::Missing, "vault-auth") else {
            panic!("present");
        };
        assert_eq!(cm.metadata.name.as_deref(), Some(ROLES_CONFIGMAP));
        assert_eq!(cm.metadata.namespace.as_deref(), Some("vault-auth"));
        assert_eq!(cm.data.as_ref().unwrap().len(), 1);
    }
}
