//! `grok`: match a field against named patterns and store the captures as
//! fields, as Logstash's grok filter does.
//!
//! ```toml
//! [[filter]]
//! type = "grok"
//! match = { message = ["%{HTTPD_COMBINEDLOG}", "%{HTTPD_COMMONLOG}"] }
//! ```
//! Patterns compile once at load. The built-in library ([`library`]) is
//! written for the `regex` crate, which runs in linear time, so grok needs no
//! timeouts; its httpd patterns read the access log as Apache escapes it
//! (see `patterns.grok`), with a hand-written fast path ([`httpd`]). A user
//! pattern that needs lookaround or backreferences is compiled with
//! `fancy-regex` instead, with a warning. A line that matches no pattern is
//! tagged (`_grokparsefailure`) and goes on.

mod httpd;
pub mod library;

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::Verdict;
use crate::config::{take, ConfigCx};
use crate::event::FieldRef;
use crate::event::{Event, Number, Str, Value};
use library::{Capture, Conversion, Library};

/// The `match` table: field → patterns, with their positions. Read by hand
/// from the TOML tree because serde's untagged "string or list" loses them.
pub type Matches = Vec<(Spanned<String>, Vec<Spanned<String>>)>;

/// Takes `match` out of a grok table: `{ field = "pattern" }` or
/// `{ field = ["pattern", …] }`.
pub fn take_matches(
    table: &mut DeTable<'_>,
    span: &Range<usize>,
    cx: &mut ConfigCx<'_>,
) -> Option<Matches> {
    let Some(raw) = take(table, "match") else {
        cx.error(span, "missing field `match`");
        return None;
    };
    let raw_span = raw.span();
    let DeValue::Table(fields) = raw.into_inner() else {
        cx.error(
            &raw_span,
            "`match` must be a table: { field = \"pattern\" }",
        );
        return None;
    };
    let mut ok = true;
    let mut matches = Vec::new();
    for (key, value) in fields {
        let key = Spanned::new(key.span(), key.into_inner().into_owned());
        let value_span = value.span();
        let mut patterns = Vec::new();
        match value.into_inner() {
            DeValue::String(s) => patterns.push(Spanned::new(value_span.clone(), s.into_owned())),
            DeValue::Array(items) => {
                for item in items {
                    let item_span = item.span();
                    match item.into_inner() {
                        DeValue::String(s) => {
                            patterns.push(Spanned::new(item_span, s.into_owned()))
                        }
                        _ => {
                            cx.error(&item_span, "a grok pattern must be a string");
                            ok = false;
                        }
                    }
                }
            }
            _ => {
                cx.error(&value_span, "expected a pattern or a list of patterns");
                ok = false;
            }
        }
        if patterns.is_empty() && ok {
            cx.error(&value_span, "no pattern to match");
            ok = false;
        }
        matches.push((key, patterns));
    }
    ok.then_some(matches)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    // `match` (field → pattern or list of patterns, tried in order:
    // `{ message = ["%{HTTPD_COMBINEDLOG}", "%{HTTPD_COMMONLOG}"] }`) is read
    // by [`take_matches`].
    /// Extra patterns, `{ NAME = "regex with %{OTHER}" }`; they may refer to
    /// the built-in ones and override them.
    #[serde(default)]
    pub pattern_definitions: BTreeMap<String, Spanned<String>>,
    /// Directories (or files) of pattern files, `NAME pattern` per line;
    /// every file in a directory is read. Relative to the pipeline file.
    #[serde(default)]
    pub patterns_dir: Vec<Spanned<String>>,
    /// Stop at the first pattern that matches (default true).
    #[serde(default = "yes")]
    pub break_on_match: bool,
    /// Store captures that matched the empty string (default false).
    #[serde(default)]
    pub keep_empty_captures: bool,
    /// Fields a capture may replace; a capture into any other field that
    /// already exists makes it a list, as Logstash does.
    #[serde(default)]
    pub overwrite: Vec<Spanned<String>>,
    /// Tags added when no pattern matches (default `["_grokparsefailure"]`).
    #[serde(default = "default_failure_tags")]
    pub tag_on_failure: Vec<String>,
}

fn yes() -> bool {
    true
}

