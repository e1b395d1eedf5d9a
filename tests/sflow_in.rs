//! sFlow in (`--sflow-listen`): the shared sFlow captures replayed over loopback decode
//! the way tshark reads them, sequence gaps / restarts / agent drops are counted exactly,
//! flows from sFlow carry their agent and ports, lying datagrams are refused by reason at
//! bounded memory, and the relay forwards every datagram unchanged.

mod metrics_support;
mod sflow_in_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use metrics_support::{get, parse, require, sum};
use mirrorflow_sflow::{
    CounterRecord, CounterSampleRepr, DataSource, DatagramRepr, FlowRecord, FlowSampleRepr,
    GenericInterfaceCounters, Interface, PortName, Sample, SampledHeader,
};
use sflow_in_support::{send_all, shared_pcap, udp_payloads, wait_for, SflowProbe};

const AGENT: &str = "192.0.2.10";

fn scrape(p: &SflowProbe) -> Vec<metrics_support::Sample> {
    parse(&get(p.metrics, "/metrics"))
}

/// Datagrams the listener has dealt with: decoded or refused.
fn handled(p: &SflowProbe) -> f64 {
    let s = scrape(p);
    sum(&s, "mirrorflow_sflow_in_datagrams_total", &[])
        + sum(&s, "mirrorflow_sflow_in_dropped_datagrams_total", &[])
}

fn wait_handled(p: &SflowProbe, n: usize) {
    let done = wait_for(Duration::from_secs(30), || handled(p) >= n as f64);
    assert!(
        done,
        "only {} of {n} datagrams handled; stderr:\n{}",
        handled(p),
        p.log()
    );
}

/// What tshark makes of each UDP datagram to port 6343: (is sFlow, flow samples, counter
/// samples, flagged malformed).
fn tshark_view(file: &std::path::Path) -> Vec<(bool, u64, u64, bool)> {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args([
            "-Y",
            "udp.dstport == 6343",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
        ])
        .args([
            "-e",
            "sflow_245.sequence_number",
            "-e",
            "sflow_245.sampletype",
        ])
        .args(["-e", "_ws.malformed"])
        .output()
        .expect("running tshark");
    assert!(out.status.success(), "tshark failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let types: Vec<&str> = f[1].split(',').filter(|t| !t.is_empty()).collect();
            let n = |set: &[&str]| types.iter().filter(|t| set.contains(t)).count() as u64;
            let malformed = f.get(2).is_some_and(|m| !m.is_empty());
            (!f[0].is_empty(), n(&["1", "3"]), n(&["2", "4"]), malformed)
        })
        .collect()
}

/// Every datagram tshark reads as sFlow decodes here too, with the same numbers of flow and
/// counter samples; the others (NetFlow v5 sent to the sFlow port) are refused and counted;
/// and every flow sample is accounted for as a frame. tshark flags two datagrams of the
/// 30-datagram capture as malformed: its dissector misreads their host-adapters record (Host
/// sFlow 0:2001) and runs past it; their lengths are consistent, and they decode here.
#[test]
fn shared_captures_decode_like_tshark() {
    require("tshark", "tshark");
    for (name, v6) in [
        ("ndpi__sflow.pcap", false),
        ("tcpdump__sflow-print-v6.pcap", true),
        ("tcpdump__sflow_multiple_counter_30_pdus.pcap", false),
    ] {
        let file = shared_pcap(name);
        let payloads = udp_payloads(&file, 6343);
        let view = tshark_view(&file);
        assert_eq!(payloads.len(), view.len(), "{name}: datagram count");
        let malformed = view.iter().filter(|v| v.3).count();
        assert_eq!(
            malformed,
            if name.contains("30_pdus") { 2 } else { 0 },
            "{name}"
        );
        let dir = tempfile::tempdir().unwrap();
        let stats = dir.path().join("stats.json");
        let mut p = SflowProbe::start(&["--stats-json", stats.to_str().unwrap()]);
        send_all(if v6 { p.v6 } else { p.v4 }, &payloads);
        wait_handled(&p, payloads.len());
        let s = scrape(&p);
        let good = view.iter().filter(|v| v.0).count() as f64;
        let flow: u64 = view.iter().filter(|v| v.0).map(|v| v.1).sum();
        let counter: u64 = view.iter().filter(|v| v.0).map(|v| v.2).sum();
        assert_eq!(
            sum(&s, "mirrorflow_sflow_in_datagrams_total", &[]),
            good,
            "{name}"
        );
        assert_eq!(
            sum(&s, "mirrorflow_sflow_in_dropped_datagrams_total", &[]),
            payloads.len() as f64 - good,
            "{name}"
        );
        let kind = |k| sum(&s, "mirrorflow_sflow_in_samples_total", &[("kind", k)]);
        assert_eq!(kind("flow"), flow as f64, "{name}: flow samples");
        assert_eq!(kind("counter"), counter as f64, "{name}: counter samples");
        assert_eq!(kind("other"), 0.0, "{name}");
        // Every flow sample of these captures carries a raw header: each is one frame.
        let unused = sum(
            &s,
            "mirrorflow_sflow_in_unused_samples_total",
            &[("reason", "no_packet")],
        );
        assert!(p.terminate().success(), "{}", p.log());
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
        assert_eq!(
            report["frames"].as_u64(),
            Some(flow - unused as u64),
            "{name}"
        );
        let n = |k: &str| -> u64 {
            report[k]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum()
        };
        assert_eq!(
            report["flow_packets"].as_u64().unwrap() + n("non_ip") + n("decode_errors"),
            flow - unused as u64,
            "{name}: every frame is accounted for: {report}"
        );
    }
}

