//! Every datagram the encoder emits is decoded by `sflow-parser` (an independent sFlow v5
//! decoder) and compared, field by field, with the samples that were encoded.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::decode_with_sflow_parser;
use mirrorflow_sflow::records::{header_protocol, SampledIpv4, SampledIpv6};
use mirrorflow_sflow::{
    CounterRecord, CounterSampleRepr, DataSource, DatagramHeader, DatagramRepr, Encoder,
    EncoderConfig, EthernetCounters, ExtendedSwitch, FlowRecord, FlowSampleRepr,
    GenericInterfaceCounters, Interface, PortName, Sample, SampledHeader,
};

/// An Ethernet/IPv4/UDP frame: VXLAN to port 4789 (the bytes do not need to be valid).
fn frame(len: usize) -> Vec<u8> {
    let mut f = vec![
        0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0, 0, 50, 0, 0, 0, 0, 64, 17,
    ];
    f.resize(len, 0x33);
    f
}

fn compact_flow() -> FlowSampleRepr {
    FlowSampleRepr {
        sequence_number: 17,
        source_id: DataSource::if_index(7),
        sampling_rate: 512,
        sample_pool: 9000,
        drops: 2,
        input: Interface::Single(7),
        output: Interface::NONE,
        records: vec![
            FlowRecord::SampledHeader(SampledHeader::ethernet(&frame(99), 128)),
            FlowRecord::ExtendedSwitch(ExtendedSwitch {
                src_vlan: 100,
                src_priority: 3,
                dst_vlan: 200,
                dst_priority: 5,
            }),
            FlowRecord::Ipv4TunnelIngress(SampledIpv4 {
                length: 150,
                protocol: 17,
                src_ip: Ipv4Addr::new(10, 1, 1, 1),
                dst_ip: Ipv4Addr::new(10, 1, 1, 2),
                src_port: 53211,
                dst_port: 4789,
                tcp_flags: 0,
                tos: 0,
            }),
            FlowRecord::VniIngress(5001),
        ],
    }
}

fn expanded_flow() -> FlowSampleRepr {
    FlowSampleRepr {
        sequence_number: u32::MAX,
        source_id: DataSource {
            source_type: 0,
            index: 0x0123_4567,
        },
        sampling_rate: 1,
        sample_pool: 1,
        drops: 0,
        input: Interface::Single(0x0123_4567),
        output: Interface::Multiple(3),
        records: vec![
            FlowRecord::SampledHeader(SampledHeader {
                protocol: header_protocol::IPV6,
                frame_length: 1280,
                stripped: 0,
                header: vec![0x60; 127],
            }),
            FlowRecord::Ipv6TunnelEgress(SampledIpv6 {
                length: 1280,
                protocol: 17,
                src_ip: "fd00::1".parse().unwrap(),
                dst_ip: "fd00::2".parse().unwrap(),
                src_port: 6081,
                dst_port: 6081,
                tcp_flags: 0,
                priority: 0,
            }),
            FlowRecord::VniEgress(0x00FF_FFFF),
        ],
    }
}

fn generic(if_index: u32) -> GenericInterfaceCounters {
    GenericInterfaceCounters {
        if_index,
        if_type: 6,
        if_speed: 25_000_000_000,
        if_direction: 1,
        if_status: 3,
        if_in_octets: u64::MAX - 5,
        if_in_ucast_pkts: 1,
        if_in_multicast_pkts: 2,
        if_in_broadcast_pkts: 3,
        if_in_discards: 4,
        if_in_errors: 5,
        if_in_unknown_protos: 6,
        if_out_octets: 1 << 40,
        if_out_ucast_pkts: 7,
        if_out_multicast_pkts: 8,
        if_out_broadcast_pkts: 9,
        if_out_discards: 10,
        if_out_errors: 11,
        if_promiscuous_mode: 1,
    }
}

fn ethernet() -> EthernetCounters {
    EthernetCounters {
        dot3_stats_alignment_errors: 1,
        dot3_stats_fcs_errors: 2,
        dot3_stats_single_collision_frames: 3,
        dot3_stats_multiple_collision_frames: 4,
        dot3_stats_sqe_test_errors: 5,
        dot3_stats_deferred_transmissions: 6,
        dot3_stats_late_collisions: 7,
        dot3_stats_excessive_collisions: 8,
        dot3_stats_internal_mac_transmit_errors: 9,
        dot3_stats_carrier_sense_errors: 10,
        dot3_stats_frame_too_longs: 11,
        dot3_stats_internal_mac_receive_errors: 12,
        dot3_stats_symbol_errors: 13,
    }
}

