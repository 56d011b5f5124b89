//! filebeat.yml's side of a conversion: each enabled input becomes a log
//! source (a logpipe file input with its tags and fields), `output.kafka`
//! the ship half of the hop. Every setting read is named here; any other is
//! a warning at its position.

use toml::Value;

use super::condition::{evaluate, render, Facts, Known};
use super::render::{Origin, Section, Stage};
use super::Notes;
use crate::config::Source;
use crate::import::logstash::{BoolOp, CmpOp, Cond, Operand};
use crate::import::vars::to_logpipe;
use crate::import::yaml::{Key, Node, Yaml};

/// One Filebeat input: the file input it becomes, and what is known of its
/// events.
#[derive(Debug, Clone)]
pub struct LogSource {
    pub name: String,
    pub input: Stage,
    pub facts: Facts,
    /// Filters that Filebeat's processors of this input become (run first
    /// on the index half: logpipe's ship half does not filter).
    pub filters: Vec<Stage>,
}

/// One of `output.kafka.topics`.
#[derive(Debug, Clone)]
pub struct TopicRule {
    pub topic: String,
    /// `None`: the rule always holds.
    pub when: Option<Cond>,
    pub origin: Origin,
}

impl Ship {
    /// The topic a source's events go to, as Filebeat picks it; `Err` with
    /// the rule whose condition depends on the event.
    pub fn topic_for(&self, facts: &Facts) -> Result<Option<String>, Origin> {
        for rule in &self.rules {
            match rule
                .when
                .as_ref()
                .map_or(Known::True, |c| evaluate(c, facts))
            {
                Known::True => return Ok(Some(rule.topic.clone())),
                Known::False => {}
                Known::Unknown => return Err(rule.origin.clone()),
            }
        }
        Ok(self.topic.clone())
    }
}

/// `output.kafka`: the hop's ship half.
#[derive(Debug, Clone, Default)]
pub struct Ship {
    pub brokers: Vec<String>,
    pub topic: Option<String>,
    /// `topics`: the first rule whose condition holds names the topic.
    pub rules: Vec<TopicRule>,
    /// Hop keys (`acks`, `compression`, …) with their values.
    pub keys: Vec<(String, Value)>,
    pub subtables: Vec<(String, Vec<(String, Value)>)>,
    pub origin: Option<Origin>,
}

pub struct Filebeat {
    pub sources: Vec<LogSource>,
    pub ship: Option<Ship>,
    pub presets: Vec<Preset>,
}

fn origin(source: &Source, node_pos: crate::import::yaml::Pos, what: &str) -> Origin {
    Origin {
        file: source.path.clone(),
        line: node_pos.line,
        col: node_pos.col,
        what: what.to_owned(),
    }
}

fn strings(node: &Node) -> Option<Vec<String>> {
    node.as_str_list()
        .map(|l| l.into_iter().map(to_logpipe).collect())
}

/// A YAML value as a TOML value (scalars as strings unless they are plain
/// numbers or booleans).
fn toml_value(node: &Node) -> Value {
    match &node.value {
        Yaml::Null => Value::String(String::new()),
        Yaml::Scalar { text, quoted } => {
            if !quoted {
                if let Some(b) = node.as_bool() {
                    return Value::Boolean(b);
                }
                if let Ok(i) = text.parse::<i64>() {
                    return Value::Integer(i);
                }
                if let Ok(f) = text.parse::<f64>() {
                    if text.contains('.') {
                        return Value::Float(f);
                    }
                }
            }
            Value::String(to_logpipe(text))
        }
        Yaml::Seq(items) => Value::Array(items.iter().map(toml_value).collect()),
        Yaml::Map(entries) => Value::Table(
            entries
                .iter()
                .map(|(k, v)| (k.name.clone(), toml_value(v)))
                .collect(),
        ),
    }
}

/// Flattened `fields` (for the routing facts): `a: {b: c}` → (["fields","a","b"], "c").
fn field_facts(prefix: &[String], node: &Node, facts: &mut Facts) {
    match &node.value {
        Yaml::Map(entries) => {
            for (k, v) in entries {
                let mut path = prefix.to_vec();
                path.push(k.name.clone());
                field_facts(&path, v, facts);
            }
        }
        Yaml::Scalar { text, .. } => {
            facts.fields.insert(prefix.to_vec(), text.clone());
        }
        _ => {}
    }
}

fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.trim_matches('-').to_owned()
}

/// A Filebeat `exclude_files` regex as a logpipe glob, when it is one of the
/// common shapes (`\.gz$`, `.gz$`, `\.(gz|zip)$` is not).
fn exclude_glob(re: &str) -> Option<String> {
    let body = re.strip_suffix('$')?;
    let ext = body
        .strip_prefix("\\.")
        .or_else(|| body.strip_prefix('.'))?;
    (!ext.is_empty() && ext.chars().all(|c| c.is_ascii_alphanumeric())).then(|| format!("*.{ext}"))
}

pub fn read(source: &Source, root: &Node, notes: &mut Notes) -> Filebeat {
    let mut presets = Vec::new();
    let mut global_tags = Vec::new();
    let mut sources = Vec::new();
    let mut ship = None;
    for (key, value) in root.entries() {
        match key.name.as_str() {
            "filebeat" => {}
            "output" => ship = read_outputs(source, value, notes),
            "tags" => global_tags = strings(value).unwrap_or_default(),
            // What Filebeat itself runs with: no counterpart in a pipeline file.
            "name" | "logging" | "path" | "monitoring" | "http" | "setup" | "queue"
            | "max_procs" | "fields" | "fields_under_root" | "processors" => {
                if matches!(
                    key.name.as_str(),
                    "fields" | "fields_under_root" | "processors"
                ) {
                    notes.warn(
                        source,
                        key.pos,
                        format!("global `{}` is not converted", key.name),
                        "set it on each input (tags and fields), or add a mutate filter to the pipeline files",
                    );
                }
            }
            other => notes.warn(
                source,
                key.pos,
                format!("`{other}` is not converted"),
                "logpipe has no counterpart; remove it or configure it by hand",
            ),
        }
    }
    if let Some(fb) = root.get("filebeat") {
        for (key, value) in fb.entries() {
            match key.name.as_str() {
                "inputs" => {
                    let Yaml::Seq(items) = &value.value else {
                        notes.error(
                            source,
                            value.pos,
                            "filebeat.inputs must be a list of inputs",
                        );
                        continue;
                    };
                    for (i, item) in items.iter().enumerate() {
                        if let Some(s) = read_input(source, item, i, &global_tags, notes) {
                            sources.push(s);
                        }
                    }
                }
                "config" => {
                    for (kind, conf) in value.entries() {
                        let files = config_files(source, conf, notes);
                        for (file, root) in files {
                            let Yaml::Seq(items) = &root.value else {
                                notes.error(
                                    &file,
                                    root.pos,
                                    format!("a filebeat.config.{} file must be a list", kind.name),
                                );
                                continue;
                            };
                            match kind.name.as_str() {
                                "inputs" => {
                                    for (i, item) in items.iter().enumerate() {
                                        if let Some(s) =
                                            read_input(&file, item, i, &global_tags, notes)
                                        {
                                            sources.push(s);
                                        }
                                    }
                                }
                                "modules" => modules(&file, items, &mut presets, notes),
                                _ => {}
                            }
                        }
                        if !matches!(kind.name.as_str(), "inputs" | "modules") {
                            notes.warn(
                                source,
                                kind.pos,
                                format!("`filebeat.config.{}` is not converted", kind.name),
                                "logpipe reads inputs and modules; configure the rest by hand",
                            );
                        }
                    }
                }
                "modules" => match &value.value {
                    Yaml::Seq(items) => modules(source, items, &mut presets, notes),
                    _ => notes.error(
                        source,
                        value.pos,
                        "filebeat.modules must be a list of modules",
                    ),
                },
                "registry" | "shutdown_timeout" => {}
                other => notes.warn(
                    source,
                    key.pos,
                    format!("`filebeat.{other}` is not converted"),
                    "logpipe has no counterpart; configure it by hand",
                ),
            }
        }
    }
    // Unique names: a second `httpd_access` source becomes `httpd_access-2`.
    let mut seen: Vec<String> = Vec::new();
    for s in &mut sources {
        let base = s.name.clone();
        let mut n = 1;
        while seen.contains(&s.name) {
            n += 1;
            s.name = format!("{base}-{n}");
        }
        seen.push(s.name.clone());
    }
    Filebeat {
        sources,
        ship,
        presets,
    }
}

