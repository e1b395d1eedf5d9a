//! The port map itself: ports by index and MAC → port index, built once and then read-only.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use super::{is_station, Mac, MAX_INDEX, MAX_MACS, MAX_PORTS};

/// One switch port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Linux ifindex of the bridge-side interface; the OpenFlow port number when it has none
    /// (DPDK ports, some tunnels); or the index given in the config file. Never 0.
    pub index: u32,
    /// Interface name (OVS `Interface.name`, or the config file's `name`).
    pub name: String,
    /// VM identity: the config file's `vm`, or OVS `external_ids` `vm-id` (libvirt),
    /// `vm-uuid` (OpenStack), `iface-id` (either, when neither of the others is set).
    pub vm: Option<String>,
    /// OpenFlow port number on its bridge, when known.
    pub ofport: Option<u32>,
}

/// What building a map left out. Every field counts occurrences in one build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapStats {
    /// Ports not added because the map already held [`MAX_PORTS`].
    pub ports_over_cap: u64,
    /// MACs not added because the map already held [`MAX_MACS`].
    pub macs_over_cap: u64,
    /// Ports not added because their index was 0, above [`MAX_INDEX`], the catch-all index, or
    /// another port's index.
    pub index_collisions: u64,
    /// MACs claimed again for a different port (the first claim stays).
    pub mac_conflicts: u64,
    /// Group or all-zero MACs offered as a port's address (ignored).
    pub macs_not_station: u64,
}

/// MAC → port, plus the ports themselves.
#[derive(Clone, Debug)]
pub struct PortMap {
    ports: BTreeMap<u32, Port>,
    macs: HashMap<Mac, u32, foldhash::fast::FixedState>,
    unknown_index: u32,
    stats: MapStats,
}

impl PortMap {
    /// A map with no ports: every MAC goes to `unknown_index`.
    pub fn empty(unknown_index: u32) -> PortMap {
        PortMap {
            ports: BTreeMap::new(),
            macs: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x706f_7274)),
            unknown_index,
            stats: MapStats::default(),
        }
    }

    /// The port index of the station `mac`; the catch-all index for MACs of no known port
    /// and for group addresses. Never 0 (unless the catch-all was configured as 0, which
    /// [`super::validate`] refuses).
    #[inline]
    pub fn lookup(&self, mac: &Mac) -> u32 {
        self.macs.get(mac).copied().unwrap_or(self.unknown_index)
    }

    /// The port `mac` belongs to, if any.
    pub fn port_of(&self, mac: &Mac) -> Option<&Port> {
        self.macs.get(mac).and_then(|i| self.ports.get(i))
    }

    /// The port with this index.
    pub fn port(&self, index: u32) -> Option<&Port> {
        self.ports.get(&index)
    }

    /// All ports, by index.
    pub fn ports(&self) -> impl Iterator<Item = &Port> {
        self.ports.values()
    }

    /// All (MAC, port index) pairs, in no particular order.
    pub fn macs(&self) -> impl Iterator<Item = (&Mac, u32)> {
        self.macs.iter().map(|(m, &i)| (m, i))
    }

    pub fn mac_count(&self) -> usize {
        self.macs.len()
    }

    pub fn port_count(&self) -> usize {
        self.ports.len()
    }

    /// The catch-all index.
    pub fn unknown_index(&self) -> u32 {
        self.unknown_index
    }

    pub fn stats(&self) -> MapStats {
        self.stats
    }
}

/// Builds a [`PortMap`]; the order of the calls is the order of precedence.
#[derive(Debug)]
pub struct PortMapBuilder {
    map: PortMap,
    by_name: HashMap<String, u32>,
}

impl PortMapBuilder {
    pub fn new(unknown_index: u32) -> PortMapBuilder {
        PortMapBuilder {
            map: PortMap::empty(unknown_index),
            by_name: HashMap::new(),
        }
    }

    /// Adds a port, or completes the port of the same name added before (its index stays; a
    /// missing VM id or OpenFlow port number is filled in). Returns the index the port has in
    /// the map, `None` when it was left out (counted).
    pub fn add_port(&mut self, port: Port) -> Option<u32> {
        if let Some(&index) = self.by_name.get(&port.name) {
            let p = self.map.ports.get_mut(&index)?;
            if p.vm.is_none() {
                p.vm = port.vm;
            }
            if p.ofport.is_none() {
                p.ofport = port.ofport;
            }
            return Some(index);
        }
        let s = &mut self.map.stats;
        if port.index == 0
            || port.index > MAX_INDEX
            || port.index == self.map.unknown_index
            || self.map.ports.contains_key(&port.index)
        {
            s.index_collisions += 1;
            return None;
        }
        if self.map.ports.len() >= MAX_PORTS {
            s.ports_over_cap += 1;
            return None;
        }
        let index = port.index;
        self.by_name.insert(port.name.clone(), index);
        self.map.ports.insert(index, port);
        Some(index)
    }

