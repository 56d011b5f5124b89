//! Logstash conditions in logpipe's `if` language, and what can be known of
//! them for the events of one log source before any event is read (its tags
//! and fields are in the Filebeat config), which decides the route its
//! events take.
//!
//! logpipe's language is Logstash's but for `xor`, `nand` and `!`: these are
//! written with `and`, `or` and `not`. Every compound is parenthesised, so
//! the grouping Logstash's precedence gave is the one logpipe runs.

use std::collections::BTreeMap;

use crate::import::logstash::{BoolOp, CmpOp, Cond, Operand};

/// The condition in logpipe's syntax.
pub fn render(cond: &Cond) -> String {
    match cond {
        Cond::Bool(op, a, b) => {
            let (a, b) = (group(a), group(b));
            match op {
                BoolOp::And => format!("{a} and {b}"),
                BoolOp::Or => format!("{a} or {b}"),
                BoolOp::Nand => format!("not ({a} and {b})"),
                BoolOp::Xor => format!("({a} and not {b}) or (not {a} and {b})"),
            }
        }
        Cond::Not(inner) => format!("not {}", group(inner)),
        Cond::Compare(a, op, b) => format!("{} {} {}", operand(a), op.as_str(), operand(b)),
        Cond::Regex(a, re, positive) => format!(
            "{} {} /{}/",
            operand(a),
            if *positive { "=~" } else { "!~" },
            re
        ),
        Cond::In(a, b, positive) => format!(
            "{} {} {}",
            operand(a),
            if *positive { "in" } else { "not in" },
            operand(b)
        ),
        Cond::Truthy(a) => operand(a),
    }
}

/// A sub-condition, in parentheses unless it is one operand.
fn group(cond: &Cond) -> String {
    match cond {
        Cond::Truthy(_) => render(cond),
        _ => format!("({})", render(cond)),
    }
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn operand(op: &Operand) -> String {
    match op {
        Operand::Field(parts) => parts.iter().map(|p| format!("[{p}]")).collect(),
        Operand::Str(s) => quote(s),
        Operand::Number(n) => n.clone(),
        Operand::List(items) => {
            let items: Vec<String> = items.iter().map(operand).collect();
            format!("[{}]", items.join(", "))
        }
        Operand::Regex(re) => format!("/{re}/"),
    }
}

/// What is known of a source's events when they reach Logstash's filters:
/// every tag they carry, and the fields set by config.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Nothing is known (filters ran that may change tags and fields):
    /// every condition on a field depends on the event.
    pub open: bool,
    pub tags: Vec<String>,
    /// Tags some of the events carry (added under a condition).
    pub maybe_tags: Vec<String>,
    /// Field path (`["fields", "env"]`) to its value.
    pub fields: BTreeMap<Vec<String>, String>,
}

/// Three-valued: true, false, or depends on the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    True,
    False,
    Unknown,
}

impl Known {
    fn of(b: bool) -> Known {
        if b {
            Known::True
        } else {
            Known::False
        }
    }

    fn not(self) -> Known {
        match self {
            Known::True => Known::False,
            Known::False => Known::True,
            Known::Unknown => Known::Unknown,
        }
    }

    fn and(self, other: Known) -> Known {
        match (self, other) {
            (Known::False, _) | (_, Known::False) => Known::False,
            (Known::True, Known::True) => Known::True,
            _ => Known::Unknown,
        }
    }

    fn or(self, other: Known) -> Known {
        self.not().and(other.not()).not()
    }
}

enum Val<'a> {
    Text(String),
    Tags(&'a [String], &'a [String]),
    Unknown,
}

fn value<'a>(op: &Operand, facts: &'a Facts) -> Val<'a> {
    match op {
        Operand::Field(_) if facts.open => Val::Unknown,
        Operand::Str(s) | Operand::Number(s) => Val::Text(s.clone()),
        Operand::Field(path) if path.len() == 1 && path[0] == "tags" => {
            Val::Tags(&facts.tags, &facts.maybe_tags)
        }
        Operand::Field(path) => match facts.fields.get(path) {
            Some(v) => Val::Text(v.clone()),
            None => Val::Unknown,
        },
        _ => Val::Unknown,
    }
}

