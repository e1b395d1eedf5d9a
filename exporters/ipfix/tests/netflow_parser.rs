//! Independent decoder: the `netflow_parser` crate must parse our datagrams (templates,
//! options templates, data, options data) and read the same field values.

mod common;
use common::*;
use mirrorflow_ipfix::{DataRecord, Decoder, Encoder, ExporterStats, Sampling, Version};
use netflow_parser::variable_versions::ipfix::lookup::IPFixField;
use netflow_parser::variable_versions::{ipfix, v9};
use netflow_parser::{FieldValue, NetflowPacket, NetflowParser};
use std::net::IpAddr;

fn raw(v: &FieldValue) -> Vec<u8> {
    let mut b = Vec::new();
    v.write_be_bytes(&mut b).expect("write_be_bytes");
    b
}

/// Datagrams with templates, all options data, v4 and v6 flows with and without
/// layer2SegmentId, over several calls (templates refreshed by packet count).
fn datagrams(version: Version) -> Vec<Vec<u8>> {
    let mut c = cfg(version);
    c.sampling = Sampling { interval: 100 };
    c.template_refresh_packets = 4;
    let mut enc = Encoder::new(c).unwrap();
    enc.set_interfaces(interfaces());
    enc.set_stats(ExporterStats {
        messages: 5,
        records: 6,
        ignored_packets: 7,
    });
    let mut out = Vec::new();
    for k in 0..5u32 {
        let recs: Vec<_> = (0..25)
            .map(|i| {
                flow(
                    i + 100 * k,
                    (i + k) % 2 == 0,
                    (i % 3 == 0).then_some(0x00ab_cdef),
                )
            })
            .collect();
        enc.encode(&recs, clock(T0_MS + 1000 * u64::from(k)), &mut out);
    }
    out
}

/// Compare our decoder's records with netflow_parser's (id, raw bytes) lists.
/// (IE id, enterprise, raw value) of each field of a record.
type RawRecord = Vec<(u16, Option<u32>, Vec<u8>)>;

fn compare(ours: &[&DataRecord], theirs: &[RawRecord], ctx: &str) {
    assert_eq!(ours.len(), theirs.len(), "{ctx}: record count");
    for (o, t) in ours.iter().zip(theirs) {
        let o: Vec<_> = o
            .fields
            .iter()
            .map(|f| (f.ie_id, f.enterprise, f.value.clone()))
            .collect();
        assert_eq!(&o, t, "{ctx}");
    }
}

#[test]
fn ipfix_parsed_by_netflow_parser() {
    let dgs = datagrams(Version::Ipfix);
    let mut parser = NetflowParser::default();
    let mut dec = Decoder::new();
    let mut flows_checked = 0;
    let mut options_checked = 0;
    let mut semantic_hits = 0;
    for (i, d) in dgs.iter().enumerate() {
        let ctx = format!("datagram {i}");
        let ours = dec.decode(d).unwrap();
        let res = parser.parse_bytes(d);
        assert!(res.error.is_none(), "{ctx}: {:?}", res.error);
        assert_eq!(res.packets.len(), 1, "{ctx}");
        let NetflowPacket::IPFix(p) = &res.packets[0] else {
            panic!("{ctx}: not IPFIX")
        };
        assert_eq!(p.header.length as usize, d.len());
        assert_eq!(p.header.sequence_number, ours.sequence);
        assert_eq!(p.header.observation_domain_id, 0x00c0_ffee);
        let mut theirs = Vec::new();
        let mut semantic = Vec::new();
        for fs in &p.flowsets {
            let recs: Vec<&Vec<(IPFixField, FieldValue)>> = match &fs.body {
                ipfix::FlowSetBody::Data(data) => data.fields.iter().collect(),
                ipfix::FlowSetBody::OptionsData(o) => {
                    options_checked += o.fields.len();
                    o.fields.iter().collect()
                }
                ipfix::FlowSetBody::NoTemplate(n) => {
                    panic!("{ctx}: netflow_parser lacks template {}", n.template_id)
                }
                _ => continue,
            };
            for r in recs {
                semantic.push(r.clone());
                theirs.push(r.iter().map(|(_, v)| raw(v)).collect::<Vec<_>>());
            }
        }
        let ours_recs: Vec<&DataRecord> = ours.data_records().collect();
        assert_eq!(ours_recs.len(), theirs.len(), "{ctx}: record count");
        for ((o, t), s) in ours_recs.iter().zip(&theirs).zip(&semantic) {
            assert_eq!(o.fields.len(), t.len(), "{ctx}: field count");
            for ((of, tv), (tf, _)) in o.fields.iter().zip(t).zip(s) {
                assert_eq!(
                    *tf,
                    IPFixField::new(of.ie_id, of.enterprise),
                    "{ctx}: field id"
                );
                assert_eq!(&of.value, tv, "{ctx}: value of IE {}", of.ie_id);
            }
        }
        // Semantic spot check of the flows against the originals.
        for (o, s) in ours_recs.iter().zip(&semantic) {
            if o.is_options() {
                continue;
            }
            let f = o.to_flow_record(ours.time_base()).unwrap();
            for (field, value) in s {
                match (field, value) {
                    (IPFixField::IANA(n), FieldValue::Ip4Addr(a))
                        if format!("{n:?}") == "SourceIpv4address" =>
                    {
                        assert_eq!(IpAddr::from(*a), f.src_addr);
                        semantic_hits += 1;
                    }
                    (IPFixField::IANA(n), FieldValue::Ip6Addr(a))
                        if format!("{n:?}") == "DestinationIpv6address" =>
                    {
                        assert_eq!(IpAddr::from(*a), f.dst_addr);
                        semantic_hits += 1;
                    }
                    _ => {}
                }
            }
            flows_checked += 1;
        }
    }
    assert_eq!(flows_checked, 125);
    assert_eq!(semantic_hits, 125, "address spot checks");
    assert!(options_checked >= 4, "{options_checked}");
}

