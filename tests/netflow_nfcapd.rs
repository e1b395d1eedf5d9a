//! End to end against the reference collector: mirrorflow exports IPFIX / NetFlow v9 over
//! UDP to a real `nfcapd` (nfdump 1.7), and what `nfdump -o json` reads back must equal
//! mirrorflow's own JSON output: same flows, packets and bytes, times within 1 ms.
//!
//! nfcapd and nfdump are required (Debian package `nfdump`): without them these tests fail.

use std::collections::HashMap;
use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PCAP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/pcaps/pktvisor__dns_udp_tcp_random.pcap"
);

/// Polls `cond` every 10 ms for at most `limit`.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

fn require(tool: &str) {
    match Command::new(tool).arg("-V").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "`{tool} -V` failed ({}): is nfdump 1.7 installed?",
            o.status
        ),
        Err(e) => panic!(
            "{tool} is required for this test and could not be run ({e}); \
             install it with `apt-get install nfdump`"
        ),
    }
}

/// rx_queue of the IPv4 UDP socket bound to 127.0.0.1:`port`, if one is bound.
fn udp_rx_queue(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(1) != Some(&local.as_str()) {
            return None;
        }
        let (_, rx) = f.get(4)?.split_once(':')?;
        u64::from_str_radix(rx, 16).ok()
    })
}

/// A running nfcapd writing to its own temp directory.
struct Nfcapd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nfcapd {
    fn start() -> Nfcapd {
        require("nfcapd");
        require("nfdump");
        let dir = tempfile::tempdir().unwrap();
        let flows = dir.path().join("flows");
        std::fs::create_dir(&flows).unwrap();
        for _ in 0..5 {
            // A free port, released just before nfcapd binds it: retried if taken meanwhile.
            let port = UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = std::fs::File::create(dir.path().join("nfcapd.log")).unwrap();
            let mut child = Command::new("nfcapd")
                .arg("-w")
                .arg(&flows)
                .args(["-p", &port.to_string(), "-b", "127.0.0.1"])
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("starting nfcapd");
            let mut exited = false;
            let bound = wait_for(Duration::from_secs(10), || {
                exited = exited || child.try_wait().unwrap().is_some();
                exited || udp_rx_queue(port).is_some()
            });
            if bound && !exited {
                return Nfcapd { child, port, dir };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("nfcapd did not bind a UDP port: {}", self_log(dir.path()));
    }

    /// Waits until nfcapd has read every queued datagram, stops it with SIGTERM (it
    /// flushes its file) and returns the flow directory.
    fn stop(mut self) -> (tempfile::TempDir, PathBuf) {
        let port = self.port;
        assert!(
            wait_for(Duration::from_secs(10), || udp_rx_queue(port) == Some(0)),
            "nfcapd did not drain its socket"
        );
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut code = None;
        let exited = wait_for(Duration::from_secs(10), || {
            code = self.child.try_wait().unwrap();
            code.is_some()
        });
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!("nfcapd ignored SIGTERM");
        }
        let flows = self.dir.path().join("flows");
        (self.dir, flows)
    }
}

fn self_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("nfcapd.log")).unwrap_or_default()
}

/// One flow as nfdump prints it: times in Unix ms.
#[derive(Debug, Clone)]
struct NfFlow {
    first_ms: u64,
    last_ms: u64,
    packets: u64,
    bytes: u64,
}

type Key = (IpAddr, IpAddr, u16, u16, u8);

/// Unix ms of `YYYY-MM-DDTHH:MM:SS.mmm` (UTC).
fn iso_ms(s: &str) -> u64 {
    let n = |r: std::ops::Range<usize>| -> i64 {
        s.get(r)
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("bad time {s:?}"))
    };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    (secs * 1000 + n(20..23)) as u64
}

fn nfdump_flows(dir: &Path) -> HashMap<Key, Vec<NfFlow>> {
    let out = Command::new("nfdump")
        .arg("-R")
        .arg(dir)
        .args(["-o", "json"])
        .env("TZ", "UTC")
        .output()
        .expect("running nfdump");
    assert!(
        out.status.success(),
        "nfdump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("nfdump -o json");
    let mut map: HashMap<Key, Vec<NfFlow>> = HashMap::new();
    for r in v.as_array().expect("a JSON array") {
        assert_eq!(r["type"], "FLOW", "{r}");
        let s = |k: &str| r[k].as_str().unwrap_or_else(|| panic!("{k} in {r}"));
        let u = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
        let addr = |v4: &str, v6: &str| -> IpAddr {
            r[v4].as_str().or(r[v6].as_str()).unwrap().parse().unwrap()
        };
        let proto = u("proto") as u8;
        let dst_port = if matches!(proto, 1 | 58) && r.get("icmp_type").is_some() {
            (u("icmp_type") << 8 | u("icmp_code")) as u16
        } else {
            u("dst_port") as u16
        };
        let key = (
            addr("src4_addr", "src6_addr"),
            addr("dst4_addr", "dst6_addr"),
            u("src_port") as u16,
            dst_port,
            proto,
        );
        map.entry(key).or_default().push(NfFlow {
            first_ms: iso_ms(s("first")),
            last_ms: iso_ms(s("last")),
            packets: u("in_packets"),
            bytes: u("in_bytes"),
        });
    }
    map
}

/// (key, packets, bytes, start_ns, end_ns) per line of mirrorflow's JSON output.
fn json_flows(path: &Path) -> Vec<(Key, u64, u64, u64, u64)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            let u = |k: &str| r[k].as_u64().unwrap();
            let a = |k: &str| r[k].as_str().unwrap().parse::<IpAddr>().unwrap();
            let key = (
                a("src_addr"),
                a("dst_addr"),
                u("src_port") as u16,
                u("dst_port") as u16,
                u("protocol") as u8,
            );
            (key, u("packets"), u("bytes"), u("start_ns"), u("end_ns"))
        })
        .collect()
}

