//! Where an sFlow-derived flow was observed: the agent, its data source and ports, and the
//! sampling rate in force. Flows from sFlow carry an interned [`Origin`] so that each flow
//! has exactly one sampling rate, and exporters can announce (or apply) it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The observation point of an sFlow flow sample (sFlow v5 §5 `flow_sample`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The agent's address (datagram header).
    pub agent: IpAddr,
    /// Sub-agent id (datagram header).
    pub sub_agent: u32,
    /// Data source type (0: ifIndex, 1: smonVlanDataSource, 2: entPhysicalEntry).
    pub source_type: u32,
    /// Data source index (for type 0, the ifIndex of the sampled port).
    pub source_index: u32,
    /// ifIndex the packet came in on; 0 when unknown.
    pub input: u32,
    /// ifIndex the packet went out on; 0 when unknown, discarded or several ports.
    pub output: u32,
    /// 1-in-N sampling rate of the data source.
    pub sampling_rate: u32,
    /// Whether the counts of flows from this origin have been multiplied by
    /// `sampling_rate` (`--sflow-in-scale`). Exporters announce the rate only when not.
    pub scaled: bool,
}

/// Origins by id, shared between the listener (which interns them) and the flow thread
/// (which attaches them to records). Ids are indexes; entries are never removed, and at most
/// `cap` are held, so the table (and what it leaks, see [`OriginTable::intern`]) is bounded.
#[derive(Clone, Debug)]
pub struct OriginTable {
    inner: Arc<Mutex<Inner>>,
    cap: usize,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: Vec<&'static Origin>,
    ids: HashMap<Origin, u32>,
}

impl OriginTable {
    pub fn new(cap: usize) -> OriginTable {
        OriginTable {
            inner: Arc::default(),
            cap,
        }
    }

    /// The id of `o`, adding it when new; `None` when the table is full.
    ///
    /// Origins are leaked to `&'static` so that records can carry them as a plain `Copy`
    /// reference; the cap bounds the leak (at most `cap` × 48 bytes for the process).
    pub fn intern(&self, o: Origin) -> Option<u32> {
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&id) = t.ids.get(&o) {
            return Some(id);
        }
        if t.by_id.len() >= self.cap {
            return None;
        }
        let id = t.by_id.len() as u32;
        t.by_id.push(Box::leak(Box::new(o)));
        t.ids.insert(o, id);
        Some(id)
    }

    /// A reader for the flow thread.
    pub fn reader(&self) -> OriginReader {
        OriginReader {
            table: self.clone(),
            cache: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|t| t.by_id.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Looks origins up by id, refreshing its copy of the table only for ids it has not seen.
#[derive(Debug)]
pub struct OriginReader {
    table: OriginTable,
    cache: Vec<&'static Origin>,
}

impl OriginReader {
    pub fn get(&mut self, id: u32) -> Option<&'static Origin> {
        let i = id as usize;
        if i >= self.cache.len() {
            let t = self.table.inner.lock().unwrap_or_else(|e| e.into_inner());
            self.cache.extend_from_slice(&t.by_id[self.cache.len()..]);
        }
        self.cache.get(i).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(rate: u32) -> Origin {
        Origin {
            agent: "192.0.2.1".parse().unwrap(),
            sub_agent: 0,
            source_type: 0,
            source_index: 3,
            input: 3,
            output: 4,
            sampling_rate: rate,
            scaled: false,
        }
    }

    #[test]
    fn interning_is_stable_and_capped() {
        let t = OriginTable::new(2);
        let mut r = t.reader();
        assert_eq!(t.intern(origin(10)), Some(0));
        assert_eq!(t.intern(origin(20)), Some(1));
        assert_eq!(t.intern(origin(10)), Some(0));
        assert_eq!(t.intern(origin(30)), None, "over the cap");
        assert_eq!(r.get(1).map(|o| o.sampling_rate), Some(20));
        assert_eq!(r.get(0).map(|o| o.sampling_rate), Some(10));
        assert_eq!(r.get(2), None);
        assert_eq!(t.len(), 2);
    }
}
