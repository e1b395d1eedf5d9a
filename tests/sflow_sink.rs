//! The sFlow sink driven directly: every datagram it sends to a UDP socket on 127.0.0.1 is
//! decoded by `sflow-parser` (an independent sFlow v5 decoder) and compared, field by
//! field, with the packet samples and port counters that were fed in.

#[path = "../exporters/sflow/tests/common/mod.rs"]
mod sflow_parser_common;

use std::net::{IpAddr, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

use mirrorflow::decode::{linktype, FrameInfo};
use mirrorflow::export::sflow::PortSource;
use mirrorflow::export::{CounterSnapshot, SflowConfig, SflowSink, Sink};
use mirrorflow::sample::{PacketSample, PortCounters, PortTable, OTHER_PORT};
use mirrorflow_sflow::{
    CounterRecord, DataSource, DatagramRepr, EthernetCounters, ExtendedSwitch, FlowRecord,
    GenericInterfaceCounters, Interface, PortName, Sample,
};
use proptest::prelude::*;
use sflow_parser_common::decode_with_sflow_parser;

const AGENT: &str = "192.0.2.7";

/// A UDP socket on 127.0.0.1 read by a thread; datagrams arrive on a channel.
struct Collector {
    port: u16,
    rx: mpsc::Receiver<Vec<u8>>,
}

impl Collector {
    fn start() -> Collector {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while let Ok(n) = sock.recv(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Collector { port, rx }
    }

    /// The next `n` datagrams, decoded by sflow-parser (each must fill its datagram).
    fn take(&self, n: u64) -> Vec<DatagramRepr> {
        (0..n)
            .map(|i| {
                let d = self
                    .rx
                    .recv_timeout(Duration::from_secs(10))
                    .unwrap_or_else(|e| panic!("datagram {i} of {n}: {e}"));
                assert!(d.len() <= 1400, "{} bytes", d.len());
                decode_with_sflow_parser(&d)
            })
            .collect()
    }

    fn sink(&self, ports: PortSource, polling_secs: u64) -> SflowSink {
        SflowSink::new(SflowConfig {
            agent: Some(AGENT.parse().unwrap()),
            sub_agent_id: 3,
            polling_secs,
            export_rate: 1_000_000,
            ..SflowConfig::new("127.0.0.1", self.port, ports)
        })
    }
}

/// Datagrams the sink has sent so far.
fn sent(sink: &SflowSink) -> u64 {
    let c = sink.stats();
    assert_eq!((c.udp.send_errors, c.udp.resolve_errors), (0, 0), "{c:?}");
    c.udp.datagrams
}

/// What a collector must see for a sample, derived from the sFlow v5 rules directly.
fn expected_records(s: &PacketSample) -> Vec<FlowRecord> {
    let mut v = Vec::new();
    let proto_of = |b: Option<&u8>| match b.map(|b| b >> 4) {
        Some(4) => Some(11),
        Some(6) => Some(12),
        _ => None,
    };
    let header = match s.linktype {
        linktype::ETHERNET => Some((1, s.frame.wire_len + 4, 4, 0)),
        linktype::RAW => proto_of(s.header.first()).map(|p| (p, s.frame.wire_len, 0, 0)),
        linktype::LINUX_SLL => match s.header.get(14..16) {
            Some([0x08, 0x00]) => Some((11, s.frame.wire_len, 16, 16)),
            Some([0x86, 0xdd]) => Some((12, s.frame.wire_len, 16, 16)),
            _ => None,
        },
        _ => None,
    };
    if let Some((protocol, frame_length, stripped, skip)) = header {
        v.push(FlowRecord::SampledHeader(mirrorflow_sflow::SampledHeader {
            protocol,
            frame_length,
            stripped,
            header: s.header[skip.min(s.header.len())..].to_vec(),
        }));
    }
    v.push(FlowRecord::ExtendedSwitch(ExtendedSwitch {
        src_vlan: u32::from(s.vlan_id),
        src_priority: u32::from(s.vlan_pcp),
        dst_vlan: u32::from(s.vlan_id),
        dst_priority: u32::from(s.vlan_pcp),
    }));
    v
}

fn arb_sample() -> impl Strategy<Value = PacketSample> {
    let link = prop_oneof![
        Just(linktype::ETHERNET),
        Just(linktype::RAW),
        Just(linktype::LINUX_SLL),
        Just(147u32),
    ];
    (
        link,
        proptest::collection::vec(any::<u8>(), 0..200),
        0u32..20_000,
        (0u16..4096, 0u8..8),
        (1u32..0x3fff_ffff, 0u32..0x3fff_ffff, 1u32..0x0100_0000),
        (1u32..100_000, any::<u32>(), any::<u32>(), any::<u32>()),
        0u64..120_000_000_000,
    )
        .prop_map(
            |(lt, mut header, extra, (vlan, pcp), (inp, out, src), (rate, pool, seq, drops), t)| {
                if lt == linktype::LINUX_SLL && header.len() >= 16 && pool % 3 == 0 {
                    header[14..16].copy_from_slice(&[0x86, 0xdd]);
                }
                header.truncate(128);
                PacketSample {
                    frame: FrameInfo {
                        ts_ns: 1_700_000_000_000_000_000 + t,
                        wire_len: header.len() as u32 + extra,
                        in_if: 0,
                    },
                    linktype: lt,
                    header,
                    vlan_id: vlan,
                    vlan_pcp: pcp,
                    tunnel_id: None,
                    in_port: inp,
                    out_port: out,
                    sampling_rate: rate,
                    sample_pool: pool,
                    sequence: seq,
                    drops,
                    source_index: src,
                }
            },
        )
}

fn flow_samples(datagrams: &[DatagramRepr]) -> Vec<mirrorflow_sflow::FlowSampleRepr> {
    datagrams
        .iter()
        .flat_map(|d| d.samples.iter())
        .map(|s| match s {
            Sample::Flow(f) => f.clone(),
            other => panic!("not a flow sample: {other:?}"),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every field of every flow sample, and the datagram headers, as fed in.
    #[test]
    fn flow_samples_carry_what_was_sampled(
        batches in proptest::collection::vec(proptest::collection::vec(arb_sample(), 1..40), 1..4)
    ) {
        let collector = Collector::start();
        let mut sink = collector.sink(PortSource::File("t.pcap".into()), 20);
        let mut first_ts = None;
        let mut latest = 0;
        let mut next_seq = 1;
        for batch in &batches {
            let before = sent(&sink);
            sink.samples(batch).unwrap();
            let datagrams = collector.take(sent(&sink) - before);
            for s in batch {
                first_ts.get_or_insert(s.frame.ts_ns);
                latest = latest.max(s.frame.ts_ns);
            }
            let uptime = ((latest - first_ts.unwrap()) / 1_000_000) as u32;
            for d in &datagrams {
                prop_assert_eq!(d.agent, AGENT.parse::<IpAddr>().unwrap());
                prop_assert_eq!((d.sub_agent_id, d.sequence_number), (3, next_seq));
                prop_assert_eq!(d.uptime_ms, uptime);
                next_seq += 1;
            }
            let got = flow_samples(&datagrams);
            prop_assert_eq!(got.len(), batch.len());
            for (f, s) in got.iter().zip(batch) {
                prop_assert_eq!(f.sequence_number, s.sequence);
                prop_assert_eq!(f.source_id, DataSource::if_index(s.source_index));
                prop_assert_eq!(f.is_expanded(), s.source_index > 0x00ff_ffff);
                prop_assert_eq!(
                    (f.sampling_rate, f.sample_pool, f.drops),
                    (s.sampling_rate, s.sample_pool, s.drops)
                );
                prop_assert_eq!(f.input, Interface::Single(s.in_port));
                prop_assert_eq!(f.output, Interface::Single(s.out_port));
                prop_assert_eq!(&f.records, &expected_records(s));
            }
        }
        let c = sink.stats();
        prop_assert_eq!(c.flow_samples, batches.iter().map(Vec::len).sum::<usize>() as u64);
        prop_assert!(sink.finish().is_ok());
    }
}

/// Ethernet / IPv4 / UDP 4789 / VXLAN with VNI 5001, then an inner frame.
fn vxlan_frame() -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend([
        0x45, 0, 0, 100, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f.extend([0xc3, 0x50, 0x12, 0xb5, 0, 80, 0, 0]);
    f.extend([0x08, 0, 0, 0, 0, 0x13, 0x89, 0]);
    f.extend([0xff; 14]);
    f
}

#[test]
fn vxlan_samples_carry_the_vni() {
    let collector = Collector::start();
    let mut sink = collector.sink(PortSource::File("t.pcap".into()), 20);
    let header = vxlan_frame();
    let sample = PacketSample {
        frame: FrameInfo {
            ts_ns: 1,
            wire_len: 114,
            in_if: 0,
        },
        linktype: linktype::ETHERNET,
        header,
        vlan_id: 0,
        vlan_pcp: 0,
        tunnel_id: Some(5001),
        in_port: 1,
        out_port: 0,
        sampling_rate: 1,
        sample_pool: 1,
        sequence: 1,
        drops: 0,
        source_index: 1,
    };
    sink.samples(std::slice::from_ref(&sample)).unwrap();
    let f = flow_samples(&collector.take(sent(&sink)));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].output, Interface::Single(0), "output unknown");
    assert_eq!(f[0].records.last(), Some(&FlowRecord::VniIngress(5001)));
    // The same bytes without a tunnel id from the decoder: no VNI claimed.
    let plain = PacketSample {
        tunnel_id: None,
        ..sample
    };
    sink.samples(&[plain]).unwrap();
    let f = flow_samples(&collector.take(1));
    assert!(!f[0]
        .records
        .iter()
        .any(|r| matches!(r, FlowRecord::VniIngress(_))));
}

fn counters(seed: u64) -> PortCounters {
    PortCounters {
        in_octets: seed * 1000 + (1 << 33),
        in_unicast: seed * 10 + (1 << 32),
        in_multicast: seed * 3,
        in_broadcast: seed,
        out_octets: seed * 700,
        out_unicast: seed * 7,
        out_multicast: seed * 2,
        out_broadcast: seed + 1,
    }
}

fn snapshot(time_s: u64, last: bool, ports: &PortTable) -> CounterSnapshot {
    CounterSnapshot {
        time_ns: time_s * 1_000_000_000,
        last,
        ports: ports.clone(),
        ..CounterSnapshot::default()
    }
}

/// Counter samples go out every polling interval of snapshot time and for every port on
/// the last snapshot, each with generic, Ethernet and port-name records.
#[test]
fn counter_samples_carry_the_port_table() {
    let collector = Collector::start();
    let mut sink = collector.sink(PortSource::File("trace.pcap".into()), 20);
    let mut table = PortTable::default();
    for (port, seed) in [(1u32, 5u64), (0x0123_4567, 9), (OTHER_PORT, 2)] {
        table.ports.insert(port, counters(seed));
    }
    let t0 = 1_700_000_000;
    let mut polls = Vec::new();
    for t in 0..45 {
        let before = sent(&sink);
        sink.counters(&snapshot(t0 + t, false, &table)).unwrap();
        if sent(&sink) > before {
            polls.push(t);
        }
    }
    assert_eq!(polls, [20, 40]);
    sink.counters(&snapshot(t0 + 45, true, &table)).unwrap();
    let datagrams = collector.take(sent(&sink));
    let mut seen = Vec::new();
    for d in &datagrams {
        assert!(d.uptime_ms <= 45_000, "{}", d.uptime_ms);
        for s in &d.samples {
            let Sample::Counter(c) = s else {
                panic!("{s:?}")
            };
            seen.push((c.source_id.index, c.sequence_number));
            let port = c.source_id.index;
            assert_eq!(c.is_expanded(), port > 0x00ff_ffff);
            let want = table.ports[&port];
            let name = if port == OTHER_PORT {
                "other"
            } else {
                "trace.pcap"
            };
            assert_eq!(
                c.records,
                [
                    CounterRecord::GenericInterface(GenericInterfaceCounters {
                        if_index: port,
                        if_type: 6,
                        if_speed: 0,
                        if_direction: 0,
                        if_status: 3,
                        if_in_octets: want.in_octets,
                        if_in_ucast_pkts: want.in_unicast as u32,
                        if_in_multicast_pkts: want.in_multicast as u32,
                        if_in_broadcast_pkts: want.in_broadcast as u32,
                        if_in_discards: 0,
                        if_in_errors: 0,
                        if_in_unknown_protos: 0,
                        if_out_octets: want.out_octets,
                        if_out_ucast_pkts: want.out_unicast as u32,
                        if_out_multicast_pkts: want.out_multicast as u32,
                        if_out_broadcast_pkts: want.out_broadcast as u32,
                        if_out_discards: 0,
                        if_out_errors: 0,
                        if_promiscuous_mode: 2,
                    }),
                    CounterRecord::Ethernet(EthernetCounters::default()),
                    CounterRecord::PortName(PortName { name: name.into() }),
                ]
            );
        }
    }
    seen.sort();
    let mut want: Vec<(u32, u32)> = table
        .ports
        .keys()
        .flat_map(|&p| (1..=3).map(move |seq| (p, seq)))
        .collect();
    want.sort();
    assert_eq!(seen, want, "three polls (20 s, 40 s, last) per port");
    assert_eq!(sink.stats().counter_samples, 9);
}

/// Polling 0: no periodic counters, still the final ones. No ports: nothing at all.
#[test]
fn polling_zero_sends_only_the_final_counters() {
    let collector = Collector::start();
    let mut sink = collector.sink(PortSource::File("f".into()), 0);
    let mut table = PortTable::default();
    table.ports.insert(1, counters(1));
    for t in 0..100 {
        sink.counters(&snapshot(1000 + t, false, &table)).unwrap();
    }
    assert_eq!(sent(&sink), 0);
    sink.counters(&snapshot(1100, true, &PortTable::default()))
        .unwrap();
    assert_eq!(sent(&sink), 0);
    sink.counters(&snapshot(1100, true, &table)).unwrap();
    assert_eq!(collector.take(sent(&sink)).len(), 1);
}

/// Live ports are described by /sys/class/net: loopback by name, up.
#[test]
fn live_ports_are_named_from_sys() {
    let lo: u32 = std::fs::read_to_string("/sys/class/net/lo/ifindex")
        .expect("/sys/class/net/lo")
        .trim()
        .parse()
        .unwrap();
    let collector = Collector::start();
    let mut sink = collector.sink(PortSource::Live, 20);
    let mut table = PortTable::default();
    table.ports.insert(lo, counters(4));
    sink.counters(&snapshot(5, true, &table)).unwrap();
    let d = collector.take(1);
    let Sample::Counter(c) = &d[0].samples[0] else {
        panic!("{d:?}")
    };
    assert_eq!(
        c.records[2],
        CounterRecord::PortName(PortName { name: "lo".into() })
    );
    let CounterRecord::GenericInterface(g) = &c.records[0] else {
        panic!("{c:?}")
    };
    assert_eq!((g.if_index, g.if_status), (lo, 3));
    // Live uptime is wall time since the sink started.
    assert!(d[0].uptime_ms < 60_000, "{}", d[0].uptime_ms);
}

/// With no agent address the datagrams carry the source address of the route to the
/// collector.
#[test]
fn default_agent_is_the_route_source() {
    let collector = Collector::start();
    let sink = SflowSink::new(SflowConfig::new(
        "127.0.0.1",
        collector.port,
        PortSource::Live,
    ));
    assert_eq!(sink.agent(), "127.0.0.1".parse::<IpAddr>().unwrap());
}
