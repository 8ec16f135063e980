//! Shared mode (`Mode::Shared`): an RFC 9111 shared cache in front of an origin
//! it does not control. Black-box tests on a `ManualClock`, grouped by RFC
//! section (reference: /work/shared/spec/http-caching.md, section 1).
//!
//! The origin here records every request it receives (to check what the cache
//! forwarded, e.g. `If-None-Match` on revalidation) and answers `body N`, N being
//! its call number from 1, with a `Date` of the clock's now unless a test
//! overrides it.
mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use common::*;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use httpdate::fmt_http_date;
use tower::{Layer, Service};
use tower_response_cache::{CacheLayerBuilder, Clock, ManualClock, Mode};

type Req = Request<Full<Bytes>>;
type Res = Response<Full<Bytes>>;

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

// ---------------------------------------------------------------- helpers

/// Every request the origin received, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<HeaderMap>>>);

impl Log {
    /// Records a request; its call number (from 1).
    fn record(&self, req: &Req) -> usize {
        let mut seen = self.0.lock().expect("log");
        seen.push(req.headers().clone());
        seen.len()
    }

    /// How many requests reached the origin.
    fn calls(&self) -> usize {
        self.0.lock().expect("log").len()
    }

    /// A header of the `n`th request (from 1) the origin received.
    fn header(&self, n: usize, name: &str) -> Option<String> {
        let seen = self.0.lock().expect("log");
        let headers = seen.get(n - 1).expect("no such request");
        headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header").to_owned())
    }
}

/// The origin: records the request, answers `body N` with `Date` = now, then
/// lets `f(n, request, response)` shape the response.
fn origin<F>(
    clock: &ManualClock,
    log: &Log,
    f: F,
) -> impl Service<Req, Response = Res, Error = Infallible, Future = impl Send + use<F>>
+ Clone
+ Send
+ 'static
+ use<F>
where
    F: Fn(usize, &Req, &mut Res) + Clone + Send + Sync + 'static,
{
    let clock = clock.clone();
    let log = log.clone();
    tower::service_fn(move |req: Req| {
        let n = log.record(&req);
        let mut res = Response::new(Full::new(Bytes::from(format!("body {n}"))));
        put(&mut res, "date", &fmt_http_date(clock.now()));
        f(n, &req, &mut res);
        async move { Ok::<_, Infallible>(res) }
    })
}

/// An origin response shaper that only sets `Cache-Control`.
fn cc(value: &'static str) -> impl Fn(usize, &Req, &mut Res) + Clone + Send + Sync + 'static {
    move |_, _, res| put(res, "cache-control", value)
}

/// Sets (replaces) a response header.
fn put(res: &mut Res, name: &'static str, value: &str) {
    res.headers_mut()
        .insert(name, HeaderValue::from_str(value).expect("header value"));
}

/// Makes the response body empty (204, 304).
fn empty_body(res: &mut Res) {
    *res.body_mut() = Full::new(Bytes::new());
}

/// The HTTP-date of T0 + `offset` seconds.
fn date(offset: i64) -> String {
    let secs = T0.checked_add_signed(offset).expect("date in range");
    fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// A shared-mode layer builder on `clock`.
fn shared(clock: &ManualClock) -> CacheLayerBuilder {
    builder(clock).mode(Mode::Shared)
}

/// A request with any method for `uri` on host `testserver`.
fn request(method: Method, uri: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "testserver")
}

/// Whether a plain GET for `uri` is answered without calling the origin.
async fn is_hit<S, B>(svc: &S, log: &Log, uri: &str) -> bool
where
    S: Service<Req, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let before = log.calls();
    send(svc, get(uri)).await;
    log.calls() == before
}

/// Every `Age` value of a response.
fn ages(p: &http::response::Parts) -> Vec<String> {
    p.headers
        .get_all("age")
        .iter()
        .map(|v| v.to_str().expect("ascii age").to_owned())
        .collect()
}

// ---------------------------------------------------------------- §3 storing

#[tokio::test]
async fn max_age_response_is_stored_and_its_headers_come_back_verbatim() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, _, res| {
            put(res, "cache-control", "max-age=60");
            put(res, "x-foo", "bar");
        }));
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(b, "body 1");
    assert_eq!(header(&p, "cache-control"), Some("max-age=60"));
    assert_eq!(header(&p, "expires"), None);

    at(&clock, 10);
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1, "second GET went to the origin");
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(b, "body 1");
    assert_eq!(header(&p, "x-foo"), Some("bar"));
    assert_eq!(header(&p, "date"), Some(date(0).as_str()));
    assert_eq!(header(&p, "cache-control"), Some("max-age=60"));
    assert_eq!(header(&p, "expires"), None, "shared mode adds no Expires");
}

#[tokio::test]
async fn no_default_ttl_even_with_a_default_timeout() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .default_timeout(Duration::from_secs(600))
        .build()
        .layer(origin(&clock, &log, |_, _, _| {}));
    send(&svc, get("/p")).await;
    at(&clock, 1);
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
    assert_eq!(b, "body 2");
}

#[tokio::test]
async fn a_200_without_freshness_or_validator_is_not_served_as_fresh() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, _, _| {}));
    send(&svc, get("/p")).await;
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(b, "body 2");
}

#[tokio::test]
async fn response_no_store_is_not_stored() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, cc("no-store, max-age=60")));
    send(&svc, get("/p")).await;
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
    assert_eq!(b, "body 2");
}

#[tokio::test]
async fn response_private_is_not_stored() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, cc("private, max-age=60")));
    send(&svc, get("/p")).await;
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
    assert_eq!(b, "body 2");
}

#[tokio::test]
async fn response_no_cache_is_stored_but_revalidated_on_every_use() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, req, res| {
            put(res, "cache-control", "no-cache, max-age=60");
            put(res, "etag", r#""v1""#);
            if req
                .headers()
                .get("if-none-match")
                .is_some_and(|v| v == r#""v1""#)
            {
                *res.status_mut() = StatusCode::NOT_MODIFIED;
                empty_body(res);
            }
        }));
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(b, "body 1");
    for (at_secs, call) in [(1, 2), (2, 3)] {
        at(&clock, at_secs);
        let (p, b) = send(&svc, get("/p")).await;
        assert_eq!(
            log.calls(),
            call,
            "no-cache response used without revalidation"
        );
        assert_eq!(
            log.header(call, "if-none-match").as_deref(),
            Some(r#""v1""#),
            "revalidation did not carry the stored ETag"
        );
        assert_eq!(p.status, StatusCode::OK);
        assert_eq!(b, "body 1", "the 304 did not yield the stored body");
    }
}

#[tokio::test]
async fn qualified_private_fields_are_not_stored() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, _, res| {
            put(res, "cache-control", r#"private="X-Secret", max-age=60"#);
            put(res, "x-secret", "s3cret");
            put(res, "x-foo", "bar");
        }));
    let (p, _) = send(&svc, get("/p")).await;
    assert_eq!(
        header(&p, "x-secret"),
        Some("s3cret"),
        "the requesting client gets the field"
    );
    at(&clock, 1);
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1, "qualified private must not prevent storing");
    assert_eq!(b, "body 1");
    assert_eq!(header(&p, "x-secret"), None);
    assert_eq!(header(&p, "x-foo"), Some("bar"));
}

#[tokio::test]
async fn qualified_private_with_several_fields_drops_each() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, _, res| {
            put(
                res,
                "cache-control",
                r#"max-age=60, private="X-Secret, X-Other""#,
            );
            put(res, "x-secret", "s3cret");
            put(res, "x-other", "o");
            put(res, "x-foo", "bar");
        }));
    send(&svc, get("/p")).await;
    let (p, _) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1);
    assert_eq!(header(&p, "x-secret"), None);
    assert_eq!(header(&p, "x-other"), None);
    assert_eq!(header(&p, "x-foo"), Some("bar"));
}

