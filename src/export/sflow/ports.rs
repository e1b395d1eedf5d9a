//! Port counters → sFlow v5 counter samples (sFlow v5 §5 `counters_sample`, enterprise 0
//! format 2, expanded format 4 when the index does not fit 24 bits), one per port, with:
//!
//! - `generic_interface_counters` (0:1): ifIndex = the port, ifType 6 (ethernetCsmacd),
//!   octets and unicast/multicast/broadcast packets per direction as the probe counted
//!   them (frame bytes on the wire, FCS excluded), discards/errors/unknown protocols 0
//!   (a mirror does not see them). ifSpeed, ifDirection (duplex), ifStatus and
//!   ifPromiscuousMode come from `/sys/class/net/IF` for live interfaces; a capture file's
//!   port is reported as speed 0 (unknown), direction 0 (unknown), admin and oper up.
//!   The packet counters are 32 bits on the wire and wrap (SNMP Counter32).
//! - `ethernet_counters` (0:2): all zero. The mirror copy carries no FCS, alignment or
//!   collision information; the structure is sent because collectors expect it next to
//!   the generic counters of an Ethernet port.
//! - `port_name` (0:1005, sFlow host structures): the port map's name for the port when a
//!   port map (`[[ports]]`, `--ovsdb`) knows it, else the interface name (live) or the
//!   capture file's name (files); `other` for the bucket that holds ports beyond the
//!   table's cap.

use std::collections::BTreeMap;
use std::path::Path;

use mirrorflow_sflow::{
    CounterRecord, CounterSampleRepr, DataSource, EthernetCounters, GenericInterfaceCounters,
    PortName,
};

use crate::ports::PortMap;
use crate::sample::{PortCounters, OTHER_PORT};

/// ifType ethernetCsmacd (IANAifType-MIB).
pub const IF_TYPE_ETHERNET: u32 = 6;
/// ifStatus bits (sFlow v5 §5 `if_counters`): bit 0 ifAdminStatus up, bit 1 ifOperStatus up.
pub const IF_STATUS_UP: u32 = 0b11;
/// Most interfaces read from `/sys/class/net` at once.
const MAX_SYS_INTERFACES: usize = 4096;

/// What the counters say about an interface besides the traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfInfo {
    pub name: String,
    /// Bits per second, 0 unknown.
    pub speed: u64,
    /// 0 unknown, 1 full duplex, 2 half duplex.
    pub direction: u32,
    /// [`IF_STATUS_UP`] bits.
    pub status: u32,
    /// TruthValue: 1 true, 2 false.
    pub promiscuous: u32,
}

impl IfInfo {
    /// A port with no interface behind it (a capture file, the overflow bucket).
    pub fn unknown(name: impl Into<String>) -> IfInfo {
        IfInfo {
            name: name.into(),
            speed: 0,
            direction: 0,
            status: IF_STATUS_UP,
            promiscuous: 2,
        }
    }
}

/// Where port names and interface state come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSource {
    /// Live capture: ports are OS ifindexes, described by `/sys/class/net`.
    Live,
    /// A capture file: every port is the file, named by it.
    File(String),
}

impl PortSource {
    /// The source for a capture file at `path` (its file name).
    pub fn file(path: &Path) -> PortSource {
        let name = path
            .file_name()
            .unwrap_or(path.as_os_str())
            .to_string_lossy()
            .into_owned();
        PortSource::File(name)
    }
}

/// Reads one attribute of `/sys/class/net/IF`.
fn sys_attr(dir: &Path, attr: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(attr))
        .ok()
        .map(|s| s.trim().to_string())
}

/// ifindex → name of the interfaces under `root` (normally `/sys/class/net`).
pub fn sys_indexes(root: &Path) -> BTreeMap<u32, String> {
    let mut map = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(root) else {
        return map;
    };
    for entry in dir.flatten().take(MAX_SYS_INTERFACES) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(ix) = sys_attr(&entry.path(), "ifindex").and_then(|s| s.parse().ok()) {
            map.insert(ix, name);
        }
    }
    map
}

/// The state of interface `name` under `root`.
pub fn sys_info(root: &Path, name: &str) -> IfInfo {
    let dir = root.join(name);
    let flags = sys_attr(&dir, "flags")
        .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    // IFF_UP 0x1, IFF_PROMISC 0x100 (linux/if.h).
    let oper = match sys_attr(&dir, "operstate").as_deref() {
        Some("up") => true,
        // Loopback and some virtual devices report "unknown": then the carrier decides.
        Some("unknown") => sys_attr(&dir, "carrier").as_deref() == Some("1"),
        _ => false,
    };
    // Virtual devices have no speed (the read fails or says -1).
    let speed = sys_attr(&dir, "speed")
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|&mbps| mbps > 0)
        .map_or(0, |mbps| mbps as u64 * 1_000_000);
    let direction = match sys_attr(&dir, "duplex").as_deref() {
        Some("full") => 1,
        Some("half") => 2,
        _ => 0,
    };
    IfInfo {
        name: name.to_string(),
        speed,
        direction,
        status: u32::from(flags & 0x1 != 0) | (u32::from(oper) << 1),
        promiscuous: if flags & 0x100 != 0 { 1 } else { 2 },
    }
}

/// Describes ports: names and state from `/sys/class/net` (live) or the file name.
#[derive(Debug)]
pub struct Ports {
    source: PortSource,
    root: std::path::PathBuf,
}

