//! The expression language of `if = '…'` on filters and outputs, Logstash's
//! conditionals: `"httpd_access" in [tags]`, `[status] >= 500`,
//! `[message] =~ /^GET /`, `[a] and not ([b] or [c] != "x")`.
//!
//! Expressions are parsed once at load into a small tree; evaluation reads
//! the event and never allocates for field references and literals. A syntax
//! error carries the byte offset of the offending character, so the config
//! diagnostic points inside the TOML string.
//!
//! Semantics follow Logstash: a bare operand is true when the field exists
//! and is not `false` or null; `==` compares numbers as numbers and anything
//! else as JSON values; `<`… compare numbers, or strings lexically; `in`
//! looks for an element of a list or a substring of a string; a regex
//! matches a string field (a missing field never matches).

use std::cmp::Ordering;

use regex::Regex;

use crate::event::{Event, TimeText, Value};
use crate::event::{FieldRef, SyntaxError};

/// A parsed condition.
#[derive(Debug, Clone)]
pub struct Condition {
    expr: Expr,
    text: String,
}

#[derive(Debug, Clone)]
enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Truthy(Operand),
    Compare(Operand, CmpOp, Operand),
    Match(Operand, Regex, bool),
    In(Operand, Operand, bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone)]
enum Operand {
    Field(FieldRef),
    Literal(Value),
    List(Vec<Value>),
}

impl Condition {
    pub fn parse(text: &str) -> Result<Self, SyntaxError> {
        let tokens = lex(text)?;
        let mut parser = Parser {
            tokens,
            pos: 0,
            end: text.len(),
        };
        let expr = parser.or()?;
        if let Some((at, token)) = parser.tokens.get(parser.pos) {
            return Err(error(
                *at,
                format!("unexpected {} after a complete condition", token.describe()),
            ));
        }
        Ok(Condition {
            expr,
            text: text.to_owned(),
        })
    }

    /// The condition as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn eval(&self, event: &Event) -> bool {
        eval(&self.expr, event)
    }
}

fn error(offset: usize, message: impl Into<String>) -> SyntaxError {
    SyntaxError {
        message: message.into(),
        offset,
    }
}

fn eval(expr: &Expr, event: &Event) -> bool {
    match expr {
        Expr::Or(a, b) => eval(a, event) || eval(b, event),
        Expr::And(a, b) => eval(a, event) && eval(b, event),
        Expr::Not(inner) => !eval(inner, event),
        Expr::Truthy(operand) => match resolve(operand, event) {
            Resolved::Value(v) => !matches!(v, Value::Null | Value::Bool(false)),
            Resolved::List(_) => true,
            Resolved::Missing => false,
        },
        Expr::Compare(left, op, right) => {
            let (Resolved::Value(a), Resolved::Value(b)) =
                (resolve(left, event), resolve(right, event))
            else {
                // A missing field equals nothing, so it is "not equal" to anything.
                return *op == CmpOp::Ne;
            };
            compare(a, *op, b)
        }
        Expr::Match(operand, regex, negate) => {
            let matched = match resolve(operand, event) {
                Resolved::Value(Value::String(s)) => regex.is_match(s),
                Resolved::Value(Value::Number(n)) => regex.is_match(&n.to_string()),
                Resolved::Value(Value::Time(t)) => regex.is_match(TimeText::new(t).as_str()),
                _ => false,
            };
            matched != *negate
        }
        Expr::In(needle, haystack, negate) => {
            let found = match (resolve(needle, event), resolve(haystack, event)) {
                (Resolved::Value(n), Resolved::Value(Value::Array(items))) => {
                    items.iter().any(|i| compare(n, CmpOp::Eq, i))
                }
                (Resolved::Value(n), Resolved::List(items)) => {
                    items.iter().any(|i| compare(n, CmpOp::Eq, i))
                }
                (Resolved::Value(Value::String(n)), Resolved::Value(Value::String(h))) => {
                    h.contains(n.as_str())
                }
                _ => false,
            };
            found != *negate
        }
    }
}