#[tokio::test]
async fn qualified_no_cache_fields_are_not_served_from_cache() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, _, res| {
            put(res, "cache-control", r#"no-cache="X-Secret", max-age=60"#);
            put(res, "x-secret", "s3cret");
            put(res, "x-foo", "bar");
        }));
    send(&svc, get("/p")).await;
    at(&clock, 1);
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(
        log.calls(),
        1,
        "qualified no-cache must not prevent storing"
    );
    assert_eq!(b, "body 1");
    assert_eq!(header(&p, "x-secret"), None);
    assert_eq!(header(&p, "x-foo"), Some("bar"));
}

/// Two GETs with `Authorization` against an origin answering `cache_control`;
/// how many reached the origin.
async fn authorized_calls(cache_control: &'static str) -> usize {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, cc(cache_control)));
    let authorized = || get("/p").header("authorization", "Basic dXNlcjpwYXNz");
    send(&svc, authorized()).await;
    at(&clock, 1);
    send(&svc, authorized()).await;
    log.calls()
}

#[tokio::test]
async fn authorized_request_with_only_max_age_is_not_stored() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, cc("max-age=60")));
    let authorized = || get("/p").header("authorization", "Basic dXNlcjpwYXNz");
    send(&svc, authorized()).await;
    send(&svc, authorized()).await;
    assert_eq!(log.calls(), 2, "stored for the same Authorization");
    send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 3, "stored for anonymous requests");
}

#[tokio::test]
async fn authorized_request_with_public_is_stored() {
    assert_eq!(authorized_calls("public, max-age=60").await, 1);
}

#[tokio::test]
async fn authorized_request_with_s_maxage_is_stored() {
    assert_eq!(authorized_calls("s-maxage=60").await, 1);
}

#[tokio::test]
async fn authorized_request_with_must_revalidate_is_stored() {
    assert_eq!(authorized_calls("max-age=60, must-revalidate").await, 1);
}

/// For each status, a fresh (`max-age=60`) answer followed by a second GET; the
/// statuses whose second GET reached the origin, or came back with another status.
async fn statuses_not_stored(codes: &[u16]) -> Vec<u16> {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, req, res| {
            let code = req.uri().path().trim_start_matches("/s/");
            let code = StatusCode::from_bytes(code.as_bytes()).expect("status in path");
            *res.status_mut() = code;
            put(res, "cache-control", "max-age=60");
            if code == StatusCode::NO_CONTENT {
                empty_body(res);
            }
        }));
    let mut not_stored = Vec::new();
    for &code in codes {
        let uri = format!("/s/{code}");
        send(&svc, get(&uri)).await;
        let before = log.calls();
        let (p, _) = send(&svc, get(&uri)).await;
        if log.calls() != before || p.status.as_u16() != code {
            not_stored.push(code);
        }
    }
    not_stored
}

#[tokio::test]
async fn heuristically_cacheable_statuses_with_max_age_are_stored() {
    let not_stored = statuses_not_stored(&[200, 203, 204, 301, 404, 410]).await;
    assert!(not_stored.is_empty(), "not stored: {not_stored:?}");
}

#[tokio::test]
async fn other_statuses_with_max_age_are_stored() {
    let not_stored = statuses_not_stored(&[302, 307, 500]).await;
    assert!(not_stored.is_empty(), "not stored: {not_stored:?}");
}

#[tokio::test]
async fn partial_content_is_never_stored() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, req, res| {
            put(res, "cache-control", "max-age=60");
            if req.headers().contains_key("range") {
                *res.status_mut() = StatusCode::PARTIAL_CONTENT;
                put(res, "content-range", "bytes 0-3/6");
                *res.body_mut() = Full::new(Bytes::from_static(b"body"));
            }
        }));
    let ranged = || get("/p").header("range", "bytes=0-3");
    let (p, b) = send(&svc, ranged()).await;
    assert_eq!(p.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(b, "body");
    let (p, _) = send(&svc, ranged()).await;
    assert_eq!(log.calls(), 2, "a 206 was served from the cache");
    assert_eq!(p.status, StatusCode::PARTIAL_CONTENT);
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 3, "a 206 was served from the cache");
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(b, "body 3");
}

#[tokio::test]
async fn not_modified_is_never_stored() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, req, res| {
            put(res, "cache-control", "max-age=60");
            put(res, "etag", r#""x""#);
            if req.headers().contains_key("if-none-match") {
                *res.status_mut() = StatusCode::NOT_MODIFIED;
                empty_body(res);
            }
        }));
    let (p, _) = send(&svc, get("/p").header("if-none-match", r#""x""#)).await;
    assert_eq!(p.status, StatusCode::NOT_MODIFIED);
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(
        p.status,
        StatusCode::OK,
        "a stored 304 answered a plain GET"
    );
    assert!(!b.is_empty());
}

#[tokio::test]
async fn connection_and_the_fields_it_lists_are_not_stored() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, _, res| {
            put(res, "cache-control", "max-age=60");
            put(res, "connection", "X-Hop");
            put(res, "x-hop", "1");
            put(res, "x-foo", "bar");
        }));
    send(&svc, get("/p")).await;
    at(&clock, 1);
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1);
    assert_eq!(b, "body 1");
    assert_eq!(header(&p, "x-hop"), None);
    assert_eq!(header(&p, "connection"), None);
    assert_eq!(header(&p, "x-foo"), Some("bar"));
}

/// Two identical GETs against an origin answering `max-age=60` with `vary`;
/// how many reached the origin.
async fn calls_with_vary(vary: &'static str) -> usize {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, move |_, _, res| {
            put(res, "cache-control", "max-age=60");
            put(res, "vary", vary);
        }));
    for _ in 0..2 {
        send(&svc, get("/p").header("accept", "text/html")).await;
    }
    log.calls()
}

#[tokio::test]
async fn vary_star_is_never_served_from_cache() {
    assert_eq!(calls_with_vary("*").await, 2);
}

#[tokio::test]
async fn vary_list_containing_star_is_never_served_from_cache() {
    assert_eq!(calls_with_vary("Accept, *").await, 2);
}

#[tokio::test]
async fn body_over_max_body_size_is_not_stored() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .max_body_size(4)
        .build()
        .layer(origin(&clock, &log, cc("max-age=60")));
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
    assert_eq!(b, "body 2");
}

// ---------------------------------------------------------------- §4.2 freshness

#[tokio::test]
async fn s_maxage_wins_over_max_age() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, cc("s-maxage=60, max-age=10")));
    send(&svc, get("/p")).await;
    at(&clock, 30);
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(
        log.calls(),
        1,
        "stale at +30 s: max-age used instead of s-maxage"
    );
    assert_eq!(b, "body 1");
    at(&clock, 61);
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2, "still fresh at +61 s");
    assert_eq!(b, "body 2");
}

#[tokio::test]
async fn max_age_wins_over_expires_in_the_past() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, _, res| {
            put(res, "cache-control", "max-age=60");
            put(res, "expires", &date(-3600));
        }));
    send(&svc, get("/p")).await;
    at(&clock, 30);
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1);
    assert_eq!(b, "body 1");
}

#[tokio::test]
async fn expires_minus_date_is_the_lifetime_without_max_age() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, _, res| {
            put(res, "date", &date(0));
            put(res, "expires", &date(60));
        }));
    send(&svc, get("/p")).await;
    at(&clock, 30);
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1, "not fresh at +30 s");
    assert_eq!(b, "body 1");
    at(&clock, 61);
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2, "still fresh at +61 s");
    assert_eq!(b, "body 2");
}

