//! Packet samples → sFlow v5 flow samples (sFlow v5 §5 `flow_sample`, enterprise 0
//! format 1, expanded format 3 when an index does not fit 24 bits).
//!
//! Records, in this order:
//!
//! - `sampled_header` (0:1) when the link type maps to an sFlow `header_protocol`:
//!   Ethernet frames as `ETHERNET-ISO88023` (1) with `frame_length` = wire length + 4 and
//!   `stripped` = 4 (libpcap frames carry no FCS; §5 counts it in the length and as
//!   stripped). Raw IPv4/IPv6 link types as `IPv4` (11) / `IPv6` (12), `frame_length` =
//!   wire length, `stripped` = 0. Pseudo link headers that are no sFlow header protocol
//!   (Linux cooked v1/v2, BSD loopback) are stripped ("outer encapsulations that are not
//!   one of the standard header_protocols must be stripped", §5 `sampled_header`): the
//!   header starts at the IP packet, `stripped` is the pseudo header's length and
//!   `frame_length` the whole captured frame. Anything else (a cooked frame that is not
//!   IP) gets no `sampled_header`; the sample is still sent, so the sample pool and the
//!   collector's scaling stay right.
//! - `extended_switch` (0:1001): the outermost VLAN id and priority, in and out alike (a
//!   mirror sees the frame once); 0 when untagged.
//! - `extended_vni_ingress` (0:1030, sFlow tunnel structures) when the decoder found a
//!   tunnel and the sampled bytes show it to be VXLAN (UDP 4789) or Geneve (UDP 6081):
//!   the VNI of that outermost header. GRE keys and ERSPAN sessions have no sFlow
//!   structure and are not reported. The `ipv4/ipv6_tunnel_ingress` structures describe an
//!   outer header the agent removed; the mirror keeps it in the sampled header, so they
//!   are not sent.

use mirrorflow_sflow::records::header_protocol;
use mirrorflow_sflow::{
    DataSource, ExtendedSwitch, FlowRecord, FlowSampleRepr, Interface, SampledHeader,
};

use crate::decode::linktype;
use crate::sample::PacketSample;

/// How a captured frame's bytes map to an sFlow sampled header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderLayout {
    /// sFlow `header_protocol`.
    pub protocol: u32,
    /// Bytes of pseudo link header removed from the front.
    pub skip: usize,
}

/// The layout of a frame of `lt` starting with `bytes`; `None` when it has no sFlow
/// header protocol.
pub fn layout(lt: u32, bytes: &[u8]) -> Option<HeaderLayout> {
    let ip = |version: Option<&u8>, skip: usize| match version.map(|b| b >> 4) {
        Some(4) => Some(HeaderLayout {
            protocol: header_protocol::IPV4,
            skip,
        }),
        Some(6) => Some(HeaderLayout {
            protocol: header_protocol::IPV6,
            skip,
        }),
        _ => None,
    };
    let by_ethertype = |et: Option<u16>, skip: usize| match et {
        Some(0x0800) => Some(HeaderLayout {
            protocol: header_protocol::IPV4,
            skip,
        }),
        Some(0x86dd) => Some(HeaderLayout {
            protocol: header_protocol::IPV6,
            skip,
        }),
        _ => None,
    };
    let be16 = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    match lt {
        linktype::ETHERNET => Some(HeaderLayout {
            protocol: header_protocol::ETHERNET_ISO88023,
            skip: 0,
        }),
        linktype::RAW | linktype::RAW_BSD12 | linktype::RAW_BSD14 => ip(bytes.first(), 0),
        linktype::IPV4 => Some(HeaderLayout {
            protocol: header_protocol::IPV4,
            skip: 0,
        }),
        linktype::IPV6 => Some(HeaderLayout {
            protocol: header_protocol::IPV6,
            skip: 0,
        }),
        linktype::LINUX_SLL => by_ethertype(be16(14), 16),
        linktype::LINUX_SLL2 => by_ethertype(be16(0), 20),
        // The address family is in the capturing host's byte order (NULL) or big endian
        // (LOOP); the IP version nibble says the same and needs no byte order.
        linktype::NULL | linktype::LOOP if bytes.len() >= 4 => ip(bytes.get(4), 4),
        _ => None,
    }
}

