//! Traffic aggregates with bounded label sets: bytes and packets of exported flow records by
//! ingress interface, IP version, protocol class and direction.
//!
//! Every label here takes values from a fixed list, or from [`LabelSlots`]: the first `cap`
//! distinct values seen keep their own label for the life of the process and every later one
//! shares `other`, so each series stays monotonic and the number of series is bounded by
//! configuration.

use std::collections::BTreeMap;
use std::hash::Hash;
use std::net::IpAddr;

use hashbrown::HashMap;

use crate::flow::FlowRecord;

/// Label value of the shared bucket.
pub const OTHER: &str = "other";

/// Protocol label values; the last is everything else.
pub const PROTOCOLS: [&str; 7] = ["tcp", "udp", "icmp", "icmpv6", "sctp", "gre", "other"];
/// Direction label values, see [`Direction`].
pub const DIRECTIONS: [&str; 4] = ["east_west", "inbound", "outbound", "transit"];
/// IP version label values.
pub const IP_VERSIONS: [&str; 2] = ["4", "6"];

fn protocol_class(p: u8) -> usize {
    match p {
        6 => 0,
        17 => 1,
        1 => 2,
        58 => 3,
        132 => 4,
        47 => 5,
        _ => 6,
    }
}

/// First-come label slots: at most `cap` values get their own slot, the rest share slot `cap`.
#[derive(Clone, Debug)]
pub struct LabelSlots<T> {
    cap: usize,
    slots: HashMap<T, usize>,
    order: Vec<T>,
}

impl<T: Copy + Eq + Hash> LabelSlots<T> {
    pub fn new(cap: usize) -> Self {
        LabelSlots {
            cap,
            slots: HashMap::new(),
            order: Vec::new(),
        }
    }

    /// The slot of `v`; `cap` is the shared `other` slot.
    pub fn slot(&mut self, v: T) -> usize {
        if let Some(&s) = self.slots.get(&v) {
            return s;
        }
        if self.order.len() >= self.cap {
            return self.cap;
        }
        self.order.push(v);
        self.slots.insert(v, self.order.len() - 1);
        self.order.len() - 1
    }

    /// The slot of `v` if it has one of its own.
    pub fn get(&self, v: &T) -> Option<usize> {
        self.slots.get(v).copied()
    }

    /// The value of slot `s`, `None` for the `other` slot.
    pub fn value(&self, s: usize) -> Option<T> {
        self.order.get(s).copied()
    }
}

/// An IPv4 or IPv6 prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    len: u8,
}

impl Net {
    /// Parses `ADDR/LEN`.
    pub fn parse(s: &str) -> Option<Net> {
        let (a, l) = s.trim().split_once('/')?;
        let addr: IpAddr = a.parse().ok()?;
        let len: u8 = l.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (len <= max).then_some(Net { addr, len })
    }

    /// Network and mask as integers: IPv4 in the low 32 bits.
    fn masked(&self) -> (bool, u128, u128) {
        match self.addr {
            IpAddr::V4(a) => {
                let m = if self.len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.len))
                };
                (false, u128::from(u32::from(a) & m), u128::from(m))
            }
            IpAddr::V6(a) => {
                let m = if self.len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.len))
                };
                (true, u128::from(a) & m, m)
            }
        }
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        Nets::new(&[*self]).contains_ip(a)
    }
}

/// A set of networks, as masks for a quick membership test on flow-key addresses.
#[derive(Clone, Debug, Default)]
pub struct Nets {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl Nets {
    pub fn new(nets: &[Net]) -> Nets {
        let mut n = Nets::default();
        for net in nets {
            match net.masked() {
                (false, a, m) => n.v4.push((a as u32, m as u32)),
                (true, a, m) => n.v6.push((a, m)),
            }
        }
        n
    }

