//! What `/metrics` and `/readyz` say: the Prometheus text exposition (format 0.0.4) of the
//! engine's counters and the shell's gauges, the latency histograms the hash workers and
//! the store thread fill, and whether the server is ready to serve.
//!
//! Owns the metric names, their help and type, and the text format. Reads everything when
//! a request asks ([`Io::scrape`], on the loop): the engine's counters are plain integers
//! it bumps on paths that exist anyway (one increment per heartbeat, no more), the gauges
//! are read from the tables that hold them. Does not own the HTTP (`http`) nor any of the
//! engine's counters (`engine::Stats`).
//!
//! Design: a histogram is a fixed row of atomic counts that its writer (a hash worker, the
//! store thread) bumps with relaxed adds and the loop copies out on a scrape: no lock, no
//! channel, and nothing on the loop per observation. The count exposed is the sum of the
//! buckets copied, so `+Inf` and `_count` always agree; `_sum` may be one observation
//! ahead or behind.

use std::fmt::{Display, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::event::Event;

use super::http::{Ask, Reply};
use super::{Io, METRICS_LISTENER};
use crate::engine::Engine;
use crate::engine::Stats;
use crate::protocol::{ExpiredReason, LoginFailureReason, RevokeReason};

/// Upper bounds of every latency histogram's buckets, in microseconds: 100 µs to 10 s, in
/// the usual 1-2.5-5 steps (a hash waits from nothing to seconds in a login storm; a
/// commit takes from tens of microseconds on a page cache to seconds on a slow disk).
const BOUNDS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Buckets with the one beyond the last bound (`+Inf`).
const BUCKETS: usize = BOUNDS_US.len() + 1;

/// A latency histogram written by one or more threads and read by the loop.
pub(super) struct Histogram {
    /// Observations per bucket, not cumulative; the last one is beyond every bound.
    counts: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
}

impl Histogram {
    pub(super) fn new() -> Histogram {
        Histogram {
            counts: [const { AtomicU64::new(0) }; BUCKETS],
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Counts one observation of `d`.
    pub(super) fn observe(&self, d: Duration) {
        let ns = d.as_nanos();
        // `le` is inclusive: the first bound at or above `d`.
        let i = BOUNDS_US.partition_point(|&b| u128::from(b) * 1_000 < ns);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(ns).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// The counts now.
    pub(super) fn snapshot(&self) -> Snapshot {
        Snapshot {
            counts: std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
        }
    }
}

/// A histogram's counts, copied out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Snapshot {
    counts: [u64; BUCKETS],
    sum_ns: u64,
}

/// Everything one exposition shows, read on the loop at one moment.
#[derive(Debug, Clone, Default)]
pub(super) struct Scrape {
    pub stats: Stats,
    /// Protocol connections open (their sockets not lingering): plain, TLS, WebSocket,
    /// WebSocket over TLS.
    pub connections_open: [u64; 4],
    /// WebSocket upgrades accepted, refused.
    pub ws_upgrades: [u64; 2],
    pub sessions_live: u64,
    pub sessions_connected: u64,
    pub users: u64,
    pub hash_queued: u64,
    pub hash_capacity: u64,
    pub hash_wait: Snapshot,
    pub commit: Snapshot,
    pub storage_available: bool,
    pub storage_backlog: u64,
    pub start_unix_ms: u64,
    pub uptime: Duration,
    /// With a cluster store: the node's lease's time left before this node must stop.
    pub lease_left: Option<Duration>,
}

impl Io {
    /// A readiness event of the metrics listener or of one of its connections (`http`).
    pub(super) fn on_metrics(&mut self, engine: &Engine, ev: &Event, now: Instant) {
        let Some(m) = self.metrics.as_mut() else {
            return;
        };
        let registry = self.poll.registry();
        if ev.token() == METRICS_LISTENER {
            m.accept_all(registry, now);
            return;
        }
        let Some(p) = m.on_event(registry, ev) else {
            return;
        };
        let reply = self.answer(engine, p.ask, now);
        if let Some(m) = self.metrics.as_mut() {
            m.respond(self.poll.registry(), p, &reply);
        }
    }

    /// Closes the metrics connections whose deadline has come.
    pub(super) fn expire_metrics(&mut self, now: Instant) {
        if let Some(m) = self.metrics.as_mut() {
            m.expire(self.poll.registry(), now);
        }
    }

    /// Answers what a metrics request asks.
    fn answer(&self, engine: &Engine, ask: Ask, now: Instant) -> Reply {
        match ask {
            Ask::Metrics => Reply::metrics(render(&self.scrape(engine, now))),
            Ask::Ready => match self.readiness(engine) {
                Ok(()) => Reply::ok("ready\n"),
                Err(why) => Reply::unavailable(format!("not ready: {why}\n")),
            },
        }
    }

    /// Ok while the server serves what it is for; otherwise why not, in a few words.
    fn readiness(&self, engine: &Engine) -> Result<(), String> {
        if self.stop.load(Ordering::SeqCst) {
            return Err("shutting down".into());
        }
        if !engine.storage_available() {
            return Err(format!(
                "storage unavailable: the store refuses writes or is behind ({} events wait \
                 for the disk); logins and changes are refused",
                engine.undurable_events()
            ));
        }
        if self.accept_paused.is_some() {
            return Err("accepting paused: out of file descriptors".into());
        }
        if self.accept_full {
            return Err("no descriptors left for new connections: they wait".into());
        }
        let max = engine.config().max_connections;
        if max > 0 && engine.connection_count() >= max {
            return Err(format!("at the connection limit ({max})"));
        }
        Ok(())
    }

    /// The numbers, now. O(connection slots) for the transports' counts, once per scrape.
    fn scrape(&self, engine: &Engine, now: Instant) -> Scrape {
        let mut open = [0; 4];
        for s in self.socks.iter().flatten().filter(|s| !s.lingering) {
            open[usize::from(s.tls.is_some()) + 2 * usize::from(s.ws.is_some())] += 1;
        }
        let started = self.metrics.as_ref().map_or(now, |m| m.started());
        Scrape {
            stats: engine.stats(),
            connections_open: open,
            ws_upgrades: self.ws_upgrades,
            sessions_live: engine.sessions().len() as u64,
            sessions_connected: engine.attached_sessions() as u64,
            users: engine.users().len() as u64,
            hash_queued: self.pool.queued() as u64,
            hash_capacity: self.pool.capacity() as u64,
            hash_wait: self.pool.waits(),
            commit: self
                .committer
                .as_ref()
                .map(|c| c.latencies())
                .unwrap_or_default(),
            storage_available: engine.storage_available(),
            storage_backlog: engine.undurable_events() as u64,
            start_unix_ms: engine.unix_ms(started),
            uptime: now.saturating_duration_since(started),
            lease_left: self
                .fence
                .as_ref()
                .map(|f| f.deadline().saturating_duration_since(now)),
        }
    }
}

/// The exposition of `s` (`text/plain; version=0.0.4`).
pub(super) fn render(s: &Scrape) -> String {
    let st = &s.stats;
    let mut w = Writer::default();
    w.gauge(
        "sessiond_connections_open",
        "Protocol connections open, by transport (sockets lingering after their last frame not counted).",
    );
    for (i, transport) in ["plain", "tls", "ws", "wss"].into_iter().enumerate() {
        w.sample(&[("transport", transport)], s.connections_open[i]);
    }
    w.family(
        "sessiond_websocket_upgrades_total",
        "counter",
        "WebSocket opening handshakes, by outcome (refused: an HTTP error status, protocol.md 1).",
    );
    w.sample(&[("outcome", "accepted")], s.ws_upgrades[0]);
    w.sample(&[("outcome", "refused")], s.ws_upgrades[1]);
    w.counter(
        "sessiond_connections_accepted_total",
        "Protocol connections accepted (those then refused included).",
        st.accepted,
    );
    w.counter(
        "sessiond_connections_refused_total",
        "Protocol connections refused at accept (connection limits: SERVER_BUSY, closed).",
        st.connections_refused,
    );
    w.gauge_value(
        "sessiond_sessions_live",
        "Sessions live (connected and detached).",
        s.sessions_live,
    );
    w.gauge_value(
        "sessiond_sessions_connected",
        "Sessions bound to an open connection.",
        s.sessions_connected,
    );
    w.gauge_value(
        "sessiond_sessions_detached",
        "Sessions live without a connection (resumable with VERIFY_SESSION).",
        s.sessions_live.saturating_sub(s.sessions_connected),
    );
    w.gauge_value("sessiond_users", "Accounts.", s.users);
    w.family(
        "sessiond_logins_total",
        "counter",
        "Logins answered: LOGIN_SUCCESS (outcome ok), or LOGIN_FAILURE by reason.",
    );
    w.sample(&[("outcome", "ok")], st.logins_ok);
    for (r, n) in LoginFailureReason::ALL.iter().zip(st.login_failures) {
        w.sample(&[("outcome", "failure"), ("reason", r.name())], n);
    }
    w.counter(
        "sessiond_registrations_total",
        "Accounts created by REGISTER_REQUEST.",
        st.registrations,
    );
    w.counter(
        "sessiond_heartbeats_total",
        "HEARTBEATs answered with HEARTBEAT_ACK.",
        st.heartbeats,
    );
    w.counter(
        "sessiond_resumes_total",
        "Sessions resumed with VERIFY_SESSION.",
        st.resumes,
    );
    w.counter(
        "sessiond_session_takeovers_total",
        "Sessions taken over by a VERIFY_SESSION on another connection (the old one told SESSION_REVOKED TAKEN_OVER; the session lives on).",
        st.takeovers,
    );
    w.family(
        "sessiond_session_ends_total",
        "counter",
        "Sessions ended: logged out, expired (by SESSION_EXPIRED reason) or revoked (by SESSION_REVOKED reason).",
    );
    let ends = &st.session_ends;
    w.sample(&[("kind", "logged_out")], ends.logged_out);
    let expired = [
        (ExpiredReason::Idle, ends.expired_idle),
        (ExpiredReason::Absolute, ends.expired_absolute),
    ];
    for (r, n) in expired {
        w.sample(&[("kind", "expired"), ("reason", r.name())], n);
    }
    for (r, n) in RevokeReason::ALL.iter().zip(ends.revoked) {
        // A takeover ends no session: sessiond_session_takeovers_total.
        if *r != RevokeReason::TakenOver {
            w.sample(&[("kind", "revoked"), ("reason", r.name())], n);
        }
    }
    w.counter(
        "sessiond_idle_timeouts_total",
        "Logged-in connections closed by the heartbeat timeout (their sessions detached).",
        st.idle_timeouts,
    );
    w.counter(
        "sessiond_login_timeouts_total",
        "Connections closed by the login deadline.",
        st.login_timeouts,
    );
    w.counter(
        "sessiond_password_changes_total",
        "Passwords changed with CHANGE_PASSWORD.",
        st.password_changes,
    );
    w.counter(
        "sessiond_protocol_errors_total",
        "Frames that could not be decoded.",
        st.protocol_errors,
    );
    w.counter(
        "sessiond_output_overflows_total",
        "Connections closed for not reading their output.",
        st.output_overflows,
    );
    w.gauge_value(
        "sessiond_hash_queue_depth",
        "Password hash jobs waiting for a worker thread.",
        s.hash_queued,
    );
    w.gauge_value(
        "sessiond_hash_queue_capacity",
        "Hash jobs that may wait before logins get SERVER_BUSY.",
        s.hash_capacity,
    );
    w.histogram(
        "sessiond_hash_wait_seconds",
        "How long a hash job waited in the queue before a worker took it.",
        &s.hash_wait,
    );
    w.histogram(
        "sessiond_journal_commit_seconds",
        "How long a batch of durable events took from being handed to the store thread to being durable (always empty without a store).",
        &s.commit,
    );
    w.gauge_value(
        "sessiond_storage_available",
        "1 while requests that need a durable write are taken; 0 while the store refuses writes or is too far behind.",
        u64::from(s.storage_available),
    );
    w.gauge_value(
        "sessiond_storage_backlog_events",
        "Durable events handed to the store and not yet durable.",
        s.storage_backlog,
    );
    w.counter(
        "sessiond_storage_refusals_total",
        "Requests refused with STORAGE_UNAVAILABLE.",
        st.storage_refusals,
    );
    w.gauge_value(
        "sessiond_start_time_seconds",
        "When the server started, in seconds since the Unix epoch.",
        Seconds(Duration::from_millis(s.start_unix_ms)),
    );
    w.gauge_value(
        "sessiond_uptime_seconds",
        "Seconds since the server started.",
        Seconds(s.uptime),
    );
    if let Some(left) = s.lease_left {
        w.gauge_value(
            "sessiond_cluster_lease_remaining_seconds",
            "Seconds before this node stops serving unless it renews its cluster lease.",
            Seconds(left),
        );
    }
    w.out
}

/// A duration as decimal seconds (Prometheus's base unit).
struct Seconds(Duration);

impl Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

/// The text format: `# HELP`, `# TYPE`, then the family's samples, one a line.
#[derive(Default)]
struct Writer {
    out: String,
    /// The family being written (its samples' name, histograms apart).
    name: &'static str,
}

impl Writer {
    fn family(&mut self, name: &'static str, kind: &str, help: &str) {
        self.name = name;
        // format 0.0.4: in HELP, backslash and line feed are escaped
        let help = help.replace('\\', r"\\").replace('\n', r"\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn gauge(&mut self, name: &'static str, help: &str) {
        self.family(name, "gauge", help);
    }

    fn gauge_value(&mut self, name: &'static str, help: &str, v: impl Display) {
        self.gauge(name, help);
        self.sample(&[], v);
    }

    fn counter(&mut self, name: &'static str, help: &str, v: u64) {
        self.family(name, "counter", help);
        self.sample(&[], v);
    }

    /// A sample of the current family.
    fn sample(&mut self, labels: &[(&str, &str)], v: impl Display) {
        self.named_sample("", labels, v);
    }

    fn named_sample(&mut self, suffix: &str, labels: &[(&str, &str)], v: impl Display) {
        let _ = write!(self.out, "{}{suffix}", self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                // label values escape backslash, double quote and line feed
                let val = val
                    .replace('\\', r"\\")
                    .replace('"', "\\\"")
                    .replace('\n', r"\n");
                let _ = write!(self.out, "{k}=\"{val}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {v}");
    }

    /// `_bucket{le=...}` cumulative, ending in `+Inf`, then `_sum` (seconds) and `_count`.
    fn histogram(&mut self, name: &'static str, help: &str, h: &Snapshot) {
        self.family(name, "histogram", help);
        let mut total = 0;
        for (i, n) in h.counts.iter().enumerate() {
            total += n;
            let le = match BOUNDS_US.get(i) {
                Some(&us) => Seconds(Duration::from_micros(us)).to_string(),
                None => "+Inf".to_owned(),
            };
            self.named_sample("_bucket", &[("le", &le)], total);
        }
        self.named_sample("_sum", &[], Seconds(Duration::from_nanos(h.sum_ns)));
        self.named_sample("_count", &[], total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_fall_in_the_first_bucket_at_or_above_them() {
        let h = Histogram::new();
        for us in [0, 100, 101, 9_999_999, 10_000_000, 10_000_001, 60_000_000] {
            h.observe(Duration::from_micros(us));
        }
        h.observe(Duration::from_nanos(100_001)); // just over 100 µs
        let s = h.snapshot();
        assert_eq!(s.counts[0], 2, "0 and 100 µs: le=0.0001 is inclusive");
        assert_eq!(s.counts[1], 2, "101 µs and 100.001 µs");
        assert_eq!(s.counts[BUCKETS - 2], 2, "up to 10 s inclusive");
        assert_eq!(s.counts[BUCKETS - 1], 2, "beyond: +Inf only");
        assert_eq!(s.counts.iter().sum::<u64>(), 8);
        let sum_us = 100 + 101 + 9_999_999 + 10_000_000 + 10_000_001 + 60_000_000;
        assert_eq!(s.sum_ns, sum_us * 1_000 + 100_001);
    }

    #[test]
    fn a_histogram_renders_cumulative_buckets_ending_in_inf_equal_to_count() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_secs(20));
        let mut w = Writer::default();
        w.histogram("x_seconds", "A test.", &h.snapshot());
        let text = w.out;
        assert!(text.starts_with("# HELP x_seconds A test.\n# TYPE x_seconds histogram\n"));
        assert!(text.contains("x_seconds_bucket{le=\"0.0001\"} 0\n"));
        assert!(text.contains("x_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("x_seconds_bucket{le=\"10\"} 1\n"));
        assert!(text.contains("x_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("x_seconds_sum 20.0003\n"));
        assert!(text.ends_with("x_seconds_count 2\n"));
    }

    #[test]
    fn labels_and_help_are_escaped() {
        let mut w = Writer::default();
        w.gauge("g", "back\\slash\nnewline");
        w.sample(&[("a", "q\"b\\n\n")], 1);
        assert_eq!(
            w.out,
            "# HELP g back\\\\slash\\nnewline\n# TYPE g gauge\ng{a=\"q\\\"b\\\\n\\n\"} 1\n"
        );
    }

    #[test]
    fn every_family_has_help_and_type_and_counters_end_in_total() {
        let mut s = Scrape::default();
        s.stats.login_failures[0] = 3;
        s.stats.session_ends.revoked[0] = 2;
        s.uptime = Duration::from_millis(1_500);
        s.start_unix_ms = 1_700_000_000_250;
        let text = render(&s);
        let mut kind = "";
        let mut family = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, k) = rest.split_once(' ').unwrap();
                (family, kind) = (name, k);
                if k == "counter" {
                    assert!(name.ends_with("_total"), "{name}");
                }
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let name = line.split(['{', ' ']).next().unwrap();
            match kind {
                "histogram" => assert!(name.starts_with(family), "{line}"),
                _ => assert_eq!(name, family, "{line}"),
            }
        }
        let want = "sessiond_logins_total{outcome=\"failure\",reason=\"INVALID_CREDENTIALS\"} 3";
        assert!(text.contains(want));
        assert!(
            text.contains("sessiond_session_ends_total{kind=\"revoked\",reason=\"NEW_LOGIN\"} 2")
        );
        let taken_over = "reason=\"TAKEN_OVER\"";
        assert!(!text.contains(taken_over), "a takeover ends no session");
        assert!(text.contains("sessiond_uptime_seconds 1.5\n"));
        assert!(text.contains("sessiond_start_time_seconds 1700000000.25\n"));
    }
}
