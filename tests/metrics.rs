//! `--metrics-listen` (issue 19, point 4): a real server's `/metrics`, `/healthz` and
//! `/readyz` over plain HTTP/1.1 on loopback. The exposition is parsed line by line
//! (Prometheus text format 0.0.4) and its numbers checked against what the test did; the
//! endpoints' errors (404, 405, 400), the deadline of a peer that sends nothing, and the
//! protocol port going on while a metrics client is stuck; `/readyz` failing while the
//! store refuses writes.
#![allow(clippy::disallowed_methods)] // this test runs a real server in real time

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestServer, ALICE_PW, BOB_PW};
use sessiond::client::{Client, ClientError, LoginOutcome, RegisterOutcome, ResumeOutcome};
use sessiond::engine::event::Event;
use sessiond::protocol::RevokeReason;
use sessiond::store::{Store, StoreError};

/// How long the server keeps a metrics connection (`server::http::DEADLINE`).
const DEADLINE: Duration = Duration::from_secs(2);

// ---- a server with metrics and a store the test can fill -----------------------------

/// A store that refuses commits for want of space while `full` is set.
#[derive(Clone, Default)]
struct Disk(Arc<Mutex<bool>>);

impl Disk {
    fn set_full(&self, full: bool) {
        *self.0.lock().unwrap() = full;
    }
}

impl Store for Disk {
    fn append(&mut self, _: &Event) -> io::Result<()> {
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        if *self.0.lock().unwrap() {
            let e = io::Error::new(io::ErrorKind::StorageFull, "No space left on device");
            return Err(StoreError::retry(e));
        }
        Ok(())
    }
}

/// A test server (alice, a user, and bob, an administrator) journaling into `disk`, with
/// its metrics listener.
struct Metered {
    /// Runs until dropped.
    _server: TestServer,
    addr: SocketAddr,
    metrics: SocketAddr,
}

impl Metered {
    fn start(disk: &Disk) -> Metered {
        let server = TestServer::start_with_store_tuned(Box::new(disk.clone()), |c| {
            c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        });
        let (addr, metrics) = (
            server.addr,
            server.metrics_addr.expect("a metrics listener"),
        );
        Metered {
            _server: server,
            addr,
            metrics,
        }
    }

    /// A client that sends only what the test asks (no heartbeats of its own).
    fn client(&self) -> Client {
        let mut c = Client::connect(self.addr, Duration::from_secs(10)).expect("connect");
        c.set_auto_heartbeat(false);
        c
    }

    fn login(&self, user: &str, pw: &str) -> (Client, LoginOutcome) {
        let mut c = self.client();
        let outcome = c.login(user, pw, "metrics-test", "linux").expect("login");
        (c, outcome)
    }

    fn scrape(&self) -> Exposition {
        let r = get(self.metrics, "/metrics");
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.head
                .contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            "{}",
            r.head
        );
        Exposition::parse(&r.body)
    }
}

// ---- HTTP over a plain TcpStream ------------------------------------------------------

struct Response {
    status: u16,
    head: String,
    body: String,
}

