//! Django's cache-middleware behaviours B1..B35 (spec section 7), with the
//! crate's deliberate departures asserted where DESIGN.md makes them.
mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tower::Layer;
use tower_response_cache::backend::MemoryBackend;

const MISS_STORED_600: &str = "tower-response-cache; fwd=uri-miss; fwd-status=200; stored; ttl=600";
const MISS_UNSTORED: &str = "tower-response-cache; fwd=uri-miss; fwd-status=200";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn req(method: Method, uri: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "testserver")
}

// ---------------------------------------------------------------- storage / freshness

#[tokio::test]
async fn b1_cache_page_2_sets_headers_hits_with_age_and_expires_at_2s() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .timeout(secs(2))
        .build()
        .layer(view(&calls, |_, _| {}));

    let (p, body) = send(&svc, get("/view/")).await;
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(body, "body 1");
    assert_eq!(header(&p, "expires"), Some("Sun, 17 Jul 2016 10:00:02 GMT"));
    assert_eq!(header(&p, "cache-control"), Some("max-age=2"));
    assert_eq!(header(&p, "age"), None);
    assert_eq!(
        header(&p, "cache-status"),
        Some("tower-response-cache; fwd=uri-miss; fwd-status=200; stored; ttl=2")
    );

    at(&clock, 1);
    let (p, body) = send(&svc, get("/view/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(calls.get(), 1);
    assert_eq!(header(&p, "expires"), Some("Sun, 17 Jul 2016 10:00:02 GMT"));
    assert_eq!(header(&p, "cache-control"), Some("max-age=2"));
    assert_eq!(header(&p, "age"), Some("1"));
    assert_eq!(
        header(&p, "cache-status"),
        Some("tower-response-cache; hit; ttl=1")
    );

    at(&clock, 2);
    let (p, body) = send(&svc, get("/view/")).await;
    assert_eq!(body, "body 2");
    assert_eq!(calls.get(), 2);
    assert_eq!(header(&p, "expires"), Some("Sun, 17 Jul 2016 10:00:04 GMT"));
    assert_eq!(header(&p, "age"), None);
}

#[tokio::test]
async fn b2_default_600s_miss_hit_with_age_then_expired_miss() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));

    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(header(&p, "expires"), Some("Sun, 17 Jul 2016 10:10:00 GMT"));
    assert_eq!(header(&p, "cache-control"), Some("max-age=600"));
    assert_eq!(header(&p, "age"), None);
    assert_eq!(header(&p, "cache-status"), Some(MISS_STORED_600));

    at(&clock, 5);
    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(calls.get(), 1);
    assert_eq!(header(&p, "age"), Some("5"));
    assert_eq!(header(&p, "expires"), Some("Sun, 17 Jul 2016 10:10:00 GMT"));
    assert_eq!(header(&p, "cache-control"), Some("max-age=600"));
    assert_eq!(
        header(&p, "cache-status"),
        Some("tower-response-cache; hit; ttl=595")
    );

    at(&clock, 601);
    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 2");
    assert_eq!(calls.get(), 2);
    assert_eq!(header(&p, "expires"), Some("Sun, 17 Jul 2016 10:20:01 GMT"));
    assert_eq!(header(&p, "cache-control"), Some("max-age=600"));
    assert_eq!(header(&p, "age"), None);
    assert_eq!(
        header(&p, "cache-status"),
        Some("tower-response-cache; fwd=stale; fwd-status=200; stored; ttl=600")
    );

    at(&clock, 602);
    let (_, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 2");
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn b2_entry_is_fresh_until_just_before_its_timeout() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    send(&svc, get("/p/")).await;
    at(&clock, 599);
    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(header(&p, "age"), Some("599"));
    assert_eq!(
        header(&p, "cache-status"),
        Some("tower-response-cache; hit; ttl=1")
    );
    // Django's locmem treats `expires <= now` as expired.
    at(&clock, 600);
    let (_, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 2");
}

#[tokio::test]
async fn b3_response_max_age_30_sets_lifetime() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, res| {
        set(res, "cache-control", "max-age=30")
    }));

    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(header(&p, "cache-control"), Some("max-age=30"));
    assert_eq!(header(&p, "expires"), Some("Sun, 17 Jul 2016 10:00:30 GMT"));
    assert_eq!(
        header(&p, "cache-status"),
        Some("tower-response-cache; fwd=uri-miss; fwd-status=200; stored; ttl=30")
    );

    at(&clock, 29);
    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(header(&p, "age"), Some("29"));

    at(&clock, 31);
    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 2");
    assert_eq!(header(&p, "expires"), Some("Sun, 17 Jul 2016 10:01:01 GMT"));
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn b4_response_max_age_0_never_stored_and_no_expires_added() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, res| {
        set(res, "cache-control", "max-age=0")
    }));
    for n in 1..=2 {
        let (p, body) = send(&svc, get("/p/")).await;
        assert_eq!(body, format!("body {n}"));
        assert_eq!(header(&p, "cache-control"), Some("max-age=0"));
        assert_eq!(header(&p, "expires"), None);
        assert_eq!(header(&p, "age"), None);
        assert_eq!(header(&p, "cache-status"), Some(MISS_UNSTORED));
    }
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn b4_negative_max_age_is_kept_expires_now_and_not_stored() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, res| {
        set(res, "cache-control", "max-age=-5")
    }));
    for n in 1..=2 {
        let (p, body) = send(&svc, get("/p/")).await;
        assert_eq!(body, format!("body {n}"));
        assert_eq!(header(&p, "cache-control"), Some("max-age=-5"));
        assert_eq!(header(&p, "expires"), Some("Sun, 17 Jul 2016 10:00:00 GMT"));
    }
}

