//! Logging: tracing to stderr, one line per record (journald stores stderr
//! lines as records), plus a throttle for warnings that would otherwise
//! repeat on every retry.

use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;

/// `--log-level` wins over `RUST_LOG`; the default is `info`.
pub fn init(level: Option<&str>) {
    let filter = match level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// Lets one warning per cause through every `every`; counts the rest.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub fn new(every: Duration) -> Self {
        Throttle {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// The standard throttle for repeated warnings: one per 10 s.
    pub fn warnings() -> Self {
        Throttle::new(Duration::from_secs(10))
    }

    /// `Some(n)` when a message may be logged now, with `n` the number of
    /// messages suppressed since the last one; `None` otherwise.
    pub fn ready(&mut self) -> Option<u64> {
        self.ready_at(Instant::now())
    }

    fn ready_at(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }

    /// Forgets the last message: the cause went away.
    pub fn reset(&mut self) {
        self.last = None;
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_per_period_and_the_rest_are_counted() {
        let mut t = Throttle::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(t.ready_at(start), Some(0));
        assert_eq!(t.ready_at(start + Duration::from_secs(1)), None);
        assert_eq!(t.ready_at(start + Duration::from_secs(9)), None);
        assert_eq!(t.ready_at(start + Duration::from_secs(10)), Some(2));
    }
}
