use super::*;
use crate::kinds;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn k(group: &str, plural: &str) -> &'static Kind {
    kinds::find(group, "v1", plural).unwrap()
}

#[test]
fn namespaces_get_finalizer_phase_and_name_label() {
    let mut ns = json!({"metadata": {"name": "team"}});
    prepare_create(k("", "namespaces"), &mut ns).unwrap();
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team"
    );
    let mut changed = ns.clone();
    changed["status"]["phase"] = json!("Terminating");
    prepare_update(k("", "namespaces"), &ns, &mut changed).unwrap();
    assert_eq!(
        changed["status"]["phase"], "Active",
        "status is not writable through the main resource"
    );
}

#[test]
fn secrets_fold_string_data_and_keep_their_type() {
    let secrets = k("", "secrets");
    let mut s = json!({"metadata": {"name": "s"}, "stringData": {"user": "admin"}});
    prepare_create(secrets, &mut s).unwrap();
    assert_eq!(s["data"]["user"], "YWRtaW4=");
    assert_eq!(s["type"], "Opaque");
    assert!(s.get("stringData").is_none());
    let mut retyped = s.clone();
    retyped["type"] = json!("kubernetes.io/tls");
    let e = prepare_update(secrets, &s, &mut retyped).unwrap_err();
    assert_eq!(e.code, 422);
    let mut bad = json!({"metadata": {"name": "s"}, "data": {"k": "not base64!"}});
    assert_eq!(prepare_create(secrets, &mut bad).unwrap_err().code, 400);
    let mut token = json!({"metadata": {"name": "t"}, "type": SA_TOKEN_TYPE});
    let e = prepare_create(secrets, &mut token).unwrap_err();
    assert!(
        e.message.contains("kubernetes.io/service-account.name"),
        "{e}"
    );
}

#[test]
fn immutable_configmaps_refuse_data_changes() {
    let cms = k("", "configmaps");
    let old = json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "1"}});
    let mut new = old.clone();
    new["data"]["a"] = json!("2");
    assert_eq!(prepare_update(cms, &old, &mut new).unwrap_err().code, 422);
    let mut bad_key = json!({"metadata": {"name": "c"}, "data": {"bad key": "1"}});
    assert_eq!(prepare_create(cms, &mut bad_key).unwrap_err().code, 422);
}

#[test]
fn rbac_rules_and_bindings_are_validated() {
    let role = k(RBAC_GROUP, "roles");
    let mut r = json!({"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["secrets"]}]});
    let e = prepare_create(role, &mut r).unwrap_err();
    assert!(e.message.contains("rules[0].verbs: Required value"), "{e}");
    let crb = k(RBAC_GROUP, "clusterrolebindings");
    let mut b = json!({
        "metadata": {"name": "b"},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "system:auth-delegator"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}, {"kind": "User", "name": "u"}]
    });
    prepare_create(crb, &mut b).unwrap();
    assert_eq!(b["subjects"][1]["apiGroup"], RBAC_GROUP);
    let mut changed = b.clone();
    changed["roleRef"]["name"] = json!("view");
    assert!(
        prepare_update(crb, &b, &mut changed)
            .unwrap_err()
            .message
            .contains("roleRef: Invalid value: {\"APIGroup\"")
    );
    let mut no_ns = json!({"metadata": {"name": "b"}, "roleRef": b["roleRef"], "subjects": [{"kind": "ServiceAccount", "name": "sa"}]});
    assert!(
        prepare_create(crb, &mut no_ns)
            .unwrap_err()
            .message
            .contains("subjects[0].namespace")
    );
}

#[test]
fn empty_omitempty_fields_are_not_served() {
    let mut o = json!({
        "metadata": {"name": "a", "annotations": {}, "labels": {"k": "v"}, "finalizers": [], "generateName": ""},
        "data": {},
        "immutable": null,
        "rules": null,
        "type": "Opaque"
    });
    normalize(&mut o);
    assert_eq!(
        o,
        json!({"metadata": {"name": "a", "labels": {"k": "v"}}, "rules": null, "type": "Opaque"})
    );
}
