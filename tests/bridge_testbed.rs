//! On a real Linux bridge: the testbed of `tests/testbed/bridge-testbed.sh` (a kernel bridge,
//! four VMs in network namespaces, every VM port mirrored with `tc … action mirred egress
//! mirror` on its ingress), known traffic between the VMs, and mirrorflow capturing on the
//! mirror veth's peer.
//!
//! Proves that
//! - mirrorflow receives every frame tc mirrored (the mirror veth's tx counter) and nothing
//!   twice: mirroring only the ingress of each bridge port copies a frame once, at the port
//!   it entered by; mirroring egress as well would count every unicast frame twice;
//! - ICMP echo (IPv4 and IPv6) is counted exactly per direction;
//! - for the iperf3 UDP streams (IPv4 and IPv6), exactly iperf3's datagrams plus iperf3's one
//!   4-byte connect datagram, at packets × IP datagram size bytes (and + 14 per frame at
//!   layer 2: the copies are untagged Ethernet frames);
//! - every VM pair that exchanged traffic appears in both directions;
//! - with a static `[[ports]]` map (the VMs' MACs → their bridge ports; no OVSDB here), every
//!   JSON flow between two VMs names the sender's port/VM/index as `in_*` and the receiver's
//!   as `out_*`, other flows come in on the catch-all index 1;
//! - the IPFIX export, stored by nfcapd, has exactly the JSON output's records, packets and
//!   bytes (`nfdump -I`);
//! - the sFlow export at 1-in-1, aggregated by pmacct's sfacctd, has exactly the JSON flows'
//!   packets per 5-tuple between VM addresses (every frame is a sample);
//! - the Prometheus traffic counters per ingress port (IPv4, and IPv6 UDP) equal the JSON
//!   flows of that port and class (scraped once the flow clock is the idle timeout and 2 s
//!   past the traffic);
//! - mirrorflow stops within 10 s of SIGTERM.
//!
//! Differences from the Open vSwitch testbed: no VLAN pair (the bridge would need
//! `vlan_filtering`, or the VMs 802.1Q sub-interfaces, and kernels built without
//! CONFIG_BRIDGE_VLAN_FILTERING / CONFIG_VLAN_8021Q, like this CI's, have neither); tc ingress
//! runs before the bridge's receive handler, so a copy is the frame as the VM sent it, never
//! tagged by the bridge. The mirror is `matchall`, or `u32 match u32 0 0` on kernels without
//! cls_matchall (also this CI's).
//!
//! Needs root, iproute2 (ip, tc, bridge, ss), ethtool, iputils-ping, iperf3, nfdump and pmacct:
//! without them the test fails with a message naming the tool. Unlike Open vSwitch, runs may
//! overlap (each has its own names).

mod metrics_support;
mod netflow_support;
mod sflow_support;
mod testbed_support;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use netflow_support::{nfdump_totals, Nfcapd};
use serde_json::Value;
use sflow_support::{udp_socket_state, wait_for, Sfacctd};
use testbed_support::{Probe, Testbed};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/testbed/bridge-testbed.sh"
);

