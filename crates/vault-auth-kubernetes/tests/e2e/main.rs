//! End-to-end tests: the controller and its commands against a real Vault (OpenBao, or
//! HashiCorp Vault with `VAK_TEST_VAULT=vault`) and a Kubernetes API server (the in-repo
//! emulator, or a real control plane with `VAK_TEST_CLUSTER=real`). Tests that need the
//! emulator's fault injection are named `emulator_only_*`; tests of what only OpenBao has are
//! named `openbao_only_*`, so each tier can leave them out by name (see scripts/test).

mod chart_rbac;
mod commands_cleanup;
mod commands_plan_sync;
mod commands_support;
mod controller;
mod faults;
mod guard_rails;
mod operations;
mod secrets;
mod support;
