//! Every IPFIX and NetFlow v9 datagram mirrorflow sends, as captured on the loopback
//! interface by tshark, passes `../shared/tools/export-check.sh` (Wireshark's dissector:
//! no malformed packet, no expert warning; set lengths add up), and the sampling and
//! interface options announce `--flow-sampling` and the capture.
//!
//! tshark is required (Debian package `tshark`): without it this test fails.

mod netflow_support;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use netflow_support::*;

/// A collector stand-in that reads and counts datagrams until told to stop.
struct Drain {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl Drain {
    fn start() -> Drain {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut buf, mut n) = ([0u8; 65536], 0);
            loop {
                match sock.recv(&mut buf) {
                    Ok(_) => n += 1,
                    Err(_) if flag.load(Ordering::Relaxed) => return n,
                    Err(_) => {}
                }
            }
        });
        Drain { port, stop, thread }
    }

    /// Datagrams received (once the socket has been quiet after `stop`).
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Frames in a capture file (also one being written: tshark reads it up to its last
/// whole block); `filter` selects (display filter), empty for all.
fn frames(file: &Path, filter: &str) -> u64 {
    Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-Y", filter])
        .output()
        .map(|o| {
            o.stdout
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count() as u64
        })
        .unwrap_or(0)
}

/// tshark capturing `filter` on lo into `file`, known to be capturing: it says so on
/// stderr, and a probe datagram sent to `probe` afterwards is in the file (dumpcap prints
/// "Capturing on" a moment before packets are really taken).
fn capture(filter: &str, file: &Path, log: &Path, probe: u16) -> Guard {
    require("tshark", &["-v"], "tshark");
    let mut child = Guard(
        Command::new("tshark")
            .args(["-i", "lo", "-f", filter, "-w"])
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("starting tshark"),
    );
    let ready = wait_for(Duration::from_secs(30), || {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains("Capturing on 'Loopback: lo'")
            || child.0.try_wait().unwrap().is_some()
    });
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let probed = ready
        && wait_for(Duration::from_secs(30), || {
            let _ = sender.send_to(b"probe", ("127.0.0.1", probe));
            frames(file, "") > 0
        });
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        probed && child.0.try_wait().unwrap().is_none(),
        "tshark is not capturing: {text}"
    );
    child
}

fn export_check() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/export-check.sh");
    assert!(p.is_file(), "{} is missing", p.display());
    p
}

/// `tshark -r FILE -d … -T fields -e FIELD…` for the datagrams to `port`, one line each.
fn fields(file: &Path, ports: (u16, u16), port: u16, names: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file);
    for p in [ports.0, ports.1] {
        cmd.args(["-d", &format!("udp.port=={p},cflow")]);
    }
    cmd.args([
        "-Y",
        &format!("cflow && udp.dstport == {port}"),
        "-T",
        "fields",
    ]);
    cmd.args(["-E", "occurrence=a", "-E", "aggregator=,"]);
    for n in names {
        cmd.args(["-e", n]);
    }
    let out = cmd.output().expect("running tshark");
    assert!(
        out.status.success(),
        "tshark -r: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every value of column `col` in `lines` (tab-separated, values joined by ',').
fn values(lines: &[String], col: usize) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| l.split('\t').nth(col))
        .flat_map(|v| v.split(','))
        .filter(|v| !v.is_empty())
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{v:?} in {lines:?}")))
        .collect()
}

#[test]
fn every_export_datagram_passes_tshark_and_announces_sampling() {
    let work = tempfile::tempdir().unwrap();
    let pcap = work.path().join("export.pcapng");
    let (ipfix, v9, probe) = (Drain::start(), Drain::start(), Drain::start());
    let ports = (ipfix.port, v9.port);
    let filter = format!(
        "udp port {} or udp port {} or udp port {}",
        ports.0, ports.1, probe.port
    );
    let log = work.path().join("tshark.log");
    let mut tshark = capture(&filter, &pcap, &log, probe.port);

    let stats = work.path().join("stats.json");
    let out = mirrorflow()
        .arg("-r")
        .arg(DNS_PCAP)
        .args(["--ipfix", &format!("127.0.0.1:{}", ports.0)])
        .args(["--netflow-v9", &format!("127.0.0.1:{}", ports.1)])
        .args(["--flow-sampling", "10", "--stats-json"])
        .arg(&stats)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mirrorflow failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = ipfix.finish() + v9.finish();
    probe.finish();
    // dumpcap may still be writing what it read: wait until the file holds every datagram
    // the receivers got.
    let export = format!("udp.dstport == {} || udp.dstport == {}", ports.0, ports.1);
    wait_for(Duration::from_secs(30), || frames(&pcap, &export) >= sent);
    tshark.signal("INT");
    assert!(
        tshark.wait_exit(Duration::from_secs(30)).is_some(),
        "tshark ignored SIGINT"
    );
    assert!(sent > 10, "only {sent} datagrams");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        frames(&pcap, &export),
        sent,
        "captured vs received datagrams; tshark: {text}"
    );

    let check = Command::new(export_check())
        .arg(&pcap)
        .arg(format!("{},{}", ports.0, ports.1))
        .output()
        .expect("running export-check.sh");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && report.contains(" 0 problems"),
        "export-check.sh: {report}{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // Sampling options: IPFIX has both the RFC 7012 and the RFC 5477 elements, v9 the
    // former; 1-in-10 random: interval 10 / algorithm 2, packet interval 1 / space 9,
    // selector algorithm 3 (random n-out-of-N).
    let sampling = [
        "cflow.sampling_interval",
        "cflow.sampling_algorithm",
        "cflow.sampling_packet_interval",
        "cflow.sampling_packet_space",
        "cflow.selector_algorithm",
    ];
    for (port, want) in [
        (ports.0, [10, 2, 1, 9, 3].as_slice()),
        (ports.1, [10, 2].as_slice()),
    ] {
        let lines = fields(&pcap, ports, port, &sampling);
        for (col, &v) in want.iter().enumerate() {
            let got = values(&lines, col);
            assert!(!got.is_empty(), "udp/{port}: no {}", sampling[col]);
            assert!(
                got.iter().all(|&g| g == v),
                "udp/{port}: {} = {got:?}",
                sampling[col]
            );
        }
        // Never interface index 0; the interface options name the capture file.
        let ifs = fields(
            &pcap,
            ports,
            port,
            &["cflow.inputint", "cflow.outputint", "cflow.if_name"],
        );
        let inputs = values(&ifs, 0);
        assert!(!inputs.is_empty() && !inputs.contains(&0), "udp/{port}");
        assert!(!values(&ifs, 1).contains(&0), "udp/{port}");
        assert!(
            ifs.iter()
                .any(|l| l.contains("pktvisor__dns_udp_tcp_random")),
            "udp/{port}: interface name not announced"
        );
    }
    let (records, _, _) = stats_totals(&stats);
    assert!(records > 100, "{records} records with 1-in-10 sampling");
}