fn default_failure_tags() -> Vec<String> {
    vec!["_grokparsefailure".to_owned()]
}

#[derive(Debug, Clone)]
enum Engine {
    /// ASCII classes over bytes: much smaller automata, so captures are
    /// resolved by the fast engines instead of the slow PikeVM fallback.
    Ascii(regex::bytes::Regex),
    /// Unicode classes, for patterns that need them (`\p{L}`).
    Unicode(regex::Regex),
    Backtracking(Box<fancy_regex::Regex>),
}

#[derive(Debug, Clone)]
struct Pattern {
    engine: Engine,
    captures: Vec<Capture>,
    /// The regex group index of each capture.
    groups: Vec<usize>,
    /// The hand-written parser for this pattern, if it has one.
    fast: Option<httpd::Shape>,
}

#[derive(Debug, Clone)]
pub struct Grok {
    matches: Vec<(FieldRef, Vec<Pattern>)>,
    break_on_match: bool,
    keep_empty_captures: bool,
    overwrite: Vec<FieldRef>,
    tag_on_failure: Vec<String>,
}

impl Config {
    pub fn validate(self, matches: Matches, cx: &mut ConfigCx<'_>) -> Option<Grok> {
        let mut ok = true;
        let mut library = Library::builtin();
        for dir in &self.patterns_dir {
            let path = cx.path(dir.get_ref());
            let files = if path.is_dir() {
                match std::fs::read_dir(&path) {
                    Ok(entries) => {
                        let mut files: Vec<_> = entries
                            .filter_map(|e| e.ok().map(|e| e.path()))
                            .filter(|p| p.is_file())
                            .collect();
                        files.sort();
                        files
                    }
                    Err(e) => {
                        cx.error(&dir.span(), format!("cannot read {}: {e}", path.display()));
                        ok = false;
                        continue;
                    }
                }
            } else {
                vec![path]
            };
            for file in files {
                match std::fs::read_to_string(&file) {
                    Ok(text) => {
                        for line in library.add_file(&text) {
                            cx.error(
                                &dir.span(),
                                format!(
                                    "{}:{line}: malformed pattern line (expected `NAME pattern`)",
                                    file.display()
                                ),
                            );
                            ok = false;
                        }
                    }
                    Err(e) => {
                        cx.error(&dir.span(), format!("cannot read {}: {e}", file.display()));
                        ok = false;
                    }
                }
            }
        }
        for (name, pattern) in &self.pattern_definitions {
            library.add(name, pattern.get_ref());
        }
        // Definitions are checked where they are written, so an error in one
        // points at it rather than at every pattern using it.
        for pattern in self.pattern_definitions.values() {
            if let Err(e) = library.expand(pattern.get_ref()) {
                let at = cx.source.offset_in_string(&pattern.span(), e.offset);
                cx.diagnostics.push(cx.source.error_at(at, e.message));
                ok = false;
            }
        }
        let mut compiled_matches = Vec::new();
        for (field, patterns) in matches {
            let Some(field) = cx.field(&field) else {
                ok = false;
                continue;
            };
            let mut compiled = Vec::new();
            for pattern in patterns {
                match compile(&library, &pattern, cx) {
                    Some(p) => compiled.push(p),
                    None => ok = false,
                }
            }
            compiled_matches.push((field, compiled));
        }
        let overwrite: Vec<FieldRef> = self.overwrite.iter().filter_map(|f| cx.field(f)).collect();
        ok &= overwrite.len() == self.overwrite.len();
        ok.then_some(Grok {
            matches: compiled_matches,
            break_on_match: self.break_on_match,
            keep_empty_captures: self.keep_empty_captures,
            overwrite,
            tag_on_failure: self.tag_on_failure,
        })
    }
}

