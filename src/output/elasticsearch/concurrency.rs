//! Adaptive request concurrency: how many bulk requests may be in flight,
//! found from the cluster's answers rather than set by hand. Pure: fed one
//! round-trip time and [`Signal`] per answer, it exposes the current limit;
//! the output's loop in [`super`] sends no more than that, and the client
//! feeds it.
//!
//! The rule is Vector's ARC (AIMD over an EWMA of round-trip times, after
//! TCP congestion control), decided once per *period* of one mean RTT, so
//! that each decision sees answers to requests sent under the previous
//! limit:
//!
//! - **Additive increase.** No back-pressure in the period, the period's
//!   mean RTT at or below the moving average (within [`CALM_TOLERANCE`]), and the limit was reached
//!   (requests waited for a slot: without that demand a higher limit would
//!   only be a number) → the limit grows by one, up to `max_in_flight`.
//! - **Multiplicative decrease.** A 429, 503, 504, a timeout, or items
//!   refused for now inside a 200 (`es_rejected_execution_exception`) →
//!   the limit is halved. The period's mean RTT above the average by more
//!   than [`DEVIATION_SCALE`] standard deviations → it is cut by a tenth.
//!   Never below one.
//!
//! A fixed limit (`request_concurrency = N`) keeps the RTT average (for the
//! metric) and never moves.

use std::time::Duration;

use tokio::time::Instant;

/// Weight of the latest period's mean RTT in the moving average (Vector's
/// `ewma_alpha`): about the last three periods count, so a lasting change
/// is followed within a second or two, a single slow answer is not.
pub const EWMA_ALPHA: f64 = 0.4;

/// A period's RTT counts as rising when it exceeds the average by this
/// many standard deviations of the average (Vector's `rtt_deviation_scale`):
/// the usual jitter of the cluster is not a signal, a queue building up is.
pub const DEVIATION_SCALE: f64 = 2.5;

/// ... or by this share of the average, whichever is more. When answers
/// come in very steady times the deviation shrinks towards zero and a rise
/// of a few per cent (a segment merge, a GC pause) would cut the limit at
/// every period.
pub const MIN_TOLERANCE: f64 = 0.1;

/// "At or below the average" allows this share above it. After a step up
/// in latency the average approaches the new level from below and, strictly,
/// would never reach it: the limit would stay cut for good.
pub const CALM_TOLERANCE: f64 = 0.01;

/// The cut for a rising RTT (Vector's `decrease_ratio`): latency is a soft,
/// noisy signal, so a gentle cut (at small limits, one less).
pub const LATENCY_DECREASE: f64 = 0.9;

/// The cut for explicit back-pressure: the cluster said its queues are
/// full now. Halving (as TCP does on loss) brings 16 requests to 8 at once;
/// ×0.9 would take seven periods, overflowing the write queue meanwhile:
/// a storm of 429s, each item sent again.
pub const BACK_PRESSURE_DECREASE: f64 = 0.5;

/// What one answer says about the cluster's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Answered, every item done (indexed, already indexed, or refused for
    /// its content): its RTT is a sample of the cluster's latency.
    Ok,
    /// Slow down: 429, 503, 504, a timeout, or items refused for now
    /// inside a 200. Its RTT is not a sample (a quick 429 is not a fast
    /// cluster).
    BackPressure,
    /// Says nothing about load (connection refused, 401, an unreadable
    /// body): ignored.
    Other,
}

/// The signal of a whole-request HTTP status other than 200.
pub fn status_signal(status: u16) -> Signal {
    match status {
        429 | 503 | 504 => Signal::BackPressure,
        _ => Signal::Other,
    }
}

/// `request_concurrency`: adaptive (the default) or a fixed number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// From 1 up to the given maximum (`max_in_flight`).
    Adaptive { max: usize },
    /// Always this many.
    Fixed(usize),
}

/// A moving average and variance of period RTTs, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ewma {
    mean: f64,
    variance: f64,
}

