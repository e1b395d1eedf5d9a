//! What the metrics sink keeps between scrapes: the latest counter snapshot and the
//! aggregates it builds from flow records. Updated per batch by the sink thread; read at
//! scrape time by [`super::collector`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::histogram::{Distribution, LatencyHistogram};
use super::talkers::{Conversation, TopTalkers};
use super::traffic::{LabelSlots, Traffic};
use super::MetricsConfig;
use crate::export::{CounterSnapshot, SinkStats};
use crate::flow::FlowRecord;
use crate::pipeline::Report;
use crate::ports::PortReader;
use crate::sample::{PortCounters, PortTable, OTHER_PORT};

/// Where the frames come from, for the `interface` label of the capture metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A capture file: one pseudo-interface named `file`.
    File,
    /// Live interfaces: labels come from their libpcap statistics.
    Live,
}

/// Port counters summed per `port` label value.
#[derive(Clone, Debug, Default)]
pub struct PortRow {
    pub label: String,
    /// The port's VM id from the port map; empty when unknown (and for `other`).
    pub vm: String,
    pub counters: PortCounters,
}

/// The metrics sink's state.
pub struct State {
    pub input: Input,
    pub max_flows: u64,
    pub finished: bool,
    /// Latest snapshot: flow clock, probe counters, port counters.
    pub time_ns: u64,
    pub report: Report,
    pub ports: PortTable,
    pub fragments_held: u64,
    /// Flow-record aggregates.
    pub traffic: Traffic,
    pub talkers: TopTalkers,
    pub duration: Distribution,
    pub bytes: Distribution,
    pub packets: Distribution,
    pub latency: LatencyHistogram,
    /// Port label slots (first come, capped).
    port_slots: LabelSlots<u32>,
    /// `port` and `vm` label values per slot.
    port_labels: Vec<(String, String)>,
    names: BTreeMap<u32, String>,
    /// Port names and VM ids (`[[ports]]`, `--ovsdb`), when a port map is configured.
    port_map: Option<PortReader>,
    /// Live counts of the sinks.
    pub sinks: Vec<Arc<SinkStats>>,
    /// What the sFlow listener has seen (`--sflow-listen`), read at scrape time.
    pub sflow_in: Option<Arc<Mutex<crate::sflow_in::SflowInStats>>>,
}

impl State {
    pub fn new(cfg: &MetricsConfig, input: Input, max_flows: u64) -> State {
        State {
            max_flows,
            finished: false,
            time_ns: 0,
            report: Report::default(),
            ports: PortTable::default(),
            fragments_held: 0,
            traffic: Traffic::new(
                cfg.max_interfaces,
                cfg.internal_nets.clone(),
                cfg.names.clone(),
            ),
            talkers: TopTalkers::new(cfg.top_talkers, cfg.top_talkers_window_ns),
            duration: Distribution::duration(),
            bytes: Distribution::count(),
            packets: Distribution::count(),
            latency: LatencyHistogram::default(),
            port_slots: LabelSlots::new(cfg.max_ports),
            port_labels: Vec::new(),
            names: {
                // A file is source 1 in the port counters.
                let mut n = cfg.names.clone();
                if input == Input::File {
                    n.entry(1).or_insert_with(|| "file".to_string());
                }
                n
            },
            input,
            sinks: Vec::new(),
            port_map: None,
            sflow_in: None,
        }
    }

    /// Labels ports with the names and VM ids of `ports` (the port map) where it knows them.
    pub fn with_ports(mut self, ports: Option<PortReader>) -> State {
        self.port_map = ports;
        self
    }

    /// The sFlow-in families (none without `--sflow-listen`).
    pub fn sflow_in_families(&mut self) -> Vec<prometheus::proto::MetricFamily> {
        let Some(stats) = &self.sflow_in else {
            return Vec::new();
        };
        let stats = stats.lock().unwrap_or_else(|e| e.into_inner());
        let map = self.port_map.as_mut().map(|r| r.map());
        super::sflow_in::families(&stats, map)
    }

    /// A batch of exported flow records.
    pub fn flows(&mut self, records: &[FlowRecord]) {
        let Some(first) = records.first() else {
            return;
        };
        // Top talkers count at the flow clock (before the first snapshot: the first record).
        let now = if self.time_ns != 0 {
            self.time_ns
        } else {
            first.stats.end_ns
        };
        let mut talkers = self.talkers.sketch(now);
        for r in records {
            let (k, s) = (&r.key, &r.stats);
            self.traffic.add(r);
            self.duration
                .record(s.end_ns.saturating_sub(s.start_ns) / 1_000);
            self.bytes.record(s.bytes);
            self.packets.record(s.packets);
            if let Some(t) = talkers.as_mut() {
                let c = Conversation {
                    src: k.src_addr,
                    dst: k.dst_addr,
                    v6: k.ip_version() == 6,
                };
                t.add(c, s.bytes);
            }
        }
    }

    /// A counter snapshot.
    pub fn counters(&mut self, snap: &CounterSnapshot) {
        self.time_ns = snap.time_ns;
        self.report = snap.report.clone();
        self.fragments_held = snap.fragments_held;
        self.latency.0.merge(&snap.batch_latency.0);
        self.finished |= snap.last;
        self.ports = snap.ports.clone();
        for &port in self.ports.ports.keys() {
            if port != OTHER_PORT {
                self.port_slots.slot(port);
            }
        }
        self.relabel_ports();
    }

    /// The `port` and `vm` labels of every slot: the port map's name and VM id when it knows
    /// the port, else the interface name or the index. A name taken by an earlier slot (or
    /// `other`) gets `@INDEX` appended, so no two slots share a label set. Relabelled at
    /// every snapshot: a port first seen before the map knew it takes its name then.
    fn relabel_ports(&mut self) {
        let map = self.port_map.as_mut().map(|r| r.map());
        let mut used = std::collections::HashSet::new();
        used.insert(super::traffic::OTHER.to_string());
        self.port_labels.clear();
        let mut slot = 0;
        while let Some(port) = self.port_slots.value(slot) {
            let known = map.and_then(|m| m.port(port));
            let name = match (known, self.names.get(&port)) {
                (Some(p), _) => p.name.clone(),
                (None, Some(n)) => n.clone(),
                (None, None) => port.to_string(),
            };
            let name = if used.contains(&name) {
                format!("{name}@{port}")
            } else {
                name
            };
            used.insert(name.clone());
            let vm = known.and_then(|p| p.vm.clone()).unwrap_or_default();
            self.port_labels.push((name, vm));
            slot += 1;
        }
    }

    /// Port counters summed per label (the capped ones and `other`), in slot order.
    pub fn port_rows(&self) -> Vec<PortRow> {
        let mut rows: Vec<PortRow> = self
            .port_labels
            .iter()
            .map(|(label, vm)| PortRow {
                label: label.clone(),
                vm: vm.clone(),
                counters: PortCounters::default(),
            })
            .collect();
        let mut other: Option<PortCounters> = None;
        for (&port, c) in &self.ports.ports {
            let target = match self.port_slots.get(&port) {
                Some(i) if port != OTHER_PORT && i < rows.len() => &mut rows[i].counters,
                _ => other.get_or_insert_with(PortCounters::default),
            };
            target.add(c);
        }
        if let Some(c) = other {
            rows.push(PortRow {
                label: super::traffic::OTHER.to_string(),
                vm: String::new(),
                counters: c,
            });
        }
        rows
    }
}
