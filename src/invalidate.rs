//! Invalidation after unsafe methods (RFC 9111 section 4.4): a successful
//! POST, PUT, DELETE, PATCH or unknown method makes the cache forget its target
//! URI and the same-origin URIs of its `Location` and `Content-Location`.
//!
//! Both modes do it: a page that a form just changed must not be served stale
//! from the cache, whoever's rules decided to store it.

use http::header::{CONTENT_LOCATION, HOST, LOCATION};
use http::request::Parts;
use http::{HeaderMap, Request, Uri};

use crate::key::{PrimaryKey, under_both_schemes};
use crate::layer::Shared;

/// What an unsafe request may invalidate, taken before it is sent on.
pub(crate) struct Target {
    /// The request's own URI (with scheme and authority when it had them).
    uri: Uri,
    /// For the key hook and the `Host` a later GET would carry.
    headers: HeaderMap,
}

impl Target {
    pub(crate) fn of<B>(req: &Request<B>) -> Self {
        Self {
            uri: req.uri().clone(),
            headers: req.headers().clone(),
        }
    }

    /// The request's authority: from its URI, else its `Host`.
    fn authority(&self) -> Option<&str> {
        match self.uri.authority() {
            Some(a) => Some(a.as_str()),
            None => self.headers.get(HOST)?.to_str().ok(),
        }
    }

    /// `reference` (a `Location` value) resolved against the request's URI, in
    /// the same form the request had; `None` for another origin or nonsense.
    fn resolve(&self, reference: &str) -> Option<Uri> {
        let reference = reference.trim();
        let path_and_query = if let Some(rest) = reference.strip_prefix("//") {
            self.same_origin(rest)?
        } else if reference.starts_with('/') {
            reference.to_owned()
        } else if let Some((scheme, rest)) = reference.split_once("://") {
            if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
                return None;
            }
            self.same_origin(rest)?
        } else if reference.starts_with('?') {
            format!("{}{reference}", self.uri.path())
        } else {
            // A relative path: beside the request's last segment.
            let path = self.uri.path();
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            format!("{}{reference}", if dir.is_empty() { "/" } else { dir })
        };
        let path_and_query = path_and_query.split('#').next().unwrap_or_default();
        let mut builder = Uri::builder();
        if let (Some(scheme), Some(authority)) = (self.uri.scheme(), self.uri.authority()) {
            builder = builder.scheme(scheme.clone()).authority(authority.clone());
        }
        builder.path_and_query(path_and_query).build().ok()
    }

    /// The path and query of `authority/path` when the authority is the request's.
    fn same_origin(&self, rest: &str) -> Option<String> {
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        if !self.authority()?.eq_ignore_ascii_case(authority) {
            return None;
        }
        Some(if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        })
    }

    /// `uri` under both schemes with the request's authority, or as it is when
    /// no authority is known.
    fn both_schemes(&self, uri: Uri) -> Vec<Uri> {
        let absolute = match (self.authority(), uri.path_and_query()) {
            (Some(authority), Some(path)) => under_both_schemes(authority, path),
            _ => Vec::new(),
        };
        if absolute.is_empty() {
            vec![uri]
        } else {
            absolute
        }
    }

    /// The request parts a GET of `uri` would have, for its key.
    fn parts(&self, uri: Uri) -> Parts {
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.uri = uri;
        parts.headers = self.headers.clone();
        parts
    }
}

impl Shared {
    /// Forgets every variant of the target URI and of the same-origin URIs the
    /// response's `Location` / `Content-Location` name.
    pub(crate) async fn invalidate(&self, target: &Target, response: &HeaderMap) {
        let mut uris = vec![target.uri.clone()];
        for field in [LOCATION, CONTENT_LOCATION] {
            let resolved = response
                .get(field)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| target.resolve(v));
            uris.extend(resolved);
        }
        for uri in uris {
            for uri in target.both_schemes(uri) {
                let parts = target.parts(uri);
                let config = &self.config;
                let key = PrimaryKey::new(
                    &config.key_prefix,
                    config.version,
                    &parts,
                    config.key_hook.as_ref(),
                );
                self.store.purge(key.hash).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str) -> Target {
        Target::of(
            &Request::post(uri)
                .header(HOST, "Example.com")
                .body(())
                .unwrap(),
        )
    }

    fn resolved(t: &Target, reference: &str) -> Option<String> {
        t.resolve(reference).map(|u| u.to_string())
    }

    #[test]
    fn references_resolve_against_the_request() {
        let t = target("/a/b?x=1");
        assert_eq!(resolved(&t, "/c?y").as_deref(), Some("/c?y"));
        assert_eq!(resolved(&t, "c").as_deref(), Some("/a/c"));
        assert_eq!(resolved(&t, "?z").as_deref(), Some("/a/b?z"));
        assert_eq!(resolved(&t, "http://example.com/d").as_deref(), Some("/d"));
        assert_eq!(resolved(&t, "https://EXAMPLE.com").as_deref(), Some("/"));
        assert_eq!(resolved(&t, "//example.com/e#frag").as_deref(), Some("/e"));
    }

    #[test]
    fn other_origins_and_schemes_are_not_ours() {
        let t = target("/a");
        assert_eq!(resolved(&t, "http://example.org/d"), None);
        assert_eq!(resolved(&t, "http://example.com:8080/d"), None);
        assert_eq!(resolved(&t, "ftp://example.com/d"), None);
        assert_eq!(resolved(&t, "//other/x"), None);
    }

    #[test]
    fn absolute_form_requests_resolve_to_absolute_uris() {
        let t = target("http://example.com/a");
        assert_eq!(resolved(&t, "/b").as_deref(), Some("http://example.com/b"));
    }
}
