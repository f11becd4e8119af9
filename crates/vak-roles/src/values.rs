//! Reading one parameter value into the form Vault stores and returns. Each function gives the
//! normalised value or a message saying what is wrong; the same functions normalise Vault's
//! answers, so a value written and read back compares equal.

use std::net::IpAddr;

use serde_json::Value;

use super::duration::parse_duration;
use super::fields::Kind;
use super::selector::parse_selector;

/// "a string", "a list", ... for messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The normalised value of a parameter of `kind`, or why it is invalid.
pub(crate) fn convert(kind: Kind, value: &Value) -> Result<Value, String> {
    match kind {
        Kind::List => parse_list(value).map(string_array),
        Kind::CidrList => parse_list(value)?
            .iter()
            .map(|s| canonical_cidr(s))
            .collect::<Result<Vec<_>, _>>()
            .map(string_array),
        Kind::Duration => parse_duration(value).map(Value::from),
        Kind::Int => parse_int(value).map(Value::from),
        Kind::Bool => parse_bool(value).map(Value::Bool),
        Kind::Text => match value {
            Value::String(s) => Ok(Value::String(s.clone())),
            other => Err(format!("expected a string, found {}", type_name(other))),
        },
        Kind::TokenType => parse_token_type(value).map(|t| Value::String(t.into())),
        Kind::AliasNameSource => parse_alias_name_source(value).map(|s| Value::String(s.into())),
        Kind::Selector => parse_selector(value)
            .map(|s| Value::String(s.map(|labels| labels.canonical()).unwrap_or_default())),
    }
}

fn string_array(items: Vec<String>) -> Value {
    Value::Array(items.into_iter().map(Value::String).collect())
}

/// A list: JSON array of strings or comma-separated string. Vault trims each element; an empty
/// element is an error here (Vault would store `""`, which never matches anything).
pub(crate) fn parse_list(value: &Value) -> Result<Vec<String>, String> {
    let items: Vec<&str> = match value {
        Value::String(s) if s.trim().is_empty() => return Ok(Vec::new()),
        Value::String(s) => s.split(',').collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.as_str()),
                other => Err(format!(
                    "element {} must be a string, found {}",
                    i + 1,
                    type_name(other)
                )),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(format!(
                "expected a list of strings or a comma-separated string, found {}",
                type_name(other)
            ));
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let trimmed = item.trim();
            if trimmed.is_empty() {
                Err(format!("element {} is empty", i + 1))
            } else {
                Ok(trimmed.to_string())
            }
        })
        .collect()
}

/// A CIDR block or single address in the form Vault returns it: `/32` and `/128` dropped,
/// IPv4-mapped IPv6 as IPv4, IPv6 in RFC 5952 form; a prefix with host bits is kept as written.
pub(crate) fn canonical_cidr(s: &str) -> Result<String, String> {
    let invalid = || format!("{s:?} is not an IP address or CIDR block");
    let (addr, prefix) = match s.split_once('/') {
        Some((addr, prefix)) => {
            let prefix = prefix
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| prefix.parse::<u8>().ok())
                .flatten()
                .ok_or_else(invalid)?;
            (addr, Some(prefix))
        }
        None => (s, None),
    };
    let mut ip: IpAddr = addr.parse().map_err(|_| invalid())?;
    let mut full = if ip.is_ipv4() { 32 } else { 128 };
    let mut prefix = prefix.unwrap_or(full);
    if prefix > full {
        return Err(format!(
            "{s:?}: prefix /{prefix} is longer than the address"
        ));
    }
    if let IpAddr::V6(v6) = ip
        && let Some(v4) = v6.to_ipv4_mapped()
        && prefix >= 96
    {
        ip = IpAddr::V4(v4);
        prefix -= 96;
        full = 32;
    }
    Ok(if prefix == full {
        ip.to_string()
    } else {
        format!("{ip}/{prefix}")
    })
}

/// A non-negative integer (JSON integer or decimal string; `""` is 0 as in Vault).
fn parse_int(value: &Value) -> Result<u64, String> {
    let n = match value {
        Value::Number(n) => n.as_u64().ok_or_else(|| match n.as_i64() {
            Some(_) => format!("must not be negative, found {n}"),
            None => format!("must be a whole number, found {n}"),
        })?,
        Value::String(s) if s.is_empty() => 0,
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map_err(|_| format!("{s} is too large"))?
        }
        Value::String(s) => return Err(format!("expected a whole number, found {s:?}")),
        other => {
            return Err(format!(
                "expected a whole number, found {}",
                type_name(other)
            ));
        }
    };
    if n > i64::MAX as u64 {
        return Err(format!("{n} is too large"));
    }
    Ok(n)
}

/// A boolean, or the strings Go's ParseBool reads as one in their spelled-out forms. Vault also
/// takes `1`, `"t"` and friends; those are more likely mistakes than intent, so they are errors.
fn parse_bool(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.as_str() {
            "true" | "True" | "TRUE" => Ok(true),
            "false" | "False" | "FALSE" | "" => Ok(false),
            _ => Err(format!("expected true or false, found {s:?}")),
        },
        other => Err(format!(
            "expected true or false, found {}",
            type_name(other)
        )),
    }
}

