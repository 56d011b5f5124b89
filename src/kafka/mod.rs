//! The `[kafka]` hop of a pipeline: shared settings of its two halves, the
//! producer (the ship half, [`crate::output::kafka`]) and the consumer group
//! (the index half, [`crate::input::kafka`]), and the message codec.

pub mod admin;
pub mod codec;
pub mod context;
pub mod instance;
pub mod producer;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use serde::Deserialize;
use toml::Spanned;

use crate::config::types::{Seconds, Secret, StringList};
use crate::config::ConfigCx;
use crate::template::Template;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsetReset {
    Earliest,
    Latest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// `group_protocol`: how the consumer group assigns partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupProtocol {
    /// KIP-848: the broker assigns, incrementally; no stop-the-world
    /// rebalance (Kafka 4.0+).
    Consumer,
    /// The classic protocol, with the `cooperative-sticky` assignor.
    Classic,
}

impl GroupProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupProtocol::Consumer => "consumer",
            GroupProtocol::Classic => "classic",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Filebeat-shaped JSON documents (default).
    Json,
    /// The record is the message text.
    Plain,
}

/// `acks`: `"all"`, `-1`, `0` or `1`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AcksSetting {
    Number(i64),
    Text(String),
}

/// `[kafka.tls]`: TLS to the brokers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificate (PEM) to verify the brokers; default: the system store.
    pub ca: Option<String>,
    /// Client certificate (PEM), for brokers that require one.
    pub cert: Option<String>,
    /// Client key (PEM).
    pub key: Option<String>,
    /// Password of the client key.
    pub key_password: Option<Secret>,
}

/// `[kafka.sasl]`: SASL authentication (over TLS when `[kafka.tls]` is set).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaslConfig {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: Spanned<String>,
    pub username: String,
    /// Use `${VAR}` to keep it out of the file, or `password_file`.
    pub password: Option<Secret>,
    /// A file holding the password (trailing newline ignored).
    pub password_file: Option<String>,
}

/// `[kafka]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HopConfig {
    /// Bootstrap brokers: a list, or one comma-separated string. An entry
    /// without a port gets 9092.
    pub brokers: Spanned<StringList>,
    /// The topic events are shipped to; may be a template
    /// (`%{[fields][log_type]}`).
    pub topic: Spanned<String>,
    /// Topics the index half consumes (names, or regexes starting with `^`);
    /// default: `topic`, which must then be static.
    pub topics: Option<Spanned<StringList>>,
    /// Message key template; default none (librdkafka's sticky partitioner).
    pub key: Option<Spanned<String>>,
    /// Consumer group; default `logpipe-<pipeline name>`.
    pub group_id: Option<String>,
    pub client_id: Option<String>,
    /// Where a new group starts: `earliest` (default) or `latest`.
    pub auto_offset_reset: Option<Spanned<OffsetReset>>,
    /// `all` (default), `1` or `0`.
    pub acks: Option<Spanned<AcksSetting>>,
    /// Idempotent producer (default true; needs acks = all).
    pub idempotence: Option<bool>,
    /// `none`, `gzip`, `snappy`, `lz4` (default) or `zstd`.
    pub compression: Option<Compression>,
    /// Static group membership (KIP-345; default true): a member that
    /// restarts within the session timeout gets its partitions back without
    /// a rebalance of the group.
    pub static_membership: Option<Spanned<bool>>,
    /// `group.instance.id`; default `<host name>-<pipeline name>`, with
    /// characters Kafka does not allow replaced by `_`.
    pub group_instance_id: Option<Spanned<String>>,
    /// `consumer` (KIP-848; the default, falling back to `classic` on a
    /// broker without it) or `classic` (with `cooperative-sticky`).
    pub group_protocol: Option<Spanned<GroupProtocol>>,
    /// Consumer group session timeout (default 10s). Classic protocol only:
    /// under `consumer` the broker sets it (`group.consumer.session.timeout.ms`).
    pub session_timeout: Option<Spanned<Seconds>>,
    /// Consumer group heartbeat interval (default 3s, or a third of a
    /// shorter session timeout). Classic protocol only, as `session_timeout`.
    pub heartbeat_interval: Option<Spanned<Seconds>>,
    /// When partitions are revoked, how long to wait for their in-flight
    /// events to be acknowledged before committing (default 10s).
    pub revoke_timeout: Option<Seconds>,
    /// Producer: how long to wait for more messages to fill a batch (default 5ms).
    pub linger: Option<Seconds>,
    /// Producer: largest batch per partition in bytes (librdkafka `batch.size`).
    pub batch_size: Option<Spanned<usize>>,
    /// Producer: memory for queued messages in KiB (default 32768: 32 MiB).
    pub queue_max_kbytes: Option<Spanned<usize>>,
    /// Largest message in bytes (librdkafka `message.max.bytes`, default
    /// 1000000); larger events go to the dead-letter file.
    pub message_max_bytes: Option<Spanned<usize>>,
    pub tls: Option<TlsConfig>,
    pub sasl: Option<SaslConfig>,
    /// `json` (default) or `plain`.
    pub codec: Option<Codec>,
    /// Adds `[@metadata][kafka]` (topic, partition, offset, key, timestamp).
    #[serde(default)]
    pub decorate_events: bool,
    /// Partitions for `logpipe topics ensure` and `ensure_topic`.
    pub partitions: Option<i32>,
    /// Replication factor for `logpipe topics ensure` and `ensure_topic`.
    pub replication_factor: Option<i32>,
    /// Create the topic at start if it is missing.
    #[serde(default)]
    pub ensure_topic: bool,
    /// Extra librdkafka properties for both halves, passed as they are.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Extra librdkafka properties for the producer only.
    #[serde(default)]
    pub producer: BTreeMap<String, String>,
    /// Extra librdkafka properties for the consumer only.
    #[serde(default)]
    pub consumer: BTreeMap<String, String>,
}

