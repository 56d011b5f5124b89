//! Every config diagnostic names file, line and column and says what was
//! expected; `logpipe check` prints them all and exits 2.

mod common;

use std::path::Path;

use logpipe::config::Severity;

fn diagnostics(text: &str, env: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, text).unwrap();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let loaded = logpipe::pipeline::load(std::slice::from_ref(&path), &lookup);
    let prefix = format!("{}:", path.display());
    loaded
        .diagnostics
        .iter()
        .map(|d| d.to_string().replacen(&prefix, "p.toml:", 1))
        .collect()
}

/// Asserts that checking `text` (as `p.toml`) gives exactly these
/// diagnostics, each starting as given (`"4:3: error: unknown field"`):
/// positions and the start of each message, in order.
fn check_fails_at(text: &str, expected: &[&str]) {
    let d = diagnostics(text, &[]);
    assert_eq!(d.len(), expected.len(), "{d:?}");
    for (got, want) in d.iter().zip(expected) {
        assert!(
            got.starts_with(&format!("p.toml:{want}")),
            "{got}\nwanted p.toml:{want}"
        );
    }
}

const OK_OUTPUT: &str = "\n[[output]]\ntype = \"stdout\"\n";

#[test]
fn a_misspelt_key_in_a_stage_points_at_the_key() {
    let text =
        format!("[[input]]\ntype = \"file\"\npaths = [\"/x\"]\n  tagz = [\"a\"]\n{OK_OUTPUT}");
    check_fails_at(
        &text,
        &["4:3: error: unknown field `tagz`, expected one of `paths`"],
    );
}

/// serde stops at a table's first error; every bad key of the table is
/// still reported, each at its own position, and a required key that is
/// itself wrong is not also reported missing.
#[test]
fn every_bad_key_of_a_table_is_reported() {
    let text = format!(
        "[[input]]\ntype = \"file\"\npaths = [\"/x\"]\ntagz = [\"a\"]\nfeilds = {{ a = 1 }}\nmax_line_bytes = \"big\"\n{OK_OUTPUT}"
    );
    check_fails_at(
        &text,
        &[
            "4:1: error: unknown field `tagz`",
            "5:1: error: unknown field `feilds`",
            "6:18: error: invalid type: string \"big\"",
        ],
    );
    let text = format!("[[input]]\ntype = \"file\"\npaths = 3\ntagz = 1\n{OK_OUTPUT}");
    check_fails_at(
        &text,
        &[
            "3:9: error: invalid type: integer `3`",
            "4:1: error: unknown field `tagz`",
        ],
    );
}

#[test]
fn a_wrong_type_says_what_was_expected() {
    let text = format!(
        "[[input]]\ntype = \"file\"\npaths = [\"/x\"]\nbatch_events = \"lots\"\n{OK_OUTPUT}"
    );
    let d = diagnostics(&text, &[]);
    assert_eq!(
        d,
        ["p.toml:4:16: error: invalid type: string \"lots\", expected usize"]
    );
}

#[test]
fn a_zero_count_points_at_the_value() {
    let text = "filter_workers = 0\nchannel_capacity = 0\n[[input]]\ntype = \"file\"\npaths = [\"/x\"]\n\
                [[output]]\ntype = \"elasticsearch\"\nhosts = \"h:9200\"\nindex = \"i\"\nmax_in_flight = 0\n";
    assert_eq!(
        diagnostics(text, &[]),
        [
            "p.toml:1:18: error: filter_workers must be at least 1",
            "p.toml:2:20: error: channel_capacity must be at least 1",
            "p.toml:10:17: error: max_in_flight must be at least 1",
        ]
    );
}

