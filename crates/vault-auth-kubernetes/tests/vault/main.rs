//! Tests of the Vault client and of role bodies against a real Vault: OpenBao, or HashiCorp
//! Vault with `VAK_TEST_VAULT=vault`. Tests of what only OpenBao has are named `openbao_only_*`.

mod roles_roundtrip;
mod support;
mod vault_api;
mod vault_session;
mod vault_tls;
