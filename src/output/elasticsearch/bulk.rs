//! The `_bulk` request body: one action line and one source line per item.
//! Pure: no I/O. Each event's source is serialized once and kept, so a
//! retry of some items re-uses the bytes.

use std::io::Write;

use serde::Serialize;

use crate::event::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
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

/// One document ready to send.
#[derive(Debug, Clone)]
pub struct Item {
    pub index: String,
    pub id: Option<String>,
    /// The event's document as JSON (no `@metadata`).
    pub source: Vec<u8>,
}

impl Item {
    pub fn new(
        event: &Event,
        index: String,
        id: Option<String>,
    ) -> Result<Self, serde_json::Error> {
        let mut source = Vec::with_capacity(512);
        serde_json::to_writer(&mut source, &event.fields)?;
        Ok(Item { index, id, source })
    }

    /// Bytes this item adds to a request body.
    pub fn size(&self) -> usize {
        self.source.len() + self.index.len() + self.id.as_ref().map_or(0, String::len) + 48
    }
}

#[derive(Serialize)]
struct Meta<'a> {
    _index: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    _id: Option<&'a str>,
}

/// Appends the NDJSON lines of `items` to `body`.
pub fn encode<'a>(
    action: Action,
    items: impl IntoIterator<Item = &'a Item>,
    body: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    for item in items {
        write!(body, "{{\"{}\":", action.as_str()).map_err(serde_json::Error::io)?;
        serde_json::to_writer(
            &mut *body,
            &Meta {
                _index: &item.index,
                _id: item.id.as_deref(),
            },
        )?;
        body.extend_from_slice(b"}\n");
        body.extend_from_slice(&item.source);
        body.push(b'\n');
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn bodies_are_action_and_source_lines() {
        let mut event = Event::from_message("GET / \"quoted\"");
        event.metadata.insert("_id".into(), "never-indexed".into());
        let with_id =
            Item::new(&event, "httpd_access-2026.11.25".into(), Some("abc".into())).unwrap();
        let without = Item::new(&event, "i".into(), None).unwrap();
        let mut body = Vec::new();
        encode(Action::Create, [&with_id, &without], &mut body).unwrap();
        let text = String::from_utf8(body).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0],
            serde_json::json!({"create": {"_index": "httpd_access-2026.11.25", "_id": "abc"}})
        );
        assert_eq!(lines[1]["message"], "GET / \"quoted\"");
        assert!(lines[1].get("@metadata").is_none());
        assert_eq!(lines[2], serde_json::json!({"create": {"_index": "i"}}));
        assert!(text.ends_with('\n'));
    }
}
