//! The Logstash side of a conversion: its `kafka` inputs become the hop's
//! index half, its filters and outputs the stages of each log source's
//! file — only those its events reach (a branch whose condition is false
//! for the source's tags and fields is left out), each with the conditions
//! above it as its `if`, their Logstash text in a comment.

use toml::Value;

use super::condition::{evaluate, render, Facts, Known};
use super::render::{Origin, Section, Stage};
use super::Notes;
use crate::config::Source;
use crate::import::logstash::{Pipeline, Plugin, SectionKind, Setting, Stmt, ValueKind};
use crate::import::vars::to_logpipe;

/// A Logstash `kafka` input: the index half of the hops that ship to its topics.
#[derive(Debug, Clone)]
pub struct KafkaInput {
    pub brokers: Vec<String>,
    pub topics: Vec<String>,
    pub group_id: String,
    /// Hop keys for the index half (`auto_offset_reset`, `codec`, …).
    pub keys: Vec<(String, Value)>,
    /// Comments for the hop (what was carried over and how).
    pub comments: Vec<String>,
    /// Filters for what the input itself does to events (`type`, `tags`).
    pub prelude: Vec<Stage>,
    pub origin: Origin,
}

fn origin(pipeline: &Pipeline, file: usize, at: usize, what: &str) -> Origin {
    let source = &pipeline.sources[file];
    let (line, col) = source.position(at);
    Origin {
        file: source.path.clone(),
        line,
        col,
        what: what.to_owned(),
    }
}

fn warn(
    pipeline: &Pipeline,
    file: usize,
    at: usize,
    notes: &mut Notes,
    what: String,
    instead: &str,
) {
    let source: &Source = &pipeline.sources[file];
    let (line, col) = source.position(at);
    notes.warn_at(source, line, col, what, instead);
}

/// A Logstash value as a TOML value.
pub fn toml_value(v: &crate::import::logstash::Value) -> Value {
    match &v.kind {
        ValueKind::Str(s) => Value::String(to_logpipe(s)),
        ValueKind::Number(n) => n
            .parse::<i64>()
            .map(Value::Integer)
            .or_else(|_| n.parse::<f64>().map(Value::Float))
            .unwrap_or_else(|_| Value::String(n.clone())),
        ValueKind::Bareword(w) => match w.as_str() {
            "true" => Value::Boolean(true),
            "false" => Value::Boolean(false),
            _ => Value::String(w.clone()),
        },
        ValueKind::Array(items) => Value::Array(items.iter().map(toml_value).collect()),
        ValueKind::Hash(entries) => Value::Table(
            entries
                .iter()
                .map(|(k, v)| (to_logpipe(k), toml_value(v)))
                .collect(),
        ),
        ValueKind::Plugin(p) => Value::String(p.name.clone()),
    }
}

/// A hash setting, also in Logstash's older array form `["a", "b", "c", "d"]`.
fn table(v: &crate::import::logstash::Value) -> Option<Value> {
    match &v.kind {
        ValueKind::Hash(_) => Some(toml_value(v)),
        ValueKind::Array(items) if items.len() % 2 == 0 => {
            let mut t = toml::Table::new();
            for pair in items.chunks(2) {
                t.insert(to_logpipe(pair[0].as_text()?), toml_value(&pair[1]));
            }
            Some(Value::Table(t))
        }
        _ => None,
    }
}

fn text_list(v: &crate::import::logstash::Value) -> Vec<String> {
    v.as_text_list()
        .unwrap_or_default()
        .into_iter()
        .flat_map(|h| h.split(','))
        .map(|h| to_logpipe(h.trim()))
        .filter(|h| !h.is_empty())
        .collect()
}

/// Every `kafka` input of the config (other inputs are warned about).
pub fn kafka_inputs(pipeline: &Pipeline, notes: &mut Notes) -> Vec<KafkaInput> {
    let mut out = Vec::new();
    for section in &pipeline.config.sections {
        if section.kind != SectionKind::Input {
            continue;
        }
        for stmt in &section.body {
            match stmt {
                Stmt::Plugin(p) if p.name == "kafka" => {
                    out.push(kafka_input(pipeline, section.file, p, notes))
                }
                Stmt::Plugin(p) => warn(
                    pipeline,
                    section.file,
                    p.at,
                    notes,
                    format!("input `{}` is not converted", p.name),
                    "logpipe's index half reads Kafka; the sources are the Filebeat inputs",
                ),
                Stmt::If(chain) => warn(
                    pipeline,
                    section.file,
                    chain.at,
                    notes,
                    "a conditional in the input section is not converted".into(),
                    "Logstash does not allow one; remove it",
                ),
            }
        }
    }
    out
}

