//! The event's JSON writer: straight from the value tree into bytes, with
//! no serde `Serializer` in between. It writes exactly what `serde_json`
//! writes for the same value (compact; strings escaped as it escapes them:
//! `\"`, `\\`, `\b \f \n \r \t`, other control bytes as lowercase
//! `\u00xx`; numbers as `serde_json::Number` prints them), which the tests
//! below check against `serde_json` itself. It exists for speed: string
//! escaping was most of the encode time, and most strings of a log event
//! need no escape at all, which this writer finds eight bytes at a time.

use crate::event::value::{Map, TimeText, Value};

/// What each byte becomes inside a JSON string: 0 for itself, `u` for
/// `\u00xx`, else the letter after the backslash.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
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

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes of `w` needs an escape: below 0x20, `"`
/// or `\`. (A zero-byte test per kind; it may say yes for a byte that
/// needs none, never no for one that does.)
#[inline]
fn needs_escape(w: u64) -> bool {
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    let quote = (w ^ (ONES * b'"' as u64)).wrapping_sub(ONES) & !(w ^ (ONES * b'"' as u64));
    let backslash = (w ^ (ONES * b'\\' as u64)).wrapping_sub(ONES) & !(w ^ (ONES * b'\\' as u64));
    (control | quote | backslash) & HIGHS != 0
}

/// Appends `s` as a JSON string, quotes included.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape = ESCAPE[b as usize];
        if escape == 0 {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if escape == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends `value` as JSON.
pub fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            } else {
                // A float: as serde_json prints it (ryu; never NaN or ∞,
                // which a Number cannot hold).
                out.extend_from_slice(n.to_string().as_bytes());
            }
        }
        Value::String(s) => write_str(s, out),
        Value::Time(t) => write_str(TimeText::new(t).as_str(), out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_map(map, out),
    }
}

/// Appends `map` as a JSON object, its keys in their order.
pub fn write_map(map: &Map, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    for (k, v) in map {
        write_entry(&mut first, k.as_str(), v, out);
    }
    out.push(b'}');
}

/// Appends `"key":value`, after a comma unless it is the `first` entry.
pub fn write_entry(first: &mut bool, key: &str, value: &Value, out: &mut Vec<u8>) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    write_str(key, out);
    out.push(b':');
    write_value(value, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::json::KafkaMessage;
    use crate::event::{Event, Number};

    fn same_as_serde(value: &Value) {
        let mut ours = Vec::new();
        write_value(value, &mut ours);
        let theirs = serde_json::to_vec(value).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
    }

    fn string(s: &str) -> Value {
        Value::String(s.into())
    }

    /// Every byte that needs an escape, at every position of the eight-byte
    /// steps, alone and among others.
    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "GET /index.html HTTP/1.1".into(),
            "héllo ☃ 日本語 \u{7f} \u{2028} 😀".into(),
            "\"quoted\" and \\back\\slashed\\".into(),
        ];
        for b in 0u8..0x80 {
            let c = char::from(b);
            for at in 0..17 {
                let mut s = "x".repeat(at);
                s.push(c);
                s.push_str("tail-of-it");
                cases.push(s);
            }
        }
        for s in &cases {
            same_as_serde(&string(s));
        }
        let alphabet: Vec<char> = "ab\"\\\n\t\r\u{0}\u{1f}\u{7f}é☃😀 /<>".chars().collect();
        let mut rng = fastrand::Rng::with_seed(20261203);
        for _ in 0..2000 {
            let len = rng.usize(0..40);
            let s: String = (0..len)
                .map(|_| alphabet[rng.usize(0..alphabet.len())])
                .collect();
            same_as_serde(&string(&s));
        }
    }

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        let mut inner = Map::new();
        inner.insert("status_code".into(), Value::from(404i64));
        inner.insert("neg".into(), Value::from(-17i64));
        inner.insert("big".into(), Value::Number(Number::from(u64::MAX)));
        for (i, f) in [1.0, 0.1, 1e300, -0.0, 2.5e-8, 123456.789]
            .into_iter()
            .enumerate()
        {
            inner.insert(
                format!("f{i}").as_str().into(),
                Value::Number(Number::from_f64(f).unwrap()),
            );
        }
        let mut map = Map::new();
        map.insert("null".into(), Value::Null);
        map.insert("yes".into(), Value::Bool(true));
        map.insert("no".into(), Value::Bool(false));
        map.insert(
            "time".into(),
            Value::Time("2026-12-03T06:00:00.123Z".parse().unwrap()),
        );
        map.insert(
            "tags".into(),
            Value::Array(vec![string("a"), Value::Array(vec![]), Value::Null]),
        );
        map.insert("empty".into(), Value::Object(Map::new()));
        map.insert("k\"ey\n".into(), Value::Object(inner));
        same_as_serde(&Value::Object(map));
    }

    /// The Kafka message written straight is the message serde wrote.
    #[test]
    fn kafka_messages_are_the_bytes_serde_wrote() {
        let mut plain = Event::from_message("127.0.0.1 - - \"GET / HTTP/1.1\" 200 5");
        plain.add_tag("httpd_access");
        let mut with_meta = plain.clone();
        with_meta.metadata.insert("_id".into(), string("abc"));
        with_meta.metadata.insert("beat".into(), string("filebeat"));
        let mut untimed = plain.clone();
        untimed.fields.remove("@timestamp");
        for event in [plain, with_meta, untimed, Event::default()] {
            let mut ours = Vec::new();
            super::super::write_kafka_message(&event, &mut ours).unwrap();
            let theirs = serde_json::to_vec(&KafkaMessage(&event)).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
        }
    }
}
