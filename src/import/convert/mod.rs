//! Filebeat + Logstash configs to logpipe pipeline files: one file per log
//! source (a Filebeat input, with the Logstash route its events take), the
//! ship half from `output.kafka`, the index half from the Logstash `kafka`
//! input reading that topic, then the filters and outputs the source's
//! events reach. Each file is checked with the loader `logpipe check` uses;
//! a stage it refuses is left out with a warning, so what is written always
//! passes.

pub mod condition;
pub mod filebeat;
pub mod logstash;
pub mod render;

use std::path::{Path, PathBuf};

use condition::Facts;
use render::{File, Section, Stage};

use crate::config::{Diagnostic, Severity, Source};
use crate::import::logstash::{Pipeline, SectionKind};
use crate::import::yaml::{Node, Pos};

/// The warnings and errors of a conversion, each at its place in the
/// user's configs. The same one found twice (a Logstash output converted
/// for two sources) is kept once.
#[derive(Debug, Default)]
pub struct Notes {
    pub diagnostics: Vec<Diagnostic>,
}

impl Notes {
    pub fn push_diagnostic(&mut self, d: Diagnostic) {
        self.push(d);
    }

    fn push(&mut self, d: Diagnostic) {
        if !self.diagnostics.contains(&d) {
            self.diagnostics.push(d);
        }
    }

    /// `what — instead`, at a YAML position.
    pub fn warn(&mut self, source: &Source, pos: Pos, what: impl AsRef<str>, instead: &str) {
        self.warn_at(source, pos.line, pos.col, what, instead);
    }

    pub fn warn_at(
        &mut self,
        source: &Source,
        line: usize,
        col: usize,
        what: impl AsRef<str>,
        instead: &str,
    ) {
        self.push(Diagnostic {
            path: source.path.clone(),
            line,
            column: col,
            severity: Severity::Warning,
            message: format!("{} — {instead}", what.as_ref()),
        });
    }

    pub fn error(&mut self, source: &Source, pos: Pos, message: impl Into<String>) {
        self.push(pos.diagnostic(source, Severity::Error, message));
    }

    fn at_origin(&mut self, origin: &render::Origin, severity: Severity, message: String) {
        self.push(Diagnostic {
            path: origin.file.clone(),
            line: origin.line,
            column: origin.col,
            severity,
            message,
        });
    }
}

/// A pipeline file to write.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct Imported {
    pub files: Vec<Written>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Imported {
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    pub fn has_warnings(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Warning)
    }
}

/// `${VAR}`s are checked for their syntax only: a variable the importing
/// host does not have is still one the indexer may.
pub(crate) fn check_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .or_else(|| Some("placeholder".to_owned()))
}

