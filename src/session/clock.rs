//! The engine's one mapping between monotonic and wall-clock time.
//!
//! Owns the conversion both ways, so records can keep wall-clock milliseconds (8 bytes,
//! what the journal and the protocol carry) and deadlines still come out as `Instant`s.

use std::time::{Duration, Instant};

/// `origin` (monotonic) and `origin_ms` (Unix ms) name the same moment.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    origin: Instant,
    origin_ms: u64,
}

impl WallClock {
    /// A mapping in which `origin` is Unix ms `origin_ms`.
    pub fn new(origin: Instant, origin_ms: u64) -> Self {
        WallClock { origin, origin_ms }
    }

    /// Unix ms of `t`, rounded down; also for moments before the origin.
    pub fn ms(&self, t: Instant) -> u64 {
        match t.checked_duration_since(self.origin) {
            Some(d) => self.origin_ms + d.as_millis() as u64,
            None => self
                .origin_ms
                .saturating_sub(self.origin.duration_since(t).as_millis() as u64),
        }
    }

    /// Unix ms of `t`, rounded up: a record of activity at `t` that a deadline is
    /// counted from never makes that deadline early.
    pub fn ms_ceil(&self, t: Instant) -> u64 {
        let floor = self.ms(t);
        if self.instant(floor) < t {
            floor + 1
        } else {
            floor
        }
    }

    /// The moment of Unix ms `ms` (`t >= instant(ms)` exactly when `ms(t) >= ms`). Times
    /// the monotonic clock cannot represent are clamped to the origin.
    pub fn instant(&self, ms: u64) -> Instant {
        if ms >= self.origin_ms {
            self.origin + Duration::from_millis(ms - self.origin_ms)
        } else {
            self.origin
                .checked_sub(Duration::from_millis(self.origin_ms - ms))
                .unwrap_or(self.origin)
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // an arbitrary origin for made-up times
mod tests {
    use super::*;

    #[test]
    fn both_directions_agree() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let c = WallClock::new(t0, 1_000_000);
        assert_eq!(c.ms(t0), 1_000_000);
        assert_eq!(c.ms(t0 + Duration::from_micros(2_999)), 1_000_002);
        assert_eq!(c.ms(t0 - Duration::from_millis(1_500)), 998_500);
        assert_eq!(c.instant(1_000_250), t0 + Duration::from_millis(250));
        assert_eq!(c.instant(999_000), t0 - Duration::from_secs(1));
        // the boundary: ms(t) >= m exactly when t >= instant(m)
        let m = 1_000_007;
        let at = c.instant(m);
        assert!(c.ms(at) >= m);
        assert!(c.ms(at - Duration::from_nanos(1)) < m);
        assert_eq!(c.ms_ceil(t0 + Duration::from_micros(2_001)), 1_000_003);
        assert_eq!(c.ms_ceil(t0 + Duration::from_millis(2)), 1_000_002);
    }
}
