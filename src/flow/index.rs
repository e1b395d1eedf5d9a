//! The flow cache's hash index: open addressing with linear probing over `u64` slots.
//!
//! A slot holds the upper 32 bits of the key's hash and the slab index + 1 (0 = empty). The
//! home slot is `hash32 × capacity >> 32`, so the capacity need not be a power of two and can be
//! exactly twice the flow cap: 16 bytes per flow at most, and probes stay short (load ≤ ½).
//! Deletion shifts later entries back (no tombstones). Growth re-places slots from their stored
//! hash, without touching the slab.

use crate::hint::{self, prefetch};

pub struct Index {
    slots: Vec<u64>,
    len: usize,
    max_capacity: usize,
}

#[inline]
fn slot_hash(s: u64) -> u32 {
    (s >> 32) as u32
}

#[inline]
fn slot_idx(s: u64) -> u32 {
    (s as u32).wrapping_sub(1)
}

impl Index {
    /// An index for at most `max_entries` entries.
    pub fn new(max_entries: usize) -> Index {
        let max_capacity = (max_entries.max(1) * 2).max(16);
        Index {
            slots: vec![0; max_capacity.min(4096)],
            len: 0,
            max_capacity,
        }
    }

    pub fn allocation_size(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<u64>()
    }

    #[inline]
    fn home(&self, hash: u32) -> usize {
        ((u64::from(hash) * self.slots.len() as u64) >> 32) as usize
    }

    #[inline]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    /// Starts loading the home slot of `hash`.
    #[inline]
    pub fn prefetch(&self, hash: u32) {
        prefetch(&self.slots[self.home(hash)]);
    }

    /// The first entry whose stored hash equals `hash` (a hint: the caller checks the key).
    #[inline]
    pub fn first_candidate(&self, hash: u32) -> Option<u32> {
        let mut i = self.home(hash);
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if slot_hash(s) == hash {
                return Some(slot_idx(s));
            }
            i = self.next(i);
        }
    }

    /// The entry with hash `hash` for which `is_match(index)` holds.
    #[inline]
    pub fn find(&self, hash: u32, mut is_match: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut i = self.home(hash);
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if slot_hash(s) == hash && is_match(slot_idx(s)) {
                return Some(slot_idx(s));
            }
            i = self.next(i);
        }
    }

    /// Adds entry `idx` under `hash`. The caller keeps at most `max_entries` entries.
    pub fn insert(&mut self, hash: u32, idx: u32) {
        if (self.len + 1) * 2 > self.slots.len() && self.slots.len() < self.max_capacity {
            self.grow();
        }
        self.place(u64::from(hash) << 32 | u64::from(idx + 1));
        self.len += 1;
    }

    fn place(&mut self, slot: u64) {
        let mut i = self.home(slot_hash(slot));
        while self.slots[i] != 0 {
            i = self.next(i);
        }
        self.slots[i] = slot;
    }

    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).min(self.max_capacity);
        // Zeroed by the allocator without touching the pages (large sizes are fresh
        // mappings), so the advice comes before the first fault.
        let slots = vec![0; capacity];
        hint::huge_pages(&slots);
        let old = std::mem::replace(&mut self.slots, slots);
        for s in old.into_iter().filter(|&s| s != 0) {
            self.place(s);
        }
    }

    /// Removes every entry (the allocation stays).
    pub fn clear(&mut self) {
        self.slots.fill(0);
        self.len = 0;
    }

    /// Removes entry `idx` stored under `hash`; false if it is not there.
    pub fn remove(&mut self, hash: u32, idx: u32) -> bool {
        let want = u64::from(hash) << 32 | u64::from(idx + 1);
        let mut i = self.home(hash);
        loop {
            match self.slots[i] {
                0 => return false,
                s if s == want => break,
                _ => i = self.next(i),
            }
        }
        // Backward-shift deletion: pull later entries of the probe run into the hole when their
        // home is not between the hole and where they sit.
        let n = self.slots.len();
        let mut hole = i;
        let mut j = i;
        loop {
            j = self.next(j);
            let s = self.slots[j];
            if s == 0 {
                break;
            }
            let home = self.home(slot_hash(s));
            let dist_home = (j + n - home) % n;
            let dist_hole = (j + n - hole) % n;
            if dist_home >= dist_hole {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = 0;
        self.len -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Random inserts and removes against a model, with hashes crowded into few home slots.
    #[test]
    fn behaves_like_a_map_under_collisions() {
        let mut ix = Index::new(500);
        let mut model: HashMap<u32, u32> = HashMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..200_000u32 {
            let r = next();
            let idx = (r % 600) as u32;
            // Few distinct hashes: long probe runs and many equal tags.
            let hash = (idx % 37).wrapping_mul(0x0100_0193) ^ (r as u32 & 0x8000_0000);
            let hash = hash & 0xffff_0000 | (idx % 37);
            match model.get(&idx) {
                Some(&h) if r & 1 == 0 => {
                    assert!(ix.remove(h, idx), "step {step}");
                    model.remove(&idx);
                }
                None if model.len() < 500 => {
                    ix.insert(hash, idx);
                    model.insert(idx, hash);
                }
                _ => {}
            }
            if step % 1000 == 0 {
                for (&i, &h) in &model {
                    assert_eq!(ix.find(h, |c| c == i), Some(i), "step {step}");
                }
                assert_eq!(ix.len, model.len());
            }
        }
        assert!(!ix.remove(1, 10_000));
        assert!(ix.allocation_size() <= 1000 * 8);
    }
}