#[tokio::test]
async fn b5_public_max_age_100_stored_100s_with_headers_kept() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, res| {
        set(res, "cache-control", "public, max-age=100")
    }));
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(header(&p, "cache-control"), Some("public, max-age=100"));
    assert_eq!(header(&p, "expires"), Some("Sun, 17 Jul 2016 10:01:40 GMT"));

    at(&clock, 99);
    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(header(&p, "age"), Some("99"));

    at(&clock, 100);
    let (_, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 2");
}

#[tokio::test]
async fn b6_page_timeout_60_beats_larger_response_max_age() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .timeout(secs(60))
        .build()
        .layer(view(&calls, |_, res| {
            set(res, "cache-control", "max-age=3000")
        }));
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(header(&p, "cache-control"), Some("max-age=60"));
    assert_eq!(header(&p, "expires"), Some("Sun, 17 Jul 2016 10:01:00 GMT"));

    at(&clock, 59);
    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(header(&p, "age"), Some("59"));

    at(&clock, 61);
    let (_, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 2");
}

#[tokio::test]
async fn b6_page_timeout_3000_keeps_smaller_max_age_header_but_lives_3000s() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .timeout(secs(3000))
        .build()
        .layer(view(&calls, |_, res| {
            set(res, "cache-control", "max-age=60")
        }));
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(header(&p, "cache-control"), Some("max-age=60"));
    assert_eq!(header(&p, "expires"), Some("Sun, 17 Jul 2016 10:50:00 GMT"));
    assert_eq!(
        header(&p, "cache-status"),
        Some("tower-response-cache; fwd=uri-miss; fwd-status=200; stored; ttl=3000")
    );

    // Django's Age: max(0, max_age - (expires - now)).
    at(&clock, 61);
    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(header(&p, "age"), Some("0"));

    at(&clock, 2999);
    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(header(&p, "age"), Some("59"));
    assert_eq!(calls.get(), 1);

    at(&clock, 3000);
    let (_, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 2");
}

#[tokio::test]
async fn b7_page_timeout_60_overrides_response_max_age_0() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .timeout(secs(60))
        .build()
        .layer(view(&calls, |_, res| {
            set(res, "cache-control", "max-age=0")
        }));
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(header(&p, "cache-control"), Some("max-age=0"));
    assert_eq!(header(&p, "expires"), Some("Sun, 17 Jul 2016 10:01:00 GMT"));

    at(&clock, 1);
    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(calls.get(), 1);
    assert_eq!(header(&p, "age"), Some("0"));
}

#[tokio::test]
async fn b8_page_timeout_0_patches_headers_but_never_stores() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .timeout(Duration::ZERO)
        .build()
        .layer(view(&calls, |_, _| {}));
    for n in 1..=2 {
        let (p, body) = send(&svc, get("/p/")).await;
        assert_eq!(body, format!("body {n}"));
        assert_eq!(header(&p, "expires"), Some("Sun, 17 Jul 2016 10:00:00 GMT"));
        assert_eq!(header(&p, "cache-control"), Some("max-age=0"));
        assert_eq!(header(&p, "cache-status"), Some(MISS_UNSTORED));
    }
}

#[tokio::test]
async fn b8_page_timeout_0_lowers_response_max_age_to_0() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .timeout(Duration::ZERO)
        .build()
        .layer(view(&calls, |_, res| {
            set(res, "cache-control", "public, max-age=100")
        }));
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(header(&p, "cache-control"), Some("public, max-age=0"));
    send(&svc, get("/p/")).await;
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn b9_no_page_timeout_behaves_like_middleware_default() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(header(&p, "cache-control"), Some("max-age=600"));
    at(&clock, 599);
    let (_, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 1");
    at(&clock, 600);
    let (_, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 2");
}

#[tokio::test]
async fn b9_default_timeout_setting_replaces_600s_when_response_is_silent() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .default_timeout(secs(30))
        .build()
        .layer(view(&calls, |req, res| {
            if req.uri().path() == "/own/" {
                set(res, "cache-control", "max-age=100");
            }
        }));
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(header(&p, "cache-control"), Some("max-age=30"));
    assert_eq!(header(&p, "expires"), Some("Sun, 17 Jul 2016 10:00:30 GMT"));
    // A response max-age still beats the default timeout.
    let (p, _) = send(&svc, get("/own/")).await;
    assert_eq!(header(&p, "cache-control"), Some("max-age=100"));
    at(&clock, 30);
    let (_, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 3");
    let (_, body) = send(&svc, get("/own/")).await;
    assert_eq!(body, "body 2");
}

#[tokio::test]
async fn b10_view_expires_preserved_max_age_600_added_age_0() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, res| {
        set(res, "expires", "Thu, 01 Jan 2099 00:00:00 GMT")
    }));
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(header(&p, "expires"), Some("Thu, 01 Jan 2099 00:00:00 GMT"));
    assert_eq!(header(&p, "cache-control"), Some("max-age=600"));

    at(&clock, 10);
    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(header(&p, "age"), Some("0"));
    assert_eq!(header(&p, "expires"), Some("Thu, 01 Jan 2099 00:00:00 GMT"));

    at(&clock, 600);
    let (_, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 2");
}

// ---------------------------------------------------------------- methods, HEAD, status, streaming

