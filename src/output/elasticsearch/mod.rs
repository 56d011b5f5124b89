//! The `elasticsearch` output: bulk-indexes batches into templated,
//! date-stamped indices with deterministic ids, and acknowledges events only
//! when each is indexed (or found already indexed) or dead-lettered.
//!
//! Batches are serialized as they arrive into the body of the next request
//! (a buffer reused from request to request). A full, or old enough, body
//! becomes a request task; up to the [`concurrency`] limit run at once
//! (adaptive by default, between 1 and `max_in_flight`). A request holds
//! the tokens of the batches whose events it carries (a batch is never split)
//! and acks them once every item is done: indexed, already indexed (409) or
//! dead-lettered. Items that may succeed later are retried inside their
//! request with backoff, so an outage fills the in-flight slots and then
//! holds the pipeline: memory stays bounded, nothing is dropped.
//!
//! Files: [`config`] (settings), [`client`] (HTTP, hosts, probes),
//! [`bulk`] and [`response`] (pure encoding and classification),
//! [`delivery`] (what each answer does to a request's items, pure),
//! [`concurrency`] (how many requests may be in flight, pure),
//! [`setup`] (index templates), [`stats`] (counters).

pub mod bulk;
pub mod client;
pub mod concurrency;
pub mod config;
pub mod delivery;
pub mod response;
pub mod setup;
pub mod stats;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::accounting::{self, Books};
use crate::ack::AckToken;
use crate::dead_letter::{DeadLetter, DeadLetters};
use crate::error::StageError;
use crate::event::{Batch, Event};
use crate::retry::Backoff;
use crate::shutdown::RunCx;
use bulk::Body;
use client::{Client, Sent};
use concurrency::Signal;
pub use config::{Config, Elasticsearch};
use delivery::{Answer, Delivery};
use response::Outcome;
use stats::Counters;

/// Events waiting to be sent in one request, with their batches' tokens.
struct Request {
    events: Vec<Event>,
    body: Body,
    tokens: Vec<AckToken>,
    /// When its first event came: it is sent `batch_wait` later at the
    /// latest.
    linger: Linger,
}

/// Buffers handed back by a finished request, for the next one.
struct Spare {
    body: Body,
    events: Vec<Event>,
}

impl Request {
    fn new(spare: Option<Spare>) -> Self {
        let (body, mut events) = match spare {
            Some(s) => (Body::reuse(s.body.bytes, s.body.starts), s.events),
            None => (Body::default(), Vec::new()),
        };
        events.clear();
        Request {
            events,
            body,
            tokens: Vec::new(),
            linger: Linger::default(),
        }
    }

    fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

type Done = Result<Spare, StageError>;

/// How long a request being filled has waited for more events (tokio's
/// clock, so tests can run it in paused time).
#[derive(Debug, Default)]
struct Linger {
    since: Option<tokio::time::Instant>,
}

impl Linger {
    /// Its first event: the wait starts now, unless it already started.
    fn start(&mut self) {
        self.since.get_or_insert_with(tokio::time::Instant::now);
    }

    /// Whether it has waited `batch_wait` since its first event.
    fn is_due(&self, batch_wait: Duration) -> bool {
        self.since.is_some_and(|t| t.elapsed() >= batch_wait)
    }

