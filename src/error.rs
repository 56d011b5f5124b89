//! Errors that stop a stage. Transient trouble (a broker or Elasticsearch
//! outage) is retried inside the stage and never surfaces here; what does
//! surface stops the pipeline, and the process exits non-zero so that
//! systemd restarts it and unacknowledged data is read again.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Kafka {context}: {source}")]
    Kafka {
        context: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error(
        "a batch was not delivered; the source stops so that it is read again after a restart"
    )]
    Undelivered,
    #[error("{0}")]
    Fatal(String),
}

impl StageError {
    pub fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StageError::Io {
            context,
            path: path.into(),
            source,
        }
    }

    pub fn kafka(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        StageError::Kafka {
            context: context.into(),
            source,
        }
    }
}
