//! Shared harness of the IPFIX / NetFlow v9 end-to-end tests (`tests/netflow_*.rs`):
//! polling, required tools, nfcapd/nfdump, mirrorflow's JSON output, generated traces.
//! Every test uses a part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The DNS capture most export tests replay (UDP and TCP, IPv4, > 1000 flows).
pub const DNS_PCAP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/pcaps/pktvisor__dns_udp_tcp_random.pcap"
);

pub fn mirrorflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mirrorflow"))
}

/// Polls `cond` every 10 ms for at most `limit`.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Fails the test with an install hint unless `tool ARGS` runs and succeeds.
pub fn require(tool: &str, args: &[&str], package: &str) {
    match Command::new(tool).args(args).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "`{tool} {}` failed ({}): is the Debian package {package} installed?",
            args.join(" "),
            o.status
        ),
        Err(e) => panic!(
            "{tool} is required for this test and could not be run ({e}); \
             install it with `apt-get install {package}`"
        ),
    }
}

/// A child process killed (by its own pid) and reaped when dropped.
pub struct Guard(pub Child);

impl Guard {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends `signal` (e.g. "TERM", "INT") to the child.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.0.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{signal} {} failed", self.0.id());
    }

    /// Waits at most `limit` for the child to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let mut code = None;
        wait_for(limit, || {
            code = self.0.try_wait().ok().flatten();
            code.is_some()
        });
        code
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// rx_queue of the IPv4 UDP socket bound to 127.0.0.1:`port`, if one is bound.
pub fn udp_rx_queue(port: u16) -> Option<u64> {
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

/// Datagrams the kernel dropped on the IPv4 UDP socket bound to 127.0.0.1:`port`.
pub fn udp_drops(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&local.as_str())).then(|| f.last()?.parse().ok())?
    })
}

/// A UDP port that was free a moment ago (a daemon binding it retries on a clash).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a UDP daemon with `spawn(port)` on a free port until it binds it (polled in
/// /proc/net/udp); retried on another port if it exits (port taken meanwhile).
pub fn start_udp_daemon(what: &str, mut spawn: impl FnMut(u16) -> Child) -> (Guard, u16) {
    for _ in 0..5 {
        let port = free_udp_port();
        let mut child = Guard(spawn(port));
        let mut exited = false;
        let bound = wait_for(Duration::from_secs(10), || {
            exited = exited || child.0.try_wait().unwrap().is_some();
            exited || udp_rx_queue(port).is_some()
        });
        if bound && !exited {
            return (child, port);
        }
    }
    panic!("{what} did not bind a UDP port");
}

