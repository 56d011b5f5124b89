//! `json`: parse a field holding JSON text into fields, as Logstash's json
//! filter does.
//!
//! ```toml
//! [[filter]]
//! type = "json"
//! source = "message"
//! target = "[app]"       # optional; default: the top level of the event
//! ```

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
    /// The field holding the JSON text.
    pub source: Spanned<String>,
    /// Where the parsed value goes. Default: its keys are merged into the
    /// top level of the event (replacing fields of the same name), which
    /// needs the text to hold an object.
    pub target: Option<Spanned<String>>,
    /// Leave invalid JSON alone without tagging it (default false).
    #[serde(default)]
    pub skip_on_invalid_json: bool,
    /// Tags added when the text is not valid JSON (default `["_jsonparsefailure"]`).
    #[serde(default = "default_failure_tags")]
    pub tag_on_failure: Vec<String>,
}

fn default_failure_tags() -> Vec<String> {
    vec!["_jsonparsefailure".to_owned()]
}

#[derive(Debug, Clone)]
pub struct Json {
    source: FieldRef,
    target: Option<FieldRef>,
    skip_on_invalid_json: bool,
    tag_on_failure: Vec<String>,
}

impl Config {
    pub fn validate(self, cx: &mut ConfigCx<'_>) -> Option<Json> {
        let source = cx.field(&self.source);
        let target = match &self.target {
            Some(t) => Some(cx.field(t)?),
            None => None,
        };
        Some(Json {
            source: source?,
            target,
            skip_on_invalid_json: self.skip_on_invalid_json,
            tag_on_failure: self.tag_on_failure,
        })
    }
}

impl Json {
    pub fn apply(&self, event: &mut Event) -> Verdict {
        let Some(Value::String(text)) = event.get(&self.source) else {
            return Verdict::Keep;
        };
        let parsed = serde_json::from_str::<Value>(text);
        match (parsed, &self.target) {
            (Ok(value), Some(target)) => event.insert(target, value),
            (Ok(Value::Object(map)), None) => {
                for (key, value) in map {
                    event.fields.insert(key, value);
                }
            }
            // Only an object can be merged into the event's top level.
            (Ok(_), None) | (Err(_), _) => {
                if !self.skip_on_invalid_json {
                    for tag in &self.tag_on_failure {
                        event.add_tag(tag);
                    }
                }
            }
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(target: Option<&str>, skip: bool) -> Json {
        Json {
            source: FieldRef::parse("message").unwrap(),
            target: target.map(|t| FieldRef::parse(t).unwrap()),
            skip_on_invalid_json: skip,
            tag_on_failure: default_failure_tags(),
        }
    }

    fn run(filter: &Json, message: &str) -> Value {
        let mut event = Event::from_message(message);
        event.fields.remove("@timestamp");
        filter.apply(&mut event);
        Value::Object(event.fields)
    }

    #[test]
    fn objects_merge_into_the_top_level_or_go_to_the_target() {
        let text = r#"{"a": 1, "b": {"c": true}}"#;
        assert_eq!(
            run(&filter(None, false), text),
            json!({"message": text, "a": 1, "b": {"c": true}})
        );
        assert_eq!(
            run(&filter(Some("[app][doc]"), false), text),
            json!({"message": text, "app": {"doc": {"a": 1, "b": {"c": true}}}})
        );
        assert_eq!(
            run(&filter(Some("n"), false), "[1,2]"),
            json!({"message": "[1,2]", "n": [1, 2]})
        );
    }

    #[test]
    fn invalid_json_is_tagged_unless_skipped() {
        assert_eq!(
            run(&filter(None, false), "{nope"),
            json!({"message": "{nope", "tags": ["_jsonparsefailure"]})
        );
        assert_eq!(
            run(&filter(None, true), "{nope"),
            json!({"message": "{nope"})
        );
        assert_eq!(
            run(&filter(None, false), "3"),
            json!({"message": "3", "tags": ["_jsonparsefailure"]})
        );
    }
}
