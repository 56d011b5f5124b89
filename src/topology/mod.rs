//! From a validated pipeline and a role to running tasks joined by bounded
//! channels.
//!
//! ```text
//! no hop:           inputs ─▶ filters ─▶ fanout ─▶ outputs
//! hop, ship half:   inputs ─▶ kafka producer
//! hop, index half:  kafka consumer ─▶ filters ─▶ fanout ─▶ outputs
//! ```
//! `--role all` runs both halves of a hop in one process, still through Kafka.

mod fanout;
mod filter_stage;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::accounting::{Books, Half, Ledger};
use crate::dead_letter::DeadLetters;
use crate::error::StageError;
use crate::event::Batch;
use crate::output::{DeadLetterFile, Output, WhenBlocked};
use crate::pipeline::Pipeline;
use crate::shutdown::{RunCx, Shutdown};

/// Which half of the route this host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Inputs up to the Kafka producer (web hosts).
    Ship,
    /// Kafka consumer through the outputs (indexer hosts).
    Index,
    /// Both, in one process.
    All,
}

/// A pipeline's tasks. Each yields its stage name and result.
pub struct Running {
    pub name: String,
    pub shutdown: Shutdown,
    pub tasks: JoinSet<(&'static str, Result<(), StageError>)>,
    /// The books of each half that runs here, closed and logged at the end.
    pub ledgers: Vec<Arc<Ledger>>,
}

impl Running {
    /// Waits for every stage; returns the first failure.
    pub async fn wait(mut self) -> Result<(), (String, &'static str, StageError)> {
        let mut first = None;
        while let Some(done) = self.tasks.join_next().await {
            let (stage, result) = match done {
                Ok(done) => done,
                Err(e) => (
                    "task",
                    Err(StageError::Fatal(format!("stage task panicked: {e}"))),
                ),
            };
            if let Err(e) = result {
                tracing::error!(pipeline = %self.name, stage, error = %e, "Stage failed; stopping the pipeline.");
                self.shutdown.stop.cancel();
                first.get_or_insert((self.name.clone(), stage, e));
            }
        }
        for ledger in &self.ledgers {
            crate::accounting::close(ledger).log();
        }
        first.map_or(Ok(()), Err)
    }
}

/// Spawns the stages of `pipeline` that belong to `role`. Returns `None`
/// when the role runs nothing of it.
pub fn spawn(
    pipeline: Pipeline,
    role: Role,
    shutdown: Shutdown,
    state_dir: &std::path::Path,
) -> Option<Running> {
    let name = pipeline.name.clone();
    let cx = RunCx {
        pipeline: Arc::from(name.as_str()),
        shutdown: shutdown.clone(),
        state_dir: state_dir.to_path_buf(),
        books: Books::detached(&name),
    };
    let mut ledgers = Vec::new();
    let output_labels: Vec<String> = pipeline.outputs.iter().map(|o| o.label.clone()).collect();
    // Each half that has its own sources keeps its own books.
    let mut books_of = |half: Half, outputs: &[String]| {
        let ledger = Ledger::new(Arc::clone(&cx.pipeline), half, outputs);
        crate::accounting::register(&ledger);
        ledgers.push(Arc::clone(&ledger));
        RunCx {
            books: Books::new(ledger),
            ..cx.clone()
        }
    };
    let mut files = DeadLetterFiles::new(&name, state_dir);
    // The hop's dead letters go to the default file, rotated as the outputs
    // that also use it say (the loader checked they agree).
    let default_file = pipeline
        .outputs
        .iter()
        .find(|o| o.dead_letter.path.is_none())
        .map(|o| o.dead_letter.clone())
        .unwrap_or_default();
    let dead_letters = files.open(&default_file);
    let capacity = pipeline.channel_capacity;
    let mut tasks = JoinSet::new();
    let ship = matches!(role, Role::Ship | Role::All);
    let index = matches!(role, Role::Index | Role::All);

    match pipeline.hop {
        None if !ship => {
            tracing::info!(pipeline = %name, "No Kafka hop: the pipeline runs on hosts with role ship or all, skipped here.");
            return None;
        }
        None => {
            let cx = books_of(Half::Whole, &output_labels);
            let (tx, rx) = mpsc::channel(capacity);
            spawn_inputs(&mut tasks, pipeline.inputs, &tx, &cx);
            drop(tx);
            spawn_index_half(
                &mut tasks,
                rx,
                (pipeline.filters, pipeline.filter_workers),
                pipeline.outputs,
                capacity,
                &cx,
                &mut files,
            );
        }
        Some(hop) => {
            let mut any = false;
            if ship && !pipeline.inputs.is_empty() {
                let cx = books_of(Half::Ship, &["output.kafka".to_owned()]);
                let (tx, rx) = mpsc::channel(capacity);
                spawn_inputs(&mut tasks, pipeline.inputs, &tx, &cx);
                drop(tx);
                let (hop, dl) = (hop.clone(), dead_letters.clone());
                let producer = RunCx {
                    books: cx.books.for_output(0),
                    ..cx.clone()
                };
                spawn_stage(
                    &mut tasks,
                    &cx,
                    "output.kafka",
                    crate::output::kafka::run(hop, rx, producer, dl),
                );
                any = true;
            }
            if index && !pipeline.outputs.is_empty() {
                let cx = books_of(Half::Index, &output_labels);
                let (tx, rx) = mpsc::channel(capacity);
                spawn_stage(
                    &mut tasks,
                    &cx,
                    "input.kafka",
                    crate::input::kafka::run(hop, tx, cx.clone()),
                );
                spawn_index_half(
                    &mut tasks,
                    rx,
                    (pipeline.filters, pipeline.filter_workers),
                    pipeline.outputs,
                    capacity,
                    &cx,
                    &mut files,
                );
                any = true;
            }
            if !any {
                tracing::info!(pipeline = %name, ?role, "Nothing of this pipeline runs in this role.");
                return None;
            }
        }
    }
    Some(Running {
        name,
        shutdown,
        tasks,
        ledgers,
    })
}

fn spawn_inputs(
    tasks: &mut JoinSet<(&'static str, Result<(), StageError>)>,
    inputs: Vec<crate::input::InputSpec>,
    tx: &mpsc::Sender<Batch>,
    cx: &RunCx,
) {
    for input in inputs {
        let stage = input.name();
        spawn_stage(tasks, cx, stage, input.run(tx.clone(), cx.clone()));
    }
}

fn spawn_index_half(
    tasks: &mut JoinSet<(&'static str, Result<(), StageError>)>,
    rx: mpsc::Receiver<Batch>,
    (filters, workers): (Vec<crate::filter::FilterSpec>, usize),
    outputs: Vec<Output>,
    capacity: usize,
    cx: &RunCx,
    files: &mut DeadLetterFiles,
) {
    let (filtered_tx, filtered_rx) = mpsc::channel(capacity);
    spawn_stage(
        tasks,
        cx,
        "filter",
        filter_stage::run(
            filters,
            workers,
            rx,
            filtered_tx,
            (cx.pipeline.clone(), cx.books.clone()),
        ),
    );
    let mut routes = Vec::new();
    for (i, output) in outputs.into_iter().enumerate() {
        let cx = RunCx {
            books: cx.books.for_output(i),
            ..cx.clone()
        };
        let (sender, rx) = mpsc::channel(capacity);
        let stage = output.spec.name();
        let dead_letters = files.open(&output.dead_letter).for_output(&output.label);
        let spill = match output.when_blocked {
            WhenBlocked::Block => None,
            WhenBlocked::Spill { after } => Some(fanout::Spill::new(
                cx.pipeline.clone(),
                stage,
                output.label.clone(),
                after,
                dead_letters.clone(),
            )),
        };
        routes.push(fanout::Route {
            sender,
            condition: output.condition,
            spill,
            books: cx.books.clone(),
        });
        spawn_stage(
            tasks,
            &cx,
            stage,
            output.spec.run(rx, cx.clone(), dead_letters),
        );
    }
    spawn_stage(
        tasks,
        cx,
        "fanout",
        fanout::run(cx.pipeline.clone(), filtered_rx, routes),
    );
}

/// The dead-letter files of one pipeline: outputs naming the same file (or
/// none, for the default) share one writer, so one file has one rotation.
struct DeadLetterFiles {
    pipeline: String,
    default_path: PathBuf,
    open: Vec<(PathBuf, DeadLetters)>,
}

impl DeadLetterFiles {
    fn new(pipeline: &str, state_dir: &Path) -> Self {
        DeadLetterFiles {
            pipeline: pipeline.to_owned(),
            default_path: state_dir
                .join("dead-letter")
                .join(format!("{pipeline}.ndjson")),
            open: Vec::new(),
        }
    }

    fn open(&mut self, file: &DeadLetterFile) -> DeadLetters {
        let path = file
            .path
            .clone()
            .unwrap_or_else(|| self.default_path.clone());
        if let Some((_, dl)) = self.open.iter().find(|(p, _)| *p == path) {
            return dl.clone();
        }
        let dl = DeadLetters::new(&self.pipeline, path.clone(), file.max_bytes, file.max_files);
        self.open.push((path, dl.clone()));
        dl
    }
}

fn spawn_stage(
    tasks: &mut JoinSet<(&'static str, Result<(), StageError>)>,
    cx: &RunCx,
    stage: &'static str,
    future: impl std::future::Future<Output = Result<(), StageError>> + Send + 'static,
) {
    let span = tracing::info_span!("stage", pipeline = %cx.pipeline, stage);
    let pipeline = cx.pipeline.clone();
    crate::monitor::health::running(&pipeline, stage);
    let watched = crate::monitor::heartbeat::watch(&pipeline, stage, future);
    tasks.spawn(
        async move {
            let result = watched.await;
            match &result {
                Ok(()) => crate::monitor::health::ended(&pipeline, stage),
                Err(e) => crate::monitor::health::failed(&pipeline, stage, e.to_string()),
            }
            (stage, result)
        }
        .instrument(span),
    );
}
