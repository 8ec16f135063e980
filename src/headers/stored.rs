//! [`StoredHeaders`]: a stored response's header fields, laid out so that a hit
//! copies them once and changes two values in place.
//!
//! Every hit adds `Age` and, by default, a `Cache-Status` entry. Appending them
//! to a copy of the stored map grows it (a reallocation, two hashed inserts),
//! and building a fresh map hashes every field again: either was a fifth of
//! the layer's cost of an in-memory hit. So the stored map already ends with
//! both fields as placeholders ("slots"), and a hit overwrites them in its copy.

use http::header::{AGE, CACHE_STATUS};
use http::{HeaderMap, HeaderValue};

/// The header fields of a stored response, with an `Age` slot and, when the
/// storing layer adds `Cache-Status`, a `Cache-Status` slot after any entries
/// the response brought.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredHeaders {
    map: HeaderMap,
    /// Whether the last `Cache-Status` value is this cache's slot.
    status_slot: bool,
}

/// What the slots hold until a hit overwrites them (never served: a hit
/// always writes both, or removes the status slot).
const SLOT: HeaderValue = HeaderValue::from_static("0");

impl StoredHeaders {
    /// Lays out a response's fields. Its own `Age` (already accounted for in
    /// the entry's initial age) becomes the slot.
    pub(crate) fn new(mut fields: HeaderMap, status_slot: bool) -> Self {
        let _ = fields.try_insert(AGE, SLOT);
        let status_slot = status_slot && fields.try_append(CACHE_STATUS, SLOT).is_ok();
        // Adding the slots grew the field array (doubling it); a clone's is
        // exactly as long as the fields, which is what every entry then keeps.
        Self {
            map: fields.clone(),
            status_slot,
        }
    }

    /// A layout read back from a byte backend, as it was written. Nothing here
    /// trusts it: [`StoredHeaders::to_response`] copes with missing slots.
    pub(crate) fn from_encoded(map: HeaderMap, status_slot: bool) -> Self {
        let status_slot = status_slot && map.contains_key(CACHE_STATUS);
        Self { map, status_slot }
    }

    /// The fields as stored, slots included (for reading validators, the
    /// 304's fields, the weight, and the envelope).
    pub(crate) fn as_map(&self) -> &HeaderMap {
        &self.map
    }

    /// Whether the last `Cache-Status` value is a slot (for the envelope).
    pub(crate) fn has_status_slot(&self) -> bool {
        self.status_slot
    }

    /// The response's own fields, without the slots (the start of a 304
    /// refresh, which lays them out again).
    pub(crate) fn fields(&self) -> HeaderMap {
        let mut fields = self.map.clone();
        fields.remove(AGE);
        if self.has_status_slot() {
            drop_last_status(&mut fields);
        }
        fields
    }

    /// The fields to send: a copy with `Age` and `Cache-Status` written into
    /// their slots (appended when a slot is missing; the status slot removed
    /// when this layer sends no `Cache-Status`).
    pub(crate) fn to_response(
        &self,
        age: HeaderValue,
        cache_status: Option<HeaderValue>,
    ) -> HeaderMap {
        if cache_status.is_none() && self.status_slot {
            // A layer that sends no `Cache-Status` serving what one that does
            // stored (a shared backend): no slot to fill.
            let mut headers = self.fields();
            let _ = headers.try_insert(AGE, age);
            return headers;
        }
        let mut headers = self.map.clone();
        let mut age = Some(age);
        // One pass to the slots near the end costs less than two hashed lookups.
        let mut status_slot = None;
        for (name, value) in &mut headers {
            if name == AGE {
                if let Some(age) = age.take() {
                    *value = age;
                }
            } else if name == CACHE_STATUS && self.status_slot {
                status_slot = Some(value);
            }
        }
        let unslotted = match (status_slot, cache_status) {
            (Some(slot), Some(value)) => {
                *slot = value;
                None
            }
            (_, value) => value,
        };
        if let Some(age) = age {
            let _ = headers.try_insert(AGE, age);
        }
        if let Some(value) = unslotted {
            let _ = headers.try_append(CACHE_STATUS, value);
        }
        headers
    }
}

/// Removes the last `Cache-Status` value, keeping the others in order.
fn drop_last_status(headers: &mut HeaderMap) {
    let mut values: Vec<HeaderValue> = headers.get_all(CACHE_STATUS).iter().cloned().collect();
    values.pop();
    headers.remove(CACHE_STATUS);
    for value in values {
        let _ = headers.try_append(CACHE_STATUS, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::CONTENT_TYPE;

    fn upstream() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        h.insert(AGE, HeaderValue::from_static("30"));
        h.append(CACHE_STATUS, HeaderValue::from_static("origin; hit"));
        h
    }

    fn values(h: &HeaderMap, name: http::HeaderName) -> Vec<&str> {
        h.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn a_hit_fills_both_slots_after_the_upstream_entries() {
        let stored = StoredHeaders::new(upstream(), true);
        let out = stored.to_response(
            HeaderValue::from_static("7"),
            Some(HeaderValue::from_static("tower-response-cache; hit")),
        );
        assert_eq!(values(&out, AGE), ["7"]);
        assert_eq!(
            values(&out, CACHE_STATUS),
            ["origin; hit", "tower-response-cache; hit"]
        );
        assert_eq!(values(&out, CONTENT_TYPE), ["text/plain"]);
    }

    #[test]
    fn the_status_slot_goes_when_the_layer_sends_no_status() {
        let stored = StoredHeaders::new(upstream(), true);
        let out = stored.to_response(HeaderValue::from_static("1"), None);
        assert_eq!(values(&out, CACHE_STATUS), ["origin; hit"]);
    }

    #[test]
    fn without_a_status_slot_the_status_is_appended() {
        let stored = StoredHeaders::new(upstream(), false);
        let out = stored.to_response(
            HeaderValue::from_static("1"),
            Some(HeaderValue::from_static("tower-response-cache; hit")),
        );
        assert_eq!(
            values(&out, CACHE_STATUS),
            ["origin; hit", "tower-response-cache; hit"]
        );
    }

    #[test]
    fn a_layout_missing_its_slots_still_gets_both_fields() {
        let stored = StoredHeaders::from_encoded(HeaderMap::new(), true);
        let out = stored.to_response(
            HeaderValue::from_static("2"),
            Some(HeaderValue::from_static("tower-response-cache; hit")),
        );
        assert_eq!(values(&out, AGE), ["2"]);
        assert_eq!(values(&out, CACHE_STATUS), ["tower-response-cache; hit"]);
    }

    #[test]
    fn fields_are_the_response_without_the_slots() {
        let stored = StoredHeaders::new(upstream(), true);
        let fields = stored.fields();
        assert!(fields.get(AGE).is_none());
        assert_eq!(values(&fields, CACHE_STATUS), ["origin; hit"]);
        assert_eq!(values(&fields, CONTENT_TYPE), ["text/plain"]);
    }
}
