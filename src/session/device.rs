//! Device labels (the client and platform a session logged in with), interned: the
//! sessions of one client build share one copy instead of two heap strings each.
//!
//! Owns the labels and their reference counts; a label goes when its last session does.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use slab::Slab;

/// A handle on an interned (client, platform) pair; one reference per holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceId(u32);

#[derive(Debug)]
struct Label {
    client: Box<str>,
    platform: Box<str>,
    refs: u32,
}

#[derive(Debug, Default)]
pub struct Devices {
    labels: Slab<Label>,
    /// Slab keys, hashed by (client, platform).
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl Devices {
    /// A reference to the label `(client, platform)`, created if new.
    pub fn acquire(&mut self, client: &str, platform: &str) -> DeviceId {
        let hash = self.hasher.hash_one((client, platform));
        let labels = &mut self.labels;
        if let Some(&k) = self.index.find(hash, |&k| {
            let l = &labels[k as usize];
            &*l.client == client && &*l.platform == platform
        }) {
            labels[k as usize].refs += 1;
            return DeviceId(k);
        }
        let k = labels.insert(Label {
            client: client.into(),
            platform: platform.into(),
            refs: 1,
        }) as u32;
        let hasher = &self.hasher;
        self.index.insert_unique(hash, k, |&k| {
            let l = &labels[k as usize];
            hasher.hash_one((&*l.client, &*l.platform))
        });
        DeviceId(k)
    }

    /// Drops one reference; the label goes with the last.
    pub fn release(&mut self, id: DeviceId) {
        let Some(l) = self.labels.get_mut(id.0 as usize) else {
            return;
        };
        l.refs -= 1;
        if l.refs > 0 {
            return;
        }
        let hash = self.hasher.hash_one((&*l.client, &*l.platform));
        if let Ok(e) = self.index.find_entry(hash, |&k| k == id.0) {
            e.remove();
        }
        self.labels.remove(id.0 as usize);
    }

    /// `(client, platform)` of a label (empty strings for a stale handle).
    pub fn get(&self, id: DeviceId) -> (&str, &str) {
        self.labels
            .get(id.0 as usize)
            .map(|l| (&*l.client, &*l.platform))
            .unwrap_or(("", ""))
    }

    /// Distinct labels held.
    pub fn count(&self) -> usize {
        self.labels.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_per_label_released_with_its_last_holder() {
        let mut d = Devices::default();
        let a = d.acquire("game", "linux");
        let b = d.acquire("game", "linux");
        let c = d.acquire("game", "windows");
        let e = d.acquire("gamel", "inux");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(
            a, e,
            "the split between the two fields is part of the label"
        );
        assert_eq!(d.count(), 3);
        assert_eq!(d.get(c), ("game", "windows"));
        d.release(a);
        assert_eq!(d.get(b), ("game", "linux"));
        d.release(b);
        assert_eq!(d.count(), 2);
        assert_eq!(d.get(b), ("", ""));
        // a new label may reuse the slot; the index finds it under its own name
        let f = d.acquire("other", "");
        assert_eq!(d.get(f), ("other", ""));
        assert_eq!(d.acquire("game", "windows"), c);
        assert_eq!(d.count(), 3);
    }
}
