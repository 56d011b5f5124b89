//! The command line, and the exit codes every command shares.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::pipeline::DEFAULT_PIPELINE_DIR;
use crate::topology::Role;

/// Exit code for a run that failed (a pipeline failed at run time, a
/// command could not do its work).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for invalid configuration.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for a stop whose `drain_timeout` passed with events not yet
/// delivered, whichever stage held them (they are read again on the next
/// start).
pub const EXIT_UNDELIVERED: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "logpipe",
    version,
    about = "Tail httpd logs, ship them through Kafka, parse them and index them into Elasticsearch: Filebeat and Logstash in one binary."
)]
pub struct Cli {
    /// Log filter (`info`, `debug`, `logpipe=debug,rdkafka=warn`, …); overrides RUST_LOG.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run pipelines until SIGTERM or SIGINT.
    Run {
        /// Pipeline files or directories of them.
        #[arg(default_value = DEFAULT_PIPELINE_DIR)]
        paths: Vec<PathBuf>,
        /// Which half of the route this host runs.
        #[arg(long, value_enum, default_value = "all")]
        role: Role,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// Show checkpoints (files, offsets, bytes behind) and, when the daemon
    /// runs, its consumer lag and output counters.
    Status {
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// Print live events of a running daemon as JSON lines, as they leave a
    /// stage; a bounded, lossy sample that never slows the pipeline (what is
    /// skipped is counted on stderr).
    Tap {
        /// The pipeline's name.
        pipeline: String,
        /// Where to look: input (what enters the filters), filters (what
        /// leaves them), output (what the outputs receive).
        #[arg(long, default_value = "filters")]
        stage: String,
        /// Stop after this many events.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// The share of events to show, in (0, 1].
        #[arg(long, value_name = "RATE", default_value_t = 1.0)]
        sample: f64,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// A live view of a running daemon: per pipeline and stage, events and
    /// bytes per second, dead letters, retries, failures, health, a plot of
    /// the last readings; Kafka lag and files behind of the picked pipeline.
    /// Plain tables when not on a terminal.
    Top {
        /// Seconds between readings.
        #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
        interval: f64,
        /// Print this many plain tables and stop (also on a terminal).
        #[arg(long, value_name = "N")]
        iterations: Option<usize>,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// Kafka topic management.
    Topics {
        #[command(subcommand)]
        action: TopicsAction,
    },
    /// Install the index templates of the pipelines' Elasticsearch outputs
    /// (ECS types for the httpd fields) and, for outputs with `retention`,
    /// their lifecycle policies (ISM on OpenSearch, ILM on Elasticsearch);
    /// safe to run again.
    Setup {
        /// Change nothing: print one line per template and policy, in place
        /// or drifted (missing or different), and exit 1 on any drift.
        #[arg(long)]
        check: bool,
        /// Pipeline files or directories of them.
        #[arg(default_value = DEFAULT_PIPELINE_DIR)]
        paths: Vec<PathBuf>,
    },
    /// Validate pipeline files: print every problem, exit non-zero on any error.
    Check {
        /// Pipeline files or directories of them.
        #[arg(default_value = DEFAULT_PIPELINE_DIR)]
        paths: Vec<PathBuf>,
        /// Also try what the files point at (brokers reachable and
        /// authenticated, topics present, Elasticsearch hosts answering with
        /// the credentials, template installed): one line per target, exit 2
        /// when one fails. Changes nothing.
        #[arg(long)]
        connect: bool,
    },
    /// Convert a Filebeat config and the Logstash pipeline its events go
    /// through into logpipe pipeline files, one per log source; with
    /// --filebeat-registry, seed the file inputs' checkpoints from Filebeat's
    /// registry (the cutover: no line shipped twice, none skipped). Exit 0
    /// when everything converted, 1 when something was left out (each listed
    /// as a warning with what to do instead), 2 when an input cannot be read
    /// or Filebeat still runs.
    #[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["filebeat", "filebeat_registry"])))]
    Import {
        /// filebeat.yml.
        #[arg(long, value_name = "FILE")]
        filebeat: Option<PathBuf>,
        /// Filebeat's registry (filebeat.registry.path, default
        /// /var/lib/filebeat/registry; its data directory will do): seeds
        /// logpipe's checkpoints at Filebeat's acknowledged offsets. Stop
        /// Filebeat first.
        #[arg(long, value_name = "DIR", requires = "state_dir")]
        filebeat_registry: Option<PathBuf>,
        /// logpipe's state directory, where the checkpoints are written.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// The pipelines whose file inputs are seeded, when --filebeat is not
        /// given (files or directories; default /etc/logpipe/pipelines).
        #[arg(long, value_name = "PATH", conflicts_with = "filebeat")]
        pipelines: Vec<PathBuf>,
        /// A Logstash pipeline config file, or a directory of them (read in
        /// lexical order, as conf.d); may be given more than once.
        #[arg(long, value_name = "PATH")]
        logstash: Vec<PathBuf>,
        /// Where to write the pipeline files.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
        /// Print the files (and the table of checkpoints) instead of writing
        /// them.
        #[arg(long)]
        dry_run: bool,
        /// Replace pipeline files that already exist in DIR, and existing
        /// checkpoints.
        #[arg(long)]
        force: bool,
        /// Resolve escapes in Logstash strings (Logstash's
        /// config.support_escapes; off by default, as in Logstash).
        #[arg(long)]
        support_escapes: bool,
    },
    /// Run a pipeline's filters on log lines and print the resulting events,
    /// one JSON object per line; without --input, check the pipeline's
    /// [[test]] cases (or read stdin when it has none).
    Test {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Lines to feed, as if read by the pipeline's first input (`-`: stdin).
        #[arg(long, value_name = "FILE")]
        input: Option<PathBuf>,
    },
    /// Write the man pages and shell completions into a directory (for the
    /// packages).
    #[cfg(feature = "gen-docs")]
    #[command(hide = true)]
    GenerateDocs {
        /// Where to write man/ and completions/.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// Where a daemon keeps its state and answers: shared by `run` (which uses
/// them) and the commands that look at a running daemon (which find it by
/// them), so both always mean the same.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Checkpoints and dead letters (default: LOGPIPE_STATE_DIR, else the
    /// daemon config's state_dir, else /var/lib/logpipe).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Daemon settings (default /etc/logpipe/logpipe.toml, if present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the daemon serves /metrics and /health (default 127.0.0.1:9600;
    /// "off" for `run`).
    #[arg(long, value_name = "ADDR")]
    pub metrics_address: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TopicsAction {
    /// Create the topics the pipelines ship to, with their `partitions` and
    /// `replication_factor`; report existing ones whose partition count differs.
    Ensure {
        /// Pipeline files or directories of them.
        #[arg(default_value = DEFAULT_PIPELINE_DIR)]
        paths: Vec<PathBuf>,
    },
}

impl Cli {
    pub fn parse_args() -> Self {
        Cli::parse()
    }
}
