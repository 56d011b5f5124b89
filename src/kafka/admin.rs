//! Topic management through the Kafka admin API: create the topics a
//! pipeline ships to, and report existing ones whose partition count differs.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::Producer;
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

/// Creates the hop's topic if it is missing.
pub async fn ensure_topics(
    hop: &Hop,
    pipeline: &str,
) -> Result<Vec<(String, TopicState)>, StageError> {
    if !hop.topic.is_static() {
        return Ok(vec![(hop.topic.as_str().to_owned(), TopicState::Skipped)]);
    }
    let name = hop.topic.as_str().to_owned();
    let admin: AdminClient<DefaultClientContext> = hop
        .producer_config()
        .create()
        .map_err(|e| StageError::kafka(format!("admin client for {}", hop.brokers.join(",")), e))?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let topic = NewTopic::new(
        &name,
        hop.partitions,
        TopicReplication::Fixed(hop.replication_factor),
    );
    let results = admin
        .create_topics([&topic], &options)
        .await
        .map_err(|e| StageError::kafka(format!("create topic {name}"), e))?;
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