    /// `a` as a flow key holds it: IPv4 in the first 4 bytes.
    pub fn contains(&self, a: &[u8; 16], v6: bool) -> bool {
        if v6 {
            let x = u128::from_be_bytes(*a);
            self.v6.iter().any(|&(n, m)| x & m == n)
        } else {
            let x = u32::from_be_bytes([a[0], a[1], a[2], a[3]]);
            self.v4.iter().any(|&(n, m)| x & m == n)
        }
    }

    pub fn contains_ip(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(v) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&v.octets());
                self.contains(&b, false)
            }
            IpAddr::V6(v) => self.contains(&v.octets(), true),
        }
    }

    /// Direction of a flow relative to these (internal) networks: `east_west` (internal to
    /// internal: VM to VM), `inbound` (external to internal), `outbound` (internal to
    /// external), `transit` (neither end internal); an index into [`DIRECTIONS`].
    pub fn direction(&self, src: &[u8; 16], dst: &[u8; 16], v6: bool) -> usize {
        match (self.contains(src, v6), self.contains(dst, v6)) {
            (true, true) => 0,
            (false, true) => 1,
            (true, false) => 2,
            (false, false) => 3,
        }
    }
}

/// Networks counted as internal by default: RFC 1918, shared address space (RFC 6598),
/// loopback, link-local, unique local IPv6 (RFC 4193).
pub const DEFAULT_INTERNAL_NETS: [&str; 9] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "fc00::/7",
    "fe80::/10",
    "::1/128",
];

/// One row of the traffic table, for the collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrafficRow<'a> {
    pub in_if: &'a str,
    pub ip_version: &'static str,
    pub protocol: &'static str,
    pub direction: &'static str,
    pub bytes: u64,
    pub packets: u64,
}

/// Bytes and packets of flow records, by (in_if slot, IP version, protocol, direction).
#[derive(Clone, Debug)]
pub struct Traffic {
    nets: Nets,
    ifs: LabelSlots<u32>,
    /// Last interface and its slot (records come in runs from one interface).
    last_if: Option<(u32, usize)>,
    /// Label of each interface slot (name when known, else the number; `unknown` for 0).
    if_labels: Vec<String>,
    names: BTreeMap<u32, String>,
    /// [bytes, packets], indexed by `index()`.
    counts: Vec<[u64; 2]>,
}

const PER_IF: usize = IP_VERSIONS.len() * PROTOCOLS.len() * DIRECTIONS.len();

impl Traffic {
    pub fn new(max_interfaces: usize, nets: Vec<Net>, names: BTreeMap<u32, String>) -> Self {
        Traffic {
            nets: Nets::new(&nets),
            ifs: LabelSlots::new(max_interfaces),
            last_if: None,
            if_labels: Vec::new(),
            names,
            counts: vec![[0; 2]; (max_interfaces + 1) * PER_IF],
        }
    }

    pub fn add(&mut self, r: &FlowRecord) {
        let k = &r.key;
        // Flows from sFlow: the sample's input ifIndex (the agent's numbering).
        let in_if = r.interfaces().0;
        let slot = match self.last_if {
            Some((i, s)) if i == in_if => s,
            _ => {
                let s = self.ifs.slot(in_if);
                self.last_if = Some((in_if, s));
                s
            }
        };
        if slot == self.if_labels.len() && slot < self.ifs.cap {
            // A new slot (slots are handed out in order).
            self.if_labels.push(match self.names.get(&in_if) {
                Some(name) => name.clone(),
                None if in_if == 0 => "unknown".to_string(),
                None => in_if.to_string(),
            });
        }
        let v6 = k.ip_version() == 6;
        let v = usize::from(v6);
        let dir = self.nets.direction(&k.src_addr, &k.dst_addr, v6);
        let i = ((slot * IP_VERSIONS.len() + v) * PROTOCOLS.len() + protocol_class(k.protocol))
            * DIRECTIONS.len()
            + dir;
        let c = &mut self.counts[i];
        c[0] += r.stats.bytes;
        c[1] += r.stats.packets;
    }

