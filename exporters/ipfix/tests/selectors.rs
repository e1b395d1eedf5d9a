//! Per-record sampling (`FlowRecord::sampling`): selector templates 263–266, the selector
//! options template 267, their announcement and refresh, and the cap on announced rates.
//! Checked through the crate's own decoder, an independent structural walk of every
//! datagram and the `netflow_parser` crate.

mod common;
use common::*;
use mirrorflow_ipfix::encoder::MAX_SELECTORS;
use mirrorflow_ipfix::templates::{self, FlowShape};
use mirrorflow_ipfix::{
    ie, DataRecord, Decoder, Encoder, FlowRecord, Message, Sampling, Set, Version,
};
use netflow_parser::{NetflowPacket, NetflowParser};
use std::collections::HashSet;

const VERSIONS: [Version; 2] = [Version::Ipfix, Version::NetflowV9];

fn sampled(i: u32, v6: bool, l2: Option<u64>, rate: Option<u32>) -> FlowRecord {
    FlowRecord {
        sampling: rate,
        ..flow(i, v6, l2)
    }
}

/// A mix: plain records, and records at 1 in 100 and 1 in 10, both families, with and
/// without layer2SegmentId.
fn mixed(n: u32) -> Vec<FlowRecord> {
    (0..n)
        .map(|i| {
            let rate = [None, Some(100), Some(10)][(i % 3) as usize];
            sampled(i, i % 4 < 2, (i % 5 == 0).then_some(77), rate)
        })
        .collect()
}

fn flows_of(msgs: &[Message]) -> Vec<FlowRecord> {
    msgs.iter()
        .flat_map(|m| m.flow_records())
        .map(|r| r.expect("flow record"))
        .collect()
}

fn without_l2(v: Version, mut recs: Vec<FlowRecord>) -> Vec<FlowRecord> {
    if v == Version::NetflowV9 {
        recs.iter_mut().for_each(|r| r.layer2_segment_id = None);
    }
    recs
}

fn flow_template_ids(m: &Message) -> Vec<u16> {
    m.sets
        .iter()
        .filter_map(|s| match s {
            Set::Data {
                template_id,
                records,
                ..
            } if !records.iter().any(DataRecord::is_options) => Some(*template_id),
            _ => None,
        })
        .collect()
}

#[test]
fn sampled_records_round_trip_with_their_rate_announced() {
    for v in VERSIONS {
        let mut enc = Encoder::new(cfg(v)).unwrap();
        let mut dec = Decoder::new();
        let recs = mixed(60);
        let dgs = encode_all(&mut enc, &recs, clock(T0_MS));
        for d in &dgs {
            check_structure(d, 1400);
        }
        let msgs = decode_all(&mut dec, &dgs);
        assert_eq!(dec.skipped_sets(), 0, "{v:?}");
        assert_eq!(
            sorted(flows_of(&msgs)),
            sorted(without_l2(v, recs)),
            "{v:?}"
        );
        let announced: Vec<(u64, u32)> = msgs.iter().flat_map(|m| m.selector_intervals()).collect();
        // In order of first use in the datagrams, where records are grouped by template: the
        // first rate-10 record is IPv4 (template 263), the first rate-100 one IPv6 (264).
        assert_eq!(
            announced,
            [(10, 10), (100, 100)],
            "{v:?}: in order of first use"
        );
        assert_eq!(enc.selectors(), [10, 100]);
        let ids: HashSet<u16> = msgs.iter().flat_map(flow_template_ids).collect();
        let want: HashSet<u16> = match v {
            Version::Ipfix => (256..=259).chain(263..=266).collect(),
            Version::NetflowV9 => [256, 257, 263, 264].into(),
        };
        assert_eq!(ids, want, "{v:?}");
    }
}

