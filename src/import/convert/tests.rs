use std::path::Path;

use super::*;
use crate::import::{import, logstash, yaml, Request};

const FILEBEAT: &str = include_str!("../../../tests/fixtures/import/filebeat.yml");
const LOGSTASH: &str = include_str!("../../../tests/fixtures/import/logstash.conf");

fn run(filebeat: &str, logstash_text: Option<&str>) -> Imported {
    let source = Source::new("filebeat.yml", filebeat);
    let root = yaml::parse(&source).unwrap();
    let pipeline = logstash_text.map(|text| {
        let source = Source::new("logstash.conf", text);
        let config = logstash::parser::parse(&source.text, 0, false).unwrap();
        logstash::Pipeline {
            sources: vec![source],
            config,
        }
    });
    convert(&source, &root, pipeline.as_ref(), Path::new("out"))
}

fn messages(imported: &Imported) -> Vec<String> {
    imported.diagnostics.iter().map(|d| d.to_string()).collect()
}

fn file<'a>(imported: &'a Imported, name: &str) -> &'a str {
    &imported
        .files
        .iter()
        .find(|f| f.path.file_name().unwrap() == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .text
}

/// Every written file loads as `logpipe check` loads it.
fn assert_checks(imported: &Imported) {
    for f in &imported.files {
        let (pipeline, diagnostics) =
            crate::pipeline::parse(&Source::new(&f.path, f.text.clone()), &check_env);
        let errors: Vec<_> = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        assert!(
            errors.is_empty(),
            "{}: {errors:?}\n{}",
            f.path.display(),
            f.text
        );
        assert!(pipeline.is_some());
    }
}

#[test]
fn the_reference_deployment_becomes_one_file_per_source_routed_by_tag() {
    let imported = run(FILEBEAT, Some(LOGSTASH));
    assert_checks(&imported);
    let names: Vec<_> = imported
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    assert_eq!(names, ["out/httpd_access.toml", "out/httpd_error.toml"]);
    let access = file(&imported, "httpd_access.toml");
    let (pipeline, _) = crate::pipeline::parse(&Source::new("a.toml", access), &check_env);
    let pipeline = pipeline.unwrap();
    let hop = pipeline.hop.as_ref().unwrap();
    // The comma-joined string is three brokers.
    assert_eq!(
        hop.brokers,
        ["10.0.0.75:9092", "10.0.0.76:9092", "10.0.0.77:9092"]
    );
    assert_eq!(hop.topics, ["httpd"]);
    assert_eq!(hop.group_id, "logstash-httpd_access");
    assert_eq!(hop.auto_offset_reset, crate::kafka::OffsetReset::Latest);
    assert!(
        access.contains("decorate_events = false\ncodec = \"json\"\n"),
        "{access}"
    );
    // Only the access index, behind its condition (its text in a comment),
    // and the stdout output of every event.
    assert!(access.contains("index = \"httpd_access-%{+YYYY.MM.dd}\""));
    assert!(!access.contains("httpd_error-"));
    assert!(access.contains(
        "# Logstash logstash.conf:12: if \"httpd_access\" in [tags] (true for this source's events)\n"
    ));
    assert!(access.contains("if = '\"httpd_access\" in [tags]'"));
    assert_eq!(pipeline.outputs.len(), 2);
    let error = file(&imported, "httpd_error.toml");
    assert!(error.contains("index = \"httpd_error-%{+YYYY.MM.dd}\""));
    assert!(error.contains("group_id = \"logstash-httpd_error\""));
    assert!(!error.contains("httpd_access-"));
    // The one thing left out: Logstash's committed offsets of its group.
    let warnings = messages(&imported);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("logstash.conf:2:3: warning: 2 sources ship to topic `httpd`, which Logstash reads in one consumer group `logstash`"), "{}", warnings[0]);
}

