//! The event that flows through a pipeline, and the batch that carries events
//! between stages.
//!
//! An [`Event`] is a JSON object (the document that ends up in Elasticsearch)
//! plus `@metadata`, which travels with the event inside logpipe and inside the
//! Kafka hop (as Filebeat's Kafka output does) but is never indexed.
//! `@timestamp` and `tags` are ordinary fields, as in Logstash; the event
//! time is a native [`Value::Time`] from the moment it is set to the moment
//! an encoder writes it.
//!
//! - `value.rs`: [`Value`], [`Map`], [`Str`], the value type of events;
//! - `field.rs`: [`FieldRef`], the address of a value;
//! - `json.rs`: the one JSON codec (document, Kafka message, decoding);
//! - `line_id.rs`: the document id of a line Filebeat may have shipped too.

mod field;
pub mod json;
pub mod line_id;
mod value;

use chrono::{DateTime, Utc};

use crate::ack::AckToken;
pub use field::{FieldRef, Root, SyntaxError};
pub use value::{Map, Number, Str, TimeText, Value};

/// The field that holds the event time.
pub const TIMESTAMP: &str = "@timestamp";
/// The field that holds the list of tags.
pub const TAGS: &str = "tags";
/// The metadata key of the origin id, which becomes the Elasticsearch `_id`.
pub const ID: &str = "_id";

/// One log record on its way through a pipeline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    /// The document: what an output writes.
    pub fields: Map,
    /// `[@metadata]`: never written to Elasticsearch.
    pub metadata: Map,
}

impl Event {
    /// An event holding `message`, stamped with the current time.
    pub fn from_message(message: impl Into<String>) -> Self {
        let mut event = Event::default();
        event.set_timestamp(Utc::now());
        event
            .fields
            .insert(Str::new_inline("message"), Value::from(message.into()));
        event
    }

    /// The value a field reference points at.
    pub fn get(&self, field: &FieldRef) -> Option<&Value> {
        let (first, rest) = field.path().split_first()?;
        let mut value = self.root(field.root()).get(first)?;
        for key in rest {
            value = value.as_object()?.get(key)?;
        }
        Some(value)
    }

    /// Mutable access to a field, if it exists.
    pub fn get_mut(&mut self, field: &FieldRef) -> Option<&mut Value> {
        let (first, rest) = field.path().split_first()?;
        let mut value = self.root_mut(field.root()).get_mut(first)?;
        for key in rest {
            value = value.as_object_mut()?.get_mut(key)?;
        }
        Some(value)
    }

    /// Sets a field, creating the objects on its path. A non-object value in
    /// the way is replaced, as Logstash does.
    pub fn insert(&mut self, field: &FieldRef, value: impl Into<Value>) {
        let Some((last, parents)) = field.path().split_last() else {
            return;
        };
        let mut map = self.root_mut(field.root());
        for key in parents {
            let slot = map.get_or_insert_with(key, || Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            map = match slot {
                Value::Object(inner) => inner,
                // INVARIANT: the slot was made an object just above.
                _ => return,
            };
        }
        map.insert(last.clone(), value);
    }

    /// Removes a field and returns its value.
    pub fn remove(&mut self, field: &FieldRef) -> Option<Value> {
        let (last, parents) = field.path().split_last()?;
        let mut map = self.root_mut(field.root());
        for key in parents {
            map = map.get_mut(key)?.as_object_mut()?;
        }
        map.remove(last)
    }

    fn root(&self, root: Root) -> &Map {
        match root {
            Root::Fields => &self.fields,
            Root::Metadata => &self.metadata,
        }
    }

    fn root_mut(&mut self, root: Root) -> &mut Map {
        match root {
            Root::Fields => &mut self.fields,
            Root::Metadata => &mut self.metadata,
        }
    }

    /// The event time: `@timestamp` as a native time, or as a string in
    /// RFC 3339.
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        self.fields.get(TIMESTAMP)?.as_time()
    }

