//! `CacheHandle`: purging a URL (every variant, GET and HEAD), purging by tag
//! (`Cache-Tag`, or another field), clearing, the counters; and the
//! `Cache-Status` parameters that come with them (`fwd=bypass`, `key`,
//! `fwd=request`, `stored`).
mod common;

use std::time::Duration;

use common::*;
use http::{HeaderName, StatusCode};
use tower::Layer;
use tower_response_cache::{CacheLayerBuilder, Mode};

/// Makes a request.
type MakeRequest = fn() -> http::request::Builder;

/// Whether `make()` is answered without calling the inner service.
async fn is_hit<S, B>(svc: &S, calls: &Calls, make: MakeRequest) -> bool
where
    S: tower::Service<
            http::Request<http_body_util::Full<bytes::Bytes>>,
            Response = http::Response<B>,
        > + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: std::fmt::Debug,
{
    let before = calls.get();
    send(svc, make()).await;
    calls.get() == before
}

/// The value of the `key` parameter of a `Cache-Status`.
fn key_param(status: &str) -> Option<&str> {
    let (_, rest) = status.split_once("; key=\"")?;
    rest.split_once('"').map(|(key, _)| key)
}

// ---------------------------------------------------------------- purge

#[tokio::test]
async fn purge_removes_every_variant_and_the_head() {
    let clock = clock();
    let calls = Calls::default();
    let layer = builder(&clock).build();
    let handle = layer.handle();
    let svc = layer.layer(view(&calls, |_, res| set(res, "vary", "Accept")));
    let requests: [MakeRequest; 3] = [
        || head("/p").header("accept", "text/html"),
        || get("/p").header("accept", "application/json"),
        || get("/p").header("accept", "text/plain"),
    ];
    for (i, make) in requests.iter().enumerate() {
        assert!(
            !is_hit(&svc, &calls, *make).await,
            "request {i} hit a cold cache"
        );
    }
    for (i, make) in requests.iter().enumerate() {
        assert!(is_hit(&svc, &calls, *make).await, "request {i} not stored");
    }

    assert_eq!(handle.purge("http://testserver/p").await, Ok(true));
    assert_eq!(
        handle.purge("http://testserver/p").await,
        Ok(false),
        "a second purge found something"
    );
    for (i, make) in requests.iter().enumerate() {
        assert!(
            !is_hit(&svc, &calls, *make).await,
            "request {i} survived the purge"
        );
    }
    assert_eq!(calls.get(), 6);
}

#[tokio::test]
async fn purge_leaves_other_urls_alone() {
    let clock = clock();
    let calls = Calls::default();
    let layer = builder(&clock).build();
    let handle = layer.handle();
    let svc = layer.layer(view(&calls, |_, _| {}));
    send(&svc, get("/p")).await;
    send(&svc, get("/q")).await;
    assert_eq!(handle.purge("http://testserver/p").await, Ok(true));
    assert!(!is_hit(&svc, &calls, || get("/p")).await);
    assert!(is_hit(&svc, &calls, || get("/q")).await);
}

#[tokio::test]
async fn purge_refuses_a_relative_url() {
    let handle = builder(&clock()).build().handle();
    assert!(handle.purge("/p").await.is_err());
}

// ---------------------------------------------------------------- tags

/// The tags of each URL of [`tagged`].
fn shop_tags(path: &str) -> Option<&'static str> {
    match path {
        "/products/7" => Some("product-7, list"),
        "/products/7/reviews" => Some("product-7"),
        "/products" => Some("list"),
        "/products/8" => Some("product-8"),
        _ => None,
    }
}

const SHOP: [MakeRequest; 4] = [
    || get("/products/7"),
    || get("/products/7/reviews"),
    || get("/products"),
    || get("/products/8"),
];