#[test]
fn a_source_alone_on_its_topic_keeps_logstashs_group_and_converts_cleanly() {
    let filebeat = "filebeat.inputs:\n- type: filestream\n  id: web\n  paths: [\"${LOG_DIR:/var/log/httpd}/access_log*\"]\n  exclude_files: ['\\.gz$']\n  tags: [web]\n  fields: {env: prod}\n  parsers:\n    - multiline: {type: pattern, pattern: '^\\s', negate: false, match: after}\noutput.kafka:\n  hosts: [\"k1:9092\", \"k2:9092\"]\n  topic: web\n  required_acks: -1\n  compression: zstd\n";
    let logstash = r#"input { kafka { bootstrap_servers => "k1:9092,k2:9092" topics => ["web"] group_id => "indexers" codec => json } }
filter {
  if [fields][env] == "prod" {
    mutate { add_tag => ["prod"] }
  } else {
    drop {}
  }
  if [status] xor [error] { mutate { add_field => { "odd" => "yes" } } }
}
output {
  if "web" in [tags] and [status] >= 500 {
    elasticsearch { hosts => "http://es:9200" index => "web-errors-%{+YYYY.MM.dd}" user => "u" password => "${ES_PW:secret}" }
  } else if "web" not in [tags] {
    stdout {}
  } else {
    elasticsearch { hosts => ["http://es:9200"] index => "web-%{+YYYY.MM.dd}" }
  }
}
"#;
    let imported = run(filebeat, Some(logstash));
    assert_eq!(messages(&imported), Vec::<String>::new());
    assert_checks(&imported);
    let web = file(&imported, "web.toml");
    assert!(
        web.contains("paths = [\"${LOG_DIR:-/var/log/httpd}/access_log*\"]"),
        "{web}"
    );
    assert!(web.contains("exclude = [\"*.gz\"]"));
    assert!(web.contains("fields = { env = \"prod\" }"));
    assert!(
        web.contains("multiline = { pattern = '^\\s', negate = false, match = \"previous\" }"),
        "{web}"
    );
    assert!(web.contains("group_id = \"indexers\"\n"));
    assert!(web.contains("acks = -1\ncompression = \"zstd\"\n"));
    // Filter conditions are kept whole (a filter may change what they test).
    assert!(
        web.contains("if = '[fields][env] == \"prod\"'\nadd_tag = [\"prod\"]"),
        "{web}"
    );
    assert!(
        web.contains("type = \"drop\"\nif = 'not ([fields][env] == \"prod\")'"),
        "{web}"
    );
    assert!(
        web.contains("if = \"([status] and not [error]) or (not [status] and [error])\""),
        "{web}"
    );
    // After filters the outputs' conditions are not decided: all three
    // branches, each with the conditions on its way.
    assert!(
        web.contains("if = '(\"web\" in [tags]) and ([status] >= 500)'"),
        "{web}"
    );
    assert!(
        web.contains(
            "if = '(not ((\"web\" in [tags]) and ([status] >= 500))) and (\"web\" not in [tags])'"
        ),
        "{web}"
    );
    assert!(web.contains("if = '(not ((\"web\" in [tags]) and ([status] >= 500))) and (not (\"web\" not in [tags]))'"), "{web}");
    assert!(web.contains("password = \"${ES_PW:-secret}\""));
}

