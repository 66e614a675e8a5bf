//! A `sessiond` child process on 127.0.0.1:0 with a given data directory: started,
//! its stdout followed, killed (SIGKILL) and reaped on drop.
#![allow(clippy::disallowed_methods)] // this test runs a real server in real time

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sessiond::client::{Client, LoginOutcome};
use sessiond::protocol::LoginSuccess;

pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// The address it listens on.
    pub addr: String,
    /// The admin password, when this start created the account.
    pub password: Option<String>,
    /// Everything printed before "listening on".
    pub printed: Vec<String>,
}

impl Running {
    pub fn start(dir: &Path) -> Running {
        Self::start_with(dir, &[])
    }

    /// Starts with extra command-line flags.
    pub fn start_with(dir: &Path, extra: &[&str]) -> Running {
        Self::spawn(Command::new(env!("CARGO_BIN_EXE_sessiond")), dir, extra)
    }

    /// Starts with at most `nofile` open file descriptors (`ulimit -n`, then exec: the
    /// child's pid is the server's).
    pub fn start_limited(dir: &Path, nofile: u32) -> Running {
        Self::start_limited_with(dir, nofile, &[])
    }

    /// `start_limited` with extra command-line flags.
    pub fn start_limited_with(dir: &Path, nofile: u32, extra: &[&str]) -> Running {
        let mut cmd = Command::new("bash");
        cmd.args([
            "-c",
            &format!("ulimit -n {nofile} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_sessiond"),
        ]);
        Self::spawn(cmd, dir, extra)
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn terminate(&self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
    }

    /// Waits (bounded) for the process to exit; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sessiond did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(mut cmd: Command, dir: &Path, extra: &[&str]) -> Running {
        let mut child = with_test_server_args(&mut cmd, dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sessiond");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut r = Running {
            child,
            lines,
            addr: String::new(),
            password: None,
            printed: Vec::new(),
        };
        loop {
            let Ok(line) = r.lines.recv_timeout(Duration::from_secs(30)) else {
                panic!("sessiond did not start; printed {:?}", r.printed);
            };
            if let Some(addr) = line.strip_prefix("sessiond: listening on ") {
                // "ADDR" or "ADDR (TLS)"
                r.addr = addr.split_whitespace().next().unwrap_or("").to_owned();
                return r;
            }
            if let Some(p) = line.trim().strip_prefix("password: ") {
                r.password = Some(p.to_owned());
            }
            r.printed.push(line);
        }
    }

    /// The WebSocket URL the server printed (`--ws-listen`), e.g. `ws://127.0.0.1:PORT/`.
    pub fn ws_url(&self) -> Option<String> {
        self.printed.iter().find_map(|l| {
            l.strip_prefix("sessiond: websocket listening on ")
                .map(str::to_owned)
        })
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr.as_str(), Duration::from_secs(5)).expect("connect")
    }

    /// Logs in as `user` on a new connection.
    pub fn login(&self, user: &str, password: &str) -> (Client, LoginSuccess) {
        let mut c = self.client();
        match c.login(user, password, "t", "p").expect("login") {
            LoginOutcome::Success(s) => (c, s),
            other => panic!("login of {user} failed: {other:?}"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An empty directory under the temp dir, unique to this test process and `tag`.
pub fn fresh_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sessiond-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A `sessiond` binary for a client's test suite (Python, JavaScript, the browser): a fresh
/// data directory, login limits so generous that a suite's many logins from 127.0.0.1
/// are never throttled, a quick graceful stop, the one-time admin password captured;
/// killed and the directory removed on drop.
pub struct Served {
    pub running: Running,
    dir: PathBuf,
}

impl Served {
    pub fn start(tag: &str, args: &[&str]) -> Served {
        const SUITE: &[&str] = &[
            "--login-burst",
            "100000",
            "--login-rate",
            "600000",
            "--shutdown-grace",
            "500ms",
        ];
        let dir = fresh_dir(tag);
        let args: Vec<&str> = SUITE.iter().chain(args).copied().collect();
        let running = Running::start_with(&dir, &args);
        assert!(
            running.password.is_some(),
            "{tag}: no admin password printed: {:?}",
            running.printed
        );
        Served { running, dir }
    }

    /// The first admin's password.
    pub fn password(&self) -> &str {
        self.running.password.as_deref().unwrap_or_default()
    }

    /// The WebSocket URL (the server was started with `--ws-listen`).
    pub fn ws_url(&self) -> String {
        self.running
            .ws_url()
            .unwrap_or_else(|| panic!("no WebSocket URL printed: {:?}", self.running.printed))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.running.child.kill();
        let _ = self.running.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a client's test suite (`what`, for the messages): `cmd` in its own process group,
/// its output (stdout and stderr) into a log file and then printed, the whole group killed
/// after `limit`. Fails the test if the suite was killed or failed; returns its output for
/// the caller's checks of the suite's own verdict.
pub fn run_suite(cmd: &mut Command, tag: &str, what: &str, limit: Duration) -> String {
    use std::os::unix::process::CommandExt;
    let log_path = std::env::temp_dir().join(format!("sessiond-{tag}-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).expect("log file");
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        // A timeout kills what the suite started with it (a browser).
        .process_group(0);
    let started = std::time::Instant::now();
    let mut child = cmd.spawn().expect("spawn the test suite");
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break Some(st);
        }
        if started.elapsed() > limit {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    println!(
        "{what} ran for {:.1} s:\n{output}",
        started.elapsed().as_secs_f64()
    );
    let Some(status) = status else {
        panic!("{what} took over {limit:?} and were killed:\n{output}");
    };
    assert!(status.success(), "{what} failed ({status}):\n{output}");
    output
}

/// A client suite that cannot run on this machine: passes, saying why, unless
/// `SESSIOND_REQUIRE_BROWSER=1` (`.ci/run`), which makes it fail.
pub fn unavailable(what: &str, why: &str) {
    let required = std::env::var("SESSIOND_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "SESSIOND_REQUIRE_BROWSER=1, but {what} cannot run: {why}"
    );
    println!("skipping {what}: {why}");
}

/// `sessiond` as the tests run a server: on 127.0.0.1:0, quick hashes, data in `dir`
/// (more arguments may follow).
pub fn server_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sessiond"));
    with_test_server_args(&mut cmd, dir);
    cmd
}

fn with_test_server_args<'a>(cmd: &'a mut Command, dir: &Path) -> &'a mut Command {
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--iterations",
        "1000",
        "--data-dir",
    ])
    .arg(dir)
}

/// Runs `sessiond ARGS` to completion with `stdin`, returning (status, stdout, stderr).
pub fn sessiond(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The address (`sessiond: listening on ADDR`) and the first admin's password
/// (`password: ...`) in what a first start printed.
pub fn address_and_password(printed: &str) -> (String, String) {
    let addr = printed
        .lines()
        .find_map(|l| l.strip_prefix("sessiond: listening on "))
        .and_then(|l| l.split_whitespace().next())
        .expect("a listening line")
        .to_owned();
    let password = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .expect("a password line")
        .to_owned();
    (addr, password)
}
