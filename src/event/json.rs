//! The one JSON codec of events. Every place that writes or reads an event
//! as JSON goes through here:
//!
//! - [`Document`]: the document alone, as Elasticsearch indexes it;
//! - [`WithMetadata`]: the document with `@metadata` last (stdout, the
//!   `event` of a dead-letter record);
//! - [`KafkaMessage`]: the shape Filebeat's Kafka output writes,
//!   `@timestamp` first, then `@metadata` (beat, type, version, the origin
//!   `_id`), then the other fields;
//! - `Deserialize for Event`: bytes straight into an event, `@metadata`
//!   routed to its own map and a Filebeat-form `@timestamp` read once into a
//!   native time, with no intermediate tree.
//!
//! The bytes are what `serde_json` wrote for the same document before this
//! codec existed, so older logpipe versions, Filebeat and Logstash keep
//! reading each other's messages.

pub mod write;

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::value::{parse_canonical_time, Key, Map, Value};
use super::{Event, TIMESTAMP};

/// The key under which metadata travels inside a message or record.
pub const METADATA: &str = "@metadata";

/// An event's document alone.
pub struct Document<'a>(pub &'a Event);

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.fields.serialize(serializer)
    }
}

/// An event's document with `[@metadata]` as its last key.
pub struct WithMetadata<'a>(pub &'a Event);

impl Serialize for WithMetadata<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.0;
        let mut map = serializer.serialize_map(Some(event.fields.len() + 1))?;
        for (k, v) in &event.fields {
            if k.as_str() != METADATA {
                map.serialize_entry(k.as_str(), v)?;
            }
        }
        map.serialize_entry(METADATA, &event.metadata)?;
        map.end()
    }
}

/// An event as a Kafka message body in Filebeat's shape.
pub struct KafkaMessage<'a>(pub &'a Event);

impl Serialize for KafkaMessage<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.0;
        let mut map = serializer.serialize_map(Some(event.fields.len() + 1))?;
        if let Some(ts) = event.fields.get(TIMESTAMP) {
            map.serialize_entry(TIMESTAMP, ts)?;
        }
        map.serialize_entry(METADATA, &BeatMetadata(&event.metadata))?;
        for (k, v) in &event.fields {
            if k.as_str() != TIMESTAMP {
                map.serialize_entry(k.as_str(), v)?;
            }
        }
        map.end()
    }
}

/// `@metadata` with the keys Filebeat always writes, unless the event has
/// its own.
struct BeatMetadata<'a>(&'a Map);

impl Serialize for BeatMetadata<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (k, v) in [
            ("beat", "logpipe"),
            ("type", "_doc"),
            ("version", env!("CARGO_PKG_VERSION")),
        ] {
            if !self.0.contains_key(k) {
                map.serialize_entry(k, v)?;
            }
        }
        for (k, v) in self.0 {
            map.serialize_entry(k.as_str(), v)?;
        }
        map.end()
    }
}

/// Appends the Kafka message body of `event` to `out`.
/// Written straight from the event ([`write`]); the bytes are those
/// `serde_json` writes for [`KafkaMessage`] (a test holds them equal).
pub fn write_kafka_message(event: &Event, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    out.push(b'{');
    let mut first = true;
    if let Some(ts) = event.fields.get(TIMESTAMP) {
        write::write_entry(&mut first, TIMESTAMP, ts, out);
    }
    if !first {
        out.push(b',');
    }
    first = false;
    write::write_str(METADATA, out);
    out.extend_from_slice(b":{");
    let mut meta_first = true;
    for (k, v) in [
        ("beat", "logpipe"),
        ("type", "_doc"),
        ("version", env!("CARGO_PKG_VERSION")),
    ] {
        if !event.metadata.contains_key(k) {
            if !std::mem::take(&mut meta_first) {
                out.push(b',');
            }
            write::write_str(k, out);
            out.push(b':');
            write::write_str(v, out);
        }
    }
    for (k, v) in &event.metadata {
        write::write_entry(&mut meta_first, k.as_str(), v, out);
    }
    out.push(b'}');
    for (k, v) in &event.fields {
        if k.as_str() != TIMESTAMP {
            write::write_entry(&mut first, k.as_str(), v, out);
        }
    }
    out.push(b'}');
    Ok(())
}