/// A running nfcapd writing to its own temp directory.
pub struct Nfcapd {
    pub child: Guard,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Nfcapd {
    pub fn start() -> Nfcapd {
        Nfcapd::start_with(&[])
    }

    /// nfcapd on 127.0.0.1 with `extra` arguments (e.g. `-B 4194304`).
    pub fn start_with(extra: &[&str]) -> Nfcapd {
        require("nfcapd", &["-V"], "nfdump");
        require("nfdump", &["-V"], "nfdump");
        let dir = tempfile::tempdir().unwrap();
        let flows = dir.path().join("flows");
        std::fs::create_dir(&flows).unwrap();
        let log_path = dir.path().join("nfcapd.log");
        let (child, port) = start_udp_daemon("nfcapd", |port| {
            let log = std::fs::File::create(&log_path).unwrap();
            Command::new("nfcapd")
                .arg("-w")
                .arg(&flows)
                .args(["-p", &port.to_string(), "-b", "127.0.0.1"])
                .args(extra)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("starting nfcapd")
        });
        Nfcapd { child, port, dir }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nfcapd.log")).unwrap_or_default()
    }

    /// Waits until nfcapd has read every queued datagram, stops it with SIGTERM (it
    /// flushes its file) and returns the flow directory.
    pub fn stop(mut self) -> (tempfile::TempDir, PathBuf) {
        let port = self.port;
        assert!(
            wait_for(Duration::from_secs(30), || udp_rx_queue(port) == Some(0)),
            "nfcapd did not drain its socket"
        );
        self.child.signal("TERM");
        assert!(
            self.child.wait_exit(Duration::from_secs(10)).is_some(),
            "nfcapd ignored SIGTERM: {}",
            self.log()
        );
        let flows = self.dir.path().join("flows");
        (self.dir, flows)
    }
}

/// One flow as nfdump prints it: times in Unix ms.
#[derive(Debug, Clone)]
pub struct NfFlow {
    pub first_ms: u64,
    pub last_ms: u64,
    pub packets: u64,
    pub bytes: u64,
}

/// (source, destination, source port, destination port or ICMP type × 256 + code, protocol)
pub type Key = (IpAddr, IpAddr, u16, u16, u8);

/// Unix ms of `YYYY-MM-DDTHH:MM:SS.mmm` (UTC).
pub fn iso_ms(s: &str) -> u64 {
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

/// The records nfdump reads from the files under `dir` (`nfdump -R DIR -o json`, UTC).
pub fn nfdump_json(dir: &Path) -> Vec<serde_json::Value> {
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
    match serde_json::from_slice(&out.stdout).expect("nfdump -o json") {
        serde_json::Value::Array(records) => records,
        other => panic!("nfdump -o json: not an array: {other}"),
    }
}

/// Every flow nfdump reads from the files under `dir`, by key.
pub fn nfdump_flows(dir: &Path) -> HashMap<Key, Vec<NfFlow>> {
    let mut map: HashMap<Key, Vec<NfFlow>> = HashMap::new();
    for r in &nfdump_json(dir) {
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

/// (flows, packets, bytes) of every nfcapd file under `dir`: the summed statistics
/// records of the files (`nfdump -I`), without printing every flow.
pub fn nfdump_totals(dir: &Path) -> (u64, u64, u64) {
    let out = Command::new("nfdump")
        .arg("-R")
        .arg(dir)
        .arg("-I")
        .output()
        .expect("running nfdump");
    assert!(
        out.status.success(),
        "nfdump -I: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(": ")?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {name} in nfdump -I output:\n{text}"))
    };
    (value("Flows"), value("Packets"), value("Bytes"))
}

/// A record of mirrorflow's `--json` output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JsonFlow {
    pub key: Key,
    pub packets: u64,
    pub bytes: u64,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// mirrorflow's `--json` output, in order.
pub fn json_flows(path: &Path) -> Vec<JsonFlow> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            let u = |k: &str| r[k].as_u64().unwrap();
            let a = |k: &str| r[k].as_str().unwrap().parse::<IpAddr>().unwrap();
            JsonFlow {
                key: (
                    a("src_addr"),
                    a("dst_addr"),
                    u("src_port") as u16,
                    u("dst_port") as u16,
                    u("protocol") as u8,
                ),
                packets: u("packets"),
                bytes: u("bytes"),
                start_ns: u("start_ns"),
                end_ns: u("end_ns"),
            }
        })
        .collect()
}

/// `(flow_records, flow_packets, flow_bytes)` of a `--stats-json` file.
pub fn stats_totals(path: &Path) -> (u64, u64, u64) {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let u = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    (u("flow_records"), u("flow_packets"), u("flow_bytes"))
}

/// Copy of a classic pcap with every timestamp moved so the first packet is at `first_sec`.
pub fn shifted_pcap(src: &Path, dst: &Path, first_sec: u32) {
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

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The `gen_trace` example (benches/gen_trace.rs) next to the test binaries; built with
/// cargo when missing (`cargo test` builds examples, `cargo test --test X` does not).
fn gen_trace_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary in <target>/<profile>/deps");
    let bin = profile_dir.join("examples").join("gen_trace");
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", "gen_trace"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .status()
            .expect("running cargo build --example gen_trace");
        assert!(status.success(), "cargo build --example gen_trace failed");
    }
    assert!(bin.is_file(), "{} is missing", bin.display());
    bin
}

