//! Encoder behaviour, checked through the crate's own decoder and an independent
//! structural walk of every datagram.

mod common;
use common::*;
use mirrorflow_ipfix::templates::{self, v9_switched};
use mirrorflow_ipfix::{
    ie, ConfigError, Decoder, Encoder, EncoderConfig, ExportClock, ExporterStats, FlowRecord,
    Message, Sampling, Set, Version,
};

fn flows_of(msgs: &[Message]) -> Vec<FlowRecord> {
    msgs.iter()
        .flat_map(|m| m.flow_records())
        .map(|r| r.expect("flow record"))
        .collect()
}

#[test]
fn round_trip_every_field_both_versions_both_families() {
    for version in [Version::Ipfix, Version::NetflowV9] {
        let mut enc = Encoder::new(cfg(version)).unwrap();
        let mut dec = Decoder::new();
        let recs: Vec<FlowRecord> = (0..40)
            .map(|i| {
                flow(
                    i,
                    i % 2 == 1,
                    (i % 3 == 0).then_some(0xab_cdef + u64::from(i)),
                )
            })
            .collect();
        let dgs = encode_all(&mut enc, &recs, clock(T0_MS));
        for d in &dgs {
            check_structure(d, 1400);
        }
        let msgs = decode_all(&mut dec, &dgs);
        let mut want = recs.clone();
        if version == Version::NetflowV9 {
            // layer2SegmentId is not exported in NetFlow v9.
            want.iter_mut().for_each(|r| r.layer2_segment_id = None);
        }
        assert_eq!(sorted(flows_of(&msgs)), sorted(want), "{version:?}");
        assert_eq!(dec.skipped_sets(), 0);
        for m in &msgs {
            assert_eq!(m.domain_id, 0x00c0_ffee);
            assert_eq!(m.export_time, (T0_MS / 1000) as u32);
        }
    }
}

#[test]
fn ipfix_data_templates_field_lists() {
    let t = templates::flow_template(Version::Ipfix, false, true);
    let ids: Vec<u16> = t.fields.iter().map(|f| f.id).collect();
    assert_eq!(
        ids,
        [8, 12, 7, 11, 4, 1, 2, 152, 153, 6, 32, 5, 52, 53, 56, 80, 58, 10, 14, 61, 136, 60, 351]
    );
    let t = templates::flow_template(Version::NetflowV9, true, true);
    let ids: Vec<u16> = t.fields.iter().map(|f| f.id).collect();
    assert_eq!(
        ids,
        [27, 28, 7, 11, 4, 1, 2, 22, 21, 6, 139, 5, 52, 53, 56, 80, 58, 10, 14, 61, 136, 60]
    );
    assert_eq!(t.template_id, 257);
}

#[test]
fn options_data_round_trip() {
    for version in [Version::Ipfix, Version::NetflowV9] {
        let mut c = cfg(version);
        c.sampling = Sampling { interval: 512 };
        let mut enc = Encoder::new(c).unwrap();
        enc.set_interfaces(interfaces());
        enc.set_stats(ExporterStats {
            messages: 11,
            records: 222,
            ignored_packets: 3333,
        });
        let mut dec = Decoder::new();
        let msgs = decode_all(&mut dec, &encode_all(&mut enc, &[], clock(T0_MS)));
        assert_eq!(msgs.len(), 1);
        let opts: Vec<_> = msgs[0].data_records().collect();
        assert_eq!(opts.len(), 4, "sampling + 2 interfaces + stats");
        assert!(opts.iter().all(|r| r.is_options()));
        let s = opts[0];
        assert_eq!(s.fields[0].value, 0x00c0_ffeeu32.to_be_bytes());
        assert_eq!(s.uint(ie::SAMPLING_INTERVAL), Some(512));
        assert_eq!(s.uint(ie::SAMPLING_ALGORITHM), Some(2));
        if version == Version::Ipfix {
            assert_eq!(s.uint(ie::SAMPLING_PACKET_INTERVAL), Some(1));
            assert_eq!(s.uint(ie::SAMPLING_PACKET_SPACE), Some(511));
            assert_eq!(s.uint(ie::SELECTOR_ALGORITHM), Some(3));
        }
        let name = |r: &mirrorflow_ipfix::DataRecord, id| {
            let v = r.field(id).unwrap();
            let end = v.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            String::from_utf8(v[..end].to_vec()).unwrap()
        };
        assert_eq!(opts[1].fields[0].value, 7u32.to_be_bytes());
        assert!(opts[1].fields[0].scope);
        assert_eq!(name(opts[1], ie::INTERFACE_NAME), "eth0");
        assert_eq!(name(opts[1], ie::INTERFACE_DESCRIPTION), "uplink to core");
        assert_eq!(name(opts[2], ie::INTERFACE_NAME), "vxlan-τ");
        let desc_len = match version {
            Version::Ipfix => templates::IPFIX_IF_DESC_MAX,
            Version::NetflowV9 => templates::V9_IF_DESC_LEN as usize,
        };
        assert_eq!(
            name(opts[2], ie::INTERFACE_DESCRIPTION),
            "x".repeat(desc_len)
        );
        assert_eq!(opts[3].uint(ie::EXPORTED_MESSAGE_TOTAL_COUNT), Some(11));
        assert_eq!(
            opts[3].uint(ie::EXPORTED_FLOW_RECORD_TOTAL_COUNT),
            Some(222)
        );
        assert_eq!(opts[3].uint(ie::IGNORED_PACKET_TOTAL_COUNT), Some(3333));
    }
}