/// A fileset of Filebeat's apache module: logpipe's shipped preset for it.
#[derive(Debug, Clone)]
pub struct Preset {
    /// `httpd-access` or `httpd-error`.
    pub name: &'static str,
    pub text: &'static str,
    /// `var.paths`, when the module config sets them.
    pub paths: Option<Vec<String>>,
    pub origin: Origin,
}

const ACCESS_PRESET: &str = include_str!("../../../pipelines/httpd-access.toml");
const ERROR_PRESET: &str = include_str!("../../../pipelines/httpd-error.toml");

/// `- module: apache` entries become the shipped presets; other modules warnings.
fn modules(source: &Source, items: &[Node], presets: &mut Vec<Preset>, notes: &mut Notes) {
    for item in items {
        let name = item.get("module").and_then(Node::as_str).unwrap_or("");
        if name != "apache" {
            notes.warn(
                source,
                item.pos,
                format!("Filebeat module `{name}` is not converted"),
                "logpipe ships presets for the apache module only; write a pipeline file with grok and date filters for these logs",
            );
            continue;
        }
        for (key, fileset) in item.entries() {
            let (preset_name, text) = match key.name.as_str() {
                "module" => continue,
                "access" => ("httpd-access", ACCESS_PRESET),
                "error" => ("httpd-error", ERROR_PRESET),
                other => {
                    notes.warn(
                        source,
                        key.pos,
                        format!("apache module setting `{other}` is not converted"),
                        "logpipe's presets have the access and error filesets",
                    );
                    continue;
                }
            };
            if fileset.get("enabled").and_then(Node::as_bool) == Some(false) {
                continue;
            }
            let mut paths = None;
            for (k, v) in fileset.entries() {
                match k.name.as_str() {
                    "enabled" => {}
                    "var" if v.get("paths").is_some() && v.entries().len() == 1 => {
                        paths = v.get("paths").and_then(strings);
                    }
                    other => notes.warn(
                        source,
                        k.pos,
                        format!("apache module `{}.{other}` is not converted", key.name),
                        "the preset takes its paths from var.paths; change the rest in the written file",
                    ),
                }
            }
            presets.push(Preset {
                name: preset_name,
                text,
                paths,
                origin: origin(
                    source,
                    key.pos,
                    &format!("apache module, {} fileset", key.name),
                ),
            });
        }
    }
}

/// The files of a `filebeat.config.inputs` or `.modules` section: its
/// `path` glob, relative to filebeat.yml's directory (`${path.config}`).
fn config_files(source: &Source, conf: &Node, notes: &mut Notes) -> Vec<(Source, Node)> {
    let Some(pattern) = conf.get("path").and_then(Node::as_str) else {
        return Vec::new();
    };
    if conf.get("enabled").and_then(Node::as_bool) == Some(false) {
        return Vec::new();
    }
    let dir = source.path.parent().unwrap_or(std::path::Path::new("."));
    let pattern = pattern.replace("${path.config}", &dir.display().to_string());
    let pattern = if std::path::Path::new(&pattern).is_absolute() {
        pattern
    } else {
        dir.join(pattern).display().to_string()
    };
    let mut paths: Vec<std::path::PathBuf> = match glob::glob(&pattern) {
        Ok(found) => found.filter_map(Result::ok).collect(),
        Err(e) => {
            notes.error(source, conf.pos, format!("bad path glob `{pattern}`: {e}"));
            return Vec::new();
        }
    };
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file = Source::new(&path, text);
                match crate::import::yaml::parse(&file) {
                    Ok(root) => out.push((file, root)),
                    Err(d) => notes.push_diagnostic(d),
                }
            }
            Err(e) => {
                notes.push_diagnostic(Source::new(&path, "").error(format!("cannot read: {e}")))
            }
        }
    }
    out
}

