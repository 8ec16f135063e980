//! Runs the backend conformance suite (`tests/conformance/mod.rs`: Django's
//! `BaseCacheTests`, spec §5, §6, B43) against the in-process backends, memory
//! and file, plus Django's `DummyCacheTests` expectations for the dummy backend
//! (spec §5.7).
//!
//! Time only moves through a `ManualClock`: no test sleeps.

#[macro_use]
mod conformance;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use conformance::*;
use tower_response_cache::backend::{BoxFuture, DummyBackend, FileBackend, MemoryBackend};
use tower_response_cache::{Cache, Timeout};

// ---------------------------------------------------------------------------
// The in-process backends
// ---------------------------------------------------------------------------

fn memory_cache() -> BoxFuture<'static, Fixture> {
    local(|clock| {
        let backend = MemoryBackend::builder().clock(clock.clone()).build();
        (Cache::new(backend), Box::new(()))
    })
}

conformance!(memory, memory_cache, extra {
    /// Django's test_cull (MAX_ENTRIES 30, 49 keys set) expects exactly 29 keys
    /// left: locmem culls `len // CULL_FREQUENCY` LRU entries whenever it is full.
    /// The memory backend evicts one value at a time by CLOCK and has no
    /// CULL_FREQUENCY, so only the bound is Django's: never more than
    /// MAX_ENTRIES values.
    #[tokio::test]
    async fn test_cull() {
        let clock = new_clock();
        let backend = MemoryBackend::builder().max_entries(30).clock(clock.clone()).build();
        let cache = Cache::new(backend.clone());
        for i in 1..50 {
            cache.set(format!("cull{i}"), &i).await.unwrap();
        }
        // Eviction is one value at a time: the cache is full, not culled.
        assert_eq!(backend.entry_count(), 30);
        assert!(has(&cache, "cull49").await, "the value just set stays");
        let mut count = 0;
        for i in 1..50 {
            if has(&cache, format!("cull{i}")).await {
                count += 1;
            }
        }
        assert_eq!(count, 30, "keys readable, max_entries is 30");
        // Overwriting existing keys never grows past the bound either.
        for i in 1..50 {
            cache.set(format!("cull{i}"), &(i + 1)).await.unwrap();
        }
        assert!(backend.entry_count() <= 30);
    }

    // test_zero_cull: skipped for the memory backend. Django's CULL_FREQUENCY 0
    // (clear everything when full; 19 keys left of 49) has no equivalent here:
    // the memory backend has no cull frequency, only the max_entries bound that
    // test_cull checks.
});

// The file backend (src/backend/file.rs; tempfile is a dev-dependency).

fn file_cache() -> BoxFuture<'static, Fixture> {
    local(|clock| {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::builder(dir.path())
            .clock(clock.clone())
            .max_entries(300)
            .build()
            .unwrap();
        (Cache::new(backend), Box::new(dir))
    })
}

conformance!(file, file_cache, extra {
    /// Django's FileBasedCacheTests: MAX_ENTRIES 30, CULL_FREQUENCY 3, 49 keys
    /// set → 29 left (a cull of count / 3 before each set once count >= 30).
    #[tokio::test]
    async fn test_cull() {
        let clock = new_clock();
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::builder(dir.path())
            .clock(clock.clone())
            .max_entries(30)
            .build()
            .unwrap();
        let cache = Cache::new(backend);
        for i in 1..50 {
            cache.set(format!("cull{i}"), &i).await.unwrap();
        }
        let mut count = 0;
        for i in 1..50 {
            if has(&cache, format!("cull{i}")).await {
                count += 1;
            }
        }
        assert_eq!(count, 29);
    }

    /// CULL_FREQUENCY 0 clears everything when full: 19 of 49 keys left.
    #[tokio::test]
    async fn test_zero_cull() {
        let clock = new_clock();
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::builder(dir.path())
            .clock(clock.clone())
            .max_entries(30)
            .cull_frequency(0)
            .build()
            .unwrap();
        let cache = Cache::new(backend);
        for i in 1..50 {
            cache.set(format!("cull{i}"), &i).await.unwrap();
        }
        let mut count = 0;
        for i in 1..50 {
            if has(&cache, format!("cull{i}")).await {
                count += 1;
            }
        }
        assert_eq!(count, 19);
    }
});

// ---------------------------------------------------------------------------
// Django's DummyCacheTests (spec §5.7): validates keys, stores nothing.
// ---------------------------------------------------------------------------

mod dummy {
    use super::*;

    fn dummy_cache() -> Cache {
        Cache::new(DummyBackend)
    }