#[tokio::test]
async fn purge_tag_removes_what_carried_the_tag() {
    let clock = clock();
    let calls = Calls::default();
    let layer = builder(&clock).build();
    let handle = layer.handle();
    let svc = layer.layer(view(&calls, |req, res| {
        if let Some(tags) = shop_tags(req.uri().path()) {
            set(res, "cache-tag", tags);
        }
    }));
    for make in SHOP {
        send(&svc, make()).await;
    }
    for make in SHOP {
        assert!(is_hit(&svc, &calls, make).await);
    }

    assert_eq!(handle.purge_tag("product-7").await, 2);
    assert_eq!(
        handle.purge_tag("product-7").await,
        0,
        "a second purge of the tag found something"
    );
    let hits: Vec<bool> = {
        let mut hits = Vec::new();
        for make in SHOP {
            hits.push(is_hit(&svc, &calls, make).await);
        }
        hits
    };
    assert_eq!(
        hits,
        [false, false, true, true],
        "[/products/7, /products/7/reviews, /products, /products/8] hits"
    );

    // /products/7 is stored again, with both its tags.
    assert_eq!(handle.purge_tag("list").await, 2);
    assert!(!is_hit(&svc, &calls, || get("/products/7")).await);
    assert!(!is_hit(&svc, &calls, || get("/products")).await);
    assert!(is_hit(&svc, &calls, || get("/products/8")).await);
}

#[tokio::test]
async fn purge_tag_of_an_unknown_tag_purges_nothing() {
    let clock = clock();
    let calls = Calls::default();
    let layer = builder(&clock).build();
    let handle = layer.handle();
    let svc = layer.layer(view(&calls, |_, res| set(res, "cache-tag", "a")));
    send(&svc, get("/p")).await;
    assert_eq!(handle.purge_tag("b").await, 0);
    assert!(is_hit(&svc, &calls, || get("/p")).await);
}

/// The `(miss, hit)` values of `field` on the responses to two GETs of a URL
/// whose response carries `Cache-Tag: product-7, list` and
/// `Surrogate-Key: product-9`.
async fn tag_fields(
    configure: fn(CacheLayerBuilder) -> CacheLayerBuilder,
    field: &str,
) -> [Option<String>; 2] {
    let clock = clock();
    let calls = Calls::default();
    let svc = configure(builder(&clock))
        .build()
        .layer(view(&calls, |_, res| {
            set(res, "cache-tag", "product-7, list");
            set(res, "surrogate-key", "product-9");
        }));
    let (miss, _) = send(&svc, get("/p")).await;
    let (hit, _) = send(&svc, get("/p")).await;
    assert_eq!(calls.get(), 1);
    [miss, hit].map(|p| header(&p, field).map(str::to_owned))
}

/// No builder changes.
fn defaults(b: CacheLayerBuilder) -> CacheLayerBuilder {
    b
}

#[tokio::test]
async fn the_tag_field_is_stripped_from_miss_and_hit() {
    assert_eq!(
        tag_fields(defaults, "cache-tag").await,
        [None, None],
        "[miss, hit] Cache-Tag"
    );
}

#[tokio::test]
async fn the_tag_field_is_stripped_from_responses_not_stored() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, res| {
        set(res, "cache-control", "private");
        set(res, "cache-tag", "product-7");
    }));
    let (p, _) = send(&svc, get("/p")).await;
    assert_eq!(header(&p, "cache-tag"), None, "uncacheable GET");
    assert!(!is_hit(&svc, &calls, || get("/p")).await, "stored");
    let post = http::Request::post("/p").header("host", "testserver");
    let (p, _) = send(&svc, post).await;
    assert_eq!(header(&p, "cache-tag"), None, "POST");
}

#[tokio::test]
async fn strip_tag_header_false_keeps_it() {
    let kept = Some("product-7, list".to_owned());
    assert_eq!(
        tag_fields(|b| b.strip_tag_header(false), "cache-tag").await,
        [kept.clone(), kept],
        "[miss, hit] Cache-Tag"
    );
}

