//! Property tests: random flows survive encode → decode unchanged, and every datagram
//! obeys the length rules.

mod common;
use common::{check_structure, sorted};
use mirrorflow_ipfix::{
    Decoder, Encoder, EncoderConfig, ExportClock, FlowRecord, Sampling, Version,
};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn addr_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<u32>(), any::<u32>())
            .prop_map(|(a, b)| (Ipv4Addr::from(a).into(), Ipv4Addr::from(b).into())),
        (any::<u128>(), any::<u128>())
            .prop_map(|(a, b)| (Ipv6Addr::from(a).into(), Ipv6Addr::from(b).into())),
    ]
}

prop_compose! {
    /// A flow that started and ended within 40 days before `now_ms`.
    fn flow_record(now_ms: u64)(
        (src_addr, dst_addr) in addr_pair(),
        ports in any::<(u16, u16)>(),
        protocol in any::<u8>(),
        octets in any::<u64>(),
        packets in any::<u64>(),
        ages in (0u64..40 * 86_400_000, 0u64..40 * 86_400_000),
        small in any::<(u8, u16, u8, u8, u8)>(),
        macs in any::<([u8; 6], [u8; 6])>(),
        vlan_id in 0u16..4096,
        ifs in (1u32.., 1u32..),
        direction in 0u8..2,
        end_reason in 1u8..6,
        layer2_segment_id in proptest::option::of(any::<u64>()),
        sampling in proptest::option::of(prop_oneof![Just(10u32), Just(100), 1u32..]),
    ) -> FlowRecord {
        let (a, b) = (ages.0.max(ages.1), ages.0.min(ages.1));
        FlowRecord {
            src_addr, dst_addr,
            src_port: ports.0, dst_port: ports.1, protocol, octets, packets,
            start_ms: now_ms - a, end_ms: now_ms - b,
            tcp_flags: small.0, icmp_type_code: small.1, tos: small.2,
            min_ttl: small.3, max_ttl: small.4,
            src_mac: macs.0, dst_mac: macs.1, vlan_id,
            ingress_if: ifs.0, egress_if: ifs.1, direction, end_reason, layer2_segment_id,
            sampling,
        }
    }
}

const NOW_MS: u64 = 1_750_000_000_000;

fn run(
    version: Version,
    batches: &[Vec<FlowRecord>],
    max_payload: usize,
    refresh: u32,
    uptime: u64,
) {
    let mut c = EncoderConfig::new(version);
    c.max_payload = max_payload;
    c.template_refresh_packets = refresh;
    c.observation_domain = 77;
    c.sampling = Sampling {
        interval: refresh + 1,
    };
    let mut enc = Encoder::new(c).unwrap();
    let mut dec = Decoder::new();
    let mut seq_ipfix = 0u32;
    let mut seq_v9 = 0u32;
    for (k, batch) in batches.iter().enumerate() {
        let clock = ExportClock {
            unix_ms: NOW_MS + 1000 * k as u64,
            uptime_ms: uptime + 1000 * k as u64,
        };
        let mut out = Vec::new();
        enc.encode(batch, clock, &mut out);
        let mut got = Vec::new();
        for d in &out {
            check_structure(d, max_payload);
            let m = dec.decode(d).unwrap();
            match version {
                Version::Ipfix => {
                    assert_eq!(m.sequence, seq_ipfix);
                    assert_eq!(m.length, Some(d.len() as u16));
                    seq_ipfix = seq_ipfix.wrapping_add(m.data_records().count() as u32);
                }
                Version::NetflowV9 => {
                    assert_eq!(m.sequence, seq_v9);
                    assert_eq!(m.count, Some(m.record_count() as u16));
                    seq_v9 += 1;
                }
            }
            got.extend(m.flow_records().into_iter().map(Result::unwrap));
        }
        let mut want = batch.clone();
        if version == Version::NetflowV9 {
            want.iter_mut().for_each(|r| r.layer2_segment_id = None);
        }
        assert_eq!(sorted(got), sorted(want));
    }
    assert_eq!(dec.skipped_sets(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn ipfix_round_trip(
        batches in proptest::collection::vec(proptest::collection::vec(flow_record(NOW_MS), 0..40), 1..4),
        max_payload in 256usize..3000,
        refresh in 0u32..5,
    ) {
        run(Version::Ipfix, &batches, max_payload, refresh, 0);
    }

    #[test]
    fn v9_round_trip(
        batches in proptest::collection::vec(proptest::collection::vec(flow_record(NOW_MS), 0..40), 1..4),
        max_payload in 256usize..3000,
        refresh in 0u32..5,
        uptime in any::<u64>().prop_map(|u| u % (1 << 40)),
    ) {
        run(Version::NetflowV9, &batches, max_payload, refresh, uptime);
    }
}