#[test]
fn a_rate_is_announced_before_its_first_record() {
    for v in VERSIONS {
        let mut c = cfg(v);
        c.max_payload = 400; // several datagrams per call
        c.template_refresh_packets = 0;
        c.template_refresh_ms = 0;
        let mut enc = Encoder::new(c).unwrap();
        let mut dec = Decoder::new();
        // Plain records first (no selector templates yet), then new rates one by one,
        // each after flow data in the same call.
        let mut batches = vec![(0..5).map(|i| flow(i, false, None)).collect::<Vec<_>>()];
        for (k, rate) in [7u32, 1000, 3, 7, 65_536, 1 << 31].into_iter().enumerate() {
            let k = k as u32;
            batches.push(vec![
                flow(100 + k, true, None),
                sampled(200 + k, false, None, Some(rate)),
                sampled(300 + k, true, Some(9), Some(rate)),
            ]);
        }
        let mut known: HashSet<u64> = HashSet::new();
        for (k, batch) in batches.iter().enumerate() {
            let dgs = encode_all(&mut enc, batch, clock(T0_MS + k as u64));
            for d in &dgs {
                check_structure(d, 400);
                // In wire order: options records before the flow records that use them.
                let m = dec.decode(d).unwrap();
                for r in m.data_records() {
                    if let Some((id, n)) = r.selector_interval() {
                        assert_eq!(id, u64::from(n));
                        known.insert(id);
                    } else if !r.is_options() {
                        let f = r.to_flow_record(m.time_base()).unwrap();
                        if let Some(n) = f.sampling {
                            assert!(known.contains(&u64::from(n)), "{v:?}: {n} not announced");
                        }
                    }
                }
            }
            assert_eq!(
                dec.skipped_sets(),
                0,
                "{v:?} batch {k}: data before its template"
            );
        }
        assert_eq!(enc.selectors(), [7, 1000, 3, 65_536, 1 << 31]);
    }
}

#[test]
fn plain_streams_never_carry_selector_templates() {
    for v in VERSIONS {
        let mut enc = Encoder::new(cfg(v)).unwrap();
        let recs: Vec<_> = (0..30).map(|i| flow(i, i % 2 == 0, None)).collect();
        let msgs = decode_all(
            &mut Decoder::new(),
            &encode_all(&mut enc, &recs, clock(T0_MS)),
        );
        let ids: Vec<u16> = msgs
            .iter()
            .flat_map(|m| m.templates().map(|t| t.template_id))
            .collect();
        assert!(
            ids.iter().all(|&id| id < templates::FLOW_V4_SEL),
            "{v:?}: {ids:?}"
        );
        assert!(enc.selectors().is_empty());
    }
}

#[test]
fn refresh_repeats_selector_templates_and_every_rate() {
    for v in VERSIONS {
        let mut c = cfg(v);
        c.template_refresh_ms = 10_000;
        c.template_refresh_packets = 0;
        let mut enc = Encoder::new(c).unwrap();
        encode_all(&mut enc, &mixed(9), clock(T0_MS));
        // Only plain records from now on; the refresh still describes every rate seen, to a
        // collector that starts listening now.
        let plain = [flow(1, false, None)];
        assert!(!has_templates(
            &Decoder::new()
                .decode(&encode_all(&mut enc, &plain, clock(T0_MS + 1))[0])
                .unwrap()
        ));
        let mut late = Decoder::new();
        let msgs = decode_all(
            &mut late,
            &encode_all(&mut enc, &plain, clock(T0_MS + 10_000)),
        );
        let ids: HashSet<u16> = msgs
            .iter()
            .flat_map(|m| m.templates().map(|t| t.template_id))
            .collect();
        for id in [263, 264, 267] {
            assert!(ids.contains(&id), "{v:?}: template {id} not refreshed");
        }
        let rates: Vec<_> = msgs.iter().flat_map(|m| m.selector_intervals()).collect();
        assert_eq!(rates, [(10, 10), (100, 100)], "{v:?}");
        // The late collector can read sampled records at once.
        let dgs = encode_all(
            &mut enc,
            &[sampled(5, true, None, Some(10))],
            clock(T0_MS + 10_001),
        );
        let m = late.decode(&dgs[0]).unwrap();
        assert_eq!(m.skipped_sets(), 0);
        assert_eq!(flows_of(&[m])[0].sampling, Some(10));
        // force_templates (new TCP connection, template loss) does the same.
        enc.force_templates();
        let msgs = decode_all(
            &mut Decoder::new(),
            &encode_all(&mut enc, &[], clock(T0_MS + 10_002)),
        );
        let rates: Vec<_> = msgs.iter().flat_map(|m| m.selector_intervals()).collect();
        assert_eq!(rates, [(10, 10), (100, 100)], "{v:?}");
    }
}

