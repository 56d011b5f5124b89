//! The event made of one line (or one multiline record): Filebeat's field
//! names, so a Logstash tier reading the same topic sees familiar ones, and
//! the origin id in `[@metadata][_id]`.

use serde_json::{Map, Value};

use super::fingerprint;
use super::reader::Line;
use super::FileInput;
use crate::event::{Event, ID};

/// What is the same for every line of one batch.
pub struct LineOrigin<'a> {
    pub input: &'a FileInput,
    /// The file's stable identity (origin ids derive from it).
    pub identity: &'a str,
    pub path: &'a str,
    /// Read time, already formatted.
    pub read_time: &'a str,
}

impl LineOrigin<'_> {
    pub fn event(&self, line: Line) -> Event {
        let host = crate::host::name();
        let mut fields = Map::with_capacity(10);
        fields.insert(
            "@timestamp".into(),
            Value::String(self.read_time.to_owned()),
        );
        fields.insert("message".into(), Value::String(line.text));
        let mut tags: Vec<Value> = self
            .input
            .tags
            .iter()
            .map(|t| Value::String(t.clone()))
            .collect();
        let mut flags = Vec::new();
        if line.multiline {
            flags.push(Value::String("multiline".into()));
        }
        if line.truncated {
            tags.push(Value::String("_truncated".into()));
            flags.push(Value::String("truncated".into()));
        }
        if line.invalid_utf8 {
            tags.push(Value::String("_invalid_utf8".into()));
        }
        if !tags.is_empty() {
            fields.insert("tags".into(), Value::Array(tags));
        }
        if let Some(extra) = &self.input.fields {
            fields.insert("fields".into(), Value::Object(extra.clone()));
        }
        fields.insert(
            "host".into(),
            object([("name", Value::String(host.to_owned()))]),
        );
        let mut log = Map::new();
        log.insert(
            "file".into(),
            object([("path", Value::String(self.path.to_owned()))]),
        );
        log.insert("offset".into(), Value::from(line.offset));
        if !flags.is_empty() {
            log.insert("flags".into(), Value::Array(flags));
        }
        fields.insert("log".into(), Value::Object(log));
        fields.insert(
            "input".into(),
            object([("type", Value::String("log".into()))]),
        );
        fields.insert(
            "event".into(),
            object([(
                "timezone",
                Value::String(crate::host::timezone().to_owned()),
            )]),
        );
        fields.insert(
            "agent".into(),
            object([
                ("type", Value::String("logpipe".into())),
                ("version", Value::String(env!("CARGO_PKG_VERSION").into())),
            ]),
        );
        let mut metadata = Map::new();
        metadata.insert(
            ID.into(),
            Value::String(fingerprint::origin_id(host, self.identity, line.offset)),
        );
        Event { fields, metadata }
    }
}

fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}