/// The `sampled_header` record of a sample, if its link type has an sFlow header protocol.
pub fn sampled_header(s: &PacketSample) -> Option<SampledHeader> {
    let l = layout(s.linktype, &s.header)?;
    let header = s.header.get(l.skip..).unwrap_or_default().to_vec();
    Some(if l.protocol == header_protocol::ETHERNET_ISO88023 {
        SampledHeader {
            protocol: l.protocol,
            frame_length: s.frame.wire_len.saturating_add(4),
            stripped: 4,
            header,
        }
    } else {
        SampledHeader {
            protocol: l.protocol,
            frame_length: s.frame.wire_len,
            stripped: l.skip as u32,
            header,
        }
    })
}

/// UDP destination ports of the tunnels whose id is a VNI.
const VXLAN_PORT: u16 = 4789;
const GENEVE_PORT: u16 = 6081;

/// The VNI of the outermost VXLAN (RFC 7348 §5) or Geneve (RFC 8926 §3.4) header within
/// the sampled bytes of an Ethernet or IP header (`protocol`), if there is one.
pub fn outer_vni(protocol: u32, h: &[u8]) -> Option<u32> {
    let be16 = |at: usize| h.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let mut at = 0;
    let mut version = match protocol {
        header_protocol::IPV4 => 4,
        header_protocol::IPV6 => 6,
        _ => 0,
    };
    if protocol == header_protocol::ETHERNET_ISO88023 {
        at = 12;
        let mut et = be16(at)?;
        let mut tags = 0;
        while matches!(et, 0x8100 | 0x88a8 | 0x9100) && tags < crate::decode::MAX_VLAN_TAGS {
            at += 4;
            tags += 1;
            et = be16(at)?;
        }
        at += 2;
        version = match et {
            0x0800 => 4,
            0x86dd => 6,
            _ => return None,
        };
    }
    let udp = match version {
        4 => {
            let ihl = usize::from(h.get(at)? & 0x0f) * 4;
            let frag = be16(at + 6)? & 0x1fff;
            (*h.get(at + 9)? == 17 && ihl >= 20 && frag == 0).then_some(at + ihl)?
        }
        6 => (*h.get(at + 6)? == 17).then_some(at + 40)?,
        _ => return None,
    };
    let tunnel = udp + 8;
    let vni = |at: usize| {
        h.get(at..at + 3)
            .map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]))
    };
    match be16(udp + 2)? {
        VXLAN_PORT if h.get(tunnel)? & 0x08 != 0 => vni(tunnel + 4),
        GENEVE_PORT => vni(tunnel + 4),
        _ => None,
    }
}

