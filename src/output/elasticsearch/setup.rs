//! Index management, as `filebeat setup --index-management` does it: an
//! index template with Elastic Common Schema types for the httpd fields,
//! for the index pattern an output writes to, so that Kibana works out of
//! the box. Installing it is idempotent (a `PUT` of the same body).
//!
//! Which API to use depends on the server, read from `GET /`: composable
//! `_index_template` on Elasticsearch 7.8+ and OpenSearch, the legacy
//! `_template` before. With `retention`, a lifecycle policy too
//! ([`lifecycle`]: ISM on OpenSearch, ILM on Elasticsearch). `check`
//! compares what the server holds with what `install` would put there. The
//! parts that decide are pure and tested here.

pub mod lifecycle;

use std::time::Duration;

use serde_json::{json, Value};

use super::client::Client;
use super::config::Elasticsearch;
use lifecycle::{Api, Found};

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

    /// Whether data streams exist: Elasticsearch 7.9+ but its OSS build
    /// (they come with X-Pack), any OpenSearch.
    pub fn data_streams(&self) -> bool {
        match self.distribution {
            Distribution::OpenSearch => true,
            Distribution::Elasticsearch => !self.oss && (self.major, self.minor) >= (7, 9),
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
            "source": {"properties": {
                "ip": {"type": "ip"},
                "address": {"type": "keyword"},
                "domain": {"type": "keyword"},
                "port": {"type": "long"},
                // Kibana's maps need a geo_point; dynamic mapping would make
                // `location` an object of two floats.
                "geo": {"properties": {"location": {"type": "geo_point"}}},
                "as": {"properties": {"number": {"type": "long"}}}
            }},
            "destination": {"properties": {"domain": {"type": "keyword"}}},
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
            "url": {"properties": {"original": url_type, "path": {"type": "keyword"}, "port": {"type": "long"}}},
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
    template_request_with(pattern, version, None, false)
}

/// [`template_request`] with `index_settings` under `settings.index`
/// beside logpipe's own (the ILM policy's name), and for a data stream
/// `data_stream: {}` (composable templates only: the caller checks
/// [`Version::data_streams`]).
pub fn template_request_with(
    pattern: &str,
    version: &Version,
    index_settings: Option<Value>,
    data_stream: bool,
) -> (String, Value) {
    let name = template_name(pattern);
    let mappings = mappings(version);
    let mut settings = json!({"index": {"refresh_interval": "5s"}});
    if let (Some(Value::Object(extra)), Some(index)) =
        (index_settings, settings["index"].as_object_mut())
    {
        index.extend(extra);
    }
    if version.composable_templates() {
        let mut body = json!({
            "index_patterns": [pattern],
            "priority": 200,
            "template": {"settings": settings, "mappings": mappings},
            "_meta": {"managed_by": "logpipe"}
        });
        if data_stream {
            body["data_stream"] = json!({});
        }
        (format!("_index_template/{name}"), body)
    } else {
        // before 7.0 a template's mappings are those of a type (`_doc`)
        let mappings = if version.major < 7 {
            json!({ "_doc": mappings })
        } else {
            mappings
        };
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

/// What `logpipe setup` installs for one output on one server: pure, from
/// the output's index pattern, its `retention` and the server's version.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub pattern: String,
    /// The index template: path and body.
    pub template: (String, Value),
    pub policy: Option<PolicyPlan>,
}

/// The lifecycle policy of an output with `retention`.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyPlan {
    pub api: Api,
    pub name: String,
    pub path: String,
    pub body: Value,
    /// The retention as the policy writes it (`30d`).
    pub age: String,
}

impl Plan {
    /// The plan of an output that writes to indices.
    pub fn new(
        pattern: &str,
        retention: Option<Duration>,
        version: &Version,
    ) -> Result<Plan, String> {
        Plan::for_output(pattern, retention, false, version)
    }

    /// The plan of an output writing to indices, or to data streams
    /// (`data_stream`), which need a server that has them.
    pub fn for_output(
        pattern: &str,
        retention: Option<Duration>,
        data_stream: bool,
        version: &Version,
    ) -> Result<Plan, String> {
        if data_stream && !version.data_streams() {
            let build = if version.oss { " (OSS build)" } else { "" };
            return Err(format!(
                "`data_stream` needs data streams, which Elasticsearch has since 7.9 (not in its \
                 OSS build) and OpenSearch has in every version; this is {:?} {}{build}",
                version.distribution, version.number
            ));
        }
        let name = template_name(pattern);
        let policy = match retention {
            None => None,
            Some(retention) => {
                let api = Api::of(version)?;
                Some(PolicyPlan {
                    api,
                    path: api.path(&name),
                    body: if data_stream {
                        lifecycle::stream_policy_body(api, pattern, retention, version)
                    } else {
                        lifecycle::policy_body(api, pattern, retention, version)
                    },
                    age: lifecycle::age(retention),
                    name,
                })
            }
        };
        let index_settings = policy
            .as_ref()
            .and_then(|p| lifecycle::template_settings(p.api, &p.name));
        Ok(Plan {
            pattern: pattern.to_owned(),
            template: template_request_with(pattern, version, index_settings, data_stream),
            policy,
        })
    }
}

/// Why setup (or its check) failed. Each names the host and what was
/// being installed or read.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot reach Elasticsearch: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Version(String),
    /// The server cannot do what the output asks (data streams, a
    /// lifecycle API): not worth retrying.
    #[error("{host}: {message}")]
    Unsupported { host: String, message: String },
    #[error("installing {what} at {host} failed: {message}")]
    Install {
        host: String,
        what: String,
        message: String,
    },
    #[error("reading {what} at {host} failed: {message}")]
    Read {
        host: String,
        what: String,
        message: String,
    },
    #[error(
        "cannot install lifecycle policy {what} at {host} for `retention`: the server has no \
         such API; it needs {needs}"
    )]
    NoLifecycle {
        host: String,
        what: String,
        needs: &'static str,
    },
}