impl Ports {
    pub fn new(source: PortSource) -> Ports {
        Ports {
            source,
            root: "/sys/class/net".into(),
        }
    }

    /// Reads the state of every port in `ports` (one directory scan for live ports). A port
    /// that `map` knows is named by it (the state still comes from its ifindex).
    pub fn describe(
        &self,
        ports: impl Iterator<Item = u32>,
        map: Option<&PortMap>,
    ) -> BTreeMap<u32, IfInfo> {
        let names = match &self.source {
            PortSource::Live => sys_indexes(&self.root),
            PortSource::File(_) => BTreeMap::new(),
        };
        ports
            .map(|p| {
                let info = match (&self.source, names.get(&p)) {
                    _ if p == OTHER_PORT => IfInfo::unknown("other"),
                    (PortSource::File(name), _) => IfInfo::unknown(name.clone()),
                    (PortSource::Live, Some(name)) => sys_info(&self.root, name),
                    // An interface that has gone away: named by its index, down.
                    (PortSource::Live, None) => IfInfo {
                        status: 0,
                        ..IfInfo::unknown(format!("ifindex{p}"))
                    },
                };
                let info = match map.and_then(|m| m.port(p)) {
                    Some(port) if p != OTHER_PORT => IfInfo {
                        name: port.name.clone(),
                        ..info
                    },
                    _ => info,
                };
                (p, info)
            })
            .collect()
    }
}

/// The counter sample of port `port`.
pub fn counter_sample(
    port: u32,
    sequence: u32,
    c: &PortCounters,
    info: &IfInfo,
) -> CounterSampleRepr {
    let c32 = |v: u64| v as u32; // Counter32: wraps.
    CounterSampleRepr {
        sequence_number: sequence,
        source_id: DataSource::if_index(port),
        records: vec![
            CounterRecord::GenericInterface(GenericInterfaceCounters {
                if_index: port,
                if_type: IF_TYPE_ETHERNET,
                if_speed: info.speed,
                if_direction: info.direction,
                if_status: info.status,
                if_in_octets: c.in_octets,
                if_in_ucast_pkts: c32(c.in_unicast),
                if_in_multicast_pkts: c32(c.in_multicast),
                if_in_broadcast_pkts: c32(c.in_broadcast),
                if_in_discards: 0,
                if_in_errors: 0,
                if_in_unknown_protos: 0,
                if_out_octets: c.out_octets,
                if_out_ucast_pkts: c32(c.out_unicast),
                if_out_multicast_pkts: c32(c.out_multicast),
                if_out_broadcast_pkts: c32(c.out_broadcast),
                if_out_discards: 0,
                if_out_errors: 0,
                if_promiscuous_mode: info.promiscuous,
            }),
            CounterRecord::Ethernet(EthernetCounters::default()),
            CounterRecord::PortName(PortName {
                name: info.name.clone(),
            }),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_described_from_sys() {
        let ports = Ports::new(PortSource::Live);
        let lo = sys_indexes(Path::new("/sys/class/net"))
            .into_iter()
            .find(|(_, n)| n == "lo")
            .map(|(ix, _)| ix)
            .expect("lo in /sys/class/net");
        let d = ports.describe([lo, 0x00ff_fff0].into_iter(), None);
        assert_eq!(d[&lo].name, "lo");
        assert_eq!(d[&lo].status, IF_STATUS_UP, "{:?}", d[&lo]);
        assert_eq!(d[&lo].speed, 0);
        assert_eq!(d[&0x00ff_fff0].name, "ifindex16777200");
        assert_eq!(d[&0x00ff_fff0].status, 0);
    }

    #[test]
    fn files_name_their_port() {
        let ports = Ports::new(PortSource::file(Path::new("/tmp/x/trace.pcap")));
        let d = ports.describe([1, OTHER_PORT].into_iter(), None);
        assert_eq!(d[&1], IfInfo::unknown("trace.pcap"));
        assert_eq!(d[&OTHER_PORT].name, "other");
    }

    #[test]
    fn the_port_map_names_its_ports() {
        use crate::ports::{Port, PortMapBuilder};
        let mut b = PortMapBuilder::new(1);
        b.add_port(Port {
            index: 11,
            name: "vm1-eth0".into(),
            vm: Some("vm1".into()),
            ofport: Some(3),
        });
        let map = b.build();
        let ports = Ports::new(PortSource::file(Path::new("/tmp/x/trace.pcap")));
        let d = ports.describe([1, 11, OTHER_PORT].into_iter(), Some(&map));
        assert_eq!(d[&11], IfInfo::unknown("vm1-eth0"));
        assert_eq!(d[&1].name, "trace.pcap");
        assert_eq!(d[&OTHER_PORT].name, "other");
    }

    #[test]
    fn packet_counters_wrap_at_32_bits() {
        let c = PortCounters {
            in_octets: 1 << 40,
            in_unicast: (1 << 32) + 5,
            out_broadcast: 7,
            ..PortCounters::default()
        };
        let s = counter_sample(3, 9, &c, &IfInfo::unknown("p"));
        let CounterRecord::GenericInterface(g) = &s.records[0] else {
            panic!("{s:?}")
        };
        assert_eq!((g.if_in_octets, g.if_in_ucast_pkts), (1 << 40, 5));
        assert_eq!((g.if_out_broadcast_pkts, g.if_index, g.if_type), (7, 3, 6));
        assert_eq!(
            (s.sequence_number, s.source_id),
            (9, DataSource::if_index(3))
        );
    }
}
