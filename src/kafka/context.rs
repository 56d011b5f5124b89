//! librdkafka's logs and errors routed into tracing, with repeated warnings
//! (a broker that stays down) throttled to one per 10 s; and the Kafka
//! stage's state in `/health`, counted from the brokers librdkafka reports
//! in its statistics.
//!
//! librdkafka's own "2/2 brokers are down" counts its bootstrap entry and
//! the broker learned from metadata as two brokers although they are the
//! same one, and it is not said again when the broker is back. `/health`
//! therefore names brokers as [`BrokerCount`] counts them (each address
//! once), and a stage held only by "all brokers down" is running again as
//! soon as the statistics show a broker up.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::Statistics;

use crate::telemetry::Throttle;

/// How often librdkafka reports its statistics (broker states) to the
/// producer; the consumer keeps its own interval for the lag gauge.
pub const STATS_INTERVAL_MS: u32 = 1000;

pub struct LogContext {
    pipeline: String,
    role: &'static str,
    throttle: Mutex<Throttle>,
    state: Arc<Shared>,
    /// Produce requests this client sent so far, over all brokers (from the
    /// statistics): a producer that keeps sending them without a delivery
    /// is stuck.
    produce_requests: Arc<AtomicI64>,
}

/// What `/health` was told about one Kafka stage, shared by every client
/// that stage builds (a replaced producer keeps its stage's state).
struct Shared {
    pipeline: String,
    stage: &'static str,
    degraded: AtomicBool,
    /// Degraded only because every broker was down: cleared by statistics
    /// that show a broker up.
    brokers_down: AtomicBool,
    /// The bootstrap list, for an outage reported before any statistics.
    configured: Vec<String>,
    brokers: Mutex<Option<BrokerCount>>,
    /// The SASL mechanism in use, added to an authentication failure that
    /// does not name it (a broker refusing PLAIN says only "Invalid
    /// username or password").
    sasl: Option<String>,
}

/// Tells `/health` when the broker answers again after trouble; cheap to
/// call on every batch.
#[derive(Clone)]
pub struct Recovery {
    state: Arc<Shared>,
}

impl Recovery {
    pub fn answered(&self) {
        let s = &self.state;
        if s.degraded.load(Ordering::Relaxed) && s.degraded.swap(false, Ordering::Relaxed) {
            s.brokers_down.store(false, Ordering::Relaxed);
            crate::monitor::health::running(&s.pipeline, s.stage);
        }
    }

    /// Marks the stage degraded for a reason of the caller's (a producer
    /// that failed fatally), until the next [`Recovery::answered`].
    pub fn degraded(&self, reason: &str) {
        let s = &self.state;
        s.degraded.store(true, Ordering::Relaxed);
        s.brokers_down.store(false, Ordering::Relaxed);
        crate::monitor::health::degraded(&s.pipeline, s.stage, reason);
    }

    /// The brokers as the last statistics counted them.
    pub fn brokers(&self) -> Option<BrokerCount> {
        self.state.brokers.lock().ok().and_then(|b| b.clone())
    }
}

/// The brokers one client sees, each address counted once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerCount {
    /// Address → up (librdkafka state `UP` or `UPDATE`).
    pub brokers: BTreeMap<String, bool>,
}

impl BrokerCount {
    /// Counts the brokers of librdkafka's statistics. Once metadata named
    /// the cluster's brokers ("learned"), those are the brokers; the
    /// bootstrap entries ("configured") count only before that, since they
    /// are the same brokers under their bootstrap address. Internal and
    /// logical entries (the group coordinator) are not brokers of their own.
    pub fn from_stats(stats: &Statistics) -> Self {
        let learned = stats.brokers.values().any(|b| b.source == "learned");
        let mut brokers = BTreeMap::new();
        for b in stats.brokers.values() {
            let counted = match b.source.as_str() {
                "learned" => true,
                "configured" => !learned,
                _ => false,
            };
            if counted && !b.nodename.is_empty() {
                let up = matches!(b.state.as_str(), "UP" | "UPDATE");
                *brokers.entry(b.nodename.clone()).or_insert(false) |= up;
            }
        }
        BrokerCount { brokers }
    }

