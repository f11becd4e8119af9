//! Dropping entries from a protobuf-encoded OpenAPI v2 document (gnostic's
//! `openapi_v2.Document`, what kube-apiserver serves kubectl) at the wire level: the kept
//! entries stay byte for byte as the apiserver encoded them, so no schema of the gnostic
//! messages is needed beyond the few field numbers below.

use super::snapshot::V2Selection;

/// `Document.paths` (a `Paths`), `Document.definitions` (a `Definitions`) and
/// `Document.parameters` (a `ParameterDefinitions`).
const DOCUMENT_PATHS: u64 = 8;
const DOCUMENT_DEFINITIONS: u64 = 9;
const DOCUMENT_PARAMETERS: u64 = 10;
/// `Paths.path` (repeated `NamedPathItem`).
const PATHS_PATH: u64 = 2;
/// `Definitions.additional_properties` and `ParameterDefinitions.additional_properties`
/// (repeated `NamedSchema` / `NamedParameter`).
const NAMED_ENTRIES: u64 = 1;
/// `Named*.name`.
const NAMED_NAME: u64 = 1;

/// One field of a message: its number, and its whole encoding (key and payload).
struct Field<'a> {
    number: u64,
    /// For length-delimited fields, the payload.
    payload: Option<&'a [u8]>,
    raw: &'a [u8],
}

fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at).ok_or("truncated varint")?;
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn fields(bytes: &[u8]) -> Result<Vec<Field<'_>>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let key = varint(bytes, &mut at)?;
        let payload = match key & 7 {
            0 => {
                varint(bytes, &mut at)?;
                None
            }
            1 => {
                at += 8;
                None
            }
            5 => {
                at += 4;
                None
            }
            2 => {
                let len = usize::try_from(varint(bytes, &mut at)?).map_err(|e| e.to_string())?;
                let end = at.checked_add(len).ok_or("length overflow")?;
                let p = bytes.get(at..end).ok_or("truncated field")?;
                at = end;
                Some(p)
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        if at > bytes.len() {
            return Err("truncated field".into());
        }
        out.push(Field {
            number: key >> 3,
            payload,
            raw: &bytes[start..at],
        });
    }
    Ok(out)
}

fn put_message(out: &mut Vec<u8>, number: u64, payload: &[u8]) {
    put_varint(out, (number << 3) | 2);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// The `name` of a `Named*` entry.
fn entry_name(entry: &[u8]) -> Result<String, String> {
    for f in fields(entry)? {
        if f.number == NAMED_NAME
            && let Some(p) = f.payload
        {
            return String::from_utf8(p.to_vec()).map_err(|e| e.to_string());
        }
    }
    Err("named entry without a name".into())
}

/// `message` with its repeated `Named*` entries under `entries` kept only when `keep` says so.
fn filter_named(
    message: &[u8],
    entries: u64,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(message.len());
    for f in fields(message)? {
        match f.payload {
            Some(p) if f.number == entries => {
                if keep(&entry_name(p)?) {
                    out.extend_from_slice(f.raw);
                }
            }
            _ => out.extend_from_slice(f.raw),
        }
    }
    Ok(out)
}

/// The document with only the selected paths, definitions and parameters.
pub fn filter_document(doc: &[u8], selection: &V2Selection) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(doc.len() / 4);
    for f in fields(doc)? {
        let (keep, entries) = match f.number {
            DOCUMENT_PATHS => (&selection.paths, PATHS_PATH),
            DOCUMENT_DEFINITIONS => (&selection.definitions, NAMED_ENTRIES),
            DOCUMENT_PARAMETERS => (&selection.parameters, NAMED_ENTRIES),
            _ => {
                out.extend_from_slice(f.raw);
                continue;
            }
        };
        let payload = f
            .payload
            .ok_or("a map field that is not length-delimited")?;
        let cut = filter_named(payload, entries, &|name| keep.contains(name))?;
        put_message(&mut out, f.number, &cut);
    }
    Ok(out)
}

#[cfg(test)]
/// The names of a protobuf document's paths, definitions and parameters (to check a filtered
/// document against its JSON twin).
pub fn names(doc: &[u8]) -> Result<V2Selection, String> {
    let mut s = V2Selection::default();
    for f in fields(doc)? {
        let (target, entries) = match f.number {
            DOCUMENT_PATHS => (&mut s.paths, PATHS_PATH),
            DOCUMENT_DEFINITIONS => (&mut s.definitions, NAMED_ENTRIES),
            DOCUMENT_PARAMETERS => (&mut s.parameters, NAMED_ENTRIES),
            _ => continue,
        };
        for e in fields(f.payload.unwrap_or_default())? {
            if e.number == entries
                && let Some(p) = e.payload
            {
                target.insert(entry_name(p)?);
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_message(&mut out, NAMED_NAME, name.as_bytes());
        put_message(&mut out, 2, value);
        out
    }

    #[test]
    fn keeps_selected_entries_byte_for_byte() {
        let mut paths = Vec::new();
        put_message(&mut paths, PATHS_PATH, &named("/api/v1/a", b"x"));
        put_message(&mut paths, PATHS_PATH, &named("/api/v1/b", b"y"));
        let mut defs = Vec::new();
        put_message(&mut defs, NAMED_ENTRIES, &named("A", b"1"));
        put_message(&mut defs, NAMED_ENTRIES, &named("B", b"2"));
        let mut doc = Vec::new();
        put_message(&mut doc, 1, b"2.0");
        put_message(&mut doc, DOCUMENT_PATHS, &paths);
        put_message(&mut doc, DOCUMENT_DEFINITIONS, &defs);
        let selection = V2Selection {
            paths: ["/api/v1/b".to_string()].into(),
            definitions: ["A".to_string()].into(),
            parameters: Default::default(),
        };
        let cut = filter_document(&doc, &selection).unwrap();
        assert_eq!(names(&cut).unwrap(), selection);
        assert!(cut.len() < doc.len());
        assert!(
            cut.starts_with(&doc[..5]),
            "other fields are copied as they were"
        );
    }
}
