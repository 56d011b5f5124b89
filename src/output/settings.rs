//! What every `[[output]]` has besides its own settings: its `if`, a name
//! for logs and metrics, what to do when it stops taking events, and its
//! dead-letter file. Taken out of the table before the output's own config
//! reads it, so each output type keeps rejecting keys it does not know.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::OutputSpec;
use crate::condition::Condition;
use crate::config::types::Seconds;
use crate::config::ConfigCx;

/// The keys read here, in every output table.
const KEYS: &[&str] = &[
    "id",
    "when_blocked",
    "blocked_timeout",
    "dead_letter_path",
    "dead_letter_max_bytes",
    "dead_letter_max_files",
];

/// Dead-letter files are rotated at this size unless an output says otherwise.
pub const DEAD_LETTER_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Rotated dead-letter files kept besides the current one, by default.
pub const DEAD_LETTER_MAX_FILES: usize = 5;
/// How long an output with `when_blocked = "spill"` may refuse a batch
/// before its events are spilled, by default.
pub const BLOCKED_TIMEOUT: Duration = Duration::from_secs(60);

/// An output of a pipeline with its common settings.
#[derive(Debug, Clone)]
pub struct Output {
    pub spec: OutputSpec,
    /// The fan-out sends it only the events this accepts.
    pub condition: Option<Condition>,
    /// `id`, else `<stage>#<position>` (`output.elasticsearch#2`): names it
    /// in logs, metrics and dead-letter records.
    pub label: String,
    pub when_blocked: WhenBlocked,
    pub dead_letter: DeadLetterFile,
}

/// What the fan-out does when an output takes no batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenBlocked {
    /// Wait: nothing is lost, and every output waits with it.
    Block,
    /// After `after` without taking a batch, its events go to its
    /// dead-letter file (reason `blocked`) until it takes batches again,
    /// so the other outputs carry on.
    Spill { after: Duration },
}

/// Where an output's dead letters go and how much of them is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterFile {
    /// `None`: the pipeline's default, `<state_dir>/dead-letter/<pipeline>.ndjson`.
    pub path: Option<PathBuf>,
    /// The file is rotated when a write would take it past this.
    pub max_bytes: u64,
    /// Rotated files kept (`.1` … `.N`); an older one is evicted, logged and
    /// counted.
    pub max_files: usize,
    /// Where the settings were written, for diagnostics that compare outputs.
    pub span: Range<usize>,
}

impl Default for DeadLetterFile {
    fn default() -> Self {
        DeadLetterFile {
            path: None,
            max_bytes: DEAD_LETTER_MAX_BYTES,
            max_files: DEAD_LETTER_MAX_FILES,
            span: 0..0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Common {
    /// A name for this output in logs, metrics and dead-letter records.
    id: Option<String>,
    /// `"block"` (default) or `"spill"`.
    when_blocked: Option<Spanned<String>>,
    /// With `spill`: how long the output may take no batch (default 60s).
    blocked_timeout: Option<Spanned<Seconds>>,
    /// Default `<state_dir>/dead-letter/<pipeline>.ndjson`.
    dead_letter_path: Option<String>,
    /// Rotate at this many bytes (default 256 MiB).
    dead_letter_max_bytes: Option<Spanned<u64>>,
    /// Rotated files kept (default 5).
    dead_letter_max_files: Option<usize>,
}

/// The common settings of one output table, taken out of it.
pub struct Taken {
    id: Option<String>,
    when_blocked: WhenBlocked,
    dead_letter: DeadLetterFile,
}

/// Takes the common keys out of an output's table and checks them.
pub fn take(table: &mut DeTable<'_>, span: &Range<usize>, cx: &mut ConfigCx<'_>) -> Option<Taken> {
    let mut common = DeTable::default();
    for key in KEYS {
        if let Some((k, v)) = table.remove_entry(*key) {
            common.insert(k, v);
        }
    }
    let common: Common = cx.de(Spanned::new(span.clone(), DeValue::Table(common)))?;
    let mut ok = true;
    let after = match &common.blocked_timeout {
        Some(t) if t.get_ref().0.is_zero() => {
            cx.error(&t.span(), "blocked_timeout must be longer than 0s");
            ok = false;
            BLOCKED_TIMEOUT
        }
        Some(t) => t.get_ref().0,
        None => BLOCKED_TIMEOUT,
    };
    let when_blocked = match common.when_blocked.as_ref() {
        None => WhenBlocked::Block,
        Some(w) => match w.get_ref().as_str() {
            "block" => WhenBlocked::Block,
            "spill" => WhenBlocked::Spill { after },
            other => {
                cx.error(
                    &w.span(),
                    format!("unknown when_blocked `{other}` (expected \"block\" or \"spill\")"),
                );
                ok = false;
                WhenBlocked::Block
            }
        },
    };
    if let (WhenBlocked::Block, Some(t)) = (when_blocked, &common.blocked_timeout) {
        cx.warn(
            &t.span(),
            "blocked_timeout has no effect without when_blocked = \"spill\"",
        );
    }
    let max_bytes = match &common.dead_letter_max_bytes {
        Some(n) if *n.get_ref() == 0 => {
            cx.error(&n.span(), "dead_letter_max_bytes must be at least 1");
            ok = false;
            DEAD_LETTER_MAX_BYTES
        }
        Some(n) => *n.get_ref(),
        None => DEAD_LETTER_MAX_BYTES,
    };
    let dead_letter = DeadLetterFile {
        path: common.dead_letter_path.as_deref().map(|p| cx.path(p)),
        max_bytes,
        max_files: common
            .dead_letter_max_files
            .unwrap_or(DEAD_LETTER_MAX_FILES),
        span: span.clone(),
    };
    ok.then_some(Taken {
        id: common.id,
        when_blocked,
        dead_letter,
    })
}

impl Taken {
    /// The output, once its own table is built; `position` is 1-based.
    pub fn output(self, spec: OutputSpec, position: usize) -> Output {
        let label = self
            .id
            .unwrap_or_else(|| format!("{}#{position}", spec.name()));
        Output {
            spec,
            condition: None,
            label,
            when_blocked: self.when_blocked,
            dead_letter: self.dead_letter,
        }
    }
}
