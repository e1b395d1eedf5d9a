//! Well-formed sFlow datagrams built from the input (with `mirrorflow-sflow`), so that
//! every input gets past the framing check and the decoder into sequence tracking, the
//! counter table, origin interning and the packet decoder. Each input is a fresh datagram
//! path fed a series of datagrams from a few agents (more than `max_agents`), so a crash
//! reproduces from its input alone. See `mirrorflow_fuzz::Harness` for the invariants.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mirrorflow::decode::TunnelMode;
use mirrorflow_fuzz::Harness;
use mirrorflow_sflow::records::header_protocol;
use mirrorflow_sflow::{
    CounterRecord, CounterSampleRepr, DataFormat, DataSource, DatagramRepr, EthernetCounters,
    ExtendedSwitch, FlowRecord, FlowSampleRepr, GenericInterfaceCounters, Interface, PortName,
    Sample, SampledHeader, SampledIpv4, SampledIpv6,
};

#[derive(Arbitrary, Debug)]
struct Input {
    scale: bool,
    outer_tunnels: bool,
    datagrams: Vec<Datagram>,
}

#[derive(Arbitrary, Debug)]
struct Datagram {
    /// One of six agents (four IPv4, two IPv6).
    agent: u8,
    sub_agent: bool,
    sequence: u16,
    uptime: u16,
    samples: Vec<SampleIn>,
    /// Cut the emitted datagram to this many bytes.
    cut: Option<u16>,
}