/// `request_concurrency` is "adaptive" or a number of requests, never
/// more than `max_in_flight`; each mistake points at its value.
#[test]
fn request_concurrency_is_adaptive_or_a_number_within_max_in_flight() {
    let es = |settings: &str| {
        format!(
            "[[input]]\ntype = \"file\"\npaths = [\"/x\"]\n[[output]]\ntype = \"elasticsearch\"\n\
             hosts = \"h:9200\"\nindex = \"i\"\n{settings}\n"
        )
    };
    for ok in [
        "request_concurrency = \"adaptive\"",
        "request_concurrency = 4",
        "request_concurrency = 20",
        "request_concurrency = 4\nmax_in_flight = 4",
        "max_in_flight = 32",
    ] {
        assert_eq!(diagnostics(&es(ok), &[]), Vec::<String>::new(), "{ok}");
    }
    assert_eq!(
        diagnostics(&es("request_concurrency = \"auto\""), &[]),
        ["p.toml:8:23: error: invalid request_concurrency `auto`: expected \"adaptive\" or a number of requests (at least 1)"]
    );
    assert_eq!(
        diagnostics(&es("request_concurrency = 0"), &[]),
        ["p.toml:8:23: error: request_concurrency must be \"adaptive\" or at least 1"]
    );
    assert_eq!(
        diagnostics(&es("request_concurrency = true"), &[]),
        ["p.toml:8:23: error: invalid type: boolean `true`, expected \"adaptive\" or a number of requests (at least 1)"]
    );
    assert_eq!(
        diagnostics(&es("max_in_flight = 4\nrequest_concurrency = 6"), &[]),
        ["p.toml:9:23: error: request_concurrency = 6 is more than max_in_flight = 4"]
    );
}

#[test]
fn an_unknown_stage_type_lists_the_known_ones() {
    let text = format!("[[input]]\ntype = \"flie\"\n{OK_OUTPUT}");
    let d = diagnostics(&text, &[]);
    assert_eq!(
        d,
        ["p.toml:2:8: error: unknown input type `flie` (expected one of: file, dead_letter)"]
    );
}

#[test]
fn unknown_top_level_keys_and_hop_keys_are_errors() {
    let text = "nmae = \"x\"\n[kafka]\nbrokers = \"k:9092\"\ntopic = \"t\"\ngroup = \"g\"\n";
    check_fails_at(
        text,
        &[
            "1:1: error: unknown field `nmae`",
            "5:1: error: unknown field `group`",
        ],
    );
    let text = "[kafka]\nbrokers = \"k:9092\"\ntopic = \"t\"\ngroup = \"g\"\n";
    let d = diagnostics(text, &[]);
    assert!(
        d[0].starts_with("p.toml:4:1: error: unknown field `group`"),
        "{}",
        d[0]
    );
}

#[test]
fn syntax_errors_have_positions() {
    let d = diagnostics("[[input]\ntype = \"file\"\n", &[]);
    assert!(d[0].starts_with("p.toml:1:"), "{d:?}");
}

#[test]
fn an_unset_variable_points_into_the_string() {
    let text = format!("[[input]]\ntype = \"file\"\npaths = [\"/logs/${{MISSING}}\"]\n{OK_OUTPUT}");
    let d = diagnostics(&text, &[]);
    assert_eq!(
        d,
        ["p.toml:3:17: error: environment variable `MISSING` is not set (write `${MISSING:-default}` to give a default)"]
    );
}

#[test]
fn variables_and_defaults_fill_in_settings() {
    let text = "[[input]]\ntype = \"file\"\npaths = [\"${LOG:-/var/log/httpd/access_log}\"]\n[kafka]\nbrokers = \"${KAFKA_BROKERS}\"\ntopic = \"t\"\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = logpipe::pipeline::load(&[path], &|name: &str| {
        (name == "KAFKA_BROKERS").then(|| "a:9092,b".to_owned())
    });
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let hop = loaded.pipelines[0].hop.as_ref().unwrap();
    assert_eq!(hop.brokers, ["a:9092", "b:9092"]);
    assert_eq!(hop.group_id, "logpipe-p");
    let logpipe::input::InputSpec::File(file) = &loaded.pipelines[0].inputs[0] else {
        panic!("a file input");
    };
    assert_eq!(file.patterns, ["/var/log/httpd/access_log"]);
}

#[test]
fn template_errors_point_at_the_offending_character() {
    let text = "[[input]]\ntype = \"file\"\npaths = [\"/x\"]\n[[output]]\ntype = \"elasticsearch\"\nhosts = \"h\"\nindex = \"a-%{+YYYY.QQ}\"\n";
    check_fails_at(text, &["7:20: error: unsupported letter `Q`"]);
}

