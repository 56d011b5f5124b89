//! End-to-end acknowledgements: how a source learns that its events were
//! durably delivered by the last stage, so that it can move its checkpoint
//! (file offsets, Kafka offsets) past them and never past anything else.
//!
//! Every [`Batch`](crate::event::Batch) carries an [`AckToken`]. Stages pass the
//! token on, clone it (fan-out to several outputs, a bulk request holding
//! several batches) and finally [`AckToken::ack`] every clone. The source hears
//! the outcome when the **last** clone is gone: `Delivered` if every clone was
//! acked, `Failed` if any clone was dropped without an ack (a panic, an abort at
//! shutdown, a bug). Dropping is never mistaken for success.
//!
//! The source side is an [`AckTracker`]: positions are tracked per *lane* (one
//! lane per file, one per Kafka partition), and a lane's committable position
//! only moves over a gap-free prefix of delivered batches, so a slow batch holds
//! its lane back and is never skipped.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::accounting::Ledger;

/// The final outcome of one tracked batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckStatus {
    Delivered,
    Failed,
}

/// Identifies a lane of an [`AckTracker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LaneId(u64);

type Report = (LaneId, u64, AckStatus);

struct Shared {
    failed: AtomicBool,
    report: Option<(mpsc::UnboundedSender<Report>, LaneId, u64)>,
    /// The books the batch's events were read into, and how many there were.
    books: Option<(Arc<Ledger>, u64)>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let status = if self.failed.load(Ordering::Acquire) {
            AckStatus::Failed
        } else {
            AckStatus::Delivered
        };
        if let Some((ledger, events)) = self.books.take() {
            ledger.closed(events, status == AckStatus::Delivered);
        }
        if let Some((sink, lane, seq)) = self.report.take() {
            // The tracker may be gone (its source stopped); then nobody waits.
            let _ = sink.send((lane, seq, status));
        }
    }
}

/// A claim on one batch's delivery. See the module docs.
pub struct AckToken {
    shared: Arc<Shared>,
    settled: bool,
}

impl std::fmt::Debug for AckToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckToken")
            .field("tracked", &self.shared.report.is_some())
            .finish()
    }
}

impl AckToken {
    /// A token nobody listens to, for events whose source keeps no position
    /// (`logpipe test`, unit tests).
    pub fn untracked() -> Self {
        AckToken {
            shared: Arc::new(Shared {
                failed: AtomicBool::new(false),
                report: None,
                books: None,
            }),
            settled: false,
        }
    }

    /// This holder's share of the batch is delivered.
    pub fn ack(mut self) {
        self.settled = true;
    }

    /// This holder's share of the batch could not be delivered.
    pub fn fail(mut self) {
        self.shared.failed.store(true, Ordering::Release);
        self.settled = true;
    }
}

impl Clone for AckToken {
    fn clone(&self) -> Self {
        AckToken {
            shared: Arc::clone(&self.shared),
            settled: false,
        }
    }
}

impl Drop for AckToken {
    fn drop(&mut self) {
        if !self.settled {
            self.shared.failed.store(true, Ordering::Release);
        }
    }
}

struct Lane<P> {
    /// Sequence number of `pending[0]`.
    base: u64,
    next: u64,
    pending: VecDeque<(P, Option<AckStatus>)>,
    failed: bool,
}

/// Ordered positions of one source, per lane. Not thread-safe on purpose: it
/// lives inside the source's task.
pub struct AckTracker<P> {
    lanes: HashMap<LaneId, Lane<P>>,
    next_lane: u64,
    sink: mpsc::UnboundedSender<Report>,
    reports: mpsc::UnboundedReceiver<Report>,
    /// Lanes whose committable position moved since the last `take_progress`.
    progressed: HashMap<LaneId, P>,
    /// Where the events of tracked batches are counted, read and settled.
    books: Option<Arc<Ledger>>,
}

impl<P: Clone> Default for AckTracker<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Clone> AckTracker<P> {
    pub fn new() -> Self {
        let (sink, reports) = mpsc::unbounded_channel();
        AckTracker {
            lanes: HashMap::new(),
            next_lane: 0,
            sink,
            reports,
            progressed: HashMap::new(),
            books: None,
        }
    }

    /// Counts the events of every batch it tracks into `ledger`: read when
    /// tracked, settled when the batch's outcome is known.
    pub fn counting(mut self, ledger: Arc<Ledger>) -> Self {
        self.books = Some(ledger);
        self
    }

    /// Opens a new lane (a file, a partition).
    pub fn open_lane(&mut self) -> LaneId {
        let id = LaneId(self.next_lane);
        self.next_lane += 1;
        self.lanes.insert(
            id,
            Lane {
                base: 0,
                next: 0,
                pending: VecDeque::new(),
                failed: false,
            },
        );
        id
    }

    /// Forgets a lane; reports still in flight for it are ignored.
    pub fn close_lane(&mut self, lane: LaneId) {
        self.lanes.remove(&lane);
        self.progressed.remove(&lane);
    }

    /// Tracks a batch of `events` that ends at `position` (the position to
    /// commit once it and everything before it in the lane is delivered).
    pub fn track(&mut self, lane: LaneId, position: P, events: usize) -> AckToken {
        let books = self.books.as_ref().map(|ledger| {
            ledger.opened(events as u64);
            (Arc::clone(ledger), events as u64)
        });
        // A closed lane keeps no position, but its events still count.
        let report = self.lanes.get_mut(&lane).map(|state| {
            let seq = state.next;
            state.next += 1;
            state.pending.push_back((position, None));
            (self.sink.clone(), lane, seq)
        });
        AckToken {
            shared: Arc::new(Shared {
                failed: AtomicBool::new(false),
                report,
                books,
            }),
            settled: false,
        }
    }

