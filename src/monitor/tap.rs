//! `logpipe tap`: live events of a running daemon, as they leave a stage,
//! streamed as JSON lines from `/tap?pipeline=P&stage=S&sample=R`.
//!
//! A tap never slows a pipeline down: stages offer their batches with
//! [`offer`], which costs one atomic load while nobody taps; a tapped event
//! is rendered only if the tap's bounded queue has room, and otherwise it is
//! counted as skipped (`logpipe_tap_skipped_total`, and a
//! `{"tap":{"skipped":N}}` line in the stream). Nothing ever waits for a
//! tap reader.
//!
//! The points: `input` (what enters the filters), `filters` (what leaves
//! them), `output` (what the outputs receive: after routing on the index
//! half; what goes to Kafka on the ship half).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::event::json::WithMetadata;
use crate::event::Event;

/// Where in a pipeline a tap looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    Input,
    Filters,
    Output,
}

impl Point {
    pub fn parse(text: &str) -> Option<Point> {
        match text {
            "input" => Some(Point::Input),
            "filters" => Some(Point::Filters),
            "output" => Some(Point::Output),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Point::Input => "input",
            Point::Filters => "filters",
            Point::Output => "output",
        }
    }
}

/// Lines a tap holds for its reader; past this, events are skipped.
const QUEUE: usize = 256;

struct Tap {
    pipeline: String,
    point: Point,
    /// The share of events offered (0, 1].
    sample: f64,
    lines: mpsc::Sender<Vec<u8>>,
    skipped: AtomicU64,
}

/// How many taps are open: the fast path of [`offer`].
static OPEN: AtomicUsize = AtomicUsize::new(0);

fn taps() -> &'static Mutex<Vec<Arc<Tap>>> {
    static TAPS: OnceLock<Mutex<Vec<Arc<Tap>>>> = OnceLock::new();
    TAPS.get_or_init(Default::default)
}

/// Offers the events of a batch leaving `point` of `pipeline` to the open
/// taps. Never blocks.
pub fn offer(pipeline: &str, point: Point, events: &[Event]) {
    if OPEN.load(Ordering::Relaxed) == 0 {
        return;
    }
    let open: Vec<Arc<Tap>> = {
        let taps = taps().lock().unwrap_or_else(|e| e.into_inner());
        taps.iter()
            .filter(|t| t.point == point && t.pipeline == pipeline)
            .cloned()
            .collect()
    };
    for tap in open {
        let mut skipped = 0;
        for event in events {
            if tap.sample < 1.0 && fastrand::f64() >= tap.sample {
                continue;
            }
            let Ok(permit) = tap.lines.try_reserve() else {
                skipped += 1;
                continue;
            };
            let mut line = Vec::with_capacity(512);
            if serde_json::to_writer(&mut line, &WithMetadata(event)).is_ok() {
                line.push(b'\n');
                permit.send(line);
            }
        }
        if skipped > 0 {
            tap.skipped.fetch_add(skipped, Ordering::Relaxed);
            metrics::counter!("logpipe_tap_skipped_total", "pipeline" => pipeline.to_owned(), "stage" => point.as_str())
                .increment(skipped);
        }
    }
}

/// An open tap; closing it (drop) takes it out of the list.
struct Open(Arc<Tap>);

impl Drop for Open {
    fn drop(&mut self) {
        let mut taps = taps().lock().unwrap_or_else(|e| e.into_inner());
        taps.retain(|t| !Arc::ptr_eq(t, &self.0));
        OPEN.store(taps.len(), Ordering::Relaxed);
    }
}

fn open(pipeline: &str, point: Point, sample: f64) -> (Open, mpsc::Receiver<Vec<u8>>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let tap = Arc::new(Tap {
        pipeline: pipeline.to_owned(),
        point,
        sample,
        lines: tx,
        skipped: AtomicU64::new(0),
    });
    let mut taps = taps().lock().unwrap_or_else(|e| e.into_inner());
    taps.push(Arc::clone(&tap));
    OPEN.store(taps.len(), Ordering::Relaxed);
    (Open(tap), rx)
}