/// What `cond` is for every event of a source with these facts.
pub fn evaluate(cond: &Cond, facts: &Facts) -> Known {
    match cond {
        Cond::Bool(op, a, b) => {
            let (a, b) = (evaluate(a, facts), evaluate(b, facts));
            match op {
                BoolOp::And => a.and(b),
                BoolOp::Or => a.or(b),
                BoolOp::Nand => a.and(b).not(),
                BoolOp::Xor => a.and(b.not()).or(a.not().and(b)),
            }
        }
        Cond::Not(inner) => evaluate(inner, facts).not(),
        Cond::In(needle, hay, positive) => {
            let found = match (value(needle, facts), value(hay, facts)) {
                (Val::Text(n), Val::Tags(tags, maybe)) => {
                    if tags.contains(&n) {
                        Known::True
                    } else if maybe.contains(&n) {
                        Known::Unknown
                    } else {
                        Known::False
                    }
                }
                (Val::Text(n), Val::Text(h)) => Known::of(h.contains(&n)),
                (Val::Text(n), Val::Unknown) => match hay {
                    Operand::List(items) => Known::of(
                        items
                            .iter()
                            .any(|i| matches!(i, Operand::Str(s) | Operand::Number(s) if *s == n)),
                    ),
                    _ => Known::Unknown,
                },
                _ => Known::Unknown,
            };
            if *positive {
                found
            } else {
                found.not()
            }
        }
        Cond::Compare(a, op, b) => match (value(a, facts), value(b, facts)) {
            (Val::Text(a), Val::Text(b)) => match op {
                CmpOp::Eq => Known::of(a == b),
                CmpOp::Ne => Known::of(a != b),
                _ => Known::Unknown,
            },
            _ => Known::Unknown,
        },
        Cond::Regex(a, re, positive) => match (value(a, facts), regex::Regex::new(re)) {
            (Val::Text(t), Ok(re)) => Known::of(re.is_match(&t) == *positive),
            _ => Known::Unknown,
        },
        Cond::Truthy(a) => match value(a, facts) {
            Val::Tags(tags, maybe) => match (tags.is_empty(), maybe.is_empty()) {
                (false, _) => Known::True,
                (true, false) => Known::Unknown,
                (true, true) => Known::False,
            },
            Val::Text(t) => Known::of(t != "false"),
            Val::Unknown => Known::Unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::Condition;
    use crate::import::logstash::parser::parse;
    use crate::import::logstash::Stmt;

    fn cond(text: &str) -> Cond {
        let config = parse(&format!("output {{ if {text} {{ }} }}"), 0, false).unwrap();
        let Stmt::If(chain) = &config.sections[0].body[0] else {
            panic!()
        };
        chain.branches[0].condition.clone()
    }

    #[test]
    fn conditions_render_in_logpipes_language_and_compile() {
        for (logstash, logpipe) in [
            (r#""httpd_access" in [tags]"#, r#""httpd_access" in [tags]"#),
            ("![a]", "not [a]"),
            ("!([a] == 1)", "not ([a] == 1)"),
            ("[a] nand [b]", "not ([a] and [b])"),
            ("[a] xor [b]", "([a] and not [b]) or (not [a] and [b])"),
            (
                r#"[a][b] =~ /^x\/y/ or [c] not in ["p", "q"] and [d] >= 5"#,
                r#"([a][b] =~ /^x\/y/) or (([c] not in ["p", "q"]) and ([d] >= 5))"#,
            ),
            // Without support_escapes Logstash keeps the backslashes.
            (r#"[m] == "say \"hi\"""#, r#"[m] == "say \\\"hi\\\"""#),
        ] {
            let rendered = render(&cond(logstash));
            assert_eq!(rendered, logpipe, "{logstash}");
            Condition::parse(&rendered).unwrap_or_else(|e| panic!("{rendered}: {e:?}"));
        }
    }

    #[test]
    fn a_sources_tags_and_fields_decide_the_conditions_they_can() {
        let facts = Facts {
            open: false,
            maybe_tags: vec!["slow".into()],
            tags: vec!["httpd_access".into()],
            fields: [(vec!["fields".into(), "env".into()], "prod".into())].into(),
        };
        let known = |text: &str| evaluate(&cond(text), &facts);
        assert_eq!(known(r#""httpd_access" in [tags]"#), Known::True);
        assert_eq!(known(r#""httpd_error" in [tags]"#), Known::False);
        assert_eq!(known(r#""httpd_error" not in [tags]"#), Known::True);
        assert_eq!(known(r#"[fields][env] == "prod""#), Known::True);
        assert_eq!(known(r#"[fields][env] =~ /^dev/"#), Known::False);
        assert_eq!(known("[status] >= 500"), Known::Unknown);
        assert_eq!(
            known(r#""httpd_error" in [tags] and [status] >= 500"#),
            Known::False
        );
        assert_eq!(
            known(r#""httpd_access" in [tags] or [status] >= 500"#),
            Known::True
        );
        assert_eq!(
            known(r#""httpd_access" in [tags] and [status]"#),
            Known::Unknown
        );
        assert_eq!(
            known(r#""httpd_access" in [tags] xor [fields][env]"#),
            Known::False
        );
        assert_eq!(known("![fields][env]"), Known::False);
        assert_eq!(known(r#""slow" in [tags]"#), Known::Unknown);
        let open = Facts {
            open: true,
            ..facts.clone()
        };
        for text in [
            r#""httpd_access" in [tags]"#,
            r#""httpd_error" in [tags]"#,
            r#"[fields][env] == "prod""#,
        ] {
            assert_eq!(evaluate(&cond(text), &open), Known::Unknown, "{text}");
        }
        assert_eq!(evaluate(&cond(r#""a" in ["a", "b"]"#), &open), Known::True);
    }
}