#[tokio::test]
async fn b11_post_passes_through_untouched_and_does_not_disturb_stored_get() {
    let clock = clock();
    let calls = Calls::default();
    // Django's behaviour; by default the cache invalidates (see the next test).
    let svc = builder(&clock)
        .invalidate_on_unsafe_methods(false)
        .build()
        .layer(view(&calls, |_, _| {}));
    send(&svc, get("/p/")).await;

    let (p, body) = send(&svc, req(Method::POST, "/p/")).await;
    assert_eq!(body, "body 2");
    assert_eq!(header(&p, "expires"), None);
    assert_eq!(header(&p, "cache-control"), None);
    assert_eq!(header(&p, "age"), None);
    assert_eq!(
        header(&p, "cache-status"),
        Some("tower-response-cache; fwd=method; fwd-status=200")
    );

    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(header(&p, "age"), Some("0"));
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn b11_departure_a_successful_post_invalidates_the_stored_get() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    send(&svc, get("/p/")).await;
    let (p, _) = send(&svc, req(Method::POST, "/p/")).await;
    assert_eq!(
        header(&p, "cache-status"),
        Some("tower-response-cache; fwd=method; fwd-status=200")
    );
    let (_, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 3");
    // OPTIONS is safe: it invalidates nothing.
    send(&svc, req(Method::OPTIONS, "/p/")).await;
    let (_, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 3");
}

#[tokio::test]
async fn b11_put_patch_delete_options_behave_like_post() {
    for method in [Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS] {
        let clock = clock();
        let calls = Calls::default();
        let svc = builder(&clock)
            .invalidate_on_unsafe_methods(false)
            .build()
            .layer(view(&calls, |_, _| {}));
        send(&svc, get("/p/")).await;
        for n in 2..=3 {
            let (p, body) = send(&svc, req(method.clone(), "/p/")).await;
            assert_eq!(body, format!("body {n}"), "{method}");
            assert_eq!(header(&p, "expires"), None, "{method}");
            assert_eq!(header(&p, "cache-control"), None, "{method}");
            assert_eq!(
                header(&p, "cache-status"),
                Some("tower-response-cache; fwd=method; fwd-status=200"),
                "{method}"
            );
        }
        let (_, body) = send(&svc, get("/p/")).await;
        assert_eq!(body, "body 1", "{method}");
    }
}

#[tokio::test]
async fn b11_post_is_not_stored_so_following_get_misses() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, res| {
        set(res, "cache-control", "public, max-age=300")
    }));
    send(&svc, req(Method::POST, "/p/")).await;
    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 2");
    assert_eq!(
        header(&p, "cache-status"),
        Some("tower-response-cache; fwd=uri-miss; fwd-status=200; stored; ttl=300")
    );
}

#[tokio::test]
async fn b11_method_passthrough_keeps_non_200_status_in_cache_status() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, res| {
        *res.status_mut() = StatusCode::CREATED;
    }));
    let (p, _) = send(&svc, req(Method::POST, "/p/")).await;
    assert_eq!(p.status, StatusCode::CREATED);
    assert_eq!(
        header(&p, "cache-status"),
        Some("tower-response-cache; fwd=method; fwd-status=201")
    );
}

#[tokio::test]
async fn b12_head_served_from_stored_get_with_age_and_empty_body() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    send(&svc, get("/p/")).await;
    at(&clock, 3);
    let (p, body) = send(&svc, head("/p/")).await;
    assert_eq!(calls.get(), 1);
    assert_eq!(p.status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(header(&p, "age"), Some("3"));
    assert_eq!(header(&p, "cache-control"), Some("max-age=600"));
    assert_eq!(header(&p, "content-length"), Some("6"));
    assert_eq!(
        header(&p, "cache-status"),
        Some("tower-response-cache; hit; ttl=597")
    );
}

#[tokio::test]
async fn b13_head_stored_under_head_key_and_get_never_served_from_it() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |req, res| {
        set(res, "x-method", req.method().as_str())
    }));
    let (p, _) = send(&svc, head("/p/")).await;
    assert_eq!(calls.get(), 1);
    assert_eq!(header(&p, "cache-control"), Some("max-age=600"));

    let (p, body) = send(&svc, head("/p/")).await;
    assert_eq!(calls.get(), 1);
    assert!(body.is_empty());
    assert_eq!(header(&p, "x-method"), Some("HEAD"));

    // GET is never served from a stored HEAD.
    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(calls.get(), 2);
    assert_eq!(body, "body 2");
    assert_eq!(header(&p, "x-method"), Some("GET"));

    // Now the GET entry serves both.
    let (p, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 2");
    let (p2, _) = send(&svc, head("/p/")).await;
    assert_eq!(calls.get(), 2);
    assert_eq!(header(&p, "x-method"), Some("GET"));
    assert_eq!(header(&p2, "x-method"), Some("GET"));
}

#[tokio::test]
async fn b14_non_200_statuses_never_stored_and_untouched() {
    for status in [
        StatusCode::NOT_FOUND,
        StatusCode::MOVED_PERMANENTLY,
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::PARTIAL_CONTENT,
    ] {
        let clock = clock();
        let calls = Calls::default();
        let svc = builder(&clock).build().layer(view(&calls, move |_, res| {
            *res.status_mut() = status;
        }));
        for n in 1..=2 {
            let (p, body) = send(&svc, get("/p/")).await;
            assert_eq!(p.status, status);
            assert_eq!(body, format!("body {n}"), "{status}");
            assert_eq!(header(&p, "expires"), None, "{status}");
            assert_eq!(header(&p, "cache-control"), None, "{status}");
            let expected = format!(
                "tower-response-cache; fwd=uri-miss; fwd-status={}",
                status.as_u16()
            );
            assert_eq!(header(&p, "cache-status"), Some(expected.as_str()));
        }
    }
}

