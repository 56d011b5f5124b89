//! The `elasticsearch` output: bulk-indexes batches into templated,
//! date-stamped indices with deterministic ids, and acknowledges events only
//! when each is indexed (or found already indexed) or dead-lettered.
//!
//! Items rejected for good (mapping conflicts) go to the dead-letter file;
//! items and requests that may succeed later are retried with backoff on the
//! next host, holding the pipeline rather than dropping or buffering without
//! bound.

pub mod bulk;
pub mod response;

use std::io::Write;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::mpsc;
use toml::Spanned;

use super::dead_letter::{DeadLetter, DeadLetters};
use crate::ack::AckToken;
use crate::config::types::{Seconds, StringList};
use crate::config::Cx;
use crate::error::StageError;
use crate::event::{Batch, Event};
use crate::retry::Backoff;
use crate::shutdown::StageCx;
use crate::telemetry::Throttle;
use crate::template::Template;
use bulk::{Action, Item};
use response::Outcome;

/// `[[output]] type = "elasticsearch"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// URLs, a list or one comma-separated string; `10.0.0.72:9200` means
    /// `http://10.0.0.72:9200`.
    pub hosts: Spanned<StringList>,
    /// Index name template, e.g. `httpd_access-%{+YYYY.MM.dd}` (from the
    /// event's `@timestamp`, in UTC).
    pub index: Spanned<String>,
    /// `create` (default: a replayed id answers 409 and counts as indexed) or
    /// `index` (overwrite).
    pub action: Option<Action>,
    /// Document id template; default `%{[@metadata][_id]}`, the origin id.
    /// Events without it get an id from Elasticsearch.
    pub document_id: Option<Spanned<String>>,
    /// Flush a bulk request at this many events (default 1000) …
    pub batch_events: Option<usize>,
    /// … or this many bytes (default 5 MiB) …
    pub batch_bytes: Option<usize>,
    /// … or when the oldest event waited this long (default 1s).
    pub batch_wait: Option<Seconds>,
    /// Gzip request bodies (default false).
    #[serde(default)]
    pub compression: bool,
    /// Timeout of one bulk request (default 60s).
    pub timeout: Option<Seconds>,
    /// Dead-letter file; default `<state_dir>/dead-letter/<pipeline>.ndjson`.
    pub dead_letter_path: Option<String>,
}

/// A validated Elasticsearch output.
#[derive(Debug, Clone)]
pub struct Elasticsearch {
    pub hosts: Vec<reqwest::Url>,
    pub index: Template,
    pub action: Action,
    pub document_id: Template,
    pub batch_events: usize,
    pub batch_bytes: usize,
    pub batch_wait: Duration,
    pub compression: bool,
    pub timeout: Duration,
    pub dead_letter_path: Option<std::path::PathBuf>,
}

impl Config {
    pub fn validate(self, cx: &mut Cx<'_>) -> Option<Elasticsearch> {
        let mut ok = true;
        let mut hosts = Vec::new();
        for host in &self.hosts.get_ref().0 {
            match parse_host(host) {
                Ok(url) => hosts.push(url),
                Err(e) => {
                    cx.error(
                        &self.hosts.span(),
                        format!("invalid Elasticsearch host `{host}`: {e}"),
                    );
                    ok = false;
                }
            }
        }
        if self.hosts.get_ref().0.is_empty() {
            cx.error(
                &self.hosts.span(),
                "`hosts` must name at least one Elasticsearch URL",
            );
            ok = false;
        }
        let index = cx.template(&self.index);
        let document_id = match &self.document_id {
            Some(t) => cx.template(t),
            None => Template::parse("%{[@metadata][_id]}").ok(),
        };
        let batch_events = self.batch_events.unwrap_or(1000).max(1);
        let batch_bytes = self.batch_bytes.unwrap_or(5 * 1024 * 1024).max(1);
        let (index, document_id) = (index?, document_id?);
        ok.then(|| Elasticsearch {
            hosts,
            index,
            action: self.action.unwrap_or(Action::Create),
            document_id,
            batch_events,
            batch_bytes,
            batch_wait: self.batch_wait.map_or(Duration::from_secs(1), |s| s.0),
            compression: self.compression,
            timeout: self.timeout.map_or(Duration::from_secs(60), |s| s.0),
            dead_letter_path: self.dead_letter_path.map(|p| cx.path(&p)),
        })
    }
}

