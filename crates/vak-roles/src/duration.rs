//! Durations as Vault reads them (`parseutil.ParseDurationSecond`), checked with the real OpenBao:
//! integer seconds (`90`, `"90"`), whole days (`"1d"`), or a Go duration string (`"1h30m"`,
//! `"1.5h"`, `"90s"`). Stricter than Vault where Vault silently loses information: a duration
//! that is not a whole number of seconds (Vault truncates `"1500ms"` to 1) is an error.

use serde_json::Value;

/// Longest duration Vault can hold: it multiplies seconds into Go's int64 nanoseconds.
pub(crate) const MAX_SECONDS: u64 = i64::MAX as u64 / NANOS_PER_SECOND;

const NANOS_PER_SECOND: u64 = 1_000_000_000;
const SECONDS_PER_DAY: u64 = 86_400;

/// Reads a duration parameter; `Ok(seconds)` or a message saying what is wrong.
pub(crate) fn parse_duration(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(n) => match n.as_u64() {
            Some(seconds) => check_range(seconds, &n.to_string()),
            None if n.as_i64().is_some() => Err(format!("must not be negative, found {n}")),
            None => Err(format!(
                "must be whole seconds or a duration string such as \"1h30m\", found {n}"
            )),
        },
        Value::String(s) => parse_duration_str(s),
        other => Err(format!(
            "expected seconds or a duration string such as \"1h30m\", found {}",
            super::values::type_name(other)
        )),
    }
}

/// Seconds as a person writes them, in the largest units that are exact: `1h`, `1h30m`,
/// `90s` -> `1m30s`, `86400` -> `24h` (Go's duration syntax, which Vault reads back).
pub fn format_duration(seconds: u64) -> String {
    if seconds == 0 {
        return "0s".to_string();
    }
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if s > 0 {
        out += &format!("{s}s");
    }
    out
}

/// Reads a duration string the way Vault does.
pub(crate) fn parse_duration_str(s: &str) -> Result<u64, String> {
    if s.is_empty() {
        return Ok(0);
    }
    if s.starts_with('-') {
        return Err(format!("must not be negative, found {s:?}"));
    }
    if let Some(days) = s.strip_suffix('d') {
        let days = parse_digits(days).ok_or_else(|| {
            format!("invalid duration {s:?}: days must be a whole number such as \"7d\"")
        })?;
        return days
            .checked_mul(SECONDS_PER_DAY)
            .ok_or_else(|| too_long(s))
            .and_then(|seconds| check_range(seconds, s));
    }
    if let Some(seconds) = parse_digits(s) {
        return check_range(seconds, s);
    }
    let nanos = parse_go_duration(s).map_err(|why| format!("invalid duration {s:?}: {why}"))?;
    if !nanos.is_multiple_of(u128::from(NANOS_PER_SECOND)) {
        return Err(format!(
            "invalid duration {s:?}: not a whole number of seconds (Vault would truncate it)"
        ));
    }
    let seconds = u64::try_from(nanos / u128::from(NANOS_PER_SECOND)).map_err(|_| too_long(s))?;
    check_range(seconds, s)
}

fn check_range(seconds: u64, shown: &str) -> Result<u64, String> {
    if seconds > MAX_SECONDS {
        Err(too_long(shown))
    } else {
        Ok(seconds)
    }
}

fn too_long(shown: &str) -> String {
    format!("duration {shown} is too long (at most {MAX_SECONDS} seconds)")
}

/// ASCII digits only (an optional `+` as Go's ParseInt allows), as a number.
fn parse_digits(s: &str) -> Option<u64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Too many digits to fit is still a number: report it as too long, not as malformed.
    Some(digits.parse().unwrap_or(u64::MAX))
}

