//! mirrorflow's sFlow samples feed a real collector: pmacct's `sfacctd` (print plugin,
//! counters not renormalized) receives the export of a generated 2 M-packet trace sampled
//! 1-in-64, and its per-flow sampled packets × 64 estimate the true per-flow packet
//! counts (mirrorflow's own JSON records of the same replay): the total within 2 %, each
//! of the 20 largest flows within 15 %. sfacctd's socket must drop nothing (the sink's
//! pacing keeps a stock collector up).
//!
//! Requires sfacctd (Debian package `pmacct`) and rustc (to build `benches/gen_trace.rs`).

mod sflow_support;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sflow_support::{mirrorflow, udp_socket_state, wait_for, Sfacctd};

const RATE: u64 = 64;

type Key = (IpAddr, IpAddr, u16, u16, u8);

/// Builds the trace generator (std only) with rustc, once per target directory.
fn gen_trace_binary() -> PathBuf {
    let src = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/gen_trace.rs"));
    let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sflow_gen_trace");
    let fresh = |b: &Path| {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        matches!((m(b), m(src)), (Some(b), Some(s)) if b >= s)
    };
    if !fresh(&bin) {
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let tmp = bin.with_extension("tmp");
        let out = Command::new(&rustc)
            .args(["--edition", "2021", "-C", "opt-level=3", "-o"])
            .arg(&tmp)
            .arg(src)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {rustc} to build gen_trace: {e}"));
        assert!(
            out.status.success(),
            "building gen_trace: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &bin).unwrap();
    }
    bin
}

/// Sampled packets per flow key in sfacctd's output, summed over every purge so far.
fn sampled_flows(sfacctd: &Sfacctd) -> HashMap<Key, u64> {
    let mut map = HashMap::new();
    for r in sfacctd.rows() {
        let proto = match r["PROTOCOL"].as_str() {
            "tcp" => 6,
            "udp" => 17,
            "icmp" => 1,
            "ipv6-icmp" => 58,
            n => n
                .parse()
                .unwrap_or_else(|_| panic!("protocol {n:?} in {r:?}")),
        };
        let key = normalize((
            r["SRC_IP"].parse().unwrap(),
            r["DST_IP"].parse().unwrap(),
            r["SRC_PORT"].parse().unwrap(),
            r["DST_PORT"].parse().unwrap(),
            proto,
        ));
        *map.entry(key).or_default() += r["PACKETS"].parse::<u64>().unwrap();
    }
    map
}

/// ICMP keys without ports (mirrorflow carries type/code as the destination port, pmacct
/// reports 0 and 0).
fn normalize(k: Key) -> Key {
    if matches!(k.4, 1 | 58) {
        (k.0, k.1, 0, 0, k.4)
    } else {
        k
    }
}

/// True packets per flow key from mirrorflow's JSON records (active timeouts split flows).
fn truth(json: &Path) -> HashMap<Key, u64> {
    let mut map = HashMap::new();
    for l in std::fs::read_to_string(json).unwrap().lines() {
        let r: serde_json::Value = serde_json::from_str(l).unwrap();
        let u = |k: &str| r[k].as_u64().unwrap();
        let a = |k: &str| r[k].as_str().unwrap().parse::<IpAddr>().unwrap();
        let key = normalize((
            a("src_addr"),
            a("dst_addr"),
            u("src_port") as u16,
            u("dst_port") as u16,
            u("protocol") as u8,
        ));
        *map.entry(key).or_default() += u("packets");
    }
    map
}

#[test]
fn sfacctd_estimates_match_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.pcap");
    let gen = Command::new(gen_trace_binary())
        .args(["--packets", "2000000", "--flows", "20000", "-o"])
        .arg(&trace)
        .output()
        .unwrap();
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let sfacctd = Sfacctd::start(dir.path(), "src_host,dst_host,src_port,dst_port,proto");
    let (_, drops_before) = udp_socket_state(sfacctd.port).unwrap();
    let json = dir.path().join("flows.jsonl");
    let stats = dir.path().join("stats.json");
    mirrorflow(&[
        "-r",
        trace.to_str().unwrap(),
        "--sflow",
        &format!("127.0.0.1:{}", sfacctd.port),
        "--sflow-sampling",
        &RATE.to_string(),
        "--json",
        json.to_str().unwrap(),
        "--stats-json",
        stats.to_str().unwrap(),
    ]);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let sink = report["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with("sflow:"))
        .expect("the sflow sink in --stats-json");
    let samples = sink["records_written"].as_u64().unwrap();
    assert_eq!(sink["records_dropped"], 0);
    assert!(samples > 25_000, "{samples} flow samples");

    // Every flow sample shows up in sfacctd's output (one purge a second).
    let mut received = 0;
    let complete = wait_for(Duration::from_secs(60), || {
        received = sampled_flows(&sfacctd).values().sum::<u64>();
        received >= samples
    });
    let (_, drops) = udp_socket_state(sfacctd.port).unwrap();
    assert_eq!(drops, drops_before, "sfacctd's socket dropped datagrams");
    assert!(
        complete && received == samples,
        "sfacctd reported {received} sampled packets, mirrorflow sent {samples}: {}",
        sfacctd.log()
    );

    let truth = truth(&json);
    let est = sampled_flows(&sfacctd);
    let total: u64 = truth.values().sum();
    assert_eq!(total, 2_000_000);
    let estimate = received * RATE;
    let err = (estimate as f64 - total as f64) / total as f64;
    println!(
        "total: true {total}, estimated {estimate} ({:+.2} %)",
        err * 100.0
    );
    assert!(
        err.abs() <= 0.02,
        "total estimate off by {:.2} %",
        err * 100.0
    );

    let mut largest: Vec<(&Key, &u64)> = truth.iter().collect();
    largest.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (key, &n) in largest.into_iter().take(20) {
        let e = est.get(key).copied().unwrap_or(0) * RATE;
        let err = (e as f64 - n as f64) / n as f64;
        println!("{key:?}: true {n}, estimated {e} ({:+.2} %)", err * 100.0);
        assert!(
            err.abs() <= 0.15,
            "{key:?}: true {n} packets, estimated {e} ({:+.1} %)",
            err * 100.0
        );
    }
}
