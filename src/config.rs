//! Named caches from configuration (Django's `CACHES`).
//!
//! An application rarely wants one cache: pages in memory, sessions on disk, a
//! dummy cache in development. [`Caches`] is the registry of those named caches
//! (Django's `caches[alias]`), built from code, from URLs, from a TOML file or
//! from environment variables, so that where each cache lives is a deployment
//! decision rather than a code change.
//!
//! ```
//! use tower_response_cache::CacheLayer;
//! use tower_response_cache::config::Caches;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let caches = Caches::from_toml_str(
//!     r#"
//!     [caches.default]
//!     url = "memory://?max_entries=1000"
//!     timeout = 60
//!
//!     [caches.pages]
//!     url = "memory://"
//!     key_prefix = "pages"
//!     "#,
//! )?;
//! // The low-level API on one named cache...
//! caches.default_cache()?.set("greeting", "hello").await?;
//! // ...and the response cache on another (Django's `cache_page(cache="pages")`).
//! let layer = CacheLayer::builder().cache(caches.get("pages")?).build();
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```
//!
//! # Backend URLs
//!
//! | URL | backend |
//! | --- | --- |
//! | `memory://` | [`MemoryBackend`]: in this process, one store per alias |
//! | `dummy://` | [`DummyBackend`]: stores nothing (caching off, calls kept) |
//! | `file:///var/tmp/app-cache` | [`FileBackend`]: one file per key in that absolute directory, created (mode 0700) when the cache is built |
//! | `redis://`, `rediss://`, `redis+cluster://`, `memcached://`, `postgres://`, `postgresql://`, `sqlite://` | reserved: [`ConfigError::UnsupportedBackend`]; Redis and Memcached backends are built in code (they connect asynchronously) and added with [`Caches::insert`] |
//!
//! Options go in the query string, with the same names as the settings:
//! `memory://?max_entries=1000&timeout=60&key_prefix=site&version=2`. Names are
//! case-insensitive (`MAX_ENTRIES` is Django's spelling), `%XX` escapes are
//! decoded in names, values and `file://` paths, and `+` is kept as a plus sign
//! (it is not a form-encoded space). An unknown option is an error, not ignored,
//! so that a typo cannot silently leave a cache unbounded.
//!
//! A setting may come from the URL's query string or from its own key (a TOML
//! field, an environment variable, a `with_*` method), but not from both: the
//! two disagreeing would leave a reader of either one wrong about the cache, so
//! that is a [`ConfigError::BadOption`] rather than a precedence rule to learn.
//!
//! | setting | default | meaning |
//! | --- | --- | --- |
//! | `timeout` | 300 | Django's `TIMEOUT`: seconds (fractions allowed; `0` or less stores nothing), or `none` for never |
//! | `key_prefix` | empty | `KEY_PREFIX` |
//! | `version` | 1 | `VERSION` |
//! | `max_entries` | the backend's: memory 10,000, file 300 | `MAX_ENTRIES`; for memory `0` means no count limit, for file Django's rule (every write culls) |
//! | `cull_frequency` | 3 | `CULL_FREQUENCY` for `file://` (`0` clears the directory when full); accepted and unused by `memory://`, which evicts one value at a time by CLOCK, not by culling 1/N |
//! | `max_bytes` | memory 128 MiB | memory only: the byte limit (`0` = none); an error on `file://` |
//!
//! `dummy://` accepts every option and uses none: switching a cache off should
//! only take changing its scheme.
//!
//! # Environment variables
//!
//! [`Caches::from_env`] reads `CACHE_URL` for `default` and `CACHE_<NAME>_URL`
//! for the cache `<name>` (lower-cased), plus one variable per setting:
//! `CACHE_TIMEOUT`, `CACHE_SESSIONS_KEY_PREFIX`... (see
//! [`Caches::from_vars`], which does the same on variables given to it).
//!
//! # The `default` alias
//!
//! As in Django, a configuration that names any cache must name `default`
//! ([`ConfigError::MissingDefault`] otherwise), and one that names none at all
//! (no `[caches]` table, no `CACHE_*` variable) gets Django's global default: a
//! `memory://` cache called `default`.
//!
//! URLs are parsed by a small parser in this module rather than the `url`
//! crate: only three schemes, one path form and a query string are needed, and
//! `url`'s WHATWG rules (host normalisation, `file:` quirks) would have to be
//! undone for them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::backend::{BackendError, DummyBackend, FileBackend, MemoryBackend};
use crate::{Cache, Timeout};

/// The alias Django requires and [`Caches::default_cache`] looks up.
pub const DEFAULT_ALIAS: &str = "default";

/// Schemes whose backends a later version adds (behind cargo features): named
/// here so that a configuration written for them fails with "not built in"
/// instead of "unknown scheme", which would suggest a typo.
const RESERVED_SCHEMES: &[&str] = &[
    "redis",
    "rediss",
    "redis+cluster",
    "memcached",
    "postgres",
    "postgresql",
    "sqlite",
];