#[tokio::test]
async fn invalid_expires_means_already_expired() {
    for expires in ["0", "soon, probably"] {
        let clock = clock();
        let log = Log::default();
        let svc = shared(&clock)
            .build()
            .layer(origin(&clock, &log, move |_, _, res| {
                put(res, "expires", expires);
            }));
        send(&svc, get("/p")).await;
        let (_, b) = send(&svc, get("/p")).await;
        assert_eq!(log.calls(), 2, "Expires: {expires:?} served from cache");
        assert_eq!(b, "body 2");
    }
}

/// An origin answering `status` with `Last-Modified` 10 days before `Date`, and no
/// explicit freshness.
fn last_modified_10_days_ago(
    status: StatusCode,
) -> impl Fn(usize, &Req, &mut Res) + Clone + Send + Sync + 'static {
    move |_, _, res| {
        *res.status_mut() = status;
        put(res, "date", &date(0));
        put(res, "last-modified", &date(-10 * DAY as i64));
    }
}

#[tokio::test]
async fn heuristic_freshness_is_off_by_default() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock).build().layer(origin(
        &clock,
        &log,
        last_modified_10_days_ago(StatusCode::OK),
    ));
    send(&svc, get("/p")).await;
    at(&clock, 60);
    send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
}

#[tokio::test]
async fn heuristic_freshness_is_a_fraction_of_the_time_since_last_modified() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .heuristic_freshness(0.1)
        .build()
        .layer(origin(
            &clock,
            &log,
            last_modified_10_days_ago(StatusCode::OK),
        ));
    send(&svc, get("/p")).await;
    at(&clock, 12 * HOUR);
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1, "not fresh at +12 h");
    assert_eq!(b, "body 1");
    at(&clock, 25 * HOUR);
    send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2, "still fresh at +25 h");
}

#[tokio::test]
async fn heuristic_freshness_applies_to_a_heuristically_cacheable_404() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .heuristic_freshness(0.1)
        .build()
        .layer(origin(
            &clock,
            &log,
            last_modified_10_days_ago(StatusCode::NOT_FOUND),
        ));
    send(&svc, get("/p")).await;
    at(&clock, 12 * HOUR);
    let (p, _) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1);
    assert_eq!(p.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn heuristic_freshness_is_not_applied_to_a_302() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .heuristic_freshness(0.1)
        .build()
        .layer(origin(
            &clock,
            &log,
            last_modified_10_days_ago(StatusCode::FOUND),
        ));
    send(&svc, get("/p")).await;
    at(&clock, 60);
    send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
}

// ---------------------------------------------------------------- §4.2.3 age

#[tokio::test]
async fn upstream_age_is_carried_on_and_counts_against_freshness() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, _, res| {
            put(res, "cache-control", "max-age=60");
            put(res, "age", "10");
        }));
    send(&svc, get("/p")).await;
    let (p, _) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1);
    assert_eq!(ages(&p), ["10"]);
    at(&clock, 20);
    let (p, _) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1);
    assert_eq!(ages(&p), ["30"]);
    at(&clock, 51);
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2, "fresh at +51 s though 10 + 51 > 60");
    assert_eq!(b, "body 2");
}

#[tokio::test]
async fn apparent_age_counts_a_date_in_the_past() {
    let clock = clock();
    let log = Log::default();
    let origin_clock = clock.clone();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, move |_, _, res| {
            let behind = origin_clock.now() - Duration::from_secs(30);
            put(res, "date", &fmt_http_date(behind));
            put(res, "cache-control", "max-age=60");
        }));
    send(&svc, get("/p")).await;
    let (p, _) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1);
    assert_eq!(ages(&p), ["30"]);
    at(&clock, 31);
    send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2, "fresh at +31 s though 30 + 31 > 60");
}

#[tokio::test]
async fn overflowing_age_is_clamped_and_the_response_is_stale() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, _, res| {
            put(res, "cache-control", "max-age=60");
            put(res, "age", "99999999999999999999");
        }));
    for call in 1..=2 {
        let (p, _) = send(&svc, get("/p")).await;
        assert_eq!(log.calls(), call, "a response this old was served as fresh");
        let ages = ages(&p);
        assert!(ages.len() <= 1, "several Age headers: {ages:?}");
        for age in ages {
            let age: u64 = age
                .parse()
                .unwrap_or_else(|_| panic!("Age is not a valid integer: {age:?}"));
            assert!(age >= 2_147_483_648, "Age {age} not clamped high");
        }
    }
}

#[tokio::test]
async fn a_hit_carries_exactly_one_age_header() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, _, res| {
            put(res, "cache-control", "max-age=60");
            put(res, "age", "10");
        }));
    send(&svc, get("/p")).await;
    at(&clock, 5);
    let (p, _) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1);
    assert_eq!(ages(&p).len(), 1, "Age headers: {:?}", ages(&p));
}

// ---------------------------------------------------------------- §5.2.1 request directives

/// A shared cache over an origin answering `max-age=60`, with `/p` stored at T0.
async fn stored_max_age_60(
    clock: &ManualClock,
    log: &Log,
) -> impl Service<
    Req,
    Response = Response<tower_response_cache::ResponseBody<Full<Bytes>>>,
    Error = Infallible,
> + Clone {
    let svc = shared(clock)
        .build()
        .layer(origin(clock, log, cc("max-age=60")));
    send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1);
    svc
}

#[tokio::test]
async fn request_max_age_below_the_current_age_goes_to_the_origin() {
    let clock = clock();
    let log = Log::default();
    let svc = stored_max_age_60(&clock, &log).await;
    at(&clock, 30);
    let (_, b) = send(&svc, get("/p").header("cache-control", "max-age=10")).await;
    assert_eq!(log.calls(), 2);
    assert_eq!(b, "body 2");
}

#[tokio::test]
async fn request_min_fresh_beyond_the_remaining_freshness_goes_to_the_origin() {
    let clock = clock();
    let log = Log::default();
    let svc = stored_max_age_60(&clock, &log).await;
    at(&clock, 30);
    let (_, b) = send(&svc, get("/p").header("cache-control", "min-fresh=10")).await;
    assert_eq!(log.calls(), 1, "min-fresh=10 with 30 s left");
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, get("/p").header("cache-control", "min-fresh=50")).await;
    assert_eq!(log.calls(), 2, "min-fresh=50 with 30 s left");
    assert_eq!(b, "body 2");
}

#[tokio::test]
async fn request_max_stale_accepts_a_stale_response_within_its_limit() {
    let clock = clock();
    let log = Log::default();
    let svc = stored_max_age_60(&clock, &log).await;
    at(&clock, 100);
    let (p, b) = send(&svc, get("/p").header("cache-control", "max-stale=100")).await;
    assert_eq!(log.calls(), 1, "max-stale=100, stale by 40 s");
    assert_eq!(b, "body 1");
    assert_eq!(ages(&p), ["100"]);
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2, "stale served without max-stale");
    assert_eq!(b, "body 2");
}

#[tokio::test]
async fn request_max_stale_below_the_staleness_goes_to_the_origin() {
    let clock = clock();
    let log = Log::default();
    let svc = stored_max_age_60(&clock, &log).await;
    at(&clock, 100);
    send(&svc, get("/p").header("cache-control", "max-stale=10")).await;
    assert_eq!(log.calls(), 2, "max-stale=10, stale by 40 s");
}

#[tokio::test]
async fn request_max_stale_without_a_value_accepts_any_staleness() {
    let clock = clock();
    let log = Log::default();
    let svc = stored_max_age_60(&clock, &log).await;
    at(&clock, 1000);
    let (_, b) = send(&svc, get("/p").header("cache-control", "max-stale")).await;
    assert_eq!(log.calls(), 1);
    assert_eq!(b, "body 1");
}