fn read_input(
    source: &Source,
    node: &Node,
    index: usize,
    global_tags: &[String],
    notes: &mut Notes,
) -> Option<LogSource> {
    let kind = node.get("type").and_then(Node::as_str).unwrap_or("log");
    if node.get("enabled").and_then(Node::as_bool) == Some(false) {
        return None;
    }
    if !matches!(kind, "log" | "filestream") {
        notes.warn(
            source,
            node.pos,
            format!("input of type `{kind}` is not converted"),
            "logpipe reads files (type log and filestream); ship this source another way",
        );
        return None;
    }
    let mut input = Stage::new(
        Section::Input,
        Some(origin(source, node.pos, &format!("input {kind}"))),
    );
    input.comment(format!(
        "Filebeat input {} (type {kind}) at {}:{}:{}",
        index + 1,
        source.path.display(),
        node.pos.line,
        node.pos.col
    ));
    input.set("type", "file");
    let mut facts = Facts::default();
    let mut filters = Vec::new();
    let mut tags: Vec<String> = Vec::new();
    let mut id = None;
    let mut multiline: Option<(&Key, &Node, bool)> = None;
    // filestream's `close.on_state_change.inactive` and
    // `prospector.scanner.exclude_files` are read by their dotted names.
    let mut settings: Vec<(String, &Key, &Node)> = Vec::new();
    for (key, value) in node.entries() {
        if matches!(key.name.as_str(), "close" | "prospector") {
            leaves(&key.name, key, value, &mut settings);
        } else {
            settings.push((key.name.clone(), key, value));
        }
    }
    for (name, key, value) in settings {
        match name.as_str() {
            "type" | "enabled" => {}
            "id" => id = value.as_str().map(str::to_owned),
            "paths" => match strings(value) {
                Some(paths) => input.set("paths", paths),
                None => notes.error(source, value.pos, "`paths` must be a list of globs"),
            },
            "exclude_files" | "prospector.scanner.exclude_files" => {
                let mut globs = Vec::new();
                for re in value.as_str_list().unwrap_or_default() {
                    match exclude_glob(re) {
                        Some(g) => globs.push(g),
                        None => notes.warn(
                            source,
                            value.pos,
                            format!("exclude_files regex `{re}` is not converted"),
                            "write it as a glob in the file input's `exclude` (`*.gz`, `/var/log/httpd/old/*`)",
                        ),
                    }
                }
                if !globs.is_empty() {
                    input.set("exclude", globs);
                }
            }
            "tags" => tags.extend(strings(value).unwrap_or_default()),
            "fields" => {
                input.set("fields", toml_value(value));
                field_facts(&["fields".to_owned()], value, &mut facts);
            }
            "fields_under_root" if value.as_bool() == Some(false) => {}
            "fields_under_root" => notes.warn(
                source,
                key.pos,
                "`fields_under_root: true` is not converted (logpipe's file input puts them under `fields`)",
                "move them to the top level with a mutate `rename` in the pipeline file, and check the conditions that use them",
            ),
            "encoding" => {
                let e = value.as_str().unwrap_or("").to_ascii_lowercase();
                if !matches!(e.as_str(), "plain" | "utf-8" | "utf8") {
                    notes.warn(
                        source,
                        value.pos,
                        format!("encoding `{e}` is not converted (logpipe reads UTF-8 and tags invalid bytes `_invalid_utf8`)"),
                        "convert the logs to UTF-8, or leave this source on Filebeat",
                    );
                }
            }
            "ignore_older" | "close_inactive" | "close.on_state_change.inactive" => {
                let name = if name == "ignore_older" {
                    "ignore_older"
                } else {
                    "close_inactive"
                };
                if let Some(v) = value.as_str() {
                    input.set(name, v);
                }
            }
            "multiline" => multiline = Some((key, value, false)),
            "parsers" => {
                for parser in match &value.value {
                    Yaml::Seq(items) => items.as_slice(),
                    _ => &[],
                } {
                    match parser.entries().first() {
                        Some((k, v)) if k.name == "multiline" => multiline = Some((k, v, true)),
                        Some((k, _)) => notes.warn(
                            source,
                            k.pos,
                            format!("filestream parser `{}` is not converted", k.name),
                            "add a filter (json, mutate) to the pipeline file instead",
                        ),
                        None => {}
                    }
                }
            }
            "include_lines" | "exclude_lines" => {}
            "processors" => read_processors(source, value, &mut tags, &mut input, &mut facts, &mut filters, notes),
            other => notes.warn(
                source,
                key.pos,
                format!("input setting `{other}` is not converted"),
                "logpipe's file input has no such setting (see README, The file input)",
            ),
        }
    }
    if let Some(f) = line_filters(source, node) {
        filters.insert(0, f);
    }
    if let Some((key, value, filestream)) = multiline {
        read_multiline(source, key, value, filestream, &mut input, notes);
    }
    tags.extend(global_tags.iter().cloned());
    if !tags.is_empty() {
        input.set("tags", tags.clone());
    }
    facts.tags = tags;
    let name = id
        .as_deref()
        .or(facts.tags.first().map(String::as_str))
        .map(sanitize)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("input-{}", index + 1));
    Some(LogSource {
        name,
        input,
        facts,
        filters,
    })
}