    pub fn up(&self) -> usize {
        self.brokers.values().filter(|up| **up).count()
    }

    pub fn total(&self) -> usize {
        self.brokers.len()
    }

    /// "1/1 brokers down (127.0.0.1:9092)", or "0/2 brokers down".
    pub fn describe(&self) -> String {
        let down: Vec<&str> = self
            .brokers
            .iter()
            .filter(|(_, up)| !**up)
            .map(|(name, _)| name.as_str())
            .collect();
        let mut text = format!("{}/{} brokers down", down.len(), self.total());
        if !down.is_empty() {
            text.push_str(&format!(" ({})", down.join(", ")));
        }
        text
    }
}

impl LogContext {
    pub fn new(pipeline: &str, role: &'static str) -> Self {
        Self::with_brokers(pipeline, role, &[])
    }

    /// A context that knows the bootstrap list, to name the brokers of an
    /// outage reported before the first statistics.
    pub fn with_brokers(pipeline: &str, role: &'static str, configured: &[String]) -> Self {
        let state = Arc::new(Shared {
            pipeline: pipeline.to_owned(),
            stage: stage_of(role),
            degraded: AtomicBool::new(false),
            brokers_down: AtomicBool::new(false),
            configured: configured.to_vec(),
            brokers: Mutex::new(None),
            sasl: None,
        });
        LogContext {
            pipeline: pipeline.to_owned(),
            role,
            throttle: Mutex::new(Throttle::warnings()),
            state,
            produce_requests: Arc::default(),
        }
    }

    /// A context for one half of a hop: it knows the bootstrap list and the
    /// SASL mechanism, for its health reasons and authentication errors.
    pub fn for_hop(pipeline: &str, role: &'static str, hop: &super::Hop) -> Self {
        let mut context = Self::with_brokers(pipeline, role, &hop.brokers);
        if let Some(state) = Arc::get_mut(&mut context.state) {
            state.sasl = hop.security.get("sasl.mechanisms").cloned();
        }
        context
    }

    /// `message`, with the SASL mechanism added when it is an
    /// authentication failure that does not name it.
    fn explained<'a>(&self, message: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.state.sasl {
            Some(m)
                if message.contains("SASL authentication error")
                    && !message.contains(m.as_str()) =>
            {
                format!("{message} (SASL mechanism {m})").into()
            }
            _ => message.into(),
        }
    }

    /// A context for another client of the same stage (a new producer
    /// replacing one that failed): it shares that stage's health state.
    pub fn sharing(recovery: &Recovery, role: &'static str) -> Self {
        LogContext {
            pipeline: recovery.state.pipeline.clone(),
            role,
            throttle: Mutex::new(Throttle::warnings()),
            state: Arc::clone(&recovery.state),
            produce_requests: Arc::default(),
        }
    }

    /// This client's count of produce requests, updated with every
    /// statistics report.
    pub fn produce_requests(&self) -> Arc<AtomicI64> {
        Arc::clone(&self.produce_requests)
    }

    pub fn recovery(&self) -> Recovery {
        Recovery {
            state: Arc::clone(&self.state),
        }
    }

    /// The stage this client serves, for health and metrics.
    pub fn stage(&self) -> &'static str {
        stage_of(self.role)
    }

    fn throttled(&self) -> Option<u64> {
        self.throttle.lock().ok().and_then(|mut t| t.ready())
    }

    /// "1/1 brokers down (…)" from the last statistics, or from the
    /// bootstrap list before there are any.
    fn brokers_down_reason(&self) -> String {
        let counted = self.state.brokers.lock().ok().and_then(|b| b.clone());
        match counted {
            Some(count) if count.total() > 0 => {
                // An "all brokers down" error is news the statistics may not
                // have caught up with: every broker is down now.
                let all_down = BrokerCount {
                    brokers: count.brokers.keys().map(|k| (k.clone(), false)).collect(),
                };
                format!("Kafka: {}", all_down.describe())
            }
            _ if !self.state.configured.is_empty() => {
                let n = self.state.configured.len();
                format!(
                    "Kafka: {n}/{n} brokers down ({})",
                    self.state.configured.join(", ")
                )
            }
            _ => "Kafka: all brokers down".to_owned(),
        }
    }

    /// Takes librdkafka's statistics: the broker count for `/health`, and
    /// the end of an outage that was only "all brokers down".
    pub fn stats(&self, statistics: &Statistics) {
        let produce: i64 = statistics
            .brokers
            .values()
            .filter_map(|b| b.req.get("Produce"))
            .sum();
        self.produce_requests.store(produce, Ordering::Relaxed);
        let count = BrokerCount::from_stats(statistics);
        if count.total() == 0 {
            return;
        }
        let s = &self.state;
        crate::monitor::health::brokers(&s.pipeline, s.stage, count.up(), count.total());
        if let Ok(mut b) = s.brokers.lock() {
            *b = Some(count.clone());
        }
        if !s.brokers_down.load(Ordering::Relaxed) {
            return;
        }
        if count.up() > 0 {
            if s.brokers_down.swap(false, Ordering::Relaxed)
                && s.degraded.swap(false, Ordering::Relaxed)
            {
                tracing::info!(pipeline = %self.pipeline, role = self.role, brokers_up = count.up(), brokers = count.total(), "Kafka broker reachable again.");
                crate::monitor::health::running(&s.pipeline, s.stage);
            }
        } else {
            // Still down: keep the reason as true as the last count.
            crate::monitor::health::degraded(
                &s.pipeline,
                s.stage,
                format!("Kafka: {}", count.describe()),
            );
        }
    }
}

