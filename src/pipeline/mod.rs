//! Loading pipeline files: find them, parse them, resolve `${VAR}`, check
//! them, and return every problem at once, each pointing at its file, line
//! and column. This is the one place that knows every stage registry; the
//! stages read their own tables with the [`crate::config`] toolkit.
//!
//! One pipeline file holds its inputs, the optional Kafka hop, its filters
//! and its outputs, parsed and validated into a [`Pipeline`]:
//!
//! ```toml
//! name = "httpd-access"            # optional; default: the file name
//! [[input]]
//! type = "file"
//! paths = ["${LOGPIPE_ACCESS_LOG:-/var/log/httpd/access_log}"]
//! tags = ["httpd_access"]
//! [kafka]                          # optional hop; without it inputs feed filters in-process
//! brokers = "${KAFKA_BROKERS:-127.0.0.1:9092}"
//! topic = "httpd_access"
//! [[output]]
//! type = "elasticsearch"
//! hosts = "${ES_HOSTS:-http://127.0.0.1:9200}"
//! index = "httpd_access-%{+YYYY.MM.dd}"
//! ```

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::config::interpolate::interpolate;
use crate::config::stages::stages;
use crate::config::{take, ConfigCx, Diagnostic, Severity, Source};
use crate::filter::{self, FilterSpec};
use crate::input::{self, InputSpec};
use crate::kafka::{Hop, HopConfig};
use crate::output::{self, Output};

pub mod cases;

/// Where the pipeline files live when no path is given.
pub const DEFAULT_PIPELINE_DIR: &str = "/etc/logpipe/pipelines";

/// The result of loading a set of paths: the pipelines that are valid, and
/// every diagnostic (errors and warnings) of all files.
#[derive(Debug, Default)]
pub struct Loaded {
    pub pipelines: Vec<Pipeline>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// Expands files and directories (their `*.toml` files, sorted) into the list
/// of pipeline files.
pub fn pipeline_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostic> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|e| Source::new(path, "").error(format!("cannot read directory: {e}")))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Loads every pipeline file under `paths`, with `env` resolving `${VAR}`.
pub fn load(paths: &[PathBuf], env: &dyn Fn(&str) -> Option<String>) -> Loaded {
    let mut loaded = Loaded::default();
    let files = match pipeline_files(paths) {
        Ok(files) => files,
        Err(diagnostic) => {
            loaded.diagnostics.push(diagnostic);
            return loaded;
        }
    };
    if files.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        loaded
            .diagnostics
            .push(Source::new(shown.join(", "), "").error("no pipeline files (*.toml) found"));
    }
    for file in files {
        let source = match std::fs::read_to_string(&file) {
            Ok(text) => Source::new(&file, text),
            Err(e) => {
                loaded
                    .diagnostics
                    .push(Source::new(&file, "").error(format!("cannot read: {e}")));
                continue;
            }
        };
        let (pipeline, diagnostics) = parse(&source, env);
        loaded.diagnostics.extend(diagnostics);
        if let Some(pipeline) = pipeline {
            loaded.pipelines.push(pipeline);
        }
    }
    check_unique_names(&mut loaded);
    check_shared_dead_letter_files(&mut loaded);
    loaded
}

/// Two pipelines appending to one dead-letter file would rotate it under
/// each other; each pipeline needs its own.
fn check_shared_dead_letter_files(loaded: &mut Loaded) {
    let mut seen: Vec<(&Path, &str)> = Vec::new();
    let mut shared = Vec::new();
    for p in &loaded.pipelines {
        let mut own: Vec<&Path> = p
            .outputs
            .iter()
            .filter_map(|o| o.dead_letter.path.as_deref())
            .collect();
        own.dedup();
        for path in own {
            match seen.iter().find(|(seen_path, _)| *seen_path == path) {
                Some((_, other)) if *other != p.name => shared.push(Source::new(&p.path, "").error(format!(
                    "dead_letter_path {} is also used by pipeline `{other}`; give each pipeline its own file",
                    path.display()
                ))),
                Some(_) => {}
                None => seen.push((path, &p.name)),
            }
        }
    }
    loaded.diagnostics.extend(shared);
}

