//! Every metric mirrorflow exports: name, type, labels and HELP text, in one table
//! ([`CATALOG`]) that the collector, the registry's descriptors and the documentation tests
//! share. Names follow the Prometheus conventions: `mirrorflow_` prefix, base units
//! (seconds, bytes), `_total` on counters.

use prometheus::core::Desc;
use prometheus::proto::{self, MetricType};

/// Metric type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric family.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

macro_rules! specs {
    ($($id:ident: $kind:ident $name:literal [$($l:literal),*] $help:literal;)*) => {
        $(pub const $id: Spec = Spec {
            name: $name,
            kind: Kind::$kind,
            labels: &[$($l),*],
            help: $help,
        };)*
        /// All metric families, in documentation order.
        pub const CATALOG: &[Spec] = &[$($id),*];
    };
}

specs! {
    BUILD_INFO: Gauge "mirrorflow_build_info" ["version"]
        "Always 1; the version label is the mirrorflow version.";
    INPUT_FINISHED: Gauge "mirrorflow_input_finished" []
        "1 once the input has ended (end of file or shutdown) and every flow has been exported.";
    FLOW_CLOCK: Gauge "mirrorflow_flow_clock_seconds" []
        "Flow clock: packet time of the newest packet (Unix epoch seconds).";
    FRAMES: Counter "mirrorflow_frames_total" []
        "Frames read from all sources.";
    CAPTURE_RECEIVED: Counter "mirrorflow_capture_received_total" ["interface"]
        "Packets received by a capture (live: libpcap ps_recv; file: frames read, interface \"file\").";
    CAPTURE_DROPPED: Counter "mirrorflow_capture_dropped_total" ["interface", "reason"]
        "Packets lost before mirrorflow read them: reason kernel (buffer full) or interface.";
    DECODE_ERRORS: Counter "mirrorflow_decode_errors_total" ["reason"]
        "Frames that failed to decode, by reason.";
    NON_IP: Counter "mirrorflow_non_ip_frames_total" ["ethertype"]
        "Frames without IP, by ethertype (64 distinct values, then other).";
    FILTERED: Counter "mirrorflow_filtered_frames_total" []
        "Frames rejected by the BPF filter of a capture file.";
    SAMPLED_OUT: Counter "mirrorflow_sampled_out_frames_total" []
        "Frames left out of the flow cache by 1-in-N flow sampling.";
    ACTIVE_FLOWS: Gauge "mirrorflow_active_flows" []
        "Flows held in the flow table.";
    MAX_FLOWS: Gauge "mirrorflow_flow_table_max_flows" []
        "Capacity of the flow table (--max-flows).";
    FLOWS_CREATED: Counter "mirrorflow_flows_created_total" []
        "Flow table entries created.";
    FLOW_RECORDS: Counter "mirrorflow_flow_records_total" ["end_reason"]
        "Flow records exported, by end reason.";
    EVICTIONS: Counter "mirrorflow_flow_evictions_total" []
        "Flows exported early because the flow table was full (end reason lack_of_resources).";
    FRAGMENTS: Counter "mirrorflow_fragments_total" []
        "IP fragments seen.";
    FRAGMENTS_UNMATCHED: Counter "mirrorflow_fragments_unmatched_total" []
        "Later fragments whose first fragment was not seen (counted with ports 0).";
    FRAGMENT_TABLE_FULL: Counter "mirrorflow_fragment_table_full_total" []
        "First fragments not tracked because the fragment table was full.";
    FRAGMENT_TABLE: Gauge "mirrorflow_fragment_table_datagrams" []
        "Datagrams held in the fragment table.";
    CLOCK_OUTLIERS: Counter "mirrorflow_clock_outliers_total" []
        "Packets stamped far ahead of the flow clock that did not move it.";
    SINK_RECORDS: Counter "mirrorflow_sink_records_total" ["sink"]
        "Records (or samples) a sink has taken.";
    SINK_DROPPED: Counter "mirrorflow_sink_dropped_records_total" ["sink"]
        "Records (or samples) dropped because the sink's queue was full or the sink had failed.";
    SINK_FAILED: Gauge "mirrorflow_sink_failed" ["sink"]
        "1 when the sink has stopped on an error.";
    SINK_QUEUE: Gauge "mirrorflow_sink_queue_length" ["sink"]
        "Event batches waiting in the sink's queue.";
    SINK_QUEUE_CAPACITY: Gauge "mirrorflow_sink_queue_capacity" ["sink"]
        "Capacity of the sink's queue, in event batches.";
    EXPORT_MESSAGES: Counter "mirrorflow_export_messages_total" ["sink"]
        "Messages (datagrams) an exporter produced.";
    EXPORT_BYTES: Counter "mirrorflow_export_bytes_total" ["sink"]
        "Bytes an exporter sent.";
    EXPORT_RECORDS: Counter "mirrorflow_export_records_total" ["sink"]
        "Records an exporter encoded.";
    EXPORT_SEND_ERRORS: Counter "mirrorflow_export_send_errors_total" ["sink"]
        "Messages an exporter could not send.";
    EXPORT_UNREACHABLE: Counter "mirrorflow_export_unreachable_total" ["sink"]
        "ICMP port-unreachable reports from a collector (nothing listening).";
    EXPORT_CONNECTIONS: Counter "mirrorflow_export_connections_total" ["sink"]
        "Connections an exporter opened to its collector (stream transports; reconnects are the increase beyond 1).";
    EXPORT_CONNECT_ERRORS: Counter "mirrorflow_export_connect_errors_total" ["sink"]
        "Failed attempts to resolve or connect to a collector (each is retried).";
    EXPORT_TEMPLATES: Counter "mirrorflow_export_templates_total" ["sink"]
        "Template sets an exporter sent.";
    TRAFFIC_BYTES: Counter "mirrorflow_traffic_bytes_total" ["in_if", "ip_version", "protocol", "direction"]
        "IP bytes of exported flow records.";
    TRAFFIC_PACKETS: Counter "mirrorflow_traffic_packets_total" ["in_if", "ip_version", "protocol", "direction"]
        "Packets of exported flow records.";
    PORT_BYTES: Counter "mirrorflow_port_bytes_total" ["port", "vm", "direction"]
        "Frame bytes by switch port (name and VM id from the port map): in = from the port's VM, out = to it.";
    PORT_PACKETS: Counter "mirrorflow_port_packets_total" ["port", "vm", "direction", "cast"]
        "Frames by switch port, direction and destination class (unicast, multicast, broadcast).";
    TOP_TALKER_BYTES: Gauge "mirrorflow_top_talker_bytes" ["src", "dst"]
        "IP bytes of the heaviest conversations over the top-talker window (estimate, never low).";
    FLOW_DURATION: Histogram "mirrorflow_flow_duration_seconds" []
        "Duration of exported flow records (first to last packet).";
    FLOW_BYTES: Histogram "mirrorflow_flow_size_bytes" []
        "IP bytes per exported flow record.";
    FLOW_PACKETS: Histogram "mirrorflow_flow_size_packets" []
        "Packets per exported flow record.";
    BATCH_LATENCY: Histogram "mirrorflow_batch_processing_seconds" []
        "Time the flow thread takes per batch of up to 1024 packets, including waiting for full sink queues.";
    SFLOW_IN_DATAGRAMS: Counter "mirrorflow_sflow_in_datagrams_total" ["agent", "sub_agent"]
        "sFlow datagrams received and decoded, by agent (agent \"other\" beyond the agent cap).";
    SFLOW_IN_DROPPED: Counter "mirrorflow_sflow_in_dropped_datagrams_total" ["reason"]
        "sFlow datagrams refused (truncated, version, address_type, length, trailing, nesting, decode) or dropped because the listener's queue was full (queue_full).";
    SFLOW_IN_LOST_DATAGRAMS: Counter "mirrorflow_sflow_in_lost_datagrams_total" ["agent", "sub_agent"]
        "Datagrams missing from an agent's sequence numbers.";
    SFLOW_IN_OUT_OF_ORDER: Counter "mirrorflow_sflow_in_out_of_order_datagrams_total" ["agent", "sub_agent"]
        "Datagrams that arrived late or twice (sequence number not after the previous one).";
    SFLOW_IN_RESTARTS: Counter "mirrorflow_sflow_in_agent_restarts_total" ["agent", "sub_agent"]
        "Agent restarts: the datagram sequence started over (uptime went back, or a long jump back).";
    SFLOW_IN_SAMPLES: Counter "mirrorflow_sflow_in_samples_total" ["agent", "sub_agent", "kind"]
        "Samples received, by kind (flow, counter, other).";
    SFLOW_IN_LOST_SAMPLES: Counter "mirrorflow_sflow_in_lost_samples_total" ["agent", "sub_agent", "kind"]
        "Samples missing from their data source's sequence numbers, by kind (flow, counter).";
    SFLOW_IN_AGENT_DROPS: Counter "mirrorflow_sflow_in_agent_dropped_packets_total" ["agent", "sub_agent"]
        "Packets the agent reports it could not sample (growth of its flow samples' drops counter).";
    SFLOW_IN_UNUSED: Counter "mirrorflow_sflow_in_unused_samples_total" ["reason"]
        "Flow samples that fed no flow (no_packet, header_protocol, origin_cap) and counter records not kept (port_cap).";
    SFLOW_IN_RELAYED: Counter "mirrorflow_sflow_in_relayed_datagrams_total" ["collector"]
        "sFlow datagrams relayed unchanged to an --sflow collector.";
    SFLOW_IN_RELAY_ERRORS: Counter "mirrorflow_sflow_in_relay_errors_total" ["collector"]
        "sFlow datagrams that could not be relayed to an --sflow collector.";
    SFLOW_PORT_BYTES: Counter "mirrorflow_sflow_port_bytes_total" ["agent", "sub_agent", "port", "direction"]
        "Octets in and out of a port, as its sFlow agent counts them (ifInOctets, ifOutOctets).";
    SFLOW_PORT_PACKETS: Counter "mirrorflow_sflow_port_packets_total" ["agent", "sub_agent", "port", "direction", "cast"]
        "Packets in and out of a port by class (unicast, multicast, broadcast), as its sFlow agent counts them.";
    SFLOW_PORT_DISCARDS: Counter "mirrorflow_sflow_port_discards_total" ["agent", "sub_agent", "port", "direction"]
        "Packets a port discarded (ifInDiscards, ifOutDiscards).";
    SFLOW_PORT_ERRORS: Counter "mirrorflow_sflow_port_errors_total" ["agent", "sub_agent", "port", "direction"]
        "Packets with errors on a port (ifInErrors, ifOutErrors).";
    SFLOW_PORT_ETHERNET: Counter "mirrorflow_sflow_port_ethernet_errors_total" ["agent", "sub_agent", "port", "counter"]
        "Ethernet (dot3) error counters of a port, by counter name.";
    SFLOW_PORT_SPEED: Gauge "mirrorflow_sflow_port_speed_bytes_per_second" ["agent", "sub_agent", "port"]
        "Port speed (ifSpeed, which agents send in bits per second, divided by 8).";
    SFLOW_PORT_UP: Gauge "mirrorflow_sflow_port_up" ["agent", "sub_agent", "port"]
        "1 when the port is operationally up (ifStatus), 0 otherwise.";
    SFLOW_PORT_INFO: Gauge "mirrorflow_sflow_port_info" ["agent", "sub_agent", "port", "name", "vm"]
        "Always 1: the port's name (sFlow port-name structure, else the port map) and VM id (port map).";
    SFLOW_OVS_LOOKUPS: Counter "mirrorflow_sflow_ovs_datapath_lookups_total" ["agent", "sub_agent", "datapath", "result"]
        "Open vSwitch datapath flow-table lookups (hit, missed, lost), from the agent's datapath counters.";
    SFLOW_OVS_FLOWS: Gauge "mirrorflow_sflow_ovs_datapath_flows" ["agent", "sub_agent", "datapath"]
        "Flows in the Open vSwitch datapath.";
}