#[test]
fn unsampled_uses_deterministic_algorithms() {
    let mut enc = Encoder::new(cfg(Version::Ipfix)).unwrap();
    let msgs = decode_all(
        &mut Decoder::new(),
        &encode_all(&mut enc, &[], clock(T0_MS)),
    );
    let s = msgs[0].data_records().next().unwrap();
    assert_eq!(s.uint(ie::SAMPLING_INTERVAL), Some(1));
    assert_eq!(s.uint(ie::SAMPLING_ALGORITHM), Some(1));
    assert_eq!(s.uint(ie::SAMPLING_PACKET_SPACE), Some(0));
    assert_eq!(s.uint(ie::SELECTOR_ALGORITHM), Some(1));
}

#[test]
fn ipfix_sequence_counts_data_records_including_options_data() {
    let mut c = cfg(Version::Ipfix);
    c.max_payload = 400; // several datagrams per call
    let mut enc = Encoder::new(c).unwrap();
    enc.set_interfaces(interfaces());
    let mut dec = Decoder::new();
    let mut expected: u32 = 0;
    let mut t = T0_MS;
    for batch in [0usize, 3, 17, 1, 0, 25] {
        let recs: Vec<_> = (0..batch as u32)
            .map(|i| flow(i, i % 2 == 0, None))
            .collect();
        let dgs = encode_all(&mut enc, &recs, clock(t));
        for m in decode_all(&mut dec, &dgs) {
            assert_eq!(m.sequence, expected);
            expected += m.data_records().count() as u32;
        }
        t += 1000;
    }
    // 1 sampling + 2 interfaces + 1 stats options records on the first call only, plus flows.
    assert_eq!(expected, 4 + 3 + 17 + 1 + 25);
    assert_eq!(enc.data_records_sent(), expected);
}

#[test]
fn v9_sequence_counts_packets_and_count_counts_all_records() {
    let mut c = cfg(Version::NetflowV9);
    c.max_payload = 300;
    let mut enc = Encoder::new(c).unwrap();
    enc.set_interfaces(interfaces());
    let mut dec = Decoder::new();
    let mut expected = 0u32;
    for (k, batch) in [0usize, 5, 12, 0, 2].into_iter().enumerate() {
        let recs: Vec<_> = (0..batch as u32)
            .map(|i| flow(i, i % 3 == 0, None))
            .collect();
        let dgs = encode_all(&mut enc, &recs, clock(T0_MS + k as u64 * 10));
        for (d, m) in dgs.iter().zip(decode_all(&mut dec, &dgs)) {
            check_structure(d, 300);
            assert_eq!(m.sequence, expected);
            assert_eq!(m.count, Some(m.record_count() as u16));
            assert!(m.record_count() > 0);
            expected += 1;
        }
    }
    assert!(expected > 5);
    assert_eq!(enc.packets_sent(), expected);
    // First datagram: 2 templates counted individually.
    let mut enc = Encoder::new(cfg(Version::NetflowV9)).unwrap();
    let dgs = encode_all(&mut enc, &[flow(1, false, None)], clock(T0_MS));
    assert_eq!(dgs.len(), 1);
    let m = Decoder::new().decode(&dgs[0]).unwrap();
    // 2 templates + 3 options templates + sampling + stats options data + 1 flow.
    assert_eq!(m.count, Some(8));
    assert_eq!(m.record_count(), 8);
}

