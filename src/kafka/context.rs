//! librdkafka's logs and errors routed into tracing, with repeated warnings
//! (a broker that stays down) throttled to one per 10 s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;

use crate::telemetry::Throttle;

pub struct LogContext {
    pipeline: String,
    role: &'static str,
    throttle: Mutex<Throttle>,
    degraded: Arc<AtomicBool>,
    /// The SASL mechanism in use, added to an authentication failure that
    /// does not name it (a broker refusing PLAIN says only "Invalid
    /// username or password").
    sasl: Option<String>,
}

/// Tells `/health` when the broker answers again after trouble; cheap to
/// call on every batch.
#[derive(Clone)]
pub struct Recovery {
    pipeline: String,
    stage: &'static str,
    degraded: Arc<AtomicBool>,
}

impl Recovery {
    pub fn answered(&self) {
        if self.degraded.load(Ordering::Relaxed) && self.degraded.swap(false, Ordering::Relaxed) {
            crate::monitor::health::running(&self.pipeline, self.stage);
        }
    }
}

impl LogContext {
    pub fn new(pipeline: &str, role: &'static str) -> Self {
        LogContext {
            pipeline: pipeline.to_owned(),
            role,
            throttle: Mutex::new(Throttle::warnings()),
            degraded: Arc::new(AtomicBool::new(false)),
            sasl: None,
        }
    }

    /// The hop's SASL mechanism, if any, for its authentication errors.
    pub fn for_hop(mut self, hop: &super::Hop) -> Self {
        self.sasl = hop.security.get("sasl.mechanisms").cloned();
        self
    }

    /// `message`, with the SASL mechanism added when it is an
    /// authentication failure that does not name it.
    fn explained<'a>(&self, message: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.sasl {
            Some(m)
                if message.contains("SASL authentication error")
                    && !message.contains(m.as_str()) =>
            {
                format!("{message} (SASL mechanism {m})").into()
            }
            _ => message.into(),
        }
    }

    pub fn recovery(&self) -> Recovery {
        Recovery {
            pipeline: self.pipeline.clone(),
            stage: self.stage(),
            degraded: Arc::clone(&self.degraded),
        }
    }

    /// The stage this client serves, for health and metrics.
    pub fn stage(&self) -> &'static str {
        if self.role == "producer" {
            "output.kafka"
        } else {
            "input.kafka"
        }
    }

    fn throttled(&self) -> Option<u64> {
        self.throttle.lock().ok().and_then(|mut t| t.ready())
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

    fn error(&self, error: KafkaError, reason: &str) {
        self.degraded.store(true, Ordering::Relaxed);
        let reason = self.explained(reason);
        crate::monitor::health::degraded(&self.pipeline, self.stage(), format!("Kafka: {reason}"));
        if let Some(suppressed) = self.throttled() {
            tracing::warn!(
                pipeline = %self.pipeline,
                role = self.role,
                %error,
                suppressed,
                "Kafka trouble; events are held until the broker answers again: {reason}"
            );
        }
    }
}
