//! A backend that keeps one file per key in a directory (Django's
//! `FileBasedCache`), so cached values survive a restart of the process and can be
//! shared by the workers of one machine.
//!
//! # Layout
//!
//! Each key lives in `<dir>/<h>.trc`, where `<h>` is the XXH3-128 hash of the key
//! as 32 lower-case hex digits. No part of the key ever becomes a path component,
//! so a key (a URL, say) can never name a file outside the directory. Writes go to
//! a temporary file in the same directory, named `.trc-tmp-<pid>-<n>-<random>`
//! (never ending in `.trc`, so it is never read or counted as an entry), which is
//! then renamed over the target: a reader sees the old file or the new one, never
//! half of one.
//!
//! The directory (and any parent it needs) is created with mode `0700`, then
//! `chmod`ed to `0700`, as Django does since 5.2.12: cached pages can be private.
//! A directory that already exists keeps its mode (it may be shared on purpose).
//! It is created again before a write if it was removed.
//!
//! # File format (version 1)
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `TRCF` |
//! | 4 | 1 | format version, `1` |
//! | 5 | 8 | expiry: Unix time in milliseconds on the backend's clock, little-endian; `u64::MAX` = never |
//! | 13 | 4 | key length `k`, little-endian `u32` |
//! | 17 | 8 | value length `v`, little-endian `u64` |
//! | 25 | `k` | the original key, UTF-8 |
//! | 25 + `k` | `v` | the value bytes |
//!
//! The file must be exactly `25 + k + v` bytes long. A file that is empty, too
//! short or too long, has another magic number or an unknown version holds no
//! value: it is a miss, and it is removed. A file whose key is not the one asked
//! for (an XXH3-128 collision) is a miss too, but is left alone, since it holds
//! another key's value. A value whose expiry is at or before the clock's now is a
//! miss and its file is removed when read. Files are not `fsync`ed: after a crash
//! a file may be empty or short, which the checks above turn into a miss.
//!
//! # Culling
//!
//! Before a write that adds a file (`set`, and `add` when it stores), the backend
//! counts the `.trc` files. When there are `max_entries` or more, it removes some,
//! as Django does: with a `cull_frequency` of 0, all of them; otherwise
//! `count / cull_frequency` (at least one). Unlike Django, which picks a random
//! sample of files, it first removes the files that hold no live value (expired,
//! empty, foreign), which cost nothing to lose, and then a random sample of live
//! ones for the rest. A failed cull is logged and does not fail the write.
//!
//! # Concurrency
//!
//! `add`, `touch`, `incr`, `set_add` and `set_take` read a file and write it
//! back (or remove it); within one process they are atomic (a lock per key,
//! striped by the key's hash), so of 20 concurrent `add`s of one key exactly one
//! wins, and concurrent `set_add`s all land. Another process writing the same
//! directory takes no part in that lock and can race, as with Django's file cache:
//! two processes may both win an `add`, or an `incr` or a set member may be lost.
//! Plain `get`, `set` and `delete` are safe across processes (the rename is
//! atomic).
//!
//! A set of [`Backend::set_add`] is one entry file whose value is in
//! [`set_codec`]'s format, with the set's expiry as the file's.
//!
//! Every operation does blocking file I/O. Under a tokio runtime it runs on the
//! runtime's blocking pool (`spawn_blocking`), never on its worker threads;
//! without a runtime it runs inline when the future is first polled.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;

use super::{Backend, BackendError, BoxFuture, Ttl, add_delta, parse_integer, set_codec};
use crate::clock::{Clock, SystemClock};

/// The first bytes of every entry file.
const MAGIC: [u8; 4] = *b"TRCF";
/// The entry file format this code reads and writes.
const FORMAT_VERSION: u8 = 1;
/// Magic, version, expiry, key length, value length.
const HEADER_LEN: usize = 4 + 1 + 8 + 4 + 8;
/// The stored expiry of a value that never expires.
const NEVER: u64 = u64::MAX;
/// The extension of entry files.
const SUFFIX: &str = ".trc";
/// The prefix of this backend's temporary files.
const TEMP_PREFIX: &str = ".trc-tmp-";
/// How many locks the keys are spread over.
const STRIPES: usize = 64;
/// Django's `MAX_ENTRIES` default.
const DEFAULT_MAX_ENTRIES: usize = 300;
/// Django's `CULL_FREQUENCY` default.
const DEFAULT_CULL_FREQUENCY: usize = 3;

/// Makes temporary file names unique among all backends of this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A cache kept in files, one per key, in one directory (Django's
/// `FileBasedCache`).
///
/// Use it when cached values must outlive the process, or be shared by several
/// processes on one machine, without running a cache server. Clones share one
/// directory handle, clock and set of locks.
///
/// ```no_run
/// use tower_response_cache::backend::FileBackend;
///
/// let backend = FileBackend::builder("/var/tmp/app-cache")
///     .max_entries(1000)
///     .build()?;
/// # Ok::<(), tower_response_cache::backend::BackendError>(())
/// ```
#[derive(Clone)]
pub struct FileBackend {
    inner: Arc<Inner>,
}

/// Settings for a [`FileBackend`]: limits and the clock that decides expiry.
///
/// Made by [`FileBackend::builder`]; nothing touches the disk until
/// [`build`](Self::build).
#[derive(Debug)]
pub struct FileBackendBuilder {
    dir: PathBuf,
    max_entries: usize,
    cull_frequency: usize,
    clock: Arc<dyn Clock>,
}

/// What clones of a [`FileBackend`] share.
struct Inner {
    dir: PathBuf,
    max_entries: usize,
    cull_frequency: usize,
    clock: Arc<dyn Clock>,
    locks: [Mutex<()>; STRIPES],
}

impl FileBackend {
    /// Starts configuring a backend that keeps its files in `dir`.
    pub fn builder(dir: impl Into<PathBuf>) -> FileBackendBuilder {
        FileBackendBuilder {
            dir: dir.into(),
            max_entries: DEFAULT_MAX_ENTRIES,
            cull_frequency: DEFAULT_CULL_FREQUENCY,
            clock: Arc::new(SystemClock),
        }
    }

