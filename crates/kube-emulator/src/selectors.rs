//! Label and field selectors, parsed from the query string and matched against stored objects.

use serde_json::Value;

use crate::kinds::{Kind, Storage};
use crate::meta;
use crate::validation::{is_label_value, is_qualified_name};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Greater(i64),
    Less(i64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed `labelSelector`. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

/// Splits on commas that are not inside parentheses ("a in (x,y),b" has two requirements).
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn check_key(key: &str) -> Result<String, String> {
    if is_qualified_name(key) {
        Ok(key.to_string())
    } else {
        Err(format!(
            "unable to parse requirement: key: Invalid value: {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

fn check_value(value: &str) -> Result<String, String> {
    if is_label_value(value) {
        Ok(value.to_string())
    } else {
        Err(format!(
            "unable to parse requirement: values[0]: Invalid value: {value:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

fn parse_set(key: &str, rest: &str) -> Result<Vec<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("found '{rest}', expected: '(' for the values of {key}"))?;
    inner.split(',').map(|v| check_value(v.trim())).collect()
}

/// Splits "key in (a,b)" at a set operator word surrounded by whitespace.
fn split_set_op<'a>(req: &'a str, word: &str) -> Option<(&'a str, &'a str)> {
    let mut search = 0;
    while let Some(pos) = req[search..].find(word) {
        let at = search + pos;
        let before = req[..at].chars().last();
        let after = req[at + word.len()..].chars().next();
        if before.is_some_and(char::is_whitespace)
            && after.is_some_and(|c| c.is_whitespace() || c == '(')
        {
            return Some((req[..at].trim(), &req[at + word.len()..]));
        }
        search = at + word.len();
    }
    None
}

fn parse_requirement(req: &str) -> Result<Requirement, String> {
    let req = req.trim();
    if let Some(key) = req.strip_prefix('!') {
        return Ok(Requirement {
            key: check_key(key.trim())?,
            op: Op::NotExists,
        });
    }
    if let Some((key, rest)) = split_set_op(req, "notin") {
        return Ok(Requirement {
            key: check_key(key)?,
            op: Op::NotIn(parse_set(key, rest)?),
        });
    }
    if let Some((key, rest)) = split_set_op(req, "in") {
        return Ok(Requirement {
            key: check_key(key)?,
            op: Op::In(parse_set(key, rest)?),
        });
    }
    for (sym, make) in [
        ("!=", Op::NotEquals as fn(String) -> Op),
        ("==", Op::Equals as fn(String) -> Op),
        ("=", Op::Equals as fn(String) -> Op),
    ] {
        if let Some((key, value)) = req.split_once(sym) {
            return Ok(Requirement {
                key: check_key(key.trim())?,
                op: make(check_value(value.trim())?),
            });
        }
    }
    for (sym, greater) in [(">", true), ("<", false)] {
        if let Some((key, value)) = req.split_once(sym) {
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| format!("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {:?}", value.trim()))?;
            let op = if greater { Op::Greater(n) } else { Op::Less(n) };
            return Ok(Requirement {
                key: check_key(key.trim())?,
                op,
            });
        }
    }
    Ok(Requirement {
        key: check_key(req)?,
        op: Op::Exists,
    })
}

impl LabelSelector {
    /// Parses a selector string; the message of `Err` is what a 400 reports.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        let requirements = split_top_level(s)
            .into_iter()
            .map(parse_requirement)
            .collect::<Result<_, _>>()?;
        Ok(LabelSelector { requirements })
    }

    /// Whether `obj`'s labels satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let value = meta::label(obj, &r.key);
            match &r.op {
                Op::Equals(v) => value == Some(v.as_str()),
                Op::NotEquals(v) => value != Some(v.as_str()),
                Op::In(set) => value.is_some_and(|l| set.iter().any(|s| s == l)),
                Op::NotIn(set) => !value.is_some_and(|l| set.iter().any(|s| s == l)),
                Op::Exists => value.is_some(),
                Op::NotExists => value.is_none(),
                Op::Greater(n) => value
                    .and_then(|l| l.parse::<i64>().ok())
                    .is_some_and(|l| l > *n),
                Op::Less(n) => value
                    .and_then(|l| l.parse::<i64>().ok())
                    .is_some_and(|l| l < *n),
            }
        })
    }
}

/// A parsed `fieldSelector` (`=`, `==`, `!=` on the fields a kind supports).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses a selector for `kind`; unsupported fields are refused as Kubernetes refuses them.
    pub fn parse(s: &str, kind: &Kind) -> Result<Self, String> {
        let mut terms = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                ));
            };
            let field = field.trim();
            // events.k8s.io/v1 selects on the stored core/v1 Events under their v1 names.
            let field = match kind.storage {
                Storage::EventsV1 => events_v1_field(field)
                    .ok_or_else(|| format!("field label not supported: {field}"))?,
                _ => field,
            };
            let supported = field == "metadata.name"
                || (field == "metadata.namespace" && kind.namespaced)
                || kind.extra_fields.contains(&field);
            if !supported {
                return Err(unknown_field(field, kind));
            }
            // An Event's `source` field is the component of its source.
            let field = if field == "source" {
                "source.component"
            } else {
                field
            };
            terms.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector { terms })
    }

    /// Whether `obj` satisfies every term (absent fields compare as "").
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(field, equal, want)| {
            let have = meta::path(obj, field).and_then(Value::as_str).unwrap_or("");
            (have == want) == *equal
        })
    }
}