/// `10.0.0.72:9200` → `http://10.0.0.72:9200/`.
pub fn parse_host(host: &str) -> Result<reqwest::Url, String> {
    let with_scheme = if host.contains("://") {
        host.to_owned()
    } else {
        format!("http://{host}")
    };
    let mut url = reqwest::Url::parse(&with_scheme).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("unsupported scheme `{}`", url.scheme()));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Events waiting to be indexed, with the tokens of their batches.
struct Pending {
    events: Vec<Event>,
    items: Vec<Item>,
    tokens: Vec<AckToken>,
    bytes: usize,
    since: Option<Instant>,
}

impl Elasticsearch {
    pub async fn run(
        self,
        mut input: mpsc::Receiver<Batch>,
        cx: StageCx,
        dead_letters: DeadLetters,
    ) -> Result<(), StageError> {
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| StageError::Fatal(format!("HTTP client: {e}")))?;
        let mut sender = Sender {
            es: &self,
            client,
            next_host: 0,
            body: Vec::new(),
            warn: Throttle::warnings(),
            cx: &cx,
        };
        let mut pending = Pending {
            events: Vec::new(),
            items: Vec::new(),
            tokens: Vec::new(),
            bytes: 0,
            since: None,
        };
        let abort = cx.shutdown.abort.clone();
        let mut open = true;
        while open || !pending.events.is_empty() {
            let full =
                pending.events.len() >= self.batch_events || pending.bytes >= self.batch_bytes;
            let due = pending
                .since
                .is_some_and(|t| t.elapsed() >= self.batch_wait);
            if full || due || (!open && !pending.events.is_empty()) {
                let batch = std::mem::replace(
                    &mut pending,
                    Pending {
                        events: Vec::new(),
                        items: Vec::new(),
                        tokens: Vec::new(),
                        bytes: 0,
                        since: None,
                    },
                );
                if !sender.deliver(batch, &dead_letters).await? {
                    return Ok(());
                }
                continue;
            }
            let wait = pending.since.map_or(Duration::from_secs(3600), |t| {
                self.batch_wait.saturating_sub(t.elapsed())
            });
            tokio::select! {
                received = input.recv() => match received {
                    Some(batch) => self.add(batch, &mut pending)?,
                    None => open = false,
                },
                _ = tokio::time::sleep(wait) => {}
                _ = abort.cancelled() => return Ok(()),
            }
        }
        Ok(())
    }

    fn add(&self, batch: Batch, pending: &mut Pending) -> Result<(), StageError> {
        if batch.events.is_empty() {
            batch.ack.ack();
            return Ok(());
        }
        pending.since.get_or_insert_with(Instant::now);
        let mut index = String::new();
        for event in &batch.events {
            self.index.render_into(event, &mut index);
            let id = self.document_id.render_strict(event);
            let item = Item::new(event, index.clone(), id)
                .map_err(|e| StageError::Fatal(format!("cannot encode event: {e}")))?;
            pending.bytes += item.size();
            pending.items.push(item);
        }
        pending.events.extend(batch.events);
        pending.tokens.push(batch.ack);
        Ok(())
    }
}

struct Sender<'a> {
    es: &'a Elasticsearch,
    client: reqwest::Client,
    next_host: usize,
    body: Vec<u8>,
    warn: Throttle,
    cx: &'a StageCx,
}

