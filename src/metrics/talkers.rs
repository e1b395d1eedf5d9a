//! Top talkers: the heaviest conversations (source → destination address) by bytes over a
//! sliding window of packet time, in bounded memory.
//!
//! Each of [`WINDOW_BUCKETS`] buckets of the window holds a Space-Saving sketch (Metwally,
//! Agrawal, El Abbadi, "Efficient Computation of Frequent and Top-k Elements in Data
//! Streams", ICDT 2005), weighted and filtered ([`SpaceSaving`]), of `8·K` (at least 64)
//! counters in an indexed min-heap: an update costs one hash probe, plus O(log m) array moves
//! when a counter changes. A conversation with more bytes in a bucket than the bucket's
//! smallest counter is always in its sketch, and its count never underestimates. The
//! window's top K sums the sketches of the buckets in the window.

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;

use foldhash::fast::FixedState;
use hashbrown::{HashMap, HashTable};

/// Buckets per window: the window slides in steps of `window / WINDOW_BUCKETS`.
pub const WINDOW_BUCKETS: usize = 6;
/// Smallest sketch size per bucket.
const MIN_COUNTERS: usize = 64;

#[derive(Clone, Copy, Debug)]
struct Entry<K> {
    key: K,
    hash: u64,
    count: u64,
    /// Position in the heap.
    pos: u32,
}

/// Weighted Filtered Space-Saving (Homem, Carvalho, "Finding top-k elements in data
/// streams", Information Sciences 2010) over keys `K` with at most `cap` monitored counters:
/// a slab of entries, a min-heap of slab indexes on `count` and a hash index into the slab.
/// A key that is not monitored first adds its weight to a filter counter chosen by its hash
/// and only takes over the smallest counter once that filter counter reaches it, so the many
/// small keys of a stream cost one hash probe and one addition each. Counts never
/// underestimate; every key whose weight exceeds the smallest monitored count is monitored.
#[derive(Clone, Debug)]
pub struct SpaceSaving<K> {
    cap: usize,
    entries: Vec<Entry<K>>,
    heap: Vec<u32>,
    index: HashTable<u32>,
    /// Filter counters: an upper bound of the weight of any unmonitored key hashing there.
    alpha: Vec<u64>,
    hasher: FixedState,
}

impl<K: Copy + Eq + Hash> SpaceSaving<K> {
    pub fn new(cap: usize) -> Self {
        let cap = cap.clamp(1, u32::MAX as usize / 8);
        SpaceSaving {
            cap,
            entries: Vec::with_capacity(cap),
            heap: Vec::with_capacity(cap),
            index: HashTable::with_capacity(cap),
            alpha: vec![0; (4 * cap).next_power_of_two()],
            hasher: FixedState::with_seed(0x6d66_746b),
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.heap.clear();
        self.index.clear();
        self.alpha.fill(0);
    }

    fn filter_slot(&self, hash: u64) -> usize {
        (hash >> 32) as usize & (self.alpha.len() - 1)
    }

    /// Adds `w` to `key`.
    pub fn add(&mut self, key: K, w: u64) {
        let h = self.hasher.hash_one(key);
        let entries = &self.entries;
        if let Some(&e) = self.index.find(h, |&e| entries[e as usize].key == key) {
            let e = e as usize;
            self.entries[e].count += w;
            self.sift_down(self.entries[e].pos as usize);
            return;
        }
        if self.entries.len() < self.cap {
            let (e, pos) = (self.entries.len() as u32, self.heap.len() as u32);
            self.entries.push(Entry {
                key,
                hash: h,
                count: w,
                pos,
            });
            self.heap.push(e);
            let entries = &self.entries;
            self.index
                .insert_unique(h, e, |&e| entries[e as usize].hash);
            self.sift_up(pos as usize);
            return;
        }
        let a = self.filter_slot(h);
        let root = self.heap[0];
        let min = self.entries[root as usize];
        let count = self.alpha[a] + w;
        if count < min.count {
            self.alpha[a] = count;
            return;
        }
        // The smallest counter goes back to the filter; the key takes over its slot.
        let m = self.filter_slot(min.hash);
        self.alpha[m] = self.alpha[m].max(min.count);
        if let Ok(entry) = self.index.find_entry(min.hash, |&e| e == root) {
            entry.remove();
        }
        self.entries[root as usize] = Entry {
            key,
            hash: h,
            count,
            pos: 0,
        };
        let entries = &self.entries;
        self.index
            .insert_unique(h, root, |&e| entries[e as usize].hash);
        self.sift_down(0);
    }

    /// Keys and counts, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (K, u64)> + '_ {
        self.entries.iter().map(|e| (e.key, e.count))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn count(&self, pos: usize) -> u64 {
        self.entries[self.heap[pos] as usize].count
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.entries[self.heap[a] as usize].pos = a as u32;
        self.entries[self.heap[b] as usize].pos = b as u32;
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.count(parent) <= self.count(i) {
                break;
            }
            self.swap(parent, i);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < n && self.count(l) < self.count(m) {
                m = l;
            }
            if r < n && self.count(r) < self.count(m) {
                m = r;
            }
            if m == i {
                return;
            }
            self.swap(m, i);
            i = m;
        }
    }
}

