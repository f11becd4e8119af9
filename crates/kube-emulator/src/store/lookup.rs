//! The store as the auth module's read-only view of objects.

use serde_json::Value;

use super::Store;

/// Lets the auth module read bindings, roles, ServiceAccounts and Secrets.
impl crate::auth::ObjectLookup for Store {
    fn get(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let kind = crate::kinds::for_storage(resource)?;
        Store::get(self, kind.storage_key(), namespace.unwrap_or(""), name).map(|o| (*o).clone())
    }

    fn list(&self, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(kind) = crate::kinds::for_storage(resource) else {
            return Vec::new();
        };
        Store::list(self, kind.storage_key(), namespace)
            .into_iter()
            .map(|o| (*o).clone())
            .collect()
    }
}
