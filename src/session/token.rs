//! Session tokens: generation from the OS RNG, the SHA-256 digest the server keeps, and
//! the keyed tag that checks a bound connection's token without hashing it again.
//!
//! The server never stores a token, only `Digest`; comparison is constant-time so a
//! matching prefix takes as long as a mismatch.
//!
//! Design: a heartbeat carries the token, and SHA-256 of it was half of the server's own
//! work per heartbeat. When a connection is bound to a session (after its token was
//! checked against the session's digest), the connection keeps a 64-bit SipHash-2-4 tag
//! of the token under a key drawn once per process; later requests on that connection
//! are checked by recomputing the tag (~20 ns for 32 bytes, against ~200 ns for the
//! digest), and only a mismatch takes the digest path (to tell TOKEN_MISMATCH from
//! INVALID_TOKEN). Memory and files still never hold a usable token: the tag is a keyed
//! 64-bit function of a 256-bit token, and the key lives only in memory. A forged token
//! passes only if its tag collides (2^-64 a try, and 16 wrong ones in a row close the
//! connection).

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

/// The per-process key of [`TokenKey::tag`]. `Debug` never shows it.
#[derive(Clone)]
pub struct TokenKey {
    k0: u64,
    k1: u64,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key from the operating system's generator.
    pub fn random() -> std::io::Result<TokenKey> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).map_err(std::io::Error::other)?;
        Ok(Self::from_bytes(b))
    }

    /// A key from 16 bytes (little-endian halves, as SipHash's reference takes them).
    pub fn from_bytes(b: [u8; 16]) -> TokenKey {
        let (lo, hi) = b.split_at(8);
        TokenKey {
            k0: u64::from_le_bytes(lo.try_into().unwrap_or_default()),
            k1: u64::from_le_bytes(hi.try_into().unwrap_or_default()),
        }
    }

    /// SipHash-2-4 of `token` under this key: what a bound connection keeps.
    pub fn tag(&self, token: &Token) -> u64 {
        siphash24(self.k0, self.k1, token.as_bytes())
    }
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012) of `msg` under the key `(k0, k1)`.
fn siphash24(k0: u64, k1: u64, msg: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut blocks = msg.chunks_exact(8);
    for b in &mut blocks {
        let m = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let mut last = [0u8; 8];
    let rest = blocks.remainder();
    last[..rest.len()].copy_from_slice(rest);
    last[7] = msg.len() as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    round(&mut v);
    round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
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
    fn siphash_matches_the_reference_vectors_and_std() {
        // The paper's key 00 01 .. 0f and messages 00 01 .. (n-1), SipHash-2-4 64-bit.
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let k = TokenKey::from_bytes(key);
        let msg: Vec<u8> = (0..64).collect();
        assert_eq!(siphash24(k.k0, k.k1, &msg[..0]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(k.k0, k.k1, &msg[..15]), 0xa129_ca61_49be_45e5);
        // and std's (deprecated, unkeyed-by-default) SipHash-2-4 agrees at every length
        #[allow(deprecated)]
        for n in 0..64 {
            use std::hash::Hasher;
            let mut h = std::hash::SipHasher::new_with_keys(k.k0, k.k1);
            h.write(&msg[..n]);
            assert_eq!(siphash24(k.k0, k.k1, &msg[..n]), h.finish(), "length {n}");
        }
    }

    #[test]
    fn a_tag_depends_on_the_key_and_the_token() {
        let a = TokenKey::from_bytes([1; 16]);
        let b = TokenKey::from_bytes([2; 16]);
        let t = Token([7; 32]);
        assert_eq!(a.tag(&t), a.tag(&Token([7; 32])));
        assert_ne!(a.tag(&t), b.tag(&t));
        assert_ne!(a.tag(&t), a.tag(&Token([8; 32])));
        assert_eq!(format!("{a:?}"), "TokenKey(..)");
    }

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
