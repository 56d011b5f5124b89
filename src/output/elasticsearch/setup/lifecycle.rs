//! Retention of daily indices: the lifecycle policy `logpipe setup`
//! installs for an output with `retention`, and how what a server holds is
//! compared with what logpipe would install (`logpipe setup --check`).
//!
//! OpenSearch has Index State Management (the Index Management plugin):
//! `_plugins/_ism/policies/<name>`, a policy that names the index patterns it
//! manages itself (`ism_template`), so every new index of the output's
//! pattern gets it. Elasticsearch has Index Lifecycle Management (the
//! `x-pack-ilm` module, 6.6+): `_ilm/policy/<name>`, attached through the
//! index template's `index.lifecycle.name`. Both delete an index once it is
//! `retention` old, counted from its creation. Pure: the requests are sent
//! by [`super`] (`setup.rs`).

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{Distribution, Version};

/// Which lifecycle API a server has, from its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// OpenSearch's Index State Management.
    Ism,
    /// Elasticsearch's Index Lifecycle Management.
    Ilm,
}

impl Api {
    /// ISM on any OpenSearch; ILM on Elasticsearch 6.6 and later.
    pub fn of(version: &Version) -> Result<Api, String> {
        match version.distribution {
            Distribution::OpenSearch => Ok(Api::Ism),
            Distribution::Elasticsearch if (version.major, version.minor) >= (6, 6) => Ok(Api::Ilm),
            Distribution::Elasticsearch => Err(format!(
                "`retention` needs index lifecycle management, which Elasticsearch has since 6.6 (this is {})",
                version.number
            )),
        }
    }

    /// What the server needs for this API, for error messages.
    pub fn needs(self) -> &'static str {
        match self {
            Api::Ism => "OpenSearch's Index Management plugin (opensearch-index-management)",
            Api::Ilm => "Elasticsearch's ILM (the x-pack-ilm module of the default distribution)",
        }
    }

    /// The policy's path, relative to the host.
    pub fn path(self, name: &str) -> String {
        match self {
            Api::Ism => format!("_plugins/_ism/policies/{name}"),
            Api::Ilm => format!("_ilm/policy/{name}"),
        }
    }
}

/// An age as ISM and ILM write it: the largest unit that is exact
/// (`30d`, `36h`, `90s`).
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The body of the `PUT` that installs the policy deleting the indices of
/// `pattern` once they are `retention` old.
pub fn policy_body(api: Api, pattern: &str, retention: Duration, version: &Version) -> Value {
    let age = age(retention);
    let description =
        format!("Managed by logpipe: deletes the indices `{pattern}` {age} after their creation.");
    match api {
        Api::Ism => json!({"policy": {
            "description": description,
            "default_state": "open",
            "states": [
                {"name": "open", "actions": [], "transitions": [
                    {"state_name": "delete", "conditions": {"min_index_age": age}}
                ]},
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []}
            ],
            "ism_template": [{"index_patterns": [pattern], "priority": 200}]
        }}),
        Api::Ilm => {
            let mut policy = json!({"phases": {
                "delete": {"min_age": age, "actions": {"delete": {}}}
            }});
            // `_meta` in a policy: Elasticsearch 7.14 and later
            if (version.major, version.minor) >= (7, 14) {
                policy["_meta"] = json!({"managed_by": "logpipe", "description": description});
            }
            json!({ "policy": policy })
        }
    }
}

/// How old a data stream's write index gets before it rolls over: a day,
/// or the retention when that is shorter (the write index itself cannot
/// be deleted, so it must have rolled over by then).
pub fn rollover_age(retention: Duration) -> Duration {
    retention.min(Duration::from_secs(86_400))
}