/// `max-stale` accepts any staleness only while the cache keeps the response:
/// past freshness plus the keep time (one hour by default) it is gone, even
/// from a backend that has not reclaimed it yet (the memory backend reclaims
/// lazily, on writes).
#[tokio::test]
async fn request_max_stale_without_a_value_ends_with_the_keep_time() {
    let clock = clock();
    let log = Log::default();
    let svc = stored_max_age_60(&clock, &log).await;
    at(&clock, 60 + 3600 - 1);
    let (_, b) = send(&svc, get("/p").header("cache-control", "max-stale")).await;
    assert_eq!((log.calls(), &b[..]), (1, &b"body 1"[..]), "still kept");
    at(&clock, 60 + 3600);
    let (p, b) = send(&svc, get("/p").header("cache-control", "max-stale")).await;
    assert_eq!(
        (log.calls(), &b[..]),
        (2, &b"body 2"[..]),
        "past the keep time"
    );
    assert_eq!(
        p.headers.get("cache-status").and_then(|v| v.to_str().ok()),
        Some("tower-response-cache; fwd=stale; fwd-status=200; stored; ttl=60")
    );
}

/// How many calls reached the origin when a response with `cache_control`,
/// stored at T0, is asked for at +100 s with `max-stale=100`.
async fn calls_with_max_stale_on(cache_control: &'static str) -> usize {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, cc(cache_control)));
    send(&svc, get("/p")).await;
    at(&clock, 100);
    send(&svc, get("/p").header("cache-control", "max-stale=100")).await;
    log.calls()
}

#[tokio::test]
async fn max_stale_does_not_serve_a_must_revalidate_response_stale() {
    assert_eq!(
        calls_with_max_stale_on("max-age=60, must-revalidate").await,
        2
    );
}

#[tokio::test]
async fn max_stale_does_not_serve_a_proxy_revalidate_response_stale() {
    assert_eq!(
        calls_with_max_stale_on("max-age=60, proxy-revalidate").await,
        2
    );
}

#[tokio::test]
async fn max_stale_does_not_serve_an_s_maxage_response_stale() {
    assert_eq!(calls_with_max_stale_on("s-maxage=60").await, 2);
}

#[tokio::test]
async fn request_no_cache_goes_to_the_origin_and_replaces_the_stored_response() {
    let clock = clock();
    let log = Log::default();
    let svc = stored_max_age_60(&clock, &log).await;
    at(&clock, 10);
    let (_, b) = send(&svc, get("/p").header("cache-control", "no-cache")).await;
    assert_eq!(log.calls(), 2, "no-cache request answered from the cache");
    assert_eq!(b, "body 2");
    at(&clock, 20);
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
    assert_eq!(
        b, "body 2",
        "the new response did not replace the stored one"
    );
}

#[tokio::test]
async fn request_no_store_response_is_not_stored() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, cc("max-age=60")));
    let (_, b) = send(&svc, get("/p").header("cache-control", "no-store")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2, "stored the response to a no-store request");
    assert_eq!(b, "body 2");
}

#[tokio::test]
async fn request_no_store_is_served_a_fresh_stored_response() {
    let clock = clock();
    let log = Log::default();
    let svc = stored_max_age_60(&clock, &log).await;
    let (_, b) = send(&svc, get("/p").header("cache-control", "no-store")).await;
    assert_eq!(log.calls(), 1);
    assert_eq!(b, "body 1");
}

#[tokio::test]
async fn only_if_cached_with_nothing_stored_is_504() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, cc("max-age=60")));
    let (p, _) = send(&svc, get("/p").header("cache-control", "only-if-cached")).await;
    assert_eq!(p.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(log.calls(), 0);
}

#[tokio::test]
async fn only_if_cached_with_a_fresh_entry_is_a_hit() {
    let clock = clock();
    let log = Log::default();
    let svc = stored_max_age_60(&clock, &log).await;
    let (p, b) = send(&svc, get("/p").header("cache-control", "only-if-cached")).await;
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(b, "body 1");
    assert_eq!(log.calls(), 1);
}

#[tokio::test]
async fn only_if_cached_with_a_stale_entry_is_504() {
    let clock = clock();
    let log = Log::default();
    let svc = stored_max_age_60(&clock, &log).await;
    at(&clock, 100);
    let (p, _) = send(&svc, get("/p").header("cache-control", "only-if-cached")).await;
    assert_eq!(p.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(log.calls(), 1);
}

#[tokio::test]
async fn unknown_request_directives_are_ignored() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, cc("max-age=60")));
    let odd = || get("/p").header("cache-control", "nothing-to-see-here");
    send(&svc, odd()).await;
    let (_, b) = send(&svc, odd()).await;
    assert_eq!(log.calls(), 1);
    assert_eq!(b, "body 1");
}

#[tokio::test]
async fn app_mode_ignores_request_cache_control() {
    let clock = clock();
    let log = Log::default();
    let svc = builder(&clock)
        .build()
        .layer(origin(&clock, &log, cc("max-age=60")));
    send(&svc, get("/p")).await;
    at(&clock, 30);
    for directive in ["max-age=0", "no-cache"] {
        let (_, b) = send(&svc, get("/p").header("cache-control", directive)).await;
        assert_eq!(log.calls(), 1, "app mode honoured request {directive}");
        assert_eq!(b, "body 1");
    }
}

// ---------------------------------------------------------------- §4.3 validation

/// An origin whose 200 is fresh for 60 s with `ETag: "v1"`, and which answers
/// a request with `If-None-Match: "v1"` with a 304 that renews freshness to
/// 100 s and adds `X-New: 1`.
fn etag_origin(_: usize, req: &Req, res: &mut Res) {
    put(res, "etag", r#""v1""#);
    if req
        .headers()
        .get("if-none-match")
        .is_some_and(|v| v == r#""v1""#)
    {
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        empty_body(res);
        put(res, "cache-control", "max-age=100");
        put(res, "x-new", "1");
    } else {
        put(res, "cache-control", "max-age=60");
    }
}

#[tokio::test]
async fn stale_entry_with_etag_is_revalidated_and_a_304_refreshes_it() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, etag_origin));
    send(&svc, get("/p")).await;
    at(&clock, 61);
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
    assert_eq!(log.header(2, "if-none-match").as_deref(), Some(r#""v1""#));
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(b, "body 1");
    assert_eq!(header(&p, "x-new"), Some("1"));
    assert_eq!(header(&p, "cache-control"), Some("max-age=100"));
    assert_eq!(header(&p, "etag"), Some(r#""v1""#));

    at(&clock, 111);
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2, "freshness not renewed by the 304");
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(b, "body 1");
    assert_eq!(header(&p, "x-new"), Some("1"));
    assert_eq!(header(&p, "cache-control"), Some("max-age=100"));
}

#[tokio::test]
async fn stale_entry_with_last_modified_is_revalidated_with_if_modified_since() {
    let clock = clock();
    let log = Log::default();
    let last_modified = date(-(DAY as i64));
    let lm = last_modified.clone();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, move |_, req, res| {
            put(res, "last-modified", &lm);
            if req.headers().contains_key("if-modified-since") {
                *res.status_mut() = StatusCode::NOT_MODIFIED;
                empty_body(res);
                put(res, "cache-control", "max-age=100");
            } else {
                put(res, "cache-control", "max-age=60");
            }
        }));
    send(&svc, get("/p")).await;
    at(&clock, 61);
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
    assert_eq!(log.header(2, "if-modified-since"), Some(last_modified));
    assert_eq!(log.header(2, "if-none-match"), None);
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(b, "body 1");
    at(&clock, 111);
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2, "freshness not renewed by the 304");
    assert_eq!(b, "body 1");
}