#[test]
fn ipfix_length_field_and_set_lengths() {
    let mut enc = Encoder::new(cfg(Version::Ipfix)).unwrap();
    let recs: Vec<_> = (0..100).map(|i| flow(i, i % 4 == 0, Some(5))).collect();
    let dgs = encode_all(&mut enc, &recs, clock(T0_MS));
    assert!(dgs.len() > 3);
    let mut dec = Decoder::new();
    for d in &dgs {
        check_structure(d, 1400);
        let m = dec.decode(d).unwrap();
        assert_eq!(m.length, Some(d.len() as u16));
        assert_eq!(m.count, None);
    }
}

#[test]
fn no_datagram_exceeds_max_payload() {
    for version in [Version::Ipfix, Version::NetflowV9] {
        for max in [256usize, 300, 512, 577, 1400, 1500, 9000] {
            let mut c = cfg(version);
            c.max_payload = max;
            c.template_refresh_packets = 7;
            let mut enc = Encoder::new(c).unwrap();
            enc.set_interfaces(interfaces());
            let mut dec = Decoder::new();
            let mut sent = Vec::new();
            let mut got = Vec::new();
            for batch in 0..30u32 {
                let recs: Vec<_> = (0..batch * 3)
                    .map(|i| flow(i, (i + batch) % 2 == 0, (i % 5 == 0).then_some(9)))
                    .collect();
                let dgs = encode_all(&mut enc, &recs, clock(T0_MS + 1000 * u64::from(batch)));
                for d in &dgs {
                    check_structure(d, max);
                }
                got.extend(flows_of(&decode_all(&mut dec, &dgs)));
                sent.extend(recs);
            }
            if version == Version::NetflowV9 {
                sent.iter_mut().for_each(|r| r.layer2_segment_id = None);
            }
            assert_eq!(got.len(), sent.len(), "{version:?} max {max}");
            assert!(
                sorted(got) == sorted(sent),
                "{version:?} max {max}: records differ"
            );
        }
    }
}

#[test]
fn template_refresh_by_time() {
    for version in [Version::Ipfix, Version::NetflowV9] {
        let mut c = cfg(version);
        c.template_refresh_ms = 10_000;
        c.template_refresh_packets = 0;
        let mut enc = Encoder::new(c).unwrap();
        let mut dec = Decoder::new();
        let mut templated = |t: u64| {
            let dgs = encode_all(&mut enc, &[flow(1, false, None)], clock(t));
            let msgs = decode_all(&mut dec, &dgs);
            msgs.iter().any(has_templates)
        };
        assert!(templated(T0_MS), "first call");
        assert!(!templated(T0_MS + 5_000));
        assert!(!templated(T0_MS + 9_999));
        assert!(templated(T0_MS + 10_000));
        assert!(!templated(T0_MS + 19_999));
        assert!(templated(T0_MS + 20_000));
    }
}

#[test]
fn template_refresh_by_packet_count() {
    for version in [Version::Ipfix, Version::NetflowV9] {
        let mut c = cfg(version);
        c.template_refresh_ms = 0;
        c.template_refresh_packets = 3;
        c.max_payload = 600; // the whole template block fits in one datagram
        let mut enc = Encoder::new(c).unwrap();
        let mut dec = Decoder::new();
        let mut flags = Vec::new();
        for k in 0..4u64 {
            let recs: Vec<_> = (0..20).map(|i| flow(i, false, None)).collect();
            let dgs = encode_all(&mut enc, &recs, clock(T0_MS + k));
            flags.extend(decode_all(&mut dec, &dgs).iter().map(has_templates));
        }
        assert!(flags.len() >= 12, "{}", flags.len());
        for (i, f) in flags.iter().enumerate() {
            assert_eq!(*f, i % 3 == 0, "{version:?} datagram {i}: {flags:?}");
        }
    }
}

