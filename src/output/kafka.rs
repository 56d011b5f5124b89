//! The ship half of the Kafka hop: a producer that acknowledges a batch to
//! its source only when every delivery report confirmed its message under the
//! configured `acks`. A message the broker will never take (too large) goes to
//! the dead-letter file; anything else is retried, holding the pipeline. A
//! producer that can no longer deliver (fatally failed, or retrying forever
//! against a restarted broker that lost the idempotent producer's state) is
//! replaced by a new one and its unacknowledged messages are sent again
//! ([`crate::kafka::producer`]).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureRecord, Producer};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::accounting::Outcome;
use crate::ack::AckToken;
use crate::dead_letter::{DeadLetter, DeadLetters};
use crate::error::StageError;
use crate::event::Batch;
use crate::kafka::producer::Producers;
use crate::kafka::{codec, Hop};
use crate::retry::Backoff;
use crate::shutdown::RunCx;
use crate::telemetry::Throttle;

/// Batches whose delivery reports are awaited at once.
const BATCHES_IN_FLIGHT: usize = 32;

pub async fn run(
    hop: Hop,
    mut input: mpsc::Receiver<Batch>,
    cx: RunCx,
    dead_letters: DeadLetters,
) -> Result<(), StageError> {
    let producers = Arc::new(Producers::new(&hop, Arc::clone(&cx.pipeline))?);
    let stop_watch = tokio_util::sync::CancellationToken::new();
    let _stop_watch = stop_watch.clone().drop_guard();
    tokio::spawn(Arc::clone(&producers).watch(stop_watch));
    if hop.ensure_topic {
        crate::kafka::admin::ensure_topics(&hop, &cx.pipeline).await?;
    }
    let slots = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    let mut waiting: JoinSet<Result<(), StageError>> = JoinSet::new();
    let abort = cx.shutdown.abort.clone();
    let mut body = Vec::with_capacity(4096);
    let mut topic = String::new();
    let mut key = String::new();
    let mut full = Throttle::warnings();
    let bytes_out = metrics::counter!(
        "logpipe_bytes_out_total",
        "pipeline" => cx.pipeline.to_string(),
        "stage" => "output.kafka"
    );

    loop {
        let batch = tokio::select! {
            batch = input.recv() => batch,
            _ = abort.cancelled() => break,
        };
        let Some(batch) = batch else { break };
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => p.map_err(|_| StageError::Fatal("producer slots closed".into()))?,
            _ = abort.cancelled() => break,
        };
        crate::monitor::tap::offer(
            &cx.pipeline,
            crate::monitor::tap::Point::Output,
            &batch.events,
        );
        let mut deliveries = Vec::with_capacity(batch.events.len());
        let mut rejected = Vec::new();
        for (index, event) in batch.events.iter().enumerate() {
            body.clear();
            codec::encode_into(event, &mut body)
                .map_err(|e| StageError::Fatal(format!("cannot encode event: {e}")))?;
            bytes_out.increment(body.len() as u64);
            hop.topic.render_into(event, &mut topic);
            if let Some(k) = &hop.key {
                k.render_into(event, &mut key);
            }
            match enqueue(
                &producers,
                &topic,
                hop.key.as_ref().map(|_| key.as_str()),
                &body,
                &abort,
                &mut full,
            )
            .await
            {
                Enqueued::Queued(delivery) => deliveries.push((index, delivery)),
                Enqueued::Refused(e) => rejected.push(refused(&e, &topic, event.clone())),
                // The batch is dropped unacknowledged and read again later.
                Enqueued::Aborted => return Ok(()),
            }
        }
        // librdkafka holds copies of the bodies: the events can go now, which
        // keeps the memory of BATCHES_IN_FLIGHT batches small.
        let Batch { events, ack } = batch;
        let count = events.len();
        drop(events);
        waiting.spawn(confirm(
            Arc::clone(&producers),
            (ack, count),
            deliveries,
            rejected,
            dead_letters.clone(),
            cx.clone(),
            (permit, std::time::Instant::now()),
        ));
        while let Some(done) = waiting.try_join_next() {
            flatten(done)?;
        }
    }
    loop {
        let done = tokio::select! {
            done = waiting.join_next() => done,
            _ = abort.cancelled() => {
                waiting.abort_all();
                break;
            }
        };
        let Some(done) = done else { break };
        flatten(done)?;
    }
    let (_, producer) = producers.current();
    let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(5))).await;
    Ok(())
}

fn flatten(done: Result<Result<(), StageError>, tokio::task::JoinError>) -> Result<(), StageError> {
    match done {
        Ok(result) => result,
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(StageError::Fatal(format!("delivery task failed: {e}"))),
    }
}

/// A message on librdkafka's queue: the generation of the producer that
/// holds it, and its delivery report to come.
type Delivery = (u64, DeliveryFuture);

enum Enqueued {
    Queued(Delivery),
    /// The message can never be produced (too large).
    Refused(KafkaError),
    Aborted,
}

