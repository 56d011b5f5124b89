//! `useragent`: browser, OS and device from a user-agent string, in ECS
//! `user_agent.*` fields, filled as Elasticsearch's `user_agent` ingest
//! processor (which Filebeat's modules use) fills them, from the same data:
//! the uap-core regexes, matched by the `ua-parser` crate.
//!
//! ```toml
//! [[filter]]
//! type = "useragent"        # source: [user_agent][original]
//! ```
//! The same few agents make most of a web log, so results are cached.
//!
//! The rules are `useragent/regexes.yaml`, uap-core 0.18.0 as published on
//! npm (Apache-2.0, notice in `useragent/LICENSE`), built into the binary so
//! no file ships with it; to update, replace that file with a newer
//! release's. They are compiled once per process, when the first agent is
//! parsed rather than at load: compiling takes ~0.1 s, which a host that
//! only ships (and so never runs filters) should not pay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

use super::Verdict;
use crate::config::Cx;
use crate::event::Event;
use crate::template::FieldRef;

/// uap-core's rules, embedded at build time.
const REGEXES: &str = include_str!("useragent/regexes.yaml");

/// What Elasticsearch puts in `name` and `device.name` when nothing matched.
const OTHER: &str = "Other";

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
                    let Some(extractor) = extractor() else {
                        return Verdict::Keep;
                    };
                    let parsed = parse(extractor, agent);
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

/// Why the embedded regexes could not be used; only a broken vendored file
/// can cause it, which the unit tests catch.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("the bundled uap-core regexes.yaml does not parse: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("the bundled uap-core regexes do not compile: {0}")]
    Compile(#[from] ua_parser::Error),
}

fn load() -> Result<ua_parser::Extractor<'static>, LoadError> {
    let regexes: ua_parser::Regexes<'static> = serde_norway::from_str(REGEXES)?;
    Ok(ua_parser::Extractor::try_from(regexes)?)
}

/// The compiled regexes, shared by every `useragent` filter of the process;
/// `None` (logged once) if they failed to load.
fn extractor() -> Option<&'static ua_parser::Extractor<'static>> {
    static EXTRACTOR: OnceLock<Option<ua_parser::Extractor<'static>>> = OnceLock::new();
    EXTRACTOR
        .get_or_init(|| {
            let started = Instant::now();
            match load() {
                Ok(extractor) => {
                    tracing::debug!(
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "compiled the uap-core user-agent regexes"
                    );
                    Some(extractor)
                }
                Err(error) => {
                    tracing::error!(%error, "user agents will not be parsed");
                    None
                }
            }
        })
        .as_ref()
}

/// ECS fields (dotted keys under the target) for one agent, as
/// Elasticsearch's processor sets them: `name` and `device.name` always
/// ("Other" when no rule matched), `version` and the `os` fields only when
/// known.
fn parse(extractor: &ua_parser::Extractor<'_>, agent: &str) -> Map<String, Value> {
    let mut out = Map::new();
    let (ua, os, device) = extractor.extract(agent);
    let name = ua.as_ref().map(|ua| ua.family.as_ref());
    out.insert("name".into(), Value::String(or_other(name).to_owned()));
    if let Some(ua) = &ua {
        if let Some(version) = join_version([ua.major, ua.minor, ua.patch, ua.patch_minor]) {
            out.insert("version".into(), Value::String(version));
        }
    }
    if let Some(os) = os.filter(|os| !os.os.is_empty()) {
        out.insert("os.name".into(), Value::String(os.os.to_string()));
        let parts = [&os.major, &os.minor, &os.patch, &os.patch_minor].map(|p| p.as_deref());
        if let Some(version) = join_version(parts) {
            let full = format!("{} {version}", os.os);
            out.insert("os.version".into(), Value::String(version));
            out.insert("os.full".into(), Value::String(full));
        }
    }
    let device = device.as_ref().map(|d| d.device.as_ref());
    out.insert(
        "device.name".into(),
        Value::String(or_other(device).to_owned()),
    );
    out
}

fn or_other(name: Option<&str>) -> &str {
    name.filter(|n| !n.is_empty()).unwrap_or(OTHER)
}

