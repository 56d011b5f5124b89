//! Lifecycle of the commands: load and check the pipelines, spawn them,
//! wait for a signal, drain within the deadline, and map the outcome to an
//! exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};

use crate::config::daemon::DaemonConfig;
use crate::config::{self, Loaded, Severity};
use crate::shutdown::Shutdown;
use crate::topology::{self, Role};

/// Exit code for invalid configuration.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for a pipeline that failed at run time.
pub const EXIT_FAILURE: u8 = 1;

/// Prints every diagnostic to stderr; returns whether any is an error.
fn report(loaded: &Loaded) -> bool {
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    loaded.has_errors()
}

/// `logpipe check`.
pub fn check(paths: &[PathBuf]) -> ExitCode {
    let loaded = config::load(paths, &config::process_env);
    if report(&loaded) {
        let errors = loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        eprintln!("{errors} error(s); nothing was started.");
        return ExitCode::from(EXIT_CONFIG);
    }
    for p in &loaded.pipelines {
        println!(
            "ok: {} ({}): {} input(s), {}{} filter(s), {} output(s)",
            p.path.display(),
            p.name,
            p.inputs.len(),
            if p.hop.is_some() { "kafka hop, " } else { "" },
            p.filters.len(),
            p.outputs.len()
        );
    }
    ExitCode::SUCCESS
}

/// `logpipe setup`: installs the index template of every Elasticsearch
/// output, printing each step.
pub async fn setup(paths: &[PathBuf]) -> ExitCode {
    use crate::output::elasticsearch::{client::Client, setup};
    use crate::output::OutputSpec;
    let loaded = config::load(paths, &config::process_env);
    if report(&loaded) {
        return ExitCode::from(EXIT_CONFIG);
    }
    let mut failed = false;
    let mut any = false;
    for p in &loaded.pipelines {
        for output in &p.outputs {
            let OutputSpec::Elasticsearch(es) = output else {
                continue;
            };
            any = true;
            let client = match Client::new(es, p.name.as_str().into()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{} ({}): {e}", p.path.display(), p.name);
                    failed = true;
                    continue;
                }
            };
            match setup::install(es, &client).await {
                Ok(steps) => {
                    for step in steps {
                        println!("{} ({}): {step}", p.path.display(), p.name);
                    }
                }
                Err(e) => {
                    eprintln!("{} ({}): {e}", p.path.display(), p.name);
                    failed = true;
                }
            }
        }
    }
    if !any {
        println!("No Elasticsearch output: nothing to set up.");
    }
    if failed {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

/// `logpipe run`.
pub async fn run(
    paths: &[PathBuf],
    role: Role,
    state_dir: Option<PathBuf>,
    daemon: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let daemon = match DaemonConfig::load(daemon.as_deref()) {
        Ok(d) => d,
        Err(diagnostic) => {
            eprintln!("{diagnostic}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let state_dir = daemon.state_dir(state_dir.as_deref());
    let loaded = config::load(paths, &config::process_env);
    if report(&loaded) {
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;

    let root = Shutdown::default();
    let mut running = Vec::new();
    for pipeline in loaded.pipelines {
        let name = pipeline.name.clone();
        if let Some(r) = topology::spawn(pipeline, role, root.child(), &state_dir) {
            tracing::info!(pipeline = %name, ?role, "Pipeline started.");
            running.push(r);
        }
    }
    if running.is_empty() {
        tracing::warn!(?role, "No pipeline has anything to run in this role.");
        return Ok(ExitCode::SUCCESS);
    }
    tracing::info!(pipelines = running.len(), state_dir = %state_dir.display(), "logpipe is running.");

    let mut waiting = tokio::task::JoinSet::new();
    for r in running {
        waiting.spawn(r.wait());
    }
    let drain = daemon.drain_timeout();
    let mut failed = false;
    let mut signalled = false;
    loop {
        tokio::select! {
            done = waiting.join_next() => match done {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(_))) | Some(Err(_)) => {
                    // The failure was logged by its pipeline; stop the rest.
                    failed = true;
                    begin_shutdown(&root, drain);
                }
            },
            _ = sigterm.recv(), if !signalled => {
                tracing::info!(drain_timeout = ?drain, "SIGTERM: stopping inputs and draining in-flight events.");
                signalled = true;
                begin_shutdown(&root, drain);
            }
            _ = sigint.recv(), if !signalled => {
                tracing::info!(drain_timeout = ?drain, "SIGINT: stopping inputs and draining in-flight events.");
                signalled = true;
                begin_shutdown(&root, drain);
            }
        }
    }
    tracing::info!("All pipelines stopped.");
    Ok(if failed {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}

fn begin_shutdown(root: &Shutdown, drain: std::time::Duration) {
    if root.stop.is_cancelled() {
        return;
    }
    root.stop.cancel();
    let abort = root.abort.clone();
    tokio::spawn(async move {
        tokio::time::sleep(drain).await;
        if !abort.is_cancelled() {
            tracing::warn!(
                "Drain deadline passed; giving up on in-flight events (they will be read again)."
            );
            abort.cancel();
        }
    });
}
