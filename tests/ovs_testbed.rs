//! On a real Open vSwitch: the testbed of `tests/testbed/ovs-testbed.sh` (userspace datapath,
//! five VMs in network namespaces, a select-all mirror), known traffic between the VMs, and
//! mirrorflow capturing on the mirror's peer.
//!
//! Proves that
//! - the port map read from the real OVSDB and vswitchd's learned MACs gives every VM's MAC
//!   its bridge port (ifindex, name, OpenFlow port) and VM id, unknown MACs the catch-all, and
//!   follows database changes without waiting for the periodic refresh;
//! - mirrorflow counts what was sent: for the iperf3 UDP streams exactly iperf3's datagrams
//!   (plus iperf3's one 4-byte connect datagram) at packets × IP datagram size bytes; ICMP
//!   echo and DNS-like exchanges exactly; every VM pair that exchanged traffic in both
//!   directions;
//! - TCP frame bytes agree with OVS's own port statistics (`ovs-ofctl dump-ports`) within 1 %;
//! - side by side with Open vSwitch's own sFlow agent on the same bridge at the same rate
//!   (1-in-64), both streams into one pmacct sfacctd: per direction of the iperf3 streams, each
//!   agent's estimate (sampled packets × 64) agrees with the true count within 4 binomial
//!   standard deviations, and the two agents agree with each other within the combined bound;
//! - the probe, given the real database (`--ovsdb unix:DB_SOCK`), names the VMs everywhere:
//!   every JSON flow between two VMs carries the sender's port, ifindex and VM id as
//!   `in_port`/`in_if`/`in_vm` and the receiver's as `out_port`/`out_if`/`out_vm`; the IPFIX
//!   records nfcapd stored carry the same ifindexes as ingress/egress interface (nfdump
//!   `input_snmp`/`output_snmp`); the Prometheus per-port byte counters, labelled with the
//!   port name and VM id, agree with the JSON flows' frame bytes per VM port and direction.
//! - the NetFlow v9 export of the same probe, aggregated by pmacct's nfacctd per 5-tuple and
//!   ingress/egress ifIndex, equals the JSON flows' packets and bytes per 5-tuple for all
//!   traffic between VM addresses, with the sender's and receiver's port ifindexes.
//!
//! Needs root, Open vSwitch (`openvswitch-switch`), iperf3, iproute2, ethtool, python3, nfdump
//! (nfcapd) and pmacct (sfacctd, nfacctd): without them the test fails with a message naming the tool. One #[test] only: one ovs-vswitchd per
//! machine (the script also makes concurrent callers take turns).

mod metrics_support;
mod netflow_support;
mod sflow_support;
mod testbed_support;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use netflow_support::{NfacctdCsv, Nfcapd};
use sflow_support::{udp_socket_state, wait_for, Sfacctd};
use testbed_support::{parse_dump_ports, Probe, Testbed};

use mirrorflow::ports::{self, DirectoryConfig, OvsConfig, PortDirectory, StaticPort};
use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testbed/ovs-testbed.sh");

/// Open vSwitch specifics of the shared [`Testbed`].
impl Testbed {
    fn vsctl(&self, args: &[&str]) {
        let db = format!("--db=unix:{}", self.get("DB_SOCK"));
        let out = Command::new("ovs-vsctl")
            .arg(db)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ovs-vsctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
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

/// 1-in-N of both sFlow agents.
const SFLOW_RATE: u64 = 64;
/// mirrorflow's agent address: OVS's is 127.0.0.1 (`agent=lo`); sfacctd's `peer_src_ip`.
const MIRRORFLOW_AGENT: &str = "192.0.2.1";
const OVS_AGENT: &str = "127.0.0.1";

#[test]
fn open_vswitch_mirror_testbed() {
    let work = tempfile::tempdir().unwrap();
    let sfacctd = Sfacctd::start(
        work.path(),
        "peer_src_ip,src_host,dst_host,src_port,dst_port,proto",
    );
    let (_, sfacctd_drops) = udp_socket_state(sfacctd.port).unwrap();
    let target = format!("127.0.0.1:{}", sfacctd.port);
    let bed = Testbed::up(
        SCRIPT,
        "mft-",
        &[
            ("SFLOW_TARGET", target.clone()),
            ("SFLOW_SAMPLING", SFLOW_RATE.to_string()),
        ],
    )
    .with_panic_log("log/ovs-vswitchd.log");
    assert_eq!(bed.get("SFLOW_TARGET"), target);
    let json = work.path().join("flows.jsonl");
    let stats = work.path().join("stats.json");
    let nfcapd = Nfcapd::start();
    let nfacctd = NfacctdCsv::start(NFACCTD_AGGREGATE);
    open_vswitch_knows_every_vm(&bed);

    let sflow_args = [
        "--sflow",
        &target,
        "--sflow-sampling",
        &SFLOW_RATE.to_string(),
        "--sflow-polling",
        "1",
        "--agent-address",
        MIRRORFLOW_AGENT,
        "--ovsdb",
        &format!("unix:{}", bed.get("DB_SOCK")),
        "--ipfix",
        &format!("127.0.0.1:{}", nfcapd.port),
        "--netflow-v9",
        &format!("127.0.0.1:{}", nfacctd.port),
        "--metrics-listen",
        "127.0.0.1:0",
    ]
    .map(String::from);
    let probe = Probe::start(bed.get("CAPTURE_IF"), &json, &stats, &sflow_args);
    let mirror_before = bed.dump_ports();
    let traffic = bed.traffic();
    let mirror_after = bed.dump_ports();
    let scrape = scrape_after_traffic(probe.metrics.expect("no metrics address"));
    let rest = probe.stop();
    let (_nf_dir, nf_flows) = nfcapd.stop();
    eprintln!("mirrorflow: {rest}");

    let json_packets: u64 = std::fs::read_to_string(&json)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["packets"]
                .as_u64()
                .unwrap()
        })
        .sum();
    let (nfacctd_rows, nfacctd_log) = nfacctd.stop(json_packets);

