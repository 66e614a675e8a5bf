//! Operator subcommands of the `sessiond` binary that work on the data directory without
//! a live server: `user add`, `user passwd`, `user set-role`, `user delete`, `user list`,
//! and `audit`.
//!
//! Owns their arguments (declared once with clap derive, each with its help, default and
//! range; [`crate::cli`] parses them as part of the binary's command line), the
//! `--data-dir` argument every command of the binary shares, and their output. The `user`
//! commands take the data directory's lock (so they refuse to run beside a live server,
//! which owns the journal then: use the ADMIN_* requests, e.g. `examples/admin.rs`,
//! instead); those that change accounts journal their change with an audit record, exactly
//! as the server would (the sessions they end as the server ends them: each end and its
//! `revoked` record, so the tokens resume as SESSION_INVALID `REVOKED` after the next
//! start). `audit` only reads and may run beside a live server.
//!
//! Also the operator's password input, shared with the binary's first start
//! (`--admin-password-file`): one line, 8 to 1,024 bytes, never echoed back.

use std::io::{BufRead, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::builder::PossibleValue;
use clap::{Args, Subcommand, ValueEnum};

use crate::auth::{PasswordRecord, DEFAULT_ITERATIONS};
use crate::client::utc;
use crate::engine::event::{Audit, AuditKind, EndKind, Event, StoredSession};
use crate::engine::replay::State;
use crate::protocol::{valid_new_username, RevokeReason, Role, Secret, MAX_PASSWORD};
use crate::session::token::random_password;
use crate::session::UserTable;
use crate::store::cluster::ClusterOptions;
use crate::store::{self, JournalOptions, Store};

/// Where the data directory is unless `--data-dir` says otherwise (relative to the
/// working directory).
pub const DEFAULT_DATA_DIR: &str = "sessiond-data";

/// PBKDF2 iterations `--iterations` accepts, for the server and for `user add`.
pub const ITERATION_RANGE: RangeInclusive<i64> = 1..=10_000_000;

/// The shortest password an operator may give (`--password-stdin`,
/// `--admin-password-file`): the server's default minimum (`--min-password-len`).
pub const MIN_OPERATOR_PASSWORD: usize = 8;

/// `--data-dir DIR`: the same argument for the server, `repair` and every operator
/// command.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    /// where users are kept (the server and `user add` create it, mode 0700)
    #[arg(long = "data-dir", value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub path: PathBuf,
    /// keep accounts, sessions and the audit trail in this PostgreSQL database (a
    /// connection string) instead of --data-dir; the schema is created or migrated at start
    #[arg(long, value_name = "URL")]
    pub cluster: Option<String>,
}

impl DataDir {
    /// Where the state is, for messages (never the connection string: it may hold a
    /// password).
    fn describe(&self) -> String {
        match &self.cluster {
            Some(_) => "the cluster database".to_owned(),
            None => self.path.display().to_string(),
        }
    }
}

/// `sessiond user ...` and `sessiond audit ...`.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum OpsCommand {
    /// Manage accounts offline (refused beside a live server, which owns the journal: use
    /// the ADMIN_* requests then, e.g. examples/admin.rs)
    #[command(subcommand)]
    User(UserCommand),
    /// Print the audit trail (archive and journal), oldest first; may run beside a live
    /// server
    Audit(AuditArgs),
}

/// `sessiond user add|passwd|set-role|delete|list`.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// Create an account; without --password-stdin a random password is printed once
    Add(UserAdd),
    /// Set an account's password (every live session of it ends); without
    /// --password-stdin a random password is printed once
    Passwd(UserPasswd),
    /// Change an account's role
    SetRole {
        /// the account
        #[arg(value_name = "NAME")]
        name: String,
        /// its new role
        #[arg(value_name = "ROLE", value_enum)]
        role: Role,
        /// `--data-dir`: the data directory.
        #[command(flatten)]
        data_dir: DataDir,
    },
    /// Delete an account for good: its live sessions end and its name becomes free (the
    /// audit trail keeps its records). Refuses the last administrator; does nothing
    /// without --yes
    Delete {
        /// the account
        #[arg(value_name = "NAME")]
        name: String,
        /// really delete it (without: say what would be deleted, change nothing, exit 1)
        #[arg(long)]
        yes: bool,
        /// `--data-dir`: the data directory.
        #[command(flatten)]
        data_dir: DataDir,
    },
    /// List the accounts with their role, state and live sessions
    List {
        /// `--data-dir`: the data directory.
        #[command(flatten)]
        data_dir: DataDir,
    },
}