/// What went wrong while building caches from configuration.
///
/// Every variant that concerns one cache names its alias, because a
/// configuration usually holds several and "bad URL" alone sends the reader
/// through all of them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// [`Caches::get`] was asked for an alias nobody configured; the configured
    /// ones are listed because the usual cause is a typo or a missing entry.
    #[error(
        "no cache named {alias:?} is configured (configured: {})",
        list(configured)
    )]
    UnknownAlias {
        /// The alias asked for.
        alias: String,
        /// The aliases that exist, sorted.
        configured: Vec<String>,
    },
    /// The URL cannot be read: no `scheme://`, an unknown scheme, a relative
    /// `file://` path, a bad `%` escape.
    #[error("cache {alias:?}: bad URL {url:?}: {reason}")]
    BadUrl {
        /// The cache whose URL it is.
        alias: String,
        /// The URL, with any password replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The scheme names a backend that cannot be configured by URL (yet):
    /// PostgreSQL and SQLite do not exist yet; Redis and Memcached (cargo features
    /// `redis`, `memcached`) connect asynchronously, so they are built in code and
    /// added with [`Caches::insert`].
    #[error(
        "cache {alias:?}: {scheme}:// caches cannot be configured by URL in this version \
         (by URL: memory://, dummy://, file://); build a RedisBackend or MemcachedBackend \
         in code and add it with Caches::insert"
    )]
    UnsupportedBackend {
        /// The cache that asked for it.
        alias: String,
        /// The URL's scheme, lower-cased.
        scheme: String,
    },
    /// A setting has a value that cannot be used: not a number, out of range,
    /// set twice, or meaningless for the backend.
    #[error("cache {alias:?}: bad value {value:?} for {option}: {reason}")]
    BadOption {
        /// The cache it belongs to.
        alias: String,
        /// The setting's name (`timeout`, `max_entries`...).
        option: String,
        /// The value as given.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A URL query option that no backend knows, most often a misspelling.
    #[error(
        "cache {alias:?}: unknown option {option:?} (known: timeout, key_prefix, version, \
         max_entries, cull_frequency, max_bytes)"
    )]
    UnknownOption {
        /// The cache it belongs to.
        alias: String,
        /// The option as written.
        option: String,
    },
    /// The same alias was given twice to one constructor; which one should win
    /// is a guess this crate does not make.
    #[error("cache {alias:?} is configured more than once")]
    DuplicateAlias {
        /// The repeated alias.
        alias: String,
    },
    /// Caches were configured but none is called `default`, which Django
    /// requires and [`Caches::default_cache`] needs.
    #[error(
        "no \"default\" cache is configured (configured: {}); name one of them \"default\"",
        list(configured)
    )]
    MissingDefault {
        /// The aliases that were configured, sorted.
        configured: Vec<String>,
    },
    /// The TOML is malformed or has a field of the wrong type or name; the
    /// message is the TOML parser's, with line and column.
    #[error("invalid cache configuration{}: {message}", in_path(path.as_deref()))]
    Toml {
        /// The file it came from, when it came from one.
        path: Option<PathBuf>,
        /// The parser's message.
        message: String,
    },
    /// The configuration file could not be read.
    #[error("could not read the cache configuration {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The settings were valid but the backend could not be set up (for
    /// example, the `file://` directory cannot be created).
    #[error("cache {alias:?}: could not set up the backend: {source}")]
    Backend {
        /// The cache whose backend failed.
        alias: String,
        /// The backend's error.
        source: BackendError,
    },
}

fn list(aliases: &[String]) -> String {
    if aliases.is_empty() {
        "none".to_owned()
    } else {
        aliases.join(", ")
    }
}

fn in_path(path: Option<&Path>) -> String {
    path.map(|p| format!(" in {}", p.display()))
        .unwrap_or_default()
}

/// One named cache's settings: where it lives (a URL) and Django's `TIMEOUT`,
/// `KEY_PREFIX`, `VERSION`, `MAX_ENTRIES` and `CULL_FREQUENCY`.
///
/// The fields are private so that the settings can tell "not set" from "set to
/// the default value": that is what lets a setting given both in the URL and
/// on its own be reported instead of one silently winning. The getters return
/// the value in force (Django's default when unset).
///
/// Settings are checked when a cache is built from them ([`Caches::from_settings`],
/// [`Caches::insert_settings`]), where the alias is known and can be named in
/// the error. Deserialising them (from TOML or any serde format, for example a
/// section of an application's own configuration) reads the fields `url`,
/// `timeout` (seconds, or the string `"none"`), `key_prefix`, `version`,
/// `max_entries`, `cull_frequency` and `max_bytes`, and rejects any other.
///
/// ```
/// use tower_response_cache::Timeout;
/// use tower_response_cache::config::{CacheSettings, Caches};
///
/// # fn main() -> Result<(), tower_response_cache::config::ConfigError> {
/// let pages = CacheSettings::new("memory://?max_entries=5000")
///     .with_timeout(600)
///     .with_key_prefix("pages");
/// let caches = Caches::from_settings([("default", pages)])?;
///
/// // What is in force, with the URL's options folded in.
/// let settings = caches.settings("default");
/// assert_eq!(settings.map(|s| s.url()), Some("memory://"));
/// assert_eq!(settings.and_then(|s| s.max_entries()), Some(5000));
/// assert_eq!(settings.map(|s| s.timeout()), Some(Timeout::Seconds(600.0)));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    url: String,
    #[serde(default, deserialize_with = "deserialize_timeout")]
    timeout: Option<Timeout>,
    #[serde(default)]
    key_prefix: Option<String>,
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    max_entries: Option<u64>,
    #[serde(default)]
    cull_frequency: Option<u32>,
    #[serde(default)]
    max_bytes: Option<u64>,
}

