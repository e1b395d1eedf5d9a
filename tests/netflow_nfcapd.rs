//! End to end against the reference collector: mirrorflow exports IPFIX / NetFlow v9 over
//! UDP to a real `nfcapd` (nfdump 1.7), and what `nfdump -o json` reads back must equal
//! mirrorflow's own JSON output: same flows, packets and bytes, times within 1 ms.
//!
//! nfcapd and nfdump are required (Debian package `nfdump`): without them these tests fail.

mod netflow_support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;

use netflow_support::*;

/// Runs mirrorflow on `pcap` exporting with `flag` (and `extra` flags) to a fresh nfcapd,
/// and checks nfdump's view against mirrorflow's JSON.
fn compare(pcap: &Path, flag: &str, extra: &[&str]) {
    let nfcapd = Nfcapd::start();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("flows.jsonl");
    let out = mirrorflow()
        .arg("-r")
        .arg(pcap)
        .arg("--json")
        .arg(&json)
        .args([flag, &format!("127.0.0.1:{}", nfcapd.port)])
        .args(extra)
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
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("segmentation offload refused"),
        "fell back to one send per datagram: {stderr}"
    );

    let mine = json_flows(&json);
    let mut theirs = nfdump_flows(&dir);
    let nf_count: usize = theirs.values().map(Vec::len).sum();
    let nf_packets: u64 = theirs.values().flatten().map(|f| f.packets).sum();
    let nf_bytes: u64 = theirs.values().flatten().map(|f| f.bytes).sum();
    let packets: u64 = mine.iter().map(|f| f.packets).sum();
    let bytes: u64 = mine.iter().map(|f| f.bytes).sum();
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
    for f in mine {
        by_key
            .entry(f.key)
            .or_default()
            .push((f.packets, f.bytes, f.start_ns, f.end_ns));
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
    compare(Path::new(DNS_PCAP), "--ipfix", &[]);
}

/// With UDP segmentation offload runs of datagrams (up to the default pacing's burst of 40)
/// leave in one send each and the kernel cuts them apart: nfcapd must read exactly the same
/// flows. (At a rate far above the default, a stock nfcapd on a loaded machine falls behind
/// and its socket drops datagrams, with or without segmentation.)
#[test]
fn ipfix_with_segmentation_offload_matches_nfdump() {
    compare(Path::new(DNS_PCAP), "--ipfix", &["--export-gso"]);
}

/// NetFlow v9 carries times as sysUptime offsets (RFC 3954 §8, FIRST/LAST_SWITCHED: 32-bit
/// ms), which only hold for flows after the exporter's start: the capture is replayed as
/// if it began a minute from now. (Replayed as is, its 2021 times wrap and nfdump puts
/// them weeks off; packets and bytes still match.)
#[test]
fn netflow_v9_matches_nfdump() {
    let work = tempfile::tempdir().unwrap();
    let pcap = work.path().join("recent.pcap");
    shifted_pcap(Path::new(DNS_PCAP), &pcap, unix_now() as u32 + 60);
    compare(&pcap, "--netflow-v9", &[]);
}