impl Spec {
    /// Registry descriptor.
    pub fn desc(&self) -> Desc {
        Desc::new(
            self.name.to_string(),
            self.help.to_string(),
            self.labels.iter().map(|l| l.to_string()).collect(),
            Default::default(),
        )
        .expect("catalog names and labels are valid")
    }
}

/// Builds one metric family sample by sample.
pub struct Family {
    spec: Spec,
    metrics: Vec<proto::Metric>,
}

impl Family {
    pub fn new(spec: Spec) -> Family {
        Family {
            spec,
            metrics: Vec::new(),
        }
    }

    fn metric(&self, values: &[&str]) -> proto::Metric {
        debug_assert_eq!(values.len(), self.spec.labels.len(), "{}", self.spec.name);
        let labels = self
            .spec
            .labels
            .iter()
            .zip(values)
            .map(|(n, v)| {
                let mut p = proto::LabelPair::default();
                p.set_name(n.to_string());
                p.set_value(v.to_string());
                p
            })
            .collect();
        proto::Metric::from_label(labels)
    }

    /// A counter or gauge sample.
    pub fn add(&mut self, values: &[&str], v: f64) -> &mut Self {
        let mut m = self.metric(values);
        match self.spec.kind {
            Kind::Counter => {
                let mut c = proto::Counter::default();
                c.set_value(v);
                m.set_counter(c);
            }
            Kind::Gauge | Kind::Histogram => {
                let mut g = proto::Gauge::default();
                g.set_value(v);
                m.set_gauge(g);
            }
        }
        self.metrics.push(m);
        self
    }

    /// A histogram sample.
    pub fn histogram(&mut self, values: &[&str], h: proto::Histogram) -> &mut Self {
        let mut m = self.metric(values);
        m.set_histogram(h);
        self.metrics.push(m);
        self
    }

    pub fn finish(self) -> proto::MetricFamily {
        let mut f = proto::MetricFamily::default();
        f.set_name(self.spec.name.to_string());
        f.set_help(self.spec.help.to_string());
        f.set_field_type(match self.spec.kind {
            Kind::Counter => MetricType::COUNTER,
            Kind::Gauge => MetricType::GAUGE,
            Kind::Histogram => MetricType::HISTOGRAM,
        });
        f.set_metric(self.metrics);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions() {
        let mut seen = std::collections::BTreeSet::new();
        for s in CATALOG {
            assert!(seen.insert(s.name), "{} twice", s.name);
            assert!(s.name.starts_with("mirrorflow_"), "{}", s.name);
            assert_eq!(
                s.kind == Kind::Counter,
                s.name.ends_with("_total"),
                "{}",
                s.name
            );
            assert!(!s.help.is_empty());
            s.desc();
        }
    }
}
