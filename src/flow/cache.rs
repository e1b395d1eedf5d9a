//! The flow cache: a bounded table of active flows with idle, active, TCP end and
//! least-recently-used expiry (RFC 5470 §5.1.1 expiry reasons).
//!
//! Layout: entries live in a slab (`Vec<Entry>`, 112 bytes each) threaded on an intrusive
//! doubly-linked queue; an open-addressing [`Index`] maps key hashes to slab indexes (at most 16
//! bytes per flow). Neither grows past what `max_flows` needs: 128 bytes per flow in all.
//!
//! [`FlowCache::handle_batch`] looks a batch up in a software pipeline: the index slot of the
//! packet 16 ahead and the slab entry of the packet 8 ahead are prefetched, so the two cache
//! misses of a lookup in a large table overlap with work on earlier packets. Walking the queue
//! from its tail (expiry, flush) is a chain of cache misses, one per entry; each entry carries a
//! hint to the entry queued eight queuings after it, so the walk fetches that far ahead.
//!
//! The queue is kept in the order entries were (re)queued, not in the order they were last
//! touched: a packet updates its entry in place and never relinks it, which saves two random
//! memory accesses per packet. When an entry reaches the tail it is expired if it is idle, or
//! requeued at the head if a packet touched it since it was queued ("second chance"). Idle expiry
//! is exact; eviction on a full table takes the least recently *queued* untouched flow, a close
//! approximation of least recently used.
//!
//! Time is whatever the caller passes: `clock` is the largest timestamp seen, so a capture
//! with timestamps that go backwards never un-expires anything. A lone packet stamped far ahead
//! of the clock (more than ten idle timeouts) does not move it: a forward jump that large is
//! taken only when the next packet confirms it, and then the whole queue is swept once. Such
//! outliers are counted.

use std::hash::BuildHasher;

use super::index::Index;
use super::record::{EndReason, FlowKey, FlowRecord, FlowStats};
use super::{TCP_FIN, TCP_RST};
use crate::decode::PacketMeta;
use crate::hint::{self, prefetch};

const NIL: u32 = u32::MAX;

/// Cache limits and timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// A flow with no packet for longer than this is exported (reason idle).
    pub idle_timeout_ns: u64,
    /// A flow older than this is exported when its next packet comes (reason active), and
    /// that packet starts a new record.
    pub active_timeout_ns: u64,
    /// Hard cap on active flows; beyond it the least recently used flow is evicted.
    pub max_flows: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            idle_timeout_ns: 15_000_000_000,
            active_timeout_ns: 60_000_000_000,
            max_flows: 1_000_000,
        }
    }
}

/// What the cache has done, cumulative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheCounters {
    pub flows_created: u64,
    /// Records exported, by [`EndReason`] discriminant (index 0 unused).
    pub records_by_reason: [u64; 6],
    /// Sum of packet counts of exported records.
    pub exported_packets: u64,
    pub exported_bytes: u64,
    /// Packets stamped far ahead of the clock that did not move it.
    pub clock_outliers: u64,
}

/// Queue time granularity: 2^24 ns (16.8 ms). Queue times are `u32` tick counts compared with
/// wrapping arithmetic, valid while entries are less than a year apart in the queue; larger
/// clock jumps sweep the whole queue (see [`FlowCache::handle_packet`]).
const QUEUE_TICK_SHIFT: u32 = 24;

#[derive(Clone, Copy)]
struct Entry {
    key: FlowKey,
    /// Packets; a record that would overflow is exported (reason active) and a new one begun.
    packets: u32,
    /// Clock (in queue ticks) when the entry was last put at the head of the queue.
    queued: u32,
    bytes: u64,
    /// Frame octets beyond the IP octets (link headers, outer headers of a tunnel); a record
    /// that would overflow is exported (reason active) and a new one begun.
    l2_extra: u32,
    /// The entry queued [`HINT_AHEAD`] queuings after this one, when that happened: where the
    /// walk from the tail will be that many steps later, so its line can be fetched ahead. A
    /// hint only: removals and requeues make it stale, and then it fetches a useless line.
    hint: u32,
    start_ns: u64,
    end_ns: u64,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    tcp_flags: u8,
    min_ttl: u8,
    max_ttl: u8,
    tos: u8,
    prev: u32,
    next: u32,
}

