//! Scrape-time collector: turns the sink's [`State`] into metric families. Nothing here runs
//! per packet or per record; a scrape locks the state once and reads it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;

use super::catalog::{self as c, Family, CATALOG};
use super::histogram::{BYTES_BUCKETS, DURATION_BUCKETS_S, LATENCY_BUCKETS_S, PACKETS_BUCKETS};
use super::state::{Input, State};
use crate::decode::DecodeError;
use crate::flow::EndReason;

/// The registry's view of a [`State`].
pub struct StateCollector {
    state: Arc<Mutex<State>>,
    descs: Vec<Desc>,
}

impl StateCollector {
    pub fn new(state: Arc<Mutex<State>>) -> StateCollector {
        StateCollector {
            state,
            descs: CATALOG.iter().map(|s| s.desc()).collect(),
        }
    }
}

impl Collector for StateCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = collect(&st);
        out.extend(st.sflow_in_families());
        out
    }
}

fn one(spec: c::Spec, v: f64) -> MetricFamily {
    let mut f = Family::new(spec);
    f.add(&[], v);
    f.finish()
}

/// Every family of the catalog that has samples.
pub fn collect(st: &State) -> Vec<MetricFamily> {
    let r = &st.report;
    let mut out = vec![
        {
            let mut f = Family::new(c::BUILD_INFO);
            f.add(&[env!("CARGO_PKG_VERSION")], 1.0);
            f.finish()
        },
        one(c::INPUT_FINISHED, f64::from(u8::from(st.finished))),
        one(c::FLOW_CLOCK, st.time_ns as f64 / 1e9),
        one(c::FRAMES, r.frames as f64),
        one(c::FILTERED, r.filtered as f64),
        one(c::SAMPLED_OUT, r.sampled_out as f64),
        one(c::ACTIVE_FLOWS, r.active_flows as f64),
        one(c::MAX_FLOWS, st.max_flows as f64),
        one(c::FLOWS_CREATED, r.flows_created as f64),
        one(c::EVICTIONS, r.evictions as f64),
        one(c::FRAGMENTS, r.fragments as f64),
        one(c::FRAGMENTS_UNMATCHED, r.fragments_unmatched as f64),
        one(c::FRAGMENT_TABLE_FULL, r.fragment_table_full as f64),
        one(c::FRAGMENT_TABLE, st.fragments_held as f64),
        one(c::CLOCK_OUTLIERS, r.clock_outliers as f64),
    ];

    // Capture: a file is one pseudo-interface with no drops.
    let mut received = Family::new(c::CAPTURE_RECEIVED);
    let mut dropped = Family::new(c::CAPTURE_DROPPED);
    if st.input == Input::File {
        received.add(&["file"], r.frames as f64);
        dropped.add(&["file", "kernel"], 0.0);
        dropped.add(&["file", "interface"], 0.0);
    }
    for i in &r.interfaces {
        received.add(&[&i.name], i.received as f64);
        dropped.add(&[&i.name, "kernel"], i.kernel_drops as f64);
        dropped.add(&[&i.name, "interface"], i.interface_drops as f64);
    }
    out.push(received.finish());
    out.push(dropped.finish());

    let mut f = Family::new(c::DECODE_ERRORS);
    for e in DecodeError::ALL {
        let n = r.decode_errors.get(e.name()).copied().unwrap_or(0);
        f.add(&[e.name()], n as f64);
    }
    out.push(f.finish());
    let mut f = Family::new(c::NON_IP);
    for (et, n) in &r.non_ip {
        f.add(&[et], *n as f64);
    }
    out.push(f.finish());
    let mut f = Family::new(c::FLOW_RECORDS);
    for reason in EndReason::ALL {
        let n = r.records_by_reason.get(reason.name()).copied().unwrap_or(0);
        f.add(&[reason.name()], n as f64);
    }
    out.push(f.finish());

    out.extend(sinks(st));

    let mut bytes = Family::new(c::TRAFFIC_BYTES);
    let mut packets = Family::new(c::TRAFFIC_PACKETS);
    for row in st.traffic.rows() {
        let labels = [row.in_if, row.ip_version, row.protocol, row.direction];
        bytes.add(&labels, row.bytes as f64);
        packets.add(&labels, row.packets as f64);
    }
    out.push(bytes.finish());
    out.push(packets.finish());

    let mut bytes = Family::new(c::PORT_BYTES);
    let mut packets = Family::new(c::PORT_PACKETS);
    for row in st.port_rows() {
        let (l, vm, p) = (row.label.as_str(), row.vm.as_str(), &row.counters);
        bytes.add(&[l, vm, "in"], p.in_octets as f64);
        bytes.add(&[l, vm, "out"], p.out_octets as f64);
        for (dir, cast, n) in [
            ("in", "unicast", p.in_unicast),
            ("in", "multicast", p.in_multicast),
            ("in", "broadcast", p.in_broadcast),
            ("out", "unicast", p.out_unicast),
            ("out", "multicast", p.out_multicast),
            ("out", "broadcast", p.out_broadcast),
        ] {
            packets.add(&[l, vm, dir, cast], n as f64);
        }
    }
    out.push(bytes.finish());
    out.push(packets.finish());

    let mut f = Family::new(c::TOP_TALKER_BYTES);
    for (conv, b) in st.talkers.top(st.time_ns) {
        f.add(
            &[&conv.src_ip().to_string(), &conv.dst_ip().to_string()],
            b as f64,
        );
    }
    out.push(f.finish());

    for (spec, d, bounds) in [
        (c::FLOW_DURATION, &st.duration, DURATION_BUCKETS_S),
        (c::FLOW_BYTES, &st.bytes, BYTES_BUCKETS),
        (c::FLOW_PACKETS, &st.packets, PACKETS_BUCKETS),
        (c::BATCH_LATENCY, &st.latency.0, LATENCY_BUCKETS_S),
    ] {
        let mut f = Family::new(spec);
        f.histogram(&[], d.to_proto(bounds));
        out.push(f.finish());
    }
    out
}