    port_map_from_open_vswitch(&bed);
    let flows = Flows(
        std::fs::read_to_string(&json)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    );
    let report = read_json(&stats);
    eprintln!(
        "mirrorflow: frames {} flows {} non-ip {} interfaces {}",
        report["frames"], report["flow_records"], report["non_ip"], report["interfaces"]
    );
    let mirror = bed.get("MIRROR_OFPORT");
    let mirrored = mirror_after[mirror][2] - mirror_before[mirror][2];
    let received = report["interfaces"][0]["received"].as_u64().unwrap();
    eprintln!(
        "mirror port: OVS sent {mirrored} frames while traffic ran; mirrorflow received {received}"
    );
    assert_eq!(
        mirror_after[mirror][0], 0,
        "the mirror port receives nothing"
    );
    // mirrorflow opens the capture a moment before the first snapshot: the VMs' last
    // start-up MLD reports may fall in between. Lost or duplicated frames would not fit.
    assert!(
        received >= mirrored && received - mirrored <= 10,
        "mirrorflow received {received} frames, OVS mirrored {mirrored}"
    );
    every_flow_came_in_on_its_vm_port(&bed, &flows);
    json_names_the_vms_of_every_pair(&bed, &flows);
    ipfix_interfaces_are_the_vm_ports(&bed, &nf_flows);
    netflow_v9_equals_json_per_5_tuple(&bed, &flows, &nfacctd_rows, &nfacctd_log);
    prometheus_port_bytes_agree_with_json(&bed, &flows, &scrape);
    udp_counts_equal_iperf3s(&bed, &flows, &traffic);
    icmp_and_dns_are_exact(&bed, &flows);
    pairs_appear_in_both_directions(&bed, &flows);
    tcp_bytes_agree_with_ovs_port_statistics(&bed, &flows, &traffic);
    sflow_estimates_agree_with_open_vswitchs_agent(&bed, &flows, &report, &sfacctd);
    let (_, drops) = udp_socket_state(sfacctd.port).unwrap();
    assert_eq!(drops, sfacctd_drops, "sfacctd's socket dropped datagrams");
}

