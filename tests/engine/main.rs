//! The engine driven through its one turn by the deterministic harness
//! (`tests/common/harness.rs`): made-up time, hashes run inline, every reply decoded.
//! One file per part of protocol.md, named by its section.

#[path = "../common/mod.rs"]
mod common;

mod s2_frames;
mod s4_durable;
mod s4_sessions_per_account;
mod s4_several_servers;
mod s4_storage;
mod s5_admin_set_password;
mod s5_attrs;
mod s5_audit;
mod s5_connection_limits;
mod s5_heartbeat;
mod s5_login;
mod s5_logout_disconnect;
mod s5_profiles;
mod s5_register;
mod s5_resume;
