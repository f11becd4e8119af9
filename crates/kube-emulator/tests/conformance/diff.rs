//! Where two normalised answers differ, as JSON pointers, and the allow-list that excuses some
//! of those differences.

use serde::Deserialize;
use serde_json::Value;

/// One difference: at `pointer` (into `{code, contentType, body}`), the emulator has `emulator`
/// and the real apiserver `real` (`None`: the member is absent on that side).
#[derive(Debug)]
pub struct Difference {
    pub pointer: String,
    pub emulator: Option<Value>,
    pub real: Option<Value>,
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Every difference between `emulator` and `real`, depth first.
pub fn differences(emulator: &Value, real: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(String::new(), Some(emulator), Some(real), &mut out);
    out
}

fn walk(pointer: String, e: Option<&Value>, r: Option<&Value>, out: &mut Vec<Difference>) {
    match (e, r) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().collect();
            keys.extend(b.keys().filter(|k| !a.contains_key(*k)));
            for k in keys {
                walk(format!("{pointer}/{}", escape(k)), a.get(k), b.get(k), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                walk(format!("{pointer}/{i}"), a.get(i), b.get(i), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(Difference {
            pointer,
            emulator: a.cloned(),
            real: b.cloned(),
        }),
    }
}

/// An excused difference: every difference of request `id` at `pointer` or below it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    pub id: String,
    pub pointer: String,
    pub reason: String,
}

impl Allowed {
    pub fn covers(&self, id: &str, d: &Difference) -> bool {
        self.id == id
            && (d.pointer == self.pointer || d.pointer.starts_with(&format!("{}/", self.pointer)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_name_every_difference() {
        let e = json!({"a": 1, "b": {"c": [1, 2]}, "x/y": true});
        let r = json!({"a": 1, "b": {"c": [1, 3, 4]}, "d": null});
        let d = differences(&e, &r);
        let pointers: Vec<&str> = d.iter().map(|d| d.pointer.as_str()).collect();
        assert_eq!(pointers, ["/b/c/1", "/b/c/2", "/x~1y", "/d"]);
        assert_eq!(d[2].real, None);
        let allowed = Allowed {
            id: "r".into(),
            pointer: "/b/c".into(),
            reason: "test".into(),
        };
        assert!(allowed.covers("r", &d[0]));
        assert!(!allowed.covers("other", &d[0]));
        assert!(!allowed.covers("r", &d[2]));
    }
}
