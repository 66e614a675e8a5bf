//! The C ABI from C: `examples/c/harness.c` is compiled with the system C compiler against
//! the static library and run against a live server; under valgrind's leak check too when
//! valgrind is installed (`.ci/run` installs it and sets `SESSIOND_REQUIRE_VALGRIND=1`, so
//! CI cannot skip it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestServer, ALICE_PW};

/// target/<profile>/, found from this test binary's path (target/<profile>/deps/...).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// Builds the static library (cargo already built it for the tests when the crate types
/// include it; this makes sure) and compiles the harness; returns its path.
fn build_harness() -> PathBuf {
    let lib = profile_dir().join("libsessiond.a");
    if !lib.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--lib"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build --lib");
        assert!(st.success());
    }
    assert!(lib.exists(), "{} missing", lib.display());
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/c");
    let out = std::env::temp_dir().join(format!("sessiond-c-harness-{}", std::process::id()));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let res = Command::new(&cc)
        .args([
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-g",
            "-o",
        ])
        .arg(&out)
        .arg(src.join("harness.c"))
        .arg(format!("-I{}", src.display()))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?}: {e} (.ci/run installs gcc)"));
    assert!(
        res.status.success(),
        "C compile failed:\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    out
}

#[test]
fn the_c_harness_runs_the_whole_life_cycle_and_leaks_nothing() {
    let harness = build_harness();
    let server = TestServer::start();
    let addr = server.addr.to_string();

    let out = Command::new(&harness)
        .args([&addr, "alice", ALICE_PW])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "harness failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "connected");
    assert_eq!(lines[1], "logged in, token has 64 hex digits");
    assert_eq!(lines[2], "3 heartbeats acknowledged");
    assert!(lines[3].starts_with("session ") && lines[3].contains("c-harness c99 127.0.0.1:"));
    assert!(lines[3].ends_with("(current)"));
    assert_eq!(
        lines[4..],
        ["1 session(s)", "logged out", "disconnected", "ok"]
    );

    // a wrong password: the failing call's status (SESSIOND_ERR_REFUSED) and its reason
    let out = Command::new(&harness)
        .args([&addr, "alice", "wrong"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("login failed: INVALID_CREDENTIALS"), "{err}");

    // over TLS, with the CA the harness is given
    let pki = common::pki::Pki::new("c");
    let cfg = sessiond::tls::server_config(&pki.path("cert.pem"), &pki.path("key.pem")).unwrap();
    let tls_server = TestServer::start_with(|c| c.tls = Some(cfg));
    let tls_addr = format!("localhost:{}", tls_server.addr.port());
    let out = Command::new(&harness)
        .args([&tls_addr, "alice", ALICE_PW])
        .env("SESSIOND_CA", pki.path("ca.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "harness over TLS failed ({:?}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // a CA that did not sign the certificate: SESSIOND_ERR_TLS (10)
    let other = common::pki::Pki::new("c-other");
    let out = Command::new(&harness)
        .args([&tls_addr, "alice", ALICE_PW])
        .env("SESSIOND_CA", other.path("ca.pem"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(10),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let valgrind = Command::new("valgrind").arg("--version").output().is_ok();
    if !valgrind {
        assert!(
            std::env::var_os("SESSIOND_REQUIRE_VALGRIND").is_none(),
            "valgrind is required (SESSIOND_REQUIRE_VALGRIND) but not installed"
        );
        eprintln!("valgrind not installed: leak check skipped");
        return;
    }
    let out = Command::new("valgrind")
        .args([
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=99",
            "--quiet",
        ])
        .arg(&harness)
        .args([&addr, "alice", ALICE_PW])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "valgrind ({:?}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&harness);
}