fn port_map_from_open_vswitch(bed: &Testbed) {
    let db = PathBuf::from(bed.get("DB_SOCK"));
    let mut cfg = DirectoryConfig::new(ports::DEFAULT_UNKNOWN_INDEX);
    cfg.ovs = Some(OvsConfig::new(db.clone()));
    let loaded = ports::load(&cfg).expect("reading the port map from Open vSwitch");
    assert!(loaded.fdb_errors.is_empty(), "{:?}", loaded.fdb_errors);
    let map = &loaded.map;
    for n in 1..=5 {
        let mac = ports::parse_mac(bed.vm(n, "MAC")).unwrap();
        let index = bed.vm(n, "IFINDEX").parse::<u32>().unwrap();
        assert_eq!(map.lookup(&mac), index, "vm{n}: {:?}", map.port_of(&mac));
        let port = map.port_of(&mac).unwrap();
        assert_eq!(port.name, bed.vm(n, "PORT"), "vm{n}");
        assert_eq!(port.vm.as_deref(), Some(bed.vm(n, "VM_ID")), "vm{n}");
        assert_eq!(
            port.ofport,
            Some(bed.vm(n, "OFPORT").parse().unwrap()),
            "vm{n}"
        );
    }
    assert_eq!(
        bed.vm(3, "ATTACHED_MAC"),
        "no",
        "vm3's MAC can only come from MAC learning (fdb/show)"
    );
    let unknown = [0x02, 0, 0, 0xde, 0xad, 0x01];
    assert_eq!(map.lookup(&unknown), ports::DEFAULT_UNKNOWN_INDEX);
    assert_eq!(map.lookup(&[0xff; 6]), ports::DEFAULT_UNKNOWN_INDEX);
    let mirror = map
        .ports()
        .find(|p| p.name == bed.get("MIRROR_PORT"))
        .expect("the mirror port is a port");
    assert!(
        map.macs().all(|(_, i)| i != mirror.index),
        "nothing is learned on the mirror output port"
    );
    assert_eq!(map.stats(), ports::MapStats::default());

    // A static entry of the same name wins the index; OVS completes it.
    cfg.static_ports = ports::validate(
        &[StaticPort {
            name: bed.vm(1, "PORT").into(),
            index: 1000,
            macs: vec![],
            vm: Some("web-1".into()),
        }],
        ports::DEFAULT_UNKNOWN_INDEX,
    )
    .unwrap();
    let map = ports::load(&cfg).unwrap().map;
    let mac1 = ports::parse_mac(bed.vm(1, "MAC")).unwrap();
    assert_eq!(map.lookup(&mac1), 1000);
    assert_eq!(map.port(1000).unwrap().vm.as_deref(), Some("web-1"));
    assert_eq!(
        map.port(1000).unwrap().ofport,
        Some(bed.num("VM1_OFPORT") as u32)
    );

    // The directory follows a database change at once, not after the periodic refresh.
    cfg.static_ports = Default::default();
    cfg.refresh = Duration::from_secs(600);
    let (dir, handle) = PortDirectory::start(cfg);
    let mut reader = dir.reader();
    let vm2 = bed.vm(2, "IFINDEX").parse::<u32>().unwrap();
    assert_eq!(
        reader.map().port(vm2).unwrap().vm.as_deref(),
        Some(bed.vm(2, "VM_ID"))
    );
    let generation = dir.generation();
    bed.vsctl(&[
        "set",
        "Interface",
        bed.vm(2, "PORT"),
        "external_ids:vm-id=renamed-vm2",
    ]);
    let mut seen = false;
    for _ in 0..100 {
        if reader.map().port(vm2).unwrap().vm.as_deref() == Some("renamed-vm2") {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        seen,
        "the map did not follow the change within 5 s: {:?}",
        dir.stats()
    );
    assert!(dir.generation() > generation);
    let s = dir.stats();
    assert!(s.db_updates >= 1 && s.refreshes >= 2, "{s:?}");
    assert_eq!((s.refresh_errors, s.fdb_errors), (0, 0), "{s:?}");
    let t = std::time::Instant::now();
    handle.stop();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stopping took {:?}",
        t.elapsed()
    );
}

/// Polls the port map read straight from Open vSwitch until every VM's MAC maps to its port
/// (vm3's only through MAC learning), so the probe's first map is complete.
fn open_vswitch_knows_every_vm(bed: &Testbed) {
    let mut cfg = DirectoryConfig::new(ports::DEFAULT_UNKNOWN_INDEX);
    cfg.ovs = Some(OvsConfig::new(PathBuf::from(bed.get("DB_SOCK"))));
    let mut missing = Vec::new();
    let complete = wait_for(Duration::from_secs(10), || {
        let map = ports::load(&cfg).expect("reading the port map").map;
        missing = (1..=5)
            .filter(|&n| {
                let mac = ports::parse_mac(bed.vm(n, "MAC")).unwrap();
                map.lookup(&mac) != bed.num(&format!("VM{n}_IFINDEX")) as u32
            })
            .collect();
        missing.is_empty()
    });
    assert!(
        complete,
        "Open vSwitch does not know the ports of VMs {missing:?}"
    );
}

/// The VM (1..=5) whose MAC is `mac`.
fn vm_of_mac(bed: &Testbed, mac: &Value) -> Option<usize> {
    (1..=5).find(|&n| mac == bed.vm(n, "MAC"))
}

/// With `--ovsdb`, a flow's ingress is the port behind its source MAC: a VM's bridge port for
/// frames from a VM, the catch-all index 1 for anything else (e.g. the bridge's own port).
fn every_flow_came_in_on_its_vm_port(bed: &Testbed, flows: &Flows) {
    assert!(!flows.0.is_empty());
    let capture = bed.num("CAPTURE_IFINDEX");
    let mut from_vms = 0;
    for f in &flows.0 {
        assert_ne!(f["in_if"], capture, "{f}");
        match vm_of_mac(bed, &f["src_mac"]) {
            Some(n) => {
                assert_eq!(f["in_if"], bed.num(&format!("VM{n}_IFINDEX")), "{f}");
                from_vms += 1;
            }
            None => assert_eq!(f["in_if"], u64::from(ports::DEFAULT_UNKNOWN_INDEX), "{f}"),
        }
    }
    eprintln!(
        "port map: {from_vms} of {} flows come from a VM's port",
        flows.0.len()
    );
}

