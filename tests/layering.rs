//! The layering of `src/lib.rs`, checked on the source: the sans-IO core (protocol,
//! session, timer, conn, engine, the password records and jobs of auth) names no mio, no
//! file, no socket, no thread and no clock; and each module uses only the modules below it,
//! so no import loop can form. (clippy.toml's `disallowed-methods` checks the clock at
//! build time too; this test also covers what a lint cannot: imports.)

use std::path::{Path, PathBuf};

/// The core modules (a directory or one file under `src/`), each with the crate modules
/// it may use. The order is the layering: every module uses only ones listed before it.
const LAYERS: &[(&str, &[&str])] = &[
    ("protocol", &[]),
    ("timer.rs", &[]),
    ("labels.rs", &[]),
    ("auth", &["protocol"]),
    ("conn", &["timer"]),
    ("session", &["protocol", "auth", "conn", "labels", "timer"]),
    (
        "engine",
        &["protocol", "auth", "conn", "session", "labels", "timer"],
    ),
];

/// What only the shell (`server/`, `store/`, `client/`, the binary) may name.
const FORBIDDEN: &[&str] = &[
    "mio",
    "std::fs",
    "File::",
    "OpenOptions",
    "TcpStream",
    "TcpListener",
    "UdpSocket",
    "UnixStream",
    "std::thread",
    "thread::spawn",
    "std::process",
    "Instant::now",
    "SystemTime::now",
    "Waker",
    "std::sync::mpsc",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file of a module (a directory, recursively, or a single file).
fn files(module: &str) -> Vec<PathBuf> {
    let root = src().join(module);
    if root.is_file() {
        return vec![root];
    }
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    assert!(!out.is_empty(), "module {module} has no files");
    out
}

/// The code of a file without comments and without its unit tests (a test may start a
/// made-up clock from `Instant::now`, with clippy's allow and its reason).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let body = match text.find("#[cfg(test)]\n") {
        Some(i)
            if text[i..]
                .lines()
                .take(3)
                .any(|l| l.starts_with("mod tests")) =>
        {
            &text[..i]
        }
        _ => &text[..],
    };
    body.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate modules `code` names (`crate::x`).
fn uses(code: &str) -> Vec<String> {
    let mut out: Vec<String> = code
        .split("crate::")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn the_core_names_no_io_no_thread_and_no_clock() {
    let mut bad = Vec::new();
    for (module, _) in LAYERS {
        for f in files(module) {
            let code = code(&f);
            for word in FORBIDDEN {
                if code.contains(word) {
                    bad.push(format!("{} names {word}", f.display()));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "the core touches the shell's world:\n{}",
        bad.join("\n")
    );
}

#[test]
fn each_core_module_uses_only_the_layers_below_it() {
    let mut bad = Vec::new();
    for (i, (module, allowed)) in LAYERS.iter().enumerate() {
        let own = module.trim_end_matches(".rs");
        let below: Vec<&str> = LAYERS[..i]
            .iter()
            .map(|(m, _)| m.trim_end_matches(".rs"))
            .collect();
        for dep in allowed.iter() {
            assert!(
                below.contains(dep),
                "{module} may use {dep}, which is not below it: the table is not a layering"
            );
        }
        for f in files(module) {
            for used in uses(&code(&f)) {
                if used != own && !allowed.contains(&used.as_str()) {
                    bad.push(format!("{} uses crate::{used}", f.display()));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "imports against the layering:\n{}",
        bad.join("\n")
    );
}

/// The check itself must be able to fail: the shell's own files break both rules.
#[test]
fn the_checks_see_what_the_shell_names() {
    let server = files("server").iter().map(|f| code(f)).collect::<String>();
    assert!(FORBIDDEN.iter().any(|w| server.contains(w)));
    assert!(uses(&server).iter().any(|u| u == "store"));
    let store = files("store").iter().map(|f| code(f)).collect::<String>();
    assert!(store.contains("std::fs") || store.contains("File::"));
}
