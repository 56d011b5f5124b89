//! The ship half's producer, replaced by a new one when it can no longer
//! deliver.
//!
//! An idempotent producer is tied to its producer id. A broker that lost
//! that id's state (restarted without its log, or the state expired)
//! answers `UnknownProducerId`; a sequence gap (`OutOfOrderSequenceNumber`)
//! or fencing is the same kind of trouble. librdkafka then either declares
//! the producer *fatally* failed (every later message is refused) or, as
//! with a broker that does not take KIP-360 epoch bumps (Tansu), bumps the
//! epoch and retries forever, ten times a second, delivering nothing. Both
//! need a new producer (a new producer id). [`Producers`] holds the current
//! one with a generation number and replaces it:
//!
//! - when `fatal_error()` is set, seen after a failed send or delivery, or
//!   by the once-a-second [`Producers::watch`];
//! - when it sent [`STUCK_PRODUCE_REQUESTS`] produce requests (librdkafka's
//!   statistics) while messages wait and no batch was confirmed: requests
//!   go out only to a broker that is up, and one that is up and takes
//!   nothing of this producer will not take the next request either. The
//!   epoch bumps of librdkafka are local and do not show in its statistics
//!   (`eos.epoch_cnt` stays 1), so the requests are what can be counted.
//!
//! The old producer is purged, so every message it still held comes back in
//! a failed delivery report and is sent again on the new producer by the
//! task that waits for it. A message may thus reach the topic twice; the
//! origin id in it keeps Elasticsearch free of the duplicate.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::producer::{FutureProducer, Producer, PurgeConfig};

use super::context::{LogContext, Recovery};
use super::Hop;
use crate::error::StageError;

pub type Producer_ = FutureProducer<LogContext>;

/// Produce requests without a confirmed batch after which a producer with
/// waiting messages counts as stuck. A producer whose id the broker does
/// not know sends about ten a second (one per epoch bump and retry); a
/// healthy one confirms a batch long before that many requests, since it
/// has at most five in flight per broker until answers come.
pub const STUCK_PRODUCE_REQUESTS: i64 = 50;

/// One producer and what tells whether it is stuck.
struct Generation {
    number: u64,
    producer: Producer_,
    /// Produce requests sent, from this producer's statistics.
    produce_requests: Arc<AtomicI64>,
}

/// The current producer of one Kafka output and its generation.
pub struct Producers {
    hop: Hop,
    pipeline: Arc<str>,
    recovery: Recovery,
    current: Mutex<Generation>,
    /// Batches confirmed so far, by any generation.
    confirmed: AtomicU64,
}

impl Producers {
    pub fn new(hop: &Hop, pipeline: Arc<str>) -> Result<Self, StageError> {
        let context = LogContext::for_hop(&pipeline, "producer", hop);
        let recovery = context.recovery();
        let produce_requests = context.produce_requests();
        let producer = create(hop, context)?;
        Ok(Producers {
            hop: hop.clone(),
            pipeline,
            recovery,
            current: Mutex::new(Generation {
                number: 0,
                producer,
                produce_requests,
            }),
            confirmed: AtomicU64::new(0),
        })
    }

