//! What decoding a frame can end in, besides an IP packet.

/// Why a frame could not be turned into an IP packet. Each reason is a named counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DecodeError {
    /// The capture's link type is not one mirrorflow decodes.
    UnsupportedLinktype,
    /// The frame ends inside its link-layer header (Ethernet, SLL, VLAN tag, MPLS label, PPPoE).
    TruncatedLinkHeader,
    /// The frame ends inside the IP header.
    TruncatedIpHeader,
    /// The IP version nibble does not match the ethertype (or is neither 4 nor 6).
    BadIpVersion,
    /// The IPv4 header length field is below 5 words.
    BadIpHeader,
    /// More VLAN tags, MPLS labels or tunnel layers than the decoder follows.
    TooManyLayers,
}

impl DecodeError {
    pub const ALL: [DecodeError; 6] = [
        DecodeError::UnsupportedLinktype,
        DecodeError::TruncatedLinkHeader,
        DecodeError::TruncatedIpHeader,
        DecodeError::BadIpVersion,
        DecodeError::BadIpHeader,
        DecodeError::TooManyLayers,
    ];

    /// Stable snake_case name, used in summaries, JSON stats and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            DecodeError::UnsupportedLinktype => "unsupported_linktype",
            DecodeError::TruncatedLinkHeader => "truncated_link_header",
            DecodeError::TruncatedIpHeader => "truncated_ip_header",
            DecodeError::BadIpVersion => "bad_ip_version",
            DecodeError::BadIpHeader => "bad_ip_header",
            DecodeError::TooManyLayers => "too_many_layers",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Ethertype key for non-IP frames. IEEE 802.3 frames with a length field instead of an
/// ethertype (LLC: STP, CDP, …) share the key [`ETHERTYPE_8023`].
pub const ETHERTYPE_8023: u16 = 0;

/// Result of decoding one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// An IP packet: the caller's `PacketMeta` has been filled in.
    Ip,
    /// A frame that carries no IP (ARP, LLDP, STP, …), by ethertype.
    NonIp(u16),
    /// A frame that failed to decode.
    Error(DecodeError),
}

/// Human name of a non-IP ethertype key, for summaries and labels.
pub fn ethertype_name(ethertype: u16) -> String {
    match ethertype {
        ETHERTYPE_8023 => "802.3".to_string(),
        0x0806 => "arp".to_string(),
        0x8035 => "rarp".to_string(),
        0x88cc => "lldp".to_string(),
        0x8809 => "slow_protocols".to_string(),
        0x888e => "eapol".to_string(),
        0x8863 => "pppoe_discovery".to_string(),
        0x8864 => "pppoe_session".to_string(),
        0x88f7 => "ptp".to_string(),
        0x8847 => "mpls".to_string(),
        0x6558 => "transparent_ethernet".to_string(),
        t => format!("0x{t:04x}"),
    }
}