#[test]
fn force_templates_and_nothing_to_send() {
    let mut enc = Encoder::new(cfg(Version::Ipfix)).unwrap();
    assert_eq!(
        encode_all(&mut enc, &[], clock(T0_MS)).len(),
        1,
        "first call sends templates"
    );
    assert!(encode_all(&mut enc, &[], clock(T0_MS + 1)).is_empty());
    enc.force_templates();
    let dgs = encode_all(&mut enc, &[flow(1, true, None)], clock(T0_MS + 2));
    let msgs = decode_all(&mut Decoder::new(), &dgs);
    assert!(has_templates(&msgs[0]));
    // Templates come first: template set, options template set, then data.
    assert!(matches!(msgs[0].sets[0], Set::Templates { .. }));
    assert!(matches!(msgs[0].sets[1], Set::OptionsTemplates { .. }));
    let dgs = encode_all(&mut enc, &[flow(1, true, None)], clock(T0_MS + 3));
    assert!(!has_templates(&Decoder::new().decode(&dgs[0]).unwrap()));
}

#[test]
fn v9_switched_times_wrap_when_flow_predates_exporter_start() {
    let clk = ExportClock {
        unix_ms: T0_MS,
        uptime_ms: 1_000,
    };
    let mut f = flow(1, false, None);
    f.start_ms = T0_MS - 5_000; // 4 s before the exporter started
    f.end_ms = T0_MS - 500;
    assert_eq!(
        v9_switched(f.start_ms, &clk),
        (1u32 << 31).wrapping_mul(2).wrapping_sub(4_000)
    );
    assert_eq!(v9_switched(f.start_ms, &clk), u32::MAX - 3_999);
    assert_eq!(v9_switched(f.end_ms, &clk), 500);
    let mut enc = Encoder::new(cfg(Version::NetflowV9)).unwrap();
    let dgs = encode_all(&mut enc, std::slice::from_ref(&f), clk);
    let msgs = decode_all(&mut Decoder::new(), &dgs);
    let rec = msgs[0].data_records().find(|r| !r.is_options()).unwrap();
    assert_eq!(
        rec.uint(ie::FIRST_SWITCHED),
        Some(u64::from(u32::MAX - 3_999))
    );
    assert_eq!(rec.uint(ie::LAST_SWITCHED), Some(500));
    assert_eq!(msgs[0].sys_uptime_ms, Some(1_000));
    assert_eq!(flows_of(&msgs), vec![f]);
    // Uptime itself past 2^32 ms (49.7 days): header and times wrap consistently.
    let clk = ExportClock {
        unix_ms: T0_MS,
        uptime_ms: (1u64 << 32) + 10,
    };
    let mut g = flow(2, true, None);
    g.start_ms = T0_MS - 20;
    g.end_ms = T0_MS;
    let mut enc = Encoder::new(cfg(Version::NetflowV9)).unwrap();
    let msgs = decode_all(
        &mut Decoder::new(),
        &encode_all(&mut enc, std::slice::from_ref(&g), clk),
    );
    assert_eq!(msgs[0].sys_uptime_ms, Some(10));
    assert_eq!(flows_of(&msgs), vec![g]);
}

#[test]
fn config_errors() {
    let mut c = EncoderConfig::new(Version::Ipfix);
    c.max_payload = 100;
    assert!(matches!(
        Encoder::new(c.clone()),
        Err(ConfigError::MaxPayloadTooSmall { .. })
    ));
    c.max_payload = 70_000;
    assert!(matches!(
        Encoder::new(c.clone()),
        Err(ConfigError::MaxPayloadTooLarge { .. })
    ));
    c.max_payload = 1400;
    c.sampling.interval = 0;
    assert_eq!(
        Encoder::new(c).err(),
        Some(ConfigError::ZeroSamplingInterval)
    );
    let d = EncoderConfig::default();
    assert_eq!(d.max_payload, 1400);
    assert_eq!(d.template_refresh_ms, 60_000);
    assert_eq!(d.template_refresh_packets, 100);
}

