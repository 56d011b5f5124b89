//! `urldecode`: decode percent-encoded text in a field, as Logstash's
//! urldecode filter does.
//!
//! ```toml
//! [[filter]]
//! type = "urldecode"
//! field = "[url][query]"   # default "message"; or all_fields = true
//! plus_as_space = false    # default true, as HTML forms encode spaces
//! ```

use std::borrow::Cow;

use crate::event::Value;
use serde::Deserialize;
use toml::Spanned;

use super::Verdict;
use crate::config::ConfigCx;
use crate::event::Event;
use crate::event::FieldRef;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field to decode (default `message`). A list of strings is decoded
    /// element by element.
    pub field: Option<Spanned<String>>,
    /// Decode every top-level string field instead (default false).
    #[serde(default)]
    pub all_fields: bool,
    /// Whether `+` means a space, as in form data and Logstash (default
    /// true). URL paths and RFC 3986 queries keep `+`: say false there.
    #[serde(default = "yes")]
    pub plus_as_space: bool,
    /// Tags added when a `%` is not followed by two hex digits (default
    /// `["_urldecodefailure"]`); the text is left as it was.
    #[serde(default = "default_failure_tags")]
    pub tag_on_failure: Vec<String>,
}

fn yes() -> bool {
    true
}

fn default_failure_tags() -> Vec<String> {
    vec!["_urldecodefailure".to_owned()]
}

#[derive(Debug, Clone)]
pub struct UrlDecode {
    /// `None`: every top-level string field.
    field: Option<FieldRef>,
    plus_as_space: bool,
    tag_on_failure: Vec<String>,
}

impl Config {
    pub fn validate(self, cx: &mut ConfigCx<'_>) -> Option<UrlDecode> {
        let field = match (&self.field, self.all_fields) {
            (Some(f), true) => {
                cx.error(&f.span(), "set either `field` or `all_fields`, not both");
                return None;
            }
            (Some(f), false) => Some(cx.field(f)?),
            (None, true) => None,
            (None, false) => Some(FieldRef::parse("message").ok()?),
        };
        Some(UrlDecode {
            field,
            plus_as_space: self.plus_as_space,
            tag_on_failure: self.tag_on_failure,
        })
    }
}

impl UrlDecode {
    pub fn apply(&self, event: &mut Event) -> Verdict {
        let mut failed = false;
        match &self.field {
            Some(field) => {
                if let Some(value) = event.get_mut(field) {
                    failed = !self.decode_value(value);
                }
            }
            None => {
                for (_, value) in event.fields.iter_mut() {
                    failed |= !self.decode_value(value);
                }
            }
        }
        if failed {
            for tag in &self.tag_on_failure {
                event.add_tag(tag);
            }
        }
        Verdict::Keep
    }

    /// Decodes a string, or the strings of a list, in place. False when
    /// some text was not valid percent-encoding (it is left as it was).
    fn decode_value(&self, value: &mut Value) -> bool {
        match value {
            Value::String(text) => match decode(text, self.plus_as_space) {
                Some(Cow::Owned(decoded)) => {
                    *text = decoded.into();
                    true
                }
                Some(Cow::Borrowed(_)) => true,
                None => false,
            },
            Value::Array(items) => {
                // Every element, even after one that fails.
                let mut ok = true;
                for item in items.iter_mut().filter(|v| v.is_string()) {
                    ok &= self.decode_value(item);
                }
                ok
            }
            _ => true,
        }
    }
}

/// Percent-decodes `text`; `None` when a `%` is not followed by two hex
/// digits. Bytes that do not form UTF-8 become U+FFFD, as Java's
/// `URLDecoder` (Logstash) does.
pub fn decode(text: &str, plus_as_space: bool) -> Option<Cow<'_, str>> {
    let bytes = text.as_bytes();
    let plus = plus_as_space && bytes.contains(&b'+');
    if !plus && !bytes.contains(&b'%') {
        return Some(Cow::Borrowed(text));
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let high = (hex[0] as char).to_digit(16)?;
                let low = (hex[1] as char).to_digit(16)?;
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(Cow::Owned(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(field: Option<&str>, plus_as_space: bool) -> UrlDecode {
        UrlDecode {
            field: field.map(|f| FieldRef::parse(f).unwrap()),
            plus_as_space,
            tag_on_failure: default_failure_tags(),
        }
    }

    #[test]
    fn percent_escapes_and_plus_decode_as_configured() {
        assert_eq!(decode("a%7B%22b%22%7D", false).unwrap(), "a{\"b\"}");
        assert_eq!(decode("x+y%20z", true).unwrap(), "x y z");
        assert_eq!(decode("x+y%20z", false).unwrap(), "x+y z");
        assert_eq!(decode("caf%C3%A9", false).unwrap(), "café");
        assert_eq!(decode("%ff", false).unwrap(), "\u{FFFD}");
        assert!(matches!(
            decode("plain", true),
            Some(Cow::Borrowed("plain"))
        ));
        assert_eq!(decode("bad%zz", false), None);
        assert_eq!(decode("cut%4", false), None);
    }

    #[test]
    fn a_field_is_decoded_and_bad_escapes_are_tagged_and_kept() {
        let mut event = Event::default();
        event.insert(
            &FieldRef::parse("[url][query]").unwrap(),
            json!("opts=%7B%22f%22%7D&a=1+2"),
        );
        filter(Some("[url][query]"), false).apply(&mut event);
        assert_eq!(event.fields["url"]["query"], "opts={\"f\"}&a=1+2");
        assert!(event.fields.get("tags").is_none());

        let mut event = Event::from_message("100%");
        filter(Some("message"), true).apply(&mut event);
        assert_eq!(event.fields["message"], "100%");
        assert_eq!(event.fields["tags"], json!(["_urldecodefailure"]));
    }

    #[test]
    fn all_fields_decodes_top_level_strings_and_lists() {
        let mut event = Event::default();
        event.fields.insert("a".into(), json!("x%2Fy"));
        event.fields.insert("b".into(), json!(["1%2B1", 7]));
        event.fields.insert("c".into(), json!({"d": "%41"}));
        filter(None, true).apply(&mut event);
        assert_eq!(event.fields["a"], "x/y");
        assert_eq!(event.fields["b"], json!(["1+1", 7]));
        assert_eq!(event.fields["c"], json!({"d": "%41"}));
    }
}
