//! `logpipe test`: run a pipeline's filters on lines from a file or stdin,
//! as if its first input had read them, and print the resulting events; or
//! check the pipeline's own `[[test]]` cases like a test runner.
//!
//! ```toml
//! [[test]]
//! name = "a combined line"                  # optional
//! input = '127.0.0.1 - - [26/Dec/2016:16:18:09 +0000] "GET / HTTP/1.1" 200 491 "-" "Wget/1.13.4"'
//! expect = { "[http][response][status_code]" = 200, "[url][original]" = "/" }
//! absent = ["[user][name]"]
//! ```
//! Expected values match when equal; an expected table matches an object
//! holding at least its keys. `dropped = true` expects no event at all.
//! `logpipe run` ignores `[[test]]`.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::event::FieldRef;
use crate::event::{Event, Value, ID};
use crate::filter::{self, Verdict};
use crate::input::file::reader::{Line, LineReader, Stop};
use crate::input::file::{fingerprint, FileInput};
use crate::input::InputSpec;
use crate::pipeline::cases::Case;

/// Lines from `path` (`-` for stdin) through the pipeline's filters, one
/// JSON object per resulting event to `out`, in input order.
pub fn feed(
    pipeline: &crate::pipeline::Pipeline,
    path: &Path,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let input = first_file_input(pipeline);
    let max_line = input.map_or(512 * 1024, |i| i.max_line_bytes);
    let (file, shown, spool) = open(path)?;
    let mut reader = LineReader::new(file, 0, max_line)?;
    let mut lines = Vec::new();
    let mut text = Vec::new();
    let mut joiner = crate::input::file::multiline::Joiner::default();
    loop {
        lines.clear();
        let stop = reader.read_lines(&mut lines, 1024, 4 * 1024 * 1024)?;
        if stop == Stop::Eof {
            lines.extend(reader.flush_partial());
        }
        // Multiline records, joined as the file input joins them.
        if let Some(rules) = input.and_then(|i| i.multiline.as_deref()) {
            let mut joined = Vec::new();
            for line in lines.drain(..) {
                joiner.push(rules, line, std::time::Instant::now(), &mut joined);
            }
            if stop == Stop::Eof {
                joined.extend(joiner.flush());
            }
            lines = joined;
        }
        for line in lines.drain(..) {
            let mut event = event(input, &shown, line);
            if filter::apply_chain(&pipeline.filters, &mut event) == Verdict::Drop {
                continue;
            }
            text.clear();
            crate::output::stdout::render(&event, false, &mut text)?;
            out.write_all(&text)?;
        }
        if stop == Stop::Eof {
            break;
        }
    }
    if let Some(spool) = spool {
        let _ = std::fs::remove_file(spool);
    }
    out.flush()
}

/// Opens the input; stdin is spooled to a temporary file so that it is
/// read by the same line reader as files are.
fn open(path: &Path) -> std::io::Result<(File, String, Option<PathBuf>)> {
    if path != Path::new("-") {
        let shown = std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string();
        return Ok((File::open(path)?, shown, None));
    }
    let spool = std::env::temp_dir().join(format!(
        "logpipe-test-{}-{:08x}",
        std::process::id(),
        fastrand::u32(..)
    ));
    let mut file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&spool)?;
    let mut stdin = std::io::stdin().lock();
    let mut buffer = Vec::new();
    stdin.read_to_end(&mut buffer)?;
    file.write_all(&buffer)?;
    Ok((file, "-".to_owned(), Some(spool)))
}

fn first_file_input(pipeline: &crate::pipeline::Pipeline) -> Option<&FileInput> {
    match pipeline.inputs.first() {
        Some(InputSpec::File(file)) => Some(file),
        _ => None,
    }
}

