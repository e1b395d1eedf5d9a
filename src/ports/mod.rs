//! VM identity: which switch port, and which VM, a MAC address belongs to.
//!
//! A [`PortMap`] turns a frame's source or destination MAC into a port index (the Linux ifindex
//! of the bridge-side interface; the OpenFlow port number when the interface has none) and a
//! [`Port`] with the interface name and the VM id. It is built from, in this order of
//! precedence (the first source to claim a MAC keeps it; later claims are counted as
//! conflicts):
//!
//! 1. the static map of the config file ([`StaticPort`], `[[ports]]` tables);
//! 2. Open vSwitch's database ([`ovsdb`], RFC 7047): every interface of every bridge, with
//!    `external_ids:attached-mac` as libvirt and OpenStack set it;
//! 3. the MACs vswitchd has learned on each port (`fdb/show` over its control socket,
//!    [`fdb`]);
//! 4. the interface's own `mac_in_use` for OVS internal ports (the host's bridge interface).
//!
//! MACs nobody claims, and group (multicast, broadcast) MACs, map to the catch-all index
//! [`PortMap::unknown_index`], never to 0. [`PortDirectory`] keeps a map refreshed from Open
//! vSwitch on a background thread. Everything is bounded: at most [`MAX_PORTS`] ports and
//! [`MAX_MACS`] MACs per map, the rest counted in [`MapStats`].

mod config;
mod directory;
mod error;
pub mod fdb;
mod jsonrpc;
mod map;
pub mod ovsdb;

pub use config::{parse_ovsdb_target, validate, StaticPort, StaticPorts, DEFAULT_OVSDB};
pub use directory::{
    load, DirectoryConfig, DirectoryStats, Loaded, OvsConfig, PortDirectory, PortReader,
    RefreshHandle,
};
pub use error::{PortConfigError, PortsError};
pub use map::{MapStats, Port, PortMap, PortMapBuilder};

/// A MAC address.
pub type Mac = [u8; 6];

/// Ports per map; beyond it ports are left out and counted (`ports_over_cap`).
pub const MAX_PORTS: usize = 4096;
/// MAC addresses per map; beyond it MACs are left out and counted (`macs_over_cap`).
pub const MAX_MACS: usize = 65_536;

/// Default catch-all index for MACs that belong to no known port: 1, the ifindex of Linux's
/// loopback device, which is never a bridge port. It is the default of the flow exporters'
/// `--unknown-if-index` too, fits NetFlow v9's 2-byte interface fields and sFlow's 30-bit
/// format-0 interface values, and is not 0 (which sFlow and IPFIX collectors read as "no
/// interface").
pub const DEFAULT_UNKNOWN_INDEX: u32 = 1;

/// Largest usable port index: sFlow v5 (§5, `interface` format 0) has 30 bits for an ifIndex
/// and reserves 0x3fffffff for "the device itself".
pub const MAX_INDEX: u32 = 0x3fff_fffe;

/// Parses `aa:bb:cc:dd:ee:ff` (also with `-` separators; hex digits in either case).
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in &mut mac {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(m: &Mac) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Whether `m` can be one station's source address: not a group address, not all zeros.
pub fn is_station(m: &Mac) -> bool {
    m[0] & 1 == 0 && *m != [0; 6]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_and_format() {
        let m = parse_mac("52:54:00:AB:cd:0f").unwrap();
        assert_eq!(m, [0x52, 0x54, 0, 0xab, 0xcd, 0x0f]);
        assert_eq!(format_mac(&m), "52:54:00:ab:cd:0f");
        assert_eq!(parse_mac("52-54-00-ab-cd-0f"), Some(m));
        for bad in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:0f:00",
            "52:54:00:ab:cd:g0",
            "525:4:00:ab:cd:0f",
            "52::00:ab:cd:0f",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn group_and_zero_macs_are_not_stations() {
        assert!(is_station(&[0x52, 0x54, 0, 0, 0, 1]));
        assert!(!is_station(&[0xff; 6]));
        assert!(!is_station(&[0x33, 0x33, 0, 0, 0, 1]));
        assert!(!is_station(&[0; 6]));
    }
}