/// A validated hop. Its `Debug` leaves secrets out.
#[derive(Clone)]
pub struct Hop {
    pub brokers: Vec<String>,
    pub topic: Template,
    pub topics: Vec<String>,
    pub key: Option<Template>,
    pub group_id: String,
    /// `group.instance.id` (static membership), or none.
    pub group_instance_id: Option<InstanceId>,
    pub group_protocol: GroupProtocol,
    /// Whether `group_protocol` was set: a protocol chosen by default falls
    /// back to `classic` on a broker without KIP-848; a chosen one does not.
    pub group_protocol_set: bool,
    pub client_id: String,
    pub auto_offset_reset: OffsetReset,
    pub acks: i64,
    pub idempotence: bool,
    pub compression: Compression,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub revoke_timeout: Duration,
    pub linger: Duration,
    pub batch_size: Option<usize>,
    pub queue_max_kbytes: usize,
    pub message_max_bytes: Option<usize>,
    /// librdkafka security settings other than secrets.
    pub security: BTreeMap<String, String>,
    /// Secret librdkafka settings (`sasl.password`, `ssl.key.password`).
    pub secrets: BTreeMap<String, Secret>,
    pub codec: Codec,
    pub decorate_events: bool,
    pub partitions: i32,
    pub replication_factor: i32,
    pub ensure_topic: bool,
    pub properties: BTreeMap<String, String>,
    pub producer: BTreeMap<String, String>,
    pub consumer: BTreeMap<String, String>,
}