/// Outputs of one pipeline that share a dead-letter file (the default one,
/// or the same `dead_letter_path`) share its writer, so they must agree on
/// how it is rotated.
fn check_dead_letter_files(outputs: &[Output], cx: &mut ConfigCx<'_>) {
    for (i, output) in outputs.iter().enumerate() {
        let file = &output.dead_letter;
        let earlier = outputs[..i]
            .iter()
            .find(|o| o.dead_letter.path == file.path);
        if let Some(first) = earlier {
            let first = &first.dead_letter;
            if (first.max_bytes, first.max_files) != (file.max_bytes, file.max_files) {
                cx.error(
                    &file.span,
                    format!(
                        "this output shares its dead-letter file with {} but rotates it differently (dead_letter_max_bytes {} vs {}, dead_letter_max_files {} vs {}); set the same values or another dead_letter_path",
                        outputs[..i].iter().find(|o| o.dead_letter.path == file.path).map_or("", |o| o.label.as_str()),
                        file.max_bytes, first.max_bytes, file.max_files, first.max_files
                    ),
                );
            }
        }
    }
}

fn check_unique_names(loaded: &mut Loaded) {
    let mut seen: Vec<(&str, &Path)> = Vec::new();
    let mut duplicates = Vec::new();
    for p in &loaded.pipelines {
        if let Some((_, first)) = seen.iter().find(|(name, _)| *name == p.name) {
            duplicates.push(Source::new(&p.path, "").error(format!(
                "pipeline name `{}` is also used by {}; names must be unique (they key checkpoints and consumer groups)",
                p.name,
                first.display()
            )));
        } else {
            seen.push((&p.name, &p.path));
        }
    }
    loaded.diagnostics.extend(duplicates);
}

/// A validated pipeline, ready to be planned and run.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    pub path: PathBuf,
    pub inputs: Vec<InputSpec>,
    pub hop: Option<Hop>,
    pub filters: Vec<FilterSpec>,
    /// Each output with its `if` and common settings.
    pub outputs: Vec<Output>,
    /// `[[test]]` cases for `logpipe test`; `run` ignores them.
    pub tests: Vec<cases::Case>,
    /// Batches buffered between two stages.
    pub channel_capacity: usize,
    /// Tasks running the filters, each on its own batches.
    pub filter_workers: usize,
    /// A hash of the file's text: a reload restarts only pipelines whose file changed.
    pub digest: u64,
}

/// Top-level keys other than the stage lists.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    /// Names checkpoints and the default consumer group; default: the file name.
    name: Option<Spanned<String>>,
    /// The Kafka hop between the ship half and the index half.
    kafka: Option<HopConfig>,
    /// Batches buffered between two stages (default 2). Each batch holds up to
    /// an input's `batch_events` events, so this bounds memory per stage;
    /// more only helps to ride out bursts.
    channel_capacity: Option<Spanned<usize>>,
    /// Batches filtered at once (default 1). Batches may leave the filters
    /// out of order; each source still moves its checkpoint only over a
    /// gap-free run of delivered batches.
    filter_workers: Option<Spanned<usize>>,
}

