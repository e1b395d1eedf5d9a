//! The latest counter values each agent reported per port (sFlow v5 §5 `counters_sample`:
//! generic interface counters 0:1, Ethernet counters 0:2, OpenFlow port 0:1004 and port
//! name 0:1005) and per Open vSwitch datapath (0:2207). Values are the agents' cumulative
//! counters as sent; Prometheus computes the rates.

use std::collections::BTreeMap;

use sflow_parser::models::record_counters::{
    EthernetInterfaceCounters, GenericInterfaceCounters, OvsDpStats,
};

use super::agents::AgentKey;

/// Names of the Ethernet (dot3) error counters, in [`PortCounters::ethernet`] order.
pub const ETHERNET_COUNTERS: [&str; 13] = [
    "alignment_errors",
    "fcs_errors",
    "single_collision_frames",
    "multiple_collision_frames",
    "sqe_test_errors",
    "deferred_transmissions",
    "late_collisions",
    "excessive_collisions",
    "internal_mac_transmit_errors",
    "carrier_sense_errors",
    "frame_too_longs",
    "internal_mac_receive_errors",
    "symbol_errors",
];

/// One port of one agent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PortCounters {
    pub generic: Option<GenericInterfaceCounters>,
    pub ethernet: Option<[u32; 13]>,
    /// Port name (0:1005), e.g. the OVS interface name.
    pub name: Option<String>,
    /// OpenFlow datapath id and port number (0:1004).
    pub openflow: Option<(u64, u32)>,
}

/// The counters of every agent, with a cap on the ports held.
#[derive(Clone, Debug, Default)]
pub struct CounterTable {
    pub ports: BTreeMap<(AgentKey, u32), PortCounters>,
    pub datapaths: BTreeMap<(AgentKey, u32), OvsDpStats>,
    /// Counter records not kept because `max_ports` ports were already held.
    pub over_cap: u64,
    max_ports: usize,
}

impl CounterTable {
    pub fn new(max_ports: usize) -> CounterTable {
        CounterTable {
            max_ports,
            ..CounterTable::default()
        }
    }

    /// The entry of a port, made when there is room (ports and datapaths share the cap).
    fn port(&mut self, agent: AgentKey, index: u32) -> Option<&mut PortCounters> {
        let full = self.ports.len() + self.datapaths.len() >= self.max_ports;
        match self.ports.entry((agent, index)) {
            std::collections::btree_map::Entry::Occupied(e) => Some(e.into_mut()),
            std::collections::btree_map::Entry::Vacant(_) if full => {
                self.over_cap += 1;
                None
            }
            std::collections::btree_map::Entry::Vacant(e) => {
                Some(e.insert(PortCounters::default()))
            }
        }
    }

    pub fn generic(&mut self, agent: AgentKey, index: u32, c: &GenericInterfaceCounters) {
        if let Some(p) = self.port(agent, index) {
            p.generic = Some(c.clone());
        }
    }

    pub fn ethernet(&mut self, agent: AgentKey, index: u32, c: &EthernetInterfaceCounters) {
        if let Some(p) = self.port(agent, index) {
            p.ethernet = Some([
                c.dot3_stats_alignment_errors,
                c.dot3_stats_fcs_errors,
                c.dot3_stats_single_collision_frames,
                c.dot3_stats_multiple_collision_frames,
                c.dot3_stats_sqe_test_errors,
                c.dot3_stats_deferred_transmissions,
                c.dot3_stats_late_collisions,
                c.dot3_stats_excessive_collisions,
                c.dot3_stats_internal_mac_transmit_errors,
                c.dot3_stats_carrier_sense_errors,
                c.dot3_stats_frame_too_longs,
                c.dot3_stats_internal_mac_receive_errors,
                c.dot3_stats_symbol_errors,
            ]);
        }
    }

    /// Port names longer than 64 bytes are cut (on a character boundary).
    pub fn name(&mut self, agent: AgentKey, index: u32, name: &str) {
        if let Some(p) = self.port(agent, index) {
            let mut end = name.len().min(64);
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            p.name = Some(name[..end].to_string());
        }
    }

    pub fn openflow(&mut self, agent: AgentKey, index: u32, datapath: u64, port: u32) {
        if let Some(p) = self.port(agent, index) {
            p.openflow = Some((datapath, port));
        }
    }

    /// Datapaths count against the same cap as ports.
    pub fn datapath(&mut self, agent: AgentKey, index: u32, s: &OvsDpStats) {
        if self.datapaths.contains_key(&(agent, index))
            || self.datapaths.len() + self.ports.len() < self.max_ports
        {
            self.datapaths.insert((agent, index), s.clone());
        } else {
            self.over_cap += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_beyond_the_cap_are_counted_not_kept() {
        let a = AgentKey {
            addr: "192.0.2.1".parse().unwrap(),
            sub_agent: 0,
        };
        let mut t = CounterTable::new(2);
        t.name(a, 1, "vm1-eth0");
        t.name(a, 2, "vm2-eth0");
        t.name(a, 3, "vm3-eth0");
        t.name(a, 1, "renamed");
        assert_eq!(t.ports.len(), 2);
        assert_eq!(t.over_cap, 1);
        assert_eq!(t.ports[&(a, 1)].name.as_deref(), Some("renamed"));
    }

    /// Ports and datapaths share one cap, whichever comes first.
    #[test]
    fn ports_and_datapaths_share_the_cap() {
        use sflow_parser::models::record_counters::OvsDpStats;
        let a = AgentKey {
            addr: "192.0.2.1".parse().unwrap(),
            sub_agent: 0,
        };
        let dp = OvsDpStats {
            hits: 1,
            misses: 2,
            lost: 0,
            mask_hits: 0,
            flows: 3,
            masks: 0,
        };
        let mut t = CounterTable::new(2);
        t.datapath(a, 1000, &dp);
        t.name(a, 1, "p1");
        t.name(a, 2, "p2");
        t.datapath(a, 1001, &dp);
        assert_eq!((t.ports.len(), t.datapaths.len(), t.over_cap), (1, 1, 2));
    }
}