#[test]
fn outputs_are_decided_by_the_sources_tags_only_when_no_filter_runs_before_them() {
    let filebeat = "filebeat.inputs:\n- type: log\n  paths: [/a]\n  tags: [a]\noutput.kafka:\n  hosts: [k:9092]\n  topic: t\n";
    let outputs = "output {\n  if \"_grokparsefailure\" in [tags] { stdout {} }\n  else if \"a\" in [tags] { elasticsearch { index => \"a\" } }\n  else { elasticsearch { index => \"other\" } }\n}\n";
    let input =
        "input { kafka { bootstrap_servers => \"k:9092\" topics => \"t\" codec => json } }\n";
    // No filter: the failure tag cannot be there, "a" always is.
    let plain = run(filebeat, Some(&format!("{input}{outputs}")));
    let a = file(&plain, "a.toml");
    assert!(!a.contains("stdout") && !a.contains("\"other\""), "{a}");
    assert!(a.contains("index = \"a\""));
    // A grok may add the failure tag: every branch stays.
    let grok = format!(
        "{input}filter {{ grok {{ match => {{ \"message\" => \"%{{WORD:w}}\" }} }} }}\n{outputs}"
    );
    let with_grok = run(filebeat, Some(&grok));
    let a = file(&with_grok, "a.toml");
    assert!(
        a.contains("type = \"stdout\"\nif = '\"_grokparsefailure\" in [tags]'"),
        "{a}"
    );
    assert!(
        a.contains("index = \"a\"") && a.contains("index = \"other\""),
        "{a}"
    );
    assert_checks(&with_grok);
}

#[test]
fn topics_rules_pick_each_sources_topic_and_when_conditions_become_ifs() {
    let filebeat = r#"filebeat.inputs:
- type: log
  paths: [/var/log/httpd/access_log]
  tags: [httpd_access]
  processors:
    - add_tags:
        tags: [slow]
        when.regexp.message: ' [0-9]{7,}$'
    - drop_event.when.or:
        - contains.message: "/healthz"
        - equals.fields.kind: probe
- type: log
  paths: [/var/log/httpd/error_log]
  fields: {kind: error}
- type: log
  paths: [/var/log/other]
  tags: [other]
output.kafka:
  hosts: ["k:9092"]
  topic: misc
  topics:
    - topic: access
      when.contains.tags: httpd_access
    - topic: errors
      when.equals:
        fields.kind: error
"#;
    let logstash = r#"input {
  kafka { bootstrap_servers => "k:9092" topics => ["access", "errors"] group_id => "ix" codec => json }
  kafka { bootstrap_servers => "k:9092" topics => ["misc"] codec => json }
}
output { elasticsearch { hosts => ["http://es:9200"] index => "%{[@metadata][kafka][topic]}" } }
"#;
    let imported = run(filebeat, Some(logstash));
    assert_checks(&imported);
    let topic = |name: &str| {
        let (p, _) =
            crate::pipeline::parse(&Source::new("t.toml", file(&imported, name)), &check_env);
        let hop = p.unwrap().hop.unwrap();
        (hop.topics.clone(), hop.group_id.clone())
    };
    assert_eq!(
        topic("httpd_access.toml"),
        (vec!["access".to_owned()], "ix-httpd_access".to_owned())
    );
    assert_eq!(
        topic("input-2.toml"),
        (vec!["errors".to_owned()], "ix-input-2".to_owned())
    );
    assert_eq!(
        topic("other.toml"),
        (vec!["misc".to_owned()], "logstash".to_owned())
    );
    let access = file(&imported, "httpd_access.toml");
    assert!(
        access.contains(
            "type = \"mutate\"\nif = \"[message] =~ / [0-9]{7,}$/\"\nadd_tag = [\"slow\"]"
        ),
        "{access}"
    );
    assert!(
        access.contains(
            "type = \"drop\"\nif = '(\"/healthz\" in [message]) or ([fields][kind] == \"probe\")'"
        ),
        "{access}"
    );
    let shown = messages(&imported);
    // Two sources share the first input's group; the error source has no
    // tag of its own to be told apart by.
    assert!(
        shown
            .iter()
            .any(|m| m.contains("2 sources ship to topic `access`, `errors`")),
        "{shown:#?}"
    );
    assert!(
        shown
            .iter()
            .any(|m| m.contains("the events of `input-2` cannot be told from the other sources'")),
        "{shown:#?}"
    );
}

