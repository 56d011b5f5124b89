//! A hand-written parser for the built-in `HTTPD_COMMONLOG` and
//! `HTTPD_COMBINEDLOG` (`^%{…}` and `^%{…}$`): the indexer's hot loop.
//!
//! It follows the regex step by step for the lines Apache writes: a quoted
//! field ends at the first quote that no backslash escapes (mod_log_config's
//! `ap_escape_logitem` writes `\"`, `\\` and `\xhh` inside it), and the
//! request inside the quotes is `-`, `METHOD URL HTTP/version` (the URL may
//! hold spaces), `METHOD URL` (no spaces: HTTP/0.9 or a cut line) or
//! anything else (kept whole as a malformed request). Where the regex could
//! take a path this parser does not follow (an IPv6 address with an IPv4
//! tail, an odd date, `12x` as a size, a line that does not match at all)
//! it declines and the regex decides, so an answer is the regex's answer.
//! A differential test compares both on generated adversarial lines.

/// Which pattern, and whether it is anchored at the end (`$`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub format: Format,
    pub anchored: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Common,
    Combined,
}

/// Byte ranges in the order of the pattern's captures; `None` inside: the
/// group did not take part.
pub type Captures = Vec<Option<(usize, usize)>>;

/// The captures of `HTTPD_COMMONLOG`, then the two of `HTTPD_COMBINEDLOG`.
const COMMON_CAPTURES: usize = 12;