/// One answer: the host that gave it, its status and its JSON body (null
/// when there is none).
struct Answer {
    host: reqwest::Url,
    status: u16,
    body: Value,
}

/// Sends one request to the first host that answers (any status); a host
/// that cannot be reached passes it to the next.
async fn request(
    es: &Elasticsearch,
    client: &Client,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Answer, SetupError> {
    let mut last = String::from("no host");
    for host in &es.hosts {
        let url = match host.join(path) {
            Ok(url) => url,
            Err(e) => {
                last = format!("{host}: {e}");
                continue;
            }
        };
        let mut builder = client.http().request(method.clone(), url);
        if let Some(body) = body {
            builder = builder.json(body);
        }
        match builder.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
                return Ok(Answer {
                    host: host.clone(),
                    status,
                    body,
                });
            }
            Err(e) => last = format!("{host}: {e}"),
        }
    }
    Err(SetupError::Unreachable(last))
}

/// The server's version and what to install there for `es`.
async fn plan(es: &Elasticsearch, client: &Client) -> Result<(Version, Plan), SetupError> {
    let root = client.root().await.map_err(SetupError::Unreachable)?;
    let version = Version::parse(&root).map_err(SetupError::Version)?;
    let pattern = index_pattern(es.index.as_str());
    let plan =
        Plan::for_output(&pattern, es.retention, es.data_stream, &version).map_err(|message| {
            SetupError::Unsupported {
                host: es
                    .hosts
                    .iter()
                    .map(|h| h.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                message,
            }
        })?;
    Ok((version, plan))
}

/// What setup did, one line per step, for `logpipe setup` to print: the
/// lifecycle policy first (when `retention` is set), so that the indices
/// the template shapes never exist without it, then the template.
pub async fn install(es: &Elasticsearch, client: &Client) -> Result<Vec<String>, SetupError> {
    let (version, plan) = plan(es, client).await?;
    let pattern = &plan.pattern;
    let mut done = vec![format!(
        "{:?} {} found; index pattern `{pattern}`",
        version.distribution, version.number
    )];
    if let Some(policy) = &plan.policy {
        done.push(install_policy(es, client, pattern, policy).await?);
    }
    let (path, body) = &plan.template;
    let answer = request(es, client, reqwest::Method::PUT, path, Some(body)).await?;
    if !(200..300).contains(&answer.status) {
        return Err(SetupError::Install {
            host: answer.host.to_string(),
            what: format!("template {path}"),
            message: format!(
                "HTTP {}: {}",
                answer.status,
                lifecycle::excerpt(&answer.body)
            ),
        });
    }
    done.push(format!("installed template {path} for `{pattern}`"));
    Ok(done)
}

/// Installs the policy unless the server holds it as logpipe writes it;
/// an ISM update names the version it replaces (ISM refuses a blind
/// overwrite).
async fn install_policy(
    es: &Elasticsearch,
    client: &Client,
    pattern: &str,
    policy: &PolicyPlan,
) -> Result<String, SetupError> {
    let what = format!("lifecycle policy {}", policy.path);
    let found = read_policy(es, client, policy).await?;
    let (host, found) = match found {
        (host, Found::NoApi) => {
            return Err(SetupError::NoLifecycle {
                host,
                what: policy.path.clone(),
                needs: policy.api.needs(),
            })
        }
        other => other,
    };
    let deletes = if es.data_stream {
        let roll = es
            .retention
            .map(lifecycle::rollover_age)
            .map(lifecycle::age);
        format!(
            "rolls the data streams `{pattern}` over every {} and deletes each backing index {} later",
            roll.unwrap_or_default(),
            policy.age
        )
    } else {
        format!(
            "deletes the indices `{pattern}` {} after their creation",
            policy.age
        )
    };
    let (path, verb) = match &found {
        Found::Present { policy: held, .. }
            if lifecycle::policy_difference(policy.api, &policy.body, held).is_none() =>
        {
            return Ok(format!("{what} at {host} already in place: {deletes}"));
        }
        Found::Present {
            version: Some((seq_no, primary_term)),
            ..
        } => (
            format!(
                "{}?if_seq_no={seq_no}&if_primary_term={primary_term}",
                policy.path
            ),
            "updated",
        ),
        Found::Present { version: None, .. } => (policy.path.clone(), "updated"),
        Found::Missing | Found::NoApi => (policy.path.clone(), "installed"),
    };
    let answer = request(es, client, reqwest::Method::PUT, &path, Some(&policy.body)).await?;
    if !(200..300).contains(&answer.status) {
        return Err(SetupError::Install {
            host: answer.host.to_string(),
            what,
            message: format!(
                "HTTP {}: {}",
                answer.status,
                lifecycle::excerpt(&answer.body)
            ),
        });
    }
    Ok(format!("{verb} {what} at {}: {deletes}", answer.host))
}

/// `GET` of the policy: the host that answered and what it holds.
async fn read_policy(
    es: &Elasticsearch,
    client: &Client,
    policy: &PolicyPlan,
) -> Result<(String, Found), SetupError> {
    let answer = request(es, client, reqwest::Method::GET, &policy.path, None).await?;
    let host = answer.host.to_string();
    let found = lifecycle::read_get(policy.api, &policy.name, answer.status, &answer.body)
        .map_err(|message| SetupError::Read {
            host: host.clone(),
            what: format!("lifecycle policy {}", policy.path),
            message,
        })?;
    Ok((host, found))
}

/// One thing `logpipe setup --check` compared: a template or a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// `template _index_template/logpipe-x` or `lifecycle policy …`.
    pub what: String,
    /// The host that answered.
    pub host: String,
    /// Why it is not as `logpipe setup` would leave it; `None` when it is.
    pub drift: Option<String>,
}

