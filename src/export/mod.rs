//! Exporters: where flow records, packet samples and counter snapshots go.
//!
//! Each sink runs on its own thread behind a bounded queue with an explicit when-full policy
//! ([`WhenFull`]), so one slow sink never stalls capture or the other sinks. Wire formats live
//! in their own crates under `exporters/`; this module adapts records to them and owns the
//! transports.

mod fanout;
mod json;
mod netflow;
pub mod sflow;
mod udp;

pub use fanout::{Fanout, SinkReport, SinkStats, WhenFull};
pub use json::{JsonFlow, JsonSink};
pub use netflow::{capture_interfaces, IpfixTransport, NetflowConfig, NetflowSink};
pub use sflow::{SflowConfig, SflowSink};

use crate::flow::FlowRecord;
use crate::pipeline::Report;
use crate::sample::{PacketSample, PortTable};

/// Errors of a sink, with the sink's name for context.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{sink}: {source}")]
    Io {
        sink: String,
        source: std::io::Error,
    },
    #[error("{sink}: {message}")]
    Failed { sink: String, message: String },
}

/// Periodic state for sinks that report counters (sFlow counter samples, metrics): the probe's
/// counts so far and the port counters, at flow-clock time `time_ns`.
#[derive(Clone, Debug, Default)]
pub struct CounterSnapshot {
    /// Flow clock (packet time) when the snapshot was taken, Unix epoch ns.
    pub time_ns: u64,
    /// The last snapshot of the run (end of file or shutdown).
    pub last: bool,
    pub report: Report,
    pub ports: PortTable,
    /// Flow-thread processing time per batch since the previous snapshot (metrics).
    pub batch_latency: crate::metrics::LatencyHistogram,
    /// Datagrams held in the fragment table.
    pub fragments_held: u64,
}

/// What a network exporter has done so far ([`Sink::export_counters`]), for metrics. Each
/// field is `None` when the exporter does not count it (it is then not exported).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportCounters {
    /// Messages produced (datagrams, or messages on a stream).
    pub messages: Option<u64>,
    /// Bytes sent.
    pub bytes: Option<u64>,
    /// Records encoded.
    pub records: Option<u64>,
    /// Messages that could not be sent.
    pub send_errors: Option<u64>,
    /// ICMP port-unreachable reports (UDP).
    pub unreachable: Option<u64>,
    /// Connections opened (stream transports; reconnects = connections - 1).
    pub connections: Option<u64>,
    /// Failed name resolutions or connection attempts.
    pub connect_errors: Option<u64>,
    /// Template sets sent.
    pub templates: Option<u64>,
}

/// What travels from the flow thread to the sinks.
#[derive(Debug)]
pub enum Event {
    Flows(Vec<FlowRecord>),
    Samples(Vec<PacketSample>),
    Counters(Box<CounterSnapshot>),
}

/// Which events a sink wants; the others are not queued for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interest {
    pub flows: bool,
    pub samples: bool,
    pub counters: bool,
}

impl Interest {
    pub const FLOWS: Interest = Interest {
        flows: true,
        samples: false,
        counters: false,
    };

    pub fn wants(&self, e: &Event) -> bool {
        match e {
            Event::Flows(_) => self.flows,
            Event::Samples(_) => self.samples,
            Event::Counters(_) => self.counters,
        }
    }
}

/// A destination for what the probe produces. Each runs on its own thread; the methods are
/// called in event order for the events of [`Sink::interest`].
pub trait Sink: Send {
    /// Short name for logs and reports (e.g. `json:/tmp/flows.jsonl`).
    fn name(&self) -> String;
    fn interest(&self) -> Interest {
        Interest::FLOWS
    }
    /// A batch of expired flow records.
    fn flows(&mut self, _records: &[FlowRecord]) -> Result<(), ExportError> {
        Ok(())
    }
    /// A batch of packet samples.
    fn samples(&mut self, _samples: &[PacketSample]) -> Result<(), ExportError> {
        Ok(())
    }
    /// A counter snapshot.
    fn counters(&mut self, _snapshot: &CounterSnapshot) -> Result<(), ExportError> {
        Ok(())
    }
    /// Called once at the end: flush buffers, send what is pending.
    fn finish(&mut self) -> Result<(), ExportError>;
    /// Counters of a network exporter, read after each event for metrics; `None` for sinks
    /// that have none.
    fn export_counters(&self) -> Option<ExportCounters> {
        None
    }
}