impl HopConfig {
    pub fn validate(self, cx: &mut ConfigCx<'_>) -> Option<Hop> {
        let mut ok = true;
        // Sizes that may be left unset, but never 0 (librdkafka would
        // refuse it at start, or take it as "no limit").
        for (value, name) in [
            (&self.batch_size, "batch_size"),
            (&self.queue_max_kbytes, "queue_max_kbytes"),
            (&self.message_max_bytes, "message_max_bytes"),
        ] {
            if let Some(n) = value {
                ok &= cx.at_least_one(Some(n), name, 1).is_some();
            }
        }
        let brokers: Vec<String> = self
            .brokers
            .get_ref()
            .0
            .iter()
            .map(|b| with_default_port(b, 9092))
            .collect();
        if brokers.is_empty() {
            cx.error(
                &self.brokers.span(),
                "`brokers` must name at least one broker",
            );
            ok = false;
        }
        let topic = cx.template(&self.topic);
        let topics = match &self.topics {
            Some(list) => list.get_ref().0.clone(),
            None => match &topic {
                Some(t) if t.is_static() => vec![t.as_str().to_owned()],
                Some(_) => {
                    cx.error(
                        &self.topic.span(),
                        "a templated topic cannot be consumed as such: list the topics to consume in `topics`",
                    );
                    ok = false;
                    Vec::new()
                }
                None => Vec::new(),
            },
        };
        let key = match &self.key {
            Some(k) => Some(cx.template(k)?),
            None => None,
        };
        let idempotence = self.idempotence.unwrap_or(true);
        let acks = match &self.acks {
            None => -1,
            Some(setting) => {
                let value = match setting.get_ref() {
                    AcksSetting::Number(n @ -1..=1) => Some(*n),
                    AcksSetting::Text(t) if t == "all" || t == "-1" => Some(-1),
                    AcksSetting::Text(t) if t == "0" || t == "1" => t.parse().ok(),
                    _ => None,
                };
                match value {
                    Some(v) => v,
                    None => {
                        cx.error(
                            &setting.span(),
                            "invalid acks (expected \"all\", -1, 0 or 1)",
                        );
                        ok = false;
                        -1
                    }
                }
            }
        };
        if acks != -1 && idempotence {
            if let Some(setting) = &self.acks {
                cx.error(
                    &setting.span(),
                    format!("acks = {acks} cannot be combined with idempotence = true: the idempotent producer needs acks = \"all\" (librdkafka refuses it); set idempotence = false to accept possible loss or duplicates"),
                );
                ok = false;
            }
        }
        if let Some(reset) = &self.auto_offset_reset {
            if *reset.get_ref() == OffsetReset::Latest {
                cx.warn(
                    &reset.span(),
                    "auto_offset_reset = \"latest\": a new consumer group skips everything shipped before it joined",
                );
            }
        }
        let partitions = self.partitions.unwrap_or(1);
        let replication_factor = self.replication_factor.unwrap_or(1);
        if partitions < 1 || replication_factor < 1 {
            cx.error(
                &self.topic.span(),
                "partitions and replication_factor must be at least 1",
            );
            ok = false;
        }
        let (security, secrets) = match security(&self.tls, &self.sasl, cx) {
            Some(v) => v,
            None => {
                ok = false;
                Default::default()
            }
        };
        let group_protocol = self.group_protocol.as_ref().map(|p| *p.get_ref());
        if group_protocol == Some(GroupProtocol::Consumer) {
            for (name, setting) in [
                ("session_timeout", &self.session_timeout),
                ("heartbeat_interval", &self.heartbeat_interval),
            ] {
                if let Some(s) = setting {
                    cx.warn(
                        &s.span(),
                        format!("{name} has no effect with group_protocol = \"consumer\": the broker sets it (group.consumer.session.timeout.ms, group.consumer.heartbeat.interval.ms)"),
                    );
                }
            }
            for key in CLASSIC_ONLY {
                if self.consumer.contains_key(*key) || self.properties.contains_key(*key) {
                    cx.error(
                        &self.topic.span(),
                        format!("librdkafka refuses `{key}` with group_protocol = \"consumer\" (the broker decides it); remove it or set group_protocol = \"classic\""),
                    );
                    ok = false;
                }
            }
        }
        let group_instance_id = match instance_id(&self, cx) {
            Ok(id) => id,
            Err(()) => {
                ok = false;
                None
            }
        };
        let session_timeout = self
            .session_timeout
            .as_ref()
            .map_or(Duration::from_secs(10), |s| s.get_ref().0);
        let topic = topic?;
        ok.then(|| Hop {
            brokers,
            topic,
            topics,
            key,
            group_id: self
                .group_id
                .unwrap_or_else(|| format!("logpipe-{}", cx.pipeline)),
            group_instance_id,
            group_protocol: group_protocol.unwrap_or(GroupProtocol::Consumer),
            group_protocol_set: group_protocol.is_some(),
            client_id: self
                .client_id
                .unwrap_or_else(|| format!("logpipe-{}", crate::host::name())),
            auto_offset_reset: self
                .auto_offset_reset
                .map_or(OffsetReset::Earliest, |r| r.into_inner()),
            acks,
            idempotence,
            compression: self.compression.unwrap_or(Compression::Lz4),
            session_timeout,
            heartbeat_interval: self
                .heartbeat_interval
                .map_or((session_timeout / 3).min(Duration::from_secs(3)), |s| {
                    s.into_inner().0
                }),
            revoke_timeout: self.revoke_timeout.map_or(Duration::from_secs(10), |s| s.0),
            linger: self.linger.map_or(Duration::from_millis(5), |s| s.0),
            batch_size: self.batch_size.map(Spanned::into_inner),
            queue_max_kbytes: self.queue_max_kbytes.map_or(32768, Spanned::into_inner),
            message_max_bytes: self.message_max_bytes.map(Spanned::into_inner),
            security,
            secrets,
            codec: self.codec.unwrap_or(Codec::Json),
            decorate_events: self.decorate_events,
            partitions,
            replication_factor,
            ensure_topic: self.ensure_topic,
            properties: self.properties,
            producer: self.producer,
            consumer: self.consumer,
        })
    }
}