impl CacheSettings {
    /// Settings for the backend at `url`, every other setting left to its
    /// default or to the URL's query string.
    ///
    /// Infallible on purpose: the URL is checked when the cache is built, where
    /// the error can name the alias.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout: None,
            key_prefix: None,
            version: None,
            max_entries: None,
            cull_frequency: None,
            max_bytes: None,
        }
    }

    /// Sets `TIMEOUT`, the lifetime of values stored without one;
    /// [`Timeout::Default`] unsets it (back to 300 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: impl Into<Timeout>) -> Self {
        self.timeout = match timeout.into() {
            Timeout::Default => None,
            explicit => Some(explicit),
        };
        self
    }

    /// Sets `KEY_PREFIX`, which keeps apart caches that share a store.
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = Some(prefix.into());
        self
    }

    /// Sets `VERSION`, the key version used when a call names none; bumping it
    /// orphans everything stored before.
    #[must_use]
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = Some(version);
        self
    }

    /// Sets `MAX_ENTRIES`, the bound that keeps a cache from growing without
    /// limit.
    #[must_use]
    pub fn with_max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = Some(max_entries);
        self
    }

    /// Sets `CULL_FREQUENCY`: when a `file://` cache is full, 1/N of its
    /// entries go (0: all). Kept but unused by `memory://`.
    #[must_use]
    pub fn with_cull_frequency(mut self, cull_frequency: u32) -> Self {
        self.cull_frequency = Some(cull_frequency);
        self
    }

    /// Sets the byte limit of a `memory://` cache (not a Django setting: an
    /// entry count alone does not bound memory when values vary in size).
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }

    /// Where the cache lives. After the settings have been built into a cache
    /// ([`Caches::settings`]) this is the URL without its query string, whose
    /// options are then in the other settings.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `TIMEOUT` in force: 300 s unless set.
    pub fn timeout(&self) -> Timeout {
        self.timeout.unwrap_or(crate::cache::DEFAULT_TIMEOUT)
    }

    /// `KEY_PREFIX` in force: empty unless set.
    pub fn key_prefix(&self) -> &str {
        self.key_prefix.as_deref().unwrap_or("")
    }

    /// `VERSION` in force: 1 unless set.
    pub fn version(&self) -> u32 {
        self.version.unwrap_or(1)
    }

    /// `MAX_ENTRIES`, or `None` for the backend's own default (memory 10,000,
    /// file 300), which this type does not repeat so it cannot drift from it.
    pub fn max_entries(&self) -> Option<u64> {
        self.max_entries
    }

    /// `CULL_FREQUENCY`, or `None` for the backend's default (3).
    pub fn cull_frequency(&self) -> Option<u32> {
        self.cull_frequency
    }

    /// The memory byte limit, or `None` for the backend's default (128 MiB).
    pub fn max_bytes(&self) -> Option<u64> {
        self.max_bytes
    }
}

/// Reads `timeout` as TOML writes it: an integer or float number of seconds,
/// or `"none"` (TOML has no null) for never.
fn deserialize_timeout<'de, D>(deserializer: D) -> Result<Option<Timeout>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct TimeoutVisitor;

    impl serde::de::Visitor<'_> for TimeoutVisitor {
        type Value = Option<Timeout>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number of seconds or \"none\"")
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(Timeout::from(v)))
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(Timeout::from(v)))
        }

        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.is_finite() {
                Ok(Some(Timeout::Seconds(v)))
            } else {
                Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
            }
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            parse_timeout(v)
                .map(Some)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
        }
    }

    deserializer.deserialize_any(TimeoutVisitor)
}

fn parse_timeout(value: &str) -> Result<Timeout, String> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(Timeout::Never);
    }
    match value.parse::<f64>() {
        Ok(secs) if secs.is_finite() => Ok(Timeout::Seconds(secs)),
        _ => Err("expected a number of seconds or `none`".to_owned()),
    }
}

/// The settings a URL query string or an environment variable can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setting {
    Timeout,
    KeyPrefix,
    Version,
    MaxEntries,
    CullFrequency,
    MaxBytes,
}

impl Setting {
    const ALL: [Setting; 6] = [
        Setting::Timeout,
        Setting::KeyPrefix,
        Setting::Version,
        Setting::MaxEntries,
        Setting::CullFrequency,
        Setting::MaxBytes,
    ];

    fn name(self) -> &'static str {
        match self {
            Setting::Timeout => "timeout",
            Setting::KeyPrefix => "key_prefix",
            Setting::Version => "version",
            Setting::MaxEntries => "max_entries",
            Setting::CullFrequency => "cull_frequency",
            Setting::MaxBytes => "max_bytes",
        }
    }

    fn from_name(name: &str) -> Option<Setting> {
        Setting::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    fn is_set(self, settings: &CacheSettings) -> bool {
        match self {
            Setting::Timeout => settings.timeout.is_some(),
            Setting::KeyPrefix => settings.key_prefix.is_some(),
            Setting::Version => settings.version.is_some(),
            Setting::MaxEntries => settings.max_entries.is_some(),
            Setting::CullFrequency => settings.cull_frequency.is_some(),
            Setting::MaxBytes => settings.max_bytes.is_some(),
        }
    }

    /// Parses `value` into `settings`; the error is the reason it cannot be.
    fn apply(self, settings: &mut CacheSettings, value: &str) -> Result<(), String> {
        fn whole<T: std::str::FromStr>(value: &str, what: &str) -> Result<T, String> {
            value.parse().map_err(|_| format!("expected {what}"))
        }
        match self {
            Setting::Timeout => settings.timeout = Some(parse_timeout(value)?),
            Setting::KeyPrefix => settings.key_prefix = Some(value.to_owned()),
            Setting::Version => {
                settings.version = Some(whole(value, "a whole number from 0 to 4294967295")?);
            }
            Setting::MaxEntries => {
                settings.max_entries = Some(whole(value, "a whole number of entries")?);
            }
            Setting::CullFrequency => {
                settings.cull_frequency =
                    Some(whole(value, "a whole number (N: cull 1/N; 0: clear all)")?);
            }
            Setting::MaxBytes => {
                settings.max_bytes = Some(whole(value, "a whole number of bytes")?);
            }
        }
        Ok(())
    }
}

/// Which backend a URL names, once parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Memory,
    Dummy,
    File(PathBuf),
}

/// A URL taken apart: the backend, the URL without its query string, and the
/// query's options (a name without `=` has no value).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ParsedUrl {
    place: Place,
    base: String,
    options: Vec<(String, Option<String>)>,
}

