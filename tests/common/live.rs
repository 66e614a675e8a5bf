//! A child process (an example client) driven from a test: its stdin at hand, its stdout
//! and stderr collected as they come, every wait bounded.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running example with its stdin at hand and its stdout and stderr collected as they
/// come; killed on drop.
pub struct Live {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Live {
    pub fn spawn(cmd: &mut Command) -> Live {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the example");
        let collect = |mut from: Box<dyn Read + Send>| {
            let buf = Arc::new(Mutex::new(String::new()));
            let to = Arc::clone(&buf);
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = from.read(&mut chunk) {
                    to.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            });
            buf
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Live {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
        }
    }

    /// Closes its stdin (it reads end of file).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    pub fn output(&self) -> (String, String) {
        (
            self.stdout.lock().unwrap().clone(),
            self.stderr.lock().unwrap().clone(),
        )
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits (bounded) until stderr holds `pattern` `n` times; stderr so far.
    pub fn wait_for_stderr(&self, pattern: &str, n: usize, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let (out, err) = self.output();
            if err.matches(pattern).count() >= n {
                return err;
            }
            assert!(
                Instant::now() < deadline,
                "no {pattern:?} x{n} on stderr within {limit:?}; stdout {out:?}, stderr {err:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (bounded) until stdout contains `pattern`; stdout so far.
    pub fn wait_for(&self, pattern: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let (out, err) = self.output();
            if out.contains(pattern) {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "no {pattern:?} within {limit:?}; stdout {out:?}, stderr {err:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Waits (bounded) for the exit; the status and everything printed.
    pub fn wait_output(&mut self, limit: Duration) -> Output {
        let status = self.wait_exit(limit);
        let (stdout, stderr) = self.output();
        Output {
            status,
            stdout: stdout.into_bytes(),
            stderr: stderr.into_bytes(),
        }
    }

    /// Waits (bounded) for the exit, and for the output to be read to its end.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // the collecting threads end at EOF, right after the exit
                std::thread::sleep(Duration::from_millis(50));
                return st;
            }
            let (out, err) = self.output();
            assert!(
                Instant::now() < deadline,
                "did not exit within {limit:?}; stdout {out:?}, stderr {err:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether util-linux `script` (2.35 or later) is here to give a child a terminal. Without
/// it a test skips, saying so, unless `SESSIOND_REQUIRE_SCRIPT` is set (as `.ci/run`
/// does, which installs it): then its absence fails the test.
pub fn has_script() -> bool {
    let here = Command::new("script")
        .args(["-qe", "-E", "always", "-c", "true", "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !here {
        assert!(
            std::env::var_os("SESSIOND_REQUIRE_SCRIPT").is_none(),
            "util-linux `script` (>= 2.35) is required here"
        );
        eprintln!("skipped: no util-linux `script` (>= 2.35) to make a terminal");
    }
    here
}
