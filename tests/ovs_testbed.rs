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
//! - TCP frame bytes agree with OVS's own port statistics (`ovs-ofctl dump-ports`) within 1 %.
//!
//! Needs root, Open vSwitch (`openvswitch-switch`), iperf3, iproute2, ethtool, python3: without
//! them the test fails with the testbed's message. One #[test] only: one ovs-vswitchd per
//! machine (the script also makes concurrent callers take turns).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mirrorflow::ports::{self, DirectoryConfig, OvsConfig, PortDirectory, StaticPort};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mirrorflow");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testbed/ovs-testbed.sh");

/// The testbed; torn down on drop, also after a failed assertion.
struct Testbed {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

fn script(cmd: &str, dir: &Path) -> std::process::Output {
    Command::new("bash")
        .arg(SCRIPT)
        .arg(cmd)
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash {SCRIPT}: {e}"))
}

impl Testbed {
    fn up() -> Testbed {
        let mut bed = Testbed {
            dir: tempfile::Builder::new().prefix("mft-").tempdir().unwrap(),
            env: HashMap::new(),
        };
        let out = script("up", bed.dir.path());
        assert!(
            out.status.success(),
            "ovs-testbed.sh up failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        bed.env = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        bed
    }

    fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("testbed env has no {key}: {:?}", self.env))
    }

    fn vm(&self, n: usize, field: &str) -> &str {
        self.get(&format!("VM{n}_{field}"))
    }

    fn num(&self, key: &str) -> u64 {
        self.get(key).parse().unwrap()
    }

    fn traffic(&self) -> PathBuf {
        let out = script("traffic", self.dir.path());
        assert!(
            out.status.success(),
            "ovs-testbed.sh traffic failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        self.dir.path().join("traffic")
    }

    /// `ovs-ofctl dump-ports BRIDGE`, parsed.
    fn dump_ports(&self) -> HashMap<String, [u64; 4]> {
        let out = Command::new("ovs-ofctl")
            .env("OVS_RUNDIR", self.get("OVS_RUNDIR"))
            .args(["dump-ports", self.get("BRIDGE")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ovs-ofctl dump-ports: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_dump_ports(&String::from_utf8(out.stdout).unwrap())
    }

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

impl Drop for Testbed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.dir.path().join("log/ovs-vswitchd.log");
            if let Ok(text) = std::fs::read_to_string(&log) {
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                eprintln!("--- last lines of {}:", log.display());
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        let out = script("down", self.dir.path());
        if !out.status.success() {
            eprintln!(
                "ovs-testbed.sh down failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// mirrorflow capturing on the mirror's peer; killed on drop if still running.
struct Probe {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Probe {
    fn start(iface: &str, json: &Path, stats: &Path) -> Probe {
        let mut child = Command::new(BIN)
            .args(["-i", iface, "--json"])
            .arg(json)
            .arg("--stats-json")
            .arg(stats)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting mirrorflow");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let probe = Probe { child, stderr: rx };
        let first = probe
            .stderr
            .recv_timeout(Duration::from_secs(20))
            .expect("mirrorflow said nothing within 20 s");
        assert!(first.contains("capturing on"), "mirrorflow: {first}");
        probe
    }

    /// SIGTERM, then wait (at most 10 s) for a clean exit, also on an idle interface;
    /// returns the rest of stderr.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let mut status = None;
        for _ in 0..200 {
            status = self.child.try_wait().unwrap();
            if status.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let Some(status) = status else {
            let _ = self.child.kill();
            panic!("mirrorflow did not stop within 10 s of SIGTERM");
        };
        let rest: Vec<String> = self.stderr.try_iter().collect();
        assert!(status.success(), "mirrorflow: {status}: {rest:?}");
        rest.join("\n")
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ovs-ofctl dump-ports` text → port ("1", "LOCAL") → (rx pkts, rx bytes, tx pkts, tx bytes).
fn parse_dump_ports(text: &str) -> HashMap<String, [u64; 4]> {
    let mut out = HashMap::new();
    let mut current: Option<String> = None;
    let field = |l: &str, key: &str| -> u64 {
        let at = l.find(key).unwrap_or_else(|| panic!("no {key} in {l:?}")) + key.len();
        l[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    for l in text.lines().map(str::trim) {
        if let Some(rest) = l.strip_prefix("port") {
            let (name, rx) = rest.split_once(':').unwrap();
            let name = name.trim().to_string();
            let e = out.entry(name.clone()).or_insert([0; 4]);
            e[0] = field(rx, "pkts=");
            e[1] = field(rx, "bytes=");
            current = Some(name);
        } else if let (Some(name), Some(tx)) = (&current, l.strip_prefix("tx")) {
            let e = out.get_mut(name).unwrap();
            e[2] = field(tx, "pkts=");
            e[3] = field(tx, "bytes=");
        }
    }
    out
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

#[test]
fn open_vswitch_mirror_testbed() {
    let bed = Testbed::up();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("flows.jsonl");
    let stats = work.path().join("stats.json");

    let probe = Probe::start(bed.get("CAPTURE_IF"), &json, &stats);
    let mirror_before = bed.dump_ports();
    let traffic = bed.traffic();
    let mirror_after = bed.dump_ports();
    let rest = probe.stop();
    eprintln!("mirrorflow: {rest}");

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
    every_flow_came_in_on_the_capture_interface(&bed, &flows);
    udp_counts_equal_iperf3s(&bed, &flows, &traffic);
    icmp_and_dns_are_exact(&bed, &flows);
    pairs_appear_in_both_directions(&bed, &flows);
    tcp_bytes_agree_with_ovs_port_statistics(&bed, &flows, &traffic);
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

fn every_flow_came_in_on_the_capture_interface(bed: &Testbed, flows: &Flows) {
    assert!(!flows.0.is_empty());
    let ifindex = bed.num("CAPTURE_IFINDEX");
    for f in &flows.0 {
        assert_eq!(f["in_if"], ifindex, "{f}");
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
