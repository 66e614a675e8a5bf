//! The C ABI from C: `examples/c/harness.c` is compiled with the system C compiler against
//! the static library and run against live servers, over TCP and over TLS, natively and
//! under valgrind (leaks and memory errors; `examples/c/valgrind.supp` silences ring's
//! assembly). `.ci/run` installs valgrind and sets `SESSIOND_REQUIRE_VALGRIND=1`, so CI
//! cannot skip it. Beside it: the header's constants, functions and struct layouts against
//! `src/ffi.rs`, and the session list read past one page.
//!
//! Each harness run gets its own servers: the main one (registration open, any number of
//! sessions per account), one whose sessions last a second, a `sessiond` process the
//! harness asks this test to stop and kill, and a listener that answers with garbage.
#![allow(clippy::disallowed_methods)]
// real servers, real time
// Design: the crate denies `unsafe`; this file, the C ABI's test, calls that ABI from Rust
// too (the session list past one page), which takes `unsafe` exactly as a C caller's code
// would. Each block says why it holds.
#![allow(unsafe_code)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_char, CStr, CString};
use std::io::{BufRead, BufReader, Read, Write};
use std::mem::{offset_of, size_of};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::pki::Pki;
use common::process::{fresh_dir, Running};
use common::{TestServer, ALICE_PW};
use sessiond::ffi::{self, SessiondEvent, SessiondIdentity, SessiondSession};

/// Checks the harness makes in one run (every section: a run that skips one, or stops
/// early, makes fewer). TLS adds its refusals.
const CHECKS_OVER_TCP: usize = 1696;
const CHECKS_OVER_TLS: usize = 1710;

/// The sections of a run, in order (TLS adds "TLS refusals").
const SECTIONS: &[&str] = &[
    "versions and status words",
    "bad arguments",
    "connections that cannot be made",
    "life cycle",
    "resume",
    "session attributes",
    "registration",
    "session list and its total",
    "revoked by another session",
    "password change",
    "revoking this very session",
    "logout of every session",
    "a peer that does not speak the protocol",
    "a server that stops answering",
    "a killed server",
    "expired sessions",
];

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// target/<profile>/, found from this test binary's path (target/<profile>/deps/...).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// The compiled harness, built once per test binary.
fn harness() -> &'static Path {
    static HARNESS: OnceLock<PathBuf> = OnceLock::new();
    HARNESS.get_or_init(build_harness)
}

/// The static library built with this test binary, then the harness compiled against it.
///
/// Design: `cargo test` compiles the library once for all its crate types, so
/// `deps/libsessiond.a` comes from the very rustc run that made the rlib this test links;
/// the copy in the profile directory is refreshed only by `cargo build` and may be older.
/// Only when the archive is missing (a test binary built some other way) does this run
/// `cargo build --lib` for it.
fn build_harness() -> PathBuf {
    let profile = profile_dir();
    let mut lib = profile.join("deps/libsessiond.a");
    if !lib.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--lib", "--quiet"])
            .current_dir(manifest())
            // the target directory this test runs from, whether it is the default or not
            .env("CARGO_TARGET_DIR", profile.parent().unwrap());
        if profile.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let res = build.output().expect("cargo build --lib");
        assert!(
            res.status.success(),
            "cargo build --lib failed:\n{}",
            String::from_utf8_lossy(&res.stderr)
        );
        lib = profile.join("libsessiond.a");
    }
    assert!(lib.exists(), "{} missing", lib.display());
    let src = manifest().join("examples/c");
    // Built beside the library, replaced atomically: a run of another test process that
    // is still using the old one keeps it.
    let out = profile.join("sessiond-c-harness");
    let tmp = profile.join(format!("sessiond-c-harness.{}", std::process::id()));
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
        .arg(&tmp)
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
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// Whether to run under valgrind too: when it is installed, and always in CI.
fn valgrind_available() -> bool {
    let there = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !there {
        assert!(
            std::env::var_os("SESSIOND_REQUIRE_VALGRIND").is_none(),
            "valgrind is required (SESSIOND_REQUIRE_VALGRIND) but not installed"
        );
        eprintln!("valgrind not installed: the leak and memory check is skipped");
    }
    there
}

