//! `logpipe setup` and `logpipe setup --check` against the real OpenSearch
//! 2.19 and Elasticsearch 7.17 of the test command.
//!
//! Neither server has its lifecycle plugin there: OpenSearch's Index
//! Management plugin and Elasticsearch's x-pack-ilm module are published
//! on no registry the test command can reach (README, "Retention"). So
//! what runs here is the template drift check and what `retention` does on
//! a server without the API: a clear error naming host and policy, and
//! nothing installed. The policy bodies and the reading of the policy APIs'
//! answers are unit tests (`src/output/elasticsearch/setup/lifecycle.rs`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use serde_json::json;

/// `logpipe setup [--check]` of `pipeline`.
fn setup(pipeline: &Path, check: bool) -> Output {
    let mut cmd = logpipe();
    cmd.arg("setup");
    if check {
        cmd.arg("--check");
    }
    cmd.arg(pipeline).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A pipeline for `logpipe setup` only: daily indices `prefix-YYYY.MM.dd`
/// on `url` with `extra` settings, its file input never read.
fn pipeline(url: &str, prefix: &str, extra: &str, path: PathBuf) -> PathBuf {
    PipelineToml::unnamed()
        .file_input("/nonexistent")
        .elasticsearch_output(url, &format!("{prefix}-%{{+YYYY.MM.dd}}"))
        .with(extra)
        .write_to(path)
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_check_reports_template_drift_on_opensearch() {
    let Some(svc) = services() else { return };
    check_reports_template_drift(&svc.es).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_check_reports_template_drift_on_elasticsearch() {
    let Some(url) = elasticsearch() else { return };
    check_reports_template_drift(&url).await;
}

/// `--check` says missing before `setup`, in place after it, and names
/// what differs once the template is changed by hand; it changes nothing,
/// and `setup` puts the template back.
async fn check_reports_template_drift(url: &str) {
    let dir = temp_dir();
    let prefix = unique("check");
    let path = pipeline(url, &prefix, "", dir.path().join("check.toml"));
    let target = format!("template _index_template/logpipe-{prefix} at {}/", url);
    let es = Es::new(url);

    let out = setup(&path, true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one line per target: {stdout}");
    assert!(
        stdout.contains(&format!("{target}: DRIFT: missing")),
        "{stdout}"
    );
    // the check installed nothing
    let name = format!("_index_template/logpipe-{prefix}");
    assert_eq!(es.get(&name).await.0, 404);

    let out = setup(&path, false);
    assert!(out.status.success(), "{}", text(&out));
    let out = setup(&path, true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{target}: in place")),
        "{}",
        text(&out)
    );

    // Changed by hand: a lower priority, then `source.ip` as a keyword.
    let (_, held) = es.get(&name).await;
    let mut template = held["index_templates"][0]["index_template"].clone();
    template["priority"] = json!(100);
    assert_eq!(es.put(&name, template.clone()).await.0, 200);
    let out = setup(&path, true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "{target}: DRIFT: `template.priority` is 100 on the server, logpipe's is 200"
        )),
        "{}",
        text(&out)
    );
    template["priority"] = json!(200);
    template["template"]["mappings"]["properties"]["source"]["properties"]["ip"] =
        json!({"type": "keyword"});
    assert_eq!(es.put(&name, template).await.0, 200);
    let out = setup(&path, true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "DRIFT: `template.template.mappings.properties.source.properties.ip.type` is \"keyword\" on the server, logpipe's is \"ip\""
        ),
        "{}",
        text(&out)
    );

    // `setup` puts it back; removed, it is missing again.
    assert!(setup(&path, false).status.success());
    assert_eq!(setup(&path, true).status.code(), Some(0));
    let deleted = reqwest::Client::new()
        .delete(format!("{url}/{name}"))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    let out = setup(&path, true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{target}: DRIFT: missing")),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_on_opensearch_without_ism_fails_naming_host_policy_and_plugin() {
    let Some(svc) = services() else { return };
    retention_without_the_api(
        &svc.es,
        "_plugins/_ism/policies",
        "OpenSearch's Index Management plugin (opensearch-index-management)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_on_elasticsearch_without_ilm_fails_naming_host_policy_and_module() {
    let Some(url) = elasticsearch() else { return };
    retention_without_the_api(
        &url,
        "_ilm/policy",
        "Elasticsearch's ILM (the x-pack-ilm module of the default distribution)",
    )
    .await;
}

/// `retention` on a server without the lifecycle API: `setup` exits 1
/// with the host, the policy and what the server lacks, and installs
/// nothing (not even the template, so no index of the pattern is made
/// that the policy should have had); `--check` reports both targets.
async fn retention_without_the_api(url: &str, api: &str, needs: &str) {
    let dir = temp_dir();
    let prefix = unique("retention");
    let path = pipeline(
        url,
        &prefix,
        "retention = \"30d\"",
        dir.path().join("retention.toml"),
    );
    let host = format!("{url}/");
    let policy = format!("{api}/logpipe-{prefix}");

    let out = setup(&path, false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot install lifecycle policy {policy} at {host} for `retention`: \
             the server has no such API; it needs {needs}"
        )),
        "{stderr}"
    );
    let es = Es::new(url);
    let (status, body) = es.get(&format!("_index_template/logpipe-{prefix}")).await;
    assert_eq!(status, 404, "no template without its policy: {body}");

    let out = setup(&path, true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "one line per target: {stdout}");
    assert!(
        lines[0].ends_with(&format!(
            "lifecycle policy {policy} at {host}: DRIFT: the server has no lifecycle API \
             for `retention`; it needs {needs}"
        )),
        "{stdout}"
    );
    assert!(
        lines[1].ends_with(&format!(
            "template _index_template/logpipe-{prefix} at {host}: DRIFT: missing"
        )),
        "{stdout}"
    );
}
