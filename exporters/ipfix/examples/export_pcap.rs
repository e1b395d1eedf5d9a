//! Write encoder output to a classic pcap (Ethernet / IPv4 / UDP to 127.0.0.1) for
//! checking with Wireshark's dissector:
//!
//! ```text
//! cargo run -p mirrorflow-ipfix --example export_pcap -- /tmp/ipfix-export.pcap
//! /work/shared/tools/export-check.sh /tmp/ipfix-export.pcap 4739,2055
//! ```
//! IPFIX goes to UDP/4739, NetFlow v9 to UDP/2055, from different source ports per
//! stream so that sequence-number analysis sees independent streams.

// `is_multiple_of` needs Rust 1.87; the workspace MSRV is 1.85.
#![allow(clippy::manual_is_multiple_of)]

use mirrorflow_ipfix::{
    Encoder, EncoderConfig, ExportClock, ExporterStats, FlowRecord, InterfaceInfo, Sampling,
    Version,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn flow(i: u32, now_ms: u64) -> FlowRecord {
    let v6 = i % 3 == 0;
    let (src_addr, dst_addr): (IpAddr, IpAddr) = if v6 {
        (
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, i as u16).into(),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 2, 1).into(),
        )
    } else {
        (
            Ipv4Addr::from(0x0a00_0000 + i).into(),
            Ipv4Addr::new(192, 0, 2, 1).into(),
        )
    };
    FlowRecord {
        src_addr,
        dst_addr,
        src_port: 1024 + i as u16,
        dst_port: if i % 5 == 0 { 0 } else { 443 },
        protocol: if i % 5 == 0 {
            if v6 {
                58
            } else {
                1
            }
        } else {
            6
        },
        octets: 1500 * u64::from(i + 1),
        packets: u64::from(i + 1),
        start_ms: now_ms - 20_000 - u64::from(i) * 10,
        end_ms: now_ms - 1_000,
        tcp_flags: 0x18,
        icmp_type_code: if i % 5 == 0 { 0x0800 } else { 0 },
        tos: 0,
        min_ttl: 60,
        max_ttl: 64,
        src_mac: [2, 0, 0, 0, 0, i as u8],
        dst_mac: [2, 0, 0, 0, 1, 1],
        vlan_id: (i % 2) as u16 * 100,
        ingress_if: 1 + i % 2,
        egress_if: 3,
        direction: (i % 2) as u8,
        end_reason: 1 + (i % 5) as u8,
        layer2_segment_id: (i % 4 == 0).then_some(5000 + u64::from(i)),
        // Some records with their own sampling (selector templates and options).
        sampling: (i % 7 == 0).then_some(if i % 2 == 0 { 100 } else { 4096 }),
    }
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/mirrorflow-ipfix-export.pcap".into());
    let mut pcap = Vec::new();
    for w in [
        0xa1b2_c3d4u32.to_le_bytes().as_slice(),
        &2u16.to_le_bytes(),
        &4u16.to_le_bytes(),
    ] {
        pcap.extend_from_slice(w);
    }
    pcap.extend_from_slice(&[0; 8]); // thiszone, sigfigs
    pcap.extend_from_slice(&65535u32.to_le_bytes());
    pcap.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
    let t0: u64 = 1_750_000_000_000;
    let mut frames = 0;
    for (stream, (version, max_payload, port)) in [
        (Version::Ipfix, 1400, 4739u16),
        (Version::NetflowV9, 1400, 2055),
        (Version::Ipfix, 8000, 4739),
        (Version::NetflowV9, 300, 2055),
    ]
    .into_iter()
    .enumerate()
    {
        let mut cfg = EncoderConfig::new(version);
        cfg.max_payload = max_payload;
        cfg.observation_domain = 10 + stream as u32;
        cfg.template_refresh_packets = 5;
        cfg.template_refresh_ms = 30_000;
        cfg.sampling = Sampling {
            interval: if stream % 2 == 0 { 1 } else { 64 },
        };
        let mut enc = Encoder::new(cfg).expect("config");
        enc.set_interfaces(vec![
            InterfaceInfo {
                index: 1,
                name: "eth0".into(),
                description: "mirror port".into(),
            },
            InterfaceInfo {
                index: 2,
                name: "vxlan0".into(),
                description: "tunnel endpoint".into(),
            },
        ]);
        for k in 0..8u64 {
            let now = t0 + k * 5_000;
            enc.set_stats(ExporterStats {
                messages: k * 3,
                records: k * 40,
                ignored_packets: k,
            });
            let recs: Vec<_> = (0..(k as u32 * 13) % 60).map(|i| flow(i, now)).collect();
            let mut out = Vec::new();
            enc.encode(
                &recs,
                ExportClock {
                    unix_ms: now,
                    uptime_ms: 1_000 + k * 5_000,
                },
                &mut out,
            );
            for d in out {
                let mut frame = Vec::new();
                etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                    .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
                    .udp(40000 + stream as u16, port)
                    .write(&mut frame, &d)
                    .expect("frame");
                let ts = now + frames;
                pcap.extend_from_slice(&((ts / 1000) as u32).to_le_bytes());
                pcap.extend_from_slice(&(((ts % 1000) * 1000) as u32).to_le_bytes());
                pcap.extend_from_slice(&(frame.len() as u32).to_le_bytes());
                pcap.extend_from_slice(&(frame.len() as u32).to_le_bytes());
                pcap.extend_from_slice(&frame);
                frames += 1;
            }
        }
    }
    std::fs::write(&path, pcap).expect("write pcap");
    println!("wrote {frames} frames to {path}");
}