#[tokio::test]
async fn revalidation_answered_with_a_new_200_replaces_the_entry() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |n, _, res| {
            put(res, "cache-control", "max-age=60");
            put(res, "etag", &format!(r#""v{n}""#));
        }));
    send(&svc, get("/p")).await;
    at(&clock, 61);
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
    assert_eq!(log.header(2, "if-none-match").as_deref(), Some(r#""v1""#));
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(b, "body 2");
    assert_eq!(header(&p, "etag"), Some(r#""v2""#));
    at(&clock, 62);
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
    assert_eq!(b, "body 2");
}

#[tokio::test]
async fn cache_status_of_a_revalidated_response() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, etag_origin));
    send(&svc, get("/p")).await;
    at(&clock, 61);
    let (p, _) = send(&svc, get("/p")).await;
    let status = header(&p, "cache-status").unwrap_or_default();
    assert!(status.contains("fwd=stale"), "Cache-Status: {status:?}");
    assert!(
        status.contains("fwd-status=304"),
        "Cache-Status: {status:?}"
    );
}

#[tokio::test]
async fn stale_entry_without_a_validator_is_fetched_unconditionally() {
    let clock = clock();
    let log = Log::default();
    let svc = stored_max_age_60(&clock, &log).await;
    at(&clock, 61);
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
    assert_eq!(log.header(2, "if-none-match"), None);
    assert_eq!(log.header(2, "if-modified-since"), None);
    assert_eq!(b, "body 2");
}

#[tokio::test]
async fn client_conditional_request_on_a_fresh_entry_is_answered_304() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, etag_origin));
    send(&svc, get("/p")).await;
    let (p, b) = send(&svc, get("/p").header("if-none-match", r#""v1""#)).await;
    assert_eq!(p.status, StatusCode::NOT_MODIFIED);
    assert!(b.is_empty());
    assert_eq!(log.calls(), 1);
}

// ---------------------------------------------------------------- §4.4 invalidation (both modes)

/// An origin whose GETs are fresh for 60 s (`Vary: Accept`), and whose other
/// methods are answered `status`, with `Location` / `Content-Location` if given.
fn site(
    status: u16,
    location: Option<&'static str>,
    content_location: Option<&'static str>,
) -> impl Fn(usize, &Req, &mut Res) + Clone + Send + Sync + 'static {
    move |_, req, res| {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            put(res, "cache-control", "max-age=60");
            put(res, "vary", "Accept");
            return;
        }
        let status = StatusCode::from_u16(status).expect("status");
        *res.status_mut() = status;
        if status == StatusCode::NO_CONTENT {
            empty_body(res);
        }
        if let Some(location) = location {
            put(res, "location", location);
        }
        if let Some(content_location) = content_location {
            put(res, "content-location", content_location);
        }
    }
}

/// For each (method, status): stores GET /page, sends `method` /page answered
/// `status`, and reports whether the next GET /page was still a hit.
async fn still_hit_after(mode: Mode, cases: &[(Method, u16)]) -> Vec<(Method, u16, bool)> {
    let mut results = Vec::new();
    for (method, status) in cases {
        let clock = clock();
        let log = Log::default();
        let svc = builder(&clock).mode(mode).build().layer(origin(
            &clock,
            &log,
            site(*status, None, None),
        ));
        send(&svc, get("/page")).await;
        assert!(
            is_hit(&svc, &log, "/page").await,
            "{mode:?}: GET not stored"
        );
        send(&svc, request(method.clone(), "/page")).await;
        let hit = is_hit(&svc, &log, "/page").await;
        results.push((method.clone(), *status, hit));
    }
    results
}

async fn successful_post_invalidates(mode: Mode) {
    let cases = [200, 201, 204, 303].map(|s| (Method::POST, s));
    let results = still_hit_after(mode, &cases).await;
    let wrong: Vec<_> = results.iter().filter(|(_, _, hit)| *hit).collect();
    assert!(wrong.is_empty(), "{mode:?}: not invalidated: {wrong:?}");
}

async fn failed_post_does_not_invalidate(mode: Mode) {
    let cases = [500, 404].map(|s| (Method::POST, s));
    let results = still_hit_after(mode, &cases).await;
    let wrong: Vec<_> = results.iter().filter(|(_, _, hit)| !*hit).collect();
    assert!(wrong.is_empty(), "{mode:?}: invalidated: {wrong:?}");
}

async fn other_unsafe_methods_invalidate(mode: Mode) {
    let m_search = Method::from_bytes(b"M-SEARCH").expect("method");
    let cases = [Method::PUT, Method::DELETE, Method::PATCH, m_search].map(|m| (m, 200));
    let results = still_hit_after(mode, &cases).await;
    let wrong: Vec<_> = results.iter().filter(|(_, _, hit)| *hit).collect();
    assert!(wrong.is_empty(), "{mode:?}: not invalidated: {wrong:?}");
}

async fn location_and_content_location_are_invalidated(mode: Mode) {
    let clock = clock();
    let log = Log::default();
    let svc = builder(&clock).mode(mode).build().layer(origin(
        &clock,
        &log,
        site(201, Some("/other"), Some("http://testserver/third")),
    ));
    for uri in ["/page", "/other", "/third"] {
        send(&svc, get(uri)).await;
        assert!(is_hit(&svc, &log, uri).await, "{mode:?}: {uri} not stored");
    }
    send(&svc, request(Method::POST, "/page")).await;
    for uri in ["/page", "/other", "/third"] {
        assert!(
            !is_hit(&svc, &log, uri).await,
            "{mode:?}: {uri} not invalidated"
        );
    }
}

async fn other_origin_location_is_not_invalidated(mode: Mode) {
    let clock = clock();
    let log = Log::default();
    let svc = builder(&clock).mode(mode).build().layer(origin(
        &clock,
        &log,
        site(303, Some("http://elsewhere.example/other"), None),
    ));
    send(&svc, get("/other")).await;
    assert!(is_hit(&svc, &log, "/other").await, "{mode:?}: not stored");
    send(&svc, request(Method::POST, "/page")).await;
    assert!(
        is_hit(&svc, &log, "/other").await,
        "{mode:?}: testserver's /other invalidated by another host's Location"
    );
}

async fn all_variants_are_invalidated(mode: Mode) {
    let clock = clock();
    let log = Log::default();
    let svc = builder(&clock)
        .mode(mode)
        .build()
        .layer(origin(&clock, &log, site(200, None, None)));
    let accepts = ["text/html", "application/json"];
    for accept in accepts {
        send(&svc, get("/page").header("accept", accept)).await;
    }
    for accept in accepts {
        send(&svc, get("/page").header("accept", accept)).await;
    }
    assert_eq!(log.calls(), 2, "{mode:?}: variants not stored");
    send(&svc, request(Method::POST, "/page")).await;
    for (n, accept) in accepts.into_iter().enumerate() {
        let (_, b) = send(&svc, get("/page").header("accept", accept)).await;
        assert_eq!(
            log.calls(),
            4 + n,
            "{mode:?}: {accept} variant not invalidated"
        );
        assert_eq!(b, format!("body {}", 4 + n));
    }
}

/// One test per mode (`name::app`, `name::shared`) for each async fn above.
macro_rules! in_both_modes {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn app() {
                    super::$name(tower_response_cache::Mode::App).await;
                }

                #[tokio::test]
                async fn shared() {
                    super::$name(tower_response_cache::Mode::Shared).await;
                }
            }
        )*
    };
}

in_both_modes!(
    successful_post_invalidates,
    failed_post_does_not_invalidate,
    other_unsafe_methods_invalidate,
    location_and_content_location_are_invalidated,
    other_origin_location_is_not_invalidated,
    all_variants_are_invalidated,
);

// ---------------------------------------------------------------- RFC 9213 targeted cache-control

/// An origin answering `CDN-Cache-Control: cdn` and `Cache-Control: cc`.
fn cdn_and_cc(
    cdn: &'static str,
    cc: &'static str,
) -> impl Fn(usize, &Req, &mut Res) + Clone + Send + Sync + 'static {
    move |_, _, res| {
        put(res, "cdn-cache-control", cdn);
        put(res, "cache-control", cc);
    }
}

