//! The event made of one line (or one multiline record): Filebeat's field
//! names, so a Logstash tier reading the same topic sees familiar ones, and
//! the origin id in `[@metadata][_id]` (for a file taken over from Filebeat,
//! the id Filebeat's message of the line gets at the index half).
//!
//! What is the same for every line of a batch (host, agent, input, the
//! input's tags and fields, the file's path, the read time) is built once
//! per batch in [`LineOrigin::new`]; a line then costs its message, its
//! origin id and the small objects that hold them.

use chrono::{DateTime, Utc};

use super::fingerprint;
use super::reader::Line;
use super::registry::FilebeatIds;
use super::FileInput;
use crate::event::{line_id, Event, Map, Str, Value, ID};

/// What is the same for every line of one batch, built once.
pub struct LineOrigin<'a> {
    /// The file's stable identity (origin ids derive from it).
    identity: &'a str,
    /// For a file taken over from Filebeat: the host and path its line ids
    /// derive from instead.
    filebeat_ids: Option<&'a FilebeatIds>,
    host: &'static str,
    read_time: DateTime<Utc>,
    path: Str,
    tags: Vec<Value>,
    fields: Option<Value>,
    host_object: Value,
    input_object: Value,
    event_object: Value,
    agent_object: Value,
}

fn object<const N: usize>(pairs: [(&'static str, Value); N]) -> Value {
    let mut map = Map::with_capacity(N);
    for (k, v) in pairs {
        map.push_new(Str::new_static(k), v);
    }
    Value::Object(map)
}

impl<'a> LineOrigin<'a> {
    pub fn new(
        input: &FileInput,
        identity: &'a str,
        filebeat_ids: Option<&'a FilebeatIds>,
        path: &str,
        read_time: DateTime<Utc>,
    ) -> Self {
        let host = crate::host::name();
        LineOrigin {
            identity,
            filebeat_ids,
            host,
            read_time: crate::event::millis(read_time),
            path: Str::new(path),
            tags: input.tags.iter().map(Value::from).collect(),
            fields: input.fields.clone().map(Value::Object),
            host_object: object([("name", Value::from(host))]),
            input_object: object([("type", Value::from("log"))]),
            event_object: object([("timezone", Value::from(crate::host::timezone()))]),
            agent_object: object([
                ("type", Value::from("logpipe")),
                ("version", Value::from(env!("CARGO_PKG_VERSION"))),
            ]),
        }
    }

    pub fn event(&self, line: Line) -> Event {
        let id = match self.filebeat_ids {
            None => fingerprint::origin_id(self.host, self.identity, line.offset),
            Some(ids) => line_id::filebeat_line_id(&ids.host, &ids.path, line.offset, &line.text),
        };
        let mut fields = Map::with_capacity(9);
        fields.push_new(Str::new_static("@timestamp"), Value::Time(self.read_time));
        fields.push_new(Str::new_static("message"), Value::from(line.text));
        let mut flags = Vec::new();
        if line.multiline {
            flags.push(Value::from("multiline"));
        }
        let mut extra_tags = Vec::new();
        if line.truncated {
            extra_tags.push(Value::from("_truncated"));
            flags.push(Value::from("truncated"));
        }
        if line.invalid_utf8 {
            extra_tags.push(Value::from("_invalid_utf8"));
        }
        if !self.tags.is_empty() || !extra_tags.is_empty() {
            let mut tags = Vec::with_capacity(self.tags.len() + extra_tags.len());
            tags.extend(self.tags.iter().cloned());
            tags.extend(extra_tags);
            fields.push_new(Str::new_static("tags"), Value::Array(tags));
        }
        if let Some(extra) = &self.fields {
            fields.push_new(Str::new_static("fields"), extra.clone());
        }
        fields.push_new(Str::new_static("host"), self.host_object.clone());
        let mut log = Map::with_capacity(3);
        log.push_new(
            Str::new_static("file"),
            object([("path", Value::String(self.path.clone()))]),
        );
        log.push_new(Str::new_static("offset"), line.offset);
        if !flags.is_empty() {
            log.push_new(Str::new_static("flags"), Value::Array(flags));
        }
        fields.push_new(Str::new_static("log"), log);
        fields.push_new(Str::new_static("input"), self.input_object.clone());
        fields.push_new(Str::new_static("event"), self.event_object.clone());
        fields.push_new(Str::new_static("agent"), self.agent_object.clone());
        let mut metadata = Map::with_capacity(1);
        metadata.push_new(Str::new_static(ID), id);
        Event { fields, metadata }
    }
}
