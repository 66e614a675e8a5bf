//! Session attributes survive the process (issue 20, point 5): set through the real
//! server, then kill -9 (or SIGTERM) and a restart on the same data directory; the resume
//! on a new connection brings them back, both as the ATTRS push and through ATTR_GET.

mod common;

use std::time::Duration;

use common::process::{fresh_dir, Running};
use sessiond::client::{Client, ResumeOutcome};
use sessiond::protocol::{Message, Token};

fn resume(server: &Running, token: &Token) -> Client {
    let mut c = server.client();
    match c.resume(token, "t", "p").unwrap() {
        ResumeOutcome::Valid(_) => c,
        other => panic!("{other:?}"),
    }
}

/// The ATTRS push that followed SESSION_VALID.
fn pushed(c: &mut Client) -> Vec<(String, Vec<u8>)> {
    let mut frames = c.take_pushes();
    if frames.is_empty() {
        if let Ok(Some(f)) = c.poll_push(Duration::from_secs(5)) {
            frames.push(f);
        }
    }
    frames
        .into_iter()
        .find_map(|f| match f.message {
            Message::Attrs(a) => Some(a.attrs),
            _ => None,
        })
        .expect("an ATTRS push after SESSION_VALID")
}

#[test]
fn attributes_survive_kill_9_and_a_graceful_restart() {
    let dir = fresh_dir("attrs-durable");
    let first = Running::start(&dir);
    let pw = first.password.clone().unwrap();
    let (mut c, s) = first.login("admin", &pw);
    let token = s.token.clone();
    c.set_attr("game", b"456").unwrap();
    c.set_attr("blob", &[0, 255, 7]).unwrap();
    // refused by the client before anything is sent, not cut to fit
    for bad in [
        c.set_attr(&"k".repeat(65), b""),
        c.set_attr("", b"x"),
        c.set_attr("k", &[0; 3905]),
    ] {
        assert!(
            matches!(bad, Err(sessiond::client::ClientError::Usage(_))),
            "{bad:?}"
        );
    }
    c.set_attr("gone", b"x").unwrap();
    assert!(c.remove_attr("gone").unwrap());
    // DONE came back, so all of it is on disk: kill -9 now
    drop(c);
    drop(first);
    let want = vec![
        ("blob".to_owned(), vec![0, 255, 7]),
        ("game".to_owned(), b"456".to_vec()),
    ];
    let second = Running::start(&dir);
    let mut c = resume(&second, &token);
    assert_eq!(pushed(&mut c), want);
    assert_eq!(c.get_attrs("").unwrap(), want);
    c.set_attr("game", b"457").unwrap();
    drop(c);
    // a graceful restart
    second.terminate();
    let mut second = second;
    assert_eq!(second.wait_exit(Duration::from_secs(15)), Some(0));
    let third = Running::start(&dir);
    let mut c = resume(&third, &token);
    assert_eq!(
        c.get_attrs("game").unwrap(),
        [("game".to_owned(), b"457".to_vec())]
    );
    // a logout takes them with it; the next login starts with none
    c.logout().unwrap();
    let (mut c, _) = third.login("admin", &pw);
    assert!(c.get_attrs("").unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