#[test]
fn acks_below_all_with_idempotence_explains_why() {
    let text = "[kafka]\nbrokers = \"k\"\ntopic = \"t\"\nacks = 1\n";
    check_fails_at(
        text,
        &["4:8: error: acks = 1 cannot be combined with idempotence = true"],
    );
}

#[test]
fn latest_offset_reset_is_a_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        "[kafka]\nbrokers = \"k\"\ntopic = \"t\"\nauto_offset_reset = \"latest\"\n",
    )
    .unwrap();
    let loaded = logpipe::pipeline::load(&[path], &|_: &str| None);
    assert!(!loaded.has_errors());
    assert_eq!(loaded.diagnostics.len(), 1);
    assert_eq!(loaded.diagnostics[0].severity, Severity::Warning);
    assert_eq!(
        (loaded.diagnostics[0].line, loaded.diagnostics[0].column),
        (4, 21)
    );
}

#[test]
fn every_error_of_every_file_is_reported() {
    let text = "[[input]]\ntype = \"file\"\npaths = [\"/x\"]\ntagz = []\n[[output]]\ntype = \"stdout\"\nfoo = 1\n";
    let d = diagnostics(text, &[]);
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[0].starts_with("p.toml:4:1:"));
    assert!(d[1].starts_with("p.toml:7:1:"));
}

#[test]
fn logpipe_check_exits_2_and_names_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[[input]]\ntype = \"file\"\npathz = [\"/x\"]\n").unwrap();
    let out = common::logpipe().arg("check").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:3:1: error: unknown field `pathz`",
            path.display()
        )),
        "{stderr}"
    );
}

#[test]
fn the_shipped_pipelines_check_clean() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let out = common::succeeds(common::logpipe().arg("check").arg(&shipped));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("httpd-access") && stdout.contains("httpd-error"),
        "{stdout}"
    );
}

#[test]
fn the_quickstart_prints_parsed_ecs_documents_and_exits() {
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart.toml");
    let out = common::succeeds(common::logpipe().arg("run").arg(&quickstart));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 42);
    // The sample's first line, parsed by the shipped access preset.
    let first = &events[0];
    assert_eq!(first["tags"], serde_json::json!(["httpd_access"]));
    assert_eq!(first["@timestamp"], "2026-11-25T07:00:21.000Z");
    assert_eq!(first["source"]["ip"], "198.51.100.23");
    assert_eq!(first["http"]["request"]["method"], "GET");
    assert_eq!(first["url"]["original"], "/favicon.ico");
    assert_eq!(first["url"]["extension"], "ico");
    assert_eq!(first["http"]["response"]["status_code"], 200);
    assert_eq!(first["http"]["response"]["body"]["bytes"], 35319);
    assert_eq!(first["event"]["dataset"], "apache.access");
    assert_eq!(first["event"]["outcome"], "success");
    assert!(first["event"]["original"]
        .as_str()
        .unwrap()
        .contains("GET /favicon.ico"));
    assert!(first.get("message").is_none(), "{first}");
    let agent = &events[1]["user_agent"];
    assert_eq!(
        agent["original"].as_str().map(|a| a.contains("Chrome/126")),
        Some(true)
    );
    assert_eq!(agent["name"], "Chrome");
    // Every line of the sample parses: no failure tags.
    for e in &events {
        assert_eq!(e["tags"], serde_json::json!(["httpd_access"]), "{e}");
        assert!(e["http"]["response"]["status_code"].is_number(), "{e}");
    }
}

/// The quickstart runs the shipped preset itself: its filters are the
/// preset's, section for section, so the two cannot drift apart.
#[test]
fn the_quickstart_filters_are_the_shipped_access_presets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let filters = |path: &str| {
        let text = std::fs::read_to_string(root.join(path)).unwrap();
        let table: toml::Table = text.parse().unwrap();
        table["filter"].clone()
    };
    let preset = filters("pipelines/httpd-access.toml");
    assert!(preset.as_array().is_some_and(|f| f.len() > 5));
    assert_eq!(filters("examples/quickstart.toml"), preset);
}

const OK_INPUT: &str = "[[input]]\ntype = \"file\"\npaths = [\"/x\"]\n";