/// The flow sample for one packet sample. `input` is the sample's `in_port`; `output` its
/// `out_port`, or 0 ("interface not known", sFlow v5 §5 `interface`) when the probe does
/// not know where the frame left the switch.
pub fn flow_sample(s: &PacketSample) -> FlowSampleRepr {
    let mut records = Vec::with_capacity(3);
    let header = sampled_header(s);
    let vni = header
        .as_ref()
        .filter(|_| s.tunnel_id.is_some())
        .and_then(|h| outer_vni(h.protocol, &h.header));
    if let Some(h) = header {
        records.push(FlowRecord::SampledHeader(h));
    }
    let (vlan, pcp) = (u32::from(s.vlan_id), u32::from(s.vlan_pcp));
    records.push(FlowRecord::ExtendedSwitch(ExtendedSwitch {
        src_vlan: vlan,
        src_priority: pcp,
        dst_vlan: vlan,
        dst_priority: pcp,
    }));
    if let Some(vni) = vni {
        records.push(FlowRecord::VniIngress(vni));
    }
    FlowSampleRepr {
        sequence_number: s.sequence,
        source_id: DataSource::if_index(s.source_index),
        sampling_rate: s.sampling_rate,
        sample_pool: s.sample_pool,
        drops: s.drops,
        input: Interface::Single(s.in_port),
        output: Interface::Single(s.out_port),
        records,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::FrameInfo;

    fn sample(lt: u32, header: Vec<u8>, wire_len: u32) -> PacketSample {
        PacketSample {
            frame: FrameInfo {
                ts_ns: 1,
                wire_len,
                in_if: 0,
            },
            linktype: lt,
            header,
            vlan_id: 0,
            vlan_pcp: 0,
            tunnel_id: None,
            in_port: 1,
            out_port: 0,
            sampling_rate: 10,
            sample_pool: 10,
            sequence: 1,
            drops: 0,
            source_index: 1,
        }
    }

    /// Ethernet / IPv4 / UDP to `port` / 8 tunnel bytes with VNI 0x123456.
    fn vxlan_frame(port: u16, vlan: bool) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        if vlan {
            f.extend([0x81, 0x00, 0x00, 0x07]);
        }
        f.extend([0x08, 0x00]);
        f.extend([
            0x45, 0, 0, 78, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        f.extend([0xc0, 0x00]);
        f.extend(port.to_be_bytes());
        f.extend([0, 58, 0, 0]);
        f.extend([0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
        f.resize(f.len() + 50, 0);
        f
    }

    #[test]
    fn ethernet_counts_the_fcs() {
        let s = sample(linktype::ETHERNET, vxlan_frame(53, false), 1500);
        let h = sampled_header(&s).unwrap();
        assert_eq!((h.protocol, h.frame_length, h.stripped), (1, 1504, 4));
        assert_eq!(h.header, s.header);
    }

    #[test]
    fn cooked_and_loopback_headers_are_stripped() {
        let mut sll = vec![0; 16];
        sll[14..16].copy_from_slice(&[0x86, 0xdd]);
        sll.extend([0x60, 0, 0, 0]);
        let h = sampled_header(&sample(linktype::LINUX_SLL, sll, 120)).unwrap();
        assert_eq!((h.protocol, h.frame_length, h.stripped), (12, 120, 16));
        assert_eq!(h.header, [0x60, 0, 0, 0]);
        let mut sll2 = vec![0x08, 0x00];
        sll2.resize(20, 0);
        sll2.push(0x45);
        let h = sampled_header(&sample(linktype::LINUX_SLL2, sll2, 60)).unwrap();
        assert_eq!((h.protocol, h.stripped, h.header.len()), (11, 20, 1));
        let null = vec![2, 0, 0, 0, 0x45, 0];
        let h = sampled_header(&sample(linktype::NULL, null, 44)).unwrap();
        assert_eq!((h.protocol, h.stripped, h.header.len()), (11, 4, 2));
        let raw = vec![0x60, 0, 0, 0];
        let h = sampled_header(&sample(linktype::RAW, raw, 40)).unwrap();
        assert_eq!((h.protocol, h.frame_length, h.stripped), (12, 40, 0));
    }

    #[test]
    fn frames_without_a_header_protocol_keep_the_sample() {
        let mut arp = vec![0; 16];
        arp[14..16].copy_from_slice(&[0x08, 0x06]);
        let s = sample(linktype::LINUX_SLL, arp, 60);
        assert_eq!(sampled_header(&s), None);
        let f = flow_sample(&s);
        assert_eq!(f.records.len(), 1);
        assert!(matches!(f.records[0], FlowRecord::ExtendedSwitch(_)));
        assert_eq!(sampled_header(&sample(147, vec![1; 40], 40)), None);
        assert_eq!(sampled_header(&sample(linktype::RAW, vec![], 0)), None);
    }

    #[test]
    fn vni_of_vxlan_and_geneve_only() {
        for (port, vlan, want) in [
            (4789, false, Some(0x123456)),
            (4789, true, Some(0x123456)),
            (6081, false, Some(0x123456)),
            (53, false, None),
        ] {
            let f = vxlan_frame(port, vlan);
            assert_eq!(outer_vni(1, &f), want, "{port} {vlan}");
            // Cut anywhere before the VNI's last byte: no VNI, no panic.
            for cut in 0..(f.len() - 50 - 1) {
                assert_eq!(outer_vni(1, &f[..cut]), None, "{port} {cut}");
            }
        }
        let mut s = sample(linktype::ETHERNET, vxlan_frame(4789, false), 200);
        assert!(!flow_sample(&s)
            .records
            .iter()
            .any(|r| matches!(r, FlowRecord::VniIngress(_))));
        s.tunnel_id = Some(0x123456);
        assert_eq!(
            flow_sample(&s).records.last(),
            Some(&FlowRecord::VniIngress(0x123456))
        );
    }

    #[test]
    fn interfaces_and_counters_are_copied() {
        let mut s = sample(linktype::ETHERNET, vec![0; 60], 60);
        (s.vlan_id, s.vlan_pcp, s.in_port, s.out_port) = (42, 5, 7, 9);
        (s.sampling_rate, s.sample_pool, s.sequence, s.drops) = (64, 6400, 100, 3);
        s.source_index = 7;
        let f = flow_sample(&s);
        assert_eq!(
            (f.input, f.output),
            (Interface::Single(7), Interface::Single(9))
        );
        assert_eq!(
            (f.sampling_rate, f.sample_pool, f.sequence_number, f.drops),
            (64, 6400, 100, 3)
        );
        assert_eq!(f.source_id, DataSource::if_index(7));
        assert_eq!(
            f.records[1],
            FlowRecord::ExtendedSwitch(ExtendedSwitch {
                src_vlan: 42,
                src_priority: 5,
                dst_vlan: 42,
                dst_priority: 5
            })
        );
    }
}
