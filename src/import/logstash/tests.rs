use super::parser::parse;
use super::*;
use crate::config::Source;

fn parsed(text: &str) -> Config {
    parse(text, 0, false).unwrap()
}

fn error_at(text: &str) -> (usize, usize, String) {
    let e = parse(text, 0, false).unwrap_err();
    let (line, col) = Source::new("x.conf", text).position(e.offset);
    (line, col, e.message)
}

fn plugin(stmt: &Stmt) -> &Plugin {
    match stmt {
        Stmt::Plugin(p) => p,
        other => panic!("not a plugin: {other:?}"),
    }
}

const REFERENCE: &str = include_str!("../../../tests/fixtures/import/logstash.conf");

#[test]
fn the_reference_deployment_parses_into_its_sections_plugins_and_conditionals() {
    let config = parsed(REFERENCE);
    let kinds: Vec<_> = config.sections.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [SectionKind::Input, SectionKind::Output]);
    let kafka = plugin(&config.sections[0].body[0]);
    assert_eq!(kafka.name, "kafka");
    assert_eq!(
        kafka.get("bootstrap_servers").unwrap().value.as_text(),
        Some("10.0.0.75:9092,10.0.0.76:9092,10.0.0.77:9092")
    );
    assert_eq!(
        kafka.get("decorate_events").unwrap().value.as_bool(),
        Some(false)
    );
    assert_eq!(
        kafka.get("auto_offset_reset").unwrap().value.as_text(),
        Some("latest")
    );
    let output = &config.sections[1].body;
    assert_eq!(output.len(), 3);
    let Stmt::If(first) = &output[0] else {
        panic!()
    };
    assert_eq!(first.branches[0].text, r#""httpd_access" in [tags]"#);
    assert_eq!(
        first.branches[0].condition,
        Cond::In(
            Operand::Str("httpd_access".into()),
            Operand::Field(vec!["tags".into()]),
            true
        )
    );
    let es = plugin(&first.branches[0].body[0]);
    assert_eq!(
        es.get("hosts").unwrap().value.as_text_list(),
        Some(vec!["10.0.0.72:9200", "10.0.0.74:9200"])
    );
    assert_eq!(
        es.get("index").unwrap().value.as_text(),
        Some("httpd_access-%{+YYYY.MM.dd}")
    );
    let stdout = plugin(&output[2]);
    let codec = &stdout.get("codec").unwrap().value;
    assert_eq!(codec.as_text(), Some("rubydebug"));
    // Positions: the kafka plugin is on line 2, column 3.
    let src = Source::new("x", REFERENCE);
    assert_eq!(src.position(kafka.at), (2, 3));
}

#[test]
fn values_of_every_kind() {
    let config = parsed(
        r#"filter { mutate {
  a => "dq \" x"   b => 'sq'
  n => -1.5 w => true
  list => [ "x", 2, [ "nested" ] ]
  h => { "k" => "v" k2 => 3, "k3" => [1] }
  codec => json { charset => "UTF-8" }
} }"#,
    );
    let p = plugin(&config.sections[0].body[0]);
    assert_eq!(
        p.get("a").unwrap().value.kind,
        ValueKind::Str(r#"dq \" x"#.into())
    );
    assert_eq!(p.get("b").unwrap().value.as_text(), Some("sq"));
    assert_eq!(
        p.get("n").unwrap().value.kind,
        ValueKind::Number("-1.5".into())
    );
    assert_eq!(
        p.get("w").unwrap().value.kind,
        ValueKind::Bareword("true".into())
    );
    let ValueKind::Array(items) = &p.get("list").unwrap().value.kind else {
        panic!()
    };
    assert_eq!(items.len(), 3);
    assert!(matches!(items[2].kind, ValueKind::Array(_)));
    let ValueKind::Hash(entries) = &p.get("h").unwrap().value.kind else {
        panic!()
    };
    let keys: Vec<_> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["k", "k2", "k3"]);
    let ValueKind::Plugin(codec) = &p.get("codec").unwrap().value.kind else {
        panic!()
    };
    assert_eq!(codec.name, "json");
    assert_eq!(codec.get("charset").unwrap().value.as_text(), Some("UTF-8"));
}