impl Sender<'_> {
    /// Indexes everything in `pending`, then acknowledges its batches.
    /// Returns false when aborted (the batches stay unacknowledged).
    async fn deliver(
        &mut self,
        pending: Pending,
        dead_letters: &DeadLetters,
    ) -> Result<bool, StageError> {
        let Pending {
            events,
            items,
            tokens,
            ..
        } = pending;
        let mut todo: Vec<usize> = (0..items.len()).collect();
        let mut rejected = Vec::new();
        let mut duplicates = 0usize;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        while !todo.is_empty() {
            let Some(outcomes) = self.send(&items, &todo, &mut backoff).await else {
                return Ok(false);
            };
            let mut retry = Vec::new();
            let mut retry_reason = String::new();
            for (&i, outcome) in todo.iter().zip(outcomes) {
                match outcome {
                    Outcome::Indexed => {}
                    Outcome::AlreadyIndexed => duplicates += 1,
                    Outcome::Retry(reason) => {
                        retry.push(i);
                        retry_reason = reason;
                    }
                    Outcome::Reject {
                        status,
                        error_type,
                        reason,
                    } => rejected.push(DeadLetter {
                        stage: "output.elasticsearch",
                        reason,
                        status: Some(status),
                        error_type: Some(error_type),
                        index: Some(items[i].index.clone()),
                        event: events[i].clone(),
                    }),
                }
            }
            if !retry.is_empty() {
                if let Some(suppressed) = self.warn.ready() {
                    tracing::warn!(items = retry.len(), reason = %retry_reason, suppressed, "Elasticsearch rejected items for now; retrying them.");
                }
                if !self.pause(&mut backoff).await {
                    return Ok(false);
                }
            }
            todo = retry;
        }
        if duplicates > 0 {
            tracing::debug!(duplicates, "Documents already indexed (replayed events).");
        }
        if !rejected.is_empty() {
            tracing::error!(
                events = rejected.len(),
                path = %dead_letters.path().display(),
                first_reason = %rejected[0].reason,
                "Elasticsearch refused events for good; they were written to the dead-letter file."
            );
            dead_letters.write(rejected).await.map_err(|e| {
                StageError::io("cannot write dead letters to", dead_letters.path(), e)
            })?;
        }
        for token in tokens {
            token.ack();
        }
        Ok(true)
    }

    /// Sends the items in `todo` until a bulk response comes back; returns
    /// their outcomes in order, or `None` when aborted.
    async fn send(
        &mut self,
        items: &[Item],
        todo: &[usize],
        backoff: &mut Backoff,
    ) -> Option<Vec<Outcome>> {
        self.body.clear();
        if let Err(e) = bulk::encode(
            self.es.action,
            todo.iter().map(|&i| &items[i]),
            &mut self.body,
        ) {
            tracing::error!(error = %e, "Cannot encode bulk request.");
            return None;
        }
        let body = if self.es.compression {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(self.body.len() / 4),
                flate2::Compression::fast(),
            );
            if gz.write_all(&self.body).is_err() {
                return None;
            }
            gz.finish().ok()?
        } else {
            self.body.clone()
        };
        loop {
            let host = &self.es.hosts[self.next_host % self.es.hosts.len()];
            let url = match host.join("_bulk") {
                Ok(url) => url,
                Err(_) => return None,
            };
            let mut request = self
                .client
                .post(url)
                .header("content-type", "application/x-ndjson")
                .body(body.clone());
            if self.es.compression {
                request = request.header("content-encoding", "gzip");
            }
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => match response.bytes().await {
                    Ok(bytes) => match response::classify(&bytes, todo.len()) {
                        Ok(outcomes) => {
                            self.warn.reset();
                            backoff.reset();
                            return Some(outcomes);
                        }
                        Err(e) => e,
                    },
                    Err(e) => format!("reading the response: {e}"),
                },
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    let snippet: String = text.chars().take(300).collect();
                    if !response::retry_request(status.as_u16()) {
                        tracing::error!(host = %host, %status, body = %snippet, "Elasticsearch refused the bulk request; retrying (fix the cause: events are held meanwhile).");
                    }
                    format!("HTTP {status}: {snippet}")
                }
                Err(e) => format!("{e}"),
            };
            if let Some(suppressed) = self.warn.ready() {
                tracing::warn!(host = %host, error = %failure, suppressed, pipeline = %self.cx.pipeline, "Bulk request failed; events are held and the request is retried on the next host.");
            }
            self.next_host = self.next_host.wrapping_add(1);
            if !self.pause(backoff).await {
                return None;
            }
        }
    }

    async fn pause(&self, backoff: &mut Backoff) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => true,
            _ = self.cx.shutdown.abort.cancelled() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_without_a_scheme_mean_http() {
        assert_eq!(
            parse_host("10.0.0.72:9200").unwrap().as_str(),
            "http://10.0.0.72:9200/"
        );
        assert_eq!(
            parse_host("https://es.example:9243/prefix")
                .unwrap()
                .as_str(),
            "https://es.example:9243/prefix/"
        );
        assert!(parse_host("ftp://x").is_err());
    }
}
