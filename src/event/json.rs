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

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::value::{parse_canonical_time, Key, Map, Number, TimeText, Value};
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

/// Appends the Kafka message body of `event` to `out`: the bytes
/// [`KafkaMessage`] serializes to, written by [`write_value`].
pub fn write_kafka_message(event: &Event, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    out.push(b'{');
    if let Some(ts) = event.fields.get(TIMESTAMP) {
        write_str(out, TIMESTAMP);
        out.push(b':');
        write_value(out, ts);
        out.push(b',');
    }
    write_str(out, METADATA);
    out.extend_from_slice(b":{");
    let mut first = true;
    for (k, v) in [
        ("beat", "logpipe"),
        ("type", "_doc"),
        ("version", env!("CARGO_PKG_VERSION")),
    ] {
        if !event.metadata.contains_key(k) {
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(out, k);
            out.push(b':');
            write_str(out, v);
        }
    }
    for (k, v) in &event.metadata {
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(out, k);
        out.push(b':');
        write_value(out, v);
    }
    out.push(b'}');
    for (k, v) in &event.fields {
        if k.as_str() != TIMESTAMP {
            out.push(b',');
            write_str(out, k);
            out.push(b':');
            write_value(out, v);
        }
    }
    out.push(b'}');
    Ok(())
}

/// Appends an event's document (what Elasticsearch indexes) to `out`.
pub fn write_document(event: &Event, out: &mut Vec<u8>) {
    write_map(out, &event.fields);
}

/// Appends `value` as JSON: byte for byte what `serde_json` writes for it
/// (a test holds the two together), without going through a serializer.
/// Encoding is most of the ship half's own work, and most of that is
/// escaping the message, so strings are scanned eight bytes at a time.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Time(t) => {
            out.push(b'"');
            out.extend_from_slice(TimeText::new(t).as_str().as_bytes());
            out.push(b'"');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => write_map(out, map),
    }
}

/// Appends an object.
pub fn write_map(out: &mut Vec<u8>, map: &Map) {
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_value(out, v);
    }
    out.push(b'}');
}

fn write_number(out: &mut Vec<u8>, n: &Number) {
    if let Some(u) = n.as_u64() {
        out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
    } else if let Some(i) = n.as_i64() {
        out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
    } else {
        // Floats print as serde_json prints them (ryu, `1.0` for integral
        // ones); a `Number` never holds NaN or an infinity.
        use std::io::Write as _;
        let _ = write!(out, "{n}");
    }
}

/// What follows a backslash for each byte that JSON requires escaped (`u`:
/// `\u00XX`), 0 for bytes written as they are: serde_json's table.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Whether any of the eight bytes of `chunk` may need escaping: a control
/// character, `"` or `\\` (the usual "has a byte less than / equal to"
/// bit tricks; a false alarm only sends the chunk to the exact byte test).
fn may_need_escape(chunk: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let control = chunk.wrapping_sub(ONES * 0x20) & !chunk & HIGH;
    let quote = chunk ^ (ONES * u64::from(b'"'));
    let quote = quote.wrapping_sub(ONES) & !quote & HIGH;
    let backslash = chunk ^ (ONES * u64::from(b'\\'));
    let backslash = backslash.wrapping_sub(ONES) & !backslash & HIGH;
    (control | quote | backslash) != 0
}

/// Appends `text` as a JSON string.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !may_need_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let byte = bytes[i];
        let escape = ESCAPE[usize::from(byte)];
        if escape != 0 {
            out.extend_from_slice(&bytes[start..i]);
            out.push(b'\\');
            out.push(escape);
            if escape == b'u' {
                out.extend_from_slice(b"00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
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

    /// Strings with every kind of byte JSON escapes, at every position of an
    /// eight-byte chunk, and values of every shape.
    #[test]
    fn the_writer_writes_what_serde_json_writes() {
        let mut texts: Vec<String> = vec![
            String::new(),
            "plain ascii that is longer than a chunk".into(),
            "é ü 😀 — non-ASCII passes through".into(),
            "\u{7f} is not escaped".into(),
        ];
        for special in [
            '"', '\\', '\n', '\r', '\t', '\u{8}', '\u{c}', '\u{0}', '\u{1f}', '\u{1}',
        ] {
            for at in 0..17 {
                let mut s: String = "x".repeat(at);
                s.push(special);
                s.push_str("tail after");
                texts.push(s);
            }
        }
        let mut values: Vec<Value> = texts.iter().map(|t| Value::from(t.as_str())).collect();
        let json = serde_json::json!({
            "n": [0, -1, 18446744073709551615u64, -9223372036854775808i64, 1.5, 1e300, 0.1, -0.0, 100.0],
            "b": [true, false, null],
            "o": {"k": {"deep": ["a", {}]}, "": []},
        });
        values.push(Value::from(json));
        values.push(Value::Time(
            chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05.006Z")
                .unwrap()
                .with_timezone(&chrono::Utc),
        ));
        for value in &values {
            let mut ours = Vec::new();
            write_value(&mut ours, value);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(value).unwrap()
            );
        }
        let event = read_event(FILEBEAT.as_bytes()).unwrap();
        let mut ours = Vec::new();
        write_kafka_message(&event, &mut ours).unwrap();
        assert_eq!(ours, serde_json::to_vec(&KafkaMessage(&event)).unwrap());
        let mut bare = Event::from_message("m");
        bare.metadata.insert(crate::event::ID.into(), "id");
        let mut ours = Vec::new();
        write_kafka_message(&bare, &mut ours).unwrap();
        assert_eq!(ours, serde_json::to_vec(&KafkaMessage(&bare)).unwrap());
    }

    #[test]
    fn what_is_not_an_object_is_not_an_event() {
        for bytes in [&b"[1,2]"[..], b"\"x\"", b"{nope", b"", b"3"] {
            assert!(read_event(bytes).is_none(), "{bytes:?}");
        }
    }
}
