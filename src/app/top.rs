//! `logpipe top`: a live view of a running daemon, one row per pipeline and
//! stage, from what the daemon serves (`/metrics`, `/health`), found the way
//! `status` finds it. It keeps nothing but the last readings it needs for
//! rates and the small plot of each row.
//!
//! On a terminal it is a full-screen view (ratatui); keys: ↑/↓ pick a
//! pipeline (its Kafka lag per partition and files behind show below), `s`
//! changes the sort, `q` quits. Elsewhere (a pipe, a file) it prints plain
//! tables, one per interval, `--iterations` of them.

use std::collections::{BTreeMap, VecDeque};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event as Key, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row as TableRow, Table};

use super::status::{number, parse, Sample};
use crate::cli::{DaemonArgs, EXIT_FAILURE};

/// How many readings a row's plot shows.
const HISTORY: usize = 40;

/// One reading of the daemon.
struct Reading {
    at: Instant,
    samples: Vec<Sample>,
    /// `(pipeline, stage) → status` from `/health`.
    health: BTreeMap<(String, String), String>,
    healthy: bool,
}

/// One pipeline stage, as the view shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub pipeline: String,
    pub stage: String,
    pub in_rate: f64,
    pub out_rate: f64,
    pub bytes_rate: f64,
    pub out_total: f64,
    pub dead_letters: f64,
    pub retries: f64,
    pub failures: f64,
    pub health: String,
}

/// What a pipeline has besides its stages' rows.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Extras {
    /// `(topic, partition, lag)`.
    pub lag: Vec<(String, String, f64)>,
    pub files_behind: f64,
    pub open_files: f64,
    /// The books of each half that runs (see [`crate::accounting`]).
    pub books: Vec<BooksLine>,
}

/// One half's books, as `/metrics` has them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BooksLine {
    pub half: String,
    pub read: f64,
    pub in_flight_events: f64,
    pub in_flight_batches: f64,
    /// Every output of the half accounts for every event read.
    pub balanced: bool,
}

impl BooksLine {
    pub fn text(&self) -> String {
        format!(
            "books ({}): read {}, in flight {} event(s) in {} batch(es), {}",
            self.half,
            number(self.read),
            number(self.in_flight_events),
            number(self.in_flight_batches),
            if self.balanced {
                "balanced"
            } else {
                "DO NOT BALANCE"
            }
        )
    }
}