/// Converts a parsed filebeat.yml and (optionally) the Logstash pipeline its
/// events go through into files under `out_dir`.
pub fn convert(
    filebeat_source: &Source,
    filebeat_root: &Node,
    logstash: Option<&Pipeline>,
    out_dir: &Path,
) -> Imported {
    let mut notes = Notes::default();
    let fb = filebeat::read(filebeat_source, filebeat_root, &mut notes);
    let empty = Pipeline::default();
    let ls = logstash.unwrap_or(&empty);
    let inputs = logstash::kafka_inputs(ls, &mut notes);
    if logstash.is_none() {
        notes.push(filebeat_source.diagnostic(
            None,
            Severity::Warning,
            "no Logstash config given: the pipeline files ship to Kafka and have no outputs — pass the Logstash pipeline with --logstash, or add [[output]]s by hand",
        ));
    }
    if fb.sources.is_empty() && fb.presets.is_empty() {
        notes.push(filebeat_source.diagnostic(None, Severity::Warning, "no enabled input of type log or filestream: nothing to convert — check filebeat.inputs"));
    }
    if fb.ship.is_none() && !fb.sources.is_empty() {
        notes.push(filebeat_source.diagnostic(
            None,
            Severity::Warning,
            "no output.kafka: the pipeline files run in-process (file input → filters → outputs, no hop) — add a [kafka] hop by hand to split ship and index hosts",
        ));
    }

    // The topic each source's events take (Filebeat's `topics` rules, else
    // `topic`), and the Logstash kafka input that reads it.
    let topics: Vec<Option<String>> = fb
        .sources
        .iter()
        .map(|s| {
            let ship = fb.ship.as_ref()?;
            match ship.topic_for(&s.facts) {
                Ok(t) => t,
                Err(rule) => {
                    notes.at_origin(&rule, Severity::Warning, format!(
                        "whether the events of `{}` take this rule depends on each event: the file ships them to the default topic {} — give that input a tag or field the rule decides on",
                        s.name,
                        ship.topic.as_deref().map_or("(none)".to_owned(), |t| format!("`{t}`"))
                    ));
                    ship.topic.clone()
                }
            }
        })
        .collect();
    let routes: Vec<Option<usize>> = topics
        .iter()
        .map(|t| {
            t.as_ref()
                .and_then(|t| inputs.iter().position(|i| i.topics.contains(t)))
        })
        .collect();
    if let Some(ship) = &fb.ship {
        for (s, (t, r)) in fb.sources.iter().zip(topics.iter().zip(&routes)) {
            let Some(o) = &ship.origin else { continue };
            match (t, r) {
                (None, _) => notes.at_origin(o, Severity::Warning, format!("no topic for the events of `{}` — set output.kafka.topic", s.name)),
                (Some(t), _) if t.contains("%{") => notes.at_origin(o, Severity::Warning, format!("topic `{t}` is a template: which Logstash kafka input reads each source's events is not decided — check the [kafka] topics of the written files")),
                (Some(t), None) if logstash.is_some() => notes.at_origin(o, Severity::Warning, format!("no Logstash kafka input reads topic `{t}`: its files have no outputs — add the Logstash config that reads it with --logstash")),
                _ => {}
            }
        }
    }
    // Sources read by one Logstash input (one consumer group).
    let sharers = |i: usize| -> Vec<&filebeat::LogSource> {
        fb.sources
            .iter()
            .zip(&routes)
            .filter(|(_, r)| **r == Some(i))
            .map(|(s, _)| s)
            .collect()
    };
    for (i, input) in inputs.iter().enumerate() {
        let readers = sharers(i);
        if readers.is_empty() {
            continue;
        }
        if let Some(ship) = &fb.ship {
            let mut a = ship.brokers.clone();
            let mut b = input.brokers.clone();
            a.sort();
            b.sort();
            if a != b {
                notes.at_origin(&input.origin, Severity::Warning, format!(
                    "bootstrap_servers ({}) are not Filebeat's hosts ({}): a logpipe hop has one broker list — the files use Filebeat's; check that both name the same cluster",
                    b.join(","), a.join(",")
                ));
            }
        }
        if readers.len() > 1 {
            let names: Vec<String> = readers
                .iter()
                .map(|s| format!("{}-{}", input.group_id, s.name))
                .collect();
            notes.at_origin(&input.origin, Severity::Warning, format!(
                "{} sources ship to topic `{}`, which Logstash reads in one consumer group `{}`: each pipeline file reads the topic in a group of its own ({}) and keeps its own events (one group split across the files would lose the events each file skips); these groups start without Logstash's committed offsets — at the switch, set them to group `{}`'s offsets (kafka-consumer-groups --reset-offsets --to-offset, per partition) or start them with auto_offset_reset = \"earliest\"",
                readers.len(), input.topics.join("`, `"), input.group_id, names.join(", "), input.group_id
            ));
        }
    }

    let mut imported = Imported::default();
    for (n, source) in fb.sources.iter().enumerate() {
        let (topic, route) = (&topics[n], routes[n]);
        let readers = route.map(sharers).unwrap_or_default();
        let shared = readers.len() > 1;
        let mut file = File {
            name: source.name.clone(),
            header: vec![
                format!("Imported by `logpipe import` from {}{}.", filebeat_source.path.display(),
                    if ls.sources.is_empty() { String::new() } else {
                        format!(" and {}", ls.sources.iter().map(|s| s.path.display().to_string()).collect::<Vec<_>>().join(", "))
                    }),
                "Read the comments, then `logpipe check` this file. Until `logpipe import --filebeat-registry` exists, the file input reads existing files from their beginning (start_position): lines Filebeat shipped are shipped again.".into(),
            ],
            stages: vec![source.input.clone()],
        };
        let mut filters = source.filters.clone();
        if let Some(ship) = &fb.ship {
            let mut hop = Stage::new(Section::Kafka, ship.origin.clone());
            hop.comment("Ship half: Filebeat's output.kafka; index half: the Logstash kafka input reading the topic.");
            hop.set("brokers", ship.brokers.clone());
            if let Some(t) = &topic {
                hop.set("topic", t.as_str());
            }
            for (k, v) in &ship.keys {
                hop.set(k, v.clone());
            }
            hop.subtables = ship.subtables.clone();
            if let Some(i) = route {
                let input = &inputs[i];
                let group = if shared {
                    format!("{}-{}", input.group_id, source.name)
                } else {
                    input.group_id.clone()
                };
                hop.set("group_id", group);
                for (k, v) in &input.keys {
                    hop.set(k, v.clone());
                }
                for c in &input.comments {
                    hop.comment(c.clone());
                }
                filters.extend(input.prelude.iter().cloned());
            }
            file.stages.push(hop);
        }
        let routed = fb.ship.is_none() || route.is_some();
        let mut base = Vec::new();
        if shared {
            let others: Vec<filebeat::LogSource> = readers.iter().map(|s| (*s).clone()).collect();
            match membership(source, &others) {
                Some(guard) => base.push(guard),
                None => notes.push(source_diagnostic(source, format!(
                    "the events of `{}` cannot be told from the other sources' on topic `{}` (no tag of its own): each file's outputs would index them all — give each Filebeat input a tag of its own",
                    source.name,
                    topic.as_deref().unwrap_or("")
                ))),
            }
        }
        // A filter may add or remove tags and change fields, so filter
        // conditions are kept whole, and outputs are decided by the source's
        // tags and fields only when no filter runs before them (the kafka
        // input's `type` prelude aside: it sets only `type`).
        let open = Facts {
            open: true,
            ..Facts::default()
        };
        if routed {
            filters.extend(logstash::stages(
                ls,
                SectionKind::Filter,
                &open,
                &[],
                &mut notes,
            ));
        }
        let type_only = filters.iter().all(|f| {
            f.keys
                .iter()
                .any(|(k, v)| k == "if" && v.as_str() == Some("not [type]"))
        });
        let output_facts = if type_only { &source.facts } else { &open };
        file.stages.extend(filters);
        if routed {
            file.stages.extend(logstash::stages(
                ls,
                SectionKind::Output,
                output_facts,
                &base,
                &mut notes,
            ));
        }
        if fb.ship.is_none() && !file.stages.iter().any(|s| s.section == Section::Output) {
            let mut out = Stage::new(Section::Output, None);
            out.comment("No hop and no Logstash output: events are printed.");
            out.set("type", "stdout");
            file.stages.push(out);
        }
        let path = out_dir.join(format!("{}.toml", source.name));
        if let Some(text) = checked(&mut file, &path, &mut notes) {
            imported.files.push(Written { path, text });
        }
    }
    for preset in &fb.presets {
        let text = preset_text(preset, fb.ship.as_ref());
        let path = out_dir.join(format!("{}.toml", preset.name));
        let (_, diagnostics) =
            crate::pipeline::parse(&Source::new(&path, text.clone()), &check_env);
        match diagnostics.iter().find(|d| d.severity == Severity::Error) {
            None => imported.files.push(Written { path, text }),
            Some(e) => notes.at_origin(&preset.origin, Severity::Warning, format!(
                "{} is not converted: logpipe check says `{}` — copy pipelines/{}.toml and set its paths by hand",
                preset.origin.what, e.message, preset.name
            )),
        }
    }

    // In the order of the files, then of their text.
    let rank = |path: &Path| {
        std::iter::once(&filebeat_source.path)
            .chain(ls.sources.iter().map(|s| &s.path))
            .position(|p| p == path)
            .unwrap_or(usize::MAX)
    };
    notes
        .diagnostics
        .sort_by_key(|d| (rank(&d.path), d.line, d.column));
    imported.diagnostics = notes.diagnostics;
    imported
}