/// The leaves under `node` with their dotted names (`close.on_state_change.inactive`).
fn leaves<'a>(
    name: &str,
    key: &'a Key,
    node: &'a Node,
    out: &mut Vec<(String, &'a Key, &'a Node)>,
) {
    match &node.value {
        Yaml::Map(entries) => {
            for (k, v) in entries {
                leaves(&format!("{name}.{}", k.name), k, v, out);
            }
        }
        _ => out.push((name.to_owned(), key, node)),
    }
}

fn read_multiline(
    source: &Source,
    key: &Key,
    value: &Node,
    filestream: bool,
    input: &mut Stage,
    notes: &mut Notes,
) {
    let mut table = toml::Table::new();
    for (k, v) in value.entries() {
        match (k.name.as_str(), v.as_str()) {
            ("type", Some("pattern")) => {}
            ("pattern", Some(p)) => {
                table.insert("pattern".into(), p.into());
            }
            ("negate", _) => {
                table.insert("negate".into(), v.as_bool().unwrap_or(false).into());
            }
            ("match", Some("after")) => {
                table.insert("match".into(), "previous".into());
            }
            ("match", Some("before")) => {
                table.insert("match".into(), "next".into());
            }
            ("max_lines", Some(n)) if n.parse::<i64>().is_ok() => {
                table.insert("max_lines".into(), n.parse::<i64>().unwrap_or(500).into());
            }
            ("timeout", Some(t)) => {
                table.insert("timeout".into(), t.into());
            }
            (other, _) => notes.warn(
                source,
                k.pos,
                format!(
                    "multiline `{other}`{} is not converted",
                    if filestream { " (filestream parser)" } else { "" }
                ),
                "logpipe's multiline takes pattern, negate, match (after = previous, before = next), max_lines and timeout",
            ),
        }
    }
    if table.contains_key("pattern") {
        input.set("multiline", Value::Table(table));
    } else {
        notes.warn(
            source,
            key.pos,
            "multiline without a pattern is not converted",
            "give it `pattern` (count and while_pattern modes have no counterpart)",
        );
    }
}

/// Filebeat's `%{[fields.log_topic]}` is logpipe's `%{[fields][log_topic]}`.
fn template(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("%{[") {
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find("]}") else {
            break;
        };
        let path = &rest[at + 3..at + end];
        out.push_str("%{[");
        out.push_str(&path.replace('.', "]["));
        out.push_str("]}");
        rest = &rest[at + end + 2..];
    }
    out.push_str(rest);
    out
}

fn regex_literal(re: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in re.chars() {
        if c == '/' && !escaped {
            out.push('\\');
        }
        escaped = c == '\\' && !escaped;
        out.push(c);
    }
    format!("/{out}/")
}

