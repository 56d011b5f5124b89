//! Lifecycle of the commands: load and check the pipelines, spawn them,
//! wait for a signal, drain within the deadline, and map the outcome to an
//! exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};

use self::supervisor::Supervisor;
use crate::cli::DaemonArgs;
use crate::config::daemon::DaemonConfig;
use crate::config::{self, Severity};
use crate::pipeline::{self, Loaded};
use crate::topology::Role;

pub mod connect;
#[cfg(feature = "gen-docs")]
pub mod docs;
pub mod service;
pub mod status;
pub mod supervisor;
pub mod tap;
pub mod test;
pub mod top;

pub use crate::cli::{EXIT_CONFIG, EXIT_FAILURE, EXIT_UNDELIVERED};

/// Prints every diagnostic to stderr; returns whether any is an error.
fn report(loaded: &Loaded) -> bool {
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    loaded.has_errors()
}

/// `logpipe check`.
pub fn check(paths: &[PathBuf]) -> ExitCode {
    report_check(&pipeline::load(paths, &config::process_env))
}

/// What `check` prints of loaded files, and its exit code.
fn report_check(loaded: &pipeline::Loaded) -> ExitCode {
    if report(loaded) {
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

/// `logpipe check --connect`: the checks of [`check`], then every target
/// tried ([`connect`]); exit 2 when one fails.
pub async fn check_connect(paths: &[PathBuf]) -> ExitCode {
    let loaded = pipeline::load(paths, &config::process_env);
    let code = report_check(&loaded);
    if code != ExitCode::SUCCESS {
        return code;
    }
    let probes = connect::probe_all(&loaded.pipelines).await;
    let failed = probes.iter().filter(|p| p.outcome.is_err()).count();
    for probe in &probes {
        println!("{probe}");
    }
    if probes.is_empty() {
        println!("Nothing to connect to: no Kafka hop and no Elasticsearch output.");
    }
    if failed > 0 {
        eprintln!("{failed} of {} target(s) failed.", probes.len());
        return ExitCode::from(EXIT_CONFIG);
    }
    ExitCode::SUCCESS
}

/// `logpipe topics ensure`.
pub async fn topics_ensure(paths: &[PathBuf]) -> ExitCode {
    use crate::kafka::admin::{ensure_topics, TopicState};
    let loaded = pipeline::load(paths, &config::process_env);
    if report(&loaded) {
        return ExitCode::from(EXIT_CONFIG);
    }
    let mut failed = false;
    for pipeline in &loaded.pipelines {
        let Some(hop) = &pipeline.hop else {
            println!("{}: no [kafka] hop, nothing to do", pipeline.name);
            continue;
        };
        println!(
            "{}: ensuring topic {} on {} …",
            pipeline.name,
            hop.topic.as_str(),
            hop.brokers.join(",")
        );
        match ensure_topics(hop, &pipeline.name).await {
            Ok(states) => {
                for (topic, state) in states {
                    match state {
                        TopicState::Created { partitions } => {
                            println!("  created {topic} ({partitions} partitions, replication {})", hop.replication_factor)
                        }
                        TopicState::Exists { partitions, wanted } if partitions == wanted => {
                            println!("  exists {topic} ({partitions} partitions)")
                        }
                        TopicState::Exists { partitions, wanted } => println!(
                            "  exists {topic} with {partitions} partitions; the pipeline asks for {wanted} (not changed)"
                        ),
                        TopicState::Skipped => println!("  skipped {topic}: a templated name is only known when events arrive"),
                    }
                }
            }
            Err(e) => {
                eprintln!("  error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

/// `logpipe test`.
pub fn test(pipeline: &std::path::Path, input: Option<&std::path::Path>) -> ExitCode {
    let loaded = pipeline::load(&[pipeline.to_path_buf()], &config::process_env);
    if report(&loaded) {
        return ExitCode::from(EXIT_CONFIG);
    }
    let Some(pipeline) = loaded.pipelines.first() else {
        return ExitCode::from(EXIT_CONFIG);
    };
    let input = match input {
        Some(path) => path,
        None if !pipeline.tests.is_empty() => {
            let report = crate::app::test::run_cases(pipeline);
            for line in &report.lines {
                println!("{line}");
            }
            println!("{} passed, {} failed", report.passed, report.failed);
            return if report.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILURE)
            };
        }
        None => std::path::Path::new("-"),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match crate::app::test::feed(pipeline, input, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logpipe: {}: {e}", input.display());
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `logpipe setup`: installs the index template (and, with `retention`,
/// the lifecycle policy) of every Elasticsearch output, printing each step.
/// With `check`, changes nothing: prints one line per template and policy
/// and fails when one has drifted or cannot be read.
pub async fn setup(paths: &[PathBuf], check: bool) -> ExitCode {
    use crate::output::elasticsearch::{client::Client, setup};
    use crate::output::OutputSpec;
    let loaded = pipeline::load(paths, &config::process_env);
    if report(&loaded) {
        return ExitCode::from(EXIT_CONFIG);
    }
    let mut failed = false;
    let mut any = false;
    for p in &loaded.pipelines {
        for output in &p.outputs {
            let OutputSpec::Elasticsearch(es) = &output.spec else {
                continue;
            };
            any = true;
            let at = format!("{} ({})", p.path.display(), p.name);
            let client = match Client::new(es, p.name.as_str().into()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{at}: {e}");
                    failed = true;
                    continue;
                }
            };
            let lines = if check {
                setup::check(es, &client).await.map(|checked| {
                    failed |= checked.iter().any(|c| c.drift.is_some());
                    checked.iter().map(ToString::to_string).collect()
                })
            } else {
                setup::install(es, &client).await
            };
            match lines {
                Ok(lines) => {
                    for line in lines {
                        println!("{at}: {line}");
                    }
                }
                Err(e) => {
                    eprintln!("{at}: {e}");
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

/// Raises the soft limit on open files to the hard one, as Go programs and
/// Vector do: a host with many log files, Kafka connections and monitoring
/// clients outgrows the soft default of 1024 long before the hard limit the
/// unit sets (`LimitNOFILE`).
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read or write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= limit.rlim_max
        {
            return;
        }
        let soft = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
            tracing::debug!(
                from = soft,
                to = limit.rlim_max,
                "Raised the open-files limit."
            );
        }
    }
}

/// The daemon's settings as `run` uses them and as the commands that look
/// at a running daemon (`status`) find it: flags first, then the daemon
/// config, then the defaults.
pub(crate) struct Daemon {
    pub config: DaemonConfig,
    pub state_dir: PathBuf,
    /// `None`: the endpoint is switched off; an error names the bad value.
    pub metrics_address: Result<Option<std::net::SocketAddr>, String>,
}

impl Daemon {
    /// Reads the daemon config; a bad one is printed (file, line, column).
    pub(crate) fn resolve(args: DaemonArgs) -> Result<Daemon, ()> {
        let config = DaemonConfig::load(args.config.as_deref()).map_err(|d| eprintln!("{d}"))?;
        Ok(Daemon {
            state_dir: config.state_dir(args.state_dir.as_deref()),
            metrics_address: config.metrics_address(args.metrics_address.as_deref()),
            config,
        })
    }
}

/// The base URL of the running daemon's monitoring endpoint, for the
/// commands that read it live (`tap`, `top`), found as `status` finds it;
/// the exit code when there is none, said on stderr.
pub(crate) fn daemon_endpoint(args: DaemonArgs, command: &str) -> Result<String, ExitCode> {
    let daemon = Daemon::resolve(args).map_err(|()| ExitCode::from(EXIT_CONFIG))?;
    match daemon.metrics_address {
        Ok(Some(addr)) => Ok(format!("http://{addr}")),
        Ok(None) => {
            eprintln!(
                "The daemon's metrics endpoint is switched off; {command} needs it (metrics_address)."
            );
            Err(ExitCode::from(EXIT_CONFIG))
        }
        Err(e) => {
            eprintln!("{e}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

/// `logpipe run`.
pub async fn run(paths: &[PathBuf], role: Role, args: DaemonArgs) -> anyhow::Result<ExitCode> {
    let Ok(Daemon {
        config: daemon,
        state_dir,
        metrics_address,
    }) = Daemon::resolve(args)
    else {
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    let metrics_address = match metrics_address {
        Ok(a) => a,
        Err(e) => {
            eprintln!("logpipe: {e}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    raise_fd_limit();
    crate::monitor::install();
    if let Some(addr) = metrics_address {
        tokio::spawn(crate::monitor::serve(addr));
    }
    // The books of every pipeline, checked and published every second.
    tokio::spawn(crate::accounting::watch(std::time::Duration::from_secs(1)));
    let loaded = pipeline::load(paths, &config::process_env);
    if report(&loaded) {
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;

    let drain = daemon.drain_timeout();
    let mut supervisor = Supervisor::new(role, state_dir.clone(), paths.to_vec(), drain);
    for pipeline in loaded.pipelines {
        supervisor.start(pipeline);
    }
    if supervisor.running() == 0 {
        tracing::warn!(?role, "No pipeline has anything to run in this role.");
        return Ok(ExitCode::SUCCESS);
    }
    tracing::info!(pipelines = supervisor.running(), state_dir = %state_dir.display(), "logpipe is running.");
    service::ready(&format!("{} pipeline(s) running", supervisor.running()));
    service::spawn_watchdog();

    loop {
        tokio::select! {
            more = supervisor.next_ended() => if !more { break },
            _ = sigterm.recv() => {
                tracing::info!(drain_timeout = ?drain, "SIGTERM: stopping inputs and draining in-flight events.");
                supervisor.shutdown();
            }
            _ = sigint.recv() => {
                tracing::info!(drain_timeout = ?drain, "SIGINT: stopping inputs and draining in-flight events.");
                supervisor.shutdown();
            }
            _ = sighup.recv() => {
                if supervisor.is_stopping() {
                    continue;
                }
                tracing::info!("SIGHUP: reloading the pipeline files.");
                supervisor.reload().await;
            }
        }
    }
    tracing::info!("All pipelines stopped.");
    let undelivered = crate::shutdown::take_undelivered();
    if supervisor.drain_expired() {
        let batches: usize = undelivered.iter().map(|(_, _, n)| n).sum();
        for (pipeline, stage, n) in &undelivered {
            tracing::error!(%pipeline, stage = %stage, batches = n, "Not delivered when drain_timeout passed; read again on the next start.");
        }
        tracing::error!(
            batches,
            drain_timeout = ?drain,
            exit_code = EXIT_UNDELIVERED,
            "Stopped with events not delivered within drain_timeout; nothing is lost (they are read again on the next start)."
        );
        return Ok(ExitCode::from(EXIT_UNDELIVERED));
    }
    Ok(if supervisor.failed {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}
