//! Writes the seed corpus of the sFlow fuzz targets into OUT_DIR:
//!
//! * `built-*`: datagrams made here with `mirrorflow-sflow`, covering each branch of the
//!   datagram path (raw headers of every link type, sampled IPv4/IPv6 records, counter
//!   records kept per port and per datapath, unknown samples, many agents and ports);
//! * `<capture>-<n>`: the UDP payloads of each given classic pcap file (Ethernet) that start
//!   like an sFlow v5 datagram. Captures are read at run time, never copied into the tree.
//!
//! Usage: `mirrorflow-fuzz-seeds OUT_DIR [CAPTURE.pcap…]`

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::ExitCode;

use mirrorflow_sflow::records::header_protocol;
use mirrorflow_sflow::{
    CounterRecord, CounterSampleRepr, DataFormat, DataSource, DatagramRepr, EthernetCounters,
    ExtendedSwitch, FlowRecord, FlowSampleRepr, GenericInterfaceCounters, Interface, PortName,
    Sample, SampledHeader, SampledIpv4, SampledIpv6,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((out, captures)) = args.split_first() else {
        eprintln!("usage: mirrorflow-fuzz-seeds OUT_DIR [CAPTURE.pcap...]");
        return ExitCode::from(2);
    };
    match run(Path::new(out), captures) {
        Ok(n) => {
            println!("fuzz-seeds: {n} seeds in {out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fuzz-seeds: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(out: &Path, captures: &[String]) -> Result<usize, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut n = 0;
    let mut write = |name: String, data: &[u8]| -> Result<(), String> {
        let p = out.join(name);
        n += 1;
        std::fs::write(&p, data).map_err(|e| format!("{}: {e}", p.display()))
    };
    for (i, d) in built().iter().enumerate() {
        write(format!("built-{i:02}"), d)?;
    }
    for c in captures {
        let bytes = std::fs::read(c).map_err(|e| format!("{c}: {e}"))?;
        let payloads = udp_payloads(&bytes).map_err(|e| format!("{c}: {e}"))?;
        let stem = Path::new(c)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("capture");
        let sflow: Vec<&[u8]> = payloads
            .into_iter()
            .filter(|p| p.starts_with(&[0, 0, 0, 5]))
            .collect();
        if sflow.is_empty() {
            return Err(format!("{c}: no sFlow v5 datagram found"));
        }
        for (i, p) in sflow.iter().enumerate() {
            write(format!("{stem}-{i:03}"), p)?;
        }
    }
    Ok(n)
}

// ---- hand-built datagrams -------------------------------------------------------------

const MAC_A: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [0x52, 0x54, 0, 0, 0, 2];

fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = [MAC_B, MAC_A].concat();
    f.extend(ethertype.to_be_bytes());
    f.extend(payload);
    f
}

fn vlan(id: u16, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = [MAC_B, MAC_A].concat();
    f.extend(0x8100u16.to_be_bytes());
    f.extend(id.to_be_bytes());
    f.extend(ethertype.to_be_bytes());
    f.extend(payload);
    f
}

/// IPv4 header (no options, checksum left 0) followed by `l4`.
fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    let mut p = vec![0x45, 0x10];
    p.extend(total.to_be_bytes());
    p.extend([0, 1, 0x40, 0, 64, proto, 0, 0]);
    p.extend(src);
    p.extend(dst);
    p.extend(l4);
    p
}

fn ipv6(next: u8, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend((l4.len() as u16).to_be_bytes());
    p.extend([next, 64]);
    p.extend(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
    p.extend(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets());
    p.extend(l4);
    p
}

fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(sport.to_be_bytes());
    t.extend(dport.to_be_bytes());
    t.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend(sport.to_be_bytes());
    u.extend(dport.to_be_bytes());
    u.extend(((8 + payload.len()) as u16).to_be_bytes());
    u.extend([0, 0]);
    u.extend(payload);
    u
}

fn header(protocol: u32, frame: &[u8]) -> FlowRecord {
    FlowRecord::SampledHeader(SampledHeader {
        protocol,
        frame_length: frame.len() as u32 + 4,
        stripped: 4,
        header: frame.to_vec(),
    })
}

fn flow(source: DataSource, seq: u32, rate: u32, records: Vec<FlowRecord>) -> Sample {
    Sample::Flow(FlowSampleRepr {
        sequence_number: seq,
        source_id: source,
        sampling_rate: rate,
        sample_pool: seq.wrapping_mul(rate),
        drops: seq / 4,
        input: Interface::Single(source.index),
        output: Interface::Single(7),
        records,
    })
}

fn counters(index: u32, seq: u32, records: Vec<CounterRecord>) -> Sample {
    Sample::Counter(CounterSampleRepr {
        sequence_number: seq,
        source_id: DataSource::if_index(index),
        records,
    })
}

fn generic(index: u32) -> CounterRecord {
    CounterRecord::GenericInterface(GenericInterfaceCounters {
        if_index: index,
        if_type: 6,
        if_speed: 10_000_000_000,
        if_direction: 1,
        if_status: 3,
        if_in_octets: 123_456_789,
        if_in_ucast_pkts: 1000,
        if_out_octets: 987_654_321,
        if_out_ucast_pkts: 2000,
        ..Default::default()
    })
}

fn unknown_counter(format: u32, words: &[u32]) -> CounterRecord {
    CounterRecord::Unknown {
        format: DataFormat::new(0, format),
        data: words.iter().flat_map(|w| w.to_be_bytes()).collect(),
    }
}

fn datagram(agent: IpAddr, sub_agent: u32, seq: u32, samples: Vec<Sample>) -> Vec<u8> {
    let d = DatagramRepr {
        agent,
        sub_agent_id: sub_agent,
        sequence_number: seq,
        uptime_ms: seq * 1000,
        samples,
    };
    let mut buf = vec![0; d.buffer_len()];
    d.emit(&mut buf).expect("emit into buffer_len bytes");
    buf
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn built() -> Vec<Vec<u8>> {
    let tcp4 = ethernet(
        0x0800,
        &ipv4(6, [10, 0, 0, 1], [10, 0, 0, 2], &tcp(40000, 443, 0x18)),
    );
    let vxlan_inner = ethernet(
        0x0800,
        &ipv4(17, [172, 16, 0, 1], [172, 16, 0, 2], &udp(5353, 53, b"q")),
    );
    let mut vxlan_hdr = vec![0x08, 0, 0, 0, 0, 0x12, 0x34, 0];
    vxlan_hdr.extend(&vxlan_inner);
    let vxlan = ethernet(
        0x0800,
        &ipv4(
            17,
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            &udp(49152, 4789, &vxlan_hdr),
        ),
    );
    let arp = ethernet(
        0x0806,
        &[0, 1, 8, 0, 6, 4, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1],
    );
    let cut_ip = ethernet(0x0800, &[0x45, 0, 0, 40, 0, 0]);
    let udp6 = ipv6(17, &udp(5000, 6000, b"hello"));
    let icmp4 = vlan(
        42,
        0x0800,
        &ipv4(1, [10, 0, 0, 3], [10, 0, 0, 4], &[8, 0, 0, 0, 0, 1, 0, 1]),
    );
    let switch = FlowRecord::ExtendedSwitch(ExtendedSwitch {
        src_vlan: 10,
        src_priority: 0,
        dst_vlan: 10,
        dst_priority: 0,
    });
    let s4 = FlowRecord::SampledIpv4(SampledIpv4 {
        length: 1500,
        protocol: 6,
        src_ip: Ipv4Addr::new(10, 1, 0, 1),
        dst_ip: Ipv4Addr::new(10, 1, 0, 2),
        src_port: 22,
        dst_port: 50000,
        tcp_flags: 0x10,
        tos: 0x20,
    });
    let s6 = FlowRecord::SampledIpv6(SampledIpv6 {
        length: 1280,
        protocol: 17,
        src_ip: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1),
        dst_ip: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2),
        src_port: 53,
        dst_port: 3333,
        tcp_flags: 0,
        priority: 0,
    });
    let agent6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53));
    let port3 = DataSource::if_index(3);

    let mut out = vec![
        // Flow sample with a raw Ethernet header and extended switch; port counters.
        datagram(
            v4(1),
            0,
            1,
            vec![
                flow(
                    port3,
                    1,
                    256,
                    vec![
                        header(header_protocol::ETHERNET_ISO88023, &tcp4),
                        switch.clone(),
                    ],
                ),
                counters(
                    3,
                    1,
                    vec![
                        generic(3),
                        CounterRecord::Ethernet(EthernetCounters::default()),
                        CounterRecord::PortName(PortName {
                            name: "vm1-eth0".into(),
                        }),
                        unknown_counter(1004, &[0, 0x0000_00ab, 3]),
                    ],
                ),
                counters(
                    0x0100_0001,
                    1,
                    vec![unknown_counter(2207, &[10, 2, 0, 9, 4, 1])],
                ),
            ],
        ),
        // IPv6 agent, expanded flow sample (index beyond 24 bits), raw IPv6 header,
        // sampled IPv4 and IPv6 records, discarded and multiple output ports.
        datagram(
            agent6,
            3,
            7,
            vec![
                flow(
                    DataSource {
                        source_type: 0,
                        index: 0x0100_0000,
                    },
                    9,
                    512,
                    vec![header(header_protocol::IPV6, &udp6)],
                ),
                flow(port3, 2, 1, vec![s4.clone()]),
                Sample::Flow(FlowSampleRepr {
                    sequence_number: 3,
                    source_id: port3,
                    sampling_rate: 0,
                    input: Interface::Discarded(1),
                    output: Interface::Multiple(4),
                    records: vec![s6],
                    ..Default::default()
                }),
                flow(
                    port3,
                    4,
                    64,
                    vec![header(
                        header_protocol::IPV4,
                        &ipv4(17, [1, 2, 3, 4], [5, 6, 7, 8], &udp(1, 2, &[])),
                    )],
                ),
            ],
        ),
        // Tunnels, non-IP, decode errors, unsupported header protocol, no packet at all,
        // and a sample format nobody reads.
        datagram(
            v4(2),
            0,
            1,
            vec![
                flow(
                    port3,
                    10,
                    100,
                    vec![header(header_protocol::ETHERNET_ISO88023, &vxlan)],
                ),
                flow(
                    port3,
                    11,
                    100,
                    vec![header(header_protocol::ETHERNET_ISO88023, &arp)],
                ),
                flow(
                    port3,
                    12,
                    100,
                    vec![header(header_protocol::ETHERNET_ISO88023, &cut_ip)],
                ),
                flow(
                    port3,
                    13,
                    100,
                    vec![
                        header(header_protocol::ETHERNET_ISO88023, &icmp4),
                        switch.clone(),
                    ],
                ),
                flow(port3, 14, 100, vec![header(2, &tcp4)]),
                flow(port3, 15, 100, vec![header(2, &tcp4), s4.clone()]),
                flow(port3, 16, 100, vec![switch.clone()]),
                Sample::Unknown {
                    format: DataFormat::new(0, 5),
                    data: vec![0; 12],
                },
                Sample::Unknown {
                    format: DataFormat::new(4413, 1),
                    data: vec![1, 2, 3],
                },
            ],
        ),
        // Expanded counter sample (source type beyond 8 bits).
        datagram(
            v4(1),
            0,
            2,
            vec![Sample::Counter(CounterSampleRepr {
                sequence_number: 5,
                source_id: DataSource {
                    source_type: 0x100,
                    index: 5,
                },
                records: vec![generic(5)],
            })],
        ),
    ];
    // More agents than max_agents, more ports than max_ports, more origins than
    // max_origins, across a few datagrams; sequence gaps, a repeat and a restart.
    for (i, seq) in [(3u8, 1u32), (4, 1), (5, 1), (6, 1), (3, 5), (3, 4), (3, 1)] {
        let samples = (0..6)
            .map(|p| {
                let index = u32::from(i) * 10 + p;
                if p % 2 == 0 {
                    counters(index, seq, vec![generic(index)])
                } else {
                    flow(DataSource::if_index(index), seq, 100 + p, vec![s4.clone()])
                }
            })
            .collect();
        out.push(datagram(v4(i), 0, seq, samples));
    }
    // Agent address of type 0 (unknown): no address bytes follow the type.
    let mut d = datagram(v4(0), 1, 1, vec![flow(port3, 1, 10, vec![s4])]);
    d[4..8].copy_from_slice(&0u32.to_be_bytes());
    d.drain(8..12);
    out.push(d);
    out
}