#[test]
fn a_logstash_data_stream_output_becomes_a_data_stream_output() {
    let filebeat = "filebeat.inputs:\n- type: log\n  paths: [/a]\n  tags: [a]\noutput.kafka:\n  hosts: [k:9092]\n  topic: t\n";
    let logstash = "input { kafka { bootstrap_servers => \"k:9092\" topics => \"t\" codec => json } }\noutput { elasticsearch { hosts => [\"http://es:9200\"] data_stream => \"true\" data_stream_dataset => \"apache.access\" } }\n";
    let imported = run(filebeat, Some(logstash));
    assert_eq!(messages(&imported), Vec::<String>::new());
    assert_checks(&imported);
    let a = file(&imported, "a.toml");
    assert!(
        a.contains("data_stream_dataset = \"apache.access\"\ndata_stream = true\n"),
        "{a}"
    );
    assert!(!a.contains("index = "), "{a}");
}

#[test]
fn filestream_settings_are_read_by_their_dotted_names_in_both_spellings() {
    for filebeat in [
        "filebeat.inputs:\n- type: filestream\n  id: a\n  paths: [/a]\n  prospector.scanner.exclude_files: ['\\.gz$']\n  close.on_state_change.inactive: 2m\n  ignore_older: 48h\n  close.on_state_change.renamed: true\n",
        "filebeat.inputs:\n- type: filestream\n  id: a\n  paths: [/a]\n  prospector:\n    scanner:\n      exclude_files: ['\\.gz$']\n  close:\n    on_state_change:\n      inactive: 2m\n      renamed: true\n  ignore_older: 48h\n",
    ] {
        let imported = run(filebeat, None);
        assert_checks(&imported);
        let a = file(&imported, "a.toml");
        assert!(a.contains("exclude = [\"*.gz\"]\n"), "{a}");
        assert!(a.contains("close_inactive = \"2m\"\n"), "{a}");
        assert!(a.contains("ignore_older = \"48h\"\n"), "{a}");
        let shown = messages(&imported);
        assert!(
            shown.iter().any(|m| m.contains("warning: input setting `close.on_state_change.renamed` is not converted")),
            "{shown:?}"
        );
    }
}

#[test]
fn inputs_and_apache_modules_in_other_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("inputs.d")).unwrap();
    std::fs::create_dir_all(dir.path().join("modules.d")).unwrap();
    std::fs::write(
        dir.path().join("inputs.d/web.yml"),
        "- type: log\n  paths: [/srv/web.log]\n  tags: [web]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("modules.d/apache.yml"),
        "- module: apache\n  access:\n    enabled: true\n    var.paths: [\"/srv/httpd/access_log*\"]\n  error:\n    enabled: false\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("modules.d/nginx.yml"),
        "- module: nginx\n  access: {enabled: true}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("modules.d/mysql.yml.disabled"),
        "- module: mysql\n",
    )
    .unwrap();
    let fb_path = dir.path().join("filebeat.yml");
    let text = "filebeat.config.inputs:\n  enabled: true\n  path: inputs.d/*.yml\nfilebeat.config.modules:\n  path: ${path.config}/modules.d/*.yml\noutput.kafka:\n  hosts: [\"k1:9092,k2:9092\"]\n  topic: t\n";
    let source = Source::new(&fb_path, text);
    let root = yaml::parse(&source).unwrap();
    let imported = convert(&source, &root, None, Path::new("out"));
    assert_checks(&imported);
    let names: Vec<String> = imported
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    assert_eq!(names, ["out/web.toml", "out/httpd-access.toml"]);
    assert!(file(&imported, "web.toml").contains("paths = [\"/srv/web.log\"]"));
    let access = file(&imported, "httpd-access.toml");
    assert!(
        access.contains("paths = [\"/srv/httpd/access_log*\"]\n"),
        "{access}"
    );
    assert!(
        access.contains("brokers = [\"k1:9092\", \"k2:9092\"]\n"),
        "{access}"
    );
    assert!(access.contains("type = \"grok\""));
    let shown = messages(&imported);
    let nginx = dir.path().join("modules.d/nginx.yml");
    assert!(
        shown.iter().any(|m| m.starts_with(&format!(
            "{}:1:3: warning: Filebeat module `nginx` is not converted",
            nginx.display()
        ))),
        "{shown:?}"
    );
}

