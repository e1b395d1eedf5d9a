//! Fragment table: gives later IP fragments the ports of their first fragment
//! (RFC 791 §3.2, RFC 8200 §4.5), so every fragment counts toward the same flow.
//!
//! Keyed by source, destination, protocol and IP identification. Entries live for
//! [`FRAG_TIMEOUT_NS`] and the table holds at most [`FRAG_TABLE_CAP`]; a fragment whose first
//! fragment never came (or came after it, or found the table full) still counts, in a flow with
//! ports 0.

use hashbrown::HashMap;

use crate::decode::PacketMeta;

/// How long a first fragment's ports are kept (Linux's ipfrag_time).
pub const FRAG_TIMEOUT_NS: u64 = 30_000_000_000;
/// Most datagrams tracked at once.
pub const FRAG_TABLE_CAP: usize = 16_384;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FragKey {
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
    protocol: u8,
}

#[derive(Clone, Copy, Debug)]
struct FragEntry {
    src_port: u16,
    dst_port: u16,
    expires_ns: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragCounters {
    /// Fragments seen (first and later).
    pub fragments: u64,
    /// Later fragments that found their first fragment's ports.
    pub matched: u64,
    /// Later fragments counted with ports 0.
    pub unmatched: u64,
    /// First fragments not tracked because the table was full.
    pub table_full: u64,
}

pub struct FragTable {
    map: HashMap<FragKey, FragEntry, foldhash::fast::FixedState>,
    cap: usize,
    timeout_ns: u64,
    counters: FragCounters,
}

impl Default for FragTable {
    fn default() -> Self {
        FragTable::new(FRAG_TABLE_CAP, FRAG_TIMEOUT_NS)
    }
}

impl FragTable {
    pub fn new(cap: usize, timeout_ns: u64) -> FragTable {
        FragTable {
            map: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(7)),
            cap: cap.max(1),
            timeout_ns,
            counters: FragCounters::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn counters(&self) -> &FragCounters {
        &self.counters
    }

    /// Records a first fragment, or fills in a later fragment's ports. Not a fragment: no-op.
    pub fn resolve(&mut self, m: &mut PacketMeta) {
        let Some(f) = m.frag else { return };
        self.counters.fragments += 1;
        let now = m.frame.ts_ns;
        let key = FragKey {
            src: m.src_addr,
            dst: m.dst_addr,
            id: f.id,
            protocol: m.protocol,
        };
        if f.offset == 0 {
            if self.map.len() >= self.cap && !self.map.contains_key(&key) {
                self.map.retain(|_, e| e.expires_ns >= now);
                if self.map.len() >= self.cap {
                    self.counters.table_full += 1;
                    return;
                }
            }
            self.map.insert(
                key,
                FragEntry {
                    src_port: m.src_port,
                    dst_port: m.dst_port,
                    expires_ns: now.saturating_add(self.timeout_ns),
                },
            );
            return;
        }
        match self.map.get(&key) {
            Some(e) if e.expires_ns >= now => {
                m.src_port = e.src_port;
                m.dst_port = e.dst_port;
                // Kept until it times out: fragments may come out of order or twice.
                self.counters.matched += 1;
            }
            Some(_) => {
                self.map.remove(&key);
                self.counters.unmatched += 1;
            }
            None => self.counters.unmatched += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{FragInfo, FrameInfo};

    fn frag(ts_s: u64, id: u32, offset: u16, more: bool, ports: (u16, u16)) -> PacketMeta {
        PacketMeta {
            frame: FrameInfo {
                ts_ns: ts_s * 1_000_000_000,
                ..FrameInfo::default()
            },
            ip_version: 4,
            protocol: 17,
            src_port: ports.0,
            dst_port: ports.1,
            frag: Some(FragInfo { id, offset, more }),
            ..PacketMeta::default()
        }
    }

    #[test]
    fn later_fragments_take_the_first_fragments_ports() {
        let mut t = FragTable::default();
        let mut first = frag(0, 9, 0, true, (2049, 800));
        t.resolve(&mut first);
        let mut mid = frag(0, 9, 185, true, (0, 0));
        t.resolve(&mut mid);
        let mut last = frag(1, 9, 370, false, (0, 0));
        t.resolve(&mut last);
        assert_eq!((mid.src_port, mid.dst_port), (2049, 800));
        assert_eq!((last.src_port, last.dst_port), (2049, 800));
        let mut again = frag(2, 9, 370, false, (0, 0));
        t.resolve(&mut again);
        assert_eq!(
            again.dst_port, 800,
            "a repeated last fragment still matches"
        );
        assert_eq!(t.counters().matched, 3);
    }

    #[test]
    fn orphans_and_stale_entries_keep_ports_zero() {
        let mut t = FragTable::new(2, 30_000_000_000);
        let mut orphan = frag(0, 1, 10, false, (0, 0));
        t.resolve(&mut orphan);
        assert_eq!((orphan.dst_port, t.counters().unmatched), (0, 1));
        t.resolve(&mut frag(0, 2, 0, true, (1, 2)));
        let mut late = frag(31, 2, 10, false, (0, 0));
        t.resolve(&mut late);
        assert_eq!(late.dst_port, 0, "entry older than the timeout");
        // Full table: a third datagram is not tracked and counted.
        t.resolve(&mut frag(40, 3, 0, true, (1, 2)));
        t.resolve(&mut frag(40, 4, 0, true, (1, 2)));
        t.resolve(&mut frag(40, 5, 0, true, (1, 2)));
        assert_eq!(t.len(), 2);
        assert_eq!(t.counters().table_full, 1);
    }
}
