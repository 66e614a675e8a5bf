//! SIGHUP (issue 19, point 2): the certificate and key, the limits and the log filter are
//! read again from the --config file and taken without dropping a connection; what changed
//! is logged; a bad file changes nothing and never stops the server.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::live::Live;
use common::pki::Pki;
use common::process::fresh_dir;
use sessiond::client::{Client, LoginOutcome};
use sessiond::protocol::LoginFailureReason;
use sessiond::tls::{client_config, Trust};

const LIMIT: Duration = Duration::from_secs(20);

fn hup(server: &Live) {
    let st = Command::new("kill")
        .args(["-HUP", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// The server, started on `config`: it and its address, and the admin password.
fn start(config: &Path) -> (Live, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sessiond"));
    cmd.args(["--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info");
    let server = Live::spawn(&mut cmd);
    let out = server.wait_for("sessiond: listening on ", LIMIT);
    let (addr, password) = common::process::address_and_password(&out);
    (server, addr, password)
}

fn tls_client(addr: &str, ca: &Path) -> Result<Client, sessiond::client::ClientError> {
    let trust = client_config(&Trust::CaFile(ca.to_path_buf())).unwrap();
    Client::connect_tls(addr, "localhost", trust, Duration::from_secs(5))
}

fn login(c: &mut Client, pw: &str) -> LoginOutcome {
    c.login("admin", pw, "t", "p").unwrap()
}

#[test]
fn sighup_takes_a_new_certificate_while_old_connections_go_on() {
    let dir = fresh_dir("reload-tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (one, two) = (Pki::new("reload-one"), Pki::new("reload-two"));
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::copy(one.path("cert.pem"), &cert).unwrap();
    std::fs::copy(one.path("key.pem"), &key).unwrap();
    let config = dir.join("sessiond.toml");
    let settings = |extra: &str| {
        format!(
            "listen = \"127.0.0.1:0\"\ndata-dir = \"{}\"\niterations = 1000\n\
             max-sessions-per-user = 0\ntls-cert = \"{}\"\ntls-key = \"{}\"\n{extra}",
            dir.join("data").display(),
            cert.display(),
            key.display()
        )
    };
    std::fs::write(&config, settings("")).unwrap();
    let (server, addr, pw) = start(&config);
    let mut old = tls_client(&addr, &one.path("ca.pem")).unwrap();
    assert!(matches!(login(&mut old, &pw), LoginOutcome::Success(_)));

    // the second certificate, a daily limit and a debug filter, then SIGHUP
    std::fs::copy(two.path("cert.pem"), &cert).unwrap();
    std::fs::copy(two.path("key.pem"), &key).unwrap();
    std::fs::write(
        &config,
        settings("daily-login-limit = 2\nlog-level = \"debug\"\n"),
    )
    .unwrap();
    hup(&server);
    let err = server.wait_for_stderr("SIGHUP: reloaded", 1, LIMIT);
    assert!(err.contains("TLS certificate and key: reloaded"), "{err}");
    assert!(err.contains("policy.daily_logins: 0 -> 2"), "{err}");
    assert!(err.contains("log filter: info -> debug"), "{err}");

    // the old connection goes on, on the first certificate
    old.heartbeat().expect("the old connection is still served");
    // a new one gets the second certificate: trusting the first CA fails, the second works
    assert!(tls_client(&addr, &one.path("ca.pem")).is_err());
    let mut new = tls_client(&addr, &two.path("ca.pem")).unwrap();
    // the new daily limit holds (logins are counted from when a limit is on): two more
    // logins today, and the next is refused
    assert!(matches!(login(&mut new, &pw), LoginOutcome::Success(_)));
    let mut c = tls_client(&addr, &two.path("ca.pem")).unwrap();
    assert!(matches!(login(&mut c, &pw), LoginOutcome::Success(_)));
    let mut c = tls_client(&addr, &two.path("ca.pem")).unwrap();
    match login(&mut c, &pw) {
        LoginOutcome::Failure(f) => assert_eq!(f.reason, LoginFailureReason::DailyLimit),
        other => panic!("{other:?}"),
    }
    old.heartbeat().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_reload_changes_nothing_and_the_server_goes_on() {
    let dir = fresh_dir("reload-bad");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("sessiond.toml");
    let good = format!(
        "listen = \"127.0.0.1:0\"\ndata-dir = \"{}\"\niterations = 1000\nmax-connections = 50\n",
        dir.join("data").display()
    );
    std::fs::write(&config, &good).unwrap();
    let (server, addr, pw) = start(&config);
    let mut c = Client::connect(addr.as_str(), Duration::from_secs(5)).unwrap();
    assert!(matches!(login(&mut c, &pw), LoginOutcome::Success(_)));
    for (n, bad) in [
        (1, format!("{good}max-frame = 10\n")),
        (2, format!("{good}nonsense = 1\n")),
        (
            3,
            format!("{good}tls-cert = \"/nonexistent.pem\"\ntls-key = \"/nonexistent.pem\"\n"),
        ),
    ] {
        std::fs::write(&config, bad).unwrap();
        hup(&server);
        let err = server.wait_for_stderr("reload failed, nothing changed", n, LIMIT);
        c.heartbeat().expect("served through a failed reload");
        assert!(!err.contains("SIGHUP: reloaded"), "{err}");
    }
    let err = server.wait_for_stderr("reload failed", 3, LIMIT);
    assert!(err.contains("invalid value '10' for '--max-frame"), "{err}");
    assert!(err.contains("unknown option `nonsense`"), "{err}");
    assert!(err.contains("/nonexistent.pem"), "{err}");
    // a setting only a restart changes is named, and the rest is taken
    std::fs::write(
        &config,
        good.replace("127.0.0.1:0", "127.0.0.1:1")
            .replace("= 50", "= 40"),
    )
    .unwrap();
    hup(&server);
    let err = server.wait_for_stderr("SIGHUP: reloaded", 1, LIMIT);
    assert!(err.contains("max_connections: 50 -> 40"), "{err}");
    let err = server.wait_for_stderr("kept until a restart", 1, LIMIT);
    assert!(err.contains("listen: 127.0.0.1:0 -> 127.0.0.1:1"), "{err}");
    c.heartbeat().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
