//! Flow keys and the records the cache hands to exporters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::decode::PacketMeta;

/// What ended a flow record. Values are IPFIX flowEndReason (RFC 7012 §5.11.3, IE 136).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// No packet for the idle timeout.
    Idle = 1,
    /// The flow has lasted the active timeout; it goes on in a new record.
    Active = 2,
    /// TCP FIN or RST.
    EndOfFlow = 3,
    /// End of input or shutdown.
    ForcedEnd = 4,
    /// Evicted early because the flow table was full.
    LackOfResources = 5,
}

impl EndReason {
    pub const ALL: [EndReason; 5] = [
        EndReason::Idle,
        EndReason::Active,
        EndReason::EndOfFlow,
        EndReason::ForcedEnd,
        EndReason::LackOfResources,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EndReason::Idle => "idle",
            EndReason::Active => "active",
            EndReason::EndOfFlow => "end_of_flow",
            EndReason::ForcedEnd => "forced_end",
            EndReason::LackOfResources => "lack_of_resources",
        }
    }
}

/// Set in `FrameInfo::in_if` (and so in the flow key) of packets sampled by an sFlow agent;
/// the other bits are the id of their origin. Capture interfaces never reach it (ifIndexes
/// and pcapng interface numbers are far smaller).
pub const ORIGIN_BIT: u32 = 1 << 31;

const KEY_IPV6: u8 = 1;
const KEY_TUNNEL: u8 = 2;

/// Unidirectional flow key (48 bytes): IP version, addresses, protocol, ports, outer VLAN,
/// tunnel id and ingress interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub tunnel_id: u32,
    pub in_if: u32,
    pub vlan_id: u16,
    pub protocol: u8,
    flags: u8,
}

impl FlowKey {
    pub fn from_meta(m: &PacketMeta) -> FlowKey {
        let mut flags = if m.ip_version == 6 { KEY_IPV6 } else { 0 };
        if m.tunnel_id.is_some() {
            flags |= KEY_TUNNEL;
        }
        FlowKey {
            src_addr: m.src_addr,
            dst_addr: m.dst_addr,
            src_port: m.src_port,
            dst_port: m.dst_port,
            tunnel_id: m.tunnel_id.unwrap_or(0),
            in_if: m.frame.in_if,
            vlan_id: m.vlan_id,
            protocol: m.protocol,
            flags,
        }
    }

    pub fn ip_version(&self) -> u8 {
        if self.flags & KEY_IPV6 != 0 {
            6
        } else {
            4
        }
    }

    /// The origin id of a flow built from sFlow samples: their `in_if` carries
    /// [`ORIGIN_BIT`] and the id of the sample's [`crate::sflow_in::Origin`].
    pub fn origin_id(&self) -> Option<u32> {
        (self.in_if & ORIGIN_BIT != 0).then_some(self.in_if & !ORIGIN_BIT)
    }

    pub fn tunnel_id(&self) -> Option<u32> {
        (self.flags & KEY_TUNNEL != 0).then_some(self.tunnel_id)
    }

    pub fn src_ip(&self) -> IpAddr {
        to_ip(self.ip_version(), &self.src_addr)
    }

    pub fn dst_ip(&self) -> IpAddr {
        to_ip(self.ip_version(), &self.dst_addr)
    }
}

fn to_ip(version: u8, a: &[u8; 16]) -> IpAddr {
    if version == 6 {
        IpAddr::V6(Ipv6Addr::from(*a))
    } else {
        IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
    }
}

/// Per-flow counters and first-packet attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowStats {
    pub packets: u64,
    /// IP-layer octets (IPFIX octetDeltaCount).
    pub bytes: u64,
    /// Frame octets on the wire.
    pub l2_bytes: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// OR of the TCP flags of every packet.
    pub tcp_flags: u8,
    pub min_ttl: u8,
    pub max_ttl: u8,
    /// TOS / traffic class of the first packet.
    pub tos: u8,
}

/// An expired flow, as exporters receive it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    pub key: FlowKey,
    pub stats: FlowStats,
    pub end_reason: EndReason,
    /// Egress port (the port behind the destination MAC) when a port map is configured; 0
    /// otherwise. Resolved when the record is exported.
    pub out_if: u32,
    /// For flows built from sFlow samples: the agent, data source, ports and sampling rate
    /// (see [`FlowKey::origin_id`]). Resolved when the record is exported.
    pub origin: Option<&'static crate::sflow_in::Origin>,
}

impl FlowRecord {
    /// Ingress and egress interface: the sFlow sample's input and output ifIndex for flows
    /// from sFlow, else the key's interface and the resolved egress port (0: unknown).
    pub fn interfaces(&self) -> (u32, u32) {
        match self.origin {
            Some(o) => (o.input, o.output),
            None if self.key.origin_id().is_some() => (0, 0),
            None => (self.key.in_if, self.out_if),
        }
    }
}