impl std::fmt::Display for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.drift {
            None => write!(f, "{} at {}: in place", self.what, self.host),
            Some(why) => write!(f, "{} at {}: DRIFT: {why}", self.what, self.host),
        }
    }
}

/// `logpipe setup --check`: compares what the server holds with what
/// `install` would put there, changing nothing. One entry per target.
pub async fn check(es: &Elasticsearch, client: &Client) -> Result<Vec<Checked>, SetupError> {
    let (_, plan) = plan(es, client).await?;
    let mut out = Vec::new();
    if let Some(policy) = &plan.policy {
        let (host, found) = read_policy(es, client, policy).await?;
        let drift = match found {
            Found::NoApi => Some(format!(
                "the server has no lifecycle API for `retention`; it needs {}",
                policy.api.needs()
            )),
            Found::Missing => Some("missing".to_owned()),
            Found::Present { policy: held, .. } => {
                lifecycle::policy_difference(policy.api, &policy.body, &held)
            }
        };
        out.push(Checked {
            what: format!("lifecycle policy {}", policy.path),
            host,
            drift,
        });
    }
    let (path, wanted) = &plan.template;
    let what = format!("template {path}");
    let answer = request(es, client, reqwest::Method::GET, path, None).await?;
    let host = answer.host.to_string();
    let drift = match answer.status {
        404 => Some("missing".to_owned()),
        200 => {
            let name = template_name(&plan.pattern);
            let held =
                held_template(path, &name, &answer.body).ok_or_else(|| SetupError::Read {
                    host: host.clone(),
                    what: what.clone(),
                    message: format!("unreadable answer: {}", lifecycle::excerpt(&answer.body)),
                })?;
            lifecycle::difference("template", wanted, held)
        }
        status => {
            return Err(SetupError::Read {
                host,
                what,
                message: format!("HTTP {status}: {}", lifecycle::excerpt(&answer.body)),
            })
        }
    };
    out.push(Checked { what, host, drift });
    Ok(out)
}

