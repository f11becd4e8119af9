//! The controllers of a real control plane that clients notice, run in-process: every namespace
//! gets its `default` ServiceAccount and `kube-root-ca.crt` ConfigMap, token Secrets are filled
//! (and removed with their ServiceAccount), legacy clusters auto-create token Secrets, and
//! terminating namespaces are emptied and then removed.
//!
//! The reactions to a write run synchronously, right after it is stored (Kubernetes' controllers
//! react within milliseconds; doing it in-line makes tests deterministic). Namespace deletion runs
//! in a background task, so clients see the Terminating phase as they do on a real cluster.

use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};

use crate::context::Shared;
use crate::kinds::{self, KINDS, Kind, Storage};
use crate::meta;
use crate::ops::{self, DeleteOptions, DeleteOutcome, WriteCtx};

const SA_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const SA_NAME: &str = "kubernetes.io/service-account.name";
const SA_UID: &str = "kubernetes.io/service-account.uid";
const CONTROLLER_MANAGER: &str = "kube-controller-manager";

fn kind(plural: &str) -> &'static Kind {
    kinds::find("", "v1", plural).expect("core kinds are served")
}

/// Reactions to a stored create; returns the object as the client should see it.
pub fn after_create(shared: &Shared, kind: &'static Kind, obj: Arc<Value>) -> Arc<Value> {
    match kind.plural {
        "namespaces" => {
            populate_namespace(shared, meta::name(&obj));
            obj
        }
        "serviceaccounts" if shared.legacy_token_secrets => add_legacy_token_secret(shared, obj),
        "secrets" if is_token_secret(&obj) => fill_token_secret(shared, obj),
        _ => obj,
    }
}

/// Reactions to a stored update.
pub fn after_update(shared: &Shared, kind: &'static Kind, obj: Arc<Value>) -> Arc<Value> {
    match kind.plural {
        "secrets" if is_token_secret(&obj) => fill_token_secret(shared, obj),
        _ => obj,
    }
}

/// Reactions to a completed delete; `orphan` leaves dependents in place (propagationPolicy
/// Orphan) instead of garbage-collecting them.
pub fn after_delete(shared: &Shared, kind: &'static Kind, last: &Value, orphan: bool) {
    collect_garbage(shared, last, orphan);
    if kind.plural == "serviceaccounts" {
        // The token controller deletes the token Secrets of a deleted ServiceAccount.
        let ns = meta::namespace(last);
        let uid = meta::meta_str(last, "uid");
        let ctx = WriteCtx::system(shared, CONTROLLER_MANAGER);
        for secret in shared
            .store
            .list(self::kind("secrets").storage_key(), Some(ns))
        {
            let references = is_token_secret(&secret)
                && meta::annotation(&secret, SA_NAME) == Some(meta::name(last))
                && meta::annotation(&secret, SA_UID).is_none_or(|u| u == uid);
            if references {
                let _ = ops::delete(
                    &ctx,
                    self::kind("secrets"),
                    ns,
                    meta::name(&secret),
                    &DeleteOptions::default(),
                );
            }
        }
    }
}

/// Background garbage collection: a dependent whose every owner is gone is deleted; one that
/// still has a live owner (or is orphaned) only loses its reference to the deleted owner.
fn collect_garbage(shared: &Shared, owner: &Value, orphan: bool) {
    let uid = meta::meta_str(owner, "uid");
    if uid.is_empty() {
        return;
    }
    let ctx = WriteCtx::system(shared, "generic-garbage-collector");
    for (resource, ns, name) in shared.store.dependents(uid) {
        let (Some(k), Some(dependent)) = (
            kinds::for_storage(resource),
            shared.store.get(resource, &ns, &name),
        ) else {
            continue;
        };
        let refs: Vec<Value> = meta::metadata(&dependent)
            .get("ownerReferences")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let others: Vec<Value> = refs.into_iter().filter(|r| r["uid"] != uid).collect();
        let result = if orphan || others.iter().any(|r| owner_exists(shared, r, &ns)) {
            let mut updated = (*dependent).clone();
            meta::metadata_mut(&mut updated).insert("ownerReferences".into(), Value::Array(others));
            ops::update(&ctx, k, &ns, &name, updated).map(|_| ())
        } else {
            ops::delete(&ctx, k, &ns, &name, &DeleteOptions::default()).map(|_| ())
        };
        if let Err(e) = result
            && e.code != 404
        {
            tracing::warn!(resource, namespace = %ns, %name, error = %e, "garbage collection");
        }
    }
}