fn stage_of(role: &str) -> &'static str {
    if role == "producer" {
        "output.kafka"
    } else {
        "input.kafka"
    }
}

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                if let Some(suppressed) = self.throttled() {
                    let message = self.explained(message);
                    tracing::warn!(pipeline = %self.pipeline, role = self.role, facility = fac, suppressed, "Kafka: {message}");
                }
            }
            _ => {
                tracing::debug!(pipeline = %self.pipeline, role = self.role, facility = fac, "Kafka: {message}")
            }
        }
    }

    fn stats(&self, statistics: Statistics) {
        LogContext::stats(self, &statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        let all_down = code == Some(RDKafkaErrorCode::AllBrokersDown);
        let s = &self.state;
        // While every broker is down, a failed connection is part of that
        // outage: the broker count stays the better summary.
        let same_outage = s.brokers_down.load(Ordering::Relaxed)
            && matches!(
                code,
                Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::Resolve)
            );
        let health_reason = if all_down {
            self.brokers_down_reason()
        } else {
            format!("Kafka: {}", self.explained(reason))
        };
        if !same_outage {
            s.degraded.store(true, Ordering::Relaxed);
            s.brokers_down.store(all_down, Ordering::Relaxed);
            crate::monitor::health::degraded(&s.pipeline, s.stage, &health_reason);
        }
        if let Some(suppressed) = self.throttled() {
            tracing::warn!(
                pipeline = %self.pipeline,
                role = self.role,
                %error,
                suppressed,
                "Kafka trouble; events are held until the broker answers again: {}",
                if all_down { health_reason.as_str() } else { reason }
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// librdkafka statistics with these `(name, nodename, source, state)`
    /// broker entries.
    fn stats(brokers: &[(&str, &str, &str, &str)]) -> Statistics {
        let brokers = brokers
            .iter()
            .map(|(name, nodename, source, state)| {
                let broker = rdkafka::statistics::Broker {
                    name: (*name).to_owned(),
                    nodeid: if *source == "learned" { 1 } else { -1 },
                    nodename: (*nodename).to_owned(),
                    source: (*source).to_owned(),
                    state: (*state).to_owned(),
                    ..Default::default()
                };
                ((*name).to_owned(), broker)
            })
            .collect();
        Statistics {
            brokers,
            ..Default::default()
        }
    }

    #[test]
    fn one_broker_behind_its_bootstrap_entry_counts_once() {
        // What librdkafka reports for `brokers = "127.0.0.1:9092"` once
        // metadata arrived: the bootstrap entry and the learned broker.
        let count = BrokerCount::from_stats(&stats(&[
            (
                "127.0.0.1:9092/bootstrap",
                "127.0.0.1:9092",
                "configured",
                "DOWN",
            ),
            ("127.0.0.1:9092/1", "127.0.0.1:9092", "learned", "DOWN"),
            ("GroupCoordinator", "127.0.0.1:9092", "logical", "DOWN"),
            (":0/internal", "", "internal", "UP"),
        ]));
        assert_eq!((count.up(), count.total()), (0, 1));
        assert_eq!(count.describe(), "1/1 brokers down (127.0.0.1:9092)");
    }

    #[test]
    fn learned_brokers_are_the_cluster_once_metadata_named_them() {
        let count = BrokerCount::from_stats(&stats(&[
            ("kafka:9092/bootstrap", "kafka:9092", "configured", "DOWN"),
            ("10.0.0.1:9092/1", "10.0.0.1:9092", "learned", "UP"),
            ("10.0.0.2:9092/2", "10.0.0.2:9092", "learned", "INIT"),
        ]));
        assert_eq!((count.up(), count.total()), (1, 2));
        assert_eq!(count.describe(), "1/2 brokers down (10.0.0.2:9092)");
    }

    #[test]
    fn before_metadata_the_bootstrap_list_is_counted() {
        let count = BrokerCount::from_stats(&stats(&[
            ("a:9092/bootstrap", "a:9092", "configured", "UP"),
            ("b:9092/bootstrap", "b:9092", "configured", "CONNECT"),
        ]));
        assert_eq!((count.up(), count.total()), (1, 2));
    }

    #[test]
    fn a_broker_up_again_ends_an_all_brokers_down_outage_in_health() {
        let pipeline = format!("ctx-test-{}", fastrand::u32(..));
        let cx = LogContext::with_brokers(&pipeline, "producer", &["127.0.0.1:9092".into()]);
        let state = || {
            crate::monitor::health::snapshot()
                .into_iter()
                .find(|(p, _, _)| *p == pipeline)
                .map(|(_, _, s)| s)
        };
        cx.error(
            KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "2/2 brokers are down",
        );
        assert_eq!(
            state(),
            Some(crate::monitor::health::StageState::Degraded(
                "Kafka: 1/1 brokers down (127.0.0.1:9092)".into()
            ))
        );
        let learned = |state| {
            stats(&[
                (
                    "127.0.0.1:9092/bootstrap",
                    "127.0.0.1:9092",
                    "configured",
                    state,
                ),
                ("127.0.0.1:9092/1", "127.0.0.1:9092", "learned", state),
            ])
        };
        cx.stats(&learned("DOWN"));
        assert_eq!(
            state(),
            Some(crate::monitor::health::StageState::Degraded(
                "Kafka: 1/1 brokers down (127.0.0.1:9092)".into()
            ))
        );
        cx.stats(&learned("UP"));
        assert_eq!(state(), Some(crate::monitor::health::StageState::Running));
    }

    #[test]
    fn other_trouble_waits_for_an_answer_not_for_statistics() {
        let pipeline = format!("ctx-test-{}", fastrand::u32(..));
        let cx = LogContext::with_brokers(&pipeline, "producer", &["b:9092".into()]);
        let recovery = cx.recovery();
        recovery.degraded("Kafka producer failed fatally");
        cx.stats(&stats(&[("b:9092/1", "b:9092", "learned", "UP")]));
        let state = || {
            crate::monitor::health::snapshot()
                .into_iter()
                .find(|(p, _, _)| *p == pipeline)
                .map(|(_, _, s)| s)
        };
        assert!(matches!(
            state(),
            Some(crate::monitor::health::StageState::Degraded(_))
        ));
        recovery.answered();
        assert_eq!(state(), Some(crate::monitor::health::StageState::Running));
    }
}