/// What a `/tap` query asks for, or why it cannot be served.
#[derive(Debug, PartialEq)]
pub struct Query {
    pub pipeline: String,
    pub point: Point,
    pub sample: f64,
}

impl Query {
    pub fn parse(path: &str) -> Result<Query, String> {
        let query = path.split_once('?').map_or("", |(_, q)| q);
        let (mut pipeline, mut point, mut sample) = (None, Point::Filters, 1.0);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            match key {
                "pipeline" => pipeline = Some(value),
                "stage" => {
                    point = Point::parse(&value).ok_or_else(|| {
                        format!("stage `{value}`: expected input, filters or output")
                    })?
                }
                "sample" => {
                    sample = value
                        .parse::<f64>()
                        .ok()
                        .filter(|s| *s > 0.0 && *s <= 1.0)
                        .ok_or_else(|| format!("sample `{value}`: expected a share in (0, 1]"))?
                }
                other => return Err(format!("unknown parameter `{other}`")),
            }
        }
        let pipeline = pipeline
            .filter(|p| !p.is_empty())
            .ok_or("name a pipeline: /tap?pipeline=NAME")?;
        Ok(Query {
            pipeline,
            point,
            sample,
        })
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(b) = hex {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Streams a tap to `stream` until the reader goes away (or the daemon
/// ends): the response head, then one JSON line per event, and a
/// `{"tap":{"skipped":N}}` line each second events were skipped.
pub async fn stream(stream: &mut tokio::net::TcpStream, query: Query) -> std::io::Result<()> {
    let (tap, mut lines) = open(&query.pipeline, query.point, query.sample);
    tracing::info!(pipeline = %query.pipeline, stage = query.point.as_str(), sample = query.sample, "A tap is open.");
    stream
        .write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\nconnection: close\r\n\r\n",
        )
        .await?;
    let mut reported = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else { return Ok(()) };
                stream.write_all(&line).await?;
            }
            _ = tick.tick() => {
                let skipped = tap.0.skipped.load(Ordering::Relaxed);
                if skipped > reported {
                    let note = format!("{{\"tap\":{{\"skipped\":{}}}}}\n", skipped - reported);
                    stream.write_all(note.as_bytes()).await?;
                    reported = skipped;
                }
                // A reader that went away shows as a failed write; an idle
                // tap writes nothing, so probe with an empty write.
                stream.flush().await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_a_pipeline_a_point_and_a_share() {
        assert_eq!(
            Query::parse("/tap?pipeline=httpd-access&stage=output&sample=0.5"),
            Ok(Query {
                pipeline: "httpd-access".into(),
                point: Point::Output,
                sample: 0.5
            })
        );
        assert_eq!(Query::parse("/tap?pipeline=a%20b").unwrap().pipeline, "a b");
        assert_eq!(
            Query::parse("/tap?pipeline=p").unwrap().point,
            Point::Filters
        );
        for bad in [
            "/tap",
            "/tap?stage=input",
            "/tap?pipeline=p&stage=x",
            "/tap?pipeline=p&sample=0",
            "/tap?pipeline=p&sample=2",
            "/tap?pipeline=p&x=1",
        ] {
            assert!(Query::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_full_tap_skips_and_counts_and_never_blocks() {
        let (tap, mut rx) = open("tap-unit", Point::Filters, 1.0);
        let events: Vec<Event> = (0..QUEUE + 44)
            .map(|i| Event::from_message(format!("e{i}")))
            .collect();
        offer("tap-unit", Point::Filters, &events);
        offer("tap-unit", Point::Input, &events);
        offer("other", Point::Filters, &events);
        assert_eq!(tap.0.skipped.load(Ordering::Relaxed), 44);
        let first = rx.recv().await.unwrap();
        assert!(String::from_utf8(first)
            .unwrap()
            .contains("\"message\":\"e0\""));
        let mut n = 1;
        while rx.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, QUEUE);
        drop(tap);
        assert!(taps()
            .lock()
            .unwrap()
            .iter()
            .all(|t| t.pipeline != "tap-unit"));
    }
}
