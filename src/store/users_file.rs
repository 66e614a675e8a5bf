//! The users file: one line per account, tab-separated, written atomically.
//!
//! ```text
//! # sessiond users v1
//! <id>\t<username>\t<role>\t<email>\t<created ms>\t<last login ms>\t<password record>
//! ```
//! The whole file is rewritten atomically by `save_users`; a registration appends one line
//! and syncs it (`append_user`). Usernames and emails escape `\\`, tab and newline as
//! `\\\\`, `\\t`, `\\n`. The password record is
//! `auth::PasswordRecord::encode` (algorithm, iterations, salt, hash).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::auth::PasswordRecord;
use crate::protocol::Role;
use crate::session::{User, UserTable};

pub const USERS_FILE: &str = "users";
const HEADER: &str = "# sessiond users v1";

/// Why the users file could not be loaded.
#[derive(Debug)]
pub enum UsersFileError {
    Io(io::Error),
    /// A line that does not parse; 1-based line number.
    Corrupt {
        line: usize,
        why: &'static str,
    },
}

impl fmt::Display for UsersFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsersFileError::Io(e) => write!(f, "{e}"),
            UsersFileError::Corrupt { line, why } => write!(f, "line {line}: {why}"),
        }
    }
}

impl std::error::Error for UsersFileError {}

impl From<io::Error> for UsersFileError {
    fn from(e: io::Error) -> Self {
        UsersFileError::Io(e)
    }
}

/// Loads `dir/users`; a missing file is an empty table.
pub fn load_users(dir: &Path) -> Result<UserTable, UsersFileError> {
    let mut table = UserTable::new();
    let text = match fs::read_to_string(dir.join(USERS_FILE)) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(table),
        Err(e) => return Err(e.into()),
    };
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let user = parse_line(line).map_err(|why| UsersFileError::Corrupt { line: lineno, why })?;
        table.restore(user).map_err(|_| UsersFileError::Corrupt {
            line: lineno,
            why: "duplicate user id or name",
        })?;
    }
    Ok(table)
}

fn parse_line(line: &str) -> Result<User, &'static str> {
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != 7 {
        return Err("expected 7 tab-separated fields");
    }
    let id = f[0].parse().map_err(|_| "bad id")?;
    let username = unescape(f[1]).ok_or("bad username escape")?;
    if username.is_empty() || username.len() > crate::protocol::MAX_USERNAME {
        return Err("username length out of range");
    }
    let role = match f[2] {
        "user" => Role::User,
        "admin" => Role::Admin,
        _ => return Err("unknown role"),
    };
    let email = unescape(f[3]).ok_or("bad email escape")?;
    let created_ms = f[4].parse().map_err(|_| "bad created time")?;
    let last_login_ms = f[5].parse().map_err(|_| "bad last login time")?;
    let password = PasswordRecord::parse(f[6]).map_err(|_| "bad password record")?;
    Ok(User {
        id,
        username,
        password,
        role,
        email,
        created_ms,
        last_login_ms,
    })
}

/// Writes the whole table to `dir/users` atomically and durably.
pub fn save_users(dir: &Path, users: &UserTable) -> io::Result<()> {
    let mut text = String::from(HEADER);
    text.push('\n');
    for u in users.all() {
        text.push_str(&line(u));
    }
    let tmp = dir.join(format!("{USERS_FILE}.tmp"));
    {
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(USERS_FILE))?;
    // The rename is durable only once the directory entry is.
    File::open(dir)?.sync_all()
}

fn line(u: &User) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
        u.id,
        escape(&u.username),
        u.role.name(),
        escape(&u.email),
        u.created_ms,
        u.last_login_ms,
        u.password.encode()
    )
}

/// Appends one new user to `dir/users` (creating it with its header if needed) and makes
/// the line durable before returning.
pub fn append_user(dir: &Path, user: &User) -> io::Result<()> {
    let path = dir.join(USERS_FILE);
    let mut opts = OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&path)?;
    let mut text = String::new();
    if f.metadata()?.len() == 0 {
        text.push_str(HEADER);
        text.push('\n');
    }
    text.push_str(&line(user));
    f.write_all(text.as_bytes())?;
    f.sync_data()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next()? {
            '\\' => out.push('\\'),
            't' => out.push('\t'),
            'n' => out.push('\n'),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("sessiond-users-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn round_trip_with_awkward_names() {
        let dir = tmpdir("rt");
        let mut t = UserTable::new();
        let rec = PasswordRecord::create(b"pw", 1).unwrap();
        t.create("admin", rec.clone(), Role::Admin, "", 10).unwrap();
        t.create(
            "tab\there\\and\nnewline",
            rec.clone(),
            Role::User,
            "a\tb@c.d",
            11,
        )
        .unwrap();
        save_users(&dir, &t).unwrap();
        let back = load_users(&dir).unwrap();
        assert_eq!(back.len(), 2);
        let u = back.by_name("tab\there\\and\nnewline").unwrap();
        assert_eq!((u.id, u.role, u.created_ms), (2, Role::User, 11));
        assert!(u.password.verify(b"pw"));
        assert_eq!(u.email, "a\tb@c.d");
        assert_eq!(back.by_name("admin").unwrap().role, Role::Admin);
        // appending a registration keeps the file loadable
        let mut t2 = UserTable::new();
        let carol = t2
            .create("carol", rec, Role::User, "c@x.y", 12)
            .unwrap()
            .clone();
        let carol = User { id: 3, ..carol };
        append_user(&dir, &carol).unwrap();
        let back = load_users(&dir).unwrap();
        assert_eq!(back.by_name("carol").unwrap().id, 3);
        assert_eq!(back.len(), 3);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_file_is_empty_and_corruption_names_the_line() {
        let dir = tmpdir("bad");
        assert!(load_users(&dir).unwrap().is_empty());
        fs::write(
            dir.join(USERS_FILE),
            "# sessiond users v1\n1\tadmin\tadmin\t\t1\t0\tnot-a-record\n",
        )
        .unwrap();
        match load_users(&dir) {
            Err(UsersFileError::Corrupt { line: 2, .. }) => {}
            other => panic!("unexpected: {other:?}"),
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