    /// A backend in `dir` with Django's defaults (300 entries, cull a third),
    /// creating the directory if needed.
    ///
    /// # Errors
    ///
    /// [`BackendError::Io`] when the directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, BackendError> {
        Self::builder(dir).build()
    }

    /// The directory the files are kept in, for tools that inspect or back it up.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Runs `op` off the async runtime's worker threads when there is a runtime,
    /// inline otherwise.
    fn run<T, F>(&self, op: F) -> BoxFuture<'static, Result<T, BackendError>>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, BackendError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => handle
                    .spawn_blocking(move || op(&inner))
                    .await
                    .map_err(|error| BackendError::Other(Box::new(error)))?,
                Err(_) => op(&inner),
            }
        })
    }
}

impl fmt::Debug for FileBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileBackend")
            .field("dir", &self.inner.dir)
            .field("max_entries", &self.inner.max_entries)
            .field("cull_frequency", &self.inner.cull_frequency)
            .field("clock", &self.inner.clock)
            .finish()
    }
}

impl FileBackendBuilder {
    /// How many files the directory may hold before a write culls some (Django's
    /// `MAX_ENTRIES`, default 300): it bounds the disk space the cache takes.
    #[must_use]
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// Which share of the files a cull removes: `count / cull_frequency` of them
    /// (Django's `CULL_FREQUENCY`, default 3). 0 removes them all, which is cheap
    /// but empties the cache at once.
    #[must_use]
    pub fn cull_frequency(mut self, cull_frequency: usize) -> Self {
        self.cull_frequency = cull_frequency;
        self
    }

    /// The clock that stamps and checks expiry times (default: the system
    /// clock). Tests pass a [`ManualClock`](crate::clock::ManualClock) so that
    /// expiry needs no sleeping.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Creates the directory (and its parents) with mode `0700` unless it
    /// exists, and returns the backend.
    ///
    /// # Errors
    ///
    /// [`BackendError::Io`] when the directory cannot be created (a file is in the
    /// way, no permission).
    pub fn build(self) -> Result<FileBackend, BackendError> {
        create_dir(&self.dir)?;
        Ok(FileBackend {
            inner: Arc::new(Inner {
                dir: self.dir,
                max_entries: self.max_entries,
                cull_frequency: self.cull_frequency,
                clock: self.clock,
                locks: std::array::from_fn(|_| Mutex::new(())),
            }),
        })
    }
}

impl Backend for FileBackend {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, BackendError>> {
        let key = key.to_owned();
        self.run(move |inner| inner.get(&key))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let key = key.to_owned();
        self.run(move |inner| inner.set(&key, &value, ttl))
    }

    fn add<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        let key = key.to_owned();
        self.run(move |inner| inner.add(&key, &value, ttl))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        let key = key.to_owned();
        self.run(move |inner| inner.delete(&key))
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Ttl) -> BoxFuture<'a, Result<bool, BackendError>> {
        let key = key.to_owned();
        self.run(move |inner| inner.touch(&key, ttl))
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, Result<i64, BackendError>> {
        let key = key.to_owned();
        self.run(move |inner| inner.incr(&key, delta))
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        self.run(|inner| Ok(inner.clear()?))
    }

    fn set_add<'a>(
        &'a self,
        key: &'a str,
        member: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let key = key.to_owned();
        self.run(move |inner| inner.set_add(&key, member, ttl))
    }

    fn set_take<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<Bytes>, BackendError>> {
        let key = key.to_owned();
        self.run(move |inner| inner.set_take(&key))
    }

    /// One trip to the blocking pool for all the keys.
    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>, BackendError>> {
        let keys = keys.to_vec();
        self.run(move |inner| keys.iter().map(|key| inner.get(key)).collect())
    }

    /// One trip to the blocking pool for all the keys.
    fn delete_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), BackendError>> {
        let keys = keys.to_vec();
        self.run(move |inner| {
            for key in &keys {
                inner.delete(key)?;
            }
            Ok(())
        })
    }
}

/// Where one key's file is, and which lock guards it.
struct Slot {
    path: PathBuf,
    stripe: usize,
}

/// What a whole entry file holds for a key.
enum Found {
    /// No file.
    Missing,
    /// A file with no live value: expired, empty, truncated, foreign.
    Dead,
    /// Another key's file (a hash collision).
    Other,
    /// The key's live value and its expiry.
    Live { value: Bytes, expires: u64 },
}

/// What the head of an entry file says, without its value.
enum Head {
    /// No file.
    Missing,
    /// Not a well-formed entry file of this format.
    Corrupt,
    /// A well-formed entry: its expiry and key.
    Entry { expires: u64, key: Vec<u8> },
}

/// The fixed-size header, decoded.
struct Header {
    expires: u64,
    key_len: usize,
    value_len: usize,
}

impl Header {
    /// Decodes the first [`HEADER_LEN`] bytes of `buf`; `None` when they are not
    /// this format's header.
    fn parse(buf: &[u8]) -> Option<Self> {
        if buf.get(..4)? != MAGIC || *buf.get(4)? != FORMAT_VERSION {
            return None;
        }
        let expires = u64::from_le_bytes(buf.get(5..13)?.try_into().ok()?);
        let key_len = u32::from_le_bytes(buf.get(13..17)?.try_into().ok()?);
        let value_len = u64::from_le_bytes(buf.get(17..25)?.try_into().ok()?);
        Some(Self {
            expires,
            key_len: usize::try_from(key_len).ok()?,
            value_len: usize::try_from(value_len).ok()?,
        })
    }

    /// Encodes a header; `None` when the key or value is too long to describe.
    fn encode(expires: u64, key_len: usize, value_len: usize) -> Option<[u8; HEADER_LEN]> {
        let key_len = u32::try_from(key_len).ok()?;
        let value_len = u64::try_from(value_len).ok()?;
        let mut buf = [0; HEADER_LEN];
        buf[..4].copy_from_slice(&MAGIC);
        buf[4] = FORMAT_VERSION;
        buf[5..13].copy_from_slice(&expires.to_le_bytes());
        buf[13..17].copy_from_slice(&key_len.to_le_bytes());
        buf[17..25].copy_from_slice(&value_len.to_le_bytes());
        Some(buf)
    }

    /// The length the whole file must have.
    fn file_len(&self) -> Option<u64> {
        let len = HEADER_LEN
            .checked_add(self.key_len)?
            .checked_add(self.value_len)?;
        u64::try_from(len).ok()
    }
}