/// Sends `request` and reads the response to the server's close.
fn http(addr: SocketAddr, request: &[u8]) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .expect("the response, then the close");
    let text = String::from_utf8(raw).expect("text");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("status line: {head}"));
    assert!(head.contains("\r\nConnection: close"), "{head}");
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.parse::<usize>().ok())
        .expect("Content-Length");
    if !request.starts_with(b"HEAD ") {
        assert_eq!(len, body.len(), "Content-Length is the body's");
    }
    Response {
        status,
        head: head.to_owned() + "\r\n",
        body: body.to_owned(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Response {
    http(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes(),
    )
}

// ---- the exposition -------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn label(&self, k: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

struct Exposition {
    samples: Vec<Sample>,
    types: HashMap<String, String>,
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

impl Exposition {
    /// Parses the text format, asserting every line is well formed and every sample's
    /// family has its HELP and TYPE before it (once each).
    fn parse(text: &str) -> Exposition {
        assert!(text.ends_with('\n'), "the last line ends in a line feed");
        let mut helps = HashSet::new();
        let mut types = HashMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect(line);
                assert!(valid_name(name) && !help.is_empty(), "{line}");
                assert!(helps.insert(name.to_owned()), "HELP twice: {line}");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect(line);
                assert!(valid_name(name), "{line}");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "{line}"
                );
                assert!(helps.contains(name), "HELP before TYPE: {line}");
                let old = types.insert(name.to_owned(), kind.to_owned());
                assert!(old.is_none(), "TYPE twice: {line}");
                continue;
            }
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let s = parse_sample(line);
            let family = family_of(&types, &s.name).unwrap_or_else(|| panic!("no TYPE: {line}"));
            let kind = &types[family];
            if kind == "counter" {
                assert!(s.name.ends_with("_total"), "{line}");
                assert!(s.value >= 0.0, "{line}");
            }
            if kind == "histogram" && s.name.ends_with("_bucket") {
                assert!(s.label("le").is_some(), "{line}");
            }
            samples.push(s);
        }
        let e = Exposition { samples, types };
        e.check_histograms();
        e
    }

    /// Buckets cumulative, the last `+Inf` and equal to `_count`.
    fn check_histograms(&self) {
        for (family, kind) in &self.types {
            if kind != "histogram" {
                continue;
            }
            let buckets: Vec<&Sample> = self
                .samples
                .iter()
                .filter(|s| s.name == format!("{family}_bucket"))
                .collect();
            assert!(!buckets.is_empty(), "{family} has buckets");
            let mut last = (f64::NEG_INFINITY, 0.0);
            for b in &buckets {
                let le = match b.label("le").unwrap() {
                    "+Inf" => f64::INFINITY,
                    v => v.parse::<f64>().unwrap_or_else(|_| panic!("le {v}")),
                };
                assert!(le > last.0, "{family}: bounds increase");
                assert!(b.value >= last.1, "{family}: buckets cumulative");
                last = (le, b.value);
            }
            assert_eq!(last.0, f64::INFINITY, "{family} ends in +Inf");
            assert_eq!(last.1, self.value(&format!("{family}_count"), &[]));
            assert!(self.value(&format!("{family}_sum"), &[]) >= 0.0);
        }
    }

    /// The one sample named `name` with exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && labels.iter().all(|(k, v)| s.label(k) == Some(v))
            })
            .collect();
        assert_eq!(found.len(), 1, "one sample {name}{labels:?}");
        found[0].value
    }

    fn counters(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(|s| {
            family_of(&self.types, &s.name).is_some_and(|f| self.types[f] == "counter")
                || s.name.ends_with("_bucket")
                || s.name.ends_with("_count")
        })
    }
}

/// The family a sample belongs to: its own name, or a histogram's for its series.
fn family_of<'a>(types: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    if let Some((k, _)) = types.get_key_value(name) {
        return Some(k);
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = name.strip_suffix(suffix)?;
        types
            .get_key_value(base)
            .filter(|(_, kind)| *kind == "histogram")
            .map(|(k, _)| k.as_str())
    })
}

/// `name{k="v",...} value`, label values with their escapes.
fn parse_sample(line: &str) -> Sample {
    let end = line.find(['{', ' ']).expect(line);
    let name = &line[..end];
    assert!(valid_name(name), "{line}");
    let mut rest = &line[end..];
    let mut labels = Vec::new();
    if let Some(mut r) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = r.strip_prefix('}') {
                r = after;
                break;
            }
            let (k, after) = r.split_once("=\"").expect(line);
            assert!(valid_name(k), "{line}");
            let mut v = String::new();
            let mut chars = after.char_indices();
            let close = loop {
                match chars.next().expect(line) {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next().expect(line).1 {
                        'n' => v.push('\n'),
                        c @ ('\\' | '"') => v.push(c),
                        c => panic!("escape \\{c}: {line}"),
                    },
                    (_, c) => v.push(c),
                }
            };
            labels.push((k.to_owned(), v));
            r = &after[close + 1..];
            r = r.strip_prefix(',').unwrap_or(r);
        }
        rest = r;
    }
    let value = rest.strip_prefix(' ').expect(line);
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("value: {line}")),
    };
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

// ---- the tests ------------------------------------------------------------------------

/// A TCP connection to the metrics port that has not been closed by the server yet.
fn still_open(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    match s.read(&mut [0u8; 64]) {
        Err(e) => matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        Ok(0) => false,
        Ok(n) => panic!("{n} bytes unasked"),
    }
}

/// Waits (bounded) for the server to close `s` and returns when it did.
fn closed_by_server(s: &mut TcpStream) -> Instant {
    s.set_read_timeout(Some(DEADLINE * 3)).unwrap();
    match s.read(&mut [0u8; 64]) {
        Ok(0) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the server's close, got {other:?}"),
    }
    Instant::now()
}