fn run_cases(text: &str) -> crate::app::test::Report {
    let (pipeline, diagnostics) = crate::pipeline::parse(&Source::new("t.toml", text), &check_env);
    let pipeline = pipeline.unwrap_or_else(|| panic!("{diagnostics:?}\n{text}"));
    assert!(!pipeline.tests.is_empty());
    crate::app::test::run_cases(&pipeline)
}

#[test]
fn a_logstash_7_grok_keeps_its_legacy_field_names_and_an_ecs_one_its_ecs_names() {
    let filebeat = "filebeat.inputs:\n- type: log\n  paths: [/a]\n  tags: [web]\noutput.kafka:\n  hosts: [k:9092]\n  topic: t\n";
    let line = r#"192.0.2.9 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 503 2326 "http://example.com/" "Mozilla/4.08""#;
    let logstash = |ecs: &str| {
        format!(
            "input {{ kafka {{ bootstrap_servers => \"k:9092\" topics => \"t\" codec => json }} }}\nfilter {{\n  grok {{ match => {{ \"message\" => \"%{{COMBINEDAPACHELOG}}\" }} {ecs} }}\n  date {{ match => [\"timestamp\", \"dd/MMM/yyyy:HH:mm:ss Z\"] }}\n  if [response] =~ /^5/ {{ mutate {{ add_tag => [\"server_error\"] }} }}\n}}\noutput {{ stdout {{}} }}\n"
        )
    };
    // Logstash 7: ecs_compatibility unset; the user's condition reads [response].
    let imported = run(filebeat, Some(&logstash("")));
    assert_eq!(messages(&imported), Vec::<String>::new());
    assert_checks(&imported);
    let text = format!(
        "{}\n[[test]]\nname = \"legacy\"\ninput = {}\nexpect = {{ clientip = \"192.0.2.9\", auth = \"frank\", verb = \"GET\", request = \"/a.gif\", httpversion = \"1.0\", response = \"503\", bytes = \"2326\", referrer = '\"http://example.com/\"', \"@timestamp\" = \"2000-10-10T20:55:36.000Z\", tags = [\"web\", \"server_error\"] }}\nabsent = [\"[source]\", \"[http]\"]\n",
        file(&imported, "web.toml"),
        toml::Value::String(line.into())
    );
    let report = run_cases(&text);
    assert_eq!(report.failed, 0, "{:#?}", report.lines);
    // As in Logstash 7 with Filebeat 7's events: grok's `agent` meets
    // Filebeat's `agent` object, and the field becomes a list of both.

    // ecs_compatibility v8: logpipe's ECS names, nothing added.
    let imported = run(filebeat, Some(&logstash("ecs_compatibility => v8")));
    let web = file(&imported, "web.toml");
    assert!(!web.contains("pattern_definitions"), "{web}");
    let text = format!(
        "{web}\n[[test]]\nname = \"ecs\"\ninput = {}\nexpect = {{ \"[source][address]\" = \"192.0.2.9\", \"[http][response][status_code]\" = 503 }}\nabsent = [\"clientip\", \"response\"]\n",
        toml::Value::String(line.into())
    );
    let report = run_cases(&text);
    assert_eq!(report.failed, 0, "{:#?}", report.lines);
}

