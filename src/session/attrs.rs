//! Session attributes: the small key-value map an application keeps in a session
//! (protocol.md 5.39 to 5.43).
//!
//! Owns one session's map and its bounds (64 keys, 4,096 bytes of keys and values in all,
//! keys 1..=64 bytes, values at most 3,904 bytes): kept sorted by key, a change past a bound
//! refused whole. The session table keeps maps beside its sessions, only for sessions that
//! hold some, so a session without attributes costs nothing more.

use crate::protocol::{MAX_ATTRS, MAX_ATTR_BYTES, MAX_ATTR_KEY, MAX_ATTR_VALUE};

/// A change that would pass a bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrLimit {
    /// A key empty or over 64 bytes, or a value over 3,904 bytes.
    Field,
    /// More than 64 attributes.
    Count,
    /// More than 4,096 bytes of keys and values.
    Bytes,
}

impl AttrLimit {
    /// For the error message.
    pub fn describe(self) -> String {
        match self {
            AttrLimit::Field => format!(
                "a key is 1 to {MAX_ATTR_KEY} bytes and a value at most {MAX_ATTR_VALUE} bytes"
            ),
            AttrLimit::Count => format!("a session holds at most {MAX_ATTRS} attributes"),
            AttrLimit::Bytes => {
                format!("a session holds at most {MAX_ATTR_BYTES} bytes of keys and values")
            }
        }
    }
}

/// One session's attributes, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    entries: Vec<(Box<str>, Box<[u8]>)>,
    bytes: usize,
}

impl Attributes {
    /// Sets `key` to `value`, or refuses (nothing changed).
    pub fn set(&mut self, key: &str, value: &[u8]) -> Result<(), AttrLimit> {
        if key.is_empty() || key.len() > MAX_ATTR_KEY || value.len() > MAX_ATTR_VALUE {
            return Err(AttrLimit::Field);
        }
        match self.entries.binary_search_by(|(k, _)| (**k).cmp(key)) {
            Ok(i) => {
                let bytes = self.bytes - self.entries[i].1.len() + value.len();
                if bytes > MAX_ATTR_BYTES {
                    return Err(AttrLimit::Bytes);
                }
                self.entries[i].1 = value.into();
                self.bytes = bytes;
            }
            Err(i) => {
                if self.entries.len() >= MAX_ATTRS {
                    return Err(AttrLimit::Count);
                }
                let bytes = self.bytes + key.len() + value.len();
                if bytes > MAX_ATTR_BYTES {
                    return Err(AttrLimit::Bytes);
                }
                self.entries.insert(i, (key.into(), value.into()));
                self.bytes = bytes;
            }
        }
        Ok(())
    }

    /// Removes `key`; whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.entries.binary_search_by(|(k, _)| (**k).cmp(key)) {
            Ok(i) => {
                let (k, v) = self.entries.remove(i);
                self.bytes -= k.len() + v.len();
                true
            }
            Err(_) => false,
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.entries[i].1)
    }

    /// Every attribute, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of keys and values.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_kept_and_a_refused_change_changes_nothing() {
        let mut a = Attributes::default();
        a.set("game", b"456").unwrap();
        a.set("game", b"457").unwrap();
        a.set("a", b"").unwrap();
        assert_eq!(a.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["a", "game"]);
        assert_eq!((a.get("game"), a.bytes()), (Some(&b"457"[..]), 1 + 4 + 3));
        assert_eq!(a.set("", b"x"), Err(AttrLimit::Field));
        assert_eq!(a.set(&"k".repeat(65), b"x"), Err(AttrLimit::Field));
        assert_eq!(a.set("k", &[0; 3905]), Err(AttrLimit::Field));
        // the byte bound: 4,096 in all
        a.set("big", &[0; 3904]).unwrap();
        let before = a.clone();
        assert_eq!(a.set("big2", &[0; 178]), Err(AttrLimit::Bytes));
        assert_eq!(a, before);
        a.set("big2", &[0; 177]).unwrap();
        assert_eq!(a.bytes(), 4096);
        assert_eq!(a.set("game", b"4578"), Err(AttrLimit::Bytes));
        assert!(a.remove("big") && !a.remove("big"));
        // the count bound: 64 keys
        let mut b = Attributes::default();
        for i in 0..64 {
            b.set(&format!("k{i}"), b"").unwrap();
        }
        assert_eq!(b.set("one-more", b""), Err(AttrLimit::Count));
        b.set("k1", b"replacing is fine").unwrap();
    }
}
