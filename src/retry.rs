//! Exponential backoff with full jitter, shared by the outputs.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            attempt: 0,
        }
    }

    /// The next delay: uniform in `[0, min(max, base * 2^attempt)]`, so that
    /// many clients retrying together spread out.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(fastrand::u64(0..=millis))
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_up_to_the_cap_and_never_exceed_it() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        for attempt in 0..30 {
            let ceiling =
                Duration::from_millis(100 * (1u64 << attempt.min(20))).min(Duration::from_secs(2));
            assert!(b.next_delay() <= ceiling);
        }
        assert_eq!(b.attempts(), 30);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
