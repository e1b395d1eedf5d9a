//! Link layer: Ethernet II / IEEE 802.3, 802.1Q and 802.1ad tags, MPLS, PPPoE, Linux cooked
//! capture v1/v2 and BSD loopback headers.

use super::{
    be16, be32, Cursor, DecodeError, Decoded, ETHERTYPE_8023, MAX_MPLS_LABELS, MAX_VLAN_TAGS,
};

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;
const ETH_MPLS_UC: u16 = 0x8847;
const ETH_MPLS_MC: u16 = 0x8848;
const ETH_PPPOE_SESSION: u16 = 0x8864;

impl Cursor<'_> {
    /// IEEE 802.3 / Ethernet II frame.
    #[inline]
    pub(super) fn ethernet(&mut self, d: &[u8]) -> Decoded {
        if d.len() < 14 {
            return Decoded::Error(DecodeError::TruncatedLinkHeader);
        }
        self.meta.dst_mac.copy_from_slice(&d[0..6]);
        self.meta.src_mac.copy_from_slice(&d[6..12]);
        self.ethertype_payload(be16(d, 12), &d[14..])
    }

    /// Follows VLAN tags, MPLS and PPPoE from `ethertype` down to IP.
    pub(super) fn ethertype_payload(&mut self, mut ethertype: u16, mut d: &[u8]) -> Decoded {
        let mut tags = 0;
        loop {
            match ethertype {
                ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => {
                    tags += 1;
                    if tags > MAX_VLAN_TAGS {
                        return Decoded::Error(DecodeError::TooManyLayers);
                    }
                    if d.len() < 4 {
                        return Decoded::Error(DecodeError::TruncatedLinkHeader);
                    }
                    let tci = be16(d, 0);
                    if self.meta.vlan_id == 0 {
                        self.meta.vlan_id = tci & 0x0fff;
                        self.meta.vlan_pcp = (tci >> 13) as u8;
                    }
                    ethertype = be16(d, 2);
                    d = &d[4..];
                }
                ETH_IPV4 => return self.ip(d, 4),
                ETH_IPV6 => return self.ip(d, 6),
                ETH_MPLS_UC | ETH_MPLS_MC => return self.mpls(d),
                ETH_PPPOE_SESSION => {
                    // RFC 2516 §4: 6-byte PPPoE header, then the PPP protocol field.
                    if d.len() < 8 {
                        return Decoded::Error(DecodeError::TruncatedLinkHeader);
                    }
                    return match be16(d, 6) {
                        0x0021 => self.ip(&d[8..], 4),
                        0x0057 => self.ip(&d[8..], 6),
                        _ => Decoded::NonIp(ETH_PPPOE_SESSION),
                    };
                }
                t if t < 0x0600 => return Decoded::NonIp(ETHERTYPE_8023),
                t => return Decoded::NonIp(t),
            }
        }
    }

    /// MPLS label stack (RFC 3032 §2.1); the payload after the bottom label is guessed from its
    /// first nibble, as routers do: 4 or 6 is IP, 0 is a pseudowire control word (RFC 4385)
    /// followed by Ethernet, anything else Ethernet without control word.
    fn mpls(&mut self, mut d: &[u8]) -> Decoded {
        for _ in 0..MAX_MPLS_LABELS {
            if d.len() < 4 {
                return Decoded::Error(DecodeError::TruncatedLinkHeader);
            }
            let bottom = be32(d, 0) & 0x100 != 0;
            d = &d[4..];
            if bottom {
                return match d.first().map(|b| b >> 4) {
                    None => Decoded::Error(DecodeError::TruncatedIpHeader),
                    Some(4) => self.ip(d, 4),
                    Some(6) => self.ip(d, 6),
                    Some(0) if d.len() >= 4 => self.ethernet(&d[4..]),
                    Some(_) => self.ethernet(d),
                };
            }
        }
        Decoded::Error(DecodeError::TooManyLayers)
    }

    /// Linux cooked capture v1 (LINKTYPE_LINUX_SLL): 16-byte header.
    pub(super) fn linux_sll(&mut self, d: &[u8]) -> Decoded {
        if d.len() < 16 {
            return Decoded::Error(DecodeError::TruncatedLinkHeader);
        }
        if be16(d, 4) == 6 {
            self.meta.src_mac.copy_from_slice(&d[6..12]);
        }
        self.sll_protocol(be16(d, 14), &d[16..])
    }

    /// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2): 20-byte header.
    pub(super) fn linux_sll2(&mut self, d: &[u8]) -> Decoded {
        if d.len() < 20 {
            return Decoded::Error(DecodeError::TruncatedLinkHeader);
        }
        if d[11] == 6 {
            self.meta.src_mac.copy_from_slice(&d[12..18]);
        }
        self.sll_protocol(be16(d, 0), &d[20..])
    }

    fn sll_protocol(&mut self, protocol: u16, d: &[u8]) -> Decoded {
        match protocol {
            // ETH_P_802_3, ETH_P_802_2: a length-framed 802.3 payload.
            0x0001 | 0x0004 => Decoded::NonIp(ETHERTYPE_8023),
            p => self.ethertype_payload(p, d),
        }
    }

    /// BSD loopback (LINKTYPE_NULL, host byte order of the capturing machine) and OpenBSD
    /// loopback (LINKTYPE_LOOP, network byte order): a 4-byte address family.
    pub(super) fn null(&mut self, d: &[u8], network_order: bool) -> Decoded {
        if d.len() < 4 {
            return Decoded::Error(DecodeError::TruncatedLinkHeader);
        }
        let raw = [d[0], d[1], d[2], d[3]];
        let families = if network_order {
            [u32::from_be_bytes(raw), u32::from_be_bytes(raw)]
        } else {
            [u32::from_le_bytes(raw), u32::from_be_bytes(raw)]
        };
        for family in families {
            match family {
                2 => return self.ip(&d[4..], 4),
                // AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, macOS.
                10 | 24 | 28 | 30 => return self.ip(&d[4..], 6),
                _ => {}
            }
        }
        Decoded::Error(DecodeError::UnsupportedLinktype)
    }
}
