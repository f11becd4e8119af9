//! What a pass sees: Vault (read in full, or the view the last pass left) and the cluster
//! snapshot, combined into the inputs of the plan.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::k8s::snapshot::ClusterSnapshot;
use crate::plan::{
    DesiredConfig, MountState, Observed, ObservedConfig, Plan, PlanInput, RoleAction, plan_with,
};
use crate::roles::{Finding, RoleSet, ServerParams};
use crate::secret::Secret as SecretString;

use super::accounts::Accounts;
use super::entries::Entries;

use super::outcome::{PassReport, Step};
use super::{CONFIG_FINGERPRINT_ANNOTATION, Syncer, VAULT_CONCURRENCY};

/// How a pass learns what Vault holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaultRead {
    /// Read the mount, config and every role (the periodic resync, the first pass, after a failure).
    Full,
    /// Use the view the last successful pass left (a pass woken by a cluster change); falls back
    /// to a full read when there is none.
    Cached,
}

/// What Vault holds at the mount.
#[derive(Clone, Debug)]
pub struct VaultView {
    pub mount: MountState,
    pub config: Option<ObservedConfig>,
    pub roles: BTreeMap<String, Arc<Map<String, Value>>>,
    /// The role parameters the mount accepts; `None` until the mount exists.
    pub role_params: Option<ServerParams>,
}

impl VaultView {
    /// The view after a pass: what it observed plus what Vault confirmed of its writes (a
    /// failed write leaves the observed state). Written role bodies stand in for Vault's
    /// answer; they compare equal after normalisation (`tests/vault/roles_roundtrip.rs` proves
    /// it against OpenBao and Vault).
    pub(super) fn after(observation: Observation, _plan: &Plan, report: &PassReport) -> VaultView {
        let role_params = observation.role_params;
        let Observed {
            mut mount,
            mut config,
            mut vault_roles,
            ..
        } = observation.observed;
        for outcome in report.outcomes.iter().filter(|o| o.applied()) {
            match &outcome.step {
                Step::EnableMount { .. } => mount = MountState::Kubernetes,
                Step::WriteConfig { .. } => {
                    config = Some(ObservedConfig {
                        kubernetes_host: observation.config.kubernetes_host.clone(),
                        kubernetes_ca_cert: observation.config.kubernetes_ca_cert.clone(),
                        token_reviewer_jwt_set: true,
                    });
                }
                Step::Role(
                    RoleAction::Create { name, body } | RoleAction::Update { name, body, .. },
                ) => {
                    vault_roles.insert(name.clone(), body.clone());
                }
                Step::Role(RoleAction::Delete { name }) => {
                    vault_roles.remove(name);
                }
                Step::Reviewer(_) | Step::ServiceAccount(_) => {}
            }
        }
        // A role read from Vault that equals its entry is kept as the entry's own body, so the
        // view does not hold a second copy of every role after a full read, and the next pass
        // knows it equal without comparing.
        if let Some(roles) = &observation.roles {
            for (name, held) in vault_roles.iter_mut() {
                if let Some(spec) = roles.roles.get(name)
                    && !Arc::ptr_eq(&spec.body, held)
                    && crate::roles::role_changes(&spec.body, held).is_empty()
                {
                    *held = spec.body.clone();
                }
            }
        }
        VaultView {
            mount,
            config,
            roles: vault_roles,
            role_params,
        }
    }
}

/// What a pass saw: the inputs of the plan.
pub struct Observation {
    /// The ConfigMap's entries as the server can hold them (see [`RoleSet::for_server`]).
    pub roles: Option<Arc<RoleSet>>,
    /// The ConfigMap has no entry and no opt-in to delete everything: planned as if missing.
    pub empty_configmap_held: bool,
    /// The role parameters the mount accepts; `None` while it does not exist (the entries are
    /// then checked against every parameter this tool knows).
    pub role_params: Option<ServerParams>,
    /// The ServiceAccount side (`None` without entries): see [`super::accounts`].
    pub service_accounts: Option<Arc<Accounts>>,
    pub config: DesiredConfig,
    pub observed: Observed,
}