#[tokio::test]
async fn b14_cacheable_statuses_opt_in_stores_404() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .cacheable_statuses([StatusCode::OK, StatusCode::NOT_FOUND])
        .build()
        .layer(view(&calls, |req, res| {
            if req.uri().path() == "/missing/" {
                *res.status_mut() = StatusCode::NOT_FOUND;
            }
        }));
    let (p, _) = send(&svc, get("/missing/")).await;
    assert_eq!(header(&p, "cache-control"), Some("max-age=600"));
    let (p, body) = send(&svc, get("/missing/")).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert_eq!(body, "body 1");
    assert_eq!(header(&p, "age"), Some("0"));
    send(&svc, get("/ok/")).await;
    let (_, body) = send(&svc, get("/ok/")).await;
    assert_eq!(body, "body 2");
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn b14_cacheable_statuses_without_200_leaves_200_untouched() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .cacheable_statuses([StatusCode::NOT_FOUND])
        .build()
        .layer(view(&calls, |_, _| {}));
    for n in 1..=2 {
        let (p, body) = send(&svc, get("/p/")).await;
        assert_eq!(body, format!("body {n}"));
        assert_eq!(header(&p, "cache-control"), None);
        assert_eq!(header(&p, "expires"), None);
    }
}

#[tokio::test]
async fn b15_304_gets_caching_headers_but_is_not_stored() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, res| {
        *res.status_mut() = StatusCode::NOT_MODIFIED;
    }));
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(p.status, StatusCode::NOT_MODIFIED);
    assert_eq!(header(&p, "cache-control"), Some("max-age=600"));
    assert_eq!(header(&p, "expires"), Some("Sun, 17 Jul 2016 10:10:00 GMT"));
    assert_eq!(
        header(&p, "cache-status"),
        Some("tower-response-cache; fwd=uri-miss; fwd-status=304")
    );
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(p.status, StatusCode::NOT_MODIFIED);
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn b15_304_never_stored_even_when_listed_as_cacheable() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .cacheable_statuses([StatusCode::OK, StatusCode::NOT_MODIFIED])
        .build()
        .layer(view(&calls, |_, res| {
            *res.status_mut() = StatusCode::NOT_MODIFIED;
        }));
    send(&svc, get("/p/")).await;
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(calls.get(), 2);
    assert_eq!(header(&p, "age"), None);
}

#[tokio::test]
async fn b16_event_stream_response_not_stored_and_untouched() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, res| {
        set(res, "content-type", "text/event-stream; charset=utf-8")
    }));
    for n in 1..=2 {
        let (p, body) = send(&svc, get("/events/")).await;
        assert_eq!(body, format!("body {n}"));
        assert_eq!(header(&p, "cache-control"), None);
        assert_eq!(header(&p, "expires"), None);
        assert_eq!(header(&p, "cache-status"), Some(MISS_UNSTORED));
    }
}

#[tokio::test]
async fn b16_declared_content_length_over_limit_not_stored_and_untouched() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .max_body_size(1000)
        .build()
        .layer(view(&calls, |_, res| {
            *res.body_mut() = Full::new(Bytes::from(vec![b'x'; 1001]));
            set(res, "content-length", "1001");
        }));
    for _ in 0..2 {
        let (p, body) = send(&svc, get("/big/")).await;
        assert_eq!(body.len(), 1001);
        assert_eq!(header(&p, "cache-control"), None);
        assert_eq!(header(&p, "expires"), None);
    }
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn b16_body_size_hint_over_limit_not_stored_and_untouched() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .max_body_size(5)
        .build()
        .layer(view(&calls, |_, _| {}));
    for n in 1..=2 {
        // "body N" is 6 bytes, announced exactly by `Full`'s size hint.
        let (p, body) = send(&svc, get("/p/")).await;
        assert_eq!(body, format!("body {n}"));
        assert_eq!(header(&p, "cache-control"), None);
        assert_eq!(header(&p, "expires"), None);
    }
}

#[tokio::test]
async fn b16_body_at_limit_is_stored() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .max_body_size(6)
        .build()
        .layer(view(&calls, |_, _| {}));
    send(&svc, get("/p/")).await;
    let (_, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(calls.get(), 1);
}

// ---------------------------------------------------------------- response Cache-Control / Vary

#[tokio::test]
async fn b17_private_no_cache_no_store_never_stored_headers_untouched() {
    for cc in ["private", "no-cache", "no-store", "PRIVATE", "NO-store"] {
        let clock = clock();
        let calls = Calls::default();
        let svc = builder(&clock)
            .build()
            .layer(view(&calls, move |_, res| set(res, "cache-control", cc)));
        for n in 1..=2 {
            let (p, body) = send(&svc, get("/p/")).await;
            assert_eq!(body, format!("body {n}"), "{cc}");
            assert_eq!(header(&p, "cache-control"), Some(cc));
            assert_eq!(header(&p, "expires"), None, "{cc}");
        }
    }
}

#[tokio::test]
async fn b17_private_among_other_directives_or_lines_never_stored() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, res| {
        set(res, "cache-control", "max-age=300");
        set(res, "cache-control", "private");
    }));
    send(&svc, get("/p/")).await;
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(calls.get(), 2);
    assert_eq!(header(&p, "expires"), None);
}

