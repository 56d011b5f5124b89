//! One batch to every output: each gets the events its `if` accepts and a
//! clone of the token, so the source hears "delivered" only when every
//! output delivered. An output whose condition accepts none of a batch's
//! events gets nothing and holds no clone, so it cannot hold the batch back.
//!
//! An output with `when_blocked = "spill"` that takes no batch for its
//! `blocked_timeout` is *blocked*: from then on its share of each batch goes
//! to its dead-letter file (reason `blocked`) at once, and the other
//! outputs carry on; once its channel has room again it gets batches again.
//! Spilled events count as delivered for it only after they are on disk; a
//! spill that cannot be written waits for the output instead, so nothing
//! is lost either way.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::accounting::{Books, Outcome};
use crate::condition::Condition;
use crate::dead_letter::{DeadLetter, DeadLetters};
use crate::error::StageError;
use crate::event::{Batch, Event};

/// An output's channel, the condition that picks its events, and what to
/// do when it blocks.
pub struct Route {
    pub sender: mpsc::Sender<Batch>,
    pub condition: Option<Condition>,
    pub spill: Option<Spill>,
    /// The output's books: events its `if` skips, and spilled ones.
    pub books: Books,
}

/// A route that spills when blocked.
pub struct Spill {
    pub pipeline: std::sync::Arc<str>,
    pub stage: &'static str,
    pub label: String,
    pub after: Duration,
    pub dead_letters: DeadLetters,
    blocked: bool,
}

impl Spill {
    pub fn new(
        pipeline: std::sync::Arc<str>,
        stage: &'static str,
        label: String,
        after: Duration,
        dead_letters: DeadLetters,
    ) -> Self {
        Spill {
            pipeline,
            stage,
            label,
            after,
            dead_letters,
            blocked: false,
        }
    }

    fn set_blocked(&mut self, blocked: bool) {
        self.blocked = blocked;
        metrics::gauge!("logpipe_output_blocked", "pipeline" => self.pipeline.to_string(), "output" => self.label.clone())
            .set(if blocked { 1.0 } else { 0.0 });
        if blocked {
            tracing::warn!(pipeline = %self.pipeline, output = %self.label, after = ?self.after, "Output took no batch within blocked_timeout; its events go to its dead-letter file until it takes batches again.");
            crate::monitor::health::degraded(
                &self.pipeline,
                &self.health_key(),
                format!("{} blocked: spilling to the dead-letter file", self.label),
            );
        } else {
            tracing::info!(pipeline = %self.pipeline, output = %self.label, "Output takes batches again; spilling stopped.");
            crate::monitor::health::ended(&self.pipeline, &self.health_key());
        }
    }

    /// Its own `/health` entry, so that the output's entry keeps saying
    /// what the output itself sees.
    fn health_key(&self) -> String {
        format!("spill[{}]", self.label)
    }

    /// Writes the batch's events as dead letters; hands the batch back when
    /// that fails.
    async fn write(&self, batch: Batch, books: &Books) -> Result<(), Batch> {
        let records = batch
            .events
            .iter()
            .map(|event| DeadLetter {
                stage: self.stage,
                reason: format!(
                    "blocked: {} took no batch for {:?} (when_blocked = \"spill\")",
                    self.label, self.after
                ),
                status: None,
                error_type: Some("blocked".into()),
                index: None,
                event: event.clone(),
            })
            .collect();
        match self.dead_letters.write(records).await {
            Ok(()) => {
                metrics::counter!("logpipe_output_spilled_events_total", "pipeline" => self.pipeline.to_string(), "output" => self.label.clone())
                    .increment(batch.events.len() as u64);
                books.settled(Outcome::DeadLettered, batch.events.len() as u64);
                batch.ack.ack();
                Ok(())
            }
            Err(_) => Err(batch),
        }
    }
}

fn stopped() -> StageError {
    StageError::Fatal("an output stopped".into())
}

/// Hands one route its share of a batch, waiting or spilling as it says.
async fn deliver(route: &mut Route, batch: Batch) -> Result<(), StageError> {
    let Some(spill) = route.spill.as_mut() else {
        return route.sender.send(batch).await.map_err(|_| stopped());
    };
    let batch = if spill.blocked {
        match route.sender.try_reserve() {
            Ok(permit) => {
                spill.set_blocked(false);
                permit.send(batch);
                return Ok(());
            }
            Err(TrySendError::Closed(())) => return Err(stopped()),
            Err(TrySendError::Full(())) => batch,
        }
    } else {
        match tokio::time::timeout(spill.after, route.sender.reserve()).await {
            Ok(Ok(permit)) => {
                permit.send(batch);
                return Ok(());
            }
            Ok(Err(_)) => return Err(stopped()),
            Err(_) => {
                spill.set_blocked(true);
                batch
            }
        }
    };
    match spill.write(batch, &route.books).await {
        Ok(()) => Ok(()),
        // Logged by the writer; the events stay for the output itself.
        Err(batch) => route.sender.send(batch).await.map_err(|_| stopped()),
    }
}

