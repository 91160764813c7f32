//! A `tracing` subscriber that captures what the pool logs, for tests that
//! assert on its events and spans: [`capture`] installs it on the current
//! thread (a current-thread runtime's tasks run there) until the returned
//! guard drops.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::DefaultGuard;
use tracing::{Event, Level, Metadata, Subscriber};

/// One event: its level, its message and its other fields (each as its
/// `Debug`, or its `Display` for a `%` field), and the spans it was in,
/// innermost last.
#[derive(Debug, Clone)]
pub struct Logged {
    pub level: Level,
    pub message: String,
    pub fields: BTreeMap<String, String>,
    pub spans: Vec<Span>,
}

/// A span: its name, level and fields (as recorded so far).
#[derive(Debug, Clone)]
pub struct Span {
    pub name: &'static str,
    pub level: Level,
    pub fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Shared {
    events: Mutex<Vec<Logged>>,
    spans: Mutex<BTreeMap<u64, Span>>,
    /// Spans entered on this thread, innermost last.
    stack: Mutex<Vec<u64>>,
    next: AtomicU64,
}

/// What a test captured.
#[derive(Clone)]
pub struct Log(Arc<Shared>);

impl Log {
    /// Every event so far.
    pub fn events(&self) -> Vec<Logged> {
        self.0.events.lock().clone()
    }

    /// The events at `level`.
    pub fn at(&self, level: Level) -> Vec<Logged> {
        self.events()
            .into_iter()
            .filter(|e| e.level == level)
            .collect()
    }

    /// The `warn` events whose message contains `text`.
    pub fn warnings(&self, text: &str) -> Vec<Logged> {
        self.at(Level::WARN)
            .into_iter()
            .filter(|e| e.message.contains(text))
            .collect()
    }

    /// Every span made so far, with its fields as they are now.
    pub fn spans(&self) -> Vec<Span> {
        self.0.spans.lock().values().cloned().collect()
    }
}

/// Captures every event and span of this thread until the guard drops.
pub fn capture() -> (Log, DefaultGuard) {
    let log = Log(Arc::default());
    let guard = tracing::subscriber::set_default(Capture(Arc::clone(&log.0)));
    (log, guard)
}

struct Capture(Arc<Shared>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.0.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let span = Span { name: attrs.metadata().name(), level: *attrs.metadata().level(), fields };
        self.0.spans.lock().insert(id, span);
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(s) = self.0.spans.lock().get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut s.fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        let spans = {
            let all = self.0.spans.lock();
            let stack = self.0.stack.lock();
            stack.iter().filter_map(|id| all.get(id).cloned()).collect()
        };
        self.0.events.lock().push(Logged {
            level: *event.metadata().level(),
            message,
            fields,
            spans,
        });
    }

    fn enter(&self, span: &Id) {
        self.0.stack.lock().push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut stack = self.0.stack.lock();
        if let Some(i) = stack.iter().rposition(|&id| id == span.into_u64()) {
            stack.remove(i);
        }
    }
}