enum Resolved<'a> {
    Value(&'a Value),
    List(&'a [Value]),
    Missing,
}

fn resolve<'a>(operand: &'a Operand, event: &'a Event) -> Resolved<'a> {
    match operand {
        Operand::Field(field) => event.get(field).map_or(Resolved::Missing, Resolved::Value),
        Operand::Literal(value) => Resolved::Value(value),
        Operand::List(items) => Resolved::List(items),
    }
}

fn compare(a: &Value, op: CmpOp, b: &Value) -> bool {
    let ordering = match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => None,
        },
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Time(x), Value::Time(y)) => Some(x.cmp(y)),
        _ => {
            return match op {
                CmpOp::Eq => a == b,
                CmpOp::Ne => a != b,
                _ => false,
            }
        }
    };
    let Some(ordering) = ordering else {
        return op == CmpOp::Ne;
    };
    match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::Ne => ordering != Ordering::Equal,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Field(String),
    Str(String),
    Number(f64),
    Bool(bool),
    Regex(String),
    ListOpen,
    ListClose,
    Comma,
    Open,
    Close,
    Op(&'static str),
    And,
    Or,
    Not,
    In,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Field(f) => format!("field `{f}`"),
            Token::Str(s) => format!("string \"{s}\""),
            Token::Number(n) => format!("number {n}"),
            Token::Bool(b) => format!("`{b}`"),
            Token::Regex(r) => format!("regex /{r}/"),
            Token::ListOpen => "`[`".into(),
            Token::ListClose => "`]`".into(),
            Token::Comma => "`,`".into(),
            Token::Open => "`(`".into(),
            Token::Close => "`)`".into(),
            Token::Op(op) => format!("`{op}`"),
            Token::And => "`and`".into(),
            Token::Or => "`or`".into(),
            Token::Not => "`not`".into(),
            Token::In => "`in`".into(),
        }
    }
}

fn lex(text: &str) -> Result<Vec<(usize, Token)>, SyntaxError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    // Inside a list literal `[` means a list, not a field reference.
    let mut in_list = false;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'(' => tokens.push((start, Token::Open)),
            b')' => tokens.push((start, Token::Close)),
            b',' if in_list => tokens.push((start, Token::Comma)),
            b']' if in_list => {
                in_list = false;
                tokens.push((start, Token::ListClose));
            }
            b'[' => {
                let after = text[i + 1..].trim_start();
                let list = after.starts_with(['"', '\'', '-', ']'])
                    || after.starts_with(|c: char| c.is_ascii_digit());
                if list {
                    in_list = true;
                    tokens.push((start, Token::ListOpen));
                } else {
                    // A field reference: `[a][b]…`, brackets back to back.
                    let mut end = i;
                    while bytes.get(end) == Some(&b'[') {
                        match text[end..].find(']') {
                            Some(close) => end += close + 1,
                            None => return Err(error(end, "unclosed `[` in field reference")),
                        }
                    }
                    let reference = &text[i..end];
                    let field = FieldRef::parse(reference)
                        .map_err(|e| error(start + e.offset, e.message))?;
                    tokens.push((start, Token::Field(field.as_str().to_owned())));
                    i = end;
                    continue;
                }
            }
            b'"' | b'\'' => {
                let (value, next) = string(text, i, c)?;
                tokens.push((start, Token::Str(value)));
                i = next;
                continue;
            }
            b'/' => {
                let mut value = String::new();
                let mut j = i + 1;
                loop {
                    match bytes.get(j) {
                        None => return Err(error(start, "unclosed regex: expected a closing `/`")),
                        Some(b'\\') if bytes.get(j + 1) == Some(&b'/') => {
                            value.push('/');
                            j += 2;
                        }
                        Some(b'/') => break,
                        Some(_) => {
                            let ch = text[j..].chars().next().unwrap_or('\u{fffd}');
                            value.push(ch);
                            j += ch.len_utf8();
                        }
                    }
                }
                tokens.push((start, Token::Regex(value)));
                i = j + 1;
                continue;
            }
            b'=' | b'!' | b'<' | b'>' => {
                let two = text.get(i..i + 2).unwrap_or("");
                let op = match two {
                    "==" => "==",
                    "!=" => "!=",
                    "<=" => "<=",
                    ">=" => ">=",
                    "=~" => "=~",
                    "!~" => "!~",
                    _ if c == b'<' => "<",
                    _ if c == b'>' => ">",
                    _ => return Err(error(start, format!("unexpected `{}`", c as char))),
                };
                tokens.push((start, Token::Op(op)));
                i += op.len();
                continue;
            }
            b'-' | b'0'..=b'9' => {
                let mut j = i + 1;
                while j < bytes.len() && (bytes[j].is_ascii_digit() || bytes[j] == b'.') {
                    j += 1;
                }
                let number: f64 = text[i..j]
                    .parse()
                    .map_err(|_| error(start, format!("invalid number `{}`", &text[i..j])))?;
                tokens.push((start, Token::Number(number)));
                i = j;
                continue;
            }
            c if c.is_ascii_alphabetic() => {
                let mut j = i;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                    j += 1;
                }
                let token = match &text[i..j] {
                    "and" => Token::And,
                    "or" => Token::Or,
                    "not" => Token::Not,
                    "in" => Token::In,
                    "true" => Token::Bool(true),
                    "false" => Token::Bool(false),
                    word => {
                        return Err(error(
                            start,
                            format!("unexpected word `{word}` (fields are written `[name]`, strings \"quoted\")"),
                        ))
                    }
                };
                tokens.push((start, token));
                i = j;
                continue;
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(error(start, format!("unexpected character `{ch}`")));
            }
        }
        i += 1;
    }
    Ok(tokens)
}

