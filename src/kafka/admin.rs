//! Topic management through the Kafka admin API: create the topics a
//! pipeline ships to, and report existing ones whose partition count differs.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use super::Hop;
use crate::error::StageError;

/// What `ensure_topics` did for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicState {
    Created {
        partitions: i32,
    },
    Exists {
        partitions: i32,
        wanted: i32,
    },
    /// A templated name: unknown until events arrive.
    Skipped,
}

/// Keeps the first warning or error librdkafka reported, the cause (its
/// text names the broker; it never holds a secret); later ones are
/// consequences ("1/1 brokers are down").
#[derive(Default)]
struct FirstError {
    first: Mutex<Option<String>>,
}

impl FirstError {
    fn keep(&self, reason: &str) {
        if let Ok(mut first) = self.first.lock() {
            first.get_or_insert_with(|| reason.to_owned());
        }
    }
}

impl ClientContext for FirstError {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        tracing::debug!(facility = fac, "Kafka: {message}");
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            self.keep(message);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, "Kafka: {reason}");
        self.keep(reason);
    }

    /// A short-lived probe: its statistics (librdkafka's default prints
    /// every one at info) say nothing the reason does not.
    fn stats(&self, _: rdkafka::Statistics) {}
}

impl ProducerContext for FirstError {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// How long the brokers have to answer before `ensure_topics` says they
/// do not (an admin request would wait librdkafka's 60 s request timeout,
/// then report only `OperationTimedOut`).
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the brokers answer a metadata request within [`REACH_TIMEOUT`];
/// if not, why, in librdkafka's words: from a client of its own whose log
/// is kept (the admin client's log is never served). The reason names the
/// broker it is about; it never holds a secret.
async fn reach(hop: &Hop) -> Result<(), String> {
    let config = hop.producer_config();
    tokio::task::spawn_blocking(move || {
        let producer: BaseProducer<FirstError> = config
            .create_with_context(FirstError::default())
            .map_err(|e| e.to_string())?;
        let Err(e) = producer.client().fetch_metadata(None, REACH_TIMEOUT) else {
            return Ok(());
        };
        // Errors reach the context through polling.
        for _ in 0..5 {
            producer.poll(Duration::from_millis(100));
        }
        let first = producer.context().first.lock().ok().and_then(|f| f.clone());
        Err(first.unwrap_or_else(|| e.to_string()))
    })
    .await
    .map_err(|e| format!("metadata thread failed: {e}"))?
}

/// The brokers as one metadata request sees them: how many answer, and the
/// partition count of each of `topics` (`None`: the topic does not exist).
/// All topics are listed rather than the named ones, because a metadata
/// request for a missing topic may create it (librdkafka's producer
/// default), and a check must change nothing.
pub async fn describe(hop: &Hop, topics: &[String]) -> Result<(usize, Vec<Option<usize>>), String> {
    let config = hop.producer_config();
    let topics = topics.to_vec();
    let result = tokio::task::spawn_blocking(move || {
        let producer: BaseProducer<FirstError> = config
            .create_with_context(FirstError::default())
            .map_err(|e| e.to_string())?;
        match producer.client().fetch_metadata(None, REACH_TIMEOUT) {
            Ok(metadata) => {
                let counts = topics
                    .iter()
                    .map(|name| {
                        metadata
                            .topics()
                            .iter()
                            .find(|t| t.name() == name && t.error().is_none())
                            .map(|t| t.partitions().len())
                    })
                    .collect();
                Ok((metadata.brokers().len(), counts))
            }
            Err(e) => {
                for _ in 0..5 {
                    producer.poll(Duration::from_millis(100));
                }
                let first = producer.context().first.lock().ok().and_then(|f| f.clone());
                Err(first.unwrap_or_else(|| e.to_string()))
            }
        }
    })
    .await
    .map_err(|e| format!("metadata thread failed: {e}"))?;
    result.map_err(|reason| explain(hop, &reason))
}

/// `reason`, with the configured SASL mechanism when an authentication
/// failure does not name it.
fn explain(hop: &Hop, reason: &str) -> String {
    match hop.security.get("sasl.mechanisms") {
        Some(m) if reason.contains("SASL") && !reason.contains(m.as_str()) => {
            format!("{reason}; SASL mechanism {m}")
        }
        _ => reason.to_owned(),
    }
}

/// Creates the hop's topic if it is missing (a templated one is skipped:
/// its names are known only when events arrive).
pub async fn ensure_topics(
    hop: &Hop,
    pipeline: &str,
) -> Result<Vec<(String, TopicState)>, StageError> {
    if !hop.topic.is_static() {
        return Ok(vec![(hop.topic.as_str().to_owned(), TopicState::Skipped)]);
    }
    ensure_named(hop, &[hop.topic.as_str().to_owned()], pipeline).await
}

/// Creates the topics the hop consumes (`topics`) if they are missing: the
/// index half's `ensure_topic`, which may run on hosts without a ship half.
pub async fn ensure_consumed(
    hop: &Hop,
    pipeline: &str,
) -> Result<Vec<(String, TopicState)>, StageError> {
    ensure_named(hop, &hop.topics, pipeline).await
}

async fn ensure_named(
    hop: &Hop,
    names: &[String],
    pipeline: &str,
) -> Result<Vec<(String, TopicState)>, StageError> {
    let brokers = hop.brokers.join(",");
    if let Err(reason) = reach(hop).await {
        return Err(StageError::Fatal(format!(
            "the Kafka brokers {brokers} did not answer within {}s ({}); no topic was created",
            REACH_TIMEOUT.as_secs(),
            explain(hop, &reason)
        )));
    }
    let admin: AdminClient<DefaultClientContext> = hop
        .producer_config()
        .create()
        .map_err(|e| StageError::kafka(format!("admin client for {brokers}"), e))?;
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(30)))
        .request_timeout(Some(Duration::from_secs(10)));
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            NewTopic::new(
                name,
                hop.partitions,
                TopicReplication::Fixed(hop.replication_factor),
            )
        })
        .collect();
    let results = match admin.create_topics(&topics, &options).await {
        Ok(results) => results,
        Err(e) => {
            // A timeout says nothing of its cause; the brokers' own words do
            // (an authentication failure names broker and mechanism).
            let names = names.join(",");
            let why = match reach(hop).await {
                Err(reason) => format!("create topic {names} ({})", explain(hop, &reason)),
                Ok(()) => format!("create topic {names} on {brokers}"),
            };
            return Err(StageError::kafka(why, e));
        }
    };
    let mut report = Vec::new();
    for result in results {
        match result {
            Ok(topic) => {
                tracing::info!(%pipeline, %topic, partitions = hop.partitions, "Created Kafka topic.");
                report.push((
                    topic,
                    TopicState::Created {
                        partitions: hop.partitions,
                    },
                ));
            }
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                let partitions = partition_count(hop, &topic).await.unwrap_or(0);
                if partitions != hop.partitions {
                    tracing::warn!(%pipeline, %topic, partitions, wanted = hop.partitions, "Kafka topic exists with a different partition count.");
                }
                report.push((
                    topic,
                    TopicState::Exists {
                        partitions,
                        wanted: hop.partitions,
                    },
                ));
            }
            Err((topic, code)) => {
                return Err(StageError::Fatal(format!(
                    "cannot create Kafka topic {topic}: {code}"
                )));
            }
        }
    }
    Ok(report)
}

/// The partition count of an existing topic (metadata calls block, so they
/// run on a blocking thread with a client of their own).
pub async fn partition_count(hop: &Hop, topic: &str) -> Option<i32> {
    let config = hop.producer_config();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let producer: rdkafka::producer::BaseProducer = config.create().ok()?;
        let metadata = producer
            .client()
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .ok()?;
        metadata
            .topics()
            .first()
            .map(|t| i32::try_from(t.partitions().len()).unwrap_or(i32::MAX))
    })
    .await
    .ok()
    .flatten()
}
