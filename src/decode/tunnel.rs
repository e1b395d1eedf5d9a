//! Tunnels: VXLAN (RFC 7348 §5), Geneve (RFC 8926 §3), GRE (RFC 2784, RFC 2890 keys and
//! sequence numbers, RFC 2637 §4.1 enhanced GRE), ERSPAN type I/II/III
//! (draft-foschiano-erspan §4).

use super::{be16, be32, Cursor, Decoded, MAX_TUNNEL_DEPTH};

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_TEB: u16 = 0x6558;
const ETH_ERSPAN_I_II: u16 = 0x88be;
const ETH_ERSPAN_III: u16 = 0x22eb;
const ETH_PPP: u16 = 0x880b;

impl Cursor<'_> {
    /// Decodes the payload of a tunnel with `inner`. The packet is then keyed on the inner
    /// packet if that is IP; otherwise the outer packet stays, tagged with the tunnel id.
    /// Either way the frame is an IP packet.
    pub(super) fn enter_tunnel(
        &mut self,
        tunnel_id: Option<u32>,
        inner: impl FnOnce(&mut Self) -> Decoded,
    ) -> Decoded {
        if self.depth >= MAX_TUNNEL_DEPTH {
            return Decoded::Ip;
        }
        let outer = *self.meta;
        self.depth += 1;
        if self.meta.tunnel_id.is_none() {
            self.meta.tunnel_id = tunnel_id;
        }
        let tunnel_id = self.meta.tunnel_id;
        if inner(self) != Decoded::Ip {
            *self.meta = outer;
            self.meta.tunnel_id = tunnel_id;
        }
        Decoded::Ip
    }

    /// VXLAN: 8-byte header, VNI valid when the I flag is set, then Ethernet.
    pub(super) fn vxlan(&mut self, d: &[u8]) -> Decoded {
        if d.len() < 8 {
            return Decoded::Ip;
        }
        let vni = (d[0] & 0x08 != 0).then(|| be32(d, 4) >> 8);
        self.enter_tunnel(vni, |cx| cx.ethernet(&d[8..]))
    }

    /// Geneve: 8-byte header plus options, then the protocol the header names.
    pub(super) fn geneve(&mut self, d: &[u8]) -> Decoded {
        if d.len() < 8 || d[0] >> 6 != 0 {
            return Decoded::Ip;
        }
        let start = 8 + usize::from(d[0] & 0x3f) * 4;
        if d.len() < start {
            return Decoded::Ip;
        }
        let vni = be32(d, 4) >> 8;
        let protocol = be16(d, 2);
        self.enter_tunnel(Some(vni), |cx| cx.tunnel_payload(protocol, &d[start..]))
    }

    /// GRE version 0 (with optional checksum, key and sequence number) and version 1 (PPTP).
    pub(super) fn gre(&mut self, d: &[u8]) -> Decoded {
        if d.len() < 4 {
            return Decoded::Ip;
        }
        let flags = be16(d, 0);
        let protocol = be16(d, 2);
        let (has_csum, has_routing, has_key, has_seq) = (
            flags & 0x8000 != 0,
            flags & 0x4000 != 0,
            flags & 0x2000 != 0,
            flags & 0x1000 != 0,
        );
        let mut at = 4;
        let key;
        match flags & 0x7 {
            0 if !has_routing => {
                if has_csum {
                    at += 4;
                }
                key = if has_key && d.len() >= at + 4 {
                    at += 4;
                    Some(be32(d, at - 4))
                } else {
                    None
                };
                if has_seq {
                    at += 4;
                }
            }
            // Enhanced GRE: key (payload length + call id) always, then sequence and ack.
            1 if has_key => {
                key = (d.len() >= 8).then(|| u32::from(be16(d, 6)));
                at = 8 + if has_seq { 4 } else { 0 } + if flags & 0x0080 != 0 { 4 } else { 0 };
            }
            _ => return Decoded::Ip,
        }
        if d.len() < at {
            return Decoded::Ip;
        }
        let d = &d[at..];
        match protocol {
            ETH_ERSPAN_I_II if has_seq => {
                // Type II: 8-byte header, session id in the low 10 bits of bytes 2-3.
                if d.len() < 8 {
                    return Decoded::Ip;
                }
                let session = u32::from(be16(d, 2) & 0x03ff);
                self.enter_tunnel(Some(session), |cx| cx.ethernet(&d[8..]))
            }
            // Type I: no ERSPAN header.
            ETH_ERSPAN_I_II => self.enter_tunnel(key, |cx| cx.ethernet(d)),
            ETH_ERSPAN_III => {
                // Type III: 12-byte header, optional 8-byte platform sub-header (O flag);
                // frame type 0 is Ethernet, 2 is IP.
                if d.len() < 12 {
                    return Decoded::Ip;
                }
                let session = u32::from(be16(d, 2) & 0x03ff);
                let word = be16(d, 10);
                let start = if word & 1 != 0 { 20 } else { 12 };
                if d.len() < start {
                    return Decoded::Ip;
                }
                let inner = &d[start..];
                match (word >> 10) & 0x1f {
                    0 => self.enter_tunnel(Some(session), |cx| cx.ethernet(inner)),
                    2 => self.enter_tunnel(Some(session), |cx| cx.ip_any(inner)),
                    _ => Decoded::Ip,
                }
            }
            ETH_PPP => self.enter_tunnel(key, |cx| cx.ppp(d)),
            p => self.enter_tunnel(key, |cx| cx.tunnel_payload(p, d)),
        }
    }

    /// A tunnel payload named by an ethertype.
    fn tunnel_payload(&mut self, protocol: u16, d: &[u8]) -> Decoded {
        match protocol {
            ETH_TEB => self.ethernet(d),
            ETH_IPV4 => self.ip(d, 4),
            ETH_IPV6 => self.ip(d, 6),
            p => self.ethertype_payload(p, d),
        }
    }

    /// PPP in HDLC-like framing (RFC 1662): optional address/control, 1- or 2-byte protocol.
    fn ppp(&mut self, mut d: &[u8]) -> Decoded {
        if d.len() >= 2 && d[0] == 0xff && d[1] == 0x03 {
            d = &d[2..];
        }
        let (protocol, len) = match d {
            [p, ..] if p & 1 == 1 => (u16::from(*p), 1),
            [a, b, ..] => (u16::from(*a) << 8 | u16::from(*b), 2),
            _ => return Decoded::NonIp(ETH_PPP),
        };
        match protocol {
            0x0021 => self.ip(&d[len..], 4),
            0x0057 => self.ip(&d[len..], 6),
            _ => Decoded::NonIp(ETH_PPP),
        }
    }
}
