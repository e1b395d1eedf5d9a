//! Network and transport layers: IPv4 (RFC 791), IPv6 with extension headers (RFC 8200) through
//! `etherparse`'s lax slicing, then TCP/UDP/SCTP/DCCP/UDP-Lite ports and ICMP type/code.

use etherparse::err::ip::{HeaderError, LaxHeaderSliceError};
use etherparse::{Ipv6ExtensionSlice, LaxIpSlice};

use super::{be16, Cursor, DecodeError, Decoded, FragInfo, TunnelMode};

pub(super) const IPPROTO_ICMP: u8 = 1;
pub(super) const IPPROTO_IPIP: u8 = 4;
pub(super) const IPPROTO_TCP: u8 = 6;
pub(super) const IPPROTO_UDP: u8 = 17;
pub(super) const IPPROTO_DCCP: u8 = 33;
pub(super) const IPPROTO_IPV6: u8 = 41;
pub(super) const IPPROTO_GRE: u8 = 47;
pub(super) const IPPROTO_ICMPV6: u8 = 58;
pub(super) const IPPROTO_SCTP: u8 = 132;
pub(super) const IPPROTO_UDPLITE: u8 = 136;

/// True for the IPv6 next-header values that start an upper-layer header rather than an
/// extension header (RFC 8200 §4, IANA "IPv6 Extension Header Types") or "no next header".
fn is_upper_layer(next_header: u8) -> bool {
    matches!(
        next_header,
        IPPROTO_ICMP
            | IPPROTO_IPIP
            | IPPROTO_TCP
            | IPPROTO_UDP
            | IPPROTO_DCCP
            | IPPROTO_IPV6
            | IPPROTO_GRE
            | IPPROTO_ICMPV6
            | IPPROTO_SCTP
            | IPPROTO_UDPLITE
    )
}

const UDP_VXLAN: u16 = 4789;
const UDP_GENEVE: u16 = 6081;