#[tokio::test]
async fn cdn_cache_control_max_age_overrides_cache_control_no_store() {
    let clock = clock();
    let log = Log::default();
    let svc =
        shared(&clock)
            .build()
            .layer(origin(&clock, &log, cdn_and_cc("max-age=60", "no-store")));
    send(&svc, get("/p")).await;
    at(&clock, 30);
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1);
    assert_eq!(b, "body 1");
}

#[tokio::test]
async fn cdn_cache_control_no_store_overrides_cache_control_max_age() {
    let clock = clock();
    let log = Log::default();
    let svc =
        shared(&clock)
            .build()
            .layer(origin(&clock, &log, cdn_and_cc("no-store", "max-age=60")));
    send(&svc, get("/p")).await;
    at(&clock, 1);
    send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
}

#[tokio::test]
async fn cdn_cache_control_max_age_overrides_cache_control_max_age() {
    let clock = clock();
    let log = Log::default();
    let svc =
        shared(&clock)
            .build()
            .layer(origin(&clock, &log, cdn_and_cc("max-age=10", "max-age=60")));
    send(&svc, get("/p")).await;
    at(&clock, 5);
    send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1, "not stored");
    at(&clock, 11);
    send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2, "Cache-Control's max-age used instead");
}

#[tokio::test]
async fn invalid_cdn_cache_control_is_ignored() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock).build().layer(origin(
        &clock,
        &log,
        cdn_and_cc(r#"max-age=,,;;""#, "max-age=60"),
    ));
    send(&svc, get("/p")).await;
    at(&clock, 30);
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1);
    assert_eq!(b, "body 1");
}

#[tokio::test]
async fn cdn_cache_control_is_passed_on_unchanged() {
    let clock = clock();
    let log = Log::default();
    let svc =
        shared(&clock)
            .build()
            .layer(origin(&clock, &log, cdn_and_cc("max-age=60", "no-store")));
    let (p, _) = send(&svc, get("/p")).await;
    assert_eq!(header(&p, "cdn-cache-control"), Some("max-age=60"));
    let (p, _) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1);
    assert_eq!(header(&p, "cdn-cache-control"), Some("max-age=60"));
    assert_eq!(header(&p, "cache-control"), Some("no-store"));
}

#[tokio::test]
async fn first_configured_targeted_field_present_wins() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .targeted_cache_control([
            HeaderName::from_static("example-cache-control"),
            HeaderName::from_static("cdn-cache-control"),
        ])
        .build()
        .layer(origin(&clock, &log, |n, _, res| {
            // The first response carries both fields; later ones only CDN-Cache-Control.
            if n == 1 {
                put(res, "example-cache-control", "max-age=10");
            }
            put(res, "cdn-cache-control", "max-age=60");
            put(res, "cache-control", "no-store");
        }));
    send(&svc, get("/p")).await;
    at(&clock, 5);
    send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1, "not stored");
    at(&clock, 11);
    send(&svc, get("/p")).await;
    assert_eq!(
        log.calls(),
        2,
        "Example-Cache-Control's max-age=10 not used"
    );
    // Without Example-Cache-Control, CDN-Cache-Control applies.
    at(&clock, 41);
    send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2, "CDN-Cache-Control's max-age=60 not used");
}

#[tokio::test]
async fn empty_targeted_list_ignores_cdn_cache_control() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .targeted_cache_control(std::iter::empty::<HeaderName>())
        .build()
        .layer(origin(&clock, &log, cdn_and_cc("max-age=60", "max-age=10")));
    send(&svc, get("/p")).await;
    at(&clock, 5);
    send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1, "not stored");
    at(&clock, 11);
    send(&svc, get("/p")).await;
    assert_eq!(
        log.calls(),
        2,
        "CDN-Cache-Control obeyed with targeting off"
    );
}

// ---------------------------------------------------------------- HEAD

#[tokio::test]
async fn head_after_a_stored_get_is_a_hit_with_the_get_headers() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, _, res| {
            put(res, "cache-control", "max-age=60");
            put(res, "x-foo", "bar");
        }));
    send(&svc, get("/p")).await;
    at(&clock, 1);
    let (p, b) = send(&svc, head("/p")).await;
    assert_eq!(log.calls(), 1);
    assert_eq!(p.status, StatusCode::OK);
    assert!(b.is_empty(), "HEAD body: {b:?}");
    assert_eq!(header(&p, "x-foo"), Some("bar"));
    assert_eq!(header(&p, "cache-control"), Some("max-age=60"));
    assert_eq!(header(&p, "date"), Some(date(0).as_str()));
}

// ---------------------------------------------------------------- §5.1 strict Age

/// Whether a GET for `/p` is a hit at each of `offsets` (ascending, seconds
/// after T0), once a response shaped by `f` was fetched at T0 through a shared
/// cache built by `configure`.
async fn hits_at<F>(
    configure: impl FnOnce(CacheLayerBuilder) -> CacheLayerBuilder,
    f: F,
    offsets: &[u64],
) -> Vec<bool>
where
    F: Fn(usize, &Req, &mut Res) + Clone + Send + Sync + 'static,
{
    let clock = clock();
    let log = Log::default();
    let svc = configure(shared(&clock))
        .build()
        .layer(origin(&clock, &log, f));
    send(&svc, get("/p")).await;
    let mut hits = Vec::new();
    for &offset in offsets {
        at(&clock, offset);
        hits.push(is_hit(&svc, &log, "/p").await);
    }
    hits
}

/// The default shared cache.
fn defaults(b: CacheLayerBuilder) -> CacheLayerBuilder {
    b
}

/// An origin answering `max-age=3600` with one `Age` line per value.
fn max_age_3600_with_ages(
    values: &'static [&'static str],
) -> impl Fn(usize, &Req, &mut Res) + Clone + Send + Sync + 'static {
    move |_, _, res| {
        put(res, "cache-control", "max-age=3600");
        for value in values {
            set(res, "age", value);
        }
    }
}

#[tokio::test]
async fn an_age_that_is_not_one_delta_seconds_makes_the_response_stale() {
    let cases: [&'static [&'static str]; 8] = [
        &["abc"],
        &["-7200"],
        &["7200.0"],
        &["7200,0"],
        &["0, 0"],
        &["7200;foo=bar"],
        &["0", "0"],
        &["0", "7200"],
    ];
    for values in cases {
        let hits = hits_at(defaults, max_age_3600_with_ages(values), &[1]).await;
        assert_eq!(hits, [false], "Age: {values:?} served as fresh");
    }
}

#[tokio::test]
async fn a_single_valid_age_still_counts() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, max_age_3600_with_ages(&["10"])));
    send(&svc, get("/p")).await;
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1, "Age: 10 made a max-age=3600 response stale");
    assert_eq!(b, "body 1");
    assert_eq!(ages(&p), ["10"]);
}

// ---------------------------------------------------------------- §3.2 what a 304 updates

/// Fields that describe the stored body or select it: a 304 does not change them.
const BODY_FIELDS: [&str; 5] = [
    "content-encoding",
    "content-range",
    "content-md5",
    "etag",
    "content-length",
];