/// The body of the policy for a data stream: its write index rolls over
/// once a day (see [`rollover_age`]; ILM also at 50 GB a primary shard),
/// and each backing index is deleted `retention` after its creation (ISM)
/// or its rollover (ILM, whose ages count from there).
pub fn stream_policy_body(
    api: Api,
    pattern: &str,
    retention: Duration,
    version: &Version,
) -> Value {
    let age = age(retention);
    let roll = self::age(rollover_age(retention));
    let description = format!(
        "Managed by logpipe: the data streams `{pattern}` roll over every {roll}; \
         each backing index is deleted {age} later."
    );
    match api {
        Api::Ism => json!({"policy": {
            "description": description,
            "default_state": "hot",
            "states": [
                {"name": "hot", "actions": [{"rollover": {"min_index_age": roll}}], "transitions": [
                    {"state_name": "delete", "conditions": {"min_index_age": age}}
                ]},
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []}
            ],
            // ISM matches a backing index by its data stream's name
            "ism_template": [{"index_patterns": [pattern], "priority": 200}]
        }}),
        Api::Ilm => {
            // max_primary_shard_size: Elasticsearch 7.13 and later
            let size = if (version.major, version.minor) >= (7, 13) {
                json!({"max_age": roll, "max_primary_shard_size": "50gb"})
            } else {
                json!({"max_age": roll, "max_size": "50gb"})
            };
            let mut policy = json!({"phases": {
                "hot": {"min_age": "0ms", "actions": {"rollover": size}},
                "delete": {"min_age": age, "actions": {"delete": {}}}
            }});
            if (version.major, version.minor) >= (7, 14) {
                policy["_meta"] = json!({"managed_by": "logpipe", "description": description});
            }
            json!({ "policy": policy })
        }
    }
}

/// The index settings that attach the policy `name` to new indices through
/// the index template: ILM's `index.lifecycle.name`. ISM attaches its
/// policies itself (`ism_template`), so none there.
pub fn template_settings(api: Api, name: &str) -> Option<Value> {
    match api {
        Api::Ilm => Some(json!({"lifecycle": {"name": name}})),
        Api::Ism => None,
    }
}

/// What a `GET` of the policy found.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// The policy as the server holds it (the object `policy_body` puts
    /// under `policy`), and for ISM the `if_seq_no` / `if_primary_term` an
    /// update must name.
    Present {
        policy: Value,
        version: Option<(u64, u64)>,
    },
    Missing,
    /// The server has no such API: the lifecycle plugin is not installed.
    NoApi,
}

/// Reads the answer to `GET <api.path(name)>`. A 404 is a missing policy,
/// unless it is Elasticsearch's document API answering for an index named
/// `_ilm` (`index_not_found_exception`: no ILM there); a 400 or 405 is an
/// endpoint the server does not have (OpenSearch without ISM answers "no
/// handler found").
pub fn read_get(api: Api, name: &str, status: u16, body: &Value) -> Result<Found, String> {
    match status {
        200 => {}
        404 if body["error"]["type"] == "index_not_found_exception" => return Ok(Found::NoApi),
        404 => return Ok(Found::Missing),
        400 | 405 | 501 => return Ok(Found::NoApi),
        _ => return Err(format!("HTTP {status}: {}", excerpt(body))),
    }
    let found = match api {
        // GET answers {"_id", "_seq_no", "_primary_term", "policy": {...}};
        // PUT answers the same with "policy": {"policy": {...}}
        Api::Ism => {
            let policy = match &body["policy"]["policy"] {
                Value::Object(_) => &body["policy"]["policy"],
                _ => &body["policy"],
            };
            let version = body["_seq_no"].as_u64().zip(body["_primary_term"].as_u64());
            policy.is_object().then(|| Found::Present {
                policy: policy.clone(),
                version,
            })
        }
        // {"<name>": {"version": 1, "modified_date": …, "policy": {...}}}
        Api::Ilm => {
            let policy = &body[name]["policy"];
            policy.is_object().then(|| Found::Present {
                policy: policy.clone(),
                version: None,
            })
        }
    };
    found.ok_or_else(|| format!("unreadable answer: {}", excerpt(body)))
}

