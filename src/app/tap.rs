//! `logpipe tap PIPELINE`: prints the live events of a running daemon as
//! JSON lines as they leave a stage (the daemon side is
//! [`crate::monitor::tap`]). The daemon is found the way `status` finds it.
//! Events the daemon skipped because this reader was slower than the
//! pipeline are reported on stderr, never waited for.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::{DaemonArgs, EXIT_CONFIG, EXIT_FAILURE};
use crate::monitor::tap::Point;

/// What to tap.
pub struct Request {
    pub pipeline: String,
    pub stage: String,
    pub limit: Option<usize>,
    pub sample: f64,
}

pub async fn run(request: Request, daemon: DaemonArgs) -> ExitCode {
    let Some(point) = Point::parse(&request.stage) else {
        eprintln!(
            "--stage {}: expected input, filters or output",
            request.stage
        );
        return ExitCode::from(EXIT_CONFIG);
    };
    if !(request.sample > 0.0 && request.sample <= 1.0) {
        eprintln!("--sample {}: expected a share in (0, 1]", request.sample);
        return ExitCode::from(EXIT_CONFIG);
    }
    let base = match super::daemon_endpoint(daemon, "tap") {
        Ok(base) => base,
        Err(code) => return code,
    };
    let Ok(client) = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .build()
    else {
        return ExitCode::from(EXIT_FAILURE);
    };
    match known_pipelines(&client, &base).await {
        Err(e) => {
            eprintln!("The daemon is not reachable at {base}: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
        Ok(names) if !names.contains(&request.pipeline) => {
            eprintln!(
                "The daemon at {base} runs no pipeline `{}` (it runs: {}).",
                request.pipeline,
                names.join(", ")
            );
            return ExitCode::from(EXIT_CONFIG);
        }
        Ok(_) => {}
    }
    let url = format!(
        "{base}/tap?pipeline={}&stage={}&sample={}",
        encode(&request.pipeline),
        point.as_str(),
        request.sample
    );
    let mut response = match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            let status = r.status();
            eprintln!(
                "{base}: HTTP {status}: {}",
                r.text().await.unwrap_or_default().trim()
            );
            return ExitCode::from(EXIT_FAILURE);
        }
        Err(e) => {
            eprintln!("The daemon is not reachable at {base}: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let mut shown = 0usize;
    let mut skipped = 0u64;
    let mut pending: Vec<u8> = Vec::new();
    let stdout = std::io::stdout();
    'stream: loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                eprintln!("The tap ended: {e}");
                break;
            }
        };
        pending.extend_from_slice(&chunk);
        while let Some(end) = memchr::memchr(b'\n', &pending) {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if line.starts_with(b"{\"tap\":") {
                let note: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
                let n = note["tap"]["skipped"].as_u64().unwrap_or(0);
                skipped += n;
                eprintln!("logpipe tap: {n} event(s) skipped: this reader is slower than the pipeline, which is never held back for it.");
                continue;
            }
            let mut out = stdout.lock();
            if out.write_all(&line).and_then(|_| out.flush()).is_err() {
                // stdout closed (`| head`): done.
                break 'stream;
            }
            shown += 1;
            if request.limit.is_some_and(|limit| shown >= limit) {
                break 'stream;
            }
        }
    }
    if skipped > 0 {
        eprintln!("logpipe tap: {shown} event(s) shown, {skipped} skipped.");
    }
    ExitCode::SUCCESS
}

/// The pipelines the daemon's `/health` names.
async fn known_pipelines(client: &reqwest::Client, base: &str) -> Result<Vec<String>, String> {
    let health = client
        .get(format!("{base}/health"))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value = health.json().await.map_err(|e| e.to_string())?;
    let mut names: Vec<String> = body["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["pipeline"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// A query value, percent-encoded.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