/// Parses `line` as the regex would, or declines with `None` (which is not
/// a no-match: the regex then decides). Captures: source.address, ident,
/// user.name, timestamp; the request as method, url, version (with a
/// protocol) or method, url (without) or the malformed request; status,
/// bytes, and for combined referrer and user agent.
pub fn parse(shape: Shape, line: &str) -> Option<Captures> {
    let b = line.as_bytes();
    // `.` (inside `\\.`) stops at a newline; a read line has none.
    if memchr::memchr(b'\n', b).is_some() {
        return None;
    }
    let mut caps = Vec::with_capacity(COMMON_CAPTURES + 2);

    let host = token(b, 0)?;
    if !is_ip_or_host(&line[host.0..host.1]) {
        return None;
    }
    caps.push(Some(host));
    let mut at = host.1 + 1;

    // `(?:-|%{NOTSPACE})` for the ident, `(?:-|""|%{NOTSPACE})` for the
    // user (Apache writes `""` for an empty user name): the token up to the
    // next space, since a space must follow.
    const IDENT_EMPTY: &[&[u8]] = &[b"-"];
    const USER_EMPTY: &[&[u8]] = &[b"-", b"\"\""];
    for empty in [IDENT_EMPTY, USER_EMPTY] {
        let field = token(b, at)?;
        let text = &b[field.0..field.1];
        if text.iter().copied().any(is_space) {
            return None;
        }
        caps.push((!empty.contains(&text)).then_some(field));
        at = field.1 + 1;
    }

    // [dd/Mon/yyyy:HH:MM:SS +zzzz]
    if b.get(at) != Some(&b'[') || b.len() < at + 29 || b[at + 27] != b']' {
        return None;
    }
    let date = (at + 1, at + 27);
    if !is_httpdate(&b[date.0..date.1]) {
        return None;
    }
    caps.push(Some(date));
    at += 28;
    if b.get(at..at + 2) != Some(b" \"") {
        return None;
    }
    at += 2;

    let close = quoted_end(b, at)?;
    request(b, at, close, &mut caps);
    at = close + 1;
    if b.get(at) != Some(&b' ') {
        return None;
    }
    at += 1;

    let status = token(b, at)?;
    caps.push(dash_or_int(&b[status.0..status.1], status)?);
    at = status.1 + 1;

    match shape.format {
        Format::Common if shape.anchored => {
            caps.push(dash_or_int(&b[at..], (at, b.len()))?);
            return Some(caps);
        }
        Format::Common => {
            // Unanchored: `-` wins at once; else the longest INT.
            if b.get(at) == Some(&b'-') {
                caps.push(None);
            } else {
                let sign = usize::from(b.get(at) == Some(&b'+'));
                let digits = b[at + sign..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                if digits == 0 {
                    return None;
                }
                caps.push(Some((at, at + sign + digits)));
            }
            return Some(caps);
        }
        Format::Combined => {
            let size = token(b, at)?;
            caps.push(dash_or_int(&b[size.0..size.1], size)?);
            at = size.1 + 1;
        }
    }

    // `"(?:-|%{HTTPD_QUOTED})" "(?:-|%{HTTPD_QUOTED})"`
    for _ in 0..2 {
        if b.get(at) != Some(&b'"') {
            return None;
        }
        let end = quoted_end(b, at + 1)?;
        caps.push((&b[at + 1..end] != b"-").then_some((at + 1, end)));
        at = end + 1;
        if caps.len() == COMMON_CAPTURES + 1 {
            if b.get(at) != Some(&b' ') {
                return None;
            }
            at += 1;
        }
    }
    if shape.anchored && at != b.len() {
        return None;
    }
    Some(caps)
}

/// The request between `start` and the closing quote `close`, as
/// `"(?:-|%{HTTPD_REQUEST})"` takes it: six captures.
fn request(b: &[u8], start: usize, close: usize, caps: &mut Captures) {
    let r = &b[start..close];
    let at = |i: usize| start + i;
    if r == b"-" {
        caps.extend([None; 6]);
        return;
    }
    let method = r.iter().take_while(|c| is_tchar(**c)).count();
    if method > 0 && r.get(method) == Some(&b' ') {
        let url = method + 1;
        // With a protocol: the URL runs to the last space, which must
        // start ` HTTP/<number>` and not be the escaped half of `\ `.
        if let Some(last) = memchr::memrchr(b' ', r) {
            if last > url
                && unit_boundary(r, url, last)
                && r[last + 1..].starts_with(b"HTTP/")
                && is_number(&r[last + 6..])
            {
                caps.extend([
                    Some((at(0), at(method))),
                    Some((at(url), at(last))),
                    Some((at(last + 6), close)),
                    None,
                    None,
                    None,
                ]);
                return;
            }
        }
        // Without: one URL of no spaces (an escape may not hide one).
        if url < r.len() && no_spaces(&r[url..]) {
            caps.extend([
                None,
                None,
                None,
                Some((at(0), at(method))),
                Some((at(url), close)),
                None,
            ]);
            return;
        }
    }
    caps.extend([None, None, None, None, None, Some((start, close))]);
}

/// Where a quoted field that starts at `at` ends: the first quote not
/// escaped by a backslash (`(?:[^"\\]|\\.)*"`).
fn quoted_end(b: &[u8], mut at: usize) -> Option<usize> {
    loop {
        at += memchr::memchr2(b'"', b'\\', b.get(at..)?)?;
        if b[at] == b'"' {
            return Some(at);
        }
        // `\\.`: the backslash takes the next byte, whatever it is.
        b.get(at + 1)?;
        at += 2;
    }
}

/// Whether units of `(?:[^"\\]|\\.)` read from `from` end exactly at `to`.
fn unit_boundary(r: &[u8], mut from: usize, to: usize) -> bool {
    while from < to {
        from += if r[from] == b'\\' { 2 } else { 1 };
    }
    from == to
}

/// `(?:[^\s"\\]|\\\S)+` over the whole of `text` (non-empty, no quote).
fn no_spaces(text: &[u8]) -> bool {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\\' => match text.get(i + 1) {
                Some(c) if !is_space(*c) => i += 2,
                _ => return false,
            },
            c if is_space(c) => return false,
            _ => i += 1,
        }
    }
    true
}

/// `\s` of the regex crate without Unicode: `[\t\n\v\f\r ]`.
fn is_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

/// `HTTPD_METHOD`: an RFC 9110 token character.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// The bytes up to the next space (which must exist), non-empty.
fn token(b: &[u8], at: usize) -> Option<(usize, usize)> {
    let len = memchr::memchr(b' ', b.get(at..)?)?;
    (len > 0).then_some((at, at + len))
}

/// `(?:-|%{INT})` over the whole of `text`: `-` captures nothing.
fn dash_or_int(text: &[u8], range: (usize, usize)) -> Option<Option<(usize, usize)>> {
    let digits = text
        .strip_prefix(b"+")
        .or(text.strip_prefix(b"-"))
        .unwrap_or(text);
    if text == b"-" {
        Some(None)
    } else if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        Some(Some(range))
    } else {
        None
    }
}

/// `NUMBER`: `[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)` in full.
fn is_number(text: &[u8]) -> bool {
    let text = text
        .strip_prefix(b"+")
        .or(text.strip_prefix(b"-"))
        .unwrap_or(text);
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match text.iter().position(|c| *c == b'.') {
        None => !text.is_empty() && digits(text),
        Some(dot) => {
            let (int, frac) = (&text[..dot], &text[dot + 1..]);
            digits(int) && digits(frac) && (!int.is_empty() || !frac.is_empty())
        }
    }
}