/// kube-apiserver's answer to a field a kind cannot select on: kinds with their own field
/// labels (Secrets, Events...) refuse it in their conversion, the others generically.
fn unknown_field(field: &str, kind: &Kind) -> String {
    if !kind.extra_fields.is_empty() {
        return format!("field label not supported: {field}");
    }
    let mut known = vec!["metadata.name"];
    if kind.namespaced {
        known.push("metadata.namespace");
    }
    known.extend(kind.extra_fields);
    let known: Vec<String> = known.iter().map(|f| format!("{f:?}")).collect();
    format!(
        "{field:?} is not a known field selector: only {}",
        known.join(", ")
    )
}

/// The core/v1 Event field an events.k8s.io/v1 field selector names (Kubernetes' field label
/// conversion for events.k8s.io/v1).
fn events_v1_field(field: &str) -> Option<&str> {
    Some(match field {
        "metadata.name" | "metadata.namespace" | "reason" | "type" => field,
        "reportingController" => "reportingComponent",
        "regarding.kind" => "involvedObject.kind",
        "regarding.namespace" => "involvedObject.namespace",
        "regarding.name" => "involvedObject.name",
        "regarding.uid" => "involvedObject.uid",
        "regarding.apiVersion" => "involvedObject.apiVersion",
        "regarding.resourceVersion" => "involvedObject.resourceVersion",
        "regarding.fieldPath" => "involvedObject.fieldPath",
        _ => return None,
    })
}

/// The name a field selector pins, read as kube-apiserver reads it when it derives a list's or
/// watch's request attributes for authorization (apimachinery's `fields.ParseSelector(s)
/// .RequiresExactMatch("metadata.name")`): the value of a `metadata.name=` or `metadata.name==`
/// term. Parsed as apimachinery parses any field selector, whatever the kind: terms split at
/// unescaped commas and sorted, each split at its first operator (`!=`, `==`, `=`), nothing
/// trimmed, values unescaped (`\\`, `\,`, `\=`; any other escape, or a bare `,` or `=`, fails).
/// A selector that fails to parse pins nothing; of several name terms the first in sorted
/// order counts, as in Kubernetes.
pub fn pinned_name(selector: &str) -> Option<String> {
    let mut terms = split_unescaped_commas(selector);
    terms.sort_unstable();
    let mut pinned = None;
    for term in terms.into_iter().filter(|t| !t.is_empty()) {
        let (field, op, value) = split_term(term)?;
        let value = unescape_value(value)?;
        if pinned.is_none() && field == "metadata.name" && op != "!=" {
            pinned = Some(value);
        }
    }
    pinned
}

