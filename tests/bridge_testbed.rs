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
//! - mirrorflow stops within 10 s of SIGTERM.
//!
//! Differences from the Open vSwitch testbed: no VLAN pair (the bridge would need
//! `vlan_filtering`, or the VMs 802.1Q sub-interfaces, and kernels built without
//! CONFIG_BRIDGE_VLAN_FILTERING / CONFIG_VLAN_8021Q, like this CI's, have neither); tc ingress
//! runs before the bridge's receive handler, so a copy is the frame as the VM sent it, never
//! tagged by the bridge. The mirror is `matchall`, or `u32 match u32 0 0` on kernels without
//! cls_matchall (also this CI's).
//!
//! Needs root, iproute2 (ip, tc, bridge, ss), ethtool, iputils-ping and iperf3: without them
//! the test fails with the script's message naming the tool. Unlike Open vSwitch, runs may
//! overlap (each has its own names).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mirrorflow");
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/testbed/bridge-testbed.sh"
);

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
            dir: tempfile::Builder::new().prefix("mfb-").tempdir().unwrap(),
            env: HashMap::new(),
        };
        let out = script("up", bed.dir.path());
        assert!(
            out.status.success(),
            "bridge-testbed.sh up failed ({}): {}",
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

    fn traffic(&self) -> PathBuf {
        let out = script("traffic", self.dir.path());
        assert!(
            out.status.success(),
            "bridge-testbed.sh traffic failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        self.dir.path().join("traffic")
    }

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

impl Drop for Testbed {
    fn drop(&mut self) {
        let out = script("down", self.dir.path());
        if !out.status.success() {
            eprintln!(
                "bridge-testbed.sh down failed: {}",
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

    /// SIGTERM, then wait (at most 10 s) for a clean exit; returns the rest of stderr.
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
    let bed = Testbed::up();
    let json = work.path().join("flows.jsonl");
    let stats = work.path().join("stats.json");
    let probe = Probe::start(bed.get("CAPTURE_IF"), &json, &stats);
    let before = bed.mirrored();
    let traffic = bed.traffic();
    let after = bed.mirrored();
    let rest = probe.stop();
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
    let ifindex: u64 = bed.get("CAPTURE_IFINDEX").parse().unwrap();
    for f in &flows.0 {
        assert_eq!(f["in_if"], ifindex, "{f}");
        assert_eq!(f.get("vlan_id").and_then(Value::as_u64).unwrap_or(0), 0);
    }
    udp_counts_equal_iperf3s(&bed, &flows, &traffic);
    icmp_is_exact(&bed, &flows);
    pairs_appear_in_both_directions(&bed, &flows);
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
