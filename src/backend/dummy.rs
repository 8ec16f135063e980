use std::time::Duration;

use bytes::Bytes;

use super::{Backend, BackendError, BoxFuture, Ttl, ready};

/// A backend that stores nothing (Django's `DummyCache`): every lookup misses.
///
/// Useful in development and tests to switch caching off without removing the
/// layer or the calls: the layer still patches headers, and the low-level API
/// answers as Django's dummy cache does (`add` is `true`, `incr` finds no key).
/// Sets are no exception: `set_add` succeeds and `set_take` finds nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct DummyBackend;

impl Backend for DummyBackend {
    fn get<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, BackendError>> {
        ready(Ok(None))
    }

    fn set<'a>(
        &'a self,
        _key: &'a str,
        _value: Bytes,
        _ttl: Ttl,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        ready(Ok(()))
    }

    fn add<'a>(
        &'a self,
        _key: &'a str,
        _value: Bytes,
        _ttl: Ttl,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        ready(Ok(true))
    }

    fn delete<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        ready(Ok(false))
    }

    fn touch<'a>(&'a self, _key: &'a str, _ttl: Ttl) -> BoxFuture<'a, Result<bool, BackendError>> {
        ready(Ok(false))
    }

    fn incr<'a>(&'a self, _key: &'a str, _delta: i64) -> BoxFuture<'a, Result<i64, BackendError>> {
        ready(Err(BackendError::KeyNotFound))
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        ready(Ok(()))
    }

    fn set_add<'a>(
        &'a self,
        _key: &'a str,
        _member: Bytes,
        _ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        ready(Ok(()))
    }

    fn set_take<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<Vec<Bytes>, BackendError>> {
        ready(Ok(Vec::new()))
    }
}