    /// Waits for at least one report and applies every report available.
    pub async fn recv(&mut self) {
        // The tracker holds a sender itself, so the channel never closes.
        if let Some(report) = self.reports.recv().await {
            self.apply(report);
        }
        self.drain();
    }

    /// Applies the reports that have arrived, without waiting.
    pub fn drain(&mut self) {
        while let Ok(report) = self.reports.try_recv() {
            self.apply(report);
        }
    }

    fn apply(&mut self, (lane, seq, status): Report) {
        let Some(state) = self.lanes.get_mut(&lane) else {
            return;
        };
        let Some(index) = seq.checked_sub(state.base) else {
            return;
        };
        if let Some(slot) = state.pending.get_mut(index as usize) {
            slot.1 = Some(status);
        }
        let mut moved = None;
        while let Some((_, Some(status))) = state.pending.front() {
            if *status == AckStatus::Failed {
                state.failed = true;
                break;
            }
            if let Some((position, _)) = state.pending.pop_front() {
                moved = Some(position);
            }
            state.base += 1;
        }
        if let Some(position) = moved {
            self.progressed.insert(lane, position);
        }
    }

    /// The lanes whose committable position moved, with that position.
    pub fn take_progress(&mut self) -> Vec<(LaneId, P)> {
        self.progressed.drain().collect()
    }

    /// Batches tracked but not yet settled, over all lanes.
    pub fn in_flight(&self) -> usize {
        self.lanes.values().map(|l| l.pending.len()).sum()
    }

    /// Batches tracked but not yet settled in one lane.
    pub fn lane_in_flight(&self, lane: LaneId) -> usize {
        self.lanes.get(&lane).map_or(0, |l| l.pending.len())
    }

    /// Whether a batch failed in some lane; its lane no longer advances.
    pub fn has_failed(&self) -> bool {
        self.lanes.values().any(|l| l.failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn position_moves_only_over_a_delivered_prefix() {
        let mut tracker = AckTracker::new();
        let lane = tracker.open_lane();
        let first = tracker.track(lane, 10u64, 1);
        let second = tracker.track(lane, 20u64, 1);
        let third = tracker.track(lane, 30u64, 1);

        second.ack();
        tracker.recv().await;
        assert!(
            tracker.take_progress().is_empty(),
            "the first batch holds the lane"
        );

        first.ack();
        tracker.recv().await;
        assert_eq!(tracker.take_progress(), vec![(lane, 20)]);
        assert_eq!(tracker.in_flight(), 1);

        third.ack();
        tracker.recv().await;
        assert_eq!(tracker.take_progress(), vec![(lane, 30)]);
        assert_eq!(tracker.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_batch_is_delivered_only_when_every_clone_is_acked() {
        let mut tracker = AckTracker::new();
        let lane = tracker.open_lane();
        let token = tracker.track(lane, 1u64, 1);
        let clone = token.clone();
        token.ack();
        tracker.drain();
        assert!(tracker.take_progress().is_empty());
        clone.ack();
        tracker.recv().await;
        assert_eq!(tracker.take_progress(), vec![(lane, 1)]);
    }

    #[tokio::test]
    async fn dropping_a_clone_without_ack_fails_the_batch_and_stops_the_lane() {
        let mut tracker = AckTracker::new();
        let lane = tracker.open_lane();
        let token = tracker.track(lane, 1u64, 1);
        let later = tracker.track(lane, 2u64, 1);
        let clone = token.clone();
        token.ack();
        drop(clone);
        later.ack();
        tracker.recv().await;
        tracker.drain();
        assert!(tracker.has_failed());
        assert!(tracker.take_progress().is_empty());
    }

    #[tokio::test]
    async fn lanes_advance_independently() {
        let mut tracker = AckTracker::new();
        let a = tracker.open_lane();
        let b = tracker.open_lane();
        let slow = tracker.track(a, 1u64, 1);
        tracker.track(b, 7u64, 1).ack();
        tracker.recv().await;
        assert_eq!(tracker.take_progress(), vec![(b, 7)]);
        assert_eq!(tracker.lane_in_flight(a), 1);
        drop(slow);
    }

    #[tokio::test]
    async fn reports_for_a_closed_lane_are_ignored() {
        let mut tracker = AckTracker::new();
        let lane = tracker.open_lane();
        let token = tracker.track(lane, 5u64, 1);
        tracker.close_lane(lane);
        token.ack();
        tracker.recv().await;
        assert!(tracker.take_progress().is_empty());
        assert_eq!(tracker.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_counting_tracker_counts_events_read_and_settled_once_per_batch() {
        let ledger = Ledger::new(Arc::from("p"), crate::accounting::Half::Whole, &[]);
        let mut tracker = AckTracker::new().counting(Arc::clone(&ledger));
        let lane = tracker.open_lane();
        let delivered = tracker.track(lane, 1u64, 7);
        let failed = tracker.track(lane, 2u64, 3);
        let clone = delivered.clone();
        assert_eq!(ledger.balance().read, 10);
        delivered.ack();
        assert_eq!(ledger.balance().settled, 0, "a clone still holds it");
        clone.ack();
        drop(failed);
        let b = ledger.balance();
        assert_eq!(
            (b.settled, b.failed, b.in_flight(), b.batches_in_flight),
            (7, 3, 0, 0)
        );
        // A closed lane keeps no position but still counts its events.
        tracker.close_lane(lane);
        tracker.track(lane, 3u64, 2).ack();
        assert_eq!(ledger.balance().settled, 9);
    }

    #[test]
    fn untracked_tokens_can_be_dropped_freely() {
        let token = AckToken::untracked();
        let clone = token.clone();
        token.ack();
        drop(clone);
    }
}