#[test]
fn escapes_are_resolved_only_with_support_escapes() {
    let text = r#"filter { mutate { a => "t\tq\"b\\" } }"#;
    let raw = parse(text, 0, false).unwrap();
    let esc = parse(text, 0, true).unwrap();
    let get = |c: &Config| {
        plugin(&c.sections[0].body[0])
            .get("a")
            .unwrap()
            .value
            .kind
            .clone()
    };
    assert_eq!(get(&raw), ValueKind::Str(r#"t\tq\"b\\"#.into()));
    assert_eq!(get(&esc), ValueKind::Str("t\tq\"b\\".into()));
}

#[test]
fn comments_are_skipped_everywhere() {
    let config =
        parsed("# head\ninput { # after brace\n  stdin { # inside\n  } # after\n}\n# tail");
    assert_eq!(plugin(&config.sections[0].body[0]).name, "stdin");
}

fn condition(text: &str) -> Cond {
    let config = parsed(&format!("filter {{ if {text} {{ drop {{}} }} }}"));
    let Stmt::If(chain) = &config.sections[0].body[0] else {
        panic!()
    };
    assert_eq!(chain.branches[0].text, text);
    chain.branches[0].condition.clone()
}

fn field(path: &[&str]) -> Operand {
    Operand::Field(path.iter().map(|s| s.to_string()).collect())
}

#[test]
fn conditions_with_every_operator() {
    assert_eq!(
        condition("[a][b] == 200"),
        Cond::Compare(field(&["a", "b"]), CmpOp::Eq, Operand::Number("200".into()))
    );
    assert_eq!(
        condition("[status] >= 500"),
        Cond::Compare(field(&["status"]), CmpOp::Ge, Operand::Number("500".into()))
    );
    assert_eq!(
        condition(r#"[message] =~ /^GET \/x/"#),
        Cond::Regex(field(&["message"]), r"^GET \/x".into(), true)
    );
    assert_eq!(
        condition(r#"[message] !~ "x""#),
        Cond::Regex(field(&["message"]), "x".into(), false)
    );
    assert_eq!(
        condition(r#""_grokparsefailure" not in [tags]"#),
        Cond::In(
            Operand::Str("_grokparsefailure".into()),
            field(&["tags"]),
            false
        )
    );
    assert_eq!(
        condition(r#"[level] in ["error", "crit"]"#),
        Cond::In(
            field(&["level"]),
            Operand::List(vec![
                Operand::Str("error".into()),
                Operand::Str("crit".into())
            ]),
            true
        )
    );
    assert_eq!(
        condition("![a]"),
        Cond::Not(Box::new(Cond::Truthy(field(&["a"]))))
    );
    assert_eq!(
        condition("!([a] and [b])"),
        Cond::Not(Box::new(Cond::Bool(
            BoolOp::And,
            Box::new(Cond::Truthy(field(&["a"]))),
            Box::new(Cond::Truthy(field(&["b"])))
        )))
    );
}

#[test]
fn and_binds_tighter_than_xor_and_xor_tighter_than_or() {
    let t = |n: &str| Box::new(Cond::Truthy(field(&[n])));
    assert_eq!(
        condition("[a] or [b] and [c]"),
        Cond::Bool(
            BoolOp::Or,
            t("a"),
            Box::new(Cond::Bool(BoolOp::And, t("b"), t("c")))
        )
    );
    assert_eq!(
        condition("[a] xor [b] nand [c] or [d]"),
        Cond::Bool(
            BoolOp::Or,
            Box::new(Cond::Bool(
                BoolOp::Xor,
                t("a"),
                Box::new(Cond::Bool(BoolOp::Nand, t("b"), t("c")))
            )),
            t("d")
        )
    );
    assert_eq!(
        condition("([a] or [b]) and [c]"),
        Cond::Bool(
            BoolOp::And,
            Box::new(Cond::Bool(BoolOp::Or, t("a"), t("b"))),
            t("c")
        )
    );
}

#[test]
fn if_else_if_else_chains() {
    let config = parsed(
        r#"output {
  if [a] { stdout {} }
  else if [b] { stdout {} } else if [c] {}
  else { stdout {} stdout {} }
  stdout {}
}"#,
    );
    let body = &config.sections[0].body;
    assert_eq!(body.len(), 2);
    let Stmt::If(chain) = &body[0] else { panic!() };
    assert_eq!(chain.branches.len(), 3);
    assert_eq!(chain.branches[2].text, "[c]");
    assert!(chain.branches[2].body.is_empty());
    assert_eq!(chain.otherwise.as_ref().unwrap().len(), 2);
}

#[test]
fn syntax_errors_point_at_their_line_and_column() {
    assert_eq!(
        error_at("input {\n  kafka {\n    topics => \n  }\n}"),
        (
            4,
            3,
            "expected a value (string, number, bare word, array or hash), found `}`".into()
        )
    );
    assert_eq!(
        error_at("input {\n  kafka { topics \"x\" }\n}"),
        (
            2,
            18,
            "expected `=>` after the setting `topics`, found `\"`".into()
        )
    );
    assert_eq!(
        error_at("inptu { }"),
        (
            1,
            1,
            "expected `input`, `filter` or `output`, found `i`".into()
        )
    );
    assert_eq!(
        error_at("filter {\n  mutate { a => \"open\n}\n"),
        (2, 17, "unterminated string (no closing quote)".into())
    );
    assert_eq!(
        error_at("filter { if [a] == { drop {} } }"),
        (1, 20, "expected a value in the condition (a field reference `[a][b]`, a string, a number, a list or a regex), found `{`".into())
    );
    assert_eq!(
        error_at("filter { else { } }"),
        (1, 10, "`else` without an `if` before it".into())
    );
    let (line, col, message) = error_at("filter {\n  grok {\n");
    assert_eq!((line, col), (3, 1));
    assert!(
        message.starts_with("expected a setting name or `}`"),
        "{message}"
    );
}

#[test]
fn a_directory_is_read_in_lexical_order_with_positions_per_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("20-out.conf"), "output { stdout {} }").unwrap();
    std::fs::write(dir.path().join("10-in.conf"), "\n\ninput { stdin {} }").unwrap();
    let mut pipeline = Pipeline::default();
    read(dir.path(), false, &mut pipeline).unwrap();
    let kinds: Vec<_> = pipeline.config.sections.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [SectionKind::Input, SectionKind::Output]);
    let input = &pipeline.config.sections[0];
    let source = &pipeline.sources[input.file];
    assert!(source.path.ends_with("10-in.conf"));
    assert_eq!(source.position(input.at), (3, 1));

    std::fs::write(dir.path().join("30-bad.conf"), "output {\n  stdout {\n").unwrap();
    let error = read(dir.path(), false, &mut Pipeline::default()).unwrap_err();
    let shown = error.to_string();
    assert!(shown.contains("30-bad.conf:3:1: error: "), "{shown}");
}

#[test]
fn every_prefix_of_a_config_parses_or_fails_without_panicking() {
    let text = format!(
        "{REFERENCE}\nfilter {{ if [é][ü] =~ /caf\\/é/ and !([x] in [\"ß\", 1]) {{ mutate {{ \"ключ\" => 'значение' }} }} else if \"ü\" not in [tags] {{ drop {{}} }} }} # ü\n"
    );
    assert!(parse(&text, 0, false).is_ok());
    for (end, _) in text.char_indices() {
        let _ = parse(&text[..end], 0, false);
        let _ = parse(&text[..end], 0, true);
    }
}
