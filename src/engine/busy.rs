//! When a request refused for a full hash queue (SERVER_BUSY) may come back.
//!
//! Owns the `retry_after` of those refusals, and the estimate of how fast the workers
//! verify passwords that it is based on. Does not decide *whether* to refuse (the hash
//! pool does, when its queue is full).
//!
//! Design: one constant `retry_after` sends every refused client back at the same instant.
//! A reconnect storm of 10,000 clients against a queue of 256 then repeats itself each
//! time: nearly everyone refused again, their requests decoded and answered for nothing.
//! Instead each refusal gets the next slot of a virtual queue that drains at the measured
//! hash rate, after at least `base`: the refused clients come back spread out at about the
//! rate they can be served, and each is refused about once.

use std::time::{Duration, Instant};

/// Hashes per second assumed until one has been measured, unless the shell says what to
/// expect ([`BusyPacer::expect_rate`]).
const PRIOR_RATE: f64 = 1000.0;
/// The shortest window a rate is measured over, and the longest (a longer one has idle
/// time in it and would understate the rate).
const MIN_WINDOW: Duration = Duration::from_millis(200);
const MAX_WINDOW: Duration = Duration::from_secs(2);
/// No refused client is told to wait longer than this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct BusyPacer {
    /// The least `retry_after` given.
    base: Duration,
    /// Hashes per second to assume until one has been measured.
    prior: f64,
    /// Verified hashes per second, as last measured while the queue was full (None: not
    /// measured yet).
    measured: Option<f64>,
    /// The measurement under way: since when (a refusal: the queue was full), and the
    /// hashes finished since.
    window: Option<(Instant, u32)>,
    /// When the latest slot handed out comes due.
    tail: Option<Instant>,
}

impl BusyPacer {
    pub fn new(base: Duration) -> BusyPacer {
        BusyPacer {
            base,
            prior: PRIOR_RATE,
            measured: None,
            window: None,
            tail: None,
        }
    }

    /// The least `retry_after` from now on (a reload).
    pub fn set_base(&mut self, base: Duration) {
        self.base = base;
    }

    /// What the workers are expected to do per second before anything is measured (the
    /// shell times a hash at start). The first burst of refusals, all made before a
    /// measurement can close, is spaced by it: with the fixed prior of 1,000 a second and
    /// workers doing 3,300, 10,000 logins at once were told to come back over 10 s and
    /// took 11 s to get in, the workers idle two thirds of the time. A rate above zero
    /// only.
    pub fn expect_rate(&mut self, per_sec: f64) {
        if per_sec.is_finite() && per_sec > 0.0 {
            self.prior = per_sec;
        }
    }

    /// A hash finished.
    pub fn hash_done(&mut self) {
        if let Some((_, done)) = self.window.as_mut() {
            *done = done.saturating_add(1);
        }
    }

    /// The hashes per second the slots are spaced for.
    pub fn rate(&self) -> f64 {
        self.measured.unwrap_or(self.prior)
    }

    /// A request is refused at `now`: how long it must wait before trying again.
    pub fn refuse(&mut self, now: Instant) -> Duration {
        self.measure(now);
        let slot = Duration::from_secs_f64(1.0 / self.rate());
        let earliest = now + self.base;
        let at = match self.tail {
            Some(t) if t + slot > earliest => t + slot,
            _ => earliest,
        };
        let at = at.min(now + MAX_RETRY_AFTER);
        self.tail = Some(at);
        at - now
    }

    /// Closes the measurement window if it is long enough (the queue was full at both
    /// ends: the workers were busy throughout), and opens the next one.
    fn measure(&mut self, now: Instant) {
        match self.window {
            Some((start, done)) => {
                let elapsed = now.saturating_duration_since(start);
                if elapsed < MIN_WINDOW {
                    return;
                }
                if elapsed <= MAX_WINDOW && done > 0 {
                    let now_rate = f64::from(done) / elapsed.as_secs_f64();
                    // Half the old estimate, half the new: one odd window cannot swing it.
                    self.measured = Some(self.measured.map_or(now_rate, |r| (r + now_rate) / 2.0));
                }
                self.window = Some((now, 0));
            }
            None => self.window = Some((now, 0)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // an arbitrary origin for made-up times
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(1);

    #[test]
    fn refusals_at_one_instant_get_consecutive_slots() {
        let t = Instant::now();
        let mut p = BusyPacer::new(BASE);
        let got: Vec<Duration> = (0..4).map(|_| p.refuse(t)).collect();
        // 1,000 a second before any measurement: 1 ms apart, after the base second.
        let ms = |n| Duration::from_millis(n);
        assert_eq!(got, [ms(1000), ms(1001), ms(1002), ms(1003)]);
    }

    #[test]
    fn before_a_measurement_slots_follow_the_expected_rate() {
        let t = Instant::now();
        let mut p = BusyPacer::new(BASE);
        p.expect_rate(4000.0);
        p.expect_rate(0.0); // ignored
        p.expect_rate(f64::NAN); // ignored
        let a = p.refuse(t);
        let b = p.refuse(t);
        assert_eq!((a, b - a), (BASE, Duration::from_micros(250)));
        // a measurement takes over
        for _ in 0..100 {
            p.hash_done();
        }
        let t1 = t + Duration::from_millis(250);
        p.refuse(t1);
        assert!((p.rate() - 400.0).abs() < 1e-6, "{}", p.rate());
    }

    #[test]
    fn slots_follow_the_measured_rate() {
        let t = Instant::now();
        let mut p = BusyPacer::new(BASE);
        p.refuse(t);
        // 100 hashes in the next 250 ms: 400 a second, slots 2.5 ms apart.
        for _ in 0..100 {
            p.hash_done();
        }
        let t1 = t + Duration::from_millis(250);
        let a = p.refuse(t1);
        let b = p.refuse(t1);
        assert!((p.rate() - 400.0).abs() < 1e-6, "{}", p.rate());
        assert_eq!(b - a, Duration::from_micros(2500));
    }

    #[test]
    fn a_window_with_idle_time_in_it_does_not_count() {
        let t = Instant::now();
        let mut p = BusyPacer::new(BASE);
        p.refuse(t);
        p.hash_done();
        // One hash, then quiet for a minute: not a rate of 1/60 per second.
        p.refuse(t + Duration::from_secs(60));
        assert_eq!(p.rate(), PRIOR_RATE);
    }

    #[test]
    fn after_the_backlog_has_passed_the_wait_is_the_base_again() {
        let t = Instant::now();
        let mut p = BusyPacer::new(BASE);
        for _ in 0..5_000 {
            p.refuse(t);
        }
        // The last slot handed out is ~6 s away; once it has passed, back to the base.
        assert_eq!(p.refuse(t + Duration::from_secs(7)), BASE);
    }

    #[test]
    fn no_wait_is_longer_than_the_cap() {
        let t = Instant::now();
        let mut p = BusyPacer::new(BASE);
        let mut last = Duration::ZERO;
        for _ in 0..400_000 {
            last = p.refuse(t);
        }
        assert_eq!(last, MAX_RETRY_AFTER);
    }
}