/// Parses and validates one pipeline file.
pub fn parse(
    source: &Source,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Option<Pipeline>, Vec<Diagnostic>) {
    let mut cx = ConfigCx::new(source);
    let (root, errors) = DeTable::parse_recoverable(&source.text);
    if !errors.is_empty() {
        for e in &errors {
            cx.toml_error(e);
        }
        return (None, cx.diagnostics);
    }
    let span = root.span();
    let mut table = root.into_inner();
    interpolate_table(&mut table, env, &mut cx);

    let raw_inputs = take(&mut table, "input");
    let raw_filters = take(&mut table, "filter");
    let raw_outputs = take(&mut table, "output");
    let raw_tests = take(&mut table, "test");
    // Judged on the text, so that a stage with an error of its own does not
    // also count as missing.
    let has_hop = table.get("kafka").is_some();
    let has_inputs = raw_inputs.is_some();
    let has_outputs = raw_outputs.is_some();
    let header: Option<Header> = cx.de(Spanned::new(span, DeValue::Table(table)));

    let default_name = source
        .path()
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pipeline".to_owned());
    let name = match header.as_ref().and_then(|h| h.name.as_ref()) {
        Some(name) => {
            let valid = !name.get_ref().is_empty()
                && name
                    .get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid {
                cx.error(
                    &name.span(),
                    "invalid pipeline name (expected letters, digits, '-', '_' or '.')",
                );
            }
            name.get_ref().clone()
        }
        None => default_name,
    };
    cx.pipeline = name.clone();

    let inputs = stages(raw_inputs, "input", false, &mut cx, input::build)
        .into_iter()
        .map(|s| s.stage)
        .collect();
    let filters = stages(raw_filters, "filter", true, &mut cx, filter::build);
    let filters = filter::chain(filters, &mut cx);
    let outputs: Vec<Output> = stages(raw_outputs, "output", true, &mut cx, output::build)
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let (common, spec) = s.stage;
            Output {
                condition: s.condition,
                ..common.output(spec, i + 1)
            }
        })
        .collect();
    check_dead_letter_files(&outputs, &mut cx);
    let tests = match raw_tests {
        Some(raw) => match cx.de::<Vec<Spanned<cases::CaseConfig>>>(raw) {
            Some(configs) => cases::cases(configs, &mut cx),
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    let hop = header
        .as_ref()
        .and_then(|h| h.kafka.clone())
        .and_then(|k| k.validate(&mut cx));
    // A 0 is reported; the 1 in its place only lets checking go on.
    let filter_workers = cx
        .at_least_one(
            header.as_ref().and_then(|h| h.filter_workers.as_ref()),
            "filter_workers",
            1,
        )
        .unwrap_or(1);
    let channel_capacity = cx
        .at_least_one(
            header.as_ref().and_then(|h| h.channel_capacity.as_ref()),
            "channel_capacity",
            2,
        )
        .unwrap_or(1);

    if !has_inputs && !has_hop {
        cx.diagnostics
            .push(source.error(
                "no [[input]]: a pipeline needs an input, or a [kafka] hop to consume from",
            ));
    }
    if !has_outputs && !has_hop {
        cx.diagnostics.push(
            source.error("no [[output]]: a pipeline needs an output, or a [kafka] hop to ship to"),
        );
    }

    cx.diagnostics.sort_by_key(|d| (d.line, d.column));
    let ok = !cx.diagnostics.iter().any(|d| d.severity == Severity::Error);
    let pipeline = ok.then(|| Pipeline {
        name,
        path: source.path().to_path_buf(),
        inputs,
        hop,
        filters,
        outputs,
        tests,
        channel_capacity,
        filter_workers,
        digest: xxhash_rust::xxh3::xxh3_64(source.text.as_bytes()),
    });
    (pipeline, cx.diagnostics)
}

fn interpolate_table(
    table: &mut DeTable<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    cx: &mut ConfigCx<'_>,
) {
    for (_, value) in table.iter_mut() {
        interpolate_value(value, env, cx);
    }
}

fn interpolate_value(
    value: &mut Spanned<DeValue<'_>>,
    env: &dyn Fn(&str) -> Option<String>,
    cx: &mut ConfigCx<'_>,
) {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(text) => match interpolate(text, env) {
            Ok(Some(resolved)) => *text = Cow::Owned(resolved),
            Ok(None) => {}
            Err(e) => {
                let at = cx.source.offset_in_string(&span, e.offset);
                cx.diagnostics.push(cx.source.error_at(at, e.message));
            }
        },
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                interpolate_value(item, env, cx);
            }
        }
        DeValue::Table(inner) => interpolate_table(inner, env, cx),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::filter::{apply_all, Verdict};
    use serde_json::json;

    fn pipeline(text: &str) -> Pipeline {
        let source = Source::new("p.toml", text);
        let (pipeline, diagnostics) = parse(&source, &|_| None);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        pipeline.unwrap()
    }

    #[test]
    fn if_filters_chain_else_if_and_else() {
        let p = pipeline(
            r#"
[[input]]
type = "file"
paths = ["/x"]
[[filter]]
type = "if"
if = '"a" in [tags]'
then = [{ type = "mutate", add_field = { branch = "a" } }]
[[filter.else]]
type = "if"
if = '[n] > 1'
then = [{ type = "mutate", add_field = { branch = "n" } }]
else = [{ type = "drop" }]
[[filter]]
type = "mutate"
if = '[branch] == "a"'
add_tag = ["was_a"]
[[output]]
type = "stdout"
if = '"was_a" in [tags]'
"#,
        );
        let mut a = Event::default();
        a.add_tag("a");
        let mut n = Event::default();
        n.fields.insert("n".into(), json!(2));
        let mut events = vec![a, n, Event::default()];
        apply_all(&p.filters, &mut events);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].fields["branch"], json!("a"));
        assert!(events[0].has_tag("was_a"));
        assert_eq!(events[1].fields["branch"], json!("n"));
        assert!(!events[1].has_tag("was_a"));
        let route = p.outputs[0].condition.as_ref().unwrap();
        assert!(route.eval(&events[0]) && !route.eval(&events[1]));
        assert_eq!(p.filters[0].apply(&mut Event::default()), Verdict::Drop);
    }
}