/// librdkafka properties of the classic protocol that it refuses under
/// `group.protocol = consumer`.
const CLASSIC_ONLY: &[&str] = &[
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "partition.assignment.strategy",
    "group.protocol.type",
];

/// A `group.instance.id`, and whether the user chose it: a default one
/// already held by another process on this host gets a suffix, a chosen
/// one is an error (see [`instance::claim`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceId {
    pub id: String,
    pub chosen: bool,
}

/// The longest `group.instance.id` Kafka takes (as for topic names).
const INSTANCE_ID_MAX: usize = 249;

/// Kafka's rule for `group.instance.id` (the broker refuses others).
fn valid_instance_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// `<host>-<pipeline>` with the characters Kafka does not allow replaced by
/// `_`, cut to Kafka's length limit (room left for a `-N` suffix).
pub fn default_instance_id(host: &str, pipeline: &str) -> String {
    let id: String = format!("{host}-{pipeline}")
        .chars()
        .map(|c| if valid_instance_char(c) { c } else { '_' })
        .take(INSTANCE_ID_MAX - 4)
        .collect();
    if id.chars().all(|c| c == '.') {
        // "." and ".." are not allowed
        id.replace('.', "_")
    } else {
        id
    }
}

fn instance_id(config: &HopConfig, cx: &mut ConfigCx<'_>) -> Result<Option<InstanceId>, ()> {
    let on = config.static_membership.as_ref().map(|s| *s.get_ref());
    match (&config.group_instance_id, on) {
        (Some(id), Some(false)) => {
            cx.error(
                &id.span(),
                "group_instance_id is set but static_membership = false: remove one of them",
            );
            Err(())
        }
        (None, Some(false)) => Ok(None),
        (Some(id), _) => {
            let text = id.get_ref();
            let bad: Vec<char> = text.chars().filter(|c| !valid_instance_char(*c)).collect();
            if text.is_empty() || text == "." || text == ".." {
                cx.error(
                    &id.span(),
                    "group_instance_id must be a name (not empty, \".\" or \"..\")",
                );
                Err(())
            } else if !bad.is_empty() {
                cx.error(
                    &id.span(),
                    format!("group_instance_id may hold only ASCII letters, digits, '.', '_' and '-' (Kafka refuses others); found {:?}", bad.iter().collect::<String>()),
                );
                Err(())
            } else if text.len() > INSTANCE_ID_MAX {
                cx.error(
                    &id.span(),
                    format!(
                        "group_instance_id is longer than Kafka's {INSTANCE_ID_MAX} characters"
                    ),
                );
                Err(())
            } else {
                Ok(Some(InstanceId {
                    id: text.clone(),
                    chosen: true,
                }))
            }
        }
        (None, _) => Ok(Some(InstanceId {
            id: default_instance_id(crate::host::name(), &cx.pipeline),
            chosen: false,
        })),
    }
}