/// An origin whose 200 (`body 1`, 6 bytes) is fresh for 60 s with `ETag: "v1"`
/// and the body fields, and which answers `If-None-Match: "v1"` with a 304
/// carrying other values for them, `X-Updated: 1`, `max-age=100` and
/// hop-by-hop fields.
fn origin_304_with_new_body_fields(_: usize, req: &Req, res: &mut Res) {
    if req
        .headers()
        .get("if-none-match")
        .is_some_and(|v| v == r#""v1""#)
    {
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        empty_body(res);
        put(res, "cache-control", "max-age=100");
        put(res, "content-encoding", "br");
        put(res, "content-range", "bytes 0-99/100");
        put(res, "content-md5", "bmV3");
        put(res, "etag", r#""v2""#);
        put(res, "content-length", "100");
        put(res, "x-updated", "1");
        put(res, "connection", "X-Hop");
        put(res, "x-hop", "1");
        put(res, "keep-alive", "timeout=5");
    } else {
        put(res, "cache-control", "max-age=60");
        put(res, "content-encoding", "gzip");
        put(res, "content-range", "bytes 0-5/6");
        put(res, "content-md5", "b2xk");
        put(res, "etag", r#""v1""#);
        put(res, "content-length", "6");
    }
}

/// What a served response says for each of the body fields.
fn body_fields(p: &http::response::Parts) -> Vec<Option<&str>> {
    BODY_FIELDS.iter().map(|name| header(p, name)).collect()
}

#[tokio::test]
async fn a_304_does_not_update_the_stored_body_fields() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, origin_304_with_new_body_fields));
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(b, "body 1");
    let stored = body_fields(&p);
    assert_eq!(
        stored,
        [
            Some("gzip"),
            Some("bytes 0-5/6"),
            Some("b2xk"),
            Some(r#""v1""#),
            Some("6"),
        ]
    );

    at(&clock, 61);
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
    assert_eq!(log.header(2, "if-none-match").as_deref(), Some(r#""v1""#));
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(b, "body 1");
    assert_eq!(body_fields(&p), stored, "the 304 replaced a body field");
    assert_eq!(
        header(&p, "content-length"),
        Some(b.len().to_string().as_str())
    );
    assert_eq!(header(&p, "x-updated"), Some("1"));
    assert_eq!(header(&p, "cache-control"), Some("max-age=100"));

    at(&clock, 111);
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2, "freshness not renewed by the 304");
    assert_eq!(b, "body 1");
    assert_eq!(
        body_fields(&p),
        stored,
        "the 304 replaced a stored body field"
    );
    assert_eq!(
        header(&p, "content-length"),
        Some(b.len().to_string().as_str())
    );
    assert_eq!(header(&p, "x-updated"), Some("1"));
    assert_eq!(header(&p, "cache-control"), Some("max-age=100"));
}

#[tokio::test]
async fn a_304_does_not_merge_in_its_hop_by_hop_fields() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, origin_304_with_new_body_fields));
    send(&svc, get("/p")).await;
    at(&clock, 61);
    let revalidated = send(&svc, get("/p")).await.0;
    at(&clock, 62);
    let hit = send(&svc, get("/p")).await.0;
    assert_eq!(log.calls(), 2);
    for (what, p) in [("revalidated", &revalidated), ("hit", &hit)] {
        assert_eq!(header(p, "x-updated"), Some("1"), "{what}: 304 not merged");
        for name in ["connection", "x-hop", "keep-alive"] {
            assert_eq!(header(p, name), None, "{what}: the 304's {name} merged in");
        }
    }
}

// ---------------------------------------------------------------- Surrogate-Control

/// An origin answering `Surrogate-Control: sc` and, if given, `Cache-Control: cc`.
fn surrogate(
    sc: &'static str,
    cc: Option<&'static str>,
) -> impl Fn(usize, &Req, &mut Res) + Clone + Send + Sync + 'static {
    move |_, _, res| {
        put(res, "surrogate-control", sc);
        if let Some(cc) = cc {
            put(res, "cache-control", cc);
        }
    }
}

/// A shared cache whose device token is `edge`.
fn edge(b: CacheLayerBuilder) -> CacheLayerBuilder {
    b.surrogate_control(Some("edge"))
}

/// A shared cache that ignores `Surrogate-Control`.
fn no_surrogate(b: CacheLayerBuilder) -> CacheLayerBuilder {
    b.surrogate_control(None)
}

/// The `Surrogate-Capability` of the first request the origin received from a
/// shared cache built by `configure`, for a `method` request to `/p`.
async fn capability_sent(
    configure: impl FnOnce(CacheLayerBuilder) -> CacheLayerBuilder,
    method: Method,
) -> Option<String> {
    let clock = clock();
    let log = Log::default();
    let svc = configure(shared(&clock))
        .build()
        .layer(origin(&clock, &log, cc("max-age=60")));
    send(&svc, request(method, "/p")).await;
    assert_eq!(log.calls(), 1);
    log.header(1, "surrogate-capability")
}

#[tokio::test]
async fn a_forwarded_get_announces_the_surrogate_capability() {
    assert_eq!(
        capability_sent(defaults, Method::GET).await.as_deref(),
        Some(r#"tower-response-cache="Surrogate/1.0""#)
    );
}

#[tokio::test]
async fn the_announced_capability_uses_the_configured_token() {
    assert_eq!(
        capability_sent(edge, Method::GET).await.as_deref(),
        Some(r#"edge="Surrogate/1.0""#)
    );
}

#[tokio::test]
async fn no_surrogate_capability_when_surrogate_control_is_off() {
    assert_eq!(capability_sent(no_surrogate, Method::GET).await, None);
}

#[tokio::test]
async fn a_post_is_passed_on_without_a_surrogate_capability() {
    assert_eq!(capability_sent(defaults, Method::POST).await, None);
}

#[tokio::test]
async fn surrogate_max_age_alone_gives_freshness() {
    let hits = hits_at(defaults, surrogate("max-age=60", None), &[30, 61]).await;
    assert_eq!(hits, [true, false], "[hit at +30 s, hit at +61 s]");
}

#[tokio::test]
async fn surrogate_max_age_overrides_cache_control_no_store() {
    let hits = hits_at(defaults, surrogate("max-age=60", Some("no-store")), &[30]).await;
    assert_eq!(hits, [true]);
}

#[tokio::test]
async fn surrogate_no_store_overrides_cache_control_max_age() {
    for sc in ["no-store", "no-store-remote"] {
        let hits = hits_at(defaults, surrogate(sc, Some("max-age=60")), &[1]).await;
        assert_eq!(hits, [false], "Surrogate-Control: {sc} stored");
    }
}

#[tokio::test]
async fn surrogate_max_age_overrides_cache_control_max_age() {
    let hits = hits_at(
        defaults,
        surrogate("max-age=10", Some("max-age=3600")),
        &[5, 11],
    )
    .await;
    assert_eq!(hits, [true, false], "[hit at +5 s, hit at +11 s]");
}

#[tokio::test]
async fn surrogate_directive_names_ignore_case() {
    let hits = hits_at(defaults, surrogate("MaX-aGe=60", Some("no-store")), &[30]).await;
    assert_eq!(hits, [true]);
}

#[tokio::test]
async fn surrogate_max_age_is_the_part_before_the_plus() {
    let hits = hits_at(defaults, surrogate("max-age=60+30", None), &[59, 61]).await;
    assert_eq!(hits, [true, false], "[hit at +59 s, hit at +61 s]");
}

#[tokio::test]
async fn surrogate_directive_targeted_at_this_cache_applies() {
    let hits = hits_at(
        defaults,
        surrogate("max-age=60;tower-response-cache", Some("no-store")),
        &[30],
    )
    .await;
    assert_eq!(hits, [true]);
}

#[tokio::test]
async fn surrogate_directive_targeted_at_another_device_is_ignored() {
    let hits = hits_at(
        defaults,
        surrogate("max-age=60;other-device", Some("no-store")),
        &[1],
    )
    .await;
    assert_eq!(hits, [false], "Cache-Control: no-store not obeyed");
}

#[tokio::test]
async fn surrogate_directive_targeted_at_the_configured_token_applies() {
    let hits = hits_at(edge, surrogate("max-age=60;edge", Some("no-store")), &[30]).await;
    assert_eq!(hits, [true]);
}

#[tokio::test]
async fn surrogate_max_age_zero_sets_a_future_expires_aside() {
    let hits = hits_at(
        defaults,
        |_, _, res| {
            put(res, "surrogate-control", "max-age=0");
            put(res, "expires", &date(3600));
        },
        &[0, 1],
    )
    .await;
    assert_eq!(hits, [false, false], "served from cache under Expires");
}

#[tokio::test]
async fn cdn_cache_control_wins_over_surrogate_control() {
    let hits = hits_at(
        defaults,
        |_, _, res| {
            put(res, "cdn-cache-control", "no-store");
            put(res, "surrogate-control", "max-age=60");
        },
        &[1],
    )
    .await;
    assert_eq!(
        hits,
        [false],
        "Surrogate-Control obeyed over CDN-Cache-Control"
    );
}

#[tokio::test]
async fn surrogate_control_is_ignored_when_off() {
    let hits = hits_at(
        no_surrogate,
        surrogate("no-store", Some("max-age=60")),
        &[30],
    )
    .await;
    assert_eq!(hits, [true], "Surrogate-Control: no-store obeyed when off");
}

#[tokio::test]
async fn surrogate_control_is_passed_on_unchanged() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock).build().layer(origin(
        &clock,
        &log,
        surrogate("max-age=60;tower-response-cache, no-store;other", None),
    ));
    let expected = Some("max-age=60;tower-response-cache, no-store;other");
    let (p, _) = send(&svc, get("/p")).await;
    assert_eq!(header(&p, "surrogate-control"), expected);
    at(&clock, 1);
    let (p, _) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 1);
    assert_eq!(header(&p, "surrogate-control"), expected);
}

