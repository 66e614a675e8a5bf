//! Session tokens: generation from the OS RNG and the SHA-256 digest the server keeps.
//!
//! The server never stores a token, only `Digest`; comparison is constant-time so a
//! matching prefix takes as long as a mismatch.

use std::fmt;

use crate::protocol::Token;

/// SHA-256 of a token: the only form of it the server keeps.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest is not a credential, but printing it helps nobody; keep logs clean.
        f.write_str("Digest(..)")
    }
}

impl Digest {
    /// SHA-256 of `token`.
    pub fn of(token: &Token) -> Digest {
        let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Digest(out)
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Digest) -> bool {
        let mut acc = 0u8;
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            acc |= a ^ b;
        }
        std::hint::black_box(acc) == 0
    }
}

/// 32 fresh bytes from the operating system's generator.
pub fn generate() -> std::io::Result<Token> {
    let mut t = [0u8; 32];
    getrandom::fill(&mut t).map_err(std::io::Error::other)?;
    Ok(Token(t))
}

/// A random non-zero u64 (public session ids: not guessable, not a count of logins).
pub fn random_id() -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(std::io::Error::other)?;
    Ok(u64::from_be_bytes(b).max(1))
}

/// A random password of `len` characters from `[A-Za-z0-9]` (for the first admin).
pub fn random_password(len: usize) -> std::io::Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(std::io::Error::other)?;
        for &b in &buf {
            // Rejection sampling: 248 = 4 * 62 keeps every character equally likely.
            if b < 248 && out.len() < len {
                out.push(char::from(ALPHABET[(b % 62) as usize]));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_known_answer() {
        // SHA-256 of 32 zero bytes
        let d = Digest::of(&Token([0; 32]));
        assert_eq!(d.0[..8], [0x66, 0x68, 0x7a, 0xad, 0xf8, 0x62, 0xbd, 0x77]);
    }

    #[test]
    fn random_passwords() {
        let a = random_password(20).unwrap();
        assert_eq!(a.len(), 20);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, random_password(20).unwrap());
    }

    #[test]
    fn tokens_differ_and_compare() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert!(Digest::of(&a).ct_eq(&Digest::of(&a)));
        assert!(!Digest::of(&a).ct_eq(&Digest::of(&b)));
        assert_eq!(format!("{:?}", Digest::of(&a)), "Digest(..)");
    }
}