    /// How long until it is due; an empty request waits for events only.
    fn left(&self, batch_wait: Duration) -> Duration {
        self.since.map_or(Duration::from_secs(3600), |t| {
            batch_wait.saturating_sub(t.elapsed())
        })
    }
}

impl Elasticsearch {
    pub async fn run(
        self,
        mut input: mpsc::Receiver<Batch>,
        cx: RunCx,
        dead_letters: DeadLetters,
    ) -> Result<(), StageError> {
        let client = Client::new(&self, Arc::clone(&cx.pipeline))
            .map_err(|e| StageError::Fatal(format!("Elasticsearch output: {e}")))?
            .for_output(dead_letters.output().unwrap_or("output.elasticsearch"));
        let client = Arc::new(client);
        let probe_stop = CancellationToken::new();
        let _stop_probe = probe_stop.clone().drop_guard();
        // Whichever way the output ends, its last counts are published
        // before it is gone, not up to a second later (or never, at exit).
        let _last_counts = LastCounts(Arc::clone(&client));
        tokio::spawn(Arc::clone(&client).export_metrics(probe_stop.clone()));
        tokio::spawn(Arc::clone(&client).probe(probe_stop));
        let abort = cx.shutdown.abort.clone();
        if self.setup && !self.install_template(&client, &abort).await? {
            return Ok(());
        }

        let mut spares: Vec<Spare> = Vec::new();
        let mut request = Request::new(None);
        let mut in_flight: JoinSet<Done> = JoinSet::new();
        let mut open = true;
        loop {
            let full = request.events.len() >= self.batch_events
                || request.body.bytes.len() >= self.batch_bytes;
            let due = request.linger.is_due(self.batch_wait);
            let ready = !request.is_empty() && (full || due || !open);
            // The limit moves only when an answer comes, and a request
            // that got its last answer ends: `join_next` below wakes this
            // loop then, so it need not watch the limit.
            if ready && in_flight.len() < client.concurrency_limit() {
                let next = Request::new(spares.pop());
                let sending = std::mem::replace(&mut request, next);
                let job = Job {
                    client: Arc::clone(&client),
                    books: cx.books.clone(),
                    dead_letters: dead_letters.clone(),
                    abort: abort.clone(),
                };
                in_flight.spawn(job.deliver(sending));
                client.sending(in_flight.len());
                continue;
            }
            if ready {
                // Demand beyond the limit: evidence that a higher one
                // would be used.
                client.sending(in_flight.len());
            }
            if !open && request.is_empty() && in_flight.is_empty() {
                return Ok(());
            }
            let wait = request.linger.left(self.batch_wait);
            tokio::select! {
                received = input.recv(), if open && !full => match received {
                    Some(batch) => self.add(batch, &mut request)?,
                    None => open = false,
                },
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    let spare = done.map_err(|e| StageError::Fatal(format!("bulk request task: {e}")))??;
                    spares.push(spare);
                }
                _ = tokio::time::sleep(wait), if !due && !request.is_empty() => {}
                _ = abort.cancelled() => {
                    // Dropping the requests drops their tokens unacked: their
                    // sources read those events again after the restart.
                    in_flight.abort_all();
                    return Ok(());
                }
            }
        }
    }

    /// Serializes a batch into the request being filled.
    fn add(&self, batch: Batch, request: &mut Request) -> Result<(), StageError> {
        if batch.events.is_empty() {
            batch.ack.ack();
            return Ok(());
        }
        request.linger.start();
        let mut index = String::new();
        for event in &batch.events {
            self.index.render_into(event, &mut index);
            let id = self.document_id.render_strict(event);
            request
                .body
                .push(self.action, &index, id.as_deref(), &event.fields)
                .map_err(|e| StageError::Fatal(format!("cannot encode event: {e}")))?;
        }
        request.events.extend(batch.events);
        request.tokens.push(batch.ack);
        Ok(())
    }

