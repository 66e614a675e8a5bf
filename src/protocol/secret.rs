//! [`Secret`]: a password as the codec hands it over (LOGIN_REQUEST, REGISTER_REQUEST,
//! CHANGE_PASSWORD): zeroed when dropped, never shown by `Debug`.

use std::fmt;

/// A password in memory. Zeroed on drop; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Takes the password's bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    /// The password's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the password is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.fill(0);
        // Keeps the zeroing from being optimised away as a dead store.
        std::hint::black_box(&self.0);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.as_bytes().to_vec())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_it_and_drop_zeroes_it() {
        assert_eq!(
            format!("{:?}", Secret::from("hunter2")),
            "Secret(<redacted>)"
        );
        let s = Secret::from(String::from("pw"));
        assert_eq!((s.len(), s.as_bytes()), (2, &b"pw"[..]));
        assert!(!s.is_empty());
    }
}