impl Cursor<'_> {
    /// Raw IP: the version nibble decides.
    pub(super) fn ip_any(&mut self, d: &[u8]) -> Decoded {
        match d.first().map(|b| b >> 4) {
            None => Decoded::Error(DecodeError::TruncatedIpHeader),
            Some(4) => self.ip(d, 4),
            Some(6) => self.ip(d, 6),
            Some(_) => Decoded::Error(DecodeError::BadIpVersion),
        }
    }

    /// An IP packet that the link layer announced as version `version`.
    #[inline]
    pub(super) fn ip(&mut self, d: &[u8], version: u8) -> Decoded {
        let Some(first) = d.first() else {
            return Decoded::Error(DecodeError::TruncatedIpHeader);
        };
        if first >> 4 != version {
            return Decoded::Error(DecodeError::BadIpVersion);
        }
        if *first == 0x45 && d.len() >= 20 {
            if let Some(decoded) = self.ipv4_plain(d) {
                return decoded;
            }
        }
        if version == 6 && d.len() >= 40 {
            if let Some(decoded) = self.ipv6_plain(d) {
                return decoded;
            }
        }
        self.ip_lax(d, version)
    }

    /// Any IP packet, through `etherparse`'s lax slicing.
    fn ip_lax(&mut self, d: &[u8], version: u8) -> Decoded {
        let (ip, exts_complete) = match LaxIpSlice::from_slice(d) {
            Ok((ip, stopped_in_extension_headers)) => (ip, stopped_in_extension_headers.is_none()),
            Err(LaxHeaderSliceError::Len(_)) => {
                return Decoded::Error(DecodeError::TruncatedIpHeader)
            }
            Err(LaxHeaderSliceError::Content(HeaderError::UnsupportedIpVersion { .. })) => {
                return Decoded::Error(DecodeError::BadIpVersion)
            }
            Err(LaxHeaderSliceError::Content(_)) => {
                return Decoded::Error(DecodeError::BadIpHeader)
            }
        };
        let available = self.wire_bytes_from(d);
        let m = self.fresh_ip(version);
        let (header_len, declared) = match &ip {
            LaxIpSlice::Ipv4(v4) => {
                let h = v4.header();
                m.src_addr[..4].copy_from_slice(&h.source());
                m.dst_addr[..4].copy_from_slice(&h.destination());
                m.ttl = h.ttl();
                m.tos = d[1];
                let offset = h.fragments_offset().value();
                if offset != 0 || h.more_fragments() {
                    m.frag = Some(FragInfo {
                        id: u32::from(h.identification()),
                        offset,
                        more: h.more_fragments(),
                    });
                }
                (u32::from(h.ihl()) * 4, u32::from(h.total_len()))
            }
            LaxIpSlice::Ipv6(v6) => {
                let h = v6.header();
                m.src_addr = h.source();
                m.dst_addr = h.destination();
                m.ttl = h.hop_limit();
                m.tos = h.traffic_class();
                // Only a complete chain is walked: etherparse 0.21's iterator reads past the
                // end of a chain that lax slicing cut short (found by the sFlow fuzz target).
                let exts = exts_complete.then(|| v6.extensions().clone());
                for ext in exts.into_iter().flatten() {
                    if let Ipv6ExtensionSlice::Fragment(f) = ext {
                        let offset = f.fragment_offset().value();
                        if offset != 0 || f.more_fragments() {
                            m.frag = Some(FragInfo {
                                id: f.identification(),
                                offset,
                                more: f.more_fragments(),
                            });
                        }
                    }
                }
                let payload_len = u32::from(h.payload_length());
                // Payload length 0 is a jumbogram (RFC 2675) or a GSO super-packet.
                (
                    40,
                    if payload_len == 0 {
                        0
                    } else {
                        40 + payload_len
                    },
                )
            }
        };
        // IP octets: the header's own length, unless it is missing (0), impossible (below the
        // header) or larger than what reached the wire; then the wire bytes from here.
        m.ip_len = if declared >= header_len && declared <= available {
            declared
        } else {
            available
        };
        let payload = ip.payload();
        m.protocol = payload.ip_number.0;
        if m.frag.is_some_and(|f| f.offset != 0) {
            return Decoded::Ip;
        }
        self.transport(payload.payload)
    }

    /// The meta, with what an IP header sets cleared (an inner packet of a tunnel overwrites
    /// the outer one's).
    #[inline]
    fn fresh_ip(&mut self, version: u8) -> &mut crate::decode::PacketMeta {
        let m = &mut *self.meta;
        m.ip_version = version;
        m.src_port = 0;
        m.dst_port = 0;
        m.tcp_flags = 0;
        m.frag = None;
        m.src_addr = [0; 16];
        m.dst_addr = [0; 16];
        m
    }

    /// The common IPv4 packet: a 20-byte header without options (RFC 791 §3.1) whose total
    /// length covers it, read directly; the same result as the lax slicing path, which takes
    /// everything else (`None` here).
    #[inline(always)]
    fn ipv4_plain(&mut self, d: &[u8]) -> Option<Decoded> {
        let declared = u32::from(be16(d, 2));
        if declared < 20 {
            return None;
        }
        let available = self.wire_bytes_from(d);
        let m = self.fresh_ip(4);
        m.src_addr[..4].copy_from_slice(&d[12..16]);
        m.dst_addr[..4].copy_from_slice(&d[16..20]);
        m.ttl = d[8];
        m.tos = d[1];
        m.protocol = d[9];
        let flags_offset = be16(d, 6);
        let (offset, more) = (flags_offset & 0x1fff, flags_offset & 0x2000 != 0);
        if offset != 0 || more {
            m.frag = Some(FragInfo {
                id: u32::from(be16(d, 4)),
                offset,
                more,
            });
        }
        m.ip_len = if declared <= available {
            declared
        } else {
            available
        };
        if offset != 0 {
            return Some(Decoded::Ip);
        }
        let end = d.len().min(declared as usize);
        Some(self.transport(&d[20..end]))
    }

    /// The common IPv6 packet: the fixed header (RFC 8200 §3) followed directly by a transport
    /// header, with a non-zero payload length; read directly, with the same result as the lax
    /// slicing path, which takes everything else (`None` here): extension headers, jumbograms.
    #[inline(always)]
    fn ipv6_plain(&mut self, d: &[u8]) -> Option<Decoded> {
        let next_header = d[6];
        let payload_len = u32::from(be16(d, 4));
        if payload_len == 0 || !is_upper_layer(next_header) {
            return None;
        }
        let available = self.wire_bytes_from(d);
        let m = self.fresh_ip(6);
        m.src_addr.copy_from_slice(&d[8..24]);
        m.dst_addr.copy_from_slice(&d[24..40]);
        m.ttl = d[7];
        m.tos = (be16(d, 0) >> 4) as u8;
        m.protocol = next_header;
        let declared = 40 + payload_len;
        m.ip_len = declared.min(available);
        let end = d.len().min(declared as usize);
        Some(self.transport(&d[40..end]))
    }

    /// Ports, flags or ICMP type/code, and tunnels carried over UDP, GRE or IP.
    fn transport(&mut self, p: &[u8]) -> Decoded {
        let m = &mut *self.meta;
        match m.protocol {
            IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP | IPPROTO_DCCP | IPPROTO_UDPLITE
                if p.len() >= 4 =>
            {
                m.src_port = be16(p, 0);
                m.dst_port = be16(p, 2);
                if m.protocol == IPPROTO_TCP && p.len() >= 14 {
                    m.tcp_flags = p[13];
                }
            }
            IPPROTO_ICMP | IPPROTO_ICMPV6 if p.len() >= 2 => {
                m.dst_port = u16::from(p[0]) << 8 | u16::from(p[1]);
            }
            _ => {}
        }
        if self.tunnels == TunnelMode::Outer || m.frag.is_some() {
            return Decoded::Ip;
        }
        match m.protocol {
            IPPROTO_UDP if p.len() >= 8 => match m.dst_port {
                UDP_VXLAN => self.vxlan(&p[8..]),
                UDP_GENEVE => self.geneve(&p[8..]),
                _ => Decoded::Ip,
            },
            IPPROTO_GRE => self.gre(p),
            IPPROTO_IPIP => self.enter_tunnel(None, |cx| cx.ip(p, 4)),
            IPPROTO_IPV6 => self.enter_tunnel(None, |cx| cx.ip(p, 6)),
            _ => Decoded::Ip,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{FrameInfo, PacketMeta};

    fn run(d: &[u8], wire_len: u32, fast: bool) -> (Decoded, PacketMeta) {
        run_version(d, wire_len, 4, fast)
    }

    /// Decodes `d` as an IP packet of `version`, with the shortcut (`fast`) or lax slicing.
    fn run_version(d: &[u8], wire_len: u32, version: u8, fast: bool) -> (Decoded, PacketMeta) {
        let mut meta = PacketMeta {
            frame: FrameInfo {
                wire_len,
                ..FrameInfo::default()
            },
            ..PacketMeta::default()
        };
        let mut cx = Cursor {
            meta: &mut meta,
            frame_start: d.as_ptr() as usize,
            tunnels: TunnelMode::Inner,
            depth: 0,
        };
        let r = if fast {
            cx.ip(d, version)
        } else {
            cx.ip_lax(d, version)
        };
        (r, meta)
    }

    /// An IPv6 packet cut inside its extension headers (a hop-by-hop header followed by a
    /// second one, cut short: the sFlow fuzz target's find) decodes without walking the cut
    /// chain, which etherparse 0.21 would read past (a panic in debug builds).
    #[test]
    fn a_cut_extension_chain_is_not_walked() {
        let mut d = vec![0x60, 0, 0, 0, 0, 0x0d, 0, 0x40];
        d.extend([0; 32]);
        d.extend([0, 0, 1, 4, 0, 0, 0, 0, 0x11, 0, 0, 0, 0]);
        let (r, meta) = run_version(&d, 57, 6, true);
        assert_eq!(r, Decoded::Ip);
        assert_eq!((meta.ip_version, meta.frag), (6, None));
    }

    /// A xorshift64 generator: reproducible random headers.
    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// The plain-IPv4 shortcut decodes exactly like the lax slicing path: random headers
    /// (any total length, fragment fields, protocol), cut at random lengths.
    #[test]
    fn the_ipv4_shortcut_agrees_with_lax_slicing() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let protos = [1u8, 6, 17, 47, 4, 41, 132, 99];
        for _ in 0..200_000 {
            let len = 20 + (next() % 100) as usize;
            let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            d[0] = 0x45;
            d[9] = protos[(next() % 8) as usize];
            let total = match next() % 4 {
                0 => next() as u16,
                1 => len as u16,
                2 => (next() % 40) as u16,
                _ => (len + (next() % 60) as usize) as u16,
            };
            d[2..4].copy_from_slice(&total.to_be_bytes());
            if next().is_multiple_of(2) {
                d[6] &= 0x40; // mostly unfragmented
                d[7] = 0;
            }
            let wire = len as u32 + (next() % 3) as u32 * 100;
            let (a, ma) = run(&d, wire, true);
            let (b, mb) = run(&d, wire, false);
            assert_eq!((a, ma), (b, mb), "{d:02x?} wire {wire}");
        }
    }

    /// The plain-IPv6 shortcut decodes exactly like the lax slicing path: random headers (any
    /// payload length, traffic class, next header including extension headers), cut at random
    /// lengths.
    #[test]
    fn the_ipv6_shortcut_agrees_with_lax_slicing() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let protos = [
            1u8, 4, 6, 17, 33, 41, 47, 58, 132, 136, 0, 43, 44, 59, 60, 99,
        ];
        let mut shortcut = 0;
        for _ in 0..200_000 {
            let len = 40 + (next() % 100) as usize;
            let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            d[0] = 0x60 | d[0] & 0x0f;
            d[6] = protos[(next() % protos.len() as u64) as usize];
            let payload = match next() % 4 {
                0 => next() as u16,
                1 => (len - 40) as u16,
                2 => (next() % 8) as u16,
                _ => (len - 40 + (next() % 60) as usize) as u16,
            };
            d[4..6].copy_from_slice(&payload.to_be_bytes());
            let wire = len as u32 + (next() % 3) as u32 * 100;
            let (a, ma) = run_version(&d, wire, 6, true);
            let (b, mb) = run_version(&d, wire, 6, false);
            assert_eq!((a, ma), (b, mb), "{d:02x?} wire {wire}");
            shortcut += usize::from(payload != 0 && is_upper_layer(d[6]));
        }
        assert!(shortcut > 50_000, "the shortcut ran {shortcut} times");
    }
}
