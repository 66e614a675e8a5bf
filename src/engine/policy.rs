//! Account policies for logins: brute-force throttling per account and per address, a cap
//! on password hashes in flight per address, and the daily login limit.
//!
//! Owns the counters and the arithmetic; the engine asks before it starts a hash
//! ([`LoginPolicy::admit`]) and reports how it ended. Pure logic: times come in as
//! arguments, nothing here logs or sends.
//!
//! - Per account: after `free_failures` consecutive failures, each further attempt must
//!   wait `base_delay * 2^(failures - free_failures)`, capped at `max_delay`; a success
//!   resets it. Attempts during the wait are refused without hashing.
//! - Per address: a token bucket (`address_burst` attempts, refilled at
//!   `address_rate_per_min`), and at most `address_hashes` hashes in flight.
//! - Per account and UTC day: at most `daily_logins` successful logins (0 = no limit).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hashbrown::HashMap;

/// The knobs, with defaults a public server can use.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Consecutive wrong passwords for an account before its attempts must wait.
    pub free_failures: u32,
    /// The wait after the `free_failures`-th failure; it doubles with each further one.
    pub base_delay: Duration,
    /// The longest wait a failure streak imposes.
    pub max_delay: Duration,
    /// Login attempts per address before throttling (the token bucket's size; 0 counts
    /// as 1).
    pub address_burst: u32,
    /// Per minute: how fast an address's attempts refill (0 counts as 1).
    pub address_rate_per_min: u32,
    /// Password hashes in flight per address (0 counts as 1).
    pub address_hashes: u32,
    /// Successful logins per account per UTC day; 0: no limit.
    pub daily_logins: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            free_failures: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            address_burst: 30,
            address_rate_per_min: 60,
            address_hashes: 8,
            daily_logins: 0,
        }
    }
}

/// Why an attempt is refused before any hashing, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The account's failure delay, or the address's bucket or hash cap.
    Throttled(Duration),
}

#[derive(Debug, Clone, Copy)]
struct AccountState {
    failures: u32,
    /// No attempt before this.
    until: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct AddressState {
    /// Tokens in thousandths (integer arithmetic, no drift).
    milli_tokens: u64,
    refilled: Instant,
    in_flight: u32,
}

/// Address entries kept before idle ones are pruned.
const MAX_ADDRESSES: usize = 1 << 16;

/// The login policy's state: per-account failure streaks, per-address buckets and
/// hashes in flight, per-account daily counts (see the module docs).
#[derive(Debug)]
pub struct LoginPolicy {
    cfg: PolicyConfig,
    accounts: HashMap<u64, AccountState>,
    addresses: HashMap<IpAddr, AddressState>,
    /// user id -> (UTC day number, successful logins that day).
    daily: HashMap<u64, (u64, u32)>,
}

impl LoginPolicy {
    /// A policy with no history.
    pub fn new(cfg: PolicyConfig) -> LoginPolicy {
        LoginPolicy {
            cfg,
            accounts: HashMap::new(),
            addresses: HashMap::new(),
            daily: HashMap::new(),
        }
    }

    /// Runs with `cfg` from now on (SIGHUP); what each address and account has used is
    /// kept.
    pub fn set_config(&mut self, cfg: PolicyConfig) {
        self.cfg = cfg;
    }

    /// The knobs it runs with.
    pub fn config(&self) -> &PolicyConfig {
        &self.cfg
    }

    /// May an attempt for `user` (None: unknown name) from `ip` start a hash now? On Ok
    /// the attempt is counted against the address and a hash is in flight for it until
    /// [`hash_done`](Self::hash_done).
    pub fn admit(&mut self, user: Option<u64>, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        if let Some(until) = user
            .and_then(|u| self.accounts.get(&u))
            .and_then(|a| a.until)
        {
            if now < until {
                return Err(Refusal::Throttled(until - now));
            }
        }
        if self.addresses.len() >= MAX_ADDRESSES && !self.addresses.contains_key(&ip) {
            self.prune(now);
        }
        let burst = self.cfg.address_burst.max(1) as u64 * 1000;
        let rate = self.cfg.address_rate_per_min.max(1) as u64; // tokens per minute
        let a = self.addresses.entry(ip).or_insert(AddressState {
            milli_tokens: burst,
            refilled: now,
            in_flight: 0,
        });
        let elapsed = now.saturating_duration_since(a.refilled).as_millis() as u64;
        a.milli_tokens = (a.milli_tokens + elapsed * rate * 1000 / 60_000).min(burst);
        a.refilled = now;
        if a.in_flight >= self.cfg.address_hashes.max(1) {
            return Err(Refusal::Throttled(Duration::from_secs(1)));
        }
        if a.milli_tokens < 1000 {
            let missing = 1000 - a.milli_tokens;
            let ms = (missing * 60_000).div_ceil(rate * 1000);
            return Err(Refusal::Throttled(Duration::from_millis(ms.max(1))));
        }
        a.milli_tokens -= 1000;
        a.in_flight += 1;
        Ok(())
    }

