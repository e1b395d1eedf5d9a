//! Live capture on a veth pair between two network namespaces this test creates: ICMP echo
//! between them must come out as two flows of exactly the packets sent. Needs root (CI runs as
//! root) and iproute2 + ping.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mirrorflow");

fn sh(args: &[&str]) {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| {
            panic!("{} is needed for this test: {e}", args[0]);
        });
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Two namespaces joined by a veth pair; removed on drop, also after a failed assertion.
struct Testbed {
    a: String,
    b: String,
}

impl Testbed {
    fn new() -> Testbed {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = std::process::id();
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = Testbed {
            a: format!("mfa{id}-{n}"),
            b: format!("mfb{id}-{n}"),
        };
        sh(&["ip", "netns", "add", &t.a]);
        sh(&["ip", "netns", "add", &t.b]);
        sh(&[
            "ip", "link", "add", "vA", "netns", &t.a, "type", "veth", "peer", "name", "vB",
            "netns", &t.b,
        ]);
        for (ns, dev, addr) in [(&t.a, "vA", "10.250.0.1/24"), (&t.b, "vB", "10.250.0.2/24")] {
            sh(&["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        t
    }
}

impl Testbed {
    /// mirrorflow capturing on vB (in namespace b) with `args`, once it says the capture is
    /// open; its stderr for the rest.
    fn probe(&self, args: &[&str]) -> (std::process::Child, BufReader<std::process::ChildStderr>) {
        let mut probe = Command::new("ip")
            .args(["netns", "exec", &self.b, BIN, "-i", "vB"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting mirrorflow");
        let mut err = BufReader::new(probe.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        assert!(line.contains("capturing on vB"), "{line}");
        (probe, err)
    }

    /// `count` echo requests from a to b, `interval` seconds apart.
    fn ping(&self, count: &str, interval: &str) {
        sh(&[
            "ip",
            "netns",
            "exec",
            &self.a,
            "ping",
            "-c",
            count,
            "-i",
            interval,
            "-q",
            "10.250.0.2",
        ]);
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
fn icmp_between_namespaces_is_captured_exactly() {
    let bed = Testbed::new();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("live.jsonl");
    let (mut probe, mut err) = bed.probe(&["--json", json.to_str().unwrap()]);
    bed.ping("5", "0.05");
    sh(&["kill", "-TERM", &probe.id().to_string()]);
    let status = probe.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(status.success(), "mirrorflow: {status} {rest}");

    let ifindex: u64 = String::from_utf8(
        Command::new("ip")
            .args(["netns", "exec", &bed.b, "cat", "/sys/class/net/vB/ifindex"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let flows: Vec<serde_json::Value> = std::fs::read_to_string(&json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |src: &str, dst_port: u64| {
        flows
            .iter()
            .find(|f| f["src_addr"] == src && f["protocol"] == 1 && f["dst_port"] == dst_port)
            .unwrap_or_else(|| panic!("no ICMP flow from {src} to port {dst_port} in {flows:?}"))
    };
    let request = find("10.250.0.1", 8 << 8);
    let reply = find("10.250.0.2", 0);
    for f in [request, reply] {
        assert_eq!(f["packets"], 5, "{f}");
        assert_eq!(f["bytes"], 5 * 84, "{f}");
        assert_eq!(f["in_if"], ifindex, "{f}");
        assert_eq!(f["end_reason"], "forced_end");
    }
}

#[test]
fn sigterm_stops_a_capture_on_an_idle_wire() {
    let bed = Testbed::new();
    let (mut probe, _err) = bed.probe(&["-f", "udp port 9"]);
    sh(&["kill", "-TERM", &probe.id().to_string()]);
    // Nothing arrives on vB: the capture must be woken, not wait for a frame.
    let mut status = None;
    for _ in 0..100 {
        status = probe.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let Some(status) = status else {
        let _ = probe.kill();
        panic!("mirrorflow still running 5 s after SIGTERM on an idle wire");
    };
    assert!(status.success(), "{status}");
}

/// Packets 1.5 s apart with a 2 s idle timeout: one record per direction. A frame held back
/// by the capture (or expiry running on the raw wall clock) would split the flow.
#[test]
fn pauses_shorter_than_the_idle_timeout_do_not_split_a_live_flow() {
    let bed = Testbed::new();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("pauses.jsonl");
    let (mut probe, _err) = bed.probe(&["--idle-timeout", "2", "--json", json.to_str().unwrap()]);
    bed.ping("4", "1.5");
    sh(&["kill", "-TERM", &probe.id().to_string()]);
    assert!(probe.wait().unwrap().success());
    let flows: Vec<serde_json::Value> = std::fs::read_to_string(&json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|f: &serde_json::Value| f["protocol"] == 1)
        .collect();
    assert_eq!(flows.len(), 2, "{flows:?}");
    assert!(flows.iter().all(|f| f["packets"] == 4), "{flows:?}");
}
