//! systemd integration: `READY=1` once every stage has started, watchdog
//! pings while the runtime is alive, `RELOADING=1` and `STOPPING=1`. Each is
//! a no-op when logpipe is not run by systemd (no `NOTIFY_SOCKET`).

use std::time::Duration;

use sd_notify::NotifyState;

fn send(state: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!(error = %e, "Cannot notify systemd.");
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

/// Pings the watchdog at half its interval from a runtime task, so a stuck
/// runtime stops the pings and systemd restarts the service. Does nothing
/// when no watchdog is configured.
pub fn spawn_watchdog() {
    let Some(usec) = watchdog_usec() else {
        return;
    };
    let every = Duration::from_micros(usec) / 2;
    tracing::info!(interval = ?every, "Pinging the systemd watchdog.");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog]);
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
