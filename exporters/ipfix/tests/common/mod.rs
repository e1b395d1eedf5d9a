//! Shared helpers for the integration tests.
#![allow(dead_code)]

use mirrorflow_ipfix::{
    Decoder, Encoder, EncoderConfig, ExportClock, FlowRecord, InterfaceInfo, Message, Version,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const T0_MS: u64 = 1_700_000_000_000; // whole second

pub fn clock(unix_ms: u64) -> ExportClock {
    ExportClock {
        unix_ms,
        uptime_ms: 3_600_000 + (unix_ms - T0_MS),
    }
}

/// A flow with every field set to a distinctive value.
pub fn flow(i: u32, v6: bool, l2: Option<u64>) -> FlowRecord {
    let (src_addr, dst_addr): (IpAddr, IpAddr) = if v6 {
        (
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, i as u16).into(),
            Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 2, 0xfe).into(),
        )
    } else {
        (
            Ipv4Addr::from(0x0a00_0000 + i).into(),
            Ipv4Addr::new(192, 0, 2, 200).into(),
        )
    };
    FlowRecord {
        src_addr,
        dst_addr,
        src_port: 40000 + (i % 1000) as u16,
        dst_port: 443,
        protocol: if v6 { 58 } else { 6 },
        octets: 0x0102_0304_0506_0708 + u64::from(i),
        packets: 0x1_0000_0001 + u64::from(i),
        start_ms: T0_MS - 30_000 - u64::from(i),
        end_ms: T0_MS - 1_000,
        tcp_flags: 0x1b,
        icmp_type_code: if v6 { 0x8000 } else { 0x0303 },
        tos: 0xb8,
        min_ttl: 17,
        max_ttl: 250,
        src_mac: [0x02, 0, 0, 0, 0x11, i as u8],
        dst_mac: [0x02, 0xff, 0xee, 0xdd, 0xcc, 0xbb],
        vlan_id: 4094,
        ingress_if: 7,
        egress_if: 0x0102_0304,
        direction: 1,
        end_reason: 3,
        layer2_segment_id: l2,
        sampling: None,
    }
}

pub fn cfg(version: Version) -> EncoderConfig {
    let mut c = EncoderConfig::new(version);
    c.observation_domain = 0x00c0_ffee;
    c
}

pub fn interfaces() -> Vec<InterfaceInfo> {
    vec![
        InterfaceInfo {
            index: 7,
            name: "eth0".into(),
            description: "uplink to core".into(),
        },
        InterfaceInfo {
            index: 0x0102_0304,
            name: "vxlan-τ".into(),
            description: "x".repeat(300),
        },
    ]
}

/// Independent structural check of one datagram (no use of the crate's parser):
/// header length / set lengths / v9 count where computable.
pub fn check_structure(d: &[u8], max_payload: usize) {
    assert!(
        d.len() <= max_payload,
        "datagram {} > {}",
        d.len(),
        max_payload
    );
    let version = u16::from_be_bytes([d[0], d[1]]);
    let hdr = match version {
        10 => {
            assert_eq!(
                u16::from_be_bytes([d[2], d[3]]) as usize,
                d.len(),
                "IPFIX length"
            );
            16
        }
        9 => 20,
        v => panic!("version {v}"),
    };
    let mut pos = hdr;
    let mut sum = 0;
    while pos < d.len() {
        assert!(d.len() - pos >= 4, "trailing bytes");
        let len = u16::from_be_bytes([d[pos + 2], d[pos + 3]]) as usize;
        assert!(len > 4, "empty or invalid set length {len}");
        assert_eq!(len % 4, 0, "set padded to 4");
        sum += len;
        pos += len;
    }
    assert_eq!(sum, d.len() - hdr, "sum of set lengths");
}

pub fn encode_all(enc: &mut Encoder, recs: &[FlowRecord], c: ExportClock) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    enc.encode(recs, c, &mut out);
    out
}

pub fn decode_all(dec: &mut Decoder, dgs: &[Vec<u8>]) -> Vec<Message> {
    dgs.iter().map(|d| dec.decode(d).expect("decode")).collect()
}

pub fn has_templates(m: &Message) -> bool {
    m.templates().next().is_some()
}

/// Records in a canonical order: the encoder groups records by template inside a
/// datagram, so comparisons across mixed families ignore order.
pub fn sorted(mut v: Vec<FlowRecord>) -> Vec<FlowRecord> {
    v.sort_by_key(|r| format!("{r:?}"));
    v
}