/// How the policy the server holds departs from `wanted` (a
/// [`policy_body`]), or `None` when it is in place.
pub fn policy_difference(api: Api, wanted: &Value, held: &Value) -> Option<String> {
    let wanted = &wanted["policy"];
    if let Some(d) = difference("policy", wanted, held) {
        return Some(d);
    }
    // ILM phases are an object: one more phase (a warm phase added by
    // hand) changes what the policy does, though it adds keys only.
    if api == Api::Ilm {
        let names = |v: &Value| -> Vec<String> {
            v["phases"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        let (w, h) = (names(wanted), names(held));
        if w != h {
            return Some(format!(
                "`policy.phases` are [{}] on the server, logpipe's are [{}]",
                h.join(", "),
                w.join(", ")
            ));
        }
    }
    None
}

/// Where `held` departs from `wanted`: every key `wanted` has must be there
/// with the same value (what the server adds, such as ISM's `retry`
/// defaults or ILM's `delete_searchable_snapshot`, is no difference),
/// arrays must have the same length, and a number equals the string the
/// server may turn it into (`"5s"`-style settings come back as strings).
pub fn difference(at: &str, wanted: &Value, held: &Value) -> Option<String> {
    match (wanted, held) {
        (Value::Object(w), Value::Object(h)) => object_difference(at, w, h),
        (Value::Array(w), Value::Array(h)) => {
            if w.len() != h.len() {
                return Some(format!(
                    "`{at}` has {} entries on the server, logpipe's has {}",
                    h.len(),
                    w.len()
                ));
            }
            w.iter()
                .zip(h)
                .enumerate()
                .find_map(|(i, (w, h))| difference(&format!("{at}[{i}]"), w, h))
        }
        (w, h) if scalar_eq(w, h) => None,
        (w, h) => Some(format!("`{at}` is {h} on the server, logpipe's is {w}")),
    }
}

fn object_difference(at: &str, w: &Map<String, Value>, h: &Map<String, Value>) -> Option<String> {
    w.iter().find_map(|(key, w)| {
        let path = format!("{at}.{key}");
        match h.get(key) {
            Some(h) => difference(&path, w, h),
            None => Some(format!("`{path}` is missing on the server")),
        }
    })
}

fn scalar_eq(w: &Value, h: &Value) -> bool {
    match (w, h) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            *s == n.to_string()
        }
        (Value::Bool(b), Value::String(s)) | (Value::String(s), Value::Bool(b)) => {
            *s == b.to_string()
        }
        (w, h) => w == h,
    }
}

