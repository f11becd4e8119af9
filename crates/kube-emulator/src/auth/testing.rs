//! An in-memory [`ObjectLookup`] for the auth module's unit tests.
use super::ObjectLookup;
use serde_json::{Value, json};

/// Objects keyed by resource and namespace, as the core's store would hold them.
#[derive(Default)]
pub(crate) struct MemoryLookup {
    objects: Vec<(String, Option<String>, Value)>,
}

impl MemoryLookup {
    /// Adds (or replaces) an object; the namespace comes from its metadata.
    pub(crate) fn put(&mut self, resource: &str, object: Value) -> &mut Self {
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        self.remove(resource, namespace.as_deref(), &name);
        self.objects.push((resource.to_string(), namespace, object));
        self
    }

    pub(crate) fn remove(&mut self, resource: &str, namespace: Option<&str>, name: &str) {
        self.objects.retain(|(r, ns, o)| {
            !(r == resource && ns.as_deref() == namespace && o["metadata"]["name"] == name)
        });
    }

    /// A ServiceAccount with the given uid.
    pub(crate) fn service_account(&mut self, namespace: &str, name: &str, uid: &str) -> &mut Self {
        self.put(
            "serviceaccounts",
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": name, "namespace": namespace, "uid": uid}}),
        )
    }
}

impl ObjectLookup for MemoryLookup {
    fn get(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        self.objects
            .iter()
            .find(|(r, ns, o)| {
                r == resource && ns.as_deref() == namespace && o["metadata"]["name"] == name
            })
            .map(|(_, _, o)| o.clone())
    }

    fn list(&self, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(r, ns, _)| {
                r == resource && (namespace.is_none() || ns.as_deref() == namespace)
            })
            .map(|(_, _, o)| o.clone())
            .collect()
    }
}
