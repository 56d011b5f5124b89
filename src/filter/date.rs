//! `date`: parse a field holding a time into `@timestamp` (or `target`),
//! with Joda-style formats as Logstash's date filter takes them.
//!
//! ```toml
//! [[filter]]
//! type = "date"
//! field = "timestamp"
//! formats = ["dd/MMM/yyyy:HH:mm:ss Z", "ISO8601"]
//! ```
//! A time without an offset is read in `timezone`; by default the event's
//! own `[event][timezone]` (set on the host that read the line, so an error
//! log written in Paris is read in Paris even when indexed elsewhere), else
//! this host's zone. A value that matches no format is tagged
//! `_dateparsefailure` and the event goes on.

use chrono::format::{parse, Item, Parsed};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use toml::Spanned;

use super::Verdict;
use crate::config::ConfigCx;
use crate::event::FieldRef;
use crate::event::{Event, Value, TIMESTAMP};
use crate::template::joda_to_chrono;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field holding the time text.
    pub field: Spanned<String>,
    /// Formats tried in order: Joda patterns (`dd/MMM/yyyy:HH:mm:ss Z`,
    /// `EEE MMM dd HH:mm:ss.SSSSSS yyyy`), or `ISO8601`, `UNIX` (seconds,
    /// fractions allowed), `UNIX_MS`.
    pub formats: Vec<Spanned<String>>,
    /// Zone for times without an offset: an IANA name (`Europe/Paris`) or an
    /// offset (`+02:00`). Default: the event's `[event][timezone]`, else the
    /// zone of this host (`TZ`, else `/etc/localtime`).
    pub timezone: Option<Spanned<String>>,
    /// Where the parsed time goes (default `@timestamp`), written in UTC
    /// with millisecond precision.
    pub target: Option<Spanned<String>>,
    /// Tags added when no format matches (default `["_dateparsefailure"]`).
    #[serde(default = "default_failure_tags")]
    pub tag_on_failure: Vec<String>,
    /// Fields removed after a successful parse (typically the raw `field`).
    #[serde(default)]
    pub remove_field: Vec<Spanned<String>>,
}

fn default_failure_tags() -> Vec<String> {
    vec!["_dateparsefailure".to_owned()]
}

#[derive(Debug, Clone)]
enum Format {
    Iso8601,
    Unix,
    UnixMs,
    Pattern {
        items: Vec<Item<'static>>,
        has_year: bool,
    },
}

/// A zone to read offset-less times in.
#[derive(Debug, Clone, Copy)]
pub enum Zone {
    Named(chrono_tz::Tz),
    Fixed(FixedOffset),
}

impl Zone {
    /// `Europe/Paris`, `UTC`, `Z`, `+02:00`, `-0500`.
    pub fn parse(text: &str) -> Option<Zone> {
        let text = text.trim();
        if let Ok(tz) = text.parse::<chrono_tz::Tz>() {
            return Some(Zone::Named(tz));
        }
        if text == "Z" {
            return FixedOffset::east_opt(0).map(Zone::Fixed);
        }
        let (sign, rest) = match text.as_bytes().first() {
            Some(b'+') => (1, &text[1..]),
            Some(b'-') => (-1, &text[1..]),
            _ => return None,
        };
        let digits: String = rest.chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let hours: i32 = digits[..2].parse().ok()?;
        let minutes: i32 = digits[2..].parse().ok()?;
        FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60)).map(Zone::Fixed)
    }

    fn resolve(&self, naive: &NaiveDateTime) -> Option<DateTime<Utc>> {
        match self {
            Zone::Named(tz) => local(tz, naive),
            Zone::Fixed(offset) => local(offset, naive),
        }
    }
}