/// `sessiond user add NAME ...`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct UserAdd {
    /// the new account's name: 3-32 of a-z 0-9 . _ - starting with a letter or digit
    #[arg(value_name = "NAME", value_parser = new_username)]
    pub name: String,
    /// its role
    #[arg(long, value_name = "ROLE", value_enum, default_value_t = Role::User)]
    pub role: Role,
    /// its e-mail address
    #[arg(long, value_name = "ADDR")]
    pub email: Option<String>,
    /// The password and its record.
    #[command(flatten)]
    pub password: NewPassword,
    /// `--data-dir`: the data directory.
    #[command(flatten)]
    pub data_dir: DataDir,
}

/// Where `user add` and `user passwd` get the password, and how it is recorded.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct NewPassword {
    /// read the password from the first line of stdin (8 to 1024 bytes) instead of
    /// printing a random one
    #[arg(long)]
    pub password_stdin: bool,
    /// PBKDF2-HMAC-SHA256 iterations for the password record
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_ITERATIONS,
        value_parser = clap::value_parser!(u32).range(ITERATION_RANGE),
    )]
    pub iterations: u32,
}

/// `sessiond user passwd NAME ...`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct UserPasswd {
    /// the account
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The new password and its record.
    #[command(flatten)]
    pub password: NewPassword,
    /// `--data-dir`: the data directory.
    #[command(flatten)]
    pub data_dir: DataDir,
}

/// `sessiond audit ...`: which records to print.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct AuditArgs {
    /// only this user's records (every account that had the name: a deleted one's too)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// only records of this kind (protocol.md 5.27)
    #[arg(long, value_name = "KIND", value_enum)]
    pub kind: Option<AuditKind>,
    /// only records at or after this time (Unix milliseconds)
    #[arg(long, value_name = "UNIX_MS")]
    pub since: Option<u64>,
    /// only records before this time (Unix milliseconds; 0: no limit)
    #[arg(long, value_name = "UNIX_MS")]
    pub until: Option<u64>,
    /// only the newest N of the records that match (still printed oldest first)
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// `--data-dir`: the data directory.
    #[command(flatten)]
    pub data_dir: DataDir,
}