/// Why a URL could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum UrlProblem {
    Bad(String),
    Unsupported(String),
}

fn parse_url(url: &str) -> Result<ParsedUrl, UrlProblem> {
    let bad = |reason: &str| UrlProblem::Bad(reason.to_owned());
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            "a URL cannot contain spaces or control characters (percent-encode them: %20)",
        ));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad("expected scheme://..., for example memory://"));
    };
    let scheme = scheme.to_ascii_lowercase();
    let well_formed = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !well_formed {
        return Err(UrlProblem::Bad(format!("{scheme:?} is not a URL scheme")));
    }
    if RESERVED_SCHEMES.contains(&scheme.as_str()) {
        return Err(UrlProblem::Unsupported(scheme));
    }
    if rest.contains('#') {
        return Err(bad("a fragment (#...) means nothing in a cache URL"));
    }
    let (hier, query) = match rest.split_once('?') {
        Some((hier, query)) => (hier, Some(query)),
        None => (rest, None),
    };
    let place = match scheme.as_str() {
        "memory" | "dummy" if !hier.is_empty() => {
            return Err(UrlProblem::Bad(format!(
                "{scheme}:// takes no host or path; options go after ?, as in \
                 {scheme}://?timeout=60"
            )));
        }
        "memory" => Place::Memory,
        "dummy" => Place::Dummy,
        "file" => Place::File(file_path(hier)?),
        other => {
            return Err(UrlProblem::Bad(format!(
                "unknown scheme {other:?} (built in: memory://, dummy://, file://)"
            )));
        }
    };
    let mut options = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (pair, None),
        };
        let value = value.map(percent_decode).transpose()?;
        options.push((percent_decode(name)?, value));
    }
    Ok(ParsedUrl {
        place,
        base: format!("{scheme}://{hier}"),
        options,
    })
}

/// The directory of a `file://` URL: `file:///abs/path` or
/// `file://localhost/abs/path`.
fn file_path(hier: &str) -> Result<PathBuf, UrlProblem> {
    let (host, path) = match hier.find('/') {
        Some(at) => hier.split_at(at),
        None => (hier, ""),
    };
    if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
        return Err(UrlProblem::Bad(format!(
            "file:// needs an absolute path, as in file:///var/tmp/app-cache (three slashes); \
             {host:?} would be a host name"
        )));
    }
    if path.len() <= 1 {
        return Err(UrlProblem::Bad(
            "file:// needs the cache directory, as in file:///var/tmp/app-cache".to_owned(),
        ));
    }
    let path = percent_decode(path)?;
    if path.trim_matches('/').is_empty() {
        return Err(UrlProblem::Bad(
            "file:// needs a cache directory, not the root directory".to_owned(),
        ));
    }
    // file:///C:/cache on Windows: the drive follows the slash that ends the
    // (empty) host.
    let path = if cfg!(windows) && path.as_bytes().get(2) == Some(&b':') {
        path[1..].to_owned()
    } else {
        path
    };
    Ok(PathBuf::from(path))
}

/// Decodes `%XX` escapes (and nothing else: `+` stays a plus sign).
fn percent_decode(text: &str) -> Result<String, UrlProblem> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(byte) => out.push(byte),
                None => {
                    return Err(UrlProblem::Bad(
                        "% must be followed by two hexadecimal digits".to_owned(),
                    ));
                }
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| UrlProblem::Bad("percent-escapes decode to invalid UTF-8".to_owned()))
}

/// The URL as it may appear in an error message: a password in it (a
/// `redis://:secret@host` mistyped as `redsi://`) is replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_owned(),
    }
}

/// Parses the settings' URL and folds its query options into them: what is
/// built, and what [`Caches::settings`] shows.
fn resolve(alias: &str, settings: &CacheSettings) -> Result<(Place, CacheSettings), ConfigError> {
    let parsed = parse_url(&settings.url).map_err(|problem| match problem {
        UrlProblem::Unsupported(scheme) => ConfigError::UnsupportedBackend {
            alias: alias.to_owned(),
            scheme,
        },
        UrlProblem::Bad(reason) => ConfigError::BadUrl {
            alias: alias.to_owned(),
            url: redact(&settings.url),
            reason,
        },
    })?;
    let bad_option = |option: &str, value: &str, reason: String| ConfigError::BadOption {
        alias: alias.to_owned(),
        option: option.to_owned(),
        value: value.to_owned(),
        reason,
    };
    let mut resolved = settings.clone();
    resolved.url = parsed.base;
    for (name, value) in parsed.options {
        let Some(setting) = Setting::from_name(&name) else {
            return Err(ConfigError::UnknownOption {
                alias: alias.to_owned(),
                option: name,
            });
        };
        let Some(value) = value else {
            return Err(bad_option(
                setting.name(),
                "",
                format!("needs a value, as in {}=...", setting.name()),
            ));
        };
        if setting.is_set(settings) {
            return Err(bad_option(
                setting.name(),
                &value,
                "set both in the URL and on its own; set it in one place".to_owned(),
            ));
        }
        if setting.is_set(&resolved) {
            return Err(bad_option(
                setting.name(),
                &value,
                "given twice in the URL".to_owned(),
            ));
        }
        setting
            .apply(&mut resolved, &value)
            .map_err(|reason| bad_option(setting.name(), &value, reason))?;
    }
    if let (Place::File(_), Some(max_bytes)) = (&parsed.place, resolved.max_bytes) {
        return Err(bad_option(
            Setting::MaxBytes.name(),
            &max_bytes.to_string(),
            "only memory:// has a byte limit; bound a file:// cache with max_entries".to_owned(),
        ));
    }
    Ok((parsed.place, resolved))
}