#[tokio::test]
async fn b18_qualified_private_no_cache_no_store_never_stored() {
    for cc in [
        r#"private="Set-Cookie""#,
        r#"no-cache="Set-Cookie""#,
        r#"no-store="Set-Cookie""#,
        r#"private ="Set-Cookie""#,
        r#"no-cache = "Set-Cookie""#,
    ] {
        let clock = clock();
        let calls = Calls::default();
        let svc = builder(&clock)
            .build()
            .layer(view(&calls, move |_, res| set(res, "cache-control", cc)));
        send(&svc, get("/p/")).await;
        let (p, body) = send(&svc, get("/p/")).await;
        assert_eq!(body, "body 2", "{cc}");
        assert_eq!(header(&p, "cache-control"), Some(cc));
        assert_eq!(header(&p, "expires"), None, "{cc}");
    }
}

#[tokio::test]
async fn b19_superstring_myprivate_is_stored() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, res| {
        set(res, "cache-control", "myprivate")
    }));
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(header(&p, "cache-control"), Some("myprivate, max-age=600"));
    let (_, body) = send(&svc, get("/p/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn b20_vary_star_never_stored_headers_untouched() {
    for vary in ["*", " * ", "Cookie, * , Pony"] {
        let clock = clock();
        let calls = Calls::default();
        let svc = builder(&clock)
            .build()
            .layer(view(&calls, move |_, res| set(res, "vary", vary)));
        for n in 1..=2 {
            let (p, body) = send(&svc, get("/p/")).await;
            assert_eq!(body, format!("body {n}"), "{vary:?}");
            assert_eq!(header(&p, "vary"), Some(vary));
            assert_eq!(header(&p, "expires"), None, "{vary:?}");
            assert_eq!(header(&p, "cache-control"), None, "{vary:?}");
        }
    }
}

#[tokio::test]
async fn b20_vary_star_on_second_line_never_stored() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, res| {
        set(res, "vary", "Accept-Encoding");
        set(res, "vary", "*");
    }));
    send(&svc, get("/p/")).await;
    send(&svc, get("/p/")).await;
    assert_eq!(calls.get(), 2);
}

// ---------------------------------------------------------------- cookies

#[tokio::test]
async fn b21_departure_set_cookie_response_not_stored_and_untouched_by_default() {
    for with_vary in [false, true] {
        let clock = clock();
        let calls = Calls::default();
        let svc = builder(&clock).build().layer(view(&calls, move |_, res| {
            set(res, "set-cookie", "foo=bar; Path=/");
            if with_vary {
                set(res, "vary", "Cookie");
            }
        }));
        for n in 1..=2 {
            let (p, body) = send(&svc, get("/p/")).await;
            assert_eq!(body, format!("body {n}"));
            assert_eq!(header(&p, "set-cookie"), Some("foo=bar; Path=/"));
            assert_eq!(header(&p, "cache-control"), None);
            assert_eq!(header(&p, "expires"), None);
        }
    }
}

#[tokio::test]
async fn b21_set_cookie_with_vary_cookie_not_stored_whatever_the_request_cookie() {
    for cookie in [None, Some("unrelated=value"), Some("foo=old")] {
        let clock = clock();
        let calls = Calls::default();
        let svc = builder(&clock)
            .store_responses_with_cookies(true)
            .build()
            .layer(view(&calls, |_, res| {
                set(res, "set-cookie", "foo=bar; Path=/");
                set(res, "vary", "Cookie");
            }));
        for n in 1..=2 {
            let mut r = get("/p/");
            if let Some(c) = cookie {
                r = r.header("cookie", c);
            }
            let (p, body) = send(&svc, r).await;
            assert_eq!(body, format!("body {n}"), "{cookie:?}");
            assert_eq!(header(&p, "expires"), None, "{cookie:?}");
            assert_eq!(header(&p, "cache-control"), None, "{cookie:?}");
        }
    }
}

#[tokio::test]
async fn b22_opt_in_stores_cookie_response_and_replays_set_cookie_to_everyone() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .store_responses_with_cookies(true)
        .build()
        .layer(view(&calls, |_, res| {
            set(res, "set-cookie", "foo=bar; Path=/")
        }));
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(header(&p, "cache-control"), Some("max-age=600"));
    for cookie in ["other=1", "foo=mine"] {
        let (p, body) = send(&svc, get("/p/").header("cookie", cookie)).await;
        assert_eq!(body, "body 1");
        assert_eq!(header(&p, "set-cookie"), Some("foo=bar; Path=/"));
    }
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(header(&p, "set-cookie"), Some("foo=bar; Path=/"));
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn b22_departure_cookie_setting_response_not_stored_by_default() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, res| {
        set(res, "set-cookie", "foo=bar; Path=/")
    }));
    send(&svc, get("/p/")).await;
    let (p, body) = send(&svc, get("/p/").header("cookie", "other=1")).await;
    assert_eq!(body, "body 2");
    assert_eq!(header(&p, "age"), None);
    assert_eq!(header(&p, "cache-status"), Some(MISS_UNSTORED));
}

#[tokio::test]
async fn b23_vary_cookie_keys_on_raw_cookie_value() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .build()
        .layer(view(&calls, |_, res| set(res, "vary", "Cookie")));
    let (_, b) = send(&svc, get("/p/").header("cookie", "a=1")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, get("/p/").header("cookie", "a=1")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, get("/p/").header("cookie", "a=2")).await;
    assert_eq!(b, "body 2");
    // Compared as raw strings: spacing matters.
    let (_, b) = send(&svc, get("/p/").header("cookie", "a=1; b=2")).await;
    assert_eq!(b, "body 3");
    let (_, b) = send(&svc, get("/p/").header("cookie", "a=1;b=2")).await;
    assert_eq!(b, "body 4");
    let (_, b) = send(&svc, get("/p/").header("cookie", "a=2")).await;
    assert_eq!(b, "body 2");
    assert_eq!(calls.get(), 4);
}

