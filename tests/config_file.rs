//! `--config FILE` and `sessiond check-config` (issue 19, points 1 and 7): the file's keys
//! are the command-line options, flags override it, errors name the file, the annotated
//! example holds every option at its default, and a start that cannot listen or load its
//! TLS files creates nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap::{ArgAction, CommandFactory};
use common::pki::Pki;
use common::process::fresh_dir;
use sessiond::cli::{self, Cli, Options};

const EXAMPLE: &str = include_str!("../examples/sessiond.toml");

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn options(args: &[&str]) -> Result<Options, String> {
    match cli::parse(args) {
        Ok(cli::Command::Run(o)) => Ok(*o),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.to_string()),
    }
}

fn sessiond(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .args(args)
        .output()
        .expect("run sessiond")
}

/// The long options of `sessiond`, but --config, --help and --version.
fn server_options() -> Vec<String> {
    Cli::command()
        .get_arguments()
        .filter(|a| !matches!(a.get_action(), ArgAction::Help | ArgAction::Version))
        .filter_map(|a| a.get_long().map(str::to_owned))
        .filter(|l| l != "config")
        .collect()
}

/// The example's commented-out settings: `# key = value` with a key of option letters.
fn setting_lines() -> impl Iterator<Item = (&'static str, &'static str)> {
    EXAMPLE
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter_map(|l| l.split_once(" = "))
        .filter(|(k, _)| {
            k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[test]
fn the_example_holds_every_option_at_its_default() {
    let keys: Vec<String> = setting_lines().map(|(k, _)| k.to_owned()).collect();
    for o in server_options() {
        assert!(keys.contains(&o), "examples/sessiond.toml lacks `{o}`");
    }
    for k in &keys {
        assert!(
            server_options().contains(k),
            "`{k}` in the example is not an option"
        );
    }
    // Uncommented (but for the options that are off by default, which it shows with an
    // illustration), the file is the defaults. hash-workers' default depends on the
    // machine: pinned on both sides.
    let off: Vec<String> = Cli::command()
        .get_arguments()
        .filter(|a| a.get_default_values().is_empty() && !a.is_hide_default_value_set())
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    assert!(off.contains(&"tls-cert".to_owned()));
    let live: String = setting_lines()
        .filter(|(k, _)| !off.iter().any(|o| o == k))
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect();
    let dir = fresh_dir("cfg-example");
    let file = write(&dir, "all.toml", &live);
    let with = options(&["--config", file.to_str().unwrap(), "--hash-workers", "1"]).unwrap();
    let without = options(&["--hash-workers", "1"]).unwrap();
    assert_eq!(format!("{with:?}"), format!("{without:?}"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flags_override_the_file_and_errors_name_it() {
    let dir = fresh_dir("cfg-override");
    let file = write(
        &dir,
        "s.toml",
        "max_connections = 5\nlisten = \"127.0.0.1:9999\"\nheartbeat-interval = \"2s\"\n",
    );
    let f = file.to_str().unwrap();
    let o = options(&["--config", f]).unwrap();
    assert_eq!(o.server.engine.max_connections, 5);
    assert_eq!(o.server.listen.port(), 9999);
    assert_eq!(o.server.engine.heartbeat_interval.as_secs(), 2);
    // a flag before or after --config wins over the file
    let o = options(&["--max-connections", "7", "--config", f]).unwrap();
    assert_eq!(o.server.engine.max_connections, 7);
    let o = options(&[&format!("--config={f}"), "--listen", "127.0.0.1:1"]).unwrap();
    assert_eq!(
        (o.server.listen.port(), o.server.engine.max_connections),
        (1, 5)
    );
    // the rules between options see both: the file's interval against the flag's timeout
    let e = options(&["--config", f, "--heartbeat-timeout", "1s"]).unwrap_err();
    assert!(e.contains("--heartbeat-timeout"), "{e}");

    for (text, says) in [
        ("max-frame = 10", "invalid value '10' for '--max-frame"),
        ("lisen = \"x\"", "unknown option `lisen`"),
        ("listen = true", "`listen` is a boolean"),
        ("[server]\nlisten = \"x\"", "unknown option `server`"),
        ("listen = ", "line 1"),
    ] {
        let bad = write(&dir, "bad.toml", text);
        let e = options(&["--config", bad.to_str().unwrap()]).unwrap_err();
        assert!(e.contains(&bad.display().to_string()), "{e}");
        assert!(e.contains(says), "{text}: {e}");
    }
    let e = options(&["--config", "/nonexistent/sessiond.toml"]).unwrap_err();
    assert!(
        e.contains("cannot read the config file /nonexistent/sessiond.toml"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_config_says_what_a_start_would_meet() {
    let dir = fresh_dir("cfg-check");
    let data = dir.join("data");
    let file = write(
        &dir,
        "s.toml",
        &format!(
            "listen = \"127.0.0.1:0\"\ndata-dir = \"{}\"\nmax-connections = 77\n",
            data.display()
        ),
    );
    let out = sessiond(&["check-config", "--config", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("ok      listen: 127.0.0.1:"), "{text}");
    assert!(text.contains("77 connections"), "{text}");
    assert!(text.ends_with("sessiond check-config: ok\n"), "{text}");

    // an address in use and TLS files that do not exist: each said, exit status 2
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = sessiond(&[
        "check-config",
        "--config",
        file.to_str().unwrap(),
        "--listen",
        &addr,
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!("FAILED  listen: cannot listen on {addr}")),
        "{text}"
    );
    assert!(
        text.contains("FAILED  tls: TLS: /nonexistent/cert.pem"),
        "{text}"
    );
    assert!(text.contains("a start would fail"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 19, point 7: a first start that cannot listen, or whose key does not match its
/// certificate, has created no account and printed no password.
#[test]
fn a_first_start_that_fails_creates_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let one = Pki::new("cfg-one");
    let other = Pki::new("cfg-other");
    let cert = one.path("cert.pem");
    let wrong_key = other.path("key.pem");
    for (tag, extra) in [
        ("cfg-taken", vec!["--listen", addr.as_str()]),
        (
            "cfg-badkey",
            vec![
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                wrong_key.to_str().unwrap(),
            ],
        ),
    ] {
        let dir = fresh_dir(tag);
        let mut args = vec!["--data-dir", dir.to_str().unwrap()];
        args.extend(extra);
        let out = sessiond(&args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(1), "{tag}: {stdout} {stderr}");
        assert!(!stdout.contains("password"), "{tag}: {stdout}");
        assert!(!dir.exists(), "{tag}: the data directory was created");
        let says = if tag == "cfg-taken" {
            format!("cannot listen on {addr}")
        } else {
            "TLS: certificate and key".to_owned()
        };
        assert!(stderr.contains(&says), "{tag}: {stderr}");
        // said once (not also as a log line)
        assert_eq!(stderr.matches(&says).count(), 1, "{tag}: {stderr}");
    }
}
