//! A pipeline file being written: its stages as tables of TOML values with
//! the comments that go above them, rendered to text with the line range of
//! every stage, so that a problem `logpipe check` finds in the text can be
//! traced back to the stage (and the Filebeat or Logstash text) it came from.

use std::ops::Range;

use toml::Value;

/// Where in the user's configs a stage came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: std::path::PathBuf,
    pub line: usize,
    pub col: usize,
    /// What it was, for messages (`filter grok`, `output elasticsearch`).
    pub what: String,
}

/// `[[input]]`, `[kafka]`, `[[filter]]` or `[[output]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Input,
    Kafka,
    Filter,
    Output,
}

#[derive(Debug, Clone)]
pub struct Stage {
    pub section: Section,
    pub comments: Vec<String>,
    pub keys: Vec<(String, Value)>,
    /// Tables written after the stage's keys (`[kafka.sasl]`).
    pub subtables: Vec<(String, Vec<(String, Value)>)>,
    pub origin: Option<Origin>,
}

impl Stage {
    pub fn new(section: Section, origin: Option<Origin>) -> Stage {
        Stage {
            section,
            comments: Vec::new(),
            keys: Vec::new(),
            subtables: Vec::new(),
            origin,
        }
    }

    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        let value = value.into();
        match self.keys.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.keys.push((key.to_owned(), value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn comment(&mut self, text: impl Into<String>) {
        self.comments.push(text.into());
    }
}

/// A whole pipeline file.
#[derive(Debug, Clone)]
pub struct File {
    pub name: String,
    pub header: Vec<String>,
    pub stages: Vec<Stage>,
}

fn key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_owned()
    } else {
        Value::String(name.to_owned()).to_string()
    }
}

fn comment_lines(out: &mut String, text: &str) {
    for line in text.lines() {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
    }
}

impl File {
    /// The text, and the line range (1-based, end exclusive) of each stage.
    pub fn render(&self) -> (String, Vec<Range<usize>>) {
        let mut out = String::new();
        for line in &self.header {
            comment_lines(&mut out, line);
        }
        out.push_str(&format!("name = {}\n", Value::String(self.name.clone())));
        let mut ranges = Vec::new();
        for stage in &self.stages {
            out.push('\n');
            let start = out.matches('\n').count() + 1;
            for c in &stage.comments {
                comment_lines(&mut out, c);
            }
            out.push_str(match stage.section {
                Section::Input => "[[input]]\n",
                Section::Kafka => "[kafka]\n",
                Section::Filter => "[[filter]]\n",
                Section::Output => "[[output]]\n",
            });
            for (k, v) in &stage.keys {
                out.push_str(&format!("{} = {}\n", key(k), v));
            }
            for (name, keys) in &stage.subtables {
                out.push_str(&format!("[kafka.{name}]\n"));
                for (k, v) in keys {
                    out.push_str(&format!("{} = {}\n", key(k), v));
                }
            }
            let end = out.matches('\n').count() + 1;
            ranges.push(start..end);
        }
        (out, ranges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_render_with_comments_and_their_line_ranges() {
        let mut input = Stage::new(Section::Input, None);
        input.comment("from filebeat.yml:2:3");
        input.set("type", "file");
        input.set("paths", Value::Array(vec!["/var/log/a".into()]));
        let mut output = Stage::new(Section::Output, None);
        output.set("if", r#""x" in [tags]"#);
        let mut fields = toml::Table::new();
        fields.insert("[event][original]".into(), "m".into());
        output.set("add_field", Value::Table(fields));
        let file = File {
            name: "a".into(),
            header: vec!["head".into()],
            stages: vec![input, output],
        };
        let (text, ranges) = file.render();
        assert_eq!(
            text,
            "# head\nname = \"a\"\n\n# from filebeat.yml:2:3\n[[input]]\ntype = \"file\"\npaths = [\"/var/log/a\"]\n\n[[output]]\nif = '\"x\" in [tags]'\nadd_field = { \"[event][original]\" = \"m\" }\n"
        );
        assert_eq!(ranges, vec![4..8, 9..12]);
        assert!(toml::from_str::<toml::Table>(&text).is_ok());
    }
}
