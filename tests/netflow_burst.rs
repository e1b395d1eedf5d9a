//! No loss under a burst: the 10 M-packet, 1 M-flow benchmark trace (benches/gen_trace.rs)
//! replayed with IPFIX over UDP to nfcapd, whose socket buffer is at the 4 MiB cap, while
//! two busy loops keep both cores loaded. Every record arrives: nfdump's totals of flows,
//! packets and bytes equal mirrorflow's `--stats-json` exactly.
//!
//! A file replay ends with a flush of every active flow at once, and the trace's short
//! flows expire in bulk; softflowd, which sends all of that at once, loses records here.
//! mirrorflow paces its datagrams (`--export-rate`, default 2000/s), so the run takes
//! about a minute. The trace (~1 GB) lives in a temp dir removed at the end.

mod netflow_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use netflow_support::*;

/// nfcapd's socket buffer: the cap the issue names for this kind of machine.
const RCVBUF: u64 = 4 << 20;
const RMEM_MAX: &str = "/proc/sys/net/core/rmem_max";

/// Raises `net.core.rmem_max` to [`RCVBUF`] if it is lower, and restores it when dropped.
struct RmemMax(Option<String>);

impl RmemMax {
    fn at_least(v: u64) -> RmemMax {
        let old = std::fs::read_to_string(RMEM_MAX).expect("reading net.core.rmem_max");
        let cur: u64 = old.trim().parse().unwrap();
        if cur >= v {
            return RmemMax(None);
        }
        std::fs::write(RMEM_MAX, v.to_string())
            .unwrap_or_else(|e| panic!("raising net.core.rmem_max to {v} (needs root): {e}"));
        RmemMax(Some(old))
    }
}

impl Drop for RmemMax {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = std::fs::write(RMEM_MAX, old.trim());
        }
    }
}

#[test]
fn ipfix_burst_of_a_million_flows_to_a_busy_nfcapd_loses_nothing() {
    let work = tempfile::tempdir().unwrap();
    let trace = work.path().join("trace.pcap");
    gen_trace(&trace, 10_000_000, 1_000_000);
    let _rmem = RmemMax::at_least(RCVBUF);
    let nfcapd = Nfcapd::start_with(&["-B", &RCVBUF.to_string()]);
    let busy: Vec<Guard> = (0..2)
        .map(|_| {
            Guard(
                Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .stdin(Stdio::null())
                    .spawn()
                    .expect("starting a busy loop"),
            )
        })
        .collect();

    let stats = work.path().join("stats.json");
    let out = mirrorflow()
        .arg("-r")
        .arg(&trace)
        .args(["--ipfix", &format!("127.0.0.1:{}", nfcapd.port)])
        .arg("--stats-json")
        .arg(&stats)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mirrorflow failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = nfcapd.port;
    // Wait for nfcapd to read everything (with the loops still running), then count what
    // the kernel dropped on its socket.
    assert!(
        wait_for(Duration::from_secs(120), || udp_rx_queue(port) == Some(0)),
        "nfcapd did not drain its socket"
    );
    let drops = udp_drops(port).expect("nfcapd's socket");
    drop(busy);
    let log = nfcapd.log();
    let (_keep, dir) = nfcapd.stop();
    let (records, packets, bytes) = stats_totals(&stats);
    assert_eq!(packets, 10_000_000, "every packet in a record");
    assert!(records >= 1_000_000, "{records} records");
    assert_eq!(
        drops, 0,
        "datagrams dropped on nfcapd's socket; nfcapd: {log}"
    );
    assert_eq!(
        nfdump_totals(&dir),
        (records, packets, bytes),
        "nfdump (flows, packets, bytes) vs mirrorflow --stats-json"
    );
    drop(work);
}
