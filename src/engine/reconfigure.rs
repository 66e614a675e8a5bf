//! Changing the engine's deadlines, limits and policies while it runs (SIGHUP).
//!
//! Owns which settings may change under live connections and how each takes effect:
//! limits and policies at the next request they bear on; deadlines at the next time a
//! connection's or session's timer is computed (a timer already set keeps its moment, and
//! is recomputed when it fires); a session's lifetime for sessions created after. The
//! timer wheel's tick and the audit window's size keep their value until a restart.

use super::{Engine, EngineConfig};
use crate::protocol::DecodeLimits;

/// What a reconfiguration did: `name: old -> new` for each setting that changed, and the
/// names of those that only a restart changes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconfigured {
    /// Taken now.
    pub changed: Vec<String>,
    /// Kept until a restart.
    pub need_restart: Vec<String>,
}

/// `name: old -> new` for each listed field of `old` and `new` whose value differs.
macro_rules! differences {
    ($old:expr, $new:expr, $out:expr, $($field:ident).+) => {{
        let (o, n) = (format!("{:?}", $old.$($field).+), format!("{:?}", $new.$($field).+));
        if o != n {
            $out.push(format!("{}: {o} -> {n}", stringify!($($field).+)));
        }
    }};
}

impl Engine {
    /// The password hashes a second the shell's workers are expected to verify, used to
    /// space SERVER_BUSY refusals until the rate has been measured (`busy`).
    pub fn expect_hash_rate(&mut self, per_sec: f64) {
        self.busy.expect_rate(per_sec);
    }

    /// Runs with `new` from now on, but for the settings only a restart changes.
    pub fn reconfigure(&mut self, mut new: EngineConfig) -> Reconfigured {
        let old = &self.cfg;
        let mut r = Reconfigured::default();
        let out = &mut r.changed;
        differences!(old, new, out, heartbeat_interval);
        differences!(old, new, out, heartbeat_timeout);
        differences!(old, new, out, login_timeout);
        differences!(old, new, out, session_idle);
        differences!(old, new, out, session_lifetime);
        differences!(old, new, out, max_frame);
        differences!(old, new, out, frames_per_turn);
        differences!(old, new, out, max_output);
        differences!(old, new, out, max_consecutive_errors);
        differences!(old, new, out, busy_retry_after);
        differences!(old, new, out, max_sessions_per_user);
        differences!(old, new, out, on_limit);
        differences!(old, new, out, duplicate);
        differences!(old, new, out, registration_open);
        differences!(old, new, out, min_password_len);
        differences!(old, new, out, iterations);
        differences!(old, new, out, tombstone_min);
        differences!(old, new, out, summary_interval);
        differences!(old, new, out, activity_save_interval);
        differences!(old, new, out, policy.free_failures);
        differences!(old, new, out, policy.base_delay);
        differences!(old, new, out, policy.max_delay);
        differences!(old, new, out, policy.address_burst);
        differences!(old, new, out, policy.address_rate_per_min);
        differences!(old, new, out, policy.address_hashes);
        differences!(old, new, out, policy.daily_logins);
        differences!(old, new, out, max_connections);
        differences!(old, new, out, max_connections_per_address);
        differences!(old, new, out, shutdown_reconnect_after);
        differences!(old, new, out, max_undurable_events);
        differences!(old, new, out, storage_retry_after);
        differences!(old, new, out, app_roles);
        let mut later = Vec::new();
        differences!(old, new, later, tick);
        differences!(old, new, later, audit_window);
        r.need_restart = later;
        new.tick = old.tick;
        new.audit_window = old.audit_window;
        if new.max_frame != old.max_frame {
            self.limits = DecodeLimits::server(new.max_frame);
        }
        if new.busy_retry_after != old.busy_retry_after {
            self.busy.set_base(new.busy_retry_after);
        }
        self.policy.set_config(new.policy.clone());
        self.cfg = new;
        r
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::auth::PasswordRecord;
    use crate::session::UserTable;

    #[test]
    fn limits_change_and_what_needs_a_restart_is_kept_and_said() {
        #[allow(clippy::disallowed_methods)] // an arbitrary origin for a made-up clock
        let now = Instant::now();
        let cfg = EngineConfig::default();
        let dummy = PasswordRecord::dummy(1).unwrap();
        let mut e = Engine::new(cfg.clone(), UserTable::new(), dummy, now, 0);
        let mut new = cfg.clone();
        new.max_connections = 7;
        new.policy.daily_logins = 3;
        new.max_frame = 8192;
        new.audit_window = 5;
        let r = e.reconfigure(new);
        assert_eq!(
            r.changed,
            [
                "max_frame: 65536 -> 8192",
                "policy.daily_logins: 0 -> 3",
                "max_connections: 16384 -> 7"
            ]
        );
        assert_eq!(r.need_restart, ["audit_window: 100000 -> 5"]);
        assert_eq!(e.config().max_connections, 7);
        assert_eq!(e.config().audit_window, cfg.audit_window);
        assert_eq!(e.limits.max_frame, 8192);
        assert_eq!(e.policy.config().daily_logins, 3);
        // the same again changes nothing
        let same = e.config().clone();
        assert_eq!(e.reconfigure(same), Reconfigured::default());
    }
}
