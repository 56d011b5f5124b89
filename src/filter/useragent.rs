//! `useragent`: browser, OS and device from a user-agent string, with the
//! `woothee` crate (a maintained dataset compiled into the binary, so no
//! file to ship or update separately), in ECS `user_agent.*` fields.
//!
//! ```toml
//! [[filter]]
//! type = "useragent"        # source: [user_agent][original]
//! ```
//! The same few agents make most of a web log, so results are cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

use super::Verdict;
use crate::config::Cx;
use crate::event::Event;
use crate::template::FieldRef;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field holding the user-agent string (default `[user_agent][original]`).
    pub source: Option<Spanned<String>>,
    /// Where `name`, `version`, `os.name`, `os.version`, `os.full` and
    /// `device.name` go (default `[user_agent]`).
    pub target: Option<Spanned<String>>,
    /// Distinct agents remembered (default 10000); the cache starts over
    /// when full.
    pub cache_size: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct UserAgent {
    source: FieldRef,
    target: FieldRef,
    cache_size: usize,
    cache: Arc<Mutex<HashMap<String, Map<String, Value>>>>,
}

impl Config {
    pub fn validate(self, cx: &mut Cx<'_>) -> Option<UserAgent> {
        let field = |cx: &mut Cx<'_>, f: &Option<Spanned<String>>, default: &str| match f {
            Some(f) => cx.field(f),
            None => FieldRef::parse(default).ok(),
        };
        let source = field(cx, &self.source, "[user_agent][original]");
        let target = field(cx, &self.target, "[user_agent]");
        Some(UserAgent {
            source: source?,
            target: target?,
            cache_size: self.cache_size.unwrap_or(10_000).max(1),
            cache: Arc::default(),
        })
    }
}

impl UserAgent {
    pub fn apply(&self, event: &mut Event) -> Verdict {
        let Some(Value::String(agent)) = event.get(&self.source) else {
            return Verdict::Keep;
        };
        if agent.is_empty() || agent == "-" {
            return Verdict::Keep;
        }
        let parsed = {
            // A poisoned lock only means another thread panicked mid-insert;
            // the map is still usable.
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get(agent.as_str()) {
                Some(parsed) => parsed.clone(),
                None => {
                    let parsed = parse(agent);
                    if cache.len() >= self.cache_size {
                        cache.clear();
                    }
                    cache.insert(agent.clone(), parsed.clone());
                    parsed
                }
            }
        };
        for (key, value) in parsed {
            let mut path = self.target.path().to_vec();
            path.extend(key.split('.').map(str::to_owned));
            let text = path.iter().map(|p| format!("[{p}]")).collect::<String>();
            let text = match self.target.root() {
                crate::template::Root::Metadata => format!("[@metadata]{text}"),
                crate::template::Root::Fields => text,
            };
            if let Ok(field) = FieldRef::parse(&text) {
                event.insert(&field, value);
            }
        }
        Verdict::Keep
    }
}

/// ECS fields (dotted keys under the target) for one agent.
fn parse(agent: &str) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(r) = woothee::parser::Parser::new().parse(agent) else {
        out.insert("name".into(), Value::String("Other".into()));
        out.insert("device.name".into(), Value::String("Other".into()));
        return out;
    };
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    let mut put = |key: &str, value: &str| {
        if known(value) {
            out.insert(key.into(), Value::String(value.to_owned()));
        }
    };
    put("name", r.name);
    put("version", r.version);
    put("os.name", r.os);
    put("os.version", &r.os_version);
    if known(r.os) && known(&r.os_version) {
        put("os.full", &format!("{} {}", r.os, r.os_version));
    }
    // uap-core's device names for the categories woothee knows.
    let device = match r.category {
        "crawler" => "Spider",
        "smartphone" | "mobilephone" => "Mobile",
        _ => "Other",
    };
    put("device.name", device);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter() -> UserAgent {
        UserAgent {
            source: FieldRef::parse("[user_agent][original]").unwrap(),
            target: FieldRef::parse("[user_agent]").unwrap(),
            cache_size: 2,
            cache: Arc::default(),
        }
    }

    fn run(filter: &UserAgent, agent: &str) -> Value {
        let mut event = Event::default();
        event.insert(
            &FieldRef::parse("[user_agent][original]").unwrap(),
            json!(agent),
        );
        filter.apply(&mut event);
        event.fields["user_agent"].clone()
    }

    #[test]
    fn browsers_and_systems_are_recognised() {
        let f = filter();
        let ua = run(
            &f,
            "Mozilla/5.0 (Windows NT 6.1; rv:15.0) Gecko/20120716 Firefox/15.0a2",
        );
        assert_eq!(ua["name"], json!("Firefox"));
        assert_eq!(ua["version"], json!("15.0"));
        assert_eq!(ua["os"]["name"], json!("Windows 7"));
        assert_eq!(
            ua["original"],
            json!("Mozilla/5.0 (Windows NT 6.1; rv:15.0) Gecko/20120716 Firefox/15.0a2")
        );
        let bot = run(
            &f,
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        );
        assert_eq!(bot["name"], json!("Googlebot"));
        assert_eq!(bot["device"]["name"], json!("Spider"));
    }

    #[test]
    fn results_are_cached_and_the_cache_stays_bounded() {
        let f = filter();
        for agent in ["curl/8.0", "Wget/1.13.4 (linux-gnu)", "curl/8.0", "x", "y"] {
            run(&f, agent);
            assert!(f.cache.lock().unwrap().len() <= 2);
        }
        assert_eq!(
            run(&f, "curl/8.0")["name"],
            run(&filter(), "curl/8.0")["name"]
        );
    }

    #[test]
    fn a_dash_or_missing_agent_is_left_alone() {
        let f = filter();
        assert_eq!(run(&f, "-"), json!({"original": "-"}));
        let mut event = Event::default();
        f.apply(&mut event);
        assert!(event.fields.is_empty());
    }
}