/// The event of a JSON object (a Kafka message, a dead letter's `event`);
/// `None` when the bytes are not one.
pub fn read_event(bytes: &[u8]) -> Option<Event> {
    serde_json::from_slice::<Event>(bytes).ok()
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Event, A::Error> {
        let mut fields = Map::with_capacity(12);
        let mut metadata = Map::new();
        while let Some(Key(key)) = access.next_key()? {
            match key.as_str() {
                METADATA => match access.next_value::<Value>()? {
                    Value::Object(m) => metadata = m,
                    // A non-object `@metadata` is not metadata logpipe can
                    // route by; it is dropped, as before this codec.
                    _ => metadata = Map::new(),
                },
                TIMESTAMP => {
                    let value = match access.next_value::<Value>()? {
                        Value::String(s) => match parse_canonical_time(&s) {
                            Some(t) => Value::Time(t),
                            None => Value::String(s),
                        },
                        other => other,
                    };
                    fields.insert(key, value);
                }
                _ => {
                    let value: Value = access.next_value()?;
                    fields.insert(key, value);
                }
            }
        }
        Ok(Event { fields, metadata })
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Event, D::Error> {
        d.deserialize_map(EventVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ID;

    /// A message as Filebeat 8 writes it to Kafka (key order included).
    const FILEBEAT: &str = r#"{"@timestamp":"2026-11-25T23:59:59.123Z","@metadata":{"beat":"filebeat","type":"_doc","version":"8.15.0","_id":"abc"},"message":"203.0.113.9 - - [25/Nov/2026:23:59:59 +0000] \"GET /a?b=c HTTP/1.1\" 200 12 \"-\" \"curl/8\"","tags":["httpd_access"],"log":{"offset":1234,"file":{"path":"/var/log/httpd/access_log"}},"input":{"type":"log"},"host":{"name":"web-1"},"agent":{"type":"filebeat","version":"8.15.0"},"ecs":{"version":"8.0.0"},"fields":{"n":1.5,"big":18446744073709551615,"neg":-2,"flag":true,"none":null}}"#;

    #[test]
    fn a_filebeat_message_reads_and_writes_back_byte_for_byte() {
        let event = read_event(FILEBEAT.as_bytes()).unwrap();
        assert!(matches!(event.fields.get(TIMESTAMP), Some(Value::Time(_))));
        assert_eq!(event.id(), Some("abc"));
        assert!(!event.fields.contains_key(METADATA));
        let mut out = Vec::new();
        write_kafka_message(&event, &mut out).unwrap();
        assert_eq!(std::str::from_utf8(&out).unwrap(), FILEBEAT);
    }

    #[test]
    fn a_timestamp_in_another_form_stays_its_text() {
        let text = r#"{"@timestamp":"2026-11-25T23:59:59+01:00","message":"x"}"#;
        let event = read_event(text.as_bytes()).unwrap();
        assert!(matches!(
            event.fields.get(TIMESTAMP),
            Some(Value::String(_))
        ));
        assert_eq!(
            event.timestamp().unwrap().to_rfc3339(),
            "2026-11-25T22:59:59+00:00"
        );
        let mut out = Vec::new();
        serde_json::to_writer(&mut out, &Document(&event)).unwrap();
        assert_eq!(std::str::from_utf8(&out).unwrap(), text);
    }

    #[test]
    fn metadata_goes_last_when_shown_and_never_into_the_document() {
        let mut event = Event::default();
        event.fields.insert("message".into(), "m");
        event.metadata.insert(ID.into(), "abc");
        assert_eq!(
            serde_json::to_string(&WithMetadata(&event)).unwrap(),
            r#"{"message":"m","@metadata":{"_id":"abc"}}"#
        );
        assert_eq!(
            serde_json::to_string(&Document(&event)).unwrap(),
            r#"{"message":"m"}"#
        );
    }

    #[test]
    fn what_is_not_an_object_is_not_an_event() {
        for bytes in [&b"[1,2]"[..], b"\"x\"", b"{nope", b"", b"3"] {
            assert!(read_event(bytes).is_none(), "{bytes:?}");
        }
    }
}