fn counters(index: u32, name: &str) -> CounterSampleRepr {
    CounterSampleRepr {
        sequence_number: 3,
        source_id: DataSource::if_index(index),
        records: vec![
            CounterRecord::GenericInterface(generic(index)),
            CounterRecord::Ethernet(ethernet()),
            CounterRecord::PortName(PortName { name: name.into() }),
        ],
    }
}

fn all_samples() -> Vec<Sample> {
    vec![
        Sample::Flow(compact_flow()),
        Sample::Flow(expanded_flow()),
        Sample::Counter(counters(7, "tap0")),
        Sample::Counter(counters(0x0200_0000, "vnet-with-a-longer-name")),
        Sample::Counter(counters(8, "")),
    ]
}

fn encode_and_check(config: EncoderConfig, samples: &[Sample]) -> Vec<Vec<u8>> {
    let mut enc = Encoder::new(config);
    let mut out = Vec::new();
    let rep = enc.encode(samples, 86_400_123, &mut out);
    assert_eq!((rep.truncated, rep.dropped), (0, 0));
    let mut decoded = Vec::new();
    for (i, dgram) in out.iter().enumerate() {
        assert!(dgram.len() <= config.max_datagram);
        let theirs = decode_with_sflow_parser(dgram);
        // Our own parser agrees with sflow-parser, datagram for datagram.
        assert_eq!(DatagramRepr::parse(dgram).unwrap(), theirs);
        assert_eq!(theirs.agent, config.agent);
        assert_eq!(theirs.sub_agent_id, config.sub_agent_id);
        assert_eq!(theirs.sequence_number, i as u32 + 1);
        assert_eq!(theirs.uptime_ms, 86_400_123);
        let (header, _) = DatagramHeader::parse(dgram).unwrap();
        assert_eq!(header.num_samples as usize, theirs.samples.len());
        decoded.extend(theirs.samples);
    }
    assert_eq!(decoded, samples);
    out
}

#[test]
fn one_datagram_ipv4_agent_all_structures() {
    let config = EncoderConfig {
        agent: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        sub_agent_id: 4,
        max_datagram: 1400,
    };
    let out = encode_and_check(config, &all_samples());
    assert_eq!(out.len(), 1);
}

#[test]
fn ipv6_agent_small_datagrams_split_samples() {
    let config = EncoderConfig {
        agent: "2001:db8:1::10".parse().unwrap(),
        sub_agent_id: 0,
        max_datagram: 400,
    };
    let samples: Vec<Sample> = all_samples().into_iter().cycle().take(23).collect();
    let out = encode_and_check(config, &samples);
    assert!(out.len() > 5, "{} datagrams", out.len());
}

#[test]
fn compact_and_expanded_formats_are_what_sflow_parser_sees() {
    let mut out = Vec::new();
    Encoder::new(EncoderConfig::default()).encode(&all_samples(), 0, &mut out);
    let d = sflow_parser::parse_datagram(&out[0]).unwrap();
    let formats: Vec<u32> = d.samples.iter().map(|s| s.sample_type.0).collect();
    assert_eq!(formats, [1, 3, 2, 4, 2]);
    match &d.samples[0].sample_data {
        sflow_parser::SampleData::FlowSample(f) => {
            assert_eq!(f.source_id.index(), 7);
            assert_eq!(f.output.0, 0x3FFF_FFFF);
            match &f.flow_records[0].flow_data {
                sflow_parser::models::FlowData::SampledHeader(h) => {
                    assert_eq!(h.header, frame(99));
                    assert_eq!((h.frame_length, h.stripped), (103, 4));
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    match &d.samples[1].sample_data {
        sflow_parser::SampleData::FlowSampleExpanded(f) => {
            assert_eq!(f.source_id.source_id_index, 0x0123_4567);
            assert_eq!((f.input.format, f.input.value), (0, 0x0123_4567));
            assert_eq!((f.output.format, f.output.value), (2, 3));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_sample_still_decodes() {
    let big = Sample::Flow(FlowSampleRepr {
        records: vec![FlowRecord::SampledHeader(SampledHeader::ethernet(
            &frame(9000),
            9000,
        ))],
        ..compact_flow()
    });
    let mut out = Vec::new();
    let rep = Encoder::new(EncoderConfig::default()).encode(&[big], 1, &mut out);
    assert_eq!(rep.truncated, 1);
    let theirs = decode_with_sflow_parser(&out[0]);
    let Sample::Flow(f) = &theirs.samples[0] else {
        panic!()
    };
    let FlowRecord::SampledHeader(h) = &f.records[0] else {
        panic!()
    };
    assert_eq!(h.header[..], frame(9000)[..h.header.len()]);
    assert_eq!(h.frame_length, 9004);
    assert!(out[0].len() <= 1400 && out[0].len() > 1396);
}
