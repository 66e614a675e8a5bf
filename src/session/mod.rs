//! Users, sessions and tokens: the pure logic of who is logged in.
//!
//! Owns the user and session tables, token generation and digests, and the expiry rule.
//! Knows nothing of sockets or frames; takes time as arguments.

mod attrs;
mod clock;
mod table;
pub mod token;
mod tombstones;
mod users;

pub use attrs::{AttrLimit, Attributes};
pub use clock::WallClock;
pub use table::{Collision, Expiry, Session, SessionTable};
pub use token::Digest;
pub use users::{User, UserTable, UsernameTaken};
