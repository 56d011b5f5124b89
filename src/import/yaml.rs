//! filebeat.yml read into a tree whose every node knows its `line:col`, with
//! keys as Filebeat's config library (go-ucfg, `PathSep(".")`) reads them:
//! `output.kafka.hosts: …` is the same setting as `output:` / `kafka:` /
//! `hosts:`, and both spellings in one file merge into one tree.
//!
//! serde_norway gives no positions for values, so the tree is built from
//! yaml-rust2's marked events. Anchors and aliases are resolved; tags are
//! ignored.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::config::{Diagnostic, Severity, Source};

/// A 1-based line and column in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn of(mark: Marker) -> Pos {
        // yaml-rust2's lines count from 1, its columns from 0.
        Pos {
            line: mark.line(),
            col: mark.col() + 1,
        }
    }

    /// A diagnostic at this position of `source`.
    pub fn diagnostic(
        self,
        source: &Source,
        severity: Severity,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            path: source.path.clone(),
            line: self.line,
            column: self.col,
            severity,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Yaml,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    Null,
    /// A scalar's text; `quoted` scalars are always strings (`"true"`).
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Keys in order, dotted keys already expanded into nested maps.
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

impl Node {
    /// The value at a dotted path (`output.kafka.hosts`).
    pub fn get(&self, path: &str) -> Option<&Node> {
        let mut node = self;
        for part in path.split('.') {
            let Yaml::Map(entries) = &node.value else {
                return None;
            };
            node = entries
                .iter()
                .rev()
                .find(|(k, _)| k.name == part)
                .map(|(_, v)| v)?;
        }
        Some(node)
    }

    pub fn entries(&self) -> &[(Key, Node)] {
        match &self.value {
            Yaml::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Yaml::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// YAML 1.1 booleans as Filebeat reads them.
    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Yaml::Scalar {
                text,
                quoted: false,
            } => match text.as_str() {
                "true" | "True" | "TRUE" | "yes" | "on" => Some(true),
                "false" | "False" | "FALSE" | "no" | "off" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// A sequence of scalars, or one scalar (Filebeat takes a single value
    /// where a list is expected).
    pub fn as_str_list(&self) -> Option<Vec<&str>> {
        match &self.value {
            Yaml::Seq(items) => items.iter().map(Node::as_str).collect(),
            Yaml::Scalar { text, .. } => Some(vec![text]),
            _ => None,
        }
    }

    pub fn describe(&self) -> &'static str {
        match self.value {
            Yaml::Null => "nothing",
            Yaml::Scalar { .. } => "a scalar",
            Yaml::Seq(_) => "a list",
            Yaml::Map(_) => "a map",
        }
    }
}

/// Parses `source` (one YAML document). An empty file is an empty map.
pub fn parse(source: &Source) -> Result<Node, Diagnostic> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(&source.text);
    if let Err(e) = parser.load(&mut builder, false) {
        let pos = Pos::of(*e.marker());
        return Err(pos.diagnostic(
            source,
            Severity::Error,
            format!("not valid YAML: {}", e.info()),
        ));
    }
    if let Some((pos, message)) = builder.error {
        return Err(pos.diagnostic(source, Severity::Error, message));
    }
    let root = builder.root.unwrap_or(Node {
        value: Yaml::Map(Vec::new()),
        pos: Pos { line: 1, col: 1 },
    });
    Ok(expand(root))
}

enum Frame {
    Seq(Pos, usize, Vec<Node>),
    Map(Pos, usize, Vec<(Key, Node)>, Option<Key>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: Vec<(usize, Node)>,
    error: Option<(Pos, String)>,
}

impl Builder {
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.push((anchor, node.clone()));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, key)) => match key.take() {
                Some(key) => entries.push((key, node)),
                None => match node.value {
                    Yaml::Scalar { text, .. } => {
                        *key = Some(Key {
                            name: text,
                            pos: node.pos,
                        })
                    }
                    // An empty key (`: x`) reads as the key "".
                    Yaml::Null => {
                        *key = Some(Key {
                            name: String::new(),
                            pos: node.pos,
                        })
                    }
                    _ => {
                        if self.error.is_none() {
                            self.error = Some((
                                node.pos,
                                "a map or list as a map key: Filebeat's keys are names".into(),
                            ));
                        }
                        *key = Some(Key {
                            name: String::new(),
                            pos: node.pos,
                        });
                    }
                },
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let pos = Pos::of(mark);
        match event {
            Event::Scalar(text, style, anchor, _) => {
                let quoted = style != TScalarStyle::Plain;
                let value =
                    if !quoted && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
                        Yaml::Null
                    } else {
                        Yaml::Scalar { text, quoted }
                    };
                self.push_value(Node { value, pos }, anchor);
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .iter()
                    .rev()
                    .find(|(a, _)| *a == id)
                    .map(|(_, n)| Node {
                        value: n.value.clone(),
                        pos,
                    })
                    .unwrap_or(Node {
                        value: Yaml::Null,
                        pos,
                    });
                self.push_value(node, 0);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(pos, anchor, Vec::new())),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(pos, anchor, Vec::new(), None))
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(pos, anchor, items)) = self.stack.pop() {
                    self.push_value(
                        Node {
                            value: Yaml::Seq(items),
                            pos,
                        },
                        anchor,
                    );
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(pos, anchor, entries, _)) = self.stack.pop() {
                    // A block map inside a list starts at its first key.
                    let pos = entries.first().map_or(pos, |(k, _)| k.pos);
                    self.push_value(
                        Node {
                            value: Yaml::Map(entries),
                            pos,
                        },
                        anchor,
                    );
                }
            }
            _ => {}
        }
    }
}

