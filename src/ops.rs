//! Operator subcommands of the `sessiond` binary that work on the data directory without
//! a live server: `user add`, `user set-role`, `user list`, and `audit`.
//!
//! Owns their arguments and their output. Commands that change accounts take the data
//! directory's lock (so they refuse to run beside a live server, which owns the journal
//! then: use the ADMIN_* requests, e.g. `examples/admin.rs`, instead) and journal their
//! change with an audit record, exactly as the server would. `audit` only reads and may
//! run beside a live server.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::{PasswordRecord, DEFAULT_ITERATIONS};
use crate::client::utc;
use crate::engine::event::{Audit, AuditKind, Event};
use crate::protocol::{valid_new_username, Role};
use crate::session::token::random_password;
use crate::session::UserTable;
use crate::store::{self, JournalOptions};

pub const HELP: &str = "\
OPERATOR COMMANDS (no live server needed):
    sessiond user add NAME [--role user|admin] [--email ADDR] [--password-stdin]
                           [--iterations N] [--data-dir DIR]
        create an account; without --password-stdin a random password is printed once
    sessiond user set-role NAME user|admin [--data-dir DIR]
    sessiond user list [--data-dir DIR]
    sessiond audit [--user NAME] [--kind KIND] [--since UNIX_MS] [--until UNIX_MS]
                   [--data-dir DIR]
        print the audit trail (archive and journal), oldest first; may run beside a
        live server. KIND: session_created, login_failed, revoked, ... (protocol.md 5.27)
";

/// A parsed operator command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpsCommand {
    UserAdd {
        name: String,
        role: Role,
        email: String,
        password_stdin: bool,
        iterations: u32,
        data_dir: PathBuf,
    },
    SetRole {
        name: String,
        role: Role,
        data_dir: PathBuf,
    },
    UserList {
        data_dir: PathBuf,
    },
    Audit {
        user: Option<String>,
        kind: Option<AuditKind>,
        since_ms: u64,
        until_ms: u64,
        data_dir: PathBuf,
    },
}

fn role(v: &str) -> Result<Role, String> {
    match v {
        "user" => Ok(Role::User),
        "admin" => Ok(Role::Admin),
        _ => Err(format!("role must be user or admin, not {v}")),
    }
}

/// Parses the words after `sessiond` when the first is `user` or `audit`.
pub fn parse(args: &[String], default_dir: PathBuf) -> Result<OpsCommand, String> {
    let mut data_dir = default_dir;
    let mut positional = Vec::new();
    let mut flags: Vec<(String, String)> = Vec::new();
    let mut password_stdin = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--password-stdin" {
            password_stdin = true;
        } else if let Some(f) = a.strip_prefix("--") {
            let (name, value) = match f.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => (
                    f.to_owned(),
                    it.next().ok_or(format!("--{f} needs a value"))?.clone(),
                ),
            };
            if name == "data-dir" {
                data_dir = PathBuf::from(value);
            } else {
                flags.push((name, value));
            }
        } else {
            positional.push(a.as_str());
        }
    }
    let flag = |n: &str| {
        flags
            .iter()
            .rev()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    let allowed = |ok: &[&str]| -> Result<(), String> {
        match flags.iter().find(|(k, _)| !ok.contains(&k.as_str())) {
            Some((k, _)) => Err(format!("unknown option --{k}")),
            None => Ok(()),
        }
    };
    let ms = |n: &str| -> Result<u64, String> {
        flag(n)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("--{n}: not a number of ms: {v}"))
            })
            .transpose()
            .map(|v| v.unwrap_or(0))
    };
    match positional.as_slice() {
        ["user", "add", name] => {
            allowed(&["role", "email", "iterations"])?;
            if !valid_new_username(name) {
                return Err(format!(
                    "invalid username {name:?}: 3-32 of a-z 0-9 . _ - starting with a letter or digit"
                ));
            }
            let iterations = match flag("iterations") {
                Some(v) => v.parse().map_err(|_| format!("--iterations: {v}"))?,
                None => DEFAULT_ITERATIONS,
            };
            Ok(OpsCommand::UserAdd {
                name: (*name).to_owned(),
                role: flag("role").map_or(Ok(Role::User), |r| role(&r))?,
                email: flag("email").unwrap_or_default(),
                password_stdin,
                iterations,
                data_dir,
            })
        }
        ["user", "set-role", name, r] => {
            allowed(&[])?;
            Ok(OpsCommand::SetRole {
                name: (*name).to_owned(),
                role: role(r)?,
                data_dir,
            })
        }
        ["user", "list"] => {
            allowed(&[])?;
            Ok(OpsCommand::UserList { data_dir })
        }
        ["audit"] => {
            allowed(&["user", "kind", "since", "until"])?;
            let kind = match flag("kind") {
                Some(k) => Some(AuditKind::from_name(&k).ok_or(format!("unknown --kind {k}"))?),
                None => None,
            };
            Ok(OpsCommand::Audit {
                user: flag("user"),
                kind,
                since_ms: ms("since")?,
                until_ms: ms("until")?,
                data_dir,
            })
        }
        _ => Err(format!("unknown command\n\n{HELP}")),
    }
}

