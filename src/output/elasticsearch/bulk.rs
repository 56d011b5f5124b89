//! The `_bulk` request body: one action line and one source line per item.
//! Pure: no I/O.
//!
//! Items are serialized once, straight into the body of the request being
//! filled (a buffer reused from request to request); [`Body::starts`] keeps
//! where each item begins, so a retry of some items copies their bytes
//! instead of serializing the events again.

use serde::Deserialize;

use crate::event::json::write;
use crate::event::Map;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Fails with 409 when the id exists: a replay is detected, not repeated.
    Create,
    /// Overwrites a document with the same id.
    Index,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Index => "index",
        }
    }
}

#[derive(Deserialize)]
struct ActionLine {
    #[serde(alias = "index")]
    create: MetaOwned,
}

#[derive(Deserialize)]
struct MetaOwned {
    _index: String,
}

/// The NDJSON body of one bulk request, item by item.
#[derive(Debug, Default)]
pub struct Body {
    pub bytes: Vec<u8>,
    /// Where each item's action line starts in `bytes`.
    pub starts: Vec<usize>,
}

impl Body {
    /// An empty body that keeps the capacity of `bytes` and `starts`.
    pub fn reuse(mut bytes: Vec<u8>, mut starts: Vec<usize>) -> Self {
        bytes.clear();
        starts.clear();
        Body { bytes, starts }
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Appends one item. On error the body is left as it was.
    pub fn push(
        &mut self,
        action: Action,
        index: &str,
        id: Option<&str>,
        source: &Map,
    ) -> Result<(), serde_json::Error> {
        let start = self.bytes.len();
        let result = encode_item(action, index, id, source, &mut self.bytes);
        match result {
            Ok(()) => {
                self.starts.push(start);
                Ok(())
            }
            Err(e) => {
                self.bytes.truncate(start);
                Err(e)
            }
        }
    }

    /// The bytes of item `i` (action and source lines).
    pub fn item(&self, i: usize) -> &[u8] {
        let start = self.starts.get(i).copied().unwrap_or(self.bytes.len());
        let end = self.starts.get(i + 1).copied().unwrap_or(self.bytes.len());
        self.bytes.get(start..end).unwrap_or_default()
    }

    /// Writes the items `todo` (indices into this body) into `out`, cleared
    /// first: the body of a retry.
    pub fn select(&self, todo: &[usize], out: &mut Vec<u8>) {
        out.clear();
        for &i in todo {
            out.extend_from_slice(self.item(i));
        }
    }

    /// The index item `i` was sent to, read back from its action line (only
    /// needed for the rare dead letter, so it is not stored per item).
    pub fn index_of(&self, i: usize) -> Option<String> {
        let item = self.item(i);
        let line = item.split(|&b| b == b'\n').next()?;
        serde_json::from_slice::<ActionLine>(line)
            .ok()
            .map(|a| a.create._index)
    }
}

/// Appends one item's two lines to `body`, written straight from the
/// event (the event codec's writer: the bytes `serde_json` would write).
pub fn encode_item(
    action: Action,
    index: &str,
    id: Option<&str>,
    source: &Map,
    body: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    body.extend_from_slice(b"{\"");
    body.extend_from_slice(action.as_str().as_bytes());
    body.extend_from_slice(b"\":{\"_index\":");
    write::write_str(index, body);
    if let Some(id) = id {
        body.extend_from_slice(b",\"_id\":");
        write::write_str(id, body);
    }
    body.extend_from_slice(b"}}\n");
    write::write_map(source, body);
    body.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use serde_json::{json, Value};

    fn lines(bytes: &[u8]) -> Vec<Value> {
        std::str::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn items_are_an_action_line_and_a_source_line() {
        let mut event = Event::from_message("GET / \"quoted\"");
        event.metadata.insert("_id".into(), "never-indexed");
        let cases: &[(Action, &str, Option<&str>, Value)] = &[
            (
                Action::Create,
                "httpd_access-2026.11.25",
                Some("abc"),
                json!({"create": {"_index": "httpd_access-2026.11.25", "_id": "abc"}}),
            ),
            (
                Action::Create,
                "i",
                None,
                json!({"create": {"_index": "i"}}),
            ),
            (
                Action::Index,
                "i\"x",
                Some("1"),
                json!({"index": {"_index": "i\"x", "_id": "1"}}),
            ),
        ];
        for (action, index, id, want) in cases {
            let mut body = Body::default();
            body.push(*action, index, *id, &event.fields).unwrap();
            let got = lines(&body.bytes);
            assert_eq!(got.len(), 2);
            assert_eq!(&got[0], want);
            assert_eq!(got[1]["message"], "GET / \"quoted\"");
            assert!(got[1].get("@metadata").is_none(), "metadata is never sent");
            assert!(body.bytes.ends_with(b"\n"));
            assert_eq!(body.index_of(0).as_deref(), Some(*index));
        }
    }

    #[test]
    fn a_retry_body_holds_exactly_the_chosen_items_in_order() {
        let mut body = Body::default();
        for i in 0..5 {
            let mut fields = Map::new();
            fields.insert("n".into(), json!(i));
            body.push(Action::Create, &format!("idx-{i}"), None, &fields)
                .unwrap();
        }
        let cases: &[(&[usize], &[i64])] = &[(&[], &[]), (&[4], &[4]), (&[0, 2, 3], &[0, 2, 3])];
        let mut out = vec![b'x'; 3];
        for (todo, want) in cases {
            body.select(todo, &mut out);
            let got: Vec<i64> = lines(&out)
                .iter()
                .filter_map(|v| v.get("n").and_then(Value::as_i64))
                .collect();
            assert_eq!(&got, want);
        }
        assert_eq!(body.index_of(3).as_deref(), Some("idx-3"));
        assert_eq!(body.index_of(9), None);
    }

    #[test]
    fn a_reused_body_starts_empty_but_keeps_its_capacity() {
        let mut body = Body::default();
        body.push(Action::Create, "i", None, &Map::new()).unwrap();
        let capacity = body.bytes.capacity();
        let body = Body::reuse(body.bytes, body.starts);
        assert!(body.is_empty());
        assert!(body.bytes.is_empty());
        assert_eq!(body.bytes.capacity(), capacity);
    }
}