/// A conversation: source and destination address, IPv4 in the first 4 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conversation {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub v6: bool,
}

impl Hash for Conversation {
    /// Two integer writes instead of two length-prefixed byte slices.
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u128(u128::from_ne_bytes(self.src) ^ u128::from(self.v6));
        h.write_u128(u128::from_ne_bytes(self.dst));
    }
}

impl Conversation {
    fn ip(&self, a: &[u8; 16]) -> IpAddr {
        if self.v6 {
            IpAddr::from(*a)
        } else {
            IpAddr::from([a[0], a[1], a[2], a[3]])
        }
    }

    pub fn src_ip(&self) -> IpAddr {
        self.ip(&self.src)
    }

    pub fn dst_ip(&self) -> IpAddr {
        self.ip(&self.dst)
    }
}

/// Top K conversations by bytes over the last `window_ns` of packet time.
#[derive(Clone, Debug)]
pub struct TopTalkers {
    k: usize,
    bucket_ns: u64,
    /// Bucket number (time / bucket_ns) each slot holds, and its sketch.
    slots: Vec<(u64, SpaceSaving<Conversation>)>,
}

impl TopTalkers {
    pub fn new(k: usize, window_ns: u64) -> TopTalkers {
        let counters = (8 * k).max(MIN_COUNTERS);
        TopTalkers {
            k,
            bucket_ns: (window_ns / WINDOW_BUCKETS as u64).max(1),
            slots: vec![(u64::MAX, SpaceSaving::new(counters)); WINDOW_BUCKETS],
        }
    }

    /// Counts `bytes` for `c` at packet time `now_ns`.
    pub fn add(&mut self, now_ns: u64, c: Conversation, bytes: u64) {
        if let Some(sketch) = self.sketch(now_ns) {
            sketch.add(c, bytes);
        }
    }

    /// The sketch of the bucket holding `now_ns` (`None` when K is 0), for adding many.
    pub fn sketch(&mut self, now_ns: u64) -> Option<&mut SpaceSaving<Conversation>> {
        if self.k == 0 {
            return None;
        }
        let n = now_ns / self.bucket_ns;
        let slot = &mut self.slots[(n % WINDOW_BUCKETS as u64) as usize];
        if slot.0 != n {
            slot.0 = n;
            slot.1.clear();
        }
        Some(&mut slot.1)
    }