    #[tokio::test]
    async fn test_simple() {
        let cache = dummy_cache();
        cache.set("key", "value").await.unwrap();
        assert_eq!(get_str(&cache, "key").await, None);
    }

    #[tokio::test]
    async fn test_add() {
        let cache = dummy_cache();
        assert!(cache.add("addkey1", "value").await.unwrap());
        assert!(cache.add("addkey1", "newvalue").await.unwrap());
        assert_eq!(get_str(&cache, "addkey1").await, None);
        assert!(cache.add_for("addkey2", "value", 0).await.unwrap());
    }

    #[tokio::test]
    async fn test_non_existent() {
        let cache = dummy_cache();
        assert_eq!(get_str(&cache, "does_not_exist").await, None);
        let got: String = cache
            .get_or("does_not_exist", "bang!".to_owned())
            .await
            .unwrap();
        assert_eq!(got, "bang!");
    }

    #[tokio::test]
    async fn test_get_many() {
        let cache = dummy_cache();
        let failed = cache
            .set_many([("a", "a"), ("b", "b"), ("c", "c")], Timeout::Default)
            .await
            .unwrap();
        assert!(failed.is_empty());
        let got: HashMap<String, String> = cache.get_many(["a", "c", "d"]).await.unwrap();
        assert!(got.is_empty());
        let got: HashMap<String, String> = cache.get_many(["a", "b", "e"]).await.unwrap();
        assert!(got.is_empty());
    }

    #[tokio::test]
    async fn test_delete() {
        let cache = dummy_cache();
        cache
            .set_many([("key1", "spam"), ("key2", "eggs")], Timeout::Default)
            .await
            .unwrap();
        assert!(!cache.delete("key1").await.unwrap());
        assert_eq!(get_str(&cache, "key1").await, None);
        assert_eq!(get_str(&cache, "key2").await, None);
    }

    #[tokio::test]
    async fn test_has_key() {
        let cache = dummy_cache();
        cache.set("hello1", "goodbye1").await.unwrap();
        assert!(!has(&cache, "hello1").await);
        assert!(!has(&cache, "goodbye1").await);
    }

    #[tokio::test]
    async fn test_incr() {
        let cache = dummy_cache();
        cache.set("answer", &42).await.unwrap();
        assert_key_not_found(cache.incr("answer", 1).await, "answer");
        assert_key_not_found(cache.incr("does_not_exist", 1).await, "does_not_exist");
        assert_key_not_found(cache.incr("does_not_exist", -1).await, "does_not_exist");
    }

    #[tokio::test]
    async fn test_decr() {
        let cache = dummy_cache();
        cache.set("answer", &42).await.unwrap();
        assert_key_not_found(cache.decr("answer", 1).await, "answer");
        assert_key_not_found(cache.decr("does_not_exist", 1).await, "does_not_exist");
        assert_key_not_found(cache.decr("does_not_exist", -1).await, "does_not_exist");
    }

    #[tokio::test]
    async fn test_touch() {
        let cache = dummy_cache();
        cache.set("whatever", &1).await.unwrap();
        assert!(!cache.touch("whatever", 10).await.unwrap());
        assert!(!cache.touch("whatever", Timeout::Never).await.unwrap());
        assert!(!cache.touch("whatever", 0).await.unwrap());
    }

    #[tokio::test]
    async fn test_data_types() {
        let cache = dummy_cache();
        cache.set("data", &stuff()).await.unwrap();
        let got: Option<Stuff> = cache.get("data").await.unwrap();
        assert_eq!(got, None);
    }

    #[tokio::test]
    async fn test_expiration() {
        let clock = new_clock();
        let cache = dummy_cache();
        cache.set_for("expire1", "very quickly", 1).await.unwrap();
        cache.set_for("expire2", "very quickly", 1).await.unwrap();
        cache.set_for("expire3", "very quickly", 1).await.unwrap();
        clock.advance(secs(2));
        assert_eq!(get_str(&cache, "expire1").await, None);
        assert!(cache.add("expire2", "newvalue").await.unwrap());
        assert_eq!(get_str(&cache, "expire2").await, None);
        assert!(!has(&cache, "expire3").await);
    }

    #[tokio::test]
    async fn test_unicode() {
        let cache = dummy_cache();
        for (key, value) in [
            ("ascii", "ascii_value"),
            ("unicode_ascii", "Iñtërnâtiônàlizætiøn1"),
            ("Iñtërnâtiônàlizætiøn", "Iñtërnâtiônàlizætiøn2"),
        ] {
            cache.set(key, value).await.unwrap();
            assert_eq!(get_str(&cache, key).await, None);
        }
    }

