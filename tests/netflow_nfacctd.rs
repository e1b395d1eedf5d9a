//! End to end against pmacct's `nfacctd` (Debian package `pmacct`, 1.7): mirrorflow
//! exports IPFIX / NetFlow v9 to an nfacctd whose print plugin aggregates by 5-tuple; the
//! packets and bytes per 5-tuple it prints must equal the sums of mirrorflow's own
//! `--json` records, and nfacctd must not call anything malformed.
//!
//! nfacctd aggregates without time (`nfacctd_time_new: true` stamps flows on arrival), so
//! the capture is replayed as is, v9 included. The print plugin appends its cache to a CSV
//! file every second; the test polls that file until its packet total reaches mirrorflow's
//! (or 10 s pass: now and then nfacctd holds records back from the plugin until it exits),
//! then stops nfacctd with SIGINT (1.7.7 ignores SIGTERM), on which the plugin writes its
//! cache a last time, and compares.

mod netflow_support;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use netflow_support::*;

/// (packets, bytes) per 5-tuple.
type Totals = HashMap<Key, (u64, u64)>;

/// ICMP flows carry type/code apart from the ports; compare them without ports.
fn key(mut k: Key) -> Key {
    if matches!(k.4, 1 | 58) {
        (k.2, k.3) = (0, 0);
    }
    k
}

struct Nfacctd {
    child: Guard,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nfacctd {
    fn start() -> Nfacctd {
        require("nfacctd", &["-V"], "pmacct");
        let dir = tempfile::tempdir().unwrap();
        let (d, log) = (dir.path().to_path_buf(), dir.path().join("nfacctd.log"));
        let (child, port) = start_udp_daemon("nfacctd", |port| {
            let conf = d.join("nfacctd.conf");
            let out = d.join("flows.csv");
            std::fs::write(
                &conf,
                format!(
                    "daemonize: false\n\
                     nfacctd_ip: 127.0.0.1\n\
                     nfacctd_port: {port}\n\
                     nfacctd_time_new: true\n\
                     plugins: print[p]\n\
                     aggregate[p]: src_host, dst_host, src_port, dst_port, proto\n\
                     print_output[p]: csv\n\
                     print_output_file[p]: {}\n\
                     print_output_file_append[p]: true\n\
                     print_num_protos[p]: true\n\
                     print_refresh_time[p]: 1\n",
                    out.display()
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
        Nfacctd { child, port, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nfacctd.log")).unwrap_or_default()
    }

    /// The print plugin's output so far, summed per 5-tuple. `strict`: every line must
    /// parse (a file being appended to may end in half a line).
    fn totals(&self, strict: bool) -> Option<Totals> {
        let text = std::fs::read_to_string(self.dir.path().join("flows.csv")).ok()?;
        let mut totals = Totals::new();
        for line in text.lines() {
            if line.starts_with("SRC_IP") || line.trim().is_empty() {
                continue;
            }
            let c: Vec<&str> = line.split(',').collect();
            let num = |i: usize| c.get(i)?.parse::<u64>().ok();
            let addr = |i: usize| c.get(i)?.parse::<IpAddr>().ok();
            let parsed = (|| {
                let k = (
                    addr(0)?,
                    addr(1)?,
                    num(2)? as u16,
                    num(3)? as u16,
                    num(4)? as u8,
                );
                (c.len() == 7).then_some((key(k), num(5)?, num(6)?))
            })();
            let Some((k, p, b)) = parsed else {
                assert!(!strict, "bad print plugin line {line:?}");
                continue;
            };
            let t = totals.entry(k).or_default();
            (t.0, t.1) = (t.0 + p, t.1 + b);
        }
        Some(totals)
    }

    /// Waits until the plugin has printed `packets` packets (bounded), stops nfacctd
    /// (SIGINT: the plugin writes its cache a last time) and returns its totals and log.
    fn stop(mut self, packets: u64) -> (Totals, String) {
        wait_for(Duration::from_secs(10), || {
            self.totals(false)
                .is_some_and(|t| t.values().map(|v| v.0).sum::<u64>() >= packets)
        });
        self.child.signal("INT");
        let status = self.child.wait_exit(Duration::from_secs(30));
        let log = self.log();
        assert!(status.is_some(), "nfacctd ignored SIGINT: {log}");
        let totals = self
            .totals(true)
            .unwrap_or_else(|| panic!("no print plugin output: {log}"));
        (totals, log)
    }
}

/// One nfacctd at a time (two at once, on different ports, were seen holding records back
/// from their print plugins more often).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn compare(flag: &str) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let nfacctd = Nfacctd::start();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("flows.jsonl");
    let out = mirrorflow()
        .arg("-r")
        .arg(Path::new(DNS_PCAP))
        .arg("--json")
        .arg(&json)
        .args([flag, &format!("127.0.0.1:{}", nfacctd.port)])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mirrorflow failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let flows = json_flows(&json);
    let (theirs, log) = nfacctd.stop(flows.iter().map(|f| f.packets).sum());
    let mut mine = Totals::new();
    for f in &flows {
        let t = mine.entry(key(f.key)).or_default();
        (t.0, t.1) = (t.0 + f.packets, t.1 + f.bytes);
    }
    assert!(
        flows.len() > 1000,
        "the capture gives {} flows",
        flows.len()
    );
    for bad in ["malformed", "ERROR", "WARN"] {
        assert!(!log.contains(bad), "nfacctd logged {bad}: {log}");
    }
    let sum = |t: &Totals| t.values().fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
    assert_eq!(
        sum(&theirs),
        sum(&mine),
        "nfacctd (packets, bytes) vs mirrorflow"
    );
    assert_eq!(theirs.len(), mine.len(), "5-tuples");
    for (k, v) in &mine {
        assert_eq!(theirs.get(k), Some(v), "{k:?}");
    }
}

#[test]
fn ipfix_matches_nfacctd() {
    compare("--ipfix");
}

#[test]
fn netflow_v9_matches_nfacctd() {
    compare("--netflow-v9");
}
