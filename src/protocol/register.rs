//! The registration family (protocol.md 5.15 to 5.17): REGISTER_REQUEST,
//! REGISTER_SUCCESS, REGISTER_FAILURE, and the username, password and email rules.

use bytes::BufMut;

use super::error::{DecodeErrorKind, MAX_MESSAGE};
use super::login::MAX_USERNAME;
use super::macros::wire_enum;
use super::secret::Secret;
use super::wire::{put_str, str_len, Reader};

/// protocol.md 5.15: `email` is 0..=254 bytes on the wire.
pub const MAX_EMAIL: usize = 254;
/// protocol.md 5.15: fewest bytes in a new username (3 to 32).
pub const MIN_NEW_USERNAME: usize = 3;
/// protocol.md 5.15: most bytes in a new username (3 to 32).
pub const MAX_NEW_USERNAME: usize = 32;

/// REGISTER_REQUEST (0x20): `username str, password str, email str`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest {
    /// The new account's name (0..=64 bytes; the rules: [`valid_new_username`]).
    pub username: String,
    /// Its password (0..=1024 bytes).
    pub password: Secret,
    /// A contact address (0..=254 bytes; the rules: [`valid_email`]).
    pub email: String,
}

impl RegisterRequest {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(RegisterRequest {
            username: r.string(MAX_USERNAME)?.to_owned(),
            password: Secret::decode(r)?,
            email: r.string(MAX_EMAIL)?.to_owned(),
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        str_len(&self.username, MAX_USERNAME)
            + self.password.encoded_len()
            + str_len(&self.email, MAX_EMAIL)
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        put_str(dst, &self.username, MAX_USERNAME);
        self.password.encode(dst);
        put_str(dst, &self.email, MAX_EMAIL);
    }
}

/// protocol.md 5.15: "3 to 32 bytes of `a-z`, `0-9`, `.`, `_`, `-`, beginning with a letter
/// or a digit".
pub fn valid_new_username(name: &str) -> bool {
    let b = name.as_bytes();
    (MIN_NEW_USERNAME..=MAX_NEW_USERNAME).contains(&b.len())
        && b[0].is_ascii_lowercase() | b[0].is_ascii_digit()
        && b.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}

/// protocol.md 5.15: "one `@` with at least one character before it, and a domain after it
/// that contains a dot not at its ends; no spaces or control characters".
pub fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

/// REGISTER_SUCCESS (0x21): `user_id u64, username str(3..=32)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterSuccess {
    /// The new account's id.
    pub user_id: u64,
    /// Its name.
    pub username: String,
}

impl RegisterSuccess {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(RegisterSuccess {
            user_id: r.u64()?,
            username: r.string(MAX_NEW_USERNAME)?.to_owned(),
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        8 + str_len(&self.username, MAX_NEW_USERNAME)
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u64(self.user_id);
        put_str(dst, &self.username, MAX_NEW_USERNAME);
    }
}

wire_enum! {
    /// REGISTER_FAILURE reasons (protocol.md 5.17).
    pub open enum RegisterFailureReason: u16, to_u16, from_u16, unknown "UNKNOWN_REASON" {
        /// An account with that name exists.
        UsernameTaken = 0x0001 => "USERNAME_TAKEN",
        /// The name breaks protocol.md 5.15's rules for new usernames.
        InvalidUsername = 0x0002 => "INVALID_USERNAME",
        /// Shorter than the server's minimum.
        PasswordTooShort = 0x0003 => "PASSWORD_TOO_SHORT",
        /// Not an email address.
        InvalidEmail = 0x0004 => "INVALID_EMAIL",
        /// The server takes no registrations.
        RegistrationClosed = 0x0005 => "REGISTRATION_CLOSED",
        /// Too many attempts from this address, or the hash queue is full: retry later.
        ServerBusy = 0x0006 => "SERVER_BUSY",
        /// The server cannot make the account durable now (its disk is full, or far
        /// behind): retry later.
        StorageUnavailable = 0x0007 => "STORAGE_UNAVAILABLE",
    }
}

/// REGISTER_FAILURE (0x22): `reason u16, message str(0..=256)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterFailure {
    /// Why the account was not created.
    pub reason: RegisterFailureReason,
    /// Human readable (0..=256 bytes).
    pub message: String,
}

impl RegisterFailure {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(RegisterFailure {
            reason: RegisterFailureReason::from_u16(r.u16()?),
            message: r.string(MAX_MESSAGE)?.to_owned(),
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        2 + str_len(&self.message, MAX_MESSAGE)
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u16(self.reason.to_u16());
        put_str(dst, &self.message, MAX_MESSAGE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{check_vector as check, Frame, Message};

    #[test]
    #[rustfmt::skip]
    fn register_request_vector() {
        let mut bytes = vec![
            0x53, 0x44, 0x01, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x27, // header: op 20, req 1, len 39
            0x00, 0x05, b'c', b'a', b'r', b'o', b'l',       // username
            0x00, 0x0b,                                     // password, 11 bytes:
        ];
        bytes.extend_from_slice(b"s3cret;pass");
        bytes.extend_from_slice(&[0x00, 0x11]);             // email, 17 bytes:
        bytes.extend_from_slice(b"carol@example.org");
        check(&bytes, Frame::reply(1, Message::RegisterRequest(RegisterRequest {
            username: "carol".into(),
            password: "s3cret;pass".into(),
            email: "carol@example.org".into(),
        })));
    }

    #[test]
    #[rustfmt::skip]
    fn register_success_and_failure_vectors() {
        let ok = [
            0x53, 0x44, 0x01, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0f, // header: op 21, len 15
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, // user id 3
            0x00, 0x05, b'c', b'a', b'r', b'o', b'l',
        ];
        check(&ok, Frame::reply(1, Message::RegisterSuccess(RegisterSuccess {
            user_id: 3,
            username: "carol".into(),
        })));
        let mut fail = vec![
            0x53, 0x44, 0x01, 0x22, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x12, // header: op 22, len 18
            0x00, 0x01, 0x00, 0x0e,                          // USERNAME_TAKEN, 14-byte message
        ];
        fail.extend_from_slice(b"username taken");
        check(&fail, Frame::reply(1, Message::RegisterFailure(RegisterFailure {
            reason: RegisterFailureReason::UsernameTaken,
            message: "username taken".into(),
        })));
    }

    #[test]
    fn username_rules() {
        for ok in ["abc", "carol", "a.b_c-d", "9lives", &"x".repeat(32)] {
            assert!(valid_new_username(ok), "{ok}");
        }
        for bad in [
            "ab",
            "Carol",
            "_x1",
            ".abc",
            "a b c",
            "caról",
            &"x".repeat(33),
            "",
        ] {
            assert!(!valid_new_username(bad), "{bad}");
        }
    }

    #[test]
    fn email_rules() {
        for ok in ["a@b.c", "carol+tag@example.org", "x.y@sub.example.co"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "@b.c", "a@", "a@b", "a@.b", "a@b.", "a b@c.d", "a@b@c.d", "a@b.c\n",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }
}