/// Per-sink families: queue and record counts for every sink, exporter counters for those
/// that report them.
fn sinks(st: &State) -> Vec<MetricFamily> {
    let mut records = Family::new(c::SINK_RECORDS);
    let mut dropped = Family::new(c::SINK_DROPPED);
    let mut failed = Family::new(c::SINK_FAILED);
    let mut queue = Family::new(c::SINK_QUEUE);
    let mut capacity = Family::new(c::SINK_QUEUE_CAPACITY);
    let mut export: Vec<Family> = [
        c::EXPORT_MESSAGES,
        c::EXPORT_BYTES,
        c::EXPORT_RECORDS,
        c::EXPORT_SEND_ERRORS,
        c::EXPORT_UNREACHABLE,
        c::EXPORT_CONNECTIONS,
        c::EXPORT_CONNECT_ERRORS,
        c::EXPORT_TEMPLATES,
    ]
    .into_iter()
    .map(Family::new)
    .collect();
    for s in &st.sinks {
        let name = [s.name.as_str()];
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        records.add(&name, load(&s.records_written));
        dropped.add(&name, load(&s.records_dropped));
        failed.add(&name, f64::from(u8::from(s.failed.load(Ordering::Relaxed))));
        queue.add(&name, load(&s.queued));
        capacity.add(&name, s.queue_capacity as f64);
        let counters = *s.export.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = counters {
            for (f, v) in export.iter_mut().zip([
                e.messages,
                e.bytes,
                e.records,
                e.send_errors,
                e.unreachable,
                e.connections,
                e.connect_errors,
                e.templates,
            ]) {
                if let Some(v) = v {
                    f.add(&name, v as f64);
                }
            }
        }
    }
    let mut out = vec![
        records.finish(),
        dropped.finish(),
        failed.finish(),
        queue.finish(),
        capacity.finish(),
    ];
    out.extend(export.into_iter().map(Family::finish));
    out
}
