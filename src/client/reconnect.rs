//! Getting a session back after the network failed: reconnect with exponential backoff
//! and resume the stored token (never log in again on a network error: the session is
//! still there).

use std::net::ToSocketAddrs;
use std::time::Duration;

use super::{Client, ClientError, ResumeOutcome};
use crate::protocol::Token;

/// How reconnection attempts are spaced: `first`, doubling up to `max`, at most
/// `attempts` tries in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the second try (the first does not wait).
    pub first: Duration,
    /// The longest wait between two tries.
    pub max: Duration,
    /// Tries in all, the first included (0 counts as 1).
    pub attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(200),
            max: Duration::from_secs(10),
            attempts: 30,
        }
    }
}

impl Backoff {
    /// The wait before try `n` (0-based; try 0 does not wait).
    pub fn delay(&self, n: u32) -> Duration {
        if n == 0 {
            return Duration::ZERO;
        }
        self.first
            .saturating_mul(1u32 << (n - 1).min(20))
            .min(self.max)
    }
}

/// Connects to `addr` and resumes `token` there, retrying network failures (refused
/// connections, a server restarting, timeouts) as `backoff` says. Any other failure, and
/// the answer to VERIFY_SESSION whatever it is, comes back at once: `Invalid` means the
/// token is dead (log in), `Duplicate` that the session lives on another connection.
pub fn reconnect_and_resume<A: ToSocketAddrs + Copy>(
    addr: A,
    token: &Token,
    client_name: &str,
    platform: &str,
    timeout: Duration,
    backoff: Backoff,
) -> Result<(Client, ResumeOutcome), ClientError> {
    let mut last = ClientError::Timeout;
    for n in 0..backoff.attempts.max(1) {
        std::thread::sleep(backoff.delay(n));
        let attempt = Client::connect(addr, timeout).and_then(|mut c| {
            let outcome = c.resume(token, client_name, platform)?;
            Ok((c, outcome))
        });
        match attempt {
            Ok(done) => return Ok(done),
            Err(e) if e.is_network() => {
                log::debug!("reconnect attempt {} failed: {e}", n + 1);
                last = e;
            }
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let b = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            attempts: 10,
        };
        let d: Vec<u128> = (0..7).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(d, [0, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(u32::MAX), Duration::from_millis(1000));
    }
}
