//! sessiond: a login-session server speaking the binary protocol of `protocol.md`.
//!
//! A sans-IO core with one thin shell (like quinn-proto and rustls). The core, in layers
//! (each uses only those above it; `tests/layering.rs` checks it, and clippy.toml keeps
//! the clock out):
//!
//! - [`protocol`]: the codec. Bytes to frames and back; the opcode table and wire enums
//!   declared once. No state, no time.
//! - [`timer`]: the hierarchical timer wheel behind every deadline.
//! - [`labels`]: interned text labels (device names, audit details) with reference counts.
//! - [`auth`]: PBKDF2 password records and the hash jobs the engine hands out; pure.
//! - [`conn`]: one connection: its key, its state enum (the diagram and every transition
//!   live there), its buffers.
//! - [`session`]: users, sessions, tokens and the expiry rule. Pure logic.
//! - [`engine`]: every decision: the (state, message) match, timers, the durable events
//!   (`engine::event`) and their replay. `handle_*` in and `poll_*` out, each with `now`;
//!   one turn ([`engine::Engine::turn`]) that every driver runs through its
//!   [`engine::Shell`].
//!
//! The shell, which alone knows sockets, threads, files and the clock:
//!
//! - [`server`]: the mio loop (accept, read, write, plain or TLS), the hash worker pool and
//!   the store thread, all answering through one `mio::Waker`; the engine's shell.
//! - [`store`]: files: the journal (CRC-framed records of the engine's events, group
//!   commit, torn-tail recovery), snapshots, the data directory's lock.
//! - [`tls`]: TLS configuration (rustls, ring): certificates, keys, what clients trust.
//! - [`client`]: a Rust client (a sans-IO core and a blocking shell over it), used by the
//!   examples and tests.
//! - [`ffi`]: the C ABI over the client (the only module with `unsafe`).
//! - [`cli`]: the `sessiond` binary's options, declared once (clap).
//! - [`ops`]: operator subcommands on the data directory (`user add`, `audit`, ...).
#![deny(unsafe_code)]

pub mod auth;
pub mod cert_validity;
pub mod cli;
pub mod client;
pub mod config_file;
pub mod conn;
pub mod engine;
pub mod ffi;
pub mod labels;
pub mod logging;
pub mod ops;
pub mod protocol;
pub mod server;
pub mod session;
pub mod store;
pub mod timer;
pub mod tls;