/// The event the file input would make of `line`: its own builder when the
/// pipeline has a file input, else the bare line with the host's fields.
fn event(input: Option<&FileInput>, path: &str, line: Line) -> Event {
    if let Some(input) = input {
        let source = crate::input::file::line_event::LineOrigin::new(
            input,
            path,
            None,
            path,
            chrono::Utc::now(),
        );
        return source.event(line);
    }
    let host = crate::host::name();
    let offset = line.offset;
    let mut event = Event::from_message(line.text);
    for (field, value) in [
        ("[host][name]", Value::from(host)),
        ("[log][file][path]", Value::from(path)),
        ("[log][offset]", Value::from(offset)),
        ("[event][timezone]", Value::from(crate::host::timezone())),
    ] {
        if let Ok(field) = FieldRef::parse(field) {
            event.insert(&field, value);
        }
    }
    event
        .metadata
        .insert(ID.into(), fingerprint::origin_id(host, path, offset));
    event
}

/// The outcome of the `[[test]]` cases: a report line per case.
pub struct Report {
    pub lines: Vec<String>,
    pub passed: usize,
    pub failed: usize,
}

/// Runs the pipeline's `[[test]]` cases.
pub fn run_cases(pipeline: &crate::pipeline::Pipeline) -> Report {
    let input = first_file_input(pipeline);
    let mut report = Report {
        lines: Vec::new(),
        passed: 0,
        failed: 0,
    };
    for case in &pipeline.tests {
        let line = Line {
            offset: 0,
            end: case.input.len() as u64 + 1,
            text: case.input.as_str().into(),
            truncated: false,
            invalid_utf8: false,
            multiline: false,
        };
        let mut event = event(input, "[[test]]", line);
        let dropped = filter::apply_chain(&pipeline.filters, &mut event) == Verdict::Drop;
        let problems = check(case, dropped, &event);
        if problems.is_empty() {
            report.passed += 1;
            report.lines.push(format!("ok: {}", case.name));
        } else {
            report.failed += 1;
            report.lines.push(format!("FAILED: {}", case.name));
            report
                .lines
                .extend(problems.iter().map(|p| format!("    {p}")));
            let mut rendered = Vec::new();
            if crate::output::stdout::render(&event, false, &mut rendered).is_ok() {
                report.lines.push(format!(
                    "    event: {}",
                    String::from_utf8_lossy(&rendered).trim_end()
                ));
            }
        }
    }
    report
}

fn check(case: &Case, dropped: bool, event: &Event) -> Vec<String> {
    if case.dropped || dropped {
        return match (case.dropped, dropped) {
            (true, false) => vec!["expected the event to be dropped".into()],
            (false, true) => vec!["the event was dropped".into()],
            _ => Vec::new(),
        };
    }
    let mut problems = Vec::new();
    for (field, want) in &case.expect {
        let got = event.get(field);
        if !got.is_some_and(|got| matches(want, got)) {
            problems.push(format!(
                "{field}: expected {want}, got {}",
                got.map_or("nothing".to_owned(), Value::to_string)
            ));
        }
    }
    for field in &case.absent {
        if let Some(got) = event.get(field) {
            problems.push(format!("{field}: expected no value, got {got}"));
        }
    }
    problems
}

/// Equality, with numbers compared by value and expected objects matching
/// any object that holds at least their keys.
fn matches(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w
            .iter()
            .all(|(k, v)| g.get(k).is_some_and(|gv| matches(v, gv))),
        (Value::Number(w), Value::Number(g)) => w.as_f64() == g.as_f64(),
        (Value::Array(w), Value::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(a, b)| matches(a, b))
        }
        _ => want == got,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn expected_tables_match_objects_holding_at_least_their_keys() {
        let matches = |want: serde_json::Value, got: serde_json::Value| {
            super::matches(&want.into(), &got.into())
        };
        assert!(matches(json!({"a": 1}), json!({"a": 1.0, "b": 2})));
        assert!(!matches(json!({"a": 1, "c": 3}), json!({"a": 1})));
        assert!(matches(json!(["x"]), json!(["x"])));
        assert!(!matches(json!("1"), json!(1)));
    }
}
