//! sFlow in from a real Open vSwitch (issue 7): the switch's own sFlow agent, on the userspace
//! datapath of `tests/testbed/ovs-testbed.sh` (five VMs in network namespaces), sends to
//! mirrorflow's `--sflow-listen`; mirrorflow exports IPFIX to a real nfcapd, with
//! `--sflow-in-scale`, `--json`, `--metrics-listen` and `--ovsdb` (the testbed's database).
//!
//! Proves that
//! - mirrorflow takes every datagram Open vSwitch sent (captured on lo): datagrams, flow and
//!   counter samples counted exactly, no loss, no refusal, every flow sample one frame; and
//!   states which structures Open vSwitch 3.1 sends (per port 0:1 generic, 0:2 Ethernet, 0:1004
//!   OpenFlow port, 0:1005 port name; per bridge 0:2203 app resources and 0:2207 datapath;
//!   flow samples 0:1 raw header and 0:1001 extended switch);
//! - (a) per iperf3 stream and direction, the bytes and packets in the IPFIX export as nfdump
//!   reads them (sampled counts × rate) agree with the truth (Open vSwitch's port counters of
//!   the receiving port over the stream, which match iperf3's own counts) within 5 standard
//!   errors of 1-in-N sampling; those records carry the sender's and receiver's ifIndex; the
//!   JSON flows between VMs name agent, data source, rate, ports and VMs, and sum to what
//!   nfdump holds;
//! - (b) once traffic is quiet and a counter poll has come in after it,
//!   `mirrorflow_sflow_port_bytes_total` and `mirrorflow_sflow_port_packets_total{cast=
//!   "unicast"}` of every VM port lie between two `ovs-ofctl dump-ports` readings taken before
//!   and after that poll (equal when nothing moved in between; direction `in` is OVS's rx),
//!   and the datapath counters (0:2207) between two `ovs-appctl dpctl/show` readings;
//! - (c) `mirrorflow_sflow_port_info` names every VM port by its Open vSwitch interface name
//!   and VM id;
//! - (d) every IPFIX datagram passes `export-check.sh`.
//!
//! Needs root, Open vSwitch, iperf3, iproute2, ethtool, python3, nfdump and tshark: without
//! them the test fails naming the tool. One #[test]: one ovs-vswitchd per machine (the script
//! takes /run/mft-testbed.lock and makes concurrent callers take turns).

mod metrics_support;
mod netflow_support;
mod sflow_in_support;
mod sflow_support;
mod testbed_support;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use metrics_support::{get, parse, sum, Sample as Series};
use mirrorflow_sflow::DatagramRepr;
use netflow_support::Nfcapd;
use serde_json::Value;
use sflow_in_support::{send_all, udp_payloads, wait_for, SflowProbe};
use sflow_parser::models::SampleData;
use sflow_support::Capture;
use testbed_support::{parse_dump_ports, Testbed};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testbed/ovs-testbed.sh");

/// Open vSwitch samples 1 packet in `RATE`: enough samples of every stream for a bound of a
/// few percent in a run of seconds.
const RATE: u64 = 8;
/// Open vSwitch's counter polling interval, seconds.
const POLLING_S: u64 = 1;
/// The UDP streams: 2400 datagrams at 20 Mbit/s (about 1 s each), some 300 samples each.
const UDP_PACKETS: u64 = 2400;
const UDP_RATE: &str = "20M";
/// Estimates must be within this many standard errors of the truth.
const SIGMAS: f64 = 5.0;
/// Open vSwitch's agent address (`agent=lo`).
const OVS_AGENT: &str = "127.0.0.1";
/// Open vSwitch's flow sampler and global counters: one per bridge, data source
/// entPhysicalEntry (type 2), index 1000 + sub_id (ofproto-dpif-sflow.c).
const OVS_SAMPLER: u32 = 1000;
/// Agent address of the marker datagram that closes the stream.
const MARKER_AGENT: &str = "192.0.2.77";

