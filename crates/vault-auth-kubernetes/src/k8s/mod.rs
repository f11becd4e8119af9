//! Kubernetes side: connecting, the cluster snapshot, the token reviewer, managed
//! ServiceAccounts and Events.

pub mod cluster;
pub mod compact_store;
pub mod events;
pub mod interner;
pub mod request_metrics;
pub mod reviewer;
pub mod second_writer;
pub mod service_accounts;
pub mod snapshot;