/// A shipped preset with the module's `var.paths` and Filebeat's brokers.
fn preset_text(preset: &filebeat::Preset, ship: Option<&filebeat::Ship>) -> String {
    let mut out = format!(
        "# Imported by `logpipe import` from {}:{}:{} ({}): logpipe's shipped preset,\n# which parses the lines into the ECS fields of Filebeat's apache module.\n# Its topic, consumer group and index are the preset's: check them against your\n# Logstash route.\n",
        preset.origin.file.display(),
        preset.origin.line,
        preset.origin.col,
        preset.origin.what
    );
    for line in preset.text.lines() {
        match (&preset.paths, ship) {
            (Some(paths), _) if line.starts_with("paths = ") => {
                let list: Vec<toml::Value> = paths
                    .iter()
                    .map(|p| toml::Value::String(p.clone()))
                    .collect();
                out.push_str(&format!("paths = {}", toml::Value::Array(list)));
            }
            (_, Some(ship)) if line.starts_with("brokers = ") && !ship.brokers.is_empty() => {
                let list: Vec<toml::Value> = ship
                    .brokers
                    .iter()
                    .map(|b| toml::Value::String(b.clone()))
                    .collect();
                out.push_str(&format!("brokers = {}", toml::Value::Array(list)));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The test that picks `source`'s events out of a topic others ship to too:
/// a tag no other source has.
fn membership(
    source: &filebeat::LogSource,
    all: &[filebeat::LogSource],
) -> Option<logstash::Guard> {
    let own = source.facts.tags.iter().find(|t| {
        all.iter()
            .filter(|o| o.name != source.name)
            .all(|o| !o.facts.tags.contains(t))
    })?;
    Some(logstash::Guard {
        rendered: Some(format!("\"{own}\" in [tags]")),
        comment: format!("Only this file's source (tag `{own}`): the topic carries the other sources' events too."),
    })
}

fn source_diagnostic(source: &filebeat::LogSource, message: String) -> Diagnostic {
    match &source.input.origin {
        Some(o) => Diagnostic {
            path: o.file.clone(),
            line: o.line,
            column: o.col,
            severity: Severity::Warning,
            message,
        },
        None => Diagnostic {
            path: PathBuf::new(),
            line: 0,
            column: 0,
            severity: Severity::Warning,
            message,
        },
    }
}

/// The file's text once the loader accepts it: a filter or output it
/// refuses is left out with a warning at its origin; anything else it
/// refuses leaves the file unwritten.
fn checked(file: &mut File, path: &Path, notes: &mut Notes) -> Option<String> {
    loop {
        let (text, ranges) = file.render();
        let source = Source::new(path, text.clone());
        let (_, diagnostics) = crate::pipeline::parse(&source, &check_env);
        let errors: Vec<&Diagnostic> = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        let Some(first) = errors.first() else {
            return Some(text);
        };
        let stage = ranges.iter().position(|r| r.contains(&first.line));
        match stage.map(|i| (i, &file.stages[i])) {
            Some((i, s)) if matches!(s.section, Section::Filter | Section::Output) => {
                let what = s
                    .origin
                    .as_ref()
                    .map_or("this stage".to_owned(), |o| o.what.clone());
                let message = format!(
                    "{what} is not converted: logpipe check says `{}` — write it by hand in {}",
                    first.message,
                    path.display()
                );
                match &s.origin {
                    Some(o) => notes.at_origin(o, Severity::Warning, message),
                    None => notes.push(Source::new(path, "").diagnostic(
                        None,
                        Severity::Warning,
                        message,
                    )),
                }
                file.stages.remove(i);
            }
            _ => {
                for e in errors {
                    notes.push(Source::new(path, "").diagnostic(
                        None,
                        Severity::Warning,
                        format!("not written: logpipe check says `{e}` — fix the setting in the Filebeat or Logstash config it came from"),
                    ));
                }
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests;
