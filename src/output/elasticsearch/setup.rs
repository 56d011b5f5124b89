//! Index management, as `filebeat setup --index-management` does it: an
//! index template with Elastic Common Schema types for the httpd fields,
//! for the index pattern an output writes to, so that Kibana works out of
//! the box. Installing it is idempotent (a `PUT` of the same body).
//!
//! Which API to use depends on the server, read from `GET /`: composable
//! `_index_template` on Elasticsearch 7.8+ and OpenSearch, the legacy
//! `_template` before. The parts that decide are pure and tested here.

use serde_json::{json, Value};

use super::client::Client;
use super::config::Elasticsearch;

/// Which server answers, from `GET /`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub distribution: Distribution,
    pub major: u32,
    pub minor: u32,
    pub number: String,
    /// Elasticsearch's OSS build (`build_flavor = "oss"`, 7.x and before):
    /// without the X-Pack mapper plugins, so without `wildcard`.
    pub oss: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    Elasticsearch,
    OpenSearch,
}

impl Version {
    /// Reads `version.number` and `version.distribution` of a `GET /` answer.
    pub fn parse(root: &Value) -> Result<Version, String> {
        let version = root
            .get("version")
            .ok_or("the answer to `GET /` has no `version`")?;
        let number = version
            .get("number")
            .and_then(Value::as_str)
            .ok_or("the answer to `GET /` has no `version.number`")?;
        let mut parts = number.split(['.', '-']);
        let mut next = || parts.next().and_then(|p| p.parse::<u32>().ok());
        let (Some(major), minor) = (next(), next()) else {
            return Err(format!("unreadable version `{number}`"));
        };
        let distribution = match version.get("distribution").and_then(Value::as_str) {
            Some("opensearch") => Distribution::OpenSearch,
            _ => Distribution::Elasticsearch,
        };
        let oss = distribution == Distribution::Elasticsearch
            && version.get("build_flavor").and_then(Value::as_str) == Some("oss");
        Ok(Version {
            distribution,
            major,
            minor: minor.unwrap_or(0),
            number: number.to_owned(),
            oss,
        })
    }

    /// Whether `_index_template` exists (Elasticsearch 7.8+, any OpenSearch).
    pub fn composable_templates(&self) -> bool {
        match self.distribution {
            Distribution::OpenSearch => true,
            Distribution::Elasticsearch => (self.major, self.minor) >= (7, 8),
        }
    }

    /// Whether the `wildcard` field type exists (Elasticsearch 7.9+ but its
    /// OSS build, OpenSearch 2.15+).
    pub fn wildcard(&self) -> bool {
        let since = match self.distribution {
            Distribution::Elasticsearch if self.oss => return false,
            Distribution::Elasticsearch => (7, 9),
            Distribution::OpenSearch => (2, 15),
        };
        (self.major, self.minor) >= since
    }
}

