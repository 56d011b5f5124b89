//! The `logpipe` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use logpipe::app;
use logpipe::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    logpipe::telemetry::init(cli.log_level.as_deref());
    match cli.command {
        Command::Check { paths } => app::check(&paths),
        Command::Setup { paths } => match runtime() {
            Some(rt) => rt.block_on(app::setup(&paths)),
            None => ExitCode::from(app::EXIT_FAILURE),
        },
        Command::Run {
            paths,
            role,
            state_dir,
            config,
        } => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("logpipe: cannot start the runtime: {e}");
                    return ExitCode::from(app::EXIT_FAILURE);
                }
            };
            match runtime.block_on(app::run(&paths, role, state_dir, config)) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("logpipe: {e:#}");
                    ExitCode::from(app::EXIT_FAILURE)
                }
            }
        }
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("logpipe: cannot start the runtime: {e}");
            None
        }
    }
}
