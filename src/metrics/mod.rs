//! Prometheus metrics: `--metrics-listen ADDR:PORT` serves `/metrics`.
//!
//! Nothing here runs per packet. The source threads count frames, decode errors and ports in
//! thread-local counters and send deltas per batch; the flow thread sums them into the
//! counter snapshots it sends every second of packet time. The [`MetricsSink`] folds
//! snapshots and flow records into a [`State`] once per batch, on the flow thread itself (an
//! inline sink: the records are read while still in that core's cache, which costs about a
//! third of handing them to a thread of their own), and the registry's collector turns that
//! state into metric families at scrape time. A scrape holds the state while it renders, so
//! the flow thread may wait that long (well under a millisecond), with the sources' queue in
//! front of it.
//!
//! Every label set is bounded by configuration (see [`series_bound`]): interface and port
//! labels keep the first N values seen and put the rest in `other`, protocol and direction
//! take fixed values, and top talkers are the K heaviest conversations of a sliding window.

mod catalog;
mod collector;
mod config;
mod histogram;
mod server;
pub mod sflow_in;
mod sink;
mod state;
mod talkers;
mod traffic;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use catalog::{Kind, Spec, CATALOG};
pub use config::{
    MetricsConfig, MetricsFlags, DEFAULT_MAX_INTERFACES, DEFAULT_MAX_PORTS, DEFAULT_TOP_TALKERS,
    TOP_TALKERS_WINDOW_NS,
};
pub use histogram::{
    Distribution, LatencyHistogram, BYTES_BUCKETS, DURATION_BUCKETS_S, LATENCY_BUCKETS_S,
    PACKETS_BUCKETS,
};
pub use server::render;
pub use sink::MetricsSink;
pub use state::{Input, State};
pub use talkers::{Conversation, SpaceSaving, TopTalkers};
pub use traffic::{Net, Nets, Traffic, DEFAULT_INTERNAL_NETS};

use crate::export::Fanout;
use crate::pipeline::{PipelineConfig, SourceSpec};

/// Errors starting the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("--metrics-listen {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("metrics registry: {0}")]
    Registry(#[from] prometheus::Error),
}

/// Series of the process collector (`process_*`, Linux).
pub const PROCESS_SERIES: usize = 10;

/// Most sample lines `/metrics` can hold: `max_interfaces`, `max_ports` and `top_talkers` are
/// the caps, `sinks` the sinks (metrics included), `interfaces` the capture interfaces (a
/// file counts as one).
pub fn series_bound(
    max_interfaces: usize,
    max_ports: usize,
    top_talkers: usize,
    sinks: usize,
    interfaces: usize,
) -> usize {
    // The sFlow-in families have their own bound (`sflow_in::series_bound`).
    let singles = CATALOG
        .iter()
        .filter(|s| !s.name.starts_with("mirrorflow_sflow_"))
        .filter(|s| s.kind != Kind::Histogram && (s.labels.is_empty() || s.name.ends_with("_info")))
        .count();
    let histograms: usize = [
        DURATION_BUCKETS_S,
        BYTES_BUCKETS,
        PACKETS_BUCKETS,
        LATENCY_BUCKETS_S,
    ]
    .iter()
    .map(|b| b.len() + 3) // buckets, +Inf, _sum, _count
    .sum();
    let labelled = 3 * interfaces // capture received, dropped ×2
        + crate::decode::DecodeError::ALL.len()
        + crate::pipeline::MAX_ETHERTYPES + 1
        + crate::flow::EndReason::ALL.len()
        + 13 * sinks // 5 per sink, 8 more per exporter
        + 2 * Traffic::max_rows(max_interfaces)
        + 8 * (max_ports + 1)
        + top_talkers;
    singles + histograms + labelled + PROCESS_SERIES
}