/// Go's `time.ParseDuration` grammar (`[+]?([0-9]*(\.[0-9]*)?unit)+`), in nanoseconds.
fn parse_go_duration(s: &str) -> Result<u128, String> {
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err("empty".into());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(f) => {
                let len = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(len)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err("expected a number before each unit".into());
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let scale = unit_nanos(unit).ok_or_else(|| {
            if unit.is_empty() {
                "missing unit (use s, m, h or d)".to_string()
            } else {
                format!("unknown unit {unit:?} (use ns, us, ms, s, m, h or d)")
            }
        })?;
        total = total
            .checked_add(component_nanos(int_part, frac_part, scale)?)
            .ok_or("too long")?;
        rest = after;
    }
    Ok(total)
}

/// `int.frac` times `scale` nanoseconds, exactly.
fn component_nanos(int_part: &str, frac_part: &str, scale: u128) -> Result<u128, String> {
    let int: u128 = if int_part.is_empty() {
        0
    } else {
        int_part
            .parse()
            .map_err(|_| "number too large".to_string())?
    };
    let mut nanos = int.checked_mul(scale).ok_or("number too large")?;
    // Digits beyond nanosecond precision cannot matter to a whole-second check unless they are
    // non-zero, in which case the value is not whole seconds anyway: keep the first 30.
    let frac_digits = &frac_part[..frac_part.len().min(30)];
    if !frac_digits.is_empty() {
        let frac: u128 = frac_digits
            .parse()
            .map_err(|_| "bad fraction".to_string())?;
        let denom = 10u128.pow(frac_digits.len() as u32);
        let scaled = frac * scale;
        if !scaled.is_multiple_of(denom) {
            // Not whole nanoseconds: certainly not whole seconds; keep it visible as such.
            return Ok(nanos + 1);
        }
        nanos += scaled / denom;
    }
    Ok(nanos)
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_the_largest_exact_units_and_reads_back() {
        for (seconds, text) in [
            (0, "0s"),
            (90, "1m30s"),
            (3600, "1h"),
            (5400, "1h30m"),
            (86_400, "24h"),
            (3661, "1h1m1s"),
        ] {
            assert_eq!(format_duration(seconds), text);
            assert_eq!(parse_duration_str(text), Ok(seconds), "{text}");
        }
    }
    use serde_json::json;

    #[test]
    fn accepted_like_vault() {
        // Each value was written to OpenBao 2.7.2 as token_period and read back.
        let cases = [
            (json!(90), 90),
            (json!("90"), 90),
            (json!("90s"), 90),
            (json!("1h30m"), 5400),
            (json!("1.5h"), 5400),
            (json!("1d"), 86400),
            (json!("+5s"), 5),
            (json!("1m1m"), 120),
            (json!(""), 0),
            (json!("0"), 0),
            (json!(0), 0),
            (json!("2000ms"), 2),
            (json!(".5m"), 30),
            (json!("2562047h"), 9_223_369_200),
            (json!(9_223_372_036u64), 9_223_372_036),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(&input), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejected_with_reason() {
        let cases = [
            (json!("2w"), "unknown unit \"w\""),
            (json!("1y"), "unknown unit \"y\""),
            (json!("1D"), "unknown unit \"D\""),
            (json!("90.5"), "missing unit"),
            (json!(90.5), "must be whole seconds"),
            (json!("-5s"), "must not be negative"),
            (json!(-5), "must not be negative"),
            (json!("1500ms"), "not a whole number of seconds"),
            (json!("1ms"), "not a whole number of seconds"),
            (json!("1h 30m"), "unknown unit \"h \""),
            (json!(" 90s"), "invalid duration"),
            (json!("3m1d"), "days must be a whole number"),
            (json!("1e3"), "unknown unit \"e\""),
            (json!("2562048h"), "too long"),
            (json!(9_223_372_037u64), "too long"),
            (json!("99999999999999999999999"), "too long"),
            (json!(true), "found a boolean"),
            (json!(null), "found null"),
            (json!("."), "expected a number"),
        ];
        for (input, want) in cases {
            let err = parse_duration(&input).expect_err(&input.to_string());
            assert!(err.contains(want), "{input}: {err}");
        }
    }
}