/// Both directions of every VM pair that talked: all of its flows name the sender's port and
/// VM as `in_*` and the receiver's as `out_*`.
fn json_names_the_vms_of_every_pair(bed: &Testbed, flows: &Flows) {
    for (a, b) in [(1, 2), (1, 3), (2, 3), (4, 5)] {
        for (src, dst) in [(a, b), (b, a)] {
            let pair = flows.matching(|f| {
                f["src_mac"] == bed.vm(src, "MAC") && f["dst_mac"] == bed.vm(dst, "MAC")
            });
            assert!(!pair.is_empty(), "no flow vm{src} → vm{dst}");
            for f in &pair {
                let got = (
                    &f["in_port"],
                    &f["out_port"],
                    &f["in_vm"],
                    &f["out_vm"],
                    &f["in_if"],
                    &f["out_if"],
                );
                let want = (
                    bed.vm(src, "PORT"),
                    bed.vm(dst, "PORT"),
                    bed.vm(src, "VM_ID"),
                    bed.vm(dst, "VM_ID"),
                    bed.num(&format!("VM{src}_IFINDEX")),
                    bed.num(&format!("VM{dst}_IFINDEX")),
                );
                assert!(
                    got.0 == want.0
                        && got.1 == want.1
                        && got.2 == want.2
                        && got.3 == want.3
                        && got.4 == want.4
                        && got.5 == want.5,
                    "vm{src} → vm{dst}: {got:?}, want {want:?}"
                );
            }
            eprintln!(
                "json vm{src} → vm{dst}: {} flows, in_port {} ({}) out_port {} ({})",
                pair.len(),
                bed.vm(src, "PORT"),
                bed.vm(src, "VM_ID"),
                bed.vm(dst, "PORT"),
                bed.vm(dst, "VM_ID")
            );
        }
    }
}

/// The VM (1..=5) that owns address `a` (IPv4 or IPv6).
fn vm_of_addr(bed: &Testbed, a: &str) -> Option<usize> {
    let a: IpAddr = a.parse().ok()?;
    (1..=5).find(|&n| {
        ["IP4", "IP6"]
            .iter()
            .any(|ip| bed.vm(n, ip).parse::<IpAddr>().ok() == Some(a))
    })
}

/// Every IPFIX record between two VMs' addresses has the sender's port ifindex as ingress
/// interface and the receiver's as egress interface, for every pair and direction.
fn ipfix_interfaces_are_the_vm_ports(bed: &Testbed, dir: &Path) {
    let records = netflow_support::nfdump_json(dir);
    let mut checked: HashMap<(usize, usize), u64> = HashMap::new();
    for r in records {
        let addr = |v4: &str, v6: &str| r[v4].as_str().or(r[v6].as_str()).unwrap_or("");
        let (Some(src), Some(dst)) = (
            vm_of_addr(bed, addr("src4_addr", "src6_addr")),
            vm_of_addr(bed, addr("dst4_addr", "dst6_addr")),
        ) else {
            continue;
        };
        let got = (r["input_snmp"].as_u64(), r["output_snmp"].as_u64());
        let want = (
            Some(bed.num(&format!("VM{src}_IFINDEX"))),
            Some(bed.num(&format!("VM{dst}_IFINDEX"))),
        );
        assert_eq!(got, want, "IPFIX vm{src} → vm{dst}: {r}");
        *checked.entry((src, dst)).or_default() += 1;
    }
    for (a, b) in [(1, 2), (1, 3), (2, 3), (4, 5)] {
        for (src, dst) in [(a, b), (b, a)] {
            let n = checked.get(&(src, dst)).copied().unwrap_or(0);
            eprintln!(
                "ipfix vm{src} → vm{dst}: {n} records with in {} out {}",
                bed.vm(src, "IFINDEX"),
                bed.vm(dst, "IFINDEX")
            );
            assert!(n > 0, "nfcapd stored no record vm{src} → vm{dst}");
        }
    }
}

/// Polls `/metrics` until the counter snapshot's flow clock (wall time on a live capture) is
/// a second past the end of the traffic, so the port counters include every traffic frame.
fn scrape_after_traffic(addr: SocketAddr) -> String {
    let end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut text = String::new();
    let done = wait_for(Duration::from_secs(20), || {
        text = metrics_support::get(addr, "/metrics");
        let samples = metrics_support::parse(&text);
        metrics_support::sum(&samples, "mirrorflow_flow_clock_seconds", &[]) >= end + 1.0
    });
    assert!(done, "the flow clock did not pass {end} + 1 s:\n{text}");
    text
}

/// Per VM port: `mirrorflow_port_bytes_total{port, vm, direction}` against the JSON flows'
/// frame bytes (`l2_bytes`) with that port as `in_port` (direction in) or `out_port` (out).
/// The counters also hold the few non-IP frames (ARP) that make no flow, and the scrape
/// misses what came after its snapshot (stray multicast): they agree within 1 KiB.
fn prometheus_port_bytes_agree_with_json(bed: &Testbed, flows: &Flows, scrape: &str) {
    let samples = metrics_support::parse(scrape);
    for n in 1..=5 {
        let (port, vm) = (bed.vm(n, "PORT"), bed.vm(n, "VM_ID"));
        for (direction, key) in [("in", "in_port"), ("out", "out_port")] {
            let prom = metrics_support::sum(
                &samples,
                "mirrorflow_port_bytes_total",
                &[("port", port), ("vm", vm), ("direction", direction)],
            ) as u64;
            let json = flows.sum("l2_bytes", |f| f[key] == port);
            eprintln!(
                "prometheus port {port} vm {vm} {direction}: {prom} bytes; json flows {json} bytes \
                 (difference {:+})",
                prom as i64 - json as i64
            );
            assert!(json > 0, "vm{n} {direction}: no JSON bytes");
            assert!(
                prom.abs_diff(json) <= 1024,
                "vm{n} {direction}: Prometheus {prom} bytes vs JSON {json} bytes"
            );
        }
    }
}

