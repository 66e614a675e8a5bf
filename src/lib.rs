//! sessiond: a login-session server speaking the binary protocol of `protocol.md`.
//!
//! A sans-IO core with one thin loop (like quinn-proto and rustls):
//!
//! - [`protocol`]: the codec. Bytes to frames and back; no state, no time.
//! - [`session`]: users, sessions, tokens and the expiry rule. Pure logic.
//! - [`timer`]: the hierarchical timer wheel behind every deadline.
//! - [`conn`]: one connection's state and buffers (the state diagram lives there).
//! - [`engine`]: the server's decisions: the (state, message) match, timers, hash jobs,
//!   and the durable events they cause. Takes `now` as an argument; never calls the
//!   clock, never touches a socket or a file.
//! - [`auth`]: PBKDF2 password records and the worker pool that hashes off the loop,
//!   answering through `mio::Waker`.
//! - [`server`]: the only module that knows mio: poll loop, accept, read, write, and the
//!   store thread that makes each iteration's events durable while the loop goes on.
//! - [`store`]: the only module that touches files: the journal (CRC-framed events, group
//!   commit, torn-tail recovery), snapshots, the data directory's lock.
//! - [`tls`]: TLS configuration (rustls, ring): certificates, keys, what clients trust.
//! - [`client`]: a blocking Rust client, used by the examples and tests.
//! - [`ffi`]: the C ABI over the client (the only module with `unsafe`).
//! - [`labels`]: interned text labels (device names, audit details) with reference counts.
//! - [`cli`]: the `sessiond` binary's options.
//! - [`ops`]: operator subcommands on the data directory (`user add`, `audit`, ...).
#![deny(unsafe_code)]

pub mod auth;
pub mod cli;
pub mod client;
pub mod conn;
pub mod engine;
pub mod ffi;
pub mod labels;
pub mod ops;
pub mod protocol;
pub mod server;
pub mod session;
pub mod store;
pub mod timer;
pub mod tls;
