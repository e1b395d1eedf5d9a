//! Real NetFlow v9 / IPFIX captures parse completely. The UDP payloads are pulled out
//! with a tiny classic-pcap reader (Ethernet and Linux SLL, micro- or nanosecond
//! magic) plus etherparse. A missing capture fails the test.

use mirrorflow_ipfix::{Decoder, Message, Set, Version};
use std::path::PathBuf;

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/pcaps");

/// UDP payloads of every packet of a classic pcap file.
fn udp_payloads(name: &str) -> Vec<Vec<u8>> {
    let path = PathBuf::from(PCAPS).join(name);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(data.len() >= 24, "{name}: short file");
    let magic = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let le = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        m => panic!("{name}: not a classic pcap (magic {m:#x})"),
    };
    let u32_at = |o: usize| {
        let b: [u8; 4] = data[o..o + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let linktype = u32_at(20);
    let mut pos = 24;
    let mut out = Vec::new();
    while pos + 16 <= data.len() {
        let caplen = u32_at(pos + 8) as usize;
        let frame = &data[pos + 16..pos + 16 + caplen];
        pos += 16 + caplen;
        let sliced = match linktype {
            1 => etherparse::SlicedPacket::from_ethernet(frame),
            113 => etherparse::SlicedPacket::from_ip(&frame[16..]),
            l => panic!("{name}: unsupported linktype {l}"),
        }
        .unwrap_or_else(|e| panic!("{name}: frame {}: {e}", out.len() + 1));
        if let Some(etherparse::TransportSlice::Udp(udp)) = sliced.transport {
            out.push(udp.payload().to_vec());
        }
    }
    assert_eq!(pos, data.len(), "{name}: trailing bytes in the capture");
    out
}

#[derive(Debug, Default)]
struct Summary {
    messages: usize,
    templates: usize,
    options_templates: usize,
    data_records: usize,
    options_records: usize,
    skipped_sets: usize,
    count_checked: usize,
}

/// Decode every datagram; check v9 `count` and IPFIX length where the template is known.
fn check(name: &str, version: Version) -> (Summary, Vec<Message>) {
    let payloads = udp_payloads(name);
    assert!(!payloads.is_empty(), "{name}: no UDP payloads");
    let mut dec = Decoder::new();
    let mut s = Summary::default();
    let mut msgs = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        let m = dec
            .decode(p)
            .unwrap_or_else(|e| panic!("{name}: datagram {}: {e}", i + 1));
        assert_eq!(m.version, version, "{name}: datagram {}", i + 1);
        if version == Version::Ipfix {
            assert_eq!(m.length, Some(p.len() as u16), "{name}: datagram {}", i + 1);
        }
        s.messages += 1;
        s.skipped_sets += m.skipped_sets();
        for set in &m.sets {
            match set {
                Set::Templates { records, .. } => s.templates += records.len(),
                Set::OptionsTemplates { records, .. } => s.options_templates += records.len(),
                Set::Data { records, .. } => {
                    for r in records {
                        if r.is_options() {
                            s.options_records += 1;
                        } else {
                            s.data_records += 1;
                        }
                    }
                }
                Set::Skipped { .. } => {}
            }
        }
        if let (Some(count), 0) = (m.count, m.skipped_sets()) {
            assert_eq!(
                count as usize,
                m.record_count(),
                "{name}: datagram {}: v9 header count vs records",
                i + 1
            );
            s.count_checked += 1;
        }
        msgs.push(m);
    }
    assert_eq!(dec.skipped_sets() as usize, s.skipped_sets);
    eprintln!("{name}: {s:?}");
    (s, msgs)
}

#[test]
fn pmacct_nfv9_cisco_cust_primitives() {
    let (s, msgs) = check(
        "pmacct__101-NFv9-CISCO-cust_primitives_traffic-00.pcap",
        Version::NetflowV9,
    );
    assert_eq!(s.messages, 40);
    assert!(s.templates > 0 && s.data_records > 0);
    assert!(s.count_checked > 0);
    // Some flows convert with the sysUptime time base.
    assert!(msgs
        .iter()
        .flat_map(|m| m.flow_records())
        .any(|r| r.is_ok()));
}

#[test]
fn scapy_netflowv9() {
    let (s, _) = check("scapy__netflowv9.pcap", Version::NetflowV9);
    assert_eq!(s.messages, 5);
    assert!(s.templates > 0 && s.data_records > 0);
    assert!(s.count_checked > 0);
}

#[test]
fn ndpi_netflowv9_data_without_templates_is_skipped() {
    let (s, _) = check("ndpi__netflowv9.pcap", Version::NetflowV9);
    assert_eq!(s.messages, 10);
    assert_eq!(s.templates, 0);
    assert_eq!(s.data_records, 0);
    assert!(s.skipped_sets >= 10, "{s:?}");
}

#[test]
fn pmacct_ipfix_ipv6_sampling_option() {
    let (s, msgs) = check(
        "pmacct__104-IPFIXv10-IPv6-CISCO-sampling_option_traffic-00.pcap",
        Version::Ipfix,
    );
    assert!(s.options_templates > 0 && s.options_records > 0, "{s:?}");
    assert!(s.data_records > 0);
    assert_eq!(s.skipped_sets, 0);
    let _ = msgs;
}

#[test]
fn pmacct_ipfix_options_map_reassignment_sll() {
    let (s, _) = check(
        "pmacct__112-IPFIXv10-CISCO-options-map-reassignment_traffic-00.pcap",
        Version::Ipfix,
    );
    assert_eq!(s.messages, 21);
    assert!(s.options_templates > 0 && s.options_records > 0, "{s:?}");
}

#[test]
fn scapy_ipfix() {
    let (s, _) = check("scapy__ipfix.pcap", Version::Ipfix);
    assert_eq!(s.messages, 3);
    assert!(s.templates > 0 && s.data_records > 0, "{s:?}");
}

#[test]
fn ndpi_netflow_fritz() {
    // One message holding only a template set and options templates.
    let (s, _) = check("ndpi__netflow-fritz.pcap", Version::Ipfix);
    assert_eq!(s.messages, 1);
    assert_eq!(
        (s.templates, s.options_templates, s.data_records),
        (1, 2, 0),
        "{s:?}"
    );
}

#[test]
fn pktvisor_ipfix_sll() {
    let (s, _) = check("pktvisor__ipfix.pcap", Version::Ipfix);
    assert_eq!(s.messages, 43);
    assert!(s.templates > 0 && s.data_records > 0, "{s:?}");
}

#[test]
fn missing_capture_fails() {
    let r = std::panic::catch_unwind(|| udp_payloads("no-such-capture.pcap"));
    assert!(r.is_err());
}