    #[tokio::test]
    async fn test_set_many() {
        let cache = dummy_cache();
        let failed = cache
            .set_many([("a", 1), ("b", 2)], Timeout::Default)
            .await
            .unwrap();
        assert_eq!(failed, Vec::<String>::new());
        let failed = cache
            .set_many([(("a", 1), 1), (("b", 1), 2)], 2)
            .await
            .unwrap();
        assert_eq!(failed, Vec::<String>::new());
        let failed = cache
            .set_many(Vec::<(&str, i32)>::new(), Timeout::Default)
            .await
            .unwrap();
        assert_eq!(failed, Vec::<String>::new());
    }

    #[tokio::test]
    async fn test_delete_many() {
        let cache = dummy_cache();
        cache.delete_many(["a", "b"]).await.unwrap();
        cache.delete_many(Vec::<&str>::new()).await.unwrap();
    }

    #[tokio::test]
    async fn test_clear() {
        let cache = dummy_cache();
        cache.clear().await.unwrap();
    }

    /// Sets store nothing either: adds succeed, takes find no members.
    #[tokio::test]
    async fn test_sets() {
        let cache = dummy_cache();
        let backend = cache.backend();
        let ttl = std::time::Duration::from_secs(60);
        backend.set_add("tag", "m".into(), ttl).await.unwrap();
        backend.set_add("tag", "n".into(), ttl).await.unwrap();
        assert!(backend.set_take("tag").await.unwrap().is_empty());
        assert!(backend.set_take("absent").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn test_close() {
        let cache = dummy_cache();
        cache.close().await.unwrap();
        cache.set("after", "close").await.unwrap();
    }

    #[tokio::test]
    async fn test_incr_version() {
        let cache = dummy_cache();
        cache.set("answer", &42).await.unwrap();
        assert_key_not_found(cache.incr_version("answer", 1).await, "answer");
        assert_key_not_found(
            cache.incr_version("does_not_exist", 1).await,
            "does_not_exist",
        );
    }

    #[tokio::test]
    async fn test_decr_version() {
        let cache = dummy_cache();
        cache.set(("answer", 2), &42).await.unwrap();
        assert_key_not_found(cache.decr_version(("answer", 2), 1).await, "answer");
        assert_key_not_found(
            cache.decr_version(("does_not_exist", 2), 1).await,
            "does_not_exist",
        );
    }

    #[tokio::test]
    async fn test_get_or_set() {
        let cache = dummy_cache();
        let got = cache
            .get_or_set("mykey", || async { "default".to_owned() }, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(got, "default");
        let got = cache
            .get_or_set("mykey", || async { None::<i32> }, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(got, None);
    }

    #[tokio::test]
    async fn test_get_or_set_callable() {
        let cache = dummy_cache();
        let calls = AtomicUsize::new(0);
        let calls_ref = &calls;
        let my_callable = move || async move {
            calls_ref.fetch_add(1, Ordering::SeqCst);
            "value".to_owned()
        };
        for _ in 0..2 {
            let got = cache
                .get_or_set("mykey", my_callable, Timeout::Default)
                .await
                .unwrap();
            assert_eq!(got, "value");
        }
        // Nothing is stored, so every call computes.
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn test_invalid_key_characters() {
        let cache = dummy_cache();
        let key = "key with spaces and 清";
        let made = cache.make_key(key, None).unwrap();
        let log = WarnLog::default();
        log.expect_warning(&made, "set", cache.set(key, &1))
            .await
            .unwrap();
        let got = log.expect_warning(&made, "get", get_int(&cache, key)).await;
        assert_eq!(got, None);
        let strict = Cache::builder(DummyBackend).strict_keys(true).build();
        assert_invalid_key(strict.set(key, &1).await, &made, "set");
        assert_invalid_key(strict.add(key, &1).await, &made, "add");
        assert_invalid_key(strict.get::<i64>(key).await, &made, "get");
        assert_invalid_key(strict.incr(key, 1).await, &made, "incr");
    }

    #[tokio::test]
    async fn test_invalid_key_length() {
        let cache = Cache::builder(DummyBackend).strict_keys(true).build();
        let key = "a".repeat(251);
        let made = format!(":1:{key}");
        assert_invalid_key(cache.set(key.as_str(), &1).await, &made, "set");
        assert_invalid_key(
            cache.get_many::<i64, _>([key.as_str()]).await,
            &made,
            "get_many",
        );
        assert_invalid_key(
            cache.delete_many([key.as_str()]).await,
            &made,
            "delete_many",
        );
    }
}