fn is_pair(f: &Value, src: &str, dst: &str) -> bool {
    f["src_addr"] == src && f["dst_addr"] == dst
}

/// iperf3 -u -l 1000: every datagram carries 1000 bytes of payload. Before them the client
/// sends one 4-byte datagram on the same socket (iperf3's UDP "connect" message) and the
/// server answers with one; iperf3 does not count either.
fn udp_counts_equal_iperf3s(bed: &Testbed, flows: &Flows, traffic: &Path) {
    for (name, client, server, ip, ip_header) in
        [("udp4", 2, 3, "IP4", 20), ("udp6-vlan", 4, 5, "IP6", 40)]
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
        let l2 = 14 + if bed.vm(client, "VLAN") != "0" { 4 } else { 0 };
        assert_eq!(
            f["l2_bytes"],
            (sent * datagram + connect) + (sent + 1) * l2,
            "{name}: {f}"
        );
        if bed.vm(client, "VLAN") != "0" {
            assert_eq!(f["vlan_id"], bed.num("VLAN"), "{name}: {f}");
        }
        let reply =
            flows.matching(|f| is_pair(f, s, c) && f["protocol"] == 17 && f["src_port"] == 5201);
        assert_eq!(reply.len(), 1, "{name}: {reply:?}");
        assert_eq!(
            (reply[0]["packets"].as_u64(), reply[0]["bytes"].as_u64()),
            (Some(1), Some(connect))
        );
    }
}

fn icmp_and_dns_are_exact(bed: &Testbed, flows: &Flows) {
    // ping -c 5: 84-byte IPv4 / 104-byte IPv6 echo requests and replies.
    for (a, b, ip, proto, request, reply, size) in [
        (1, 2, "IP4", 1, 8 << 8, 0, 84),
        (1, 3, "IP6", 58, 128 << 8, 129 << 8, 104),
        (4, 5, "IP4", 1, 8 << 8, 0, 84),
    ] {
        let (x, y) = (bed.vm(a, ip), bed.vm(b, ip));
        for (src, dst, code) in [(x, y, request), (y, x, reply)] {
            let packets = flows.sum("packets", |f| {
                is_pair(f, src, dst) && f["protocol"] == proto && f["dst_port"] == code
            });
            let bytes = flows.sum("bytes", |f| {
                is_pair(f, src, dst) && f["protocol"] == proto && f["dst_port"] == code
            });
            assert_eq!(
                (packets, bytes),
                (5, 5 * size),
                "ICMP {src} → {dst} type/code {code:#x}"
            );
        }
    }
    // Three DNS queries of 26 bytes from vm2 to vm1:53, each answered with 42 bytes.
    let (c, s) = (bed.vm(2, "IP4"), bed.vm(1, "IP4"));
    let q = flows.matching(|f| is_pair(f, c, s) && f["protocol"] == 17 && f["dst_port"] == 53);
    let r = flows.matching(|f| is_pair(f, s, c) && f["protocol"] == 17 && f["src_port"] == 53);
    assert_eq!((q.len(), r.len()), (1, 1), "{q:?} {r:?}");
    assert_eq!(
        (q[0]["packets"].as_u64(), q[0]["bytes"].as_u64()),
        (Some(3), Some(3 * 54))
    );
    assert_eq!(
        (r[0]["packets"].as_u64(), r[0]["bytes"].as_u64()),
        (Some(3), Some(3 * 70))
    );
}

fn pairs_appear_in_both_directions(bed: &Testbed, flows: &Flows) {
    for (a, b) in [(1, 2), (1, 3), (2, 3), (4, 5)] {
        let (ma, mb) = (bed.vm(a, "MAC"), bed.vm(b, "MAC"));
        for (src, dst) in [(ma, mb), (mb, ma)] {
            let n = flows.sum("packets", |f| f["src_mac"] == src && f["dst_mac"] == dst);
            assert!(n > 0, "no flow from {src} to {dst} (vm{a} ↔ vm{b})");
        }
    }
}