    /// The heaviest K conversations in the window ending at `now_ns`, heaviest first (ties by
    /// key, so the order is stable).
    pub fn top(&self, now_ns: u64) -> Vec<(Conversation, u64)> {
        let n = now_ns / self.bucket_ns;
        let mut sum: HashMap<Conversation, u64> = HashMap::new();
        for (b, sketch) in &self.slots {
            if *b <= n && n - *b < WINDOW_BUCKETS as u64 {
                for (c, w) in sketch.iter() {
                    *sum.entry(c).or_default() += w;
                }
            }
        }
        let mut all: Vec<(Conversation, u64)> = sum.into_iter().collect();
        all.sort_unstable_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| (a.0.v6, a.0.src, a.0.dst).cmp(&(b.0.v6, b.0.src, b.0.dst)))
        });
        all.truncate(self.k);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(s: u8, d: u8) -> Conversation {
        let mut c = Conversation {
            src: [0; 16],
            dst: [0; 16],
            v6: false,
        };
        c.src[..4].copy_from_slice(&[10, 0, 0, s]);
        c.dst[..4].copy_from_slice(&[10, 0, 1, d]);
        c
    }

    #[test]
    fn heavy_hitters_survive_a_stream_of_small_keys() {
        let mut s = SpaceSaving::new(16);
        for i in 0..10_000u32 {
            s.add(i + 100, 1);
            if i % 10 == 0 {
                s.add(1, 50);
                s.add(2, 30);
            }
        }
        assert_eq!(s.len(), 16);
        let mut top: Vec<(u32, u64)> = s.iter().collect();
        top.sort_by_key(|t| std::cmp::Reverse(t.1));
        assert_eq!((top[0].0, top[1].0), (1, 2));
        // Never underestimates: at least the true count.
        assert!(top[0].1 >= 50_000 && top[1].1 >= 30_000);
    }

    #[test]
    fn finds_the_true_top_k_in_a_skewed_stream() {
        // 200 000 light keys (1 byte each) interleaved with 10 heavy ones: key h gets
        // (10 - h) · 5 bytes every 50 light keys (200 000 .. 20 000 bytes in all).
        let mut s = SpaceSaving::new(80);
        let mut truth = std::collections::HashMap::new();
        for i in 0..200_000u64 {
            s.add(1_000 + i, 1);
            *truth.entry(1_000 + i).or_insert(0) += 1;
            if i % 50 == 0 {
                for h in 0..10 {
                    s.add(h, (10 - h) * 5);
                    *truth.entry(h).or_insert(0) += (10 - h) * 5;
                }
            }
        }
        let mut top: Vec<(u64, u64)> = s.iter().collect();
        top.sort_by_key(|t| std::cmp::Reverse(t.1));
        let keys: Vec<u64> = top.iter().take(10).map(|t| t.0).collect();
        assert_eq!(keys, (0..10).collect::<Vec<_>>(), "{top:?}");
        for (k, c) in top.iter().take(10) {
            assert!(*c >= truth[k], "{k}: {c} < {}", truth[k]);
        }
    }

    #[test]
    fn heap_positions_stay_consistent() {
        let mut s = SpaceSaving::new(8);
        for i in 0..1000u64 {
            s.add(i % 37, i % 7 + 1);
            for (pos, &e) in s.heap.iter().enumerate() {
                let entry = &s.entries[e as usize];
                assert_eq!(entry.pos as usize, pos);
                assert_eq!(s.index.find(entry.hash, |&x| x == e), Some(&e));
                if pos > 0 {
                    assert!(s.count((pos - 1) / 2) <= entry.count);
                }
            }
        }
    }

    #[test]
    fn window_slides_and_entries_leave() {
        let sec = 1_000_000_000u64;
        let mut t = TopTalkers::new(2, 60 * sec);
        t.add(0, conv(1, 1), 1000);
        t.add(5 * sec, conv(2, 2), 500);
        t.add(5 * sec, conv(3, 3), 100);
        let top = t.top(5 * sec);
        assert_eq!(top, vec![(conv(1, 1), 1000), (conv(2, 2), 500)]);
        // 30 s later conv 3 gets heavy and conv 1 keeps going.
        t.add(30 * sec, conv(3, 3), 2000);
        t.add(30 * sec, conv(1, 1), 1);
        assert_eq!(t.top(30 * sec)[0], (conv(3, 3), 2100));
        // 65 s: the first bucket (0..10 s) left the window.
        let top = t.top(65 * sec);
        assert_eq!(top, vec![(conv(3, 3), 2000), (conv(1, 1), 1)]);
        // Two minutes of nothing: empty.
        assert!(t.top(200 * sec).is_empty());
        assert_eq!(conv(1, 2).src_ip().to_string(), "10.0.0.1");
    }

    #[test]
    fn disabled_with_k_zero() {
        let mut t = TopTalkers::new(0, 60);
        t.add(0, conv(1, 1), 5);
        assert!(t.top(0).is_empty());
    }
}
