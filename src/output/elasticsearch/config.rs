//! `[[output]] type = "elasticsearch"`: its settings and their validation.
//! Secrets (passwords, API keys) are held in [`Secret`], whose `Debug` and
//! `Display` never show the value, so they cannot leak into logs, errors or
//! `logpipe check` output.
//!
//! [`Secret`]: crate::config::types::Secret

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::bulk::Action;
use super::concurrency::Mode;
use super::stats::Counters;
use crate::config::types::{Seconds, Secret, StringList};
use crate::config::ConfigCx;
use crate::template::Template;

/// `[[output]] type = "elasticsearch"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// URLs, a list or one comma-separated string; `10.0.0.72:9200` means
    /// `http://10.0.0.72:9200`. Requests go round-robin to the hosts that
    /// are up; a host that fails is skipped until a probe finds it back.
    pub hosts: Spanned<StringList>,
    /// Index name template, e.g. `httpd_access-%{+YYYY.MM.dd}` (from the
    /// event's `@timestamp`, in UTC). Set this or `data_stream`.
    pub index: Option<Spanned<String>>,
    /// Write to a data stream instead of an index: its name
    /// (`"logs-apache.access-default"`), or `true` for the name made of
    /// `data_stream_type`, `data_stream_dataset` and
    /// `data_stream_namespace`, as Logstash names it. Every event needs
    /// `@timestamp`; the action is `create`; the index template (with
    /// `data_stream: {}`) is installed when the output starts unless
    /// `setup = false`.
    pub data_stream: Option<Spanned<DataStreamSetting>>,
    /// The data stream's type (default `logs`).
    pub data_stream_type: Option<Spanned<String>>,
    /// The data stream's dataset (default `generic`).
    pub data_stream_dataset: Option<Spanned<String>>,
    /// The data stream's namespace (default `default`).
    pub data_stream_namespace: Option<Spanned<String>>,
    /// `create` (default: a replayed id answers 409 and counts as indexed) or
    /// `index` (overwrite).
    pub action: Option<Spanned<Action>>,
    /// Document id template; default `%{[@metadata][_id]}`, the origin id.
    /// Events without it get an id from Elasticsearch.
    pub document_id: Option<Spanned<String>>,
    /// Flush a bulk request at this many events (default 1000) …
    pub batch_events: Option<Spanned<usize>>,
    /// … or this many bytes (default 5 MiB) …
    pub batch_bytes: Option<Spanned<usize>>,
    /// … or when the oldest event waited this long (default 1s).
    pub batch_wait: Option<Seconds>,
    /// The most bulk requests sent at the same time (default 8, or
    /// `request_concurrency` when that is a number). Memory held is about
    /// `(max_in_flight + 1) × batch_bytes`.
    pub max_in_flight: Option<Spanned<usize>>,
    /// `"adaptive"` (default): how many requests are in flight follows the
    /// cluster's answers, from 1 up to `max_in_flight`: one more while
    /// answers come as fast as usual, fewer on 429, 503, timeouts or rising
    /// latency. Or a fixed number of requests, at most `max_in_flight`.
    pub request_concurrency: Option<Spanned<RequestConcurrency>>,
    /// Gzip request bodies (default false).
    #[serde(default)]
    pub compression: bool,
    /// Timeout of one bulk request (default 60s); a request that times out
    /// is sent again to the next host.
    pub timeout: Option<Seconds>,
    /// How often a host marked down is probed with `GET /` (default 5s);
    /// also how long senders wait, when every host is down, before they
    /// send a request to one anyway.
    pub probe_interval: Option<Seconds>,
    /// How long a probe waits for the answer (default: `timeout`). A host
    /// that answers requests in time must answer its probe in time too, or
    /// it would stay marked down.
    pub probe_timeout: Option<Seconds>,
    /// Basic-auth user name.
    pub user: Option<String>,
    /// Basic-auth password; write `"${ES_PASSWORD}"` to take it from the
    /// environment rather than the file.
    pub password: Option<Secret>,
    /// A file holding the basic-auth password (trailing newline ignored),
    /// e.g. a systemd credential.
    pub password_file: Option<String>,
    /// API key, as Elasticsearch returns it encoded (`base64(id:key)`); sent
    /// as `Authorization: ApiKey …`. Use `"${ES_API_KEY}"`.
    pub api_key: Option<Secret>,
    /// PEM file of the CA certificate(s) to trust besides the system roots.
    pub ca: Option<String>,
    /// PEM client certificate (chain) for mutual TLS; needs `client_key`.
    pub client_cert: Option<String>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<String>,
    /// Install the index template (as `logpipe setup` does) when the output
    /// starts (default false; true with `data_stream`, which cannot work
    /// without its template).
    pub setup: Option<bool>,
    /// Delete each index this long after it was created (`"30d"`), by a
    /// lifecycle policy `logpipe setup` installs: ISM on OpenSearch, ILM on
    /// Elasticsearch. Default: indices are kept.
    pub retention: Option<Spanned<Seconds>>,
}