/// OVS's port counters of a veth port are the kernel's: `tx` counts the frames OVS delivered
/// to the VM, which is what the mirror copied; `rx` also counts frames the VM sent that were
/// dropped before vswitchd read them (TCP retransmits those), so rx can exceed the mirror's
/// count by the retransmissions.
fn tcp_bytes_agree_with_ovs_port_statistics(bed: &Testbed, flows: &Flows, traffic: &Path) {
    for (name, client, server, ip) in [("tcp4", 1, 2, "IP4"), ("tcp6", 3, 1, "IP6")] {
        let before = parse_dump_ports(
            &std::fs::read_to_string(traffic.join(format!("{name}.ports.before"))).unwrap(),
        );
        let after = parse_dump_ports(
            &std::fs::read_to_string(traffic.join(format!("{name}.ports.after"))).unwrap(),
        );
        let delta = |vm: usize, i: usize| {
            let port = bed.vm(vm, "OFPORT");
            after[port][i] - before[port][i]
        };
        let report = read_json(&traffic.join(format!("{name}.json")));
        let sent = report["end"]["sum_sent"]["bytes"].as_u64().unwrap();
        let retransmits = report["end"]["sum_sent"]["retransmits"].as_u64().unwrap();
        let (c, s) = (bed.vm(client, ip), bed.vm(server, ip));
        let up = |f: &Value| is_pair(f, c, s) && f["protocol"] == 6 && f["dst_port"] == 5201;
        let down = |f: &Value| is_pair(f, s, c) && f["protocol"] == 6 && f["src_port"] == 5201;
        let (up_l2, up_pkts) = (flows.sum("l2_bytes", up), flows.sum("packets", up));
        let (down_l2, down_pkts) = (flows.sum("l2_bytes", down), flows.sum("packets", down));
        eprintln!(
            "{name}: iperf3 sent {sent} bytes, {retransmits} retransmits; \
             mirrorflow {c}→{s} {up_pkts} frames {up_l2} bytes, back {down_pkts} frames {down_l2} bytes; \
             ovs-ofctl: server port tx {} frames {} bytes, client port rx {} frames {} bytes, \
             client port tx {} frames {} bytes",
            delta(server, 2), delta(server, 3), delta(client, 0), delta(client, 1),
            delta(client, 2), delta(client, 3),
        );
        assert!(
            up_l2 > sent,
            "{name}: the data flow carries at least the payload"
        );
        let within = |ours: u64, theirs: u64| ours.abs_diff(theirs) * 100 <= theirs;
        assert!(
            within(up_l2, delta(server, 3)),
            "{name}: mirrorflow {up_l2} vs OVS (frames delivered to the server) {}",
            delta(server, 3)
        );
        assert!(
            within(down_l2, delta(client, 3)),
            "{name}: mirrorflow {down_l2} vs OVS (frames delivered to the client) {}",
            delta(client, 3)
        );
        assert!(
            delta(client, 1) >= up_l2,
            "{name}: OVS counts everything the client sent"
        );
    }
}

/// Sampled packets per (agent, src, dst, src port, dst port, protocol) in sfacctd's output,
/// summed over every purge so far.
type SampleKey = (IpAddr, IpAddr, IpAddr, u16, u16, u8);

fn sfacctd_samples(sfacctd: &Sfacctd) -> HashMap<SampleKey, u64> {
    let mut map = HashMap::new();
    for r in sfacctd.rows() {
        let col = |c: &str| {
            r.get(c)
                .unwrap_or_else(|| panic!("no column {c} in sfacctd row {r:?}"))
        };
        let proto = match col("PROTOCOL").as_str() {
            "tcp" => 6,
            "udp" => 17,
            "icmp" => 1,
            "ipv6-icmp" => 58,
            n => n.parse().unwrap_or(255),
        };
        let key = (
            col("PEER_SRC_IP").parse().unwrap(),
            col("SRC_IP").parse().unwrap(),
            col("DST_IP").parse().unwrap(),
            col("SRC_PORT").parse().unwrap(),
            col("DST_PORT").parse().unwrap(),
            proto,
        );
        *map.entry(key).or_default() += col("PACKETS").parse::<u64>().unwrap();
    }
    map
}

fn agent_total(samples: &HashMap<SampleKey, u64>, agent: IpAddr) -> u64 {
    samples
        .iter()
        .filter(|(k, _)| k.0 == agent)
        .map(|(_, n)| n)
        .sum()
}