#[allow(clippy::too_many_arguments)]
fn read_processors(
    source: &Source,
    value: &Node,
    tags: &mut Vec<String>,
    input: &mut Stage,
    facts: &mut Facts,
    filters: &mut Vec<Stage>,
    notes: &mut Notes,
) {
    let Yaml::Seq(items) = &value.value else {
        notes.error(source, value.pos, "`processors` must be a list");
        return;
    };
    for item in items {
        let Some((key, body)) = item.entries().first() else {
            continue;
        };
        let condition = match body.get("when") {
            None => None,
            Some(w) => match when(w) {
                Some(c) => Some(render(&c)),
                None => {
                    notes.warn(
                        source,
                        w.pos,
                        format!("the `when` of processor `{}` is not converted", key.name),
                        "logpipe reads equals, contains, regexp, has_fields, and, or, not; write the filter's `if = '…'` by hand",
                    );
                    continue;
                }
            },
        };
        // Under a condition, a processor's tags are some events' only, and
        // fields it adds or drops depend on the event.
        match key.name.as_str() {
            "add_tags" if condition.is_some() => facts
                .maybe_tags
                .extend(body.get("tags").and_then(strings).unwrap_or_default()),
            "add_fields" if condition.is_some() => facts.open = true,
            "drop_fields" => facts.open = true,
            _ => {}
        }
        let what = format!("processor {}", key.name);
        let mut filter = Stage::new(Section::Filter, Some(origin(source, key.pos, &what)));
        filter.comment(format!(
            "Filebeat {what} at {}:{}:{} (Filebeat ran it on the web host; logpipe on the indexer)",
            source.path.display(),
            key.pos.line,
            key.pos.col
        ));
        let before = filters.len();
        match key.name.as_str() {
            "add_tags" if body.get("target").is_none() && condition.is_none() => {
                tags.extend(body.get("tags").and_then(strings).unwrap_or_default());
            }
            "add_tags" if body.get("target").is_none() => {
                filter.set("type", "mutate");
                filter.set(
                    "add_tag",
                    body.get("tags").and_then(strings).unwrap_or_default(),
                );
                filters.push(filter);
            }
            "add_fields" => {
                let target = body
                    .get("target")
                    .and_then(Node::as_str)
                    .unwrap_or("fields");
                let Some(fields) = body.get("fields") else {
                    continue;
                };
                if target == "fields" && condition.is_none() {
                    let mut merged = match input.get("fields") {
                        Some(Value::Table(t)) => t.clone(),
                        _ => toml::Table::new(),
                    };
                    if let Value::Table(t) = toml_value(fields) {
                        merged.extend(t);
                    }
                    input.set("fields", Value::Table(merged));
                    field_facts(&["fields".to_owned()], fields, facts);
                } else {
                    let mut add = toml::Table::new();
                    for (k, v) in fields.entries() {
                        let path = if target.is_empty() {
                            format!("[{}]", k.name)
                        } else {
                            format!("[{}][{}]", target.replace('.', "]["), k.name)
                        };
                        let text = match toml_value(v) {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        add.insert(path, text.into());
                    }
                    filter.set("type", "mutate");
                    filter.set("add_field", Value::Table(add));
                    filters.push(filter);
                }
            }
            "drop_fields" => {
                let fields: Vec<String> = body
                    .get("fields")
                    .and_then(Node::as_str_list)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|f| format!("[{}]", f.replace('.', "][")))
                    .collect();
                filter.set("type", "mutate");
                filter.set("remove_field", fields);
                filters.push(filter);
            }
            "drop_event" => {
                filter.set("type", "drop");
                filters.push(filter);
            }
            other => notes.warn(
                source,
                key.pos,
                format!("processor `{other}` is not converted"),
                "add the matching logpipe filter (mutate, json, grok, …) to the pipeline file",
            ),
        }
        if let (Some(c), Some(f)) = (&condition, filters.get_mut(before)) {
            f.keys
                .insert(1.min(f.keys.len()), ("if".into(), c.as_str().into()));
        }
    }
}

/// A Filebeat condition (`when`) as a Logstash condition tree, so that it
/// is written and decided as Logstash's are; `None` for the kinds logpipe's
/// language has no counterpart of (`range`, `network`).
pub fn when(node: &Node) -> Option<Cond> {
    let mut parts = Vec::new();
    for (key, body) in node.entries() {
        parts.push(when_one(&key.name, body)?);
    }
    fold(parts, BoolOp::And)
}

fn fold(parts: Vec<Cond>, op: BoolOp) -> Option<Cond> {
    parts
        .into_iter()
        .reduce(|a, b| Cond::Bool(op, Box::new(a), Box::new(b)))
}

fn field(path: &str) -> Operand {
    Operand::Field(path.split('.').map(str::to_owned).collect())
}

