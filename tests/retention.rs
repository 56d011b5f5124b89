//! `logpipe setup` and `logpipe setup --check` against real servers.
//!
//! ILM for real: an Elasticsearch 6.8.23 node of the test's own, the
//! default distribution with its x-pack-ilm module (the newest one Maven
//! Central has; ILM is in no integ-test-zip), its ILM clock at 1 s: the
//! policy installed, attached to a new daily index, drift reported, and an
//! index deleted by it.
//!
//! ISM is not run: OpenSearch's Index Management plugin is published on no
//! registry the test command can reach (README, "Retention"); its policy
//! bodies and the reading of its answers are unit tests
//! (`src/output/elasticsearch/setup/lifecycle.rs`). What runs against the
//! test command's OpenSearch 2.19 and Elasticsearch 7.17 (neither with a
//! lifecycle plugin) is the template drift check and what `retention` does
//! on a server without the API: a clear error naming host and policy, and
//! nothing installed.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use serde_json::json;

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

    let out = run_setup(&path, true);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one line per target: {stdout}");
    assert!(
        stdout.contains(&format!("{target}: DRIFT: missing")),
        "{stdout}"
    );
    // the check installed nothing
    let name = format!("_index_template/logpipe-{prefix}");
    assert_eq!(es.get(&name).await.0, 404);

    let out = run_setup(&path, false);
    assert!(out.status.success(), "{}", output_text(&out));
    let out = run_setup(&path, true);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{target}: in place")),
        "{}",
        output_text(&out)
    );

    // Changed by hand: a lower priority, then `source.ip` as a keyword.
    let (_, held) = es.get(&name).await;
    let mut template = held["index_templates"][0]["index_template"].clone();
    template["priority"] = json!(100);
    assert_eq!(es.put(&name, template.clone()).await.0, 200);
    let out = run_setup(&path, true);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "{target}: DRIFT: `template.priority` is 100 on the server, logpipe's is 200"
        )),
        "{}",
        output_text(&out)
    );
    template["priority"] = json!(200);
    template["template"]["mappings"]["properties"]["source"]["properties"]["ip"] =
        json!({"type": "keyword"});
    assert_eq!(es.put(&name, template).await.0, 200);
    let out = run_setup(&path, true);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "DRIFT: `template.template.mappings.properties.source.properties.ip.type` is \"keyword\" on the server, logpipe's is \"ip\""
        ),
        "{}",
        output_text(&out)
    );

    // `setup` puts it back; removed, it is missing again.
    assert!(run_setup(&path, false).status.success());
    assert_eq!(run_setup(&path, true).status.code(), Some(0));
    let deleted = reqwest::Client::new()
        .delete(format!("{url}/{name}"))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    let out = run_setup(&path, true);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{target}: DRIFT: missing")),
        "{}",
        output_text(&out)
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

    let out = run_setup(&path, false);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
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

    let out = run_setup(&path, true);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
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

