//! The two phases of stopping, shared by every stage of every pipeline.
//!
//! `stop` asks inputs to stop reading; everything downstream then drains
//! because its input channel closes. `abort` fires when the drain deadline
//! passes: stages give up on what they still hold (those events are not
//! acknowledged, so they are read again on the next start).

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    pub stop: CancellationToken,
    pub abort: CancellationToken,
}

impl Shutdown {
    /// A pair whose tokens are children of `parent`'s: cancelling the parent
    /// cancels this one, but not the other way round (a reload stops one
    /// pipeline without stopping the daemon).
    pub fn child(&self) -> Shutdown {
        Shutdown {
            stop: self.stop.child_token(),
            abort: self.abort.child_token(),
        }
    }
}

/// What every stage task gets besides its channels.
#[derive(Debug, Clone)]
pub struct RunCx {
    pub pipeline: Arc<str>,
    pub shutdown: Shutdown,
    /// Checkpoints and dead letters live below this directory.
    pub state_dir: PathBuf,
    /// The books this stage counts into (its half's; an output's own).
    pub books: crate::accounting::Books,
}

/// What the sources still had in flight when they stopped, per pipeline and
/// stage: batches whose events were not (known to be) delivered and are read
/// again on the next start. Read by `logpipe run` for its last word and
/// exit status.
fn undelivered_map(
) -> &'static std::sync::Mutex<std::collections::BTreeMap<(String, String), usize>> {
    static MAP: std::sync::OnceLock<
        std::sync::Mutex<std::collections::BTreeMap<(String, String), usize>>,
    > = std::sync::OnceLock::new();
    MAP.get_or_init(Default::default)
}

/// A source stops with `batches` unacknowledged.
pub fn record_undelivered(pipeline: &str, stage: &str, batches: usize) {
    if batches == 0 {
        return;
    }
    let mut map = undelivered_map().lock().unwrap_or_else(|p| p.into_inner());
    *map.entry((pipeline.to_owned(), stage.to_owned()))
        .or_default() += batches;
}

/// Everything recorded so far, emptied.
pub fn take_undelivered() -> Vec<(String, String, usize)> {
    let mut map = undelivered_map().lock().unwrap_or_else(|p| p.into_inner());
    std::mem::take(&mut *map)
        .into_iter()
        .map(|((p, s), n)| (p, s, n))
        .collect()
}