/// A local time in `tz`; in a DST gap, the time an hour later (as clocks read).
fn local<T: TimeZone>(tz: &T, naive: &NaiveDateTime) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(*naive + chrono::Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

#[derive(Debug, Clone)]
pub struct Date {
    field: FieldRef,
    formats: Vec<Format>,
    timezone: Option<Zone>,
    /// `None` means `@timestamp`.
    target: Option<FieldRef>,
    tag_on_failure: Vec<String>,
    remove_field: Vec<FieldRef>,
}

impl Config {
    pub fn validate(self, cx: &mut ConfigCx<'_>) -> Option<Date> {
        let mut ok = true;
        let field = cx.field(&self.field);
        let mut formats = Vec::new();
        if self.formats.is_empty() {
            cx.error(
                &self.field.span(),
                "the date filter needs at least one format",
            );
            ok = false;
        }
        for format in &self.formats {
            match format.get_ref().as_str() {
                "ISO8601" => formats.push(Format::Iso8601),
                "UNIX" => formats.push(Format::Unix),
                "UNIX_MS" => formats.push(Format::UnixMs),
                pattern => match joda_to_chrono(pattern) {
                    Ok(items) => formats.push(Format::Pattern {
                        items,
                        has_year: pattern.contains(['y', 'Y', 'x']),
                    }),
                    Err(e) => {
                        let at = cx.source.offset_in_string(&format.span(), e.offset);
                        cx.diagnostics.push(cx.source.error_at(at, e.message));
                        ok = false;
                    }
                },
            }
        }
        let timezone = match &self.timezone {
            None => None,
            Some(text) => match Zone::parse(text.get_ref()) {
                Some(zone) => Some(zone),
                None => {
                    cx.error(
                        &text.span(),
                        format!(
                            "unknown time zone `{}` (expected an IANA name like Europe/Paris or an offset like +02:00)",
                            text.get_ref()
                        ),
                    );
                    ok = false;
                    None
                }
            },
        };
        let target = match &self.target {
            Some(t) if t.get_ref() != TIMESTAMP => {
                let f = cx.field(t);
                ok &= f.is_some();
                f
            }
            _ => None,
        };
        let remove_field: Vec<FieldRef> = self
            .remove_field
            .iter()
            .filter_map(|f| cx.field(f))
            .collect();
        ok &= remove_field.len() == self.remove_field.len();
        let field = field?;
        ok.then_some(Date {
            field,
            formats,
            timezone,
            target,
            tag_on_failure: self.tag_on_failure,
            remove_field,
        })
    }
}

impl Date {
    pub fn apply(&self, event: &mut Event) -> Verdict {
        let parsed = match event.get(&self.field) {
            Some(Value::String(text)) => {
                let zone = self.zone(event);
                self.formats
                    .iter()
                    .find_map(|f| parse_with(f, text.trim(), zone))
            }
            // Already a time (`@timestamp` read from a message): nothing to
            // parse, whatever the formats.
            Some(Value::Time(t)) => Some(*t),
            Some(Value::Number(n)) => self.formats.iter().find_map(|f| match f {
                Format::Unix => n.as_f64().and_then(from_unix_seconds),
                Format::UnixMs => n.as_i64().and_then(DateTime::from_timestamp_millis),
                _ => None,
            }),
            // Like Logstash, a missing field is not a failure: there was
            // nothing to parse (a line grok could not parse, say).
            None => return Verdict::Keep,
            _ => None,
        };
        let Some(time) = parsed else {
            for tag in &self.tag_on_failure {
                event.add_tag(tag);
            }
            return Verdict::Keep;
        };
        match &self.target {
            None => event.set_timestamp(time),
            Some(target) => event.insert(target, Value::Time(crate::event::millis(time))),
        }
        for field in &self.remove_field {
            event.remove(field);
        }
        Verdict::Keep
    }

    fn zone(&self, event: &Event) -> Zone {
        if let Some(zone) = self.timezone {
            return zone;
        }
        let from_event = event
            .fields
            .get("event")
            .and_then(|e| e.get("timezone"))
            .and_then(Value::as_str)
            .and_then(Zone::parse);
        from_event.unwrap_or_else(host_zone)
    }
}

fn host_zone() -> Zone {
    Zone::parse(crate::host::timezone())
        .or_else(|| FixedOffset::east_opt(0).map(Zone::Fixed))
        .unwrap_or(Zone::Named(chrono_tz::UTC))
}

fn parse_with(format: &Format, text: &str, zone: Zone) -> Option<DateTime<Utc>> {
    match format {
        Format::Iso8601 => iso8601(text, zone),
        Format::Unix => text.parse::<f64>().ok().and_then(from_unix_seconds),
        Format::UnixMs => text
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis),
        Format::Pattern { items, has_year } => {
            let mut parsed = Parsed::new();
            parse(&mut parsed, text, items.iter()).ok()?;
            if !has_year {
                // Logstash's rule for year-less formats (syslog): this year.
                parsed.set_year(i64::from(Utc::now().year())).ok()?;
            }
            if parsed.offset().is_some() {
                return parsed.to_datetime().ok().map(|t| t.with_timezone(&Utc));
            }
            let naive = parsed.to_naive_datetime_with_offset(0).ok()?;
            zone.resolve(&naive)
        }
    }
}

fn from_unix_seconds(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() {
        return None;
    }
    DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64)
}

