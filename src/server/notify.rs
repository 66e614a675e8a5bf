//! systemd's notify protocol (sd_notify(3)): `READY=1` once the server listens,
//! `RELOADING=1` / `READY=1` around a SIGHUP reload, `STOPPING=1` at shutdown, and
//! `WATCHDOG=1` at half the interval systemd asks for (`WatchdogSec=`), from the loop
//! itself, so a wedged loop is restarted.
//!
//! Owns the datagram socket named by `NOTIFY_SOCKET` (a path, or `@name` for an abstract
//! one) and the watchdog's schedule. Without `NOTIFY_SOCKET` every call does nothing. A
//! notice that cannot be sent is logged once and dropped: systemd's state is advisory.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use log::{debug, warn};

/// The connection to systemd, if it asked for one.
#[derive(Debug)]
pub(super) struct Notify {
    socket: Option<(UnixDatagram, Target)>,
    watchdog: Option<Duration>,
    next_watchdog: Option<Instant>,
    warned: bool,
}

#[derive(Debug)]
enum Target {
    Path(std::path::PathBuf),
    #[cfg(target_os = "linux")]
    Abstract(Vec<u8>),
}

impl Notify {
    /// From the environment systemd sets (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`).
    pub(super) fn from_env(now: Instant) -> Notify {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|s| {
            let bytes = s.as_encoded_bytes();
            match bytes.first() {
                #[cfg(target_os = "linux")]
                Some(b'@') => Some(Target::Abstract(bytes[1..].to_vec())),
                Some(b'/') => Some(Target::Path(s.into())),
                _ => None,
            }
        });
        let socket = target.and_then(|t| match UnixDatagram::unbound() {
            Ok(s) => {
                let _ = s.set_nonblocking(true);
                Some((s, t))
            }
            Err(e) => {
                warn!("systemd notify: cannot make a socket: {e}");
                None
            }
        });
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us && socket.is_some())
            .map(Duration::from_micros);
        Notify {
            socket,
            watchdog,
            next_watchdog: watchdog.map(|w| now + w / 2),
            warned: false,
        }
    }

    /// Sends `state` (lines of `NAME=value`).
    pub(super) fn send(&mut self, state: &str) {
        let Some((socket, target)) = &self.socket else {
            return;
        };
        let sent = match target {
            Target::Path(p) => socket.send_to(state.as_bytes(), p),
            #[cfg(target_os = "linux")]
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name)
                    .and_then(|a| socket.send_to_addr(state.as_bytes(), &a))
            }
        };
        match sent {
            Ok(_) => debug!("systemd notify: {}", state.replace('\n', " ")),
            Err(e) if !self.warned => {
                self.warned = true;
                warn!("systemd notify: cannot send ({e}); further failures are not logged");
            }
            Err(_) => {}
        }
    }

    /// `READY=1`, with a status line.
    pub(super) fn ready(&mut self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// `RELOADING=1`, with the monotonic time systemd wants with it.
    pub(super) fn reloading(&mut self) {
        let usec = monotonic_usec();
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
    }

    /// The next watchdog ping's deadline, if there is a watchdog.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.next_watchdog
    }

    /// Pings the watchdog when due.
    pub(super) fn tick(&mut self, now: Instant) {
        let (Some(due), Some(every)) = (self.next_watchdog, self.watchdog) else {
            return;
        };
        if now >= due {
            self.send("WATCHDOG=1");
            self.next_watchdog = Some(now + every / 2);
        }
    }
}

/// CLOCK_MONOTONIC in microseconds (what `MONOTONIC_USEC` is measured in).
fn monotonic_usec() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1_000
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}
