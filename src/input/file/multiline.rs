//! Joining lines into multi-line events (stack traces, wrapped records),
//! with Filebeat's and Logstash's rules: a line is a *continuation* when it
//! matches `pattern` (or does not, with `negate`); `match = "previous"`
//! appends continuations to the event before them, `match = "next"` to the
//! event after them.
//!
//! An unfinished event is held here, not sent: batches end at the last
//! complete event, so the checkpoint never moves past a half-built one and a
//! restart reads all of its lines again. Pure: no I/O, no clock of its own.

use std::time::{Duration, Instant};

use regex::Regex;
use serde::Deserialize;

use super::reader::Line;

/// Which event a continuation line joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Match {
    Previous,
    Next,
}

/// Validated multiline settings.
#[derive(Debug)]
pub struct Multiline {
    pub pattern: Regex,
    pub negate: bool,
    pub match_: Match,
    pub max_lines: usize,
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// An event being built.
#[derive(Debug)]
struct Pending {
    line: Line,
    /// The joined text, grown in place; it becomes `line.text` on flush.
    text: String,
    lines: usize,
    /// When its last line arrived.
    touched: Instant,
}

/// The per-file state of multiline joining.
#[derive(Debug, Default)]
pub struct Joiner {
    pending: Option<Pending>,
}

impl Joiner {
    /// Feeds one line; complete events are appended to `out`.
    pub fn push(&mut self, rules: &Multiline, line: Line, now: Instant, out: &mut Vec<Line>) {
        let continuation = rules.pattern.is_match(&line.text) != rules.negate;
        match rules.match_ {
            Match::Previous => {
                if continuation && self.pending.is_some() {
                    self.append(rules, line, now);
                } else {
                    out.extend(self.flush());
                    self.start(line, now);
                }
            }
            Match::Next => {
                if self.pending.is_some() {
                    self.append(rules, line, now);
                } else {
                    self.start(line, now);
                }
                if !continuation {
                    out.extend(self.flush());
                }
            }
        }
    }

    /// The unfinished event, if it waited longer than the timeout.
    pub fn flush_expired(&mut self, rules: &Multiline, now: Instant) -> Option<Line> {
        let expired = self
            .pending
            .as_ref()
            .is_some_and(|p| now.saturating_duration_since(p.touched) >= rules.timeout);
        if expired {
            self.flush()
        } else {
            None
        }
    }

    /// The unfinished event, whatever its age.
    pub fn flush(&mut self) -> Option<Line> {
        self.pending.take().map(|mut p| {
            p.line.text = p.text.into();
            p.line
        })
    }

    /// Whether an unfinished event is held.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    fn start(&mut self, line: Line, now: Instant) {
        self.pending = Some(Pending {
            text: line.text.to_string(),
            line,
            lines: 1,
            touched: now,
        });
    }

    fn append(&mut self, rules: &Multiline, line: Line, now: Instant) {
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        p.touched = now;
        p.line.end = line.end;
        p.line.invalid_utf8 |= line.invalid_utf8;
        p.line.multiline = true;
        if p.lines >= rules.max_lines {
            p.line.truncated = true;
            return;
        }
        p.lines += 1;
        let room = rules.max_bytes.saturating_sub(p.text.len() + 1);
        if line.text.len() > room || line.truncated {
            p.line.truncated = true;
        }
        if room == 0 {
            return;
        }
        p.text.push('\n');
        let mut take = line.text.len().min(room - 1);
        while !line.text.is_char_boundary(take) {
            take -= 1;
        }
        p.text.push_str(&line.text[..take]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(pattern: &str, negate: bool, match_: Match) -> Multiline {
        Multiline {
            pattern: Regex::new(pattern).unwrap(),
            negate,
            match_,
            max_lines: 3,
            max_bytes: 1000,
            timeout: Duration::from_secs(5),
        }
    }

    /// Lines of `text` as the reader would make them (offsets included).
    fn lines(text: &str) -> Vec<Line> {
        let mut offset = 0;
        text.lines()
            .map(|t| {
                let line = Line {
                    offset,
                    end: offset + t.len() as u64 + 1,
                    text: t.into(),
                    truncated: false,
                    invalid_utf8: false,
                    multiline: false,
                };
                offset = line.end;
                line
            })
            .collect()
    }

    fn join(rules: &Multiline, text: &str) -> (Vec<Line>, Joiner) {
        let mut joiner = Joiner::default();
        let mut out = Vec::new();
        let now = Instant::now();
        for line in lines(text) {
            joiner.push(rules, line, now, &mut out);
        }
        (out, joiner)
    }

    #[test]
    fn indented_lines_join_the_event_before_them() {
        let r = rules(r"^\s", false, Match::Previous);
        let (out, mut joiner) = join(&r, "Exception\n  at a\n  at b\nnext\n");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, "Exception\n  at a\n  at b");
        assert_eq!((out[0].offset, out[0].end), (0, 24));
        assert!(out[0].multiline);
        let last = joiner.flush().unwrap();
        assert_eq!((last.text.as_str(), last.offset), ("next", 24));
        assert!(!last.multiline);
    }

    #[test]
    fn negate_joins_lines_that_do_not_start_a_record() {
        let r = rules(r"^\[", true, Match::Previous);
        let (out, joiner) = join(&r, "[a] one\ncont\n[b] two\n");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, "[a] one\ncont");
        assert!(joiner.is_pending(), "[b] waits: more lines may follow");
    }

    #[test]
    fn match_next_joins_a_line_to_the_one_after_it() {
        let r = rules(r"\\$", false, Match::Next);
        let (out, joiner) = join(&r, "a \\\nb \\\nc\nd\n");
        let texts: Vec<_> = out.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a \\\nb \\\nc", "d"]);
        assert!(!joiner.is_pending());
    }

    #[test]
    fn lines_over_max_lines_are_dropped_and_the_event_tagged() {
        let r = rules(r"^\s", false, Match::Previous);
        let (_, mut joiner) = join(&r, "E\n 1\n 2\n 3\n 4\n");
        let event = joiner.flush().unwrap();
        assert_eq!(event.text, "E\n 1\n 2");
        assert!(event.truncated);
        assert_eq!(event.end, 14, "the dropped lines still count as read");
    }

    #[test]
    fn an_unfinished_event_is_sent_after_the_timeout() {
        let r = rules(r"^\s", false, Match::Previous);
        let (_, mut joiner) = join(&r, "E\n 1\n");
        let now = Instant::now();
        assert!(joiner.flush_expired(&r, now).is_none());
        let event = joiner
            .flush_expired(&r, now + Duration::from_secs(6))
            .unwrap();
        assert_eq!(event.text, "E\n 1");
    }

    #[test]
    fn events_are_capped_in_bytes() {
        let mut r = rules(r"^\s", false, Match::Previous);
        r.max_bytes = 8;
        r.max_lines = 100;
        let (_, mut joiner) = join(&r, "abc\n defgh\n ij\n");
        let event = joiner.flush().unwrap();
        assert!(event.text.len() <= 8, "{:?}", event.text);
        assert!(event.truncated);
    }
}
