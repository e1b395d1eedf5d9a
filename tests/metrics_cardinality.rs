//! Cardinality: a replay of 1 000 000 distinct flows between 50 000 distinct hosts, seen on
//! 40 capture interfaces, keeps `/metrics` under the documented series bound: hosts only
//! appear in the K top-talker series, interfaces beyond the cap share `in_if="other"`.
//!
//! The trace is written here (pcapng, one UDP packet per flow, 120 s of packet time):
//! `benches/gen_trace.rs` gives every flow its own source address (1 M hosts), which is a
//! harsher but different case; this one has exactly the 50 k hosts of the issue.

mod metrics_support;

use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;

use metrics_support::*;

const FLOWS: u32 = 1_000_000;
const HOSTS: u32 = 50_000;
const INTERFACES: u32 = 40;
const SPAN_US: u64 = 120_000_000;

/// Host `h`: the first half in 10.0.0.0/8 (internal), the rest in 198.18.0.0/15.
fn host(h: u32) -> Ipv4Addr {
    if h < HOSTS / 2 {
        Ipv4Addr::from(0x0a00_0000 + h)
    } else {
        Ipv4Addr::from(0xc612_0000 + h)
    }
}

fn block(out: &mut impl Write, kind: u32, body: &[u8]) -> std::io::Result<()> {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    out.write_all(&kind.to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&[0u8; 3][..pad])?;
    out.write_all(&len.to_le_bytes())
}

/// Flow `i`: host `i % HOSTS` to another host, source port by `i / HOSTS`, on interface
/// `i % INTERFACES`: every (addresses, ports, interface) key is distinct.
fn write_trace(path: &std::path::Path) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb)?;
    for _ in 0..INTERFACES {
        let mut idb = Vec::new();
        idb.extend_from_slice(&1u16.to_le_bytes()); // Ethernet
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&65535u32.to_le_bytes());
        block(&mut out, 1, &idb)?;
    }
    let mut epb = Vec::with_capacity(96);
    for i in 0..FLOWS {
        let src = host(i % HOSTS);
        let dst = host((i % HOSTS + 1 + i / HOSTS * 7) % HOSTS);
        let sport = 1024 + (i / HOSTS) as u16;
        let ts = 1_700_000_000_000_000u64 + u64::from(i) * SPAN_US / u64::from(FLOWS);
        let mut frame = Vec::with_capacity(60);
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
        frame.extend_from_slice(&[0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0]);
        frame.extend_from_slice(&src.octets());
        frame.extend_from_slice(&dst.octets());
        frame.extend_from_slice(&sport.to_be_bytes());
        frame.extend_from_slice(&53u16.to_be_bytes());
        frame.extend_from_slice(&26u16.to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.resize(60, 0);
        epb.clear();
        epb.extend_from_slice(&(i % INTERFACES).to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&frame);
        block(&mut out, 6, &epb)?;
    }
    out.flush()
}

#[test]
fn a_million_flows_stay_under_the_series_bound() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("flows.pcapng");
    write_trace(&trace).unwrap();
    let p = Probe::start(&[
        "-r".as_ref(),
        trace.as_os_str(),
        "--idle-timeout".as_ref(),
        "5".as_ref(),
    ]);
    let text = p.scrape_when_finished();
    let samples = parse(&text);
    assert_eq!(
        sum(&samples, "mirrorflow_flows_created_total", &[]) as u32,
        FLOWS
    );
    assert_eq!(
        sum(&samples, "mirrorflow_traffic_packets_total", &[]) as u32,
        FLOWS
    );
    let hosts: BTreeSet<&str> = samples
        .iter()
        .filter(|s| s.name == "mirrorflow_top_talker_bytes")
        .flat_map(|s| [s.labels["src"].as_str(), s.labels["dst"].as_str()])
        .collect();
    assert!(!hosts.is_empty() && hosts.len() <= 40, "{hosts:?}");
    let talkers = samples
        .iter()
        .filter(|s| s.name == "mirrorflow_top_talker_bytes")
        .count();
    assert_eq!(talkers, mirrorflow::metrics::DEFAULT_TOP_TALKERS);
    let ifs: BTreeSet<&str> = samples
        .iter()
        .filter(|s| s.name == "mirrorflow_traffic_bytes_total")
        .map(|s| s.labels["in_if"].as_str())
        .collect();
    assert_eq!(
        ifs.len(),
        mirrorflow::metrics::DEFAULT_MAX_INTERFACES + 1,
        "{ifs:?}"
    );
    assert!(ifs.contains("other"));
    // The documented bound with the defaults, one sink (metrics) and one input.
    let bound = mirrorflow::metrics::series_bound(
        mirrorflow::metrics::DEFAULT_MAX_INTERFACES,
        mirrorflow::metrics::DEFAULT_MAX_PORTS,
        mirrorflow::metrics::DEFAULT_TOP_TALKERS,
        1,
        1,
    );
    assert!(
        samples.len() <= bound,
        "{} series, bound {bound}",
        samples.len()
    );
    println!(
        "{} series for {FLOWS} flows and {HOSTS} hosts (bound {bound})",
        samples.len()
    );
}
