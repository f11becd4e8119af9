//! Request counters by (verb, resource, code), so tests and benchmarks can assert how a client
//! used the API (e.g. "no writes on a converged reconcile").

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// The live counters of a running emulator.
#[derive(Default)]
pub(crate) struct Registry {
    map: Mutex<BTreeMap<(String, String, u16), u64>>,
}

impl Registry {
    /// Counts one answered request.
    pub fn record(&self, verb: &str, resource: &str, code: u16) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((verb.to_string(), resource.to_string(), code))
            .or_insert(0) += 1;
    }

    /// A copy of the counters now.
    pub fn snapshot(&self) -> Counters {
        Counters {
            map: self.map.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    /// Zeroes every counter.
    pub fn reset(&self) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Requests by (verb, resource, code). Verbs as Kubernetes' audit log names them: get, list,
/// watch, create, update, patch, delete, deletecollection. Resource includes the subresource as
/// "serviceaccounts/token"; non-resource requests count under their path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    map: BTreeMap<(String, String, u16), u64>,
}

impl Counters {
    /// Counters from (verb, resource, code) -> count, e.g. read from a real apiserver's audit
    /// log, so tests assert on both servers the same way.
    pub fn from_entries(map: BTreeMap<(String, String, u16), u64>) -> Counters {
        Counters { map }
    }

    /// Requests with this verb on this resource, all response codes.
    pub fn get(&self, verb: &str, resource: &str) -> u64 {
        self.map
            .iter()
            .filter(|((v, r, _), _)| v == verb && r == resource)
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests with this verb on this resource answered with `code`.
    pub fn get_code(&self, verb: &str, resource: &str, code: u16) -> u64 {
        self.map
            .get(&(verb.to_string(), resource.to_string(), code))
            .copied()
            .unwrap_or(0)
    }

    /// All create, update, patch, delete and deletecollection requests, any resource or code.
    pub fn writes(&self) -> u64 {
        self.map
            .iter()
            .filter(|((v, _, _), _)| WRITE_VERBS.contains(&v.as_str()))
            .map(|(_, n)| n)
            .sum()
    }

    /// Every (verb, resource, code, count), sorted.
    pub fn entries(&self) -> Vec<(String, String, u16, u64)> {
        self.map
            .iter()
            .map(|((v, r, c), n)| (v.clone(), r.clone(), *c, *n))
            .collect()
    }

    /// The JSON list `GET /emulator/counters` answers.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.entries()
                .into_iter()
                .map(|(verb, resource, code, count)| {
                    json!({"verb": verb, "resource": resource, "code": code, "count": count})
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_verb_resource_and_code() {
        let r = Registry::default();
        r.record("get", "configmaps", 200);
        r.record("get", "configmaps", 404);
        r.record("create", "serviceaccounts/token", 201);
        r.record("patch", "secrets", 200);
        r.record("list", "/api", 200);
        let c = r.snapshot();
        assert_eq!(c.get("get", "configmaps"), 2);
        assert_eq!(c.get_code("get", "configmaps", 404), 1);
        assert_eq!(c.writes(), 2);
        assert_eq!(c.entries().len(), 5);
        assert_eq!(c.to_json()[0]["verb"], "create");
        r.reset();
        assert_eq!(r.snapshot(), Counters::default());
    }
}