fn compile(library: &Library, pattern: &Spanned<String>, cx: &mut ConfigCx<'_>) -> Option<Pattern> {
    let (regex, captures) = match library.expand(pattern.get_ref()) {
        Ok(expanded) => expanded,
        Err(e) => {
            let at = cx.source.offset_in_string(&pattern.span(), e.offset);
            cx.diagnostics.push(cx.source.error_at(at, e.message));
            return None;
        }
    };
    let ascii = regex::bytes::RegexBuilder::new(&regex)
        .unicode(false)
        .build();
    let unicode = || regex::Regex::new(&regex);
    let engine = match ascii.map_err(|_| unicode()) {
        Ok(re) => Engine::Ascii(re),
        Err(Ok(re)) => Engine::Unicode(re),
        Err(Err(linear_error)) => match fancy_regex::Regex::new(&regex) {
            Ok(re) => {
                cx.warn(
                    &pattern.span(),
                    "this grok pattern needs lookaround or backreferences: it runs on a backtracking engine, which can be slow on some lines",
                );
                Engine::Backtracking(Box::new(re))
            }
            Err(_) => {
                cx.error(
                    &pattern.span(),
                    format!("invalid grok pattern: {linear_error}"),
                );
                return None;
            }
        },
    };
    let names: Vec<Option<String>> = match &engine {
        Engine::Ascii(re) => re.capture_names().map(|n| n.map(str::to_owned)).collect(),
        Engine::Unicode(re) => re.capture_names().map(|n| n.map(str::to_owned)).collect(),
        Engine::Backtracking(re) => re.capture_names().map(|n| n.map(str::to_owned)).collect(),
    };
    let groups = captures
        .iter()
        .map(|c| {
            names
                .iter()
                .position(|n| n.as_deref() == Some(c.group.as_str()))
                .unwrap_or(0)
        })
        .collect();
    // Only when the pattern means exactly what the built-in one does: a user
    // redefinition of any part of it keeps the regex.
    let (format, anchored) = match pattern.get_ref().as_str() {
        "^%{HTTPD_COMMONLOG}" => (Some(httpd::Format::Common), false),
        "^%{HTTPD_COMMONLOG}$" => (Some(httpd::Format::Common), true),
        "^%{HTTPD_COMBINEDLOG}" => (Some(httpd::Format::Combined), false),
        "^%{HTTPD_COMBINEDLOG}$" => (Some(httpd::Format::Combined), true),
        _ => (None, false),
    };
    let fast = format
        .map(|format| httpd::Shape { format, anchored })
        .filter(|_| matches!(engine, Engine::Ascii(_)))
        .filter(|_| {
            Library::builtin()
                .expand(pattern.get_ref())
                .is_ok_and(|(builtin, _)| builtin == regex)
        });
    Some(Pattern {
        engine,
        captures,
        groups,
        fast,
    })
}

impl Pattern {
    /// The byte ranges captured by a match, in capture order (`None` when
    /// the group did not take part).
    fn captures(&self, text: &str) -> Option<Vec<Option<(usize, usize)>>> {
        if let Some(shape) = self.fast {
            if let Some(captures) = httpd::parse(shape, text) {
                return Some(captures);
            }
        }
        match &self.engine {
            Engine::Ascii(re) => {
                let caps = re.captures(text.as_bytes())?;
                Some(
                    self.groups
                        .iter()
                        .map(|g| caps.get(*g).map(|m| (m.start(), m.end())))
                        .collect(),
                )
            }
            Engine::Unicode(re) => {
                let caps = re.captures(text)?;
                Some(
                    self.groups
                        .iter()
                        .map(|g| caps.get(*g).map(|m| (m.start(), m.end())))
                        .collect(),
                )
            }
            Engine::Backtracking(re) => {
                let caps = re.captures(text).ok()??;
                Some(
                    self.groups
                        .iter()
                        .map(|g| caps.get(*g).map(|m| (m.start(), m.end())))
                        .collect(),
                )
            }
        }
    }
}

/// A captured slice as a string; an ASCII-mode match may split a character
/// (`.` matches single bytes), which is then replaced rather than lost.
fn slice(text: &str, (start, end): (usize, usize)) -> Str {
    match text.get(start..end) {
        Some(s) => Str::new(s),
        None => Str::new(String::from_utf8_lossy(&text.as_bytes()[start..end])),
    }
}

