//! A caching reverse proxy: a hyper server whose service is an HTTP client to
//! one upstream, wrapped in a [`CacheLayer`].
//!
//! ```text
//! cargo run --release --example reverse_proxy -- --upstream http://127.0.0.1:8000
//! ```
//!
//! Options (all optional):
//!
//! - `--listen <addr>`: where to accept connections (default `127.0.0.1:8080`).
//! - `--upstream <http://host:port>`: the origin (default `http://127.0.0.1:8000`).
//! - `--backend <url>`: where responses are stored, any URL that
//!   [`Caches::from_urls`] accepts: `memory://` (default), `file:///var/tmp/proxy-cache`,
//!   `dummy://` (stores nothing).
//! - `--mode shared|app`: RFC 9111 shared-cache rules (default) or Django's.
//! - `--default-timeout <seconds>`: app mode only, the freshness of responses
//!   without `max-age`.
//! - `--stale-if-error <seconds>`: how long past its freshness a stored response
//!   may stand in when the upstream is unreachable or answers 500/502/503/504,
//!   for responses that name no `stale-if-error` (default 0).
//! - `--stale-while-revalidate <seconds>`: how long past its freshness a stored
//!   response is served while one background request refreshes it, for
//!   responses that name no `stale-while-revalidate` (default 0).
//!
//! Every method is forwarded, with the path and query, to the upstream. Request
//! and response bodies stream through; hop-by-hop headers are dropped in both
//! directions and every other header, `Host` included, is passed on as is. When
//! the upstream cannot be reached the client gets `502 Bad Gateway`, unless a
//! stale response may stand in (stale-if-error).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, HeaderName, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
use http::uri::{Authority, Scheme};
use http::{HeaderMap, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;
use tower::service_fn;
use tower_response_cache::config::Caches;
use tower_response_cache::{CacheLayer, Mode, ResponseBody};

const USAGE: &str = "\
usage: reverse_proxy [--listen ADDR] [--upstream http://HOST:PORT] [--backend URL]
                     [--mode shared|app] [--default-timeout SECONDS]
                     [--stale-if-error SECONDS] [--stale-while-revalidate SECONDS]

  --listen ADDR              address to listen on (default 127.0.0.1:8080)
  --upstream URL             origin to forward to (default http://127.0.0.1:8000)
  --backend URL              cache backend: memory:// (default), file:///path, dummy://
  --mode shared|app          RFC 9111 shared cache (default) or Django's app-mode rules
  --default-timeout SECONDS  app mode: freshness of responses without max-age
  --stale-if-error SECONDS   serve stale this long when the upstream fails (default 0)
  --stale-while-revalidate SECONDS
                             serve stale this long while refreshing (default 0)";

/// The command line, parsed.
struct Options {
    listen: SocketAddr,
    upstream: (Scheme, Authority),
    backend: String,
    mode: Mode,
    default_timeout: Option<Duration>,
    stale_if_error: Duration,
    stale_while_revalidate: Duration,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        upstream: (Scheme::HTTP, Authority::from_static("127.0.0.1:8000")),
        backend: "memory://".to_owned(),
        mode: Mode::Shared,
        default_timeout: None,
        stale_if_error: Duration::ZERO,
        stale_while_revalidate: Duration::ZERO,
    };
    while let Some(arg) = args.next() {
        // Both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let known = [
            "--listen",
            "--upstream",
            "--backend",
            "--mode",
            "--default-timeout",
            "--stale-if-error",
            "--stale-while-revalidate",
        ];
        if !known.contains(&flag.as_str()) {
            return Err(format!("unknown option {flag}"));
        }
        let value = match inline.or_else(|| args.next()) {
            Some(value) => value,
            None => return Err(format!("{flag} needs a value")),
        };
        let bad = |what: &str| format!("{flag} {value:?}: {what}");
        match flag.as_str() {
            "--listen" => options.listen = value.parse().map_err(|_| bad("not an address"))?,
            "--upstream" => {
                let uri: Uri = value.parse().map_err(|_| bad("not a URL"))?;
                let parts = uri.into_parts();
                let has_path = parts.path_and_query.as_ref().is_some_and(|p| p != "/");
                match (parts.scheme, parts.authority) {
                    (Some(s), Some(a)) if s == Scheme::HTTP && !has_path => {
                        options.upstream = (s, a);
                    }
                    _ => return Err(bad("expected http://host:port")),
                }
            }
            "--backend" => options.backend = value,
            "--mode" => {
                options.mode = match value.as_str() {
                    "shared" => Mode::Shared,
                    "app" => Mode::App,
                    _ => return Err(bad("expected shared or app")),
                }
            }
            "--default-timeout" | "--stale-if-error" | "--stale-while-revalidate" => {
                let secs: u64 = value.parse().map_err(|_| bad("not whole seconds"))?;
                let secs = Duration::from_secs(secs);
                match flag.as_str() {
                    "--default-timeout" => options.default_timeout = Some(secs),
                    "--stale-if-error" => options.stale_if_error = secs,
                    _ => options.stale_while_revalidate = secs,
                }
            }
            _ => unreachable!("checked above"),
        }
    }
    if options.default_timeout.is_some() && options.mode != Mode::App {
        return Err("--default-timeout applies to --mode app only".to_owned());
    }
    Ok(options)
}