impl Ewma {
    fn new(first: f64) -> Self {
        Ewma {
            mean: first,
            variance: 0.0,
        }
    }

    /// Exponentially weighted mean and variance (Finch, "Incremental
    /// calculation of weighted mean and variance", 2009).
    fn update(&mut self, x: f64) {
        let delta = x - self.mean;
        self.mean += EWMA_ALPHA * delta;
        self.variance = (1.0 - EWMA_ALPHA) * (self.variance + EWMA_ALPHA * delta * delta);
    }

    /// Above this, an RTT is rising.
    fn threshold(&self) -> f64 {
        let deviation = DEVIATION_SCALE * self.variance.sqrt();
        self.mean + deviation.max(MIN_TOLERANCE * self.mean)
    }
}

/// The limit of one output and what it heard in the current period.
#[derive(Debug, Clone)]
pub struct Controller {
    mode: Mode,
    limit: usize,
    /// Period RTTs so far; `None` until the first sample.
    average: Option<Ewma>,
    /// This period's RTT samples: sum (seconds) and count.
    sum: f64,
    samples: u32,
    back_pressure: bool,
    reached_limit: bool,
    /// When the current period ends; `None` before the first sample.
    period_end: Option<Instant>,
}

impl Controller {
    pub fn new(mode: Mode) -> Self {
        let limit = match mode {
            // From one, as TCP's slow start: the cluster proves each step.
            Mode::Adaptive { .. } => 1,
            Mode::Fixed(n) => n.max(1),
        };
        Controller {
            mode,
            limit,
            average: None,
            sum: 0.0,
            samples: 0,
            back_pressure: false,
            reached_limit: false,
            period_end: None,
        }
    }

    /// How many requests may be in flight now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The moving average of RTTs, once there is a sample.
    pub fn rtt(&self) -> Option<Duration> {
        self.average
            .and_then(|a| Duration::try_from_secs_f64(a.mean).ok())
    }

    /// A request was sent, making `in_flight` in flight with it; or one is
    /// ready and waits for a slot (`in_flight` = those holding one).
    pub fn sending(&mut self, in_flight: usize) {
        if in_flight >= self.limit {
            self.reached_limit = true;
        }
    }

    /// One answer came, `rtt` after its request was sent, at `now`.
    /// Returns whether the limit changed.
    pub fn answered(&mut self, now: Instant, rtt: Duration, signal: Signal) -> bool {
        match signal {
            Signal::Ok => {
                self.sum += rtt.as_secs_f64();
                self.samples += 1;
            }
            Signal::BackPressure => self.back_pressure = true,
            Signal::Other => return false,
        }
        if self.period_end.is_some_and(|end| now < end) {
            return false;
        }
        let before = self.limit;
        self.decide();
        self.period_end = self
            .average
            .map(|a| now + Duration::from_secs_f64(a.mean.max(0.0)));
        self.sum = 0.0;
        self.samples = 0;
        self.back_pressure = false;
        self.reached_limit = false;
        self.limit != before
    }

    /// The end of a period: the new limit, then the new average.
    fn decide(&mut self) {
        let current = (self.samples > 0).then(|| self.sum / f64::from(self.samples));
        let Mode::Adaptive { max } = self.mode else {
            if let Some(c) = current {
                self.update_average(c);
            }
            return;
        };
        let rising = match (current, self.average) {
            (Some(c), Some(a)) => c > a.threshold(),
            _ => false,
        };
        let calm = match (current, self.average) {
            (Some(c), Some(a)) => c <= a.mean * (1.0 + CALM_TOLERANCE),
            _ => false,
        };
        if self.back_pressure {
            self.cut(BACK_PRESSURE_DECREASE);
        } else if rising {
            self.cut(LATENCY_DECREASE);
        } else if calm && self.reached_limit && self.limit < max {
            self.limit += 1;
        }
        if let Some(c) = current {
            self.update_average(c);
        }
    }

    fn cut(&mut self, ratio: f64) {
        // Truncated, so that ×0.9 takes at least one away.
        self.limit = ((self.limit as f64 * ratio) as usize).max(1);
    }