#[test]
fn a_syntax_error_in_an_if_points_inside_the_toml_string() {
    let text =
        format!("{OK_INPUT}[[filter]]\ntype = \"drop\"\nif = '\"a\" in [tags] and'\n{OK_OUTPUT}");
    let d = diagnostics(&text, &[]);
    assert_eq!(d.len(), 1, "{d:?}");
    // Column 24 is the end of the condition, where an operand was expected.
    assert!(
        d[0].starts_with("p.toml:6:24: error: the condition ends"),
        "{}",
        d[0]
    );
    let text = format!("{OK_INPUT}[[output]]\ntype = \"stdout\"\nif = \"[a] = 1\"\n");
    let d = diagnostics(&text, &[]);
    assert_eq!(d, ["p.toml:6:11: error: unexpected `=`"]);
}

#[test]
fn an_if_filter_checks_its_branches_and_needs_a_condition() {
    let text = format!(
        "{OK_INPUT}[[filter]]\ntype = \"if\"\nthen = [{{ type = \"drop\", bogus = 1 }}]\n{OK_OUTPUT}"
    );
    check_fails_at(
        &text,
        &[
            "4:1: error: a filter of type \"if\" needs",
            "6:26: error: unknown field `bogus`",
        ],
    );
}

#[test]
fn the_input_does_not_take_an_if() {
    let text = format!("[[input]]\ntype = \"file\"\npaths = [\"/x\"]\nif = \"[a]\"\n{OK_OUTPUT}");
    let d = diagnostics(&text, &[]);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].contains("unknown field `if`"), "{}", d[0]);
}

#[test]
fn output_settings_every_output_has_are_checked_where_written() {
    let input = "[[input]]\ntype = \"file\"\npaths = [\"/x\"]\n";
    let text = format!(
        "{input}[[output]]\ntype = \"stdout\"\nwhen_blocked = \"maybe\"\n\
         [[output]]\ntype = \"null\"\nblocked_timeout = \"5s\"\n\
         [[output]]\ntype = \"null\"\nwhen_blocked = \"spill\"\nblocked_timeout = \"0s\"\ndead_letter_max_bytes = 0\n"
    );
    assert_eq!(
        diagnostics(&text, &[]),
        [
            "p.toml:6:16: error: unknown when_blocked `maybe` (expected \"block\" or \"spill\")",
            "p.toml:9:19: warning: blocked_timeout has no effect without when_blocked = \"spill\"",
            "p.toml:13:19: error: blocked_timeout must be longer than 0s",
            "p.toml:14:25: error: dead_letter_max_bytes must be at least 1",
        ]
    );
}

#[test]
fn outputs_sharing_a_dead_letter_file_must_rotate_it_alike() {
    let text = "[[input]]\ntype = \"file\"\npaths = [\"/x\"]\n\
                [[output]]\ntype = \"stdout\"\nid = \"a\"\n\
                [[output]]\ntype = \"null\"\ndead_letter_max_files = 2\n";
    check_fails_at(
        text,
        &["7:1: error: this output shares its dead-letter file with a but rotates it differently"],
    );
}

#[test]
fn two_pipelines_cannot_share_a_dead_letter_file() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        std::fs::write(
            dir.path().join(format!("{name}.toml")),
            format!(
                "name = \"{name}\"\n[[input]]\ntype = \"file\"\npaths = [\"/x\"]\n\
                 [[output]]\ntype = \"stdout\"\ndead_letter_path = \"/var/lib/logpipe/dl.ndjson\"\n"
            ),
        )
        .unwrap();
    }
    let loaded = logpipe::pipeline::load(&[dir.path().to_path_buf()], &|_| None);
    let errors: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .contains("dead_letter_path /var/lib/logpipe/dl.ndjson is also used by pipeline `a`"),
        "{}",
        errors[0]
    );
}

