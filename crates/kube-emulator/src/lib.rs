//! A local Kubernetes API server for tests, benchmarks and the demo.
#![forbid(unsafe_code)]

pub mod auth;