    /// Installs the index template before the first request, retrying while
    /// the cluster is unreachable; false when aborted meanwhile. A server
    /// that cannot do what the output asks (data streams on Elasticsearch's
    /// OSS build) ends the output: sending would make plain indices.
    async fn install_template(
        &self,
        client: &Client,
        abort: &CancellationToken,
    ) -> Result<bool, StageError> {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        loop {
            match setup::install(self, client).await {
                Ok(done) => {
                    for step in done {
                        tracing::info!(step = %step, "Index management.");
                    }
                    return Ok(true);
                }
                Err(e @ setup::SetupError::Unsupported { .. }) => {
                    return Err(StageError::Fatal(format!("Elasticsearch output: {e}")));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot install the index template yet; retrying before sending anything.");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff.next_delay()) => {}
                _ = abort.cancelled() => return Ok(false),
            }
        }
    }
}

/// Publishes the output's counters when dropped.
struct LastCounts(Arc<Client>);

impl Drop for LastCounts {
    fn drop(&mut self) {
        self.0.export_counters();
    }
}

/// One bulk request in flight.
struct Job {
    client: Arc<Client>,
    books: Books,
    dead_letters: DeadLetters,
    abort: CancellationToken,
}

impl Job {
    /// Sends the request until every item is done, dead-letters what was
    /// refused for good, then acks the batches. Aborted, it returns without
    /// acking (the tokens drop as failed).
    async fn deliver(self, request: Request) -> Done {
        let Request {
            events,
            body,
            tokens,
            ..
        } = request;
        let counters = &self.client.counters;
        let mut delivery = Delivery::new(body.len());
        let mut retry_body = Vec::new();
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let mut item_backoff = backoff.clone();
        while let Some(todo) = delivery.next_send() {
            let bytes: &[u8] = if delivery.is_whole(&todo) {
                &body.bytes
            } else {
                body.select(&todo, &mut retry_body);
                &retry_body
            };
            let answer = loop {
                let (response, rtt) = match self.client.bulk(bytes, &mut backoff, &self.abort).await
                {
                    Sent::Answered { body, rtt } => (body, rtt),
                    Sent::Aborted => return Ok(Spare { body, events }),
                    Sent::Unfit { status, message } => break Answer::Unfit { status, message },
                };
                match response::classify(&response, todo.len()) {
                    Ok(outcomes) => {
                        // Items refused for now (429, rejected execution,
                        // 5xx) are the cluster's queues overflowing.
                        let signal = if outcomes.iter().any(|o| matches!(o, Outcome::Retry(_))) {
                            Signal::BackPressure
                        } else {
                            Signal::Ok
                        };
                        self.client.answered(rtt, signal);
                        break Answer::Items(outcomes);
                    }
                    Err(e) => {
                        // A proxy or a broken server answered 200 with
                        // something else: send the same items again.
                        Counters::add(&counters.failed_requests, 1);
                        tracing::warn!(error = %e, "Unreadable bulk response; sending the request again.");
                        if !pause(&mut item_backoff, &self.abort).await {
                            return Ok(Spare { body, events });
                        }
                    }
                }
            };
            let step = delivery.answer(todo, answer);
            if let Some((status, items)) = step.split {
                tracing::warn!(
                    status,
                    items,
                    "Elasticsearch refused the bulk request for its content; sending it in halves."
                );
            }
            Counters::add(&counters.indexed, step.indexed);
            Counters::add(&counters.already_indexed, step.already_indexed);
            self.books
                .settled(accounting::Outcome::Delivered, step.indexed);
            self.books
                .settled(accounting::Outcome::AlreadyIndexed, step.already_indexed);
            if step.already_indexed > 0 {
                tracing::debug!(
                    duplicates = step.already_indexed,
                    "Documents already indexed (replayed events)."
                );
            }
            if step.retried > 0 {
                Counters::add(&counters.retried_items, step.retried as u64);
                self.client.warn_items(step.retried, &step.retry_reason);
                if !pause(&mut item_backoff, &self.abort).await {
                    return Ok(Spare { body, events });
                }
            }
        }
        let rejected: Vec<DeadLetter> = delivery
            .refused
            .into_iter()
            .map(|r| DeadLetter {
                stage: "output.elasticsearch",
                reason: r.reason,
                status: Some(r.status),
                error_type: Some(r.error_type),
                index: body.index_of(r.item),
                event: events.get(r.item).cloned().unwrap_or_default(),
            })
            .collect();
        if !rejected.is_empty() {
            let path = self.dead_letters.path();
            let n = rejected.len() as u64;
            self.dead_letters
                .write(rejected)
                .await
                .map_err(|e| StageError::io("cannot write dead letters to", path, e))?;
            Counters::add(&counters.dead_lettered, n);
            self.books.settled(accounting::Outcome::DeadLettered, n);
        }
        for token in tokens {
            token.ack();
        }
        Ok(Spare { body, events })
    }
}

async fn pause(backoff: &mut Backoff, abort: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(backoff.next_delay()) => true,
        _ = abort.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `batch_wait` counts from the first event of a request, not the
    /// latest: a trickle of events cannot hold a request back for ever.
    #[tokio::test(start_paused = true)]
    async fn a_request_is_due_batch_wait_after_its_first_event() {
        let wait = Duration::from_secs(1);
        let mut linger = Linger::default();
        assert!(!linger.is_due(wait));
        assert_eq!(linger.left(wait), Duration::from_secs(3600));
        linger.start();
        tokio::time::advance(Duration::from_millis(600)).await;
        linger.start(); // a later event
        assert!(!linger.is_due(wait));
        assert_eq!(linger.left(wait), Duration::from_millis(400));
        tokio::time::advance(Duration::from_millis(400)).await;
        assert!(linger.is_due(wait));
        assert_eq!(linger.left(wait), Duration::ZERO);
    }

    /// Retry pauses grow with the backoff, never past its cap, and end at
    /// once when the output is aborted.
    #[tokio::test(start_paused = true)]
    async fn retry_pauses_follow_the_backoff_and_end_on_abort() {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let abort = CancellationToken::new();
        let mut slept = Duration::ZERO;
        for attempt in 0..10u32 {
            let started = tokio::time::Instant::now();
            assert!(pause(&mut backoff, &abort).await);
            let took = started.elapsed();
            let cap = Duration::from_millis(200 * (1 << attempt)).min(Duration::from_secs(30));
            assert!(took <= cap, "attempt {attempt}: {took:?} > {cap:?}");
            slept += took;
        }
        assert!(slept <= Duration::from_secs(30 * 10));
        abort.cancel();
        let started = tokio::time::Instant::now();
        assert!(!pause(&mut backoff, &abort).await);
        assert_eq!(started.elapsed(), Duration::ZERO, "an abort does not wait");
    }
}
