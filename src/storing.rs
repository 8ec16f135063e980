//! The response side of a miss: the mode's rules applied to the inner
//! service's response, the entry it becomes, its tags, and its storing (as the
//! body streams, or at once); a 304 refreshing a stale entry.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    AGE, CACHE_STATUS, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, ETAG, EXPIRES,
    TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::response;
use http::{HeaderMap, HeaderName, Response, StatusCode};
use http_body::Body;

use crate::backend::BoxFuture;
use crate::body::{Collector, ResponseBody};
use crate::cache_status;
use crate::clock::{duration_millis, unix_millis};
use crate::entry::{AgeRule, AuthScope, Content, Entry, Revalidate, StoredMethod, VaryValues};
use crate::headers::cache_control::{get_max_age, has_directive, patch_response_headers};
use crate::headers::http_date::parse_http_date;
use crate::headers::list::list_items;
use crate::headers::vary::{VaryNames, patch_vary_headers, vary_names};
use crate::key::PrimaryKey;
use crate::layer::Shared;
use crate::policy::app::{self, Verdict};
use crate::policy::shared::{self, Exchange, Storable};
use crate::policy::{Mode, StaleWindows, content_length};
use crate::respond::{serve, ttl_secs};
use crate::service::Miss;

/// A response on its way out, and the insert to finish before it is returned.
pub(crate) type Outgoing<B> = (Response<ResponseBody<B>>, Option<BoxFuture<'static, ()>>);

/// At most this many tags per response, each at most this long: a response
/// cannot make the cache write without bound.
const MAX_TAGS: usize = 64;
const MAX_TAG_LEN: usize = 256;

impl Shared {
    /// Applies the mode's rules to the inner service's response, and sets up its
    /// storing when it qualifies: as the body streams, or (returned) at once when
    /// there is no body to wait for.
    pub(crate) fn on_miss_response<B>(self: &Arc<Self>, res: Response<B>, miss: Miss) -> Outgoing<B>
    where
        B: Body<Data = Bytes> + Send + 'static,
    {
        let (mut parts, body) = res.into_parts();
        let tags = self.take_tags(&mut parts.headers);
        match self.config.mode {
            Mode::App => self.app_response(parts, body, miss, tags),
            Mode::Shared => self.shared_response(parts, body, miss, tags),
        }
    }

    /// The response's tags (its tag field, comma-separated; bounded), the field
    /// removed when so configured.
    fn take_tags(&self, headers: &mut HeaderMap) -> Vec<String> {
        let name = &self.config.tag_header;
        let tags = list_items(headers, name)
            .filter(|tag| tag.len() <= MAX_TAG_LEN)
            .filter_map(|tag| std::str::from_utf8(tag).ok())
            .take(MAX_TAGS)
            .map(str::to_owned)
            .collect();
        if self.config.strip_tag_header {
            headers.remove(name);
        }
        tags
    }

    /// App mode: Django's patching, then maybe storing.
    fn app_response<B>(
        self: &Arc<Self>,
        mut parts: response::Parts,
        body: B,
        mut miss: Miss,
        tags: Vec<String>,
    ) -> Outgoing<B>
    where
        B: Body<Data = Bytes> + Send + 'static,
    {
        let lower_bound = body.size_hint().lower();
        let Verdict::Patch { timeout, store } =
            app::verdict(&self.config, parts.status, &parts.headers, lower_bound)
        else {
            return self.finish_miss(parts, body, None, miss);
        };
        // Django reads `public` before patching; patching only merges max-age.
        let public = has_directive(&parts.headers, "public");
        patch_response_headers(&mut parts.headers, timeout, miss.now);
        if miss.authorized && !public {
            patch_vary_headers(&mut parts.headers, &["Authorization"]);
        }
        let collector = match (store, vary_names(&parts.headers)) {
            (true, Ok(VaryNames::Names(names))) => {
                let auth = match (public, miss.authorized) {
                    (true, _) => AuthScope::Any,
                    (false, true) => AuthScope::Authorized,
                    (false, false) => AuthScope::Anonymous,
                };
                let stored_at = unix_millis(miss.now);
                let fresh_until = stored_at.saturating_add(secs_to_millis(timeout));
                let stale = shared::stale_windows(&self.config, &parts.headers);
                let lifetime = Lifetime {
                    stored_at,
                    fresh_until,
                    kept_until: kept_until(fresh_until, self.config.keep, stale),
                    age: django_age_rule(&parts.headers),
                    // Only stale serving reads this in app mode.
                    revalidate: Revalidate {
                        every_use: false,
                        once_stale: has_directive(&parts.headers, "must-revalidate")
                            || has_directive(&parts.headers, "proxy-revalidate"),
                    },
                    stale,
                };
                self.stored_entry(&parts, &miss, auth, names, lifetime, &[])
                    .map(|entry| self.collector(&parts, &mut miss, entry, timeout, tags))
            }
            _ => None,
        };
        self.finish_miss(parts, body, collector, miss)
    }

    /// Shared mode: RFC 9111's storing rules; headers pass through verbatim. A
    /// 304 to the cache's own conditional request refreshes the stale entry.
    fn shared_response<B>(
        self: &Arc<Self>,
        mut parts: response::Parts,
        body: B,
        mut miss: Miss,
        tags: Vec<String>,
    ) -> Outgoing<B>
    where
        B: Body<Data = Bytes> + Send + 'static,
    {
        let exchange = Exchange {
            request_time: miss.now,
            response_time: self.clock.now(),
            authorized: miss.authorized,
            no_store: miss.directives.no_store,
        };
        let revalidated = parts.status == StatusCode::NOT_MODIFIED && miss.validated;
        if let Some(stale) = miss.stale.clone().filter(|_| revalidated) {
            return self.refreshed(&stale, &parts.headers, miss, &exchange, tags);
        }
        shared::clamp_age(&mut parts.headers);
        let lower_bound = body.size_hint().lower();
        let storable = shared::storable(
            &self.config,
            &exchange,
            parts.status,
            &parts.headers,
            lower_bound,
        );
        let collector = match (storable, vary_names(&parts.headers)) {
            (Some(s), Ok(VaryNames::Names(names))) => {
                let lifetime = Lifetime::shared(&s, &exchange, self.config.keep);
                let ttl = ttl_secs(lifetime.fresh_until, unix_millis(exchange.response_time));
                self.stored_entry(&parts, &miss, s.auth, names, lifetime, &s.unstored)
                    .map(|entry| self.collector(&parts, &mut miss, entry, ttl, tags))
            }
            _ => None,
        };
        self.finish_miss(parts, body, collector, miss)
    }

    /// Section 4.3.4: the origin says the stale entry is still good. Its headers
    /// are updated from the 304's, it is stored again with the new freshness, and
    /// its body answers the request.
    fn refreshed<B>(
        self: &Arc<Self>,
        stale: &Entry,
        not_modified: &HeaderMap,
        mut miss: Miss,
        exchange: &Exchange,
        tags: Vec<String>,
    ) -> Outgoing<B> {
        let mut headers = stale.content.headers().fields();
        let excluded = connection_fields(not_modified);
        for name in not_modified.keys() {
            if excluded.contains(name) || NOT_UPDATED.contains(name) {
                continue;
            }
            headers.remove(name);
            for value in not_modified.get_all(name) {
                let _ = headers.try_append(name.clone(), value.clone());
            }
        }
        let body_len = u64::try_from(stale.content.body_len()).unwrap_or(u64::MAX);
        let mut storable =
            shared::storable(&self.config, exchange, stale.status, &headers, body_len);
        strip_unstored(
            &mut headers,
            storable.as_ref().map_or(&[], |s| &s.unstored[..]),
        );
        // Fields a content cannot hold (4 GiB with the material, or a value
        // http would refuse) are not merged: the entry is served as it was
        // stored, and, unstorable now, the URL's stored copies are purged
        // below, as when a 304 makes the response unstorable.
        let content = match stale
            .content
            .with_fields(&headers, self.config.cache_status)
        {
            Some(content) => content,
            None => {
                storable = None;
                stale.content.clone()
            }
        };
        let lifetime = match &storable {
            Some(s) => Lifetime::shared(s, exchange, self.config.keep),
            None => Lifetime::stale_at(unix_millis(exchange.response_time)),
        };
        let entry = Entry {
            content,
            stored_at: lifetime.stored_at,
            fresh_until: lifetime.fresh_until,
            kept_until: lifetime.kept_until,
            age: lifetime.age,
            revalidate: lifetime.revalidate,
            stale_while_revalidate: lifetime.stale.while_revalidate,
            stale_if_error: lifetime.stale.if_error,
            // A 304 that names tags replaces them; one that names none keeps them.
            tags: if tags.is_empty() {
                stale.tags.clone()
            } else {
                tags.into()
            },
            ..stale.clone()
        };
        let now_ms = unix_millis(exchange.response_time);
        let status = self.config.cache_status.then(|| {
            let stored_ttl = storable
                .is_some()
                .then(|| ttl_secs(entry.fresh_until, now_ms));
            let value = cache_status::forward(miss.fwd, StatusCode::NOT_MODIFIED, stored_ttl);
            self.with_key(value, &miss.key)
        });
        let res = serve(&entry, &miss.request_headers, miss.method, now_ms, status);
        // The refreshed entry replaces the stale one. When the 304 narrowed who
        // may see it (its scope moved) or made it unstorable, the URL's old
        // copies go first: none may outlive what the origin now says.
        let scope = storable.as_ref().map(|s| s.auth);
        let narrowed = scope != Some(stale.auth);
        let entry = Entry {
            auth: scope.unwrap_or(stale.auth),
            ..entry
        };
        let lead = miss.lead.take();
        let shared = self.clone();
        let key = miss.key.clone();
        let insert = Box::pin(async move {
            if narrowed {
                shared.store.purge(key.hash).await;
            }
            if scope.is_some() {
                let len = entry.content.body_len();
                shared.insert(&key, entry).await;
                shared.counters.stored(len);
                if let Some(lead) = lead {
                    lead.stored();
                }
            }
        }) as BoxFuture<'static, ()>;
        (res, Some(insert))
    }

    /// Writes an entry and lists it under its tags, for as long as it is kept.
    /// If a tag cannot be written the entry is removed again: `purge_tag` must
    /// never miss what its tag names.
    pub(crate) async fn insert(&self, key: &PrimaryKey, entry: Entry) {
        let now = self.clock.now_millis();
        let kept = Duration::from_millis(entry.kept_until.saturating_sub(now).max(1));
        let tags = entry.tags.clone();
        self.store.insert(key, entry, now).await;
        if !tags.is_empty() && !self.store.tag(key.hash, &tags, kept).await {
            self.store.purge(key.hash).await;
        }
    }

    /// Collects a body to store (with its tags, and the lead that followers
    /// wait on); the `i64` is the stored ttl for `Cache-Status`.
    fn collector(
        self: &Arc<Self>,
        parts: &response::Parts,
        miss: &mut Miss,
        mut entry: Entry,
        stored_ttl: i64,
        tags: Vec<String>,
    ) -> (Collector, i64) {
        let expected = (miss.method == StoredMethod::Get)
            .then(|| content_length(&parts.headers))
            .flatten();
        entry.tags = tags.into();
        let collector = Collector::new(
            self.clone(),
            miss.key.clone(),
            entry,
            expected,
            miss.lead.take(),
        );
        (collector, stored_ttl)
    }

    /// `Cache-Status`, then the body: teed into the collector, or stored at once
    /// when there is nothing to read. A response not stored leaves a
    /// hit-for-miss marker.
    fn finish_miss<B>(
        &self,
        mut parts: response::Parts,
        body: B,
        collector: Option<(Collector, i64)>,
        mut miss: Miss,
    ) -> Outgoing<B>
    where
        B: Body<Data = Bytes> + Send + 'static,
    {
        if self.config.cache_status {
            let stored_ttl = collector.as_ref().map(|(_, ttl)| *ttl);
            let status = cache_status::forward(miss.fwd, parts.status, stored_ttl);
            let status = self.with_key(status, &miss.key);
            let _ = parts.headers.try_append(CACHE_STATUS, status);
        }
        // Not stored because of the response itself: remember the URL as
        // uncacheable. (A 304 or 206 answers the request's own conditions or
        // range, and `no-store` is the request's choice: they say nothing of
        // the URL.)
        let about_the_url = !matches!(
            parts.status,
            StatusCode::NOT_MODIFIED | StatusCode::PARTIAL_CONTENT
        ) && !miss.directives.no_store;
        if let (None, Some(lead)) = (&collector, miss.lead.take())
            && about_the_url
        {
            let now = self.clock.now_millis();
            lead.uncacheable(now.saturating_add(duration_millis(self.config.hit_for_miss)));
        }
        let (body, store_now) = match collector {
            // Nothing to copy: a HEAD (servers discard its body unread), or a body
            // that is already over (servers never poll it). Store at once.
            Some((collector, _))
                if miss.method == StoredMethod::Head
                    || body.is_end_stream()
                    || body.size_hint().exact() == Some(0) =>
            {
                (ResponseBody::passthrough(body), collector.finish())
            }
            Some((collector, _)) => (ResponseBody::tee(body, collector), None),
            None => (ResponseBody::passthrough(body), None),
        };
        (Response::from_parts(parts, body), store_now)
    }
}

fn secs_to_millis(secs: i64) -> u64 {
    u64::try_from(secs).unwrap_or(0).saturating_mul(1000)
}

/// Fields a 304 does not update (RFC 9111 section 3.2): they describe the
/// stored body, which the 304 does not replace, or the validator it was
/// selected by.
const NOT_UPDATED: [HeaderName; 5] = [
    CONTENT_LENGTH,
    CONTENT_ENCODING,
    CONTENT_RANGE,
    HeaderName::from_static("content-md5"),
    ETAG,
];

/// When a stored response stops being fresh, and how its age is told.
struct Lifetime {
    stored_at: u64,
    fresh_until: u64,
    kept_until: u64,
    age: AgeRule,
    revalidate: Revalidate,
    stale: StaleWindows,
}

/// An entry is kept past its freshness for the longest of `keep` and its stale
/// windows (RFC 5861 serving needs the entry).
fn kept_until(fresh_until: u64, keep: Duration, stale: StaleWindows) -> u64 {
    fresh_until.saturating_add(duration_millis(keep.max(stale.longest())))
}

impl Lifetime {
    fn shared(s: &Storable, exchange: &Exchange, keep: Duration) -> Self {
        let fresh_until = s.fresh_until(exchange.response_time);
        Self {
            stored_at: unix_millis(exchange.response_time),
            fresh_until,
            kept_until: kept_until(fresh_until, keep, s.stale),
            age: AgeRule::Resident {
                initial_age: s.initial_age,
            },
            revalidate: s.revalidate,
            stale: s.stale,
        }
    }

    /// For an entry that is served once and not stored.
    fn stale_at(at: u64) -> Self {
        Self {
            stored_at: at,
            fresh_until: at,
            kept_until: at,
            age: AgeRule::Resident { initial_age: 0 },
            revalidate: Revalidate::default(),
            stale: StaleWindows::default(),
        }
    }
}

/// Django's `Age` rule when the patched headers have an integer `max-age`
/// and a valid `Expires`; otherwise the time since storing.
fn django_age_rule(headers: &HeaderMap) -> AgeRule {
    match (
        get_max_age(headers),
        headers.get(EXPIRES).and_then(parse_http_date),
    ) {
        (Some(max_age), Some(expires)) => AgeRule::django(
            max_age,
            i64::try_from(unix_millis(expires) / 1000).unwrap_or(i64::MAX),
        ),
        _ => AgeRule::Resident { initial_age: 0 },
    }
}

/// The fields `Connection` nominates, plus the fixed hop-by-hop set: they
/// describe one transfer, not the response (RFC 9111 section 3.1).
fn connection_fields(headers: &HeaderMap) -> Vec<HeaderName> {
    list_items(headers, CONNECTION)
        .filter_map(|token| HeaderName::from_bytes(token).ok())
        .chain([CONNECTION, TRANSFER_ENCODING, TE, TRAILER, UPGRADE])
        .chain([HeaderName::from_static("keep-alive")])
        .collect()
}

/// Removes what is never stored: connection fields, `Age` (the cache tells its
/// own), and the fields a qualified `no-cache` / `private` names.
fn strip_unstored(headers: &mut HeaderMap, unstored: &[HeaderName]) {
    for name in connection_fields(headers)
        .iter()
        .chain(unstored)
        .chain([&AGE])
    {
        headers.remove(name);
    }
}

impl Shared {
    /// The entry a response will be stored as, body still to come; `None`
    /// when its material and fields do not fit a [`Content`].
    fn stored_entry(
        &self,
        parts: &response::Parts,
        miss: &Miss,
        auth: AuthScope,
        names: Vec<HeaderName>,
        lifetime: Lifetime,
        unstored: &[HeaderName],
    ) -> Option<Entry> {
        let mut headers = parts.headers.clone();
        strip_unstored(&mut headers, unstored);
        let content = Content::new(&miss.key.material, &headers, self.config.cache_status, &[])?;
        Some(Entry {
            content,
            method: miss.method,
            auth,
            vary: VaryValues::capture(names, &miss.request_headers),
            status: parts.status,
            stored_at: lifetime.stored_at,
            fresh_until: lifetime.fresh_until,
            kept_until: lifetime.kept_until,
            age: lifetime.age,
            revalidate: lifetime.revalidate,
            stale_while_revalidate: lifetime.stale.while_revalidate,
            stale_if_error: lifetime.stale.if_error,
            tags: Box::default(),
        })
    }
}