    /// The hash admitted for `ip` finished (or was refused by the pool).
    pub fn hash_done(&mut self, ip: IpAddr) {
        if let Some(a) = self.addresses.get_mut(&ip) {
            a.in_flight = a.in_flight.saturating_sub(1);
        }
    }

    /// A wrong password for `user`: returns the delay now imposed on the account, if any.
    pub fn failed(&mut self, user: u64, now: Instant) -> Option<Duration> {
        let a = self.accounts.entry(user).or_insert(AccountState {
            failures: 0,
            until: None,
        });
        a.failures = a.failures.saturating_add(1);
        if a.failures < self.cfg.free_failures {
            return None;
        }
        let doublings = (a.failures - self.cfg.free_failures).min(30);
        let delay = self
            .cfg
            .base_delay
            .saturating_mul(1u32 << doublings)
            .min(self.cfg.max_delay);
        a.until = Some(now + delay);
        Some(delay)
    }

    /// A correct password for `user`: the failure streak is forgotten. Returns whether
    /// there was one.
    pub fn succeeded(&mut self, user: u64) -> bool {
        self.accounts.remove(&user).is_some()
    }

    /// `user`'s failure streak: wrong passwords in a row, and until when attempts wait.
    pub fn streak(&self, user: u64) -> Option<(u32, Option<Instant>)> {
        self.accounts.get(&user).map(|a| (a.failures, a.until))
    }

    /// Every failure streak (for a snapshot).
    pub fn streaks(&self) -> impl Iterator<Item = (u64, u32, Option<Instant>)> + '_ {
        self.accounts.iter().map(|(&u, a)| (u, a.failures, a.until))
    }

    /// Brings back a failure streak from the journal at startup.
    pub fn restore_streak(&mut self, user: u64, failures: u32, until: Option<Instant>) {
        if failures > 0 {
            self.accounts.insert(user, AccountState { failures, until });
        }
    }

    /// `user`'s successful logins on its latest UTC day counted: (day, count).
    pub fn daily_count(&self, user: u64) -> Option<(u64, u32)> {
        self.daily.get(&user).copied()
    }