#[test]
fn v9_parsed_by_netflow_parser() {
    let dgs = datagrams(Version::NetflowV9);
    let mut parser = NetflowParser::default();
    let mut dec = Decoder::new();
    let mut flows_checked = 0;
    let mut options_checked = 0;
    for (i, d) in dgs.iter().enumerate() {
        let ctx = format!("datagram {i}");
        let ours = dec.decode(d).unwrap();
        let res = parser.parse_bytes(d);
        assert!(res.error.is_none(), "{ctx}: {:?}", res.error);
        assert_eq!(res.packets.len(), 1, "{ctx}");
        let NetflowPacket::V9(p) = &res.packets[0] else {
            panic!("{ctx}: not v9")
        };
        assert_eq!(Some(p.header.count), ours.count);
        assert_eq!(p.header.sequence_number, i as u32);
        assert_eq!(p.header.source_id, 0x00c0_ffee);
        assert_eq!(Some(p.header.sys_up_time), ours.sys_uptime_ms);
        let mut theirs = Vec::new();
        let mut theirs_opts = Vec::new();
        let mut records = 0;
        for fs in &p.flowsets {
            match &fs.body {
                v9::FlowSetBody::Template(t) => records += t.templates.len(),
                v9::FlowSetBody::OptionsTemplate(t) => records += t.templates.len(),
                v9::FlowSetBody::Data(data) => {
                    for r in &data.fields {
                        theirs.push(
                            r.iter()
                                .map(|(f, v)| (u16::from(*f), None, raw(v)))
                                .collect::<Vec<_>>(),
                        );
                        flows_checked += 1;
                    }
                }
                v9::FlowSetBody::OptionsData(o) => {
                    // Scope values are typed by netflow_parser; compare the option fields.
                    for r in &o.fields {
                        theirs_opts.push(
                            r.options_fields
                                .iter()
                                .map(|(f, v)| (u16::from(*f), raw(v)))
                                .collect::<Vec<_>>(),
                        );
                        options_checked += 1;
                    }
                }
                v9::FlowSetBody::NoTemplate(n) => {
                    panic!("{ctx}: netflow_parser lacks template {}", n.template_id)
                }
                _ => {}
            }
        }
        records += theirs.len() + theirs_opts.len();
        let ours_opts: Vec<Vec<(u16, Vec<u8>)>> = ours
            .data_records()
            .filter(|r| r.is_options())
            .map(|r| {
                r.fields
                    .iter()
                    .filter(|f| !f.scope)
                    .map(|f| (f.ie_id, f.value.clone()))
                    .collect()
            })
            .collect();
        assert_eq!(ours_opts, theirs_opts, "{ctx}: options data");
        assert_eq!(
            Some(records as u16),
            ours.count,
            "{ctx}: records seen by netflow_parser"
        );
        let ours_flows: Vec<&DataRecord> =
            ours.data_records().filter(|r| !r.is_options()).collect();
        compare(&ours_flows, &theirs, &ctx);
    }
    assert_eq!(flows_checked, 125);
    assert!(options_checked >= 4, "{options_checked}");
}
