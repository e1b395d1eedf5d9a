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
use std::process::Stdio;

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

/// The print plugin's rows summed per 5-tuple; every row must parse.
fn totals(rows: &[HashMap<String, String>]) -> Totals {
    let mut totals = Totals::new();
    for r in rows {
        let col = |c: &str| {
            r.get(c)
                .unwrap_or_else(|| panic!("no {c} in print plugin row {r:?}"))
        };
        let num = |c: &str| -> u64 { col(c).parse().unwrap_or_else(|_| panic!("bad {c}: {r:?}")) };
        let addr =
            |c: &str| -> IpAddr { col(c).parse().unwrap_or_else(|_| panic!("bad {c}: {r:?}")) };
        let k = (
            addr("SRC_IP"),
            addr("DST_IP"),
            num("SRC_PORT") as u16,
            num("DST_PORT") as u16,
            num("PROTOCOL") as u8,
        );
        let t = totals.entry(key(k)).or_default();
        (t.0, t.1) = (t.0 + num("PACKETS"), t.1 + num("BYTES"));
    }
    totals
}

/// One nfacctd at a time (two at once, on different ports, were seen holding records back
/// from their print plugins more often).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn compare(flag: &str) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let nfacctd = NfacctdCsv::start("src_host, dst_host, src_port, dst_port, proto");
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
    let (rows, log) = nfacctd.stop(flows.iter().map(|f| f.packets).sum());
    let theirs = totals(&rows);
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