#[test]
fn the_exposition_counts_what_happened_and_the_loop_serves_past_stuck_clients() {
    let disk = Disk::default();
    let server = Metered::start(&disk);
    // A peer that sends nothing, and one stuck half-way through its request head.
    let t_idle = Instant::now();
    let mut idle = TcpStream::connect(server.metrics).unwrap();
    let mut stuck = TcpStream::connect(server.metrics).unwrap();
    stuck.write_all(b"GET /metr").unwrap();

    let before = server.scrape();
    for n in ["sessiond_sessions_live", "sessiond_hash_queue_depth"] {
        assert_eq!(before.value(n, &[]), 0.0, "{n}");
    }
    assert_eq!(before.value("sessiond_storage_available", &[]), 1.0);
    assert_eq!(before.value("sessiond_hash_queue_capacity", &[]), 256.0);

    let (mut a1, ok) = server.login("alice", ALICE_PW);
    assert!(matches!(ok, LoginOutcome::Success(_)), "{ok:?}");
    // the protocol port goes on while the metrics clients hold on
    for _ in 0..5 {
        let t = Instant::now();
        a1.heartbeat().expect("heartbeat");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "heartbeat took {:?}",
            t.elapsed()
        );
    }
    assert!(
        still_open(&mut stuck) && still_open(&mut idle),
        "within their deadline"
    );
    let mut bad = server.client();
    for (user, pw) in [("alice", "wrong password"), ("nobody", "whatever")] {
        match bad.login(user, pw, "t", "p").unwrap() {
            LoginOutcome::Failure(f) => assert_eq!(f.reason.name(), "INVALID_CREDENTIALS"),
            other => panic!("{other:?}"),
        }
    }
    // alice again: her first session is revoked (one session per account)
    let (a2, ok) = server.login("alice", ALICE_PW);
    let LoginOutcome::Success(a2_login) = ok else {
        panic!("{ok:?}");
    };
    match a1.wait_push(Duration::from_secs(5)) {
        Err(ClientError::Revoked(r)) => assert_eq!(r.reason, RevokeReason::NewLogin),
        other => panic!("{other:?}"),
    }
    let (mut b, ok) = server.login("bob", BOB_PW);
    assert!(matches!(ok, LoginOutcome::Success(_)), "{ok:?}");
    b.logout().unwrap();
    let mut reg = server.client();
    match reg
        .register("carol", "a long enough password", "carol@example.org")
        .unwrap()
    {
        RegisterOutcome::Success(_) => {}
        other => panic!("{other:?}"),
    }
    a2.disconnect().unwrap();
    let mut c = server.client();
    match c.resume(&a2_login.token, "t", "p").unwrap() {
        ResumeOutcome::Valid(_) => {}
        other => panic!("{other:?}"),
    }

    let after = server.scrape();
    // counters never go back
    for s in before.counters() {
        let labels: Vec<(&str, &str)> = s
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let now = after.value(&s.name, &labels);
        assert!(
            now >= s.value,
            "{} {labels:?}: {} then {now}",
            s.name,
            s.value
        );
    }
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    assert_eq!(delta("sessiond_logins_total", &[("outcome", "ok")]), 3.0);
    let failed = [("outcome", "failure"), ("reason", "INVALID_CREDENTIALS")];
    assert_eq!(delta("sessiond_logins_total", &failed), 2.0);
    for reason in [
        "SERVER_BUSY",
        "THROTTLED",
        "SESSION_LIMIT",
        "STORAGE_UNAVAILABLE",
    ] {
        let l = [("outcome", "failure"), ("reason", reason)];
        assert_eq!(delta("sessiond_logins_total", &l), 0.0, "{reason}");
    }
    assert_eq!(delta("sessiond_heartbeats_total", &[]), 5.0);
    assert_eq!(delta("sessiond_registrations_total", &[]), 1.0);
    assert_eq!(delta("sessiond_resumes_total", &[]), 1.0);
    assert_eq!(delta("sessiond_session_takeovers_total", &[]), 0.0);
    let ends = "sessiond_session_ends_total";
    assert_eq!(delta(ends, &[("kind", "logged_out")]), 1.0);
    assert_eq!(
        delta(ends, &[("kind", "revoked"), ("reason", "NEW_LOGIN")]),
        1.0
    );
    assert_eq!(delta(ends, &[("kind", "expired"), ("reason", "IDLE")]), 0.0);
    assert_eq!(
        delta(ends, &[("kind", "revoked"), ("reason", "REVOKED_BY_ADMIN")]),
        0.0
    );
    // a1, bad, a2, b, reg, c
    assert_eq!(delta("sessiond_connections_accepted_total", &[]), 6.0);
    assert_eq!(delta("sessiond_connections_refused_total", &[]), 0.0);
    // open: bad, b, reg, c (a1 revoked and a2 disconnected: closed by the server)
    let open = |t| after.value("sessiond_connections_open", &[("transport", t)]);
    assert_eq!((open("plain"), open("tls")), (4.0, 0.0));
    // alice's session, resumed on c
    assert_eq!(after.value("sessiond_sessions_live", &[]), 1.0);
    assert_eq!(after.value("sessiond_sessions_connected", &[]), 1.0);
    assert_eq!(after.value("sessiond_sessions_detached", &[]), 0.0);
    assert_eq!(after.value("sessiond_users", &[]), 3.0);
    // one hash job per login and registration
    assert_eq!(delta("sessiond_hash_wait_seconds_count", &[]), 6.0);
    // every reply above that reported a change waited for its batch to be durable
    assert!(delta("sessiond_journal_commit_seconds_count", &[]) >= 4.0);
    assert!(
        after.value("sessiond_uptime_seconds", &[]) > before.value("sessiond_uptime_seconds", &[])
    );
    let start = after.value("sessiond_start_time_seconds", &[]);
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (wall - 60.0..=wall).contains(&start),
        "start {start}, now {wall}"
    );

    // the peers that never finished are closed at their deadline, not before
    let closed_at = closed_by_server(&mut idle);
    assert!(closed_at - t_idle >= DEADLINE - Duration::from_millis(100));
    closed_by_server(&mut stuck);
    // and the server serves on
    assert_eq!(get(server.metrics, "/healthz").status, 200);
    c.heartbeat().unwrap();
}

