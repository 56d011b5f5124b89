//! The shipped access preset against Filebeat's apache module: its own test
//! logs (`tests/fixtures/filebeat-apache/`, Apache-2.0) run through
//! `logpipe test`, and every parsed field Filebeat's documents have agrees.
//! Enrichment from outside databases (geo, AS, user-agent versions) is not
//! compared.

mod common;

use std::path::Path;

use serde_json::{Map, Value};

/// The fields the parse produces, compared whenever Filebeat's document
/// has them.
const PARSED: [&str; 15] = [
    "@timestamp",
    "source.address",
    "source.ip",
    "destination.domain",
    "user.name",
    "http.request.method",
    "url.original",
    "http.version",
    "http.response.status_code",
    "http.response.body.bytes",
    "http.request.referrer",
    "user_agent.original",
    "tls.version",
    "tls.cipher",
    "event.outcome",
];

/// Filebeat writes `-` where Apache wrote it; logpipe leaves the field out.
const DASH_IS_ABSENT: [&str; 3] = ["user.name", "http.request.referrer", "user_agent.original"];

fn flatten(prefix: &str, value: &Value, out: &mut Map<String, Value>) {
    match value {
        Value::Object(fields) => {
            for (k, v) in fields {
                flatten(&format!("{prefix}{k}."), v, out);
            }
        }
        _ => {
            out.insert(prefix.trim_end_matches('.').to_owned(), value.clone());
        }
    }
}

fn instant(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = v.as_str()?;
    Some(chrono::DateTime::parse_from_rfc3339(text).ok()?.to_utc())
}

#[test]
fn the_access_preset_parses_filebeats_test_logs_as_filebeat_does() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/filebeat-apache");
    let preset = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/httpd-access.toml");
    let mut compared = 0;
    let mut misses = Vec::new();
    for name in [
        "test.log",
        "test-vhost.log",
        "darwin-2.4.23.log",
        "ssl-request.log",
    ] {
        let expected: Vec<Value> = serde_json::from_str(
            &std::fs::read_to_string(fixtures.join(format!("{name}-expected.json"))).unwrap(),
        )
        .unwrap();
        let out = common::succeeds(
            common::logpipe()
                .arg("test")
                .arg(&preset)
                .arg("--input")
                .arg(fixtures.join(name)),
        );
        let events: Vec<Map<String, Value>> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let mut flat = Map::new();
                flatten("", &serde_json::from_str(l).unwrap(), &mut flat);
                flat
            })
            .collect();
        assert_eq!(events.len(), expected.len(), "{name}");
        for (i, (want, got)) in expected.iter().zip(&events).enumerate() {
            for field in PARSED {
                let Some(want) = want.get(field) else {
                    continue;
                };
                compared += 1;
                let got = got.get(field);
                let same = match (field, want) {
                    ("@timestamp", _) => got.and_then(instant) == instant(want),
                    (f, Value::String(dash)) if dash == "-" && DASH_IS_ABSENT.contains(&f) => {
                        got.is_none()
                    }
                    _ => got == Some(want),
                };
                if !same {
                    misses.push(format!(
                        "{name} #{}: {field}: Filebeat {want}, logpipe {got:?}",
                        i + 1
                    ));
                }
            }
        }
    }
    assert!(misses.is_empty(), "{misses:#?}");
    assert_eq!(compared, 145, "fields compared");
}
