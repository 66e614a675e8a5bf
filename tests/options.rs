//! The README's "Options" table against the options the binary declares (`sessiond::cli`),
//! in both directions, so the table cannot drift; and `--help` / `--version` of the
//! binary and of every subcommand.

use std::collections::BTreeMap;
use std::process::Command;

use clap::{ArgAction, CommandFactory};
use sessiond::cli::Cli;

/// `--flag VALUE` -> default, as the README's "Options" table gives them.
fn readme_table() -> BTreeMap<String, String> {
    let readme = include_str!("../README.md");
    let start = readme
        .find("\n## Options\n")
        .expect("README has an Options section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `--")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 3, "option | default | meaning: {line}");
        let default = code_spans(cells[1])
            .first()
            .map_or_else(|| cells[1].to_owned(), |d| d.to_string());
        for flag in code_spans(cells[0]) {
            let old = rows.insert(flag.to_owned(), default.clone());
            assert!(old.is_none(), "{flag} is in the README table twice");
        }
    }
    assert!(!rows.is_empty(), "no rows in the README's Options table");
    rows
}

/// The `code` spans of a table cell.
fn code_spans(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// `--flag VALUE` -> default, as `sessiond --help` declares them: clap's default, the
/// words of a hidden one (`[default: cores - 1 ...]` in the help), or `off`.
fn declared_options() -> BTreeMap<String, String> {
    let cmd = Cli::command();
    let mut options = BTreeMap::new();
    for arg in cmd.get_arguments() {
        if matches!(arg.get_action(), ArgAction::Help | ArgAction::Version) {
            continue;
        }
        let long = arg
            .get_long()
            .unwrap_or_else(|| panic!("{} has no long name", arg.get_id()));
        // A switch (`--reuse-port`) takes no value and is off unless given.
        let switch = matches!(arg.get_action(), ArgAction::SetTrue);
        let values: Vec<String> = match switch {
            true => Vec::new(),
            false => arg
                .get_value_names()
                .unwrap_or_default()
                .iter()
                .map(|v| v.to_string())
                .collect(),
        };
        let flag = [format!("--{long}")]
            .into_iter()
            .chain(values)
            .collect::<Vec<_>>()
            .join(" ");
        let default = if switch {
            "off".to_owned()
        } else if arg.is_hide_default_value_set() {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let words = help
                .split_once("[default: ")
                .and_then(|(_, rest)| rest.rsplit_once(']'))
                .map(|(words, _)| words.to_owned());
            words.unwrap_or_else(|| panic!("--{long} hides its default and does not say it"))
        } else if arg.get_default_values().is_empty() {
            "off".to_owned()
        } else {
            let values: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            values.join(",")
        };
        options.insert(flag, default);
    }
    options
}

#[test]
fn the_readme_table_is_what_help_declares() {
    let readme = readme_table();
    let declared = declared_options();
    for (flag, default) in &declared {
        match readme.get(flag) {
            Some(d) => assert_eq!(d, default, "README's default for {flag}"),
            None => panic!("{flag} (default {default}) is missing from the README's Options table"),
        }
    }
    for flag in readme.keys() {
        assert!(
            declared.contains_key(flag),
            "the README's Options table has {flag}, which `sessiond --help` does not declare"
        );
    }
}

/// Runs the binary, returning (status, stdout, stderr).
fn sessiond(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .args(args)
        .output()
        .expect("run sessiond");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_binary_prints_what_the_table_lists() {
    let (code, help, err) = sessiond(&["--help"]);
    assert_eq!(code, Some(0), "{err}");
    for flag in readme_table().keys() {
        let spelled = match flag.split_once(' ') {
            Some((name, value)) => format!("{name} <{value}>"),
            None => flag.clone(),
        };
        assert!(help.contains(&spelled), "--help lacks {spelled}:\n{help}");
    }
}

#[test]
fn help_works_on_every_subcommand() {
    for (args, usage) in [
        (&["repair", "--help"][..], "Usage: sessiond repair"),
        (&["user", "--help"], "Usage: sessiond user <COMMAND>"),
        (&["user", "add", "--help"], "Usage: sessiond user add"),
        (
            &["user", "set-role", "--help"],
            "Usage: sessiond user set-role",
        ),
        (&["user", "list", "--help"], "Usage: sessiond user list"),
        (&["audit", "--help"], "Usage: sessiond audit"),
        (&["help", "user", "add"], "Usage: sessiond user add"),
    ] {
        let (code, out, err) = sessiond(args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(out.contains(usage), "{args:?}:\n{out}");
        // every command but `user` itself works on a data directory
        if !usage.ends_with("<COMMAND>") {
            assert!(out.contains("--data-dir <DIR>"), "{args:?}:\n{out}");
        }
    }
    let (_, out, _) = sessiond(&["audit", "--help"]);
    for kind in sessiond::engine::event::AuditKind::ALL {
        assert!(out.contains(kind.name()), "{}:\n{out}", kind.name());
    }
}

#[test]
fn version_and_usage_errors() {
    let (code, out, _) = sessiond(&["-V"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out.trim(),
        format!(
            "sessiond {} (protocol version 1)",
            env!("CARGO_PKG_VERSION")
        )
    );
    for args in [
        &["user"][..],
        &["user", "add"],
        &["user", "add", "carol", "--bogus"],
        &["audit", "--kind", "nope"],
        &["repair", "extra"],
        &["--max-frame", "10"],
    ] {
        let (code, out, err) = sessiond(args);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(!err.is_empty(), "{args:?}");
    }
    let (_, _, err) = sessiond(&["user", "add", "carol", "--bogus"]);
    assert!(err.contains("unknown option --bogus"), "{err}");
}
