//! Keeps the pipelines of `logpipe run` running: starts them, notices when
//! one ends or fails, reloads on SIGHUP, and stops them all on SIGTERM.
//!
//! A reload re-reads the pipeline files. A pipeline whose file is unchanged
//! keeps running untouched; a changed one is stopped (it drains and writes
//! its checkpoints, exactly as at shutdown) and started again from those
//! checkpoints, so nothing is lost or repeated; a file that no longer passes
//! the checks is reported and its running version is kept.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::app::service;
use crate::config::{self, Severity};
use crate::pipeline::{self, Pipeline};
use crate::shutdown::Shutdown;
use crate::topology::{self, Role};

struct Instance {
    digest: u64,
    path: PathBuf,
    generation: u64,
    shutdown: Shutdown,
}

/// A pipeline that ended: its name, its generation, and whether it failed.
type Ended = (String, u64, bool);

pub struct Supervisor {
    role: Role,
    state_dir: PathBuf,
    paths: Vec<PathBuf>,
    drain: Duration,
    root: Shutdown,
    running: HashMap<String, Instance>,
    next_generation: u64,
    ended_tx: mpsc::UnboundedSender<Ended>,
    ended_rx: mpsc::UnboundedReceiver<Ended>,
    /// A pipeline failed: the process exits non-zero.
    pub failed: bool,
    /// The drain deadline of the final stop passed with events in flight.
    drain_expired: Arc<AtomicBool>,
}

impl Supervisor {
    pub fn new(role: Role, state_dir: PathBuf, paths: Vec<PathBuf>, drain: Duration) -> Self {
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        Supervisor {
            role,
            state_dir,
            paths,
            drain,
            root: Shutdown::default(),
            running: HashMap::new(),
            next_generation: 0,
            ended_tx,
            ended_rx,
            failed: false,
            drain_expired: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Starts a pipeline's stages for this role.
    pub fn start(&mut self, pipeline: Pipeline) {
        let name = pipeline.name.clone();
        let (digest, path) = (pipeline.digest, pipeline.path.clone());
        let shutdown = self.root.child();
        let Some(running) = topology::spawn(pipeline, self.role, shutdown.clone(), &self.state_dir)
        else {
            return;
        };
        self.next_generation += 1;
        let generation = self.next_generation;
        let ended = self.ended_tx.clone();
        let task_name = name.clone();
        tokio::spawn(async move {
            let failed = running.wait().await.is_err();
            let _ = ended.send((task_name, generation, failed));
        });
        tracing::info!(pipeline = %name, role = ?self.role, "Pipeline started.");
        self.running.insert(
            name,
            Instance {
                digest,
                path,
                generation,
                shutdown,
            },
        );
    }

    /// Waits for the next pipeline to end; `false` once none is left.
    pub async fn next_ended(&mut self) -> bool {
        if self.running.is_empty() {
            return false;
        }
        if let Some(ended) = self.ended_rx.recv().await {
            self.ended(ended);
        }
        !self.running.is_empty()
    }

    fn ended(&mut self, (name, generation, failed): Ended) {
        if self
            .running
            .get(&name)
            .is_some_and(|i| i.generation == generation)
        {
            self.running.remove(&name);
        }
        if failed {
            // The failure was logged by its pipeline; stop the rest so that
            // systemd restarts the whole process.
            self.failed = true;
            self.shutdown();
        }
    }

    /// Stops every pipeline: inputs stop, in-flight events drain until the
    /// deadline.
    pub fn shutdown(&self) {
        if self.root.stop.is_cancelled() {
            return;
        }
        service::stopping();
        stop_with_deadline(
            &self.root,
            self.drain,
            Some(Arc::clone(&self.drain_expired)),
        );
    }

    /// Whether the final stop gave up on events in flight at its deadline.
    pub fn drain_expired(&self) -> bool {
        self.drain_expired.load(Ordering::Acquire)
    }

    pub fn is_stopping(&self) -> bool {
        self.root.stop.is_cancelled()
    }

    /// Re-reads the pipeline files and applies what changed.
    pub async fn reload(&mut self) {
        service::reloading();
        let loaded = pipeline::load(&self.paths, &config::process_env);
        let mut broken: HashSet<PathBuf> = HashSet::new();
        let mut global_error = false;
        for d in &loaded.diagnostics {
            match d.severity {
                Severity::Error => {
                    tracing::error!(diagnostic = %d, "Reload: invalid pipeline file; its running version is kept.");
                    if d.line == 0 && !d.path.is_file() {
                        global_error = true;
                    }
                    broken.insert(canonical(&d.path));
                }
                Severity::Warning => tracing::warn!(diagnostic = %d, "Reload: warning."),
            }
        }
        if global_error {
            tracing::error!(
                "Reload: the pipeline paths cannot be read; everything keeps running as it was."
            );
            service::ready("reload failed");
            return;
        }
        let mut fresh: HashMap<String, Pipeline> = loaded
            .pipelines
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        let mut stop = Vec::new();
        for (name, instance) in &self.running {
            if broken.contains(&canonical(&instance.path)) {
                fresh.remove(name);
                continue;
            }
            match fresh.get(name) {
                Some(p) if p.digest == instance.digest => {
                    fresh.remove(name);
                }
                Some(_) => {
                    tracing::info!(pipeline = %name, "Reload: the file changed; restarting the pipeline from its checkpoints.");
                    stop.push(name.clone());
                }
                None => {
                    tracing::info!(pipeline = %name, "Reload: the pipeline is gone; stopping it.");
                    stop.push(name.clone());
                }
            }
        }
        for name in stop {
            self.stop_and_wait(&name).await;
        }
        let (mut started, unchanged) = (0, self.running.len());
        for (_, pipeline) in fresh {
            if self.is_stopping() {
                break;
            }
            self.start(pipeline);
            started += 1;
        }
        tracing::info!(started, unchanged, "Reload done.");
        service::ready("reloaded");
    }

    /// Stops one pipeline and waits until it drained; other pipelines that
    /// end meanwhile are handled as usual.
    async fn stop_and_wait(&mut self, name: &str) {
        let Some(instance) = self.running.get(name) else {
            return;
        };
        let generation = instance.generation;
        stop_with_deadline(&instance.shutdown, self.drain, None);
        while let Some(ended) = self.ended_rx.recv().await {
            let done = ended.0 == name && ended.1 == generation;
            self.ended(ended);
            if done {
                break;
            }
        }
    }
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Cancels `stop` now and `abort` when the drain deadline passes (noting
/// that in `expired`, when given).
fn stop_with_deadline(shutdown: &Shutdown, drain: Duration, expired: Option<Arc<AtomicBool>>) {
    shutdown.stop.cancel();
    let abort = shutdown.abort.clone();
    tokio::spawn(async move {
        tokio::time::sleep(drain).await;
        if !abort.is_cancelled() {
            tracing::warn!(
                drain_timeout = ?drain,
                "Drain deadline passed; giving up on in-flight events (they will be read again)."
            );
            if let Some(expired) = expired {
                expired.store(true, Ordering::Release);
            }
            abort.cancel();
        }
    });
}
