//! Conditional GET answered from a stored 200 response (RFC 9110 §13), with
//! Django's parsing of the request conditions.

use http::HeaderMap;
use http::header::{
    CACHE_CONTROL, CONTENT_LOCATION, DATE, ETAG, EXPIRES, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED, SET_COOKIE, VARY,
};

use super::http_date::parse_http_date;
use super::list::{list_items, trim_ows};

/// The parsed `If-None-Match` of a request.
#[derive(Debug, PartialEq, Eq)]
enum IfNoneMatch<'a> {
    /// Absent, or no item was a valid entity-tag.
    Absent,
    /// `*`.
    Any,
    /// The opaque-tags (quotes included, `W/` removed) of the valid items.
    Tags(Vec<&'a [u8]>),
}

/// Whether `item` is an entity-tag `(W/)?"<no quotes>"`; returns its opaque-tag.
fn opaque_tag(item: &[u8]) -> Option<&[u8]> {
    let tag = item.strip_prefix(b"W/").unwrap_or(item);
    match tag {
        [b'"', inner @ .., b'"'] if !inner.contains(&b'"') => Some(tag),
        _ => None,
    }
}

/// Parses every `If-None-Match` line as one list (Django's `parse_etags`):
/// exactly `*` is [`IfNoneMatch::Any`]; otherwise items that are not valid
/// entity-tags are discarded.
fn if_none_match(request: &HeaderMap) -> IfNoneMatch<'_> {
    let mut items = list_items(request, IF_NONE_MATCH);
    if let (Some(b"*"), None) = (items.next(), items.next()) {
        return IfNoneMatch::Any;
    }
    let tags: Vec<&[u8]> = list_items(request, IF_NONE_MATCH)
        .filter_map(opaque_tag)
        .collect();
    if tags.is_empty() {
        IfNoneMatch::Absent
    } else {
        IfNoneMatch::Tags(tags)
    }
}

/// Whether a GET or HEAD `request` should be answered `304 Not Modified` from
/// a stored 200 response with headers `stored`.
///
/// - A valid `If-None-Match` decides alone: `*` matches (the stored response is
///   a current representation); otherwise the stored `ETag` must equal one of
///   the items under weak comparison.
/// - Otherwise a valid `If-Modified-Since` gives 304 when the stored
///   `Last-Modified` is not later than it.
pub(crate) fn is_not_modified(request: &HeaderMap, stored: &HeaderMap) -> bool {
    if !is_conditional(request) {
        return false;
    }
    match if_none_match(request) {
        IfNoneMatch::Any => return true,
        IfNoneMatch::Tags(tags) => {
            return stored
                .get(ETAG)
                .and_then(|etag| opaque_tag(trim_ows(etag.as_bytes())))
                .is_some_and(|etag| tags.contains(&etag));
        }
        IfNoneMatch::Absent => {}
    }
    let mut ims = request.get_all(IF_MODIFIED_SINCE).iter();
    // Repeated lines would be joined with "," by Django: never a valid date.
    let (Some(ims), None) = (ims.next(), ims.next()) else {
        return false;
    };
    let Some(ims) = parse_http_date(ims) else {
        return false;
    };
    stored
        .get(LAST_MODIFIED)
        .and_then(parse_http_date)
        .is_some_and(|last_modified| last_modified <= ims)
}

/// Whether the request carries `If-None-Match` or `If-Modified-Since`. Most
/// carry neither: one pass over the names (cheap comparisons of standard
/// headers) spares them the hashed lookups of [`is_not_modified`], and a hit the
/// stored fields' map.
pub(crate) fn is_conditional(request: &HeaderMap) -> bool {
    request
        .keys()
        .any(|name| name == IF_NONE_MATCH || name == IF_MODIFIED_SINCE)
}

