//! mirrorflow's sFlow export as Wireshark sees it: datagrams captured on lo with `tshark`
//! pass `/work/shared/tools/export-check.sh` (no malformed packets, no expert warnings),
//! carry what the replayed captures hold, and the final counter samples equal each file's
//! totals.
//!
//! Requires tshark (Debian package `tshark`); runs as root (captures on lo).

mod sflow_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sflow_support::{export_check, mirrorflow, shared_pcap, tshark, udp_listener, Capture};

/// One replayed capture: its sub-agent id in the export, and what its flow samples hold.
struct Case {
    file: PathBuf,
    /// sFlow header_protocols its sampled headers may have.
    header_protocols: &'static [u64],
    /// Only its IP frames have a sampled header (a cooked capture's pseudo header is
    /// stripped; what is not IP has no sFlow header protocol).
    ip_only: bool,
}

/// What the flow samples of one sub-agent held: samples, header protocols, (VLAN, PCP).
type Seen = (usize, Vec<u64>, Vec<(u64, u64)>);

fn local_pcap(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data")).join(name)
}

/// tshark fields of every frame of `file` (one line per frame, tab-separated, all
/// occurrences joined by `,`) decoded as sFlow on `port`.
fn sflow_fields(file: &Path, port: u16, fields: &[&str]) -> Vec<Vec<String>> {
    let decode = format!("udp.port=={port},sflow");
    let mut args = vec![
        "-d",
        &decode,
        "-Y",
        "sflow",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
    ];
    for f in fields {
        args.extend(["-e", f]);
    }
    tshark(file, &args)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

fn values(s: &str) -> Vec<u64> {
    s.split(',')
        .filter(|v| !v.is_empty())
        .map(|v| v.parse().unwrap_or_else(|_| panic!("not a number: {v:?}")))
        .collect()
}

/// Every frame of captures of different link types sampled (1-in-1): Wireshark decodes
/// every datagram cleanly, one flow sample per frame, with the header protocol, VLANs and
/// sampling fields the files call for.
#[test]
fn flow_samples_pass_export_check() {
    let cases = [
        Case {
            file: shared_pcap("pcpp__VlanPackets.pcap"),
            header_protocols: &[1],
            ip_only: false,
        },
        Case {
            file: shared_pcap("zeek__vlan-pcp-dei.pcapng"),
            header_protocols: &[1],
            ip_only: false,
        },
        Case {
            file: shared_pcap("tcpdump__vxlan.pcap"),
            header_protocols: &[1],
            ip_only: false,
        },
        Case {
            file: shared_pcap("tcpdump__tcp-handshake-nano.pcap"),
            header_protocols: &[11],
            ip_only: true,
        },
        Case {
            file: shared_pcap("zeek__linux_dlt_sll2.pcap"),
            header_protocols: &[11, 12],
            ip_only: true,
        },
        Case {
            file: shared_pcap("zeek__linuxsll-arp.pcap"),
            header_protocols: &[],
            ip_only: true,
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let (_collector, port) = udp_listener();
    let capture = Capture::start(dir.path(), &[port]);
    for (i, c) in cases.iter().enumerate() {
        let sub_agent = (i + 1).to_string();
        mirrorflow(&[
            "-r",
            c.file.to_str().unwrap(),
            "--sflow",
            &format!("127.0.0.1:{port}"),
            "--sflow-sampling",
            "1",
            "--sub-agent-id",
            &sub_agent,
        ]);
    }
    let file = capture.stop();
    println!("{}", export_check(&file, &[port]));

    let rows = sflow_fields(
        &file,
        port,
        &[
            "sflow_245.sub_agent_id",
            "sflow_245.agent",
            "sflow.flow_sample.sampling_rate",
            "sflow_245.header_protocol",
            "sflow_245.vlan.in",
            "sflow_245.pri.in",
            "sflow.flow_sample.input_interface",
        ],
    );
    // Per sub-agent: flow samples, header protocols, (vlan, pcp) pairs.
    let mut by_agent: BTreeMap<u64, Seen> = BTreeMap::new();
    for r in &rows {
        assert_eq!(
            r[1], "127.0.0.1",
            "agent address: the route to the collector"
        );
        let rates = values(&r[2]);
        assert!(rates.iter().all(|&x| x == 1), "{r:?}");
        assert!(values(&r[6]).iter().all(|&x| x == 1), "input port 1: {r:?}");
        let e = by_agent.entry(values(&r[0])[0]).or_default();
        e.0 += rates.len();
        e.1.extend(values(&r[3]));
        e.2.extend(values(&r[4]).into_iter().zip(values(&r[5])));
    }
    for (i, c) in cases.iter().enumerate() {
        let name = c.file.file_name().unwrap().to_string_lossy();
        let (samples, protocols, vlans) = &by_agent[&(i as u64 + 1)];
        let frames = tshark(&c.file, &["-T", "fields", "-e", "frame.number"])
            .lines()
            .count();
        assert_eq!(
            *samples, frames,
            "{name}: one flow sample per frame at 1-in-1"
        );
        let all_known = protocols.iter().all(|x| c.header_protocols.contains(x));
        let headers = if c.ip_only {
            tshark(&c.file, &["-Y", "ip || ipv6"]).lines().count()
        } else {
            frames
        };
        assert!(
            protocols.len() == headers && all_known,
            "{name}: header protocols {protocols:?}"
        );
        // The outermost VLAN id and priority of each frame, as tshark reads the file.
        let want: Vec<(u64, u64)> = tshark(
            &c.file,
            &[
                "-T",
                "fields",
                "-E",
                "occurrence=f",
                "-e",
                "vlan.id",
                "-e",
                "vlan.priority",
            ],
        )
        .lines()
        .map(|l| {
            let (id, pcp) = l.split_once('\t').unwrap_or(("", ""));
            (id.parse().unwrap_or(0), pcp.parse().unwrap_or(0))
        })
        .collect();
        let (mut got, mut want) = (vlans.clone(), want);
        got.sort();
        want.sort();
        assert_eq!(got, want, "{name}: extended switch VLAN / priority");
    }
}

/// Per capture: (octets, unicast, multicast, broadcast) of all frames as tshark counts them.
fn file_totals(file: &Path) -> (u64, u64, u64, u64) {
    let mut t = (0, 0, 0, 0);
    for l in tshark(file, &["-T", "fields", "-e", "frame.len", "-e", "eth.dst"]).lines() {
        let (len, dst) = l.split_once('\t').unwrap_or((l, ""));
        t.0 += len.parse::<u64>().unwrap();
        let first = u8::from_str_radix(dst.get(..2).unwrap_or("00"), 16).unwrap();
        if dst == "ff:ff:ff:ff:ff:ff" {
            t.3 += 1;
        } else if first & 1 == 1 {
            t.2 += 1;
        } else {
            t.1 += 1;
        }
    }
    t
}

/// Replayed with counter polling off, each file yields exactly one counter sample (the
/// final one, port 1 = the file) whose octets and unicast / multicast / broadcast packets
/// are the file's totals, with the file's name as port name.
#[test]
fn final_counters_equal_file_totals() {
    let files = [
        local_pcap("sample.pcap"),
        shared_pcap("pcpp__many-protocols.pcap"),
        shared_pcap("zeek__arp-leak.pcap"),
        shared_pcap("tcpdump__LLDP_and_CDP.pcap"),
        shared_pcap("pcpp__VlanPackets.pcap"),
        // No destination MAC: every frame counts as unicast.
        shared_pcap("pcpp__four_ipv6_http_streams.pcap"),
        shared_pcap("pcpp__sll.pcap"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (_collector, port) = udp_listener();
    let capture = Capture::start(dir.path(), &[port]);
    for (i, f) in files.iter().enumerate() {
        mirrorflow(&[
            "-r",
            f.to_str().unwrap(),
            "--sflow",
            &format!("127.0.0.1:{port}"),
            // Counters only (practically): one sample in a million frames.
            "--sflow-sampling",
            "1000000",
            "--sflow-polling",
            "0",
            "--sub-agent-id",
            &(i + 1).to_string(),
            "--agent-address",
            "192.0.2.9",
        ]);
    }
    let file = capture.stop();
    println!("{}", export_check(&file, &[port]));
    let rows = sflow_fields(
        &file,
        port,
        &[
            "sflow_245.sub_agent_id",
            "sflow_245.agent",
            "sflow.counters_sample.source_id_index",
            "sflow_245.ifindex",
            "sflow_245.iftype",
            "sflow_245.ifinoct",
            "sflow_245.ifinpkt",
            "sflow_245.ifinmcast",
            "sflow_245.ifinbcast",
            "sflow_245.ifoutoct",
        ],
    );
    let mut got = BTreeMap::new();
    for r in rows.iter().filter(|r| !r[2].is_empty()) {
        assert_eq!(r[1], "192.0.2.9");
        let v: Vec<u64> = r[2..].iter().map(|s| values(s)[0]).collect();
        assert_eq!((v[0], v[1], v[2], v[7]), (1, 1, 6, 0), "{r:?}");
        let prev = got.insert(values(&r[0])[0], (v[3], v[4], v[5], v[6]));
        assert!(prev.is_none(), "one counter sample per run: {r:?}");
    }
    for (i, f) in files.iter().enumerate() {
        assert_eq!(
            got.get(&(i as u64 + 1)),
            Some(&file_totals(f)),
            "{}: (octets, unicast, multicast, broadcast)",
            f.display()
        );
    }
}

/// sFlow and IPFIX from one replay, each with its own sampling: every frame is an sFlow
/// sample at 1-in-1 while the flow cache sees about half of them (`--flow-sampling 2`);
/// both streams decode cleanly.
#[test]
fn sflow_and_ipfix_sample_independently() {
    let pcap = shared_pcap("pcpp__VlanPackets.pcap");
    let dir = tempfile::tempdir().unwrap();
    let (_sflow_collector, sflow_port) = udp_listener();
    let (_ipfix_collector, ipfix_port) = udp_listener();
    let capture = Capture::start(dir.path(), &[sflow_port, ipfix_port]);
    mirrorflow(&[
        "-r",
        pcap.to_str().unwrap(),
        "--sflow",
        &format!("127.0.0.1:{sflow_port}"),
        "--sflow-sampling",
        "1",
        "--ipfix",
        &format!("127.0.0.1:{ipfix_port}"),
        "--flow-sampling",
        "2",
    ]);
    let file = capture.stop();
    let script = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/tools/export-check.sh"
    ));
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(&file)
        .arg(ipfix_port.to_string())
        .arg(sflow_port.to_string())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "export-check.sh:\n{report}");
    let frames = tshark(&pcap, &["-T", "fields", "-e", "frame.number"])
        .lines()
        .count() as u64;
    let samples: u64 = sflow_fields(&file, sflow_port, &["sflow.flow_sample.sampling_rate"])
        .iter()
        .map(|r| values(&r[0]).len() as u64)
        .sum();
    assert_eq!(samples, frames, "one sFlow sample per frame");
    let decode = format!("udp.port=={ipfix_port},cflow");
    let flow_packets: u64 = tshark(
        &file,
        &[
            "-d",
            &decode,
            "-Y",
            "cflow",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-e",
            "cflow.packets",
        ],
    )
    .lines()
    .flat_map(values)
    .sum();
    assert!(
        flow_packets > 0 && flow_packets < frames,
        "IPFIX counted {flow_packets} of {frames} frames at 1-in-2"
    );
}