type RunResult<T> = Result<T, Box<dyn std::error::Error>>;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The data directory's lock and its journal and state, for a command that may change
/// accounts (a live server holds the lock: the command is refused then).
fn open_locked(
    dir: &std::path::Path,
) -> RunResult<(
    store::DataDirLock,
    store::Journal,
    crate::engine::replay::State,
)> {
    let lock = store::lock_data_dir(dir)?;
    let (journal, state) =
        store::open_journal_with(dir, UserTable::new(), JournalOptions::default())?;
    Ok((lock, journal, state))
}

/// Runs `cmd`, writing its output to `out`.
pub fn run(cmd: OpsCommand, out: &mut dyn Write) -> RunResult<()> {
    match cmd {
        OpsCommand::UserAdd {
            name,
            role,
            email,
            password_stdin,
            iterations,
            data_dir,
        } => {
            store::ensure_data_dir(&data_dir)?;
            let (_lock, mut journal, mut state) = open_locked(&data_dir)?;
            if state.users.by_name(&name).is_some() {
                return Err(format!("user {name} exists").into());
            }
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                let pw = line.trim_end_matches(['\r', '\n']).to_owned();
                if pw.len() < 8 {
                    return Err("password must be at least 8 bytes".into());
                }
                (pw, false)
            } else {
                (random_password(20)?, true)
            };
            let record = PasswordRecord::create(password.as_bytes(), iterations)?;
            let at = now_ms();
            let user = state
                .users
                .create(&name, record, role, &email, at)
                .map_err(|_| format!("user {name} exists"))?
                .clone();
            journal.append(&Event::UserCreated(user.clone()))?;
            journal.append(&Event::Audit(Audit {
                at_ms: at,
                kind: AuditKind::UserCreated,
                user_id: user.id,
                session_id: 0,
                address: String::new(),
                detail: format!("{} by operator", role.name()),
            }))?;
            journal.commit()?;
            writeln!(
                out,
                "created user {name} (id {}, role {})",
                user.id,
                role.name()
            )?;
            if generated {
                writeln!(out, "    password: {password}")?;
                writeln!(
                    out,
                    "This password is shown only now; sessiond keeps only its hash."
                )?;
            }
            Ok(())
        }
        OpsCommand::SetRole {
            name,
            role,
            data_dir,
        } => {
            let (_lock, mut journal, mut state) = open_locked(&data_dir)?;
            let id = state
                .users
                .by_name(&name)
                .map(|u| u.id)
                .ok_or(format!("no user {name}"))?;
            let Some(u) = state.users.get_mut(id) else {
                return Err(format!("no user {name}").into());
            };
            let old = u.role;
            if old == role {
                writeln!(out, "{name} already has role {}", role.name())?;
                return Ok(());
            }
            u.role = role;
            let u = u.clone();
            journal.append(&Event::UserUpdated(u))?;
            journal.append(&Event::Audit(Audit {
                at_ms: now_ms(),
                kind: AuditKind::RoleChanged,
                user_id: id,
                session_id: 0,
                address: String::new(),
                detail: format!("{} -> {} by operator", old.name(), role.name()),
            }))?;
            journal.commit()?;
            writeln!(out, "{name}: role {} -> {}", old.name(), role.name())?;
            Ok(())
        }
        OpsCommand::UserList { data_dir } => {
            let (_lock, _journal, state) = open_locked(&data_dir)?;
            let mut users = state.users.all();
            users.sort_by_key(|u| u.id);
            let rows = users
                .iter()
                .map(|u| {
                    let live = state
                        .sessions
                        .values()
                        .filter(|s| s.user_id == u.id)
                        .count();
                    vec![
                        u.id.to_string(),
                        u.username.clone(),
                        u.role.name().to_owned(),
                        if u.suspended { "yes" } else { "no" }.to_owned(),
                        live.to_string(),
                        utc(u.created_ms),
                        if u.last_login_ms == 0 {
                            "-".to_owned()
                        } else {
                            utc(u.last_login_ms)
                        },
                    ]
                })
                .collect();
            table(
                out,
                &[
                    "ID",
                    "USER",
                    "ROLE",
                    "SUSPENDED",
                    "SESSIONS",
                    "CREATED",
                    "LAST LOGIN",
                ],
                rows,
            )?;
            Ok(())
        }
        OpsCommand::Audit {
            user,
            kind,
            since_ms,
            until_ms,
            data_dir,
        } => {
            let trail = store::read_audit_trail(&data_dir)?;
            let uid = match &user {
                Some(name) => Some(
                    trail
                        .usernames
                        .iter()
                        .find(|(_, n)| *n == name)
                        .map(|(id, _)| *id)
                        .ok_or(format!("no user {name} in {}", data_dir.display()))?,
                ),
                None => None,
            };
            let rows = trail
                .records
                .iter()
                .filter(|a| uid.is_none_or(|u| a.user_id == u))
                .filter(|a| kind.is_none_or(|k| a.kind == k))
                .filter(|a| a.at_ms >= since_ms && (until_ms == 0 || a.at_ms < until_ms))
                .map(|a| {
                    vec![
                        utc(a.at_ms),
                        a.kind.name().to_owned(),
                        trail
                            .usernames
                            .get(&a.user_id)
                            .cloned()
                            .unwrap_or_else(|| "-".into()),
                        if a.session_id == 0 {
                            "-".to_owned()
                        } else {
                            format!("{:016x}", a.session_id)
                        },
                        a.address.clone(),
                        a.detail.clone(),
                    ]
                })
                .collect();
            table(
                out,
                &["TIME", "KIND", "USER", "SESSION", "ADDRESS", "DETAIL"],
                rows,
            )?;
            Ok(())
        }
    }
}