/// `user` and `admin` on the command line: the protocol's role names.
impl ValueEnum for Role {
    fn value_variants<'a>() -> &'a [Self] {
        &[Role::User, Role::Admin]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

/// `--kind`: the audit trail's own kind names (`AuditKind::ALL`, `AuditKind::name`).
impl ValueEnum for AuditKind {
    fn value_variants<'a>() -> &'a [Self] {
        AuditKind::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

/// A name `user add` may create.
fn new_username(name: &str) -> Result<String, String> {
    if valid_new_username(name) {
        Ok(name.to_owned())
    } else {
        Err("3-32 of a-z 0-9 . _ - starting with a letter or digit".into())
    }
}

type RunResult<T> = Result<T, Box<dyn std::error::Error>>;

#[allow(clippy::disallowed_methods)] // an operator command stamps its records at run time
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A password an operator gives: the first line of `input` without its line ending,
/// [`MIN_OPERATOR_PASSWORD`] to [`MAX_PASSWORD`] bytes (what LOGIN_REQUEST can carry).
/// The error never shows the password.
pub fn read_password_line(input: &mut dyn BufRead) -> Result<Secret, String> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    let end = line.trim_end_matches(['\r', '\n']).len();
    let mut bytes = std::mem::take(&mut line).into_bytes();
    bytes.truncate(end);
    let pw = Secret::new(bytes);
    if pw.len() < MIN_OPERATOR_PASSWORD {
        return Err(format!(
            "the password must be at least {MIN_OPERATOR_PASSWORD} bytes"
        ));
    }
    if pw.len() > MAX_PASSWORD {
        return Err(format!("the password must be at most {MAX_PASSWORD} bytes"));
    }
    Ok(pw)
}

/// `--admin-password-file FILE`: the password on the first line of `FILE` (`-`: of
/// stdin), as [`read_password_line`] takes it; the error names the file, never its
/// content.
pub fn read_password_file(path: &Path) -> Result<Secret, String> {
    let named = |e: String| format!("--admin-password-file {}: {e}", path.display());
    if path == Path::new("-") {
        return read_password_line(&mut std::io::stdin().lock()).map_err(named);
    }
    let f = std::fs::File::open(path).map_err(|e| named(e.to_string()))?;
    read_password_line(&mut std::io::BufReader::new(f)).map_err(named)
}

/// The new password of `user add` and `user passwd`: from stdin, or generated (then true:
/// it is printed once).
fn new_password(from_stdin: bool) -> RunResult<(Secret, bool)> {
    if from_stdin {
        Ok((read_password_line(&mut std::io::stdin().lock())?, false))
    } else {
        Ok((Secret::from(random_password(20)?), true))
    }
}

/// Prints a generated password, the one time it is shown.
fn show_generated(out: &mut dyn Write, password: &Secret) -> std::io::Result<()> {
    writeln!(
        out,
        "    password: {}",
        String::from_utf8_lossy(password.as_bytes())
    )?;
    writeln!(
        out,
        "This password is shown only now; sessiond keeps only its hash."
    )
}

/// Journals the end of every live session of `user_id`, oldest first, as the server ends
/// a revoked session: the end, then its `revoked` record (`reason`, by the operator: no
/// actor; `note` for people). After the next start their tokens resume as
/// SESSION_INVALID `REVOKED`.
fn end_sessions(
    journal: &mut dyn Store,
    state: &State,
    user_id: u64,
    reason: RevokeReason,
    note: &str,
    at_ms: u64,
) -> RunResult<usize> {
    let mut live: Vec<&StoredSession> = state
        .sessions
        .values()
        .filter(|s| s.user_id == user_id)
        .collect();
    live.sort_by_key(|s| (s.created_ms, s.id));
    for s in &live {
        journal.append(&Event::SessionEnded {
            id: s.id,
            kind: EndKind::Revoked,
            at_ms,
        })?;
        let mut a = Audit::new(AuditKind::Revoked, user_id, s.id, s.peer.clone())
            .device(&s.client, &s.platform)
            .reason(reason.to_u16())
            .note(note);
        a.at_ms = at_ms;
        journal.append(&Event::Audit(a))?;
    }
    Ok(live.len())
}

/// The store and its state, for a command that may change accounts: a data directory's
/// journal with its lock (a live server holds it: the command is refused then), or the
/// cluster's log, which the command writes as one more writer beside live nodes (which
/// read its changes from the log; `serves` false, so they do not wait for it).
fn open_locked(place: &DataDir) -> RunResult<(Option<store::DataDirLock>, Box<dyn Store>, State)> {
    if let Some(url) = &place.cluster {
        let opts = ClusterOptions {
            url: url.clone(),
            node: "operator".into(),
            lease: store::cluster::DEFAULT_LEASE,
            snapshot_bytes: JournalOptions::default().snapshot_bytes,
            audit_retention: JournalOptions::default().audit_retention,
        };
        let (s, state) = store::cluster::open_cluster(&opts, UserTable::new(), false)?;
        return Ok((None, Box::new(s), state));
    }
    let lock = store::lock_data_dir(&place.path)?;
    let (journal, state) =
        store::open_journal_with(&place.path, UserTable::new(), JournalOptions::default())?;
    Ok((Some(lock), Box::new(journal), state))
}

/// Runs `cmd`, writing its output to `out`.
pub fn run(cmd: OpsCommand, out: &mut dyn Write) -> RunResult<()> {
    match cmd {
        OpsCommand::User(UserCommand::Add(UserAdd {
            name,
            role,
            email,
            password:
                NewPassword {
                    password_stdin,
                    iterations,
                },
            data_dir,
        })) => {
            let email = email.unwrap_or_default();
            if data_dir.cluster.is_none() {
                store::ensure_data_dir(&data_dir.path)?;
            }
            let (_lock, mut journal, mut state) = open_locked(&data_dir)?;
            if state.users.by_name(&name).is_some() {
                return Err(format!("user {name} exists").into());
            }
            let (password, generated) = new_password(password_stdin)?;
            let record = PasswordRecord::create(password.as_bytes(), iterations)?;
            let at = now_ms();
            let user = store::create_account(
                &mut *journal,
                &mut state.users,
                &name,
                record,
                role,
                &email,
                at,
            )?
            .ok_or_else(|| format!("user {name} exists"))?;
            journal.append(&Event::UserCreated(user.clone()))?;
            let mut a = Audit::new(AuditKind::UserCreated, user.id, 0, "")
                .reason(u16::from(role.to_u8()))
                .note(format!("{} by operator", role.name()));
            a.at_ms = at;
            journal.append(&Event::Audit(a))?;
            journal.commit()?;
            writeln!(
                out,
                "created user {name} (id {}, role {})",
                user.id,
                role.name()
            )?;
            if generated {
                show_generated(out, &password)?;
            }
            Ok(())
        }
        OpsCommand::User(UserCommand::Passwd(UserPasswd {
            name,
            password:
                NewPassword {
                    password_stdin,
                    iterations,
                },
            data_dir,
        })) => {
            let (_lock, mut journal, state) = open_locked(&data_dir)?;
            let Some(mut user) = state.users.by_name(&name).cloned() else {
                return Err(format!("no user {name}").into());
            };
            let (password, generated) = new_password(password_stdin)?;
            user.password = PasswordRecord::create(password.as_bytes(), iterations)?;
            let (id, at) = (user.id, now_ms());
            // As ADMIN_SET_PASSWORD journals it (engine::manage): the record, the failure
            // streak lifted, the audit record, then each session's end.
            journal.append(&Event::UserUpdated(user))?;
            if state.streaks.contains_key(&id) {
                journal.append(&Event::FailureStreak {
                    user_id: id,
                    failures: 0,
                    until_ms: 0,
                })?;
            }
            let mut a = Audit::new(AuditKind::PasswordReset, id, 0, "").note("by operator");
            a.at_ms = at;
            journal.append(&Event::Audit(a))?;
            let reason = RevokeReason::PasswordReset;
            let note = "PASSWORD_RESET by operator";
            let n = end_sessions(journal.as_mut(), &state, id, reason, note, at)?;
            journal.commit()?;
            writeln!(out, "{name}: password set; {n} live session(s) ended")?;
            if generated {
                show_generated(out, &password)?;
            }
            Ok(())
        }
        OpsCommand::User(UserCommand::Delete {
            name,
            yes,
            data_dir,
        }) => {
            let (_lock, mut journal, state) = open_locked(&data_dir)?;
            let Some(user) = state.users.by_name(&name) else {
                return Err(format!("no user {name}").into());
            };
            let (id, role) = (user.id, user.role);
            // An account that can still log in as an administrator must remain: without
            // one nobody can use the ADMIN_* requests (a suspended one cannot log in).
            let other_admins = state
                .users
                .all()
                .into_iter()
                .filter(|u| u.id != id && u.role == Role::Admin && !u.suspended)
                .count();
            if role == Role::Admin && other_admins == 0 {
                return Err(format!(
                    "{name} is the last administrator that can log in: not deleted (make \
                     another account an administrator first: sessiond user set-role NAME admin)"
                )
                .into());
            }
            let live = state.sessions.values().filter(|s| s.user_id == id).count();
            if !yes {
                return Err(format!(
                    "would delete {name} (id {id}, role {}) and end its {live} live \
                     session(s); nothing changed: run again with --yes to delete it",
                    role.name()
                )
                .into());
            }
            let at = now_ms();
            let note = "REVOKED_BY_ADMIN by operator: account deleted";
            let n = end_sessions(
                journal.as_mut(),
                &state,
                id,
                RevokeReason::ByAdmin,
                note,
                at,
            )?;
            let mut a = Audit::new(AuditKind::UserDeleted, id, 0, "")
                .tried(&name)
                .note(format!("{name} ({}) deleted by operator", role.name()));
            a.at_ms = at;
            journal.append(&Event::Audit(a))?;
            journal.append(&Event::UserDeleted { user_id: id })?;
            journal.commit()?;
            writeln!(
                out,
                "deleted user {name} (id {id}, role {}); {n} live session(s) ended",
                role.name()
            )?;
            Ok(())
        }
        OpsCommand::User(UserCommand::SetRole {
            name,
            role,
            data_dir,
        }) => {
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
            let mut a = Audit::new(AuditKind::RoleChanged, id, 0, "")
                .reason(u16::from(role.to_u8()))
                .note(format!("{} -> {} by operator", old.name(), role.name()));
            a.at_ms = now_ms();
            journal.append(&Event::Audit(a))?;
            journal.commit()?;
            writeln!(out, "{name}: role {} -> {}", old.name(), role.name())?;
            Ok(())
        }
        OpsCommand::User(UserCommand::List { data_dir }) => {
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
                        // the application role beside the protocol's (protocol.md 5.48)
                        match state.users.app_role(u.id) {
                            Some(app) => format!("{}/{app}", u.role.name()),
                            None => u.role.name().to_owned(),
                        },
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
        OpsCommand::Audit(AuditArgs {
            user,
            kind,
            since,
            until,
            limit,
            data_dir,
        }) => {
            let trail = match &data_dir.cluster {
                Some(url) => store::cluster::read_cluster_audit(url)?,
                None => store::read_audit_trail(&data_dir.path)?,
            };
            // Every account that had the name: a name freed by `user delete` may have been
            // taken again.
            let uids: Option<Vec<u64>> = match &user {
                Some(name) => {
                    let ids: Vec<u64> = trail
                        .usernames
                        .iter()
                        .filter(|(_, n)| *n == name)
                        .map(|(id, _)| *id)
                        .collect();
                    if ids.is_empty() {
                        return Err(format!("no user {name} in {}", data_dir.describe()).into());
                    }
                    Some(ids)
                }
                None => None,
            };
            let name = |id: u64| trail.usernames.get(&id).cloned();
            let matching: Vec<&Audit> = trail
                .records
                .iter()
                .filter(|a| uids.as_ref().is_none_or(|u| u.contains(&a.user_id)))
                .filter(|a| kind.is_none_or(|k| a.kind == k))
                .filter(|a| since.is_none_or(|t| a.at_ms >= t))
                .filter(|a| until.filter(|&t| t > 0).is_none_or(|t| a.at_ms < t))
                .collect();
            let skip = limit.map_or(0, |n| matching.len().saturating_sub(n));
            let rows = matching[skip..]
                .iter()
                .map(|a| audit_row(a, &name))
                .collect();
            table(
                out,
                &[
                    "TIME", "KIND", "REASON", "USER", "SESSION", "ADDRESS", "DEVICE", "BY", "NOTE",
                ],
                rows,
            )?;
            Ok(())
        }
    }
}

/// One printed row of `sessiond audit`: the typed fields, `-` where there is nothing.
fn audit_row(a: &Audit, name: &dyn Fn(u64) -> Option<String>) -> Vec<String> {
    let or_dash = |s: String| if s.is_empty() { "-".to_owned() } else { s };
    let session = |id: u64| {
        if id == 0 {
            String::new()
        } else {
            format!("{id:016x}")
        }
    };
    let user = if a.user_id == 0 {
        a.username.clone()
    } else {
        // (a `user_deleted` record keeps the name itself)
        name(a.user_id)
            .or_else(|| (!a.username.is_empty()).then(|| a.username.clone()))
            .unwrap_or_else(|| format!("#{}", a.user_id))
    };
    let by = a.actor.as_ref().map_or_else(String::new, |x| {
        let who = name(x.user_id).unwrap_or_else(|| format!("#{}", x.user_id));
        let device = format!("{} {}", x.client, x.platform);
        format!(
            "{who} {} {} {}",
            or_dash(session(x.session_id)),
            or_dash(x.address.clone()),
            device.trim()
        )
        .trim()
        .to_owned()
    });
    vec![
        utc(a.at_ms),
        a.kind.name().to_owned(),
        a.kind.reason_name(a.reason).unwrap_or("-").to_owned(),
        or_dash(user),
        or_dash(session(a.session_id)),
        or_dash(a.address.clone()),
        or_dash(format!("{} {}", a.client, a.platform).trim().to_owned()),
        or_dash(by),
        or_dash(a.detail.clone()),
    ]
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
    use clap::Parser;

    /// The operator commands as the binary's command line holds them.
    #[derive(Parser, Debug)]
    struct Ops {
        #[command(subcommand)]
        cmd: OpsCommand,
    }

    fn parse(s: &str) -> Result<OpsCommand, clap::Error> {
        Ops::try_parse_from(std::iter::once("sessiond").chain(s.split_whitespace())).map(|o| o.cmd)
    }

    fn dir(d: &str) -> DataDir {
        DataDir {
            path: d.into(),
            cluster: None,
        }
    }

    #[test]
    fn parses_the_operator_commands() {
        assert_eq!(
            parse("user add carol --role admin --data-dir x").unwrap(),
            OpsCommand::User(UserCommand::Add(UserAdd {
                name: "carol".into(),
                role: Role::Admin,
                email: None,
                password: NewPassword {
                    password_stdin: false,
                    iterations: DEFAULT_ITERATIONS,
                },
                data_dir: dir("x"),
            }))
        );
        assert_eq!(
            parse("user add dave --password-stdin --email=d@example.org --iterations 1000")
                .unwrap(),
            OpsCommand::User(UserCommand::Add(UserAdd {
                name: "dave".into(),
                role: Role::User,
                email: Some("d@example.org".into()),
                password: NewPassword {
                    password_stdin: true,
                    iterations: 1000,
                },
                data_dir: dir(DEFAULT_DATA_DIR),
            }))
        );
        assert_eq!(
            parse("user set-role carol user").unwrap(),
            OpsCommand::User(UserCommand::SetRole {
                name: "carol".into(),
                role: Role::User,
                data_dir: dir(DEFAULT_DATA_DIR),
            })
        );
        assert_eq!(
            parse("user passwd admin --password-stdin --iterations 1000").unwrap(),
            OpsCommand::User(UserCommand::Passwd(UserPasswd {
                name: "admin".into(),
                password: NewPassword {
                    password_stdin: true,
                    iterations: 1000,
                },
                data_dir: dir(DEFAULT_DATA_DIR),
            }))
        );
        assert_eq!(
            parse("user passwd carol --data-dir x").unwrap(),
            OpsCommand::User(UserCommand::Passwd(UserPasswd {
                name: "carol".into(),
                password: NewPassword {
                    password_stdin: false,
                    iterations: DEFAULT_ITERATIONS,
                },
                data_dir: dir("x"),
            }))
        );
        assert_eq!(
            parse("user delete carol --yes").unwrap(),
            OpsCommand::User(UserCommand::Delete {
                name: "carol".into(),
                yes: true,
                data_dir: dir(DEFAULT_DATA_DIR),
            })
        );
        assert_eq!(
            parse("user delete carol").unwrap(),
            OpsCommand::User(UserCommand::Delete {
                name: "carol".into(),
                yes: false,
                data_dir: dir(DEFAULT_DATA_DIR),
            })
        );
        assert_eq!(
            parse("user list --data-dir=y").unwrap(),
            OpsCommand::User(UserCommand::List { data_dir: dir("y") })
        );
        assert_eq!(
            parse("audit --kind login_failed --since=5 --limit 3").unwrap(),
            OpsCommand::Audit(AuditArgs {
                user: None,
                kind: Some(AuditKind::LoginFailed),
                since: Some(5),
                until: None,
                limit: Some(3),
                data_dir: dir(DEFAULT_DATA_DIR),
            })
        );
        assert!(parse("user add X!").is_err());
        assert!(parse("user add carol --iterations 0").is_err());
        assert!(parse("user set-role carol root").is_err());
        assert!(parse("user passwd").is_err());
        assert!(parse("user passwd carol --iterations 0").is_err());
        assert!(parse("user delete").is_err());
        assert!(parse("audit --kind nope").is_err());
        assert!(parse("audit --since yesterday").is_err());
        assert!(parse("audit --bogus 1").is_err());
        assert!(parse("user frobnicate").is_err());
    }

    #[test]
    fn every_audit_kind_is_a_kind_value() {
        for &k in AuditKind::ALL {
            match parse(&format!("audit --kind {}", k.name())).unwrap() {
                OpsCommand::Audit(a) => assert_eq!(a.kind, Some(k)),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn an_operator_password_is_one_line_of_8_to_1024_bytes() {
        let read = |s: &str| read_password_line(&mut s.as_bytes());
        assert_eq!(read("long enough\n").unwrap().as_bytes(), b"long enough");
        assert_eq!(
            read("crlf line\r\nsecond\n").unwrap().as_bytes(),
            b"crlf line"
        );
        assert_eq!(read("no newline").unwrap().as_bytes(), b"no newline");
        assert_eq!(read(" spaced; ok \n").unwrap().as_bytes(), b" spaced; ok ");
        for short in ["", "\n", "7 bytes\n"] {
            let e = read(short).unwrap_err();
            assert!(e.contains("at least 8 bytes"), "{e}");
        }
        assert!(read(&"x".repeat(MAX_PASSWORD)).is_ok());
        let e = read(&"x".repeat(MAX_PASSWORD + 1)).unwrap_err();
        assert!(e.contains("at most 1024"), "{e}");
        // the error names the file, not what it holds
        let e = read_password_file(Path::new("/nonexistent/sessiond-pw")).unwrap_err();
        assert!(
            e.starts_with("--admin-password-file /nonexistent/sessiond-pw: "),
            "{e}"
        );
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