/// A running metrics endpoint.
pub struct Metrics {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

/// Interface names for live capture (ifindex → name), from sysfs; unknown ones are skipped.
fn interface_names(ifaces: &[String]) -> Vec<(u32, String)> {
    ifaces
        .iter()
        .filter_map(|i| {
            let idx = std::fs::read_to_string(format!("/sys/class/net/{i}/ifindex")).ok()?;
            Some((idx.trim().parse().ok()?, i.clone()))
        })
        .collect()
}

impl Metrics {
    /// Binds the endpoint and adds the metrics sink to `sinks`. Call after every other sink
    /// has been added (their live counts are picked up here).
    pub fn start(
        cfg: &MetricsConfig,
        pipeline: &PipelineConfig,
        sinks: &mut Fanout,
    ) -> Result<Metrics, MetricsError> {
        let mut cfg = cfg.clone();
        let input = match &pipeline.source {
            SourceSpec::File(_) => Input::File,
            SourceSpec::Live(ifaces) => {
                for (idx, name) in interface_names(ifaces) {
                    cfg.names.entry(idx).or_insert(name);
                }
                Input::Live
            }
        };
        let state = Arc::new(Mutex::new(
            State::new(&cfg, input, pipeline.cache.max_flows as u64)
                .with_ports(pipeline.ports.as_ref().map(|d| d.reader())),
        ));
        state.lock().unwrap_or_else(|e| e.into_inner()).sflow_in =
            pipeline.sflow_in.as_ref().map(|s| s.stats.clone());
        let registry = prometheus::Registry::new();
        registry.register(Box::new(collector::StateCollector::new(state.clone())))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let addr = server::serve(cfg.listen, registry).map_err(|source| MetricsError::Bind {
            addr: cfg.listen,
            source,
        })?;
        sinks.add_inline(Box::new(MetricsSink::new(state.clone())));
        state.lock().unwrap_or_else(|e| e.into_inner()).sinks = sinks.stats();
        eprintln!("mirrorflow: serving metrics on http://{addr}/metrics");
        Ok(Metrics { addr, state })
    }