/// The 30-datagram capture holds five NetFlow v5 datagrams sent to the sFlow port: refused
/// as `version`, and nothing else is refused.
#[test]
fn refusals_are_counted_by_reason() {
    let payloads = udp_payloads(
        &shared_pcap("tcpdump__sflow_multiple_counter_30_pdus.pcap"),
        6343,
    );
    let mut p = SflowProbe::start(&[]);
    send_all(p.v4, &payloads);
    wait_handled(&p, payloads.len());
    let s = scrape(&p);
    let all: Vec<(String, f64)> = s
        .iter()
        .filter(|x| x.name == "mirrorflow_sflow_in_dropped_datagrams_total" && x.value > 0.0)
        .map(|x| (x.labels["reason"].clone(), x.value))
        .collect();
    assert_eq!(all, [("version".to_string(), 5.0)]);
    assert!(p.terminate().success());
}

/// An Ethernet/IPv4/UDP frame of `payload` bytes between two VMs.
fn frame(src: [u8; 4], dst: [u8; 4], payload: usize) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .udp(40_000, 5201);
    let mut out = Vec::new();
    b.write(&mut out, &vec![0u8; payload]).unwrap();
    out
}

fn flow_sample(seq: u32, source: u32, rate: u32, drops: u32, frame: &[u8]) -> Sample {
    Sample::Flow(FlowSampleRepr {
        sequence_number: seq,
        source_id: DataSource::if_index(source),
        sampling_rate: rate,
        sample_pool: seq * rate,
        drops,
        input: Interface::Single(source),
        output: Interface::Single(source + 1),
        records: vec![FlowRecord::SampledHeader(SampledHeader::ethernet(
            frame, 128,
        ))],
    })
}

fn counter_sample(seq: u32, source: u32, octets: u64, name: &str) -> Sample {
    Sample::Counter(CounterSampleRepr {
        sequence_number: seq,
        source_id: DataSource::if_index(source),
        records: vec![
            CounterRecord::GenericInterface(GenericInterfaceCounters {
                if_index: source,
                if_status: 3,
                if_speed: 10_000_000_000,
                if_in_octets: octets,
                if_out_octets: 2 * octets,
                if_in_ucast_pkts: 7,
                ..GenericInterfaceCounters::default()
            }),
            CounterRecord::PortName(PortName { name: name.into() }),
        ],
    })
}

fn datagram(agent: &str, seq: u32, uptime_ms: u32, samples: Vec<Sample>) -> Vec<u8> {
    let d = DatagramRepr {
        agent: agent.parse().unwrap(),
        sub_agent_id: 0,
        sequence_number: seq,
        uptime_ms,
        samples,
    };
    let mut buf = vec![0u8; d.buffer_len()];
    d.emit(&mut buf).unwrap();
    buf
}