/// Both agents sample the same population, each frame the bridge switched once:
/// - Open vSwitch samples at ingress only. `xlate_actions` (ofproto-dpif-xlate.c) puts the sFlow
///   `sample` action first in the datapath actions of every packet "really received by the
///   bridge" (not after recirculation, not on a port reserved for mirroring); the netdev
///   datapath executes it per packet with probability `UINT32_MAX / 64` (odp-execute.c,
///   `random_uint32()`), and the upcall hands the sample to the sFlow agent in the same
///   thread. A VM → VM frame enters the bridge once, at the sender's port, so it is sampled
///   once, whatever the ports it leaves by; the mirror's copy is an output and is not sampled.
///   Frames the bridge never read (packet socket drops) are neither sampled nor mirrored.
/// - mirrorflow samples each frame the mirror delivers once; the mirror copies each switched
///   frame once (asserted above: mirror tx = frames captured).
///
/// So like is compared with like by keying both on the 5-tuple of one direction of one
/// stream: the truth is mirrorflow's unsampled flow records of that direction, each estimate
/// is its agent's sampled packets × 64. Sampling each of n packets with p = 1/64 gives
/// binomially many samples: the estimate's standard deviation is σ = √(n·p·(1−p)) / p, the
/// bound for one agent 4σ and for the difference of the two independent agents 4·√2·σ.
fn sflow_estimates_agree_with_open_vswitchs_agent(
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
    // sfacctd accounts only samples of IP packets: a sampled ARP or other non-IP frame is sent
    // but never shows up there. At most every non-IP frame was sampled.
    let non_ip: u64 = report["non_ip"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    let arrived = |got: u64| got <= sent && got + non_ip >= sent;
    let (mf, ovs): (IpAddr, IpAddr) = (
        MIRRORFLOW_AGENT.parse().unwrap(),
        OVS_AGENT.parse().unwrap(),
    );
    // mirrorflow flushed its samples when it stopped: complete once sfacctd has them all.
    // Open vSwitch's agent sends what it has buffered once a second (sfl_agent_tick) and
    // says nothing about its count: complete once its total has not changed for 3 s (three
    // ticks, three sfacctd purges) after mirrorflow's stream is complete.
    let mut last = (0, 0);
    let mut changed = Instant::now();
    let complete = wait_for(Duration::from_secs(60), || {
        let s = sfacctd_samples(sfacctd);
        let now = (agent_total(&s, mf), agent_total(&s, ovs));
        if now != last {
            last = now;
            changed = Instant::now();
        }
        arrived(now.0) && now.1 > 0 && changed.elapsed() >= Duration::from_secs(3)
    });
    eprintln!(
        "sflow: mirrorflow sent {sent} flow samples; sfacctd has {} from mirrorflow, {} from Open vSwitch",
        last.0, last.1
    );
    assert!(
        complete && arrived(last.0),
        "sfacctd has {} of mirrorflow's {sent} samples ({non_ip} non-IP frames captured) \
         and {} of Open vSwitch's: {}",
        last.0,
        last.1,
        sfacctd.log()
    );
    let samples = sfacctd_samples(sfacctd);
    let p = 1.0 / SFLOW_RATE as f64;
    for (name, client, server, ip, proto) in [
        ("udp4", 2, 3, "IP4", 17),
        ("udp6-vlan", 4, 5, "IP6", 17),
        ("tcp4", 1, 2, "IP4", 6),
        ("tcp6", 3, 1, "IP6", 6),
    ] {
        let c: IpAddr = bed.vm(client, ip).parse().unwrap();
        let s: IpAddr = bed.vm(server, ip).parse().unwrap();
        // The UDP reverse direction is one datagram: only the TCP streams have two big ones.
        let directions: &[(&str, IpAddr, IpAddr, bool)] = if proto == 6 {
            &[("to server", c, s, true), ("to client", s, c, false)]
        } else {
            &[("to server", c, s, true)]
        };
        for &(way, src, dst, to_server) in directions {
            let port_ok = |sp: u64, dp: u64| {
                if to_server {
                    dp == 5201
                } else {
                    sp == 5201
                }
            };
            let n = flows.sum("packets", |f| {
                f["src_addr"]
                    .as_str()
                    .and_then(|a| a.parse::<IpAddr>().ok())
                    == Some(src)
                    && f["dst_addr"]
                        .as_str()
                        .and_then(|a| a.parse::<IpAddr>().ok())
                        == Some(dst)
                    && f["protocol"] == proto
                    && port_ok(
                        f["src_port"].as_u64().unwrap_or(0),
                        f["dst_port"].as_u64().unwrap_or(0),
                    )
            });
            let sampled = |agent: IpAddr| -> u64 {
                samples
                    .iter()
                    .filter(|(k, _)| {
                        k.0 == agent
                            && (k.1, k.2, k.5) == (src, dst, proto)
                            && port_ok(u64::from(k.3), u64::from(k.4))
                    })
                    .map(|(_, n)| n)
                    .sum()
            };
            let (ovs_est, mf_est) = (sampled(ovs) * SFLOW_RATE, sampled(mf) * SFLOW_RATE);
            let sigma = (n as f64 * p * (1.0 - p)).sqrt() / p;
            let (one, both) = (4.0 * sigma, 4.0 * 2f64.sqrt() * sigma);
            let off = |est: u64| est as f64 - n as f64;
            eprintln!(
                "sflow {name} {way} {src} → {dst}: true {n} packets; Open vSwitch estimates {ovs_est} \
                 ({:+.0}), mirrorflow {mf_est} ({:+.0}); σ {sigma:.0}, bound 4σ {one:.0}, \
                 between the agents 4√2σ {both:.0} (difference {:+})",
                off(ovs_est),
                off(mf_est),
                mf_est as i64 - ovs_est as i64
            );
            assert!(n > 100, "{name} {way}: only {n} packets");
            assert!(
                off(ovs_est).abs() <= one,
                "{name} {way}: Open vSwitch estimates {ovs_est}, true {n}, bound {one:.0}"
            );
            assert!(
                off(mf_est).abs() <= one,
                "{name} {way}: mirrorflow estimates {mf_est}, true {n}, bound {one:.0}"
            );
            assert!(
                (mf_est as f64 - ovs_est as f64).abs() <= both,
                "{name} {way}: mirrorflow {mf_est} vs Open vSwitch {ovs_est}, bound {both:.0}"
            );
        }
    }
}

/// nfacctd's aggregation of mirrorflow's NetFlow v9 export: the 5-tuple and the ingress /
/// egress ifIndex (pmacct's `in_iface`/`out_iface` primitives, v9 INPUT_SNMP / OUTPUT_SNMP,
/// RFC 3954 §8 fields 10 and 14).
const NFACCTD_AGGREGATE: &str = "src_host,dst_host,src_port,dst_port,proto,in_iface,out_iface";

/// (src, dst, src port, dst port, protocol); ICMP without ports (the type/code travel apart).
type FiveTuple = (IpAddr, IpAddr, u16, u16, u8);

fn five_tuple(src: IpAddr, dst: IpAddr, sp: u16, dp: u16, proto: u8) -> FiveTuple {
    if matches!(proto, 1 | 58) {
        (src, dst, 0, 0, proto)
    } else {
        (src, dst, sp, dp, proto)
    }
}

/// Per 5-tuple between two VMs' addresses, the packets and bytes nfacctd aggregated from the
/// NetFlow v9 export equal the JSON flows', and every such row carries the sender's port
/// ifindex as `in_iface` and the receiver's as `out_iface`.
fn netflow_v9_equals_json_per_5_tuple(
    bed: &Testbed,
    flows: &Flows,
    rows: &[HashMap<String, String>],
    log: &str,
) {
    for bad in ["malformed", "ERROR"] {
        assert!(!log.contains(bad), "nfacctd logged {bad}: {log}");
    }
    let mut theirs: HashMap<FiveTuple, (u64, u64)> = HashMap::new();
    let mut checked = 0;
    for r in rows {
        let col = |c: &str| {
            r.get(c)
                .unwrap_or_else(|| panic!("no column {c} in nfacctd row {r:?}"))
        };
        let (src, dst): (IpAddr, IpAddr) = (
            col("SRC_IP").parse().unwrap(),
            col("DST_IP").parse().unwrap(),
        );
        let (Some(a), Some(b)) = (
            vm_of_addr(bed, &src.to_string()),
            vm_of_addr(bed, &dst.to_string()),
        ) else {
            continue;
        };
        let got = (
            col("IN_IFACE").parse::<u64>().unwrap(),
            col("OUT_IFACE").parse::<u64>().unwrap(),
        );
        let want = (
            bed.num(&format!("VM{a}_IFINDEX")),
            bed.num(&format!("VM{b}_IFINDEX")),
        );
        assert_eq!(got, want, "NetFlow v9 vm{a} → vm{b}: {r:?}");
        checked += 1;
        let k = five_tuple(
            src,
            dst,
            col("SRC_PORT").parse().unwrap(),
            col("DST_PORT").parse().unwrap(),
            col("PROTOCOL").parse().unwrap(),
        );
        let t = theirs.entry(k).or_default();
        t.0 += col("PACKETS").parse::<u64>().unwrap();
        t.1 += col("BYTES").parse::<u64>().unwrap();
    }
    let mut mine: HashMap<FiveTuple, (u64, u64)> = HashMap::new();
    for f in &flows.0 {
        let (Some(s), Some(d)) = (f["src_addr"].as_str(), f["dst_addr"].as_str()) else {
            continue;
        };
        if vm_of_addr(bed, s).is_none() || vm_of_addr(bed, d).is_none() {
            continue;
        }
        let u = |k: &str| f[k].as_u64().unwrap_or(0);
        let k = five_tuple(
            s.parse().unwrap(),
            d.parse().unwrap(),
            u("src_port") as u16,
            u("dst_port") as u16,
            u("protocol") as u8,
        );
        let t = mine.entry(k).or_default();
        t.0 += u("packets");
        t.1 += u("bytes");
    }
    let sum =
        |m: &HashMap<FiveTuple, (u64, u64)>| m.values().fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
    eprintln!(
        "netflow v9 → nfacctd: {} VM↔VM 5-tuples, (packets, bytes) {:?} from {checked} rows \
         with in/out ifindex checked; json {} 5-tuples {:?}",
        theirs.len(),
        sum(&theirs),
        mine.len(),
        sum(&mine)
    );
    assert!(mine.len() > 10, "only {} VM↔VM 5-tuples", mine.len());
    assert_eq!(theirs, mine, "nfacctd (NetFlow v9) vs JSON per 5-tuple");
}
