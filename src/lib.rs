//! logpipe: Filebeat and Logstash for Apache httpd fleets, in one binary.
//!
//! The route: `file` input (tail, tags, checkpoints) → Kafka hop (producer on
//! the ship half, consumer group on the index half) → filters → outputs
//! (Elasticsearch bulk, stdout). Every stage is a tokio task; stages talk only
//! through bounded channels carrying [`event::Batch`]es, and every batch
//! carries an [`ack::AckToken`] so its source learns when it is delivered.
//!
//! Module map:
//! - [`cli`], [`app`]: commands and the process lifecycle; [`testing`]: `logpipe test`.
//! - [`config`]: pipeline files, `${VAR}`, diagnostics with positions.
//! - [`event`], [`ack`], [`template`]: the core types.
//! - [`topology`]: pipelines to tasks and channels, by role.
//! - [`input`], [`filter`], [`output`], [`kafka`]: the stages.
//! - [`shutdown`], [`retry`], [`telemetry`], [`host`], [`error`]: plumbing.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod ack;
pub mod app;
pub mod cli;
pub mod condition;
pub mod config;
pub mod error;
pub mod event;
pub mod filter;
pub mod host;
pub mod input;
pub mod kafka;
pub mod monitor;
pub mod output;
pub mod pipeline;
pub mod retry;
pub mod service;
pub mod shutdown;
pub mod status;
pub mod supervisor;
pub mod telemetry;
pub mod template;
pub mod testing;
pub mod topology;

pub use ack::AckToken;
pub use event::{Batch, Event};
