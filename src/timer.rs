//! A hierarchical timer wheel (in the manner of tokio's and Linux's) that drives every
//! deadline in the server: login deadlines, heartbeat timeouts, session expiry.
//!
//! Owns scheduling only: entries are opaque values with a deadline. It never reads the
//! clock; time comes in as `Instant` arguments and is counted in ticks since `origin`.
//!
//! Six levels of 64 slots. A slot at level `L` covers `64^L` ticks, a level `64^(L+1)`:
//!
//! | level | slot width (ticks) | level range (ticks) | slot width at 10 ms | range at 10 ms |
//! |------:|-------------------:|--------------------:|--------------------:|---------------:|
//! | 0     | 1                  | 64                  | 10 ms               | 640 ms         |
//! | 1     | 64                 | 4,096               | 640 ms              | 41 s           |
//! | 2     | 4,096              | 262,144             | 41 s                | 44 min         |
//! | 3     | 262,144            | 16,777,216          | 44 min              | 1.9 days       |
//! | 4     | 16,777,216         | 1,073,741,824       | 1.9 days            | 124 days       |
//! | 5     | 1,073,741,824      | 68,719,476,736      | 124 days            | 21.8 years     |
//!
//! An entry due at tick `when` goes to the lowest level at which `when` and the wheel's
//! current tick `elapsed` fall in the same level range but possibly different slots: the
//! level of the highest bit in which they differ, divided by 6. So a slot at level `L > 0`
//! holds entries that are due within that slot's span; when the wheel reaches the slot's
//! start, its entries "cascade": each is placed again, now at a lower level, until it sits
//! in level 0 at its exact tick. An entry is moved at most once per level (amortised O(1)).
//!
//! Deadlines beyond the top level's range are clamped for placement (the top level acts
//! as a ring) but keep their exact tick, so they cascade again instead of firing early.
//!
//! Insert, reset and cancel are O(1): entries live in a `Slab` and every slot is an
//! intrusive doubly-linked list. `occupied: u64` bitmaps find the next non-empty slot of a
//! level with one rotate and `trailing_zeros`.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use slab::Slab;

const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// Farthest tick ahead that can be placed exactly; beyond it, placement clamps.
const MAX_AHEAD: u64 = (1 << (SLOT_BITS as u64 * LEVELS as u64)) - 1;
/// List index of the "due" list: entries whose deadline has passed, waiting to be polled.
const DUE: usize = LEVELS * SLOTS;
const NIL: u32 = u32::MAX;

/// Names one scheduled timer. A slab index plus the generation it was inserted with, so
/// an id that outlived its timer can never touch the timer that reuses the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    /// Never 0, so `Option<TimerId>` is 8 bytes (records keep one).
    generation: NonZeroU32,
}

struct Entry<T> {
    value: T,
    /// Exact deadline in ticks since origin (rounded up).
    when: u64,
    generation: NonZeroU32,
    /// Which list the entry is on: `level * 64 + slot`, or `DUE`.
    list: u16,
    prev: u32,
    next: u32,
}

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

const EMPTY: List = List {
    head: NIL,
    tail: NIL,
};

/// The wheel. `T` is what the caller wants back when a timer fires.
pub struct TimerWheel<T> {
    origin: Instant,
    tick: Duration,
    /// Ticks processed: every entry with `when <= elapsed` is on the due list.
    elapsed: u64,
    entries: Slab<Entry<T>>,
    lists: Box<[List]>,
    occupied: [u64; LEVELS],
    /// The generation the next timer gets (never 0; wraps to 1).
    next_generation: NonZeroU32,
}

impl<T> TimerWheel<T> {
    /// A wheel whose tick 0 is `origin`. Panics if `tick` is zero (a programming error).
    pub fn new(origin: Instant, tick: Duration) -> Self {
        Self::with_capacity(origin, tick, 0)
    }

    /// [`new`](Self::new), with room for `capacity` timers reserved up front.
    pub fn with_capacity(origin: Instant, tick: Duration, capacity: usize) -> Self {
        assert!(!tick.is_zero(), "timer wheel tick must be > 0");
        TimerWheel {
            origin,
            tick,
            elapsed: 0,
            entries: Slab::with_capacity(capacity),
            lists: vec![EMPTY; DUE + 1].into_boxed_slice(),
            occupied: [0; LEVELS],
            next_generation: NonZeroU32::MIN,
        }
    }

