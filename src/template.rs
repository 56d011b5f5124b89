//! sprintf templates (`httpd_access-%{+YYYY.MM.dd}`, `%{[fields][log_type]}`),
//! parsed once at load and rendered per event; their field references are
//! the event's own ([`FieldRef`]).
//!
//! `%{+FORMAT}` formats the event's `@timestamp` in UTC with a Joda-style
//! pattern, so a line logged at 23:59:59 UTC lands in that day's index even if
//! it is rendered after midnight.

use std::fmt::Write as _;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Utc};

use crate::event::{Event, FieldRef, SyntaxError, TimeText, Value};

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Field(FieldRef),
    Time(Vec<Item<'static>>),
}

/// A parsed sprintf template.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
    text: String,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, SyntaxError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(start) = rest.find("%{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            let body_start = start + 2;
            let Some(len) = rest[body_start..].find('}') else {
                return Err(SyntaxError::new(
                    offset + start,
                    "unclosed `%{` in template",
                ));
            };
            let body = &rest[body_start..body_start + len];
            let body_offset = offset + body_start;
            if let Some(format) = body.strip_prefix('+') {
                let items = joda_to_chrono(format)
                    .map_err(|e| SyntaxError::new(body_offset + 1 + e.offset, e.message))?;
                parts.push(Part::Time(items));
            } else {
                let field = FieldRef::parse(body)
                    .map_err(|e| SyntaxError::new(body_offset + e.offset, e.message))?;
                parts.push(Part::Field(field));
            }
            let consumed = body_start + len + 1;
            rest = &rest[consumed..];
            offset += consumed;
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Template {
            parts,
            text: text.to_owned(),
        })
    }

    /// Whether the template renders the same text for every event.
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Renders into `out` (cleared first). A missing field is left as written
    /// (`%{[a][b]}`), as Logstash does, so the problem is visible downstream.
    pub fn render_into(&self, event: &Event, out: &mut String) {
        out.clear();
        let mut time: Option<DateTime<Utc>> = None;
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(field) => match event.get(field) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(Value::Time(t)) => out.push_str(TimeText::new(t).as_str()),
                    Some(Value::Null) | None => {
                        let _ = write!(out, "%{{{}}}", field.as_str());
                    }
                    Some(Value::Array(items)) => {
                        for (i, item) in items.iter().enumerate() {
                            if i > 0 {
                                out.push(',');
                            }
                            match item {
                                Value::String(s) => out.push_str(s),
                                Value::Time(t) => out.push_str(TimeText::new(t).as_str()),
                                other => out.push_str(&other.to_string()),
                            }
                        }
                    }
                    Some(other) => out.push_str(&other.to_string()),
                },
                Part::Time(items) => {
                    let at =
                        *time.get_or_insert_with(|| event.timestamp().unwrap_or_else(Utc::now));
                    let _ = write!(out, "{}", at.format_with_items(items.iter()));
                }
            }
        }
    }

    /// Renders only if every referenced field exists; `None` otherwise. For
    /// values that must not fall back to placeholder text, such as document ids.
    pub fn render_strict(&self, event: &Event) -> Option<String> {
        let complete = self.parts.iter().all(|p| match p {
            Part::Field(f) => !matches!(event.get(f), None | Some(Value::Null)),
            _ => true,
        });
        complete.then(|| self.render(event))
    }

    pub fn render(&self, event: &Event) -> String {
        let mut out = String::new();
        self.render_into(event, &mut out);
        out
    }
}