/// Builds the cache that resolved settings describe.
fn build(alias: &str, place: &Place, settings: &CacheSettings) -> Result<Cache, ConfigError> {
    let backend_error = |source| ConfigError::Backend {
        alias: alias.to_owned(),
        source,
    };
    let builder = match place {
        Place::Memory => {
            let mut memory = MemoryBackend::builder();
            if let Some(n) = settings.max_entries {
                memory = memory.max_entries(n);
            }
            if let Some(n) = settings.max_bytes {
                memory = memory.max_bytes(n);
            }
            Cache::builder(memory.build())
        }
        Place::Dummy => Cache::builder(DummyBackend),
        Place::File(dir) => {
            let backend = file_backend(alias, dir, settings)?.map_err(backend_error)?;
            Cache::builder(backend)
        }
    };
    Ok(builder
        .timeout(settings.timeout())
        .key_prefix(settings.key_prefix())
        .version(settings.version())
        .build())
}

/// The `file://` backend; the outer error is a setting this platform cannot
/// hold (a `max_entries` beyond `usize`), the inner one the backend's own.
fn file_backend(
    alias: &str,
    dir: &Path,
    settings: &CacheSettings,
) -> Result<Result<FileBackend, BackendError>, ConfigError> {
    let too_large = |setting: Setting, value: u64| ConfigError::BadOption {
        alias: alias.to_owned(),
        option: setting.name().to_owned(),
        value: value.to_string(),
        reason: "too large for this platform".to_owned(),
    };
    let mut file = FileBackend::builder(dir);
    if let Some(n) = settings.max_entries {
        let n = usize::try_from(n).map_err(|_| too_large(Setting::MaxEntries, n))?;
        file = file.max_entries(n);
    }
    if let Some(n) = settings.cull_frequency {
        let n = usize::try_from(n).map_err(|_| too_large(Setting::CullFrequency, n.into()))?;
        file = file.cull_frequency(n);
    }
    Ok(file.build())
}

/// The registry of named caches: Django's `caches`, looked up by alias.
///
/// Build it once at start-up and share it (it is cheap to clone: each
/// [`Cache`] is a handle on a shared backend). Every constructor checks the
/// whole configuration before it opens any backend, so a mistake in the last
/// cache does not leave directories created for the first.
///
/// ```
/// use tower_response_cache::config::{Caches, ConfigError};
///
/// # fn main() -> Result<(), ConfigError> {
/// let caches = Caches::from_urls([
///     ("default", "memory://?max_entries=1000&timeout=60"),
///     ("off", "dummy://"),
/// ])?;
/// assert_eq!(caches.aliases().collect::<Vec<_>>(), ["default", "off"]);
///
/// let err = caches.get("sesions").err();
/// assert!(matches!(err, Some(ConfigError::UnknownAlias { .. })));
/// assert_eq!(
///     err.map(|e| e.to_string()).as_deref(),
///     Some(r#"no cache named "sesions" is configured (configured: default, off)"#)
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Caches {
    caches: BTreeMap<String, Named>,
}

#[derive(Debug, Clone)]
struct Named {
    cache: Cache,
    /// `None` for a cache inserted from code: it has no settings to show.
    settings: Option<CacheSettings>,
}

impl Caches {
    /// An empty registry, to fill from code with [`insert`](Self::insert).
    /// Unlike the other constructors it has no `default` until one is inserted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a cache built in code (a custom backend, key function or
    /// codec-free sharing of one backend by several aliases), replacing and
    /// returning any cache of that alias.
    ///
    /// ```
    /// use tower_response_cache::Cache;
    /// use tower_response_cache::backend::MemoryBackend;
    /// use tower_response_cache::config::Caches;
    ///
    /// let mut caches = Caches::new();
    /// caches.insert("default", Cache::new(MemoryBackend::new()));
    /// assert!(caches.default_cache().is_ok());
    /// ```
    pub fn insert(&mut self, alias: impl Into<String>, cache: Cache) -> Option<Cache> {
        let named = Named {
            cache,
            settings: None,
        };
        self.caches.insert(alias.into(), named).map(|old| old.cache)
    }

    /// Builds a cache from settings and registers it under `alias`, replacing
    /// any cache of that alias.
    pub fn insert_settings(
        &mut self,
        alias: impl Into<String>,
        settings: CacheSettings,
    ) -> Result<&Cache, ConfigError> {
        let alias = alias.into();
        let (place, resolved) = resolve(&alias, &settings)?;
        let cache = build(&alias, &place, &resolved)?;
        let named = Named {
            cache,
            settings: Some(resolved),
        };
        self.caches.insert(alias.clone(), named);
        self.get(&alias)
    }

    /// A registry of caches built from settings, one per alias. With no
    /// settings at all, `default` is a `memory://` cache (Django's global
    /// default); otherwise one of them must be `default`.
    pub fn from_settings<A: Into<String>>(
        settings: impl IntoIterator<Item = (A, CacheSettings)>,
    ) -> Result<Self, ConfigError> {
        let mut checked: BTreeMap<String, (Place, CacheSettings)> = BTreeMap::new();
        for (alias, settings) in settings {
            let alias = alias.into();
            if checked.contains_key(&alias) {
                return Err(ConfigError::DuplicateAlias { alias });
            }
            let resolved = resolve(&alias, &settings)?;
            checked.insert(alias, resolved);
        }
        if checked.is_empty() {
            let memory = CacheSettings::new("memory://");
            checked.insert(DEFAULT_ALIAS.to_owned(), resolve(DEFAULT_ALIAS, &memory)?);
        }
        if !checked.contains_key(DEFAULT_ALIAS) {
            return Err(ConfigError::MissingDefault {
                configured: checked.into_keys().collect(),
            });
        }
        let mut caches = Caches::new();
        for (alias, (place, resolved)) in checked {
            let cache = build(&alias, &place, &resolved)?;
            let named = Named {
                cache,
                settings: Some(resolved),
            };
            caches.caches.insert(alias, named);
        }
        Ok(caches)
    }

