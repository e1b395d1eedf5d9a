//! The metrics sink: takes flow records and counter snapshots on the flow thread (an inline
//! sink, see `Fanout::add_inline`) and folds them into the shared [`State`] that scrapes read.

use std::sync::{Arc, Mutex};

use super::state::State;
use crate::export::{CounterSnapshot, ExportError, Interest, Sink};
use crate::flow::FlowRecord;

/// Sink feeding the `/metrics` endpoint.
pub struct MetricsSink {
    state: Arc<Mutex<State>>,
}

impl MetricsSink {
    pub fn new(state: Arc<Mutex<State>>) -> MetricsSink {
        MetricsSink { state }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Sink for MetricsSink {
    fn name(&self) -> String {
        "metrics".into()
    }

    fn interest(&self) -> Interest {
        Interest {
            flows: true,
            samples: false,
            counters: true,
        }
    }

    fn flows(&mut self, records: &[FlowRecord]) -> Result<(), ExportError> {
        self.with(|s| s.flows(records));
        Ok(())
    }

    fn counters(&mut self, snapshot: &CounterSnapshot) -> Result<(), ExportError> {
        self.with(|s| s.counters(snapshot));
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ExportError> {
        Ok(())
    }
}
