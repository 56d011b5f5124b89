//! logpipe: Filebeat and Logstash for Apache httpd fleets, in one binary.
//!
//! The route: `file` input (tail, tags, checkpoints) → Kafka hop (producer on
//! the ship half, consumer group on the index half) → filters → outputs
//! (Elasticsearch bulk, stdout). Every stage is a tokio task; stages talk only
//! through bounded channels carrying [`event::Batch`]es, and every batch
//! carries an [`ack::AckToken`] so its source learns when it is delivered.
//!
//! Module map (layers top to bottom; docs/ARCHITECTURE.md has the rules):
//! - Commands: [`cli`] (arguments, exit codes), [`app`] (`run`'s lifecycle;
//!   [`app::supervisor`]: pipelines of `run`, reload, drain;
//!   [`app::status`]: `logpipe status`; [`app::test`](mod@app::test): `logpipe test`;
//!   [`app::connect`]: `logpipe check --connect`; [`app::tap`]: `logpipe tap`; [`app::top`]: `logpipe top`;
//!   [`app::service`]: systemd notify, watchdog; `app::docs` (feature
//!   `gen-docs`): the man pages and completions of the packages),
//!   [`import`]: `logpipe import`
//!   (Filebeat + Logstash configs to pipeline files: [`import::logstash`] the
//!   config language, [`import::yaml`] filebeat.yml with positions,
//!   [`import::convert`] routes, conditions, the check of what it writes;
//!   [`import::registry`] the cutover: Filebeat's registry in every format,
//!   matched to the files on disk, seeded into the file inputs' checkpoints).
//! - Loader: [`pipeline`]: pipeline files and their `[[test]]` cases; the
//!   one place that knows every stage registry.
//! - Wiring: [`topology`]: pipelines to tasks and channels, by role.
//! - Stages: [`input`], [`filter`], [`output`] (with
//!   [`output::elasticsearch::concurrency`]: the adaptive limit of bulk
//!   requests in flight), and [`kafka`] (the hop both halves share).
//!   `logpipe setup` lives with its output: [`output::elasticsearch::setup`]
//!   (index templates, data stream templates, `--check`) and
//!   [`output::elasticsearch::setup::lifecycle`] (`retention`: ISM and ILM
//!   policies, deleting daily indices or rolling data streams, pure).
//! - Toolkit: [`config`]: how a stage reads its table (positions, `${VAR}`),
//!   the daemon config.
//! - Core: [`event`], [`ack`], [`accounting`] (the books: every event read
//!   ends in one outcome per output, checked while it runs), [`condition`] (the `if` language),
//!   [`template`], [`shutdown`], [`retry`], [`error`], [`host`],
//!   [`telemetry`], [`dead_letter`] (the record format, both ways, and the
//!   file), [`monitor`] (`/metrics`, `/health`, `/tap`, stage heartbeats for the watchdog).
//! - Below Rust: `sys` (`musl_mem.c`, the static build's memcpy and memmove,
//!   linked by `build.rs`, with their tests).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod accounting;
pub mod ack;
pub mod app;
pub mod cli;
pub mod condition;
pub mod config;
pub mod dead_letter;
pub mod error;
pub mod event;
pub mod filter;
pub mod host;
pub mod import;
pub mod input;
pub mod kafka;
pub mod monitor;
pub mod output;
pub mod pipeline;
pub mod retry;
pub mod shutdown;
mod sys;
pub mod telemetry;
pub mod template;
pub mod topology;

pub use ack::AckToken;
pub use event::{Batch, Event};