/// Datagrams 1..=20, each with a flow sample (drops growing by 5) and a counter sample of
/// port 3; datagrams 4, 9 and 10 are dropped between sender and listener; then the agent
/// restarts. The loss metrics say exactly what was dropped.
#[test]
fn sequence_gaps_restarts_and_agent_drops_are_counted_exactly() {
    let f = frame([10, 0, 0, 1], [10, 0, 0, 2], 100);
    let dropped = [4u32, 9, 10];
    let mut sent = Vec::new();
    for seq in 1..=20u32 {
        let d = datagram(
            AGENT,
            seq,
            1000 + seq,
            vec![
                flow_sample(seq, 3, 64, 5 * seq, &f),
                counter_sample(seq, 3, 1000 * u64::from(seq), "vm1-eth0"),
            ],
        );
        if !dropped.contains(&seq) {
            sent.push(d);
        }
    }
    // A restart: the sequence and uptime start over.
    sent.push(datagram(AGENT, 1, 5, vec![flow_sample(1, 3, 64, 0, &f)]));
    sent.push(datagram(AGENT, 2, 6, vec![flow_sample(2, 3, 64, 0, &f)]));
    let mut p = SflowProbe::start(&[]);
    send_all(p.v4, &sent);
    wait_handled(&p, sent.len());
    let s = scrape(&p);
    let a = [("agent", AGENT), ("sub_agent", "0")];
    let m = |name| sum(&s, name, &a);
    assert_eq!(m("mirrorflow_sflow_in_datagrams_total"), sent.len() as f64);
    assert_eq!(m("mirrorflow_sflow_in_lost_datagrams_total"), 3.0);
    assert_eq!(m("mirrorflow_sflow_in_agent_restarts_total"), 1.0);
    assert_eq!(m("mirrorflow_sflow_in_out_of_order_datagrams_total"), 0.0);
    let lost = |k| {
        sum(
            &s,
            "mirrorflow_sflow_in_lost_samples_total",
            &[a[0], a[1], ("kind", k)],
        )
    };
    assert_eq!((lost("flow"), lost("counter")), (3.0, 3.0));
    // Drops grew from 5 (first sample) to 100 (sample 20) before the restart.
    assert_eq!(m("mirrorflow_sflow_in_agent_dropped_packets_total"), 95.0);
    // The port's latest counters, its name and state.
    let port = [a[0], a[1], ("port", "3")];
    let dir = |d| {
        sum(
            &s,
            "mirrorflow_sflow_port_bytes_total",
            &[port[0], port[1], port[2], ("direction", d)],
        )
    };
    assert_eq!((dir("in"), dir("out")), (20_000.0, 40_000.0));
    assert_eq!(sum(&s, "mirrorflow_sflow_port_up", &port), 1.0);
    assert_eq!(
        sum(
            &s,
            "mirrorflow_sflow_port_info",
            &[port[0], port[1], port[2], ("name", "vm1-eth0")]
        ),
        1.0
    );
    assert!(p.terminate().success());
}

/// Flows from sFlow name their agent, data source, ports and rate; counts are the samples'
/// unless `--sflow-in-scale` multiplies them by the rate.
#[test]
fn flows_from_sflow_carry_their_origin() {
    for scale in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("flows.json");
        let mut args = vec!["--json", json.to_str().unwrap()];
        if scale {
            args.push("--sflow-in-scale");
        }
        let mut p = SflowProbe::start(&args);
        let a = frame([10, 0, 0, 1], [10, 0, 0, 2], 1000);
        let b = frame([10, 0, 0, 3], [10, 0, 0, 4], 100);
        let mut sent = Vec::new();
        for seq in 1..=30u32 {
            let mut samples = vec![flow_sample(seq, 7, 100, 0, &a)];
            if seq <= 10 {
                samples.push(flow_sample(seq, 9, 10, 0, &b));
            }
            sent.push(datagram("2001:db8::10", seq, seq, samples));
        }
        send_all(p.v6, &sent);
        wait_handled(&p, sent.len());
        assert!(p.terminate().success(), "{}", p.log());
        let flows: Vec<serde_json::Value> = std::fs::read_to_string(&json)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(flows.len(), 2, "{flows:?}");
        for (src, samples, rate, ip_len, input) in [
            ("10.0.0.1", 30u64, 100u64, 1028u64, 7u64),
            ("10.0.0.3", 10, 10, 128, 9),
        ] {
            let f = flows.iter().find(|f| f["src_addr"] == src).expect(src);
            let k = if scale { rate } else { 1 };
            assert_eq!(f["packets"].as_u64(), Some(samples * k), "{f}");
            assert_eq!(f["bytes"].as_u64(), Some(samples * ip_len * k), "{f}");
            assert_eq!(f["agent"], "2001:db8::10");
            assert_eq!(f["sampling_rate"].as_u64(), Some(rate));
            assert_eq!(f["source_id"].as_u64(), Some(input));
            assert_eq!(
                (f["in_if"].as_u64(), f["out_if"].as_u64()),
                (Some(input), Some(input + 1))
            );
        }
    }
}

