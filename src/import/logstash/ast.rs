//! The tree of a Logstash pipeline config: sections of plugins and
//! conditionals, each node with the byte offset it starts at in its file
//! (turned into `line:col` by [`crate::config::Source`]).

/// One config file, or the files of a directory read as one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    Input,
    Filter,
    Output,
}

impl SectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SectionKind::Input => "input",
            SectionKind::Filter => "filter",
            SectionKind::Output => "output",
        }
    }
}

/// `input { … }`, `filter { … }` or `output { … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub kind: SectionKind,
    pub body: Vec<Stmt>,
    /// Which file of a directory it came from (index into the sources).
    pub file: usize,
    pub at: usize,
}

/// A statement inside a section or a branch.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    Plugin(Plugin),
    If(IfChain),
}

/// `name { setting => value … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Plugin {
    pub name: String,
    pub settings: Vec<Setting>,
    pub at: usize,
}

impl Plugin {
    /// The last value of `name` (Logstash keeps the last of repeated settings).
    pub fn get(&self, name: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub name: String,
    pub value: Value,
    pub at: usize,
}

/// A setting's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    pub at: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    /// A quoted string, its escapes resolved as configured.
    Str(String),
    /// A number as written (`9092`, `-1`, `0.5`).
    Number(String),
    /// An unquoted word (`true`, `json`, `latest`).
    Bareword(String),
    Array(Vec<Value>),
    /// `{ key => value … }`, keys as written (quotes removed).
    Hash(Vec<(String, Value)>),
    /// A codec or other plugin given as a value: `codec => json { charset => "UTF-8" }`.
    Plugin(Plugin),
}

impl Value {
    /// The text of a string, number or bareword.
    pub fn as_text(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::Str(s) | ValueKind::Number(s) | ValueKind::Bareword(s) => Some(s),
            _ => None,
        }
    }

    /// `true`/`false`, as a bareword or a string.
    pub fn as_bool(&self) -> Option<bool> {
        match self.as_text()? {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// A list of texts: an array of them, or one text (Logstash takes a
    /// single value where a list is expected).
    pub fn as_text_list(&self) -> Option<Vec<&str>> {
        match &self.kind {
            ValueKind::Array(items) => items.iter().map(Value::as_text).collect(),
            _ => self.as_text().map(|t| vec![t]),
        }
    }

    /// What kind of value it is, for messages.
    pub fn describe(&self) -> &'static str {
        match self.kind {
            ValueKind::Str(_) => "a string",
            ValueKind::Number(_) => "a number",
            ValueKind::Bareword(_) => "a bare word",
            ValueKind::Array(_) => "an array",
            ValueKind::Hash(_) => "a hash",
            ValueKind::Plugin(_) => "a plugin",
        }
    }
}

/// `if … { } else if … { } else { }`.
#[derive(Debug, Clone, PartialEq)]
pub struct IfChain {
    pub branches: Vec<Branch>,
    pub otherwise: Option<Vec<Stmt>>,
    pub at: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub condition: Cond,
    /// The condition as written, from its first to its last character.
    pub text: String,
    pub body: Vec<Stmt>,
    pub at: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoolOp {
    And,
    Or,
    Xor,
    Nand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Gt => ">",
            CmpOp::Le => "<=",
            CmpOp::Ge => ">=",
        }
    }
}

/// A condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Bool(BoolOp, Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    Compare(Operand, CmpOp, Operand),
    /// `a =~ /re/` (`true`) or `a !~ /re/` (`false`).
    Regex(Operand, String, bool),
    /// `a in b` (`true`) or `a not in b` (`false`).
    In(Operand, Operand, bool),
    /// A bare operand: true when the field exists and is not false.
    Truthy(Operand),
}

/// What a condition compares.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `[a][b]`, `[tags]`: the path's parts.
    Field(Vec<String>),
    Str(String),
    Number(String),
    List(Vec<Operand>),
    /// A regex literal `/…/` on the right of `==` (Logstash allows it).
    Regex(String),
}
