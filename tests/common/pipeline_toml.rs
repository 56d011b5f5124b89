//! The pipeline files that many tests write alike, built section by
//! section instead of by hand:
//!
//! ```ignore
//! let path = pipeline_toml("ship")
//!     .file_input(&log)
//!     .with("tags = [\"httpd_access\"]")
//!     .kafka(&svc.kafka, &topic)
//!     .group(&group)
//!     .stdout_output()
//!     .write_to(dir.join("ship.toml"));
//! ```
//!
//! Each section method starts a section with its required keys; `with`
//! adds lines (keys, or whole sections such as `[kafka.tls]`) after the
//! last one. A pipeline that is the point of its test (a diagnostic at a
//! line and column, a scenario's own settings) is better written out.

use std::path::{Path, PathBuf};

/// A pipeline file's text: `pipeline_toml("name")`, sections, `build()`.
#[derive(Debug, Clone)]
#[must_use]
pub struct PipelineToml {
    text: String,
}

/// A pipeline named `name`.
pub fn pipeline_toml(name: &str) -> PipelineToml {
    PipelineToml {
        text: format!("name = {}\n", quote(name)),
    }
}

/// `s` as a TOML basic string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl PipelineToml {
    /// A pipeline without a `name` (it takes the file's name).
    pub fn unnamed() -> PipelineToml {
        PipelineToml {
            text: String::new(),
        }
    }

    /// Adds `lines` as they are to the last section (a trailing newline is
    /// added when missing).
    pub fn with(mut self, lines: &str) -> Self {
        self.text.push_str(lines);
        if !lines.ends_with('\n') {
            self.text.push('\n');
        }
        self
    }

    /// `[[input]] type = "file"` following `path` (a file or a glob).
    pub fn file_input(self, path: impl AsRef<Path>) -> Self {
        self.file_inputs(&[path.as_ref()])
    }

    /// `[[input]] type = "file"` following all of `paths`.
    pub fn file_inputs(self, paths: &[&Path]) -> Self {
        let list: Vec<String> = paths
            .iter()
            .map(|p| quote(&p.display().to_string()))
            .collect();
        self.with(&format!(
            "[[input]]\ntype = \"file\"\npaths = [{}]",
            list.join(", ")
        ))
    }

    /// The Kafka hop: `[kafka]` with `brokers` and `topic`.
    pub fn kafka(self, brokers: &str, topic: &str) -> Self {
        self.with(&format!(
            "[kafka]\nbrokers = {}\ntopic = {}",
            quote(brokers),
            quote(topic)
        ))
    }

    /// In `[kafka]`: consumer group `group`, with the shortest session
    /// timeout the test broker allows (6 s), so that a member that is gone
    /// is noticed soon.
    pub fn group(self, group: &str) -> Self {
        self.with(&format!(
            "group_id = {}\nsession_timeout = \"6s\"",
            quote(group)
        ))
    }

    /// `[[filter]] type = kind`; its settings follow with `with`.
    pub fn filter(self, kind: &str) -> Self {
        self.with(&format!("[[filter]]\ntype = {}", quote(kind)))
    }

    /// `[[output]] type = "stdout"`.
    pub fn stdout_output(self) -> Self {
        self.with("[[output]]\ntype = \"stdout\"")
    }

    /// `[[output]] type = "elasticsearch"` to `hosts` (one URL) and `index`
    /// (a template such as `prefix-%{+YYYY.MM.dd}` is kept as it is).
    pub fn elasticsearch_output(self, hosts: &str, index: &str) -> Self {
        self.with(&format!(
            "[[output]]\ntype = \"elasticsearch\"\nhosts = {}\nindex = {}",
            quote(hosts),
            quote(index)
        ))
    }

    pub fn build(self) -> String {
        self.text
    }

    /// Writes the file; its path.
    pub fn write_to(self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref().to_path_buf();
        std::fs::write(&path, self.text).unwrap();
        path
    }
}