    /// The current producer and its generation.
    pub fn current(&self) -> (u64, Producer_) {
        let current = self.lock();
        (current.number, current.producer.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generation> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// A batch was confirmed: the producer delivers.
    pub fn confirmed(&self) {
        self.confirmed.fetch_add(1, Ordering::Relaxed);
        self.recovery.answered();
    }

    /// Called after a message of producer `generation` failed (its send or
    /// its delivery): replaces that producer if it failed fatally. True
    /// when a newer producer is there to send again at once (built now, or
    /// by another task before).
    pub fn replace_if_fatal(&self, generation: u64) -> bool {
        let fatal = {
            let current = self.lock();
            if current.number != generation {
                return true;
            }
            current.producer.client().fatal_error()
        };
        match fatal {
            Some((code, reason)) => {
                self.replace(generation, &format!("it failed fatally ({code}: {reason})"))
            }
            None => false,
        }
    }

    /// Replaces producer `generation` by a new one, unless that happened
    /// already. True when a newer producer is there.
    fn replace(&self, generation: u64, why: &str) -> bool {
        let old = {
            let mut current = self.lock();
            if current.number != generation {
                return true;
            }
            let context = LogContext::sharing(&self.recovery, "producer");
            let produce_requests = context.produce_requests();
            let producer = match create(&self.hop, context) {
                Ok(p) => p,
                Err(error) => {
                    tracing::error!(pipeline = %self.pipeline, brokers = %self.hop.brokers.join(","), %error, "Kafka producer cannot deliver and a new one cannot be built; trying again.");
                    return false;
                }
            };
            tracing::warn!(
                pipeline = %self.pipeline,
                brokers = %self.hop.brokers.join(","),
                generation = generation + 1,
                "Kafka producer replaced by a new one because {why}; unacknowledged messages are sent again (they may reach the topic twice, the origin ids keep them single in Elasticsearch)."
            );
            self.recovery.degraded(&format!(
                "Kafka producer replaced because {why}; sending again with a new one"
            ));
            metrics::counter!("logpipe_kafka_producer_replaced_total", "pipeline" => self.pipeline.to_string())
                .increment(1);
            std::mem::replace(
                &mut *current,
                Generation {
                    number: generation + 1,
                    producer,
                    produce_requests,
                },
            )
        };
        retire(old.producer);
        true
    }

    /// Once a second until `stop` fires: replaces the current producer if it
    /// failed fatally or is stuck (see the module doc). Needed besides the
    /// checks after failures: librdkafka may hold a stuck producer's
    /// messages without a report, and an idle output sends nothing that
    /// would find out.
    pub async fn watch(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut stall = Stall::default();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            let (generation, produce_requests, waiting) = {
                let current = self.lock();
                (
                    current.number,
                    current.produce_requests.load(Ordering::Relaxed),
                    current.producer.in_flight_count(),
                )
            };
            if self.replace_if_fatal(generation) {
                continue;
            }
            let confirmed = self.confirmed.load(Ordering::Relaxed);
            tracing::trace!(
                generation,
                produce_requests,
                waiting,
                confirmed,
                "Kafka producer watch."
            );
            if let Some(requests) =
                stall.observe(generation, confirmed, produce_requests, waiting > 0)
            {
                let why = format!(
                    "it sent {requests} produce requests and got no delivery (a broker that lost its producer id answers UnknownProducerId to each)"
                );
                self.replace(generation, &why);
            }
        }
    }
}

/// Tells a stuck producer from one that delivers or waits for a broker:
/// fed once a second with the generation, the batches confirmed so far,
/// the produce requests the generation sent and whether messages wait.
#[derive(Debug, Default)]
struct Stall {
    /// (generation, batches confirmed, produce requests) at the last
    /// progress.
    since: Option<(u64, u64, i64)>,
}

impl Stall {
    /// The produce requests sent since the last progress, once they reach
    /// [`STUCK_PRODUCE_REQUESTS`] with messages waiting; counting starts
    /// again after that, after a confirmed batch and with a new generation.
    fn observe(
        &mut self,
        generation: u64,
        confirmed: u64,
        requests: i64,
        waiting: bool,
    ) -> Option<i64> {
        match self.since {
            // librdkafka's counts may start again (a broker entry dropped
            // and learned anew): count from the lower value.
            Some((g, c, since)) if g == generation && c == confirmed && requests >= since => {
                let sent = requests - since;
                if waiting && sent >= STUCK_PRODUCE_REQUESTS {
                    self.since = None;
                    return Some(sent);
                }
            }
            _ => self.since = Some((generation, confirmed, requests)),
        }
        None
    }
}

/// Purges the old producer so that every message it still holds fails
/// with a delivery report (the waiting task sends it again), then lets it
/// go; off the runtime threads, since dropping a producer blocks.
fn retire(old: Producer_) {
    let purge = move || {
        old.purge(PurgeConfig::default().queue().inflight());
        // Delivers the purge reports; the producer is dropped after.
        let _ = old.flush(Duration::from_secs(10));
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn_blocking(purge);
        }
        Err(_) => purge(),
    }
}

fn create(hop: &Hop, context: LogContext) -> Result<Producer_, StageError> {
    hop.producer_config()
        .create_with_context(context)
        .map_err(|e| StageError::kafka(format!("producer for {}", hop.brokers.join(",")), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `(generation, confirmed, requests, waiting)` once a "second";
    /// the seconds at which the producer counted as stuck.
    fn stuck_at(ticks: &[(u64, u64, i64, bool)]) -> Vec<usize> {
        let mut stall = Stall::default();
        ticks
            .iter()
            .enumerate()
            .filter_map(|(t, &(g, c, r, w))| stall.observe(g, c, r, w).map(|_| t))
            .collect()
    }

    #[test]
    fn requests_without_a_confirmed_batch_mean_stuck() {
        // Ten requests a second against UnknownProducerId, nothing confirmed.
        let ticks: Vec<_> = (0..8).map(|t| (0, 3, t * 10, true)).collect();
        assert_eq!(stuck_at(&ticks), [5]);
    }

    #[test]
    fn confirmed_batches_an_outage_or_an_idle_producer_are_not_stuck() {
        // Delivering: a batch confirmed every second.
        let delivering: Vec<_> = (0..10).map(|t| (0, t as u64, t * 30, true)).collect();
        assert!(stuck_at(&delivering).is_empty());
        // Broker down: messages wait but no request goes out.
        let outage: Vec<_> = (0..100).map(|_| (0, 3, 7, true)).collect();
        assert!(stuck_at(&outage).is_empty());
        // Requests (metadata refreshes do not count, but say they did) with
        // nothing waiting.
        let idle: Vec<_> = (0..10).map(|t| (0, 3, t * 10, false)).collect();
        assert!(stuck_at(&idle).is_empty());
    }

    #[test]
    fn a_new_generation_or_a_count_that_starts_again_starts_counting_again() {
        let mut ticks: Vec<_> = (0..4).map(|t| (0, 3, t * 10, true)).collect();
        // Replaced: the new producer's count starts at 0.
        ticks.extend((0..4).map(|t| (1, 3, t * 10, true)));
        assert!(stuck_at(&ticks).is_empty());
        let mut ticks: Vec<_> = (0..4).map(|t| (0, 3, 100 + t * 10, true)).collect();
        ticks.extend((0..5).map(|t| (0, 3, t * 10, true)));
        assert!(stuck_at(&ticks).is_empty(), "counted from the lower value");
        ticks.push((0, 3, 50, true));
        assert_eq!(stuck_at(&ticks), [9]);
    }
}
