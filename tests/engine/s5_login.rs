//! §5.1 to §5.3 (LOGIN_REQUEST, LOGIN_SUCCESS, LOGIN_FAILURE) and §4 "Account policies": logins, their failures, throttling, SERVER_BUSY.

use std::time::Duration;

use crate::common::harness::*;
use sessiond::engine::EngineConfig;
use sessiond::protocol::*;

#[test]
fn login_success_advertises_timing_and_user_data() {
    let mut h = Harness::new(EngineConfig {
        max_sessions_per_user: 0,
        ..EngineConfig::default()
    });
    let c = h.connect();
    h.advance(Duration::from_secs(2));
    let f = h.login(c, "alice", ALICE_PW);
    assert_eq!(f.flags, Flags::NONE);
    let Message::LoginSuccess(s) = f.message else {
        panic!("{f:?}")
    };
    assert_eq!(
        (
            s.session.user_id,
            s.session.role,
            s.session.username.as_str()
        ),
        (1, Role::User, "alice")
    );
    assert_eq!(s.session.user_created, 1_000);
    assert_eq!(s.session.last_login, 0);
    assert_eq!(s.session.session_created, 1_767_225_602_000);
    assert_eq!(
        s.session.session_expires,
        1_767_225_602_000 + 24 * 3600 * 1000
    );
    assert_eq!(s.session.heartbeat_interval_ms, 5_000);
    assert_eq!(s.session.heartbeat_timeout_ms, 15_000);
    assert_eq!(s.session.idle_expiry_ms, 1_800_000);
    assert_eq!(h.engine.sessions().len(), 1);
    assert_eq!(h.engine.attached_sessions(), 1);

    // A second login of the same user reports the first as last_login.
    let c2 = h.connect();
    h.advance(Duration::from_secs(1));
    let Message::LoginSuccess(s2) = h.login(c2, "alice", ALICE_PW).message else {
        panic!()
    };
    assert_eq!(s2.session.last_login, 1_767_225_602_000);
    assert_ne!(s2.token, s.token);
    assert_ne!(s2.session.session_id, s.session.session_id);
}

#[test]
fn wrong_password_and_unknown_user_fail_alike() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    let a = h.login(c, "alice", "wrong");
    let b = h.login(c, "nobody", "wrong");
    for f in [&a, &b] {
        let Message::LoginFailure(lf) = &f.message else {
            panic!("{f:?}")
        };
        assert_eq!(lf.reason, LoginFailureReason::InvalidCredentials);
        assert_eq!(lf.message, "invalid username or password");
    }
    // still in AWAITING_AUTH: a correct login works on the same connection
    h.login_ok(c);
    assert_eq!(h.engine.stats().logins_failed, 2);
}

#[test]
fn login_deadline_is_not_extended_by_failed_logins() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    h.advance(Duration::from_secs(9));
    h.login(c, "alice", "wrong");
    h.advance(Duration::from_secs(1) - tick());
    assert!(!h.closing(c));
    h.advance(tick());
    let f = h.one(c);
    assert_eq!(disconnect_reason(&f), DisconnectReason::LoginTimeout);
    assert_eq!(f.flags, Flags::PUSH | Flags::FATAL);
    assert!(h.closing(c));
}

#[test]
fn frames_pipelined_behind_a_login_wait_for_its_answer() {
    let mut h = Harness::new(EngineConfig::default());
    h.shell.hash_inline = false;
    let c = h.connect();
    let mut bytes = Frame::reply(1, login_msg("alice", ALICE_PW)).to_vec();
    bytes.extend(Frame::reply(2, Message::DisconnectRequest(DisconnectRequest)).to_vec());
    h.feed(c, &bytes);
    assert!(h.frames(c).is_empty(), "nothing answered while hashing");
    h.release_hashes();
    let f = h.frames(c);
    assert_eq!(f.len(), 2);
    assert!(matches!(f[0].message, Message::LoginSuccess(_)));
    assert_eq!(f[1].request_id, 2);
    assert_eq!(disconnect_reason(&f[1]), DisconnectReason::ClientRequest);
    assert_eq!(f[1].flags, Flags::FATAL);
    assert!(h.closing(c));
}

#[test]
fn a_full_hash_queue_answers_server_busy() {
    let mut h = Harness::new(EngineConfig::default());
    h.shell.hash_inline = false;
    let c = h.connect();
    h.send(c, login_msg("alice", ALICE_PW));
    assert_eq!(h.shell.held_jobs.len(), 1);
    h.refuse_held_hashes();
    let Message::LoginFailure(lf) = h.one(c).message else {
        panic!()
    };
    assert_eq!(lf.reason, LoginFailureReason::ServerBusy);
    assert_eq!(lf.retry_after_ms, 1000);
    // the connection may try again
    h.shell.hash_inline = true;
    h.login_ok(c);
}

