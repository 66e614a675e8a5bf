//! `examples/admin.rs` against a live server on loopback: its session is kept in the token
//! file and resumed by every run (one login for a series of commands, and no other
//! session ended by them), the interactive client's session can be borrowed while that
//! client is away but is refused (DUPLICATE_SESSION) while it is connected, and
//! `audit --limit N` prints exactly the newest N records, oldest first, in typed columns;
//! application roles and profiles set here reach the user's next login.
#![allow(clippy::disallowed_methods)] // these tests run the examples in real time

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::live::Live;
use common::{TestServer, ALICE_PW, BOB_PW};
use sessiond::client::{utc, AuditRequest, Client, LoginOutcome, ResumeOutcome};
use sessiond::engine::event::AuditKind;
use sessiond::protocol::{AuditRecord, Message};

/// Every run of an example is bounded by this.
const LIMIT: Duration = Duration::from_secs(20);

/// The binary of example `name`, built (or found up to date) once per test run: `cargo
/// test` does not always refresh `target/<profile>/examples/`.
fn example(name: &str) -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--example", "admin", "--example", "client"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build --example admin --example client");
        assert!(st.success());
    });
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join("examples").join(name);
    assert!(bin.exists(), "{} not built", bin.display());
    bin
}

fn token_file(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("sessiond-adm-{tag}-{}.token", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// One run of the admin tool as bob; with `password`, it may log in; without, stdin is
/// empty and a login fails with status 2 ("no password given").
fn admin(addr: &str, token: &Path, password: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(example("admin"));
    cmd.args(["--addr", addr, "--user", "bob", "--token-file"])
        .arg(token)
        .args(args)
        .env_remove("SESSIOND_PASSWORD");
    if let Some(pw) = password {
        cmd.env("SESSIOND_PASSWORD", pw);
    }
    let mut live = Live::spawn(&mut cmd);
    live.close_stdin();
    live.wait_output(LIMIT)
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The session ids of a `sessions` table, `*` kept on the current one.
fn session_ids(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.len() >= 16 && w[..16].bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
        .collect()
}

/// The cells of each row of a table (columns are two or more spaces apart; cells hold
/// single spaces at most), header first.
fn cells(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

#[test]
fn admin_runs_share_one_session_kept_in_the_token_file() {
    example("admin"); // built first: connections below must not idle through a build
    let server = TestServer::start();
    let addr = server.addr.to_string();
    let tok = token_file("own");

    // the first run logs in and keeps the session
    let o = admin(&addr, &tok, Some(BOB_PW), &["sessions", "bob"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(err.contains("logged in as bob"), "{err}");
    let ids = session_ids(&out);
    assert_eq!(ids.len(), 1, "{out}");
    assert!(ids[0].ends_with('*'), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tok).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // the next runs resume it: no password to hand, and the same one session
    for _ in 0..2 {
        let o = admin(&addr, &tok, None, &["sessions", "bob"]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
        assert!(!err.contains("logged in"), "{err}");
        assert_eq!(session_ids(&out), ids, "{out}");
    }

    // the audit trail: one login of bob, never logged out, resumed by the later runs
    let o = admin(&addr, &tok, None, &["audit", "--user", "bob"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let kinds: Vec<String> = cells(&out)
        .into_iter()
        .skip(1)
        .map(|r| r[1].clone())
        .collect();
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("session_created"), 1, "{out}");
    assert_eq!(count("logged_out"), 0, "{out}");
    assert_eq!(count("session_resumed"), 3, "{out}");

    // `logout` ends it and removes the file; then a run must log in again
    let o = admin(&addr, &tok, None, &["logout"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let id = ids[0].trim_end_matches('*');
    assert!(out.contains(&format!("logged out session {id}")), "{out}");
    assert!(!tok.exists());
    let o = admin(&addr, &tok, None, &["stats"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}\n{err}");
    assert!(err.contains("no password given"), "{err}");
}

#[test]
fn an_earlier_session_of_the_same_admin_is_not_revoked() {
    example("admin"); // built first: connections below must not idle through a build
                      // Two sessions per account: with the default one, a first login as the operator's
                      // account necessarily ends the operator's other session.
    let server = TestServer::start_with(|c| c.engine.max_sessions_per_user = 2);
    let addr = server.addr.to_string();
    let tok = token_file("two");
    let (mut operator, op) = server.bob();
    let op_id = format!("{:016x}", op.session.session_id);

    let mut seen = Vec::new();
    for run in 0..3 {
        let pw = (run == 0).then_some(BOB_PW);
        let o = admin(&addr, &tok, pw, &["sessions", "bob"]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
        let ids = session_ids(&out);
        assert_eq!(ids.len(), 2, "{out}");
        assert!(
            ids.contains(&op_id),
            "the operator's session is gone: {out}"
        );
        seen.push(ids.into_iter().find(|i| i.ends_with('*')).unwrap());
    }
    assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");
    operator
        .heartbeat()
        .expect("the operator's session is alive");
    let revoked = operator
        .take_pushes()
        .into_iter()
        .any(|f| matches!(f.message, Message::SessionRevoked(_)));
    assert!(!revoked);
    let _ = std::fs::remove_file(&tok);
}

#[test]
fn the_interactive_clients_session_is_borrowed_when_free_and_refused_when_in_use() {
    example("admin"); // built first: connections below must not idle through a build
    let server = TestServer::start();
    let addr = server.addr.to_string();
    let tok = token_file("shared");
    // the operator logs in with the interactive client's token file, and leaves
    let o = Command::new(example("client"))
        .args(["--addr", &addr, "--token-file"])
        .arg(&tok)
        .args(["--script", "--", "login bob"])
        .env("SESSIOND_PASSWORD", BOB_PW)
        .output()
        .unwrap();
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let sid = out.trim().rsplit("session=").next().unwrap().to_owned();

    // the session is free: the admin tool works in it
    let o = admin(&addr, &tok, None, &["sessions", "bob"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert_eq!(session_ids(&out), [format!("{sid}*")], "{out}");

    // the interactive client comes back to it
    let mut interactive = Live::spawn(
        Command::new(example("client"))
            .args(["--addr", &addr, "--token-file"])
            .arg(&tok)
            .env_remove("SESSIOND_PASSWORD"),
    );
    interactive.wait_for("resumed the stored session", LIMIT);
    interactive.wait_for("sessiond bob> ", LIMIT);

    // now it is in use: refused, said plainly, and the client is untouched
    let o = admin(&addr, &tok, None, &["sessions"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(err.contains("is in use on another connection"), "{err}");
    assert!(
        err.contains("DUPLICATE_SESSION") && err.contains("--login"),
        "{err}"
    );
    assert!(tok.exists(), "the token is still valid");
    interactive.send("whoami\n");
    interactive.wait_for(
        &format!("sessiond bob> whoami\nlogged in as bob (user 2, admin), session {sid}"),
        LIMIT,
    );
    assert!(!interactive.stdout().contains("session ended"));

    // --login: asked for, so the client's session ends (one session per account)
    let o = admin(&addr, &tok, Some(BOB_PW), &["--login", "sessions", "bob"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let ids = session_ids(&out);
    assert_eq!(ids.len(), 1, "{out}");
    assert_ne!(ids[0], format!("{sid}*"));
    interactive.wait_for("session ended: you logged in somewhere else", LIMIT);
    let o = interactive.wait_output(LIMIT);
    assert_eq!(o.status.code(), Some(4));
    let _ = std::fs::remove_file(&tok);
}

/// alice's newest records, newest first, as she may read them herself.
fn newest(c: &mut Client, n: usize) -> Vec<AuditRecord> {
    let mut q = AuditRequest {
        newest_first: true,
        ..AuditRequest::default()
    };
    let mut all = Vec::new();
    while all.len() < n {
        q.limit = (n - all.len()).min(50) as u16;
        let page = c.audit_search(&q).unwrap();
        all.extend(page.records);
        if page.next_cursor == 0 {
            break;
        }
        q.cursor = page.next_cursor;
    }
    all.truncate(n);
    all
}

/// `audit` rows match `records` (newest first) printed oldest first, column by column.
fn assert_rows(out: &str, records: &[AuditRecord]) {
    let rows = cells(out);
    assert_eq!(
        rows[0],
        ["TIME", "KIND", "REASON", "USER", "SESSION", "ADDRESS", "DEVICE", "BY", "NOTE"]
    );
    assert_eq!(rows.len() - 1, records.len(), "{out}");
    for (row, r) in rows[1..].iter().zip(records.iter().rev()) {
        let kind = AuditKind::from_u8(r.kind).unwrap();
        let device = format!("{} on {}", r.client, r.platform);
        let reason = kind.reason_name(r.reason).unwrap_or("-");
        assert_eq!(row.len(), 9, "{row:?}");
        assert_eq!(
            row[..7],
            [
                utc(r.at),
                kind.name().to_owned(),
                reason.to_owned(),
                r.username.clone(),
                format!("{:016x}", r.session_id),
                r.address.clone(),
                device,
            ],
            "{out}"
        );
    }
}

#[test]
fn audit_limit_prints_exactly_the_newest_records_oldest_first() {
    example("admin"); // built first: connections below must not idle through a build
    let server = TestServer::start();
    let addr = server.addr.to_string();
    let tok = token_file("audit");
    // alice: created S1, logged_out S1, login_failed, created S2, then a login elsewhere
    // (S3) revokes S2
    let (mut a, _) = server.alice();
    a.logout().unwrap();
    let failed = a.login("alice", "wrong", "test", "linux").unwrap();
    assert!(matches!(failed, LoginOutcome::Failure(_)));
    assert!(matches!(
        a.login("alice", ALICE_PW, "test", "linux").unwrap(),
        LoginOutcome::Success(_)
    ));
    let (mut b, s3) = server.alice();
    let s3 = s3.session.session_id;

    let o = admin(
        &addr,
        &tok,
        Some(BOB_PW),
        &["audit", "--user", "alice", "--limit", "3"],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let want = newest(&mut b, 3);
    assert_rows(&out, &want);
    // the typed columns: the revocation's reason and who caused it
    let rows = cells(&out);
    let revoked = rows
        .iter()
        .find(|r| r[1] == "revoked")
        .expect("revoked row");
    assert_eq!(revoked[2], "NEW_LOGIN");
    assert!(
        revoked[7].starts_with(&format!("alice (session {s3:016x}, 127.0.0.1:")),
        "{revoked:?}"
    );
    // and not the fourth newest
    assert!(!rows.iter().any(|r| r[1] == "logged_out"), "{out}");
    let _ = std::fs::remove_file(&tok);
}

#[test]
fn audit_limit_follows_pages_of_fifty() {
    example("admin"); // built first: connections below must not idle through a build
    let server = TestServer::start();
    let addr = server.addr.to_string();
    let tok = token_file("pages");
    let (a, s) = server.alice();
    a.disconnect().unwrap();
    // 30 resumes and disconnects: 60 more records, each connection with its own port
    for _ in 0..30 {
        let mut c = server.client();
        let r = c.resume(&s.token, "test", "linux").unwrap();
        assert!(matches!(r, ResumeOutcome::Valid(_)));
        c.disconnect().unwrap();
    }
    let mut c = server.client();
    assert!(matches!(
        c.resume(&s.token, "test", "linux").unwrap(),
        ResumeOutcome::Valid(_)
    ));

    let o = admin(
        &addr,
        &tok,
        Some(BOB_PW),
        &["audit", "--user", "alice", "--limit", "55"],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let want = newest(&mut c, 55);
    assert_eq!(want.len(), 55);
    assert_rows(&out, &want);
    let _ = std::fs::remove_file(&tok);
}

/// At a terminal (made by util-linux `script`, echo on) the password is read with echo
/// off, and only when a login is needed.
#[test]
fn the_password_is_not_echoed_at_a_terminal() {
    example("admin");
    if !common::live::has_script() {
        return;
    }
    let server = TestServer::start();
    let tok = token_file("tty");
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let inner = format!(
        "{} --addr {} --user bob --token-file {} stats",
        quote(example("admin").to_str().unwrap()),
        server.addr,
        quote(tok.to_str().unwrap())
    );
    let mut live = Live::spawn(
        Command::new("script")
            .args(["-qe", "-E", "always", "-c", &inner, "/dev/null"])
            .env_remove("SESSIOND_PASSWORD"),
    );
    live.wait_for("password for bob", LIMIT);
    live.send(&format!("{BOB_PW}\n"));
    let o = live.wait_output(LIMIT);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("NAME") && out.contains("VALUE"), "{out}");
    assert!(!out.contains(BOB_PW), "the password was echoed: {out:?}");
    let _ = std::fs::remove_file(&tok);
}

/// `set-password USER`: the new password from stdin (read before any login, whose password
/// comes from SESSIOND_PASSWORD here), never printed; the user's sessions end with
/// PASSWORD_RESET; the server's refusals come back as status 1.
#[test]
fn set_password_takes_the_new_password_from_stdin_and_ends_the_users_sessions() {
    use sessiond::client::{is_server_error, ClientError};
    use sessiond::protocol::{ErrorCode, RevokeReason};
    const NEW: &str = "alice's new; one";
    example("admin"); // built first: alice's connection must not idle out meanwhile
    let server = TestServer::start();
    let (mut alice, _) = server.alice();
    let tok = token_file("setpw");
    let run = |stdin: &str, user: &str| {
        let mut cmd = Command::new(example("admin"));
        cmd.args([
            "--addr",
            &server.addr.to_string(),
            "--user",
            "bob",
            "--token-file",
        ])
        .arg(&tok)
        .args(["set-password", user])
        .env("SESSIOND_PASSWORD", BOB_PW);
        let mut live = Live::spawn(&mut cmd);
        live.send(stdin);
        live.close_stdin();
        live.wait_output(LIMIT)
    };
    let o = run(&format!("{NEW}\n"), "alice");
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert_eq!(out.trim(), "set the password of alice: 1 session(s) ended");
    assert!(!out.contains(NEW) && !err.contains(NEW), "{out}{err}");
    match alice.poll_push(Duration::from_secs(5)) {
        Err(ClientError::Revoked(r)) => assert_eq!(r.reason, RevokeReason::PasswordReset),
        other => panic!("expected SESSION_REVOKED, got {other:?}"),
    }
    let mut c = server.client();
    assert!(matches!(
        c.login("alice", ALICE_PW, "t", "p").unwrap(),
        LoginOutcome::Failure(_)
    ));
    server.login_as("alice", NEW, "test");
    // refused by the server: too short, unknown account; and from a user, FORBIDDEN
    for (stdin, user, code) in [
        ("short\n", "alice", "INVALID_ARGUMENT"),
        ("long enough\n", "nobody", "NOT_FOUND"),
    ] {
        let o = run(stdin, user);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out}{err}");
        assert!(err.contains(code), "{err}");
    }
    let (mut a, _) = server.login_as("alice", NEW, "test");
    let e = a.admin_set_password("bob", "long enough").unwrap_err();
    assert!(is_server_error(&e, ErrorCode::Forbidden), "{e:?}");
    // no new password on stdin: a usage error, nothing sent
    let o = run("", "alice");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("no password given"));
    let _ = std::fs::remove_file(&tok);
}

/// `set-attr` and `unset-attr` on a user's session: the user's own `get` (the interactive
/// client's, in script mode, resuming the session in a new run) sees the change.
#[test]
fn set_attr_and_unset_attr_change_what_the_users_get_finds() {
    example("admin");
    let server = TestServer::start();
    let addr = server.addr.to_string();
    let (user_tok, admin_tok) = (token_file("attr-user"), token_file("attr-admin"));
    let client = |cmds: &str| {
        let o = Command::new(example("client"))
            .args(["--addr", &addr, "--token-file"])
            .arg(&user_tok)
            .args(["--script", "--", cmds])
            .env("SESSIOND_PASSWORD", ALICE_PW)
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{cmds}: {out}\n{err}");
        out
    };
    let out = client("login alice; set game 456");
    let sid = out
        .lines()
        .next()
        .unwrap()
        .rsplit("session=")
        .next()
        .unwrap();
    let sid = sid.to_owned();

    let o = admin(
        &addr,
        &admin_tok,
        Some(BOB_PW),
        &["set-attr", &sid, "game", "457 b"],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert_eq!(out.trim(), format!("set game of session {sid} (5 bytes)"));
    let o = admin(&addr, &admin_tok, None, &["set-attr", &sid, "cart", ""]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let out = client("resume; get");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("push attrs session={sid} count=2 cart= game=\"457 b\"")
    );
    assert_eq!(lines[2], "ok get count=2 cart= game=\"457 b\"");

    let o = admin(&addr, &admin_tok, None, &["unset-attr", &sid, "game"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert_eq!(out.trim(), format!("removed game of session {sid}"));
    let o = admin(&addr, &admin_tok, None, &["unset-attr", &sid, "game"]);
    let (out, _) = text(&o);
    assert_eq!(
        out.trim(),
        format!("game of session {sid} was not set (no change)")
    );
    let out = client("resume; get game; get");
    assert!(
        out.contains("\nok get count=0\nok get count=1 cart=\n"),
        "{out}"
    );

    // refusals: a session that does not exist; a key the protocol does not take
    let o = admin(&addr, &admin_tok, None, &["set-attr", "12345", "game", "1"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(err.contains("NOT_FOUND"), "{err}");
    let long = "k".repeat(65);
    let o = admin(&addr, &admin_tok, None, &["unset-attr", &sid, &long]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("a key is 1 to 64 bytes"), "{err}");
    let _ = std::fs::remove_file(&user_tok);
    let _ = std::fs::remove_file(&admin_tok);
}

/// `set-app-role`, `set-profile` and `unset-profile` against a server declaring one
/// application role (`--role educator`): alice's next login brings both in the USER_INFO
/// push; a role the server does not declare is refused (status 1, INVALID_ARGUMENT, the
/// message listing the roles it has); `-` takes the role away.
#[test]
fn set_app_role_and_set_profile_reach_the_users_next_login() {
    use sessiond::protocol::UserInfo;
    example("admin");
    let server = TestServer::start_with(|c| c.engine.app_roles = vec!["educator".into()]);
    let addr = server.addr.to_string();
    let tok = token_file("profile");
    let run = |args: &[&str]| {
        let o = admin(&addr, &tok, Some(BOB_PW), args);
        let (out, err) = text(&o);
        (o.status.code(), out.trim().to_owned(), err)
    };
    let (st, out, err) = run(&["set-app-role", "alice", "educator"]);
    assert_eq!(st, Some(0), "{out}\n{err}");
    assert_eq!(out, "alice now has application role educator");
    let (_, out, _) = run(&["set-app-role", "alice", "educator"]);
    assert_eq!(out, "alice already has educator (no change)");
    // `users`: every account with both roles
    let (st, out, err) = run(&["users"]);
    assert_eq!(st, Some(0), "{out}\n{err}");
    let alice_row: Vec<&str> = out
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("alice"))
        .unwrap_or_else(|| panic!("{out}"))
        .split_whitespace()
        .collect();
    assert_eq!(alice_row[2..5], ["user", "educator", "no"], "{out}");
    assert!(out.ends_with("2 of 2 account(s)"), "{out}");
    let (st, out, err) = run(&["set-profile", "alice", "display_name", "Alice A."]);
    assert_eq!(st, Some(0), "{out}\n{err}");
    assert_eq!(out, "set display_name of alice's profile (8 bytes)");
    let (_, out, _) = run(&["set-profile", "alice", "theme", "dark"]);
    assert_eq!(out, "set theme of alice's profile (4 bytes)");
    let (_, out, _) = run(&["unset-profile", "alice", "theme"]);
    assert_eq!(out, "removed theme of alice's profile");
    let (_, out, _) = run(&["unset-profile", "alice", "theme"]);
    assert_eq!(out, "theme of alice's profile was not set (no change)");

    // alice logs in: USER_INFO follows LOGIN_SUCCESS with the role and the profile
    let (mut alice, ok) = server.alice();
    let want = UserInfo {
        user_id: ok.session.user_id,
        app_role: "educator".into(),
        profile: vec![("display_name".into(), b"Alice A.".to_vec())],
    };
    let push = alice.poll_push(Duration::from_secs(5)).unwrap();
    match push.map(|f| f.message) {
        Some(Message::UserInfo(u)) => assert_eq!(u, want),
        other => panic!("expected USER_INFO, got {other:?}"),
    }

    // refusals: an undeclared role, an unknown account, a key the protocol does not take
    let (st, _, err) = run(&["set-app-role", "alice", "finance"]);
    assert_eq!(st, Some(1), "{err}");
    assert!(
        err.contains("INVALID_ARGUMENT") && err.contains("educator"),
        "{err}"
    );
    let (st, _, err) = run(&["set-profile", "nobody", "k", "v"]);
    assert_eq!(st, Some(1), "{err}");
    assert!(err.contains("NOT_FOUND"), "{err}");
    let long = "k".repeat(65);
    let (st, _, err) = run(&["unset-profile", "alice", &long]);
    assert_eq!(st, Some(2), "{err}");
    assert!(err.contains("a key is 1 to 64 bytes"), "{err}");

    // `-` is none: alice's PROFILE_GET no longer names a role
    let (st, out, err) = run(&["set-app-role", "alice", "-"]);
    assert_eq!(st, Some(0), "{out}\n{err}");
    assert_eq!(out, "alice now has no application role");
    let (_, out, _) = run(&["set-app-role", "alice", ""]);
    assert_eq!(out, "alice already has no application role (no change)");
    let info = alice.get_profile("").unwrap();
    assert_eq!((info.app_role.as_str(), info.profile), ("", want.profile));
    let _ = std::fs::remove_file(&tok);
}