    /// Non-zero rows.
    pub fn rows(&self) -> impl Iterator<Item = TrafficRow<'_>> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| c[1] != 0 || c[0] != 0)
            .map(|(i, c)| {
                let dir = i % DIRECTIONS.len();
                let rest = i / DIRECTIONS.len();
                let proto = rest % PROTOCOLS.len();
                let rest = rest / PROTOCOLS.len();
                let v = rest % IP_VERSIONS.len();
                let slot = rest / IP_VERSIONS.len();
                TrafficRow {
                    in_if: self.if_labels.get(slot).map_or(OTHER, String::as_str),
                    ip_version: IP_VERSIONS[v],
                    protocol: PROTOCOLS[proto],
                    direction: DIRECTIONS[dir],
                    bytes: c[0],
                    packets: c[1],
                }
            })
    }

    /// The most rows [`Traffic::rows`] can return.
    pub fn max_rows(max_interfaces: usize) -> usize {
        (max_interfaces + 1) * PER_IF
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{EndReason, FlowKey, FlowStats};

    fn nets() -> Vec<Net> {
        DEFAULT_INTERNAL_NETS
            .iter()
            .map(|s| Net::parse(s).unwrap())
            .collect()
    }

    fn rec(src: [u8; 4], dst: [u8; 4], proto: u8, in_if: u32, bytes: u64) -> FlowRecord {
        let mut key = FlowKey::default();
        key.src_addr[..4].copy_from_slice(&src);
        key.dst_addr[..4].copy_from_slice(&dst);
        (key.protocol, key.in_if) = (proto, in_if);
        FlowRecord {
            key,
            stats: FlowStats {
                packets: 2,
                bytes,
                ..FlowStats::default()
            },
            end_reason: EndReason::Idle,
            out_if: 0,
            origin: None,
        }
    }

    #[test]
    fn prefixes_and_directions() {
        let n = Nets::new(&nets());
        let key = |s: &str| match s.parse::<IpAddr>().unwrap() {
            IpAddr::V4(a) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&a.octets());
                (b, false)
            }
            IpAddr::V6(a) => (a.octets(), true),
        };
        let dir = |a: &str, b: &str| {
            let ((a, v6), (b, _)) = (key(a), key(b));
            n.direction(&a, &b, v6)
        };
        assert_eq!(dir("10.1.2.3", "192.168.0.9"), 0);
        assert_eq!(dir("8.8.8.8", "172.31.255.1"), 1);
        assert_eq!(dir("172.32.0.1", "8.8.8.8"), 3);
        assert_eq!(dir("fd00::1", "2001:db8::1"), 2);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(n.contains_ip(ip("::1")) && !n.contains_ip(ip("::2")));
        assert!(Net::parse("0.0.0.0/0").unwrap().contains(ip("1.2.3.4")));
        assert!(!Net::parse("::/0").unwrap().contains(ip("1.2.3.4")));
        for bad in ["10.0.0.0", "10.0.0.0/33", "::/129", "x/8"] {
            assert_eq!(Net::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn interfaces_are_capped_with_an_other_bucket() {
        let names = BTreeMap::from([(7, "eth7".to_string())]);
        let mut t = Traffic::new(2, nets(), names);
        t.add(&rec([10, 0, 0, 1], [10, 0, 0, 2], 6, 7, 100));
        t.add(&rec([10, 0, 0, 1], [10, 0, 0, 2], 6, 0, 10));
        for i in 10..20 {
            t.add(&rec([10, 0, 0, 1], [8, 8, 8, 8], 17, i, 1));
        }
        t.add(&rec([10, 0, 0, 1], [8, 8, 8, 8], 99, 7, 5));
        let rows: Vec<_> = t.rows().collect();
        let labels: Vec<_> = rows
            .iter()
            .map(|r| (r.in_if, r.protocol, r.direction, r.bytes))
            .collect();
        assert_eq!(
            labels,
            [
                ("eth7", "tcp", "east_west", 100),
                ("eth7", "other", "outbound", 5),
                ("unknown", "tcp", "east_west", 10),
                ("other", "udp", "outbound", 10),
            ]
        );
        assert!(rows.len() <= Traffic::max_rows(2));
    }
}