impl Observation {
    /// Everything validation found: the entries' errors and warnings, then the ServiceAccount
    /// warnings (e.g. a name pattern that cannot be created).
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.roles
            .iter()
            .flat_map(|r| r.findings.iter())
            .chain(self.service_accounts.iter().flat_map(|a| a.findings.iter()))
    }

    /// The plan for this observation; `scope` is what the config fingerprint covers besides the
    /// config (see [`Syncer::fingerprint_scope`]).
    pub fn plan(&self, mount: &str, scope: &str) -> Result<Plan> {
        let input = PlanInput {
            mount,
            fingerprint_scope: scope,
            roles: self.roles.as_deref(),
            empty_configmap_held: self.empty_configmap_held,
            // Given planned (`service_accounts`), they need not be given again.
            desired_service_accounts: None,
            config: &self.config,
            observed: &self.observed,
        };
        let accounts = self.service_accounts.as_ref().map(|a| &a.plan);
        plan_with(&input, accounts).map_err(Error::from)
    }
}

impl Syncer {
    /// Reads what Vault holds at the mount: config and every role (with bounded concurrency).
    pub async fn read_vault(&self, mount: MountState) -> Result<VaultView> {
        let path = self.auth_path();
        if mount != MountState::Kubernetes {
            return Ok(VaultView {
                mount,
                config: None,
                roles: BTreeMap::new(),
                role_params: None,
            });
        }
        // Three independent reads, made at once: they are on the way to every first write.
        let vault = &self.ctx.vault;
        let (params, config, names) = tokio::try_join!(
            vault.role_parameters(&path),
            vault.read_kubernetes_config(&path),
            vault.list_roles(&path),
        )?;
        let role_params = Some(ServerParams::from_names(&params));
        let config = config.map(|c| ObservedConfig {
            kubernetes_host: c.kubernetes_host,
            kubernetes_ca_cert: c.kubernetes_ca_cert,
            token_reviewer_jwt_set: c.token_reviewer_jwt_set,
        });
        let roles = self
            .ctx
            .vault
            .read_roles(&path, &names, VAULT_CONCURRENCY)
            .await?;
        Ok(VaultView {
            mount,
            config,
            roles: roles.into_iter().map(|(n, b)| (n, Arc::new(b))).collect(),
            role_params,
        })
    }

    /// The ConfigMap's entries of `snapshot` as a pass plans with them, for a mount that accepts
    /// `params` (`None`: it does not exist yet). See [`super::entries`].
    pub fn entries(&self, snapshot: &ClusterSnapshot, params: Option<&ServerParams>) -> Entries {
        self.entries.get(
            &self.ctx.settings,
            self.ctx.vault.own_policies(),
            snapshot,
            params,
        )
    }