fn kafka_input(pipeline: &Pipeline, file: usize, p: &Plugin, notes: &mut Notes) -> KafkaInput {
    let mut input = KafkaInput {
        // Logstash's kafka input defaults.
        brokers: vec!["localhost:9092".into()],
        topics: vec!["logstash".into()],
        group_id: "logstash".into(),
        keys: Vec::new(),
        comments: Vec::new(),
        prelude: Vec::new(),
        origin: origin(pipeline, file, p.at, "input kafka"),
    };
    let mut codec = "plain".to_owned();
    for Setting { name, value, at } in &p.settings {
        match name.as_str() {
            "bootstrap_servers" => input.brokers = text_list(value),
            "topics" => input.topics = text_list(value),
            "group_id" => input.group_id = value.as_text().map(to_logpipe).unwrap_or_default(),
            "client_id" => input.keys.push(("client_id".into(), toml_value(value))),
            "auto_offset_reset" => match value.as_text() {
                Some(v @ ("earliest" | "latest")) => {
                    input.keys.push(("auto_offset_reset".into(), v.into()))
                }
                other => warn(
                    pipeline,
                    file,
                    *at,
                    notes,
                    format!("auto_offset_reset `{}` is not converted", other.unwrap_or("?")),
                    "logpipe takes earliest or latest",
                ),
            },
            "decorate_events" => match value.as_text() {
                Some("true" | "basic" | "extended") => {
                    input.keys.push(("decorate_events".into(), true.into()))
                }
                Some("false" | "none") => {
                    input.keys.push(("decorate_events".into(), false.into()))
                }
                other => warn(
                    pipeline,
                    file,
                    *at,
                    notes,
                    format!("decorate_events `{}` is not converted", other.unwrap_or("?")),
                    "logpipe takes true or false",
                ),
            },
            "codec" => {
                let name = match &value.kind {
                    ValueKind::Plugin(c) => c.name.clone(),
                    _ => value.as_text().unwrap_or_default().to_owned(),
                };
                codec = name;
            }
            "type" => {
                let Some(kind) = value.as_text() else { continue };
                let mut f = Stage::new(Section::Filter, Some(origin(pipeline, file, *at, "input kafka `type`")));
                f.comment(format!("Logstash's kafka input `type => \"{kind}\"`: set on events that have no type"));
                f.set("type", "mutate");
                f.set("if", "not [type]");
                let mut add = toml::Table::new();
                add.insert("type".into(), to_logpipe(kind).into());
                f.set("add_field", Value::Table(add));
                input.prelude.push(f);
            }
            "tags" => {
                let mut f = Stage::new(Section::Filter, Some(origin(pipeline, file, *at, "input kafka `tags`")));
                f.comment("Logstash's kafka input `tags`");
                f.set("type", "mutate");
                f.set("add_tag", text_list(value));
                input.prelude.push(f);
            }
            "add_field" => {
                let mut f = Stage::new(Section::Filter, Some(origin(pipeline, file, *at, "input kafka `add_field`")));
                f.comment("Logstash's kafka input `add_field`");
                f.set("type", "mutate");
                if let Some(t) = table(value) {
                    f.set("add_field", t);
                }
                input.prelude.push(f);
            }
            "id" | "enable_metric" => {}
            other => warn(
                pipeline,
                file,
                *at,
                notes,
                format!("kafka input setting `{other}` is not converted"),
                match other {
                    "consumer_threads" => "run more logpipe index processes with the same group_id: they share the partitions",
                    "topics_pattern" => "list the topics in `topics` of [kafka]",
                    _ => "set the matching librdkafka property in [kafka] `consumer = { … }`",
                },
            ),
        }
    }
    match codec.as_str() {
        "json" => input.keys.push(("codec".into(), "json".into())),
        "plain" => {
            input.comments.push("Logstash's kafka input reads `codec => plain` by default: each record's text is `message`".into());
            input.keys.push(("codec".into(), "plain".into()));
        }
        other => {
            warn(
                pipeline,
                file,
                p.at,
                notes,
                format!("kafka input codec `{other}` is not converted"),
                "logpipe's hop reads json or plain",
            );
        }
    }
    input
}

