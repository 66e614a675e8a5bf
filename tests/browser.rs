//! The session page, `examples/web/index.html` with its client `examples/web/sessiond.js`,
//! in a real browser against the real `sessiond` binary: this test starts two servers with
//! a WebSocket listener (`--ws-listen 127.0.0.1:0`, any Origin allowed: the page is served
//! from a random port), runs `examples/web/browser/session_page.mjs` (Playwright, from
//! `examples/web/node_modules`, driving Debian's chromium) with their URLs in the
//! environment, and fails, printing node's output, when it fails. The screenshots go to
//! `browser-artifacts` under Cargo's target tmp dir (printed).
//!
//! The servers: default policies (one session per account, a new login revokes the old
//! one, a second connection resuming a session in use is refused) with quick heartbeats
//! (`SESSIOND_WS_URL`, `SESSIOND_ADMIN_PASSWORD`); and no session limit, for the device
//! list (`SESSIOND_MULTI_WS_URL`); and TLS, so that the page speaks `wss://`
//! (`SESSIOND_WSS_URL`).
//!
//! Needs `node` (20 or later), `/usr/bin/chromium` and `npm ci` run in `examples/web`.
//! Without them the test says why and passes, unless `SESSIOND_REQUIRE_BROWSER=1` (as
//! `.ci/run` sets), which makes it fail instead. `SESSIOND_NODE` and `SESSIOND_CHROMIUM`
//! name other executables.
#![allow(clippy::disallowed_methods)] // this test runs real servers and a browser in real time

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::process::{run_suite, unavailable, Served};

/// A WebSocket listener open to any Origin; heartbeats every second so the page shows them
/// at once (`Served` adds the generous login limits).
const COMMON: &[&str] = &[
    "--heartbeat-interval",
    "1s",
    "--heartbeat-timeout",
    "5s",
    "--ws-listen",
    "127.0.0.1:0",
    "--ws-allowed-origin",
    "*",
];

/// The whole browser run, bounded: it takes some seconds.
const NODE_TIMEOUT: Duration = Duration::from_secs(180);

/// Why the browser test cannot run here, if it cannot.
fn missing_prerequisite(root: &Path, node: &str, chromium: &str) -> Option<String> {
    match Command::new(node).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        other => return Some(format!("`{node} --version` failed: {other:?}")),
    }
    if !Path::new(chromium).exists() {
        return Some(format!(
            "no browser at {chromium} (apt-get install chromium)"
        ));
    }
    let playwright = root.join("examples/web/node_modules/playwright-core");
    if !playwright.join("package.json").exists() {
        return Some(format!(
            "{} is missing (run `npm ci` in examples/web)",
            playwright.display()
        ));
    }
    None
}

#[test]
fn the_session_page_works_in_a_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let node = std::env::var("SESSIOND_NODE").unwrap_or_else(|_| "node".to_owned());
    let chromium =
        std::env::var("SESSIOND_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    if let Some(why) = missing_prerequisite(root, &node, &chromium) {
        return unavailable("the browser tests", &why);
    }

    let main = Served::start("web-main", COMMON);
    let multi_args: Vec<&str> = COMMON
        .iter()
        .copied()
        .chain(["--max-sessions-per-user", "0"])
        .collect();
    let multi = Served::start("web-multi", &multi_args);
    // wss://: the same listener inside TLS, with a certificate made here (the browser
    // context of that scenario ignores that no CA it knows signed it).
    let pki = common::pki::Pki::new("web-wss");
    let (cert, key) = (pki.path("cert.pem"), pki.path("key.pem"));
    let tls_args: Vec<&str> = COMMON
        .iter()
        .copied()
        .chain([
            "--tls-cert",
            cert.to_str().expect("UTF-8 path"),
            "--tls-key",
            key.to_str().expect("UTF-8 path"),
        ])
        .collect();
    let tls = Served::start("web-wss", &tls_args);
    assert!(tls.ws_url().starts_with("wss://"), "{}", tls.ws_url());

    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-artifacts");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).expect("artifacts directory");

    let mut cmd = Command::new(&node);
    cmd.arg(root.join("examples/web/browser/session_page.mjs"))
        .current_dir(root)
        .env("SESSIOND_WS_URL", main.ws_url())
        .env("SESSIOND_ADMIN_PASSWORD", main.password())
        .env("SESSIOND_MULTI_WS_URL", multi.ws_url())
        .env("SESSIOND_WSS_URL", tls.ws_url())
        .env("SESSIOND_ARTIFACTS", &artifacts)
        .env("SESSIOND_CHROMIUM", &chromium);
    let what = format!("the browser tests (screenshots in {})", artifacts.display());
    let output = run_suite(&mut cmd, "browser", &what, NODE_TIMEOUT);
    assert!(
        output.contains(" 0 failed, 0 skipped"),
        "the browser tests did not all run:\n{output}"
    );
}
