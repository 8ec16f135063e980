//! [`CacheLayer`] and its builder: the public face of the response cache.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::{HeaderName, StatusCode};
use tower_layer::Layer;

use crate::backend::{Backend, MemoryBackend};
use crate::cache::{Cache, Codec};
use crate::clock::{Clock, SystemClock};
use crate::counters::Counters;
use crate::handle::{CacheHandle, CacheStats, InvalidUrl};
use crate::key::{KeyHook, KeyParts};
use crate::policy::Mode;
use crate::service::CacheService;
use crate::store::ResponseStore;
use crate::store::inflight::Flights;

/// A tower layer that stores whole HTTP responses and serves them again, with
/// Django's per-site / per-view semantics (`CacheMiddleware`, `cache_page`).
///
/// Site-wide on an axum `Router` (`Router::layer`), for one route
/// (`Router::route_layer`, `MethodRouter::layer`), or around any tower service of
/// `http::Request` → `http::Response`. Every `layer()` call and every clone shares
/// one cache.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use tower_response_cache::CacheLayer;
///
/// let app: Router = Router::new()
///     .route("/", get(|| async { "home" }))
///     .layer(CacheLayer::builder().default_timeout(Duration::from_secs(60)).build());
/// ```
#[derive(Clone)]
pub struct CacheLayer {
    shared: Arc<Shared>,
}

/// Django's `cache_page(timeout)`: a [`CacheLayer`] on a fresh in-memory cache
/// whose `timeout` beats the response's own `max-age`.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use tower_response_cache::cache_page;
///
/// let app: Router = Router::new()
///     .route("/slow", get(|| async { "expensive" }).layer(cache_page(Duration::from_secs(60))));
/// ```
pub fn cache_page(timeout: Duration) -> CacheLayer {
    CacheLayer::builder().timeout(timeout).build()
}

/// Settings and state shared by every service a [`CacheLayer`] makes.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) store: ResponseStore,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) counters: Counters,
    /// Misses in progress, for coalescing and single background refreshes.
    pub(crate) flights: Arc<Flights>,
}

/// The layer's settings (see [`CacheLayerBuilder`] for what each one means).
pub(crate) struct Config {
    pub(crate) page_timeout: Option<Duration>,
    pub(crate) default_timeout: Duration,
    pub(crate) key_prefix: String,
    pub(crate) version: u32,
    pub(crate) statuses: Vec<StatusCode>,
    pub(crate) max_body_size: usize,
    pub(crate) key_hook: Option<KeyHook>,
    pub(crate) cache_status: bool,
    pub(crate) store_set_cookie: bool,
    pub(crate) mode: Mode,
    /// Fraction of `Date - Last-Modified` used as a heuristic lifetime (shared
    /// mode); 0 turns heuristics off.
    pub(crate) heuristic_fraction: f64,
    /// Targeted cache-control fields (RFC 9213), first match wins (shared mode).
    pub(crate) targeted: Vec<HeaderName>,
    /// How long a stale entry is kept past its freshness, for revalidation and
    /// `max-stale`.
    pub(crate) keep: Duration,
    /// Whether successful unsafe requests invalidate what they target.
    pub(crate) invalidate_unsafe: bool,
    /// Shared mode: the device token `Surrogate-Control` may target, and the
    /// `Surrogate-Capability` value that announces it.
    pub(crate) surrogate: Option<Surrogate>,
    /// Concurrent misses for one URL wait for one leader.
    pub(crate) coalesce: bool,
    pub(crate) lock_timeout: Duration,
    /// How long a URL whose response could not be stored skips the queue.
    pub(crate) hit_for_miss: Duration,
    /// Stale windows for responses that name none.
    pub(crate) stale_while_revalidate: Duration,
    pub(crate) stale_if_error: Duration,
    /// The response field carrying tags, and whether it is removed.
    pub(crate) tag_header: HeaderName,
    pub(crate) strip_tag_header: bool,
    /// `Cache-Status` carries the `key` parameter.
    pub(crate) cache_status_key: bool,
    pub(crate) bypass: Option<Bypass>,
}

/// A predicate on requests the cache must not handle.
pub(crate) type Bypass = Arc<dyn Fn(&Parts) -> bool + Send + Sync>;

