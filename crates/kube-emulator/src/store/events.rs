//! Watch events: what the store records for every write, kept in a bounded log so watches can
//! resume from a resourceVersion, and shared (not copied) between all open watches.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::Value;

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    /// The wire name ("ADDED", ...).
    #[cfg(test)]
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to one object, at one resourceVersion.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    /// Storage key of the object's resource ("configmaps").
    pub resource: &'static str,
    pub namespace: String,
    pub event_type: EventType,
    /// The object after the change (for DELETED: its last state, at the deletion's version).
    pub object: Arc<Value>,
    /// The object before the change, so selector watches can turn a change that makes an object
    /// (stop) matching into ADDED (DELETED), as Kubernetes does.
    pub previous: Option<Arc<Value>>,
    encoded: OnceLock<Bytes>,
    encoded_metadata: OnceLock<Bytes>,
}

impl Event {
    /// A new event; the object's JSON is encoded lazily, once, for all watchers.
    pub fn new(
        rv: u64,
        resource: &'static str,
        namespace: String,
        event_type: EventType,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) -> Self {
        Event {
            rv,
            resource,
            namespace,
            event_type,
            object,
            previous,
            encoded: OnceLock::new(),
            encoded_metadata: OnceLock::new(),
        }
    }

    /// The object's JSON, encoded once.
    pub fn encoded_object(&self) -> &Bytes {
        self.encoded
            .get_or_init(|| Bytes::from(serde_json::to_vec(&*self.object).unwrap_or_default()))
    }

    /// The object as PartialObjectMetadata (what metadata-only watches receive), encoded once
    /// for all of them, as kube-apiserver's watch cache serialises an event once per format
    /// however many watchers it has.
    pub fn encoded_metadata(&self) -> &Bytes {
        self.encoded_metadata.get_or_init(|| {
            let partial = crate::table::partial_metadata(&self.object);
            Bytes::from(serde_json::to_vec(&partial).unwrap_or_default())
        })
    }
}

/// The newline-terminated wire form of a watch event around already encoded object JSON.
pub fn frame(event_type: &str, object_json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(object_json.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(event_type.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object_json);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

/// The retained window of recent events.
#[derive(Debug)]
pub struct EventLog {
    capacity: usize,
    events: VecDeque<Arc<Event>>,
    /// resourceVersion of the newest event dropped from the window (0: none dropped yet).
    evicted_through: u64,
}

/// A resume point older than the retained window.
#[derive(Debug, PartialEq, Eq)]
pub struct TooOld {
    pub oldest_available: u64,
}

impl EventLog {
    /// A log keeping the last `capacity` events.
    pub fn new(capacity: usize) -> Self {
        EventLog {
            capacity,
            events: VecDeque::with_capacity(capacity.min(65_536)),
            evicted_through: 0,
        }
    }

    /// Records an event, dropping the oldest beyond the window.
    pub fn push(&mut self, event: Arc<Event>) {
        self.events.push_back(event);
        while self.events.len() > self.capacity {
            if let Some(old) = self.events.pop_front() {
                self.evicted_through = old.rv;
            }
        }
    }

    /// Events after `rv`, or `TooOld` if some of them are no longer retained.
    pub fn since(&self, rv: u64) -> Result<Vec<Arc<Event>>, TooOld> {
        if rv < self.evicted_through {
            return Err(TooOld {
                oldest_available: self.evicted_through + 1,
            });
        }
        let start = self.events.partition_point(|e| e.rv <= rv);
        Ok(self.events.range(start..).cloned().collect())
    }

    /// Whether a list or continue token at `rv` is still inside the window.
    pub fn retains(&self, rv: u64) -> bool {
        rv >= self.evicted_through
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(rv: u64) -> Arc<Event> {
        Arc::new(Event::new(
            rv,
            "configmaps",
            "ns".into(),
            EventType::Added,
            Arc::new(json!({})),
            None,
        ))
    }

    #[test]
    fn resumes_inside_window_and_expires_outside() {
        let mut log = EventLog::new(3);
        for rv in 1..=5 {
            log.push(ev(rv));
        }
        // Kept: 3, 4, 5. Resuming from 2 needs 3.. which is all there.
        assert_eq!(
            log.since(2)
                .unwrap()
                .iter()
                .map(|e| e.rv)
                .collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert_eq!(log.since(4).unwrap().len(), 1);
        assert!(log.since(5).unwrap().is_empty());
        assert_eq!(
            log.since(1).unwrap_err(),
            TooOld {
                oldest_available: 3
            }
        );
        assert!(log.retains(2) && !log.retains(1));
    }

    #[test]
    fn frames_are_json_lines() {
        let e = Event::new(
            1,
            "configmaps",
            String::new(),
            EventType::Modified,
            Arc::new(json!({"a": 1})),
            None,
        );
        let f = frame(e.event_type.as_str(), e.encoded_object());
        let line = std::str::from_utf8(&f).unwrap();
        assert!(line.ends_with('\n'));
        let v: Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(v, json!({"type": "MODIFIED", "object": {"a": 1}}));
    }
}