/// librdkafka security settings from `[kafka.tls]` and `[kafka.sasl]`:
/// plain settings and secrets apart, so secrets stay out of `Debug`.
#[allow(clippy::type_complexity)]
fn security(
    tls: &Option<TlsConfig>,
    sasl: &Option<SaslConfig>,
    cx: &mut ConfigCx<'_>,
) -> Option<(BTreeMap<String, String>, BTreeMap<String, Secret>)> {
    let mut plain = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    let protocol = match (tls.is_some(), sasl.is_some()) {
        (false, false) => return Some((plain, secrets)),
        (true, false) => "ssl",
        (false, true) => "sasl_plaintext",
        (true, true) => "sasl_ssl",
    };
    plain.insert("security.protocol".into(), protocol.into());
    if let Some(tls) = tls {
        for (key, value) in [
            ("ssl.ca.location", &tls.ca),
            ("ssl.certificate.location", &tls.cert),
            ("ssl.key.location", &tls.key),
        ] {
            if let Some(path) = value {
                plain.insert(key.into(), cx.path(path).to_string_lossy().into_owned());
            }
        }
        if let Some(p) = &tls.key_password {
            secrets.insert("ssl.key.password".into(), p.clone());
        }
    }
    if let Some(sasl) = sasl {
        let mechanism = sasl.mechanism.get_ref().to_ascii_uppercase();
        if !matches!(
            mechanism.as_str(),
            "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"
        ) {
            cx.error(
                &sasl.mechanism.span(),
                "unsupported SASL mechanism (expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)",
            );
            return None;
        }
        plain.insert("sasl.mechanisms".into(), mechanism);
        plain.insert("sasl.username".into(), sasl.username.clone());
        let password = match (&sasl.password, &sasl.password_file) {
            (Some(p), None) => p.clone(),
            (None, Some(file)) => match std::fs::read_to_string(cx.path(file)) {
                Ok(text) => Secret::new(text.trim_end_matches(['\n', '\r'])),
                Err(e) => {
                    cx.error(
                        &sasl.mechanism.span(),
                        format!("cannot read password_file {file}: {e}"),
                    );
                    return None;
                }
            },
            _ => {
                cx.error(
                    &sasl.mechanism.span(),
                    "[kafka.sasl] needs exactly one of password or password_file",
                );
                return None;
            }
        };
        secrets.insert("sasl.password".into(), password);
    }
    Some((plain, secrets))
}

impl std::fmt::Debug for Hop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hop")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic.as_str())
            .field("topics", &self.topics)
            .field("group_id", &self.group_id)
            .field("group_instance_id", &self.group_instance_id)
            .field("group_protocol", &self.group_protocol)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