// ---------------------------------------------------------------- Authorization

#[tokio::test]
async fn b27_authorised_request_gets_vary_authorization_and_keys_on_it() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    let (p, b) = send(&svc, get("/p/").header("authorization", "Bearer a")).await;
    assert_eq!(b, "body 1");
    assert_eq!(header(&p, "vary"), Some("Authorization"));
    let (p, b) = send(&svc, get("/p/").header("authorization", "Bearer a")).await;
    assert_eq!(b, "body 1");
    assert_eq!(header(&p, "vary"), Some("Authorization"));
    let (_, b) = send(&svc, get("/p/").header("authorization", "Bearer b")).await;
    assert_eq!(b, "body 2");
    let (_, b) = send(&svc, get("/p/").header("authorization", "Bearer a")).await;
    assert_eq!(b, "body 1");
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn b27_vary_authorization_appended_to_existing_vary() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .build()
        .layer(view(&calls, |_, res| set(res, "vary", "Accept-Encoding")));
    let (p, _) = send(&svc, get("/p/").header("authorization", "token")).await;
    assert_eq!(header(&p, "vary"), Some("Accept-Encoding, Authorization"));
    let (_, b) = send(
        &svc,
        get("/p/")
            .header("authorization", "token")
            .header("accept-encoding", "gzip"),
    )
    .await;
    assert_eq!(b, "body 2");
}

#[tokio::test]
async fn b27_vary_authorization_not_duplicated_when_view_already_varies_on_it() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .build()
        .layer(view(&calls, |_, res| set(res, "vary", "authorization")));
    let (p, _) = send(&svc, get("/p/").header("authorization", "token")).await;
    assert_eq!(header(&p, "vary"), Some("authorization"));
}

#[tokio::test]
async fn b28_empty_authorization_is_anonymous_and_shares_the_anonymous_entry() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    let (p, _) = send(&svc, get("/p/").header("authorization", "")).await;
    assert_eq!(header(&p, "vary"), None);
    let (_, b) = send(&svc, get("/p/")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, get("/p/").header("authorization", "")).await;
    assert_eq!(b, "body 1");
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn b29_public_response_shared_between_authorised_and_anonymous() {
    for cc in ["public", r#"public="abc""#] {
        let clock = clock();
        let calls = Calls::default();
        let svc = builder(&clock)
            .build()
            .layer(view(&calls, move |_, res| set(res, "cache-control", cc)));
        let (p, _) = send(&svc, get("/p/").header("authorization", "token")).await;
        assert_eq!(header(&p, "vary"), None, "{cc}");
        let (_, b) = send(&svc, get("/p/").header("authorization", "other")).await;
        assert_eq!(b, "body 1", "{cc}");
        let (_, b) = send(&svc, get("/p/")).await;
        assert_eq!(b, "body 1", "{cc}");
        assert_eq!(calls.get(), 1, "{cc}");
    }
}

#[tokio::test]
async fn b29_public_page_stored_anonymously_is_served_to_authorised_request() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, res| {
        set(res, "cache-control", "public, max-age=60")
    }));
    send(&svc, get("/p/")).await;
    let (_, b) = send(&svc, get("/p/").header("authorization", "Bearer a")).await;
    assert_eq!(b, "body 1");
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn b29_no_public_superstring_still_gets_vary_authorization() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, res| {
        set(res, "cache-control", "no-public")
    }));
    let (p, _) = send(&svc, get("/p/").header("authorization", "Bearer a")).await;
    assert_eq!(header(&p, "vary"), Some("Authorization"));
    let (_, b) = send(&svc, get("/p/").header("authorization", "Bearer b")).await;
    assert_eq!(b, "body 2");
}

#[tokio::test]
async fn b30_departure_anonymous_page_never_served_to_authorised_request() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    send(&svc, get("/p/")).await;
    let (p, b) = send(&svc, get("/p/").header("authorization", "Bearer a")).await;
    assert_eq!(b, "body 2");
    assert_eq!(
        header(&p, "cache-status"),
        Some("tower-response-cache; fwd=vary-miss; fwd-status=200; stored; ttl=600")
    );
    // Both variants coexist.
    let (_, b) = send(&svc, get("/p/")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, get("/p/").header("authorization", "Bearer a")).await;
    assert_eq!(b, "body 2");
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn b30_departure_authorised_page_never_served_to_anonymous_request() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    send(&svc, get("/p/").header("authorization", "Bearer a")).await;
    let (_, b) = send(&svc, get("/p/")).await;
    assert_eq!(b, "body 2");
    let (_, b) = send(&svc, get("/p/").header("authorization", "")).await;
    assert_eq!(b, "body 2");
    // Django would now serve the anonymous page to Bearer a; here its own page stays.
    let (_, b) = send(&svc, get("/p/").header("authorization", "Bearer a")).await;
    assert_eq!(b, "body 1");
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn b30_departure_authorised_head_never_served_from_anonymous_get() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    send(&svc, get("/p/")).await;
    send(&svc, head("/p/").header("authorization", "Bearer a")).await;
    assert_eq!(calls.get(), 2);
}

// ---------------------------------------------------------------- request-side inputs

