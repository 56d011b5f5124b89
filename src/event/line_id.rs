//! The document id of a line that Filebeat may have shipped too.
//!
//! Filebeat's Kafka messages carry no id: Logstash lets Elasticsearch make
//! one, so every re-send (Filebeat is at-least-once) is a second document.
//! What identifies the line is in the message: the host, the file's path,
//! the line's offset and its text. The index half derives the id from
//! those ([`of_filebeat_event`]), and the file input gives the lines of a
//! file it took over from Filebeat (`logpipe import --filebeat-registry`)
//! the same id ([`filebeat_line_id`]), so a line shipped by Filebeat before
//! the switch and read again by logpipe after it is one document.
//!
//! The text is part of it because path and offset alone are not unique: a
//! rotated log starts again at offset 0 under the same name, and with more
//! than one rotation a day, two lines of one daily index would share an id
//! and the second would be taken for a replay of the first.

use super::{Event, Str, Value};

/// Marks these ids apart from logpipe's origin ids, which hash other input.
const DOMAIN: &[u8] = b"filebeat-line\0";

/// The id of the line `message` at `offset` of `path` on `host`.
pub fn filebeat_line_id(host: &str, path: &str, offset: u64, message: &str) -> Str {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(DOMAIN);
    hasher.update(host.as_bytes());
    hasher.update(&[0]);
    hasher.update(path.as_bytes());
    hasher.update(&[0]);
    hasher.update(&offset.to_le_bytes());
    hasher.update(message.as_bytes());
    hex_id(hasher.digest128())
}

/// The id of a Filebeat-shaped event (`log.file.path`, `log.offset` and
/// `message` present; `host.name` when there is one), or `None` when it
/// does not name its line.
pub fn of_filebeat_event(event: &Event) -> Option<Str> {
    let fields = &event.fields;
    let log = fields.get("log")?;
    let path = log.get("file")?.get("path")?.as_str()?;
    let offset = log.get("offset")?.as_u64()?;
    let message = fields.get("message")?.as_str()?;
    let host = fields
        .get("host")
        .and_then(|h| h.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some(filebeat_line_id(host, path, offset, message))
}

/// 128 bits as 32 lowercase hex digits, without a `String` in between (one
/// allocation per line fewer on the hottest path).
pub fn hex_id(mut digest: u128) -> Str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 32];
    for slot in text.iter_mut().rev() {
        *slot = HEX[(digest & 0xf) as usize];
        digest >>= 4;
    }
    Str::new(std::str::from_utf8(&text).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::json::read_event;

    /// A message as Filebeat 8's Kafka output writes it (codec.json).
    const FILEBEAT: &str = r#"{"@timestamp":"2026-12-03T10:00:00.123Z","@metadata":{"beat":"filebeat","type":"_doc","version":"8.15.0"},"log":{"offset":1042,"file":{"path":"/var/log/httpd/access_log"}},"message":"10.0.0.1 - - [03/Dec/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 12","tags":["httpd_access"],"input":{"type":"log"},"host":{"name":"web1"},"agent":{"type":"filebeat"},"ecs":{"version":"8.0.0"}}"#;

    #[test]
    fn a_filebeat_message_gets_the_id_its_line_gets() {
        let event = read_event(FILEBEAT.as_bytes()).unwrap();
        let expected = filebeat_line_id(
            "web1",
            "/var/log/httpd/access_log",
            1042,
            r#"10.0.0.1 - - [03/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 12"#,
        );
        assert_eq!(of_filebeat_event(&event), Some(expected.clone()));
        assert_eq!(expected.len(), 32);
        // Re-sent later: another read time, the same line, the same id.
        let again = FILEBEAT.replace("10:00:00.123Z", "10:05:00.000Z");
        let again = read_event(again.as_bytes()).unwrap();
        assert_eq!(of_filebeat_event(&again), Some(expected));
    }

    #[test]
    fn every_part_of_the_line_counts() {
        let id = filebeat_line_id("web1", "/a", 0, "x");
        assert_ne!(id, filebeat_line_id("web2", "/a", 0, "x"));
        assert_ne!(id, filebeat_line_id("web1", "/b", 0, "x"));
        assert_ne!(id, filebeat_line_id("web1", "/a", 1, "x"));
        // A rotated file starts again at 0 under the same name.
        assert_ne!(id, filebeat_line_id("web1", "/a", 0, "y"));
        // Separators keep the parts apart.
        assert_ne!(
            filebeat_line_id("web1", "/a", 0, "x"),
            filebeat_line_id("web1/", "a", 0, "x")
        );
    }

    #[test]
    fn an_event_that_does_not_name_its_line_gets_none() {
        let no_offset = r#"{"message":"x","log":{"file":{"path":"/a"}}}"#;
        let no_path = r#"{"message":"x","log":{"offset":3}}"#;
        let no_message = r#"{"log":{"offset":3,"file":{"path":"/a"}}}"#;
        for body in [no_offset, no_path, no_message] {
            let event = read_event(body.as_bytes()).unwrap();
            assert_eq!(of_filebeat_event(&event), None, "{body}");
        }
        let no_host = r#"{"message":"x","log":{"offset":3,"file":{"path":"/a"}}}"#;
        let event = read_event(no_host.as_bytes()).unwrap();
        assert_eq!(
            of_filebeat_event(&event),
            Some(filebeat_line_id("", "/a", 3, "x"))
        );
    }
}