#[test]
fn health_readiness_and_the_errors() {
    let disk = Disk::default();
    let server = Metered::start(&disk);
    let m = server.metrics;
    let r = get(m, "/healthz");
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    let r = get(m, "/readyz");
    assert_eq!((r.status, r.body.as_str()), (200, "ready\n"));
    // HEAD: the same head, no body
    let r = http(m, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert!(r.head.contains("Content-Length: "), "{}", r.head);
    // a query string is ignored; HTTP/1.0 is served
    assert_eq!(http(m, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").status, 200);
    // anything else
    assert_eq!(get(m, "/").status, 404);
    assert_eq!(get(m, "/metrics/more").status, 404);
    let r = http(m, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(r.status, 405);
    assert!(r.head.contains("\r\nAllow: GET, HEAD\r\n"), "{}", r.head);
    assert_eq!(http(m, b"DELETE /healthz HTTP/1.1\r\n\r\n").status, 405);
    // malformed, and too long (no end of head within 8 KiB): 400, then the close
    assert_eq!(http(m, b"GET /metrics JUNK/9\r\n\r\n").status, 400);
    assert_eq!(http(m, b"\x16\x03\x01\x02\x00\x01\r\n\r\n").status, 400);
    let mut long = b"GET /metrics HTTP/1.1\r\nX-Long: ".to_vec();
    long.resize(9 * 1024, b'a');
    let r = http(m, &long);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("too long"), "{}", r.body);

    // readiness fails while the store refuses writes, and comes back with it
    disk.set_full(true);
    let addr = server.addr;
    let held = std::thread::spawn(move || {
        let mut c = Client::connect(addr, Duration::from_secs(30)).unwrap();
        c.set_auto_heartbeat(false);
        c.login("bob", BOB_PW, "t", "p").unwrap()
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let r = loop {
        let r = get(m, "/readyz");
        if r.status != 200 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.body.starts_with("not ready: storage unavailable"),
        "{}",
        r.body
    );
    assert_eq!(r.body.lines().count(), 1, "one line: {}", r.body);
    assert_eq!(get(m, "/healthz").status, 200, "the loop runs all along");
    let e = server.scrape();
    assert_eq!(e.value("sessiond_storage_available", &[]), 0.0);
    let (_, refused) = server.login("alice", ALICE_PW);
    assert!(
        matches!(&refused, LoginOutcome::Failure(f) if f.reason.name() == "STORAGE_UNAVAILABLE")
    );
    disk.set_full(false);
    assert!(matches!(held.join().unwrap(), LoginOutcome::Success(_)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(m, "/readyz").status != 200 {
        assert!(Instant::now() < deadline, "ready again");
        std::thread::sleep(Duration::from_millis(20));
    }
    let e = server.scrape();
    assert_eq!(e.value("sessiond_storage_available", &[]), 1.0);
    let l = [("outcome", "failure"), ("reason", "STORAGE_UNAVAILABLE")];
    assert_eq!(e.value("sessiond_logins_total", &l), 1.0);
    assert!(e.value("sessiond_storage_refusals_total", &[]) >= 1.0);
}
