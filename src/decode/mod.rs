//! Decode: frame bytes → [`PacketMeta`], without allocating.
//!
//! Link layers (Ethernet, Linux SLL/SLL2, raw IP, BSD loopback), 802.1Q/802.1ad tags, MPLS,
//! PPPoE, IPv4/IPv6 (with extension headers, through `etherparse`'s lax slicing), transport
//! ports, and tunnels (VXLAN, Geneve, GRE, ERSPAN II/III, IP-in-IP).
//!
//! Parsing is lax: a frame cut by the snaplen still yields what it has. A frame that is not IP
//! is reported by ethertype, one that cannot be decoded by reason ([`DecodeError`]): the caller
//! counts both, so no frame is silently lost.
//!
//! Tunnels: in [`TunnelMode::Inner`] (the default) a tunnelled IP packet is keyed on the inner
//! packet and carries the tunnel id; when the inner payload is not IP (ARP inside VXLAN, say) the
//! outer packet is kept, still with the tunnel id. [`TunnelMode::Outer`] never looks inside.

mod l2;
mod l3;
mod meta;
mod outcome;
mod tunnel;

pub use meta::{FragInfo, FrameInfo, PacketMeta};
pub use outcome::{ethertype_name, DecodeError, Decoded, ETHERTYPE_8023};

/// Link types (tcpdump.org LINKTYPE_* values) the decoder understands.
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    /// DLT_RAW as BSDs number it; libpcap maps it to raw IP.
    pub const RAW_BSD12: u32 = 12;
    /// DLT_RAW on OpenBSD.
    pub const RAW_BSD14: u32 = 14;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;

    /// True when the decoder has a path for this link type.
    pub fn is_supported(lt: u32) -> bool {
        matches!(
            lt,
            NULL | ETHERNET
                | RAW_BSD12
                | RAW_BSD14
                | RAW
                | LOOP
                | LINUX_SLL
                | IPV4
                | IPV6
                | LINUX_SLL2
        )
    }
}

/// How tunnelled traffic is keyed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TunnelMode {
    /// Key flows on the inner packet and record the tunnel id.
    #[default]
    Inner,
    /// Key flows on the outer packet only.
    Outer,
}

/// Most VLAN tags followed in one frame.
pub const MAX_VLAN_TAGS: usize = 8;
/// Most MPLS labels followed in one label stack.
pub const MAX_MPLS_LABELS: usize = 8;
/// Most tunnel layers followed (VXLAN in GRE counts two).
pub const MAX_TUNNEL_DEPTH: u8 = 3;

/// Stateless frame decoder; cheap to copy into each capture thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct Decoder {
    pub tunnels: TunnelMode,
}

impl Decoder {
    pub fn new(tunnels: TunnelMode) -> Self {
        Decoder { tunnels }
    }

    /// Decode one frame of link type `linktype`. On [`Decoded::Ip`], `meta` holds the packet.
    /// Inlined, so that `frame` reaches `meta` from registers (passed in memory, its 16-byte
    /// copy stalled on store forwarding).
    #[inline(always)]
    pub fn decode(
        &self,
        linktype: u32,
        data: &[u8],
        frame: FrameInfo,
        meta: &mut PacketMeta,
    ) -> Decoded {
        *meta = PacketMeta {
            frame,
            ..PacketMeta::default()
        };
        let mut cx = Cursor {
            meta,
            frame_start: data.as_ptr() as usize,
            tunnels: self.tunnels,
            depth: 0,
        };
        match linktype {
            linktype::ETHERNET => cx.ethernet(data),
            linktype::LINUX_SLL => cx.linux_sll(data),
            linktype::LINUX_SLL2 => cx.linux_sll2(data),
            linktype::RAW | linktype::RAW_BSD12 | linktype::RAW_BSD14 => cx.ip_any(data),
            linktype::IPV4 => cx.ip(data, 4),
            linktype::IPV6 => cx.ip(data, 6),
            linktype::NULL => cx.null(data, false),
            linktype::LOOP => cx.null(data, true),
            _ => Decoded::Error(DecodeError::UnsupportedLinktype),
        }
    }
}

/// Decoding state for one frame.
struct Cursor<'m> {
    meta: &'m mut PacketMeta,
    /// Address of the frame's first byte, to know how far into the frame a header starts.
    frame_start: usize,
    tunnels: TunnelMode,
    depth: u8,
}

impl Cursor<'_> {
    /// Bytes of the original frame from `at` to its end (for packets cut by the snaplen).
    fn wire_bytes_from(&self, at: &[u8]) -> u32 {
        let offset = (at.as_ptr() as usize).saturating_sub(self.frame_start);
        self.meta.frame.wire_len.saturating_sub(offset as u32)
    }
}

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests;