/// Runs an Open vSwitch tool against the testbed's daemons; panics with its stderr on failure.
fn ovs(bed: &Testbed, tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .env("OVS_RUNDIR", bed.get("OVS_RUNDIR"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{tool} (openvswitch-switch) could not be run: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// ovs-vsctl on the testbed's database; it returns once vswitchd has applied the change.
fn vsctl(bed: &Testbed, args: &[&str]) -> String {
    let db = format!("--db=unix:{}", bed.get("DB_SOCK"));
    let mut all = vec![db.as_str(), "--timeout=20"];
    all.extend_from_slice(args);
    ovs(bed, "ovs-vsctl", &all)
}

/// `ovs-appctl dpctl/show`: (hit, missed, lost, flows) of the (only) datapath.
fn dpctl_show(bed: &Testbed) -> [u64; 4] {
    let text = ovs(
        bed,
        "ovs-appctl",
        &["-t", bed.get("CTL_SOCK"), "dpctl/show"],
    );
    let value = |key: &str| -> u64 {
        let at = text
            .find(key)
            .unwrap_or_else(|| panic!("no {key} in dpctl/show:\n{text}"))
            + key.len();
        text[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    [
        value("hit:"),
        value("missed:"),
        value("lost:"),
        value("flows: "),
    ]
}

/// The testbed's known traffic, with larger and faster UDP streams than its defaults.
fn traffic(bed: &Testbed) -> PathBuf {
    let out = Command::new("bash")
        .arg(SCRIPT)
        .arg("traffic")
        .arg(bed.dir.path())
        .env("UDP_PACKETS", UDP_PACKETS.to_string())
        .env("UDP_RATE", UDP_RATE)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ovs-testbed.sh traffic: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bed.dir.path().join("traffic")
}

fn scrape(p: &SflowProbe) -> Vec<Series> {
    parse(&get(p.metrics, "/metrics"))
}

fn ovs_labels() -> [(&'static str, &'static str); 2] {
    [("agent", OVS_AGENT), ("sub_agent", "0")]
}

fn counter_samples(s: &[Series]) -> f64 {
    let [a, b] = ovs_labels();
    sum(
        s,
        "mirrorflow_sflow_in_samples_total",
        &[a, b, ("kind", "counter")],
    )
}

/// The VM (1..=5) that owns address `a` (IPv4 or IPv6).
fn vm_of_addr(bed: &Testbed, a: IpAddr) -> Option<usize> {
    (1..=5).find(|&n| {
        ["IP4", "IP6"]
            .iter()
            .any(|ip| bed.vm(n, ip).parse::<IpAddr>().ok() == Some(a))
    })
}

#[test]
fn open_vswitch_sflow_into_mirrorflow() {
    let t0 = Instant::now();
    let work = tempfile::tempdir().unwrap();
    // Open vSwitch's agent sends to a socket of ours until mirrorflow is up.
    let placeholder = UdpSocket::bind("127.0.0.1:0").unwrap();
    let bed = Testbed::up(
        SCRIPT,
        "mft-",
        &[
            (
                "SFLOW_TARGET",
                placeholder.local_addr().unwrap().to_string(),
            ),
            ("SFLOW_SAMPLING", RATE.to_string()),
            ("SFLOW_POLLING", POLLING_S.to_string()),
        ],
    )
    .with_panic_log("log/ovs-vswitchd.log");
    let t_up = t0.elapsed();
    let nfcapd = Nfcapd::start();
    let json = work.path().join("flows.jsonl");
    let stats = work.path().join("stats.json");
    let mut probe = SflowProbe::start(&[
        "--sflow-in-scale",
        "--ipfix",
        &format!("127.0.0.1:{}", nfcapd.port),
        "--json",
        json.to_str().unwrap(),
        "--stats-json",
        stats.to_str().unwrap(),
        "--ovsdb",
        &format!("unix:{}", bed.get("DB_SOCK")),
    ]);
    let sflow_port = probe.v4.port();
    let capture = Capture::start(work.path(), &[nfcapd.port, sflow_port]);

    // Point Open vSwitch's agent at mirrorflow. The testbed's select-all mirror goes: with it
    // every frame leaves by two ports, and Open vSwitch reports the output as "multiple
    // ports" (sFlow v5 §5 interface format 2), which names no ifIndex.
    let bridge = bed.get("BRIDGE");
    let sflow_row = vsctl(&bed, &["get", "Bridge", bridge, "sflow"]);
    vsctl(
        &bed,
        &[
            "--",
            "clear",
            "Bridge",
            bridge,
            "mirrors",
            "--",
            "set",
            "sFlow",
            sflow_row.trim(),
            &format!("targets=\"{}\"", probe.v4),
        ],
    );
    drop(placeholder);
    let [agent, _] = ovs_labels();
    let mut s = Vec::new();
    let named = wait_for(Duration::from_secs(10 * POLLING_S), || {
        s = scrape(&probe);
        (1..=5).all(|n| {
            let port = [("port", bed.vm(n, "IFINDEX")), ("vm", bed.vm(n, "VM_ID"))];
            sum(&s, "mirrorflow_sflow_port_info", &[agent, port[0], port[1]]) == 1.0
        })
    });
    assert!(
        named,
        "no counters of every VM port from Open vSwitch:\n{}",
        probe.log()
    );

    let t_traffic = Instant::now();
    let results = traffic(&bed);
    let traffic_s = t_traffic.elapsed();

    // (b) Counters of a poll after the traffic, between two readings of OVS's own.
    let t_poll = Instant::now();
    let (ports1, dp1) = (bed.dump_ports(), dpctl_show(&bed));
    let s0 = scrape(&probe);
    let pollers = s0
        .iter()
        .filter(|x| {
            x.name == "mirrorflow_sflow_port_info"
                || x.name == "mirrorflow_sflow_ovs_datapath_flows"
        })
        .count() as f64;
    let c0 = counter_samples(&s0);
    // Every poller sends one sample per interval: 2 × pollers more samples than at the first
    // reading hold a whole poll taken after it.
    let mut s1 = Vec::new();
    let polled = wait_for(Duration::from_secs(10 * POLLING_S), || {
        s1 = scrape(&probe);
        counter_samples(&s1) >= c0 + 2.0 * pollers
    });
    let (ports2, dp2) = (bed.dump_ports(), dpctl_show(&bed));
    let poll_s = t_poll.elapsed();
    assert!(
        polled,
        "no new counter poll: {c0} samples of {pollers} pollers, then {}",
        counter_samples(&s1)
    );
    port_counters_match_ofctl(&bed, &s1, &ports1, &ports2);
    datapath_counters_match_dpctl(&s1, dp1, dp2);
    ports_are_named(&bed, &s1);

    // Close the stream: Open vSwitch's agent off, then a marker datagram of another agent
    // behind everything it sent (one socket, handled in order).
    vsctl(&bed, &["clear", "Bridge", bridge, "sflow"]);
    let marker = DatagramRepr {
        agent: MARKER_AGENT.parse().unwrap(),
        sub_agent_id: 0,
        sequence_number: 1,
        uptime_ms: 1,
        samples: vec![],
    };
    let mut buf = vec![0u8; marker.buffer_len()];
    marker.emit(&mut buf).unwrap();
    send_all(probe.v4, &[buf]);
    let mut last = Vec::new();
    let closed = wait_for(Duration::from_secs(10), || {
        last = scrape(&probe);
        sum(
            &last,
            "mirrorflow_sflow_in_datagrams_total",
            &[("agent", MARKER_AGENT)],
        ) == 1.0
    });
    assert!(closed, "the marker datagram was not handled");
    let status = probe.terminate();
    assert!(status.success(), "mirrorflow: {status}: {}", probe.log());
    let nf_port = nfcapd.port;
    let (_nf_keep, nf_dir) = nfcapd.stop();
    let file = capture.stop();

    every_datagram_was_taken(&file, sflow_port, &last, &stats);
    ipfix_passes_export_check(&file, nf_port);
    let records = nfdump_records(&nf_dir);
    estimates_agree_with_the_truth(&bed, &results, &records);
    json_flows_name_their_origin(&bed, &json, &records);
    eprintln!(
        "timings: testbed up {:.1} s, traffic {:.1} s, counter poll after traffic {:.1} s, \
         total {:.1} s",
        t_up.as_secs_f64(),
        traffic_s.as_secs_f64(),
        poll_s.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}

/// (b) A port's ifInOctets counts what the switch received on it (OVS rx), ifOutOctets what it
/// sent (OVS tx); Open vSwitch puts every packet received / sent in ifInUcastPkts /
/// ifOutUcastPkts (ofproto-dpif-sflow.c `sflow_agent_get_counters`: rx_packets, tx_packets).
/// A poll taken between the two readings lies between them.
fn port_counters_match_ofctl(
    bed: &Testbed,
    s: &[Series],
    before: &HashMap<String, [u64; 4]>,
    after: &HashMap<String, [u64; 4]>,
) {
    let [agent, sub] = ovs_labels();
    let mut moved = 0;
    for n in 1..=5 {
        let (ifindex, of) = (bed.vm(n, "IFINDEX"), bed.vm(n, "OFPORT"));
        let (b, a) = (before[of], after[of]);
        let port = ("port", ifindex);
        for (dir, pi, bi) in [("in", 0, 1), ("out", 2, 3)] {
            let d = ("direction", dir);
            let bytes = sum(
                s,
                "mirrorflow_sflow_port_bytes_total",
                &[agent, sub, port, d],
            ) as u64;
            let packets = sum(
                s,
                "mirrorflow_sflow_port_packets_total",
                &[agent, sub, port, d, ("cast", "unicast")],
            ) as u64;
            eprintln!(
                "port counters vm{n} ({}, ifIndex {ifindex}) {dir}: sFlow {bytes} bytes {packets} \
                 packets; ovs-ofctl {}..{} bytes {}..{} packets",
                bed.vm(n, "PORT"),
                b[bi],
                a[bi],
                b[pi],
                a[pi]
            );
            assert!(bytes > 0, "vm{n} {dir}: no bytes");
            assert!(
                b[bi] <= bytes && bytes <= a[bi],
                "vm{n} {dir}: sFlow {bytes} bytes, ovs-ofctl {} then {}",
                b[bi],
                a[bi]
            );
            assert!(
                b[pi] <= packets && packets <= a[pi],
                "vm{n} {dir}: sFlow {packets} packets, ovs-ofctl {} then {}",
                b[pi],
                a[pi]
            );
            moved += a[bi] - b[bi];
        }
        assert_eq!(
            sum(s, "mirrorflow_sflow_port_up", &[agent, sub, port]),
            1.0,
            "vm{n}"
        );
    }
    eprintln!("port counters: the VM ports moved by {moved} bytes between the two readings");
}

/// The datapath's lookup counters (0:2207) against `dpctl/show` read before and after the
/// poll; its flow count may only fall meanwhile (idle flows expire, no traffic adds any).
fn datapath_counters_match_dpctl(s: &[Series], before: [u64; 4], after: [u64; 4]) {
    let [agent, sub] = ovs_labels();
    let index = OVS_SAMPLER.to_string();
    let dp = ("datapath", index.as_str());
    for (i, result) in ["hit", "missed", "lost"].into_iter().enumerate() {
        let v = sum(
            s,
            "mirrorflow_sflow_ovs_datapath_lookups_total",
            &[agent, sub, dp, ("result", result)],
        ) as u64;
        eprintln!(
            "datapath lookups {result}: sFlow {v}; dpctl/show {}..{}",
            before[i], after[i]
        );
        assert!(
            before[i] <= v && v <= after[i],
            "datapath {result}: sFlow {v}, dpctl/show {} then {}",
            before[i],
            after[i]
        );
    }
    assert!(before[0] > 0, "no datapath hits");
    let flows = sum(s, "mirrorflow_sflow_ovs_datapath_flows", &[agent, sub, dp]) as u64;
    eprintln!(
        "datapath flows: sFlow {flows}; dpctl/show {} then {}",
        before[3], after[3]
    );
    assert!(
        before[3].min(after[3]) <= flows && flows <= before[3].max(after[3]),
        "datapath flows: sFlow {flows}, dpctl/show {} then {}",
        before[3],
        after[3]
    );
}

/// (c) One info series per VM port: its Open vSwitch interface name (sFlow port name, 0:1005)
/// and VM id (the port map read from OVSDB).
fn ports_are_named(bed: &Testbed, s: &[Series]) {
    for n in 1..=5 {
        let info: Vec<&Series> = s
            .iter()
            .filter(|x| {
                x.name == "mirrorflow_sflow_port_info"
                    && x.labels["agent"] == OVS_AGENT
                    && x.labels["port"] == bed.vm(n, "IFINDEX")
            })
            .collect();
        assert_eq!(info.len(), 1, "vm{n}: {info:?}");
        let l = &info[0].labels;
        assert_eq!(
            (l["name"].as_str(), l["vm"].as_str(), info[0].value),
            (bed.vm(n, "PORT"), bed.vm(n, "VM_ID"), 1.0),
            "vm{n}"
        );
        eprintln!(
            "port info vm{n}: port {} name {} vm {}",
            l["port"], l["name"], l["vm"]
        );
    }
}

/// What Open vSwitch sent (the capture) against what mirrorflow counted once the stream was
/// closed: every datagram and sample, none lost or refused, every flow sample one frame.
fn every_datagram_was_taken(file: &Path, port: u16, s: &[Series], stats: &Path) {
    let (mut datagrams, mut flow, mut counter) = (0u64, 0u64, 0u64);
    let mut structures: BTreeMap<String, u64> = BTreeMap::new();
    for p in udp_payloads(file, port) {
        let d = sflow_parser::parse_datagram(&p).expect("Open vSwitch's datagram decodes");
        if !matches!(d.agent_address, sflow_parser::models::Address::IPv4(a) if a.is_loopback()) {
            continue; // the marker
        }
        datagrams += 1;
        for sample in &d.samples {
            match &sample.sample_data {
                SampleData::FlowSample(f) => {
                    flow += 1;
                    assert_eq!(
                        (
                            f.source_id.source_type(),
                            f.source_id.index(),
                            f.sampling_rate
                        ),
                        (2, OVS_SAMPLER, RATE as u32)
                    );
                    for r in &f.flow_records {
                        let k = format!(
                            "flow sample, source type 2: record {}:{}",
                            r.flow_format.enterprise(),
                            r.flow_format.format()
                        );
                        *structures.entry(k).or_default() += 1;
                    }
                }
                SampleData::CountersSample(c) => {
                    counter += 1;
                    for r in &c.counters {
                        let k = format!(
                            "counter sample, source type {}: record {}:{}",
                            c.source_id.source_type(),
                            r.counter_format.enterprise(),
                            r.counter_format.format()
                        );
                        *structures.entry(k).or_default() += 1;
                    }
                }
                other => panic!("Open vSwitch sent an unexpected sample: {other:?}"),
            }
        }
    }
    eprintln!(
        "Open vSwitch sent {datagrams} datagrams, {flow} flow samples, {counter} counter samples:"
    );
    for (k, n) in &structures {
        eprintln!("  {k} × {n}");
    }
    let want = [
        "counter sample, source type 0: record 0:1",
        "counter sample, source type 0: record 0:1004",
        "counter sample, source type 0: record 0:1005",
        "counter sample, source type 0: record 0:2",
        "counter sample, source type 2: record 0:2203",
        "counter sample, source type 2: record 0:2207",
        "flow sample, source type 2: record 0:1",
        "flow sample, source type 2: record 0:1001",
    ];
    assert_eq!(
        structures.keys().map(String::as_str).collect::<Vec<_>>(),
        want,
        "the structures Open vSwitch sends"
    );
    let [agent, sub] = ovs_labels();
    let m = |name: &str, extra: &[(&str, &str)]| {
        let mut l = vec![agent, sub];
        l.extend_from_slice(extra);
        sum(s, name, &l)
    };
    let kind = |k| m("mirrorflow_sflow_in_samples_total", &[("kind", k)]);
    let lost = |k| m("mirrorflow_sflow_in_lost_samples_total", &[("kind", k)]);
    let got = (
        m("mirrorflow_sflow_in_datagrams_total", &[]),
        kind("flow"),
        kind("counter"),
        kind("other"),
    );
    eprintln!(
        "mirrorflow: (datagrams, flow, counter, other samples) {got:?}; agent drops {}",
        m("mirrorflow_sflow_in_agent_dropped_packets_total", &[])
    );
    assert_eq!(
        got,
        (datagrams as f64, flow as f64, counter as f64, 0.0),
        "mirrorflow vs the capture"
    );
    for name in [
        "mirrorflow_sflow_in_lost_datagrams_total",
        "mirrorflow_sflow_in_out_of_order_datagrams_total",
        "mirrorflow_sflow_in_agent_restarts_total",
    ] {
        assert_eq!(m(name, &[]), 0.0, "{name}");
    }
    assert_eq!((lost("flow"), lost("counter")), (0.0, 0.0), "lost samples");
    for name in [
        "mirrorflow_sflow_in_dropped_datagrams_total",
        "mirrorflow_sflow_in_unused_samples_total",
    ] {
        assert_eq!(sum(s, name, &[]), 0.0, "{name}");
    }
    let report: Value = serde_json::from_str(&std::fs::read_to_string(stats).unwrap()).unwrap();
    assert_eq!(
        report["frames"].as_u64(),
        Some(flow),
        "every flow sample is one frame: {report}"
    );
}

/// (d) Every IPFIX datagram mirrorflow sent to nfcapd, as Wireshark reads it.
fn ipfix_passes_export_check(file: &Path, port: u16) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/export-check.sh");
    assert!(script.is_file(), "{} is missing", script.display());
    let out = Command::new("bash")
        .arg(&script)
        .arg(file)
        .arg(port.to_string())
        .output()
        .expect("running export-check.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(" 0 problems"),
        "export-check.sh: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decode = format!("udp.port=={port},cflow");
    let ipfix = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-d", &decode, "-Y", "cflow.version == 10"])
        .output()
        .expect("running tshark");
    let n = ipfix.stdout.iter().filter(|&&b| b == b'\n').count();
    eprintln!("IPFIX: {n} datagrams; {}", text.trim());
    assert!(n > 0, "no IPFIX datagram in the capture");
}

/// One flow record as nfdump reads it back from nfcapd's files.
#[derive(Debug)]
struct NfRecord {
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    packets: u64,
    bytes: u64,
    input: u64,
    output: u64,
}

fn nfdump_records(dir: &Path) -> Vec<NfRecord> {
    netflow_support::nfdump_json(dir)
        .iter()
        .map(|r| {
            let u = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
            let addr = |v4: &str, v6: &str| -> IpAddr {
                r[v4].as_str().or(r[v6].as_str()).unwrap().parse().unwrap()
            };
            NfRecord {
                src: addr("src4_addr", "src6_addr"),
                dst: addr("dst4_addr", "dst6_addr"),
                // ICMP records have no ports.
                src_port: r["src_port"].as_u64().unwrap_or(0) as u16,
                dst_port: r["dst_port"].as_u64().unwrap_or(0) as u16,
                packets: u("in_packets"),
                bytes: u("in_bytes"),
                input: u("input_snmp"),
                output: u("output_snmp"),
            }
        })
        .collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (a) Per iperf3 stream and direction: the truth is what Open vSwitch delivered to the
/// receiving VM's port over the stream (`ovs-ofctl dump-ports` before and after it, tx
/// packets and bytes; IP bytes = frame bytes − 14 per frame); the estimate is nfdump's
/// packets and bytes, already multiplied by the rate, of every record of that direction to or
/// from port 5201 (iperf3's data and its TCP control connection, as on the port). Each of the
/// P packets is sampled with p = 1/N independently: the packet estimate has standard
/// deviation √(P·(N−1)); with n samples, the byte estimate's relative standard error is
/// √((1−p)/n), the packets of one direction being of one size (full segments, pure ACKs,
/// fixed datagrams). Both within 5 standard errors; n from the samples received.
fn estimates_agree_with_the_truth(bed: &Testbed, results: &Path, records: &[NfRecord]) {
    let p = 1.0 / RATE as f64;
    for (name, client, server, ip, proto) in [
        ("udp4", 2, 3, "IP4", 17u8),
        ("udp6-vlan", 4, 5, "IP6", 17),
        ("tcp4", 1, 2, "IP4", 6),
        ("tcp6", 3, 1, "IP6", 6),
    ] {
        let ports = |when: &str| {
            parse_dump_ports(
                &std::fs::read_to_string(results.join(format!("{name}.ports.{when}"))).unwrap(),
            )
        };
        let (before, after) = (ports("before"), ports("after"));
        let report = read_json(&results.join(format!("{name}.json")));
        // The UDP reverse direction is iperf3's one connect reply: only TCP has two streams.
        let directions: &[bool] = if proto == 6 { &[true, false] } else { &[true] };
        for &to_server in directions {
            let (from, to) = if to_server {
                (client, server)
            } else {
                (server, client)
            };
            let (src, dst): (IpAddr, IpAddr) = (
                bed.vm(from, ip).parse().unwrap(),
                bed.vm(to, ip).parse().unwrap(),
            );
            let of = bed.vm(to, "OFPORT");
            let packets = after[of][2] - before[of][2];
            let ip_bytes = after[of][3] - before[of][3] - 14 * packets;
            let stream: Vec<&NfRecord> = records
                .iter()
                .filter(|r| {
                    (r.src, r.dst) == (src, dst)
                        && if to_server {
                            r.dst_port == 5201
                        } else {
                            r.src_port == 5201
                        }
                })
                .collect();
            let want_if = (
                bed.num(&format!("VM{from}_IFINDEX")),
                bed.num(&format!("VM{to}_IFINDEX")),
            );
            for r in &stream {
                assert_eq!((r.input, r.output), want_if, "{name}: {r:?}");
                assert_eq!(
                    r.packets % RATE,
                    0,
                    "{name}: counts are samples × {RATE}: {r:?}"
                );
            }
            let est_packets: u64 = stream.iter().map(|r| r.packets).sum();
            let est_bytes: u64 = stream.iter().map(|r| r.bytes).sum();
            let n = est_packets / RATE;
            let sigma_p = (packets as f64 * (RATE - 1) as f64).sqrt();
            let sigma_b = ip_bytes as f64 * ((1.0 - p) / n.max(1) as f64).sqrt();
            let way = if to_server { "to server" } else { "to client" };
            eprintln!(
                "{name} {way} {src} → {dst}: truth {packets} packets {ip_bytes} IP bytes; \
                 IPFIX {est_packets} packets ({:+.1} σ) {est_bytes} bytes ({:+.1} σ, {:+.1} %) \
                 from {n} samples in {} records; σ {sigma_p:.0} packets, {sigma_b:.0} bytes ({:.1} %)",
                (est_packets as f64 - packets as f64) / sigma_p,
                (est_bytes as f64 - ip_bytes as f64) / sigma_b,
                (est_bytes as f64 / ip_bytes as f64 - 1.0) * 100.0,
                stream.len(),
                sigma_b / ip_bytes as f64 * 100.0,
            );
            assert!(n >= 100, "{name} {way}: only {n} samples");
            assert!(
                (est_packets as f64 - packets as f64).abs() <= SIGMAS * sigma_p,
                "{name} {way}: {est_packets} packets estimated, {packets} true, bound {:.0}",
                SIGMAS * sigma_p
            );
            assert!(
                (est_bytes as f64 - ip_bytes as f64).abs() <= SIGMAS * sigma_b,
                "{name} {way}: {est_bytes} bytes estimated, {ip_bytes} true, bound {:.0}",
                SIGMAS * sigma_b
            );
            if proto == 17 {
                // The truth itself: iperf3's datagrams, its connect datagram and a few dozen
                // frames of its TCP control connection reached the server's port.
                let sent = report["end"]["sum"]["packets"].as_u64().unwrap();
                let lost = report["end"]["sum"]["lost_packets"].as_u64().unwrap();
                eprintln!("{name}: iperf3 sent {sent} datagrams, {lost} lost");
                assert_eq!(sent, UDP_PACKETS, "{name}: iperf3");
                assert!(
                    packets > sent - lost && packets <= sent + 40,
                    "{name}: the server's port took {packets} frames, iperf3 sent {sent}, lost {lost}"
                );
            } else if to_server {
                let sent = report["end"]["sum_sent"]["bytes"].as_u64().unwrap();
                eprintln!("{name}: iperf3 sent {sent} bytes of payload");
                assert!(
                    ip_bytes > sent,
                    "{name}: the frames carry at least the payload"
                );
            }
        }
    }
}

/// The JSON flows between two VMs: Open vSwitch's agent and sampler, the rate, the sender's
/// port as ingress and the receiver's as egress with their names and VM ids (port map by
/// ifIndex); counts multiples of the rate; in all the same packets and bytes as nfdump's
/// records between VMs.
fn json_flows_name_their_origin(bed: &Testbed, json: &Path, records: &[NfRecord]) {
    let (mut packets, mut bytes, mut flows) = (0, 0, 0);
    for line in std::fs::read_to_string(json).unwrap().lines() {
        let f: Value = serde_json::from_str(line).unwrap();
        let addr = |k: &str| f[k].as_str().and_then(|a| a.parse::<IpAddr>().ok());
        let (Some(a), Some(b)) = (
            addr("src_addr").and_then(|x| vm_of_addr(bed, x)),
            addr("dst_addr").and_then(|x| vm_of_addr(bed, x)),
        ) else {
            continue;
        };
        let got = (
            f["agent"].as_str(),
            f["sub_agent"].as_u64(),
            f["source_id"].as_u64(),
            f["sampling_rate"].as_u64(),
        );
        assert_eq!(
            got,
            (
                Some(OVS_AGENT),
                Some(0),
                Some(u64::from(OVS_SAMPLER)),
                Some(RATE)
            ),
            "{f}"
        );
        let ports = (
            f["in_if"].as_u64(),
            f["out_if"].as_u64(),
            f["in_port"].as_str(),
            f["out_port"].as_str(),
            f["in_vm"].as_str(),
            f["out_vm"].as_str(),
        );
        let want = (
            Some(bed.num(&format!("VM{a}_IFINDEX"))),
            Some(bed.num(&format!("VM{b}_IFINDEX"))),
            Some(bed.vm(a, "PORT")),
            Some(bed.vm(b, "PORT")),
            Some(bed.vm(a, "VM_ID")),
            Some(bed.vm(b, "VM_ID")),
        );
        assert_eq!(ports, want, "vm{a} → vm{b}: {f}");
        let n = f["packets"].as_u64().unwrap();
        assert_eq!(n % RATE, 0, "{f}");
        packets += n;
        bytes += f["bytes"].as_u64().unwrap();
        flows += 1;
    }
    let between_vms = records
        .iter()
        .filter(|r| vm_of_addr(bed, r.src).is_some() && vm_of_addr(bed, r.dst).is_some());
    let nf = between_vms.fold((0, 0), |t, r| (t.0 + r.packets, t.1 + r.bytes));
    eprintln!("json: {flows} flows between VMs, {packets} packets {bytes} bytes; nfdump {nf:?}");
    assert!(flows >= 6, "only {flows} JSON flows between VMs");
    assert_eq!(nf, (packets, bytes), "nfdump vs JSON, flows between VMs");
}
