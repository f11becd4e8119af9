//! The ConfigMap's data as the controller and `validate` read it: any keys, any values. The
//! input is split into entries at 0xFF bytes (never valid UTF-8, so never part of a key or a
//! value) and each entry into key and value at its first 0xFE, so the seeds in
//! fuzz/seeds/configmap are readable role bodies.
//!
//! Beyond "never panics", what the proptest properties (tests/offline/roles_properties.rs)
//! check, on inputs they would never generate:
//! - every key gets exactly one verdict: a valid role or a rejected entry;
//! - the same data always gives the same verdicts;
//! - a valid role's body is normal (normalising it changes nothing) and compares equal to
//!   itself read back from Vault.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use vak_roles::{normalize_vault_role, parse_roles, role_changes};

fuzz_target!(|input: &[u8]| {
    let mut data = BTreeMap::new();
    for entry in input.split(|b| *b == 0xFF) {
        let (key, value) = match entry.iter().position(|b| *b == 0xFE) {
            Some(at) => (&entry[..at], &entry[at + 1..]),
            None => (entry, &b""[..]),
        };
        data.insert(
            String::from_utf8_lossy(key).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        );
    }
    let set = parse_roles(&data);
    for key in data.keys() {
        let name = key.to_lowercase();
        assert!(
            set.roles.contains_key(&name) != set.rejected.contains(&name),
            "{key:?}: valid and rejected at once, or neither"
        );
    }
    assert_eq!(
        parse_roles(&data),
        set,
        "two parses of the same data differ"
    );
    for spec in set.roles.values() {
        let once = normalize_vault_role(&spec.body);
        assert_eq!(normalize_vault_role(&once), once, "{}", spec.key);
        assert!(role_changes(&spec.body, &once).is_empty(), "{}", spec.key);
    }
});
