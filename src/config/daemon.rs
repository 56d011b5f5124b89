//! Daemon-wide settings from the optional `/etc/logpipe/logpipe.toml`:
//! things that belong to the host, not to a route (endpoints live in
//! pipeline files).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::types::Seconds;
use super::{Diagnostic, Source};

pub const DEFAULT_PATH: &str = "/etc/logpipe/logpipe.toml";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/logpipe";
pub const DEFAULT_METRICS_ADDRESS: &str = "127.0.0.1:9600";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Checkpoints and dead letters. `--state-dir` and `LOGPIPE_STATE_DIR`
    /// take precedence.
    pub state_dir: Option<PathBuf>,
    /// How long a shutdown may spend draining in-flight events before it
    /// gives up on them (they are re-read on the next start). Default 30s.
    pub drain_timeout: Option<Seconds>,
    /// Address of the `/metrics` and `/health` endpoint (default
    /// `127.0.0.1:9600`); `"off"` disables it. `--metrics-address` wins.
    pub metrics_address: Option<String>,
}

impl DaemonConfig {
    /// Reads `path`; a missing file at the default location is not an error.
    pub fn load(path: Option<&Path>) -> Result<Self, Diagnostic> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_PATH), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(DaemonConfig::default())
            }
            Err(e) => return Err(Source::new(&path, "").error(format!("cannot read: {e}"))),
        };
        let source = Source::new(&path, text);
        toml::from_str(&source.text).map_err(|e| match e.span() {
            Some(span) => source.error_at(span.start, e.message().trim()),
            None => source.error(e.message().trim()),
        })
    }

    pub fn drain_timeout(&self) -> Duration {
        self.drain_timeout.map_or(Duration::from_secs(30), |s| s.0)
    }

    /// `--metrics-address`, else this file's, else `127.0.0.1:9600`; `None`
    /// when switched off.
    pub fn metrics_address(
        &self,
        flag: Option<&str>,
    ) -> Result<Option<std::net::SocketAddr>, String> {
        let text = flag
            .or(self.metrics_address.as_deref())
            .unwrap_or(DEFAULT_METRICS_ADDRESS);
        if text.eq_ignore_ascii_case("off") || text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|e| {
            format!("invalid metrics address `{text}`: {e} (expected host:port or \"off\")")
        })
    }

    /// `--state-dir`, else `LOGPIPE_STATE_DIR`, else this file's `state_dir`,
    /// else `/var/lib/logpipe`.
    pub fn state_dir(&self, flag: Option<&Path>) -> PathBuf {
        if let Some(dir) = flag {
            return dir.to_path_buf();
        }
        if let Some(dir) = std::env::var_os("LOGPIPE_STATE_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        self.state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
    }
}