/// A TCP listener that answers every connection with bytes that are not frames (an HTTP
/// error, as a web server on the wrong port would), then reads until the peer closes, so
/// that no reset can overtake the garbage.
struct Garbage {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Garbage {
    fn start() -> Garbage {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut s) = conn else { continue };
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                let mut sink = [0u8; 1024];
                while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
            }
        });
        Garbage {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Garbage {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes `accept`
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends `signal` (STOP, CONT) to a process.
fn signal(pid: u32, signal: &str) {
    let st = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success(), "kill -{signal} {pid}");
}

/// What one harness run printed.
struct Run {
    lines: Vec<String>,
    stderr: String,
    code: Option<i32>,
}

/// Starts the servers of one run and runs the harness against them (under valgrind when
/// `valgrind`), doing what it asks on its CONTROL lines.
fn run_harness(tls: bool, valgrind: bool) -> Run {
    let tag = format!(
        "c-{}-{}",
        if tls { "tls" } else { "tcp" },
        if valgrind { "vg" } else { "native" }
    );
    let pki = tls.then(|| (Pki::new(&tag), Pki::new(&format!("{tag}-other"))));
    let server_tls = || {
        pki.as_ref().map(|(p, _)| {
            sessiond::tls::server_config(&p.path("cert.pem"), &p.path("key.pem")).unwrap()
        })
    };
    let main_tls = server_tls();
    let main = TestServer::start_with(|c| {
        c.tls = main_tls;
        c.engine.registration_open = true;
        c.engine.max_sessions_per_user = 0;
    });
    let expiry_tls = server_tls();
    let expiry = TestServer::start_with(|c| {
        c.tls = expiry_tls;
        c.engine.max_sessions_per_user = 0;
        c.engine.session_lifetime = Duration::from_secs(1);
    });
    let garbage = Garbage::start();
    let dir = fresh_dir(&tag);
    let mut flags = vec![
        "--heartbeat-interval".to_owned(),
        "100ms".into(),
        "--heartbeat-timeout".into(),
        "1s".into(),
    ];
    if let Some((p, _)) = &pki {
        for (flag, file) in [("--tls-cert", "cert.pem"), ("--tls-key", "key.pem")] {
            flags.push(flag.into());
            flags.push(p.path(file).display().to_string());
        }
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut control = Running::start_with(&dir, &flags);
    let control_pw = control
        .password
        .clone()
        .expect("the admin's first password");

    let mut cmd = if valgrind {
        let mut c = Command::new("valgrind");
        c.args([
            "--leak-check=full",
            "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=99",
            "--quiet",
        ])
        .arg(format!(
            "--suppressions={}",
            manifest().join("examples/c/valgrind.supp").display()
        ))
        .arg(harness());
        c
    } else {
        Command::new(harness())
    };
    cmd.args([&main.addr.to_string(), "alice", ALICE_PW])
        .env("SESSIOND_EXPIRY_ADDR", expiry.addr.to_string())
        .env("SESSIOND_GARBAGE_ADDR", garbage.addr.to_string())
        .env("SESSIOND_CONTROL_ADDR", &control.addr)
        .env("SESSIOND_CONTROL_USER", "admin")
        .env("SESSIOND_CONTROL_PASSWORD", &control_pw)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some((p, other)) = &pki {
        cmd.env("SESSIOND_CA", p.path("ca.pem"))
            .env("SESSIOND_OTHER_CA", other.path("ca.pem"));
    }
    let mut child = cmd.spawn().expect("run the harness");
    let pid = child.id();
    // A harness that hangs is killed rather than holding the test up for ever.
    let finished = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let finished = finished.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(180);
            while !finished.load(Ordering::SeqCst) {
                if Instant::now() > deadline {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        match line.strip_prefix("CONTROL ") {
            Some("stop") => signal(control.child.id(), "STOP"),
            Some("cont") => signal(control.child.id(), "CONT"),
            Some("kill") => {
                control.child.kill().unwrap();
                control.child.wait().unwrap();
            }
            Some(other) => panic!("unknown CONTROL request {other:?}"),
            None => {
                lines.push(line);
                continue;
            }
        }
        writeln!(stdin, "done").unwrap();
    }
    let status = child.wait().unwrap();
    finished.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        lines,
        stderr: err_reader.join().unwrap(),
        code: status.code(),
    }
}

/// Runs the harness over one transport, natively and (at the same time) under valgrind,
/// and checks that every check ran and passed.
fn harness_passes(tls: bool) {
    let valgrind = valgrind_available();
    harness(); // built once, before the runs start
    let (native, checked) = std::thread::scope(|s| {
        let checked = valgrind.then(|| s.spawn(|| run_harness(tls, true)));
        let native = run_harness(tls, false);
        (native, checked.map(|t| t.join().unwrap()))
    });
    let want = if tls {
        CHECKS_OVER_TLS
    } else {
        CHECKS_OVER_TCP
    };
    let mut sections = SECTIONS.to_vec();
    if tls {
        sections.insert(3, "TLS refusals");
    }
    for (how, run) in [("natively", Some(native)), ("under valgrind", checked)] {
        let Some(run) = run else { continue };
        let out = run.lines.join("\n");
        let report = format!("harness {how} ({:?}):\n{out}\n{}", run.code, run.stderr);
        assert_eq!(run.code, Some(0), "{report}");
        assert!(
            !out.contains("FAIL") && !out.contains("skipped:"),
            "{report}"
        );
        let transport = if tls {
            "transport: TLS"
        } else {
            "transport: TCP"
        };
        assert_eq!(run.lines.first().map(String::as_str), Some(transport));
        let ran: Vec<&str> = run
            .lines
            .iter()
            .filter_map(|l| l.strip_prefix("== "))
            .collect();
        assert_eq!(ran, sections, "{report}");
        let last = run.lines.last().map(String::as_str);
        assert_eq!(
            last,
            Some(format!("{want} checks, 0 failed").as_str()),
            "{report}"
        );
        for l in ["logged in", "logged out", "disconnected"] {
            assert!(run.lines.iter().any(|x| x == l), "{l:?} missing: {report}");
        }
        // nothing secret on any output
        assert!(!out.contains(ALICE_PW) && !run.stderr.contains(ALICE_PW));
    }
}

#[test]
fn the_c_harness_passes_every_check_over_tcp() {
    harness_passes(false);
}

#[test]
fn the_c_harness_passes_every_check_over_tls() {
    harness_passes(true);
}

/// `#define NAME VALUE` lines of the header (include guards have no value).
fn header_defines() -> BTreeMap<String, String> {
    let header = std::fs::read_to_string(manifest().join("examples/c/sessiond.h")).unwrap();
    header
        .lines()
        .filter_map(|l| l.trim().strip_prefix("#define "))
        .filter_map(|rest| {
            let mut words = rest.split_whitespace();
            let name = words.next()?;
            let value = words.next()?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

#[test]
fn the_headers_constants_are_the_librarys() {
    let defines = header_defines();
    let ours: BTreeMap<&str, i64> = ffi::HEADER_CONSTANTS.iter().copied().collect();
    for (name, value) in &defines {
        if name == "SESSIOND_VERSION" {
            let version = ffi::SESSIOND_VERSION.to_str().unwrap();
            assert_eq!(value, &format!("\"{version}\""), "{name}");
            assert_eq!(version, env!("CARGO_PKG_VERSION"));
            continue;
        }
        let number: i64 = value
            .trim_end_matches('u')
            .parse()
            .unwrap_or_else(|_| panic!("{name} = {value}: not a number"));
        assert_eq!(
            ours.get(name.as_str()),
            Some(&number),
            "{name} in the header"
        );
    }
    let in_header: BTreeSet<&str> = defines.keys().map(String::as_str).collect();
    let mut in_library: BTreeSet<&str> = ours.keys().copied().collect();
    in_library.insert("SESSIOND_VERSION");
    assert_eq!(
        in_header, in_library,
        "the header and src/ffi.rs name different constants"
    );
    // ... and HEADER_CONSTANTS holds every constant src/ffi.rs defines
    let source = std::fs::read_to_string(manifest().join("src/ffi.rs")).unwrap();
    let defined: BTreeSet<&str> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .filter_map(|rest| rest.split(':').next())
        .filter(|name| name.starts_with("SESSIOND_"))
        .collect();
    assert_eq!(
        defined, in_library,
        "src/ffi.rs and HEADER_CONSTANTS differ"
    );
    // a status's name is its constant's
    for (name, value) in ffi::HEADER_CONSTANTS {
        let is_status = name.starts_with("SESSIOND_ERR_")
            || *name == "SESSIOND_OK"
            || *name == "SESSIOND_NO_EVENT"
            || *name == "SESSIOND_NOT_SET";
        if is_status {
            let got = ffi::sessiond_status_name(*value as i32);
            // SAFETY: a static NUL-terminated string from the library.
            assert_eq!(unsafe { CStr::from_ptr(got) }.to_str().unwrap(), *name);
        }
    }
}

#[test]
fn the_headers_functions_are_the_librarys() {
    let header = std::fs::read_to_string(manifest().join("examples/c/sessiond.h")).unwrap();
    let declared: BTreeSet<&str> = header
        .lines()
        .filter(|l| {
            l.starts_with("int ") || l.starts_with("void ") || l.starts_with("const char *")
        })
        .filter_map(|l| l.split('(').next()?.rsplit([' ', '*']).next())
        .collect();
    let source = std::fs::read_to_string(manifest().join("src/ffi.rs")).unwrap();
    let exported: BTreeSet<&str> = source
        .lines()
        .filter_map(|l| l.split_once("extern \"C\" fn ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split('(').next())
        .collect();
    assert!(exported.len() >= 20, "{exported:?}");
    assert_eq!(declared, exported);
}

#[test]
fn the_headers_structs_have_the_librarys_layout() {
    macro_rules! layout {
        ($name:literal, $t:ty, $($f:ident),+) => {{
            let mut s = format!("{} size={}", $name, size_of::<$t>());
            $(s.push_str(&format!(" {}={}", stringify!($f), offset_of!($t, $f)));)+
            s
        }};
    }
    let want = [
        layout!(
            "sessiond_session",
            SessiondSession,
            session_id,
            current,
            connected,
            created_ms,
            last_active_ms,
            expires_ms,
            client,
            platform,
            address
        ),
        layout!(
            "sessiond_identity",
            SessiondIdentity,
            session_id,
            user_id,
            role,
            username,
            user_created_ms,
            last_login_ms,
            session_created_ms,
            session_expires_ms,
            idle_expiry_ms,
            heartbeat_interval_ms,
            heartbeat_timeout_ms
        ),
        layout!(
            "sessiond_event",
            SessiondEvent,
            kind,
            reason,
            session_id,
            detail
        ),
    ];
    let out = Command::new(harness()).arg("--layout").output().unwrap();
    assert!(out.status.success());
    let got = String::from_utf8(out.stdout).unwrap();
    assert_eq!(got.lines().collect::<Vec<_>>(), want);
}

/// A Rust view of the ABI, for the test below.
fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

#[test]
fn the_session_list_reads_every_page() {
    const SESSIONS: usize = 105; // more than one SESSION_LIST page (100)
    let server = TestServer::start_with(|c| {
        c.engine.max_sessions_per_user = 0;
        c.engine.policy.address_burst = 1_000;
        c.engine.policy.address_rate_per_min = 100_000;
    });
    for i in 1..SESSIONS {
        // the connection closes; the session lives on, detached
        let _ = server.login_as("alice", ALICE_PW, &format!("d{i}"));
    }
    let addr = c(&server.addr.to_string());
    let mut h = std::ptr::null_mut();
    let blank = || SessiondSession {
        session_id: 0,
        current: 0,
        connected: 0,
        created_ms: 0,
        last_active_ms: 0,
        expires_ms: 0,
        client: [0; ffi::SESSIOND_TEXT],
        platform: [0; ffi::SESSIOND_TEXT],
        address: [0; ffi::SESSIOND_TEXT],
    };
    let mut all: Vec<SessiondSession> = (0..200).map(|_| blank()).collect();
    let mut some: Vec<SessiondSession> = (0..101).map(|_| blank()).collect();
    let (mut n, mut total) = (0usize, 0usize);
    // SAFETY: valid C strings, out-pointers and arrays of the capacities passed; the
    // handle is freed once, at the end.
    unsafe {
        assert_eq!(ffi::sessiond_connect(addr.as_ptr(), 5000, &mut h), 0);
        let login = ffi::sessiond_login(
            h,
            c("alice").as_ptr(),
            c(ALICE_PW).as_ptr(),
            c("pager").as_ptr(),
            c("rust").as_ptr(),
        );
        assert_eq!(login, 0);
        let st = ffi::sessiond_list_sessions(h, all.as_mut_ptr(), all.len(), &mut n, &mut total);
        assert_eq!((st, n, total), (0, SESSIONS, SESSIONS));
        let st = ffi::sessiond_list_sessions(h, some.as_mut_ptr(), some.len(), &mut n, &mut total);
        assert_eq!((st, n, total), (0, 101, SESSIONS));
        let st = ffi::sessiond_list_sessions(h, std::ptr::null_mut(), 0, &mut n, &mut total);
        assert_eq!((st, n, total), (0, 0, SESSIONS));
        ffi::sessiond_free(h);
    }
    let ids: BTreeSet<u64> = all[..SESSIONS].iter().map(|s| s.session_id).collect();
    assert_eq!(ids.len(), SESSIONS, "every session once");
    assert!(all[..SESSIONS]
        .windows(2)
        .all(|w| w[0].created_ms <= w[1].created_ms));
    let cur: Vec<usize> = (0..SESSIONS).filter(|&i| all[i].current == 1).collect();
    assert_eq!(cur, [SESSIONS - 1], "the newest is this handle's");
    // SAFETY: `fill` NUL-terminates every text field.
    let name = |s: &SessiondSession| unsafe { CStr::from_ptr(s.client.as_ptr() as *const c_char) };
    assert_eq!(name(&all[0]).to_str().unwrap(), "d1");
    assert_eq!(name(&all[SESSIONS - 1]).to_str().unwrap(), "pager");
    assert!((0..101).all(|i| some[i].session_id == all[i].session_id));
}