#[tokio::test]
async fn another_tag_field_is_the_one_stripped() {
    let surrogate = |b: CacheLayerBuilder| b.tag_header(HeaderName::from_static("surrogate-key"));
    assert_eq!(
        tag_fields(surrogate, "surrogate-key").await,
        [None, None],
        "[miss, hit] Surrogate-Key"
    );
    let kept = Some("product-7, list".to_owned());
    assert_eq!(
        tag_fields(surrogate, "cache-tag").await,
        [kept.clone(), kept],
        "[miss, hit] Cache-Tag, no longer the tag field"
    );
}

#[tokio::test]
async fn tag_header_names_the_field_tags_are_read_from() {
    let clock = clock();
    let calls = Calls::default();
    let layer = builder(&clock)
        .tag_header(HeaderName::from_static("surrogate-key"))
        .build();
    let handle = layer.handle();
    let svc = layer.layer(view(&calls, |_, res| {
        set(res, "surrogate-key", "product-9");
        set(res, "cache-tag", "product-7");
    }));
    send(&svc, get("/p")).await;
    assert_eq!(handle.purge_tag("product-7").await, 0, "Cache-Tag was read");
    assert!(is_hit(&svc, &calls, || get("/p")).await);
    assert_eq!(handle.purge_tag("product-9").await, 1);
    assert!(!is_hit(&svc, &calls, || get("/p")).await);
}

// ---------------------------------------------------------------- clear

#[tokio::test]
async fn clear_empties_the_cache() {
    let clock = clock();
    let calls = Calls::default();
    let layer = builder(&clock).build();
    let handle = layer.handle();
    let svc = layer.layer(view(&calls, |_, res| set(res, "cache-tag", "t")));
    let requests: [MakeRequest; 3] = [|| get("/a"), || get("/b"), || head("/c")];
    for make in requests {
        send(&svc, make()).await;
    }
    for make in requests {
        assert!(is_hit(&svc, &calls, make).await);
    }
    handle.clear().await.expect("clear");
    for (i, make) in requests.iter().enumerate() {
        assert!(
            !is_hit(&svc, &calls, *make).await,
            "request {i} survived clear"
        );
    }
}

// ---------------------------------------------------------------- counters

#[tokio::test]
async fn counters_count_misses_hits_and_stores() {
    let clock = clock();
    let calls = Calls::default();
    let layer = builder(&clock).build();
    let handle = layer.handle();
    let svc = layer.layer(view(&calls, |_, _| {}));
    let zero = handle.stats();
    assert_eq!(
        (zero.hits, zero.misses, zero.stores, zero.bytes_stored),
        (0, 0, 0, 0)
    );

    let (_, body) = send(&svc, get("/p")).await;
    send(&svc, get("/p")).await;
    send(&svc, get("/p")).await;
    let stats = handle.stats();
    assert_eq!(stats.misses, 1, "{stats:?}");
    assert_eq!(stats.hits, 2, "{stats:?}");
    assert_eq!(stats.stores, 1, "{stats:?}");
    assert_eq!(stats.bytes_stored, body.len() as u64, "{stats:?}");
    assert_eq!(stats.stale_served, 0, "{stats:?}");
    assert_eq!(stats.coalesced, 0, "{stats:?}");
    assert_eq!(layer.stats(), stats, "the layer and its handle disagree");
}

#[tokio::test]
async fn counters_are_shared_by_every_handle_and_service_of_a_layer() {
    let clock = clock();
    let calls = Calls::default();
    let layer = builder(&clock).build();
    let one = layer.clone().layer(view(&calls, |_, _| {}));
    let other = layer.layer(view(&calls, |_, _| {}));
    send(&one, get("/p")).await;
    send(&other, get("/p")).await;
    let stats = layer.handle().stats();
    assert_eq!((stats.misses, stats.hits), (1, 1), "{stats:?}");
}

#[tokio::test]
async fn an_uncacheable_miss_is_not_a_store() {
    let clock = clock();
    let calls = Calls::default();
    let layer = builder(&clock).build();
    let handle = layer.handle();
    let svc = layer.layer(view(&calls, |_, res| set(res, "cache-control", "private")));
    send(&svc, get("/p")).await;
    send(&svc, get("/p")).await;
    let stats = handle.stats();
    assert_eq!(
        (stats.misses, stats.hits, stats.stores, stats.bytes_stored),
        (2, 0, 0, 0),
        "{stats:?}"
    );
}

