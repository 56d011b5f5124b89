//! Classifying `_bulk` responses, item by item. Pure: no I/O.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

/// What to do with one item after a bulk request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Indexed,
    /// `create` found the id already indexed: a replay, counted as done.
    AlreadyIndexed,
    /// Worth retrying (429, 5xx, rejected execution).
    Retry(String),
    /// Will fail again however often it is sent: dead-letter it.
    Reject {
        status: u16,
        error_type: String,
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
struct BulkResponse {
    #[serde(default)]
    items: Vec<Entry>,
}

/// `{"create": {…}}`: the one value of a one-key object, read straight into
/// [`Item`] (no intermediate `Value`: this runs once per document).
#[derive(Debug)]
struct Entry(Item);

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entry;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a bulk response item such as {\"create\": {\"status\": 201}}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
                let (_, item) = map
                    .next_entry::<IgnoredAny, Item>()?
                    .ok_or_else(|| de::Error::custom("empty bulk response item"))?;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Entry(item))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Deserialize)]
struct Item {
    status: u16,
    #[serde(default)]
    error: Option<Value>,
}

/// Parses a 200 response to `_bulk` into one outcome per item sent.
pub fn classify(body: &[u8], sent: usize) -> Result<Vec<Outcome>, String> {
    let response: BulkResponse =
        serde_json::from_slice(body).map_err(|e| format!("unreadable bulk response: {e}"))?;
    if response.items.len() != sent {
        return Err(format!(
            "bulk response has {} items for {sent} sent",
            response.items.len()
        ));
    }
    Ok(response
        .items
        .into_iter()
        .map(|Entry(item)| outcome(item.status, item.error.as_ref()))
        .collect())
}

/// The outcome of one item from its status and error.
pub fn outcome(status: u16, error: Option<&Value>) -> Outcome {
    let error_type = error
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let reason = error
        .map(|e| {
            let mut reason = e
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if let Some(cause) = e
                .get("caused_by")
                .and_then(|c| c.get("reason"))
                .and_then(Value::as_str)
            {
                reason = format!("{reason}: {cause}");
            }
            reason
        })
        .unwrap_or_default();
    match status {
        200..=299 => Outcome::Indexed,
        409 => Outcome::AlreadyIndexed,
        429 => Outcome::Retry(format!("429 {error_type}")),
        // Elasticsearch's name, and OpenSearch's (it dropped the `es_`)
        _ if error_type == "es_rejected_execution_exception"
            || error_type == "rejected_execution_exception" =>
        {
            Outcome::Retry(error_type)
        }
        500..=599 => Outcome::Retry(format!("{status} {error_type}")),
        _ => Outcome::Reject {
            status,
            error_type,
            reason,
        },
    }
}

/// Whether a whole-request HTTP status is worth retrying on another host.
/// Whether a whole-request failure is about the request's content, so that
/// its halves are sent instead (down to one item, which is dead-lettered):
/// 413, the body is over `http.max_content_length`; 400, the body could not
/// be read. 401, 403 and 404 are about the setup: those requests are held
/// and retried until it is fixed.
pub fn split_request(status: u16) -> bool {
    matches!(status, 400 | 413)
}

pub fn retry_request(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_item_gets_an_outcome() {
        let body = json!({"took": 3, "errors": true, "items": [
            {"create": {"_index": "a", "status": 201}},
            {"create": {"_index": "a", "status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "exists"}}},
            {"create": {"_index": "a", "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "busy"}}},
            {"create": {"_index": "a", "status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [status]", "caused_by": {"type": "x", "reason": "For input string: \"abc\""}}}},
            {"index": {"_index": "a", "status": 503, "error": {"type": "unavailable_shards_exception"}}},
            {"create": {"_index": "a", "status": 400, "error": {"type": "es_rejected_execution_exception"}}},
            {"create": {"_index": "a", "status": 400, "error": {"type": "rejected_execution_exception"}}}
        ]});
        let outcomes = classify(body.to_string().as_bytes(), 7).unwrap();
        assert_eq!(outcomes[0], Outcome::Indexed);
        assert_eq!(outcomes[1], Outcome::AlreadyIndexed);
        assert!(matches!(outcomes[2], Outcome::Retry(_)));
        assert_eq!(
            outcomes[3],
            Outcome::Reject {
                status: 400,
                error_type: "mapper_parsing_exception".into(),
                reason: "failed to parse field [status]: For input string: \"abc\"".into()
            }
        );
        assert!(matches!(outcomes[4], Outcome::Retry(_)));
        assert!(matches!(outcomes[5], Outcome::Retry(_)));
        assert!(
            matches!(outcomes[6], Outcome::Retry(_)),
            "OpenSearch's name"
        );
    }

    #[test]
    fn a_response_that_does_not_match_the_request_is_an_error() {
        let body = json!({"errors": false, "items": [{"create": {"status": 201}}]});
        assert!(classify(body.to_string().as_bytes(), 2).is_err());
        assert!(classify(b"<html>", 1).is_err());
        assert!(classify(br#"{"items": [{}]}"#, 1).is_err(), "empty item");
        assert!(
            classify(br#"{"items": [{"create": {}}]}"#, 1).is_err(),
            "no status"
        );
    }

    #[test]
    fn whole_request_statuses_worth_retrying() {
        for s in [429, 502, 503, 504] {
            assert!(retry_request(s));
        }
        for s in [400, 401, 403, 404, 413] {
            assert!(!retry_request(s));
        }
    }
}