impl Hop {
    fn base_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.brokers.join(","));
        c.set("client.id", &self.client_id);
        for (k, v) in &self.security {
            c.set(k, v);
        }
        for (k, v) in &self.secrets {
            c.set(k, v.expose());
        }
        if let Some(max) = self.message_max_bytes {
            c.set("message.max.bytes", max.to_string());
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    /// Producer settings that keep the no-loss promise: an outage holds the
    /// pipeline (`message.timeout.ms = 0`: never expire) with bounded queue
    /// memory, instead of failing messages after librdkafka's 5 minutes.
    pub fn producer_config(&self) -> ClientConfig {
        let mut c = self.base_config();
        c.set("acks", self.acks.to_string());
        c.set("enable.idempotence", self.idempotence.to_string());
        c.set(
            "compression.type",
            match self.compression {
                Compression::None => "none",
                Compression::Gzip => "gzip",
                Compression::Snappy => "snappy",
                Compression::Lz4 => "lz4",
                Compression::Zstd => "zstd",
            },
        );
        c.set("message.timeout.ms", "0");
        c.set(
            "queue.buffering.max.kbytes",
            self.queue_max_kbytes.to_string(),
        );
        c.set("linger.ms", self.linger.as_millis().to_string());
        if let Some(size) = self.batch_size {
            c.set("batch.size", size.to_string());
        }
        // Broker states for `/health` come from librdkafka's statistics.
        c.set(
            "statistics.interval.ms",
            context::STATS_INTERVAL_MS.to_string(),
        );
        for (k, v) in &self.producer {
            c.set(k, v);
        }
        c
    }

    /// Consumer settings: offsets are stored only for acknowledged events
    /// (`enable.auto.offset.store = false`) and committed from those.
    /// `instance` is the `group.instance.id` this process claimed.
    pub fn consumer_config(&self, protocol: GroupProtocol, instance: Option<&str>) -> ClientConfig {
        let mut c = self.base_config();
        c.set("group.id", &self.group_id);
        if let Some(id) = instance {
            c.set("group.instance.id", id);
        }
        c.set("group.protocol", protocol.as_str());
        c.set("enable.auto.commit", "true");
        c.set("auto.commit.interval.ms", "1000");
        c.set("enable.auto.offset.store", "false");
        c.set(
            "auto.offset.reset",
            match self.auto_offset_reset {
                OffsetReset::Earliest => "earliest",
                OffsetReset::Latest => "latest",
            },
        );
        if protocol == GroupProtocol::Classic {
            // Under KIP-848 the broker owns these (librdkafka refuses them).
            c.set(
                "session.timeout.ms",
                self.session_timeout.as_millis().to_string(),
            );
            c.set(
                "heartbeat.interval.ms",
                self.heartbeat_interval.as_millis().to_string(),
            );
            // Incremental: a member joining or leaving moves only the
            // partitions that change owner; the others keep being consumed.
            c.set("partition.assignment.strategy", "cooperative-sticky");
        }
        // Bound prefetch in bytes, not only in messages.
        c.set("queued.max.messages.kbytes", "16384");
        c.set("fetch.max.bytes", "8388608");
        // Consumer lag for /metrics comes from librdkafka's statistics.
        c.set("statistics.interval.ms", "5000");
        for (k, v) in &self.consumer {
            c.set(k, v);
        }
        c
    }
}

/// `host` → `host:port` when no port is given (IPv6 literals in brackets).
pub fn with_default_port(host: &str, port: u16) -> String {
    let has_port = match host.rsplit_once(':') {
        Some((h, p)) => {
            p.chars().all(|c| c.is_ascii_digit()) && (!h.contains(':') || h.ends_with(']'))
        }
        None => false,
    };
    if has_port {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_instance_ids_are_names_kafka_takes() {
        assert_eq!(
            default_instance_id("web-1.example", "httpd-access"),
            "web-1.example-httpd-access"
        );
        assert_eq!(default_instance_id("höst", "a b/c"), "h_st-a_b_c");
        assert!(default_instance_id(&"h".repeat(300), "p").len() <= INSTANCE_ID_MAX - 4);
    }

    #[test]
    fn brokers_without_a_port_get_9092() {
        assert_eq!(with_default_port("10.0.0.75", 9092), "10.0.0.75:9092");
        assert_eq!(with_default_port("10.0.0.75:9093", 9092), "10.0.0.75:9093");
        assert_eq!(with_default_port("[::1]", 9092), "[::1]:9092");
        assert_eq!(with_default_port("[::1]:19092", 9092), "[::1]:19092");
        assert_eq!(
            with_default_port("kafka-1.example", 9092),
            "kafka-1.example:9092"
        );
    }
}