/// The headers of a 304 built from a stored response: only `Cache-Control`,
/// `Content-Location`, `Date`, `ETag`, `Expires`, `Last-Modified`, `Vary` and
/// `Set-Cookie`, every value of each, in order (as Django's `_not_modified`).
pub(crate) fn not_modified_headers(stored: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    let keep = [
        CACHE_CONTROL,
        CONTENT_LOCATION,
        DATE,
        ETAG,
        EXPIRES,
        LAST_MODIFIED,
        VARY,
        SET_COOKIE,
    ];
    for name in keep {
        for value in stored.get_all(&name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CONTENT_LANGUAGE, CONTENT_TYPE};
    use http::{HeaderName, HeaderValue};

    fn map(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(n.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn etag(tag: &str) -> HeaderMap {
        map(&[(ETAG, tag)])
    }

    fn inm(v: &str) -> HeaderMap {
        map(&[(IF_NONE_MATCH, v)])
    }

    const LM: &str = "Sat, 21 Oct 2006 18:46:56 GMT";
    const EARLIER: &str = "Fri, 20 Oct 2006 18:46:56 GMT";
    const LATER: &str = "Sun, 22 Oct 2006 18:46:56 GMT";

    #[test]
    fn strong_etag_match_is_304() {
        assert!(is_not_modified(&inm(r#""spam""#), &etag(r#""spam""#)));
        assert!(!is_not_modified(&inm(r#""eggs""#), &etag(r#""spam""#)));
    }

    #[test]
    fn weak_comparison_ignores_w_prefix_on_either_side() {
        assert!(is_not_modified(&inm(r#"W/"x""#), &etag(r#""x""#)));
        assert!(is_not_modified(&inm(r#""x""#), &etag(r#"W/"x""#)));
        assert!(is_not_modified(&inm(r#"W/"x""#), &etag(r#"W/"x""#)));
        // Only a `W/` prefix is removed, not any W or / characters.
        assert!(!is_not_modified(&inm(r#""W/x""#), &etag(r#""x""#)));
        assert!(!is_not_modified(&inm(r#"W/"x/W""#), &etag(r#""x""#)));
    }

    #[test]
    fn list_and_multiple_lines_are_combined() {
        assert!(is_not_modified(
            &inm(r#""a", W/"b" , "c""#),
            &etag(r#""b""#)
        ));
        let req = map(&[(IF_NONE_MATCH, r#""a""#), (IF_NONE_MATCH, r#""b""#)]);
        assert!(is_not_modified(&req, &etag(r#""b""#)));
    }

    #[test]
    fn star_matches_any_stored_response() {
        assert!(is_not_modified(&inm("*"), &etag(r#""x""#)));
        assert!(is_not_modified(&inm(" * "), &HeaderMap::new()));
    }

    #[test]
    fn unquoted_items_are_ignored() {
        assert!(!is_not_modified(&inm("spam"), &etag("spam")));
        assert!(!is_not_modified(&inm("spam"), &etag(r#""eggs""#)));
        assert!(is_not_modified(&inm(r#"spam, "eggs""#), &etag(r#""eggs""#)));
        // A star inside a list is not `*`.
        assert!(!is_not_modified(&inm(r#""a", *"#), &etag(r#""x""#)));
    }

    #[test]
    fn etag_without_stored_etag_is_not_304() {
        assert!(!is_not_modified(&inm(r#""x""#), &HeaderMap::new()));
    }

    #[test]
    fn if_none_match_takes_precedence_over_if_modified_since() {
        let stored = map(&[(ETAG, r#""x""#), (LAST_MODIFIED, LM)]);
        let req = map(&[(IF_NONE_MATCH, r#""y""#), (IF_MODIFIED_SINCE, LATER)]);
        assert!(!is_not_modified(&req, &stored));
        let req = map(&[(IF_NONE_MATCH, r#""x""#), (IF_MODIFIED_SINCE, EARLIER)]);
        assert!(is_not_modified(&req, &stored));
    }

    #[test]
    fn invalid_if_none_match_counts_as_absent() {
        let stored = map(&[(ETAG, r#""x""#), (LAST_MODIFIED, LM)]);
        let req = map(&[(IF_NONE_MATCH, "unquoted"), (IF_MODIFIED_SINCE, LM)]);
        assert!(is_not_modified(&req, &stored));
    }

    #[test]
    fn if_modified_since_equal_or_later_is_304() {
        let stored = map(&[(LAST_MODIFIED, LM)]);
        assert!(is_not_modified(&map(&[(IF_MODIFIED_SINCE, LM)]), &stored));
        assert!(is_not_modified(
            &map(&[(IF_MODIFIED_SINCE, LATER)]),
            &stored
        ));
        assert!(!is_not_modified(
            &map(&[(IF_MODIFIED_SINCE, EARLIER)]),
            &stored
        ));
    }

    #[test]
    fn if_modified_since_other_formats_parse() {
        let stored = map(&[(LAST_MODIFIED, LM)]);
        let rfc850 = map(&[(IF_MODIFIED_SINCE, "Saturday, 21-Oct-06 18:46:56 GMT")]);
        assert!(is_not_modified(&rfc850, &stored));
        let asctime = map(&[(IF_MODIFIED_SINCE, "Sat Oct 21 18:46:56 2006")]);
        assert!(is_not_modified(&asctime, &stored));
    }

    #[test]
    fn invalid_if_modified_since_is_ignored() {
        let stored = map(&[(LAST_MODIFIED, LM)]);
        let req = map(&[(IF_MODIFIED_SINCE, "Mon, 32 Oct 2010 16:56:23 GMT")]);
        assert!(!is_not_modified(&req, &stored));
        let req = map(&[(IF_MODIFIED_SINCE, LATER), (IF_MODIFIED_SINCE, LATER)]);
        assert!(!is_not_modified(&req, &stored));
    }

    #[test]
    fn no_last_modified_means_no_304_from_if_modified_since() {
        assert!(!is_not_modified(
            &map(&[(IF_MODIFIED_SINCE, LATER)]),
            &HeaderMap::new()
        ));
        let bad = map(&[(LAST_MODIFIED, "yesterday")]);
        assert!(!is_not_modified(&map(&[(IF_MODIFIED_SINCE, LATER)]), &bad));
    }

    #[test]
    fn no_conditions_is_not_304() {
        assert!(!is_not_modified(&HeaderMap::new(), &etag(r#""x""#)));
    }

    #[test]
    fn not_modified_headers_keeps_only_the_listed_headers() {
        let stored = map(&[
            (CONTENT_TYPE, "text/html"),
            (CONTENT_LANGUAGE, "en"),
            (CACHE_CONTROL, "max-age=60"),
            (CONTENT_LOCATION, "/x"),
            (DATE, LM),
            (ETAG, r#""x""#),
            (EXPIRES, LATER),
            (LAST_MODIFIED, EARLIER),
            (VARY, "Cookie"),
            (VARY, "Accept"),
            (SET_COOKIE, "a=1"),
            (SET_COOKIE, "b=2"),
        ]);
        let out = not_modified_headers(&stored);
        assert!(!out.contains_key(CONTENT_TYPE));
        assert!(!out.contains_key(CONTENT_LANGUAGE));
        assert_eq!(out.len(), 10);
        assert_eq!(out[CACHE_CONTROL], "max-age=60");
        assert_eq!(out[CONTENT_LOCATION], "/x");
        assert_eq!(out[DATE], LM);
        assert_eq!(out[ETAG], r#""x""#);
        assert_eq!(out[EXPIRES], LATER);
        assert_eq!(out[LAST_MODIFIED], EARLIER);
        let vary: Vec<_> = out.get_all(VARY).iter().collect();
        assert_eq!(vary, ["Cookie", "Accept"]);
        let cookies: Vec<_> = out.get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
    }
}
