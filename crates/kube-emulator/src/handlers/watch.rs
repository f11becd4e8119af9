//! Watch streams: newline-delimited JSON events fed from the store, with selector transitions
//! (an object that starts or stops matching arrives as ADDED or DELETED), BOOKMARK events,
//! `sendInitialEvents`, `timeoutSeconds`, and 410 Expired (as an ERROR event, the way the
//! apiserver's watch cache answers) for a resourceVersion older than the retained window.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::read::{render_object, selectors};
use super::{ApiRequest, Body, Output, error_response};
use crate::context::Shared;
use crate::kinds::Kind;
use crate::meta;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::events::frame;
use crate::store::{Event, EventType, WatchFrom};
use crate::table::{self, IncludeObject};

/// How often an idle watch that asked for bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(5);
/// How long before its timeout a watch gets its last bookmark.
const PRETIMEOUT_BOOKMARK: Duration = Duration::from_secs(2);
/// The apiserver's default watch length (--min-request-timeout) when timeoutSeconds is absent.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct WatchStream {
    shared: Arc<Shared>,
    kind: &'static Kind,
    labels: LabelSelector,
    fields: FieldSelector,
    output: Output,
    include: IncludeObject,
    queued: VecDeque<Bytes>,
    live: mpsc::Receiver<Arc<Event>>,
    deadline: Instant,
    /// When the last bookmark before the timeout is due (2 s before it, as the apiserver's
    /// watch cache sends it; none when the watch is shorter than that).
    pretimeout: Option<Instant>,
    bookmarks: bool,
    next_bookmark: Instant,
    /// Newest resourceVersion this watch is known to be complete up to.
    seen_rv: u64,
    table_columns_sent: bool,
}

impl WatchStream {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    fn encode(&mut self, event_type: &str, obj: &Value, cached: Option<&Event>) -> Bytes {
        // Events are rendered per API (conversion, zero values), not served as stored.
        if self.output == Output::Json
            && self.kind.kind != "Event"
            && let Some(event) = cached
        {
            return frame(event_type, event.encoded_object());
        }
        if self.output == Output::Metadata
            && let Some(event) = cached
        {
            return frame(event_type, event.encoded_metadata());
        }
        let rendered = match self.output {
            Output::Table => {
                let with_columns = !self.table_columns_sent;
                self.table_columns_sent = true;
                table::table(self.kind, &[obj], None, self.include, with_columns)
            }
            other => render_object(self.kind, obj, other, self.include, None),
        };
        frame(
            event_type,
            &serde_json::to_vec(&rendered).unwrap_or_default(),
        )
    }

    /// The frame (if any) this watch sends for a store event.
    fn on_event(&mut self, e: &Event) -> Option<Bytes> {
        self.seen_rv = self.seen_rv.max(e.rv);
        let now = self.matches(&e.object);
        let before = e.previous.as_deref().is_some_and(|p| self.matches(p));
        let event_type = match (e.event_type, before, now) {
            (EventType::Added, _, true) => "ADDED",
            (EventType::Modified, true, true) => "MODIFIED",
            (EventType::Modified, false, true) => "ADDED",
            (EventType::Modified, true, false) => "DELETED",
            (EventType::Deleted, _, true) => "DELETED",
            _ => return None,
        };
        // An object that stops matching goes as DELETED with its previous content (the
        // apiserver's watch cache sends the old object at the new resourceVersion).
        if let (EventType::Modified, "DELETED", Some(previous)) =
            (e.event_type, event_type, e.previous.as_deref())
        {
            let mut old = previous.clone();
            meta::metadata_mut(&mut old).insert("resourceVersion".into(), json!(e.rv.to_string()));
            return Some(self.encode(event_type, &old, None));
        }
        Some(self.encode(event_type, &e.object, Some(e)))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.kind.kind, "apiVersion": self.kind.api_version(), "metadata": metadata});
        frame("BOOKMARK", &serde_json::to_vec(&obj).unwrap_or_default())
    }

    /// A bookmark at the store's current version, if every event up to it has been handled.
    fn try_bookmark(&mut self) -> Option<Bytes> {
        let current = self.shared.store.current_rv();
        // Events are handed to watches under the store lock before the version moves on, so an
        // empty queue after reading `current` means nothing up to `current` is still pending.
        if !self.live.is_empty() {
            return None;
        }
        self.seen_rv = self.seen_rv.max(current);
        Some(self.bookmark(self.seen_rv, false))
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        if let Some(b) = self.queued.pop_front() {
            return Some(b);
        }
        loop {
            let bookmark_at = if self.bookmarks {
                self.next_bookmark
                    .min(self.pretimeout.unwrap_or(self.deadline))
                    .min(self.deadline)
            } else {
                self.deadline
            };
            tokio::select! {
                event = self.live.recv() => {
                    let event = event?;
                    if let Some(b) = self.on_event(&event) {
                        return Some(b);
                    }
                }
                _ = tokio::time::sleep_until(bookmark_at) => {
                    let now = Instant::now();
                    if now >= self.deadline {
                        return None;
                    }
                    if self.bookmarks {
                        if self.pretimeout.is_some_and(|t| now >= t) {
                            self.pretimeout = None;
                        }
                        self.next_bookmark = now + BOOKMARK_INTERVAL;
                        if let Some(b) = self.try_bookmark() {
                            return Some(b);
                        }
                    }
                }
                _ = self.shared.shutdown.cancelled() => return None,
            }
        }
    }
}