/// On a real ILM (Elasticsearch 6.8.23 with x-pack-ilm, `_template` and
/// `index.lifecycle.name`): `--check` reports each target missing, `setup`
/// installs policy and template (again: already in place), a new daily
/// index is managed by the policy, a policy changed or removed by hand is
/// drift until `setup` puts it back, and with `retention = "1s"` the index,
/// now older than that, is deleted by ILM.
#[tokio::test(flavor = "multi_thread")]
async fn ilm_policy_is_installed_attached_checked_and_deletes_old_indices() {
    let Some(_) = elasticsearch() else { return };
    let dir = temp_dir();
    let (mut node, url) =
        own_elasticsearch_ilm(dir.path(), &["-Eindices.lifecycle.poll_interval=1s"]).await;
    let es = Es::new(&url);
    let prefix = unique("ilm");
    let path = pipeline(
        &url,
        &prefix,
        "retention = \"30d\"",
        dir.path().join("ilm.toml"),
    );
    let host = format!("{url}/");
    let name = format!("logpipe-{prefix}");
    let policy = format!("lifecycle policy _ilm/policy/{name} at {host}");
    let template = format!("template _template/{name} at {host}");
    let check_says = |want: &[String], code: i32| {
        let out = run_setup(&path, true);
        assert_eq!(out.status.code(), Some(code), "{}", output_text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), want.len(), "one line per target: {stdout}");
        for (line, want) in lines.iter().zip(want) {
            assert!(line.ends_with(want.as_str()), "{line}\nwanted …{want}");
        }
    };

    check_says(
        &[
            format!("{policy}: DRIFT: missing"),
            format!("{template}: DRIFT: missing"),
        ],
        1,
    );
    let deletes = format!("deletes the indices `{prefix}-*` 30d after their creation");
    let out = run_setup(&path, false);
    assert!(out.status.success(), "{}", output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Elasticsearch 6.8.23 found"), "{stdout}");
    assert!(
        stdout.contains(&format!("installed {policy}: {deletes}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("installed template _template/{name}")),
        "{stdout}"
    );
    let again = run_setup(&path, false);
    assert!(
        String::from_utf8_lossy(&again.stdout)
            .contains(&format!("{policy} already in place: {deletes}")),
        "{}",
        output_text(&again)
    );
    let in_place = [
        format!("{policy}: in place"),
        format!("{template}: in place"),
    ];
    check_says(&in_place, 0);
    let (status, held) = es.get(&format!("_ilm/policy/{name}")).await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(held[&name]["policy"]["phases"]["delete"]["min_age"], "30d");

    // Changed by hand: drift until setup puts it back.
    let seven_days =
        json!({"policy": {"phases": {"delete": {"min_age": "7d", "actions": {"delete": {}}}}}});
    assert_eq!(
        es.put(&format!("_ilm/policy/{name}"), seven_days).await.0,
        200
    );
    check_says(
        &[
            format!(
                "{policy}: DRIFT: `policy.phases.delete.min_age` is \"7d\" on the server, logpipe's is \"30d\""
            ),
            format!("{template}: in place"),
        ],
        1,
    );
    let out = run_setup(&path, false);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("updated {policy}: {deletes}")),
        "{}",
        output_text(&out)
    );
    check_says(&in_place, 0);

    // Removed by hand (no index uses it yet: ILM refuses to delete a policy in use).
    let removed = reqwest::Client::new()
        .delete(format!("{url}/_ilm/policy/{name}"))
        .send()
        .await
        .unwrap();
    assert!(removed.status().is_success());
    check_says(
        &[
            format!("{policy}: DRIFT: missing"),
            format!("{template}: in place"),
        ],
        1,
    );
    assert!(run_setup(&path, false).status.success());
    check_says(&in_place, 0);

    // A new daily index gets the policy through the template.
    let index = format!("{prefix}-2026.12.02");
    let (status, body) = es
        .post(
            &format!("{index}/_doc"),
            json!({"@timestamp": "2026-12-02T10:00:00Z", "message": "kept 30d"}),
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");
    let (_, settings) = es.get(&format!("{index}/_settings")).await;
    assert_eq!(
        settings[&index]["settings"]["index"]["lifecycle"]["name"],
        name.as_str()
    );
    let explain = eventually(Duration::from_secs(30), "the index managed by ILM", || {
        let (es, index) = (&es, &index);
        async move {
            let (_, body) = es.get(&format!("{index}/_ilm/explain")).await;
            let managed = &body["indices"][index.as_str()];
            (managed["managed"] == true).then(|| managed.clone())
        }
    })
    .await;
    assert_eq!(explain["policy"], name.as_str(), "{explain}");

    // Retention of one second: the index, older than that, is deleted.
    let short = pipeline(
        &url,
        &prefix,
        "retention = \"1s\"",
        dir.path().join("ilm-1s.toml"),
    );
    let out = run_setup(&short, false);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "updated {policy}: deletes the indices `{prefix}-*` 1s after their creation"
        )),
        "{}",
        output_text(&out)
    );
    let started = std::time::Instant::now();
    eventually(Duration::from_secs(60), "the index deleted by ILM", || {
        let (es, index) = (&es, &index);
        async move { (es.get(index.as_str()).await.0 == 404).then_some(()) }
    })
    .await;
    println!(
        "ILM deleted {index} {:?} after the 1s policy",
        started.elapsed()
    );
    assert!(es.indices(&format!("{prefix}-*")).await.is_empty());
    node.stop(Duration::from_secs(30));
}
