//! Tests of what `cleanup` picks and how it reports, on hand-made snapshots.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::ObjectMeta;

use super::*;
use crate::reviewer_plan::desired_namespace_reader_binding;
use crate::reviewer_plan::tests::{reviewer_in_place, sa};
use crate::reviewer_plan::{desired_reviewer_binding, managed_labels};

/// After a sync, with the user's own objects next to the tool's.
fn cluster() -> ClusterSnapshot {
    let mut s = reviewer_in_place();
    std::sync::Arc::make_mut(&mut s.service_accounts).extend([
        sa(
            "default",
            "vault-agent-injector",
            &[("vak-managed", "true")],
            true,
        ),
        // Made by the original tool: annotation only.
        sa(
            "kube-system",
            "vault-agent-injector",
            &[("vak-managed", "true")],
            false,
        ),
        // The user's: same name as a bound one, no annotation (or not "true").
        sa("team-a", "vault-agent-injector", &[], false),
        sa(
            "team-b",
            "vault-agent-injector",
            &[("vak-managed", "false")],
            false,
        ),
        // Labelled like the tool's but not one of its names: a snapshot lists every
        // ServiceAccount, only the tool's names count.
        sa("vault-auth", "someone-else", &[], true),
    ]);
    let mut reader = desired_namespace_reader_binding("vault-auth");
    reader.metadata.uid = Some("uid-reader-crb".into());
    // A labelled binding of another name (e.g. made by hand with a copied label) stays.
    let mut other = desired_reviewer_binding("vault-auth");
    other.metadata.name = Some("users-binding".into());
    s.cluster_role_bindings.extend([reader, other]);
    s.cluster_roles.push(ClusterRole {
        metadata: ObjectMeta {
            name: Some(NAMESPACE_READER.into()),
            uid: Some("uid-reader-cr".into()),
            labels: Some(managed_labels()),
            ..Default::default()
        },
        ..Default::default()
    });
    s.configmap = ConfigMapState::Present(std::sync::Arc::new(ConfigMap {
        metadata: ObjectMeta {
            name: Some(ROLES_CONFIGMAP.into()),
            annotations: Some(BTreeMap::from([
                (STATUS_ANNOTATION.to_string(), "Synced".to_string()),
                ("owner".to_string(), "me".to_string()),
            ])),
            ..Default::default()
        },
        ..Default::default()
    }));
    s
}

fn inv(delete_mount: bool, mount: MountState) -> Inventory {
    let roles = vec!["default".to_string(), "test".to_string()];
    let path = "auth/kubernetes/prod/eu1".to_string();
    inventory(&cluster(), "vault-auth", path, mount, roles, delete_mount)
}

#[test]
fn picks_only_what_carries_the_tools_mark() {
    let inv = inv(false, MountState::Kubernetes);
    let names: Vec<String> = inv.objects.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "ServiceAccount default/vault-agent-injector",
            "ServiceAccount kube-system/vault-agent-injector",
            "ClusterRoleBinding vault-auth-token-reviewer",
            "ClusterRoleBinding vault-auth-token-reviewer-namespaces",
            "ClusterRole vault-auth-token-reviewer-namespaces",
            "Secret vault-auth/token-reviewer-token",
            "ServiceAccount vault-auth/token-reviewer",
        ]
    );
    assert!(inv.objects.iter().all(|o| !o.uid.is_empty()));
    assert_eq!(inv.configmap_status.as_deref(), Some("vault-auth"));
    assert!(!inv.delete_mount);
    assert_eq!(inv.len(), 2 + 7 + 1);
}

#[test]
fn unlabelled_reviewer_objects_are_not_the_tools() {
    let mut s = cluster();
    std::sync::Arc::make_mut(&mut s.service_accounts)
        .iter_mut()
        .for_each(|sa| sa.labelled = false);
    s.reviewer_secret.as_mut().unwrap().metadata.labels = None;
    s.configmap = ConfigMapState::Missing;
    let inv = inventory(
        &s,
        "vault-auth",
        "p".into(),
        MountState::Missing,
        vec![],
        true,
    );
    let kinds: Vec<Kind> = inv.objects.iter().map(|o| o.kind).collect();
    // The annotated accounts, and the labelled RBAC objects the snapshot listed.
    assert_eq!(
        kinds,
        [
            Kind::ServiceAccount,
            Kind::ServiceAccount,
            Kind::ClusterRoleBinding,
            Kind::ClusterRoleBinding,
            Kind::ClusterRole,
        ]
    );
    // No Kubernetes auth method there: no roles, no mount to disable.
    assert!(inv.vault_roles.is_empty() && !inv.delete_mount);
}

#[test]
fn the_list_shown_before_asking() {
    insta::assert_snapshot!(
        "keep_mount",
        render_inventory(
            &inv(false, MountState::Kubernetes),
            "https://vault:8200",
            Style::default()
        )
    );
    insta::assert_snapshot!(
        "delete_mount",
        render_inventory(
            &inv(true, MountState::Kubernetes),
            "https://vault:8200",
            Style::default()
        )
    );
}

#[test]
fn confirmation_is_needed_unless_yes_and_impossible_without_a_terminal() {
    assert_eq!(decide(true, false), Decision::Proceed);
    assert_eq!(decide(true, true), Decision::Proceed);
    assert_eq!(decide(false, true), Decision::Ask);
    assert_eq!(decide(false, false), Decision::Refuse);
}

#[test]
fn outcomes_fail_only_on_errors() {
    let done = vec![
        ("role a".to_string(), Outcome::Removed),
        (
            "ServiceAccount x/y".to_string(),
            Outcome::Skipped("already gone".into()),
        ),
    ];
    let (text, code) = render_outcomes(&done, Style::default());
    assert_eq!(code, status::SUCCESS);
    assert_eq!(
        text,
        "removed role a\nskipped ServiceAccount x/y: already gone\nRemoved 1 of 2; 0 failed.\n"
    );
    let failed = vec![(
        "role b".to_string(),
        Outcome::Failed(Error::VaultStatus {
            operation: "delete_role".into(),
            status: 403,
            message: "permission denied".into(),
        }),
    )];
    let (text, code) = render_outcomes(&failed, Style::default());
    assert_eq!(code, status::FAILURE);
    assert!(
        text.starts_with("FAILED role b: vault: delete_role failed with HTTP 403"),
        "{text}"
    );
}
