//! Exporters: where flow records, packet samples and counter snapshots go.
//!
//! Each sink runs on its own thread behind a bounded queue with an explicit when-full policy
//! ([`WhenFull`]), so one slow sink never stalls capture or the other sinks. Wire formats live
//! in their own crates under `exporters/`; this module adapts records to them and owns the
//! transports.

mod fanout;
mod json;
mod netflow;

pub use fanout::{Fanout, SinkReport, WhenFull};
pub use json::{JsonFlow, JsonSink};
pub use netflow::{NetflowConfig, NetflowSink};

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
}
