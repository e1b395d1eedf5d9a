//! Replays the shared capture corpus (`../shared/pcaps`, described by its MANIFEST.tsv)
//! through the whole pipeline and checks the result against tshark and golden files.
//!
//! Regenerate the golden files with `UPDATE_GOLDEN=1 cargo test --test shared_captures`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use common::{pcap, pcaps_dir, replay, replay_ok, tshark, tshark_frame_count, Replay, CORRUPT};
use mirrorflow::decode::TunnelMode;
use mirrorflow::export::JsonFlow;
use mirrorflow::flow::FlowRecord;

/// Problems with one replay: the frame accounting identity, the frame count, the sink.
fn accounting_problems(rep: &Replay, tshark_frames: u64) -> Vec<String> {
    let r = &rep.report;
    let mut out = Vec::new();
    if !r.source_errors.is_empty() {
        out.push(format!("source errors {:?}", r.source_errors));
    }
    if r.unaccounted() != 0 {
        out.push(format!(
            "unaccounted {} (frames {} flow_packets {} non_ip {:?} decode_errors {:?} filtered {})",
            r.unaccounted(),
            r.frames,
            r.flow_packets,
            r.non_ip,
            r.decode_errors,
            r.filtered
        ));
    }
    if r.frames != tshark_frames {
        out.push(format!(
            "frames {} but tshark reads {tshark_frames}",
            r.frames
        ));
    }
    let packets: u64 = rep.records.iter().map(|f| f.stats.packets).sum();
    if packets != r.flow_packets {
        out.push(format!(
            "records hold {packets} packets, report says flow_packets {}",
            r.flow_packets
        ));
    }
    if rep.records.len() as u64 != r.flow_records {
        out.push(format!(
            "sink got {} records, report says flow_records {}",
            rep.records.len(),
            r.flow_records
        ));
    }
    if r.sinks
        .iter()
        .any(|s| s.records_dropped != 0 || s.error.is_some())
    {
        out.push(format!("sink trouble {:?}", r.sinks));
    }
    out
}