    /// Combines what Vault holds with the cluster snapshot and its entries (from
    /// [`Syncer::entries`] for this `vault`'s parameters, which the caller has already taken for
    /// the reviewer's plan). No request.
    pub async fn observe_with(
        &self,
        snapshot: &ClusterSnapshot,
        vault: VaultView,
        entries: Entries,
        reviewer_jwt: SecretString,
    ) -> Observation {
        let Entries {
            roles,
            held: empty_configmap_held,
        } = entries;
        // With the namespace and ServiceAccount lists still coming in, the ServiceAccount half
        // is planned later in the pass (see `ClusterSnapshot::pending`); empty until then.
        let service_accounts = roles.as_ref().map(|roles| match snapshot.pending {
            Some(_) => Arc::default(),
            None => self.accounts.get(roles, snapshot),
        });

        let mut last_written = self.last_written.lock().await.clone();
        if last_written.is_none() {
            last_written = snapshot
                .reviewer_secret
                .as_ref()
                .and_then(|s| s.metadata.annotations.as_ref())
                .and_then(|a| a.get(CONFIG_FINGERPRINT_ANNOTATION))
                .cloned();
        }

        Observation {
            roles,
            empty_configmap_held,
            role_params: vault.role_params,
            service_accounts,
            config: DesiredConfig {
                kubernetes_host: self.ctx.cluster.host.clone(),
                kubernetes_ca_cert: self.ctx.cluster.ca_pem.clone(),
                token_reviewer_jwt: reviewer_jwt,
            },
            observed: Observed {
                mount: vault.mount,
                config: vault.config,
                last_written_fingerprint: last_written,
                vault_roles: vault.roles,
                // Planned already, in `service_accounts`.
                service_accounts: Default::default(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{NamespaceInfo, desired_service_accounts};
    use crate::roles::parse_roles;
    use crate::sync::outcome::{Done, StepOutcome};

    /// A pass woken by a cluster change plans against the view the last pass left. That view
    /// holds the bodies the pass wrote, not Vault's answers: they must compare equal, or every
    /// incremental pass would rewrite every role.
    #[test]
    fn view_after_a_pass_plans_nothing_more() {
        let data: BTreeMap<String, String> = [
            ("plain", r#"{"bound_service_account_names": ["a"], "bound_service_account_namespaces": ["ns"], "token_policies": "p1, p2"}"#),
            ("durations", r#"{"bound_service_account_names": "a,b", "bound_service_account_namespaces": ["team-*"], "token_ttl": "1h30m", "token_max_ttl": "1d", "token_period": 60}"#),
            ("selector", r#"{"bound_service_account_names": ["*"], "bound_service_account_namespace_selector": {"matchLabels": {"b": "2", "a": "1"}}, "token_type": "batch", "audience": "vault"}"#),
            ("cidrs", r#"{"bound_service_account_names": ["a"], "bound_service_account_namespaces": ["*"], "token_bound_cidrs": "10.0.0.1/32, 10.1.0.0/16", "token_no_default_policy": true, "alias_name_source": "serviceaccount_name"}"#),
            ("Upper", r#"{"bound_service_account_names": ["a"], "bound_service_account_namespaces": ["ns"], "policies": ["old"]}"#),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let roles = parse_roles(&data);
        assert!(!roles.has_errors(), "{:?}", roles.findings);
        let namespaces = vec![NamespaceInfo {
            name: "ns".into(),
            labels: Default::default(),
            terminating: false,
            name_label: false,
        }];
        let desired = desired_service_accounts(&roles, &namespaces);
        let observation = |vault: VaultView| Observation {
            roles: Some(Arc::new(roles.clone())),
            empty_configmap_held: false,
            role_params: vault.role_params,
            service_accounts: Some(Arc::new(Accounts::of(
                &roles.rejected,
                desired.clone(),
                &BTreeMap::new(),
            ))),
            config: DesiredConfig {
                kubernetes_host: "https://k:6443".into(),
                kubernetes_ca_cert: String::new(),
                token_reviewer_jwt: SecretString::new("jwt"),
            },
            observed: Observed {
                mount: vault.mount,
                config: vault.config,
                last_written_fingerprint: None,
                vault_roles: vault.roles,
                service_accounts: Default::default(),
            },
        };
        let empty = VaultView {
            mount: MountState::Missing,
            config: None,
            roles: BTreeMap::new(),
            role_params: None,
        };
        let first = observation(empty);
        let plan1 = first.plan("prod/eu1", "scope").unwrap();
        assert_eq!(plan1.roles.len(), 5);
        // Every planned write confirmed.
        let report = PassReport {
            outcomes: plan1
                .roles
                .iter()
                .map(|a| StepOutcome {
                    step: Step::Role(a.clone()),
                    result: Ok(Done::Applied { warnings: vec![] }),
                })
                .chain([StepOutcome {
                    step: Step::EnableMount { path: "p".into() },
                    result: Ok(Done::Applied { warnings: vec![] }),
                }])
                .collect(),
            ..Default::default()
        };
        let view = VaultView::after(first, &plan1, &report);
        let second = observation(view);
        let plan2 = second.plan("prod/eu1", "scope").unwrap();
        assert!(plan2.roles.is_empty(), "{:#?}", plan2.roles);
        assert!(!plan2.enable_mount);
    }
}
