//! Salted PBKDF2-HMAC-SHA256 password records.
//!
//! Text form: `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`, so a record names its
//! algorithm and cost and old records keep verifying after the default cost goes up.

use std::fmt;
use std::num::NonZeroU32;

use ring::pbkdf2;

const ALGORITHM: &str = "pbkdf2-sha256";
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
const MAX_ITERATIONS: u32 = 10_000_000;

/// A stored password: PBKDF2-HMAC-SHA256 with a random per-record salt.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PasswordRecord {
    iterations: NonZeroU32,
    salt: [u8; SALT_LEN],
    hash: [u8; HASH_LEN],
}

/// Why a record's text form was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordParseError {
    /// Not four `$`-separated fields.
    Format,
    /// The algorithm is not `pbkdf2-sha256`.
    Algorithm,
    /// The iterations are not a decimal number from 1 to 10,000,000.
    Iterations,
    /// The salt is not 16 bytes in lowercase hex.
    Salt,
    /// The hash is not 32 bytes in lowercase hex.
    Hash,
}

impl fmt::Display for RecordParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordParseError::Format => "expected algorithm$iterations$salt$hash",
            RecordParseError::Algorithm => "unknown algorithm",
            RecordParseError::Iterations => "iterations out of range",
            RecordParseError::Salt => "salt is not 16 bytes of hex",
            RecordParseError::Hash => "hash is not 32 bytes of hex",
        })
    }
}

impl std::error::Error for RecordParseError {}

fn iterations(n: u32) -> std::io::Result<NonZeroU32> {
    NonZeroU32::new(n)
        .filter(|n| n.get() <= MAX_ITERATIONS)
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "iterations out of range")
        })
}

fn random<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(std::io::Error::other)?;
    Ok(b)
}

fn derive(iterations: NonZeroU32, salt: &[u8], password: &[u8]) -> [u8; HASH_LEN] {
    let mut out = [0u8; HASH_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password,
        &mut out,
    );
    out
}

impl PasswordRecord {
    /// Hashes `password` with a fresh random salt.
    pub fn create(password: &[u8], iterations: u32) -> std::io::Result<Self> {
        let iterations = self::iterations(iterations)?;
        let salt = random::<SALT_LEN>()?;
        let hash = derive(iterations, &salt, password);
        Ok(PasswordRecord {
            iterations,
            salt,
            hash,
        })
    }

    /// A record no password matches (random salt and hash), verified in place of a real
    /// one for unknown usernames so that both take the same time.
    pub fn dummy(iterations: u32) -> std::io::Result<Self> {
        Ok(PasswordRecord {
            iterations: self::iterations(iterations)?,
            salt: random::<SALT_LEN>()?,
            hash: random::<HASH_LEN>()?,
        })
    }

    /// Constant-time comparison of the derived key (ring's `pbkdf2::verify`).
    pub fn verify(&self, password: &[u8]) -> bool {
        pbkdf2::verify(
            pbkdf2::PBKDF2_HMAC_SHA256,
            self.iterations,
            &self.salt,
            password,
            &self.hash,
        )
        .is_ok()
    }

    /// The record's PBKDF2 iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations.get()
    }

    /// The text form: `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`.
    pub fn encode(&self) -> String {
        format!(
            "{ALGORITHM}${}${}${}",
            self.iterations,
            hex(&self.salt),
            hex(&self.hash)
        )
    }

    /// Reads the text form [`encode`](Self::encode) writes.
    pub fn parse(s: &str) -> Result<Self, RecordParseError> {
        let parts: Vec<&str> = s.split('$').collect();
        let [alg, iter, salt, hash] = parts[..] else {
            return Err(RecordParseError::Format);
        };
        if alg != ALGORITHM {
            return Err(RecordParseError::Algorithm);
        }
        if iter.is_empty() || !iter.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RecordParseError::Iterations);
        }
        let n: u32 = iter.parse().map_err(|_| RecordParseError::Iterations)?;
        let iterations = iterations(n).map_err(|_| RecordParseError::Iterations)?;
        Ok(PasswordRecord {
            iterations,
            salt: unhex(salt).ok_or(RecordParseError::Salt)?,
            hash: unhex(hash).ok_or(RecordParseError::Hash)?,
        })
    }
}

