//! What an Elasticsearch output did, counted: plain atomics that the
//! metrics endpoint (a later issue) can expose as they are.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one output, shared by its in-flight requests.
#[derive(Debug, Default)]
pub struct Counters {
    /// Documents Elasticsearch created or overwrote.
    pub indexed: AtomicU64,
    /// `create` answered 409: the id was indexed before (a replay). A count
    /// growing without replays would reveal an id collision.
    pub already_indexed: AtomicU64,
    /// Events refused for good and written to the dead-letter file.
    pub dead_lettered: AtomicU64,
    /// Items sent again after a 429, a 5xx or a rejected execution.
    pub retried_items: AtomicU64,
    /// Whole bulk requests that failed (connection, timeout, HTTP error).
    pub failed_requests: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub indexed: u64,
    pub already_indexed: u64,
    pub dead_lettered: u64,
    pub retried_items: u64,
    pub failed_requests: u64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            indexed: self.indexed.load(Ordering::Relaxed),
            already_indexed: self.already_indexed.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            retried_items: self.retried_items.load(Ordering::Relaxed),
            failed_requests: self.failed_requests.load(Ordering::Relaxed),
        }
    }
}
