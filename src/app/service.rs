//! systemd integration: `READY=1` once every stage has started, watchdog
//! pings while every stage can make progress, `RELOADING=1` and
//! `STOPPING=1`. Each is a no-op when logpipe is not run by systemd (no
//! `NOTIFY_SOCKET`).

use std::sync::Mutex;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::monitor::heartbeat;
use crate::telemetry::Throttle;

fn send(state: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, state) {
        // Pinged every few seconds: one warning per 10 s is enough.
        static THROTTLE: Mutex<Option<Throttle>> = Mutex::new(None);
        let mut throttle = THROTTLE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(suppressed) = throttle.get_or_insert_with(Throttle::warnings).ready() {
            tracing::warn!(error = %e, suppressed, "Cannot notify systemd.");
        }
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn reloading() {
    send(&[NotifyState::Reloading]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Pings the watchdog at half its interval from a runtime task while no
/// stage is wedged (see [`heartbeat`]): a stage stuck in a poll for longer
/// than the interval (at least a second) stops the pings, and so does a
/// stuck runtime, so systemd restarts the service. A stage that waits for a
/// broker or Elasticsearch is not wedged. Does nothing when no watchdog is
/// configured.
pub fn spawn_watchdog() {
    let Some(usec) = watchdog_usec() else {
        return;
    };
    let every = Duration::from_micros(usec) / 2;
    let threshold = every.max(Duration::from_secs(1));
    tracing::info!(interval = ?every, "Pinging the systemd watchdog.");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        let mut was_wedged = false;
        loop {
            tick.tick().await;
            let wedged = heartbeat::wedged(threshold);
            if wedged.is_empty() {
                if was_wedged {
                    tracing::info!(
                        "Every stage makes progress again; pinging the systemd watchdog."
                    );
                }
                was_wedged = false;
                send(&[NotifyState::Watchdog]);
                continue;
            }
            if !was_wedged {
                for w in &wedged {
                    tracing::error!(
                        pipeline = %w.pipeline,
                        stage = w.stage,
                        busy_for = ?w.for_,
                        "A stage has been stuck in one step; no longer pinging the systemd watchdog, so systemd restarts logpipe."
                    );
                }
            }
            was_wedged = true;
        }
    });
}

/// The watchdog interval, as sd_watchdog_enabled(3) reads it: `WATCHDOG_USEC`,
/// for this process when `WATCHDOG_PID` is set (systemd sets both).
fn watchdog_usec() -> Option<u64> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then_some(usec)
}
