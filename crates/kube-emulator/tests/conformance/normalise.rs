//! What legitimately differs between two servers given the same requests, replaced by
//! placeholders before the answers are compared. Each rule names a value that is unique to one
//! server by construction (random, clock-based, or counter-based), never a choice the emulator
//! could make the way Kubernetes does.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Keys whose string values are instants: creation, deletion, managedFields' `time`, token and
/// lease times, Event times.
const TIMESTAMPS: &[&str] = &[
    "creationTimestamp",
    "deletionTimestamp",
    "time",
    "expirationTimestamp",
    "firstTimestamp",
    "lastTimestamp",
    "eventTime",
    "deprecatedFirstTimestamp",
    "deprecatedLastTimestamp",
    "renewTime",
    "acquireTime",
];

/// Normalises one answer (`{code, contentType, body}`) in place. `vars` are the values this
/// server gave earlier (tokens, uids...): where one appears inside a longer string (a message,
/// an annotation) it is replaced by its variable's name.
pub fn answer(answer: &mut Value, vars: &BTreeMap<String, String>) {
    // Long values only: a short one (a resourceVersion such as "42") could match by chance.
    let mut long_vars: Vec<(&String, &String)> =
        vars.iter().filter(|(_, v)| v.len() >= 8).collect();
    // Longest first, so a value that contains another is replaced whole.
    long_vars.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    if let Some(body) = answer.get_mut("body") {
        value(body, &long_vars);
    }
}

fn value(v: &mut Value, vars: &[(&String, &String)]) {
    match v {
        Value::Object(map) => object(map, vars),
        Value::Array(items) => items.iter_mut().for_each(|i| value(i, vars)),
        Value::String(s) => *s = string(s, vars),
        _ => {}
    }
}

fn object(map: &mut Map<String, Value>, vars: &[(&String, &String)]) {
    table_ages(map);
    // Keys can hold values too: a managedFields key `k:{"uid":"..."}`.
    if map.keys().any(|k| string(k, vars) != *k) {
        let entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
        for (k, v) in entries {
            map.insert(string(&k, vars), v);
        }
    }
    let is_token_secret = map.get("type").and_then(Value::as_str)
        == Some("kubernetes.io/service-account-token")
        && map.get("kind").and_then(Value::as_str) == Some("Secret");
    let is_root_ca = map.get("kind").and_then(Value::as_str) == Some("ConfigMap")
        && map
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            == Some("kube-root-ca.crt");
    for (key, v) in map.iter_mut() {
        match (key.as_str(), &*v) {
            ("uid", Value::String(s)) if !s.is_empty() => *v = placeholder("uid"),
            ("resourceVersion", Value::String(s)) if !s.is_empty() => {
                *v = placeholder("resourceVersion")
            }
            (k, Value::String(_)) if TIMESTAMPS.contains(&k) => *v = placeholder("timestamp"),
            // TokenRequest's status.token and a token Secret's data: signed by different keys.
            ("token", Value::String(s)) if s.len() > 40 => *v = placeholder("token"),
            ("continue", Value::String(s)) if !s.is_empty() => *v = placeholder("continue"),
            _ => value(v, vars),
        }
    }
    // kube-apiserver orders managedFields by operation, then by time to the second, then by
    // manager: whether two writes fell within one second (listed by name) or not (by time)
    // depends on each server's clock. With the times replaced above, the entries are put in
    // the order of what is left (operation, manager, apiVersion); the emulator's own order is
    // checked by its unit test (`managed_fields_in_kube_apiservers_order`).
    if let Some(Value::Array(entries)) = map.get_mut("managedFields") {
        entries.sort_by_cached_key(|e| {
            ["operation", "manager", "apiVersion", "subresource"].map(|k| {
                e.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            })
        });
    }
    if is_token_secret || is_root_ca {
        // Each cluster has its own CA and signing key.
        if let Some(Value::Object(data)) = map.get_mut("data") {
            for (key, v) in data.iter_mut() {
                if key == "token" || key == "ca.crt" {
                    *v = placeholder(key);
                }
            }
        }
    }
    // A generated name keeps its prefix; the random suffix differs.
    let generate = map
        .get("generateName")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let (Some(prefix), Some(Value::String(name))) = (generate, map.get_mut("name"))
        && name.starts_with(&prefix)
        && name.len() > prefix.len()
    {
        *name = format!("{prefix}<suffix>");
    }
}

/// A Table's age cells ("5s", "2m") count from each server's own creation times.
fn table_ages(map: &mut Map<String, Value>) {
    if map.get("kind").and_then(Value::as_str) != Some("Table") {
        return;
    }
    let ages: Vec<usize> = map
        .get("columnDefinitions")
        .and_then(Value::as_array)
        .map(|columns| {
            columns
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    ["Age", "Last Seen", "First Seen", "Created At"]
                        .contains(&c["name"].as_str().unwrap_or(""))
                })
                .map(|(i, _)| i)
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Array(rows)) = map.get_mut("rows") {
        for row in rows {
            if let Some(Value::Array(cells)) = row.get_mut("cells") {
                for &i in &ages {
                    if let Some(cell @ Value::String(_)) = cells.get_mut(i) {
                        *cell = placeholder("age");
                    }
                }
            }
        }
    }
}

fn placeholder(what: &str) -> Value {
    Value::String(format!("<{what}>"))
}

fn string(s: &str, vars: &[(&String, &String)]) -> String {
    let mut out = s.to_string();
    for (name, v) in vars {
        if out.contains(v.as_str()) {
            out = out.replace(v.as_str(), &format!("${{{name}}}"));
        }
    }
    // The credential id of a bound token is its random `jti`.
    if let Some(rest) = out.strip_prefix("JTI=")
        && rest.len() >= 32
    {
        out = "JTI=<jti>".into();
    }
    // "too old resource version: 5 (117)": the numbers are each server's counters.
    if out.contains("resource version") {
        out = digits_to_n(&out);
    }
    out
}

fn digits_to_n(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_digits = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_and_variables() {
        let mut a = json!({"code": 200, "body": {
            "metadata": {"name": "x-ab12c", "generateName": "x-", "uid": "u-1",
                "resourceVersion": "7", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "message": "too old resource version: 5 (117)",
            "note": "uid 0123456789abcdef here"}});
        let vars = BTreeMap::from([("sa_uid".to_string(), "0123456789abcdef".to_string())]);
        answer(&mut a, &vars);
        assert_eq!(a["body"]["metadata"]["name"], "x-<suffix>");
        assert_eq!(a["body"]["metadata"]["uid"], "<uid>");
        assert_eq!(
            a["body"]["metadata"]["resourceVersion"],
            "<resourceVersion>"
        );
        assert_eq!(a["body"]["message"], "too old resource version: N (N)");
        assert_eq!(a["body"]["note"], "uid ${sa_uid} here");
    }
}