/// How many queuings ahead [`Entry::hint`] points.
const HINT_AHEAD: usize = 8;

/// Frame octets of a packet beyond its IP octets (never negative: the IP length is capped at
/// the frame bytes from the IP header on).
#[inline]
fn l2_extra(m: &PacketMeta) -> u32 {
    m.frame.wire_len.saturating_sub(m.ip_len)
}

impl Entry {
    fn new(key: FlowKey, m: &PacketMeta, queued: u32) -> Entry {
        Entry {
            key,
            packets: 1,
            queued,
            bytes: u64::from(m.ip_len),
            l2_extra: l2_extra(m),
            hint: NIL,
            start_ns: m.frame.ts_ns,
            end_ns: m.frame.ts_ns,
            src_mac: m.src_mac,
            dst_mac: m.dst_mac,
            tcp_flags: m.tcp_flags,
            min_ttl: m.ttl,
            max_ttl: m.ttl,
            tos: m.tos,
            prev: NIL,
            next: NIL,
        }
    }

    #[inline]
    fn add(&mut self, m: &PacketMeta) {
        self.packets += 1;
        self.bytes += u64::from(m.ip_len);
        self.l2_extra += l2_extra(m);
        self.start_ns = self.start_ns.min(m.frame.ts_ns);
        self.end_ns = self.end_ns.max(m.frame.ts_ns);
        self.tcp_flags |= m.tcp_flags;
        self.min_ttl = self.min_ttl.min(m.ttl);
        self.max_ttl = self.max_ttl.max(m.ttl);
    }

    fn stats(&self) -> FlowStats {
        FlowStats {
            packets: u64::from(self.packets),
            bytes: self.bytes,
            l2_bytes: self.bytes + u64::from(self.l2_extra),
            start_ns: self.start_ns,
            end_ns: self.end_ns,
            src_mac: self.src_mac,
            dst_mac: self.dst_mac,
            tcp_flags: self.tcp_flags,
            min_ttl: self.min_ttl,
            max_ttl: self.max_ttl,
            tos: self.tos,
        }
    }
}

pub struct FlowCache {
    cfg: CacheConfig,
    index: Index,
    slab: Vec<Entry>,
    /// Head of the chain of free slab slots (linked through `next`).
    free: u32,
    /// Most recently queued.
    head: u32,
    /// Least recently queued.
    tail: u32,
    /// The last [`HINT_AHEAD`] entries queued (a ring; `recent_at` is the oldest).
    recent: [u32; HINT_AHEAD],
    recent_at: usize,
    len: usize,
    clock: u64,
    /// A packet jumped far ahead of the clock; the next one decides whether the jump is real.
    jump_pending: bool,
    /// A flush is under way with this reason: the index is empty and entries are still queued.
    draining: Option<EndReason>,
    hasher: foldhash::fast::FixedState,
    expired: Vec<FlowRecord>,
    counters: CacheCounters,
}

impl FlowCache {
    pub fn new(cfg: CacheConfig) -> FlowCache {
        let max_flows = cfg.max_flows.clamp(1, NIL as usize - 1);
        // The whole slab is reserved up front so that it can be backed by huge pages: address
        // space only, pages are touched as flows arrive. Where that much address space is
        // refused, the slab grows by doubling instead.
        let mut slab = Vec::new();
        if slab.try_reserve_exact(max_flows).is_ok() {
            hint::huge_pages(slab.spare_capacity_mut());
        }
        FlowCache {
            cfg: CacheConfig { max_flows, ..cfg },
            index: Index::new(max_flows),
            slab,
            free: NIL,
            head: NIL,
            tail: NIL,
            recent: [NIL; HINT_AHEAD],
            recent_at: 0,
            len: 0,
            clock: 0,
            jump_pending: false,
            draining: None,
            hasher: foldhash::fast::FixedState::with_seed(0x6d69_7272_6f72),
            expired: Vec::new(),
            counters: CacheCounters::default(),
        }
    }