/// The first 300 characters of an answer, for an error message.
pub fn excerpt(body: &Value) -> String {
    body.to_string().chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(body: Value) -> Version {
        Version::parse(&body).unwrap()
    }

    fn opensearch() -> Version {
        version(json!({"version": {"number": "2.19.6", "distribution": "opensearch"}}))
    }

    fn elasticsearch(number: &str) -> Version {
        version(json!({"version": {"number": number}}))
    }

    const DAYS_30: Duration = Duration::from_secs(30 * 86_400);

    #[test]
    fn the_distribution_and_version_decide_the_api() {
        assert_eq!(Api::of(&opensearch()), Ok(Api::Ism));
        let v1 = version(json!({"version": {"number": "1.3.0", "distribution": "opensearch"}}));
        assert_eq!(Api::of(&v1), Ok(Api::Ism));
        assert_eq!(Api::of(&elasticsearch("7.17.29")), Ok(Api::Ilm));
        assert_eq!(Api::of(&elasticsearch("8.15.3")), Ok(Api::Ilm));
        assert_eq!(Api::of(&elasticsearch("6.6.0")), Ok(Api::Ilm));
        let old = Api::of(&elasticsearch("6.5.4")).unwrap_err();
        assert!(old.contains("6.6") && old.contains("6.5.4"), "{old}");
        assert_eq!(
            Api::Ism.path("logpipe-a"),
            "_plugins/_ism/policies/logpipe-a"
        );
        assert_eq!(Api::Ilm.path("logpipe-a"), "_ilm/policy/logpipe-a");
    }

    #[test]
    fn ages_are_written_in_their_largest_exact_unit() {
        let cases = [
            (30 * 86_400, "30d"),
            (36 * 3_600, "36h"),
            (90 * 60, "90m"),
            (90, "90s"),
            (1, "1s"),
            (86_401, "86401s"),
        ];
        for (secs, text) in cases {
            assert_eq!(age(Duration::from_secs(secs)), text, "{secs}");
        }
    }

    /// The request body of the ISM create-policy API (OpenSearch docs,
    /// "ISM API": states with transitions on `min_index_age`, a `delete`
    /// action, `ism_template` naming the index patterns of new indices).
    #[test]
    fn opensearch_gets_an_ism_policy_that_claims_the_pattern() {
        let body = policy_body(Api::Ism, "httpd_access-*", DAYS_30, &opensearch());
        assert_eq!(
            body,
            json!({"policy": {
                "description": "Managed by logpipe: deletes the indices `httpd_access-*` 30d after their creation.",
                "default_state": "open",
                "states": [
                    {"name": "open", "actions": [], "transitions": [
                        {"state_name": "delete", "conditions": {"min_index_age": "30d"}}
                    ]},
                    {"name": "delete", "actions": [{"delete": {}}], "transitions": []}
                ],
                "ism_template": [{"index_patterns": ["httpd_access-*"], "priority": 200}]
            }})
        );
        // attached by the policy itself, not through the template
        assert_eq!(template_settings(Api::Ism, "logpipe-httpd_access"), None);
    }

    /// The request body of ILM's put-lifecycle API (Elasticsearch docs:
    /// a `delete` phase whose `min_age` counts from index creation, `_meta`
    /// since 7.14), attached by `index.lifecycle.name` in the template.
    #[test]
    fn elasticsearch_gets_an_ilm_policy_named_by_the_template() {
        let body = policy_body(
            Api::Ilm,
            "httpd_access-*",
            DAYS_30,
            &elasticsearch("7.17.29"),
        );
        assert_eq!(
            body,
            json!({"policy": {
                "phases": {"delete": {"min_age": "30d", "actions": {"delete": {}}}},
                "_meta": {
                    "managed_by": "logpipe",
                    "description": "Managed by logpipe: deletes the indices `httpd_access-*` 30d after their creation."
                }
            }})
        );
        let old = policy_body(
            Api::Ilm,
            "a-*",
            Duration::from_secs(3_600),
            &elasticsearch("7.10.2"),
        );
        assert_eq!(
            old,
            json!({"policy": {"phases": {"delete": {"min_age": "1h", "actions": {"delete": {}}}}}})
        );
        assert_eq!(
            template_settings(Api::Ilm, "logpipe-httpd_access"),
            Some(json!({"lifecycle": {"name": "logpipe-httpd_access"}}))
        );
    }

    #[test]
    fn answers_to_get_tell_present_missing_and_no_api_apart() {
        // OpenSearch's ISM, as its docs show the policy (with the defaults it adds)
        let ism = json!({"_id": "logpipe-a", "_version": 2, "_seq_no": 7, "_primary_term": 1,
            "policy": {"policy_id": "logpipe-a", "description": "x", "last_updated_time": 1,
                "schema_version": 1, "error_notification": null, "default_state": "open",
                "states": [], "ism_template": null}});
        let Found::Present { policy, version } =
            read_get(Api::Ism, "logpipe-a", 200, &ism).unwrap()
        else {
            panic!("present")
        };
        assert_eq!(policy["default_state"], "open");
        assert_eq!(version, Some((7, 1)));
        // the create answer nests it once more
        let created = json!({"_id": "p", "_seq_no": 0, "_primary_term": 1,
            "policy": {"policy": {"default_state": "open"}}});
        let Found::Present { policy, .. } = read_get(Api::Ism, "p", 200, &created).unwrap() else {
            panic!("present")
        };
        assert_eq!(policy, json!({"default_state": "open"}));
        // Elasticsearch's ILM
        let ilm = json!({"logpipe-a": {"version": 1, "modified_date": "2026-12-02T10:00:00.000Z",
            "policy": {"phases": {"delete": {"min_age": "30d",
                "actions": {"delete": {"delete_searchable_snapshot": true}}}}}}});
        let Found::Present { policy, version } =
            read_get(Api::Ilm, "logpipe-a", 200, &ilm).unwrap()
        else {
            panic!("present")
        };
        assert_eq!(policy["phases"]["delete"]["min_age"], "30d");
        assert_eq!(version, None);

        let missing_ilm = json!({"error": {"type": "resource_not_found_exception",
            "reason": "Lifecycle policy not found: logpipe-a"}, "status": 404});
        assert_eq!(
            read_get(Api::Ilm, "logpipe-a", 404, &missing_ilm),
            Ok(Found::Missing)
        );
        let missing_ism = json!({"error": {"type": "status_exception", "reason": "Policy not found"},
            "status": 404});
        assert_eq!(
            read_get(Api::Ism, "logpipe-a", 404, &missing_ism),
            Ok(Found::Missing)
        );
        // what the test command's servers, without the plugins, answer
        let no_ilm = json!({"error": {"type": "index_not_found_exception",
            "reason": "no such index [_ilm]"}, "status": 404});
        assert_eq!(
            read_get(Api::Ilm, "logpipe-a", 404, &no_ilm),
            Ok(Found::NoApi)
        );
        let no_ism = json!({"error": "no handler found for uri [/_plugins/_ism/policies/logpipe-a] and method [GET]"});
        assert_eq!(
            read_get(Api::Ism, "logpipe-a", 400, &no_ism),
            Ok(Found::NoApi)
        );
        assert!(read_get(Api::Ilm, "a", 403, &json!({}))
            .unwrap_err()
            .contains("403"));
        assert!(read_get(Api::Ilm, "a", 200, &json!({"b": {}})).is_err());
    }

    #[test]
    fn what_the_server_adds_is_no_drift_but_a_changed_value_is() {
        let os = opensearch();
        let wanted = policy_body(Api::Ism, "a-*", DAYS_30, &os);
        // as ISM holds it: its own fields, `retry` defaults, a timestamp
        let mut held = wanted["policy"].clone();
        held["policy_id"] = json!("logpipe-a");
        held["last_updated_time"] = json!(1_700_000_000_000_u64);
        held["error_notification"] = Value::Null;
        held["states"][1]["actions"][0]["retry"] =
            json!({"count": 3, "backoff": "exponential", "delay": "1m"});
        held["ism_template"][0]["last_updated_time"] = json!(1_700_000_000_000_u64);
        assert_eq!(policy_difference(Api::Ism, &wanted, &held), None);

        let mut shorter = held.clone();
        shorter["states"][0]["transitions"][0]["conditions"]["min_index_age"] = json!("7d");
        assert_eq!(
            policy_difference(Api::Ism, &wanted, &shorter).unwrap(),
            "`policy.states[0].transitions[0].conditions.min_index_age` is \"7d\" on the server, logpipe's is \"30d\""
        );
        let mut more = held.clone();
        more["states"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "warm", "actions": [], "transitions": []}));
        assert!(policy_difference(Api::Ism, &wanted, &more)
            .unwrap()
            .contains("`policy.states` has 3 entries on the server, logpipe's has 2"));
        let mut other = held;
        other["ism_template"][0]["index_patterns"] = json!(["b-*"]);
        assert!(policy_difference(Api::Ism, &wanted, &other)
            .unwrap()
            .contains("index_patterns[0]"));

        let es = elasticsearch("7.17.29");
        let wanted = policy_body(Api::Ilm, "a-*", DAYS_30, &es);
        let mut held = wanted["policy"].clone();
        held["phases"]["delete"]["actions"]["delete"]["delete_searchable_snapshot"] = json!(true);
        assert_eq!(policy_difference(Api::Ilm, &wanted, &held), None);
        let mut warm = held.clone();
        warm["phases"]["warm"] = json!({"min_age": "2d", "actions": {}});
        assert_eq!(
            policy_difference(Api::Ilm, &wanted, &warm).unwrap(),
            "`policy.phases` are [delete, warm] on the server, logpipe's are [delete]"
        );
        let mut no_delete = held;
        no_delete["phases"]["delete"]["actions"] = json!({});
        assert_eq!(
            policy_difference(Api::Ilm, &wanted, &no_delete).unwrap(),
            "`policy.phases.delete.actions.delete` is missing on the server"
        );
    }

    #[test]
    fn numbers_equal_the_strings_servers_turn_them_into() {
        assert_eq!(difference("s", &json!({"n": 1}), &json!({"n": "1"})), None);
        assert_eq!(
            difference("s", &json!({"b": true}), &json!({"b": "true"})),
            None
        );
        assert_eq!(difference("s", &json!({"n": 1}), &json!({"n": 1.0})), None);
        assert!(difference("s", &json!({"n": 1}), &json!({"n": "2"})).is_some());
        assert!(difference("s", &json!({"n": 1}), &json!({"n": null})).is_some());
    }
}