impl Grok {
    pub fn apply(&self, event: &mut Event) -> Verdict {
        let mut matched = false;
        let mut found: Vec<(&Capture, Str)> = Vec::new();
        'fields: for (field, patterns) in &self.matches {
            let Some(Value::String(text)) = event.get(field) else {
                continue;
            };
            for pattern in patterns {
                let Some(values) = pattern.captures(text) else {
                    continue;
                };
                matched = true;
                for (capture, value) in pattern.captures.iter().zip(values) {
                    match value {
                        Some(range) if range.1 > range.0 || self.keep_empty_captures => {
                            found.push((capture, slice(text, range)))
                        }
                        _ => {}
                    }
                }
                if self.break_on_match {
                    break 'fields;
                }
            }
        }
        if !matched {
            for tag in &self.tag_on_failure {
                event.add_tag(tag);
            }
            return Verdict::Keep;
        }
        for (capture, text) in found {
            let value = convert(text, capture.conversion);
            self.store(event, &capture.field, value);
        }
        Verdict::Keep
    }

    fn store(&self, event: &mut Event, field: &FieldRef, value: Value) {
        if self.overwrite.iter().any(|f| f == field) {
            event.insert(field, value);
            return;
        }
        match event.get_mut(field) {
            Some(Value::Array(items)) => items.push(value),
            Some(Value::Null) | None => event.insert(field, value),
            Some(existing) => {
                let previous = std::mem::take(existing);
                *existing = Value::Array(vec![previous, value]);
            }
        }
    }
}