    /// The flow clock: the latest packet time believed, Unix epoch ns.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Active flows.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn counters(&self) -> &CacheCounters {
        &self.counters
    }

    /// Bytes held by the slab and the hash table (what `max_flows` bounds). The slab is
    /// reserved for `max_flows` entries up front; its pages become resident as flows arrive.
    pub fn memory_bytes(&self) -> usize {
        self.slab.capacity() * std::mem::size_of::<Entry>() + self.index.allocation_size()
    }

    /// Takes the records expired so far.
    pub fn take_expired(&mut self) -> Vec<FlowRecord> {
        std::mem::take(&mut self.expired)
    }

    fn hash(&self, key: &FlowKey) -> u32 {
        (self.hasher.hash_one(key) >> 32) as u32
    }

    /// Accounts a batch of packets, in order; the same as [`FlowCache::handle_packet`] on each,
    /// with the lookups of later packets prefetched.
    pub fn handle_batch(&mut self, metas: &[PacketMeta]) {
        self.finish_draining();
        const SLOT_AHEAD: usize = 16;
        const ENTRY_AHEAD: usize = 8;
        let mut keys = [(FlowKey::default(), 0u32); SLOT_AHEAD];
        let n = metas.len();
        for i in 0..n + SLOT_AHEAD {
            // Packet i - SLOT_AHEAD is handled before packet i takes its place in the ring.
            if i >= SLOT_AHEAD {
                let (key, hash) = keys[i % SLOT_AHEAD];
                self.handle_keyed(&metas[i - SLOT_AHEAD], key, hash);
            }
            if i < n {
                let key = FlowKey::from_meta(&metas[i]);
                let hash = self.hash(&key);
                self.index.prefetch(hash);
                keys[i % SLOT_AHEAD] = (key, hash);
            }
            if i >= ENTRY_AHEAD && i - ENTRY_AHEAD < n {
                let (_, hash) = keys[(i - ENTRY_AHEAD) % SLOT_AHEAD];
                if let Some(idx) = self.index.first_candidate(hash) {
                    prefetch(&self.slab[idx as usize]);
                }
            }
        }
    }

    /// Accounts one packet at its own timestamp.
    pub fn handle_packet(&mut self, m: &PacketMeta) {
        self.finish_draining();
        let key = FlowKey::from_meta(m);
        let hash = self.hash(&key);
        self.handle_keyed(m, key, hash);
    }

    fn handle_keyed(&mut self, m: &PacketMeta, key: FlowKey, hash: u32) {
        let ts = m.frame.ts_ns;
        self.advance_clock(ts, false);
        self.expire_idle();
        let slab = &self.slab;
        let found = self.index.find(hash, |i| slab[i as usize].key == key);
        let idx = match found {
            Some(i) => {
                let e = &self.slab[i as usize];
                if self.clock.saturating_sub(e.end_ns) > self.cfg.idle_timeout_ns {
                    self.remove(i, EndReason::Idle);
                    self.insert(key, hash, m)
                } else if ts.saturating_sub(e.start_ns) >= self.cfg.active_timeout_ns
                    || e.packets == u32::MAX
                    || e.l2_extra.checked_add(l2_extra(m)).is_none()
                {
                    self.remove(i, EndReason::Active);
                    self.insert(key, hash, m)
                } else {
                    self.slab[i as usize].add(m);
                    i
                }
            }
            None => self.insert(key, hash, m),
        };
        if m.tcp_flags & (TCP_FIN | TCP_RST) != 0 && key.protocol == 6 {
            self.remove(idx, EndReason::EndOfFlow);
        }
    }

    /// Advances time without a packet (live capture on a quiet wire).
    pub fn handle_timeout(&mut self, now_ns: u64) {
        self.finish_draining();
        self.advance_clock(now_ns, true);
        self.expire_idle();
    }

    /// Exports every active flow, least recently queued first. Flows already idle for longer
    /// than the idle timeout go out as idle, whatever `reason` says, as they would have had the
    /// queue been scanned at every instant.
    pub fn flush(&mut self, reason: EndReason) {
        self.flush_up_to(reason, usize::MAX);
    }

    /// Like [`FlowCache::flush`], but exports at most `n` flows; returns how many it exported.
    /// Lets a caller hand a large table to the sinks in bounded batches.
    ///
    /// A flush empties the index at once and then takes entries off the queue alone, which
    /// spares a hash and a cache miss per flow. Until the table is empty it is *draining*: the
    /// next packet or timeout first finishes the flush.
    pub fn flush_up_to(&mut self, reason: EndReason, n: usize) -> usize {
        if self.draining.is_none() && self.len > 0 {
            self.index.clear();
            self.draining = Some(reason);
        }
        let mut done = 0;
        while self.tail != NIL && done < n {
            done += 1;
            let t = self.tail;
            self.prefetch_hint(t);
            let e = &self.slab[t as usize];
            if e.prev != NIL {
                prefetch(&self.slab[e.prev as usize]);
            }
            let idle = self.clock.saturating_sub(e.end_ns) > self.cfg.idle_timeout_ns;
            self.release(t, if idle { EndReason::Idle } else { reason });
        }
        if self.len == 0 {
            self.draining = None;
        }
        done
    }

    /// Finishes a flush in progress (see [`FlowCache::flush_up_to`]).
    #[inline]
    fn finish_draining(&mut self) {
        if let Some(reason) = self.draining {
            self.flush_up_to(reason, usize::MAX);
        }
    }

    fn ticks(ns: u64) -> u32 {
        (ns >> QUEUE_TICK_SHIFT) as u32
    }

    /// `a` is at or after `b`, in wrapping queue ticks.
    fn not_before(a: u32, b: u32) -> bool {
        (a.wrapping_sub(b) as i32) >= 0
    }

    /// Moves the clock to `ts` if that is later. A jump of more than ten idle timeouts is
    /// believed when `trusted` (the wall clock) or when a second packet confirms it.
    fn advance_clock(&mut self, ts: u64, trusted: bool) {
        if ts <= self.clock {
            self.jump_pending = false;
            return;
        }
        let big = ts - self.clock > self.cfg.idle_timeout_ns.saturating_mul(10);
        if !big || self.counters.flows_created == 0 {
            self.clock = ts;
            self.jump_pending = false;
        } else if trusted || self.jump_pending {
            self.clock = ts;
            self.jump_pending = false;
            self.sweep_all();
        } else {
            self.jump_pending = true;
            self.counters.clock_outliers += 1;
        }
    }

    /// Visits every entry once: idle ones expire, the rest are requeued at the current clock.
    fn sweep_all(&mut self) {
        for _ in 0..self.len {
            let t = self.tail;
            if self.clock.saturating_sub(self.slab[t as usize].end_ns) > self.cfg.idle_timeout_ns {
                self.remove(t, EndReason::Idle);
            } else {
                self.requeue(t);
            }
        }
    }

    /// Expires idle flows from the tail; requeues the ones touched since they were queued.
    /// Stops at the first entry queued within the idle timeout: every entry behind it was
    /// queued later, and an entry is never idle for longer than since it was queued.
    fn expire_idle(&mut self) {
        let idle = self.cfg.idle_timeout_ns;
        // Queue ticks are coarse: compare with one tick of margin so nothing expires early.
        let horizon = Self::ticks(self.clock.saturating_sub(idle)).wrapping_sub(1);
        while self.tail != NIL {
            let t = self.tail;
            let e = &self.slab[t as usize];
            if Self::not_before(e.queued, horizon) {
                break;
            }
            self.prefetch_next_tail(t);
            let e = &self.slab[t as usize];
            if self.clock.saturating_sub(e.end_ns) > idle {
                self.remove(t, EndReason::Idle);
            } else {
                self.requeue(t);
            }
        }
    }

    /// Starts loading what handling the entry after `t` toward the head will touch, so that
    /// walking the queue from the tail overlaps its cache misses: that entry's index slot
    /// (the entry itself was prefetched one step earlier) and the entry after it.
    #[inline]
    fn prefetch_next_tail(&self, t: u32) {
        self.prefetch_hint(t);
        let n = self.slab[t as usize].prev;
        if n != NIL {
            let e = &self.slab[n as usize];
            self.index.prefetch(self.hash(&e.key));
            if e.prev != NIL {
                prefetch(&self.slab[e.prev as usize]);
            }
        }
    }

    /// Starts loading the entry the walk from the tail should reach [`HINT_AHEAD`] steps after
    /// `t` (see [`Entry::hint`]).
    #[inline]
    fn prefetch_hint(&self, t: u32) {
        if let Some(e) = self.slab.get(self.slab[t as usize].hint as usize) {
            prefetch(e);
        }
    }

    /// Puts an entry back at the head of the queue, stamped with the current clock.
    fn requeue(&mut self, idx: u32) {
        self.unlink(idx);
        self.slab[idx as usize].queued = Self::ticks(self.clock);
        self.link_front(idx);
    }

    /// The eviction victim: the least recently queued entry not touched since it was queued.
    fn evict_one(&mut self) {
        loop {
            let t = self.tail;
            let e = &self.slab[t as usize];
            if !Self::not_before(e.queued, Self::ticks(e.end_ns)) {
                self.requeue(t);
            } else {
                self.remove(t, EndReason::LackOfResources);
                return;
            }
        }
    }

    fn insert(&mut self, key: FlowKey, hash: u32, m: &PacketMeta) -> u32 {
        if self.len >= self.cfg.max_flows {
            self.evict_one();
        }
        let entry = Entry::new(key, m, Self::ticks(self.clock));
        let idx = if self.free != NIL {
            let i = self.free;
            self.free = self.slab[i as usize].next;
            self.slab[i as usize] = entry;
            i
        } else {
            if self.slab.len() == self.slab.capacity() {
                let want = (self.slab.capacity() * 2).max(1024).min(self.cfg.max_flows);
                self.slab
                    .reserve_exact(want.saturating_sub(self.slab.len()).max(1));
            }
            self.slab.push(entry);
            (self.slab.len() - 1) as u32
        };
        self.index.insert(hash, idx);
        self.link_front(idx);
        self.len += 1;
        self.counters.flows_created += 1;
        idx
    }

    fn remove(&mut self, idx: u32, reason: EndReason) {
        let removed = self
            .index
            .remove(self.hash(&self.slab[idx as usize].key), idx);
        debug_assert!(removed, "entry {idx} missing from the index");
        self.release(idx, reason);
    }

    /// Takes an entry off the queue, frees its slot and exports its record; the caller has
    /// taken it out of the index (or emptied the index).
    fn release(&mut self, idx: u32, reason: EndReason) {
        let e = self.slab[idx as usize];
        self.unlink(idx);
        self.slab[idx as usize].next = self.free;
        self.free = idx;
        self.len -= 1;
        let c = &mut self.counters;
        c.records_by_reason[reason as usize] += 1;
        c.exported_packets += u64::from(e.packets);
        c.exported_bytes += e.bytes;
        self.expired.push(FlowRecord {
            key: e.key,
            stats: e.stats(),
            end_reason: reason,
            out_if: 0,
            origin: None,
        });
    }

    fn link_front(&mut self, idx: u32) {
        // The entry queued HINT_AHEAD queuings ago learns where the walk will be then.
        let older = std::mem::replace(&mut self.recent[self.recent_at], idx);
        self.recent_at = (self.recent_at + 1) % HINT_AHEAD;
        if let Some(e) = self.slab.get_mut(older as usize) {
            e.hint = idx;
        }
        let old = self.head;
        {
            let e = &mut self.slab[idx as usize];
            e.prev = NIL;
            e.next = old;
        }
        if old != NIL {
            self.slab[old as usize].prev = idx;
        } else {
            self.tail = idx;
        }
        self.head = idx;
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let e = &self.slab[idx as usize];
            (e.prev, e.next)
        };
        if prev != NIL {
            self.slab[prev as usize].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.slab[next as usize].prev = prev;
        } else {
            self.tail = prev;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::FrameInfo;

    const S: u64 = 1_000_000_000;

    fn pkt(ts_s: u64, sport: u16, flags: u8) -> PacketMeta {
        let mut m = PacketMeta {
            frame: FrameInfo {
                ts_ns: ts_s * S,
                wire_len: 100,
                in_if: 0,
            },
            ip_version: 4,
            protocol: 6,
            src_port: sport,
            dst_port: 80,
            tcp_flags: flags,
            ttl: 64,
            ip_len: 86,
            ..PacketMeta::default()
        };
        m.src_addr[..4].copy_from_slice(&[10, 0, 0, 1]);
        m.dst_addr[..4].copy_from_slice(&[10, 0, 0, 2]);
        m
    }

    fn cache(max_flows: usize) -> FlowCache {
        FlowCache::new(CacheConfig {
            idle_timeout_ns: 15 * S,
            active_timeout_ns: 60 * S,
            max_flows,
        })
    }

    #[test]
    fn packets_of_one_flow_aggregate() {
        let mut c = cache(10);
        for t in 0..5 {
            c.handle_packet(&pkt(t, 1000, 0x10));
        }
        assert_eq!(c.len(), 1);
        c.flush(EndReason::ForcedEnd);
        let r = c.take_expired();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].stats.packets, 5);
        assert_eq!(r[0].stats.bytes, 5 * 86);
        assert_eq!(r[0].stats.l2_bytes, 500);
        assert_eq!((r[0].stats.start_ns, r[0].stats.end_ns), (0, 4 * S));
        assert_eq!(r[0].end_reason, EndReason::ForcedEnd);
    }

    #[test]
    fn idle_flows_expire_when_time_passes() {
        let mut c = cache(10);
        c.handle_packet(&pkt(0, 1, 0));
        c.handle_packet(&pkt(10, 2, 0));
        c.handle_timeout(15 * S);
        assert!(
            c.take_expired().is_empty(),
            "exactly 15 s idle is not yet expired"
        );
        c.handle_timeout(16 * S);
        let r = c.take_expired();
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].key.src_port, r[0].end_reason), (1, EndReason::Idle));
        // A packet far in the future expires the other flow before it is accounted.
        c.handle_packet(&pkt(100, 1, 0));
        let r = c.take_expired();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].key.src_port, 2);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn long_flows_are_cut_at_the_active_timeout() {
        let mut c = cache(10);
        for t in 0..=130 {
            c.handle_packet(&pkt(t, 7, 0x10));
        }
        let r = c.take_expired();
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|r| r.end_reason == EndReason::Active));
        assert_eq!(r[0].stats.packets, 60);
        assert_eq!(r[1].stats.start_ns, 60 * S);
        c.flush(EndReason::ForcedEnd);
        let total: u64 = r
            .iter()
            .chain(&c.take_expired())
            .map(|r| r.stats.packets)
            .sum();
        assert_eq!(total, 131);
    }

    #[test]
    fn fin_and_rst_end_the_flow() {
        let mut c = cache(10);
        c.handle_packet(&pkt(0, 5, 0x02));
        c.handle_packet(&pkt(1, 5, 0x11));
        c.handle_packet(&pkt(2, 6, 0x04));
        let r = c.take_expired();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].stats.packets, 2);
        assert_eq!(r[0].stats.tcp_flags, 0x13);
        assert!(r.iter().all(|r| r.end_reason == EndReason::EndOfFlow));
        assert!(c.is_empty());
    }

    #[test]
    fn full_table_evicts_least_recently_used() {
        let mut c = cache(3);
        for p in 1..=3 {
            c.handle_packet(&pkt(0, p, 0));
        }
        c.handle_packet(&pkt(1, 1, 0)); // 1 is now most recent; 2 is least
        c.handle_packet(&pkt(2, 4, 0));
        let r = c.take_expired();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].key.src_port, 2);
        assert_eq!(r[0].end_reason, EndReason::LackOfResources);
        assert_eq!(c.len(), 3);
        assert_eq!(
            c.counters().records_by_reason[EndReason::LackOfResources as usize],
            1
        );
    }

    #[test]
    fn slab_slots_are_reused_and_memory_stays_bounded() {
        let mut c = cache(2000);
        for round in 0..20u64 {
            for p in 0..2000u16 {
                c.handle_packet(&pkt(round * 100, p, 0));
            }
        }
        assert_eq!(c.len(), 2000);
        assert!(c.slab.capacity() <= 2000, "slab grew past max_flows");
        let per_flow = c.memory_bytes() / c.len();
        assert!(per_flow <= 128, "{per_flow} bytes per flow");
    }

    #[test]
    fn a_lone_packet_from_the_future_does_not_expire_everything() {
        let mut c = cache(10);
        c.handle_packet(&pkt(0, 1, 0));
        c.handle_packet(&pkt(1_000_000, 2, 0)); // 11 days ahead: an outlier
        for t in 1..30 {
            c.handle_packet(&pkt(t, 1, 0));
        }
        assert!(c.take_expired().is_empty());
        assert_eq!(c.counters().clock_outliers, 1);
        // Two packets far ahead: a real jump; everything idle expires.
        c.handle_packet(&pkt(2_000_000, 3, 0));
        c.handle_packet(&pkt(2_000_001, 3, 0));
        let r = c.take_expired();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].stats.packets + r[1].stats.packets, 31);
        assert!(r.iter().all(|r| r.end_reason == EndReason::Idle));
    }

    #[test]
    fn a_batch_gives_the_same_records_as_packet_by_packet() {
        // 3000 packets over 200 flows with FINs, idle gaps and evictions (cap 150).
        let metas: Vec<PacketMeta> = (0..3000u64)
            .map(|i| {
                let flow = ((i * 7919) % 200) as u16;
                let flags = if i % 97 == 0 { TCP_FIN } else { 0x10 };
                pkt(i / 10 + (i / 1000) * 20, flow, flags)
            })
            .collect();
        let mut one = cache(150);
        metas.iter().for_each(|m| one.handle_packet(m));
        one.flush(EndReason::ForcedEnd);
        let mut batched = cache(150);
        for chunk in metas.chunks(333) {
            batched.handle_batch(chunk);
        }
        batched.flush(EndReason::ForcedEnd);
        let (a, b) = (one.take_expired(), batched.take_expired());
        assert!(a.len() > 200);
        assert_eq!(a, b);
    }

    /// Frame octets beyond the IP octets are kept in 32 bits: a packet that would overflow them
    /// ends the record (reason active) and starts a new one; no octet is lost.
    #[test]
    fn layer_2_octets_that_would_overflow_start_a_new_record() {
        let mut c = cache(10);
        let big = |t| {
            let mut m = pkt(t, 1, 0);
            m.frame.wire_len = 3_000_000_000;
            m
        };
        c.handle_packet(&big(1));
        c.handle_packet(&pkt(2, 1, 0));
        c.handle_packet(&big(3));
        c.flush(EndReason::ForcedEnd);
        let r = c.take_expired();
        let got: Vec<(u64, u64, EndReason)> = r
            .iter()
            .map(|r| (r.stats.packets, r.stats.l2_bytes, r.end_reason))
            .collect();
        assert_eq!(
            got,
            vec![
                (2, 3_000_000_100, EndReason::Active),
                (1, 3_000_000_000, EndReason::ForcedEnd)
            ]
        );
    }

    /// A flush stopped part way (bounded batches) is finished by the next packet before that
    /// packet is counted: every flow of before the flush is exported once, the packet starts
    /// a new record, and the table works as before afterwards.
    #[test]
    fn a_packet_during_a_flush_finishes_it_first() {
        let mut c = cache(100);
        for p in 0..50u16 {
            c.handle_packet(&pkt(1, p, 0));
            c.handle_packet(&pkt(2, p, 0));
        }
        assert_eq!(c.flush_up_to(EndReason::ForcedEnd, 20), 20);
        assert_eq!((c.len(), c.take_expired().len()), (30, 20));
        c.handle_packet(&pkt(3, 7, 0));
        let rest = c.take_expired();
        assert_eq!(rest.len(), 30, "the flush was finished");
        assert!(rest.iter().all(|r| r.end_reason == EndReason::ForcedEnd));
        assert!(rest.iter().all(|r| r.stats.packets == 2));
        assert_eq!(c.len(), 1);
        for t in 4..8 {
            c.handle_packet(&pkt(t, 7, 0));
            c.handle_packet(&pkt(t, 8, 0));
        }
        assert_eq!(c.len(), 2, "later packets find their flows");
        c.flush(EndReason::ForcedEnd);
        let last = c.take_expired();
        let packets: Vec<u64> = last.iter().map(|r| r.stats.packets).collect();
        assert_eq!(packets, vec![5, 4]);
        assert!(c.is_empty());
    }

    #[test]
    fn time_going_backwards_keeps_the_clock() {
        let mut c = cache(10);
        c.handle_packet(&pkt(100, 1, 0));
        c.handle_packet(&pkt(50, 1, 0));
        c.flush(EndReason::ForcedEnd);
        let r = c.take_expired();
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].stats.start_ns, r[0].stats.end_ns), (50 * S, 100 * S));
    }
}