/// A quoted string starting at `start`; returns its value and the index after it.
fn string(text: &str, start: usize, quote: u8) -> Result<(String, usize), SyntaxError> {
    let bytes = text.as_bytes();
    let mut value = String::new();
    let mut j = start + 1;
    loop {
        match bytes.get(j) {
            None => return Err(error(start, "unclosed string")),
            Some(b'\\') if matches!(bytes.get(j + 1), Some(&b) if b == quote || b == b'\\') => {
                value.push(bytes[j + 1] as char);
                j += 2;
            }
            Some(&b) if b == quote => return Ok((value, j + 1)),
            Some(_) => {
                let ch = text[j..].chars().next().unwrap_or('\u{fffd}');
                value.push(ch);
                j += ch.len_utf8();
            }
        }
    }
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(at, _)| *at)
    }

    fn next(&mut self) -> Option<(usize, Token)> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        match self.peek() {
            Some(Token::Not) => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some(Token::Open) => {
                self.pos += 1;
                let inner = self.or()?;
                let at = self.offset();
                match self.next() {
                    Some((_, Token::Close)) => Ok(inner),
                    _ => Err(error(at, "expected `)`")),
                }
            }
            _ => self.comparison(),
        }
    }

    fn comparison(&mut self) -> Result<Expr, SyntaxError> {
        let left = self.operand()?;
        let at = self.offset();
        match self.peek().cloned() {
            Some(Token::Op(op @ ("=~" | "!~"))) => {
                self.pos += 1;
                let at = self.offset();
                let pattern = match self.next() {
                    Some((_, Token::Regex(p) | Token::Str(p))) => p,
                    _ => return Err(error(at, format!("expected a /regex/ after `{op}`"))),
                };
                let regex =
                    Regex::new(&pattern).map_err(|e| error(at, format!("invalid regex: {e}")))?;
                Ok(Expr::Match(left, regex, op == "!~"))
            }
            Some(Token::Op(op)) => {
                self.pos += 1;
                let right = self.operand()?;
                let op = match op {
                    "==" => CmpOp::Eq,
                    "!=" => CmpOp::Ne,
                    "<" => CmpOp::Lt,
                    ">" => CmpOp::Gt,
                    "<=" => CmpOp::Le,
                    ">=" => CmpOp::Ge,
                    _ => return Err(error(at, format!("unknown operator `{op}`"))),
                };
                Ok(Expr::Compare(left, op, right))
            }
            Some(Token::In) => {
                self.pos += 1;
                Ok(Expr::In(left, self.operand()?, false))
            }
            Some(Token::Not)
                if self.tokens.get(self.pos + 1).map(|(_, t)| t) == Some(&Token::In) =>
            {
                self.pos += 2;
                Ok(Expr::In(left, self.operand()?, true))
            }
            _ => Ok(Expr::Truthy(left)),
        }
    }

    fn operand(&mut self) -> Result<Operand, SyntaxError> {
        let at = self.offset();
        match self.next() {
            Some((_, Token::Field(f))) => FieldRef::parse(&f)
                .map(Operand::Field)
                .map_err(|e| error(at, e.message)),
            Some((_, Token::Str(s))) => Ok(Operand::Literal(Value::from(s))),
            Some((_, Token::Number(n))) => Ok(Operand::Literal(number(n))),
            Some((_, Token::Bool(b))) => Ok(Operand::Literal(Value::Bool(b))),
            Some((_, Token::ListOpen)) => {
                let mut items = Vec::new();
                loop {
                    let at = self.offset();
                    match self.next() {
                        Some((_, Token::ListClose)) if items.is_empty() => break,
                        Some((_, Token::Str(s))) => items.push(Value::from(s)),
                        Some((_, Token::Number(n))) => items.push(number(n)),
                        Some((_, Token::Bool(b))) => items.push(Value::Bool(b)),
                        _ => {
                            return Err(error(
                                at,
                                "expected a string, number or boolean in the list",
                            ))
                        }
                    }
                    let at = self.offset();
                    match self.next() {
                        Some((_, Token::Comma)) => {}
                        Some((_, Token::ListClose)) => break,
                        _ => return Err(error(at, "expected `,` or `]` in the list")),
                    }
                }
                Ok(Operand::List(items))
            }
            Some((_, token)) => Err(error(
                at,
                format!(
                    "expected a field, a string, a number or `(`, found {}",
                    token.describe()
                ),
            )),
            None => Err(error(at, "the condition ends where a value was expected")),
        }
    }
}