#[test]
fn consumer_group_membership_and_protocol_settings_are_checked() {
    let base = "[kafka]\nbrokers = \"k\"\ntopic = \"t\"\n";
    let one = |extra: &str| diagnostics(&format!("{base}{extra}"), &[]);
    assert_eq!(
        one("static_membership = false\ngroup_instance_id = \"web-1\"\n"),
        ["p.toml:5:21: error: group_instance_id is set but static_membership = false: remove one of them"]
    );
    let d = one("group_instance_id = \"web 1/a\"\n");
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].starts_with(
            "p.toml:4:21: error: group_instance_id may hold only ASCII letters, digits"
        ),
        "{}",
        d[0]
    );
    let d = one("group_protocol = \"eager\"\n");
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].starts_with(
            "p.toml:4:18: error: unknown variant `eager`, expected `consumer` or `classic`"
        ),
        "{}",
        d[0]
    );
    let d = one("group_protocol = \"consumer\"\nsession_timeout = \"6s\"\nconsumer = { \"partition.assignment.strategy\" = \"range\" }\n");
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(
        d.iter().any(|x| x.starts_with("p.toml:5:19: warning: session_timeout has no effect with group_protocol = \"consumer\"")),
        "{d:?}"
    );
    assert!(
        d.iter().any(|x| x.contains("error: librdkafka refuses `partition.assignment.strategy` with group_protocol = \"consumer\"")),
        "{d:?}"
    );
    // what is allowed: the classic protocol with its settings, static
    // membership off, an id of one's own
    assert_eq!(
        one("group_protocol = \"classic\"\nsession_timeout = \"6s\"\nstatic_membership = false\n"),
        Vec::<String>::new()
    );
    assert_eq!(
        one("group_instance_id = \"web-1.example_a\"\n"),
        Vec::<String>::new()
    );
}

#[test]
fn an_exclude_pattern_that_can_never_match_paths_is_a_warning_at_the_pattern() {
    let text = format!(
        "[[input]]\ntype = \"file\"\npaths = [\"/var/log/httpd/access_log*\"]\n\
         exclude = [\"*.gz\", \"error_log*\", \"/var/log/nginx/*\"]\n{OK_OUTPUT}"
    );
    assert_eq!(
        diagnostics(&text, &[]),
        [
            "p.toml:4:20: warning: exclude pattern `error_log*` can never match: no file that `paths` matches can have such a name (a pattern without a slash is matched against file names)",
            "p.toml:4:34: warning: exclude pattern `/var/log/nginx/*` can never match: no path that `paths` matches has this form (a pattern with a slash is matched against the whole path, here `/var/log/nginx/*`)",
        ]
    );
}

#[test]
fn a_zero_count_of_an_input_points_at_the_value() {
    let text = "[[input]]\ntype = \"file\"\npaths = [\"/x\"]\nbatch_events = 0\nbatch_bytes = 0\n\
                max_line_bytes = 0\nmax_open_files = 0\n\
                multiline = { pattern = '^\\s', max_lines = 0 }\n\
                [[input]]\ntype = \"dead_letter\"\npath = \"/d.ndjson\"\nbatch_events = 0\n\
                [[output]]\ntype = \"stdout\"\n";
    assert_eq!(
        diagnostics(text, &[]),
        [
            "p.toml:4:16: error: batch_events must be at least 1",
            "p.toml:5:15: error: batch_bytes must be at least 1",
            "p.toml:6:18: error: max_line_bytes must be at least 1",
            "p.toml:7:18: error: max_open_files must be at least 1",
            "p.toml:8:44: error: max_lines must be at least 1",
            "p.toml:12:16: error: batch_events must be at least 1",
        ]
    );
}

/// No size or count of an output, a filter or the hop is clamped from 0 to
/// 1 behind the user's back: each is an error at its value.
#[test]
fn zero_sizes_of_outputs_filters_and_the_hop_point_at_the_value() {
    let text = "[kafka]\nbrokers = \"k\"\ntopic = \"t\"\nbatch_size = 0\nqueue_max_kbytes = 0\nmessage_max_bytes = 0\n\
                [[filter]]\ntype = \"useragent\"\ncache_size = 0\n\
                [[output]]\ntype = \"elasticsearch\"\nhosts = \"h:9200\"\nindex = \"i\"\nbatch_events = 0\nbatch_bytes = 0\n";
    assert_eq!(
        diagnostics(text, &[]),
        [
            "p.toml:4:14: error: batch_size must be at least 1",
            "p.toml:5:20: error: queue_max_kbytes must be at least 1",
            "p.toml:6:21: error: message_max_bytes must be at least 1",
            "p.toml:9:14: error: cache_size must be at least 1",
            "p.toml:14:16: error: batch_events must be at least 1",
            "p.toml:15:15: error: batch_bytes must be at least 1",
        ]
    );
}