    /// Sets `@timestamp` to `time` at millisecond precision, the precision
    /// Filebeat and Logstash write it with, so that an event read back from
    /// its message is the event that was written.
    pub fn set_timestamp(&mut self, time: DateTime<Utc>) {
        self.fields
            .insert(Str::new_inline(TIMESTAMP), Value::Time(millis(time)));
    }

    /// Whether `tags` contains `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        match self.fields.get(TAGS) {
            Some(Value::Array(tags)) => tags.iter().any(|t| t.as_str() == Some(tag)),
            Some(Value::String(single)) => single.as_str() == tag,
            _ => false,
        }
    }

    /// Appends `tag` to `tags` unless it is there already.
    pub fn add_tag(&mut self, tag: &str) {
        if self.has_tag(tag) {
            return;
        }
        let slot = self
            .fields
            .get_or_insert_with(TAGS, || Value::Array(Vec::new()));
        match slot {
            Value::Array(tags) => tags.push(Value::from(tag)),
            other => {
                let previous = std::mem::take(other);
                *other = Value::Array(vec![previous, Value::from(tag)]);
            }
        }
    }

    /// Removes `tag` from `tags`.
    pub fn remove_tag(&mut self, tag: &str) {
        if let Some(Value::Array(tags)) = self.fields.get_mut(TAGS) {
            tags.retain(|t| t.as_str() != Some(tag));
        }
    }

    /// The origin id given at read time (`[@metadata][_id]`).
    pub fn id(&self) -> Option<&str> {
        self.metadata.get(ID)?.as_str()
    }
}

/// `time` cut to whole milliseconds.
pub fn millis(time: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    time.trunc_subsecs(3)
}

/// Events travelling together between two stages, with the token that tells
/// their source when they are delivered.
#[derive(Debug)]
pub struct Batch {
    pub events: Vec<Event>,
    pub ack: AckToken,
}

impl Batch {
    pub fn new(events: Vec<Event>, ack: AckToken) -> Self {
        Batch { events, ack }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(text: &str) -> FieldRef {
        FieldRef::parse(text).unwrap()
    }

    #[test]
    fn insert_creates_nested_objects_and_get_reads_them_back() {
        let mut event = Event::default();
        event.insert(&field("[log][file][path]"), "/var/log/x");
        assert_eq!(
            event.fields,
            *json!({"log": {"file": {"path": "/var/log/x"}}})
                .as_object()
                .unwrap()
        );
        assert_eq!(
            event.get(&field("[log][file][path]")),
            Some(&Value::from("/var/log/x"))
        );
        assert_eq!(event.get(&field("[log][nope]")), None);
    }

    #[test]
    fn metadata_is_kept_apart_from_the_document() {
        let mut event = Event::from_message("hello");
        event.insert(&field("[@metadata][_id]"), json!("abc"));
        assert_eq!(event.id(), Some("abc"));
        assert!(!event.fields.contains_key("@metadata"));
        assert_eq!(
            event.remove(&field("[@metadata][_id]")),
            Some(Value::from("abc"))
        );
        assert_eq!(event.id(), None);
    }

    #[test]
    fn insert_replaces_a_scalar_in_the_way() {
        let mut event = Event::default();
        event.insert(&field("a"), json!(1));
        event.insert(&field("[a][b]"), json!(2));
        assert_eq!(event.get(&field("[a][b]")), Some(&Value::from(2)));
    }

    #[test]
    fn tags_are_a_set_in_order() {
        let mut event = Event::default();
        event.add_tag("b");
        event.add_tag("a");
        event.add_tag("b");
        assert_eq!(event.fields["tags"], json!(["b", "a"]));
        assert!(event.has_tag("a"));
        event.remove_tag("b");
        assert_eq!(event.fields["tags"], json!(["a"]));
    }

    #[test]
    fn timestamp_round_trips_with_millisecond_precision() {
        let mut event = Event::default();
        let time = DateTime::parse_from_rfc3339("2026-11-25T23:59:59.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        event.set_timestamp(time);
        assert_eq!(
            event.fields["@timestamp"],
            json!("2026-11-25T23:59:59.123Z")
        );
        assert_eq!(
            event.timestamp().unwrap().timestamp_millis(),
            time.timestamp_millis()
        );
    }
}
