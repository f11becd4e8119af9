//! Create, get, list, replace, patch and delete on every served kind.

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, Namespace, ObjectReference, Secret, ServiceAccount,
};
use k8s_openapi::api::events::v1::Event as EventV1;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::{ByteString, jiff};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::support::{emulator, eventually};

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        ..Default::default()
    }
}

fn rv<K: Resource>(obj: &K) -> u64 {
    obj.meta()
        .resource_version
        .as_deref()
        .unwrap_or("0")
        .parse()
        .expect("numeric resourceVersion")
}

/// Runs the whole lifecycle of one object and returns it as replaced by `mutate`.
async fn crud<K>(api: &Api<K>, obj: K, mutate: impl Fn(&mut K)) -> K
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    let name = obj.meta().name.clone().expect("named");
    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .expect("create");
    let md = created.meta();
    assert!(
        md.uid.is_some() && md.creation_timestamp.is_some(),
        "{name}: server metadata set"
    );
    assert!(rv(&created) > 0);

    let got = api.get(&name).await.expect("get");
    assert_eq!(got.meta().uid, md.uid);
    let listed = api.list(&ListParams::default()).await.expect("list");
    assert!(
        listed
            .items
            .iter()
            .any(|o| o.meta().name.as_deref() == Some(&name)),
        "{name} listed"
    );
    assert!(listed.metadata.resource_version.is_some());

    let mut changed = got.clone();
    mutate(&mut changed);
    let replaced = api
        .replace(&name, &PostParams::default(), &changed)
        .await
        .expect("replace");
    assert!(
        rv(&replaced) > rv(&created),
        "{name}: replace bumps resourceVersion"
    );

    let label = Patch::Merge(json!({"metadata": {"labels": {"crud": "yes"}}}));
    let patched = api
        .patch(&name, &PatchParams::default(), &label)
        .await
        .expect("patch");
    assert_eq!(
        patched
            .meta()
            .labels
            .as_ref()
            .and_then(|l| l.get("crud"))
            .map(String::as_str),
        Some("yes")
    );

    api.delete(&name, &DeleteParams::default())
        .await
        .expect("delete");
    eventually(
        &format!("{name} to be gone"),
        Duration::from_secs(10),
        || async {
            api.get_opt(&name)
                .await
                .expect("get_opt")
                .is_none()
                .then_some(())
        },
    )
    .await;
    replaced
}

fn rule(verbs: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name: name.into(),
    }
}

