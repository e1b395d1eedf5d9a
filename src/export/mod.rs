//! Exporters: where expired flow records go.
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

/// Errors of a sink, with the sink's name for context.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{sink}: {source}")]
    Io {
        sink: String,
        source: std::io::Error,
    },
}

/// A destination for flow records.
pub trait FlowSink: Send {
    /// Short name for logs and reports (e.g. `json:/tmp/flows.jsonl`).
    fn name(&self) -> String;
    /// Delivers one batch of records.
    fn write(&mut self, records: &[FlowRecord]) -> Result<(), ExportError>;
    /// Called once at the end: flush buffers, send what is pending.
    fn finish(&mut self) -> Result<(), ExportError>;
}
