//! Stage heartbeats: is every stage task still able to make progress?
//!
//! Every stage task (and every filter worker) runs inside [`watch`], which
//! notes when a poll of the task begins and clears it when the poll returns.
//! A stage waiting for input, for a broker or for Elasticsearch returns
//! `Pending` and is idle, so a pipeline held back by an outage is alive (it
//! is retrying, and `/health` says so). A stage stuck in a loop or blocked
//! on a lock never returns from its poll: its poll grows old, and
//! [`wedged`] names it. The systemd watchdog pings only while no stage is
//! wedged, so systemd restarts a service with a wedged stage.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// One watched task.
#[derive(Debug)]
struct Beat {
    pipeline: Arc<str>,
    stage: &'static str,
    /// Nanoseconds since [`epoch`] plus one at which the running poll began;
    /// 0 between polls.
    polling_since: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_nanos() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
}

fn registry() -> &'static Mutex<Vec<Weak<Beat>>> {
    static BEATS: OnceLock<Mutex<Vec<Weak<Beat>>>> = OnceLock::new();
    BEATS.get_or_init(Default::default)
}

/// A future whose polls are timed for [`wedged`].
pub struct Watched<F> {
    inner: Pin<Box<F>>,
    beat: Arc<Beat>,
}

/// Runs `future` as the task of `stage` in `pipeline`, watched.
pub fn watch<F: Future>(pipeline: &Arc<str>, stage: &'static str, future: F) -> Watched<F> {
    epoch();
    let beat = Arc::new(Beat {
        pipeline: Arc::clone(pipeline),
        stage,
        polling_since: AtomicU64::new(0),
    });
    let mut beats = registry().lock().unwrap_or_else(|e| e.into_inner());
    beats.retain(|b| b.strong_count() > 0);
    beats.push(Arc::downgrade(&beat));
    Watched {
        inner: Box::pin(future),
        beat,
    }
}

impl<F: Future> Future for Watched<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.beat
            .polling_since
            .store(now_nanos(), Ordering::Relaxed);
        let result = self.inner.as_mut().poll(cx);
        self.beat.polling_since.store(0, Ordering::Relaxed);
        result
    }
}

/// A stage whose current poll has run longer than asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wedged {
    pub pipeline: String,
    pub stage: &'static str,
    pub for_: Duration,
}

/// The stages whose current poll began more than `threshold` ago.
pub fn wedged(threshold: Duration) -> Vec<Wedged> {
    let now = now_nanos();
    let beats = registry().lock().unwrap_or_else(|e| e.into_inner());
    beats
        .iter()
        .filter_map(Weak::upgrade)
        .filter_map(|beat| {
            let since = beat.polling_since.load(Ordering::Relaxed);
            let age = Duration::from_nanos(now.saturating_sub(since));
            (since != 0 && age > threshold).then(|| Wedged {
                pipeline: beat.pipeline.to_string(),
                stage: beat.stage,
                for_: age,
            })
        })
        .collect()
}

/// The test-only hook that wedges a stage: with `LOGPIPE_TEST_WEDGE` set to
/// `stage`, the caller blocks its thread for good (a stuck loop, as a bug
/// would). Read once; unset in production, where this is one branch.
pub fn test_wedge(stage: &str) {
    static WEDGE: OnceLock<Option<String>> = OnceLock::new();
    let wanted = WEDGE.get_or_init(|| std::env::var("LOGPIPE_TEST_WEDGE").ok());
    if wanted.as_deref() == Some(stage) {
        tracing::warn!(stage, "LOGPIPE_TEST_WEDGE: wedging this stage on purpose.");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stage_that_waits_is_alive_and_one_stuck_in_its_poll_is_wedged() {
        let pipeline: Arc<str> = Arc::from("heartbeat-test");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let waiting = tokio::spawn(watch(&pipeline, "waiting", async move {
            let _ = rx.await;
        }));
        let stuck = tokio::task::spawn_blocking({
            let pipeline = Arc::clone(&pipeline);
            move || {
                // A poll that never returns in time: blocks 600 ms.
                futures_block(watch(&pipeline, "stuck", async {
                    std::thread::sleep(Duration::from_millis(600));
                }));
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mine: Vec<_> = wedged(Duration::from_millis(200))
            .into_iter()
            .filter(|w| w.pipeline == "heartbeat-test")
            .map(|w| w.stage)
            .collect();
        assert_eq!(mine, ["stuck"]);
        stuck.await.unwrap();
        assert!(wedged(Duration::from_millis(200))
            .iter()
            .all(|w| w.pipeline != "heartbeat-test"));
        let _ = tx.send(());
        waiting.await.unwrap();
    }

    /// Polls `future` to completion on this thread.
    fn futures_block<F: Future>(future: F) {
        let mut future = Box::pin(future);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        while future.as_mut().poll(&mut cx).is_pending() {}
    }
}
