//! `examples/client.rs` in script mode, as a shell or C harness would drive it: one result
//! line per command and an exit status per class of failure (documented in the example).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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