/// `data_stream = "name"` or `data_stream = true`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum DataStreamSetting {
    Enabled(bool),
    Name(String),
}

/// The most requests in flight when `request_concurrency` is adaptive and
/// `max_in_flight` is not set. Eight requests of 5 MiB keep at most ~45 MiB
/// per output in memory, and are as many as a small cluster's write pools
/// (one thread per core) usually take with gain: the adaptive limit finds
/// where below that it stops helping. The old fixed default was 2.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 8;

/// `request_concurrency = "adaptive"` or a number of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestConcurrency {
    Adaptive,
    Fixed(usize),
}

impl<'de> Deserialize<'de> for RequestConcurrency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, Visitor};
        struct V;
        impl Visitor<'_> for V {
            type Value = RequestConcurrency;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"adaptive\" or a number of requests (at least 1)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v == "adaptive" {
                    Ok(RequestConcurrency::Adaptive)
                } else {
                    Err(E::custom(format!(
                        "invalid request_concurrency `{v}`: expected \"adaptive\" or a number of requests (at least 1)"
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match usize::try_from(v) {
                    Ok(n) if n >= 1 => Ok(RequestConcurrency::Fixed(n)),
                    _ => Err(E::custom(
                        "request_concurrency must be \"adaptive\" or at least 1",
                    )),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_any(V)
    }
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic { user: String, password: Password },
    ApiKey(Secret),
}

/// Where a basic-auth password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    Given(Secret),
    /// Read when the client is built, so `check` never reads the secret.
    File(PathBuf),
}

/// TLS material beyond the system roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    pub ca: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// A validated Elasticsearch output.
#[derive(Debug, Clone)]
pub struct Elasticsearch {
    pub hosts: Vec<reqwest::Url>,
    pub index: Template,
    pub action: Action,
    pub document_id: Template,
    pub batch_events: usize,
    pub batch_bytes: usize,
    pub batch_wait: Duration,
    /// The upper bound of requests in flight, adaptive or not.
    pub max_in_flight: usize,
    /// Adaptive up to `max_in_flight`, or fixed.
    pub concurrency: Mode,
    pub compression: bool,
    pub timeout: Duration,
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
    pub auth: Auth,
    pub tls: Tls,
    pub setup: bool,
    /// Whether `index` names a data stream (`data_stream`).
    pub data_stream: bool,
    /// `retention`, whole seconds of at least 1.
    pub retention: Option<Duration>,
    /// Shared by every clone: what this output did so far.
    pub counters: Arc<Counters>,
}

impl Config {
    pub fn validate(self, cx: &mut ConfigCx<'_>) -> Option<Elasticsearch> {
        let mut ok = true;
        let mut hosts = Vec::new();
        let mut url_auth = None;
        for host in &self.hosts.get_ref().0 {
            match parse_host(host) {
                Ok((url, auth)) => {
                    url_auth = url_auth.or(auth);
                    hosts.push(url);
                }
                // The host text may carry a password: name only the error.
                Err(e) => {
                    cx.error(
                        &self.hosts.span(),
                        format!("invalid Elasticsearch host: {e}"),
                    );
                    ok = false;
                }
            }
        }
        if self.hosts.get_ref().0.is_empty() {
            cx.error(
                &self.hosts.span(),
                "`hosts` must name at least one Elasticsearch URL",
            );
            ok = false;
        }
        let target = self.target(cx, &mut ok);
        let index = target.as_ref().and_then(|(t, _)| cx.template(t));
        let data_stream = target.as_ref().is_some_and(|(_, ds)| *ds);
        let action = self
            .action
            .as_ref()
            .map_or(Action::Create, |a| *a.get_ref());
        if let (true, Some(a)) = (data_stream, &self.action) {
            if *a.get_ref() != Action::Create {
                cx.error(
                    &a.span(),
                    "a data stream takes `create` only: remove `action` or set it to \"create\"",
                );
                ok = false;
            }
        }
        let document_id = match &self.document_id {
            Some(t) => cx.template(t),
            None => Template::parse("%{[@metadata][_id]}").ok(),
        };
        let concurrency = self
            .request_concurrency
            .as_ref()
            .map_or(RequestConcurrency::Adaptive, |c| *c.get_ref());
        let default_max = match concurrency {
            RequestConcurrency::Adaptive => DEFAULT_MAX_IN_FLIGHT,
            RequestConcurrency::Fixed(n) => n,
        };
        let max_in_flight =
            cx.at_least_one(self.max_in_flight.as_ref(), "max_in_flight", default_max);
        ok &= max_in_flight.is_some();
        if let (Some(c), Some(max)) = (&self.request_concurrency, max_in_flight) {
            if let RequestConcurrency::Fixed(n) = c.get_ref() {
                if *n > max {
                    cx.error(
                        &c.span(),
                        format!("request_concurrency = {n} is more than max_in_flight = {max}"),
                    );
                    ok = false;
                }
            }
        }
        let batch_events = cx.at_least_one(self.batch_events.as_ref(), "batch_events", 1000);
        let batch_bytes =
            cx.at_least_one(self.batch_bytes.as_ref(), "batch_bytes", 5 * 1024 * 1024);
        ok &= batch_events.is_some() && batch_bytes.is_some();
        let max_in_flight = max_in_flight.unwrap_or(1);
        let auth = self.auth(url_auth, cx, &mut ok);
        let tls = Tls {
            ca: self.ca.as_deref().map(|p| cx.path(p)),
            client_cert: self.client_cert.as_deref().map(|p| cx.path(p)),
            client_key: self.client_key.as_deref().map(|p| cx.path(p)),
        };
        if tls.client_cert.is_some() != tls.client_key.is_some() {
            cx.error(
                &self.hosts.span(),
                "`client_cert` and `client_key` go together: set both or neither",
            );
            ok = false;
        }
        let retention = self.retention(target.as_ref(), cx, &mut ok);
        let (index, document_id) = (index?, document_id?);
        let timeout = self.timeout.map_or(Duration::from_secs(60), |s| s.0);
        ok.then(|| Elasticsearch {
            hosts,
            index,
            action,
            document_id,
            batch_events: batch_events.unwrap_or(1),
            batch_bytes: batch_bytes.unwrap_or(1),
            batch_wait: self.batch_wait.map_or(Duration::from_secs(1), |s| s.0),
            max_in_flight,
            concurrency: match concurrency {
                RequestConcurrency::Adaptive => Mode::Adaptive { max: max_in_flight },
                RequestConcurrency::Fixed(n) => Mode::Fixed(n),
            },
            compression: self.compression,
            timeout,
            probe_timeout: self.probe_timeout.map_or(timeout, |s| s.0),
            probe_interval: self
                .probe_interval
                .map_or(Duration::from_secs(5), |s| s.0)
                .max(Duration::from_millis(10)),
            auth,
            tls,
            setup: self.setup.unwrap_or(data_stream),
            data_stream,
            retention,
            counters: Arc::default(),
        })
    }

    /// Where events go: the `index` template, or the data stream's name
    /// (true), with the span to name in errors. Exactly one of the two.
    fn target(&self, cx: &mut ConfigCx<'_>, ok: &mut bool) -> Option<(Spanned<String>, bool)> {
        let parts = [
            &self.data_stream_type,
            &self.data_stream_dataset,
            &self.data_stream_namespace,
        ];
        let enabled = matches!(
            self.data_stream.as_ref().map(Spanned::get_ref),
            Some(DataStreamSetting::Enabled(true))
        );
        if !enabled {
            for part in parts.iter().copied().flatten() {
                cx.error(
                    &part.span(),
                    "`data_stream_type`, `data_stream_dataset` and `data_stream_namespace` \
                     name a data stream: they need `data_stream = true`",
                );
                *ok = false;
            }
        }
        let stream = match self.data_stream.as_ref() {
            Some(ds) if !matches!(ds.get_ref(), DataStreamSetting::Enabled(false)) => {
                Some((ds.span(), data_stream_name(ds, parts, cx, ok)?))
            }
            _ => None,
        };
        match (&self.index, stream) {
            (Some(index), None) => Some((index.clone(), false)),
            (None, Some((span, name))) => Some((Spanned::new(span, name), true)),
            (Some(index), Some(_)) => {
                cx.error(
                    &index.span(),
                    "set `index` or `data_stream`, not both: a data stream is its own index name",
                );
                *ok = false;
                None
            }
            (None, None) => {
                cx.error(
                    &self.hosts.span(),
                    "this output needs `index` (e.g. \"httpd_access-%{+YYYY.MM.dd}\") or `data_stream`",
                );
                *ok = false;
                None
            }
        }
    }

    /// `retention`: whole seconds, at least one; a warning when `index`
    /// has no date, since the policy deletes whole indices (a data stream
    /// rolls over by itself, so it needs none).
    fn retention(
        &self,
        target: Option<&(Spanned<String>, bool)>,
        cx: &mut ConfigCx<'_>,
        ok: &mut bool,
    ) -> Option<Duration> {
        let retention = self.retention.as_ref()?;
        let value = retention.get_ref().0;
        if value < Duration::from_secs(1) || value.subsec_nanos() != 0 {
            cx.error(
                &retention.span(),
                "`retention` must be a whole number of seconds, at least 1s (e.g. \"30d\")",
            );
            *ok = false;
            return None;
        }
        let dated = target.is_none_or(|(t, ds)| *ds || t.get_ref().contains("%{+"));
        if !dated {
            cx.warn(
                &retention.span(),
                format!(
                    "`retention` deletes whole indices by age, and `index` has no date \
                     (`%{{+YYYY.MM.dd}}`): each index it names is deleted, with all its \
                     events, {} after it was created",
                    humantime::format_duration(value)
                ),
            );
        }
        Some(value)
    }

    fn auth(
        &self,
        from_url: Option<(String, Secret)>,
        cx: &mut ConfigCx<'_>,
        ok: &mut bool,
    ) -> Auth {
        let span = self.hosts.span();
        let password = match (&self.password, &self.password_file) {
            (Some(_), Some(_)) => {
                cx.error(&span, "set `password` or `password_file`, not both");
                *ok = false;
                None
            }
            (Some(p), None) => Some(Password::Given(p.clone())),
            (None, Some(f)) => Some(Password::File(cx.path(f))),
            (None, None) => None,
        };
        match (&self.user, password, &self.api_key, from_url) {
            (Some(_), _, Some(_), _) => {
                cx.error(&span, "set `user`/`password` or `api_key`, not both");
                *ok = false;
                Auth::None
            }
            (Some(user), Some(password), None, _) => Auth::Basic {
                user: user.clone(),
                password,
            },
            (Some(_), None, None, _) => {
                cx.error(&span, "`user` needs `password` or `password_file`");
                *ok = false;
                Auth::None
            }
            (None, Some(_), _, _) => {
                cx.error(&span, "`password` needs `user`");
                *ok = false;
                Auth::None
            }
            (None, None, Some(key), _) => Auth::ApiKey(key.clone()),
            (None, None, None, Some((user, password))) => Auth::Basic {
                user,
                password: Password::Given(password),
            },
            (None, None, None, None) => Auth::None,
        }
    }
}

/// The name of the data stream `setting` asks for: given whole, or
/// `<type>-<dataset>-<namespace>` (defaults `logs`, `generic`, `default`),
/// checked against the server's rules for index names (lower case, none of
/// `\ / * ? " < > | , # :` or spaces, not starting with `-_+.`) so that a
/// bad name is a config error, not a refused request per event. Field
/// references (`%{[service]}`) may fill parts in; a date (`%{+…}`) may not:
/// a data stream rolls over by itself.
fn data_stream_name(
    setting: &Spanned<DataStreamSetting>,
    parts: [&Option<Spanned<String>>; 3],
    cx: &mut ConfigCx<'_>,
    ok: &mut bool,
) -> Option<String> {
    let mut bad = |cx: &mut ConfigCx<'_>, span: &std::ops::Range<usize>, why: String| {
        cx.error(span, why);
        *ok = false;
    };
    let name = match setting.get_ref() {
        DataStreamSetting::Name(name) => name.clone(),
        DataStreamSetting::Enabled(_) => {
            let mut out = Vec::new();
            for (part, (key, default)) in parts.into_iter().zip([
                ("data_stream_type", "logs"),
                ("data_stream_dataset", "generic"),
                ("data_stream_namespace", "default"),
            ]) {
                let text = part.as_ref().map_or(default, |p| p.get_ref().as_str());
                if text.is_empty() || literal(text).contains('-') {
                    let span = part.as_ref().map_or(setting.span(), Spanned::span);
                    bad(cx, &span, format!("`{key}` = \"{text}\": must be non-empty and without `-`, which separates the parts of the name"));
                    return None;
                }
                out.push(text);
            }
            out.join("-")
        }
    };
    let span = setting.span();
    if name.contains("%{+") {
        bad(cx, &span, format!("data stream `{name}`: a date (`%{{+…}}`) in its name would make one data stream a day; a data stream rolls over by itself (`retention`)"));
        return None;
    }
    let text = literal(&name);
    let forbidden = |c: char| "\\/*?\"<>|,#: ".contains(c) || c.is_uppercase();
    if text.is_empty() || text.starts_with(['-', '_', '+', '.']) || text.contains(forbidden) {
        bad(cx, &span, format!("data stream `{name}`: not a valid name (lower case, none of \\ / * ? \" < > | , # : or spaces, not starting with - _ + .)"));
        return None;
    }
    Some(name)
}

/// `text` without its `%{…}` references, for checks of what is literal.
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("%{") {
        out.push_str(&rest[..start]);
        rest = rest[start..]
            .find('}')
            .map_or("", |end| &rest[start + end + 1..]);
    }
    out.push_str(rest);
    out
}