fn when_one(kind: &str, body: &Node) -> Option<Cond> {
    let mut pairs: Vec<(String, &Key, &Node)> = Vec::new();
    for (k, v) in body.entries() {
        leaves(&k.name, k, v, &mut pairs);
    }
    let scalar = |v: &Node| -> Option<Operand> {
        let text = v.as_str()?;
        Some(match &v.value {
            Yaml::Scalar { quoted: false, .. } if text.parse::<f64>().is_ok() => {
                Operand::Number(text.to_owned())
            }
            _ => Operand::Str(text.to_owned()),
        })
    };
    match kind {
        "equals" => fold(
            pairs
                .iter()
                .map(|(f, _, v)| Some(Cond::Compare(field(f), CmpOp::Eq, scalar(v)?)))
                .collect::<Option<Vec<_>>>()?,
            BoolOp::And,
        ),
        "contains" => fold(
            pairs
                .iter()
                .map(|(f, _, v)| {
                    Some(Cond::In(
                        Operand::Str(v.as_str()?.to_owned()),
                        field(f),
                        true,
                    ))
                })
                .collect::<Option<Vec<_>>>()?,
            BoolOp::And,
        ),
        "regexp" => fold(
            pairs
                .iter()
                .map(|(f, _, v)| Some(Cond::Regex(field(f), v.as_str()?.replace('/', "\\/"), true)))
                .collect::<Option<Vec<_>>>()?,
            BoolOp::And,
        ),
        "has_fields" => fold(
            body.as_str_list()?
                .into_iter()
                .map(|f| Cond::Truthy(field(f)))
                .collect(),
            BoolOp::And,
        ),
        "and" | "or" => {
            let Yaml::Seq(items) = &body.value else {
                return None;
            };
            let parts = items.iter().map(when).collect::<Option<Vec<_>>>()?;
            fold(
                parts,
                if kind == "and" {
                    BoolOp::And
                } else {
                    BoolOp::Or
                },
            )
        }
        "not" => Some(Cond::Not(Box::new(when(body)?))),
        _ => None,
    }
}

/// `include_lines` / `exclude_lines` of an input, as a drop filter.
pub fn line_filters(source: &Source, node: &Node) -> Option<Stage> {
    let include = node.get("include_lines").and_then(Node::as_str_list);
    let exclude = node.get("exclude_lines").and_then(Node::as_str_list);
    let mut parts = Vec::new();
    if let Some(include) = &include {
        let any: Vec<String> = include
            .iter()
            .map(|re| format!("[message] =~ {}", regex_literal(re)))
            .collect();
        parts.push(format!("not ({})", any.join(" or ")));
    }
    if let Some(exclude) = &exclude {
        parts.extend(
            exclude
                .iter()
                .map(|re| format!("([message] =~ {})", regex_literal(re))),
        );
    }
    if parts.is_empty() {
        return None;
    }
    let mut filter = Stage::new(
        Section::Filter,
        Some(origin(source, node.pos, "include_lines/exclude_lines")),
    );
    filter.comment("Filebeat's include_lines / exclude_lines (on the indexer: logpipe's ship half does not filter)");
    filter.set("type", "drop");
    filter.set("if", parts.join(" or "));
    Some(filter)
}

fn read_outputs(source: &Source, output: &Node, notes: &mut Notes) -> Option<Ship> {
    let mut ship = None;
    for (key, value) in output.entries() {
        if key.name == "kafka" {
            if value.get("enabled").and_then(Node::as_bool) == Some(false) {
                continue;
            }
            ship = Some(read_kafka(source, key, value, notes));
        } else if value.get("enabled").and_then(Node::as_bool) != Some(false) {
            notes.warn(
                source,
                key.pos,
                format!("output.{} is not converted", key.name),
                "logpipe's ship half writes to Kafka; for Filebeat → Logstash or Elasticsearch directly, write a pipeline without a [kafka] hop by hand",
            );
        }
    }
    ship
}