    /// Index of the port called `name`, if added.
    pub fn index_of(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    /// Says that station `mac` sits behind port `index` (which must have been added). The
    /// first claim of a MAC stays; returns whether this one was taken.
    pub fn add_mac(&mut self, index: u32, mac: Mac) -> bool {
        let s = &mut self.map.stats;
        if !is_station(&mac) {
            s.macs_not_station += 1;
            return false;
        }
        if !self.map.ports.contains_key(&index) {
            return false;
        }
        match self.map.macs.get(&mac) {
            Some(&i) if i == index => true,
            Some(_) => {
                s.mac_conflicts += 1;
                false
            }
            None if self.map.macs.len() >= MAX_MACS => {
                s.macs_over_cap += 1;
                false
            }
            None => {
                self.map.macs.insert(mac, index);
                true
            }
        }
    }

    pub fn build(self) -> PortMap {
        self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(index: u32, name: &str, vm: Option<&str>) -> Port {
        Port {
            index,
            name: name.into(),
            vm: vm.map(Into::into),
            ofport: None,
        }
    }

    const A: Mac = [0x52, 0x54, 0, 0, 0, 1];
    const B: Mac = [0x52, 0x54, 0, 0, 0, 2];

    #[test]
    fn unknown_and_group_macs_go_to_the_catch_all() {
        let mut b = PortMapBuilder::new(7);
        assert_eq!(b.add_port(port(10, "vm1-eth0", Some("vm1"))), Some(10));
        assert!(b.add_mac(10, A));
        assert!(!b.add_mac(10, [0xff; 6]));
        let m = b.build();
        assert_eq!(m.lookup(&A), 10);
        assert_eq!(m.port_of(&A).unwrap().vm.as_deref(), Some("vm1"));
        assert_eq!(m.lookup(&B), 7);
        assert_eq!(m.lookup(&[0xff; 6]), 7);
        assert_eq!(m.stats().macs_not_station, 1);
    }

    #[test]
    fn the_first_claim_of_a_mac_wins() {
        let mut b = PortMapBuilder::new(1);
        b.add_port(port(10, "a", None));
        b.add_port(port(11, "b", None));
        assert!(b.add_mac(10, A));
        assert!(b.add_mac(10, A), "the same claim again is fine");
        assert!(!b.add_mac(11, A));
        let m = b.build();
        assert_eq!(m.lookup(&A), 10);
        assert_eq!(m.stats().mac_conflicts, 1);
    }

    #[test]
    fn a_port_of_the_same_name_completes_the_first() {
        let mut b = PortMapBuilder::new(1);
        assert_eq!(b.add_port(port(10, "vm1-eth0", None)), Some(10));
        let from_ovs = Port {
            ofport: Some(3),
            ..port(42, "vm1-eth0", Some("uuid-1"))
        };
        assert_eq!(b.add_port(from_ovs), Some(10));
        let m = b.build();
        assert_eq!(m.port_count(), 1);
        let p = m.port(10).unwrap();
        assert_eq!((p.vm.as_deref(), p.ofport), (Some("uuid-1"), Some(3)));
    }

    #[test]
    fn bad_and_colliding_indexes_are_counted() {
        let mut b = PortMapBuilder::new(5);
        assert_eq!(b.add_port(port(0, "zero", None)), None);
        assert_eq!(b.add_port(port(5, "catch-all", None)), None);
        assert_eq!(b.add_port(port(0x3fff_ffff, "reserved", None)), None);
        assert_eq!(b.add_port(port(9, "a", None)), Some(9));
        assert_eq!(b.add_port(port(9, "b", None)), None);
        assert!(!b.add_mac(123, A), "no such port");
        assert_eq!(b.build().stats().index_collisions, 4);
    }

    #[test]
    fn ports_and_macs_are_bounded() {
        let mut b = PortMapBuilder::new(1);
        for i in 0..MAX_PORTS as u32 + 3 {
            b.add_port(port(i + 2, &format!("p{i}"), None));
        }
        for i in 0..MAX_MACS as u32 + 5 {
            let [_, x, y, z] = i.to_be_bytes();
            b.add_mac(2, [0x02, 0, 0, x, y, z]);
        }
        let m = b.build();
        assert_eq!((m.port_count(), m.mac_count()), (MAX_PORTS, MAX_MACS));
        assert_eq!((m.stats().ports_over_cap, m.stats().macs_over_cap), (3, 5));
    }
}