fn parse_token_type(value: &Value) -> Result<&'static str, String> {
    let Value::String(s) = value else {
        return Err(format!(
            "expected \"default\", \"service\" or \"batch\", found {}",
            type_name(value)
        ));
    };
    match s.as_str() {
        "" | "default" => Ok("default"),
        "service" => Ok("service"),
        "batch" => Ok("batch"),
        // Valid for a mount's tuning, not for a role: both OpenBao and HashiCorp Vault refuse it.
        "default-service" | "default-batch" => Err(format!(
            "{s:?} is a mount's token type, not a role's: use \"default\", \"service\" or \
             \"batch\""
        )),
        _ => Err(format!(
            "expected \"default\", \"service\" or \"batch\", found {s:?}"
        )),
    }
}

fn parse_alias_name_source(value: &Value) -> Result<&'static str, String> {
    match value.as_str() {
        Some("serviceaccount_uid") => Ok("serviceaccount_uid"),
        Some("serviceaccount_name") => Ok("serviceaccount_name"),
        _ => Err(format!(
            "expected \"serviceaccount_uid\" or \"serviceaccount_name\", found {}",
            match value {
                Value::String(s) => format!("{s:?}"),
                other => type_name(other).to_string(),
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(kind: Kind, input: Value) -> Value {
        convert(kind, &input).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    fn err(kind: Kind, input: Value) -> String {
        convert(kind, &input).expect_err(&input.to_string())
    }

    #[test]
    fn lists_like_vault() {
        let cases = [
            (json!("a,b"), json!(["a", "b"])),
            (json!(" a , b "), json!(["a", "b"])),
            (json!(["b", "a", "a"]), json!(["b", "a", "a"])),
            (json!(["A", " b"]), json!(["A", "b"])),
            (json!([]), json!([])),
            (json!(""), json!([])),
            (json!(["a,b"]), json!(["a,b"])),
        ];
        for (input, want) in cases {
            assert_eq!(ok(Kind::List, input.clone()), want, "{input}");
        }
        for (input, want) in [
            (json!("a,,b"), "element 2 is empty"),
            (json!([""]), "element 1 is empty"),
            (
                json!(["a", 1]),
                "element 2 must be a string, found a number",
            ),
            (json!(5), "found a number"),
            (json!({"a": 1}), "found an object"),
            (json!(null), "found null"),
        ] {
            let e = err(Kind::List, input.clone());
            assert!(e.contains(want), "{input}: {e}");
        }
    }

    #[test]
    fn cidrs_as_vault_returns_them() {
        // Each pair was written to OpenBao 2.7.2 and read back.
        let cases = [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.0.0.1", "10.0.0.1"),
            ("10.0.0.1/8", "10.0.0.1/8"),
            ("10.0.0.1/32", "10.0.0.1"),
            ("10.0.0.0/08", "10.0.0.0/8"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("::1/128", "::1"),
            ("2001:DB8::1/64", "2001:db8::1/64"),
            ("2001:db8:0:0:0:0:0:1/64", "2001:db8::1/64"),
            ("2001:0db8::0001", "2001:db8::1"),
            ("::ffff:10.0.0.1", "10.0.0.1"),
            ("::ffff:10.0.0.1/104", "10.0.0.1/8"),
            ("0:0:0:0:0:0:0:0/0", "::/0"),
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical_cidr(input).as_deref(), Ok(want), "{input}");
        }
        for bad in [
            "bad",
            "010.0.0.1",
            "10.0.0.0/33",
            "/tmp/sock",
            "10.0.0.0/ 8",
            "1.2.3.4/-1",
        ] {
            assert!(canonical_cidr(bad).is_err(), "{bad}");
        }
        assert_eq!(
            ok(Kind::CidrList, json!("10.0.0.0/8, 192.168.1.1/32")),
            json!(["10.0.0.0/8", "192.168.1.1"])
        );
    }

    #[test]
    fn scalars() {
        assert_eq!(ok(Kind::Int, json!(5)), json!(5));
        assert_eq!(ok(Kind::Int, json!("5")), json!(5));
        assert_eq!(ok(Kind::Int, json!("")), json!(0));
        for bad in [
            json!(-1),
            json!(5.0),
            json!("5.0"),
            json!(" 5"),
            json!(true),
            json!("abc"),
        ] {
            err(Kind::Int, bad);
        }
        for (input, want) in [
            (json!(true), true),
            (json!("true"), true),
            (json!("True"), true),
            (json!(false), false),
            (json!("FALSE"), false),
            (json!(""), false),
        ] {
            assert_eq!(ok(Kind::Bool, input), Value::Bool(want));
        }
        for bad in [json!(1), json!("1"), json!("t"), json!("yes"), json!(null)] {
            err(Kind::Bool, bad);
        }
        assert_eq!(ok(Kind::Text, json!("aud")), json!("aud"));
        err(Kind::Text, json!(5));
        err(Kind::Text, json!(["a"]));
    }

    #[test]
    fn enums() {
        for (input, want) in [("", "default"), ("default", "default"), ("batch", "batch")] {
            assert_eq!(ok(Kind::TokenType, json!(input)), json!(want));
        }
        assert!(err(Kind::TokenType, json!("default-service")).contains("not a role's"));
        for bad in [json!("Service"), json!("foo"), json!(5)] {
            err(Kind::TokenType, bad);
        }
        assert_eq!(
            ok(Kind::AliasNameSource, json!("serviceaccount_name")),
            json!("serviceaccount_name")
        );
        for bad in [json!(""), json!("foo"), json!(null)] {
            err(Kind::AliasNameSource, bad);
        }
    }
}