    /// A registry from `(alias, URL)` pairs, every setting in the URL's query
    /// string (see the [module docs](self) for the schemes and options).
    pub fn from_urls<A, U>(urls: impl IntoIterator<Item = (A, U)>) -> Result<Self, ConfigError>
    where
        A: Into<String>,
        U: Into<String>,
    {
        Self::from_settings(
            urls.into_iter()
                .map(|(alias, url)| (alias, CacheSettings::new(url))),
        )
    }

    /// A registry from the `[caches.<alias>]` tables of a TOML document. Other
    /// top-level tables are ignored, so this can read the application's whole
    /// configuration file; unknown fields inside a cache's table are errors.
    ///
    /// ```
    /// use tower_response_cache::Timeout;
    /// use tower_response_cache::config::Caches;
    ///
    /// # fn main() -> Result<(), tower_response_cache::config::ConfigError> {
    /// let caches = Caches::from_toml_str(
    ///     r#"
    ///     [server]
    ///     port = 8080
    ///
    ///     [caches.default]
    ///     url = "memory://"
    ///     timeout = 60
    ///
    ///     [caches.sessions]
    ///     url = "memory://?max_entries=100000"
    ///     timeout = "none"
    ///     key_prefix = "sess"
    ///     "#,
    /// )?;
    /// let sessions = caches.settings("sessions");
    /// assert_eq!(sessions.map(|s| s.timeout()), Some(Timeout::Never));
    /// assert_eq!(sessions.and_then(|s| s.max_entries()), Some(100_000));
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        Self::parse_toml(toml, None)
    }

    /// [`from_toml_str`](Self::from_toml_str) on the contents of a file; errors
    /// name the file.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse_toml(&text, Some(path))
    }

    fn parse_toml(toml: &str, path: Option<&Path>) -> Result<Self, ConfigError> {
        #[derive(Deserialize)]
        struct Document {
            #[serde(default)]
            caches: BTreeMap<String, CacheSettings>,
        }

        let document: Document = toml::from_str(toml).map_err(|e| ConfigError::Toml {
            path: path.map(Path::to_owned),
            message: e.to_string(),
        })?;
        Self::from_settings(document.caches)
    }

    /// A registry from the process environment: see
    /// [`from_vars`](Self::from_vars) for the variables. Variables whose names
    /// are not valid UTF-8 are skipped; one of ours whose value is not is an
    /// error.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut vars = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            let Some((alias, var)) = env_var(name) else {
                continue;
            };
            match value.into_string() {
                Ok(value) => vars.push((name.to_owned(), value)),
                Err(value) => {
                    return Err(ConfigError::BadOption {
                        alias,
                        option: var.name().to_owned(),
                        value: value.to_string_lossy().into_owned(),
                        reason: format!("{name} is not valid UTF-8"),
                    });
                }
            }
        }
        Self::from_vars(vars)
    }

    /// A registry from environment-style variables, without reading (or
    /// racing on) the process environment, which is what makes it testable.
    ///
    /// - `CACHE_URL` is the `default` cache's URL; `CACHE_<NAME>_URL` is the URL
    ///   of the cache `<name>` (lower-cased: `CACHE_USER_SESSIONS_URL` gives
    ///   `user_sessions`).
    /// - `CACHE_TIMEOUT`, `CACHE_KEY_PREFIX`, `CACHE_VERSION`,
    ///   `CACHE_MAX_ENTRIES`, `CACHE_CULL_FREQUENCY`, `CACHE_MAX_BYTES`, and the
    ///   same with `_<NAME>` after `CACHE`, set one setting (`none` for a
    ///   timeout that never expires). A setting cannot also be in its cache's
    ///   URL; a setting for a cache that has no URL variable is ignored (with a
    ///   warning), since such names may belong to another program.
    /// - An empty value counts as unset (as `VAR=` in a compose file means);
    ///   other variables, `CACHE_DIR` for example, are ignored.
    ///
    /// ```
    /// use tower_response_cache::config::Caches;
    ///
    /// # fn main() -> Result<(), tower_response_cache::config::ConfigError> {
    /// let caches = Caches::from_vars([
    ///     ("CACHE_URL", "memory://?max_entries=1000"),
    ///     ("CACHE_SESSIONS_URL", "dummy://"),
    ///     ("CACHE_SESSIONS_KEY_PREFIX", "sess"),
    ///     ("PATH", "/usr/bin"),
    /// ])?;
    /// assert_eq!(caches.get("sessions")?.key_prefix(), "sess");
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Result<Self, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        // Per alias: the URL, and the variable that set it or each setting (to
        // name both when two variables set the same thing).
        let mut found: BTreeMap<String, (Option<String>, CacheSettings)> = BTreeMap::new();
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(n, v)| (n.as_ref().to_owned(), v.as_ref().to_owned()))
            .filter(|(n, v)| !v.is_empty() && env_var(n).is_some())
            .collect();
        // Only caches that have a URL are configured: a lone `CACHE_VERSION` or
        // `CACHE_FOO_TIMEOUT` may well belong to another program (CI systems set
        // such names), and must not stop this one from starting.
        let with_url: BTreeSet<String> = vars
            .iter()
            .filter_map(|(n, _)| env_var(n))
            .filter(|(_, var)| matches!(var, EnvVar::Url))
            .map(|(alias, _)| alias)
            .collect();
        for (name, value) in &vars {
            let (name, value) = (name.as_str(), value.as_str());
            let Some((alias, var)) = env_var(name) else {
                continue;
            };
            if !with_url.contains(&alias) {
                tracing::warn!(
                    variable = name,
                    "ignored: no URL variable configures this cache"
                );
                continue;
            }
            let bad_option = |reason: String| ConfigError::BadOption {
                alias: alias.clone(),
                option: var.name().to_owned(),
                value: value.to_owned(),
                reason,
            };
            let (url, settings) = found
                .entry(alias.clone())
                .or_insert_with(|| (None, CacheSettings::new(String::new())));
            match var {
                EnvVar::Url => {
                    if url.is_some() {
                        return Err(bad_option(format!(
                            "{name} sets the URL of a cache whose URL another variable sets"
                        )));
                    }
                    *url = Some(value.to_owned());
                }
                EnvVar::Setting(setting) => {
                    if setting.is_set(settings) {
                        return Err(bad_option(format!(
                            "{name} sets what another variable already sets"
                        )));
                    }
                    setting
                        .apply(settings, value)
                        .map_err(|reason| bad_option(format!("{name}: {reason}")))?;
                }
            }
        }
        let mut all = Vec::with_capacity(found.len());
        for (alias, (url, mut settings)) in found {
            // Every alias left here has a URL variable (see `with_url` above).
            if let Some(url) = url {
                settings.url = url;
                all.push((alias, settings));
            }
        }
        Self::from_settings(all)
    }

    /// The cache called `alias`; the error names it and lists the configured
    /// aliases, so a typo shows at once.
    pub fn get(&self, alias: &str) -> Result<&Cache, ConfigError> {
        self.caches
            .get(alias)
            .map(|named| &named.cache)
            .ok_or_else(|| ConfigError::UnknownAlias {
                alias: alias.to_owned(),
                configured: self.aliases().map(str::to_owned).collect(),
            })
    }

    /// The `default` cache (Django's `django.core.cache.cache`). Not named
    /// `default` so as not to shadow [`Default::default`].
    pub fn default_cache(&self) -> Result<&Cache, ConfigError> {
        self.get(DEFAULT_ALIAS)
    }

    /// The settings in force for `alias`, the URL's options folded in; `None`
    /// for an unknown alias or a cache inserted from code. This is where to
    /// check what a deployment's configuration actually gave.
    pub fn settings(&self, alias: &str) -> Option<&CacheSettings> {
        self.caches.get(alias)?.settings.as_ref()
    }

    /// The configured aliases, sorted.
    pub fn aliases(&self) -> impl Iterator<Item = &str> {
        self.caches.keys().map(String::as_str)
    }

    /// Every cache with its alias, sorted by alias: to [`close`](Cache::close)
    /// them all at shutdown, for example.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Cache)> {
        self.caches
            .iter()
            .map(|(alias, named)| (alias.as_str(), &named.cache))
    }
}