// ---------------------------------------------------------------- Cache-Status parameters

#[tokio::test]
async fn a_miss_that_stores_says_so() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    let (p, _) = send(&svc, get("/p")).await;
    assert_eq!(
        cache_status(&p),
        "tower-response-cache; fwd=uri-miss; fwd-status=200; stored; ttl=600"
    );
}

/// A layer that bypasses requests carrying `x-preview`.
fn previews_bypass(b: CacheLayerBuilder) -> CacheLayerBuilder {
    b.bypass(|req| req.headers.contains_key("x-preview"))
}

const BYPASSED: &str = "tower-response-cache; fwd=bypass; fwd-status=200";

#[tokio::test]
async fn a_bypassed_request_skips_a_fresh_entry() {
    let clock = clock();
    let calls = Calls::default();
    let svc = previews_bypass(builder(&clock))
        .build()
        .layer(view(&calls, |_, _| {}));
    send(&svc, get("/p")).await;
    let (p, body) = send(&svc, get("/p").header("x-preview", "1")).await;
    assert_eq!(
        calls.get(),
        2,
        "the fresh entry answered a bypassed request"
    );
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(body, "body 2");
    assert_eq!(cache_status(&p), BYPASSED);
    let (_, body) = send(&svc, get("/p")).await;
    assert_eq!(body, "body 1", "the bypassed response replaced the entry");
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn a_bypassed_response_is_not_stored() {
    let clock = clock();
    let calls = Calls::default();
    let layer = previews_bypass(builder(&clock)).build();
    let handle = layer.handle();
    let svc = layer.layer(view(&calls, |_, _| {}));
    let (p, body) = send(&svc, get("/p").header("x-preview", "1")).await;
    assert_eq!(body, "body 1");
    assert_eq!(cache_status(&p), BYPASSED);
    assert_eq!(handle.stats().stores, 0);
    let (_, body) = send(&svc, get("/p")).await;
    assert_eq!(body, "body 2", "the bypassed response was stored");
}

#[tokio::test]
async fn cache_status_key_adds_the_key_everywhere() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .cache_status_key(true)
        .build()
        .layer(view(&calls, |_, _| {}));
    let (miss, _) = send(&svc, get("/p")).await;
    let (hit, _) = send(&svc, get("/p")).await;
    let (other, _) = send(&svc, get("/q")).await;
    assert_eq!(calls.get(), 2);
    for p in [&miss, &hit, &other] {
        assert!(
            cache_status(p).contains("; key=\""),
            "Cache-Status: {}",
            cache_status(p)
        );
    }
    let keys = [&miss, &hit, &other].map(|p| key_param(cache_status(p)));
    assert!(keys.iter().all(Option::is_some), "{keys:?}");
    assert_eq!(keys[0], keys[1], "one URL, two keys");
    assert_ne!(keys[0], keys[2], "two URLs, one key");
}

#[tokio::test]
async fn no_key_parameter_by_default() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    for _ in 0..2 {
        let (p, _) = send(&svc, get("/p")).await;
        assert!(
            !cache_status(&p).contains("key="),
            "Cache-Status: {}",
            cache_status(&p)
        );
    }
}

#[tokio::test]
async fn shared_a_request_no_cache_forwards_with_fwd_request() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .mode(Mode::Shared)
        .build()
        .layer(view(&calls, |_, res| {
            set(res, "cache-control", "max-age=600")
        }));
    send(&svc, get("/p")).await;
    clock.advance(Duration::from_secs(1));
    let (p, body) = send(&svc, get("/p").header("cache-control", "no-cache")).await;
    assert_eq!(
        calls.get(),
        2,
        "the fresh entry answered a no-cache request"
    );
    assert_eq!(body, "body 2");
    let status = cache_status(&p);
    for param in ["fwd=request", "fwd-status=200"] {
        assert!(status.contains(param), "Cache-Status: {status}");
    }
}