/// Integral literals become JSON integers so that `[status] == 200` also
/// matches by value equality in lists.
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(fields: serde_json::Value) -> Event {
        Event {
            fields: fields.as_object().unwrap().clone().into(),
            ..Event::default()
        }
    }

    fn holds(condition: &str, fields: serde_json::Value) -> bool {
        Condition::parse(condition).unwrap().eval(&event(fields))
    }

    #[test]
    fn a_native_time_compares_and_matches_as_its_text() {
        let mut e = Event::default();
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-25T23:59:59.123Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        e.set_timestamp(t);
        for (condition, want) in [
            (r#"[@timestamp] =~ /^2026-11-25T23/"#, true),
            (r#"[@timestamp] == "2026-11-25T23:59:59.123Z""#, true),
            (r#"[@timestamp] != "2026-11-25T23:59:59.123Z""#, false),
            (r#"[@timestamp] =~ /^2025/"#, false),
        ] {
            assert_eq!(
                Condition::parse(condition).unwrap().eval(&e),
                want,
                "{condition}"
            );
        }
    }

    #[test]
    fn a_tag_in_the_tags_list_selects_the_event() {
        let cond = r#""httpd_access" in [tags]"#;
        assert!(holds(cond, json!({"tags": ["x", "httpd_access"]})));
        assert!(!holds(cond, json!({"tags": ["httpd_error"]})));
        assert!(!holds(cond, json!({})));
        assert!(holds(
            r#""httpd_access" not in [tags]"#,
            json!({"tags": ["httpd_error"]})
        ));
    }

    #[test]
    fn comparisons_treat_numbers_as_numbers_and_strings_lexically() {
        let doc = json!({"http": {"response": {"status_code": 503}}, "v": "1.1"});
        assert!(holds("[http][response][status_code] >= 500", doc.clone()));
        assert!(holds("[http][response][status_code] == 503", doc.clone()));
        assert!(holds("[http][response][status_code] != 200", doc.clone()));
        assert!(!holds("[http][response][status_code] < 500", doc.clone()));
        assert!(holds("[http][response][status_code] <= 503.0", doc.clone()));
        assert!(holds(r#"[v] > "1.0""#, doc.clone()));
        assert!(holds(r#"[v] == '1.1'"#, doc.clone()));
        assert!(!holds(r#"[v] == 1.1"#, doc.clone()));
        assert!(holds(r#"[missing] != "x""#, doc.clone()));
        assert!(!holds(r#"[missing] == "x""#, doc));
    }

    #[test]
    fn regexes_match_strings_and_never_missing_fields() {
        let doc = json!({"message": "GET /a/b HTTP/1.1"});
        assert!(holds(r#"[message] =~ /^GET \/a/"#, doc.clone()));
        assert!(holds(r#"[message] !~ /^POST/"#, doc.clone()));
        assert!(!holds(r#"[other] =~ /.*/"#, doc.clone()));
        assert!(holds(r#"[other] !~ /.*/"#, doc));
    }

    #[test]
    fn boolean_operators_follow_precedence_and_parentheses() {
        let doc = json!({"a": true, "b": false, "n": 0, "s": "x"});
        assert!(holds("[a] or [b] and [b]", doc.clone()));
        assert!(!holds("([a] or [b]) and [b]", doc.clone()));
        assert!(holds("not [b]", doc.clone()));
        assert!(holds("not [missing] and [n]", doc.clone()));
        assert!(holds(
            r#"[s] in ["x", "y"] and not ([n] in [1, 2])"#,
            doc.clone()
        ));
        assert!(holds(r#""x" in [s]"#, doc));
    }

    #[test]
    fn metadata_fields_are_addressable() {
        let mut e = event(json!({}));
        e.metadata.insert("kafka".into(), json!({"topic": "t"}));
        let c = Condition::parse(r#"[@metadata][kafka][topic] == "t""#).unwrap();
        assert!(c.eval(&e));
    }

    #[test]
    fn syntax_errors_point_at_the_offending_character() {
        let offset = |text: &str| Condition::parse(text).unwrap_err().offset;
        assert_eq!(offset(r#""a" in [tags] and"#), 17);
        assert_eq!(offset(r#"[a] == "x" )"#), 11);
        assert_eq!(offset(r#"([a] == 1"#), 9);
        assert_eq!(offset(r#"[a] = 1"#), 4);
        assert_eq!(offset(r#"[a] =~ /(/"#), 7);
        assert_eq!(offset(r#"[a] == "unclosed"#), 7);
        assert_eq!(offset(r#"status == 1"#), 0);
        assert_eq!(offset(r#"[a][b == 1"#), 3);
    }
}