fn read_kafka(source: &Source, key: &Key, node: &Node, notes: &mut Notes) -> Ship {
    let mut ship = Ship {
        origin: Some(origin(source, key.pos, "output.kafka")),
        ..Ship::default()
    };
    let mut sasl: Vec<(String, Value)> = Vec::new();
    let mut tls: Vec<(String, Value)> = Vec::new();
    for (k, v) in node.entries() {
        match k.name.as_str() {
            "enabled" | "version" => {}
            "codec" if v.get("json").is_some() => {}
            "hosts" => {
                ship.brokers = strings(v)
                    .unwrap_or_default()
                    .iter()
                    .flat_map(|h| h.split(','))
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty())
                    .collect();
            }
            "topic" => {
                ship.topic = Some(to_logpipe(&template(v.as_str().unwrap_or_default())));
            }
            "client_id" => ship.keys.push(("client_id".into(), toml_value(v))),
            "required_acks" => {
                let acks = v.as_str().and_then(|a| a.parse::<i64>().ok()).unwrap_or(1);
                ship.keys.push(("acks".into(), Value::Integer(acks)));
                if acks != -1 {
                    ship.keys.push(("idempotence".into(), Value::Boolean(false)));
                }
            }
            "compression" => ship.keys.push(("compression".into(), toml_value(v))),
            "max_message_bytes" => ship.keys.push(("message_max_bytes".into(), toml_value(v))),
            "username" => sasl.push(("username".into(), toml_value(v))),
            "password" => sasl.push(("password".into(), toml_value(v))),
            "sasl" => {
                if let Some(m) = v.get("mechanism").and_then(Node::as_str) {
                    sasl.push(("mechanism".into(), m.into()));
                }
            }
            "ssl" => {
                for (sk, sv) in v.entries() {
                    match sk.name.as_str() {
                        "enabled" => {}
                        "certificate_authorities" => {
                            if let Some(first) = sv.as_str_list().and_then(|l| l.first().map(|s| to_logpipe(s))) {
                                tls.push(("ca".into(), first.into()));
                            }
                        }
                        "certificate" => tls.push(("cert".into(), toml_value(sv))),
                        "key" => tls.push(("key".into(), toml_value(sv))),
                        "key_passphrase" => tls.push(("key_password".into(), toml_value(sv))),
                        other => notes.warn(
                            source,
                            sk.pos,
                            format!("output.kafka.ssl.{other} is not converted"),
                            "[kafka.tls] takes ca, cert, key and key_password; host names are always verified",
                        ),
                    }
                }
            }
            "topics" => {
                let Yaml::Seq(items) = &v.value else {
                    notes.error(source, v.pos, "output.kafka.topics must be a list of rules");
                    continue;
                };
                for item in items {
                    let Some(topic) = item.get("topic").and_then(Node::as_str) else {
                        notes.warn(source, item.pos, "a topics rule without `topic` is not converted", "give each rule a topic (mappings have no counterpart)");
                        continue;
                    };
                    let when = match item.get("when") {
                        None => None,
                        Some(w) => match when(w) {
                            Some(c) => Some(c),
                            None => {
                                notes.warn(source, w.pos, format!("the `when` of topic `{topic}` is not converted"), "logpipe reads equals, contains, regexp, has_fields, and, or, not; give that source a topic of its own");
                                continue;
                            }
                        },
                    };
                    ship.rules.push(TopicRule {
                        topic: to_logpipe(&template(topic)),
                        when,
                        origin: origin(source, item.pos, &format!("output.kafka topics rule `{topic}`")),
                    });
                }
            }
            other => notes.warn(
                source,
                k.pos,
                format!("output.kafka.{other} is not converted"),
                match other {
                    "partition" => "logpipe uses librdkafka's sticky partitioner, or `key` in [kafka] for hashing",
                    _ => "set the matching librdkafka property in [kafka] `producer = { … }`",
                },
            ),
        }
    }
    if !sasl.is_empty() {
        if !sasl.iter().any(|(k, _)| k == "mechanism") {
            sasl.insert(0, ("mechanism".into(), "PLAIN".into()));
        }
        ship.subtables.push(("sasl".into(), sasl));
    }
    if !tls.is_empty() {
        ship.subtables.push(("tls".into(), tls));
    }
    ship
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_exclude_regexes_become_globs() {
        assert_eq!(exclude_glob(r"\.gz$").as_deref(), Some("*.gz"));
        assert_eq!(exclude_glob(".zip$").as_deref(), Some("*.zip"));
        assert_eq!(exclude_glob(r"\.(gz|zip)$"), None);
        assert_eq!(exclude_glob("^/tmp"), None);
    }

    #[test]
    fn filebeat_field_templates_become_logpipe_field_references() {
        assert_eq!(template("%{[fields.log_topic]}"), "%{[fields][log_topic]}");
        assert_eq!(
            template("logs-%{[agent.name]}-x"),
            "logs-%{[agent][name]}-x"
        );
        assert_eq!(template("plain.topic"), "plain.topic");
    }

    #[test]
    fn regexes_become_condition_literals() {
        assert_eq!(regex_literal("^GET /x"), r"/^GET \/x/");
        assert_eq!(regex_literal(r"a\/b"), r"/a\/b/");
    }
}