impl fmt::Debug for PasswordRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PasswordRecord({ALGORITHM}, {} iterations)",
            self.iterations
        )
    }
}

fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(char::from(D[(x >> 4) as usize]));
        s.push(char::from(D[(x & 15) as usize]));
    }
    s
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != N * 2 {
        return None;
    }
    let val = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = (val(pair[0])? << 4) | val(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_pbkdf2_hmac_sha256() {
        // "password" / "salt", 1 and 2 iterations, 32-byte output (the widely published
        // PBKDF2-HMAC-SHA256 vectors, e.g. in RFC 7914's test suite lineage).
        let one = derive(NonZeroU32::new(1).unwrap(), b"salt", b"password");
        assert_eq!(
            hex(&one),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
        );
        let two = derive(NonZeroU32::new(2).unwrap(), b"salt", b"password");
        assert_eq!(
            hex(&two),
            "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"
        );
    }

    #[test]
    fn create_verify_and_salts_differ() {
        let a = PasswordRecord::create(b"pa;ss", 100).unwrap();
        let b = PasswordRecord::create(b"pa;ss", 100).unwrap();
        assert!(a.verify(b"pa;ss"));
        assert!(!a.verify(b"pa;sS"));
        assert!(!a.verify(b""));
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.hash, b.hash);
        assert!(PasswordRecord::create(b"x", 0).is_err());
    }

    #[test]
    fn dummy_never_verifies() {
        let d = PasswordRecord::dummy(10).unwrap();
        assert!(!d.verify(b""));
        assert!(!d.verify(b"password"));
        assert_eq!(d.iterations(), 10);
    }

    #[test]
    fn encode_parse_round_trip() {
        let a = PasswordRecord::create(b"pw", 1234).unwrap();
        let text = a.encode();
        assert!(text.starts_with("pbkdf2-sha256$1234$"));
        assert_eq!(text.len(), "pbkdf2-sha256$1234$".len() + 32 + 1 + 64);
        let b = PasswordRecord::parse(&text).unwrap();
        assert_eq!(a, b);
        assert!(b.verify(b"pw"));
    }

    #[test]
    fn parse_rejects_each_malformation() {
        let good = PasswordRecord::create(b"pw", 5).unwrap().encode();
        let parts: Vec<&str> = good.split('$').collect();
        let with = |i: usize, v: &str| {
            let mut p = parts.clone();
            p[i] = v;
            p.join("$")
        };
        use RecordParseError::*;
        assert_eq!(PasswordRecord::parse(""), Err(Format));
        assert_eq!(PasswordRecord::parse(&format!("{good}$x")), Err(Format));
        assert_eq!(PasswordRecord::parse(&with(0, "bcrypt")), Err(Algorithm));
        assert_eq!(PasswordRecord::parse(&with(1, "0")), Err(Iterations));
        assert_eq!(PasswordRecord::parse(&with(1, "10000001")), Err(Iterations));
        assert_eq!(PasswordRecord::parse(&with(1, "+5")), Err(Iterations));
        assert_eq!(PasswordRecord::parse(&with(2, "zz")), Err(Salt));
        assert_eq!(
            PasswordRecord::parse(&with(2, &parts[2].to_uppercase())),
            Err(Salt)
        );
        assert_eq!(PasswordRecord::parse(&with(3, &parts[3][..62])), Err(Hash));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let a = PasswordRecord::create(b"pw", 5).unwrap();
        let dbg = format!("{a:?}");
        assert!(!dbg.contains(&hex(&a.salt)) && !dbg.contains(&hex(&a.hash)[..8]));
    }
}
