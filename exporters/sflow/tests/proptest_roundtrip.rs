//! Property tests: random samples → encoder → `sflow-parser` (and this crate's parser)
//! → the same samples; no datagram over `max_datagram`; consecutive sequence numbers;
//! greedy packing; oversize samples truncated (header prefix) or dropped, as counted.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::decode_with_sflow_parser;
use mirrorflow_sflow::records::{SampledIpv4, SampledIpv6};
use mirrorflow_sflow::{
    CounterRecord, CounterSampleRepr, DataFormat, DataSource, DatagramHeader, DatagramRepr,
    Encoder, EncoderConfig, EthernetCounters, ExtendedSwitch, FlowRecord, FlowSampleRepr,
    GenericInterfaceCounters, Interface, PortName, Sample, SampledHeader,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn small_or_any() -> impl Strategy<Value = u32> {
    prop_oneof![3 => 0u32..100, 1 => any::<u32>()]
}

fn interface() -> impl Strategy<Value = Interface> {
    (0u32..3, small_or_any()).prop_map(|(f, v)| Interface::from_parts(f, v).unwrap())
}

fn source() -> impl Strategy<Value = DataSource> {
    (prop_oneof![4 => 0u32..3, 1 => any::<u32>()], small_or_any())
        .prop_map(|(source_type, index)| DataSource { source_type, index })
}

/// Formats of an enterprise that sflow-parser does not interpret (not 0, 4300, 4413).
fn vendor_format() -> impl Strategy<Value = DataFormat> {
    (5000u32..0x10_0000, 0u32..0x1000).prop_map(|(e, f)| DataFormat::new(e, f))
}

fn ipv4() -> impl Strategy<Value = SampledIpv4> {
    (any::<[u32; 8]>()).prop_map(|w| SampledIpv4 {
        length: w[0],
        protocol: w[1],
        src_ip: Ipv4Addr::from(w[2]),
        dst_ip: Ipv4Addr::from(w[3]),
        src_port: w[4],
        dst_port: w[5],
        tcp_flags: w[6],
        tos: w[7],
    })
}

fn ipv6() -> impl Strategy<Value = SampledIpv6> {
    (any::<[u32; 6]>(), any::<u128>(), any::<u128>()).prop_map(|(w, s, d)| SampledIpv6 {
        length: w[0],
        protocol: w[1],
        src_ip: Ipv6Addr::from(s),
        dst_ip: Ipv6Addr::from(d),
        src_port: w[2],
        dst_port: w[3],
        tcp_flags: w[4],
        priority: w[5],
    })
}

fn flow_record(max_header: usize) -> impl Strategy<Value = FlowRecord> {
    prop_oneof![
        4 => (
            prop::sample::select(vec![1u32, 11, 12]),
            any::<u32>(),
            any::<u32>(),
            vec(any::<u8>(), 0..max_header)
        )
            .prop_map(|(protocol, frame_length, stripped, header)| {
                FlowRecord::SampledHeader(SampledHeader {
                    protocol,
                    frame_length,
                    stripped,
                    header,
                })
            }),
        2 => any::<[u32; 4]>().prop_map(|w| FlowRecord::ExtendedSwitch(ExtendedSwitch {
            src_vlan: w[0],
            src_priority: w[1],
            dst_vlan: w[2],
            dst_priority: w[3],
        })),
        1 => ipv4().prop_map(FlowRecord::SampledIpv4),
        1 => ipv6().prop_map(FlowRecord::SampledIpv6),
        1 => ipv4().prop_map(FlowRecord::Ipv4TunnelEgress),
        1 => ipv4().prop_map(FlowRecord::Ipv4TunnelIngress),
        1 => ipv6().prop_map(FlowRecord::Ipv6TunnelEgress),
        1 => ipv6().prop_map(FlowRecord::Ipv6TunnelIngress),
        1 => any::<u32>().prop_map(FlowRecord::VniEgress),
        1 => any::<u32>().prop_map(FlowRecord::VniIngress),
        1 => (vendor_format(), vec(any::<u8>(), 0..23))
            .prop_map(|(format, data)| FlowRecord::Unknown { format, data }),
    ]
}

fn counter_record() -> impl Strategy<Value = CounterRecord> {
    prop_oneof![
        2 => (any::<[u32; 16]>(), any::<[u64; 3]>()).prop_map(|(w, l)| {
            CounterRecord::GenericInterface(GenericInterfaceCounters {
                if_index: w[0],
                if_type: w[1],
                if_speed: l[0],
                if_direction: w[2],
                if_status: w[3],
                if_in_octets: l[1],
                if_in_ucast_pkts: w[4],
                if_in_multicast_pkts: w[5],
                if_in_broadcast_pkts: w[6],
                if_in_discards: w[7],
                if_in_errors: w[8],
                if_in_unknown_protos: w[9],
                if_out_octets: l[2],
                if_out_ucast_pkts: w[10],
                if_out_multicast_pkts: w[11],
                if_out_broadcast_pkts: w[12],
                if_out_discards: w[13],
                if_out_errors: w[14],
                if_promiscuous_mode: w[15],
            })
        }),
        2 => any::<[u32; 13]>().prop_map(|w| CounterRecord::Ethernet(EthernetCounters {
            dot3_stats_alignment_errors: w[0],
            dot3_stats_fcs_errors: w[1],
            dot3_stats_single_collision_frames: w[2],
            dot3_stats_multiple_collision_frames: w[3],
            dot3_stats_sqe_test_errors: w[4],
            dot3_stats_deferred_transmissions: w[5],
            dot3_stats_late_collisions: w[6],
            dot3_stats_excessive_collisions: w[7],
            dot3_stats_internal_mac_transmit_errors: w[8],
            dot3_stats_carrier_sense_errors: w[9],
            dot3_stats_frame_too_longs: w[10],
            dot3_stats_internal_mac_receive_errors: w[11],
            dot3_stats_symbol_errors: w[12],
        })),
        // Names up to 255 bytes (ASCII) or 60 characters of any script.
        2 => prop_oneof!["[a-zA-Z0-9._-]{0,255}", "\\PC{0,60}"]
            .prop_map(|name| CounterRecord::PortName(PortName { name })),
        1 => (vendor_format(), vec(any::<u8>(), 0..23))
            .prop_map(|(format, data)| CounterRecord::Unknown { format, data }),
    ]
}

fn sample(max_header: usize) -> impl Strategy<Value = Sample> {
    prop_oneof![
        5 => (
            any::<[u32; 4]>(),
            source(),
            interface(),
            interface(),
            vec(flow_record(max_header), 0..5)
        )
            .prop_map(|(w, source_id, input, output, records)| {
                Sample::Flow(FlowSampleRepr {
                    sequence_number: w[0],
                    source_id,
                    sampling_rate: w[1],
                    sample_pool: w[2],
                    drops: w[3],
                    input,
                    output,
                    records,
                })
            }),
        4 => (any::<u32>(), source(), vec(counter_record(), 0..4)).prop_map(
            |(sequence_number, source_id, records)| {
                Sample::Counter(CounterSampleRepr {
                    sequence_number,
                    source_id,
                    records,
                })
            }
        ),
        1 => (vendor_format(), vec(any::<u8>(), 0..64))
            .prop_map(|(format, data)| Sample::Unknown { format, data }),
    ]
}

fn agent() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

/// `got` is `want` with the bytes of its sampled headers possibly cut (prefixes).
fn is_truncation_of(got: &Sample, want: &Sample) -> bool {
    let (Sample::Flow(g), Sample::Flow(w)) = (got, want) else {
        return false;
    };
    let same_fields = FlowSampleRepr {
        records: vec![],
        ..g.clone()
    } == FlowSampleRepr {
        records: vec![],
        ..w.clone()
    };
    same_fields
        && g.records.len() == w.records.len()
        && g.records.iter().zip(&w.records).all(|(g, w)| match (g, w) {
            (FlowRecord::SampledHeader(g), FlowRecord::SampledHeader(w)) => {
                g.protocol == w.protocol
                    && g.frame_length == w.frame_length
                    && g.stripped == w.stripped
                    && w.header.starts_with(&g.header)
            }
            (g, w) => g == w,
        })
}

/// Length of a sample with all its sampled header bytes removed (`usize::MAX` for
/// samples the encoder cannot truncate).
fn stripped_len(s: &Sample) -> usize {
    let Sample::Flow(f) = s else {
        return usize::MAX;
    };
    let mut f = f.clone();
    for r in &mut f.records {
        if let FlowRecord::SampledHeader(h) = r {
            h.header.clear();
        }
    }
    f.buffer_len()
}

/// Encodes `samples` in two calls and checks every property; returns the number of
/// samples written unchanged.
fn check(agent: IpAddr, max_datagram: usize, samples: &[Sample], split: usize) -> usize {
    let config = EncoderConfig {
        agent,
        sub_agent_id: 77,
        max_datagram,
    };
    let mut enc = Encoder::new(config);
    let mut out = Vec::new();
    let split = split.min(samples.len());
    let r1 = enc.encode(&samples[..split], 1000, &mut out);
    let r2 = enc.encode(&samples[split..], 2000, &mut out);
    let room = max_datagram.saturating_sub(DatagramHeader::len_for(&agent));

    let mut decoded = Vec::new();
    let mut first_lens = Vec::new();
    for (i, d) in out.iter().enumerate() {
        assert!(d.len() <= max_datagram, "datagram of {} bytes", d.len());
        let theirs = decode_with_sflow_parser(d);
        assert_eq!(DatagramRepr::parse(d).as_ref(), Ok(&theirs));
        assert_eq!(theirs.sequence_number, i as u32 + 1, "sequence numbers");
        assert_eq!((theirs.agent, theirs.sub_agent_id), (agent, 77));
        assert!(!theirs.samples.is_empty());
        first_lens.push(theirs.samples[0].buffer_len());
        decoded.extend(theirs.samples);
    }
    assert_eq!(enc.next_sequence() as usize, out.len() + 1);
    // Greedy packing: the first sample of each datagram did not fit in the previous one
    // (within one encode call; calls never share datagrams).
    let first_call = r1.datagrams;
    for i in 1..out.len() {
        if i != first_call {
            assert!(out[i - 1].len() + first_lens[i] > max_datagram);
        }
    }

    let (mut truncated, mut dropped, mut unchanged) = (0, 0, 0);
    let mut got = decoded.iter().peekable();
    for want in samples {
        if want.buffer_len() <= room {
            assert_eq!(got.next(), Some(want));
            unchanged += 1;
        } else if got.peek().is_some_and(|g| is_truncation_of(g, want)) {
            assert!(got.next().unwrap().buffer_len() <= room);
            truncated += 1;
        } else {
            assert!(
                stripped_len(want) > room,
                "sample dropped although cutting its headers would have made it fit"
            );
            dropped += 1;
        }
    }
    assert!(got.next().is_none());
    assert_eq!(r1.truncated + r2.truncated, truncated);
    assert_eq!(r1.dropped + r2.dropped, dropped);
    assert_eq!(r1.samples + r2.samples, decoded.len());
    unchanged
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Common sizes: headers up to 256 bytes, datagrams of 1400 bytes or more.
    #[test]
    fn encode_parse_roundtrip(
        agent in agent(),
        max_datagram in prop_oneof![Just(1400usize), 1400usize..9000],
        samples in vec(sample(256), 0..40),
        split in 0usize..40,
    ) {
        check(agent, max_datagram, &samples, split);
    }

    /// Tight limits and big headers: exercises splitting, truncation and dropping.
    #[test]
    fn tight_limits_truncate_or_drop(
        agent in agent(),
        max_datagram in 0usize..700,
        samples in vec(sample(1500), 0..20),
        split in 0usize..20,
    ) {
        check(agent, max_datagram, &samples, split);
    }
}

#[test]
fn roundtrip_without_size_pressure_keeps_every_sample() {
    // A deterministic sanity check of `check` itself: everything fits, nothing lost.
    let s = Sample::Counter(CounterSampleRepr::default());
    assert_eq!(
        check(IpAddr::V4(Ipv4Addr::LOCALHOST), 1400, &vec![s; 100], 30),
        100
    );
}

proptest! {
    /// Parsing arbitrary bytes never panics.
    #[test]
    fn parse_arbitrary_bytes_never_panics(bytes in vec(any::<u8>(), 0..600)) {
        let _ = DatagramRepr::parse(&bytes);
        let _ = Sample::parse(&bytes);
        let _ = FlowRecord::parse(&bytes);
        let _ = CounterRecord::parse(&bytes);
    }

    /// Parsing a valid datagram with some bytes flipped, or cut short, never panics,
    /// and whatever parses re-emits to bytes that parse to the same thing.
    #[test]
    fn parse_mutated_datagrams_never_panics(
        samples in vec(sample(64), 1..6),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut out = Vec::new();
        Encoder::new(EncoderConfig::default()).encode(&samples, 0, &mut out);
        let mut d = out.swap_remove(0);
        for (i, v) in flips {
            let i = i.index(d.len());
            d[i] ^= v;
        }
        for bytes in [&d[..], &d[..cut.index(d.len())]] {
            if let Ok(repr) = DatagramRepr::parse(bytes) {
                let mut buf = vec![0; repr.buffer_len()];
                prop_assert_eq!(repr.emit(&mut buf), Ok(buf.len()));
                prop_assert_eq!(DatagramRepr::parse(&buf), Ok(repr));
            }
        }
    }
}
