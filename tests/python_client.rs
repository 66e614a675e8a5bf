//! The Python client, `examples/python/sessiond.py`, against the real `sessiond` binary:
//! this test starts four servers (each in a fresh data directory, on 127.0.0.1:0, with the
//! one-time admin password captured), runs `examples/python/test_sessiond.py` with their
//! addresses in the environment, and fails, printing the Python output, when it fails.
//!
//! The servers: default policies with quick heartbeats (`SESSIOND_*`); no session limit
//! and one application role, `educator` (`SESSIOND_MULTI_*`); TLS with registration closed (`SESSIOND_TLS_*`, with the CA that
//! signed its certificate and another one); sessions that last 1 s, which the Python test
//! stops with SIGTERM to see SERVER_SHUTDOWN (`SESSIOND_SHORT_*`).
//!
//! Needs `python3` (3.9 or later) on the PATH; `.ci/run` already relies on it.
//! `SESSIOND_PYTHON=/path/to/python` runs another interpreter instead.
#![allow(clippy::disallowed_methods)] // this test runs real servers in real time

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::process::{fresh_dir, run_suite, Served};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// The whole Python run, bounded: it takes a few seconds.
const PYTHON_TIMEOUT: Duration = Duration::from_secs(120);

/// `PREFIX_ADDR` and `PREFIX_ADMIN_PASSWORD` for the Python test.
fn pass_env(server: &Served, cmd: &mut Command, prefix: &str, addr: &str) {
    cmd.env(format!("{prefix}_ADDR"), addr)
        .env(format!("{prefix}_ADMIN_PASSWORD"), server.password());
}

/// A CA and a server certificate for `localhost` and 127.0.0.1 signed by it, as PEM files.
///
/// Design: not `common::pki::Pki`, whose CA and server certificate carry the same subject
/// name (rcgen's default). rustls does not mind; OpenSSL, under Python's `ssl`, takes such
/// a leaf for a self-signed certificate and refuses it. Distinct names, key usages and an
/// authority key identifier also satisfy the stricter checks of newer Pythons.
struct TestPki {
    dir: PathBuf,
}

impl TestPki {
    fn new(tag: &str) -> TestPki {
        let dir = fresh_dir(&format!("py-pki-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("sessiond test CA {tag}"));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        TestPki { dir }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

#[test]
fn the_python_client_passes_its_tests_against_live_servers() {
    let python = std::env::var("SESSIOND_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let version = Command::new(&python).arg("--version").output();
    let version = match version {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        other => panic!("{python} is needed for this test (`.ci/run` uses python3 too): {other:?}"),
    };

    let main = Served::start(
        "py-main",
        &[
            "--heartbeat-interval",
            "250ms",
            "--heartbeat-timeout",
            "1500ms",
        ],
    );
    let multi = Served::start(
        "py-multi",
        &["--max-sessions-per-user", "0", "--role", "educator"],
    );
    let pki = TestPki::new("a");
    let other_ca = TestPki::new("b");
    let (cert, key) = (pki.path("cert.pem"), pki.path("key.pem"));
    let tls = Served::start(
        "py-tls",
        &[
            "--tls-cert",
            path_str(&cert),
            "--tls-key",
            path_str(&key),
            "--registration",
            "closed",
        ],
    );
    let mut short = Served::start("py-short", &["--session-lifetime", "1s"]);

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(&python);
    cmd.arg(root.join("examples/python/test_sessiond.py"))
        .current_dir(root)
        .env("SESSIOND_REQUIRE_SERVERS", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    pass_env(&main, &mut cmd, "SESSIOND", &main.running.addr);
    pass_env(&multi, &mut cmd, "SESSIOND_MULTI", &multi.running.addr);
    // The certificate names localhost (and 127.0.0.1); the client checks the name.
    let port = tls.running.addr.rsplit(':').next().unwrap_or_default();
    pass_env(&tls, &mut cmd, "SESSIOND_TLS", &format!("localhost:{port}"));
    cmd.env("SESSIOND_TLS_CA", pki.path("ca.pem"))
        .env("SESSIOND_TLS_OTHER_CA", other_ca.path("ca.pem"));
    pass_env(&short, &mut cmd, "SESSIOND_SHORT", &short.running.addr);
    cmd.env("SESSIOND_SHORT_PID", short.running.child.id().to_string());

    println!("{version}");
    let output = run_suite(&mut cmd, "python", "the Python tests", PYTHON_TIMEOUT);
    assert!(
        output.contains("\nOK"),
        "no unittest verdict in the output:\n{output}"
    );

    // The Python test stopped this one with SIGTERM: a graceful stop exits 0.
    assert_eq!(
        short.running.wait_exit(Duration::from_secs(10)),
        Some(0),
        "sessiond after SIGTERM"
    );
}