/// Writes a synthetic trace (benches/gen_trace.rs, seed 1) of `packets` packets in
/// `flows` flows to `path`.
pub fn gen_trace(path: &Path, packets: u64, flows: u64) {
    let out = Command::new(gen_trace_bin())
        .args(["--packets", &packets.to_string()])
        .args(["--flows", &flows.to_string()])
        .args(["--seed", "1", "-o"])
        .arg(path)
        .output()
        .expect("running gen_trace");
    assert!(
        out.status.success(),
        "gen_trace: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running pmacct `nfacctd` (print plugin, CSV with a header, numeric protocols) on
/// 127.0.0.1 aggregating by `aggregate` (e.g. `src_host,dst_host,src_port,dst_port,proto,
/// in_iface,out_iface`); stopped with SIGINT (1.7.7 ignores SIGTERM), on which the plugin
/// writes its cache a last time.
pub struct NfacctdCsv {
    pub child: Guard,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl NfacctdCsv {
    pub fn start(aggregate: &str) -> NfacctdCsv {
        NfacctdCsv::start_with(aggregate, "")
    }

    /// Like [`NfacctdCsv::start`], with `extra` lines (`key: value\n`) added to the config,
    /// e.g. `nfacctd_renormalize: true\n`.
    pub fn start_with(aggregate: &str, extra: &str) -> NfacctdCsv {
        require("nfacctd", &["-V"], "pmacct");
        let dir = tempfile::tempdir().unwrap();
        let (d, log) = (dir.path().to_path_buf(), dir.path().join("nfacctd.log"));
        let (child, port) = start_udp_daemon("nfacctd", |port| {
            let conf = d.join("nfacctd.conf");
            std::fs::write(
                &conf,
                format!(
                    "daemonize: false\n\
                     nfacctd_ip: 127.0.0.1\n\
                     nfacctd_port: {port}\n\
                     nfacctd_time_new: true\n\
                     {extra}\
                     plugins: print[p]\n\
                     aggregate[p]: {aggregate}\n\
                     print_output[p]: csv\n\
                     print_output_file[p]: {}\n\
                     print_output_file_append[p]: true\n\
                     print_num_protos[p]: true\n\
                     print_refresh_time[p]: 1\n",
                    d.join("flows.csv").display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(&log).unwrap();
            Command::new("nfacctd")
                .arg("-f")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("starting nfacctd")
        });
        NfacctdCsv { child, port, dir }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nfacctd.log")).unwrap_or_default()
    }

    /// Every whole CSV row printed so far (all purges), by column name (`SRC_IP`, …).
    pub fn rows(&self) -> Vec<HashMap<String, String>> {
        let mut text =
            std::fs::read_to_string(self.dir.path().join("flows.csv")).unwrap_or_default();
        text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
        let mut lines = text.lines();
        let Some(header) = lines.next() else {
            return Vec::new();
        };
        let cols: Vec<&str> = header.split(',').collect();
        lines
            .filter(|l| *l != header && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                assert_eq!(f.len(), cols.len(), "nfacctd CSV row {l:?} vs {header:?}");
                cols.iter()
                    .zip(f)
                    .map(|(c, v)| (c.to_string(), v.trim().to_string()))
                    .collect()
            })
            .collect()
    }

    fn packets(&self) -> u64 {
        self.rows()
            .iter()
            .filter_map(|r| r.get("PACKETS")?.parse::<u64>().ok())
            .sum()
    }

    /// Waits (at most 10 s) until the plugin has printed `packets` packets, stops nfacctd
    /// with SIGINT and returns its rows and log.
    pub fn stop(mut self, packets: u64) -> (Vec<HashMap<String, String>>, String) {
        wait_for(Duration::from_secs(10), || self.packets() >= packets);
        self.child.signal("INT");
        let status = self.child.wait_exit(Duration::from_secs(30));
        let log = self.log();
        assert!(status.is_some(), "nfacctd ignored SIGINT: {log}");
        (self.rows(), log)
    }
}