/// Removes the headers that describe one connection, not the message (RFC 9110
/// section 7.6.1): `Connection`, the fields it names, and the fixed list.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| name.trim().parse().ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    for name in ["keep-alive", "proxy-connection"] {
        headers.remove(name);
    }
}

/// What the proxy answers: the upstream's streamed body, or its own 502.
type ProxyBody = Either<Incoming, Full<Bytes>>;

/// The upstream could not be reached (or broke off): the cache may serve a stale
/// response instead; otherwise the client gets a 502.
#[derive(Debug)]
struct UpstreamError;

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("upstream unreachable")
    }
}

impl std::error::Error for UpstreamError {}

/// Sends one request to the upstream.
async fn forward(
    client: Client<HttpConnector, Incoming>,
    (scheme, authority): (Scheme, Authority),
    mut req: Request<Incoming>,
) -> Result<Response<ProxyBody>, UpstreamError> {
    let mut uri = Uri::builder().scheme(scheme).authority(authority);
    if let Some(path_and_query) = req.uri().path_and_query() {
        uri = uri.path_and_query(path_and_query.clone());
    }
    match uri.build() {
        Ok(uri) => *req.uri_mut() = uri,
        // `OPTIONS *` and the like: nothing to forward to.
        Err(_) => return Ok(status_response(StatusCode::BAD_REQUEST)),
    }
    *req.version_mut() = Version::HTTP_11;
    remove_hop_by_hop(req.headers_mut());

    match client.request(req).await {
        Ok(res) => {
            let mut res = res.map(Either::Left);
            remove_hop_by_hop(res.headers_mut());
            Ok(res)
        }
        Err(err) => {
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message = format!("{message}: {cause}");
                source = cause.source();
            }
            eprintln!("upstream error: {message}");
            Err(UpstreamError)
        }
    }
}

/// The proxy's own answer, such as `400 Bad Request`.
fn status_response(status: StatusCode) -> Response<ProxyBody> {
    let mut res = Response::new(Either::Right(Full::from(format!("{status}\n"))));
    *res.status_mut() = status;
    res
}

/// The body the client gets: the cache's, or the proxy's own.
type ClientBody = Either<ResponseBody<ProxyBody>, Full<Bytes>>;

/// What the client gets: the cache's response, or the proxy's own 502 when the
/// upstream failed and no stale response could stand in. (Never an error: the
/// error type is only what tower's `map_result` needs for readiness.)
fn answer(
    result: Result<Response<ResponseBody<ProxyBody>>, UpstreamError>,
) -> Result<Response<ClientBody>, UpstreamError> {
    Ok(match result {
        Ok(res) => res.map(Either::Left),
        Err(UpstreamError) => {
            let mut res = Response::new(Either::Right(Full::from("502 Bad Gateway\n")));
            *res.status_mut() = StatusCode::BAD_GATEWAY;
            res
        }
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("reverse_proxy: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let caches = Caches::from_urls([("default", options.backend.as_str())])?;
    let mut cache = CacheLayer::builder()
        .cache(caches.default_cache()?)
        .mode(options.mode)
        .stale_if_error(options.stale_if_error)
        .stale_while_revalidate(options.stale_while_revalidate);
    if let Some(timeout) = options.default_timeout {
        cache = cache.default_timeout(timeout);
    }

    let client = Client::builder(TokioExecutor::new())
        // Drop idle upstream connections before the origin does (Node closes
        // them after 5 s), so that a request never races a closing connection.
        .pool_idle_timeout(Duration::from_secs(4))
        .build_http();
    let upstream = options.upstream;
    let service = ServiceBuilder::new()
        .map_result(answer)
        .layer(cache.build())
        .service(service_fn(move |req| {
            forward(client.clone(), upstream.clone(), req)
        }));

    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    println!("listening on {}", listener.local_addr()?);

    let graceful = GracefulShutdown::new();
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    eprintln!("accept error: {err}");
                    continue;
                }
            },
            _ = &mut ctrl_c => break,
        };
        let service = TowerToHyperService::new(service.clone());
        let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                eprintln!("connection error: {err}");
            }
        });
    }
    // Ctrl-C: stop accepting, let requests in flight finish (for up to 10 s).
    drop(listener);
    tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .ok();
    Ok(())
}