    /// The bound address (the port is chosen by the system with `:0`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// After the end of a file: keeps serving until `shutdown` is set (SIGINT, SIGTERM).
    pub fn serve_until(&self, shutdown: &AtomicBool) {
        let finished = self.state.lock().map(|s| s.finished).unwrap_or(true);
        if !shutdown.load(Ordering::Relaxed) {
            eprintln!(
                "mirrorflow: end of input{}; serving http://{}/metrics until SIGINT or SIGTERM",
                if finished { "" } else { " (incomplete)" },
                self.addr
            );
        }
        while !shutdown.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{CounterSnapshot, ExportCounters, SinkStats};
    use crate::flow::{EndReason, FlowKey, FlowRecord, FlowStats};
    use crate::sample::PortCounters;

    #[test]
    fn documented_bound() {
        // README "Metrics": 1 733 series with the defaults, one sink and one input.
        let b = series_bound(
            DEFAULT_MAX_INTERFACES,
            DEFAULT_MAX_PORTS,
            DEFAULT_TOP_TALKERS,
            1,
            1,
        );
        assert_eq!(b, 1733);
        assert_eq!(series_bound(0, 0, 0, 0, 0), 169 + 112 + 8);
    }

    /// Ports the map knows are labelled with its name and VM id; a name clash gets `@INDEX`.
    #[test]
    fn port_labels_come_from_the_port_map() {
        use crate::ports::{Port, PortDirectory, PortMapBuilder};
        let mut b = PortMapBuilder::new(1);
        for (index, name, vm) in [(11, "vm1-eth0", Some("vm1")), (12, "other", None)] {
            b.add_port(Port {
                index,
                name: name.into(),
                vm: vm.map(String::from),
                ofport: None,
            });
        }
        let dir = PortDirectory::fixed(b.build());
        let flags = MetricsFlags {
            listen: Some("127.0.0.1:0".into()),
            ..MetricsFlags::default()
        };
        let cfg = MetricsConfig::resolve(flags).unwrap().unwrap();
        let mut st = State::new(&cfg, Input::File, 1000).with_ports(Some(dir.reader()));
        let mut snap = CounterSnapshot::default();
        for p in [1, 11, 12] {
            let c = PortCounters {
                in_octets: u64::from(p) * 100,
                ..PortCounters::default()
            };
            snap.ports.ports.insert(p, c);
        }
        st.counters(&snap);
        let rows: Vec<_> = st
            .port_rows()
            .into_iter()
            .map(|r| (r.label, r.vm, r.counters.in_octets))
            .collect();
        assert_eq!(
            rows,
            [
                ("file".to_string(), String::new(), 100),
                ("vm1-eth0".to_string(), "vm1".to_string(), 1100),
                ("other@12".to_string(), String::new(), 1200),
            ]
        );
    }

    /// Every label set filled past its cap: the rendered series reach the bound, not more.
    #[test]
    fn a_saturated_state_renders_at_most_the_bound() {
        let flags = MetricsFlags {
            listen: Some("127.0.0.1:0".into()),
            top_talkers: Some(4),
            max_ports: Some(3),
            max_interfaces: Some(2),
            ..MetricsFlags::default()
        };
        let cfg = MetricsConfig::resolve(flags).unwrap().unwrap();
        let mut st = State::new(&cfg, Input::File, 1000);
        let mut recs = Vec::new();
        let addrs: [[u8; 4]; 4] = [[10, 0, 0, 1], [8, 8, 8, 8], [10, 0, 0, 2], [9, 9, 9, 9]];
        for in_if in 0..6u32 {
            for v6 in [false, true] {
                for proto in [6u8, 17, 1, 58, 132, 47, 99] {
                    for (s, d) in [(0, 2), (1, 0), (0, 1), (1, 3)] {
                        let mut key = FlowKey::default();
                        if v6 {
                            // fd00::/8 is internal, 2001:db8::/32 is not.
                            key = FlowKey::from_meta(&crate::decode::PacketMeta {
                                ip_version: 6,
                                ..Default::default()
                            });
                            key.src_addr[0] = if s % 2 == 0 { 0xfd } else { 0x20 };
                            key.dst_addr[0] = if d % 2 == 0 { 0xfd } else { 0x20 };
                            key.src_addr[15] = s as u8;
                            key.dst_addr[15] = d as u8;
                        } else {
                            key.src_addr[..4].copy_from_slice(&addrs[s]);
                            key.dst_addr[..4].copy_from_slice(&addrs[d]);
                        }
                        (key.protocol, key.in_if) = (proto, in_if);
                        recs.push(FlowRecord {
                            key,
                            stats: FlowStats {
                                packets: 1,
                                bytes: 100,
                                ..FlowStats::default()
                            },
                            end_reason: EndReason::Idle,
                            out_if: 0,
                            origin: None,
                        });
                    }
                }
            }
        }
        st.flows(&recs);
        let mut snap = CounterSnapshot {
            time_ns: 1,
            ..CounterSnapshot::default()
        };
        for et in 0..100 {
            snap.report.non_ip.insert(format!("0x{et:04x}"), 1);
        }
        while snap.report.non_ip.len() > crate::pipeline::MAX_ETHERTYPES + 1 {
            snap.report.non_ip.pop_first();
        }
        for p in 1..=10 {
            snap.ports.ports.insert(p, PortCounters::default());
        }
        st.counters(&snap);
        let all = ExportCounters {
            messages: Some(1),
            bytes: Some(1),
            records: Some(1),
            send_errors: Some(1),
            unreachable: Some(1),
            connections: Some(1),
            connect_errors: Some(1),
            templates: Some(1),
        };
        for i in 0..2 {
            let s = SinkStats {
                name: format!("sink{i}"),
                ..SinkStats::default()
            };
            *s.export.lock().unwrap() = Some(all);
            st.sinks.push(Arc::new(s));
        }
        let state = Arc::new(Mutex::new(st));
        let registry = prometheus::Registry::new();
        registry
            .register(Box::new(collector::StateCollector::new(state)))
            .unwrap();
        let text = String::from_utf8(render(&registry).unwrap()).unwrap();
        let lines = text.lines().filter(|l| !l.starts_with('#')).count();
        let bound = series_bound(2, 3, 4, 2, 1);
        // Everything but the process collector (not registered here) is at its cap.
        assert_eq!(lines, bound - PROCESS_SERIES, "{text}");
        assert!(text.contains("in_if=\"other\""));
        assert!(text.contains("port=\"other\""));
    }
}
