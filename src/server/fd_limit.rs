//! Open-file descriptors: the process's limit, raised at start, and the share of it kept
//! away from clients so the store always has the descriptors a snapshot needs (issue 16:
//! a client could otherwise stop the server by holding every descriptor while a snapshot
//! was due).
//!
//! Design: as redis and mosquitto do, the soft limit is raised to the hard one at start.
//! A reserve stays with the server itself (listeners, the poll, the waker, signals, the
//! journal, the lock, and the few files a snapshot opens); the rest is the client
//! sockets' budget, which the shell never exceeds: at the budget it stops accepting (the
//! kernel queues the connections) until a socket closes. Within the budget, the engine's
//! connection limit is capped (logged) so that connections refused with SERVER_BUSY,
//! which linger a moment after their last frame, still fit, and lingering sockets are
//! bounded too. A descriptor running out anyway pauses accepts (`server::accept_all`),
//! and a snapshot that fails for it is retried (`committer`).

use log::{info, warn};

/// The descriptors the server keeps for itself under a soft limit of `limit`: a quarter
/// of it, between 32 and 64. (It uses 12 of its own when idle, standard streams included;
/// a snapshot opens four more for a moment; each connection refused at the limit holds
/// one until it is closed.)
pub(super) fn reserve(limit: u64) -> u64 {
    (limit / 4).clamp(32, 64)
}

/// Raises the soft limit on open files to the hard limit and returns the soft limit now
/// in force (None where it cannot be read: not Linux).
pub(super) fn raise() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let now = getrlimit(Resource::Nofile);
        let soft = now.current?;
        if let Some(hard) = now.maximum.filter(|&h| h > soft) {
            let raised = Rlimit {
                current: Some(hard),
                maximum: now.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => {
                    info!("open-file limit raised from {soft} to {hard}");
                    return Some(hard);
                }
                Err(e) => warn!("cannot raise the open-file limit from {soft} to {hard}: {e}"),
            }
        }
        Some(soft)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// How the descriptors are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Budget {
    /// Client sockets open at once, live and lingering: the limit less the reserve.
    /// Beyond it the shell stops accepting until one closes (the kernel queues them).
    pub sockets: usize,
    /// Sockets lingering after their last frame at once (an eighth of `sockets`, at least
    /// one); beyond it the oldest is closed at once.
    pub lingering: usize,
    /// The engine's connection limit: the configured one (0: no limit), capped so that
    /// refusals (accepted, told SERVER_BUSY, lingering) still fit in `sockets`.
    pub connections: usize,
}

impl Budget {
    /// The budget under a soft limit of `limit` descriptors (None: no limit known, nothing
    /// capped), for a configured connection limit; the cap is logged when it applies.
    pub(super) fn new(configured: usize, limit: Option<u64>) -> Budget {
        let Some(limit) = limit else {
            return Budget {
                sockets: usize::MAX,
                lingering: usize::MAX,
                connections: configured,
            };
        };
        let sockets = limit.saturating_sub(reserve(limit)).max(2) as usize;
        let lingering = (sockets / 8).max(1);
        let room = sockets - lingering;
        let connections = if configured == 0 || configured > room {
            let was = if configured == 0 {
                "no limit".to_owned()
            } else {
                configured.to_string()
            };
            warn!(
                "at most {room} connections (--max-connections {was}): the open-file limit \
                 is {limit} and {} descriptors are kept for the server and its store; raise \
                 the limit (`ulimit -n`, LimitNOFILE=) for more",
                reserve(limit)
            );
            room
        } else {
            configured
        };
        Budget {
            sockets,
            lingering,
            connections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_scales_with_the_limit_and_the_caps_apply_only_when_needed() {
        assert_eq!(reserve(64), 32);
        assert_eq!(reserve(200), 50);
        assert_eq!(reserve(1024), 64);
        assert_eq!(reserve(1 << 20), 64);
        let b = Budget::new(16_384, Some(1024));
        assert_eq!((b.sockets, b.lingering, b.connections), (960, 120, 840));
        let b = Budget::new(0, Some(64));
        assert_eq!((b.sockets, b.lingering, b.connections), (32, 4, 28));
        assert_eq!(Budget::new(100, Some(1 << 20)).connections, 100);
        assert_eq!(Budget::new(0, None).connections, 0);
        let b = Budget::new(10, Some(4));
        assert_eq!(
            (b.sockets, b.lingering, b.connections),
            (2, 1, 1),
            "room for one"
        );
    }
}