#[test]
fn each_selector_record_in_a_set_of_its_own() {
    // nfdump reads only the first record of a sampler options set.
    for v in VERSIONS {
        let mut enc = Encoder::new(cfg(v)).unwrap();
        let recs: Vec<_> = (1..=5)
            .map(|r| sampled(r, false, None, Some(r * 10)))
            .collect();
        encode_all(&mut enc, &recs, clock(T0_MS));
        enc.force_templates();
        let msgs = decode_all(
            &mut Decoder::new(),
            &encode_all(&mut enc, &[], clock(T0_MS + 1)),
        );
        let per_set: Vec<usize> = msgs[0]
            .sets
            .iter()
            .filter_map(|s| match s {
                Set::Data {
                    template_id: templates::OPTIONS_SELECTOR,
                    records,
                    ..
                } => Some(records.len()),
                _ => None,
            })
            .collect();
        assert_eq!(per_set, [1; 5], "{v:?}");
    }
}

#[test]
fn rates_over_the_cap_are_sent_and_counted() {
    for v in VERSIONS {
        let mut c = cfg(v);
        c.max_payload = 512;
        c.template_refresh_packets = 5;
        let mut enc = Encoder::new(c).unwrap();
        let mut dec = Decoder::new();
        let extra = 6u32;
        let recs: Vec<_> = (0..MAX_SELECTORS as u32 + extra)
            .map(|i| sampled(i, i % 2 == 0, None, Some(2 + i)))
            .collect();
        let mut got = Vec::new();
        for k in 0..3u64 {
            let dgs = encode_all(&mut enc, &recs, clock(T0_MS + 1000 * k));
            for d in &dgs {
                check_structure(d, 512);
            }
            got.extend(flows_of(&decode_all(&mut dec, &dgs)));
        }
        assert_eq!(enc.selectors().len(), MAX_SELECTORS);
        assert_eq!(enc.selectors_over_cap(), 3 * u64::from(extra), "{v:?}");
        // Every record still arrives, with its rate as selector id.
        let want: Vec<_> = (0..3).flat_map(|_| recs.clone()).collect();
        assert!(sorted(got) == sorted(want), "{v:?}: records differ");
        assert_eq!(dec.skipped_sets(), 0);
    }
}

#[test]
fn zero_rate_is_sent_as_unsampled() {
    let mut enc = Encoder::new(cfg(Version::Ipfix)).unwrap();
    let msgs = decode_all(
        &mut Decoder::new(),
        &encode_all(&mut enc, &[sampled(1, false, None, Some(0))], clock(T0_MS)),
    );
    assert_eq!(flows_of(&msgs)[0].sampling, Some(1));
    let sel = msgs[0]
        .data_records()
        .find(|r| r.selector_interval().is_some())
        .unwrap();
    assert_eq!(sel.uint(ie::SAMPLING_ALGORITHM), Some(1), "deterministic");
    assert_eq!(sel.uint(ie::SELECTOR_ALGORITHM), Some(1));
    assert_eq!(sel.uint(ie::SAMPLING_PACKET_SPACE), Some(0));
}

#[test]
fn ipfix_sequence_counts_selector_options_records() {
    let mut c = cfg(Version::Ipfix);
    c.max_payload = 300;
    let mut enc = Encoder::new(c).unwrap();
    let mut dec = Decoder::new();
    let mut expected = 0u32;
    for k in 0..4u64 {
        for m in decode_all(
            &mut dec,
            &encode_all(&mut enc, &mixed(20), clock(T0_MS + k)),
        ) {
            assert_eq!(m.sequence, expected);
            expected += m.data_records().count() as u32;
        }
    }
    assert_eq!(enc.data_records_sent(), expected);
}