/// Whether the owner an ownerReference names exists (with that uid). Owners of kinds the
/// emulator does not serve cannot be checked and count as existing, so nothing is collected
/// on a guess.
fn owner_exists(shared: &Shared, reference: &Value, dependent_namespace: &str) -> bool {
    let (api_version, kind) = (
        reference["apiVersion"].as_str().unwrap_or(""),
        reference["kind"].as_str().unwrap_or(""),
    );
    let Some(k) = KINDS
        .iter()
        .find(|k| k.storage == Storage::Own && k.kind == kind && k.api_version() == api_version)
    else {
        return true;
    };
    let ns = if k.namespaced {
        dependent_namespace
    } else {
        ""
    };
    let name = reference["name"].as_str().unwrap_or("");
    shared
        .store
        .get(k.storage_key(), ns, name)
        .is_some_and(|o| meta::meta_str(&o, "uid") == reference["uid"].as_str().unwrap_or(""))
}

fn is_token_secret(obj: &Value) -> bool {
    obj["type"] == SA_TOKEN_TYPE && !meta::is_deleting(obj)
}

/// The default ServiceAccount and the root CA ConfigMap every namespace has.
fn populate_namespace(shared: &Shared, namespace: &str) {
    let ctx = WriteCtx::system(shared, CONTROLLER_MANAGER);
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
    let ca = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kube-root-ca.crt", "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
        "data": {"ca.crt": shared.ca_pem},
    });
    for (k, obj) in [(kind("serviceaccounts"), sa), (kind("configmaps"), ca)] {
        match ops::create(&ctx, k, Some(namespace), obj) {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => {
                tracing::warn!(%namespace, resource = k.plural, error = %e, "populating namespace")
            }
        }
    }
}

/// Kubernetes <= 1.23: a ServiceAccount gets a token Secret, listed in its `secrets`.
fn add_legacy_token_secret(shared: &Shared, sa: Arc<Value>) -> Arc<Value> {
    let ctx = WriteCtx::system(shared, CONTROLLER_MANAGER);
    let ns = meta::namespace(&sa).to_string();
    let name = meta::name(&sa).to_string();
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": SA_TOKEN_TYPE,
        "metadata": {
            "name": format!("{name}-token-{}", meta::random_suffix(5)),
            "annotations": {SA_NAME: name, SA_UID: meta::meta_str(&sa, "uid")},
        },
    });
    let created = match ops::create(&ctx, kind("secrets"), Some(&ns), secret) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(namespace = %ns, serviceaccount = %name, error = %e, "creating legacy token Secret");
            return sa;
        }
    };
    let mut updated = (*sa).clone();
    let entry = json!({"name": meta::name(&created)});
    match updated.get_mut("secrets").and_then(Value::as_array_mut) {
        Some(list) => list.push(entry),
        None => updated["secrets"] = json!([entry]),
    }
    match ops::update(&ctx, kind("serviceaccounts"), &ns, &name, updated) {
        Ok(obj) => obj,
        Err(e) => {
            tracing::warn!(namespace = %ns, serviceaccount = %name, error = %e, "listing legacy token Secret");
            sa
        }
    }
}

