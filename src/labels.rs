//! Interned labels: short text pairs that many records repeat (a session's client and
//! platform; an audit record's detail), kept once with a reference count instead of as
//! heap strings in every record. A label goes when its last holder releases it.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use slab::Slab;

/// A handle on an interned pair; one reference per holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelId(u32);

#[derive(Debug)]
struct Label {
    a: Box<str>,
    b: Box<str>,
    refs: u32,
}

/// The interned pairs, each with its reference count.
#[derive(Debug, Default)]
pub struct Labels {
    labels: Slab<Label>,
    /// Slab keys, hashed by (a, b).
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl Labels {
    /// A reference to the label `(a, b)`, created if new.
    pub fn acquire(&mut self, a: &str, b: &str) -> LabelId {
        let hash = self.hasher.hash_one((a, b));
        let labels = &mut self.labels;
        if let Some(&k) = self.index.find(hash, |&k| {
            let l = &labels[k as usize];
            &*l.a == a && &*l.b == b
        }) {
            labels[k as usize].refs += 1;
            return LabelId(k);
        }
        let k = labels.insert(Label {
            a: a.into(),
            b: b.into(),
            refs: 1,
        }) as u32;
        let hasher = &self.hasher;
        self.index.insert_unique(hash, k, |&k| {
            let l = &labels[k as usize];
            hasher.hash_one((&*l.a, &*l.b))
        });
        LabelId(k)
    }

    /// Drops one reference; the label goes with the last.
    pub fn release(&mut self, id: LabelId) {
        let Some(l) = self.labels.get_mut(id.0 as usize) else {
            return;
        };
        l.refs -= 1;
        if l.refs > 0 {
            return;
        }
        let hash = self.hasher.hash_one((&*l.a, &*l.b));
        if let Ok(e) = self.index.find_entry(hash, |&k| k == id.0) {
            e.remove();
        }
        self.labels.remove(id.0 as usize);
    }

    /// `(a, b)` of a label (empty strings for a stale handle).
    pub fn get(&self, id: LabelId) -> (&str, &str) {
        self.labels
            .get(id.0 as usize)
            .map(|l| (&*l.a, &*l.b))
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
        let mut d = Labels::default();
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