/// VmRSS of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// A flood of datagrams whose lengths lie (each claims a sample of 100 MB, or 10^6
/// samples) is refused by reason without growing the process, and the listener goes on.
#[test]
fn lying_datagrams_are_refused_at_bounded_memory() {
    let mut p = SflowProbe::start(&[]);
    let f = frame([10, 0, 0, 1], [10, 0, 0, 2], 100);
    let good = datagram(AGENT, 1, 1, vec![flow_sample(1, 3, 10, 0, &f)]);
    send_all(p.v4, std::slice::from_ref(&good));
    wait_handled(&p, 1);
    let before = rss(p.child.id());
    let mut long = good.clone();
    long[32..36].copy_from_slice(&100_000_000u32.to_be_bytes()); // the sample's length
    let mut many = good.clone();
    many[24..28].copy_from_slice(&1_000_000u32.to_be_bytes()); // the sample count
    let flood: Vec<Vec<u8>> = (0..20_000)
        .map(|i| {
            if i % 2 == 0 {
                long.clone()
            } else {
                many.clone()
            }
        })
        .collect();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (i, d) in flood.iter().enumerate() {
        sock.send_to(d, p.v4).unwrap();
        if i % 1000 == 999 {
            // Keep within the socket buffer: wait until the listener has caught up.
            wait_handled(&p, i + 2);
        }
    }
    wait_handled(&p, flood.len() + 1);
    let s = scrape(&p);
    let reason = |r| {
        sum(
            &s,
            "mirrorflow_sflow_in_dropped_datagrams_total",
            &[("reason", r)],
        )
    };
    assert_eq!(reason("length"), flood.len() as f64);
    assert_eq!(reason("queue_full"), 0.0);
    let after = rss(p.child.id());
    assert!(
        after < before + 16 * 1024 * 1024,
        "RSS grew from {before} to {after} bytes"
    );
    send_all(
        p.v4,
        &[datagram(AGENT, 2, 2, vec![flow_sample(2, 3, 10, 0, &f)])],
    );
    wait_handled(&p, flood.len() + 2);
    assert_eq!(
        sum(&scrape(&p), "mirrorflow_sflow_in_datagrams_total", &[]),
        2.0
    );
    assert!(p.terminate().success());
}

/// With `--sflow` collectors, every datagram received is relayed to each of them byte for
/// byte, in order (beside mirrorflow's own agent datagrams, which carry its agent address).
#[test]
fn the_relay_forwards_every_datagram_unchanged() {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let target: SocketAddr = collector.local_addr().unwrap();
    let mut p = SflowProbe::start(&[
        "--sflow",
        &target.to_string(),
        "--agent-address",
        "127.0.0.9",
    ]);
    let payloads = udp_payloads(&shared_pcap("tcpdump__sflow-print-v6.pcap"), 6343);
    send_all(p.v4, &payloads);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while got.len() < payloads.len() {
        let n = collector.recv(&mut buf).expect("relayed datagram");
        // mirrorflow's own agent datagrams name 127.0.0.9; skip them.
        if buf[4..12] != [0, 0, 0, 1, 127, 0, 0, 9] {
            got.push(buf[..n].to_vec());
        }
    }
    assert_eq!(got, payloads);
    let s = scrape(&p);
    let t = target.to_string();
    assert_eq!(
        sum(
            &s,
            "mirrorflow_sflow_in_relayed_datagrams_total",
            &[("collector", &t)]
        ),
        payloads.len() as f64
    );
    assert!(p.terminate().success());
}