fn iso8601(text: &str, zone: Zone) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    let text = text.strip_suffix('Z').map_or(text, |t| t);
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return zone.resolve(&naive);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;
    use serde_json::json;

    fn date(text: &str) -> Date {
        let source = Source::new("p.toml", text);
        let mut cx = ConfigCx::new(&source);
        let table = toml::de::DeTable::parse(text).unwrap();
        let span = table.span();
        let d = cx
            .de::<Config>(Spanned::new(
                span,
                toml::de::DeValue::Table(table.into_inner()),
            ))
            .and_then(|c| c.validate(&mut cx));
        assert!(cx.diagnostics.is_empty(), "{:?}", cx.diagnostics);
        d.unwrap()
    }

    fn stamp(filter: &Date, value: serde_json::Value, event_tz: Option<&str>) -> Event {
        let mut event = Event::default();
        event.fields.insert("t".into(), value);
        if let Some(tz) = event_tz {
            event
                .fields
                .insert("event".into(), json!({ "timezone": tz }));
        }
        filter.apply(&mut event);
        event
    }

    #[test]
    fn access_log_times_keep_their_own_offset() {
        let d = date("field = \"t\"\nformats = [\"dd/MMM/yyyy:HH:mm:ss Z\"]");
        let e = stamp(&d, json!("26/Dec/2016:16:16:29 +0200"), Some("UTC"));
        assert_eq!(e.fields["@timestamp"], json!("2016-12-26T14:16:29.000Z"));
    }

    #[test]
    fn error_log_times_are_read_in_the_event_zone() {
        let d = date("field = \"t\"\nformats = [\"EEE MMM dd HH:mm:ss.SSSSSS yyyy\", \"EEE MMM dd HH:mm:ss yyyy\"]");
        let e = stamp(&d, json!("Mon Dec 26 16:15:55.103786 2016"), Some("-02:00"));
        assert_eq!(e.fields["@timestamp"], json!("2016-12-26T18:15:55.103Z"));
        let e = stamp(&d, json!("Mon Dec 26 16:22:08 2016"), Some("Europe/Paris"));
        assert_eq!(e.fields["@timestamp"], json!("2016-12-26T15:22:08.000Z"));
    }

    #[test]
    fn a_configured_timezone_wins_over_the_event_zone() {
        let d = date(
            "field = \"t\"\nformats = [\"yyyy-MM-dd HH:mm:ss\"]\ntimezone = \"America/New_York\"",
        );
        let e = stamp(&d, json!("2026-07-01 12:00:00"), Some("UTC"));
        assert_eq!(e.fields["@timestamp"], json!("2026-07-01T16:00:00.000Z"));
    }

    #[test]
    fn iso8601_and_unix_formats_are_understood() {
        let d = date("field = \"t\"\nformats = [\"ISO8601\", \"UNIX_MS\", \"UNIX\"]");
        let e = stamp(&d, json!("2026-11-25T23:59:59.5+01:00"), None);
        assert_eq!(e.fields["@timestamp"], json!("2026-11-25T22:59:59.500Z"));
        let e = stamp(&d, json!("2026-11-25 10:00:00"), Some("UTC"));
        assert_eq!(e.fields["@timestamp"], json!("2026-11-25T10:00:00.000Z"));
        let e = stamp(&d, json!("1482769009000"), None);
        assert_eq!(e.fields["@timestamp"], json!("2016-12-26T16:16:49.000Z"));
        let e = stamp(&d, json!(1482769009.25), None);
        assert_eq!(e.fields["@timestamp"], json!("2016-12-26T16:16:49.250Z"));
    }

    #[test]
    fn an_unparseable_time_is_tagged_and_the_timestamp_kept() {
        let d = date("field = \"t\"\nformats = [\"dd/MMM/yyyy:HH:mm:ss Z\"]\ntarget = \"[parsed]\"\nremove_field = [\"t\"]");
        let e = stamp(&d, json!("yesterday"), None);
        assert_eq!(e.fields["tags"], json!(["_dateparsefailure"]));
        assert_eq!(e.fields["t"], json!("yesterday"));
        let e = stamp(&d, json!("01/Jan/2020:00:00:00 +0000"), None);
        assert_eq!(e.fields["parsed"], json!("2020-01-01T00:00:00.000Z"));
        assert!(e.fields.get("t").is_none());
    }

    #[test]
    fn zones_are_names_or_offsets() {
        assert!(matches!(Zone::parse("Europe/Paris"), Some(Zone::Named(_))));
        for offset in ["+02:00", "+0200", "-05:30", "Z"] {
            assert!(
                matches!(Zone::parse(offset), Some(Zone::Fixed(_))),
                "{offset}"
            );
        }
        assert!(Zone::parse("Mars/Olympus").is_none());
    }
}
