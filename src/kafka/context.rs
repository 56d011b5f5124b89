//! librdkafka's logs and errors routed into tracing, with repeated warnings
//! (a broker that stays down) throttled to one per 10 s.

use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;

use crate::telemetry::Throttle;

pub struct LogContext {
    pipeline: String,
    role: &'static str,
    throttle: Mutex<Throttle>,
}

impl LogContext {
    pub fn new(pipeline: &str, role: &'static str) -> Self {
        LogContext {
            pipeline: pipeline.to_owned(),
            role,
            throttle: Mutex::new(Throttle::warnings()),
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
                    tracing::warn!(pipeline = %self.pipeline, role = self.role, facility = fac, suppressed, "Kafka: {message}");
                }
            }
            _ => {
                tracing::debug!(pipeline = %self.pipeline, role = self.role, facility = fac, "Kafka: {message}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
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