/// Expands dotted keys into nested maps and merges maps that meet at one
/// key; a later scalar or list at the same key replaces an earlier one.
fn expand(node: Node) -> Node {
    match node.value {
        Yaml::Seq(items) => Node {
            value: Yaml::Seq(items.into_iter().map(expand).collect()),
            pos: node.pos,
        },
        Yaml::Map(entries) => {
            let mut out: Vec<(Key, Node)> = Vec::new();
            for (key, value) in entries {
                let value = expand(value);
                let parts: Vec<&str> = key.name.split('.').collect();
                insert(&mut out, &parts, &key, value);
            }
            Node {
                value: Yaml::Map(out),
                pos: node.pos,
            }
        }
        other => Node {
            value: other,
            pos: node.pos,
        },
    }
}

fn insert(map: &mut Vec<(Key, Node)>, parts: &[&str], key: &Key, value: Node) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    let existing = map.iter().position(|(k, _)| k.name == *first);
    if rest.is_empty() {
        match existing {
            Some(i) => {
                let (_, old) = &mut map[i];
                if let (Yaml::Map(old_entries), Yaml::Map(new_entries)) =
                    (&mut old.value, value.value.clone())
                {
                    for (k, v) in new_entries {
                        insert(old_entries, &[k.name.as_str()], &k, v);
                    }
                } else {
                    map[i] = (named(key, first), value);
                }
            }
            None => map.push((named(key, first), value)),
        }
        return;
    }
    let i = match existing {
        Some(i) if matches!(map[i].1.value, Yaml::Map(_)) => i,
        Some(i) => {
            map[i].1 = Node {
                value: Yaml::Map(Vec::new()),
                pos: key.pos,
            };
            i
        }
        None => {
            map.push((
                named(key, first),
                Node {
                    value: Yaml::Map(Vec::new()),
                    pos: key.pos,
                },
            ));
            map.len() - 1
        }
    };
    if let Yaml::Map(inner) = &mut map[i].1.value {
        insert(inner, rest, key, value);
    }
}