/// The token controller: fills `token`, `ca.crt` and `namespace` of a token Secret, or deletes
/// the Secret when its ServiceAccount does not exist (or is another one with the same name).
fn fill_token_secret(shared: &Shared, secret: Arc<Value>) -> Arc<Value> {
    let ns = meta::namespace(&secret).to_string();
    let secret_name = meta::name(&secret).to_string();
    let sa_name = meta::annotation(&secret, SA_NAME).unwrap_or("").to_string();
    let ctx = WriteCtx::system(shared, CONTROLLER_MANAGER);
    let sa = shared
        .store
        .get(kind("serviceaccounts").storage_key(), &ns, &sa_name);
    let sa_uid = sa.as_ref().map(|s| meta::meta_str(s, "uid").to_string());
    let uid_matches = match (&sa_uid, meta::annotation(&secret, SA_UID)) {
        (Some(actual), Some(annotated)) => actual == annotated,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if !uid_matches {
        tracing::info!(namespace = %ns, secret = %secret_name, serviceaccount = %sa_name, "ServiceAccount missing: deleting its token Secret");
        let _ = ops::delete(
            &ctx,
            kind("secrets"),
            &ns,
            &secret_name,
            &DeleteOptions::default(),
        );
        return secret;
    }
    let sa_uid = sa_uid.expect("uid_matches implies the ServiceAccount exists");
    let has_token = secret["data"]["token"]
        .as_str()
        .is_some_and(|t| !t.is_empty());
    if has_token && meta::annotation(&secret, SA_UID) == Some(sa_uid.as_str()) {
        return secret;
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut filled = (*secret).clone();
    meta::set_annotation(&mut filled, SA_UID, &sa_uid);
    if !filled.get("data").is_some_and(Value::is_object) {
        filled["data"] = json!({});
    }
    if !has_token {
        let token = shared
            .issuer
            .mint_legacy(&ns, &sa_name, &sa_uid, &secret_name);
        filled["data"]["token"] = json!(b64.encode(token));
    }
    filled["data"]["ca.crt"] = json!(b64.encode(&shared.ca_pem));
    filled["data"]["namespace"] = json!(b64.encode(&ns));
    match ops::update(&ctx, kind("secrets"), &ns, &secret_name, filled) {
        Ok(obj) => obj,
        Err(e) => {
            tracing::warn!(namespace = %ns, secret = %secret_name, error = %e, "filling token Secret");
            secret
        }
    }
}

/// Runs until shutdown: empties terminating namespaces and removes them.
pub async fn run_namespace_controller(shared: Arc<Shared>) {
    loop {
        tokio::select! {
            _ = shared.store.namespace_work.notified() => {}
            _ = shared.shutdown.cancelled() => return,
        }
        for namespace in shared.store.terminating_namespaces() {
            finalize_namespace(&shared, &namespace);
        }
    }
}

/// One pass over a terminating namespace: delete what is in it; once it is empty, drop the
/// `kubernetes` finalizer and remove the namespace (if no other finalizer holds it).
fn finalize_namespace(shared: &Shared, namespace: &str) {
    let ctx = WriteCtx::system(shared, "namespace-controller");
    let mut remaining = 0;
    for k in KINDS
        .iter()
        .filter(|k| k.namespaced && k.storage == Storage::Own)
    {
        for obj in shared.store.list(k.storage_key(), Some(namespace)) {
            match ops::delete(
                &ctx,
                k,
                namespace,
                meta::name(&obj),
                &DeleteOptions::default(),
            ) {
                Ok(DeleteOutcome::Deleted(_)) => {}
                Ok(DeleteOutcome::Pending(_)) => remaining += 1,
                Err(e) if e.code == 404 => {}
                Err(e) => {
                    tracing::warn!(%namespace, resource = k.plural, error = %e, "emptying namespace");
                    remaining += 1;
                }
            }
        }
    }
    if remaining > 0 {
        // Finalizers still hold some objects; their removal wakes this controller again.
        return;
    }
    let ns_kind = kind("namespaces");
    let store = &shared.store;
    let Some(ns) = store.get(ns_kind.storage_key(), "", namespace) else {
        return;
    };
    let spec_finalizers: Vec<Value> = ns["spec"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|f| f.as_str() != Some("kubernetes"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let expected = Some(meta::resource_version(&ns));
    if spec_finalizers.is_empty() && meta::finalizers(&ns).is_empty() {
        if store
            .delete(ns_kind.storage_key(), "", namespace, expected)
            .is_ok()
        {
            tracing::info!(%namespace, "namespace deleted");
        }
    } else if ns["spec"]["finalizers"].as_array().map(Vec::len) != Some(spec_finalizers.len()) {
        let mut updated = (*ns).clone();
        updated["spec"]["finalizers"] = Value::Array(spec_finalizers);
        let _ = store.update(ns_kind.storage_key(), updated, expected);
    }
}