/// A conversion that fails keeps the text, so nothing is lost.
fn convert(text: Str, conversion: Conversion) -> Value {
    match conversion {
        Conversion::None => Value::String(text),
        Conversion::Int => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::String(text)),
        Conversion::Float => match text.trim().parse::<f64>() {
            Ok(f) => Number::from_f64(f).map_or(Value::String(text), Value::Number),
            Err(_) => Value::String(text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;
    use serde_json::json;

    fn build(text: &str) -> (Option<Grok>, Vec<String>) {
        let source = Source::new("p.toml", text);
        let mut cx = ConfigCx::new(&source);
        let value = DeTable::parse(text).unwrap();
        let span = value.span();
        let mut table = value.into_inner();
        let grok = take_matches(&mut table, &span, &mut cx).and_then(|m| {
            cx.de::<Config>(Spanned::new(span, DeValue::Table(table)))
                .and_then(|c| c.validate(m, &mut cx))
        });
        let d = cx.diagnostics.iter().map(|d| d.to_string()).collect();
        (grok, d)
    }

    fn grok(text: &str) -> Grok {
        let (grok, d) = build(text);
        assert!(d.is_empty(), "{d:?}");
        grok.unwrap()
    }

    fn run(grok: &Grok, message: &str) -> Event {
        let mut event = Event::default();
        event.fields.insert("message".into(), json!(message));
        grok.apply(&mut event);
        event
    }

    const COMBINED: &str = r#"203.0.113.9 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif?x=1 HTTP/1.0" 200 2326 "http://example.com/start" "Mozilla/4.08 [en] (Win98; I ;Nav)""#;

    #[test]
    fn the_combined_log_pattern_yields_typed_ecs_fields() {
        let g = grok("match = { message = \"%{HTTPD_COMBINEDLOG}\" }");
        let e = run(&g, COMBINED);
        assert_eq!(e.fields["source"]["address"], json!("203.0.113.9"));
        assert_eq!(e.fields["user"]["name"], json!("frank"));
        assert_eq!(e.fields["timestamp"], json!("10/Oct/2000:13:55:36 -0700"));
        assert_eq!(e.fields["http"]["request"]["method"], json!("GET"));
        assert_eq!(e.fields["url"]["original"], json!("/a.gif?x=1"));
        assert_eq!(e.fields["http"]["version"], json!("1.0"));
        assert_eq!(e.fields["http"]["response"]["status_code"], json!(200));
        assert_eq!(e.fields["http"]["response"]["body"]["bytes"], json!(2326));
        assert_eq!(
            e.fields["http"]["request"]["referrer"],
            json!("http://example.com/start")
        );
        assert_eq!(
            e.fields["user_agent"]["original"],
            json!("Mozilla/4.08 [en] (Win98; I ;Nav)")
        );
        assert!(e.fields.get("tags").is_none());
    }

    #[test]
    fn dashes_and_garbage_requests_leave_fields_out() {
        let g = grok("match = { message = \"%{HTTPD_COMMONLOG}\" }");
        let e = run(&g, r#"::1 - - [26/Dec/2016:16:16:48 +0200] "-" 408 -"#);
        assert_eq!(e.fields["source"]["address"], json!("::1"));
        assert_eq!(e.fields["http"]["response"]["status_code"], json!(408));
        assert!(e.fields["http"].get("request").is_none());
        assert!(e.fields.get("user").is_none());
        let e = run(
            &g,
            r#"10.0.0.1 - - [26/Dec/2016:16:16:48 +0200] "\x16\x03\x01" 400 226"#,
        );
        assert_eq!(e.fields["http"]["response"]["status_code"], json!(400));
        assert!(e.fields.get("url").is_none());
    }

    #[test]
    fn error_logs_of_both_versions_parse() {
        let g = grok("match = { message = \"%{HTTPD_ERRORLOG}\" }\noverwrite = [\"message\"]");
        let e = run(
            &g,
            "[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 10.1.2.3:5566] AH00128: File does not exist: /x",
        );
        assert_eq!(e.fields["apache"]["error"]["module"], json!("core"));
        assert_eq!(e.fields["log"]["level"], json!("error"));
        assert_eq!(e.fields["process"]["pid"], json!(35708));
        assert_eq!(e.fields["process"]["thread"]["id"], json!(4328636416u64));
        assert_eq!(e.fields["source"]["port"], json!(5566));
        assert_eq!(e.fields["error"]["code"], json!("AH00128"));
        assert_eq!(e.fields["message"], json!("File does not exist: /x"));
        let e = run(
            &g,
            "[Mon Dec 26 16:22:08 2016] [error] [client 192.168.33.1] File does not exist: /var/www/favicon.ico",
        );
        assert_eq!(e.fields["source"]["address"], json!("192.168.33.1"));
        assert_eq!(
            e.fields["message"],
            json!("File does not exist: /var/www/favicon.ico")
        );
    }

    #[test]
    fn a_line_matching_nothing_is_tagged_and_kept() {
        let g = grok("match = { message = \"%{HTTPD_COMMONLOG}\" }\ntag_on_failure = [\"bad\"]");
        let e = run(&g, "nothing like a log line");
        assert_eq!(e.fields["tags"], json!(["bad"]));
        assert_eq!(e.fields["message"], json!("nothing like a log line"));
    }

    #[test]
    fn patterns_are_tried_in_order_and_custom_ones_are_used() {
        let g = grok(
            r#"match = { message = ["%{NUMBER:n:int} %{WORD:w}", "%{MYWORD:w}"] }
pattern_definitions = { MYWORD = "x+(?<[extra]>y*)" }"#,
        );
        let e = run(&g, "12 abc");
        assert_eq!(e.fields["n"], json!(12));
        assert_eq!(e.fields["w"], json!("abc"));
        let e = run(&g, "xxyy");
        assert_eq!(e.fields["w"], json!("xxyy"));
        assert_eq!(e.fields["extra"], json!("yy"));
        let e = run(&g, "xx");
        assert!(
            e.fields.get("extra").is_none(),
            "empty captures are dropped"
        );
    }

    #[test]
    fn captures_into_an_existing_field_append_unless_overwritten() {
        let g = grok("match = { message = \"%{WORD:message}\" }");
        assert_eq!(run(&g, "abc").fields["message"], json!(["abc", "abc"]));
        let g = grok("match = { message = \"%{WORD:message} \" }\noverwrite = [\"message\"]");
        assert_eq!(run(&g, "abc ").fields["message"], json!("abc"));
    }

    #[test]
    fn the_fast_path_serves_only_the_builtin_httpd_patterns() {
        let g = grok("match = { message = [\"^%{HTTPD_COMBINEDLOG}\", \"^%{HTTPD_COMMONLOG}$\", \"%{HTTPD_COMMONLOG}\", \"^%{HTTPD_COMMONLOG} \"] }");
        let fast: Vec<bool> = g.matches[0].1.iter().map(|p| p.fast.is_some()).collect();
        assert_eq!(fast, [true, true, false, false]);
        let g = grok("match = { message = \"^%{HTTPD_COMMONLOG}\" }\npattern_definitions = { HTTPD_METHOD = \"[A-Z]+\" }");
        assert!(g.matches[0].1[0].fast.is_none());
        let e = run(
            &g,
            "192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 5",
        );
        assert_eq!(e.fields["http"]["response"]["status_code"], json!(200));
    }

    /// The differential property at the level a user sees: the grok
    /// filter with the fast path and the same filter with the regex alone
    /// make the same events of every adversarial line (fields, types,
    /// failure tags), with the patterns in the order the preset tries them.
    #[test]
    fn the_fast_path_and_the_regex_make_the_same_events() {
        let fast = grok(
            "match = { message = [\"^%{HTTPD_COMBINEDLOG}$\", \"^%{HTTPD_COMMONLOG}$\", \"^%{HTTPD_COMBINEDLOG}\", \"^%{HTTPD_COMMONLOG}\"] }",
        );
        assert!(fast.matches[0].1.iter().all(|p| p.fast.is_some()));
        let mut slow = fast.clone();
        for pattern in &mut slow.matches[0].1 {
            pattern.fast = None;
        }
        for (_, line) in httpd::adversarial_lines(0x0dd_11e5, 4_000) {
            assert_eq!(run(&fast, &line).fields, run(&slow, &line).fields, "{line}");
        }
    }

    #[test]
    fn apache_escapes_stay_as_written_and_odd_requests_are_kept() {
        let g = grok("match = { message = \"^%{HTTPD_COMBINEDLOG}$\" }");
        let e = run(
            &g,
            r#"192.0.2.1 - DOMAIN\\bob [10/Oct/2000:13:55:36 -0700] "GET /a\"b c\x7f HTTP/1.1" 200 5 "-" "x \" \"y\\""#,
        );
        assert_eq!(e.fields["user"]["name"], json!(r"DOMAIN\\bob"));
        assert_eq!(e.fields["url"]["original"], json!(r#"/a\"b c\x7f"#));
        assert_eq!(e.fields["user_agent"]["original"], json!(r#"x \" \"y\\"#));
        assert!(e.fields["http"]["request"].get("referrer").is_none());
        let e = run(
            &g,
            r#"192.0.2.1 - "" [10/Oct/2000:13:55:36 -0700] "\x16\x03\x01" 400 226 "-" "-""#,
        );
        assert_eq!(
            e.fields["apache"]["access"]["malformed_request"],
            json!(r"\x16\x03\x01")
        );
        assert!(e.fields.get("user").is_none() && e.fields.get("url").is_none());
        let e = run(
            &g,
            r#"192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET /" 200 5 "-" "-""#,
        );
        assert_eq!(e.fields["url"]["original"], json!("/"));
        assert!(e.fields["http"].get("version").is_none());
    }

    #[test]
    fn float_captures_are_numbers() {
        let g = grok("match = { message = \"%{NUMBER:f:float}\" }");
        assert_eq!(run(&g, "2.5").fields["f"], json!(2.5));
    }

    #[test]
    fn lookaround_falls_back_to_the_backtracking_engine_with_a_warning() {
        let (g, d) = build("match = { message = \"(?<w>a)(?=b)\" }");
        assert_eq!(d.len(), 1);
        assert!(
            d[0].contains("warning") && d[0].contains("backtracking"),
            "{d:?}"
        );
        assert_eq!(run(&g.unwrap(), "ab").fields["w"], json!("a"));
    }

    #[test]
    fn unknown_pattern_names_are_config_errors_at_their_position() {
        let (g, d) = build("match = { message = \"%{WORD} %{NOPE:x}\" }");
        assert!(g.is_none());
        assert_eq!(d.len(), 1);
        assert!(
            d[0].starts_with("p.toml:1:30: error: unknown grok pattern `NOPE`"),
            "{}",
            d[0]
        );
    }

    #[test]
    fn pattern_files_are_read_from_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("extra"), "# mine\nMYNUM [0-9]+\n").unwrap();
        let text = format!(
            "match = {{ message = \"%{{MYNUM:n:int}}\" }}\npatterns_dir = [{:?}]",
            dir.path().display().to_string()
        );
        let g = grok(&text);
        assert_eq!(run(&g, "77").fields["n"], json!(77));
    }
}