fn split_unescaped_commas(s: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at the first position where an operator starts.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    term.char_indices().find_map(|(i, _)| {
        ["!=", "==", "="]
            .into_iter()
            .find(|op| term[i..].starts_with(op))
            .map(|op| (&term[..i], op, &term[i + op.len()..]))
    })
}

fn unescape_value(value: &str) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    let mut escaped = false;
    for c in value.chars() {
        match c {
            '\\' | ',' | '=' if escaped => {
                out.push(c);
                escaped = false;
            }
            _ if escaped => return None,
            '\\' => escaped = true,
            ',' | '=' => return None,
            _ => out.push(c),
        }
    }
    (!escaped).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "n1", "namespace": "ns", "labels": labels}, "type": "Opaque"})
    }

    #[test]
    fn equality_and_sets() {
        let o = obj(json!({"app": "web", "tier": "front", "n": "5"}));
        for (sel, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web, db)", true),
            ("app notin (web,db)", false),
            ("tier,app", true),
            ("!tier", false),
            ("!missing", true),
            ("missing!=x", true),
            ("missing notin (x)", true),
            ("app in (db),tier=front", false),
            ("n>4,n<6", true),
            ("", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&o),
                want,
                "{sel}"
            );
        }
    }

    #[test]
    fn bad_selectors_are_refused() {
        assert!(LabelSelector::parse("a in x").is_err());
        assert!(LabelSelector::parse("bad key=x").is_err());
        assert!(LabelSelector::parse("a=bad value").is_err());
        assert!(LabelSelector::parse("n>x").is_err());
    }

    #[test]
    fn field_selectors_per_kind() {
        let secrets = kinds::find("", "v1", "secrets").unwrap();
        let cms = kinds::find("", "v1", "configmaps").unwrap();
        let o = obj(json!({}));
        let s =
            FieldSelector::parse("metadata.name=n1,metadata.namespace!=other", secrets).unwrap();
        assert!(s.matches(&o));
        assert!(
            FieldSelector::parse("type=Opaque", secrets)
                .unwrap()
                .matches(&o)
        );
        assert_eq!(
            FieldSelector::parse("type=Opaque", cms).unwrap_err(),
            r#""type" is not a known field selector: only "metadata.name", "metadata.namespace""#
        );
        assert!(
            !FieldSelector::parse("metadata.name==other", cms)
                .unwrap()
                .matches(&o)
        );
    }

    #[test]
    fn pinned_names_follow_apimachinery() {
        for (selector, want) in [
            ("metadata.name=x", Some("x")),
            ("metadata.name==x", Some("x")),
            ("metadata.name!=x", None),
            ("metadata.namespace=x", None),
            ("", None),
            (",metadata.name=x,", Some("x")),
            // Any exact name term of a conjunction pins, as RequiresExactMatch finds it.
            ("metadata.namespace=team,metadata.name=x", Some("x")),
            // Terms are sorted before they are read: "metadata.name=a" sorts first.
            ("metadata.name=b,metadata.name=a", Some("a")),
            // Nothing is trimmed: the field is "metadata.name " here.
            ("metadata.name =x", None),
            ("metadata.name= x", Some(" x")),
            // Escapes; a bare '=' or ',' in a value, or an unknown escape, fails the parse.
            (r"metadata.name=a\,b", Some("a,b")),
            (r"metadata.name=a\=b\\", Some(r"a=b\")),
            ("metadata.name=a=b", None),
            (r"metadata.name=a\x", None),
            (r"metadata.name=a\", None),
            // One term without an operator fails the whole selector.
            ("metadata.name=x,bogus", None),
        ] {
            assert_eq!(pinned_name(selector).as_deref(), want, "{selector:?}");
        }
    }
}