fn books(now: &Reading, pipeline: &str) -> Vec<BooksLine> {
    let of = |name: &str, half: &str| -> Vec<&Sample> {
        now.samples
            .iter()
            .filter(|s| {
                s.name == name && s.label("pipeline") == pipeline && s.label("half") == half
            })
            .collect()
    };
    let mut halves: Vec<String> = now
        .samples
        .iter()
        .filter(|s| s.name == "logpipe_books_read_total" && s.label("pipeline") == pipeline)
        .map(|s| s.label("half").to_owned())
        .collect();
    halves.sort();
    halves.dedup();
    halves
        .into_iter()
        .map(|half| {
            let value = |name: &str| of(name, &half).iter().map(|s| s.value).sum::<f64>();
            BooksLine {
                read: value("logpipe_books_read_total"),
                in_flight_events: value("logpipe_books_in_flight_events"),
                in_flight_batches: value("logpipe_books_in_flight_batches"),
                balanced: of("logpipe_books_balanced", &half)
                    .iter()
                    .all(|s| s.value == 1.0),
                half,
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Sort {
    Name,
    OutRate,
    InRate,
}

impl Sort {
    fn next(self) -> Sort {
        match self {
            Sort::Name => Sort::OutRate,
            Sort::OutRate => Sort::InRate,
            Sort::InRate => Sort::Name,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::OutRate => "out/s",
            Sort::InRate => "in/s",
        }
    }
}

fn sum(samples: &[Sample], name: &str, pipeline: &str, stage: Option<&str>) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && s.label("pipeline") == pipeline
                && stage.is_none_or(|st| s.label("stage") == st)
        })
        .map(|s| s.value)
        .sum()
}

/// The rows of `now`, with rates against `before` (none on the first
/// reading).
fn rows(before: Option<&Reading>, now: &Reading) -> Vec<Row> {
    let mut keys: Vec<(String, String)> = now
        .samples
        .iter()
        .filter(|s| {
            matches!(
                s.name.as_str(),
                "logpipe_events_in_total" | "logpipe_events_out_total"
            )
        })
        .map(|s| (s.label("pipeline").to_owned(), s.label("stage").to_owned()))
        .collect();
    for key in now.health.keys() {
        keys.push(key.clone());
    }
    keys.sort();
    keys.dedup();
    let rate = |name: &str, p: &str, st: &str| -> f64 {
        let Some(before) = before else { return 0.0 };
        let seconds = now.at.duration_since(before.at).as_secs_f64();
        if seconds <= 0.0 {
            return 0.0;
        }
        // A counter that went down is a restarted daemon: no rate.
        ((sum(&now.samples, name, p, Some(st)) - sum(&before.samples, name, p, Some(st))) / seconds)
            .max(0.0)
    };
    keys.into_iter()
        .map(|(p, st)| {
            let bytes_rate =
                rate("logpipe_bytes_in_total", &p, &st) + rate("logpipe_bytes_out_total", &p, &st);
            Row {
                in_rate: rate("logpipe_events_in_total", &p, &st),
                out_rate: rate("logpipe_events_out_total", &p, &st),
                bytes_rate,
                out_total: sum(&now.samples, "logpipe_events_out_total", &p, Some(&st)),
                dead_letters: sum(&now.samples, "logpipe_dead_letters_total", &p, Some(&st)),
                retries: now
                    .samples
                    .iter()
                    .filter(|s| {
                        s.name == "logpipe_es_items_total"
                            && s.label("result") == "retried"
                            && s.label("pipeline") == p
                            && s.label("stage") == st
                    })
                    .map(|s| s.value)
                    .sum(),
                failures: sum(
                    &now.samples,
                    "logpipe_es_failed_requests_total",
                    &p,
                    Some(&st),
                ),
                health: now
                    .health
                    .get(&(p.clone(), st.clone()))
                    .cloned()
                    .unwrap_or_else(|| "-".into()),
                pipeline: p,
                stage: st,
            }
        })
        .collect()
}

fn extras(now: &Reading, pipeline: &str) -> Extras {
    Extras {
        lag: now
            .samples
            .iter()
            .filter(|s| s.name == "logpipe_kafka_consumer_lag" && s.label("pipeline") == pipeline)
            .map(|s| {
                (
                    s.label("topic").to_owned(),
                    s.label("partition").to_owned(),
                    s.value,
                )
            })
            .collect(),
        files_behind: sum(&now.samples, "logpipe_file_bytes_behind", pipeline, None),
        open_files: sum(&now.samples, "logpipe_open_files", pipeline, None),
        books: books(now, pipeline),
    }
}

fn sort(rows: &mut [Row], by: Sort) {
    match by {
        Sort::Name => rows.sort_by(|a, b| (&a.pipeline, &a.stage).cmp(&(&b.pipeline, &b.stage))),
        Sort::OutRate => rows.sort_by(|a, b| b.out_rate.total_cmp(&a.out_rate)),
        Sort::InRate => rows.sort_by(|a, b| b.in_rate.total_cmp(&a.in_rate)),
    }
}

/// A rate as people read it: `12.3k/s`.
fn rate_text(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn bytes_text(v: f64) -> String {
    if v >= 1024.0 * 1024.0 {
        format!("{:.1}MiB", v / (1024.0 * 1024.0))
    } else if v >= 1024.0 {
        format!("{:.1}KiB", v / 1024.0)
    } else {
        format!("{v:.0}B")
    }
}

/// A small plot of `values`, one block character per reading.
pub fn sparkline(values: &VecDeque<f64>) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().fold(0.0, f64::max);
    values
        .iter()
        .map(|v| {
            if max <= 0.0 {
                BARS[0]
            } else {
                BARS[((v / max) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

async fn read(client: &reqwest::Client, base: &str) -> Result<Reading, String> {
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let health = client
        .get(format!("{base}/health"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let healthy = health.status().is_success();
    let body: serde_json::Value = health.json().await.unwrap_or_default();
    let health = body["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                (
                    s["pipeline"].as_str().unwrap_or("").to_owned(),
                    s["stage"].as_str().unwrap_or("").to_owned(),
                ),
                s["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    Ok(Reading {
        at: Instant::now(),
        samples: parse(&metrics),
        health,
        healthy,
    })
}

/// `logpipe top`.
pub async fn run(daemon: DaemonArgs, interval: Duration, iterations: Option<usize>) -> ExitCode {
    let base = match super::daemon_endpoint(daemon, "top") {
        Ok(base) => base,
        Err(code) => return code,
    };
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
    else {
        return ExitCode::from(EXIT_FAILURE);
    };
    let first = match read(&client, &base).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("The daemon is not reachable at {base}: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    if std::io::stdout().is_terminal() && iterations.is_none() {
        return interactive(&client, &base, first, interval).await;
    }
    plain(&client, &base, first, interval, iterations.unwrap_or(1)).await
}

async fn plain(
    client: &reqwest::Client,
    base: &str,
    mut before: Reading,
    interval: Duration,
    iterations: usize,
) -> ExitCode {
    for i in 0..iterations {
        tokio::time::sleep(interval).await;
        let now = match read(client, base).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("The daemon is not reachable at {base}: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        let mut table = rows(Some(&before), &now);
        sort(&mut table, Sort::Name);
        if i > 0 {
            println!();
        }
        println!(
            "logpipe at {base}: {}",
            if now.healthy { "healthy" } else { "FAILING" }
        );
        println!(
            "{:<20} {:<24} {:>9} {:>9} {:>10} {:>12} {:>6} {:>7} {:>6}  health",
            "PIPELINE", "STAGE", "IN/S", "OUT/S", "BYTES/S", "OUT", "DEAD", "RETRY", "FAIL"
        );
        for r in &table {
            println!(
                "{:<20} {:<24} {:>9} {:>9} {:>10} {:>12} {:>6} {:>7} {:>6}  {}",
                r.pipeline,
                r.stage,
                rate_text(r.in_rate),
                rate_text(r.out_rate),
                bytes_text(r.bytes_rate),
                number(r.out_total),
                number(r.dead_letters),
                number(r.retries),
                number(r.failures),
                r.health
            );
        }
        let mut pipelines: Vec<&str> = table.iter().map(|r| r.pipeline.as_str()).collect();
        pipelines.dedup();
        for p in pipelines {
            let x = extras(&now, p);
            let lag: f64 = x.lag.iter().map(|(_, _, l)| l).sum();
            println!(
                "{p}: {} open file(s), {} behind, Kafka lag {} over {} partition(s)",
                number(x.open_files),
                bytes_text(x.files_behind),
                number(lag),
                x.lag.len()
            );
            for b in &x.books {
                println!("{p}: {}", b.text());
            }
        }
        before = now;
    }
    ExitCode::SUCCESS
}

async fn interactive(
    client: &reqwest::Client,
    base: &str,
    mut before: Reading,
    interval: Duration,
) -> ExitCode {
    let mut terminal = ratatui::init();
    let mut history: BTreeMap<(String, String), VecDeque<f64>> = BTreeMap::new();
    let mut by = Sort::Name;
    let mut picked = 0usize;
    let mut table: Vec<Row> = rows(None, &before);
    let mut error: Option<String> = None;
    let mut next_read = Instant::now() + interval;
    let code = loop {
        let pipelines: Vec<String> = {
            let mut p: Vec<String> = table.iter().map(|r| r.pipeline.clone()).collect();
            p.sort();
            p.dedup();
            p
        };
        picked = picked.min(pipelines.len().saturating_sub(1));
        let chosen = pipelines.get(picked).cloned().unwrap_or_default();
        let x = extras(&before, &chosen);
        let drawn = terminal.draw(|frame| {
            let [head, body, detail, keys] = Layout::vertical([
                Constraint::Length(1),
                Constraint::Min(5),
                Constraint::Length(6),
                Constraint::Length(1),
            ])
            .areas(frame.area());
            let status = match &error {
                Some(e) => Span::styled(format!("unreachable: {e}"), Style::new().fg(Color::Red)),
                None if before.healthy => Span::styled("healthy", Style::new().fg(Color::Green)),
                None => Span::styled(
                    "FAILING",
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                ),
            };
            frame.render_widget(
                Paragraph::new(Line::from(vec![
                    Span::raw(format!("logpipe at {base}: ")),
                    status,
                ])),
                head,
            );
            let header = TableRow::new([
                "pipeline",
                "stage",
                "in/s",
                "out/s",
                "bytes/s",
                "dead",
                "retry",
                "fail",
                "health",
                "out/s, last readings",
            ])
            .style(Style::new().add_modifier(Modifier::BOLD));
            let lines: Vec<TableRow> = table
                .iter()
                .map(|r| {
                    let plot = history
                        .get(&(r.pipeline.clone(), r.stage.clone()))
                        .map(sparkline)
                        .unwrap_or_default();
                    let health_style = match r.health.as_str() {
                        "running" | "-" | "ended" => Style::new(),
                        "degraded" => Style::new().fg(Color::Yellow),
                        _ => Style::new().fg(Color::Red),
                    };
                    let dead_style = if r.dead_letters > 0.0 {
                        Style::new().fg(Color::Yellow)
                    } else {
                        Style::new()
                    };
                    let mut row = TableRow::new(vec![
                        Cell::from(r.pipeline.clone()),
                        Cell::from(r.stage.clone()),
                        Cell::from(rate_text(r.in_rate)),
                        Cell::from(rate_text(r.out_rate)),
                        Cell::from(bytes_text(r.bytes_rate)),
                        Cell::from(number(r.dead_letters)).style(dead_style),
                        Cell::from(number(r.retries)),
                        Cell::from(number(r.failures)),
                        Cell::from(r.health.clone()).style(health_style),
                        Cell::from(plot),
                    ]);
                    if r.pipeline == chosen {
                        row = row.style(Style::new().add_modifier(Modifier::BOLD));
                    }
                    row
                })
                .collect();
            let widths = [
                Constraint::Length(16),
                Constraint::Length(18),
                Constraint::Length(7),
                Constraint::Length(7),
                Constraint::Length(9),
                Constraint::Length(5),
                Constraint::Length(5),
                Constraint::Length(5),
                Constraint::Length(9),
                Constraint::Min(10),
            ];
            frame.render_widget(
                Table::new(lines, widths)
                    .header(header)
                    .block(Block::bordered().title(format!(" stages (sorted by {}) ", by.label()))),
                body,
            );
            let lag_total: f64 = x.lag.iter().map(|(_, _, l)| l).sum();
            let mut detail_lines = vec![Line::from(format!(
                "{} open file(s), {} behind; Kafka lag {} over {} partition(s)",
                number(x.open_files),
                bytes_text(x.files_behind),
                number(lag_total),
                x.lag.len()
            ))];
            let per_partition: Vec<String> = x
                .lag
                .iter()
                .map(|(t, p, l)| format!("{t}[{p}] {}", number(*l)))
                .collect();
            detail_lines.push(Line::from(per_partition.join("  ")));
            for b in &x.books {
                let style = if b.balanced {
                    Style::new()
                } else {
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
                };
                detail_lines.push(Line::styled(b.text(), style));
            }
            frame.render_widget(
                Paragraph::new(detail_lines).block(Block::bordered().title(format!(" {chosen} "))),
                detail,
            );
            frame.render_widget(
                Paragraph::new("↑/↓ pipeline   s sort   q quit")
                    .style(Style::new().fg(Color::DarkGray)),
                keys,
            );
        });
        if drawn.is_err() {
            break ExitCode::from(EXIT_FAILURE);
        }
        let wait = next_read.saturating_duration_since(Instant::now());
        let quit = tokio::task::block_in_place(|| -> std::io::Result<Option<KeyCode>> {
            if event::poll(wait)? {
                if let Key::Key(k) = event::read()? {
                    if k.kind == KeyEventKind::Press {
                        return Ok(Some(k.code));
                    }
                }
            }
            Ok(None)
        });
        match quit {
            Ok(Some(KeyCode::Char('q')) | Some(KeyCode::Esc)) => break ExitCode::SUCCESS,
            Ok(Some(KeyCode::Char('s'))) => {
                by = by.next();
                sort(&mut table, by);
                continue;
            }
            Ok(Some(KeyCode::Down)) => {
                picked = (picked + 1) % pipelines.len().max(1);
                continue;
            }
            Ok(Some(KeyCode::Up)) => {
                picked = (picked + pipelines.len().max(1) - 1) % pipelines.len().max(1);
                continue;
            }
            Ok(_) => {}
            Err(_) => break ExitCode::from(EXIT_FAILURE),
        }
        if Instant::now() < next_read {
            continue;
        }
        next_read = Instant::now() + interval;
        match read(client, base).await {
            Ok(now) => {
                error = None;
                table = rows(Some(&before), &now);
                sort(&mut table, by);
                for r in &table {
                    let h = history
                        .entry((r.pipeline.clone(), r.stage.clone()))
                        .or_default();
                    h.push_back(r.out_rate);
                    while h.len() > HISTORY {
                        h.pop_front();
                    }
                }
                before = now;
            }
            Err(e) => error = Some(e),
        }
    };
    ratatui::restore();
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(at: Instant, metrics: &str, health: &[(&str, &str, &str)]) -> Reading {
        Reading {
            at,
            samples: parse(metrics),
            health: health
                .iter()
                .map(|(p, s, h)| ((p.to_string(), s.to_string()), h.to_string()))
                .collect(),
            healthy: true,
        }
    }

    #[test]
    fn rates_come_from_two_readings_and_every_stage_has_a_row() {
        let t0 = Instant::now();
        let before = reading(
            t0,
            "logpipe_events_in_total{pipeline=\"a\",stage=\"input.file\"} 100\n\
             logpipe_bytes_in_total{pipeline=\"a\",stage=\"input.file\"} 1000\n\
             logpipe_events_out_total{pipeline=\"a\",stage=\"output.elasticsearch\"} 50\n",
            &[],
        );
        let now = reading(
            t0 + Duration::from_secs(2),
            "logpipe_events_in_total{pipeline=\"a\",stage=\"input.file\"} 300\n\
             logpipe_bytes_in_total{pipeline=\"a\",stage=\"input.file\"} 5000\n\
             logpipe_events_out_total{pipeline=\"a\",stage=\"output.elasticsearch\"} 250\n\
             logpipe_dead_letters_total{pipeline=\"a\",stage=\"output.elasticsearch\"} 3\n\
             logpipe_kafka_consumer_lag{pipeline=\"a\",group=\"g\",topic=\"t\",partition=\"0\"} 7\n\
             logpipe_kafka_consumer_lag{pipeline=\"a\",group=\"g\",topic=\"t\",partition=\"1\"} 5\n",
            &[("a", "output.elasticsearch", "degraded"), ("a", "filter", "running")],
        );
        let table = rows(Some(&before), &now);
        let stages: Vec<&str> = table.iter().map(|r| r.stage.as_str()).collect();
        assert_eq!(stages, ["filter", "input.file", "output.elasticsearch"]);
        assert_eq!(table[1].in_rate, 100.0);
        assert_eq!(table[1].bytes_rate, 2000.0);
        assert_eq!(table[2].out_rate, 100.0);
        assert_eq!(table[2].dead_letters, 3.0);
        assert_eq!(table[2].health, "degraded");
        let x = extras(&now, "a");
        assert_eq!(x.lag.len(), 2);
        assert_eq!(x.lag.iter().map(|(_, _, l)| l).sum::<f64>(), 12.0);
        // A restarted daemon's counters go down: no negative rate.
        let restarted = rows(Some(&now), &before);
        assert!(restarted
            .iter()
            .all(|r| r.in_rate >= 0.0 && r.out_rate >= 0.0));
    }

    #[test]
    fn the_books_of_each_half_come_from_the_metrics() {
        let now = reading(
            Instant::now(),
            "logpipe_books_read_total{pipeline=\"a\",half=\"ship\"} 10\n\
             logpipe_books_in_flight_events{pipeline=\"a\",half=\"ship\"} 4\n\
             logpipe_books_in_flight_batches{pipeline=\"a\",half=\"ship\"} 1\n\
             logpipe_books_balanced{pipeline=\"a\",half=\"ship\",output=\"output.kafka\"} 1\n\
             logpipe_books_read_total{pipeline=\"a\",half=\"index\"} 6\n\
             logpipe_books_balanced{pipeline=\"a\",half=\"index\",output=\"es\"} 1\n\
             logpipe_books_balanced{pipeline=\"a\",half=\"index\",output=\"errors\"} 0\n\
             logpipe_books_read_total{pipeline=\"b\",half=\"whole\"} 99\n",
            &[],
        );
        let books = extras(&now, "a").books;
        assert_eq!(books.len(), 2);
        assert_eq!(
            books[1].text(),
            "books (ship): read 10, in flight 4 event(s) in 1 batch(es), balanced"
        );
        assert!(
            !books[0].balanced,
            "one output of the index half does not balance"
        );
        assert!(books[0].text().ends_with("DO NOT BALANCE"));
    }

    #[test]
    fn sorting_and_plots() {
        let row = |name: &str, out: f64| Row {
            pipeline: name.into(),
            stage: "s".into(),
            in_rate: 0.0,
            out_rate: out,
            bytes_rate: 0.0,
            out_total: 0.0,
            dead_letters: 0.0,
            retries: 0.0,
            failures: 0.0,
            health: "-".into(),
        };
        let mut rows = vec![row("b", 1.0), row("a", 5.0), row("c", 3.0)];
        sort(&mut rows, Sort::OutRate);
        assert_eq!(
            rows.iter().map(|r| r.pipeline.as_str()).collect::<Vec<_>>(),
            ["a", "c", "b"]
        );
        sort(&mut rows, Sort::Name);
        assert_eq!(rows[0].pipeline, "a");
        assert_eq!(sparkline(&VecDeque::from([0.0, 50.0, 100.0])), "▁▅█");
        assert_eq!(sparkline(&VecDeque::from([0.0, 0.0])), "▁▁");
        assert_eq!(rate_text(12_345.0), "12.3k");
        assert_eq!(bytes_text(3.0 * 1024.0 * 1024.0), "3.0MiB");
    }
}