/// `major.minor.patch.patch_minor`, up to the first missing part, as
/// Elasticsearch joins them since its fix for dangling dots
/// (elastic/elasticsearch#117213, late 2024). Before it, a part that matched
/// empty was joined too, which is why Filebeat's expected documents have
/// "50.0." for `Firefox/50.0`; uap-core 0.18's Firefox rule no longer matches
/// an empty patch there, and ua-parser treats an empty group as missing, as
/// the uap-core specification says.
fn join_version(parts: [Option<&str>; 4]) -> Option<String> {
    let mut version: Option<String> = None;
    for part in parts.into_iter().map_while(|p| p.filter(|p| !p.is_empty())) {
        match &mut version {
            Some(v) => {
                v.push('.');
                v.push_str(part);
            }
            None => version = Some(part.to_owned()),
        }
    }
    version
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
    fn the_bundled_regexes_load() {
        // A broken regexes.yaml would otherwise only show as a logged error
        // and unparsed agents at run time.
        if let Err(e) = load() {
            panic!("{e}");
        }
    }

    #[test]
    fn names_are_uap_cores_as_filebeat_expects() {
        let f = filter();
        // Cases where woothee disagreed with Filebeat's expected documents.
        let mac = run(
            &f,
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.12; rv:50.0) Gecko/20100101 Firefox/50.0",
        );
        assert_eq!(mac["name"], json!("Firefox"));
        assert_eq!(mac["version"], json!("50.0"));
        assert_eq!(
            mac["os"],
            json!({"name": "Mac OS X", "version": "10.12", "full": "Mac OS X 10.12"})
        );
        assert_eq!(mac["device"], json!({"name": "Mac"}));

        let alpha = run(
            &f,
            "Mozilla/5.0 (Windows NT 6.1; rv:15.0) Gecko/20120716 Firefox/15.0a2",
        );
        assert_eq!(alpha["name"], json!("Firefox Alpha"));
        assert_eq!(alpha["version"], json!("15.0.a2"));
        assert_eq!(
            alpha["os"],
            json!({"name": "Windows", "version": "7", "full": "Windows 7"})
        );
        assert_eq!(alpha["device"], json!({"name": "Other"}));
        assert_eq!(
            alpha["original"],
            json!("Mozilla/5.0 (Windows NT 6.1; rv:15.0) Gecko/20120716 Firefox/15.0a2")
        );

        let wget = run(&f, "Wget/1.13.4 (linux-gnu)");
        assert_eq!(wget["name"], json!("Wget"));
        assert_eq!(wget["version"], json!("1.13.4"));
        // No OS version: no `os.version` nor `os.full`.
        assert_eq!(wget["os"], json!({"name": "Linux"}));
        assert_eq!(wget["device"], json!({"name": "Other"}));

        let bot = run(
            &f,
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        );
        assert_eq!(bot["name"], json!("Googlebot"));
        assert_eq!(bot["version"], json!("2.1"));
        assert_eq!(bot["device"]["name"], json!("Spider"));
    }

    #[test]
    fn an_unknown_agent_is_other() {
        let ua = run(&filter(), "not a browser");
        assert_eq!(
            ua,
            json!({"original": "not a browser", "name": "Other", "device": {"name": "Other"}})
        );
    }

    #[test]
    fn versions_join_up_to_the_first_missing_part() {
        assert_eq!(
            join_version([Some("50"), Some("0"), None, None]).as_deref(),
            Some("50.0")
        );
        assert_eq!(
            join_version([Some("1"), None, Some("3"), None]).as_deref(),
            Some("1")
        );
        assert_eq!(
            join_version([Some("1"), Some(""), Some("3"), None]).as_deref(),
            Some("1")
        );
        assert_eq!(
            join_version([Some("54"), Some("0"), Some("2840"), Some("98")]).as_deref(),
            Some("54.0.2840.98")
        );
        assert_eq!(join_version([None, Some("1"), None, None]), None);
    }

    #[test]
    fn filters_share_one_compiled_set() {
        let (Some(a), Some(b)) = (extractor(), extractor()) else {
            panic!("the bundled regexes did not load");
        };
        assert!(std::ptr::eq(a, b));
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