fn sa_subject(name: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".into(),
        name: name.into(),
        namespace: Some("default".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn core_kinds() {
    let emu = emulator().await;
    let client: Client = emu.client();

    let ns = crud(
        &Api::<Namespace>::all(client.clone()),
        Namespace {
            metadata: meta("crud-ns"),
            ..Default::default()
        },
        |n| {
            n.metadata
                .labels
                .get_or_insert_default()
                .insert("team".into(), "a".into());
        },
    )
    .await;
    assert_eq!(
        ns.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
        "crud-ns"
    );

    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let cm = ConfigMap {
        metadata: meta("crud-cm"),
        data: Some([("a".to_string(), "1".to_string())].into()),
        ..Default::default()
    };
    let cm = crud(&cms, cm, |c| {
        c.data
            .get_or_insert_default()
            .insert("a".into(), "2".into());
    })
    .await;
    assert_eq!(cm.data.unwrap()["a"], "2");

    let secrets = Api::<Secret>::namespaced(client.clone(), "default");
    let secret = Secret {
        metadata: meta("crud-secret"),
        string_data: Some([("user".to_string(), "admin".to_string())].into()),
        ..Default::default()
    };
    let secret = crud(&secrets, secret, |s| {
        s.data
            .get_or_insert_default()
            .insert("pass".into(), ByteString(b"p".to_vec()));
    })
    .await;
    let data = secret.data.unwrap();
    assert_eq!(data["user"].0, b"admin", "stringData is folded into data");
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));

    let sas = Api::<ServiceAccount>::namespaced(client.clone(), "default");
    let sa = crud(
        &sas,
        ServiceAccount {
            metadata: meta("crud-sa"),
            ..Default::default()
        },
        |s| {
            s.automount_service_account_token = Some(false);
        },
    )
    .await;
    assert_eq!(sa.automount_service_account_token, Some(false));

    let events = Api::<Event>::namespaced(client.clone(), "default");
    let event = Event {
        metadata: meta("crud-event"),
        involved_object: ObjectReference {
            kind: Some("ConfigMap".into()),
            name: Some("x".into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        reason: Some("Tested".into()),
        message: Some("first".into()),
        type_: Some("Normal".into()),
        ..Default::default()
    };
    let event = crud(&events, event, |e| e.message = Some("second".into())).await;
    assert_eq!(event.message.as_deref(), Some("second"));
}

#[tokio::test]
async fn group_kinds() {
    let emu = emulator().await;
    let client = emu.client();

    let now = MicroTime(jiff::Timestamp::now());
    let v1_events = Api::<EventV1>::namespaced(client.clone(), "default");
    let event = EventV1 {
        metadata: meta("crud-event-v1"),
        event_time: Some(now),
        action: Some("Reconcile".into()),
        reason: Some("Synced".into()),
        note: Some("synced roles".into()),
        reporting_controller: Some("vault-auth-kubernetes".into()),
        reporting_instance: Some("vak-0".into()),
        regarding: Some(ObjectReference {
            kind: Some("ServiceAccount".into()),
            name: Some("sa".into()),
            ..Default::default()
        }),
        type_: Some("Normal".into()),
        ..Default::default()
    };
    let created = v1_events
        .create(&PostParams::default(), &event)
        .await
        .expect("events.k8s.io create");
    // The same object through the core API, converted as Kubernetes converts it.
    let core = Api::<Event>::namespaced(client.clone(), "default")
        .get("crud-event-v1")
        .await
        .expect("core view");
    assert_eq!(core.message.as_deref(), Some("synced roles"));
    assert_eq!(core.involved_object.kind.as_deref(), Some("ServiceAccount"));
    assert_eq!(
        core.reporting_component.as_deref(),
        Some("vault-auth-kubernetes")
    );
    assert_eq!(created.note.as_deref(), Some("synced roles"));
    v1_events
        .delete("crud-event-v1", &DeleteParams::default())
        .await
        .expect("delete");
    crud(&v1_events, event, |e| e.note = Some("changed".into())).await;

    let roles = Api::<ClusterRole>::all(client.clone());
    let cr = ClusterRole {
        metadata: meta("crud:reader"),
        rules: Some(vec![rule(&["get"], &["configmaps"])]),
        ..Default::default()
    };
    let cr = crud(&roles, cr, |r| {
        r.rules
            .get_or_insert_default()
            .push(rule(&["list"], &["secrets"]))
    })
    .await;
    assert_eq!(cr.rules.unwrap().len(), 2);

    let crbs = Api::<ClusterRoleBinding>::all(client.clone());
    let crb = ClusterRoleBinding {
        metadata: meta("crud-crb"),
        role_ref: role_ref("ClusterRole", "view"),
        subjects: Some(vec![sa_subject("a")]),
    };
    let crb = crud(&crbs, crb, |b| {
        b.subjects.get_or_insert_default().push(sa_subject("b"))
    })
    .await;
    assert_eq!(crb.subjects.unwrap().len(), 2);

    let ns_roles = Api::<Role>::namespaced(client.clone(), "default");
    let role = Role {
        metadata: meta("crud-role"),
        rules: Some(vec![rule(&["get"], &["secrets"])]),
    };
    crud(&ns_roles, role, |r| {
        r.rules = Some(vec![rule(&["get", "list"], &["secrets"])])
    })
    .await;

    let rbs = Api::<RoleBinding>::namespaced(client.clone(), "default");
    let rb = RoleBinding {
        metadata: meta("crud-rb"),
        role_ref: role_ref("Role", "crud-role"),
        subjects: Some(vec![sa_subject("a")]),
    };
    crud(&rbs, rb, |b| b.subjects = None).await;

    let leases = Api::<Lease>::namespaced(client.clone(), "default");
    let lease = Lease {
        metadata: meta("crud-lease"),
        spec: Some(LeaseSpec {
            holder_identity: Some("pod-a".into()),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }),
    };
    let lease = crud(&leases, lease, |l| {
        l.spec.as_mut().unwrap().holder_identity = Some("pod-b".into())
    })
    .await;
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("pod-b")
    );
}

#[tokio::test]
async fn dry_run_generate_name_and_noop_writes() {
    let emu = emulator().await;
    let cms = Api::<ConfigMap>::namespaced(emu.client(), "default");
    let dry = cms
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &ConfigMap {
                metadata: meta("dry"),
                ..Default::default()
            },
        )
        .await
        .expect("dry-run create");
    assert_eq!(dry.metadata.name.as_deref(), Some("dry"));
    assert!(
        cms.get_opt("dry").await.unwrap().is_none(),
        "dry run stores nothing"
    );

    let generated = ConfigMap {
        metadata: ObjectMeta {
            generate_name: Some("gen-".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let a = cms
        .create(&PostParams::default(), &generated)
        .await
        .expect("generateName");
    let name = a.metadata.name.clone().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    // A write that changes nothing is not stored: same resourceVersion, no event.
    let same = cms
        .replace(&name, &PostParams::default(), &a)
        .await
        .expect("no-op replace");
    assert_eq!(same.metadata.resource_version, a.metadata.resource_version);
    let noop = Patch::Merge(json!({"metadata": {"name": name}}));
    let patched = cms
        .patch(&name, &PatchParams::default(), &noop)
        .await
        .expect("no-op patch");
    assert_eq!(
        patched.metadata.resource_version,
        a.metadata.resource_version
    );
}

#[tokio::test]
async fn server_side_apply_round_trips() {
    let emu = emulator().await;
    let cms = Api::<ConfigMap>::namespaced(emu.client(), "default");
    let config = |data: serde_json::Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "labels": {"app": "x"}}, "data": data});
    let owner = PatchParams::apply("vak-controller");

    let created = cms
        .patch(
            "ssa",
            &owner,
            &Patch::Apply(config(json!({"a": "1", "b": "2"}))),
        )
        .await
        .expect("apply creates");
    assert_eq!(created.data.as_ref().unwrap().len(), 2);
    let managed = created.metadata.managed_fields.clone().unwrap();
    assert_eq!(managed.len(), 1);
    assert_eq!(managed[0].manager.as_deref(), Some("vak-controller"));
    assert_eq!(managed[0].operation.as_deref(), Some("Apply"));

    // Applying the same configuration again changes nothing.
    let again = cms
        .patch(
            "ssa",
            &owner,
            &Patch::Apply(config(json!({"a": "1", "b": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        created.metadata.resource_version
    );

    // A field the manager stops applying is removed.
    let pruned = cms
        .patch("ssa", &owner, &Patch::Apply(config(json!({"a": "1"}))))
        .await
        .unwrap();
    assert_eq!(
        pruned.data.unwrap(),
        [("a".to_string(), "1".to_string())].into()
    );

    // Another manager changing an owned field conflicts, unless forced.
    let other = PatchParams::apply("someone-else");
    let e = crate::support::status(
        cms.patch(
            "ssa",
            &other,
            &Patch::Apply(config(json!({"a": "changed"}))),
        )
        .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(
        e.message.contains("conflict with \"vak-controller\""),
        "{}",
        e.message
    );
    let forced = cms
        .patch(
            "ssa",
            &other.force(),
            &Patch::Apply(config(json!({"a": "changed"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["a"], "changed");

    // Fields set by an ordinary update belong to that manager and survive the applier's prune.
    let edit = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..Default::default()
    };
    cms.patch("ssa", &edit, &Patch::Merge(json!({"data": {"extra": "e"}})))
        .await
        .unwrap();
    let kept = cms
        .patch("ssa", &owner, &Patch::Apply(config(json!({}))))
        .await
        .unwrap();
    assert_eq!(
        kept.data.unwrap().get("extra").map(String::as_str),
        Some("e")
    );
}

#[tokio::test]
async fn strategic_merge_and_json_patches() {
    let emu = emulator().await;
    let sas = Api::<ServiceAccount>::namespaced(emu.client(), "default");
    sas.create(
        &PostParams::default(),
        &ServiceAccount {
            metadata: meta("smp"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let add = |name: &str| Patch::Strategic(json!({"secrets": [{"name": name}]}));
    sas.patch("smp", &PatchParams::default(), &add("one"))
        .await
        .unwrap();
    let both = sas
        .patch("smp", &PatchParams::default(), &add("two"))
        .await
        .unwrap();
    let names: Vec<_> = both
        .secrets
        .unwrap()
        .into_iter()
        .filter_map(|s| s.name)
        .collect();
    // Merged by name, in Kubernetes' order: the patch's items first, then the server's others.
    assert_eq!(names, ["two", "one"], "secrets merge by name");

    // kube-rs sends JSON patches only with its `jsonpatch` feature: send it raw.
    let body = json!([
        {"op": "add", "path": "/metadata/labels", "value": {"k": "v"}},
        {"op": "remove", "path": "/secrets/0"}
    ]);
    let (code, _) = crate::support::raw(
        &emu,
        "PATCH",
        "/api/v1/namespaces/default/serviceaccounts/smp",
        &[("content-type", "application/json-patch+json")],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(code, 200);
    let patched = sas.get("smp").await.unwrap();
    assert_eq!(patched.secrets.unwrap().len(), 1);
    assert_eq!(patched.metadata.labels.unwrap()["k"], "v");
}

#[tokio::test]
async fn emptied_maps_read_back_absent() {
    let emu = emulator().await;
    let cms = Api::<ConfigMap>::namespaced(emu.client(), "default");
    let annotated = ConfigMap {
        metadata: ObjectMeta {
            annotations: Some([("a".to_string(), "1".to_string())].into()),
            ..meta("emptied")
        },
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..Default::default()
    };
    cms.create(&PostParams::default(), &annotated)
        .await
        .unwrap();
    let cleared =
        Patch::Merge(json!({"metadata": {"annotations": {"a": null}}, "data": {"k": null}}));
    let patched = cms
        .patch("emptied", &PatchParams::default(), &cleared)
        .await
        .unwrap();
    // Kubernetes' types omit empty maps, so the fields are gone rather than `{}`.
    assert_eq!(patched.metadata.annotations, None);
    assert_eq!(patched.data, None);
}