/// Whether a value with this stored expiry is gone at `now`.
fn expired(expires: u64, now: u64) -> bool {
    expires != NEVER && expires <= now
}

impl Inner {
    /// The clock's now, in Unix milliseconds.
    fn now(&self) -> u64 {
        self.clock.now_millis()
    }

    /// The stored expiry for a value written now with `ttl`.
    fn expiry(&self, ttl: Ttl) -> u64 {
        match ttl {
            None => NEVER,
            Some(ttl) => self.now().saturating_add(ceil_millis(ttl)),
        }
    }

    fn slot(&self, key: &str) -> Slot {
        let hash = xxhash_rust::xxh3::xxh3_128(key.as_bytes());
        Slot {
            path: self.dir.join(format!("{hash:032x}{SUFFIX}")),
            stripe: (hash % STRIPES as u128) as usize,
        }
    }

    fn lock(&self, slot: &Slot) -> MutexGuard<'_, ()> {
        self.lock_stripe(slot.stripe)
    }

    /// Nobody holds two stripes at once (culling, the only code that takes
    /// several, takes them one after the other, and is never called under one),
    /// so the locks cannot deadlock.
    fn lock_stripe(&self, stripe: usize) -> MutexGuard<'_, ()> {
        // The lock guards no data, so a panic while it was held broke nothing.
        self.locks[stripe]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the whole file at `path` as an entry for `key`.
    fn load(&self, path: &Path, key: &str) -> io::Result<Found> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Found::Missing),
            Err(error) => return Err(error),
        };
        let Some(header) = Header::parse(&bytes) else {
            return Ok(Found::Dead);
        };
        if header.file_len() != u64::try_from(bytes.len()).ok() {
            return Ok(Found::Dead);
        }
        let key_end = HEADER_LEN + header.key_len;
        if bytes.get(HEADER_LEN..key_end) != Some(key.as_bytes()) {
            return Ok(Found::Other);
        }
        if expired(header.expires, self.now()) {
            return Ok(Found::Dead);
        }
        Ok(Found::Live {
            value: Bytes::from(bytes).slice(key_end..),
            expires: header.expires,
        })
    }

    fn get(&self, key: &str) -> Result<Option<Bytes>, BackendError> {
        let slot = self.slot(key);
        match self.load(&slot.path, key)? {
            Found::Live { value, .. } => Ok(Some(value)),
            Found::Missing | Found::Other => Ok(None),
            Found::Dead => {
                // Look again under the lock: a writer may have replaced the dead
                // file since, and its value must not be removed.
                let _guard = self.lock(&slot);
                if let Found::Dead = self.load(&slot.path, key)? {
                    remove(&slot.path)?;
                }
                Ok(None)
            }
        }
    }

    fn set(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<(), BackendError> {
        let slot = self.slot(key);
        self.cull();
        let temp = self.write_temp(key, value, self.expiry(ttl))?;
        let _guard = self.lock(&slot);
        temp.commit(&slot.path)?;
        Ok(())
    }

    fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool, BackendError> {
        let slot = self.slot(key);
        // Before the lock: culling takes stripe locks itself.
        self.cull();
        let _guard = self.lock(&slot);
        if let Head::Entry {
            expires,
            key: found,
        } = peek(&slot.path)?
            && found == key.as_bytes()
            && !expired(expires, self.now())
        {
            return Ok(false);
        }
        let temp = self.write_temp(key, value, self.expiry(ttl))?;
        temp.commit(&slot.path)?;
        Ok(true)
    }

    fn delete(&self, key: &str) -> Result<bool, BackendError> {
        let slot = self.slot(key);
        let _guard = self.lock(&slot);
        match peek(&slot.path)? {
            Head::Missing => Ok(false),
            Head::Corrupt => {
                remove(&slot.path)?;
                Ok(false)
            }
            Head::Entry { key: found, .. } if found != key.as_bytes() => Ok(false),
            Head::Entry { expires, .. } => {
                let removed = remove(&slot.path)?;
                Ok(removed && !expired(expires, self.now()))
            }
        }
    }

    fn touch(&self, key: &str, ttl: Ttl) -> Result<bool, BackendError> {
        let slot = self.slot(key);
        let _guard = self.lock(&slot);
        match self.load(&slot.path, key)? {
            Found::Live { value, .. } => {
                let temp = self.write_temp(key, &value, self.expiry(ttl))?;
                temp.commit(&slot.path)?;
                Ok(true)
            }
            Found::Dead => {
                remove(&slot.path)?;
                Ok(false)
            }
            Found::Missing | Found::Other => Ok(false),
        }
    }

    fn incr(&self, key: &str, delta: i64) -> Result<i64, BackendError> {
        let slot = self.slot(key);
        let _guard = self.lock(&slot);
        match self.load(&slot.path, key)? {
            Found::Live { value, expires } => {
                let n = add_delta(parse_integer(&value)?, delta)?;
                let temp = self.write_temp(key, n.to_string().as_bytes(), expires)?;
                temp.commit(&slot.path)?;
                Ok(n)
            }
            Found::Dead => {
                remove(&slot.path)?;
                Err(BackendError::KeyNotFound)
            }
            Found::Missing | Found::Other => Err(BackendError::KeyNotFound),
        }
    }

    /// Adds `member` to the set in `key`'s file under the key's lock, keeping
    /// the later of the file's expiry and `now + ttl`. A file with no set in it
    /// (another value, a dead or foreign file) is replaced by a new set.
    fn set_add(&self, key: &str, member: Bytes, ttl: Duration) -> Result<(), BackendError> {
        let slot = self.slot(key);
        // Before the lock: culling takes stripe locks itself.
        self.cull();
        let _guard = self.lock(&slot);
        let wanted = self.expiry(Some(ttl));
        let (mut set, old) = match self.load(&slot.path, key)? {
            Found::Live { value, expires } => match set_codec::decode(&value) {
                Some(set) => (set, Some(expires)),
                None => (set_codec::Set::default(), None),
            },
            Found::Missing | Found::Dead | Found::Other => (set_codec::Set::default(), None),
        };
        let expires = old.map_or(wanted, |old| old.max(wanted));
        let known = set.members.contains(&member);
        if known && old == Some(expires) {
            // Already there, for long enough: nothing to write.
            return Ok(());
        }
        if !known {
            set.members.push(member);
        }
        set.expires_at = expires;
        let temp = self.write_temp(key, &set_codec::encode(&set), expires)?;
        temp.commit(&slot.path)?;
        Ok(())
    }

    /// Removes `key`'s set under the key's lock and returns its members.
    fn set_take(&self, key: &str) -> Result<Vec<Bytes>, BackendError> {
        let slot = self.slot(key);
        let _guard = self.lock(&slot);
        match self.load(&slot.path, key)? {
            Found::Live { value, .. } => {
                remove(&slot.path)?;
                Ok(set_codec::decode(&value)
                    .map(|set| set.members)
                    .unwrap_or_default())
            }
            Found::Dead => {
                remove(&slot.path)?;
                Ok(Vec::new())
            }
            Found::Missing | Found::Other => Ok(Vec::new()),
        }
    }

    /// Writes a whole entry file under a temporary name, recreating the
    /// directory if it was removed.
    fn write_temp(&self, key: &str, value: &[u8], expires: u64) -> Result<TempFile, BackendError> {
        let header = Header::encode(expires, key.len(), value.len())
            .ok_or_else(|| BackendError::InvalidKey("key longer than 4 GiB".to_owned()))?;
        let (mut file, temp) = match self.create_temp() {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                create_dir(&self.dir)?;
                self.create_temp()?
            }
            other => other?,
        };
        file.write_all(&header)?;
        file.write_all(key.as_bytes())?;
        file.write_all(value)?;
        Ok(temp)
    }

    fn create_temp(&self) -> io::Result<(File, TempFile)> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{TEMP_PREFIX}{:x}-{n:x}-{:08x}",
            std::process::id(),
            random_u64() as u32
        );
        let path = self.dir.join(name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path)?;
        Ok((
            file,
            TempFile {
                path,
                pending: true,
            },
        ))
    }

    /// The entry files in the directory (none when it is missing).
    /// Every entry file, with the stripe of the key it holds.
    fn entries(&self) -> io::Result<Vec<Slot>> {
        let mut found = Vec::new();
        self.each_file(|name, path| {
            if let Some(stripe) = entry_stripe(name) {
                found.push(Slot { path, stripe });
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// Calls `f` with the name and path of each regular file in the directory.
    fn each_file(&self, mut f: impl FnMut(&str, PathBuf) -> io::Result<()>) -> io::Result<()> {
        let dir = match fs::read_dir(&self.dir) {
            Ok(dir) => dir,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        };
        for entry in dir {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            if let Some(name) = entry.file_name().to_str() {
                f(name, entry.path())?;
            }
        }
        Ok(())
    }

    /// Removes every entry file and every temporary file of this backend, and
    /// nothing else.
    fn clear(&self) -> io::Result<()> {
        self.each_file(|name, path| {
            if is_entry_name(name) || name.starts_with(TEMP_PREFIX) {
                remove(&path)?;
            }
            Ok(())
        })
    }

    /// Makes room before a write; failures are logged, not returned: the write
    /// matters more than the housekeeping.
    fn cull(&self) {
        if let Err(error) = self.try_cull() {
            tracing::warn!(%error, dir = %self.dir.display(), "file cache cull failed");
        }
    }

    fn try_cull(&self) -> io::Result<()> {
        let entries = self.entries()?;
        if entries.len() < self.max_entries {
            return Ok(());
        }
        if self.cull_frequency == 0 {
            return self.clear();
        }
        // At least one, so that the bound holds even when max_entries is below
        // cull_frequency.
        let mut doomed = (entries.len() / self.cull_frequency).max(1);
        let now = self.now();
        let dead = |head: &io::Result<Head>| match head {
            Ok(Head::Corrupt) => true,
            Ok(Head::Entry { expires, .. }) => expired(*expires, now),
            _ => false,
        };
        let mut live = Vec::with_capacity(entries.len());
        for slot in entries {
            match peek(&slot.path) {
                Ok(Head::Missing) => doomed = doomed.saturating_sub(1),
                head if dead(&head) => {
                    // Under the key's lock, and only if still dead: an `add` may
                    // have just written a fresh value there.
                    let _guard = self.lock(&slot);
                    if dead(&peek(&slot.path)) {
                        remove(&slot.path)?;
                    }
                    doomed = doomed.saturating_sub(1);
                }
                // Live, or unreadable: left to the sample.
                _ => live.push(slot),
            }
        }
        let mut rng = Rng::new();
        let doomed = doomed.min(live.len());
        for i in 0..doomed {
            let j = i + rng.below(live.len() - i);
            live.swap(i, j);
            let _guard = self.lock(&live[i]);
            remove(&live[i].path)?;
        }
        Ok(())
    }
}

/// A temporary file that is removed unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    /// Still under its temporary name, so dropping it must remove it.
    pending: bool,
}

impl TempFile {
    /// Renames the file over `target`.
    fn commit(mut self, target: &Path) -> io::Result<()> {
        match fs::rename(&self.path, target) {
            Ok(()) => {
                self.pending = false;
                Ok(())
            }
            // Gone: a concurrent `clear` removed it (or the whole directory).
            // That is the same as this write happening just before the clear.
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.pending {
            // Best effort: a leftover is removed by the next `clear`.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Reads the header and key of the file at `path`, checking its length.
fn peek(path: &Path) -> io::Result<Head> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Head::Missing),
        Err(error) => return Err(error),
    };
    let len = file.metadata()?.len();
    let mut buf = [0; HEADER_LEN];
    match file.read_exact(&mut buf) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(Head::Corrupt),
        Err(error) => return Err(error),
    }
    let Some(header) = Header::parse(&buf) else {
        return Ok(Head::Corrupt);
    };
    if header.file_len() != Some(len) {
        return Ok(Head::Corrupt);
    }
    // The length check bounds key_len by the file's size.
    let mut key = vec![0; header.key_len];
    match file.read_exact(&mut key) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(Head::Corrupt),
        Err(error) => return Err(error),
    }
    Ok(Head::Entry {
        expires: header.expires,
        key,
    })
}

/// Removes a file; `false` when it was already gone.
fn remove(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Creates `dir` and its parents with mode `0700`, then sets `0700` on `dir` if
/// this call created it (the umask may have taken bits away). An existing
/// directory keeps its mode: it may be shared on purpose (`/var/tmp`, a group
/// directory), and narrowing it would lock others out.
fn create_dir(dir: &Path) -> io::Result<()> {
    let existed = dir.is_dir();
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir)?;
        if !existed {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    }
    #[cfg(not(unix))]
    {
        let _ = existed;
        builder.create(dir)?;
    }
    Ok(())
}

/// The stripe of the key an entry file holds, when `name` is an entry's name.
fn entry_stripe(name: &str) -> Option<usize> {
    let stem = name.strip_suffix(SUFFIX).filter(|_| is_entry_name(name))?;
    let hash = u128::from_str_radix(stem, 16).ok()?;
    Some((hash % STRIPES as u128) as usize)
}

/// `<32 lower-case hex digits>.trc`: the only names this backend counts and
/// clears, so other files in the directory are never touched.
fn is_entry_name(name: &str) -> bool {
    name.strip_suffix(SUFFIX).is_some_and(|stem| {
        stem.len() == 32
            && stem
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `ttl` in whole milliseconds, rounded up so that a positive ttl never means
/// "already expired".
fn ceil_millis(ttl: Duration) -> u64 {
    let millis = ttl.as_millis() + u128::from(!ttl.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(millis).unwrap_or(u64::MAX)
}

/// A random number from the standard library's per-process random hash keys.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(TEMP_COUNTER.load(Ordering::Relaxed));
    hasher.finish()
}

/// SplitMix64: enough to pick a cull sample.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        Self(random_u64())
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::clock::ManualClock;

    const T0: u64 = 1_468_749_600;

    fn clock() -> ManualClock {
        ManualClock::new(UNIX_EPOCH + Duration::from_secs(T0))
    }

    fn backend(dir: &Path, clock: &ManualClock) -> FileBackend {
        FileBackend::builder(dir)
            .clock(clock.clone())
            .build()
            .expect("build")
    }

    fn secs(n: u64) -> Ttl {
        Some(Duration::from_secs(n))
    }

    fn path_of(b: &FileBackend, key: &str) -> PathBuf {
        b.inner.slot(key).path
    }

    /// Every file name in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        names.sort();
        names
    }

    fn entry_count(dir: &Path) -> usize {
        names(dir).iter().filter(|n| is_entry_name(n)).count()
    }

    #[tokio::test]
    async fn set_get_round_trip_in_one_named_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = backend(dir.path(), &clock());
        b.set("k", Bytes::from_static(b"value"), secs(10))
            .await
            .expect("set");
        assert_eq!(
            b.get("k").await.expect("get"),
            Some(Bytes::from_static(b"value"))
        );
        let hash = xxhash_rust::xxh3::xxh3_128(b"k");
        assert_eq!(names(dir.path()), vec![format!("{hash:032x}.trc")]);
        assert_eq!(b.get("other").await.expect("get"), None);
    }

    #[tokio::test]
    async fn file_layout_matches_the_documented_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = clock();
        let b = backend(dir.path(), &c);
        b.set("key", Bytes::from_static(b"val"), secs(2))
            .await
            .expect("set");
        b.set("forever", Bytes::from_static(b""), None)
            .await
            .expect("set");
        let bytes = fs::read(path_of(&b, "key")).expect("read");
        let mut want = b"TRCF\x01".to_vec();
        want.extend_from_slice(&(T0 * 1000 + 2000).to_le_bytes());
        want.extend_from_slice(&3u32.to_le_bytes());
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"keyval");
        assert_eq!(bytes, want);
        let bytes = fs::read(path_of(&b, "forever")).expect("read");
        assert_eq!(bytes[5..13], u64::MAX.to_le_bytes());
        assert_eq!(bytes.len(), HEADER_LEN + "forever".len());
    }

    #[tokio::test]
    async fn keys_that_look_like_paths_stay_in_the_directory() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("cache");
        let b = backend(&dir, &clock());
        for key in ["../escape", "/etc/passwd", "a/../../b", "..", "", "\0nul"] {
            b.set(key, Bytes::from_static(b"v"), None)
                .await
                .expect("set");
            assert_eq!(
                b.get(key).await.expect("get"),
                Some(Bytes::from_static(b"v"))
            );
        }
        assert_eq!(names(root.path()), vec!["cache".to_owned()]);
        assert_eq!(entry_count(&dir), 6);
    }

    #[tokio::test]
    async fn empty_file_is_a_miss_and_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = backend(dir.path(), &clock());
        let path = path_of(&b, "k");
        fs::write(&path, b"").expect("write");
        assert_eq!(b.get("k").await.expect("get"), None);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn truncated_file_is_a_miss_and_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = backend(dir.path(), &clock());
        b.set("k", Bytes::from_static(b"a long enough value"), None)
            .await
            .expect("set");
        let path = path_of(&b, "k");
        let full = fs::read(&path).expect("read");
        // Cut in the value, in the key, and in the header.
        for len in [full.len() - 1, HEADER_LEN + 1, HEADER_LEN, 10, 1] {
            fs::write(&path, &full[..len]).expect("write");
            assert_eq!(b.get("k").await.expect("get"), None, "cut at {len}");
            assert!(!path.exists(), "cut at {len}");
        }
        // Trailing bytes are as wrong as missing ones.
        let mut long = full.clone();
        long.push(0);
        fs::write(&path, &long).expect("write");
        assert_eq!(b.get("k").await.expect("get"), None);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn foreign_file_is_a_miss_and_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = backend(dir.path(), &clock());
        let path = path_of(&b, "k");
        let mut future_version = b"TRCF\x02".to_vec();
        future_version.extend_from_slice(&[0; 20]);
        let django =
            b"\x80\x04\x95\x0a\x00\x00\x00\x00\x00\x00\x00G\x41\xd5\xe3\x1a\x0c\x00\x00\x00.x\x9c"
                .to_vec();
        let huge_key = {
            let mut h = b"TRCF\x01".to_vec();
            h.extend_from_slice(&u64::MAX.to_le_bytes());
            h.extend_from_slice(&u32::MAX.to_le_bytes());
            h.extend_from_slice(&u64::MAX.to_le_bytes());
            h
        };
        for content in [
            b"<html>not a cache file</html>".to_vec(),
            django,
            future_version,
            huge_key,
            vec![0xff; 4096],
        ] {
            fs::write(&path, &content).expect("write");
            assert_eq!(b.get("k").await.expect("get"), None);
            assert!(!path.exists());
        }
        // The other operations treat it as absent too.
        fs::write(&path, b"junk").expect("write");
        assert!(!b.touch("k", None).await.expect("touch"));
        assert!(!path.exists());
        fs::write(&path, b"junk").expect("write");
        assert!(matches!(
            b.incr("k", 1).await,
            Err(BackendError::KeyNotFound)
        ));
        fs::write(&path, b"junk").expect("write");
        assert!(!b.delete("k").await.expect("delete"));
        assert!(!path.exists());
        fs::write(&path, b"junk").expect("write");
        assert!(
            b.add("k", Bytes::from_static(b"v"), None)
                .await
                .expect("add")
        );
        assert_eq!(
            b.get("k").await.expect("get"),
            Some(Bytes::from_static(b"v"))
        );
    }

    /// A well-formed file for another key at this key's name (as after a hash
    /// collision) is that key's value: a miss here, and left in place.
    #[tokio::test]
    async fn wrong_key_file_is_a_miss_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = backend(dir.path(), &clock());
        b.set("other", Bytes::from_static(b"theirs"), None)
            .await
            .expect("set");
        let path = path_of(&b, "k");
        fs::rename(path_of(&b, "other"), &path).expect("rename");
        assert_eq!(b.get("k").await.expect("get"), None);
        assert!(!b.delete("k").await.expect("delete"));
        assert!(!b.touch("k", None).await.expect("touch"));
        assert!(matches!(
            b.incr("k", 1).await,
            Err(BackendError::KeyNotFound)
        ));
        assert!(path.exists());
        let bytes = fs::read(&path).expect("read");
        assert!(bytes.ends_with(b"othertheirs"));
    }

    #[tokio::test]
    async fn expired_file_is_removed_on_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = clock();
        let b = backend(dir.path(), &c);
        b.set("k", Bytes::from_static(b"v"), secs(2))
            .await
            .expect("set");
        c.advance(Duration::from_millis(1999));
        assert_eq!(
            b.get("k").await.expect("get"),
            Some(Bytes::from_static(b"v"))
        );
        // Expiry at exactly now is expired.
        c.advance(Duration::from_millis(1));
        let path = path_of(&b, "k");
        assert!(path.exists());
        assert_eq!(b.get("k").await.expect("get"), None);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn never_expiring_value_outlives_any_clock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = clock();
        let b = backend(dir.path(), &c);
        b.set("k", Bytes::from_static(b"v"), None)
            .await
            .expect("set");
        c.set(UNIX_EPOCH + Duration::from_secs(u64::MAX / 1000));
        assert_eq!(
            b.get("k").await.expect("get"),
            Some(Bytes::from_static(b"v"))
        );
    }

    #[tokio::test]
    async fn sub_millisecond_ttl_is_not_already_expired() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = backend(dir.path(), &clock());
        b.set(
            "k",
            Bytes::from_static(b"v"),
            Some(Duration::from_micros(10)),
        )
        .await
        .expect("set");
        assert_eq!(
            b.get("k").await.expect("get"),
            Some(Bytes::from_static(b"v"))
        );
    }

    #[tokio::test]
    async fn add_touch_delete_follow_liveness() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = clock();
        let b = backend(dir.path(), &c);
        assert!(
            b.add("k", Bytes::from_static(b"1"), secs(5))
                .await
                .expect("add")
        );
        assert!(
            !b.add("k", Bytes::from_static(b"2"), secs(5))
                .await
                .expect("add")
        );
        assert_eq!(
            b.get("k").await.expect("get"),
            Some(Bytes::from_static(b"1"))
        );

        // touch moves the expiry: alive past the old one, gone at the new one.
        c.advance(Duration::from_secs(4));
        assert!(b.touch("k", secs(10)).await.expect("touch"));
        c.advance(Duration::from_secs(9));
        assert_eq!(
            b.get("k").await.expect("get"),
            Some(Bytes::from_static(b"1"))
        );
        c.advance(Duration::from_secs(1));
        assert!(!b.touch("k", secs(10)).await.expect("touch"));
        assert!(!path_of(&b, "k").exists());

        // add over an expired value wins.
        b.set("e", Bytes::from_static(b"old"), secs(1))
            .await
            .expect("set");
        c.advance(Duration::from_secs(1));
        assert!(
            b.add("e", Bytes::from_static(b"new"), None)
                .await
                .expect("add")
        );
        assert_eq!(
            b.get("e").await.expect("get"),
            Some(Bytes::from_static(b"new"))
        );

        // touch(None) makes a value permanent.
        b.set("p", Bytes::from_static(b"v"), secs(1))
            .await
            .expect("set");
        assert!(b.touch("p", None).await.expect("touch"));
        c.advance(Duration::from_secs(1_000_000));
        assert_eq!(
            b.get("p").await.expect("get"),
            Some(Bytes::from_static(b"v"))
        );

        // delete: true only for a live value.
        assert!(b.delete("p").await.expect("delete"));
        assert!(!b.delete("p").await.expect("delete"));
        b.set("d", Bytes::from_static(b"v"), secs(1))
            .await
            .expect("set");
        c.advance(Duration::from_secs(1));
        assert!(!b.delete("d").await.expect("delete"));
        assert!(!path_of(&b, "d").exists());
    }

    #[tokio::test]
    async fn incr_keeps_expiry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = clock();
        let b = backend(dir.path(), &c);
        b.set("n", Bytes::from_static(b"41"), secs(10))
            .await
            .expect("set");
        c.advance(Duration::from_secs(5));
        assert_eq!(b.incr("n", 1).await.expect("incr"), 42);
        assert_eq!(b.incr("n", -50).await.expect("incr"), -8);
        assert_eq!(
            b.get("n").await.expect("get"),
            Some(Bytes::from_static(b"-8"))
        );
        let bytes = fs::read(path_of(&b, "n")).expect("read");
        assert_eq!(bytes[5..13], (T0 * 1000 + 10_000).to_le_bytes());
        c.advance(Duration::from_secs(5));
        assert_eq!(b.get("n").await.expect("get"), None);
        assert!(matches!(
            b.incr("n", 1).await,
            Err(BackendError::KeyNotFound)
        ));

        b.set("forever", Bytes::from_static(b"1"), None)
            .await
            .expect("set");
        assert_eq!(b.incr("forever", 1).await.expect("incr"), 2);
        c.advance(Duration::from_secs(1_000_000));
        assert_eq!(b.incr("forever", 1).await.expect("incr"), 3);
    }

    #[tokio::test]
    async fn a_set_is_an_entry_file_in_set_codec_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = clock();
        let b = backend(dir.path(), &c);
        let add = |m: &'static [u8], ttl: u64| {
            b.set_add("tag", Bytes::from_static(m), Duration::from_secs(ttl))
        };
        add(b"a", 10).await.expect("set_add");
        add(b"b", 1).await.expect("set_add");
        add(b"a", 1).await.expect("set_add");
        let bytes = fs::read(path_of(&b, "tag")).expect("read");
        let expires = T0 * 1000 + 10_000;
        assert_eq!(bytes[5..13], expires.to_le_bytes());
        let value = Bytes::from(bytes).slice(HEADER_LEN + "tag".len()..);
        let set = set_codec::decode(&value).expect("set_codec format");
        assert_eq!(set.expires_at, expires);
        assert_eq!(set.members, [&b"a"[..], &b"b"[..]]);
        assert_eq!(b.get("tag").await.expect("get"), Some(value));

        // Never expiring stays so.
        assert!(b.touch("tag", None).await.expect("touch"));
        add(b"c", 1).await.expect("set_add");
        c.advance(Duration::from_secs(1_000_000));
        assert_eq!(
            b.set_take("tag").await.expect("set_take"),
            [&b"a"[..], &b"b"[..], &b"c"[..]]
        );
        assert!(!path_of(&b, "tag").exists());

        // Expired: no members, and the file goes.
        add(b"old", 1).await.expect("set_add");
        c.advance(Duration::from_secs(1));
        assert!(b.set_take("tag").await.expect("set_take").is_empty());
        assert!(!path_of(&b, "tag").exists());
        add(b"old", 1).await.expect("set_add");
        c.advance(Duration::from_secs(1));
        add(b"new", 1).await.expect("set_add");
        assert_eq!(b.set_take("tag").await.expect("set_take"), [&b"new"[..]]);
        assert_eq!(entry_count(dir.path()), 0);
    }

    #[tokio::test]
    async fn incr_errors_leave_the_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = backend(dir.path(), &clock());
        assert!(matches!(
            b.incr("missing", 1).await,
            Err(BackendError::KeyNotFound)
        ));
        b.set("s", Bytes::from_static(b"abc"), None)
            .await
            .expect("set");
        assert!(matches!(
            b.incr("s", 1).await,
            Err(BackendError::NotAnInteger)
        ));
        b.set("max", Bytes::from(i64::MAX.to_string()), None)
            .await
            .expect("set");
        assert!(matches!(
            b.incr("max", 1).await,
            Err(BackendError::NotAnInteger)
        ));
        assert_eq!(
            b.get("s").await.expect("get"),
            Some(Bytes::from_static(b"abc"))
        );
        assert_eq!(
            b.get("max").await.expect("get"),
            Some(Bytes::from(i64::MAX.to_string()))
        );
    }

    #[tokio::test]
    async fn temp_files_are_not_left_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = backend(dir.path(), &clock());
        b.set("a", Bytes::from_static(b"1"), None)
            .await
            .expect("set");
        b.set("a", Bytes::from_static(b"2"), None)
            .await
            .expect("set");
        assert!(
            b.add("b", Bytes::from_static(b"1"), None)
                .await
                .expect("add")
        );
        assert!(b.touch("a", secs(5)).await.expect("touch"));
        assert_eq!(b.incr("b", 1).await.expect("incr"), 2);
        assert!(names(dir.path()).iter().all(|n| is_entry_name(n)));
        assert_eq!(entry_count(dir.path()), 2);

        // A rename that fails (a directory is in the way) removes its temp file.
        let blocked = path_of(&b, "blocked");
        fs::create_dir(&blocked).expect("mkdir");
        let err = b
            .set("blocked", Bytes::from_static(b"v"), None)
            .await
            .expect_err("rename over a directory");
        assert!(matches!(err, BackendError::Io(_)));
        assert!(
            !names(dir.path()).iter().any(|n| n.starts_with(TEMP_PREFIX)),
            "{:?}",
            names(dir.path())
        );
    }

    #[tokio::test]
    async fn directory_is_created_with_mode_0700_kept_as_found_and_recreated_before_a_set() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("a").join("b");
        let b = backend(&dir, &clock());
        for d in [root.path().join("a"), dir.clone()] {
            let mode = fs::metadata(&d).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", d.display());
        }
        // An existing directory keeps its mode: it may be shared on purpose.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let b2 = backend(&dir, &clock());
        let mode = fs::metadata(&dir).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(b2.dir(), dir);

        fs::remove_dir_all(root.path().join("a")).expect("rm -r");
        assert_eq!(b.get("k").await.expect("get"), None);
        assert!(!b.delete("k").await.expect("delete"));
        b.clear().await.expect("clear of a missing directory");
        b.set("k", Bytes::from_static(b"v"), None)
            .await
            .expect("set");
        assert_eq!(
            b.get("k").await.expect("get"),
            Some(Bytes::from_static(b"v"))
        );
        let mode = fs::metadata(&dir).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn build_fails_cleanly_when_a_file_is_in_the_way() {
        let root = tempfile::tempdir().expect("tempdir");
        let file = root.path().join("file");
        fs::write(&file, b"x").expect("write");
        assert!(matches!(FileBackend::open(&file), Err(BackendError::Io(_))));
        assert!(matches!(
            FileBackend::open(file.join("below")),
            Err(BackendError::Io(_))
        ));
    }

    #[tokio::test]
    async fn unreadable_entry_is_an_io_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = backend(dir.path(), &clock());
        fs::create_dir(path_of(&b, "k")).expect("mkdir");
        assert!(matches!(b.get("k").await, Err(BackendError::Io(_))));
        assert!(matches!(b.touch("k", None).await, Err(BackendError::Io(_))));
    }

    #[tokio::test]
    async fn clear_leaves_other_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = backend(dir.path(), &clock());
        for i in 0..5 {
            b.set(&format!("k{i}"), Bytes::from_static(b"v"), None)
                .await
                .expect("set");
        }
        fs::write(dir.path().join("README"), b"mine").expect("write");
        fs::write(dir.path().join("notes.trc"), b"mine").expect("write");
        fs::write(dir.path().join(".trc-tmp-dead-1-0"), b"stray").expect("write");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");
        b.clear().await.expect("clear");
        assert_eq!(names(dir.path()), vec!["README", "notes.trc", "sub"]);
        assert_eq!(b.get("k0").await.expect("get"), None);
        assert!(dir.path().is_dir());
    }

    #[tokio::test]
    async fn cull_keeps_at_most_max_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = FileBackend::builder(dir.path())
            .max_entries(30)
            .clock(clock())
            .build()
            .expect("build");
        for i in 0..49 {
            b.set(&format!("k{i}"), Bytes::from_static(b"v"), None)
                .await
                .expect("set");
            assert!(entry_count(dir.path()) <= 30);
        }
        // Django's count: a third culled at 30 files, twice.
        assert_eq!(entry_count(dir.path()), 29);
        // The last key written survives its own cull.
        assert!(b.get("k48").await.expect("get").is_some());
    }

    #[tokio::test]
    async fn zero_cull_frequency_clears_when_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = FileBackend::builder(dir.path())
            .max_entries(30)
            .cull_frequency(0)
            .clock(clock())
            .build()
            .expect("build");
        for i in 0..49 {
            b.set(&format!("k{i}"), Bytes::from_static(b"v"), None)
                .await
                .expect("set");
        }
        assert!(entry_count(dir.path()) < 30);
        assert_eq!(entry_count(dir.path()), 19);
        assert_eq!(b.get("k0").await.expect("get"), None);
    }

    #[tokio::test]
    async fn cull_removes_expired_values_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = clock();
        let b = FileBackend::builder(dir.path())
            .max_entries(10)
            .clock(c.clone())
            .build()
            .expect("build");
        for i in 0..5 {
            b.set(&format!("old{i}"), Bytes::from_static(b"v"), secs(1))
                .await
                .expect("set");
        }
        for i in 0..5 {
            b.set(&format!("live{i}"), Bytes::from_static(b"v"), None)
                .await
                .expect("set");
        }
        c.advance(Duration::from_secs(1));
        b.set("new", Bytes::from_static(b"v"), None)
            .await
            .expect("set");
        // All five expired files went, though a third (3) would have done.
        assert_eq!(entry_count(dir.path()), 6);
        for i in 0..5 {
            assert!(b.get(&format!("live{i}")).await.expect("get").is_some());
        }
    }

    #[test]
    fn max_entries_below_cull_frequency_still_bounds_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = FileBackend::builder(dir.path())
            .max_entries(1)
            .clock(clock())
            .build()
            .expect("build");
        for i in 0..5 {
            b.inner.set(&format!("k{i}"), b"v", None).expect("set");
        }
        assert_eq!(entry_count(dir.path()), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_adds_have_one_winner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = backend(dir.path(), &clock());
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move {
                    b.add("k", Bytes::from(format!("{i}")), None)
                        .await
                        .expect("add")
                })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            if task.await.expect("join") {
                wins += 1;
            }
        }
        assert_eq!(wins, 1);
        assert!(b.get("k").await.expect("get").is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_incrs_lose_no_update() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = backend(dir.path(), &clock());
        b.set("n", Bytes::from_static(b"0"), None)
            .await
            .expect("set");
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let b = b.clone();
                tokio::spawn(async move { b.incr("n", 1).await.expect("incr") })
            })
            .collect();
        for task in tasks {
            task.await.expect("join");
        }
        assert_eq!(
            b.get("n").await.expect("get"),
            Some(Bytes::from_static(b"20"))
        );
    }

    #[tokio::test]
    async fn many_ops_and_a_reopened_backend_see_the_same_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = clock();
        let b = backend(dir.path(), &c);
        b.set("a", Bytes::from_static(b"1"), None)
            .await
            .expect("set");
        b.set("b", Bytes::from_static(b"2"), None)
            .await
            .expect("set");
        let keys = ["a".to_owned(), "x".to_owned(), "b".to_owned()];
        let again = backend(dir.path(), &c);
        assert_eq!(
            again.get_many(&keys).await.expect("get_many"),
            vec![
                Some(Bytes::from_static(b"1")),
                None,
                Some(Bytes::from_static(b"2"))
            ]
        );
        again.delete_many(&keys).await.expect("delete_many");
        assert_eq!(entry_count(dir.path()), 0);
        b.close().await.expect("close");
    }

    /// Without a tokio runtime the work runs inline, at the first poll.
    #[test]
    fn works_without_a_runtime() {
        use std::task::{Context, Poll, Waker};

        fn now<T>(fut: BoxFuture<'_, T>) -> T {
            let mut fut = fut;
            let mut cx = Context::from_waker(Waker::noop());
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(value) => value,
                Poll::Pending => panic!("pending without a runtime"),
            }
        }

        let dir = tempfile::tempdir().expect("tempdir");
        let b = backend(dir.path(), &clock());
        now(b.set("k", Bytes::from_static(b"v"), None)).expect("set");
        assert_eq!(
            now(b.get("k")).expect("get"),
            Some(Bytes::from_static(b"v"))
        );
        assert!(now(b.delete("k")).expect("delete"));
    }

    #[test]
    fn debug_names_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = backend(dir.path(), &clock());
        let text = format!("{b:?}");
        assert!(text.starts_with("FileBackend"), "{text}");
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
    }

    #[test]
    fn entry_names_are_exactly_hash_dot_trc() {
        assert!(is_entry_name("0123456789abcdef0123456789abcdef.trc"));
        assert!(!is_entry_name("0123456789ABCDEF0123456789abcdef.trc"));
        assert!(!is_entry_name("0123456789abcdef0123456789abcde.trc"));
        assert!(!is_entry_name("notes.trc"));
        assert!(!is_entry_name(".trc-tmp-1-2-3"));
        assert_eq!(ceil_millis(Duration::from_micros(1)), 1);
        assert_eq!(ceil_millis(Duration::from_millis(7)), 7);
        assert_eq!(ceil_millis(Duration::MAX), u64::MAX);
    }
}
