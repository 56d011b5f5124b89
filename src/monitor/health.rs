//! Which stages run, which failed, which are held back by an outage: the
//! state behind `/health`.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageState {
    Running,
    /// Running, but its destination does not answer (events are held).
    Degraded(String),
    Failed(String),
}

type Key = (String, String);

fn states() -> &'static Mutex<BTreeMap<Key, StageState>> {
    static STATES: OnceLock<Mutex<BTreeMap<Key, StageState>>> = OnceLock::new();
    STATES.get_or_init(|| Mutex::new(BTreeMap::new()))
}

fn set(pipeline: &str, stage: &str, state: Option<StageState>) {
    let mut map = states().lock().unwrap_or_else(|p| p.into_inner());
    let key = (pipeline.to_owned(), stage.to_owned());
    match state {
        Some(s) => {
            map.insert(key, s);
        }
        None => {
            map.remove(&key);
        }
    }
}

pub fn running(pipeline: &str, stage: &str) {
    set(pipeline, stage, Some(StageState::Running));
}

/// The stage's destination is unreachable; it holds events until it is back.
pub fn degraded(pipeline: &str, stage: &str, reason: impl Into<String>) {
    set(pipeline, stage, Some(StageState::Degraded(reason.into())));
}

pub fn failed(pipeline: &str, stage: &str, reason: impl Into<String>) {
    set(pipeline, stage, Some(StageState::Failed(reason.into())));
}

/// The stage ended normally (end of input, shutdown, reload).
pub fn ended(pipeline: &str, stage: &str) {
    set(pipeline, stage, None);
    let mut map = brokers_seen().lock().unwrap_or_else(|p| p.into_inner());
    map.remove(&(pipeline.to_owned(), stage.to_owned()));
}

/// Kafka stages: the brokers their client sees up, and how many there are
/// (each broker once, as [`crate::kafka::context::BrokerCount`] counts them).
fn brokers_seen() -> &'static Mutex<BTreeMap<Key, (usize, usize)>> {
    static BROKERS: OnceLock<Mutex<BTreeMap<Key, (usize, usize)>>> = OnceLock::new();
    BROKERS.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// Records that the stage's Kafka client sees `up` of `total` brokers up.
pub fn brokers(pipeline: &str, stage: &str, up: usize, total: usize) {
    let mut map = brokers_seen().lock().unwrap_or_else(|p| p.into_inner());
    map.insert((pipeline.to_owned(), stage.to_owned()), (up, total));
}

/// Every known stage and its state.
pub fn snapshot() -> Vec<(String, String, StageState)> {
    let map = states().lock().unwrap_or_else(|p| p.into_inner());
    map.iter()
        .map(|((p, s), state)| (p.clone(), s.clone(), state.clone()))
        .collect()
}

/// `(healthy, body)` for `/health`.
pub fn report() -> (bool, serde_json::Value) {
    let stages = snapshot();
    let brokers = brokers_seen()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut failing = Vec::new();
    let mut list = Vec::new();
    for (pipeline, stage, state) in &stages {
        let (status, reason) = match state {
            StageState::Running => ("running", None),
            StageState::Degraded(r) => ("degraded", Some(r.clone())),
            StageState::Failed(r) => ("failed", Some(r.clone())),
        };
        if status != "running" {
            failing.push(format!("{pipeline}/{stage}"));
        }
        let mut entry = serde_json::json!({"pipeline": pipeline, "stage": stage, "status": status, "reason": reason});
        if let Some((up, total)) = brokers.get(&(pipeline.clone(), stage.clone())) {
            entry["brokers"] = serde_json::json!({"up": up, "total": total});
        }
        list.push(entry);
    }
    let healthy = failing.is_empty();
    (
        healthy,
        serde_json::json!({"status": if healthy { "ok" } else { "failing" }, "failing": failing, "stages": list}),
    )
}
