//! Long descriptions and examples of the subcommands, shown by `--help` (kept out of `cli.rs`
//! so the flag definitions stay readable).

/// Below the command list of `--help`.
pub const TOP_LEVEL_NOTES: &str = "\
Without a command the controller runs, as the original tool did:
  vault-auth-kubernetes --vault-host URL --vault-mount MOUNT --vault-role-id ID --vault-secret-id SECRET
Every setting has an environment variable (VAK_VAULT_HOST, ...); `vault-auth-kubernetes run --help`
lists them all, and each command's --help lists the ones it uses.";

/// `validate --help`: what it reads and its exit statuses.
pub const VALIDATE_ABOUT: &str = "\
    Check vault-auth-roles ConfigMap manifests offline, with exactly the controller's\n\
    validation.\n\
    \n\
    Reads YAML files (several documents per file allowed, `-` for stdin), picks the ConfigMaps\n\
    named vault-auth-roles and checks every entry. Needs no cluster and no Vault.\n\
    \n\
    Exit status: 0 when every entry is valid (warnings allowed), 1 when an entry is invalid or\n\
    a file is not YAML, 2 when a file cannot be read.";

/// `plan --help`: what it reads, that it writes nothing, its exit statuses.
pub const PLAN_ABOUT: &str = "\
    Show what a sync would change in Vault and Kubernetes, without changing anything.\n\
    \n\
    Reads the cluster and Vault with the same settings as the controller. Writes nothing:\n\
    objects a sync would create (the reviewer's ServiceAccount, binding and token Secret) are\n\
    only listed. With -f FILE (or -f - for stdin) it plans the vault-auth-roles ConfigMap of\n\
    those manifests instead of the cluster's: what applying them would change.\n\
    \n\
    Exit status (like terraform plan -detailed-exitcode): 0 when nothing would change, 2 when\n\
    changes are pending, 1 on error or when an entry is invalid (the summary says which).";

/// `sync --help`: one pass and its exit statuses.
pub const SYNC_ABOUT: &str = "\
    Run one full sync and exit, for CronJobs and CI.\n\
    \n\
    Reads the cluster and Vault, applies every change (as the controller does on each pass)\n\
    and prints a summary.\n\
    \n\
    Exit status: 0 when all of the ConfigMap was applied, 1 when a step failed, something was\n\
    not applied (an invalid entry, a role Vault refused, an object of the tool's name that is\n\
    someone else's, an emptied ConfigMap held back) or Vault or Kubernetes could not be\n\
    reached.";

/// `cleanup --help`: what counts as the tool's, the confirmation, exit statuses.
pub const CLEANUP_ABOUT: &str = "\
    Remove what this tool created in Vault and Kubernetes.\n\
    \n\
    Removes the managed ServiceAccounts (annotation vak-managed: \"true\"), the Vault roles of\n\
    the mount, the reviewer's ServiceAccount, token Secret and ClusterRoleBinding, the\n\
    namespace-reader ClusterRole and ClusterRoleBinding (only objects labelled\n\
    app.kubernetes.io/managed-by=vault-auth-kubernetes), the status annotations on the\n\
    ConfigMap, and with --delete-mount the auth method itself. Nothing without the tool's\n\
    annotation or label is touched.\n\
    \n\
    Stop the controller first (helm uninstall), or it re-creates what was removed. Lists what\n\
    it will remove and asks for confirmation when stdin is a terminal; refuses without a\n\
    terminal unless --yes is given.\n\
    \n\
    Exit status: 0 when everything listed was removed (or nothing was asked for), 1 on refusal\n\
    or when a removal failed.";

/// Examples below the options.
pub const RUN_EXAMPLES: &str = "\
Examples:
  # In the cluster (the Helm chart does this), settings from the environment:
  VAK_VAULT_HOST=https://vault.example.com:8200 VAK_VAULT_MOUNT=staging/backend \\
    VAK_VAULT_ROLE_ID=... VAK_VAULT_SECRET_ID=... vault-auth-kubernetes run

  # Outside the cluster, against the current kubeconfig:
  vault-auth-kubernetes --kubeconfig ~/.kube/config --namespace vault-auth run";

/// Examples below the options.
pub const VALIDATE_EXAMPLES: &str = "\
Examples:
  # Check the ConfigMap manifest before committing it:
  vault-auth-kubernetes validate deploy/vault-auth-roles.yaml

  # Check what Helm would render, from stdin, for a CI step:
  helm template charts/vault-auth-kubernetes -f values.yaml | vault-auth-kubernetes validate -

  # Machine-readable report:
  vault-auth-kubernetes validate --output json roles/*.yaml";

/// Examples below the options.
pub const PLAN_EXAMPLES: &str = "\
Examples:
  # What would the controller change? (same settings as the controller)
  vault-auth-kubernetes --kubeconfig ~/.kube/config --namespace vault-auth plan

  # In a pull request: what would merging this ConfigMap change?
  vault-auth-kubernetes plan -f deploy/vault-auth-roles.yaml
  helm template my-release charts/vault-auth-kubernetes -f values.yaml | vault-auth-kubernetes plan -f -

  # In CI: fail the job on errors and invalid entries (1), flag pending changes (2):
  vault-auth-kubernetes plan -f roles.yaml --output json > plan.json; status=$?

Exit status: 0 no changes, 2 changes pending, 1 error or invalid entries.";

/// Examples below the options.
pub const SYNC_EXAMPLES: &str = "\
Examples:
  # One pass from a CronJob or a CI job:
  vault-auth-kubernetes sync --once

  # Preview first (plan exits 2 when changes are pending), then apply:
  vault-auth-kubernetes plan; vault-auth-kubernetes sync --once";

/// Examples below the options.
pub const CLEANUP_EXAMPLES: &str = "\
Examples:
  # See what would be removed:
  vault-auth-kubernetes cleanup --dry-run

  # Decommission a cluster: remove everything, the auth mount too, without asking:
  vault-auth-kubernetes cleanup --delete-mount --yes";