/// The index pattern of an index template's text: every `%{…}` becomes `*`
/// (`httpd_access-%{+YYYY.MM.dd}` → `httpd_access-*`).
pub fn index_pattern(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("%{") {
        out.push_str(&rest[..start]);
        if !out.ends_with('*') {
            out.push('*');
        }
        match rest[start..].find('}') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The template's name: the pattern without wildcards
/// (`httpd_access-*` → `logpipe-httpd_access`).
pub fn template_name(pattern: &str) -> String {
    let stem: String = pattern
        .split('*')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    let stem = stem.trim_matches(|c| matches!(c, '-' | '_' | '.'));
    if stem.is_empty() {
        "logpipe".to_owned()
    } else {
        format!("logpipe-{stem}")
    }
}

/// ECS types for what the httpd pipelines produce. Other strings become
/// `keyword` (with `message` and `error.message` full text).
pub fn mappings(version: &Version) -> Value {
    let url_type = if version.wildcard() {
        json!({"type": "wildcard"})
    } else {
        json!({"type": "keyword", "ignore_above": 8191})
    };
    json!({
        "dynamic_templates": [
            {"strings_as_keyword": {
                "match_mapping_type": "string",
                "mapping": {"type": "keyword", "ignore_above": 1024}
            }}
        ],
        "properties": {
            "@timestamp": {"type": "date"},
            "message": {"type": "text"},
            "tags": {"type": "keyword"},
            "source": {"properties": {"ip": {"type": "ip"}, "address": {"type": "keyword"}}},
            "client": {"properties": {"ip": {"type": "ip"}}},
            "http": {"properties": {
                "version": {"type": "keyword"},
                "request": {"properties": {
                    "method": {"type": "keyword"},
                    "referrer": {"type": "keyword"}
                }},
                "response": {"properties": {
                    "status_code": {"type": "long"},
                    "body": {"properties": {"bytes": {"type": "long"}}}
                }}
            }},
            "url": {"properties": {"original": url_type, "path": {"type": "keyword"}}},
            "user": {"properties": {"name": {"type": "keyword"}}},
            "user_agent": {"properties": {"original": {"type": "keyword", "ignore_above": 1024}}},
            "event": {"properties": {
                "duration": {"type": "long"},
                "timezone": {"type": "keyword"},
                "created": {"type": "date"}
            }},
            "host": {"properties": {"name": {"type": "keyword"}}},
            "log": {"properties": {
                "level": {"type": "keyword"},
                "offset": {"type": "long"},
                "file": {"properties": {"path": {"type": "keyword"}}}
            }},
            "error": {"properties": {"message": {"type": "text"}}},
            "process": {"properties": {"pid": {"type": "long"}, "thread": {"properties": {"id": {"type": "long"}}}}}
        }
    })
}

/// The request that installs the template for `pattern`: path and body.
pub fn template_request(pattern: &str, version: &Version) -> (String, Value) {
    let name = template_name(pattern);
    let mappings = mappings(version);
    let settings = json!({"index": {"refresh_interval": "5s"}});
    if version.composable_templates() {
        (
            format!("_index_template/{name}"),
            json!({
                "index_patterns": [pattern],
                "priority": 200,
                "template": {"settings": settings, "mappings": mappings},
                "_meta": {"managed_by": "logpipe"}
            }),
        )
    } else {
        (
            format!("_template/{name}"),
            json!({
                "index_patterns": [pattern],
                "order": 200,
                "settings": settings,
                "mappings": mappings
            }),
        )
    }
}

/// Why setup failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot reach Elasticsearch: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Version(String),
    #[error("installing {what} failed: {message}")]
    Install { what: String, message: String },
}

/// What setup did, one line per step, for `logpipe setup` to print.
pub async fn install(es: &Elasticsearch, client: &Client) -> Result<Vec<String>, SetupError> {
    let root = client.root().await.map_err(SetupError::Unreachable)?;
    let version = Version::parse(&root).map_err(SetupError::Version)?;
    let pattern = index_pattern(es.index.as_str());
    let (path, body) = template_request(&pattern, &version);
    let mut done = vec![format!(
        "{:?} {} found; index pattern `{pattern}`",
        version.distribution, version.number
    )];
    let mut last = String::from("no host");
    for host in es.hosts.iter() {
        let Ok(url) = host.join(&path) else { continue };
        match client.http().put(url).json(&body).send().await {
            Ok(r) if r.status().is_success() => {
                done.push(format!("installed template {path} for `{pattern}`"));
                return Ok(done);
            }
            Ok(r) => {
                let status = r.status();
                let text: String = r
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect();
                last = format!("HTTP {status}: {text}");
                // A refusal is the server's answer, not the host's fault.
                break;
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(SetupError::Install {
        what: path,
        message: last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(body: Value) -> Version {
        Version::parse(&body).unwrap()
    }

    #[test]
    fn versions_decide_the_template_api() {
        let cases = [
            (json!({"version": {"number": "8.15.3"}}), true, true),
            (json!({"version": {"number": "7.17.0"}}), true, true),
            (
                json!({"version": {"number": "7.17.29", "build_flavor": "default"}}),
                true,
                true,
            ),
            // what the OSS build answers: no X-Pack, no wildcard
            (
                json!({"version": {"number": "7.17.29", "build_flavor": "oss"}}),
                true,
                false,
            ),
            (json!({"version": {"number": "7.8.1"}}), true, false),
            (json!({"version": {"number": "7.7.0"}}), false, false),
            (json!({"version": {"number": "6.8.23"}}), false, false),
            (
                json!({"version": {"number": "2.11.0", "distribution": "opensearch"}}),
                true,
                false,
            ),
            (
                json!({"version": {"number": "1.3.0", "distribution": "opensearch"}}),
                true,
                false,
            ),
            (
                json!({"version": {"number": "2.19.6", "distribution": "opensearch"}}),
                true,
                true,
            ),
        ];
        for (body, composable, wildcard) in cases {
            let v = version(body.clone());
            assert_eq!(v.composable_templates(), composable, "{body}");
            assert_eq!(v.wildcard(), wildcard, "{body}");
        }
        assert!(Version::parse(&json!({"name": "x"})).is_err());
        assert!(Version::parse(&json!({"version": {"number": "x.y"}})).is_err());
    }

    #[test]
    fn index_templates_become_index_patterns() {
        let cases = [
            (
                "httpd_access-%{+YYYY.MM.dd}",
                "httpd_access-*",
                "logpipe-httpd_access",
            ),
            ("%{[fields][log_type]}-%{+YYYY.MM}", "*-*", "logpipe"),
            ("static", "static", "logpipe-static"),
            ("a-%{x}%{+YYYY}", "a-*", "logpipe-a"),
        ];
        for (template, pattern, name) in cases {
            assert_eq!(index_pattern(template), pattern, "{template}");
            assert_eq!(template_name(pattern), name, "{pattern}");
        }
    }

    #[test]
    fn old_servers_get_the_legacy_template_api() {
        let new = version(json!({"version": {"number": "8.15.3"}}));
        let old = version(json!({"version": {"number": "7.4.0"}}));
        let (path, body) = template_request("httpd_access-*", &new);
        assert_eq!(path, "_index_template/logpipe-httpd_access");
        assert_eq!(
            body["template"]["mappings"]["properties"]["url"]["properties"]["original"]["type"],
            "wildcard"
        );
        let (path, body) = template_request("httpd_access-*", &old);
        assert_eq!(path, "_template/logpipe-httpd_access");
        assert_eq!(
            body["mappings"]["properties"]["source"]["properties"]["ip"]["type"],
            "ip"
        );
        assert_eq!(
            body["mappings"]["properties"]["url"]["properties"]["original"]["type"],
            "keyword"
        );
    }
}