    fn update_average(&mut self, current: f64) {
        match &mut self.average {
            Some(a) => a.update(current),
            None => self.average = Some(Ewma::new(current)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Drives a controller as the output does with unlimited demand:
    /// `limit` requests in flight, each answered `rtt` after it was sent
    /// with `signal` and replaced by the next at once, so answers come
    /// every `rtt / limit`. One round is `limit` answers; returns the
    /// limit after it.
    async fn round(c: &mut Controller, rtt: Duration, signal: Signal) -> usize {
        let n = c.limit();
        for _ in 0..n {
            c.sending(n);
            tokio::time::advance(rtt / n as u32).await;
            c.answered(Instant::now(), rtt, signal);
        }
        c.limit()
    }

    async fn rounds(c: &mut Controller, k: usize, rtt: Duration, signal: Signal) -> Vec<usize> {
        let mut limits = Vec::new();
        for _ in 0..k {
            limits.push(round(c, rtt, signal).await);
        }
        limits
    }

    /// Each round the same or one more.
    fn steps_up_by_one(limits: &[usize]) -> bool {
        limits.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1)
    }

    #[tokio::test(start_paused = true)]
    async fn steady_round_trips_raise_the_limit_by_one_per_period_up_to_the_maximum() {
        let mut c = Controller::new(Mode::Adaptive { max: 8 });
        assert_eq!(c.limit(), 1, "starts at one");
        assert_eq!(c.rtt(), None);
        let limits = rounds(&mut c, 14, 20 * MS, Signal::Ok).await;
        // The first answer only sets the average; then one step a period
        // (a round of answers is about one period).
        assert_eq!(limits[0], 1);
        assert!(steps_up_by_one(&limits), "{limits:?}");
        assert_eq!(limits.last(), Some(&8), "{limits:?}");
        assert_eq!(c.rtt(), Some(20 * MS));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_halves_the_limit_and_steady_answers_raise_it_again() {
        let mut c = Controller::new(Mode::Adaptive { max: 16 });
        rounds(&mut c, 17, 20 * MS, Signal::Ok).await;
        assert_eq!(c.limit(), 16);
        assert_eq!(round(&mut c, 20 * MS, Signal::BackPressure).await, 8);
        assert_eq!(round(&mut c, 20 * MS, Signal::BackPressure).await, 4);
        // A 429 is not a sample: the average stays the cluster's.
        assert_eq!(c.rtt(), Some(20 * MS));
        // The tail of the last round of 429s is judged in the next period.
        let limits = rounds(&mut c, 8, 20 * MS, Signal::Ok).await;
        assert!(limits[0] <= 4, "{limits:?}");
        assert!(steps_up_by_one(&limits[1..]), "{limits:?}");
        assert!(limits[7] >= limits[0] + 5, "recovers: {limits:?}");
    }

    /// Items rejected inside a 200 are back-pressure like a 429 of the
    /// whole request, even among answers that were fine.
    #[tokio::test(start_paused = true)]
    async fn one_back_pressured_answer_in_a_period_halves_the_limit() {
        let mut c = Controller::new(Mode::Adaptive { max: 8 });
        rounds(&mut c, 9, 20 * MS, Signal::Ok).await;
        assert_eq!(c.limit(), 8);
        let mut changed = 0;
        for k in 0..8 {
            c.sending(8);
            tokio::time::advance(20 * MS / 8).await;
            let signal = if k == 3 {
                Signal::BackPressure
            } else {
                Signal::Ok
            };
            changed += usize::from(c.answered(Instant::now(), 20 * MS, signal));
        }
        assert_eq!((changed, c.limit()), (1, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn rising_round_trips_cut_the_limit_and_it_recovers_once_they_settle() {
        let mut c = Controller::new(Mode::Adaptive { max: 10 });
        rounds(&mut c, 11, 20 * MS, Signal::Ok).await;
        assert_eq!(c.limit(), 10);
        // A queue builds up in the cluster: each period slower.
        let mut rtt = 20 * MS;
        let mut limits = Vec::new();
        for _ in 0..3 {
            rtt *= 2;
            limits.push(round(&mut c, rtt, Signal::Ok).await);
        }
        assert!(limits.windows(2).all(|w| w[1] <= w[0]), "{limits:?}");
        assert!(limits[2] <= 8, "cut by a tenth a period: {limits:?}");
        // Latency settles at the new level: the average catches up, then
        // the limit grows again.
        let limits = rounds(&mut c, 30, rtt, Signal::Ok).await;
        assert!(steps_up_by_one(&limits), "{limits:?}");
        assert_eq!(limits.last(), Some(&10), "{limits:?}");
    }

    /// Jitter of the usual size is not a rising RTT.
    #[tokio::test(start_paused = true)]
    async fn jitter_within_the_tolerance_does_not_cut_the_limit() {
        let mut c = Controller::new(Mode::Adaptive { max: 6 });
        let mut limits = Vec::new();
        for k in 0..20u64 {
            let rtt = Duration::from_micros(20_000 + (k % 3) * 800);
            limits.push(round(&mut c, rtt, Signal::Ok).await);
        }
        assert!(limits.windows(2).all(|w| w[1] >= w[0]), "{limits:?}");
        assert_eq!(limits.last(), Some(&6));
    }

    /// Without requests waiting for a slot, a higher limit would not be
    /// used: it is not raised.
    #[tokio::test(start_paused = true)]
    async fn the_limit_grows_only_when_requests_reach_it() {
        let mut c = Controller::new(Mode::Adaptive { max: 8 });
        rounds(&mut c, 3, 20 * MS, Signal::Ok).await;
        assert_eq!(c.limit(), 3);
        for _ in 0..10 {
            c.sending(1); // a trickle: one request at a time
            tokio::time::advance(40 * MS).await;
            c.answered(Instant::now(), 20 * MS, Signal::Ok);
        }
        assert_eq!(c.limit(), 3);
    }

    /// The limit is decided once per period of one average RTT, not per
    /// answer: many answers of one period are one step.
    #[tokio::test(start_paused = true)]
    async fn answers_within_one_period_make_one_decision() {
        let mut c = Controller::new(Mode::Adaptive { max: 8 });
        c.sending(1);
        assert!(!c.answered(Instant::now(), 100 * MS, Signal::Ok));
        for k in 0..9 {
            c.sending(1);
            tokio::time::advance(10 * MS).await;
            assert!(
                !c.answered(Instant::now(), 100 * MS, Signal::Ok),
                "answer {k}"
            );
        }
        tokio::time::advance(10 * MS).await;
        assert!(c.answered(Instant::now(), 100 * MS, Signal::Ok));
        assert_eq!(c.limit(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_never_falls_below_one() {
        let mut c = Controller::new(Mode::Adaptive { max: 4 });
        let limits = rounds(&mut c, 5, 20 * MS, Signal::BackPressure).await;
        assert_eq!(limits, [1; 5]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fixed_limit_never_moves_but_still_averages_round_trips() {
        let mut c = Controller::new(Mode::Fixed(4));
        assert_eq!(c.limit(), 4);
        rounds(&mut c, 5, 20 * MS, Signal::BackPressure).await;
        rounds(&mut c, 5, 20 * MS, Signal::Ok).await;
        rounds(&mut c, 3, 200 * MS, Signal::Ok).await;
        assert_eq!(c.limit(), 4);
        assert!(c.rtt().is_some_and(|r| r > 20 * MS), "{:?}", c.rtt());
    }

    #[test]
    fn only_overload_statuses_are_back_pressure() {
        for (status, want) in [
            (429, Signal::BackPressure),
            (503, Signal::BackPressure),
            (504, Signal::BackPressure),
            (502, Signal::Other),
            (500, Signal::Other),
            (401, Signal::Other),
            (413, Signal::Other),
        ] {
            assert_eq!(status_signal(status), want, "{status}");
        }
    }
}
