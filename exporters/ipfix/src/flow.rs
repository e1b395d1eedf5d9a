//! Input types handed over by the probe.

use std::net::IpAddr;

/// One flow as the probe hands it over (unscaled counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    /// Source address; both addresses are v4 or both v6 (a mixed pair is exported
    /// with the IPv6 template, the v4 address IPv4-mapped).
    pub src_addr: IpAddr,
    /// Destination address.
    pub dst_addr: IpAddr,
    /// Source transport port.
    pub src_port: u16,
    /// Destination transport port.
    pub dst_port: u16,
    /// IP protocol number.
    pub protocol: u8,
    /// Bytes.
    pub octets: u64,
    /// Packets.
    pub packets: u64,
    /// Flow start, Unix epoch milliseconds.
    pub start_ms: u64,
    /// Flow end, Unix epoch milliseconds.
    pub end_ms: u64,
    /// Union of TCP flags.
    pub tcp_flags: u8,
    /// ICMP type * 256 + code, 0 if not ICMP.
    pub icmp_type_code: u16,
    /// IP TOS / traffic class.
    pub tos: u8,
    /// Minimum TTL / hop limit seen.
    pub min_ttl: u8,
    /// Maximum TTL / hop limit seen.
    pub max_ttl: u8,
    /// Source MAC address.
    pub src_mac: [u8; 6],
    /// Destination MAC address.
    pub dst_mac: [u8; 6],
    /// VLAN id, 0 = untagged.
    pub vlan_id: u16,
    /// Ingress ifIndex, never 0.
    pub ingress_if: u32,
    /// Egress ifIndex, never 0.
    pub egress_if: u32,
    /// flowDirection: 0 ingress, 1 egress.
    pub direction: u8,
    /// flowEndReason (RFC 7012 IE 136): 1 idle, 2 active, 3 end of flow, 4 forced, 5 lack of resources.
    pub end_reason: u8,
    /// layer2SegmentId (IE 351): VXLAN VNI / tunnel id. Exported in IPFIX only.
    pub layer2_segment_id: Option<u64>,
    /// 1-in-N packet sampling of this record when it differs from the observation domain's
    /// ([`crate::EncoderConfig::sampling`]), e.g. a flow built from another agent's samples.
    /// `Some(n)` goes out with a selector template (selectorId / FLOW_SAMPLER_ID = n) and an
    /// options record announcing n (see `templates.rs`); `None` with the plain templates,
    /// scaled by the domain's sampling. 0 is sent as 1 (unsampled).
    pub sampling: Option<u32>,
}

/// Interface name / description, exported as options data (scope: ingressInterface).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// ifIndex.
    pub index: u32,
    /// ifName.
    pub name: String,
    /// ifDescr.
    pub description: String,
}

/// Packet sampling in force on the observation point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampling {
    /// 1-in-N random sampling; 1 = unsampled.
    pub interval: u32,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { interval: 1 }
    }
}

/// Exporting-process statistics, exported as options data (scope: observation domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExporterStats {
    /// exportedMessageTotalCount (IE 41).
    pub messages: u64,
    /// exportedFlowRecordTotalCount (IE 42).
    pub records: u64,
    /// ignoredPacketTotalCount (IE 164).
    pub ignored_packets: u64,
}