/// The template in the answer to its `GET`: `_index_template` answers
/// `{"index_templates": [{"name", "index_template"}]}`, `_template`
/// answers `{"<name>": {...}}`.
fn held_template<'a>(path: &str, name: &str, body: &'a Value) -> Option<&'a Value> {
    if path.starts_with("_index_template/") {
        body["index_templates"]
            .as_array()?
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| &t["index_template"])
    } else {
        body.get(name)
    }
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
        let six = version(json!({"version": {"number": "6.8.23", "build_flavor": "default"}}));
        let (path, body) = template_request("httpd_access-*", &six);
        assert_eq!(path, "_template/logpipe-httpd_access");
        assert_eq!(
            body["mappings"]["_doc"]["properties"]["source"]["properties"]["ip"]["type"],
            "ip"
        );
    }

    /// `retention` adds a policy of the server's API and, for ILM, its name
    /// in the template's settings (composable and legacy alike); without
    /// it, the template alone, as before.
    #[test]
    fn retention_plans_a_policy_of_the_servers_api() {
        let day30 = Some(Duration::from_secs(30 * 86_400));
        let es = version(json!({"version": {"number": "7.17.29", "build_flavor": "oss"}}));
        let plan = Plan::new("httpd_access-*", day30, &es).unwrap();
        let policy = plan.policy.as_ref().unwrap();
        assert_eq!(policy.api, Api::Ilm);
        assert_eq!(policy.path, "_ilm/policy/logpipe-httpd_access");
        assert_eq!(policy.age, "30d");
        assert_eq!(policy.body["policy"]["phases"]["delete"]["min_age"], "30d");
        let (path, body) = &plan.template;
        assert_eq!(path, "_index_template/logpipe-httpd_access");
        assert_eq!(
            body["template"]["settings"],
            json!({"index": {"refresh_interval": "5s",
                             "lifecycle": {"name": "logpipe-httpd_access"}}})
        );

        let legacy = version(json!({"version": {"number": "7.4.0"}}));
        let plan = Plan::new("httpd_access-*", day30, &legacy).unwrap();
        assert_eq!(
            plan.template.1["settings"]["index"]["lifecycle"]["name"],
            "logpipe-httpd_access"
        );

        let os = version(json!({"version": {"number": "2.19.6", "distribution": "opensearch"}}));
        let plan = Plan::new("httpd_access-*", day30, &os).unwrap();
        let policy = plan.policy.as_ref().unwrap();
        assert_eq!(policy.api, Api::Ism);
        assert_eq!(policy.path, "_plugins/_ism/policies/logpipe-httpd_access");
        assert_eq!(
            policy.body["policy"]["ism_template"][0]["index_patterns"],
            json!(["httpd_access-*"])
        );
        // ISM attaches itself: the template is the one without retention
        let without = Plan::new("httpd_access-*", None, &os).unwrap();
        assert_eq!(without.policy, None);
        assert_eq!(plan.template, without.template);

        let too_old = version(json!({"version": {"number": "6.4.0"}}));
        assert!(Plan::new("a-*", day30, &too_old).is_err());
        assert!(Plan::new("a-*", None, &too_old).is_ok());
    }

    /// A data stream's template says so (`data_stream: {}`); its policy
    /// rolls the write index over and deletes backing indices; servers
    /// without data streams are refused before anything is sent.
    #[test]
    fn data_streams_plan_their_template_and_a_rolling_policy() {
        let day30 = Some(Duration::from_secs(30 * 86_400));
        let os = version(json!({"version": {"number": "2.19.6", "distribution": "opensearch"}}));
        let plan = Plan::for_output("logs-apache.access-default", day30, true, &os).unwrap();
        let (path, body) = &plan.template;
        assert_eq!(path, "_index_template/logpipe-logs-apache.access-default");
        assert_eq!(body["data_stream"], json!({}));
        assert_eq!(
            body["index_patterns"],
            json!(["logs-apache.access-default"])
        );
        let policy = plan.policy.as_ref().unwrap();
        assert_eq!(policy.api, Api::Ism);
        let states = &policy.body["policy"]["states"];
        assert_eq!(states[0]["actions"][0]["rollover"]["min_index_age"], "1d");
        assert_eq!(
            states[0]["transitions"][0]["conditions"]["min_index_age"],
            "30d"
        );
        assert_eq!(states[1]["actions"][0], json!({"delete": {}}));
        assert_eq!(
            policy.body["policy"]["ism_template"][0]["index_patterns"],
            json!(["logs-apache.access-default"])
        );

        let es = version(json!({"version": {"number": "8.15.3", "build_flavor": "default"}}));
        let hour = Some(Duration::from_secs(3600));
        let plan = Plan::for_output("logs-a-b", hour, true, &es).unwrap();
        let phases = &plan.policy.as_ref().unwrap().body["policy"]["phases"];
        // the write index must have rolled over before it is old enough to go
        assert_eq!(phases["hot"]["actions"]["rollover"]["max_age"], "1h");
        assert_eq!(
            phases["hot"]["actions"]["rollover"]["max_primary_shard_size"],
            "50gb"
        );
        assert_eq!(phases["delete"]["min_age"], "1h");
        assert_eq!(plan.template.1["data_stream"], json!({}));
        assert_eq!(
            plan.template.1["template"]["settings"]["index"]["lifecycle"]["name"],
            "logpipe-logs-a-b"
        );
        // without data_stream, the same output plans no data stream
        let indices = Plan::for_output("logs-a-b", None, false, &es).unwrap();
        assert_eq!(indices.template.1.get("data_stream"), None);

        for number in ["7.8.1", "6.8.23"] {
            let old = version(json!({"version": {"number": number}}));
            let e = Plan::for_output("logs-a-b", None, true, &old).unwrap_err();
            assert!(e.contains("since 7.9") && e.contains(number), "{e}");
        }
        let oss = version(json!({"version": {"number": "7.17.29", "build_flavor": "oss"}}));
        let e = Plan::for_output("logs-a-b", None, true, &oss).unwrap_err();
        assert!(e.contains("OSS build"), "{e}");
        assert!(Plan::for_output("logs-a-b", None, false, &oss).is_ok());
    }

    #[test]
    fn the_held_template_is_found_in_either_answer() {
        let composable = json!({"index_templates": [
            {"name": "logpipe-a", "index_template": {"priority": 200}}
        ]});
        assert_eq!(
            held_template("_index_template/logpipe-a", "logpipe-a", &composable),
            Some(&json!({"priority": 200}))
        );
        let legacy = json!({"logpipe-a": {"order": 200}});
        assert_eq!(
            held_template("_template/logpipe-a", "logpipe-a", &legacy),
            Some(&json!({"order": 200}))
        );
        assert_eq!(
            held_template("_template/logpipe-a", "logpipe-a", &json!({})),
            None
        );
    }

    #[test]
    fn check_lines_say_in_place_or_why_not() {
        let ok = Checked {
            what: "template _index_template/logpipe-a".into(),
            host: "http://127.0.0.1:9200/".into(),
            drift: None,
        };
        assert_eq!(
            ok.to_string(),
            "template _index_template/logpipe-a at http://127.0.0.1:9200/: in place"
        );
        let drift = Checked {
            drift: Some("missing".into()),
            ..ok
        };
        assert_eq!(
            drift.to_string(),
            "template _index_template/logpipe-a at http://127.0.0.1:9200/: DRIFT: missing"
        );
    }
}
