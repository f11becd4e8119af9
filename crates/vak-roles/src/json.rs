//! Reading an entry's JSON text into an object, with positions in every error and duplicate
//! parameters refused (serde_json would silently keep the last one, hiding an edit).

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::values::type_name;

/// Parses `text` as a JSON object; the error says where and what went wrong.
pub(crate) fn parse_object(text: &str) -> Result<Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Err("empty value: expected a JSON object with the role's parameters".into());
    }
    // First pass: syntax and shape, so "not an object" is told apart from a syntax error.
    let value: Value = serde_json::from_str(text).map_err(|e| located(&e))?;
    if !value.is_object() {
        return Err(format!(
            "expected a JSON object with the role's parameters, found {}",
            type_name(&value)
        ));
    }
    // Second pass: the same text, refusing duplicate keys.
    serde_json::from_str::<UniqueObject>(text)
        .map(|o| o.0)
        .map_err(|e| located(&e))
}

/// `invalid JSON at line L, column C: <what>`.
fn located(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let what = full.strip_suffix(&suffix).unwrap_or(&full);
    format!(
        "invalid JSON at line {}, column {}: {what}",
        e.line(),
        e.column()
    )
}

struct UniqueObject(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = UniqueObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueObject, A::Error> {
        let mut map = Map::new();
        while let Some((key, value)) = access.next_entry::<String, Value>()? {
            if map.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "parameter {key:?} is given twice"
                )));
            }
            map.insert(key, value);
        }
        Ok(UniqueObject(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_keep_their_order() {
        let obj = parse_object(r#"{"b": 1, "a": [2]}"#).unwrap();
        assert_eq!(obj.keys().collect::<Vec<_>>(), ["b", "a"]);
    }

    #[test]
    fn errors_say_where() {
        let cases = [
            ("", "empty value"),
            ("  \n", "empty value"),
            (
                "{\n  \"a\": 1,\n}",
                "invalid JSON at line 3, column 1: trailing comma",
            ),
            (
                "{\"a\": [1, 2}",
                "invalid JSON at line 1, column 12: expected `,` or `]`",
            ),
            (
                "{\"a\": 1} x",
                "invalid JSON at line 1, column 10: trailing characters",
            ),
            (
                "[1]",
                "expected a JSON object with the role's parameters, found a list",
            ),
            (
                "\"x\"",
                "expected a JSON object with the role's parameters, found a string",
            ),
            (
                "{\"a\": 1,\n \"a\": 2}",
                "invalid JSON at line 2, column 8: parameter \"a\" is given twice",
            ),
        ];
        for (text, want) in cases {
            let err = parse_object(text).unwrap_err();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}