    /// Every daily count (for a snapshot).
    pub fn daily_counts(&self) -> impl Iterator<Item = (u64, u64, u32)> + '_ {
        self.daily.iter().map(|(&u, &(d, n))| (u, d, n))
    }

    /// Brings back a daily count from the journal at startup.
    pub fn restore_daily(&mut self, user: u64, day: u64, count: u32) {
        self.daily.insert(user, (day, count));
    }

    /// Counts a login of `user` on the UTC day of `now_ms` if the daily limit allows it;
    /// Err carries the milliseconds until the next UTC day.
    pub fn count_daily(&mut self, user: u64, now_ms: u64) -> Result<(), u64> {
        let limit = self.cfg.daily_logins;
        if limit == 0 {
            return Ok(());
        }
        const DAY_MS: u64 = 24 * 60 * 60 * 1000;
        let day = now_ms / DAY_MS;
        let e = self.daily.entry(user).or_insert((day, 0));
        if e.0 != day {
            *e = (day, 0);
        }
        if e.1 >= limit {
            return Err((day + 1) * DAY_MS - now_ms);
        }
        e.1 += 1;
        Ok(())
    }

    /// Drops address entries with nothing in flight and a full bucket (they hold no
    /// information); if that is not enough, every entry with nothing in flight. Runs
    /// when the map is full, so its cost is spread over at least as many new addresses
    /// as it removes, and a scan from many addresses cannot grow the map without bound.
    fn prune(&mut self, now: Instant) {
        let full = self.cfg.address_burst.max(1) as u64 * 1000;
        let rate = self.cfg.address_rate_per_min.max(1) as u64;
        self.addresses.retain(|_, a| {
            let elapsed = now.saturating_duration_since(a.refilled).as_millis() as u64;
            a.in_flight > 0 || a.milli_tokens + elapsed * rate * 1000 / 60_000 < full
        });
        if self.addresses.len() >= MAX_ADDRESSES / 2 {
            self.addresses.retain(|_, a| a.in_flight > 0);
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // an arbitrary origin for made-up times
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn account_delay_doubles_after_five_failures_and_is_capped() {
        let mut p = LoginPolicy::new(PolicyConfig::default());
        let t = Instant::now();
        let delays: Vec<_> = (0..16).map(|_| p.failed(1, t)).collect();
        assert_eq!(delays[..4], [None; 4]);
        assert_eq!(delays[4], Some(Duration::from_secs(1)));
        assert_eq!(delays[5], Some(Duration::from_secs(2)));
        assert_eq!(delays[6], Some(Duration::from_secs(4)));
        assert_eq!(delays[15], Some(Duration::from_secs(15 * 60)));
        // during the delay even a correct password is not tried
        assert_eq!(
            p.admit(Some(1), ip(1), t + Duration::from_secs(60)),
            Err(Refusal::Throttled(Duration::from_secs(14 * 60)))
        );
        // other accounts are not affected
        assert_eq!(p.admit(Some(2), ip(1), t), Ok(()));
        p.hash_done(ip(1));
        assert_eq!(
            p.admit(Some(1), ip(1), t + Duration::from_secs(15 * 60)),
            Ok(())
        );
        p.succeeded(1);
        assert_eq!(p.failed(1, t), None, "a success resets the streak");
    }

    #[test]
    fn address_bucket_refills_at_its_rate() {
        let cfg = PolicyConfig {
            address_burst: 3,
            address_rate_per_min: 60,
            ..PolicyConfig::default()
        };
        let mut p = LoginPolicy::new(cfg);
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(p.admit(None, ip(1), t), Ok(()));
            p.hash_done(ip(1));
        }
        assert_eq!(
            p.admit(None, ip(1), t),
            Err(Refusal::Throttled(Duration::from_secs(1)))
        );
        assert_eq!(p.admit(None, ip(2), t), Ok(()), "per address");
        let later = t + Duration::from_millis(1500);
        assert_eq!(p.admit(None, ip(1), later), Ok(()));
        assert_eq!(
            p.admit(None, ip(1), later),
            Err(Refusal::Throttled(Duration::from_millis(500)))
        );
    }

    #[test]
    fn hashes_in_flight_per_address_are_capped() {
        let cfg = PolicyConfig {
            address_hashes: 2,
            ..PolicyConfig::default()
        };
        let mut p = LoginPolicy::new(cfg);
        let t = Instant::now();
        assert!(p.admit(None, ip(1), t).is_ok());
        assert!(p.admit(None, ip(1), t).is_ok());
        assert!(matches!(
            p.admit(None, ip(1), t),
            Err(Refusal::Throttled(_))
        ));
        p.hash_done(ip(1));
        assert!(p.admit(None, ip(1), t).is_ok());
    }

    #[test]
    fn daily_limit_counts_per_utc_day() {
        let mut p = LoginPolicy::new(PolicyConfig {
            daily_logins: 2,
            ..PolicyConfig::default()
        });
        let day = 86_400_000u64;
        let t = 20_000 * day + 23 * 3_600_000; // 23:00 UTC
        assert_eq!(p.count_daily(1, t), Ok(()));
        assert_eq!(p.count_daily(1, t), Ok(()));
        assert_eq!(p.count_daily(1, t), Err(3_600_000));
        assert_eq!(p.count_daily(2, t), Ok(()));
        assert_eq!(p.count_daily(1, 20_001 * day), Ok(()), "a new day");
    }

    #[test]
    fn idle_addresses_are_pruned_when_the_map_is_full() {
        let mut p = LoginPolicy::new(PolicyConfig::default());
        let t = Instant::now();
        for i in 0..MAX_ADDRESSES as u32 + 10 {
            let a = IpAddr::from(i.to_be_bytes());
            p.admit(None, a, t).unwrap();
            p.hash_done(a);
        }
        // the map never passes its bound; entries with a hash in flight survive a prune
        assert!(p.addresses.len() <= MAX_ADDRESSES, "{}", p.addresses.len());
        p.admit(None, ip(200), t).unwrap();
        for i in 0..MAX_ADDRESSES as u32 {
            let a = IpAddr::from((i + 1_000_000).to_be_bytes());
            p.admit(None, a, t).unwrap();
            p.hash_done(a);
        }
        assert!(p.addresses.len() <= MAX_ADDRESSES);
        assert_eq!(p.addresses[&ip(200)].in_flight, 1);
    }
}
