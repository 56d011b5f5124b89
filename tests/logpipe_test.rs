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
