//! Observability: the tracing span every request gets, with its outcome.
//!
//! The only test in its binary: its subscriber is a thread's default, and
//! another test's thread registering the same callsites without one could
//! reset tracing's level hint under it (the `metrics` export is tested in
//! `tests/metrics.rs`).

mod common;

use std::sync::{Arc, Mutex};

use common::{Calls, clock, get, send, set, view};
use tower::Layer;
use tower_response_cache::{CacheLayer, Mode};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A subscriber that keeps the `outcome` each span was given, and tracks the
/// entered span (as real subscribers do) so `Span::current()` works.
#[derive(Clone, Default)]
struct Outcomes(
    Arc<Mutex<Vec<String>>>,
    Arc<Mutex<Vec<(Id, &'static Metadata<'static>)>>>,
);

struct OutcomeField<'a>(&'a mut Option<String>);

impl Visit for OutcomeField<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "outcome" {
            *self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "outcome" {
            *self.0 = Some(format!("{value:?}"));
        }
    }
}

impl Subscriber for Outcomes {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut outcome = None;
        span.record(&mut OutcomeField(&mut outcome));
        let mut spans = self.0.lock().unwrap();
        spans.push(outcome.unwrap_or_default());
        let id = Id::from_u64(spans.len() as u64);
        METADATA.with(|m| m.lock().unwrap().push(span.metadata()));
        id
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut outcome = None;
        values.record(&mut OutcomeField(&mut outcome));
        if let Some(outcome) = outcome {
            let index = usize::try_from(span.into_u64() - 1).unwrap();
            self.0.lock().unwrap()[index] = outcome;
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, span: &Id) {
        let index = usize::try_from(span.into_u64() - 1).unwrap();
        let metadata = METADATA.with(|m| m.lock().unwrap()[index]);
        self.1.lock().unwrap().push((span.clone(), metadata));
    }

    fn exit(&self, _: &Id) {
        self.1.lock().unwrap().pop();
    }

    fn current_span(&self) -> tracing_core::span::Current {
        match self.1.lock().unwrap().last() {
            Some((id, metadata)) => tracing_core::span::Current::new(id.clone(), metadata),
            None => tracing_core::span::Current::none(),
        }
    }
}

thread_local! {
    /// Each span's metadata, by id (one test thread).
    static METADATA: Mutex<Vec<&'static Metadata<'static>>> = const { Mutex::new(Vec::new()) };
}

#[tokio::test(flavor = "current_thread")]
async fn every_request_has_a_span_with_its_outcome() {
    let outcomes = Outcomes::default();
    let _guard = tracing::subscriber::set_default(outcomes.clone());
    let clock = clock();
    let calls = Calls::default();
    let svc = CacheLayer::builder()
        .clock(clock.clone())
        .build()
        .layer(view(&calls, |req, res| {
            if req.uri().path() == "/private" {
                set(res, "cache-control", "private");
            }
        }));
    send(&svc, get("/page")).await;
    send(&svc, get("/page")).await;
    send(&svc, get("/private")).await;
    send(&svc, get("/page").method("POST")).await;
    // Refused in place: a shared cache with nothing stored for the URL.
    let shared = CacheLayer::builder()
        .mode(Mode::Shared)
        .clock(clock.clone())
        .build()
        .layer(view(&calls, |_, _| {}));
    send(
        &shared,
        get("/page").header("cache-control", "only-if-cached"),
    )
    .await;
    assert_eq!(
        *outcomes.0.lock().unwrap(),
        ["uri-miss", "hit", "uri-miss", "method", "only-if-cached"]
    );
}