/// Prints rows under headers (`client::table`).
fn table(out: &mut dyn Write, headers: &[&str], rows: Vec<Vec<String>>) -> std::io::Result<()> {
    for line in crate::client::table(headers, &rows) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_the_operator_commands() {
        let d = PathBuf::from("d");
        assert_eq!(
            parse(&args("user add carol --role admin --data-dir x"), d.clone()),
            Ok(OpsCommand::UserAdd {
                name: "carol".into(),
                role: Role::Admin,
                email: String::new(),
                password_stdin: false,
                iterations: DEFAULT_ITERATIONS,
                data_dir: PathBuf::from("x"),
            })
        );
        assert_eq!(
            parse(&args("user set-role carol user"), d.clone()),
            Ok(OpsCommand::SetRole {
                name: "carol".into(),
                role: Role::User,
                data_dir: d.clone(),
            })
        );
        assert_eq!(
            parse(&args("audit --kind login_failed --since=5"), d.clone()),
            Ok(OpsCommand::Audit {
                user: None,
                kind: Some(AuditKind::LoginFailed),
                since_ms: 5,
                until_ms: 0,
                data_dir: d.clone(),
            })
        );
        assert!(parse(&args("user add X!"), d.clone()).is_err());
        assert!(parse(&args("user set-role carol root"), d.clone()).is_err());
        assert!(parse(&args("audit --kind nope"), d.clone()).is_err());
        assert!(parse(&args("audit --bogus 1"), d.clone()).is_err());
        assert!(parse(&args("user frobnicate"), d).is_err());
    }

    #[test]
    fn tables_align_columns() {
        let mut out = Vec::new();
        table(
            &mut out,
            &["A", "LONGER"],
            vec![
                vec!["xyz".into(), "1".into()],
                vec!["q".into(), "22".into()],
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "A    LONGER\nxyz  1\nq    22\n"
        );
    }
}