#[test]
fn mixed_family_pair_uses_v6_template() {
    let mut f = flow(1, false, None);
    f.dst_addr = "2001:db8::1".parse().unwrap();
    let mut enc = Encoder::new(cfg(Version::Ipfix)).unwrap();
    let msgs = decode_all(
        &mut Decoder::new(),
        &encode_all(&mut enc, std::slice::from_ref(&f), clock(T0_MS)),
    );
    let back = flows_of(&msgs).remove(0);
    assert_eq!(
        back.src_addr,
        "::ffff:10.0.0.1".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(back.dst_addr, f.dst_addr);
}

#[test]
fn interleaved_families_share_one_set_per_template() {
    let mut enc = Encoder::new(cfg(Version::Ipfix)).unwrap();
    let recs: Vec<_> = (0..10).map(|i| flow(i, i % 2 == 0, None)).collect();
    let _ = encode_all(&mut enc, &[], clock(T0_MS)); // templates out of the way
    let dgs = encode_all(&mut enc, &recs, clock(T0_MS + 1000));
    assert_eq!(dgs.len(), 1);
    let mut dec = Decoder::new();
    let mut enc2 = Encoder::new(cfg(Version::Ipfix)).unwrap();
    decode_all(&mut dec, &encode_all(&mut enc2, &[], clock(T0_MS)));
    let m = dec.decode(&dgs[0]).unwrap();
    let ids: Vec<u16> = m
        .sets
        .iter()
        .map(|s| match s {
            Set::Data { template_id, .. } => *template_id,
            other => panic!("{other:?}"),
        })
        .collect();
    // Records are grouped by template, in template order; within a template the input
    // order is kept.
    assert_eq!(ids, [256, 257]);
    let flows = flows_of(&[m]);
    let want: Vec<_> = recs
        .iter()
        .filter(|r| r.src_addr.is_ipv4())
        .chain(recs.iter().filter(|r| r.src_addr.is_ipv6()))
        .cloned()
        .collect();
    assert_eq!(flows, want);
}

/// pmacct's nfacctd (1.7) steps over an options template by a length computed as if the
/// header were v9's with byte counts; with more than one per set it lands inside the next
/// one, calls the set malformed and drops the rest of the datagram. One per set it reads.
#[test]
fn each_options_template_in_a_set_of_its_own() {
    for v in [Version::Ipfix, Version::NetflowV9] {
        let mut enc = Encoder::new(cfg(v)).unwrap();
        enc.set_interfaces(interfaces());
        let dgs = encode_all(&mut enc, &[flow(1, false, None)], clock(T0_MS));
        let m = Decoder::new().decode(&dgs[0]).unwrap();
        let per_set: Vec<usize> = m
            .sets
            .iter()
            .filter_map(|s| match s {
                Set::OptionsTemplates { records, .. } => Some(records.len()),
                _ => None,
            })
            .collect();
        assert_eq!(per_set, [1, 1, 1], "{v:?}");
        let flow_templates = m
            .sets
            .iter()
            .filter(|s| matches!(s, Set::Templates { .. }))
            .count();
        assert_eq!(flow_templates, 1, "{v:?}: flow templates share one set");
    }
}

/// Grouping by template makes every full datagram of a template the same length, so runs
/// of them can go out in one segmented send; without it, mixed families vary the length.
#[test]
fn full_datagrams_of_a_template_have_one_length() {
    for v in [Version::Ipfix, Version::NetflowV9] {
        let mut enc = Encoder::new(cfg(v)).unwrap();
        let mut dec = Decoder::new();
        decode_all(&mut dec, &encode_all(&mut enc, &[], clock(T0_MS)));
        let recs: Vec<_> = (0..2000u32)
            .map(|i| flow(i, (i * 7919) % 13 < 4, None))
            .collect();
        let dgs = encode_all(&mut enc, &recs, clock(T0_MS + 1000));
        let mut lens: Vec<usize> = dgs.iter().map(Vec::len).collect();
        lens.dedup();
        // v4 full, one mixed v4+v6, v6 full, the last v6 (templates may interrupt v9).
        assert!(lens.len() <= 6, "{v:?}: {lens:?}");
        assert_eq!(flows_of(&decode_all(&mut dec, &dgs)).len(), recs.len());
    }
}
