//! Writes datagrams produced by the encoder into a classic pcap file (Ethernet/IPv4/UDP
//! from 127.0.0.1 to 127.0.0.1:6343) for inspection with Wireshark/tshark:
//!
//! ```text
//! cargo run -p mirrorflow-sflow --example write_pcap -- /tmp/sflow-export.pcap
//! /work/shared/tools/export-check.sh /tmp/sflow-export.pcap "" 6343
//! ```

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};

use etherparse::PacketBuilder;
use mirrorflow_sflow::records::{SampledIpv4, SampledIpv6};
use mirrorflow_sflow::{
    CounterRecord, CounterSampleRepr, DataSource, Encoder, EncoderConfig, EthernetCounters,
    ExtendedSwitch, FlowRecord, FlowSampleRepr, GenericInterfaceCounters, Interface, PortName,
    Sample, SampledHeader, Sampler,
};

/// A VXLAN-encapsulated TCP SYN: outer Ethernet/IPv4/UDP 4789, VXLAN VNI, inner frame.
fn vxlan_frame(vni: u32, seq: u32) -> Vec<u8> {
    let mut inner = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 1, 2])
        .ipv4([192, 168, 10, 1], [192, 168, 10, 2], 64)
        .tcp(40000, 443, seq, 64240)
        .syn()
        .write(&mut inner, &[])
        .unwrap();
    let mut vxlan = vec![0x08, 0, 0, 0];
    vxlan.extend_from_slice(&(vni << 8).to_be_bytes());
    vxlan.extend_from_slice(&inner);
    let mut outer = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(50000 + (seq % 1000) as u16, 4789)
        .write(&mut outer, &vxlan)
        .unwrap();
    outer
}

/// A plain IPv6/UDP frame with `payload_len` bytes of payload.
fn ipv6_udp_frame(payload_len: usize) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0, 4])
        .ipv6([0xfd; 16], [0xfe; 16], 64)
        .udp(5353, 5353)
        .write(&mut f, &vec![0x42; payload_len])
        .unwrap();
    f
}

fn counters(if_index: u32, name: &str, seq: u32) -> Sample {
    Sample::Counter(CounterSampleRepr {
        sequence_number: seq,
        source_id: DataSource::if_index(if_index),
        records: vec![
            CounterRecord::GenericInterface(GenericInterfaceCounters {
                if_index,
                if_type: 6,
                if_speed: 10_000_000_000,
                if_direction: 1,
                if_status: 3,
                if_in_octets: 123_456_789_012,
                if_in_ucast_pkts: 1000 + seq,
                if_out_octets: 98_765_432_109,
                if_out_ucast_pkts: 2000 + seq,
                ..Default::default()
            }),
            CounterRecord::Ethernet(EthernetCounters {
                dot3_stats_fcs_errors: 1,
                ..Default::default()
            }),
            CounterRecord::PortName(PortName { name: name.into() }),
        ],
    })
}

fn samples() -> Vec<Sample> {
    let mut sampler = Sampler::new(4, 2024);
    let mut out = Vec::new();
    let mut packet = 0u32;
    while out.len() < 40 {
        packet += 1;
        if !sampler.should_sample() {
            continue;
        }
        let vni = 5000 + packet % 3;
        let frame = vxlan_frame(vni, packet);
        let mut s = FlowSampleRepr {
            source_id: DataSource::if_index(3),
            input: Interface::Single(3),
            output: Interface::Single(4),
            records: vec![
                FlowRecord::SampledHeader(SampledHeader::ethernet(&frame, 128)),
                FlowRecord::ExtendedSwitch(ExtendedSwitch {
                    src_vlan: 10,
                    src_priority: 0,
                    dst_vlan: 10,
                    dst_priority: 0,
                }),
                FlowRecord::Ipv4TunnelIngress(SampledIpv4 {
                    length: (frame.len() - 14) as u32,
                    protocol: 17,
                    src_ip: Ipv4Addr::new(10, 0, 0, 1),
                    dst_ip: Ipv4Addr::new(10, 0, 0, 2),
                    src_port: 50000 + packet % 1000,
                    dst_port: 4789,
                    tcp_flags: 0,
                    tos: 0,
                }),
                FlowRecord::VniIngress(vni),
            ],
            ..Default::default()
        };
        sampler.stamp(&mut s);
        out.push(Sample::Flow(s));
        if out.len() % 7 == 0 {
            // An expanded flow sample (ifIndex beyond 24 bits), egress tunnel records.
            let frame = ipv6_udp_frame(200);
            out.push(Sample::Flow(FlowSampleRepr {
                sequence_number: out.len() as u32,
                source_id: DataSource::if_index(0x0100_0000),
                sampling_rate: 1,
                sample_pool: out.len() as u32,
                drops: 0,
                input: Interface::Single(0x0100_0000),
                output: Interface::Multiple(2),
                records: vec![
                    FlowRecord::SampledHeader(SampledHeader::ethernet(&frame, 128)),
                    FlowRecord::Ipv6TunnelEgress(SampledIpv6 {
                        length: 240,
                        protocol: 17,
                        src_ip: "fd00::1".parse().unwrap(),
                        dst_ip: "fd00::2".parse().unwrap(),
                        src_port: 6081,
                        dst_port: 6081,
                        tcp_flags: 0,
                        priority: 0,
                    }),
                    FlowRecord::VniEgress(0xABCDE),
                ],
            }));
            out.push(counters(3, "vnet3", out.len() as u32));
            out.push(counters(0x0200_0000, "tap-expanded", out.len() as u32));
        }
    }
    // One jumbo sample whose header gets truncated to fit.
    let jumbo = ipv6_udp_frame(8000);
    out.push(Sample::Flow(FlowSampleRepr {
        sequence_number: 999,
        source_id: DataSource::if_index(3),
        sampling_rate: 4,
        sample_pool: packet,
        drops: 0,
        input: Interface::Single(3),
        output: Interface::Single(4),
        records: vec![FlowRecord::SampledHeader(SampledHeader::ethernet(
            &jumbo, 9000,
        ))],
    }));
    out
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/mirrorflow-sflow-export.pcap".into());
    let samples = samples();
    let mut datagrams = Vec::new();
    for agent in [
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        "2001:db8::1".parse().unwrap(),
    ] {
        let mut enc = Encoder::new(EncoderConfig {
            agent,
            sub_agent_id: 0,
            max_datagram: 1400,
        });
        let rep = enc.encode(&samples, 60_000, &mut datagrams);
        eprintln!("agent {agent}: {rep:?}");
    }

    let mut pcap = Vec::new();
    pcap.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    pcap.extend_from_slice(&2u16.to_le_bytes());
    pcap.extend_from_slice(&4u16.to_le_bytes());
    pcap.extend_from_slice(&[0; 8]);
    pcap.extend_from_slice(&65535u32.to_le_bytes());
    pcap.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (i, d) in datagrams.iter().enumerate() {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 2])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .udp(40000, 6343)
            .write(&mut frame, d)
            .unwrap();
        pcap.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        pcap.extend_from_slice(&(i as u32).to_le_bytes());
        pcap.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        pcap.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        pcap.extend_from_slice(&frame);
    }
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&pcap))
        .unwrap();
    eprintln!("wrote {} datagrams to {path}", datagrams.len());
}
