//! The counters exported through the `metrics` crate (feature `metrics`).

#![cfg(feature = "metrics")]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use tower::Layer;
use tower_response_cache::CacheLayer;

use common::{Calls, clock, get, send, view};

/// Counters by name.
#[derive(Default)]
struct Counters(Mutex<BTreeMap<String, Arc<AtomicU64>>>);

impl Counters {
    fn get(&self, name: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |c| c.load(Ordering::SeqCst))
    }
}

impl Recorder for Counters {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let counter = self
            .0
            .lock()
            .unwrap()
            .entry(key.name().to_owned())
            .or_default()
            .clone();
        Counter::from_arc(counter)
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn counters_reach_the_metrics_recorder() {
    let recorder = Counters::default();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let calls = Calls::default();
    let layer = CacheLayer::builder().clock(clock()).build();
    let svc = layer.layer(view(&calls, |_, _| {}));
    send(&svc, get("/page")).await;
    send(&svc, get("/page")).await;
    send(&svc, get("/page")).await;
    assert_eq!(recorder.get("tower_response_cache_misses_total"), 1);
    assert_eq!(recorder.get("tower_response_cache_hits_total"), 2);
    assert_eq!(recorder.get("tower_response_cache_stores_total"), 1);
    assert_eq!(
        recorder.get("tower_response_cache_bytes_stored_total"),
        "body 1".len() as u64
    );
    let stats = layer.handle().stats();
    assert_eq!((stats.misses, stats.hits, stats.stores), (1, 2, 1));
}