pub async fn run(
    pipeline: std::sync::Arc<str>,
    mut input: mpsc::Receiver<Batch>,
    mut routes: Vec<Route>,
) -> Result<(), StageError> {
    while let Some(batch) = input.recv().await {
        if let [route @ Route {
            condition: None, ..
        }] = routes.as_mut_slice()
        {
            crate::monitor::tap::offer(
                &pipeline,
                crate::monitor::tap::Point::Output,
                &batch.events,
            );
            deliver(route, batch).await?;
            continue;
        }
        let Batch { events, ack } = batch;
        let total = events.len();
        let shares = split(&routes, events);
        for (route, events) in routes.iter_mut().zip(shares) {
            // Counted before any share can be acknowledged.
            route.books.skipped(total - events.len());
            if events.is_empty() {
                continue;
            }
            crate::monitor::tap::offer(&pipeline, crate::monitor::tap::Point::Output, &events);
            deliver(route, Batch::new(events, ack.clone())).await?;
        }
        // The clones now decide the outcome; this share is done. When no
        // output took an event the batch is delivered: nothing was meant to go.
        ack.ack();
    }
    Ok(())
}

/// The events of a batch each route accepts, in order. An event is moved
/// into the last route that takes it and cloned only for the ones before.
fn split(routes: &[Route], events: Vec<Event>) -> Vec<Vec<Event>> {
    let mut shares: Vec<Vec<Event>> = routes.iter().map(|_| Vec::new()).collect();
    for event in events {
        let mut taker: Option<usize> = None;
        for (i, route) in routes.iter().enumerate() {
            if route.condition.as_ref().is_none_or(|c| c.eval(&event)) {
                if let Some(before) = taker {
                    shares[before].push(event.clone());
                }
                taker = Some(i);
            }
        }
        if let Some(last) = taker {
            shares[last].push(event);
        }
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::AckTracker;
    use serde_json::json;

    fn tagged(tag: &str) -> Event {
        let mut event = Event::from_message(tag);
        event.add_tag(tag);
        event
    }

    fn route(condition: Option<&str>) -> (Route, mpsc::Receiver<Batch>) {
        let (sender, rx) = mpsc::channel(4);
        let condition = condition.map(|c| Condition::parse(c).unwrap());
        (
            Route {
                sender,
                condition,
                spill: None,
                books: Books::detached("t"),
            },
            rx,
        )
    }

    #[tokio::test]
    async fn each_output_gets_only_the_events_its_condition_accepts() {
        let (a, mut rx_a) = route(Some(r#""access" in [tags]"#));
        let (b, mut rx_b) = route(Some(r#""error" in [tags]"#));
        let (tx, rx) = mpsc::channel(4);
        let fanout = tokio::spawn(run("t".into(), rx, vec![a, b]));
        let mut tracker = AckTracker::new();
        let lane = tracker.open_lane();
        let events = vec![tagged("access"), tagged("error"), tagged("access")];
        tx.send(Batch::new(events, tracker.track(lane, 1u64, 1)))
            .await
            .unwrap();
        let got_a = rx_a.recv().await.unwrap();
        let got_b = rx_b.recv().await.unwrap();
        assert_eq!(got_a.events.len(), 2);
        assert_eq!(got_b.events.len(), 1);
        assert_eq!(got_b.events[0].fields["message"], json!("error"));
        got_a.ack.ack();
        tracker.drain();
        assert!(
            tracker.take_progress().is_empty(),
            "output b still holds it"
        );
        got_b.ack.ack();
        tracker.recv().await;
        assert_eq!(tracker.take_progress(), vec![(lane, 1)]);
        drop(tx);
        fanout.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn an_output_that_gets_no_event_does_not_hold_the_batch() {
        let (a, mut rx_a) = route(Some(r#""access" in [tags]"#));
        let (b, mut rx_b) = route(Some(r#""error" in [tags]"#));
        let (tx, rx) = mpsc::channel(4);
        let fanout = tokio::spawn(run("t".into(), rx, vec![a, b]));
        let mut tracker = AckTracker::new();
        let lane = tracker.open_lane();
        tx.send(Batch::new(
            vec![tagged("access")],
            tracker.track(lane, 1u64, 1),
        ))
        .await
        .unwrap();
        tx.send(Batch::new(
            vec![tagged("other")],
            tracker.track(lane, 2u64, 1),
        ))
        .await
        .unwrap();
        rx_a.recv().await.unwrap().ack.ack();
        drop(tx);
        fanout.await.unwrap().unwrap();
        assert!(rx_b.try_recv().is_err());
        tracker.recv().await;
        tracker.drain();
        let progress = tracker.take_progress();
        assert_eq!(progress, vec![(lane, 2)]);
        assert!(!tracker.has_failed());
    }

    /// One output never reads: after `blocked_timeout` its share is spilled,
    /// the other output gets every batch, every batch is delivered once
    /// either way, and the blocked output gets batches again once it reads.
    #[tokio::test(start_paused = true)]
    async fn a_blocked_output_with_spill_does_not_stop_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill.ndjson");
        let dead_letters = DeadLetters::new("p", path.clone(), 1 << 20, 5);
        let (a, mut rx_a) = route(None);
        let (sender, mut rx_b) = mpsc::channel(1);
        let ledger = crate::accounting::Ledger::new(
            "p".into(),
            crate::accounting::Half::Whole,
            &["a".into(), "stuck".into()],
        );
        let books = Books::new(std::sync::Arc::clone(&ledger));
        let b = Route {
            sender,
            condition: None,
            spill: Some(Spill::new(
                "p".into(),
                "output.null",
                "stuck".into(),
                Duration::from_secs(5),
                dead_letters.for_output("stuck"),
            )),
            books: books.for_output(1),
        };
        let (tx, rx) = mpsc::channel(1);
        let fanout = tokio::spawn(run("t".into(), rx, vec![a, b]));
        let mut tracker = AckTracker::new().counting(std::sync::Arc::clone(&ledger));
        let lane = tracker.open_lane();
        let started = tokio::time::Instant::now();
        for n in 1..=5u64 {
            let events = vec![tagged(&format!("e{n}")), tagged(&format!("f{n}"))];
            tx.send(Batch::new(events, tracker.track(lane, n, 2)))
                .await
                .unwrap();
            rx_a.recv().await.unwrap().ack.ack();
        }
        // b took batch 1 into its channel; batch 2 waited 5 s, then 2..=5
        // were spilled: 4 batches, 8 events, waiting only once. (a gets each
        // batch before b does: let the fan-out finish batch 5.)
        let waited = started.elapsed();
        for _ in 0..100 {
            if dead_letters.count() == 8 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(dead_letters.count(), 8);
        assert!(
            waited >= Duration::from_secs(5) && waited < Duration::from_secs(10),
            "{waited:?}"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["error_type"], "blocked");
        assert_eq!(first["output"], "stuck");
        assert_eq!(first["event"]["message"], "e2");
        // Batch 1 is still b's: nothing is checkpointed past it.
        tracker.drain();
        assert!(tracker.take_progress().is_empty());
        // b reads: batch 1 is delivered, and batch 6 goes to b, not to the file.
        rx_b.recv().await.unwrap().ack.ack();
        tx.send(Batch::new(vec![tagged("e6")], tracker.track(lane, 6u64, 1)))
            .await
            .unwrap();
        rx_a.recv().await.unwrap().ack.ack();
        let sixth = rx_b.recv().await.unwrap();
        assert_eq!(sixth.events[0].fields["message"], json!("e6"));
        sixth.ack.ack();
        assert_eq!(dead_letters.count(), 8);
        drop(tx);
        fanout.await.unwrap().unwrap();
        while tracker.in_flight() > 0 {
            tracker.recv().await;
        }
        tracker.drain();
        assert_eq!(tracker.take_progress().last(), Some(&(lane, 6)));
        assert!(!tracker.has_failed());
        // The books of the spilling output: the 8 spilled events are dead
        // letters, nothing is in flight (output a's share was counted by a).
        let b = ledger.balance();
        assert_eq!((b.read, b.settled, b.in_flight()), (11, 11, 0));
        assert_eq!(b.outputs[1].dead_lettered, 8);
    }

    /// With the default (`block`), a stuck output holds every output: the
    /// fan-out waits and nothing is spilled.
    #[tokio::test(start_paused = true)]
    async fn a_blocked_output_without_spill_holds_the_pipeline() {
        let (a, mut rx_a) = route(None);
        let (b, _rx_b) = {
            let (sender, rx) = mpsc::channel(1);
            (
                Route {
                    sender,
                    condition: None,
                    spill: None,
                    books: Books::detached("t"),
                },
                rx,
            )
        };
        let (tx, rx) = mpsc::channel(1);
        let _fanout = tokio::spawn(run("t".into(), rx, vec![a, b]));
        let mut tracker = AckTracker::new();
        let lane = tracker.open_lane();
        for n in 1..=3u64 {
            tx.send(Batch::new(vec![tagged("x")], tracker.track(lane, n, 1)))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
        let mut got = 0;
        while rx_a.try_recv().is_ok() {
            got += 1;
        }
        assert_eq!(got, 2, "batch 1 into b's channel, batch 2 waits for b");
    }
}
