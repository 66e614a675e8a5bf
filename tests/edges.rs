//! Friendly edges (issue 19, point 8): a plaintext client on the TLS port is told the port
//! speaks TLS; a start warns about a plaintext listener off loopback and about a
//! certificate that has expired or expires soon; errors name their address or path.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::pki::Pki;
use common::process::{fresh_dir, Running};
use rcgen::{date_time_ymd, CertificateParams, KeyPair};
use sessiond::client::{Client, ClientError};
use sessiond::protocol::ErrorCode;

fn sessiond(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .args(args)
        .output()
        .expect("run sessiond")
}

#[test]
fn a_plaintext_client_on_the_tls_port_is_told_to_use_tls() {
    let pki = Pki::new("edges-plain");
    let dir = fresh_dir("edges-plain");
    let (cert, key) = (pki.path("cert.pem"), pki.path("key.pem"));
    let server = Running::start_with(
        &dir,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let mut c = Client::connect(server.addr.as_str(), Duration::from_secs(5)).unwrap();
    match c.login("admin", "x", "t", "p") {
        Err(ClientError::Server { failure, fatal }) => {
            assert_eq!(failure.code, ErrorCode::TlsRequired);
            assert!(fatal);
            assert!(failure.message.contains("TLS"), "{}", failure.message);
        }
        other => panic!("{other:?}"),
    }
    // and TLS on that port works
    let trust =
        sessiond::tls::client_config(&sessiond::tls::Trust::CaFile(pki.path("ca.pem"))).unwrap();
    let mut t = Client::connect_tls(
        server.addr.as_str(),
        "localhost",
        trust,
        Duration::from_secs(5),
    )
    .unwrap();
    let pw = server.password.clone().unwrap();
    assert!(t.login("admin", &pw, "t", "p").is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn certificates_near_their_end_and_plaintext_off_loopback_are_warned_about() {
    let dir = fresh_dir("edges-warn");
    std::fs::create_dir_all(&dir).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = date_time_ymd(2019, 1, 1);
    params.not_after = date_time_ymd(2020, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join("old.pem"), dir.join("old.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    let data = dir.join("data");
    let out = sessiond(&[
        "check-config",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
        "--tls-cert",
        c.to_str().unwrap(),
        "--tls-key",
        k.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "WARNING the certificate {} expired at 2020-01-01 00:00:00 UTC",
            c.display()
        )),
        "{text}"
    );
    // a fresh certificate (rcgen's default lasts years) says nothing
    let pki = Pki::new("edges-fresh");
    let out = sessiond(&[
        "check-config",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
        "--tls-cert",
        pki.path("cert.pem").to_str().unwrap(),
        "--tls-key",
        pki.path("key.pem").to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("WARNING"), "{text}");
    // plaintext on every interface (bound for a moment by the check, no traffic)
    let out = sessiond(&[
        "check-config",
        "--listen",
        "0.0.0.0:0",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("WARNING listening on 0.0.0.0:0 without TLS"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn errors_name_their_path() {
    let dir = fresh_dir("edges-path");
    std::fs::create_dir_all(&dir).unwrap();
    // a data directory that is a file
    let file = dir.join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let out = sessiond(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        file.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert_eq!(
        err.matches(&file.display().to_string()).count(),
        1,
        "said once: {err}"
    );
    // a key file that does not exist
    let pki = Pki::new("edges-path");
    let out = sessiond(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.join("data").to_str().unwrap(),
        "--tls-cert",
        pki.path("cert.pem").to_str().unwrap(),
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/key.pem"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