/// One condition on the way to a stage.
#[derive(Debug, Clone)]
pub struct Guard {
    /// In logpipe's language; `None` when nothing is to be tested.
    pub rendered: Option<String>,
    /// The comment that says where it came from.
    pub comment: String,
}

/// The filters (`section` Filter) or outputs (Output) that a source's events
/// reach, in order.
/// `base` guards every stage (the test that picks this source's events out
/// of a topic that carries other sources' too).
pub fn stages(
    pipeline: &Pipeline,
    kind: SectionKind,
    facts: &Facts,
    base: &[Guard],
    notes: &mut Notes,
) -> Vec<Stage> {
    let mut out = Vec::new();
    for section in &pipeline.config.sections {
        if section.kind == kind {
            let mut guards = base.to_vec();
            walk(
                pipeline,
                section.file,
                &section.body,
                kind,
                facts,
                &mut guards,
                &mut out,
                notes,
            );
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn walk(
    pipeline: &Pipeline,
    file: usize,
    stmts: &[Stmt],
    kind: SectionKind,
    facts: &Facts,
    guards: &mut Vec<Guard>,
    out: &mut Vec<Stage>,
    notes: &mut Notes,
) {
    for stmt in stmts {
        match stmt {
            Stmt::Plugin(p) => {
                let stage = match kind {
                    SectionKind::Filter => filter(pipeline, file, p, notes),
                    _ => output(pipeline, file, p, notes),
                };
                if let Some(mut stage) = stage {
                    let mut conds: Vec<&str> = Vec::new();
                    for c in guards.iter().filter_map(|g| g.rendered.as_deref()) {
                        if !conds.contains(&c) {
                            conds.push(c);
                        }
                    }
                    let mut comments: Vec<String> =
                        guards.iter().map(|g| g.comment.clone()).collect();
                    comments.append(&mut stage.comments);
                    stage.comments = comments;
                    if !conds.is_empty() {
                        let joined = if conds.len() == 1 {
                            conds[0].to_owned()
                        } else {
                            conds
                                .iter()
                                .map(|c| format!("({c})"))
                                .collect::<Vec<_>>()
                                .join(" and ")
                        };
                        // `if` first, after `type`.
                        stage
                            .keys
                            .insert(1.min(stage.keys.len()), ("if".into(), joined.into()));
                    }
                    out.push(stage);
                }
            }
            Stmt::If(chain) => {
                let mut previous: Vec<Guard> = Vec::new();
                let mut reachable = true;
                for branch in &chain.branches {
                    if !reachable {
                        break;
                    }
                    let (line, _) = pipeline.sources[file].position(branch.at);
                    let known = evaluate(&branch.condition, facts);
                    let rendered = render(&branch.condition);
                    // Kept when true for this source too: the topic may carry
                    // other sources' events, and the file reads them all.
                    let here = Guard {
                        rendered: Some(rendered.clone()),
                        comment: format!(
                            "Logstash {}:{line}: if {}{}",
                            pipeline.sources[file].path.display(),
                            branch.text,
                            match known {
                                Known::True => " (true for this source's events)",
                                _ => "",
                            }
                        ),
                    };
                    if known != Known::False {
                        let depth = guards.len();
                        guards.extend(previous.iter().cloned());
                        guards.push(here.clone());
                        walk(
                            pipeline,
                            file,
                            &branch.body,
                            kind,
                            facts,
                            guards,
                            out,
                            notes,
                        );
                        guards.truncate(depth);
                    }
                    if known == Known::True {
                        reachable = false;
                    }
                    if known == Known::Unknown {
                        previous.push(Guard {
                            rendered: Some(format!("not ({rendered})")),
                            comment: format!("… and not: if {}", branch.text),
                        });
                    }
                }
                if let (true, Some(body)) = (reachable, &chain.otherwise) {
                    let depth = guards.len();
                    guards.extend(previous);
                    walk(pipeline, file, body, kind, facts, guards, out, notes);
                    guards.truncate(depth);
                }
            }
        }
    }
}

/// Settings every Logstash filter takes, applied only when it succeeds.
const COMMON: [&str; 4] = ["add_field", "add_tag", "remove_field", "remove_tag"];

fn filter(pipeline: &Pipeline, file: usize, p: &Plugin, notes: &mut Notes) -> Option<Stage> {
    let what = format!("filter {}", p.name);
    let mut stage = Stage::new(Section::Filter, Some(origin(pipeline, file, p.at, &what)));
    let (line, _) = pipeline.sources[file].position(p.at);
    stage.comment(format!(
        "Logstash {}:{line}: {}",
        pipeline.sources[file].path.display(),
        p.name
    ));
    // (Logstash name, logpipe name) of the settings that carry over as they are.
    let same: &[&str] = match p.name.as_str() {
        "mutate" => &[
            "rename",
            "replace",
            "convert",
            "gsub",
            "uppercase",
            "lowercase",
            "strip",
            "split",
            "merge",
            "copy",
            "add_field",
            "remove_field",
            "add_tag",
            "remove_tag",
        ],
        "grok" => &[
            "pattern_definitions",
            "patterns_dir",
            "break_on_match",
            "keep_empty_captures",
            "overwrite",
            "tag_on_failure",
        ],
        "date" => &["target", "timezone", "tag_on_failure"],
        "json" => &["source", "target", "skip_on_invalid_json", "tag_on_failure"],
        "useragent" => &["source", "target"],
        "geoip" => &["source", "target", "database", "tag_on_failure"],
        "urldecode" => &["field", "all_fields", "tag_on_failure"],
        "drop" => &[],
        other => {
            warn(
                pipeline,
                file,
                p.at,
                notes,
                format!("filter `{other}` is not converted"),
                "logpipe has grok, date, mutate, json, useragent, geoip, urldecode and drop; write the step with those, or leave it out",
            );
            return None;
        }
    };
    stage.set("type", p.name.as_str());
    let hashes = [
        "rename",
        "replace",
        "convert",
        "split",
        "merge",
        "copy",
        "add_field",
        "pattern_definitions",
    ];
    let mut ecs: Option<String> = None;
    for Setting { name, value, at } in &p.settings {
        let name = name.as_str();
        if same.contains(&name) {
            let v = if hashes.contains(&name) {
                table(value)
            } else {
                Some(toml_value(value))
            };
            match v {
                Some(v) => stage.set(name, v),
                None => warn(
                    pipeline,
                    file,
                    *at,
                    notes,
                    format!("`{name}` of {what} ({}) is not converted", value.describe()),
                    "write it as a hash `{ \"field\" => \"value\" }`",
                ),
            }
            continue;
        }
        match (p.name.as_str(), name) {
            (_, "id" | "enable_metric" | "periodic_flush") => {}
            ("grok", "match") => match grok_match(value) {
                Some(m) => stage.set("match", m),
                None => warn(pipeline, file, *at, notes, format!("`match` of {what} ({}) is not converted", value.describe()), "write it as `match => { \"message\" => \"pattern\" }`"),
            },
            ("grok", "ecs_compatibility") => ecs = value.as_text().map(str::to_owned),
            ("grok", "named_captures_only") if value.as_bool() == Some(true) => {}
            ("date", "match") => {
                let list = value.as_text_list().unwrap_or_default();
                match list.split_first() {
                    Some((field, formats)) if !formats.is_empty() => {
                        stage.set("field", to_logpipe(field));
                        stage.set("formats", formats.iter().map(|f| to_logpipe(f)).collect::<Vec<_>>());
                    }
                    _ => warn(pipeline, file, *at, notes, format!("`match` of {what} is not converted"), "give it `[\"field\", \"format\", …]`"),
                }
            }
            ("date", "locale") if matches!(value.as_text(), Some(l) if l.starts_with("en")) => {}
            (_, common) if COMMON.contains(&common) => warn(
                pipeline,
                file,
                *at,
                notes,
                format!("`{common}` of {what} is not converted (Logstash applies it when the filter succeeds)"),
                "add a mutate filter after it, with an `if` on the filter's failure tag",
            ),
            (_, other) => warn(
                pipeline,
                file,
                *at,
                notes,
                format!("`{other}` of {what} is not converted"),
                "logpipe's filter has no such setting (see README, Stages)",
            ),
        }
    }
    let legacy = p.name == "grok" && !matches!(ecs.as_deref(), Some("v1" | "v8"));
    if legacy && uses_httpd_patterns(p) {
        // Logstash 7's httpd patterns, so the events keep the names the
        // user's conditions, templates and dashboards know.
        let mut defs = match stage.get("pattern_definitions") {
            Some(Value::Table(t)) => t.clone(),
            _ => toml::Table::new(),
        };
        for (name, pattern) in LEGACY_HTTPD {
            if !defs.contains_key(*name) {
                defs.insert((*name).to_owned(), (*pattern).into());
            }
        }
        stage.set("pattern_definitions", Value::Table(defs));
        stage.comment(format!(
            "ecs_compatibility {}: the httpd patterns with Logstash 7's legacy field names (clientip, verb, request, response, bytes, referrer, agent, timestamp; loglevel, module, pid for errors), as Logstash gave them",
            ecs.as_deref().unwrap_or("unset (Logstash 7's default)")
        ));
    } else if legacy && uses_library_names(p) {
        warn(
            pipeline,
            file,
            p.at,
            notes,
            format!(
                "{what} runs with ecs_compatibility {} (Logstash 7's default): Logstash names its captures by the legacy names (clientip, response, bytes, timestamp, …), logpipe's pattern library by the ECS ones (source.address, http.response.status_code, …)",
                ecs.as_deref().unwrap_or("unset")
            ),
            "rewrite the conditions, templates and dashboards that use the legacy names to the ECS names, or name the captures in the pattern (`%{IPORHOST:clientip}`)",
        );
    }
    Some(stage)
}

/// Whether a grok pattern uses a library pattern without naming its capture
/// (`%{COMBINEDAPACHELOG}`): then the field names are the library's.
fn uses_library_names(p: &Plugin) -> bool {
    let texts = grok_texts(p);
    texts.iter().any(|t| {
        t.split("%{").skip(1).any(|rest| {
            let name = rest.split('}').next().unwrap_or("");
            !name.contains(':')
                && name.chars().any(|c| c.is_ascii_uppercase())
                && name.contains("LOG")
        })
    })
}

/// logstash-patterns-core's `legacy/httpd` (Logstash 7, `ecs_compatibility`
/// disabled): the same lines as logpipe's ECS patterns, named as Logstash 7
/// named them.
const LEGACY_HTTPD: &[(&str, &str)] = &[
    (
        "HTTPD_COMMONLOG",
        r#"%{IPORHOST:clientip} %{HTTPDUSER:ident} %{HTTPDUSER:auth} \[%{HTTPDATE:timestamp}\] "(?:%{WORD:verb} %{NOTSPACE:request}(?: HTTP/%{NUMBER:httpversion})?|%{DATA:rawrequest})" (?:-|%{NUMBER:response}) (?:-|%{NUMBER:bytes})"#,
    ),
    (
        "HTTPD_COMBINEDLOG",
        "%{HTTPD_COMMONLOG} %{QS:referrer} %{QS:agent}",
    ),
    (
        "HTTPD20_ERRORLOG",
        r"\[%{HTTPDERROR_DATE:timestamp}\] \[%{LOGLEVEL:loglevel}\] (?:\[client %{IPORHOST:clientip}\] ){0,1}%{GREEDYDATA:message}",
    ),
    (
        "HTTPD24_ERRORLOG",
        r"\[%{HTTPDERROR_DATE:timestamp}\] \[%{WORD:module}:%{LOGLEVEL:loglevel}\] \[pid %{POSINT:pid}(:tid %{NUMBER:tid})?\]( \(%{POSINT:proxy_errorcode}\)%{DATA:proxy_message}:)?( \[client %{IPORHOST:clientip}:%{POSINT:clientport}\])?( %{DATA:errorcode}:)? %{GREEDYDATA:message}",
    ),
    ("HTTPD_ERRORLOG", "%{HTTPD20_ERRORLOG}|%{HTTPD24_ERRORLOG}"),
    ("COMMONAPACHELOG", "%{HTTPD_COMMONLOG}"),
    ("COMBINEDAPACHELOG", "%{HTTPD_COMBINEDLOG}"),
];

fn grok_texts(p: &Plugin) -> Vec<String> {
    let Some(m) = p.get("match") else {
        return Vec::new();
    };
    match &m.value.kind {
        ValueKind::Hash(entries) => entries
            .iter()
            .flat_map(|(_, v)| {
                v.as_text_list()
                    .unwrap_or_default()
                    .into_iter()
                    .map(str::to_owned)
            })
            .collect(),
        _ => m
            .value
            .as_text_list()
            .unwrap_or_default()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    }
}

/// Whether the grok uses one of the httpd patterns whose field names
/// differ between Logstash 7 and ECS.
fn uses_httpd_patterns(p: &Plugin) -> bool {
    grok_texts(p).iter().any(|t| {
        LEGACY_HTTPD
            .iter()
            .any(|(name, _)| t.contains(&format!("%{{{name}}}")))
    })
}

fn grok_pattern(p: &str) -> String {
    to_logpipe(p)
}

fn grok_match(v: &crate::import::logstash::Value) -> Option<Value> {
    let mut t = toml::Table::new();
    let mut put = |field: &str, patterns: &crate::import::logstash::Value| -> Option<()> {
        let list: Vec<Value> = patterns
            .as_text_list()?
            .into_iter()
            .map(|p| Value::String(grok_pattern(p)))
            .collect();
        t.insert(to_logpipe(field), Value::Array(list));
        Some(())
    };
    match &v.kind {
        ValueKind::Hash(entries) => {
            for (field, patterns) in entries {
                put(field, patterns)?;
            }
        }
        ValueKind::Array(items) if items.len() % 2 == 0 => {
            for pair in items.chunks(2) {
                put(pair[0].as_text()?, &pair[1])?;
            }
        }
        _ => return None,
    }
    Some(Value::Table(t))
}

fn output(pipeline: &Pipeline, file: usize, p: &Plugin, notes: &mut Notes) -> Option<Stage> {
    let what = format!("output {}", p.name);
    let mut stage = Stage::new(Section::Output, Some(origin(pipeline, file, p.at, &what)));
    let (line, _) = pipeline.sources[file].position(p.at);
    stage.comment(format!(
        "Logstash {}:{line}: {}",
        pipeline.sources[file].path.display(),
        p.name
    ));
    match p.name.as_str() {
        "elasticsearch" => {
            stage.set("type", "elasticsearch");
            stage.set("hosts", vec!["localhost:9200".to_owned()]);
            stage.set("index", "logstash-%{+yyyy.MM.dd}");
            let mut data_stream = false;
            for Setting { name, value, at } in &p.settings {
                match name.as_str() {
                    "hosts" => stage.set("hosts", text_list(value)),
                    "index" | "document_id" | "user" | "password" | "api_key" => {
                        stage.set(name, toml_value(value))
                    }
                    "cacert" | "ssl_certificate_authorities" => {
                        if let Some(ca) = text_list(value).first() {
                            stage.set("ca", ca.as_str());
                        }
                    }
                    "ssl" | "ssl_enabled" if value.as_bool().is_some() => {}
                    "data_stream" => match value.as_text() {
                        Some("true") => data_stream = true,
                        Some("false") => {}
                        other => warn(
                            pipeline,
                            file,
                            *at,
                            notes,
                            format!("data_stream `{}` of {what} is not converted", other.unwrap_or("?")),
                            "write data_stream = true (or false) in the written file",
                        ),
                    },
                    "data_stream_type" | "data_stream_dataset" | "data_stream_namespace" => {
                        stage.set(name, toml_value(value))
                    }
                    "action" => match value.as_text() {
                        Some(a @ ("index" | "create")) => stage.set("action", a),
                        other => warn(pipeline, file, *at, notes, format!("action `{}` of {what} is not converted", other.unwrap_or("?")), "logpipe indexes with create (default) or index; updates and deletes have no counterpart"),
                    },
                    "manage_template" | "template" | "template_name" | "template_overwrite" => warn(
                        pipeline, file, *at, notes,
                        format!("`{name}` of {what} is not converted"),
                        "`logpipe setup` installs logpipe's ECS index templates; install your own template by hand",
                    ),
                    "id" | "enable_metric" => {}
                    other => warn(pipeline, file, *at, notes, format!("`{other}` of {what} is not converted"), "logpipe's elasticsearch output has no such setting (see README, Elasticsearch)"),
                }
            }
            if data_stream {
                stage.keys.retain(|(k, _)| k != "index");
                stage.set("data_stream", true);
            }
            Some(stage)
        }
        "stdout" => {
            stage.set("type", "stdout");
            if let Some(codec) = p.get("codec") {
                let name = match &codec.value.kind {
                    ValueKind::Plugin(c) => c.name.clone(),
                    _ => codec.value.as_text().unwrap_or_default().to_owned(),
                };
                stage.comment(format!(
                    "codec {name}: logpipe's stdout prints one JSON object per line"
                ));
            }
            Some(stage)
        }
        other => {
            warn(
                pipeline,
                file,
                p.at,
                notes,
                format!("output `{other}` is not converted"),
                "logpipe writes to elasticsearch and stdout; keep Logstash for this output, or drop it",
            );
            None
        }
    }
}
