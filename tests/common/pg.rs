//! A throwaway PostgreSQL for the cluster tests: `initdb` into a temporary directory, then
//! `pg_ctl start` on a free loopback port (as the `postgres` user when the tests run as
//! root, since PostgreSQL refuses to run as root), stopped and removed on drop. A real
//! server, never a mock. Debian's `postgresql` package provides the binaries
//! (`/usr/lib/postgresql/VERSION/bin`); `.ci/run` installs it.
#![allow(clippy::disallowed_methods)] // a real database server, in real time

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Pg {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    /// Run the server's commands as `postgres` (we are root).
    as_postgres: bool,
}

/// The newest installed PostgreSQL's `bin` directory.
fn find_bin() -> Option<PathBuf> {
    if let Ok(b) = std::env::var("SESSIOND_PG_BIN") {
        return Some(PathBuf::from(b));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

impl Pg {
    /// Starts one, or says why it cannot (no PostgreSQL installed): the caller skips, or
    /// fails under `SESSIOND_REQUIRE_POSTGRES=1`.
    pub fn start(tag: &str) -> Result<Pg, String> {
        let bin = find_bin()
            .ok_or("no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)")?;
        let dir = std::env::temp_dir().join(format!("sessiond-pg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !ok.success() {
                return Err("cannot give the data directory to the postgres user".into());
            }
        }
        let port = super::free_port();
        let pg = Pg {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = pg.data();
        let out = pg.run(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        pg.start_server()?;
        Ok(pg)
    }

    /// `Pg::start`, or None (printing why) when PostgreSQL is not installed and
    /// `SESSIOND_REQUIRE_POSTGRES=1` is not set.
    pub fn start_or_skip(tag: &str) -> Option<Pg> {
        match Pg::start(tag) {
            Ok(pg) => Some(pg),
            Err(why) => {
                let required = std::env::var("SESSIOND_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
                assert!(!required, "SESSIOND_REQUIRE_POSTGRES=1, but: {why}");
                println!("skipping: {why}");
                None
            }
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<Output, String> {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{tool}: {e}"))
    }

    /// `pg_ctl start`, waiting until it takes connections.
    pub fn start_server(&self) -> Result<(), String> {
        let data = self.data();
        let log = self.dir.join("server.log");
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c fsync=off -c max_connections=100",
            self.port,
            path(&self.dir)
        );
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                path(&data),
                "-l",
                path(&log),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        if !out.status.success() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!(
                "pg_ctl start failed: {}{}\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// `pg_ctl stop` (fast: connections are closed at once).
    pub fn stop_server(&self) {
        let data = self.data();
        let _ = self.run("pg_ctl", &["-D", path(&data), "-m", "fast", "-w", "stop"]);
    }

    /// Freezes the server and its backends (SIGSTOP): connections stay open and the
    /// kernel still acknowledges what is sent, but nothing is answered, as with a database
    /// host that hangs. `thaw` undoes it.
    pub fn freeze(&self) {
        self.signal_all("-STOP");
    }

    pub fn thaw(&self) {
        self.signal_all("-CONT");
    }

    fn signal_all(&self, sig: &str) {
        // No pid file: the server is stopped, nothing to signal.
        let Some(pid) = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().map(str::to_owned))
        else {
            return;
        };
        let _ = Command::new("pkill").args([sig, "-P", &pid]).status();
        let _ = Command::new("kill").args([sig, &pid]).status();
    }

    /// A connection string for database `postgres` as user `postgres`.
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A sessiond node on this database: named `name`, with a lease of `lease` (`1s` and
    /// the like) and generous login limits, plus `extra` flags; its data directory too.
    pub fn node(
        &self,
        name: &str,
        lease: &str,
        extra: &[&str],
    ) -> (super::process::Running, PathBuf) {
        let dir = super::process::fresh_dir(&format!("cluster-{name}"));
        let url = self.url();
        let mut args = vec![
            "--cluster",
            &url,
            "--node-id",
            name,
            "--cluster-lease",
            lease,
            "--login-burst",
            "100000",
            "--login-rate",
            "600000",
            "--address-hashes",
            "64",
        ];
        args.extend_from_slice(extra);
        (super::process::Running::start_with(&dir, &args), dir)
    }

    /// Waits (bounded) until a TCP connection to the server succeeds or fails as `up` says.
    pub fn wait_until(&self, up: bool, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let ok = std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok();
            if ok == up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not come {}",
                if up { "up" } else { "down" }
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.thaw();
        let data = self.data();
        let _ = self.run(
            "pg_ctl",
            &["-D", path(&data), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}