#[test]
fn every_capture_is_accounted_for() {
    let listed = common::manifest();
    let mut failures = Vec::new();

    let on_disk: BTreeSet<String> = std::fs::read_dir(pcaps_dir())
        .expect("listing the capture directory")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "MANIFEST.tsv")
        .collect();
    for name in on_disk.difference(&listed.iter().cloned().collect()) {
        failures.push(format!("{name}: in the directory but not in MANIFEST.tsv"));
    }

    for name in listed.iter().filter(|n| !CORRUPT.contains(&n.as_str())) {
        let path = pcaps_dir().join(name);
        if !path.is_file() {
            failures.push(format!("{name}: listed in MANIFEST.tsv but missing"));
            continue;
        }
        let expected = tshark_frame_count(&path);
        for mode in [TunnelMode::Inner, TunnelMode::Outer] {
            match replay(&path, mode) {
                Err(e) => failures.push(format!("{name} ({mode:?}): pipeline failed: {e}")),
                Ok(rep) => failures.extend(
                    accounting_problems(&rep, expected)
                        .into_iter()
                        .map(|p| format!("{name} ({mode:?}): {p}")),
                ),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Reading a file on the flow thread itself (what a process on a single CPU does) gives the
/// same records, in the same order, the same counter snapshots (every second of packet time)
/// and the same counts as reading it on a thread of its own.
#[test]
fn reading_inline_or_on_a_thread_gives_the_same_flows() {
    let mut failures = Vec::new();
    let mut compared = 0;
    for name in common::manifest() {
        if CORRUPT.contains(&name.as_str()) {
            continue;
        }
        let path = pcaps_dir().join(&name);
        let run = |inline| {
            common::replay_reading(&path, TunnelMode::Inner, Some(inline))
                .unwrap_or_else(|e| panic!("{name}: pipeline failed: {e}"))
        };
        let (threaded, inline) = (run(false), run(true));
        let counts = |r: &Replay| {
            let mut v = serde_json::to_value(&r.report).unwrap();
            v.as_object_mut().unwrap().remove("sinks");
            v
        };
        if threaded.records != inline.records {
            failures.push(format!(
                "{name}: {} records threaded, {} inline, or they differ",
                threaded.records.len(),
                inline.records.len()
            ));
        }
        if threaded.snapshots != inline.snapshots {
            failures.push(format!(
                "{name}: counter snapshots (time, frames) differ:\n  threaded {:?}\n  inline   {:?}",
                threaded.snapshots, inline.snapshots
            ));
        }
        if counts(&threaded) != counts(&inline) {
            failures.push(format!(
                "{name}: counts differ:\n  threaded {}\n  inline   {}",
                counts(&threaded),
                counts(&inline)
            ));
        }
        compared += 1;
    }
    assert!(compared > 50, "only {compared} captures compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn corrupt_files_are_rejected() {
    for name in CORRUPT {
        let msg = match replay(&pcap(name), TunnelMode::Inner) {
            Ok(rep) => panic!(
                "{name}: accepted a corrupt file: {}",
                rep.report.summary_line()
            ),
            Err(e) => e.to_string(),
        };
        assert!(
            !msg.trim_end().contains('\n'),
            "{name}: error spans lines: {msg:?}"
        );
        assert!(
            msg.contains(name),
            "{name}: error does not name the file: {msg:?}"
        );
    }
}

/// An address pair without direction.
type Pair = (IpAddr, IpAddr);

fn pair(a: IpAddr, b: IpAddr) -> Pair {
    (a.min(b), a.max(b))
}

/// Per address pair: frames and frame bytes.
type Totals = BTreeMap<Pair, (u64, u64)>;

fn mirrorflow_totals(records: &[FlowRecord]) -> Totals {
    let mut t = Totals::new();
    for r in records {
        let e = t.entry(pair(r.key.src_ip(), r.key.dst_ip())).or_default();
        e.0 += r.stats.packets;
        e.1 += r.stats.l2_bytes;
    }
    t
}

/// tshark renders sizes like Wireshark's `format_size` (SI prefixes, integer division):
/// exact `N bytes` below 10 000, then `N kB`, `N MB`, ...
fn wireshark_size(n: u64) -> String {
    let mut v = n;
    for prefix in ["", "k", "M", "G"] {
        if v / 1000 < 10 {
            return if prefix.is_empty() {
                format!("{v} bytes")
            } else {
                format!("{v} {prefix}B")
            };
        }
        v /= 1000;
    }
    format!("{v} TB")
}

/// Rows of `tshark -q -z conv,ip -z conv,ipv6`: pair → (total frames, total bytes as printed).
///
/// A row is `A <-> B  f bytes unit  f bytes unit  f bytes unit  start duration` (B→A, A→B,
/// total); it is found by its `<->` token, so headers and rulers are skipped.
fn tshark_conversations(file: &Path) -> BTreeMap<Pair, (u64, String)> {
    let text = tshark(file, &["-n", "-q", "-z", "conv,ip", "-z", "conv,ipv6"]);
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        let tok: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = tok.iter().position(|t| *t == "<->") else {
            continue;
        };
        let bad = || -> ! { panic!("unexpected tshark conversation row: {line:?}") };
        if at != 1 || tok.len() < 3 + 9 {
            bad();
        }
        let addr = |s: &str| s.parse::<IpAddr>().unwrap_or_else(|_| bad());
        let frames: u64 = tok[9].parse().unwrap_or_else(|_| bad());
        let bytes = format!("{} {}", tok[10], tok[11]);
        let prev = rows.insert(pair(addr(tok[0]), addr(tok[2])), (frames, bytes));
        assert!(prev.is_none(), "pair listed twice by tshark: {line:?}");
    }
    rows
}

/// Exact frame bytes per pair (conversation tables round large sizes), keyed on the first
/// (outermost) IP header of each frame, as tshark dissects it.
fn tshark_exact_bytes(file: &Path) -> BTreeMap<Pair, u64> {
    let mut args = vec!["-n", "-T", "fields", "-E", "occurrence=f"];
    for field in ["ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "frame.len"] {
        args.extend(["-e", field]);
    }
    let mut out = BTreeMap::new();
    for line in tshark(file, &args).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 5, "unexpected tshark fields row: {line:?}");
        let (src, dst) = if f[0].is_empty() {
            (f[2], f[3])
        } else {
            (f[0], f[1])
        };
        if src.is_empty() {
            continue;
        }
        let parse = |s: &str| s.parse::<IpAddr>().expect(line);
        *out.entry(pair(parse(src), parse(dst))).or_default() += f[4].parse::<u64>().expect(line);
    }
    out
}

/// Captures without tunnels, truncation or quoted inner headers, where every IP header tshark
/// counts is one mirrorflow counts. (Tunnel captures are left out: tshark counts the outer and
/// the inner conversation for each frame, mirrorflow one flow.)
const PLAIN: [&str; 7] = [
    "zeek__wikipedia.pcap",
    "pcpp__one_http_stream_fin.pcap",
    "pktvisor__dns_ipv4_udp.pcap",
    "pktvisor__dns_ipv6_udp.pcap",
    "pcpp__four_ipv6_http_streams.pcap",
    "zeek__communityid_icmp.pcap",
    "pcpp__ip4_fragments.pcap",
];

#[test]
fn ip_totals_match_tshark() {
    let mut failures = Vec::new();
    for name in PLAIN {
        let ours = mirrorflow_totals(&replay_ok(name, TunnelMode::Inner).records);
        let convs = tshark_conversations(&pcap(name));
        let exact = tshark_exact_bytes(&pcap(name));
        assert!(
            !convs.is_empty(),
            "{name}: tshark lists no IP conversations"
        );

        let pairs: BTreeSet<&Pair> = ours.keys().chain(convs.keys()).collect();
        for p in pairs {
            let (packets, l2_bytes) = ours.get(p).copied().unwrap_or_default();
            let (frames, bytes) = convs.get(p).cloned().unwrap_or((0, "0 bytes".into()));
            let exact = exact.get(p).copied().unwrap_or_default();
            if packets != frames {
                failures.push(format!(
                    "{name} {} <-> {}: {packets} packets, tshark {frames} frames",
                    p.0, p.1
                ));
            }
            if wireshark_size(l2_bytes) != bytes || l2_bytes != exact {
                failures.push(format!(
                    "{name} {} <-> {}: {l2_bytes} l2 bytes, tshark {bytes} ({exact} exact)",
                    p.0, p.1
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Captures covering link types, tags, tunnels, fragments and pcapng features.
const GOLDEN: [&str; 9] = [
    "zeek__vlan-qinqinq.pcap",
    "tcpdump__vxlan.pcap",
    "zeek__erspanII.pcap",
    "tcpdump__geneve-gcp.pcap",
    "pcpp__ip4_fragments.pcap",
    "zeek__gre-sample.pcap",
    "pcpp__pcapng-example.pcapng",
    "zeek__linux_dlt_sll2.pcap",
    "pcpp__MplsPackets.pcap",
];

fn golden_path(capture: &str) -> PathBuf {
    let stem = Path::new(capture).file_stem().unwrap().to_string_lossy();
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{stem}.jsonl"))
}

fn json_lines(records: &[FlowRecord]) -> String {
    records
        .iter()
        .map(|r| serde_json::to_string(&JsonFlow::from(r)).unwrap() + "\n")
        .collect()
}

/// Where two texts first differ, for the failure message.
fn first_difference(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let i = w.iter().zip(&g).take_while(|(a, b)| a == b).count();
    format!(
        "{} lines expected, {} produced; first difference at line {}:\n  want {}\n  got  {}",
        w.len(),
        g.len(),
        i + 1,
        w.get(i).unwrap_or(&"<end>"),
        g.get(i).unwrap_or(&"<end>")
    )
}

#[test]
fn golden_json() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for name in GOLDEN {
        let got = json_lines(&replay_ok(name, TunnelMode::Inner).records);
        let path = golden_path(name);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Err(e) => failures.push(format!("{}: {e}", path.display())),
            Ok(want) if want != got => failures.push(format!(
                "{name} differs from {}: {}",
                path.display(),
                first_difference(&want, &got)
            )),
            Ok(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(rerun with UPDATE_GOLDEN=1 to accept the new output)",
        failures.join("\n")
    );
}

#[test]
fn replay_is_deterministic() {
    for name in [
        "pcpp__many-protocols.pcap",
        "pktvisor__dns_udp_tcp_random.pcap",
    ] {
        let first = replay_ok(name, TunnelMode::Inner).records;
        let second = replay_ok(name, TunnelMode::Inner).records;
        assert!(!first.is_empty(), "{name}: no records");
        assert!(
            first == second,
            "{name}: two replays differ ({} vs {} records)",
            first.len(),
            second.len()
        );
    }
}
