//! Template loss: a collector started after mirrorflow, so it missed the first templates,
//! decodes data from the next template refresh on (RFC 7011 §8.4, RFC 3954 §9), which
//! comes within one refresh interval (seconds for IPFIX here, datagrams for v9).
//!
//! mirrorflow exports to a UDP socket of the test, which plays the network in front of a
//! collector that is not running yet: it drops the first datagrams (the initial template
//! block among them), then starts a real nfcapd and from the first datagram without
//! templates on forwards everything to it, in order. The test decodes every datagram
//! itself (it saw them all), so it knows which flow records came after the first template
//! refresh that nfcapd received: nfdump must hold exactly those, and none of the records
//! sent before that refresh (nfcapd had no template for them).

mod netflow_support;

use std::net::UdpSocket;
use std::process::Stdio;
use std::time::Duration;

use mirrorflow_ipfix::Decoder;
use netflow_support::*;

/// What the test saw of one datagram.
struct Seen {
    templates: bool,
    export_time: u32,
    /// (key, packets, bytes) of each flow record.
    flows: Vec<(Key, u64, u64)>,
}

fn flows(m: &mirrorflow_ipfix::Message) -> Vec<(Key, u64, u64)> {
    m.flow_records()
        .into_iter()
        .map(|r| {
            let r = r.expect("flow record");
            let icmp = matches!(r.protocol, 1 | 58);
            let dst_port = if icmp { r.icmp_type_code } else { r.dst_port };
            let key = (r.src_addr, r.dst_addr, r.src_port, dst_port, r.protocol);
            (key, r.packets, r.octets)
        })
        .collect()
}

/// Runs mirrorflow with `args` towards the relay; returns what was seen, the index of the
/// first datagram forwarded to nfcapd, and nfdump's flows.
fn late_collector(args: &[&str]) -> (Vec<Seen>, usize, Vec<(Key, u64, u64)>) {
    require("nfcapd", &["-V"], "nfdump");
    let relay = UdpSocket::bind("127.0.0.1:0").unwrap();
    relay
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = relay.local_addr().unwrap().port();
    let mut mf = Guard(
        mirrorflow()
            .arg("-r")
            .arg(DNS_PCAP)
            .args(args)
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting mirrorflow"),
    );
    let mut dec = Decoder::new();
    let mut seen = Vec::new();
    let mut nfcapd: Option<Nfcapd> = None;
    let mut first_forwarded = None;
    let mut buf = [0u8; 65536];
    let mut exited = None;
    loop {
        let n = match relay.recv(&mut buf) {
            Ok(n) => n,
            // Quiet for 200 ms after mirrorflow exited: everything has arrived.
            Err(_) if exited.is_some() => break,
            Err(_) => {
                exited = mf.0.try_wait().unwrap();
                continue;
            }
        };
        let d = &buf[..n];
        let m = dec.decode(d).expect("decoding an export datagram");
        let templates = m.templates().next().is_some();
        if nfcapd.is_none() && !templates && !seen.is_empty() {
            // The first templates are gone: start the collector now (mirrorflow keeps
            // sending; the relay socket holds what comes meanwhile).
            nfcapd = Some(Nfcapd::start());
            first_forwarded = Some(seen.len());
        }
        if let Some(c) = &nfcapd {
            relay.send_to(d, ("127.0.0.1", c.port)).unwrap();
        }
        seen.push(Seen {
            templates,
            export_time: m.export_time,
            flows: flows(&m),
        });
    }
    let status = mf
        .wait_exit(Duration::from_secs(30))
        .expect("mirrorflow exit");
    assert!(status.success(), "mirrorflow: {status}");
    let nfcapd = nfcapd.expect("mirrorflow sent no datagram without templates");
    let (_keep, dir) = nfcapd.stop();
    let mut theirs: Vec<(Key, u64, u64)> = nfdump_flows(&dir)
        .into_iter()
        .flat_map(|(k, v)| v.into_iter().map(move |f| (k, f.packets, f.bytes)))
        .collect();
    theirs.sort();
    (seen, first_forwarded.unwrap(), theirs)
}

/// The first datagram from `first` on that carries templates, the records nfcapd could
/// not decode (from `first` up to it) and those it could (from it on).
fn split(seen: &[Seen], first: usize) -> (usize, usize, Vec<(Key, u64, u64)>) {
    let refresh = (first..seen.len())
        .find(|&i| seen[i].templates)
        .expect("no template refresh reached the late collector");
    let lost = seen[first..refresh].iter().map(|s| s.flows.len()).sum();
    let mut decodable: Vec<_> = seen[refresh..]
        .iter()
        .flat_map(|s| s.flows.iter().cloned())
        .collect();
    decodable.sort();
    eprintln!(
        "{} datagrams; collector from #{first}, refresh at #{refresh}: {lost} records \
         lost, {} decodable",
        seen.len(),
        decodable.len()
    );
    (refresh, lost, decodable)
}

/// IPFIX with a 1 s time refresh (no count refresh), paced at 40 datagrams/s so the
/// replay lasts about 2 s: the refresh comes within a second of the collector's start.
#[test]
fn ipfix_late_collector_decodes_after_one_refresh_interval() {
    let (seen, first, theirs) = late_collector(&[
        "--template-refresh",
        "1",
        "--template-refresh-packets",
        "0",
        "--export-rate",
        "40",
        "--ipfix",
    ]);
    let (refresh, lost, decodable) = split(&seen, first);
    assert!(
        lost > 0,
        "the collector missed no data: nothing to recover from"
    );
    // Export times are whole seconds; a refresh is due once 1 s has passed since the last
    // one, which was at or before the first forwarded datagram.
    let gap = seen[refresh].export_time - seen[first].export_time;
    assert!(gap <= 1, "refresh {gap} s after the collector started");
    assert_eq!(
        theirs, decodable,
        "nfdump vs the records sent from the first refresh on ({lost} lost before it)"
    );
}

/// NetFlow v9 with a refresh every 20 datagrams (no time refresh).
#[test]
fn netflow_v9_late_collector_decodes_after_one_refresh_interval() {
    let (seen, first, theirs) = late_collector(&[
        "--template-refresh",
        "0",
        "--template-refresh-packets",
        "20",
        "--export-rate",
        "200",
        "--netflow-v9",
    ]);
    let (refresh, lost, decodable) = split(&seen, first);
    assert!(lost > 0, "the collector missed no data");
    assert!(
        refresh - first < 20,
        "refresh {} datagrams after the collector started",
        refresh - first
    );
    assert_eq!(
        theirs, decodable,
        "nfdump vs the records sent from the refresh on"
    );
}