/// What one `CACHE_*` variable sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnvVar {
    Url,
    Setting(Setting),
}

impl EnvVar {
    fn name(self) -> &'static str {
        match self {
            EnvVar::Url => "url",
            EnvVar::Setting(setting) => setting.name(),
        }
    }

    fn suffix(self) -> String {
        self.name().to_ascii_uppercase()
    }
}

/// The alias and setting a variable name configures, if it is one of ours:
/// `CACHE_<SETTING>` for `default`, `CACHE_<NAME>_<SETTING>` for `<name>`.
fn env_var(name: &str) -> Option<(String, EnvVar)> {
    let rest = name.strip_prefix("CACHE_")?;
    let vars = std::iter::once(EnvVar::Url).chain(Setting::ALL.into_iter().map(EnvVar::Setting));
    let mut for_alias = None;
    for var in vars {
        let suffix = var.suffix();
        if rest == suffix {
            return Some((DEFAULT_ALIAS.to_owned(), var));
        }
        let alias = rest
            .strip_suffix(suffix.as_str())
            .and_then(|r| r.strip_suffix('_'))
            .filter(|alias| !alias.is_empty());
        if let Some(alias) = alias {
            for_alias = Some((alias.to_ascii_lowercase(), var));
        }
    }
    for_alias
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> ParsedUrl {
        match parse_url(url) {
            Ok(parsed) => parsed,
            Err(problem) => panic!("{url}: {problem:?}"),
        }
    }

    fn reason(url: &str) -> String {
        match parse_url(url) {
            Err(UrlProblem::Bad(reason)) => reason,
            other => panic!("{url}: expected a bad URL, got {other:?}"),
        }
    }

    fn opt(name: &str, value: &str) -> (String, Option<String>) {
        (name.to_owned(), Some(value.to_owned()))
    }

    #[test]
    fn memory_and_dummy_urls() {
        assert_eq!(
            parse("memory://"),
            ParsedUrl {
                place: Place::Memory,
                base: "memory://".into(),
                options: vec![],
            }
        );
        assert_eq!(parse("dummy://").place, Place::Dummy);
        assert_eq!(parse("MEMORY://").base, "memory://");
        assert_eq!(parse("memory://?").options, vec![]);
        let parsed = parse("memory://?max_entries=1000&cull_frequency=3&&timeout=none");
        assert_eq!(parsed.base, "memory://");
        assert_eq!(
            parsed.options,
            vec![
                opt("max_entries", "1000"),
                opt("cull_frequency", "3"),
                opt("timeout", "none")
            ]
        );
        assert_eq!(
            parse("memory://?timeout").options,
            vec![("timeout".to_owned(), None)]
        );
    }

    #[test]
    fn file_urls() {
        let parsed = parse("file:///var/tmp/app-cache?max_entries=50");
        assert_eq!(
            parsed.place,
            Place::File(PathBuf::from("/var/tmp/app-cache"))
        );
        assert_eq!(parsed.base, "file:///var/tmp/app-cache");
        assert_eq!(parsed.options, vec![opt("max_entries", "50")]);
        assert_eq!(
            parse("file://localhost/srv/cache").place,
            Place::File(PathBuf::from("/srv/cache"))
        );
        assert_eq!(
            parse("file:///srv/my%20cache").place,
            Place::File(PathBuf::from("/srv/my cache"))
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert!(reason("memory").contains("scheme://"));
        assert!(reason("/var/tmp/cache").contains("scheme://"));
        assert!(reason("memroy://").contains("unknown scheme \"memroy\""));
        assert!(reason("1abc://").contains("not a URL scheme"));
        assert!(reason("memory://host").contains("no host or path"));
        assert!(reason("dummy:///path").contains("no host or path"));
        assert!(reason("file://var/tmp/cache").contains("three slashes"));
        assert!(reason("file://").contains("cache directory"));
        assert!(reason("file:///").contains("cache directory"));
        assert!(reason("file:///tmp/a b").contains("spaces"));
        assert!(reason("file:///tmp/x#frag").contains("fragment"));
        assert!(reason("file:///tmp/%zz").contains("hexadecimal"));
        assert!(reason("file:///tmp/%4").contains("hexadecimal"));
        assert!(reason("file:///tmp/%ff").contains("UTF-8"));
    }

    #[test]
    fn reserved_schemes_are_unsupported_not_unknown() {
        for scheme in RESERVED_SCHEMES {
            let url = format!("{scheme}://user:pw@host:1234/0?x=1");
            assert_eq!(
                parse_url(&url),
                Err(UrlProblem::Unsupported((*scheme).to_owned()))
            );
        }
        assert_eq!(
            parse_url("Redis://localhost"),
            Err(UrlProblem::Unsupported("redis".to_owned()))
        );
    }

    #[test]
    fn percent_decoding_keeps_plus() {
        assert_eq!(percent_decode("a%2Fb+c%3d").as_deref(), Ok("a/b+c="));
        assert_eq!(percent_decode("%E6%B8%85").as_deref(), Ok("清"));
        assert_eq!(
            parse("memory://?key_prefix=a%26b").options,
            vec![opt("key_prefix", "a&b")]
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redsi://:secret@host/0"), "redsi://:***@host/0");
        assert_eq!(redact("x://user:pw@host?a=b@c"), "x://user:***@host?a=b@c");
        assert_eq!(redact("x://user@host"), "x://user@host");
        assert_eq!(redact("memory://?a=b"), "memory://?a=b");
        assert_eq!(redact("nonsense"), "nonsense");
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("60"), Ok(Timeout::Seconds(60.0)));
        assert_eq!(parse_timeout("0.5"), Ok(Timeout::Seconds(0.5)));
        assert_eq!(parse_timeout("-1"), Ok(Timeout::Seconds(-1.0)));
        assert_eq!(parse_timeout("None"), Ok(Timeout::Never));
        assert!(parse_timeout("inf").is_err());
        assert!(parse_timeout("NaN").is_err());
        assert!(parse_timeout("").is_err());
        assert!(parse_timeout("forever").is_err());
    }

    #[test]
    fn settings_parse_and_refuse() {
        let mut s = CacheSettings::new("memory://");
        Setting::Version.apply(&mut s, "7").unwrap();
        Setting::MaxEntries.apply(&mut s, "10").unwrap();
        Setting::CullFrequency.apply(&mut s, "0").unwrap();
        Setting::MaxBytes.apply(&mut s, "1024").unwrap();
        Setting::KeyPrefix.apply(&mut s, "").unwrap();
        assert_eq!(s.version(), 7);
        assert_eq!(s.max_entries(), Some(10));
        assert_eq!(s.cull_frequency(), Some(0));
        assert_eq!(s.max_bytes(), Some(1024));
        assert!(Setting::KeyPrefix.is_set(&s));
        assert!(Setting::Version.apply(&mut s, "-1").is_err());
        assert!(Setting::Version.apply(&mut s, "4294967296").is_err());
        assert!(Setting::MaxEntries.apply(&mut s, "1k").is_err());
        assert!(Setting::CullFrequency.apply(&mut s, "1.5").is_err());
        assert_eq!(Setting::from_name("MAX_ENTRIES"), Some(Setting::MaxEntries));
        assert_eq!(Setting::from_name("max-entries"), None);
    }

    #[test]
    fn env_var_names() {
        let default = |var| Some((DEFAULT_ALIAS.to_owned(), var));
        let named = |alias: &str, var| Some((alias.to_owned(), var));
        assert_eq!(env_var("CACHE_URL"), default(EnvVar::Url));
        assert_eq!(
            env_var("CACHE_KEY_PREFIX"),
            default(EnvVar::Setting(Setting::KeyPrefix))
        );
        assert_eq!(
            env_var("CACHE_MAX_ENTRIES"),
            default(EnvVar::Setting(Setting::MaxEntries))
        );
        assert_eq!(
            env_var("CACHE_SESSIONS_URL"),
            named("sessions", EnvVar::Url)
        );
        assert_eq!(
            env_var("CACHE_USER_SESSIONS_KEY_PREFIX"),
            named("user_sessions", EnvVar::Setting(Setting::KeyPrefix))
        );
        assert_eq!(
            env_var("CACHE_PAGES_CULL_FREQUENCY"),
            named("pages", EnvVar::Setting(Setting::CullFrequency))
        );
        assert_eq!(env_var("CACHE_DEFAULT_URL"), named("default", EnvVar::Url));
        assert_eq!(env_var("CACHE_DIR"), None);
        assert_eq!(env_var("CACHE__URL"), None);
        assert_eq!(env_var("MY_CACHE_URL"), None);
        assert_eq!(env_var("cache_url"), None);
    }
}