#[derive(Arbitrary, Debug)]
enum SampleIn {
    Flow {
        source: Source,
        sequence: u8,
        rate: u16,
        drops: u8,
        input: Iface,
        output: Iface,
        records: Vec<FlowIn>,
    },
    Counter {
        source: Source,
        sequence: u8,
        records: Vec<CounterIn>,
    },
    Other {
        format: u32,
        data: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
enum Source {
    /// ifIndex 0..=15 (compact).
    Port(u8),
    /// Any type and index (expanded when they do not fit).
    Any(u32, u32),
}

#[derive(Arbitrary, Debug)]
enum Iface {
    Single(u32),
    Discarded(u32),
    Multiple(u32),
}

#[derive(Arbitrary, Debug)]
enum FlowIn {
    Header {
        protocol: Protocol,
        frame: Frame,
        stripped: u8,
    },
    Ipv4 {
        length: u32,
        protocol: u8,
        src: u32,
        dst: u32,
        ports: (u16, u16),
        flags: u8,
        tos: u8,
    },
    Ipv6 {
        length: u32,
        protocol: u8,
        src: u128,
        dst: u128,
        ports: (u16, u16),
        flags: u8,
    },
    Switch(u16),
    Vni(u32),
    Other {
        format: u16,
        data: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
enum Protocol {
    Ethernet,
    Ipv4,
    Ipv6,
    Other(u32),
}

#[derive(Arbitrary, Debug)]
enum Frame {
    /// A valid frame of one of several kinds, then cut and one byte changed.
    Template {
        kind: u8,
        cut: Option<u8>,
        flip: (u8, u8),
    },
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum CounterIn {
    Generic { index: u32, octets: u64 },
    Ethernet(u32),
    Name(String),
    OpenFlow { datapath: u64, port: u32 },
    Datapath([u32; 6]),
    Other { format: u16, data: Vec<u8> },
}

const AGENTS: [IpAddr; 6] = [
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3)),
    IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
];

fuzz_target!(|input: Input| {
    let tunnels = if input.outer_tunnels {
        TunnelMode::Outer
    } else {
        TunnelMode::Inner
    };
    let mut h = Harness::new(tunnels, input.scale);
    for d in input.datagrams.iter().take(32) {
        let mut bytes = emit(d);
        if let Some(n) = d.cut {
            bytes.truncate(usize::from(n));
        }
        let r = h.feed(&bytes);
        if d.cut.is_none() && known_only(d) {
            assert_eq!(r, Ok(()), "well-formed datagram refused");
        }
    }
});

/// Whether the datagram holds only structures whose bodies are built here (not free bytes
/// under a format the decoder may know with another layout).
fn known_only(d: &Datagram) -> bool {
    d.samples.iter().take(16).all(|s| match s {
        SampleIn::Flow { records, .. } => records
            .iter()
            .take(8)
            .all(|r| !matches!(r, FlowIn::Other { .. })),
        SampleIn::Counter { records, .. } => records
            .iter()
            .take(8)
            .all(|r| !matches!(r, CounterIn::Other { .. })),
        SampleIn::Other { .. } => false,
    })
}

fn emit(d: &Datagram) -> Vec<u8> {
    let repr = DatagramRepr {
        agent: AGENTS[usize::from(d.agent) % AGENTS.len()],
        sub_agent_id: u32::from(d.sub_agent),
        sequence_number: u32::from(d.sequence),
        uptime_ms: u32::from(d.uptime),
        samples: d.samples.iter().take(16).map(sample).collect(),
    };
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(&mut buf).expect("emit into buffer_len bytes");
    buf
}

fn source(s: &Source) -> DataSource {
    match *s {
        Source::Port(p) => DataSource::if_index(u32::from(p % 16)),
        Source::Any(t, i) => DataSource {
            source_type: t,
            index: i,
        },
    }
}

fn iface(i: &Iface) -> Interface {
    match *i {
        Iface::Single(v) => Interface::Single(v & 0x3fff_ffff),
        Iface::Discarded(v) => Interface::Discarded(v & 0x3fff_ffff),
        Iface::Multiple(v) => Interface::Multiple(v & 0x3fff_ffff),
    }
}

fn sample(s: &SampleIn) -> Sample {
    match s {
        SampleIn::Flow {
            source: src,
            sequence,
            rate,
            drops,
            input,
            output,
            records,
        } => Sample::Flow(FlowSampleRepr {
            sequence_number: u32::from(*sequence),
            source_id: source(src),
            sampling_rate: u32::from(*rate),
            sample_pool: 0,
            drops: u32::from(*drops),
            input: iface(input),
            output: iface(output),
            records: records.iter().take(8).map(flow_record).collect(),
        }),
        SampleIn::Counter {
            source: src,
            sequence,
            records,
        } => Sample::Counter(CounterSampleRepr {
            sequence_number: u32::from(*sequence),
            source_id: source(src),
            records: records.iter().take(8).map(counter_record).collect(),
        }),
        SampleIn::Other { format, data } => Sample::Unknown {
            // Formats 1–4 would be parsed as flow or counter samples: keep them opaque.
            format: DataFormat(if (1..=4).contains(format) { 5 } else { *format }),
            data: data.clone(),
        },
    }
}

fn flow_record(r: &FlowIn) -> FlowRecord {
    match r {
        FlowIn::Header {
            protocol,
            frame,
            stripped,
        } => {
            let header = build_frame(frame);
            FlowRecord::SampledHeader(SampledHeader {
                protocol: match protocol {
                    Protocol::Ethernet => header_protocol::ETHERNET_ISO88023,
                    Protocol::Ipv4 => header_protocol::IPV4,
                    Protocol::Ipv6 => header_protocol::IPV6,
                    // sflow-parser refuses the whole datagram for a protocol number
                    // outside the spec's 1..=17.
                    Protocol::Other(p) => 1 + p % 17,
                },
                frame_length: header.len() as u32 + u32::from(*stripped),
                stripped: u32::from(*stripped),
                header,
            })
        }
        FlowIn::Ipv4 {
            length,
            protocol,
            src,
            dst,
            ports,
            flags,
            tos,
        } => FlowRecord::SampledIpv4(SampledIpv4 {
            length: *length,
            protocol: u32::from(*protocol),
            src_ip: Ipv4Addr::from(*src),
            dst_ip: Ipv4Addr::from(*dst),
            src_port: u32::from(ports.0),
            dst_port: u32::from(ports.1),
            tcp_flags: u32::from(*flags),
            tos: u32::from(*tos),
        }),
        FlowIn::Ipv6 {
            length,
            protocol,
            src,
            dst,
            ports,
            flags,
        } => FlowRecord::SampledIpv6(SampledIpv6 {
            length: *length,
            protocol: u32::from(*protocol),
            src_ip: Ipv6Addr::from(*src),
            dst_ip: Ipv6Addr::from(*dst),
            src_port: u32::from(ports.0),
            dst_port: u32::from(ports.1),
            tcp_flags: u32::from(*flags),
            priority: 0,
        }),
        FlowIn::Switch(vlan) => FlowRecord::ExtendedSwitch(ExtendedSwitch {
            src_vlan: u32::from(*vlan),
            src_priority: 0,
            dst_vlan: u32::from(*vlan),
            dst_priority: 0,
        }),
        FlowIn::Vni(v) => FlowRecord::VniIngress(*v),
        FlowIn::Other { format, data } => FlowRecord::Unknown {
            format: DataFormat::new(0, u32::from(*format)),
            data: data.clone(),
        },
    }
}

fn counter_record(r: &CounterIn) -> CounterRecord {
    let words = |w: &[u32]| w.iter().flat_map(|w| w.to_be_bytes()).collect::<Vec<u8>>();
    match r {
        CounterIn::Generic { index, octets } => {
            CounterRecord::GenericInterface(GenericInterfaceCounters {
                if_index: *index,
                if_in_octets: *octets,
                ..Default::default()
            })
        }
        CounterIn::Ethernet(e) => CounterRecord::Ethernet(EthernetCounters {
            dot3_stats_fcs_errors: *e,
            ..Default::default()
        }),
        CounterIn::Name(n) => CounterRecord::PortName(PortName { name: n.clone() }),
        CounterIn::OpenFlow { datapath, port } => CounterRecord::Unknown {
            format: DataFormat::new(0, 1004),
            data: words(&[(datapath >> 32) as u32, *datapath as u32, *port]),
        },
        CounterIn::Datapath(s) => CounterRecord::Unknown {
            format: DataFormat::new(0, 2207),
            data: words(s),
        },
        CounterIn::Other { format, data } => CounterRecord::Unknown {
            format: DataFormat::new(0, u32::from(*format)),
            data: data.clone(),
        },
    }
}

// ---- frames -----------------------------------------------------------------------------

fn build_frame(f: &Frame) -> Vec<u8> {
    match f {
        Frame::Raw(b) => b.clone(),
        Frame::Template { kind, cut, flip } => {
            let mut b = template(*kind);
            if let Some(n) = cut {
                b.truncate(usize::from(*n));
            }
            if let Some(x) = b.get_mut(usize::from(flip.0)) {
                *x ^= flip.1;
            }
            b
        }
    }
}

fn template(kind: u8) -> Vec<u8> {
    let tcp = l4(&[
        0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x12, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    let udp = |d: u16, p: &[u8]| {
        let mut u = vec![0xc0, 0x00];
        u.extend(d.to_be_bytes());
        u.extend(((8 + p.len()) as u16).to_be_bytes());
        u.extend([0, 0]);
        u.extend(p);
        u
    };
    let inner = eth(0x0800, &ipv4(17, &udp(53, b"inner")));
    match kind % 12 {
        0 => eth(0x0800, &ipv4(6, &tcp)),
        1 => eth(0x86dd, &ipv6(17, &udp(443, b"quic"))),
        2 => eth(0x0806, &[0, 1, 8, 0, 6, 4, 0, 1]),
        3 => {
            let mut v = vec![0x08, 0, 0, 0, 0, 0, 0x2a, 0];
            v.extend(&inner);
            eth(0x0800, &ipv4(17, &udp(4789, &v)))
        }
        4 => {
            let mut g = vec![0, 0, 0x65, 0x58, 0, 0, 0x07, 0];
            g.extend(&inner);
            eth(0x86dd, &ipv6(17, &udp(6081, &g)))
        }
        5 => {
            let mut g = vec![0x20, 0, 0x65, 0x58, 0, 0, 0, 9];
            g.extend(&inner);
            eth(0x0800, &ipv4(47, &g))
        }
        6 => tagged(
            &[0x8100, 0x8100],
            0x0800,
            &ipv4(1, &[8, 0, 0, 0, 0, 1, 0, 1]),
        ),
        7 => {
            let mut m = vec![0, 0x01, 0x01, 0x40];
            m.extend(ipv4(17, &udp(9, b"mpls")));
            eth(0x8847, &m)
        }
        8 => ipv4(6, &tcp),
        9 => ipv6(58, &[128, 0, 0, 0, 0, 1, 0, 1]),
        10 => {
            // First fragment, then a later one.
            let mut p = ipv4(17, &udp(7, &[0; 16]));
            p[6] = 0x20;
            p
        }
        _ => {
            let mut h = vec![0x11, 0, 0, 1, 0, 8];
            h.extend([0x00, 0x21]);
            h.extend(ipv4(6, &tcp));
            eth(0x8864, &h)
        }
    }
}

fn l4(b: &[u8]) -> Vec<u8> {
    b.to_vec()
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    tagged(&[], ethertype, payload)
}

fn tagged(tags: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x52, 0x54, 0, 0, 0, 2, 0x52, 0x54, 0, 0, 0, 1];
    for (i, t) in tags.iter().enumerate() {
        f.extend(t.to_be_bytes());
        f.extend((100 + i as u16).to_be_bytes());
    }
    f.extend(ethertype.to_be_bytes());
    f.extend(payload);
    f
}

fn ipv4(proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0];
    p.extend(((20 + l4.len()) as u16).to_be_bytes());
    p.extend([0, 7, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    p.extend(l4);
    p
}

fn ipv6(next: u8, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend((l4.len() as u16).to_be_bytes());
    p.extend([next, 64]);
    p.extend([0x20, 0x01, 0x0d, 0xb8].iter().chain(&[0; 11]).chain(&[1]));
    p.extend([0x20, 0x01, 0x0d, 0xb8].iter().chain(&[0; 11]).chain(&[2]));
    p.extend(l4);
    p
}
