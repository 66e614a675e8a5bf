//! SIGHUP: new settings, prepared off the loop (files are read there) and taken by it.
//!
//! Owns the hand-over, not what the settings are: whoever runs the server (the binary)
//! gives a [`Reloader`] that reads them again; the loop takes the [`Reload`] it returns
//! with its next turn (TLS for the connections accepted after, the engine's limits at
//! once, the log's filter) and logs what changed. A reload that fails changes nothing.

use std::fmt;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use log::warn;
use mio::Waker;

use crate::engine::EngineConfig;

/// What a reload brings.
#[derive(Debug, Clone)]
pub struct Reload {
    /// TLS for connections accepted from now on (None: plain TCP).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The engine's deadlines, limits and policies.
    pub engine: EngineConfig,
    /// PBKDF2 iterations for password records made from now on.
    pub iterations: u32,
    /// The log's filter (`RUST_LOG` syntax).
    pub log_filter: String,
    /// Which browser origins may open a WebSocket from now on.
    pub ws_origins: crate::server::OriginPolicy,
    /// Settings that differ from the running ones and that only a restart changes.
    pub restart_only: Vec<String>,
}

/// Reads the settings again (the `--config` file and the flags); runs on its own thread.
#[derive(Clone)]
pub struct Reloader(Arc<dyn Fn() -> Result<Reload, String> + Send + Sync>);

impl Reloader {
    /// A reloader that calls `f`.
    pub fn new(f: impl Fn() -> Result<Reload, String> + Send + Sync + 'static) -> Reloader {
        Reloader(Arc::new(f))
    }
}

impl fmt::Debug for Reloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reloader")
    }
}

/// Reloads in flight: at most one at a time (a SIGHUP during one is taken after it).
pub(super) struct Reloads {
    tx: Sender<Result<Reload, String>>,
    rx: Receiver<Result<Reload, String>>,
    running: bool,
    again: bool,
}

impl Reloads {
    pub(super) fn new() -> Reloads {
        let (tx, rx) = mpsc::channel();
        Reloads {
            tx,
            rx,
            running: false,
            again: false,
        }
    }

    /// Starts a reload on a thread of its own; the result comes with a wake.
    pub(super) fn start(&mut self, reloader: &Reloader, waker: &Arc<Waker>) {
        if self.running {
            self.again = true;
            return;
        }
        let (f, tx, waker) = (reloader.clone(), self.tx.clone(), waker.clone());
        let spawned = std::thread::Builder::new()
            .name("sessiond-reload".into())
            .spawn(move || {
                let _ = tx.send((f.0)());
                let _ = waker.wake();
            });
        match spawned {
            Ok(_) => self.running = true,
            Err(e) => warn!("SIGHUP: cannot start the reload: {e}; nothing changed"),
        }
    }

    /// A reload's result, when one is done; and whether another SIGHUP came meanwhile.
    pub(super) fn try_recv(&mut self) -> Option<(Result<Reload, String>, bool)> {
        let r = self.rx.try_recv().ok()?;
        self.running = false;
        Some((r, std::mem::take(&mut self.again)))
    }
}