fn named(key: &Key, name: &str) -> Key {
    Key {
        name: name.to_owned(),
        pos: key.pos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Node {
        parse(&Source::new("filebeat.yml", text)).unwrap()
    }

    #[test]
    fn the_reference_filebeat_yml_reads_with_positions() {
        let root = parsed(include_str!("../../tests/fixtures/import/filebeat.yml"));
        let inputs = root.get("filebeat.inputs").unwrap();
        let Yaml::Seq(items) = &inputs.value else {
            panic!()
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].get("type").unwrap().as_str(), Some("log"));
        assert_eq!(items[0].get("enabled").unwrap().as_bool(), Some(true));
        assert_eq!(
            items[1].get("paths").unwrap().as_str_list(),
            Some(vec!["/var/log/httpd/error_log"])
        );
        let tags = items[0].get("tags").unwrap();
        assert_eq!(tags.as_str_list(), Some(vec!["httpd_access"]));
        assert_eq!(tags.pos, Pos { line: 5, col: 9 });
        let hosts = root.get("output.kafka.hosts").unwrap();
        assert_eq!(
            hosts.as_str_list(),
            Some(vec!["10.0.0.75:9092,10.0.0.76:9092,10.0.0.77:9092"])
        );
        assert_eq!(hosts.pos, Pos { line: 12, col: 10 });
        // The dotted key's own position is where `output.kafka` is written.
        let (key, _) = &root.entries()[1];
        assert_eq!(
            (key.name.as_str(), key.pos),
            ("output", Pos { line: 10, col: 1 })
        );
    }

    #[test]
    fn dotted_and_nested_keys_are_one_tree() {
        let a = parsed(
            "output.kafka.hosts: [a]\noutput.kafka:\n  topic: t\noutput:\n  kafka.version: '2.0'\n",
        );
        assert_eq!(
            a.get("output.kafka.hosts").unwrap().as_str_list(),
            Some(vec!["a"])
        );
        assert_eq!(a.get("output.kafka.topic").unwrap().as_str(), Some("t"));
        assert_eq!(a.get("output.kafka.version").unwrap().as_str(), Some("2.0"));
        assert_eq!(a.entries().len(), 1, "one `output` key");
        let b = parsed("output:\n  kafka:\n    hosts: [a]\n    topic: t\n    version: '2.0'\n");
        assert_eq!(
            a.get("output.kafka").unwrap().entries().len(),
            b.get("output.kafka").unwrap().entries().len()
        );
        // The later of two scalars wins.
        let c = parsed("x.y: 1\nx:\n  y: 2\n");
        assert_eq!(c.get("x.y").unwrap().as_str(), Some("2"));
    }

    #[test]
    fn scalars_keep_whether_they_were_quoted_and_nulls_are_null() {
        let root = parsed("a: true\nb: 'true'\nc:\nd: ~\ne: \"${X:def}\"\n");
        assert_eq!(root.get("a").unwrap().as_bool(), Some(true));
        assert_eq!(root.get("b").unwrap().as_bool(), None);
        assert_eq!(root.get("b").unwrap().as_str(), Some("true"));
        assert_eq!(root.get("c").unwrap().value, Yaml::Null);
        assert_eq!(root.get("d").unwrap().value, Yaml::Null);
        assert_eq!(root.get("e").unwrap().as_str(), Some("${X:def}"));
    }

    #[test]
    fn anchors_and_aliases_are_resolved() {
        let root = parsed("base: &b [x, y]\ncopy: *b\n");
        assert_eq!(
            root.get("copy").unwrap().as_str_list(),
            Some(vec!["x", "y"])
        );
        assert_eq!(root.get("copy").unwrap().pos.line, 2);
    }

    #[test]
    fn invalid_yaml_is_an_error_at_its_position() {
        let e = parse(&Source::new("fb.yml", "a:\n  - x\n  b: [unclosed\n")).unwrap_err();
        let shown = e.to_string();
        assert!(shown.starts_with("fb.yml:3:"), "{shown}");
        assert!(shown.contains("error: not valid YAML"), "{shown}");
    }

    #[test]
    fn an_empty_file_is_an_empty_map() {
        assert_eq!(parsed("").entries().len(), 0);
        assert_eq!(parsed("# only a comment\n").entries().len(), 0);
    }
}