#[tokio::test]
async fn with_another_token_the_default_token_is_another_device() {
    let hits = hits_at(
        edge,
        surrogate("max-age=60;tower-response-cache", Some("no-store")),
        &[1],
    )
    .await;
    assert_eq!(hits, [false], "directive for the default token obeyed");
}

// ---------------------------------------------------------------- §5.2 strict directive grammar

/// Whether a response with `Cache-Control: value`, stored at T0, is a hit at +30 s.
async fn hit_at_30_with(value: &'static str) -> bool {
    hits_at(defaults, cc(value), &[30]).await == [true]
}

#[tokio::test]
async fn whitespace_around_the_equals_sign_gives_no_freshness() {
    for value in ["max-age =60", "max-age= 60"] {
        assert!(
            !hit_at_30_with(value).await,
            "Cache-Control: {value} served from cache"
        );
    }
}

#[tokio::test]
async fn a_quoted_max_age_is_accepted() {
    assert!(hit_at_30_with(r#"max-age="60""#).await);
}

#[tokio::test]
async fn the_first_of_two_max_age_directives_counts() {
    assert!(
        hit_at_30_with("max-age=60, max-age=0").await,
        "max-age=60, max-age=0 not fresh"
    );
    assert!(
        !hit_at_30_with("max-age=0, max-age=60").await,
        "max-age=0, max-age=60 fresh"
    );
}

// ---------------------------------------------------------------- §3 stale on arrival

#[tokio::test]
async fn stale_on_arrival_without_a_validator_is_not_stored() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, cc("max-age=0")));
    send(&svc, get("/p")).await;
    at(&clock, 1);
    let (_, b) = send(&svc, get("/p").header("cache-control", "max-stale=1000")).await;
    assert_eq!(
        log.calls(),
        2,
        "a stale response without validator was stored"
    );
    assert_eq!(b, "body 2");
}

#[tokio::test]
async fn stale_on_arrival_with_a_validator_is_stored_and_revalidated() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |_, req, res| {
            put(res, "cache-control", "max-age=0");
            put(res, "etag", r#""x""#);
            if req.headers().contains_key("if-none-match") {
                *res.status_mut() = StatusCode::NOT_MODIFIED;
                empty_body(res);
            }
        }));
    send(&svc, get("/p")).await;
    at(&clock, 1);
    let (p, b) = send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
    assert_eq!(
        log.header(2, "if-none-match").as_deref(),
        Some(r#""x""#),
        "not revalidated: the response was not stored"
    );
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(b, "body 1");
}

// ---------------------------------------------------------------- review fixes

#[tokio::test]
async fn a_cookie_with_vary_cookie_is_never_stored_even_when_cookies_are() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .store_responses_with_cookies(true)
        .build()
        .layer(origin(&clock, &log, |_, _, res| {
            put(res, "cache-control", "max-age=60");
            put(res, "set-cookie", "sid=A");
            put(res, "vary", "Cookie");
        }));
    send(&svc, get("/p")).await;
    assert!(
        !is_hit(&svc, &log, "/p").await,
        "a session cookie was replayed"
    );
}

#[tokio::test]
async fn a_304_that_makes_the_response_private_removes_the_stored_copy() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .stale_while_revalidate(Duration::from_secs(600))
        .build()
        .layer(origin(&clock, &log, |n, _, res| {
            put(res, "etag", "\"v1\"");
            if n == 1 {
                put(res, "cache-control", "max-age=60");
            } else {
                *res.status_mut() = StatusCode::NOT_MODIFIED;
                empty_body(res);
                put(res, "cache-control", "private, max-age=60");
            }
        }));
    send(&svc, get("/p")).await;
    // Stale: the entry has an ETag, so a request past the stale window revalidates.
    at(&clock, 61 + 601);
    send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
    // The copy is gone: within what would be its stale window it is not served.
    at(&clock, 61 + 602);
    assert!(
        !is_hit(&svc, &log, "/p").await,
        "a private response was kept"
    );
}

#[tokio::test]
async fn a_304_that_drops_public_narrows_who_is_served() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, |n, _, res| {
            put(res, "etag", "\"v1\"");
            if n == 1 {
                put(res, "cache-control", "public, max-age=60");
            } else {
                *res.status_mut() = StatusCode::NOT_MODIFIED;
                empty_body(res);
                put(res, "cache-control", "max-age=60");
            }
        }));
    send(&svc, get("/p")).await;
    at(&clock, 61);
    send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2);
    let before = log.calls();
    send(&svc, get("/p").header("authorization", "Bearer x")).await;
    assert_eq!(
        log.calls(),
        before + 1,
        "a response no longer public was served to an authorised request"
    );
}

#[tokio::test]
async fn an_unsafe_request_invalidates_the_url_under_both_schemes() {
    let clock = clock();
    let log = Log::default();
    let svc = shared(&clock)
        .build()
        .layer(origin(&clock, &log, cc("max-age=60")));
    // Stored by an HTTP/2-style request (absolute URI, https).
    send(&svc, Request::get("https://testserver/p")).await;
    let before = log.calls();
    send(&svc, Request::get("https://testserver/p")).await;
    assert_eq!(log.calls(), before, "not stored");
    // An HTTP/1.1 POST (origin form, no scheme).
    send(&svc, request(Method::POST, "/p")).await;
    let before = log.calls();
    send(&svc, Request::get("https://testserver/p")).await;
    assert_eq!(log.calls(), before + 1, "the https copy survived the POST");
}

#[tokio::test]
async fn tags_survive_a_304_refresh() {
    let clock = clock();
    let log = Log::default();
    let layer = shared(&clock).build();
    let handle = layer.handle();
    let svc = layer.layer(origin(&clock, &log, |n, _, res| {
        put(res, "etag", "\"v1\"");
        put(res, "cache-control", "max-age=60");
        if n == 1 {
            put(res, "cache-tag", "product-7");
        } else {
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            empty_body(res);
        }
    }));
    send(&svc, get("/p")).await;
    at(&clock, 61);
    send(&svc, get("/p")).await;
    assert_eq!(log.calls(), 2, "revalidated");
    assert!(is_hit(&svc, &log, "/p").await);
    assert_eq!(handle.purge_tag("product-7").await, 1);
    assert!(
        !is_hit(&svc, &log, "/p").await,
        "the refreshed entry lost its tag"
    );
}