#[test]
fn selector_template_layouts() {
    let ids = |t: &mirrorflow_ipfix::TemplateRecord| -> Vec<(u16, u16)> {
        t.fields.iter().map(|f| (f.id, f.length)).collect()
    };
    let shape = FlowShape {
        v6: false,
        l2: true,
        selector: true,
    };
    let t = templates::flow_template_of(Version::Ipfix, shape);
    assert_eq!(t.template_id, 265);
    assert_eq!(ids(&t)[22..], [(351, 8), (302, 8)]);
    let t = templates::flow_template_of(Version::NetflowV9, shape);
    assert_eq!(t.template_id, 263, "v9 leaves layer2SegmentId out");
    assert_eq!(ids(&t)[21..], [(60, 1), (48, 4)]);
    let o = templates::selector_template(Version::Ipfix);
    assert_eq!((o.template_id, o.scope_field_count), (267, 1));
    assert_eq!(
        ids(&o),
        [(302, 8), (34, 4), (35, 1), (305, 4), (306, 4), (304, 2)]
    );
    let o = templates::selector_template(Version::NetflowV9);
    assert_eq!(ids(&o), [(1, 4), (48, 4), (49, 1), (50, 4)]);
    // The record sizes the README states.
    let len = |v, shape| -> usize {
        templates::flow_fields_of(v, shape)
            .iter()
            .map(|f| usize::from(f.length))
            .sum()
    };
    let v4 = FlowShape {
        selector: true,
        ..FlowShape::default()
    };
    assert_eq!(len(Version::Ipfix, v4), 77 + 8);
    assert_eq!(len(Version::NetflowV9, v4), 68 + 4);
}

#[test]
fn netflow_parser_reads_selector_templates_and_options() {
    for v in VERSIONS {
        let mut c = cfg(v);
        c.sampling = Sampling { interval: 4 };
        c.template_refresh_packets = 3;
        let mut enc = Encoder::new(c).unwrap();
        let mut parser = NetflowParser::default();
        let mut dec = Decoder::new();
        let (mut ours, mut theirs) = (0, 0);
        for k in 0..4u64 {
            for d in encode_all(&mut enc, &mixed(40), clock(T0_MS + 1000 * k)) {
                ours += dec.decode(&d).unwrap().data_records().count();
                let res = parser.parse_bytes(&d);
                assert!(res.error.is_none(), "{v:?}: {:?}", res.error);
                theirs += match &res.packets[0] {
                    NetflowPacket::IPFix(p) => p
                        .flowsets
                        .iter()
                        .map(|fs| match &fs.body {
                            netflow_parser::variable_versions::ipfix::FlowSetBody::Data(d) => {
                                d.fields.len()
                            }
                            netflow_parser::variable_versions::ipfix::FlowSetBody::OptionsData(
                                o,
                            ) => o.fields.len(),
                            netflow_parser::variable_versions::ipfix::FlowSetBody::NoTemplate(
                                n,
                            ) => panic!("no template {}", n.template_id),
                            _ => 0,
                        })
                        .sum::<usize>(),
                    NetflowPacket::V9(p) => p
                        .flowsets
                        .iter()
                        .map(|fs| match &fs.body {
                            netflow_parser::variable_versions::v9::FlowSetBody::Data(d) => {
                                d.fields.len()
                            }
                            netflow_parser::variable_versions::v9::FlowSetBody::OptionsData(o) => {
                                o.fields.len()
                            }
                            netflow_parser::variable_versions::v9::FlowSetBody::NoTemplate(n) => {
                                panic!("no template {}", n.template_id)
                            }
                            _ => 0,
                        })
                        .sum::<usize>(),
                    other => panic!("{other:?}"),
                };
            }
        }
        assert_eq!(ours, theirs, "{v:?}: data records");
    }
}