/// `10.0.0.72:9200` → `http://10.0.0.72:9200/`. Credentials written in the
/// URL (`https://user:pass@host`) are taken out of it, so that the URL can
/// be logged, and returned apart.
pub fn parse_host(host: &str) -> Result<(reqwest::Url, Option<(String, Secret)>), String> {
    let with_scheme = if host.contains("://") {
        host.to_owned()
    } else {
        format!("http://{host}")
    };
    let mut url = reqwest::Url::parse(&with_scheme).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("unsupported scheme `{}`", url.scheme()));
    }
    let credentials = url
        .password()
        .map(|p| (url.username().to_owned(), Secret::new(percent_decode(p))));
    let _ = url.set_password(None);
    let _ = url.set_username("");
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok((url, credentials))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_without_a_scheme_mean_http() {
        let cases = [
            ("10.0.0.72:9200", Ok("http://10.0.0.72:9200/")),
            (
                "https://es.example:9243/prefix",
                Ok("https://es.example:9243/prefix/"),
            ),
            ("ftp://x", Err(())),
        ];
        for (text, want) in cases {
            let got = parse_host(text).map(|(u, _)| u.to_string()).map_err(|_| ());
            assert_eq!(got, want.map(str::to_owned), "{text}");
        }
    }

    #[test]
    fn credentials_in_a_host_url_are_taken_out_of_it() {
        let (url, creds) = parse_host("https://elastic:s%40cret@es.example:9200").unwrap();
        assert_eq!(url.as_str(), "https://es.example:9200/");
        let (user, password) = creds.unwrap();
        assert_eq!(user, "elastic");
        assert_eq!(password.expose(), "s@cret");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let auth = Auth::Basic {
            user: "elastic".into(),
            password: Password::Given(Secret::new("hunter2")),
        };
        let text = format!("{auth:?} {:?} {}", Secret::new("k3y"), Secret::new("k3y"));
        assert!(!text.contains("hunter2") && !text.contains("k3y"), "{text}");
        assert!(text.contains("elastic"));
    }
}