#[tokio::test]
async fn b31_request_no_cache_and_pragma_are_ignored() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    send(&svc, get("/p/")).await;
    let (p, b) = send(
        &svc,
        get("/p/")
            .header("cache-control", "no-cache")
            .header("pragma", "no-cache"),
    )
    .await;
    assert_eq!(b, "body 1");
    assert_eq!(header(&p, "age"), Some("0"));
    let (_, b) = send(
        &svc,
        get("/p/").header("cache-control", "no-store, max-age=0"),
    )
    .await;
    assert_eq!(b, "body 1");
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn b32_query_strings_are_part_of_the_key_in_order() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    let (_, b) = send(&svc, get("/p/?a=1&b=2")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, get("/p/?b=2&a=1")).await;
    assert_eq!(b, "body 2");
    let (_, b) = send(&svc, get("/p/?foo=bar&other=true")).await;
    assert_eq!(b, "body 3");
    let (_, b) = send(&svc, get("/p/?foo=bar&somethingelse=true")).await;
    assert_eq!(b, "body 4");
    let (_, b) = send(&svc, get("/p/")).await;
    assert_eq!(b, "body 5");
    let (_, b) = send(&svc, get("/p/?a=1&b=2")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, get("/p/?foo=bar&other=true")).await;
    assert_eq!(b, "body 3");
    assert_eq!(calls.get(), 5);
}

#[tokio::test]
async fn b32_paths_are_distinct_entries() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    send(&svc, get("/p/")).await;
    let (_, b) = send(&svc, get("/p")).await;
    assert_eq!(b, "body 2");
    let (_, b) = send(&svc, get("/q/")).await;
    assert_eq!(b, "body 3");
}

#[tokio::test]
async fn b33_hosts_are_different_entries() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    let host = |h: &str| Request::get("/cache/test/").header("host", h.to_owned());
    let (_, b) = send(&svc, host("sub-1.example.com")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, host("sub-2.example.com")).await;
    assert_eq!(b, "body 2");
    let (_, b) = send(&svc, host("sub-1.example.com")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, Request::get("http://sub-2.example.com/cache/test/")).await;
    assert_eq!(b, "body 2");
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn b33_host_case_is_not_a_different_entry() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    send(&svc, Request::get("/p").header("host", "Example.COM")).await;
    let (_, b) = send(&svc, Request::get("/p").header("host", "example.com")).await;
    assert_eq!(b, "body 1");
}

#[tokio::test]
async fn b33_http_and_https_are_different_entries() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    let (_, b) = send(&svc, Request::get("https://sub-1.example.com/p")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, Request::get("http://sub-1.example.com/p")).await;
    assert_eq!(b, "body 2");
    let (_, b) = send(&svc, Request::get("https://sub-1.example.com/p")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, Request::get("http://sub-1.example.com/p")).await;
    assert_eq!(b, "body 2");
}

// ---------------------------------------------------------------- keys (departures 6, 7)

#[tokio::test]
async fn b34_departure_key_prefix_separates_layers_sharing_a_backend() {
    let clock = clock();
    let backend = MemoryBackend::new();
    let (calls_a, calls_b) = (Calls::default(), Calls::default());
    let a = builder(&clock)
        .backend(backend.clone())
        .key_prefix("settingsprefix")
        .build()
        .layer(view(&calls_a, |_, _| {}));
    let b = builder(&clock)
        .backend(backend.clone())
        .key_prefix("localprefix")
        .build()
        .layer(view(&calls_b, |_, _| {}));
    send(&a, get("/cache/test/")).await;
    send(&b, get("/cache/test/")).await;
    send(&a, get("/cache/test/")).await;
    send(&b, get("/cache/test/")).await;
    assert_eq!((calls_a.get(), calls_b.get()), (1, 1));
}