// ---- capture files --------------------------------------------------------------------

/// UDP payloads of the unfragmented IPv4/IPv6 packets of a classic pcap file (Ethernet,
/// with up to two VLAN tags).
fn udp_payloads(file: &[u8]) -> Result<Vec<&[u8]>, String> {
    let magic = file.get(..4).ok_or("shorter than a pcap header")?;
    let be = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => false,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => true,
        _ => return Err("not a classic pcap file".into()),
    };
    let word = |b: &[u8]| {
        let w = [b[0], b[1], b[2], b[3]];
        if be {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    };
    let header = file.get(..24).ok_or("shorter than a pcap header")?;
    if word(&header[20..24]) & 0xffff != 1 {
        return Err("link type is not Ethernet".into());
    }
    let mut out = Vec::new();
    let mut pos = 24;
    while pos + 16 <= file.len() {
        let caplen = word(&file[pos + 8..pos + 12]) as usize;
        let frame = file
            .get(pos + 16..pos + 16 + caplen)
            .ok_or("record runs past the end of the file")?;
        pos += 16 + caplen;
        if let Some(p) = udp_payload(frame) {
            out.push(p);
        }
    }
    Ok(out)
}

fn udp_payload(frame: &[u8]) -> Option<&[u8]> {
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes(frame.get(off..off + 2)?.try_into().ok()?);
    while ethertype == 0x8100 || ethertype == 0x88a8 {
        off += 4;
        ethertype = u16::from_be_bytes(frame.get(off..off + 2)?.try_into().ok()?);
    }
    let ip = frame.get(off + 2..)?;
    let l4 = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
            if *ip.get(9)? != 17 || frag & 0x3fff != 0 {
                return None;
            }
            ip.get(ihl..)?
        }
        0x86dd if *ip.get(6)? == 17 => ip.get(40..)?,
        _ => return None,
    };
    let len = usize::from(u16::from_be_bytes([*l4.get(4)?, *l4.get(5)?]));
    l4.get(8..len.clamp(8, l4.len()))
}
