//! Acceptance tests with kube-rs, a client nobody here wrote: CRUD on every served kind, errors
//! with Kubernetes' codes and reasons, server-side apply, selectors, pagination, watches (and
//! relisting after 410 Gone), reflectors, tokens, the emulated controllers, counters and faults.

#[path = "kube_rs/support.rs"]
mod support;

#[path = "kube_rs/access.rs"]
mod access;
#[path = "kube_rs/controllers.rs"]
mod controllers;
#[path = "kube_rs/crud.rs"]
mod crud;
#[path = "kube_rs/errors.rs"]
mod errors;
#[path = "kube_rs/faults.rs"]
mod faults;
#[path = "kube_rs/lists.rs"]
mod lists;
#[path = "kube_rs/tokens.rs"]
mod tokens;
#[path = "kube_rs/watch.rs"]
mod watch;