/// Linux bridge specifics of the shared [`Testbed`].
impl Testbed {
    /// Frames the mirror veth has sent: what tc mirrored.
    fn mirrored(&self) -> u64 {
        let path = format!(
            "/sys/class/net/{}/statistics/tx_packets",
            self.get("MIRROR_PORT")
        );
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .trim()
            .parse()
            .unwrap()
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Flows(Vec<Value>);

impl Flows {
    fn matching(&self, f: impl Fn(&Value) -> bool) -> Vec<&Value> {
        self.0.iter().filter(|v| f(v)).collect()
    }

    fn sum(&self, key: &str, f: impl Fn(&Value) -> bool) -> u64 {
        self.matching(f)
            .iter()
            .map(|v| v[key].as_u64().unwrap())
            .sum()
    }
}

fn is_pair(f: &Value, src: &str, dst: &str) -> bool {
    f["src_addr"] == src && f["dst_addr"] == dst
}

#[test]
fn linux_bridge_tc_mirror_testbed() {
    let work = tempfile::tempdir().unwrap();
    let sfacctd = Sfacctd::start(work.path(), "src_host,dst_host,src_port,dst_port,proto");
    let (_, sfacctd_drops) = udp_socket_state(sfacctd.port).unwrap();
    let nfcapd = Nfcapd::start();
    let bed = Testbed::up(SCRIPT, "mfb-", &[]);
    let json = work.path().join("flows.jsonl");
    let stats = work.path().join("stats.json");
    let config = write_port_config(&bed, work.path());
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--ipfix",
        &format!("127.0.0.1:{}", nfcapd.port),
        "--sflow",
        &format!("127.0.0.1:{}", sfacctd.port),
        "--sflow-sampling",
        "1",
        "--sflow-polling",
        "1",
        "--agent-address",
        "192.0.2.1",
        "--metrics-listen",
        "127.0.0.1:0",
    ]
    .map(String::from);
    let probe = Probe::start(bed.get("CAPTURE_IF"), &json, &stats, &args);
    let before = bed.mirrored();
    let traffic = bed.traffic();
    let after = bed.mirrored();
    let scrape = scrape_after_traffic(&bed, probe.metrics.expect("no metrics address"));
    let rest = probe.stop();
    let (_nf_dir, nf_flows) = nfcapd.stop();
    eprintln!("mirrorflow: {rest}");

    let flows = Flows(
        std::fs::read_to_string(&json)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    );
    let report = read_json(&stats);
    let received = report["interfaces"][0]["received"].as_u64().unwrap();
    eprintln!(
        "mirror veth sent {} frames while traffic ran; mirrorflow received {received}, \
         {} flow records",
        after - before,
        report["flow_records"]
    );
    // The capture opens a moment before the first counter read: a VM's late start-up MLD
    // report may fall in between. A duplicated frame per packet would not fit.
    assert!(
        received >= after - before && received - (after - before) <= 10,
        "mirrorflow received {received} frames, tc mirrored {}",
        after - before
    );
    assert!(!flows.0.is_empty());
    // The static port map: a flow from a VM comes in on its port, anything else on the
    // catch-all index 1; never the capture interface.
    let ifindex: u64 = bed.get("CAPTURE_IFINDEX").parse().unwrap();
    for f in &flows.0 {
        assert_ne!(f["in_if"], ifindex, "{f}");
        match (1..=VMS).find(|&n| f["src_mac"] == bed.vm(n, "MAC")) {
            Some(n) => assert_eq!(f["in_if"], vm_index(&bed, n), "{f}"),
            None => assert_eq!(f["in_if"], 1, "{f}"),
        }
        assert_eq!(f.get("vlan_id").and_then(Value::as_u64).unwrap_or(0), 0);
    }
    udp_counts_equal_iperf3s(&bed, &flows, &traffic);
    icmp_is_exact(&bed, &flows);
    pairs_appear_in_both_directions(&bed, &flows);
    json_names_the_vms_of_every_pair(&bed, &flows);
    ipfix_totals_equal_json(&flows, &nf_flows);
    sflow_samples_equal_json_packets(&bed, &flows, &report, &sfacctd);
    let (_, drops) = udp_socket_state(sfacctd.port).unwrap();
    assert_eq!(drops, sfacctd_drops, "sfacctd's socket dropped datagrams");
    prometheus_traffic_equals_json(&bed, &flows, &scrape);
}

/// VMs of the testbed.
const VMS: usize = 4;
/// mirrorflow's default `--idle-timeout`: every VM flow has been exported (and counted in
/// Prometheus) this long after the traffic ends. (A 2 s idle timeout was tried: it split the
/// iperf3 UDP stream into records 4 ms apart, ended "idle".)
const IDLE_TIMEOUT_S: u64 = 15;

/// The port index a VM gets in the static map: its bridge port's Linux ifindex.
fn vm_index(bed: &Testbed, n: usize) -> u64 {
    bed.vm(n, "IFINDEX").parse().unwrap()
}

/// A config file with one `[[ports]]` table per VM: its bridge port's name and ifindex, its
/// MAC, VM id `vmN`. No OVSDB on a Linux bridge: this is the whole port map.
fn write_port_config(bed: &Testbed, dir: &Path) -> PathBuf {
    let mut text = String::new();
    for n in 1..=VMS {
        text += &format!(
            "[[ports]]\nname = \"{}\"\nindex = {}\nmacs = [\"{}\"]\nvm = \"vm{n}\"\n\n",
            bed.vm(n, "PORT"),
            vm_index(bed, n),
            bed.vm(n, "MAC")
        );
    }
    let path = dir.join("ports.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Both directions of every VM pair that talked: all of its flows name the sender's port,
/// index and VM as `in_*` and the receiver's as `out_*`.
fn json_names_the_vms_of_every_pair(bed: &Testbed, flows: &Flows) {
    for (a, b) in [(1, 2), (1, 3), (2, 3), (3, 4), (1, 4)] {
        for (src, dst) in [(a, b), (b, a)] {
            let pair = flows.matching(|f| {
                f["src_mac"] == bed.vm(src, "MAC") && f["dst_mac"] == bed.vm(dst, "MAC")
            });
            assert!(!pair.is_empty(), "no flow vm{src} → vm{dst}");
            let want = (
                Value::from(bed.vm(src, "PORT")),
                Value::from(bed.vm(dst, "PORT")),
                Value::from(format!("vm{src}")),
                Value::from(format!("vm{dst}")),
                Value::from(vm_index(bed, src)),
                Value::from(vm_index(bed, dst)),
            );
            for f in &pair {
                let got = (
                    f["in_port"].clone(),
                    f["out_port"].clone(),
                    f["in_vm"].clone(),
                    f["out_vm"].clone(),
                    f["in_if"].clone(),
                    f["out_if"].clone(),
                );
                assert_eq!(got, want, "vm{src} → vm{dst}: {f}");
            }
            eprintln!(
                "json vm{src} → vm{dst}: {} flows, in_port {} out_port {}",
                pair.len(),
                bed.vm(src, "PORT"),
                bed.vm(dst, "PORT")
            );
        }
    }
}

/// nfcapd stored as many IPFIX records, packets and bytes as the JSON output has.
fn ipfix_totals_equal_json(flows: &Flows, dir: &Path) {
    let theirs = nfdump_totals(dir);
    let all = |_: &Value| true;
    let mine = (
        flows.0.len() as u64,
        flows.sum("packets", all),
        flows.sum("bytes", all),
    );
    eprintln!("ipfix → nfcapd (flows, packets, bytes) {theirs:?}; json {mine:?}");
    assert_eq!(theirs, mine, "nfcapd vs JSON (flows, packets, bytes)");
}

/// (src, dst, src port, dst port, protocol); ICMP without ports (type/code travel apart).
type FiveTuple = (IpAddr, IpAddr, u16, u16, u8);

fn five_tuple(src: IpAddr, dst: IpAddr, sp: u16, dp: u16, proto: u8) -> FiveTuple {
    if matches!(proto, 1 | 58) {
        (src, dst, 0, 0, proto)
    } else {
        (src, dst, sp, dp, proto)
    }
}

/// Whether `a` is one of the VMs' addresses.
fn is_vm_addr(bed: &Testbed, a: IpAddr) -> bool {
    (1..=VMS).any(|n| {
        ["IP4", "IP6"]
            .iter()
            .any(|ip| bed.vm(n, ip).parse::<IpAddr>().ok() == Some(a))
    })
}

/// At 1-in-1 every frame is a flow sample: once sfacctd has all of them, the sampled packets
/// per 5-tuple between VM addresses equal the JSON flows' packets.
fn sflow_samples_equal_json_packets(
    bed: &Testbed,
    flows: &Flows,
    report: &Value,
    sfacctd: &Sfacctd,
) {
    let sink = report["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with("sflow:"))
        .unwrap_or_else(|| panic!("no sflow sink in --stats-json: {report}"));
    let sent = sink["records_written"].as_u64().unwrap();
    assert_eq!(sink["records_dropped"], 0, "{sink}");
    let samples = |rows: &[std::collections::BTreeMap<String, String>]| {
        let mut map: HashMap<FiveTuple, u64> = HashMap::new();
        let mut total = 0;
        for r in rows {
            let col = |c: &str| {
                r.get(c)
                    .unwrap_or_else(|| panic!("no column {c} in sfacctd row {r:?}"))
            };
            let packets = col("PACKETS").parse::<u64>().unwrap();
            total += packets;
            let (Ok(src), Ok(dst)) = (col("SRC_IP").parse(), col("DST_IP").parse()) else {
                continue;
            };
            if !is_vm_addr(bed, src) || !is_vm_addr(bed, dst) {
                continue;
            }
            let proto = match col("PROTOCOL").as_str() {
                "tcp" => 6,
                "udp" => 17,
                "icmp" => 1,
                "ipv6-icmp" => 58,
                n => n.parse().unwrap_or(255),
            };
            let k = five_tuple(
                src,
                dst,
                col("SRC_PORT").parse().unwrap(),
                col("DST_PORT").parse().unwrap(),
                proto,
            );
            *map.entry(k).or_default() += packets;
        }
        (map, total)
    };
    // sfacctd accounts IP samples only: the non-IP frames (ARP) are samples too.
    let non_ip: u64 = match &report["non_ip"] {
        Value::Object(by_type) => by_type.values().filter_map(Value::as_u64).sum(),
        v => v
            .as_u64()
            .unwrap_or_else(|| panic!("non_ip in --stats-json: {v}")),
    };
    let ip_packets = flows.sum("packets", |_| true);
    assert_eq!(
        sent,
        ip_packets + non_ip,
        "flow samples vs frames at 1-in-1"
    );
    let mut total = 0;
    let complete = wait_for(Duration::from_secs(30), || {
        total = samples(&sfacctd.rows()).1;
        total >= ip_packets
    });
    assert!(
        complete && total == ip_packets,
        "sfacctd has {total} of mirrorflow's {ip_packets} IP samples ({sent} in all): {}",
        sfacctd.log()
    );
    let (theirs, _) = samples(&sfacctd.rows());
    let mut mine: HashMap<FiveTuple, u64> = HashMap::new();
    for f in &flows.0 {
        let addr = |k: &str| f[k].as_str().and_then(|a| a.parse::<IpAddr>().ok());
        let (Some(src), Some(dst)) = (addr("src_addr"), addr("dst_addr")) else {
            continue;
        };
        if !is_vm_addr(bed, src) || !is_vm_addr(bed, dst) {
            continue;
        }
        let u = |k: &str| f[k].as_u64().unwrap_or(0);
        let k = five_tuple(
            src,
            dst,
            u("src_port") as u16,
            u("dst_port") as u16,
            u("protocol") as u8,
        );
        *mine.entry(k).or_default() += u("packets");
    }
    eprintln!(
        "sflow 1-in-1 → sfacctd: {sent} samples sent ({non_ip} non-IP), {total} IP samples \
         received; VM↔VM {} 5-tuples \
         {} packets; json {} 5-tuples {} packets",
        theirs.len(),
        theirs.values().sum::<u64>(),
        mine.len(),
        mine.values().sum::<u64>()
    );
    assert!(mine.len() > 5, "only {} VM↔VM 5-tuples", mine.len());
    assert_eq!(
        theirs, mine,
        "sfacctd sampled packets vs JSON packets per 5-tuple"
    );
}

fn unix_now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Polls `/metrics` until the flow clock (wall time on a live capture) is past the end of the
/// traffic by the idle timeout and 2 s more and the iperf3 clients' ports (vm2, vm4) have
/// counted their streams (≥ 301 packets each), so the VM flows have been exported.
fn scrape_after_traffic(bed: &Testbed, addr: SocketAddr) -> String {
    let end = unix_now_s();
    let mut text = String::new();
    let done = wait_for(Duration::from_secs(60), || {
        text = metrics_support::get(addr, "/metrics");
        let samples = metrics_support::parse(&text);
        let clock = metrics_support::sum(&samples, "mirrorflow_flow_clock_seconds", &[]);
        clock >= end + IDLE_TIMEOUT_S as f64 + 2.0
            && [2, 4]
                .iter()
                .all(|&n| prom_traffic(bed, &samples, n, "mirrorflow_traffic_packets_total") >= 301)
    });
    assert!(
        done,
        "the flow clock did not pass {end} + idle + 2 s or the streams were not counted:\n{text}"
    );
    text
}

/// VM `n`'s port in `mirrorflow_traffic_*_total` (`name`): IPv4 and IPv6 UDP, summed.
fn prom_traffic(bed: &Testbed, samples: &[metrics_support::Sample], n: usize, name: &str) -> u64 {
    let mut total = 0.0;
    for in_if in [bed.vm(n, "PORT").to_string(), vm_index(bed, n).to_string()] {
        total += metrics_support::sum(samples, name, &[("in_if", &in_if), ("ip_version", "4")]);
        total += metrics_support::sum(
            samples,
            name,
            &[("in_if", &in_if), ("ip_version", "6"), ("protocol", "udp")],
        );
    }
    total as u64
}

/// Per VM port, `mirrorflow_traffic_{packets,bytes}_total` (exported flow records, labelled
/// with the ingress interface) for IPv4 (all protocols) and IPv6 UDP equal the JSON flows of
/// that port and class: the pings and iperf3 streams, exported before the scrape. IPv6 ICMP is left out: the kernel's neighbour reachability probes
/// (unicast NS/NA every few seconds) keep coming after the traffic, so its counters and
/// the final JSON records differ by whatever the probes sent after the scrape.
fn prometheus_traffic_equals_json(bed: &Testbed, flows: &Flows, scrape: &str) {
    let samples = metrics_support::parse(scrape);
    for n in 1..=VMS {
        let port = bed.vm(n, "PORT");
        let index = vm_index(bed, n);
        let counted = |f: &Value| {
            f["in_if"] == index
                && (f["ip_version"] == 4 || (f["ip_version"] == 6 && f["protocol"] == 17))
        };
        let mine = (flows.sum("packets", counted), flows.sum("bytes", counted));
        let theirs = (
            prom_traffic(bed, &samples, n, "mirrorflow_traffic_packets_total"),
            prom_traffic(bed, &samples, n, "mirrorflow_traffic_bytes_total"),
        );
        eprintln!(
            "prometheus traffic in_if {port} (vm{n}), IPv4 + IPv6 UDP: (packets, bytes) \
             {theirs:?}; json {mine:?}"
        );
        assert!(mine.0 > 0, "vm{n}: no JSON flows");
        assert_eq!(
            theirs, mine,
            "vm{n} ({port}): Prometheus vs JSON (packets, bytes)"
        );
    }
}

/// iperf3 -u -l 1000: every datagram carries 1000 bytes of payload. Before them the client
/// sends one 4-byte datagram on the same socket (iperf3's UDP "connect" message) and the
/// server answers with one; iperf3 does not count either.
fn udp_counts_equal_iperf3s(bed: &Testbed, flows: &Flows, traffic: &Path) {
    for (name, client, server, ip, ip_header) in
        [("udp4", 2, 3, "IP4", 20), ("udp6", 4, 1, "IP6", 40)]
    {
        let report = read_json(&traffic.join(format!("{name}.json")));
        let sent = report["end"]["sum"]["packets"].as_u64().unwrap();
        let lost = report["end"]["sum"]["lost_packets"].as_u64().unwrap();
        let blksize = report["start"]["test_start"]["blksize"].as_u64().unwrap();
        assert_eq!(
            (sent, lost, blksize),
            (300, 0, 1000),
            "{name}: iperf3 itself"
        );
        let (c, s) = (bed.vm(client, ip), bed.vm(server, ip));
        let data =
            flows.matching(|f| is_pair(f, c, s) && f["protocol"] == 17 && f["dst_port"] == 5201);
        assert_eq!(data.len(), 1, "{name}: {data:?}");
        let f = data[0];
        let datagram = blksize + 8 + ip_header;
        let connect = 4 + 8 + ip_header;
        eprintln!(
            "{name}: iperf3 sent {sent} datagrams of {datagram} bytes; mirrorflow {} packets {} bytes",
            f["packets"], f["bytes"]
        );
        assert_eq!(f["packets"], sent + 1, "{name}: {f}");
        assert_eq!(f["bytes"], sent * datagram + connect, "{name}: {f}");
        assert_eq!(
            f["l2_bytes"],
            (sent * datagram + connect) + (sent + 1) * 14,
            "{name}: {f}"
        );
        let reply =
            flows.matching(|f| is_pair(f, s, c) && f["protocol"] == 17 && f["src_port"] == 5201);
        assert_eq!(reply.len(), 1, "{name}: {reply:?}");
        assert_eq!(
            (reply[0]["packets"].as_u64(), reply[0]["bytes"].as_u64()),
            (Some(1), Some(connect)),
            "{name}: the server's connect reply"
        );
    }
}

fn icmp_is_exact(bed: &Testbed, flows: &Flows) {
    // ping -c 5: 84-byte IPv4 / 104-byte IPv6 echo requests and replies.
    for (a, b, ip, proto, request, reply, size) in [
        (1, 2, "IP4", 1, 8 << 8, 0, 84),
        (1, 3, "IP6", 58, 128 << 8, 129 << 8, 104),
        (4, 3, "IP4", 1, 8 << 8, 0, 84),
    ] {
        let (x, y) = (bed.vm(a, ip), bed.vm(b, ip));
        for (src, dst, code) in [(x, y, request), (y, x, reply)] {
            let is =
                |f: &Value| is_pair(f, src, dst) && f["protocol"] == proto && f["dst_port"] == code;
            let (packets, bytes) = (flows.sum("packets", is), flows.sum("bytes", is));
            eprintln!("ICMP {src} → {dst} type/code {code:#x}: {packets} packets {bytes} bytes");
            assert_eq!(
                (packets, bytes),
                (5, 5 * size),
                "ICMP {src} → {dst} type/code {code:#x}"
            );
        }
    }
}

fn pairs_appear_in_both_directions(bed: &Testbed, flows: &Flows) {
    for (a, b) in [(1, 2), (1, 3), (2, 3), (3, 4), (1, 4)] {
        let (ma, mb) = (bed.vm(a, "MAC"), bed.vm(b, "MAC"));
        for (src, dst) in [(ma, mb), (mb, ma)] {
            let n = flows.sum("packets", |f| f["src_mac"] == src && f["dst_mac"] == dst);
            assert!(n > 0, "no flow from {src} to {dst} (vm{a} ↔ vm{b})");
        }
    }
}
