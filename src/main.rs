//! The `logpipe` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use logpipe::app;
use logpipe::cli::{Cli, Command, TopicsAction, EXIT_FAILURE};

// glibc's malloc serialises on its arena locks when one thread frees what
// another allocated, which is how every event travels between stages.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    logpipe::telemetry::init(cli.log_level.as_deref());
    match cli.command {
        Command::Check {
            paths,
            connect: false,
        } => app::check(&paths),
        Command::Check {
            paths,
            connect: true,
        } => block_on(async move { Ok(app::check_connect(&paths).await) }),
        Command::Import {
            filebeat,
            logstash,
            out,
            dry_run,
            force,
            support_escapes,
            filebeat_registry,
            state_dir,
            pipelines,
        } => logpipe::import::run(&logpipe::import::Request {
            filebeat,
            logstash,
            out,
            dry_run,
            force,
            support_escapes,
            registry: filebeat_registry,
            state_dir,
            pipelines,
        }),
        Command::Test { pipeline, input } => app::test(&pipeline, input.as_deref()),
        Command::Setup { check, paths } => {
            block_on(async move { Ok(app::setup(&paths, check).await) })
        }
        Command::Run {
            paths,
            role,
            daemon,
        } => block_on(async move { app::run(&paths, role, daemon).await }),
        Command::Status { daemon } => block_on(async move { Ok(app::status::print(daemon).await) }),
        Command::Tap {
            pipeline,
            stage,
            limit,
            sample,
            daemon,
        } => block_on(async move {
            let request = app::tap::Request {
                pipeline,
                stage,
                limit,
                sample,
            };
            Ok(app::tap::run(request, daemon).await)
        }),
        Command::Top {
            interval,
            iterations,
            daemon,
        } => block_on(async move {
            let interval = std::time::Duration::try_from_secs_f64(interval.max(0.1))
                .unwrap_or(std::time::Duration::from_secs(1));
            Ok(app::top::run(daemon, interval, iterations).await)
        }),
        Command::Topics {
            action: TopicsAction::Ensure { paths },
        } => block_on(async move { Ok(app::topics_ensure(&paths).await) }),
        #[cfg(feature = "gen-docs")]
        Command::GenerateDocs { out } => app::docs::generate(&out).unwrap_or_else(|e| {
            eprintln!("logpipe: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }),
    }
}

/// Runs an async command on a multi-threaded runtime; errors end as exit 1.
fn block_on(command: impl std::future::Future<Output = anyhow::Result<ExitCode>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("logpipe: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("logpipe: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