/// protocol.md 5.3: refusals at one moment are told to come back one after another (at the
/// hash rate, here the prior 1,000 a second before any was measured), not all at once.
#[test]
fn server_busy_refusals_get_consecutive_retry_slots() {
    let mut h = Harness::new(EngineConfig::default());
    h.shell.hash_inline = false;
    let conns: Vec<_> = (0..3).map(|_| h.connect()).collect();
    for &c in &conns {
        h.send(c, login_msg("alice", ALICE_PW));
    }
    h.refuse_held_hashes();
    let waits: Vec<u32> = conns
        .iter()
        .map(|&c| match h.one(c).message {
            Message::LoginFailure(lf) => lf.retry_after_ms,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(waits, [1000, 1001, 1002]);
}

#[test]
fn a_hash_result_for_a_closed_connection_is_dropped() {
    let mut h = Harness::new(EngineConfig::default());
    h.shell.hash_inline = false;
    let c = h.connect();
    h.send(c, login_msg("alice", ALICE_PW));
    h.remove(c);
    // the slot is reused by a new connection with another generation
    let c2 = h.connect();
    assert_eq!(c2.index, c.index);
    h.release_hashes();
    assert!(h.frames(c2).is_empty());
    assert!(h.engine.sessions().is_empty());
}

#[test]
fn the_daily_login_limit_resets_at_utc_midnight() {
    let mut cfg = EngineConfig {
        max_sessions_per_user: 0,
        ..EngineConfig::default()
    };
    cfg.policy.daily_logins = 2;
    let mut h = Harness::new(cfg);
    // the harness clock starts at 2026-01-01 00:00:00 UTC
    h.advance(Duration::from_secs(23 * 3600));
    for _ in 0..2 {
        let c = h.connect();
        h.login_ok(c);
    }
    let c = h.connect();
    let f = h.login(c, "alice", ALICE_PW);
    assert_eq!(
        failure_reason(&f),
        (LoginFailureReason::DailyLimit, 3_600_000)
    );
    // bob has his own count
    let b = h.connect();
    h.login_as(b, "bob");
    h.advance(Duration::from_secs(3600));
    let c = h.connect();
    h.login_ok(c);
}

#[test]
fn five_failures_delay_the_account_exponentially_and_a_success_resets() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    for _ in 0..5 {
        let f = h.login(c, "alice", "wrong");
        assert_eq!(failure_reason(&f).0, LoginFailureReason::InvalidCredentials);
        h.advance(Duration::from_millis(10));
    }
    // now even the right password waits, without a hash being run
    let c2 = h.connect();
    let hashed = h.shell.jobs;
    let rid = h.send(c2, login_msg("alice", ALICE_PW));
    assert_eq!(h.shell.jobs, hashed, "no hash was run");
    let f = h.one(c2);
    assert_eq!(f.request_id, rid);
    let (reason, retry) = failure_reason(&f);
    assert_eq!(reason, LoginFailureReason::Throttled);
    assert!((900..=1000).contains(&retry), "{retry}");
    // bob is not affected
    let b = h.connect();
    h.login_as(b, "bob");
    h.advance(Duration::from_secs(1));
    let f = h.login(c2, "alice", "wrong");
    assert_eq!(failure_reason(&f).0, LoginFailureReason::InvalidCredentials);
    // the sixth failure doubles the delay
    let f = h.login(c2, "alice", ALICE_PW);
    let (reason, retry) = failure_reason(&f);
    assert_eq!(reason, LoginFailureReason::Throttled);
    assert!((1900..=2000).contains(&retry), "{retry}");
    h.advance(Duration::from_secs(2));
    let c3 = h.connect();
    h.login_ok(c3);
    // reset: five more failures are needed before the next delay
    let c4 = h.connect();
    for _ in 0..4 {
        let f = h.login(c4, "alice", "wrong");
        assert_eq!(failure_reason(&f).0, LoginFailureReason::InvalidCredentials);
    }
    let audited = h
        .shell
        .journal
        .iter()
        .filter(|e| matches!(e, sessiond::engine::event::Event::Audit(a) if a.kind == sessiond::engine::event::AuditKind::LoginFailed))
        .count();
    assert_eq!(
        audited,
        5 + 2 + 1 + 4,
        "every failure, throttled ones too, is audited"
    );
}

#[test]
fn an_address_bucket_throttles_a_flood_of_attempts() {
    let mut cfg = EngineConfig::default();
    cfg.policy.address_burst = 3;
    cfg.policy.address_rate_per_min = 6; // one every 10 s
    let mut h = Harness::new(cfg);
    let c = h.connect();
    for user in ["nobody", "nobody2", "alice"] {
        let f = h.login(c, user, "wrong");
        assert_eq!(failure_reason(&f).0, LoginFailureReason::InvalidCredentials);
    }
    let f = h.login(c, "bob", ALICE_PW);
    assert_eq!(failure_reason(&f), (LoginFailureReason::Throttled, 10_000));
    h.advance(Duration::from_secs(10));
    let c2 = h.connect();
    h.login_as(c2, "bob");
}

/// protocol.md 4, "Order of checks at login": the password before suspension, the daily
/// limit and the session limit, so those are said only to a caller who knows it.
#[test]
fn the_password_is_checked_before_suspension_and_the_limits() {
    use sessiond::engine::OnLimit;
    let mut cfg = EngineConfig {
        max_sessions_per_user: 1,
        on_limit: OnLimit::RejectNew,
        ..EngineConfig::default()
    };
    cfg.policy.daily_logins = 1;
    let mut h = Harness::new(cfg);
    let a = h.connect();
    h.login_ok(a); // alice: the day's one login, and her one session
    let c = h.connect();
    let f = h.login(c, "alice", "wrong");
    assert_eq!(failure_reason(&f).0, LoginFailureReason::InvalidCredentials);
    let f = h.login(c, "alice", ALICE_PW);
    assert_eq!(failure_reason(&f).0, LoginFailureReason::DailyLimit);
    // the daily limit before the session limit: both apply here, the daily one is said
    // suspended by bob: a wrong password still says only INVALID_CREDENTIALS
    let b = h.connect();
    let tok_b = h.login_as(b, "bob");
    h.send(
        b,
        Message::AdminSuspendUser(UserTarget {
            token: tok_b,
            username: "alice".into(),
        }),
    );
    h.frames(b);
    let f = h.login(c, "alice", "wrong");
    assert_eq!(failure_reason(&f).0, LoginFailureReason::InvalidCredentials);
    let f = h.login(c, "alice", ALICE_PW);
    assert_eq!(failure_reason(&f).0, LoginFailureReason::Suspended);
}

/// protocol.md 4: a registration draws on its address's login bucket.
#[test]
fn registrations_and_logins_share_the_address_bucket() {
    let mut cfg = EngineConfig {
        registration_open: true,
        ..EngineConfig::default()
    };
    cfg.policy.address_burst = 2;
    cfg.policy.address_rate_per_min = 1;
    let mut h = Harness::new(cfg);
    let c = h.connect();
    h.login(c, "nobody", "x");
    h.send(c, register("carol", "long enough pw", "carol@example.org"));
    assert!(matches!(h.one(c).message, Message::RegisterSuccess(_)));
    // the bucket is empty now: the next registration and the next login are refused
    h.send(c, register("dave", "long enough pw", "dave@example.org"));
    match h.one(c).message {
        Message::RegisterFailure(f) => {
            assert_eq!(f.reason, RegisterFailureReason::ServerBusy)
        }
        other => panic!("{other:?}"),
    }
    let f = h.login(c, "carol", "long enough pw");
    assert_eq!(failure_reason(&f).0, LoginFailureReason::Throttled);
}

/// protocol.md 4, "Account policies": a failure streak and the day's login count are
/// durable, so a restart (or a crash) lifts neither a brute-force delay nor the limit.
#[test]
fn a_failure_streak_and_the_daily_count_survive_a_restart() {
    use sessiond::engine::replay::State;
    let mut cfg = EngineConfig {
        max_sessions_per_user: 0,
        ..EngineConfig::default()
    };
    cfg.policy.daily_logins = 2;
    let mut h = Harness::new(cfg.clone());
    for _ in 0..2 {
        let c = h.connect();
        h.login_as(c, "bob"); // bob's limit reached
    }
    let c = h.connect();
    for _ in 0..6 {
        h.login(c, "alice", "wrong");
    }
    // the engine restarts from what it journaled
    let mut state = State::new();
    for u in h.engine.users().all() {
        state.users.restore(u.clone()).unwrap();
    }
    for ev in h.shell.journal.drain(..) {
        state.apply(ev).unwrap();
    }
    // (the new engine starts at the same wall time: no time has passed)
    let mut again = Harness::new(cfg);
    again.engine.restore(state, again.now);
    let c = again.connect();
    let (reason, retry) = failure_reason(&again.login(c, "alice", ALICE_PW));
    assert_eq!(reason, LoginFailureReason::Throttled, "the delay survived");
    assert!(retry > 0);
    let c = again.connect();
    assert_eq!(
        failure_reason(&again.login(c, "bob", ALICE_PW)).0,
        LoginFailureReason::DailyLimit,
        "the count survived"
    );
}
