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
//! release's. They are read once per process, at the first agent parsed, and
//! each rule's regex is compiled the first time an agent may match it (see
//! `uap`): a host that only ships, or a one-line `logpipe test`, never pays
//! for all ~1,200 regexes.

mod uap;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use serde::Deserialize;
use toml::Spanned;

use super::Verdict;
use crate::config::ConfigCx;
use crate::event::FieldRef;
use crate::event::{Event, Map, Value};

/// uap-core's rules, embedded at build time.
const REGEXES: &str = include_str!("regexes.yaml");

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
    pub cache_size: Option<Spanned<usize>>,
}

#[derive(Debug, Clone)]
pub struct UserAgent {
    source: FieldRef,
    cache_size: usize,
    cache: Arc<Mutex<HashMap<String, Map>>>,
    /// Where each key of a result goes under `target`, resolved once.
    fields: Arc<[(&'static str, FieldRef)]>,
}

/// The keys [`parse`] fills.
const KEYS: [&str; 6] = [
    "name",
    "version",
    "os.name",
    "os.version",
    "os.full",
    "device.name",
];

/// `target` + `os.name` → `[user_agent][os][name]`, for every key.
fn target_fields(target: &FieldRef) -> Arc<[(&'static str, FieldRef)]> {
    KEYS.iter()
        .map(|&key| (key, target.child(key.split('.'))))
        .collect()
}

impl Config {
    pub fn validate(self, cx: &mut ConfigCx<'_>) -> Option<UserAgent> {
        let field = |cx: &mut ConfigCx<'_>, f: &Option<Spanned<String>>, default: &str| match f {
            Some(f) => cx.field(f),
            None => FieldRef::parse(default).ok(),
        };
        let source = field(cx, &self.source, "[user_agent][original]");
        let target = field(cx, &self.target, "[user_agent]");
        let cache_size = cx.at_least_one(self.cache_size.as_ref(), "cache_size", 10_000);
        Some(UserAgent {
            source: source?,
            fields: target_fields(&target?),
            cache_size: cache_size?,
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
        // A clone of the text is a reference count, not a copy.
        let agent = agent.clone();
        // A poisoned lock only means another thread panicked mid-insert; the
        // map is still usable.
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if !cache.contains_key(agent.as_str()) {
            let Some(rules) = rules() else {
                return Verdict::Keep;
            };
            if cache.len() >= self.cache_size {
                cache.clear();
            }
            cache.insert(agent.to_string(), parse(rules, &agent));
        }
        let Some(parsed) = cache.get(agent.as_str()) else {
            return Verdict::Keep;
        };
        for (key, value) in parsed {
            if let Some((_, field)) = self.fields.iter().find(|(k, _)| *k == key.as_str()) {
                event.insert(field, value.clone());
            }
        }
        Verdict::Keep
    }
}

/// The rules, shared by every `useragent` filter of the process; `None`
/// (logged once) if the bundled file could not be read.
fn rules() -> Option<&'static uap::Uap> {
    static RULES: OnceLock<Option<uap::Uap>> = OnceLock::new();
    RULES
        .get_or_init(|| {
            let started = Instant::now();
            match uap::Uap::load(REGEXES) {
                Ok(rules) => {
                    tracing::debug!(
                        rules = rules.rule_count(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "read the uap-core user-agent rules"
                    );
                    Some(rules)
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
fn parse(rules: &uap::Uap, agent: &str) -> Map {
    let mut out = Map::new();
    let (ua, os, device) = (
        rules.user_agent(agent),
        rules.os(agent),
        rules.device(agent),
    );
    let name = ua.as_ref().map(|ua| ua.family.as_ref());
    out.insert("name".into(), Value::from(or_other(name)));
    if let Some(ua) = &ua {
        if let Some(version) = join_version([ua.major, ua.minor, ua.patch, ua.patch_minor]) {
            out.insert("version".into(), Value::from(version));
        }
    }
    if let Some(os) = os.filter(|os| !os.os.is_empty()) {
        out.insert("os.name".into(), Value::from(os.os.as_ref()));
        let parts = [&os.major, &os.minor, &os.patch, &os.patch_minor].map(|p| p.as_deref());
        if let Some(version) = join_version(parts) {
            let full = format!("{} {version}", os.os);
            out.insert("os.version".into(), Value::from(version));
            out.insert("os.full".into(), Value::from(full));
        }
    }
    let device = device.as_ref().map(|d| d.device.as_ref());
    out.insert("device.name".into(), Value::from(or_other(device)));
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
            fields: target_fields(&FieldRef::parse("[user_agent]").unwrap()),
            cache_size: 2,
            cache: Arc::default(),
        }
    }

    #[test]
    fn result_keys_resolve_under_the_target_once() {
        let fields = target_fields(&FieldRef::parse("[@metadata][ua]").unwrap());
        let (key, field) = &fields[2];
        assert_eq!(*key, "os.name");
        assert_eq!(field.root(), crate::event::Root::Metadata);
        assert_eq!(field.path(), ["ua", "os", "name"]);
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
    fn every_bundled_rule_compiles() {
        // A broken regexes.yaml would otherwise only show as logged errors
        // and unparsed agents at run time.
        let rules = match uap::Uap::load(REGEXES) {
            Ok(rules) => rules,
            Err(e) => panic!("{e}"),
        };
        assert!(rules.rule_count() > 1000);
        assert!(rules.user_agent.compile_all());
        assert!(rules.os.compile_all());
        assert!(rules.device.compile_all());
    }

    #[test]
    fn lazy_rules_match_as_the_crates_full_extractor() {
        // The prefilter only skips rules that cannot match: the first
        // matching rule is the one `ua-parser` finds trying them all.
        let Some(lazy) = rules() else {
            panic!("the bundled regexes did not load");
        };
        let regexes: ua_parser::Regexes = match serde_norway::from_str(REGEXES) {
            Ok(regexes) => regexes,
            Err(e) => panic!("{e}"),
        };
        let full = match ua_parser::Extractor::try_from(regexes) {
            Ok(full) => full,
            Err(e) => panic!("{e}"),
        };
        for agent in AGENTS {
            let (ua, os, device) = full.extract(agent);
            assert_eq!(lazy.user_agent(agent), ua, "{agent}");
            assert_eq!(lazy.os(agent), os, "{agent}");
            assert_eq!(lazy.device(agent), device, "{agent}");
        }
    }

    /// Agents of the kinds a web log sees, for the test above.
    const AGENTS: &[&str] = &[
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.12; rv:50.0) Gecko/20100101 Firefox/50.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/54.0.2840.98 Safari/537.36",
        "Mozilla/5.0 (Windows NT 6.1; rv:15.0) Gecko/20120716 Firefox/15.0a2",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.68",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (iPad; CPU OS 12_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
        "Mozilla/5.0 (Linux; Android 8.0.0; SM-G960F Build/R16NW) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/62.0.3202.84 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; U; Android 2.3.5; en-us; HTC Vision Build/GRI40) AppleWebKit/533.1 (KHTML, like Gecko) Version/4.0 Mobile Safari/533.1",
        "Mozilla/5.0 (Linux; Android 7.0; Pixel C Build/NRD90M; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/52.0.2743.98 Safari/537.36",
        "Mozilla/5.0 (SMART-TV; Linux; Tizen 2.4.0) AppleWebKit/538.1 (KHTML, like Gecko) SamsungBrowser/1.1 TV Safari/538.1",
        "Mozilla/5.0 (X11; CrOS x86_64 8172.45.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.64 Safari/537.36",
        "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)",
        "Mozilla/4.08 [en] (Win98; I ;Nav)",
        "Opera/9.80 (Android; Opera Mini/11.0.1912/37.8233; U; vi) Presto/2.12.423 Version/12.16",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Wget/1.13.4 (linux-gnu)",
        "curl/8.4.0",
        "python-requests/2.31.0",
        "Go-http-client/1.1",
        "Apache-HttpClient/4.5.13 (Java/11.0.19)",
        "-",
        "",
        "not a browser",
    ];

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
    fn filters_share_one_rule_set() {
        let (Some(a), Some(b)) = (rules(), rules()) else {
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