    /// The resolution: a deadline is rounded up to a whole number of ticks after `origin`.
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// Timers pending (not yet polled or cancelled).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Ticks from origin to `t`, rounded up: a deadline never fires early.
    fn ticks_ceil(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.origin).as_nanos();
        let tick = self.tick.as_nanos();
        (d.div_ceil(tick)).min(u64::MAX as u128) as u64
    }

    /// Whole ticks from origin to `t`, rounded down: the present tick.
    fn ticks_floor(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.origin).as_nanos();
        (d / self.tick.as_nanos()).min(u64::MAX as u128) as u64
    }

    fn instant_of(&self, ticks: u64) -> Instant {
        // Saturate far-future deadlines rather than overflow `Instant`.
        let nanos = self.tick.as_nanos().saturating_mul(ticks as u128);
        let d = Duration::from_nanos(nanos.min(u64::MAX as u128) as u64);
        self.origin
            .checked_add(d)
            .unwrap_or(self.origin + Duration::from_secs(1 << 40))
    }

    /// Schedules `value` at `deadline` (rounded up to the next tick). O(1).
    pub fn insert(&mut self, deadline: Instant, value: T) -> TimerId {
        let when = self.ticks_ceil(deadline);
        let generation = self.next_generation;
        self.next_generation = generation.checked_add(1).unwrap_or(NonZeroU32::MIN);
        let index = self.entries.insert(Entry {
            value,
            when,
            generation,
            list: 0,
            prev: NIL,
            next: NIL,
        }) as u32;
        self.place(index);
        TimerId { index, generation }
    }

    fn entry(&self, id: TimerId) -> Option<&Entry<T>> {
        self.entries
            .get(id.index as usize)
            .filter(|e| e.generation == id.generation)
    }

    /// Moves a pending timer to `deadline`. False (and nothing done) for a stale id. O(1).
    pub fn reset(&mut self, id: TimerId, deadline: Instant) -> bool {
        if self.entry(id).is_none() {
            return false;
        }
        let when = self.ticks_ceil(deadline);
        self.unlink(id.index);
        self.entries[id.index as usize].when = when;
        self.place(id.index);
        true
    }

    /// Removes a pending timer and returns its value; None for a stale id. O(1).
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        self.entry(id)?;
        self.unlink(id.index);
        Some(self.entries.remove(id.index as usize).value)
    }

    /// The value of a pending timer; None for a stale id.
    pub fn get(&self, id: TimerId) -> Option<&T> {
        self.entry(id).map(|e| &e.value)
    }

    /// The value of a pending timer, to change; None for a stale id.
    pub fn get_mut(&mut self, id: TimerId) -> Option<&mut T> {
        self.entries
            .get_mut(id.index as usize)
            .filter(|e| e.generation == id.generation)
            .map(|e| &mut e.value)
    }

    /// The (rounded) deadline of a pending timer.
    pub fn deadline(&self, id: TimerId) -> Option<Instant> {
        self.entry(id).map(|e| self.instant_of(e.when))
    }

    /// Advances to `now` and pops one timer whose deadline has passed. Call until `None`.
    /// Timers come out in deadline order, tick by tick.
    pub fn poll_expired(&mut self, now: Instant) -> Option<(TimerId, T)> {
        let target = self.ticks_floor(now);
        loop {
            let head = self.lists[DUE].head;
            if head != NIL {
                self.unlink(head);
                let e = self.entries.remove(head as usize);
                let id = TimerId {
                    index: head,
                    generation: e.generation,
                };
                return Some((id, e.value));
            }
            match self.next_expiration() {
                Some((level, slot, at)) if at <= target => {
                    self.elapsed = at;
                    self.process_slot(level, slot);
                }
                _ => {
                    self.elapsed = self.elapsed.max(target);
                    return None;
                }
            }
        }
    }

    /// The earliest instant at which `poll_expired` may return something. Cheap: a bitmap
    /// scan per level. Never later than the earliest deadline; it is earlier when the
    /// earliest slot is above level 0 (its start, where it cascades), so the caller wakes,
    /// polls nothing, and asks again.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.lists[DUE].head != NIL {
            return Some(self.instant_of(self.elapsed));
        }
        self.next_expiration().map(|(_, _, at)| self.instant_of(at))
    }

    /// The level an entry due at `when` belongs to, given the current tick.
    fn level_for(elapsed: u64, when: u64) -> usize {
        // The highest bit where the two differ decides the level; `| SLOT_MASK` makes equal
        // values (and differences only in the lowest six bits) land in level 0.
        let masked = (elapsed ^ when) | SLOT_MASK;
        let significant = 63 - masked.leading_zeros() as usize;
        (significant / SLOT_BITS as usize).min(LEVELS - 1)
    }

    fn slot_for(level: usize, when: u64) -> usize {
        ((when >> (level as u32 * SLOT_BITS)) & SLOT_MASK) as usize
    }

    /// Puts an unlinked entry on the right list for its deadline.
    fn place(&mut self, index: u32) {
        let when = self.entries[index as usize].when;
        if when <= self.elapsed {
            self.push_back(DUE, index);
            return;
        }
        // Clamp far deadlines for placement only; `when` keeps the truth.
        let placed = when.min(self.elapsed + MAX_AHEAD);
        let level = Self::level_for(self.elapsed, placed);
        let slot = Self::slot_for(level, placed);
        self.occupied[level] |= 1 << slot;
        self.push_back(level * SLOTS + slot, index);
    }

    /// The next non-empty slot over all levels: (level, slot, tick at which it is due).
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        let mut best: Option<(usize, usize, u64)> = None;
        for level in 0..LEVELS {
            let occupied = self.occupied[level];
            if occupied == 0 {
                continue;
            }
            let shift = level as u32 * SLOT_BITS;
            let slot_range = 1u64 << shift;
            let level_range = slot_range << SLOT_BITS;
            let now_slot = ((self.elapsed >> shift) & SLOT_MASK) as u32;
            // Rotate so the current slot is bit 0; the first set bit is the next slot.
            let dist = occupied.rotate_right(now_slot).trailing_zeros();
            let slot = ((now_slot + dist) as u64) & SLOT_MASK;
            let level_start = self.elapsed & !(level_range - 1);
            let mut at = level_start + slot * slot_range;
            if at <= self.elapsed && level > 0 {
                // Only the top level wraps (clamped far deadlines): the slot is one
                // rotation ahead. Lower levels never hold a slot at or before `elapsed`,
                // because the wheel stops at every slot start before passing it.
                at += level_range;
            }
            if best.is_none_or(|(_, _, b)| at < b) {
                best = Some((level, slot as usize, at));
            }
        }
        best
    }

    /// The wheel has reached this slot: entries due now move to the due list, the rest are
    /// placed again (at a lower level).
    fn process_slot(&mut self, level: usize, slot: usize) {
        let list = level * SLOTS + slot;
        let mut cur = self.lists[list].head;
        self.lists[list] = EMPTY;
        self.occupied[level] &= !(1 << slot);
        while cur != NIL {
            let next = self.entries[cur as usize].next;
            let e = &mut self.entries[cur as usize];
            e.prev = NIL;
            e.next = NIL;
            self.place(cur);
            cur = next;
        }
    }

    fn push_back(&mut self, list: usize, index: u32) {
        let tail = self.lists[list].tail;
        {
            let e = &mut self.entries[index as usize];
            e.list = list as u16;
            e.prev = tail;
            e.next = NIL;
        }
        if tail == NIL {
            self.lists[list].head = index;
        } else {
            self.entries[tail as usize].next = index;
        }
        self.lists[list].tail = index;
    }

    fn unlink(&mut self, index: u32) {
        let (list, prev, next) = {
            let e = &self.entries[index as usize];
            (e.list as usize, e.prev, e.next)
        };
        if prev == NIL {
            self.lists[list].head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            self.lists[list].tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
        if list != DUE && self.lists[list].head == NIL {
            self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
        }
        let e = &mut self.entries[index as usize];
        e.prev = NIL;
        e.next = NIL;
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // an arbitrary origin for made-up times
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const MS: Duration = Duration::from_millis(1);

    fn wheel() -> (Instant, TimerWheel<u64>) {
        let t0 = Instant::now();
        (t0, TimerWheel::new(t0, MS))
    }

    fn at(t0: Instant, ticks: u64) -> Instant {
        t0 + Duration::from_millis(ticks)
    }

    /// Advances tick by tick from `from` to `to` and returns (tick, value) of all fired.
    fn drain_steps(w: &mut TimerWheel<u64>, t0: Instant, from: u64, to: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for t in from..=to {
            while let Some((_, v)) = w.poll_expired(at(t0, t)) {
                out.push((t, v));
            }
        }
        out
    }

    #[test]
    fn level_and_slot_math() {
        // equal or differing only in the low 6 bits: level 0
        for e in 0..200u64 {
            for d in 0..64u64 {
                let when = (e & !SLOT_MASK) | d;
                assert_eq!(TimerWheel::<()>::level_for(e, when.max(e)), 0, "{e} {when}");
            }
        }
        // exhaustive over every delta up to 4096 from a few starting points
        for &e in &[0u64, 1, 63, 64, 100, 4095, 123_456] {
            for delta in 0..=4096u64 {
                let when = e + delta;
                let level = TimerWheel::<()>::level_for(e, when);
                // `when` lies in the same level-`level` range as `e`...
                let range_bits = (level as u32 + 1) * SLOT_BITS;
                assert_eq!(e >> range_bits, when >> range_bits, "e={e} when={when}");
                // ...and not in the same range one level down (unless level 0).
                if level > 0 {
                    let below = level as u32 * SLOT_BITS;
                    assert_ne!(e >> below, when >> below, "e={e} when={when}");
                }
                assert_eq!(
                    TimerWheel::<()>::slot_for(level, when),
                    ((when >> (level as u32 * SLOT_BITS)) & 63) as usize
                );
            }
        }
        // boundaries at every power of 64, +-1
        for level in 1..LEVELS as u32 {
            let p = 1u64 << (level * SLOT_BITS);
            assert_eq!(TimerWheel::<()>::level_for(0, p - 1), (level - 1) as usize);
            assert_eq!(TimerWheel::<()>::level_for(0, p), level as usize);
            assert_eq!(TimerWheel::<()>::level_for(0, p + 1), level as usize);
        }
        // beyond the range: clamped to the top level
        assert_eq!(TimerWheel::<()>::level_for(0, 1 << 40), LEVELS - 1);
    }

    #[test]
    fn fires_exactly_at_its_tick_stepping() {
        let mut deltas: Vec<u64> = (0..=4200).collect();
        for level in 1..4u32 {
            let p = 1u64 << (level * SLOT_BITS);
            deltas.extend([p - 1, p, p + 1, 2 * p + 3]);
        }
        let (t0, mut w) = wheel();
        let start = 77; // not aligned to anything
        assert!(w.poll_expired(at(t0, start)).is_none());
        for &d in &deltas {
            w.insert(at(t0, start + d), start + d);
        }
        let max = start + deltas.iter().max().unwrap();
        let fired = drain_steps(&mut w, t0, start, max);
        assert_eq!(fired.len(), deltas.len());
        for (tick, v) in fired {
            assert_eq!(tick, v, "fired at the wrong tick");
        }
        assert!(w.is_empty());
    }

    #[test]
    fn fires_exactly_when_jumping() {
        // Big jumps must not fire anything early; each poll up to T fires exactly those <= T.
        let (t0, mut w) = wheel();
        let deadlines: Vec<u64> = (0..3000u64).map(|i| (i * 7919) % 300_000 + 1).collect();
        for &d in &deadlines {
            w.insert(at(t0, d), d);
        }
        let mut now = 0;
        let mut fired = 0;
        for step in [1u64, 63, 64, 65, 4095, 4097, 50_000, 100_000, 200_000] {
            now += step;
            while let Some((_, v)) = w.poll_expired(at(t0, now)) {
                assert!(v <= now, "fired {v} early at {now}");
                fired += 1;
            }
            let left_due = deadlines.iter().filter(|&&d| d <= now).count();
            assert_eq!(fired, left_due, "at {now}");
        }
    }

    #[test]
    fn far_deadlines_clamp_and_never_fire_early() {
        let (t0, mut w) = wheel();
        let far = MAX_AHEAD + 5_000;
        let id = w.insert(at(t0, far), far);
        assert_eq!(w.deadline(id), Some(at(t0, far)));
        let mut now = 0;
        while now < far {
            now = (now + (MAX_AHEAD / 7)).min(far - 1);
            assert!(w.poll_expired(at(t0, now)).is_none(), "early at {now}");
            if now == far - 1 {
                break;
            }
        }
        assert_eq!(w.poll_expired(at(t0, far)).map(|(_, v)| v), Some(far));
    }

    #[test]
    fn rounds_up_and_past_deadlines_fire_next_poll() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0, Duration::from_millis(10));
        let id = w.insert(t0 + Duration::from_millis(11), 1u64);
        assert_eq!(w.deadline(id), Some(t0 + Duration::from_millis(20)));
        assert!(w.poll_expired(t0 + Duration::from_millis(19)).is_none());
        assert!(w.poll_expired(t0 + Duration::from_millis(20)).is_some());
        // a deadline in the past
        let _ = w.poll_expired(t0 + Duration::from_millis(100));
        w.insert(t0, 2);
        assert_eq!(w.next_deadline(), Some(t0 + Duration::from_millis(100)));
        assert_eq!(
            w.poll_expired(t0 + Duration::from_millis(100)).map(|x| x.1),
            Some(2)
        );
        assert!(w.next_deadline().is_none());
    }

    #[test]
    fn stale_ids_are_refused() {
        let (t0, mut w) = wheel();
        let a = w.insert(at(t0, 5), 1);
        assert_eq!(w.cancel(a), Some(1));
        assert_eq!(w.cancel(a), None);
        assert!(!w.reset(a, at(t0, 9)));
        // the slot is reused by a new timer; the old id must not reach it
        let b = w.insert(at(t0, 5), 2);
        assert_eq!(a.index, b.index);
        assert!(w.get(a).is_none());
        assert_eq!(w.get(b), Some(&2));
        let (fired, v) = w.poll_expired(at(t0, 5)).unwrap();
        assert_eq!((fired, v), (b, 2));
        assert!(w.get(b).is_none() && w.get_mut(b).is_none() && !w.reset(b, at(t0, 6)));
    }

    #[test]
    fn reset_moves_earlier_and_later() {
        let (t0, mut w) = wheel();
        let a = w.insert(at(t0, 5000), 1);
        assert!(w.reset(a, at(t0, 10)));
        assert_eq!(drain_steps(&mut w, t0, 0, 10), vec![(10, 1)]);
        let b = w.insert(at(t0, 20), 2);
        assert!(w.reset(b, at(t0, 100_000)));
        assert!(drain_steps(&mut w, t0, 11, 99_999).is_empty());
        assert_eq!(
            drain_steps(&mut w, t0, 100_000, 100_000),
            vec![(100_000, 2)]
        );
    }

    #[test]
    fn next_deadline_is_never_late() {
        let (t0, mut w) = wheel();
        assert!(w.next_deadline().is_none());
        w.insert(at(t0, 5000), 1);
        let nd = w.next_deadline().unwrap();
        assert!(nd <= at(t0, 5000));
        // following next_deadline repeatedly reaches the timer without passing it
        let mut now = t0;
        for _ in 0..10 {
            now = w.next_deadline().unwrap().max(now);
            if let Some((_, v)) = w.poll_expired(now) {
                assert_eq!(v, 1);
                assert_eq!(now, at(t0, 5000));
                return;
            }
        }
        panic!("not reached by following next_deadline");
    }

    /// A small xorshift PRNG: deterministic, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn randomized_against_a_model() {
        for seed in 1..=8u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let (t0, mut w) = wheel();
            // model: id -> (deadline tick, value)
            let mut model: BTreeMap<u64, (TimerId, u64)> = BTreeMap::new();
            let mut now = 0u64;
            let mut next_val = 0u64;
            for _ in 0..4000 {
                match rng.below(10) {
                    0..=3 => {
                        let horizon = [10, 100, 5000, 300_000, 1 << 30][rng.below(5) as usize];
                        let d = now + rng.below(horizon);
                        next_val += 1;
                        let id = w.insert(at(t0, d), next_val);
                        model.insert(next_val, (id, d.max(now)));
                    }
                    4 | 5 if !model.is_empty() => {
                        let k = *model
                            .keys()
                            .nth(rng.below(model.len() as u64) as usize)
                            .unwrap();
                        let (id, _) = model[&k];
                        let d = now + rng.below(10_000);
                        assert!(w.reset(id, at(t0, d)));
                        model.insert(k, (id, d.max(now)));
                    }
                    6 if !model.is_empty() => {
                        let k = *model
                            .keys()
                            .nth(rng.below(model.len() as u64) as usize)
                            .unwrap();
                        let (id, _) = model.remove(&k).unwrap();
                        assert_eq!(w.cancel(id), Some(k));
                    }
                    _ => {
                        if let (Some(nd), Some(min)) =
                            (w.next_deadline(), model.values().map(|v| v.1).min())
                        {
                            assert!(nd <= at(t0, min.max(now)), "next_deadline late");
                        }
                        let step = [0, 1, 3, 64, 1000, 70_000][rng.below(6) as usize];
                        now += step;
                        let mut fired = Vec::new();
                        while let Some((id, v)) = w.poll_expired(at(t0, now)) {
                            let (mid, d) = model.remove(&v).expect("fired unknown");
                            assert_eq!(mid, id);
                            assert!(d <= now, "fired {d} early at {now}");
                            fired.push(d);
                        }
                        assert!(fired.windows(2).all(|p| p[0] <= p[1]), "out of order");
                        assert!(
                            model.values().all(|v| v.1 > now),
                            "a due timer did not fire"
                        );
                    }
                }
                assert_eq!(w.len(), model.len());
            }
        }
    }
}
