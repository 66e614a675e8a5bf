//! `examples/client.rs` in script mode, as a shell or C harness would drive it: one result
//! line per command and an exit status per class of failure (documented in the example);
//! and in interactive mode: the prompt and `help`, the password never echoed (read from a
//! pipe, and at a terminal made by `script`), and a server never reached.
#![allow(clippy::disallowed_methods)] // these tests run the example in real time

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::live::Live;
use common::{TestServer, ALICE_PW};

/// The example's binary, built (or found up to date) once per test run: `cargo test`
/// compiles examples but does not always refresh `target/<profile>/examples/client`.
fn example() -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--example", "client"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build --example client");
        assert!(st.success());
    });
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join("examples").join("client");
    assert!(
        bin.exists(),
        "{} not built (cargo test builds examples)",
        bin.display()
    );
    bin
}

fn token_file(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("sessiond-ex-{tag}-{}.token", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn script(addr: &str, token: &Path, cmds: &str) -> Output {
    Command::new(example())
        .args(["--addr", addr, "--token-file"])
        .arg(token)
        .args(["--script", "--", cmds])
        .env("SESSIOND_PASSWORD", ALICE_PW)
        .output()
        .unwrap()
}

fn lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn script_mode_prints_one_line_per_command_and_classifies_failures() {
    let server = TestServer::start();
    let addr = server.addr.to_string();
    let tok = token_file("a");

    let o = script(
        &addr,
        &tok,
        "login alice; sessions; heartbeat; logout-all others; passwd wrong something-new",
    );
    let l = lines(&o);
    assert_eq!(o.status.code(), Some(1), "{l:?}");
    assert!(
        l[0].starts_with("ok login user=alice user_id=1 role=user session="),
        "{l:?}"
    );
    let sid = l[0].rsplit("session=").next().unwrap().to_owned();
    assert_eq!(l[1], format!("ok sessions count=1 current={sid} ids={sid}"));
    assert!(l[2].starts_with("ok heartbeat server_time="));
    assert_eq!(l[3], "ok logout-all ended=0");
    assert!(
        l[4].starts_with("error passwd refused WRONG_PASSWORD"),
        "{l:?}"
    );
    assert_eq!(l.len(), 5);
    // the token file is owner-only
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tok).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // a new process resumes from the token file, then logs out (the file goes)
    let o = script(&addr, &tok, "resume; whoami; logout");
    let l = lines(&o);
    assert_eq!(o.status.code(), Some(0), "{l:?}");
    assert_eq!(
        l[0],
        format!("ok resume user=alice user_id=1 role=user session={sid}")
    );
    assert_eq!(l[2], format!("ok logout session={sid}"));
    assert!(!tok.exists());
    let o = script(&addr, &tok, "resume");
    assert_eq!(o.status.code(), Some(2), "{:?}", lines(&o));
    assert!(lines(&o)[0].starts_with("error resume usage USAGE no token in"));

    // wrong password: refused, with the protocol's reason
    let o = Command::new(example())
        .args(["--addr", &addr, "--token-file"])
        .arg(&tok)
        .args(["--script", "--", "login alice wrong-password"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(lines(&o)[0].starts_with("error login refused INVALID_CREDENTIALS"));

    // nothing listening: network
    let o = script("127.0.0.1:1", &tok, "login alice");
    assert_eq!(o.status.code(), Some(3), "{:?}", lines(&o));
    assert!(lines(&o)[0].starts_with("error login network NETWORK"));
    // a typo: usage
    let o = script(&addr, &tok, "frobnicate");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_revocation_while_waiting_ends_the_script_with_status_4() {
    let server = TestServer::start();
    let addr = server.addr.to_string();
    let (ta, tb) = (token_file("w1"), token_file("w2"));
    let mut waiting = Command::new(example())
        .args(["--addr", &addr, "--token-file"])
        .arg(&ta)
        .args(["--script", "--", "login alice; wait 20000"])
        .env("SESSIOND_PASSWORD", ALICE_PW)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(waiting.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.starts_with("ok login"), "{first}");
    // the same account logs in elsewhere: the waiting script's session is revoked
    let o = script(&addr, &tb, "login alice");
    assert_eq!(o.status.code(), Some(0));
    let mut rest = String::new();
    for _ in 0..4 {
        let mut l = String::new();
        if out.read_line(&mut l).unwrap() == 0 {
            break;
        }
        rest.push_str(&l);
    }
    let status = waiting.wait().unwrap();
    assert_eq!(status.code(), Some(4), "{rest}");
    assert!(
        rest.contains("error wait session_ended NEW_LOGIN"),
        "{rest}"
    );
    assert!(!ta.exists(), "the dead token is deleted");
    let _ = std::fs::remove_file(&tb);
}

#[test]
fn script_mode_over_tls_checks_the_certificate() {
    use common::pki::Pki;
    let pki = Pki::new("ex");
    let other = Pki::new("ex-other");
    let cfg = sessiond::tls::server_config(&pki.path("cert.pem"), &pki.path("key.pem")).unwrap();
    let server = TestServer::start_with(|c| c.tls = Some(cfg));
    let addr = format!("localhost:{}", server.addr.port());
    let tok = token_file("tls");
    let run = |ca: &Path| {
        Command::new(example())
            .args(["--addr", &addr, "--token-file"])
            .arg(&tok)
            .arg("--ca-file")
            .arg(ca)
            .args(["--script", "--", "login alice; heartbeat"])
            .env("SESSIOND_PASSWORD", ALICE_PW)
            .output()
            .unwrap()
    };
    let o = run(&pki.path("ca.pem"));
    assert_eq!(o.status.code(), Some(0), "{:?}", lines(&o));
    assert!(lines(&o)[1].starts_with("ok heartbeat"));
    let o = run(&other.path("ca.pem"));
    assert_eq!(o.status.code(), Some(5), "{:?}", lines(&o));
    assert!(
        lines(&o)[0].starts_with("error login protocol TLS"),
        "{:?}",
        lines(&o)
    );
    let _ = std::fs::remove_file(&tok);
}

/// Runs `cmd` with `input` on stdin and waits at most `limit` for it to exit (killed and
/// failed otherwise); its output.
fn run_bounded(cmd: &mut Command, input: &str, limit: Duration) -> Output {
    let mut live = Live::spawn(cmd);
    live.send(input);
    live.close_stdin();
    let status = live.wait_exit(limit);
    let (stdout, stderr) = live.output();
    Output {
        status,
        stdout: stdout.into_bytes(),
        stderr: stderr.into_bytes(),
    }
}

#[test]
fn interactive_mode_prompts_lists_the_commands_and_reads_the_password_from_a_pipe() {
    let server = TestServer::start();
    let tok = token_file("i");
    // no SESSIOND_PASSWORD: the first line of stdin is the password
    let input = format!(
        "{ALICE_PW}\nhelp\nfrobnicate\nrevoke\nwhoami\nlogout\nlogin alice not-the-password\nquit\n"
    );
    let o = run_bounded(
        Command::new(example())
            .args(["--addr", &server.addr.to_string(), "--user", "alice"])
            .arg("--token-file")
            .arg(&tok)
            .env_remove("SESSIOND_PASSWORD"),
        &input,
        Duration::from_secs(20),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(err.contains("password for alice: "), "{err}");
    assert!(
        !out.contains(ALICE_PW) && !err.contains(ALICE_PW),
        "the password is shown: {out}\n{err}"
    );
    // the prompt names the user; a piped command is repeated after it
    assert!(
        out.contains("type `help` for the commands\nsessiond alice> help\n"),
        "{out}"
    );
    // help: one line per command, each with what it does
    let help: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.ends_with("> help"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    let names: Vec<&str> = help
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    for cmd in [
        "login",
        "register",
        "whoami",
        "sessions",
        "revoke",
        "heartbeat",
        "logout",
        "logout-all",
        "passwd",
        "set",
        "get",
        "unset",
        "profile",
        "profile-set",
        "profile-unset",
        "help",
        "quit",
    ] {
        assert!(names.contains(&cmd), "help lacks {cmd}: {help:?}");
    }
    assert!(
        help.iter().all(|l| l.trim().split("  ").count() >= 2),
        "{help:?}"
    );
    // an unknown command points to help; a known one with the wrong arguments shows its
    // usage line
    assert!(
        out.contains(
            "sessiond alice> frobnicate\nerror: unknown command \"frobnicate\"; `help` lists \
             the commands (USAGE)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("error: usage: revoke SESSION_ID (USAGE)"),
        "{out}"
    );
    assert!(
        out.contains("sessiond alice> whoami\nlogged in as alice"),
        "{out}"
    );
    // logged out: the prompt has no user any more; a password in a command is not shown
    assert!(out.contains("sessiond> login alice ***\nerror: "), "{out}");
    assert!(!out.contains("not-the-password"), "{out}");
    assert!(out.contains("sessiond> quit\nDISCONNECT_ACK"), "{out}");
    assert!(!tok.exists());
}

/// `script` (util-linux) runs the example on a pseudo-terminal, whose echo (on, with
/// `-E always`) shows in the output: the password must not, and echo must be back on for
/// the next command.
#[test]
fn interactive_mode_reads_a_password_at_a_terminal_without_echo() {
    if !common::live::has_script() {
        return;
    }
    let server = TestServer::start();
    let tok = token_file("tty");
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let inner = format!(
        "{} --addr {} --user alice --token-file {}",
        quote(example().to_str().unwrap()),
        server.addr,
        quote(tok.to_str().unwrap())
    );
    let mut live = Live::spawn(
        Command::new("script")
            .args(["-qe", "-E", "always", "-c", &inner, "/dev/null"])
            .env_remove("SESSIOND_PASSWORD"),
    );
    let limit = Duration::from_secs(20);
    live.wait_for("password for alice: ", limit);
    live.send(&format!("{ALICE_PW}\n"));
    live.wait_for("sessiond alice> ", limit);
    live.send("whoami\n");
    // the terminal echoes the command again: echo is back on
    live.wait_for("sessiond alice> whoami", limit);
    live.wait_for("\nlogged in as alice", limit);
    live.send("quit\n");
    let st = live.wait_exit(limit);
    let (out, _) = live.output();
    assert_eq!(st.code(), Some(0), "{out}");
    assert!(!out.contains(ALICE_PW), "the password was echoed: {out:?}");
    let _ = std::fs::remove_file(&tok);
}

#[test]
fn a_server_never_reached_ends_with_its_address_and_status_3() {
    // a loopback port with nothing listening
    let port = common::free_port();
    let tok = token_file("unreachable");
    let addr = format!("127.0.0.1:{port}");
    let bin = example(); // built before the clock starts
    let started = Instant::now();
    let o = run_bounded(
        Command::new(bin)
            .args(["--addr", &addr, "--user", "alice", "--token-file"])
            .arg(&tok)
            .env("SESSIOND_PASSWORD", ALICE_PW),
        "",
        Duration::from_secs(20),
    );
    let took = started.elapsed();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{out}\n{err}");
    assert!(
        err.contains(&format!(
            "cannot connect to {addr}: Connection refused (after 5 attempts)"
        )),
        "{err}"
    );
    // four waits between five attempts, then the end: bounded, not forever
    assert_eq!(out.matches("; retrying in").count(), 4, "{out}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(!tok.exists());
}

/// Issue 19, point 8: options that contradict each other are refused, not resolved quietly.
#[test]
fn conflicting_trust_options_are_refused() {
    for args in [
        &["--insecure-skip-verify", "--ca-file", "ca.pem"][..],
        &["--insecure-skip-verify", "--tls"][..],
        &["--tls", "--ca-file", "ca.pem"][..],
    ] {
        let out = Command::new(example())
            .args(args)
            .args(["--script", "--", "whoami"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("cannot be used with"), "{args:?}: {err}");
    }
}

/// Issue 20: `set`, `get` and `unset` in script mode; the attributes outlive the run (the
/// process ends without a logout) and come back with the resume of the next one, as its
/// ATTRS push, and at the interactive client's start.
#[test]
fn session_attributes_come_back_when_a_new_run_resumes_the_session() {
    let server = TestServer::start();
    let addr = server.addr.to_string();
    let tok = token_file("attrs");
    let o = script(
        &addr,
        &tok,
        "login alice; get; set game 456; set note  hello  world ; set game 457; get; \
         get game; get nothing; unset nothing",
    );
    let l = lines(&o);
    assert_eq!(o.status.code(), Some(0), "{l:?}");
    assert_eq!(
        l[1..],
        [
            "ok get count=0",
            "ok set key=game bytes=3",
            "ok set key=note bytes=12",
            "ok set key=game bytes=3",
            "ok get count=2 game=457 note=\"hello  world\"",
            "ok get count=1 game=457",
            "ok get count=0",
            "ok unset key=nothing removed=0",
        ]
    );
    let sid = l[0].rsplit("session=").next().unwrap().to_owned();
    // bytes that are not UTF-8 (only an administrator can put them there) print in hex
    let (mut bob, _) = server.bob();
    let id = u64::from_str_radix(&sid, 16).unwrap();
    bob.admin_set_attr(id, "blob", Some(&[0xff, 0x00, 0x41]))
        .unwrap();

    // a new run: the resume brings them back, pushed, before its own line
    let o = script(&addr, &tok, "resume; get; unset note; get note");
    let l = lines(&o);
    assert_eq!(o.status.code(), Some(0), "{l:?}");
    let all = "blob=0xff0041 game=457 note=\"hello  world\"";
    assert_eq!(l[0], format!("push attrs session={sid} count=3 {all}"));
    assert!(l[1].starts_with("ok resume user=alice"), "{l:?}");
    assert_eq!(l[2], format!("ok get count=3 {all}"));
    assert_eq!(l[3..], ["ok unset key=note removed=1", "ok get count=0"]);

    // usage errors, checked before anything is sent
    let o = script(&addr, &tok, "resume; set game");
    assert_eq!(o.status.code(), Some(2), "{:?}", lines(&o));
    assert!(lines(&o)
        .iter()
        .any(|x| x == "error set usage USAGE usage: set KEY VALUE"));
    let long = format!("resume; set {} 1", "k".repeat(65));
    let o = script(&addr, &tok, &long);
    assert_eq!(o.status.code(), Some(2), "{:?}", lines(&o));

    // the interactive client resumes at its start and says what the session holds
    let o = run_bounded(
        Command::new(example())
            .args(["--addr", &addr, "--token-file"])
            .arg(&tok),
        "get game\nunset game\nquit\n",
        Duration::from_secs(20),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("resumed the stored session\nsession attributes: blob=0xff0041 game=457\n"),
        "{out}"
    );
    assert!(out.contains("> get game\ngame=457\n"), "{out}");
    assert!(out.contains("> unset game\nremoved game\n"), "{out}");
    let _ = std::fs::remove_file(&tok);
}

/// The account's application role and profile: `profile-set`, `profile-unset` and
/// `profile` in script mode; the USER_INFO push after a login and after a resume (`push
/// user_info ...`, before the command's own line), and at the interactive client's start
/// in plain words. The server declares the role (`--role educator`); an administrator
/// gives it.
#[test]
fn the_profile_and_the_application_role_come_with_the_login() {
    let server = TestServer::start_with(|c| c.engine.app_roles = vec!["educator".into()]);
    let addr = server.addr.to_string();
    let tok = token_file("profile");
    // neither yet: no push, and an empty profile
    let o = script(
        &addr,
        &tok,
        "login alice; profile; profile-set display_name  Alice A. ; profile-set theme dark; \
         profile-unset theme; profile-unset theme; profile; profile nothing",
    );
    let l = lines(&o);
    assert_eq!(o.status.code(), Some(0), "{l:?}");
    assert!(l[0].starts_with("ok login user=alice"), "{l:?}");
    assert_eq!(
        l[1..],
        [
            "ok profile role= count=0",
            "ok profile-set key=display_name bytes=8 changed=1",
            "ok profile-set key=theme bytes=4 changed=1",
            "ok profile-unset key=theme removed=1",
            "ok profile-unset key=theme removed=0",
            "ok profile role= count=1 display_name=\"Alice A.\"",
            "ok profile role= count=0",
        ]
    );
    let (mut bob, _) = server.bob();
    assert_eq!(bob.admin_set_app_role("alice", "educator").unwrap(), 1);

    // a new run: the resume brings both, pushed, before its own line
    let push = "push user_info user_id=1 role=educator count=1 display_name=\"Alice A.\"";
    let o = script(&addr, &tok, "resume; profile");
    let l = lines(&o);
    assert_eq!(o.status.code(), Some(0), "{l:?}");
    assert_eq!(l[0], push);
    assert!(l[1].starts_with("ok resume user=alice"), "{l:?}");
    assert_eq!(
        l[2],
        "ok profile role=educator count=1 display_name=\"Alice A.\""
    );
    // and so does a login
    let o = script(&addr, &tok, "login alice");
    let l = lines(&o);
    assert_eq!(o.status.code(), Some(0), "{l:?}");
    assert_eq!(l[0], push);
    assert!(l[1].starts_with("ok login user=alice"), "{l:?}");
    // usage errors, checked before anything is sent
    let o = script(&addr, &tok, "resume; profile-set theme");
    assert_eq!(o.status.code(), Some(2), "{:?}", lines(&o));
    assert!(lines(&o)
        .iter()
        .any(|x| x == "error profile-set usage USAGE usage: profile-set KEY VALUE"));

    // the interactive client, in plain words: at its start, and for `profile`
    let o = run_bounded(
        Command::new(example())
            .args(["--addr", &addr, "--token-file"])
            .arg(&tok),
        "profile\nprofile-unset display_name\nprofile\nquit\n",
        Duration::from_secs(20),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let shown = "role: educator; profile: display_name=Alice A.\n";
    assert!(
        out.contains(&format!("resumed the stored session\n{shown}")),
        "{out}"
    );
    assert!(out.contains(&format!("> profile\n{shown}")), "{out}");
    assert!(
        out.contains("> profile-unset display_name\nremoved display_name from your profile\n"),
        "{out}"
    );
    assert!(
        out.contains("> profile\nrole: educator; profile: (empty)\n"),
        "{out}"
    );
    let _ = std::fs::remove_file(&tok);
}