/// This cache as a surrogate (W3C Edge Architecture): its device token, and
/// the `Surrogate-Capability` request value announcing it.
pub(crate) struct Surrogate {
    pub(crate) token: String,
    pub(crate) capability: http::HeaderValue,
}

impl Surrogate {
    /// `None` when `token` has no token characters left to announce.
    fn new(token: &str) -> Option<Self> {
        let token: String = token
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(*c))
            .collect();
        let capability = http::HeaderValue::try_from(format!("{token}=\"Surrogate/1.0\"")).ok()?;
        (!token.is_empty()).then_some(Self { token, capability })
    }
}

impl CacheLayer {
    /// A handle to this layer's cache: purge a URL or a tag, clear it, read
    /// its counters. Cheap to clone; keep one in the application state.
    ///
    /// ```
    /// use tower_response_cache::CacheLayer;
    ///
    /// let layer = CacheLayer::new();
    /// let handle = layer.handle();
    /// assert_eq!(handle.stats().hits, 0);
    /// ```
    pub fn handle(&self) -> CacheHandle {
        CacheHandle::new(self.shared.clone())
    }

    /// The layer's counters: [`CacheHandle::stats`].
    pub fn stats(&self) -> CacheStats {
        self.handle().stats()
    }

    /// Removes every stored response for a URL: [`CacheHandle::purge`].
    ///
    /// # Errors
    ///
    /// [`InvalidUrl`] when `url` is not an absolute `http(s)` URL.
    pub async fn purge(&self, url: &str) -> Result<bool, InvalidUrl> {
        self.handle().purge(url).await
    }

    /// A layer with the defaults: in-memory backend, 600 s default timeout, only
    /// `200 OK` stored.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configures a layer.
    pub fn builder() -> CacheLayerBuilder {
        CacheLayerBuilder::default()
    }
}

impl Default for CacheLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayer")
            .field("store", &self.shared.store)
            .field("page_timeout", &self.shared.config.page_timeout)
            .field("default_timeout", &self.shared.config.default_timeout)
            .field("key_prefix", &self.shared.config.key_prefix)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheService::new(inner, self.shared.clone())
    }
}

/// Builds a [`CacheLayer`].
pub struct CacheLayerBuilder {
    backend: Option<Arc<dyn Backend>>,
    clock: Arc<dyn Clock>,
    max_variants: usize,
    keep: Option<Duration>,
    config: Config,
}

impl Default for CacheLayerBuilder {
    fn default() -> Self {
        Self {
            backend: None,
            clock: Arc::new(SystemClock),
            max_variants: 16,
            keep: None,
            config: Config {
                page_timeout: None,
                default_timeout: Duration::from_secs(600),
                key_prefix: String::new(),
                version: 1,
                statuses: vec![StatusCode::OK],
                max_body_size: 8 * 1024 * 1024,
                key_hook: None,
                cache_status: true,
                store_set_cookie: false,
                mode: Mode::App,
                heuristic_fraction: 0.0,
                targeted: vec![HeaderName::from_static("cdn-cache-control")],
                keep: Duration::ZERO,
                invalidate_unsafe: true,
                surrogate: Surrogate::new("tower-response-cache"),
                coalesce: true,
                lock_timeout: Duration::from_secs(5),
                hit_for_miss: Duration::from_secs(30),
                stale_while_revalidate: Duration::ZERO,
                stale_if_error: Duration::ZERO,
                tag_header: HeaderName::from_static("cache-tag"),
                strip_tag_header: true,
                cache_status_key: false,
                bypass: None,
            },
        }
    }
}

impl fmt::Debug for CacheLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayerBuilder")
            .field("backend", &self.backend)
            .field("page_timeout", &self.config.page_timeout)
            .field("default_timeout", &self.config.default_timeout)
            .finish_non_exhaustive()
    }
}

