//! `PacketMeta`: the few fields of a frame that the flow cache and samplers need.
//!
//! It is a plain `Copy` value (about 100 bytes): decode fills one per frame without
//! allocating, and batches of them cross from capture threads to the flow thread.

/// Where a frame came from and when, as the capture source reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameInfo {
    /// Capture timestamp, Unix epoch nanoseconds.
    pub ts_ns: u64,
    /// Original length of the frame on the wire (before snaplen truncation).
    pub wire_len: u32,
    /// Ingress interface: OS ifindex for live capture, interface (IDB) number + 1 for pcapng
    /// files, 0 when the source does not name interfaces (classic pcap).
    pub in_if: u32,
}

/// Fragmentation state of an IP packet (RFC 791 §3.2, RFC 8200 §4.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragInfo {
    /// IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
    pub id: u32,
    /// Fragment offset in 8-octet units; 0 for the first fragment.
    pub offset: u16,
    /// More-fragments flag.
    pub more: bool,
}

/// Decoded fields of an IP packet (the inner one when tunnels are keyed on the inner packet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketMeta {
    pub frame: FrameInfo,
    /// 4 or 6.
    pub ip_version: u8,
    /// Addresses; IPv4 uses the first 4 bytes, the rest are zero.
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    /// IP protocol number of the transport (after IPv6 extension headers).
    pub protocol: u8,
    /// Transport ports. ICMP/ICMPv6: src 0, dst = type × 256 + code. 0 when unknown.
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP flags byte (FIN 0x01 … CWR 0x80); 0 for other protocols.
    pub tcp_flags: u8,
    pub ttl: u8,
    /// IPv4 TOS / IPv6 traffic class: DSCP in the upper 6 bits, ECN in the lower 2.
    pub tos: u8,
    /// IP-layer octets of this packet (IPv4 total length, IPv6 40 + payload length).
    pub ip_len: u32,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// Outermost 802.1Q/802.1ad VLAN id; 0 when untagged.
    pub vlan_id: u16,
    /// Priority code point of that tag.
    pub vlan_pcp: u8,
    /// VXLAN/Geneve VNI, GRE key or ERSPAN session id of the tunnel the packet came in.
    pub tunnel_id: Option<u32>,
    /// Set when the packet is an IP fragment.
    pub frag: Option<FragInfo>,
}

impl PacketMeta {
    /// True for a fragment other than the first: it carries no transport header.
    pub fn is_later_fragment(&self) -> bool {
        matches!(self.frag, Some(f) if f.offset != 0)
    }
}