/// Puts one message on librdkafka's queue, waiting while the queue is full
/// (backpressure), on the newest producer (a new one if the current one
/// failed fatally).
async fn enqueue(
    producers: &Producers,
    topic: &str,
    key: Option<&str>,
    body: &[u8],
    abort: &tokio_util::sync::CancellationToken,
    full: &mut Throttle,
) -> Enqueued {
    loop {
        let mut record = FutureRecord::<str, [u8]>::to(topic).payload(body);
        if let Some(key) = key {
            record = record.key(key);
        }
        let (generation, producer) = producers.current();
        match producer.send_result(record) {
            Ok(delivery) => return Enqueued::Queued((generation, delivery)),
            Err((e, _)) if too_large(&e) => return Enqueued::Refused(e),
            Err((e, _)) => {
                drop(producer);
                if producers.replace_if_fatal(generation) {
                    continue;
                }
                if !matches!(
                    e,
                    KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
                ) {
                    if let Some(suppressed) = full.ready() {
                        tracing::warn!(%topic, error = %e, suppressed, "Cannot enqueue message; retrying.");
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                    _ = abort.cancelled() => return Enqueued::Aborted,
                }
            }
        }
    }
}

fn refused(e: &KafkaError, topic: &str, event: crate::event::Event) -> DeadLetter {
    DeadLetter {
        stage: "output.kafka",
        reason: format!("the broker refuses the message: {e}"),
        status: None,
        error_type: Some("message_too_large".into()),
        index: Some(topic.to_owned()),
        event,
    }
}

/// Waits for the delivery reports of one batch, retries or dead-letters the
/// failures, then acknowledges the batch.
async fn confirm(
    producers: Arc<Producers>,
    (ack, count): (AckToken, usize),
    deliveries: Vec<(usize, Delivery)>,
    mut rejected: Vec<DeadLetter>,
    dead_letters: DeadLetters,
    cx: RunCx,
    (_permit, enqueued): (OwnedSemaphorePermit, std::time::Instant),
) -> Result<(), StageError> {
    let mut pending: Vec<(usize, Delivery)> = deliveries;
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
    let mut warn = Throttle::warnings();
    while !pending.is_empty() {
        let mut retry = Vec::new();
        // Sent again at once: a new producer replaced the one that failed.
        let mut replaced = false;
        for (index, (generation, delivery)) in pending {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, message))) if too_large(&e) => {
                    let event = codec::decode_sent(message.payload().unwrap_or_default());
                    rejected.push(refused(&e, message.topic(), event));
                }
                Ok(Err((e, message))) => {
                    if producers.replace_if_fatal(generation) {
                        // Purged from a replaced producer: its replacement
                        // was logged once.
                        replaced = true;
                        tracing::debug!(topic = message.topic(), error = %e, "Sending again on the new producer.");
                    } else if let Some(suppressed) = warn.ready() {
                        tracing::warn!(topic = message.topic(), error = %e, suppressed, "Delivery failed; sending again.");
                    }
                    retry.push((index, message));
                }
                Err(_) => {
                    return Err(StageError::Fatal(
                        "the producer stopped before confirming delivery".into(),
                    ))
                }
            }
        }
        pending = Vec::with_capacity(retry.len());
        if !retry.is_empty() && !replaced {
            tokio::select! {
                _ = tokio::time::sleep(backoff.next_delay()) => {}
                _ = cx.shutdown.abort.cancelled() => return Ok(()),
            }
        }
        for (index, message) in retry {
            match resend(&producers, &message, &cx.shutdown.abort).await {
                Enqueued::Queued(delivery) => pending.push((index, delivery)),
                Enqueued::Refused(e) => {
                    let event = codec::decode_sent(message.payload().unwrap_or_default());
                    rejected.push(refused(&e, message.topic(), event));
                }
                Enqueued::Aborted => return Ok(()),
            }
        }
    }
    let refused = rejected.len();
    if !rejected.is_empty() {
        dead_letters
            .write(rejected)
            .await
            .map_err(|e| StageError::io("cannot write dead letters to", dead_letters.path(), e))?;
    }
    cx.books.settled(Outcome::DeadLettered, refused as u64);
    cx.books
        .settled(Outcome::Delivered, count.saturating_sub(refused) as u64);
    producers.confirmed();
    let labels = [
        ("pipeline", cx.pipeline.to_string()),
        ("stage", "output.kafka".to_owned()),
    ];
    metrics::histogram!("logpipe_kafka_delivery_seconds", &labels)
        .record(enqueued.elapsed().as_secs_f64());
    metrics::counter!("logpipe_events_out_total", &labels).increment(count as u64);
    ack.ack();
    Ok(())
}

async fn resend(
    producers: &Producers,
    message: &OwnedMessage,
    abort: &tokio_util::sync::CancellationToken,
) -> Enqueued {
    let key = message
        .key()
        .map(|k| String::from_utf8_lossy(k).into_owned());
    let mut throttle = Throttle::warnings();
    enqueue(
        producers,
        message.topic(),
        key.as_deref(),
        message.payload().unwrap_or_default(),
        abort,
        &mut throttle,
    )
    .await
}

fn too_large(e: &KafkaError) -> bool {
    matches!(
        e,
        KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)
            | KafkaError::MessageProduction(RDKafkaErrorCode::InvalidMessageSize)
    )
}