#[test]
fn what_cannot_be_converted_is_a_warning_at_its_position() {
    let filebeat = "filebeat.inputs:\n- type: log\n  paths: [/a]\n  tags: [a]\n  harvester_buffer_size: 1\n  exclude_files: ['^/tmp/(x|y)']\n- type: syslog\n  tags: [s]\nfilebeat.config.modules:\n  path: modules.d/*.yml\noutput.kafka:\n  hosts: [k:9092]\n  topic: t\n  partition.hash: {}\n";
    let logstash = "input {\n  kafka { topics => \"t\" consumer_threads => 3 }\n}\nfilter {\n  grok { match => { \"message\" => \"%{SYSLOGPROG}: %{GREEDYDATA:msg}\" } }\n  ruby { code => \"x\" }\n  grok { match => { \"message\" => \"%{NO_SUCH_PATTERN:x}\" } ecs_compatibility => v8 }\n}\noutput {\n  s3 { bucket => \"b\" }\n}\n";
    let imported = run(filebeat, Some(logstash));
    assert_checks(&imported);
    let shown = messages(&imported);
    let at: Vec<String> = shown
        .iter()
        .map(|m| m.split(" — ").next().unwrap().to_owned())
        .collect();
    assert_eq!(
        at,
        [
            "filebeat.yml:5:3: warning: input setting `harvester_buffer_size` is not converted",
            "filebeat.yml:6:18: warning: exclude_files regex `^/tmp/(x|y)` is not converted",
            "filebeat.yml:7:3: warning: input of type `syslog` is not converted",
            "filebeat.yml:14:3: warning: output.kafka.partition is not converted",
            "logstash.conf:2:3: warning: bootstrap_servers (localhost:9092) are not Filebeat's hosts (k:9092): a logpipe hop has one broker list",
            "logstash.conf:2:25: warning: kafka input setting `consumer_threads` is not converted",
            "logstash.conf:5:3: warning: filter grok runs with ecs_compatibility unset (Logstash 7's default): Logstash names its captures by the legacy names (clientip, response, bytes, timestamp, …), logpipe's pattern library by the ECS ones (source.address, http.response.status_code, …)",
            "logstash.conf:6:3: warning: filter `ruby` is not converted",
            "logstash.conf:7:3: warning: filter grok is not converted: logpipe check says `unknown grok pattern `NO_SUCH_PATTERN``",
            "logstash.conf:10:3: warning: output `s3` is not converted",
        ],
        "{shown:#?}"
    );
    for m in &shown {
        assert!(m.contains(" — "), "says what to do instead: {m}");
    }
    // The refused grok is gone; the other is there.
    let a = file(&imported, "a.toml");
    assert!(a.contains("%{SYSLOGPROG}"), "{a}");
    assert!(!a.contains("NO_SUCH_PATTERN"));
}

#[test]
fn inputs_that_cannot_be_read_or_parsed_are_errors_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let fb = dir.path().join("filebeat.yml");
    std::fs::write(&fb, FILEBEAT).unwrap();
    let bad = dir.path().join("bad.conf");
    std::fs::write(&bad, "input {\n  kafka {\n    topics => \n  }\n}\n").unwrap();
    let request = |logstash: &Path| Request {
        filebeat: None,
        logstash: vec![logstash.to_path_buf()],
        out: dir.path().join("out"),
        dry_run: true,
        force: false,
        support_escapes: false,
        registry: None,
        state_dir: None,
        pipelines: Vec::new(),
    };
    let e = import(&fb, &request(&bad)).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("{}:4:3: error: expected a value (string, number, bare word, array or hash), found `}}`", bad.display())
    );
    let bad_yaml = dir.path().join("fb.yml");
    std::fs::write(&bad_yaml, "filebeat.inputs:\n  - type: log\n   paths: [x\n").unwrap();
    let e = import(&bad_yaml, &request(&bad)).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:3:", bad_yaml.display())), "{e}");
    assert!(e.contains(": error: not valid YAML"), "{e}");
    let missing = dir.path().join("missing.yml");
    let e = import(&missing, &request(&bad)).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: error: cannot read", missing.display())),
        "{e}"
    );
}

#[test]
fn without_logstash_the_files_only_ship_and_say_so() {
    let imported = run(FILEBEAT, None);
    assert_checks(&imported);
    assert_eq!(imported.files.len(), 2);
    let shown = messages(&imported);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(shown[0].starts_with("filebeat.yml: warning: no Logstash config given"));
    assert!(!file(&imported, "httpd_access.toml").contains("[[output]]"));
}
