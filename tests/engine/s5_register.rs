//! §5.15 to §5.17 (REGISTER_*): new accounts.

use crate::common::harness::*;
use sessiond::engine::EngineConfig;
use sessiond::protocol::*;

#[test]
fn registration_then_login() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    let rid = h.send(c, register("carol", "long enough;pw", "carol@example.org"));
    let f = h.one(c);
    assert_eq!(f.request_id, rid);
    let Message::RegisterSuccess(ok) = f.message else {
        panic!("{f:?}")
    };
    assert_eq!((ok.user_id, ok.username.as_str()), (3, "carol"));
    let Message::LoginSuccess(s) = h.login(c, "carol", "long enough;pw").message else {
        panic!()
    };
    assert_eq!(s.session.role, Role::User);
    assert_eq!(
        h.engine.users().by_name("carol").unwrap().email,
        "carol@example.org"
    );
    assert_eq!(h.engine.stats().registrations, 1);
}

#[test]
fn registration_failures_name_the_reason() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    let cases = [
        (
            register("alice", "long enough", "a@b.c"),
            RegisterFailureReason::UsernameTaken,
        ),
        (
            register("Al", "long enough", "a@b.c"),
            RegisterFailureReason::InvalidUsername,
        ),
        (
            register("dave", "short", "a@b.c"),
            RegisterFailureReason::PasswordTooShort,
        ),
        (
            register("dave", "long enough", "no-at-sign"),
            RegisterFailureReason::InvalidEmail,
        ),
    ];
    for (msg, want) in cases {
        h.send(c, msg);
        let f = h.one(c);
        let Message::RegisterFailure(rf) = f.message else {
            panic!("{f:?}")
        };
        assert_eq!(rf.reason, want);
    }
    assert!(!h.closing(c));
    let mut h = Harness::new(EngineConfig {
        registration_open: false,
        ..EngineConfig::default()
    });
    let c = h.connect();
    h.send(c, register("dave", "long enough", "a@b.c"));
    let Message::RegisterFailure(rf) = h.one(c).message else {
        panic!()
    };
    assert_eq!(rf.reason, RegisterFailureReason::RegistrationClosed);
}

#[test]
fn two_registrations_of_one_name_racing_cannot_both_win() {
    let mut h = Harness::new(EngineConfig::default());
    h.shell.hash_inline = false;
    let (a, b) = (h.connect(), h.connect());
    h.send(a, register("erin", "long enough", "e@x.y"));
    h.send(b, register("erin", "long enough", "e@x.y"));
    h.release_hashes();
    let fa = h.one(a);
    let fb = h.one(b);
    assert!(matches!(fa.message, Message::RegisterSuccess(_)));
    let Message::RegisterFailure(rf) = fb.message else {
        panic!("{fb:?}")
    };
    assert_eq!(rf.reason, RegisterFailureReason::UsernameTaken);
}
