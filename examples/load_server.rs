//! The origin of the over-the-wire load comparison (`benches/load.sh`): an axum
//! server with two cacheable endpoints, bare or behind a site-wide `CacheLayer`.
//!
//! ```text
//! cargo run --release --example load_server -- --listen 127.0.0.1:8000 --cache memory
//! cargo run --release --features redis --example load_server -- \
//!     --cache redis --redis-url redis://127.0.0.1:6379
//! ```
//!
//! - `GET /1k` and `GET /64k` answer a prebuilt body of 1 KiB / 64 KiB with
//!   `Cache-Control: public, max-age=3600`, so that any shared cache in front
//!   (Varnish, nginx, `examples/reverse_proxy.rs`) may store it for an hour.
//! - `--listen ADDR`: where to accept connections (default `127.0.0.1:8000`;
//!   port 0 picks a free one). The address is printed as `listening on ADDR`.
//! - `--cache none|memory|redis`: `none` (default) is bare axum, the baseline;
//!   `memory` puts `CacheLayer::new()` on the whole router; `redis` puts a
//!   `CacheLayer` over a `RedisBackend` at `--redis-url` (default
//!   `redis://127.0.0.1:6379`) there, and needs the `redis` feature.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;
use tower_response_cache::CacheLayer;

const USAGE: &str = "\
usage: load_server [--listen ADDR] [--cache none|memory|redis] [--redis-url URL]

  --listen ADDR               address to listen on (default 127.0.0.1:8000)
  --cache none|memory|redis   no cache (default), CacheLayer::new(), or a CacheLayer on Redis
  --redis-url URL             Redis server for --cache redis (default redis://127.0.0.1:6379)";

#[derive(Clone, Copy, PartialEq, Eq)]
enum CacheKind {
    None,
    Memory,
    Redis,
}

struct Options {
    listen: SocketAddr,
    cache: CacheKind,
    redis_url: String,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
        cache: CacheKind::None,
        redis_url: "redis://127.0.0.1:6379".to_owned(),
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        if !["--listen", "--cache", "--redis-url"].contains(&flag.as_str()) {
            return Err(format!("unknown option {flag}"));
        }
        let Some(value) = inline.or_else(|| args.next()) else {
            return Err(format!("{flag} needs a value"));
        };
        match flag.as_str() {
            "--listen" => {
                options.listen = value
                    .parse()
                    .map_err(|_| format!("--listen {value:?}: not an address"))?;
            }
            "--cache" => {
                options.cache = match value.as_str() {
                    "none" => CacheKind::None,
                    "memory" => CacheKind::Memory,
                    "redis" => CacheKind::Redis,
                    _ => return Err(format!("--cache {value:?}: expected none, memory or redis")),
                };
            }
            _ => options.redis_url = value,
        }
    }
    Ok(options)
}

/// A body of `len` bytes of printable text, built once at start-up.
fn body(len: usize) -> Bytes {
    let line = b"tower-response-cache load test body 0123456789 abcdefghijklmnopqrstuvwxyz\n";
    line.iter()
        .copied()
        .cycle()
        .take(len)
        .collect::<Vec<u8>>()
        .into()
}

/// The two endpoints, each answering a clone of its prebuilt body.
fn routes() -> Router {
    let small = body(1024);
    let large = body(64 * 1024);
    let page = |body: Bytes| {
        move || {
            let body = body.clone();
            async move {
                (
                    [
                        (CACHE_CONTROL, "public, max-age=3600"),
                        (CONTENT_TYPE, "text/plain; charset=utf-8"),
                    ],
                    body,
                )
                    .into_response()
            }
        }
    };
    Router::new()
        .route("/1k", get(page(small)))
        .route("/64k", get(page(large)))
}

#[cfg(feature = "redis")]
async fn redis_layer(url: &str) -> Result<CacheLayer, Box<dyn std::error::Error>> {
    use tower_response_cache::backend::RedisBackend;
    let backend = RedisBackend::builder(url).build().await?;
    Ok(CacheLayer::builder().backend(backend).build())
}

#[cfg(not(feature = "redis"))]
async fn redis_layer(_url: &str) -> Result<CacheLayer, Box<dyn std::error::Error>> {
    Err(
        "--cache redis needs the redis feature: cargo run --features redis --example load_server"
            .into(),
    )
}

async fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let app = match options.cache {
        CacheKind::None => routes(),
        CacheKind::Memory => routes().layer(CacheLayer::new()),
        CacheKind::Redis => routes().layer(redis_layer(&options.redis_url).await?),
    };
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(())
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
            eprintln!("load_server: {err}");
            ExitCode::FAILURE
        }
    }
}
