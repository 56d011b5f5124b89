//! Kafka message bodies in the shape Filebeat's Kafka output writes: the
//! event's fields plus `@metadata` (beat, type, version, and logpipe's origin
//! `_id`). A Logstash indexer reading the topic keeps working, and the index
//! half reads Filebeat-produced messages too.

use super::Codec;
use crate::event::json::{read_event, write_kafka_message};
use crate::event::{line_id, Event, Map, Value, ID};

/// Appends the JSON body of `event` to `out`.
pub fn encode_into(event: &Event, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    write_kafka_message(event, out)
}

/// The event a message produced by [`encode_into`] holds: for a message
/// the broker refused after it left, so that the dead letter shows it.
pub fn decode_sent(payload: &[u8]) -> Event {
    read_event(payload).unwrap_or_else(|| Event::from_message(String::from_utf8_lossy(payload)))
}

/// Where a record came from, for ids and `decorate_events`.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub timestamp: Option<i64>,
}

/// Turns a record into an event. A record that is not a JSON object under
/// the json codec keeps its raw text in `message` and is tagged
/// `_jsonparsefailure`; nothing is dropped.
pub fn decode(payload: Option<&[u8]>, origin: &Origin<'_>, codec: Codec, decorate: bool) -> Event {
    let bytes = payload.unwrap_or_default();
    let mut event = match codec {
        Codec::Json => match read_event(bytes) {
            Some(mut event) => {
                if event.timestamp().is_none() {
                    event.set_timestamp(chrono::Utc::now());
                }
                event
            }
            None => {
                let mut event = Event::from_message(String::from_utf8_lossy(bytes));
                event.add_tag("_jsonparsefailure");
                event
            }
        },
        Codec::Plain => Event::from_message(String::from_utf8_lossy(bytes)),
    };
    if !matches!(event.metadata.get(ID), Some(Value::String(id)) if !id.is_empty()) {
        // A message with no id of its own (Filebeat's): one that names its
        // line gets the line's id, so Filebeat's re-sends and the lines
        // logpipe read again after a cutover are one document; any other,
        // its place in the topic, so a replay of the topic is one.
        let id = match line_id::of_filebeat_event(&event) {
            Some(id) => Value::String(id),
            None => format!("{}-{}-{}", origin.topic, origin.partition, origin.offset).into(),
        };
        event.metadata.insert(ID.into(), id);
    }
    if decorate {
        let mut kafka = Map::with_capacity(5);
        kafka.push_new("topic".into(), origin.topic);
        kafka.push_new("partition".into(), origin.partition);
        kafka.push_new("offset".into(), origin.offset);
        kafka.push_new(
            "key".into(),
            origin.key.map_or(Value::Null, |k| {
                Value::from(String::from_utf8_lossy(k).as_ref())
            }),
        );
        kafka.push_new(
            "timestamp".into(),
            origin.timestamp.map_or(Value::Null, Value::from),
        );
        event.metadata.insert("kafka".into(), kafka);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_sent_body_decodes_back_to_its_event() {
        let mut event = Event::from_message("GET / HTTP/1.1");
        event.metadata.insert(ID.into(), "abc");
        event.add_tag("httpd_access");
        let mut body = Vec::new();
        encode_into(&event, &mut body).unwrap();
        let back = decode_sent(&body);
        assert_eq!(back.fields, event.fields);
        assert_eq!(back.id(), Some("abc"));
        assert_eq!(decode_sent(b"not json").fields["message"], "not json");
    }

    fn origin() -> Origin<'static> {
        Origin {
            topic: "httpd",
            partition: 2,
            offset: 41,
            key: Some(b"k"),
            timestamp: Some(1_700_000_000_000),
        }
    }

    #[test]
    fn encoded_events_look_like_filebeat_and_round_trip() {
        let mut event = Event::from_message("GET /");
        event.metadata.insert("_id".into(), "abc");
        event.add_tag("httpd_access");
        let mut body = Vec::new();
        encode_into(&event, &mut body).unwrap();
        let wire: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(wire["@metadata"]["beat"], "logpipe");
        assert_eq!(wire["@metadata"]["type"], "_doc");
        assert_eq!(wire["@metadata"]["_id"], "abc");
        assert_eq!(wire["message"], "GET /");
        let back = decode(Some(&body), &origin(), Codec::Json, false);
        assert_eq!(back.fields, event.fields);
        assert_eq!(back.id(), Some("abc"));
    }

    #[test]
    fn filebeat_messages_without_an_id_get_kafka_coordinates() {
        let body = br#"{"@timestamp":"2026-01-01T00:00:00.000Z","@metadata":{"beat":"filebeat","type":"_doc"},"message":"x","tags":["httpd_access"]}"#;
        let event = decode(Some(body), &origin(), Codec::Json, false);
        assert_eq!(event.id(), Some("httpd-2-41"));
        assert!(event.has_tag("httpd_access"));
        assert_eq!(event.metadata["beat"], "filebeat");
    }

    #[test]
    fn filebeat_messages_that_name_their_line_get_the_lines_id() {
        let body = br#"{"@timestamp":"2026-01-01T00:00:00.000Z","@metadata":{"beat":"filebeat","type":"_doc"},"host":{"name":"web1"},"log":{"file":{"path":"/var/log/httpd/access_log"},"offset":120},"message":"x"}"#;
        let event = decode(Some(body), &origin(), Codec::Json, false);
        let expected = line_id::filebeat_line_id("web1", "/var/log/httpd/access_log", 120, "x");
        assert_eq!(event.id(), Some(expected.as_str()));
        // The same line in another record (a re-send): the same id.
        let resent = Origin {
            offset: 977,
            ..origin()
        };
        assert_eq!(
            decode(Some(body), &resent, Codec::Json, false).id(),
            event.id()
        );
    }

    #[test]
    fn non_json_records_are_kept_and_tagged() {
        let event = decode(Some(b"plain text \xff"), &origin(), Codec::Json, false);
        assert_eq!(event.fields["message"], "plain text \u{fffd}");
        assert!(event.has_tag("_jsonparsefailure"));
        assert!(event.timestamp().is_some());
        let array = decode(Some(b"[1,2]"), &origin(), Codec::Json, false);
        assert!(array.has_tag("_jsonparsefailure"));
    }

    #[test]
    fn decorate_events_adds_kafka_metadata() {
        let event = decode(Some(b"hi"), &origin(), Codec::Plain, true);
        assert_eq!(
            event.metadata["kafka"],
            json!({"topic": "httpd", "partition": 2, "offset": 41, "key": "k", "timestamp": 1_700_000_000_000i64})
        );
        assert!(!event.has_tag("_jsonparsefailure"));
    }
}
