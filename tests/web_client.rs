//! The JavaScript client, `examples/web/sessiond.js`, under Node against the real
//! `sessiond` binary: this test starts one server (a fresh data directory, 127.0.0.1:0, a
//! WebSocket listener on `--ws-listen 127.0.0.1:0`, the one-time admin password captured),
//! runs `node --test examples/web/test/codec.test.js examples/web/test/client.test.js`
//! with its WebSocket URL and admin password in the environment (`SESSIOND_WS_URL`,
//! `SESSIOND_ADMIN_PASSWORD`), and fails, printing node's output, when node fails.
//!
//! The server: default policies (one session per account, a new login revokes the old
//! one, a second connection resuming a session in use is refused) with quick heartbeats,
//! and login limits generous enough that the run's many logins from 127.0.0.1 are never
//! throttled. No `--ws-allowed-origin`: Node's `ws` sends no Origin, so it is let in.
//!
//! Needs `node` (20 or later) on the PATH and `npm ci` run in `examples/web` (for the `ws`
//! package). Without them the test says why and passes, unless `SESSIOND_REQUIRE_BROWSER=1`
//! (as `.ci/run` sets), which makes it fail instead. `SESSIOND_NODE` names another node.
#![allow(clippy::disallowed_methods)] // this test runs a real server and node in real time

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::process::{run_suite, unavailable, Served};

/// Heartbeats every 250 ms (so the tests see several at once) and the WebSocket listener
/// (`Served` adds the generous login limits and the quick stop).
const ARGS: &[&str] = &[
    "--heartbeat-interval",
    "250ms",
    "--heartbeat-timeout",
    "1500ms",
    "--ws-listen",
    "127.0.0.1:0",
];

/// The whole node run, bounded: it takes some seconds.
const NODE_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn the_javascript_client_passes_its_tests_against_a_live_server() {
    const WHAT: &str = "the JavaScript client tests";
    let node = std::env::var("SESSIOND_NODE").unwrap_or_else(|_| "node".to_owned());
    let version = match Command::new(&node).arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        other => {
            return unavailable(WHAT, &format!("`{node} --version` did not run: {other:?}"));
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let web = root.join("examples/web");
    if !web.join("node_modules/ws/package.json").is_file() {
        return unavailable(
            WHAT,
            &format!(
                "{} is missing: run `npm ci` in {}",
                web.join("node_modules/ws").display(),
                web.display()
            ),
        );
    }

    let server = Served::start("web-client", ARGS);
    let url = server.ws_url();
    let mut cmd = Command::new(&node);
    cmd.args(["--test", "test/codec.test.js", "test/client.test.js"])
        .current_dir(&web)
        .env("SESSIOND_WS_URL", &url)
        .env("SESSIOND_ADMIN_PASSWORD", server.password())
        .env("SESSIOND_REQUIRE_SERVER", "1")
        .env("NODE_OPTIONS", "");
    println!("node {version}, against {url}");
    let output = run_suite(&mut cmd, "js", "the JavaScript tests", NODE_TIMEOUT);
    // node --test prints TAP; a run that skipped or found nothing is not a pass here.
    assert!(
        output.contains("\n# fail 0") && !output.contains("\n# pass 0\n"),
        "no passing node --test summary in the output:\n{output}"
    );
    assert!(
        output.contains("\n# skipped 0") && !output.contains("# SKIP"),
        "some JavaScript tests were skipped:\n{output}"
    );
}