fn streaming_response(
    frames: impl futures::Stream<Item = Bytes> + Send + 'static,
) -> Response<Body> {
    let body = StreamBody::new(frames.map(|b| Ok::<_, Infallible>(Frame::data(b))));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(BodyExt::boxed_unsync(body))
        .expect("static response parts are valid")
}

fn validate(req: &ApiRequest) -> Result<WatchFrom, ApiError> {
    let q = &req.query;
    if q.send_initial_events {
        if q.resource_version_match.as_deref() != Some("NotOlderThan") {
            return Err(ApiError::new(
                422,
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        // Without bookmarks the initial events simply arrive without their closing bookmark
        // (kube-apiserver 1.37 no longer refuses it).
        return Ok(WatchFrom::InitialState);
    }
    match q.resource_version.as_deref() {
        None | Some("") | Some("0") => Ok(WatchFrom::InitialState),
        Some(rv) => rv
            .parse()
            .map(WatchFrom::Version)
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}"))),
    }
}

/// GET with `watch=true`: the event stream.
pub fn watch(shared: &Arc<Shared>, req: &ApiRequest) -> Response<Body> {
    let (labels, fields) = match selectors(req) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let from = match validate(req) {
        Ok(f) => f,
        Err(e) => return error_response(&e),
    };
    let kind = req.target.kind;
    let sub = match shared
        .store
        .watch(kind.storage_key(), req.target.namespace.as_deref(), from)
    {
        Ok(sub) => sub,
        Err(too_old) => {
            let requested = match from {
                WatchFrom::Version(rv) => rv,
                WatchFrom::InitialState => 0,
            };
            let status = ApiError::expired(requested, too_old.oldest_available).to_status();
            let error = frame("ERROR", &serde_json::to_vec(&status).unwrap_or_default());
            return streaming_response(futures::stream::iter([error]));
        }
    };
    let timeout = req
        .query
        .timeout_seconds
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let mut stream = WatchStream {
        shared: shared.clone(),
        kind,
        labels,
        fields,
        output: req.output,
        include: IncludeObject::parse(req.query.include_object.as_deref()),
        queued: VecDeque::new(),
        live: sub.live,
        deadline: Instant::now() + timeout,
        pretimeout: timeout
            .checked_sub(PRETIMEOUT_BOOKMARK)
            .filter(|d| !d.is_zero())
            .map(|d| Instant::now() + d),
        bookmarks: req.query.allow_watch_bookmarks,
        next_bookmark: Instant::now() + BOOKMARK_INTERVAL,
        seen_rv: match from {
            WatchFrom::Version(rv) => rv,
            WatchFrom::InitialState => sub.opened_at,
        },
        table_columns_sent: false,
    };
    for obj in &sub.initial {
        if stream.matches(obj) {
            let b = stream.encode("ADDED", obj, None);
            stream.queued.push_back(b);
        }
    }
    // The end of the initial events is marked only for a client that accepts bookmarks.
    if req.query.send_initial_events && req.query.allow_watch_bookmarks {
        let b = stream.bookmark(sub.opened_at, true);
        stream.queued.push_back(b);
    }
    for event in &sub.replay {
        if let Some(b) = stream.on_event(event) {
            stream.queued.push_back(b);
        }
    }
    let frames = futures::stream::unfold(stream, |mut s| async move {
        s.next_frame().await.map(|b| (b, s))
    });
    streaming_response(frames)
}
