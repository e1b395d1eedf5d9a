//! Live capture as an sFlow agent: mirrorflow captures UDP traffic on lo and sends every
//! frame (1-in-1) as a flow sample to a collector socket on 127.0.0.1; the samples name
//! lo's ifindex as data source and input, counters go out every second (wall time) and
//! once more at shutdown (SIGINT), named `lo` and up, with the frames and octets seen.
//!
//! Runs as root (captures on lo).

#[path = "../exporters/sflow/tests/common/mod.rs"]
mod sflow_parser_common;
mod sflow_support;

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mirrorflow_sflow::{CounterRecord, DataSource, FlowRecord, Interface, Sample};
use sflow_parser_common::decode_with_sflow_parser;
use sflow_support::{udp_listener, wait_for};

const FRAMES: usize = 200;

#[test]
fn live_samples_and_counters_on_lo() {
    let lo: u32 = std::fs::read_to_string("/sys/class/net/lo/ifindex")
        .expect("/sys/class/net/lo")
        .trim()
        .parse()
        .unwrap();
    let (collector, sflow_port) = udp_listener();
    collector
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let (_target, traffic_port) = udp_listener();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mirrorflow"))
        .args(["-i", "lo", "-f", &format!("udp dst port {traffic_port}")])
        .args(["--sflow", &format!("127.0.0.1:{sflow_port}")])
        .args(["--sflow-sampling", "1", "--sflow-polling", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting mirrorflow");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let started = wait_for(Duration::from_secs(20), || {
        log.extend(rx.try_iter());
        log.iter().any(|l| l.contains("capturing on lo"))
    });
    if !started {
        let _ = child.kill();
        panic!("mirrorflow did not start capturing on lo: {log:?}");
    }

    let mut datagrams = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let mut recv = |datagrams: &mut Vec<_>| {
        while let Ok(n) = collector.recv(&mut buf) {
            datagrams.push(decode_with_sflow_parser(&buf[..n]));
        }
    };
    let flow_samples = |datagrams: &Vec<mirrorflow_sflow::DatagramRepr>| {
        datagrams
            .iter()
            .flat_map(|d| &d.samples)
            .filter(|s| matches!(s, Sample::Flow(_)))
            .count()
    };
    // The capture may start a moment after the message: send until samples arrive.
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut sent = 0;
    let sampled = wait_for(Duration::from_secs(30), || {
        if sent < FRAMES {
            for _ in 0..20 {
                sender
                    .send_to(&[0x5a; 100], ("127.0.0.1", traffic_port))
                    .unwrap();
                sent += 1;
            }
        }
        recv(&mut datagrams);
        sent >= FRAMES && flow_samples(&datagrams) >= FRAMES / 2
    });
    // At least one periodic counter poll (every second of wall time) before stopping.
    let polled = wait_for(Duration::from_secs(10), || {
        recv(&mut datagrams);
        datagrams
            .iter()
            .flat_map(|d| &d.samples)
            .any(|s| matches!(s, Sample::Counter(_)))
    });
    let polls_before_stop = datagrams
        .iter()
        .flat_map(|d| &d.samples)
        .filter(|s| matches!(s, Sample::Counter(_)))
        .count();
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    // No more traffic: mirrorflow must stop on SIGINT although the wire is idle.
    let mut status = None;
    let exited = wait_for(Duration::from_secs(20), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    recv(&mut datagrams);
    log.extend(rx.try_iter());
    assert!(exited && status.unwrap().success(), "mirrorflow: {log:?}");
    assert!(
        sampled,
        "{} flow samples: {log:?}",
        flow_samples(&datagrams)
    );
    assert!(polled, "no periodic counters");

    // Flow samples: data source and input are lo's ifindex; every frame is the UDP
    // datagram we sent (42 bytes of headers + 100 of payload), cut to 128 bytes.
    let mut seqs = Vec::new();
    for d in &datagrams {
        assert_eq!(d.agent.to_string(), "127.0.0.1");
        for s in &d.samples {
            let Sample::Flow(f) = s else { continue };
            assert_eq!(f.source_id, DataSource::if_index(lo));
            assert_eq!(
                (f.input, f.output),
                (Interface::Single(lo), Interface::Single(0))
            );
            assert_eq!(f.sampling_rate, 1);
            let Some(FlowRecord::SampledHeader(h)) = f.records.first() else {
                panic!("{f:?}")
            };
            assert_eq!((h.protocol, h.frame_length, h.stripped), (1, 146, 4));
            assert_eq!(h.header.len(), 128);
            seqs.push(f.sequence_number);
        }
    }
    let n = seqs.len() as u32;
    assert!(seqs.iter().copied().eq(1..=n), "sequence numbers 1..={n}");

    // Counters: periodic ones, then the final one after SIGINT with every frame counted.
    let counters: Vec<_> = datagrams
        .iter()
        .flat_map(|d| &d.samples)
        .filter_map(|s| match s {
            Sample::Counter(c) => Some(c),
            _ => None,
        })
        .collect();
    assert!(counters.len() > polls_before_stop, "no final counters");
    let last = counters.last().unwrap();
    assert_eq!(last.source_id, DataSource::if_index(lo));
    assert_eq!(last.sequence_number as usize, counters.len());
    let CounterRecord::GenericInterface(g) = &last.records[0] else {
        panic!("{last:?}")
    };
    assert_eq!((g.if_index, g.if_type, g.if_status), (lo, 6, 3));
    assert_eq!(g.if_in_ucast_pkts, n, "every sampled frame counted");
    assert_eq!(g.if_in_octets, u64::from(n) * 142);
    assert_eq!(
        last.records[2],
        CounterRecord::PortName(mirrorflow_sflow::PortName { name: "lo".into() })
    );
    // Live uptime is wall time since the start (well under a minute here).
    let up = datagrams.last().unwrap().uptime_ms;
    assert!((1..60_000).contains(&up), "uptime {up} ms");
}