/// Converts a Joda-Time pattern (as in Logstash's `%{+YYYY.MM.dd}`) to chrono
/// format items. Only the letters that make sense in index names and dates are
/// supported; any other letter is an error rather than a silent literal.
pub fn joda_to_chrono(pattern: &str) -> Result<Vec<Item<'static>>, SyntaxError> {
    let mut strftime = String::new();
    let chars: Vec<(usize, char)> = pattern.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if c == '\'' {
            // Quoted literal; '' is a single quote.
            let mut j = i + 1;
            if j < chars.len() && chars[j].1 == '\'' {
                strftime.push('\'');
                i += 2;
                continue;
            }
            while j < chars.len() && chars[j].1 != '\'' {
                push_literal(&mut strftime, chars[j].1);
                j += 1;
            }
            if j == chars.len() {
                return Err(SyntaxError::new(at, "unclosed quote in date pattern"));
            }
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            push_literal(&mut strftime, c);
            i += 1;
            continue;
        }
        let mut run = 1;
        while i + run < chars.len() && chars[i + run].1 == c {
            run += 1;
        }
        let spec = match (c, run) {
            ('y' | 'Y', 2) => "%y",
            ('y' | 'Y', _) => "%Y",
            ('x', 2) => "%g",
            ('x', _) => "%G",
            ('w', _) => "%V",
            ('M', 1) => "%-m",
            ('M', 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', 1) => "%-d",
            ('d', _) => "%d",
            ('D', _) => "%j",
            ('e', _) => "%u",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('H', 1) => "%-H",
            ('H', _) => "%H",
            ('k', _) => "%H",
            ('h', _) => "%I",
            ('a', _) => "%p",
            ('m', 1) => "%-M",
            ('m', _) => "%M",
            ('s', 1) => "%-S",
            ('s', _) => "%S",
            ('S', 1..=3) => "%3f",
            ('S', 4..=6) => "%6f",
            ('S', _) => "%9f",
            ('Z', 1) => "%z",
            ('Z', _) => "%:z",
            _ => {
                return Err(SyntaxError::new(
                    at,
                    format!("unsupported letter `{c}` in date pattern `{pattern}` (quote literal text with '...')"),
                ))
            }
        };
        strftime.push_str(spec);
        i += run;
    }
    let items: Vec<Item<'static>> = StrftimeItems::new(&strftime)
        .map(|item| match item {
            Item::Literal(s) => Item::OwnedLiteral(s.into()),
            Item::Space(s) => Item::OwnedSpace(s.into()),
            other => other.to_owned(),
        })
        .collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(SyntaxError::new(
            0,
            format!("invalid date pattern `{pattern}`"),
        ));
    }
    Ok(items)
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event_at(ts: &str) -> Event {
        let mut event = Event::default();
        event.fields.insert("@timestamp".into(), json!(ts));
        event
    }

    #[test]
    fn index_names_use_the_event_time_in_utc() {
        let t = Template::parse("httpd_access-%{+YYYY.MM.dd}").unwrap();
        assert_eq!(
            t.render(&event_at("2026-11-25T23:59:59.999Z")),
            "httpd_access-2026.11.25"
        );
        // 00:30 at +02:00 is still the previous day in UTC.
        assert_eq!(
            t.render(&event_at("2026-11-26T00:30:00+02:00")),
            "httpd_access-2026.11.25"
        );
    }

    #[test]
    fn fields_render_and_missing_ones_stay_visible() {
        let t = Template::parse("%{[fields][log_type]}-%{host}").unwrap();
        let mut event = event_at("2026-01-01T00:00:00Z");
        event
            .fields
            .insert("fields".into(), json!({"log_type": "access"}));
        assert_eq!(t.render(&event), "access-%{host}");
        event.fields.insert("host".into(), json!(7));
        assert_eq!(t.render(&event), "access-7");
    }

    #[test]
    fn strict_rendering_refuses_missing_fields() {
        let t = Template::parse("%{[@metadata][_id]}").unwrap();
        let mut event = event_at("2026-01-01T00:00:00Z");
        assert_eq!(t.render_strict(&event), None);
        event.metadata.insert("_id".into(), json!("abc"));
        assert_eq!(t.render_strict(&event).as_deref(), Some("abc"));
    }

    #[test]
    fn static_templates_are_detected() {
        assert!(Template::parse("httpd").unwrap().is_static());
        assert!(!Template::parse("a-%{+YYYY}").unwrap().is_static());
    }

    #[test]
    fn template_errors_point_into_the_text() {
        let err = Template::parse("x-%{+YYYY.QQ}").unwrap_err();
        assert_eq!(err.offset, 10);
        let err = Template::parse("abc-%{[a]").unwrap_err();
        assert_eq!(err.offset, 4);
    }

    #[test]
    fn joda_patterns_cover_common_index_and_log_formats() {
        let at = DateTime::parse_from_rfc3339("2026-03-04T05:06:07.089Z")
            .unwrap()
            .with_timezone(&Utc);
        let fmt = |p: &str| {
            at.format_with_items(joda_to_chrono(p).unwrap().iter())
                .to_string()
        };
        assert_eq!(
            fmt("yyyy-MM-dd'T'HH:mm:ss.SSSZZ"),
            "2026-03-04T05:06:07.089+00:00"
        );
        assert_eq!(fmt("dd/MMM/yyyy:HH:mm:ss Z"), "04/Mar/2026:05:06:07 +0000");
        assert_eq!(fmt("xxxx.ww"), "2026.10");
        assert_eq!(fmt("'100%' yy"), "100% 26");
    }
}