#[tokio::test]
async fn b34_departure_same_prefix_and_backend_share_entries() {
    let clock = clock();
    let backend = MemoryBackend::new();
    let (calls_a, calls_b) = (Calls::default(), Calls::default());
    let a = builder(&clock)
        .backend(backend.clone())
        .key_prefix("site")
        .build()
        .layer(view(&calls_a, |_, _| {}));
    let b = builder(&clock)
        .backend(backend.clone())
        .key_prefix("site")
        .build()
        .layer(view(&calls_b, |_, _| {}));
    send(&a, get("/cache/test/")).await;
    let (p, body) = send(&b, get("/cache/test/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(calls_b.get(), 0);
    assert_eq!(header(&p, "age"), Some("0"));
}

#[tokio::test]
async fn b34_departure_version_separates_and_equal_versions_share() {
    let clock = clock();
    let backend = MemoryBackend::new();
    let calls = [Calls::default(), Calls::default(), Calls::default()];
    let layer = |version: u32| {
        builder(&clock)
            .backend(backend.clone())
            .version(version)
            .build()
    };
    let v1 = layer(1).layer(view(&calls[0], |_, _| {}));
    let v2 = layer(2).layer(view(&calls[1], |_, _| {}));
    let v1_again = layer(1).layer(view(&calls[2], |_, _| {}));
    send(&v1, get("/p/")).await;
    let (_, b) = send(&v2, get("/p/")).await;
    assert_eq!(b, "body 1");
    assert_eq!(calls[1].get(), 1);
    send(&v1_again, get("/p/")).await;
    assert_eq!(calls[2].get(), 0);
    send(&v2, get("/p/")).await;
    assert_eq!(calls[1].get(), 1);
}

#[tokio::test]
async fn b34_departure_default_prefix_layers_on_one_backend_share() {
    let clock = clock();
    let backend = MemoryBackend::new();
    let (calls_a, calls_b) = (Calls::default(), Calls::default());
    let a = builder(&clock)
        .backend(backend.clone())
        .build()
        .layer(view(&calls_a, |_, _| {}));
    let b = builder(&clock)
        .backend(backend.clone())
        .build()
        .layer(view(&calls_b, |_, _| {}));
    send(&a, get("/p/?test=1")).await;
    send(&b, get("/p/?test=1")).await;
    send(&b, get("/p/")).await;
    assert_eq!((calls_a.get(), calls_b.get()), (1, 1));
}

#[tokio::test]
async fn b34_departure_separate_default_backends_do_not_share() {
    let clock = clock();
    let (calls_a, calls_b) = (Calls::default(), Calls::default());
    let a = builder(&clock).build().layer(view(&calls_a, |_, _| {}));
    let b = builder(&clock).build().layer(view(&calls_b, |_, _| {}));
    send(&a, get("/p/")).await;
    send(&b, get("/p/")).await;
    assert_eq!((calls_a.get(), calls_b.get()), (1, 1));
}

#[tokio::test]
async fn b34_one_layer_shared_by_two_inner_services_shares_entries() {
    let clock = clock();
    let (calls_a, calls_b) = (Calls::default(), Calls::default());
    let layer = builder(&clock).build();
    let a = layer.layer(view(&calls_a, |_, _| {}));
    let b = layer.clone().layer(view(&calls_b, |_, _| {}));
    send(&a, get("/p/")).await;
    let (_, body) = send(&b, get("/p/")).await;
    assert_eq!(body, "body 1");
    assert_eq!(calls_b.get(), 0);
}

fn language(parts: &http::request::Parts) -> String {
    parts
        .headers
        .get("accept-language")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(..2))
        .unwrap_or("en")
        .to_ascii_lowercase()
}

#[tokio::test]
async fn b35_departure_key_hook_separates_by_active_language() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .key_hook(|parts, key| key.push(language(parts)))
        .build()
        .layer(view(&calls, |_, _| {}));
    let (_, b) = send(&svc, get("/p/").header("accept-language", "en-US,en;q=0.9")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, get("/p/").header("accept-language", "es-ES")).await;
    assert_eq!(b, "body 2");
    // Keyed by the derived language, not by the raw header.
    let (_, b) = send(&svc, get("/p/").header("accept-language", "en-GB")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, get("/p/")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, get("/p/").header("accept-language", "es")).await;
    assert_eq!(b, "body 2");
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn b35_departure_key_hook_separates_tenants() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .key_hook(|parts, key| {
            if let Some(t) = parts.headers.get("x-tenant") {
                key.push(t.as_bytes());
            }
        })
        .build()
        .layer(view(&calls, |_, _| {}));
    let (_, b) = send(&svc, get("/p/").header("x-tenant", "acme")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, get("/p/").header("x-tenant", "globex")).await;
    assert_eq!(b, "body 2");
    let (_, b) = send(&svc, get("/p/").header("x-tenant", "acme")).await;
    assert_eq!(b, "body 1");
    let (_, b) = send(&svc, get("/p/").header("x-tenant", "globex")).await;
    assert_eq!(b, "body 2");
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn b35_departure_key_hook_components_are_delimited() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .key_hook(|parts, key| {
            for name in ["x-a", "x-b"] {
                key.push(parts.headers.get(name).map_or(&b""[..], |v| v.as_bytes()));
            }
        })
        .build()
        .layer(view(&calls, |_, _| {}));
    send(&svc, get("/p/").header("x-a", "ab").header("x-b", "c")).await;
    let (_, b) = send(&svc, get("/p/").header("x-a", "a").header("x-b", "bc")).await;
    assert_eq!(b, "body 2");
}

// ---------------------------------------------------------------- Cache-Status

#[tokio::test]
async fn cache_status_off_adds_no_header_anywhere() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .cache_status(false)
        .build()
        .layer(view(&calls, |req, res| {
            if req.uri().path() == "/private/" {
                set(res, "cache-control", "private");
            }
        }));
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(header(&p, "cache-status"), None);
    assert_eq!(header(&p, "cache-control"), Some("max-age=600"));
    let (p, b) = send(&svc, get("/p/")).await;
    assert_eq!(b, "body 1");
    assert_eq!(header(&p, "cache-status"), None);
    assert_eq!(header(&p, "age"), Some("0"));
    let (p, _) = send(&svc, req(Method::POST, "/p/")).await;
    assert_eq!(header(&p, "cache-status"), None);
    let (p, _) = send(&svc, get("/private/")).await;
    assert_eq!(header(&p, "cache-status"), None);
}

#[tokio::test]
async fn cache_status_is_a_single_field_on_hits() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock).build().layer(view(&calls, |_, _| {}));
    send(&svc, get("/p/")).await;
    let (p, _) = send(&svc, get("/p/")).await;
    let all: Vec<_> = p.headers.get_all("cache-status").iter().collect();
    assert_eq!(all, ["tower-response-cache; hit; ttl=600"]);
}

#[tokio::test]
async fn cache_status_on_untouched_response_has_no_stored_flag() {
    let clock = clock();
    let calls = Calls::default();
    let svc = builder(&clock)
        .build()
        .layer(view(&calls, |_, res| set(res, "cache-control", "no-store")));
    let (p, _) = send(&svc, get("/p/")).await;
    assert_eq!(header(&p, "cache-status"), Some(MISS_UNSTORED));
}