/// Runs mirrorflow on `pcap` exporting with `flag` to a fresh nfcapd, and checks nfdump's
/// view against mirrorflow's JSON.
fn compare(pcap: &Path, flag: &str) {
    let nfcapd = Nfcapd::start();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("flows.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_mirrorflow"))
        .arg("-r")
        .arg(pcap)
        .arg("--json")
        .arg(&json)
        .args([flag, &format!("127.0.0.1:{}", nfcapd.port)])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (_keep, dir) = nfcapd.stop();
    assert!(
        out.status.success(),
        "mirrorflow failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "no summary line with an exporter");

    let mine = json_flows(&json);
    let mut theirs = nfdump_flows(&dir);
    let nf_count: usize = theirs.values().map(Vec::len).sum();
    let nf_packets: u64 = theirs.values().flatten().map(|f| f.packets).sum();
    let nf_bytes: u64 = theirs.values().flatten().map(|f| f.bytes).sum();
    let packets: u64 = mine.iter().map(|f| f.1).sum();
    let bytes: u64 = mine.iter().map(|f| f.2).sum();
    assert!(mine.len() > 1000, "the capture gives {} flows", mine.len());
    assert_eq!(
        (nf_count, nf_packets, nf_bytes),
        (mine.len(), packets, bytes),
        "nfdump (flows, packets, bytes) vs mirrorflow JSON"
    );

    for group in theirs.values_mut() {
        group.sort_by_key(|f| f.first_ms);
    }
    let mut by_key: HashMap<Key, Vec<(u64, u64, u64, u64)>> = HashMap::new();
    for (k, p, b, s, e) in mine {
        by_key.entry(k).or_default().push((p, b, s, e));
    }
    let within_1ms = |ms: u64, ns: u64| (ms as i128 * 1_000_000 - ns as i128).abs() < 1_000_000;
    for (key, mut group) in by_key {
        group.sort_by_key(|f| f.2);
        let nf = theirs
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} not in nfdump output"));
        assert_eq!(nf.len(), group.len(), "records of {key:?}");
        for (m, n) in group.iter().zip(nf) {
            assert_eq!((n.packets, n.bytes), (m.0, m.1), "{key:?} {n:?}");
            assert!(
                within_1ms(n.first_ms, m.2) && within_1ms(n.last_ms, m.3),
                "{key:?}: nfdump {}..{} ms, mirrorflow {}..{} ns",
                n.first_ms,
                n.last_ms,
                m.2,
                m.3
            );
        }
    }
}

#[test]
fn ipfix_matches_nfdump() {
    compare(Path::new(PCAP), "--ipfix");
}

/// Copy of a classic pcap with every timestamp moved so the first packet is at `first_sec`.
fn shifted_pcap(src: &Path, dst: &Path, first_sec: u32) {
    let mut b = std::fs::read(src).unwrap();
    let le = match b[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("{} is not a classic pcap", src.display()),
    };
    let rd = |b: &[u8], at: usize| {
        let x: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(x)
        } else {
            u32::from_be_bytes(x)
        }
    };
    let mut at = 24;
    let delta = first_sec.wrapping_sub(rd(&b, at));
    while at + 16 <= b.len() {
        let ts = rd(&b, at).wrapping_add(delta);
        let bytes = if le {
            ts.to_le_bytes()
        } else {
            ts.to_be_bytes()
        };
        b[at..at + 4].copy_from_slice(&bytes);
        at += 16 + rd(&b, at + 8) as usize;
    }
    std::fs::write(dst, b).unwrap();
}

/// NetFlow v9 carries times as sysUptime offsets (RFC 3954 §8, FIRST/LAST_SWITCHED: 32-bit
/// ms), which only hold for flows after the exporter's start: the capture is replayed as
/// if it began a minute from now. (Replayed as is, its 2021 times wrap and nfdump puts
/// them weeks off; packets and bytes still match.)
#[test]
fn netflow_v9_matches_nfdump() {
    let work = tempfile::tempdir().unwrap();
    let pcap = work.path().join("recent.pcap");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    shifted_pcap(Path::new(PCAP), &pcap, now as u32 + 60);
    compare(&pcap, "--netflow-v9");
}
