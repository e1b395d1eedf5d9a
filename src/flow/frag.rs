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
                self.counters.matched += 1;
                if !f.more {
                    self.map.remove(&key);
                }
            }
            Some(_) => {
                self.map.remove(&key);
                self.counters.unmatched += 1;
            }
            None => self.counters.unmatched += 1,
        }
    }
}