#[test]
fn retention_is_whole_seconds_and_warns_on_an_index_without_a_date() {
    let output = |index: &str, retention: &str| {
        format!(
            "[[input]]\ntype = \"file\"\npaths = [\"/x\"]\n[[output]]\ntype = \"elasticsearch\"\n\
             hosts = \"h:9200\"\nindex = \"{index}\"\nretention = {retention}\n"
        )
    };
    assert_eq!(
        diagnostics(&output("a-%{+YYYY.MM.dd}", "\"30d\""), &[]),
        Vec::<String>::new()
    );
    assert_eq!(
        diagnostics(&output("a-%{+YYYY.MM.dd}", "\"500ms\""), &[]),
        ["p.toml:8:13: error: `retention` must be a whole number of seconds, at least 1s (e.g. \"30d\")"]
    );
    assert_eq!(
        diagnostics(&output("a-%{+YYYY.MM.dd}", "0"), &[]),
        ["p.toml:8:13: error: `retention` must be a whole number of seconds, at least 1s (e.g. \"30d\")"]
    );
    let d = diagnostics(&output("static", "\"7d\""), &[]);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].starts_with("p.toml:8:13: warning: `retention` deletes whole indices by age")
            && d[0].contains("7days after it was created"),
        "{d:?}"
    );
    check_fails_at(
        &output("a-%{+YYYY.MM.dd}", "\"thirty days\""),
        &["8:13: error: invalid duration `thirty days`"],
    );
}

/// `data_stream` (a name, or `true` with type/dataset/namespace) in place
/// of `index`: exactly one of the two, `create` only, names the server
/// would refuse refused here, at their position.
#[test]
fn a_data_stream_output_is_checked_as_the_server_would() {
    let output = |settings: &str| {
        format!(
            "[[input]]\ntype = \"file\"\npaths = [\"/x\"]\n[[output]]\ntype = \"elasticsearch\"\n\
             hosts = \"h:9200\"\n{settings}\n"
        )
    };
    let fine = [
        "data_stream = \"logs-apache.access-default\"",
        "data_stream = true",
        "data_stream = true\ndata_stream_dataset = \"apache.access\"\ndata_stream_namespace = \"web\"",
        "data_stream = \"logs-%{[service]}-default\"\nretention = \"30d\"",
        "data_stream = \"logs-a-b\"\naction = \"create\"",
        "data_stream = false\nindex = \"a-%{+YYYY.MM.dd}\"",
    ];
    for settings in fine {
        assert_eq!(
            diagnostics(&output(settings), &[]),
            Vec::<String>::new(),
            "{settings}"
        );
    }
    let bad = [
        ("", "6:9: error: this output needs `index`"),
        (
            "index = \"a\"\ndata_stream = \"logs-a-b\"",
            "7:9: error: set `index` or `data_stream`, not both",
        ),
        (
            "data_stream = \"logs-a-b\"\naction = \"index\"",
            "8:10: error: a data stream takes `create` only",
        ),
        (
            "data_stream = \"Logs-A\"",
            "7:15: error: data stream `Logs-A`: not a valid name",
        ),
        (
            "data_stream = \"logs a\"",
            "7:15: error: data stream `logs a`: not a valid name",
        ),
        (
            "data_stream = \"logs-%{+YYYY.MM.dd}\"",
            "7:15: error: data stream `logs-%{+YYYY.MM.dd}`: a date",
        ),
        (
            "data_stream = true\ndata_stream_dataset = \"apache-access\"",
            "8:23: error: `data_stream_dataset` = \"apache-access\": must be non-empty and without `-`",
        ),
        (
            "index = \"a\"\ndata_stream_namespace = \"web\"",
            "8:25: error: `data_stream_type`, `data_stream_dataset` and `data_stream_namespace` name a data stream",
        ),
    ];
    for (settings, want) in bad {
        check_fails_at(&output(settings), &[want]);
    }
}
