//! The uap-core rule lists, each regex compiled only when an agent first
//! needs it.
//!
//! `ua-parser`'s own extractor compiles all ~1,200 regexes up front: ~0.1 s
//! and ~21 MiB of heap (~48 MiB more peak RSS under mimalloc), although a
//! web log's agents need a few hundred rules at most and a one-line
//! `logpipe test` a handful. So each list here keeps its rules as text, with
//! literals that any match must contain; one Aho-Corasick pass over an agent
//! finds the rules that can match, and only those are compiled (once, then
//! kept), tried in file order as uap-core requires. Each compiled rule is a
//! one-rule `ua-parser` extractor, so matching (its ASCII `\d`/`\w`) and the
//! replacement semantics stay the crate's.

use std::sync::{Mutex, OnceLock};

use aho_corasick::AhoCorasick;
use regex_syntax::hir::{Hir, HirKind};
use ua_parser::{device, os, user_agent};

/// Literals shorter than this make a clause too common to be worth checking.
const MIN_LITERAL: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the bundled uap-core regexes.yaml does not parse: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("cannot build the uap-core prefilter: {0}")]
    Prefilter(#[from] aho_corasick::BuildError),
}

/// Why one rule could not be compiled (only a broken vendored file can).
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("{0}")]
    UserAgent(#[from] ua_parser::Error),
    #[error("{0:?}")]
    Parse(#[from] ua_parser::ParseError),
    #[error("{0:?}")]
    Build(#[from] ua_parser::BuildError),
}

/// The three lists of a regexes.yaml.
pub struct Uap {
    pub user_agent: Rules<UserAgent>,
    pub os: Rules<Os>,
    pub device: Rules<Device>,
}

impl Uap {
    pub fn load(yaml: &str) -> Result<Uap, LoadError> {
        let regexes: ua_parser::Regexes<'static> = serde_norway::from_str(yaml)?;
        Ok(Uap {
            user_agent: Rules::new(regexes.user_agent_parsers)?,
            os: Rules::new(regexes.os_parsers)?,
            device: Rules::new(regexes.device_parsers)?,
        })
    }

    pub fn user_agent<'a>(&'a self, agent: &'a str) -> Option<user_agent::ValueRef<'a>> {
        self.user_agent.first(agent, |rule| rule.extract(agent))
    }

    pub fn os<'a>(&'a self, agent: &'a str) -> Option<os::ValueRef<'a>> {
        self.os.first(agent, |rule| rule.extract(agent))
    }

    pub fn device<'a>(&'a self, agent: &'a str) -> Option<device::ValueRef<'a>> {
        self.device.first(agent, |rule| rule.extract(agent))
    }

    pub fn rule_count(&self) -> usize {
        self.user_agent.rules.len() + self.os.rules.len() + self.device.rules.len()
    }
}

/// One of the three lists: how to read its rule's regex and compile it.
pub trait Kind {
    const NAME: &'static str;
    type Parser: Send;
    type Extractor: Send + Sync;
    fn regex(parser: &Self::Parser) -> &str;
    fn compile(parser: Self::Parser) -> Result<Self::Extractor, RuleError>;
}

pub struct UserAgent;
pub struct Os;
pub struct Device;

impl Kind for UserAgent {
    const NAME: &'static str = "user_agent";
    type Parser = user_agent::Parser<'static>;
    type Extractor = user_agent::Extractor<'static>;
    fn regex(parser: &Self::Parser) -> &str {
        &parser.regex
    }
    fn compile(parser: Self::Parser) -> Result<Self::Extractor, RuleError> {
        Ok(user_agent::Builder::new().push(parser)?.build()?)
    }
}

impl Kind for Os {
    const NAME: &'static str = "os";
    type Parser = os::Parser<'static>;
    type Extractor = os::Extractor<'static>;
    fn regex(parser: &Self::Parser) -> &str {
        &parser.regex
    }
    fn compile(parser: Self::Parser) -> Result<Self::Extractor, RuleError> {
        Ok(os::Builder::new().push(parser)?.build()?)
    }
}

impl Kind for Device {
    const NAME: &'static str = "device";
    type Parser = device::Parser<'static>;
    type Extractor = device::Extractor<'static>;
    fn regex(parser: &Self::Parser) -> &str {
        &parser.regex
    }
    fn compile(parser: Self::Parser) -> Result<Self::Extractor, RuleError> {
        Ok(device::Builder::new().push(parser)?.build()?)
    }
}

struct Rule<K: Kind> {
    /// The rule's text until it is compiled.
    pending: Mutex<Option<K::Parser>>,
    /// `None` once compiling failed (logged): the rule never matches.
    compiled: OnceLock<Option<K::Extractor>>,
    /// Atom ids, as AND of ORs: every match of the regex contains, for each
    /// clause, one of its atoms. Empty: nothing is known, always try it.
    clauses: Vec<Box<[u32]>>,
}

pub struct Rules<K: Kind> {
    rules: Vec<Rule<K>>,
    /// Every clause's literals, ASCII-lowercased, matched ignoring ASCII
    /// case: some lists' rules are case-insensitive, and Elasticsearch's
    /// (Java's) case-insensitive matching is ASCII-only too.
    atoms: AhoCorasick,
    /// The rules whose first clause holds each atom.
    rules_by_atom: Vec<Vec<u32>>,
    /// The rules without a clause.
    unfiltered: Vec<u32>,
}

impl<K: Kind> Rules<K> {
    fn new(parsers: Vec<K::Parser>) -> Result<Self, aho_corasick::BuildError> {
        let mut atoms: Vec<Vec<u8>> = Vec::new();
        let mut atom_ids = std::collections::HashMap::new();
        let mut rules_by_atom: Vec<Vec<u32>> = Vec::new();
        let mut unfiltered = Vec::new();
        let mut rules = Vec::with_capacity(parsers.len());
        for (index, parser) in (0u32..).zip(parsers) {
            let mut clauses: Vec<Box<[u32]>> = Vec::new();
            let mut literals = required_literals(K::regex(&parser));
            // The most selective clause first: it indexes the rule.
            literals.sort_by_key(|clause| std::cmp::Reverse(selectivity(clause)));
            for clause in literals {
                let mut ids: Vec<u32> = clause
                    .into_iter()
                    .map(|mut literal| {
                        literal.make_ascii_lowercase();
                        *atom_ids.entry(literal.clone()).or_insert_with(|| {
                            atoms.push(literal);
                            rules_by_atom.push(Vec::new());
                            (atoms.len() - 1) as u32
                        })
                    })
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                clauses.push(ids.into());
            }
            match clauses.first() {
                Some(first) => {
                    for &atom in first.iter() {
                        rules_by_atom[atom as usize].push(index);
                    }
                }
                None => unfiltered.push(index),
            }
            rules.push(Rule {
                pending: Mutex::new(Some(parser)),
                compiled: OnceLock::new(),
                clauses,
            });
        }
        let atoms = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&atoms)?;
        Ok(Rules {
            rules,
            atoms,
            rules_by_atom,
            unfiltered,
        })
    }

    /// The first rule, in file order, that matches `agent`: the first for
    /// which `extract` gives a value.
    fn first<'a, T>(
        &'a self,
        agent: &'a str,
        extract: impl Fn(&'a K::Extractor) -> Option<T>,
    ) -> Option<T> {
        let mut present = vec![false; self.rules_by_atom.len()];
        let mut candidates = self.unfiltered.clone();
        for found in self.atoms.find_overlapping_iter(agent) {
            let atom = found.pattern().as_usize();
            if !present[atom] {
                present[atom] = true;
                candidates.extend_from_slice(&self.rules_by_atom[atom]);
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .filter_map(|index| {
                let rule = self.rules.get(index as usize)?;
                let possible = rule
                    .clauses
                    .iter()
                    .all(|clause| clause.iter().any(|&atom| present[atom as usize]));
                possible.then_some((index, rule))
            })
            .find_map(|(index, rule)| extract(self.compiled(index, rule)?))
    }

    fn compiled<'a>(&'a self, index: u32, rule: &'a Rule<K>) -> Option<&'a K::Extractor> {
        rule.compiled
            .get_or_init(|| {
                // Only `get_or_init` takes the parser, once; a poisoned lock
                // can only come from a panic in a previous attempt.
                let parser = rule
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()?;
                K::compile(parser)
                    .inspect_err(|error| {
                        tracing::warn!(
                            list = K::NAME,
                            rule = index,
                            %error,
                            "a uap-core user-agent rule does not compile; it never matches"
                        );
                    })
                    .ok()
            })
            .as_ref()
    }

    /// Compiles every rule now; whether all compiled.
    #[cfg(test)]
    pub fn compile_all(&self) -> bool {
        (0u32..)
            .zip(&self.rules)
            .all(|(index, rule)| self.compiled(index, rule).is_some())
    }
}

/// Literals that any match of `pattern` contains, as AND of ORs: for every
/// clause, a match contains one of its literals. Only a necessary condition
/// (the regex still decides); empty when nothing useful is known, or when
/// the pattern does not parse (compiling it will then report why).
fn required_literals(pattern: &str) -> Vec<Vec<Vec<u8>>> {
    // Without Unicode, classes such as `\w` stay small; literals are the same.
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()
        .or_else(|| regex_syntax::Parser::new().parse(pattern).ok());
    let Some(hir) = hir else {
        return Vec::new();
    };
    clauses(&hir)
        .into_iter()
        .filter(|clause| shortest(clause) >= MIN_LITERAL)
        .collect()
}

fn clauses(hir: &Hir) -> Vec<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Literal(literal) => vec![vec![literal.0.to_vec()]],
        HirKind::Capture(capture) => clauses(&capture.sub),
        HirKind::Repetition(repetition) if repetition.min >= 1 => clauses(&repetition.sub),
        // Every part of a concatenation matches: all their clauses hold.
        HirKind::Concat(parts) => parts.iter().flat_map(clauses).collect(),
        // One branch matches: one of the branches' literals is there. Each
        // branch gives its most selective clause; a branch without one
        // leaves nothing known.
        HirKind::Alternation(branches) => {
            let mut any = Vec::new();
            for branch in branches {
                let best = clauses(branch)
                    .into_iter()
                    .filter(|clause| shortest(clause) >= MIN_LITERAL)
                    .max_by_key(|clause| selectivity(clause));
                match best {
                    Some(clause) => any.extend(clause),
                    None => return Vec::new(),
                }
            }
            vec![any]
        }
        // Classes, anchors, optional parts: nothing required.
        _ => Vec::new(),
    }
}

fn shortest(clause: &[Vec<u8>]) -> usize {
    clause.iter().map(Vec::len).min().unwrap_or(0)
}

/// Longer literals, then fewer of them, are found in fewer agents.
fn selectivity(clause: &[Vec<u8>]) -> (usize, std::cmp::Reverse<usize>) {
    (shortest(clause), std::cmp::Reverse(clause.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(clauses: Vec<Vec<Vec<u8>>>) -> Vec<Vec<String>> {
        clauses
            .into_iter()
            .map(|c| {
                c.into_iter()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn required_literals_are_and_of_ors() {
        // Single characters ("/", ".") are too common to be worth a clause.
        assert_eq!(
            text(required_literals(r"(Firefox)/(\d+)\.(\d+)(a\d+[a-z]*)")),
            [["Firefox"]]
        );
        assert_eq!(
            text(required_literals(
                r"; {0,2}(SAMSUNG-|)(GT\-[BINPS]\d{4}[^\/]{0,50})(\/[^ ]{0,50}) Build"
            )),
            [["GT-"], [" Build"]]
        );
        // Each branch of an alternation gives its best literal.
        assert_eq!(
            text(required_literals(r"(Wget|[a-z]+bot|curl)/(\d+)")),
            [["Wget", "bot", "curl"]]
        );
        // A branch without one leaves the alternation unknown.
        assert_eq!(text(required_literals(r"(?:Mac|[A-Z]{2})OS X")), [["OS X"]]);
        assert!(required_literals(r"(\d+)\.(\d+)").is_empty());
        assert!(required_literals(r"(unclosed").is_empty());
    }
}
