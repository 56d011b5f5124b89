//! `exclude` patterns, with the meaning Filebeat's `exclude_files` and
//! Logstash's `exclude` users expect: a pattern without a slash (`*.gz`)
//! matches a file's base name wherever it is; one with a slash matches the
//! whole path, a relative one resolved against the pipeline file's
//! directory as `paths` are. Also whether a pattern can match anything that
//! `paths` can, so that `check` can say when one never will.

use std::path::Path;

/// One compiled `exclude` pattern.
#[derive(Debug, Clone)]
pub enum Exclude {
    /// Matched against the file's base name.
    Name(glob::Pattern),
    /// Matched against the whole (absolute) path.
    Path(glob::Pattern),
}

impl Exclude {
    /// Compiles `pattern` as written; `resolve` turns a relative path
    /// pattern into an absolute one.
    pub fn new(
        pattern: &str,
        resolve: impl FnOnce(&str) -> String,
    ) -> Result<Exclude, glob::PatternError> {
        if pattern.contains('/') {
            glob::Pattern::new(&resolve(pattern)).map(Exclude::Path)
        } else {
            glob::Pattern::new(pattern).map(Exclude::Name)
        }
    }

    pub fn matches(&self, path: &Path) -> bool {
        match self {
            Exclude::Name(p) => path
                .file_name()
                .is_some_and(|name| p.matches(&name.to_string_lossy())),
            Exclude::Path(p) => p.matches_path(path),
        }
    }

    /// Whether some path matched by one of `patterns` (the resolved
    /// `paths`) could match this pattern. Errs towards yes: a `false` is
    /// certain, so a warning built on it is never wrong.
    pub fn can_match(&self, patterns: &[String]) -> bool {
        patterns.iter().any(|pattern| match self {
            Exclude::Name(p) => {
                let last = pattern.rsplit('/').next().unwrap_or(pattern);
                // `**` as the last component reaches files of any name.
                last == "**" || intersects(&tokens(last), &tokens(p.as_str()))
            }
            Exclude::Path(p) => intersects(&tokens(pattern), &tokens(p.as_str())),
        })
    }
}

/// One element of a glob pattern.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Char(char),
    /// `?`
    One,
    /// `*` or `**`
    Any,
    /// `[...]` or `[!...]`
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Splits a glob into tokens as the `glob` crate reads it (an unclosed `[`
/// is a literal).
fn tokens(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '?' => out.push(Token::One),
            '*' => {
                if out.last() != Some(&Token::Any) {
                    out.push(Token::Any);
                }
            }
            '[' => {
                if let Some((token, next)) = class(&chars, i) {
                    out.push(token);
                    i = next;
                    continue;
                }
                out.push(Token::Char('['));
            }
            c => out.push(Token::Char(c)),
        }
        i += 1;
    }
    out
}

/// The class starting at `chars[start] == '['`, and the index after it.
fn class(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start + 1;
    let negated = chars.get(i) == Some(&'!');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Token::Class { negated, ranges }, i + 1));
        }
        first = false;
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&e| e != ']') {
            ranges.push((c, chars[i + 2]));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
}

/// Whether two single-character tokens can match the same character.
/// Negated classes are assumed to leave something in common.
fn compatible(a: &Token, b: &Token) -> bool {
    let in_ranges =
        |c: char, ranges: &[(char, char)]| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
    match (a, b) {
        (Token::Any | Token::One, _) | (_, Token::Any | Token::One) => true,
        (Token::Char(x), Token::Char(y)) => x == y,
        (Token::Char(c), Token::Class { negated, ranges })
        | (Token::Class { negated, ranges }, Token::Char(c)) => in_ranges(*c, ranges) != *negated,
        (
            Token::Class {
                negated: false,
                ranges: r1,
            },
            Token::Class {
                negated: false,
                ranges: r2,
            },
        ) => r1
            .iter()
            .any(|&(lo1, hi1)| r2.iter().any(|&(lo2, hi2)| lo1 <= hi2 && lo2 <= hi1)),
        (Token::Class { .. }, Token::Class { .. }) => true,
    }
}

/// Whether some string matches both token lists: a walk over pairs of
/// positions, where `Any` may stay put while consuming a character.
fn intersects(a: &[Token], b: &[Token]) -> bool {
    let mut seen = vec![false; (a.len() + 1) * (b.len() + 1)];
    let mut stack = vec![(0, 0)];
    while let Some((i, j)) = stack.pop() {
        let slot = i * (b.len() + 1) + j;
        if std::mem::replace(&mut seen[slot], true) {
            continue;
        }
        if i == a.len() && j == b.len() {
            return true;
        }
        // `Any` may match nothing.
        if a.get(i) == Some(&Token::Any) {
            stack.push((i + 1, j));
        }
        if b.get(j) == Some(&Token::Any) {
            stack.push((i, j + 1));
        }
        // Both consume one character.
        if let (Some(ta), Some(tb)) = (a.get(i), b.get(j)) {
            if compatible(ta, tb) {
                let ni = if *ta == Token::Any { i } else { i + 1 };
                let nj = if *tb == Token::Any { j } else { j + 1 };
                stack.push((ni, nj));
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exclude(pattern: &str) -> Exclude {
        let resolve = |p: &str| match p.starts_with('/') {
            true => p.to_owned(),
            false => format!("/etc/logpipe/{p}"),
        };
        Exclude::new(pattern, resolve).unwrap()
    }

    #[test]
    fn a_pattern_without_a_slash_matches_the_base_name_anywhere() {
        let gz = exclude("*.gz");
        assert!(gz.matches(Path::new("/var/log/httpd/access_log.1.gz")));
        assert!(!gz.matches(Path::new("/var/log/httpd/access_log.1")));
        assert!(!gz.matches(Path::new("/var/log/x.gz/access_log")));
    }

    #[test]
    fn a_pattern_with_a_slash_matches_the_path_resolved_as_paths_are() {
        assert!(exclude("/var/log/httpd/old/*").matches(Path::new("/var/log/httpd/old/a")));
        let relative = exclude("logs/old/*");
        assert!(relative.matches(Path::new("/etc/logpipe/logs/old/a")));
        assert!(!relative.matches(Path::new("/var/logs/old/a")));
    }

    #[test]
    fn can_match_is_false_only_when_no_path_of_paths_could_match() {
        let paths = ["/var/log/httpd/access_log*".to_owned()];
        assert!(exclude("*.gz").can_match(&paths));
        assert!(exclude("access_log.[0-9]").can_match(&paths));
        assert!(!exclude("*.log").can_match(&["/var/log/httpd/access_log".to_owned()]));
        assert!(!exclude("error_log*").can_match(&paths));
        assert!(exclude("*.gz").can_match(&["/var/log/**".to_owned()]));
        assert!(!exclude("/var/log/nginx/*").can_match(&paths));
        assert!(exclude("/var/log/httpd/*.gz").can_match(&paths));
        assert!(exclude("/var/log/*/access_log.gz").can_match(&paths));
        assert!(!exclude("[ab]*").can_match(&["/x/[cd]*".to_owned()]));
        assert!(exclude("[a-c]x").can_match(&["/x/[b-z]?".to_owned()]));
    }
}