impl CacheLayerBuilder {
    /// Which rules decide what is stored and served (default [`Mode::App`],
    /// Django's). [`Mode::Shared`] is an RFC 9111 shared cache, for a reverse
    /// proxy: see [`Mode`] for the differences. In shared mode
    /// [`timeout`](Self::timeout), [`default_timeout`](Self::default_timeout) and
    /// [`cacheable_statuses`](Self::cacheable_statuses) do not apply: only the
    /// origin's headers give freshness.
    ///
    /// ```
    /// use tower_response_cache::{CacheLayer, Mode};
    ///
    /// let proxy_cache = CacheLayer::builder().mode(Mode::Shared).build();
    /// # let _ = proxy_cache;
    /// ```
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.config.mode = mode;
        self
    }

    /// Shared mode: give a response with `Last-Modified` but no explicit
    /// freshness (`max-age`, `s-maxage`, `Expires`) a lifetime of `fraction` of
    /// its age at the origin (`Date - Last-Modified`), as RFC 9111 section 4.2.2
    /// allows for heuristically cacheable statuses (200, 203, 204, 206, 300, 301,
    /// 308, 404, 405, 410, 414, 501). Off by default (`0.0`); `0.1` is the
    /// customary value. Values outside `0.0..=1.0` are clamped.
    #[must_use]
    pub fn heuristic_freshness(mut self, fraction: f64) -> Self {
        self.config.heuristic_fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// Shared mode: the targeted cache-control fields this cache obeys (RFC 9213),
    /// most specific first (default `CDN-Cache-Control` alone). The first one a
    /// response carries with a valid, non-empty value replaces its
    /// `Cache-Control` and `Expires` for this cache. The field is passed on
    /// unchanged. An empty list turns targeting off.
    ///
    /// ```
    /// use http::HeaderName;
    /// use tower_response_cache::{CacheLayer, Mode};
    ///
    /// let layer = CacheLayer::builder()
    ///     .mode(Mode::Shared)
    ///     .targeted_cache_control([
    ///         HeaderName::from_static("example-cache-control"),
    ///         HeaderName::from_static("cdn-cache-control"),
    ///     ])
    ///     .build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn targeted_cache_control(mut self, fields: impl IntoIterator<Item = HeaderName>) -> Self {
        self.config.targeted = fields.into_iter().collect();
        self
    }

    /// Shared mode: whether this cache obeys `Surrogate-Control` (the W3C Edge
    /// Architecture field that Varnish and Fastly honour), and the device token
    /// it answers to (default `tower-response-cache`; `None` turns it off).
    /// Forwarded requests announce the token in `Surrogate-Capability`, so the
    /// origin can target directives at it (`max-age=60;tower-response-cache`);
    /// directives targeted at another device are ignored. `Surrogate-Control`
    /// ranks after the [targeted fields](Self::targeted_cache_control) and,
    /// like them, replaces `Cache-Control` and `Expires`; it understands
    /// `max-age` (the part before any `+`), `no-store` and `no-store-remote`.
    /// Characters a token cannot hold are dropped from `token`.
    #[must_use]
    pub fn surrogate_control(mut self, token: Option<&str>) -> Self {
        self.config.surrogate = token.and_then(Surrogate::new);
        self
    }

    /// Whether concurrent misses for one URL wait for one of them (the leader)
    /// instead of all calling the inner service (default on). Followers are
    /// served what the leader stored; when the leader's response is not stored
    /// (uncacheable, private, another `Vary` variant), fails, is cancelled or
    /// takes longer than [`lock_timeout`](Self::lock_timeout), they call the
    /// inner service themselves. The lock timeout is a tokio timer: in a runtime
    /// built without its time driver (`enable_time`, on with `#[tokio::main]`),
    /// followers wait for the leader without a timeout (it always wakes them,
    /// whatever way it ends).
    #[must_use]
    pub fn coalesce(mut self, on: bool) -> Self {
        self.config.coalesce = on;
        self
    }

    /// How long a follower waits for the leader of a coalesced miss (default
    /// 5 s, nginx's `proxy_cache_lock_timeout`).
    #[must_use]
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.config.lock_timeout = timeout;
        self
    }

    /// How long a URL whose last response could not be stored skips the
    /// coalescing queue (default 30 s; Varnish's hit-for-miss): requests for
    /// an uncacheable URL then never wait for each other. `Duration::ZERO`
    /// turns the marker off.
    #[must_use]
    pub fn hit_for_miss(mut self, ttl: Duration) -> Self {
        self.config.hit_for_miss = ttl;
        self
    }

    /// The stale-while-revalidate window (RFC 5861) for responses whose
    /// `Cache-Control` names none (default zero: only the response's own
    /// directive counts). Within it a stale response is served at once and
    /// refreshed in the background, once per URL however many requests come.
    /// Never for `must-revalidate`, `proxy-revalidate`, `s-maxage` (shared
    /// mode) or `no-cache` responses. Raise [`keep`](Self::keep) to cover it.
    #[must_use]
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.config.stale_while_revalidate = window;
        self
    }

    /// The stale-if-error window (RFC 5861) for responses and requests that
    /// name none (default zero). Within it a stale response is served when the
    /// inner service fails (returns an error) or answers 500, 502, 503 or 504.
    /// Never for `must-revalidate`, `proxy-revalidate`, `s-maxage` (shared
    /// mode) or `no-cache` responses. Raise [`keep`](Self::keep) to cover it.
    #[must_use]
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.config.stale_if_error = window;
        self
    }

    /// The response field that carries a response's tags, comma-separated, for
    /// [`CacheHandle::purge_tag`] (default `Cache-Tag`).
    #[must_use]
    pub fn tag_header(mut self, name: HeaderName) -> Self {
        self.config.tag_header = name;
        self
    }

    /// Whether the tag field is removed from responses, stored and sent
    /// (default on: tags are for this cache, not for clients).
    #[must_use]
    pub fn strip_tag_header(mut self, on: bool) -> Self {
        self.config.strip_tag_header = on;
        self
    }

    /// Whether `Cache-Status` carries the `key` parameter (the URL slot's
    /// backend key; default off: it tells clients how keys are made).
    #[must_use]
    pub fn cache_status_key(mut self, on: bool) -> Self {
        self.config.cache_status_key = on;
        self
    }

    /// Requests for which `bypass` returns `true` go to the inner service
    /// without a lookup and their responses are not stored (`Cache-Status:
    /// fwd=bypass`): nginx's `proxy_cache_bypass`, Varnish's `pass`.
    ///
    /// ```
    /// use tower_response_cache::CacheLayer;
    ///
    /// let layer = CacheLayer::builder()
    ///     .bypass(|req| req.headers.contains_key("x-preview"))
    ///     .build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn bypass<F>(mut self, bypass: F) -> Self
    where
        F: Fn(&Parts) -> bool + Send + Sync + 'static,
    {
        self.config.bypass = Some(Arc::new(bypass));
        self
    }

    /// How long a response is kept once stale: what a shared cache revalidates
    /// with `If-None-Match` / `If-Modified-Since` instead of fetching it whole,
    /// and what a request's `max-stale` may accept. The backend TTL is freshness
    /// plus this. Default: one hour in [`Mode::Shared`], none in [`Mode::App`]
    /// (Django drops a page when it expires).
    #[must_use]
    pub fn keep(mut self, keep: Duration) -> Self {
        self.keep = Some(keep);
        self
    }

    /// Whether a successful (2xx or 3xx) response to an unsafe method (POST, PUT,
    /// DELETE, PATCH, or any method not known to be safe) removes every stored
    /// variant of its URL and of the same-origin URLs in its `Location` and
    /// `Content-Location`, as RFC 9111 section 4.4 requires of HTTP caches
    /// (default on, in both modes). Django's middleware does not do it (its
    /// behaviour B11): turn it off to match Django exactly.
    #[must_use]
    pub fn invalidate_on_unsafe_methods(mut self, on: bool) -> Self {
        self.config.invalidate_unsafe = on;
        self
    }

    /// Where responses are kept (default: a [`MemoryBackend`] with its default
    /// limits). Pass a clone of one backend to several layers to share a cache.
    #[must_use]
    pub fn backend(mut self, backend: impl Backend) -> Self {
        self.backend = Some(Arc::new(backend));
        self
    }

    /// Stores responses in a configured [`Cache`] (a named cache from
    /// [`Caches`](crate::config::Caches), Django's `cache_page(cache="alias")`):
    /// its backend, key prefix and version, replacing any set before. Page keys
    /// are the layer's own hashed keys, so the cache's key function does not
    /// apply to them, and its `TIMEOUT` does not either (Django keeps
    /// `CACHE_MIDDLEWARE_SECONDS` apart: see
    /// [`default_timeout`](Self::default_timeout)).
    #[must_use]
    pub fn cache<C: Codec>(mut self, cache: &Cache<C>) -> Self {
        self.backend = Some(cache.backend().clone());
        self.config.key_prefix = cache.key_prefix().to_owned();
        self.config.version = cache.version();
        self
    }

    /// Django's `cache_page(timeout)`: how long every stored response stays fresh,
    /// whatever `max-age` it carries. `Duration::ZERO` stores nothing but still
    /// patches `Expires` and `max-age=0`.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.page_timeout = Some(timeout);
        self
    }

    /// `CACHE_MIDDLEWARE_SECONDS`: the freshness given to responses that carry no
    /// `max-age` (default 600 s). Ignored when [`timeout`](Self::timeout) is set.
    #[must_use]
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.config.default_timeout = timeout;
        self
    }

    /// `CACHE_MIDDLEWARE_KEY_PREFIX`: separates the entries of layers that share one
    /// backend (default empty).
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.key_prefix = prefix.into();
        self
    }

    /// The key version (default 1): bump it to orphan every entry stored before.
    #[must_use]
    pub fn version(mut self, version: u32) -> Self {
        self.config.version = version;
        self
    }

    /// Which statuses are stored (default only `200 OK`, as Django). `304` is never
    /// stored; it gets caching headers as Django gives it.
    #[must_use]
    pub fn cacheable_statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.config.statuses = statuses
            .into_iter()
            .filter(|s| *s != StatusCode::NOT_MODIFIED)
            .collect();
        self
    }

    /// The largest body stored (default 8 MiB). A larger body still streams to the
    /// client untouched; it is only not stored.
    #[must_use]
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.config.max_body_size = bytes;
        self
    }

    /// How many variants (distinct `Vary`'d request values, HEAD and GET) one URL
    /// may have at once (default 16, at least 1); storing one more evicts the
    /// oldest. This bounds what a client can make the cache hold for one URL.
    #[must_use]
    pub fn max_variants_per_url(mut self, n: usize) -> Self {
        self.max_variants = n;
        self
    }

    /// Adds key components computed from the request: locale, tenant, a trusted
    /// `X-Forwarded-Proto`… (Django's i18n / time-zone key suffix, generalised).
    ///
    /// ```
    /// use tower_response_cache::CacheLayer;
    ///
    /// let layer = CacheLayer::builder()
    ///     .key_hook(|req, key| {
    ///         if let Some(tenant) = req.headers.get("x-tenant") {
    ///             key.push(tenant.as_bytes());
    ///         }
    ///     })
    ///     .build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn key_hook<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Parts, &mut KeyParts<'_>) + Send + Sync + 'static,
    {
        self.config.key_hook = Some(Arc::new(hook));
        self
    }

    /// Whether responses carry an RFC 9211 `Cache-Status` header (default on).
    #[must_use]
    pub fn cache_status(mut self, on: bool) -> Self {
        self.config.cache_status = on;
        self
    }

    /// Whether a response that sets a cookie may be stored (default no: its
    /// `Set-Cookie` would be replayed to every client). When on, Django's rule
    /// applies: stored unless it also has `Vary: Cookie`.
    #[must_use]
    pub fn store_responses_with_cookies(mut self, on: bool) -> Self {
        self.config.store_set_cookie = on;
        self
    }

    /// The time source for freshness, `Expires` and `Age` (default the system
    /// clock; tests pass a [`ManualClock`](crate::ManualClock)).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the layer.
    pub fn build(mut self) -> CacheLayer {
        self.config.keep = self.keep.unwrap_or(match self.config.mode {
            Mode::App => Duration::ZERO,
            Mode::Shared => Duration::from_secs(3600),
        });
        let backend = self
            .backend
            .unwrap_or_else(|| Arc::new(MemoryBackend::default()));
        let store = ResponseStore::new(
            backend,
            &self.config.key_prefix,
            self.config.version,
            self.max_variants,
        );
        CacheLayer {
            shared: Arc::new(Shared {
                config: self.config,
                store,
                clock: self.clock,
                counters: Counters::default(),
                flights: Arc::default(),
            }),
        }
    }
}