fn is_ip_or_host(text: &str) -> bool {
    if text.contains(':') {
        // Hex-only IPv6: IPv6 with an embedded IPv4 has forms the pattern
        // misses, so those are left to the regex.
        return !text.contains('.') && text.parse::<std::net::Ipv6Addr>().is_ok();
    }
    is_hostname(text)
}

/// `HOSTNAME` in full: labels of letters, digits and `-`, each starting with
/// a letter or digit, an optional final dot.
fn is_hostname(text: &str) -> bool {
    let text = text.strip_suffix('.').unwrap_or(text);
    !text.is_empty()
        && text.split('.').all(|label| {
            label
                .bytes()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// `dd/Mon/yyyy:HH:MM:SS +zzzz` as `HTTPDATE` takes it.
fn is_httpdate(d: &[u8]) -> bool {
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let two = |i: usize, max: u8| {
        d[i].is_ascii_digit()
            && d[i + 1].is_ascii_digit()
            && (d[i] - b'0') * 10 + (d[i + 1] - b'0') <= max
    };
    d.len() == 26
        && two(0, 31)
        && &d[0..2] != b"00"
        && d[2] == b'/'
        && MONTHS.contains(&&d[3..6])
        && d[6] == b'/'
        && d[7..11].iter().all(u8::is_ascii_digit)
        && d[11] == b':'
        && two(12, 23)
        && d[14] == b':'
        && two(15, 59)
        && d[17] == b':'
        && two(18, 60)
        && d[20] == b' '
        && matches!(d[21], b'+' | b'-')
        && d[22..26].iter().all(u8::is_ascii_digit)
}

/// Adversarial access lines, the same for a given seed: every escape
/// mod_log_config writes, every request-line shape, `-` for every optional
/// field, and then some lines mangled at random. The first value says
/// whether the line is one Apache could write in that format (so the fast
/// path must answer it, not decline).
#[cfg(test)]
pub(crate) fn adversarial_lines(seed: u64, count: usize) -> Vec<(bool, String)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    // What Apache writes inside quotes: plain text and its escapes.
    let atoms = [
        "/",
        "a",
        "index.html",
        "?q=1&b=2",
        "%20",
        "-",
        " ",
        "\\\"",
        "\\\\",
        "\\x16",
        "\\x03",
        "\\xc3\\xa9",
        "\\n",
        "\\t",
        "\\r",
        "\\b",
        "\\v",
        "HTTP",
        "/1.1",
        " HTTP/1.1",
        "'",
        "[",
        "]",
        ":",
        "\\\" \\\"",
    ];
    // What it does not write: raw quotes, lone backslashes, raw controls.
    let foreign = ["\"", "\\", "\t", "é", "\\ ", "\" \""];
    let hosts = [
        "192.0.2.7",
        "::1",
        "2001:db8::2",
        "web-1.example.com",
        "a",
        "255.255.255.255",
        "1.2.3.999",
        "-x",
        "x..y",
        "fe80::1%eth0",
        "::ffff:192.0.2.1",
        "1:2:3:4:5:6:1.2.3.4",
    ];
    let users = [
        "-",
        "frank",
        "\"\"",
        "me@example.com",
        "DOMAIN\\\\user",
        "\\xc3\\xbcser",
        "--",
        "a\"b",
    ];
    let dates = [
        "10/Oct/2000:13:55:36 -0700",
        "01/Jan/1999:00:00:00 +0000",
        "32/Oct/2000:13:55:36 -0700",
        "10/Foo/2000:13:55:36 -0700",
        "1/Oct/2000:13:55:36 -0700",
    ];
    let methods = ["GET", "POST", "M-SEARCH", "OPTIONS", "get", "G\\x00T", ""];
    let versions = ["1.1", "1.0", "2.0", "0.9", "1.", ".5", "+1", "x", ""];
    let numbers = ["200", "-", "0", "404", "-5", "+3", "12x", ""];
    let quoted = |rng: &mut fastrand::Rng, clean: &mut bool| {
        let mut text = String::new();
        for _ in 0..rng.usize(0..6) {
            if rng.u8(..16) == 0 {
                text.push_str(foreign[rng.usize(..foreign.len())]);
                *clean = false;
            } else {
                text.push_str(atoms[rng.usize(..atoms.len())]);
            }
        }
        text
    };
    let mut lines = Vec::with_capacity(count);
    for _ in 0..count {
        let mut clean = true;
        // Mostly the values Apache writes (the first `good` of each list),
        // sometimes others.
        let mut pick = |list: &[&'static str], good: usize| {
            let n = if rng.u8(..5) == 0 { list.len() } else { good };
            let i = rng.usize(..n);
            clean &= i < good;
            list[i]
        };
        let host = pick(&hosts, 6);
        let ident = pick(&users, 2);
        let user = pick(&users, 6);
        let date = pick(&dates, 2);
        let method = pick(&methods, 4);
        let version = pick(&versions, 4);
        let status = pick(&numbers, 4);
        let size = pick(&numbers, 4);
        let combined = rng.bool();
        let request = match rng.u8(..6) {
            0 => "-".to_owned(),
            1 => {
                let url = quoted(&mut rng, &mut clean);
                format!("{method} /{url} HTTP/{version}")
            }
            2 => {
                let url = quoted(&mut rng, &mut clean).replace(' ', "");
                format!("{method} /{url}")
            }
            3 => "\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xfc\\x03\\x03".to_owned(),
            // Overlong: past LimitRequestLine (8190), as a 414 logs it.
            4 => {
                let len = if rng.u8(..8) == 0 { 8190..9000 } else { 1..64 };
                format!("{method} /{}", "a".repeat(rng.usize(len)))
            }
            _ => quoted(&mut rng, &mut clean),
        };
        let mut line = format!("{host} {ident} {user} [{date}] \"{request}\" {status} {size}");
        if combined {
            let referrer = if rng.bool() {
                "-".to_owned()
            } else {
                quoted(&mut rng, &mut clean)
            };
            let agent = if rng.bool() {
                "-".to_owned()
            } else {
                quoted(&mut rng, &mut clean)
            };
            line.push_str(&format!(" \"{referrer}\" \"{agent}\""));
        }
        if rng.u8(..8) == 0 {
            line.push_str([" \"-\"", " x", " ", "\""][rng.usize(..4)]);
            clean = false;
        }
        if rng.u8(..6) == 0 {
            let chars: Vec<char> = line.chars().collect();
            let at = rng.usize(..=chars.len());
            let mut mangled: String = chars[..at].iter().collect();
            if rng.bool() {
                mangled.push([' ', '"', '\\', '-', '[', ']', '1', 'é'][rng.usize(..8)]);
                mangled.extend(&chars[at..]);
            } else if at < chars.len() {
                mangled.extend(&chars[at + 1..]);
            }
            clean = false;
            line = mangled;
        }
        lines.push((clean, line));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::grok::library::Library;

    struct Compiled(regex::bytes::Regex, Vec<String>);

    fn compile(pattern: &str) -> Compiled {
        let (regex, captures) = Library::builtin().expand(pattern).unwrap();
        let re = regex::bytes::RegexBuilder::new(&regex)
            .unicode(false)
            .build()
            .unwrap();
        Compiled(re, captures.into_iter().map(|c| c.group).collect())
    }

    fn captures_of(c: &Compiled, line: &str) -> Option<Captures> {
        let caps = c.0.captures(line.as_bytes())?;
        Some(
            c.1.iter()
                .map(|g| caps.name(g).map(|m| (m.start(), m.end())))
                .collect(),
        )
    }

    const SHAPES: [(Shape, &str); 4] = [
        (
            Shape {
                format: Format::Common,
                anchored: false,
            },
            "^%{HTTPD_COMMONLOG}",
        ),
        (
            Shape {
                format: Format::Common,
                anchored: true,
            },
            "^%{HTTPD_COMMONLOG}$",
        ),
        (
            Shape {
                format: Format::Combined,
                anchored: false,
            },
            "^%{HTTPD_COMBINEDLOG}",
        ),
        (
            Shape {
                format: Format::Combined,
                anchored: true,
            },
            "^%{HTTPD_COMBINEDLOG}$",
        ),
    ];

    fn text<'a>(line: &'a str, caps: &Captures, i: usize) -> Option<&'a str> {
        caps[i].map(|(s, e)| &line[s..e])
    }

    #[test]
    fn the_capture_order_is_the_patterns() {
        let library = Library::builtin();
        let (_, captures) = library.expand("^%{HTTPD_COMBINEDLOG}").unwrap();
        let fields: Vec<String> = captures.iter().map(|c| c.field.to_string()).collect();
        assert_eq!(
            fields,
            [
                "[source][address]",
                "[apache][access][user][identity]",
                "[user][name]",
                "timestamp",
                "[http][request][method]",
                "[url][original]",
                "[http][version]",
                "[http][request][method]",
                "[url][original]",
                "[apache][access][malformed_request]",
                "[http][response][status_code]",
                "[http][response][body][bytes]",
                "[http][request][referrer]",
                "[user_agent][original]",
            ]
        );
    }

    #[test]
    fn escaped_quotes_and_every_request_shape_are_read_as_apache_writes_them() {
        let combined = SHAPES[3].0;
        let cases: [(&str, [Option<&str>; 6]); 6] = [
            (
                r#""GET /a\"b c HTTP/1.1" 200 5 "http://x/\" \"y" "agent \\ \"q\"""#,
                [
                    Some("GET"),
                    Some(r#"/a\"b c"#),
                    Some("1.1"),
                    None,
                    None,
                    None,
                ],
            ),
            (
                r#""GET /" 200 5 "-" "-""#,
                [None, None, None, Some("GET"), Some("/"), None],
            ),
            (r#""-" 408 - "-" "-""#, [None; 6]),
            (
                r#""\x16\x03\x01\x02\x00" 400 226 "-" "-""#,
                [None, None, None, None, None, Some(r"\x16\x03\x01\x02\x00")],
            ),
            (
                r#""GET /x HTTP/1.1 HTTP/1.0" 200 5 "-" "-""#,
                [
                    Some("GET"),
                    Some("/x HTTP/1.1"),
                    Some("1.0"),
                    None,
                    None,
                    None,
                ],
            ),
            (
                r#""GET /a\ HTTP/1.1" 200 5 "-" "-""#,
                [None, None, None, None, None, Some(r"GET /a\ HTTP/1.1")],
            ),
        ];
        let regex = compile(SHAPES[3].1);
        for (tail, want) in cases {
            let line = format!("192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] {tail}");
            let caps = parse(combined, &line).unwrap_or_else(|| panic!("declined: {line}"));
            let got: Vec<_> = (4..10).map(|i| text(&line, &caps, i)).collect();
            assert_eq!(got, want, "{line}");
            assert_eq!(Some(caps), captures_of(&regex, &line), "{line}");
        }
        let line = r#"192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "http://x/\" \"y" "agent \\ \"q\"""#;
        let caps = parse(combined, line).unwrap();
        assert_eq!(text(line, &caps, 12), Some(r#"http://x/\" \"y"#));
        assert_eq!(text(line, &caps, 13), Some(r#"agent \\ \"q\""#));
    }

    #[test]
    fn an_anchored_pattern_declines_what_is_left_over() {
        let line =
            r#"192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "-" "-""#;
        assert!(parse(SHAPES[3].0, line).is_none());
        assert!(captures_of(&compile(SHAPES[3].1), line).is_none());
        assert!(parse(SHAPES[2].0, line).is_some());
    }

    /// The differential property: on every generated line and for every
    /// shape, the fast path either declines or gives exactly the regex's
    /// captures; and it declines none of the lines Apache could write.
    #[test]
    fn the_fast_path_equals_the_full_pattern_on_adversarial_lines() {
        let compiled: Vec<_> = SHAPES.iter().map(|(s, p)| (*s, compile(p))).collect();
        // Per shape: lines answered, and lines Apache could write that match.
        let mut answered = [0usize; 4];
        let mut apache = [0usize; 4];
        for (clean, line) in adversarial_lines(0x5eed_4c0d, 12_000) {
            for (i, (shape, regex)) in compiled.iter().enumerate() {
                let want = captures_of(regex, &line);
                apache[i] += usize::from(clean && want.is_some());
                match parse(*shape, &line) {
                    Some(fast) => {
                        answered[i] += 1;
                        assert_eq!(Some(fast), want, "{shape:?}: {line}");
                    }
                    None => assert!(
                        !(clean && want.is_some()),
                        "{shape:?} declined a line Apache writes: {line}"
                    ),
                }
            }
        }
        for i in 0..4 {
            assert!(
                apache[i] > 1_000 && answered[i] >= apache[i],
                "{:?}: answered {}, {} lines as Apache writes them",
                SHAPES[i].0,
                answered[i],
                apache[i]
            );
        }
    }
}
