//! `logpipe test`: the shipped pipelines' own `[[test]]` cases pass, lines
//! from a file or stdin come out as one JSON event per line in input order,
//! and a failing case makes the command fail.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

fn pipeline(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pipelines")
        .join(name)
}

#[test]
fn the_shipped_pipelines_pass_their_own_test_cases() {
    for name in ["httpd-access.toml", "httpd-error.toml"] {
        let out = common::logpipe()
            .arg("test")
            .arg(pipeline(name))
            .env("TZ", "UTC")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(" passed, 0 failed"), "{text}");
    }
}

#[test]
fn lines_from_a_file_come_out_as_json_events_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access_log");
    std::fs::write(
        &log,
        "192.0.2.1 - - [26/Dec/2016:16:22:13 +0000] \"GET /a HTTP/1.1\" 200 5\r\n\n\
         junk\n\
         192.0.2.2 - - [26/Dec/2016:16:22:14 +0000] \"GET /b HTTP/1.1\" 503 -",
    )
    .unwrap();
    let out = common::logpipe()
        .arg("test")
        .arg(pipeline("httpd-access.toml"))
        .arg("--input")
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success());
    let events: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        events.len(),
        3,
        "the empty line is skipped, the last one kept"
    );
    assert_eq!(events[0]["url"]["original"], "/a");
    assert_eq!(events[0]["http"]["response"]["status_code"], 200);
    assert_eq!(events[0]["@timestamp"], "2016-12-26T16:22:13.000Z");
    assert_eq!(events[0]["log"]["offset"], 0);
    assert_eq!(
        events[1]["tags"],
        serde_json::json!(["httpd_access", "_grokparsefailure"])
    );
    assert_eq!(events[2]["event"]["outcome"], "failure");
}

#[test]
fn lines_can_come_from_stdin_and_dropped_events_print_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        "[[input]]\ntype = \"file\"\npaths = [\"/x\"]\ntags = [\"t\"]\n\
         [[filter]]\ntype = \"drop\"\nif = '[message] == \"skip\"'\n\
         [[output]]\ntype = \"stdout\"\n",
    )
    .unwrap();
    let mut child = common::logpipe()
        .arg("test")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\nskip\ntwo\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let messages: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(messages, ["one", "two"]);
}

#[test]
fn a_failing_case_is_reported_and_fails_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        "[[input]]\ntype = \"file\"\npaths = [\"/x\"]\n\
         [[output]]\ntype = \"stdout\"\n\
         [[test]]\nname = \"wrong\"\ninput = \"x\"\nexpect = { message = \"y\" }\n\
         [[test]]\ninput = \"x\"\nexpect = { message = \"x\" }\n",
    )
    .unwrap();
    let out = common::logpipe().arg("test").arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAILED: wrong"), "{text}");
    assert!(
        text.contains("message: expected \"y\", got \"x\""),
        "{text}"
    );
    assert!(text.contains("ok: test 2"), "{text}");
    assert!(text.contains("1 passed, 1 failed"), "{text}");
}

/// The events `logpipe test PIPELINE --input FILE` prints for `lines`.
fn events_of(name: &str, lines: &[String]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let out = common::succeeds(
        common::logpipe()
            .arg("test")
            .arg(pipeline(name))
            .arg("--input")
            .arg(&log)
            .env("TZ", "UTC"),
    );
    let events: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), lines.len());
    events
}

/// No field silently missing, as a user sees it: each access line comes
/// out with every field Apache wrote in it (escapes kept as written, the
/// request as method and URL, or kept whole when it is no HTTP request),
/// or tagged as a failure with the reason in error.message and its text in
/// `message`, never as a shorter format with the rest dropped.
#[test]
fn every_access_line_is_parsed_in_full_or_says_why_not() {
    let at = "[26/Dec/2016:16:22:13 +0000]";
    let long = format!("/{}", "a".repeat(10_000));
    let lines = [
        format!(r#"192.0.2.1 - - {at} "GET {long} HTTP/1.1" 414 250 "-" "-""#),
        format!(r#"192.0.2.2 - - {at} "GET /a\"b c HTTP/1.1" 200 5 "x\" \"y" "ua \\ \x01""#),
        format!(r#"192.0.2.3 - - {at} "GET /" 400 5"#),
        format!(r#"192.0.2.4 - - {at} "\x16\x03\x01\x00\xa5\x01" 400 226"#),
        format!(r#"192.0.2.5 - - {at} "GET / HTTP/1.1" 200 5 "-" "Mozilla/5.0 (X1"#),
        format!(r#"192.0.2.6 - - {at} "GET / HTTP/1.1" 200 5 "-" "curl/8" "-" 1520"#),
        format!(r#"192.0.2.7 - - {at} "GET / HTTP/1.1" 200 5 12"#),
    ];
    let e = events_of("httpd-access.toml", &lines);
    let parsed = |e: &Value| {
        assert_eq!(e["tags"], serde_json::json!(["httpd_access"]), "{e}");
        assert!(
            e.get("message").is_none() && e.get("error").is_none(),
            "{e}"
        );
        assert_eq!(e["@timestamp"], "2016-12-26T16:22:13.000Z");
        assert!(e["source"]["ip"].is_string(), "{e}");
    };
    for ok in &e[..4] {
        parsed(ok);
    }
    assert_eq!(e[0]["url"]["original"], long);
    assert_eq!(e[0]["http"]["version"], "1.1");
    assert_eq!(e[1]["url"]["original"], r#"/a\"b c"#);
    assert_eq!(e[1]["http"]["request"]["referrer"], r#"x\" \"y"#);
    assert_eq!(e[1]["user_agent"]["original"], r"ua \\ \x01");
    assert_eq!(e[2]["url"]["original"], "/");
    assert_eq!(e[2]["http"]["request"]["method"], "GET");
    assert_eq!(
        e[3]["apache"]["access"]["malformed_request"],
        r"\x16\x03\x01\x00\xa5\x01"
    );
    assert!(e[3].get("url").is_none());
    for (failed, tag) in [
        (&e[4], "_grokparsefailure"),
        (&e[6], "_grokparsefailure"),
        (&e[5], "_httpd_partial_failure"),
    ] {
        assert!(
            failed["tags"].as_array().unwrap().contains(&tag.into()),
            "{failed}"
        );
        assert!(failed["error"]["message"].is_string(), "{failed}");
        assert_eq!(failed["message"], failed["event"]["original"]);
    }
    assert!(e[4].get("http").is_none() && e[6].get("http").is_none());
    assert_eq!(e[5]["user_agent"]["original"], "curl/8");
    assert_eq!(e[5]["apache"]["access"]["unparsed"], r#""-" 1520"#);
}

#[test]
fn an_error_line_in_no_known_format_says_why_and_keeps_its_text() {
    let lines = ["[notice] something else".to_owned()];
    let e = &events_of("httpd-error.toml", &lines)[0];
    assert_eq!(
        e["tags"],
        serde_json::json!(["httpd_error", "_grokparsefailure"])
    );
    assert_eq!(e["message"], "[notice] something else");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not an error log line"));
}
