//! Fan-out of record batches to sinks, each on its own thread behind a bounded queue.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender, TrySendError};

use super::FlowSink;
use crate::flow::FlowRecord;

/// What happens when a sink's queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for the sink (files: losing records there is never right).
    Block,
    /// Drop the newest batch and count its records (network sinks).
    DropNewest,
}

/// What a sink did over the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkReport {
    pub name: String,
    pub records_written: u64,
    /// Records dropped because the queue was full or the sink had failed.
    pub records_dropped: u64,
    pub error: Option<String>,
}

struct Worker {
    tx: Option<Sender<Arc<Vec<FlowRecord>>>>,
    policy: WhenFull,
    dropped: u64,
    handle: JoinHandle<SinkReport>,
}

/// Hands every record batch to every sink.
#[derive(Default)]
pub struct Fanout {
    workers: Vec<Worker>,
}

impl Fanout {
    pub fn new() -> Fanout {
        Fanout::default()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Starts `sink` on its own thread with a queue of `queue_batches` batches.
    pub fn add(&mut self, mut sink: Box<dyn FlowSink>, policy: WhenFull, queue_batches: usize) {
        let (tx, rx) = bounded::<Arc<Vec<FlowRecord>>>(queue_batches.max(1));
        let handle = std::thread::Builder::new()
            .name("sink".into())
            .spawn(move || {
                let mut report = SinkReport {
                    name: sink.name(),
                    ..SinkReport::default()
                };
                for batch in rx {
                    if report.error.is_some() {
                        report.records_dropped += batch.len() as u64;
                        continue;
                    }
                    match sink.write(&batch) {
                        Ok(()) => report.records_written += batch.len() as u64,
                        Err(e) => {
                            report.records_dropped += batch.len() as u64;
                            report.error = Some(e.to_string());
                        }
                    }
                }
                if report.error.is_none() {
                    if let Err(e) = sink.finish() {
                        report.error = Some(e.to_string());
                    }
                }
                report
            })
            .expect("spawning a sink thread");
        self.workers.push(Worker {
            tx: Some(tx),
            policy,
            dropped: 0,
            handle,
        });
    }

    /// Sends a batch to every sink.
    pub fn send(&mut self, records: Vec<FlowRecord>) {
        if records.is_empty() || self.workers.is_empty() {
            return;
        }
        let batch = Arc::new(records);
        for w in &mut self.workers {
            let Some(tx) = &w.tx else { continue };
            let result = match w.policy {
                WhenFull::Block => tx.send(batch.clone()).map_err(|e| e.into_inner()),
                WhenFull::DropNewest => tx.try_send(batch.clone()).map_err(|e| match e {
                    TrySendError::Full(b) | TrySendError::Disconnected(b) => b,
                }),
            };
            if let Err(b) = result {
                w.dropped += b.len() as u64;
            }
        }
    }

    /// Closes the queues, waits for every sink to finish, and reports.
    pub fn finish(self) -> Vec<SinkReport> {
        self.workers
            .into_iter()
            .map(|mut w| {
                w.tx.take();
                let mut r = w.handle.join().unwrap_or_else(|_| SinkReport {
                    error: Some("sink thread panicked".into()),
                    ..SinkReport::default()
                });
                r.records_dropped += w.dropped;
                r
            })
            .collect()
    }
}
