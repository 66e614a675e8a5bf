//! What the example clients share (`examples/client.rs`, `examples/admin.rs`, included with
//! `#[path]`): the token file, kept owner-only, and typing a secret with echo off.

use std::io::Write;
use std::path::Path;

use sessiond::protocol::Token;

/// The token in the file at `path`, if it holds one (64 hex digits).
pub fn load_token(path: &Path) -> Option<Token> {
    Token::from_hex(std::fs::read_to_string(path).ok()?.trim())
}

/// Writes the token, owner-only (mode 0600, also when the file existed).
pub fn save_token(path: &Path, token: &Token) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    // An existing file keeps its old mode on open; make sure it is owner-only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    writeln!(f, "{}", token.to_hex())
}

/// Echo off at the terminal while a secret is typed.
///
/// Design: `stty -echo`, then `stty echo`, run on our own stdin, rather than termios
/// calls: the crate denies `unsafe_code` (libc's `tcsetattr` needs it, and libc is not a
/// direct dependency), the rustix in Cargo.lock is built without its `termios` feature,
/// and a new crate for one prompt is not worth it; stty is POSIX. Ctrl-C while echo is
/// off would leave the terminal silent, so from the first secret on, SIGINT, SIGTERM and
/// SIGHUP are taken on a thread (signal-hook, already a dependency) that turns echo back
/// on when it is off, then does the signal's default action. (Not undone after the read:
/// signal-hook cannot give the default handler back.)
pub mod echo {
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Once;

    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;

    /// Echo is off now (a signal must turn it back on).
    static OFF: AtomicBool = AtomicBool::new(false);

    fn stty(arg: &str) -> bool {
        Command::new("stty")
            .arg(arg)
            .stdin(Stdio::inherit())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn restore_on_signals() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
                return;
            };
            std::thread::spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    if OFF.load(Ordering::SeqCst) {
                        stty("echo");
                    }
                    let _ = signal_hook::low_level::emulate_default_handler(sig);
                    std::process::exit(128 + sig);
                }
            });
        });
    }

    /// Echo is off while this lives (when stty could turn it off).
    pub struct Off(bool);

    impl Off {
        pub fn new() -> Off {
            restore_on_signals();
            let off = stty("-echo");
            if off {
                OFF.store(true, Ordering::SeqCst);
            } else {
                eprint!("(cannot turn echo off: the input will show) ");
            }
            Off(off)
        }
    }

    impl Drop for Off {
        fn drop(&mut self) {
            if self.0 {
                stty("echo");
                OFF.store(false, Ordering::SeqCst);
            }
        }
    }
}
