//! A recursive-descent parser of the Logstash config language, as its
//! treetop grammar (`logstash-core/lib/logstash/config/grammar.treetop`)
//! reads it: comments, quoted strings, numbers, barewords, arrays, hashes,
//! plugins, and `if` / `else if` / `else` with Logstash's expressions.
//!
//! Boolean operators bind `and`/`nand` tighter than `xor`, tighter than
//! `or`; the converter writes every condition fully parenthesised, so the
//! reading it took is the one logpipe runs.

use super::ast::*;

/// A syntax error at a byte offset of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub message: String,
}

/// Parses one file. `support_escapes` is Logstash's `config.support_escapes`
/// (off by default: `\"` does not end a string, but the backslash stays).
pub fn parse(
    text: &str,
    file: usize,
    support_escapes: bool,
) -> std::result::Result<Config, ParseError> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        file,
        support_escapes,
    };
    p.config()
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    file: usize,
    support_escapes: bool,
}

type Result<T> = std::result::Result<T, ParseError>;

fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

impl<'a> Parser<'a> {
    fn error<T>(&self, at: usize, message: impl Into<String>) -> Result<T> {
        Err(ParseError {
            offset: at,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<u8> {
        self.bytes.get(self.pos + n).copied()
    }

    fn found(&self) -> String {
        match self.text[self.pos..].chars().next() {
            None => "the end of the file".to_owned(),
            Some(c) => format!("`{c}`"),
        }
    }

    /// Whitespace and `#` comments.
    fn ws(&mut self) {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() {
                self.pos += 1;
            } else if b == b'#' {
                while let Some(b) = self.peek() {
                    if b == b'\n' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.text[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, s: &str, what: &str) -> Result<()> {
        if self.eat(s) {
            Ok(())
        } else {
            self.error(self.pos, format!("expected {what}, found {}", self.found()))
        }
    }

    /// A keyword: the word, not followed by a word character.
    fn keyword(&mut self, word: &str) -> bool {
        let rest = &self.text[self.pos..];
        if rest.starts_with(word) && !rest.as_bytes().get(word.len()).is_some_and(|&b| is_word(b)) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn bareword(&mut self) -> Option<String> {
        let start = self.pos;
        if !self.peek().is_some_and(is_word_start) {
            return None;
        }
        while self.peek().is_some_and(is_word) {
            self.pos += 1;
        }
        Some(self.text[start..self.pos].to_owned())
    }

    fn config(&mut self) -> Result<Config> {
        let mut config = Config::default();
        self.ws();
        while self.pos < self.bytes.len() {
            let at = self.pos;
            let kind = if self.keyword("input") {
                SectionKind::Input
            } else if self.keyword("filter") {
                SectionKind::Filter
            } else if self.keyword("output") {
                SectionKind::Output
            } else {
                return self.error(
                    at,
                    format!(
                        "expected `input`, `filter` or `output`, found {}",
                        self.found()
                    ),
                );
            };
            self.ws();
            self.expect("{", "`{` after the section name")?;
            let body = self.stmts()?;
            self.expect("}", "`}` closing the section")?;
            config.sections.push(Section {
                kind,
                body,
                file: self.file,
                at,
            });
            self.ws();
        }
        Ok(config)
    }

    /// Statements up to (not including) a `}`.
    fn stmts(&mut self) -> Result<Vec<Stmt>> {
        let mut out = Vec::new();
        loop {
            self.ws();
            match self.peek() {
                None | Some(b'}') => return Ok(out),
                _ => {}
            }
            let at = self.pos;
            if self.keyword("if") {
                out.push(Stmt::If(self.if_chain(at)?));
            } else if self.keyword("else") {
                return self.error(at, "`else` without an `if` before it");
            } else {
                out.push(Stmt::Plugin(self.plugin()?));
            }
        }
    }

    fn block(&mut self) -> Result<Vec<Stmt>> {
        self.ws();
        self.expect("{", "`{` after the condition")?;
        let body = self.stmts()?;
        self.expect("}", "`}` closing the block")?;
        Ok(body)
    }

    fn branch(&mut self) -> Result<Branch> {
        self.ws();
        let at = self.pos;
        let condition = self.condition()?;
        let text = self.text[at..self.pos].trim_end().to_owned();
        let body = self.block()?;
        Ok(Branch {
            condition,
            text,
            body,
            at,
        })
    }

    fn if_chain(&mut self, at: usize) -> Result<IfChain> {
        let mut chain = IfChain {
            branches: vec![self.branch()?],
            otherwise: None,
            at,
        };
        loop {
            let before = self.pos;
            self.ws();
            if !self.keyword("else") {
                self.pos = before;
                return Ok(chain);
            }
            self.ws();
            if self.keyword("if") {
                chain.branches.push(self.branch()?);
            } else {
                chain.otherwise = Some(self.block()?);
                return Ok(chain);
            }
        }
    }

    fn name(&mut self, what: &str) -> Result<String> {
        match self.peek() {
            Some(b'"') | Some(b'\'') => self.string(),
            _ => match self.bareword() {
                Some(w) => Ok(w),
                None => self.error(self.pos, format!("expected {what}, found {}", self.found())),
            },
        }
    }

    fn plugin(&mut self) -> Result<Plugin> {
        let at = self.pos;
        let name = self.name("a plugin name")?;
        self.ws();
        self.expect("{", &format!("`{{` after the plugin name `{name}`"))?;
        let settings = self.settings()?;
        Ok(Plugin { name, settings, at })
    }

    /// Settings up to and including the closing `}`.
    fn settings(&mut self) -> Result<Vec<Setting>> {
        let mut settings = Vec::new();
        loop {
            self.ws();
            if self.eat("}") {
                return Ok(settings);
            }
            let at = self.pos;
            let name = self.name("a setting name or `}`")?;
            self.ws();
            self.expect("=>", &format!("`=>` after the setting `{name}`"))?;
            self.ws();
            let value = self.value()?;
            settings.push(Setting { name, value, at });
        }
    }

    fn value(&mut self) -> Result<Value> {
        let at = self.pos;
        let kind = match self.peek() {
            Some(b'"') | Some(b'\'') => ValueKind::Str(self.string()?),
            Some(b'[') => ValueKind::Array(self.array()?),
            Some(b'{') => ValueKind::Hash(self.hash()?),
            Some(b) if b == b'-' || b.is_ascii_digit() => ValueKind::Number(self.number()?),
            Some(b) if is_word_start(b) => {
                let word = self.bareword().unwrap_or_default();
                let before = self.pos;
                self.ws();
                if self.eat("{") {
                    ValueKind::Plugin(Plugin {
                        name: word,
                        settings: self.settings()?,
                        at,
                    })
                } else {
                    self.pos = before;
                    ValueKind::Bareword(word)
                }
            }
            _ => {
                return self.error(
                    at,
                    format!(
                        "expected a value (string, number, bare word, array or hash), found {}",
                        self.found()
                    ),
                )
            }
        };
        Ok(Value { kind, at })
    }

    fn number(&mut self) -> Result<String> {
        let start = self.pos;
        self.eat("-");
        let digits = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.pos == digits {
            return self.error(start, "expected a number after `-`");
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        Ok(self.text[start..self.pos].to_owned())
    }

    fn array(&mut self) -> Result<Vec<Value>> {
        self.expect("[", "`[`")?;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.eat("]") {
                return Ok(items);
            }
            items.push(self.value()?);
            self.ws();
            if self.eat(",") {
                continue;
            }
            if self.eat("]") {
                return Ok(items);
            }
            return self.error(
                self.pos,
                format!("expected `,` or `]` in the array, found {}", self.found()),
            );
        }
    }

    fn hash(&mut self) -> Result<Vec<(String, Value)>> {
        self.expect("{", "`{`")?;
        let mut entries = Vec::new();
        loop {
            self.ws();
            if self.eat("}") {
                return Ok(entries);
            }
            let key = match self.peek() {
                Some(b) if b == b'-' || b.is_ascii_digit() => self.number()?,
                _ => self.name("a hash key or `}`")?,
            };
            self.ws();
            self.expect("=>", &format!("`=>` after the hash key `{key}`"))?;
            self.ws();
            entries.push((key, self.value()?));
            self.ws();
            // Logstash separates entries by whitespace; a comma is forgiven.
            self.eat(",");
        }
    }

    /// A quoted string; the quote is at `self.pos`.
    fn string(&mut self) -> Result<String> {
        let start = self.pos;
        let quote = self.bytes[self.pos];
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.text[self.pos..].chars().next() else {
                return self.error(start, "unterminated string (no closing quote)");
            };
            self.pos += c.len_utf8();
            if c as u32 == quote as u32 {
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(next) = self.text[self.pos..].chars().next() else {
                return self.error(start, "unterminated string (no closing quote)");
            };
            self.pos += next.len_utf8();
            if !self.support_escapes {
                out.push('\\');
                out.push(next);
                continue;
            }
            match next {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                '0' => out.push('\0'),
                '\\' | '"' | '\'' => out.push(next),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }

    // ---- conditions ----

    fn condition(&mut self) -> Result<Cond> {
        self.or_level()
    }

    fn or_level(&mut self) -> Result<Cond> {
        let mut left = self.xor_level()?;
        loop {
            let before = self.pos;
            self.ws();
            if self.keyword("or") {
                let right = self.xor_level()?;
                left = Cond::Bool(BoolOp::Or, Box::new(left), Box::new(right));
            } else {
                self.pos = before;
                return Ok(left);
            }
        }
    }

    fn xor_level(&mut self) -> Result<Cond> {
        let mut left = self.and_level()?;
        loop {
            let before = self.pos;
            self.ws();
            if self.keyword("xor") {
                let right = self.and_level()?;
                left = Cond::Bool(BoolOp::Xor, Box::new(left), Box::new(right));
            } else {
                self.pos = before;
                return Ok(left);
            }
        }
    }

    fn and_level(&mut self) -> Result<Cond> {
        let mut left = self.unary()?;
        loop {
            let before = self.pos;
            self.ws();
            let op = if self.keyword("and") {
                BoolOp::And
            } else if self.keyword("nand") {
                BoolOp::Nand
            } else {
                self.pos = before;
                return Ok(left);
            };
            let right = self.unary()?;
            left = Cond::Bool(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Cond> {
        self.ws();
        let at = self.pos;
        if self.peek() == Some(b'!')
            && self.peek_at(1) != Some(b'=')
            && self.peek_at(1) != Some(b'~')
        {
            self.pos += 1;
            self.ws();
            return match self.peek() {
                Some(b'(') => Ok(Cond::Not(Box::new(self.parenthesised()?))),
                Some(b'[') => Ok(Cond::Not(Box::new(Cond::Truthy(self.selector()?)))),
                _ => self.error(
                    at,
                    format!(
                        "expected `(` or a field reference after `!`, found {}",
                        self.found()
                    ),
                ),
            };
        }
        if self.peek() == Some(b'(') {
            return self.parenthesised();
        }
        let left = self.rvalue()?;
        let before = self.pos;
        self.ws();
        for (text, op) in [
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
        ] {
            if self.eat(text) {
                self.ws();
                let right = self.rvalue()?;
                return Ok(Cond::Compare(left, op, right));
            }
        }
        for (text, positive) in [("=~", true), ("!~", false)] {
            if self.eat(text) {
                self.ws();
                let right_at = self.pos;
                return match self.rvalue()? {
                    Operand::Regex(re) | Operand::Str(re) => Ok(Cond::Regex(left, re, positive)),
                    _ => self.error(right_at, format!("expected a regex `/…/` after `{text}`")),
                };
            }
        }
        if self.keyword("in") {
            self.ws();
            let right = self.rvalue()?;
            return Ok(Cond::In(left, right, true));
        }
        let not_at = self.pos;
        if self.keyword("not") {
            self.ws();
            if self.keyword("in") {
                self.ws();
                let right = self.rvalue()?;
                return Ok(Cond::In(left, right, false));
            }
            return self.error(not_at, "expected `in` after `not`");
        }
        self.pos = before;
        Ok(Cond::Truthy(left))
    }

    fn parenthesised(&mut self) -> Result<Cond> {
        let open = self.pos;
        self.expect("(", "`(`")?;
        let inner = self.condition()?;
        self.ws();
        if !self.eat(")") {
            return self.error(
                self.pos,
                format!(
                    "expected `)` closing the `(` at offset {open}, found {}",
                    self.found()
                ),
            );
        }
        Ok(inner)
    }

    fn rvalue(&mut self) -> Result<Operand> {
        self.ws();
        let at = self.pos;
        match self.peek() {
            Some(b'"') | Some(b'\'') => Ok(Operand::Str(self.string()?)),
            Some(b'[') => {
                // `[a][b]` is a field; `["a", "b"]` (or `[1, 2]`) a list.
                let next = self.text[self.pos + 1..].trim_start().as_bytes().first().copied();
                if matches!(next, Some(b'"') | Some(b'\'')) || next.is_some_and(|b| b.is_ascii_digit())
                {
                    self.list()
                } else {
                    self.selector()
                }
            }
            Some(b'/') => Ok(Operand::Regex(self.regex()?)),
            Some(b) if b == b'-' || b.is_ascii_digit() => Ok(Operand::Number(self.number()?)),
            _ => self.error(
                at,
                format!(
                    "expected a value in the condition (a field reference `[a][b]`, a string, a number, a list or a regex), found {}",
                    self.found()
                ),
            ),
        }
    }

    fn list(&mut self) -> Result<Operand> {
        self.expect("[", "`[`")?;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.eat("]") {
                return Ok(Operand::List(items));
            }
            items.push(self.rvalue()?);
            self.ws();
            if self.eat(",") {
                continue;
            }
            if self.eat("]") {
                return Ok(Operand::List(items));
            }
            return self.error(
                self.pos,
                format!("expected `,` or `]` in the list, found {}", self.found()),
            );
        }
    }

    /// `[a][b]…`: at least one bracketed part.
    fn selector(&mut self) -> Result<Operand> {
        let mut parts = Vec::new();
        while self.peek() == Some(b'[') {
            let open = self.pos;
            self.pos += 1;
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b']' || b == b'[' || b == b',' || b == b'\n' {
                    break;
                }
                self.pos += 1;
            }
            if self.peek() != Some(b']') || self.pos == start {
                return self.error(open, "unterminated or empty field reference (`[name]`)");
            }
            parts.push(self.text[start..self.pos].to_owned());
            self.pos += 1;
        }
        Ok(Operand::Field(parts))
    }

    fn regex(&mut self) -> Result<String> {
        let start = self.pos;
        self.pos += 1;
        let body = self.pos;
        loop {
            match self.peek() {
                None | Some(b'\n') => {
                    return self.error(start, "unterminated regex (no closing `/`)")
                }
                Some(b'/') => break,
                Some(b) => {
                    self.pos += 1;
                    if b == b'\\' {
                        self.pos += self.text[self.pos..]
                            .chars()
                            .next()
                            .map_or(0, char::len_utf8);
                    }
                }
            }
        }
        let re = self.text[body..self.pos].to_owned();
        self.pos += 1;
        Ok(re)
    }
}
