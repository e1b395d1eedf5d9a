//! Fan-out of events to sinks, each on its own thread behind a bounded queue.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender, TrySendError};

use super::{Event, ExportCounters, Interest, Sink};

/// What happens when a sink's queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for the sink (files, and any sink while replaying a file: losing records there is
    /// never right).
    Block,
    /// Drop the newest event and count what it held (network sinks on live capture).
    DropNewest,
}

/// What a sink did over the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkReport {
    pub name: String,
    pub records_written: u64,
    /// Records (or samples) dropped because the queue was full or the sink had failed.
    pub records_dropped: u64,
    pub error: Option<String>,
}

/// Live counts of one sink, shared with the metrics endpoint; updated once per event.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub name: String,
    /// Capacity of the sink's queue, in events.
    pub queue_capacity: u64,
    /// Events in the queue after the last send.
    pub queued: AtomicU64,
    pub records_written: AtomicU64,
    pub records_dropped: AtomicU64,
    /// The sink stopped on an error.
    pub failed: AtomicBool,
    /// The sink's own counters ([`Sink::export_counters`]) after its last event.
    pub export: Mutex<Option<ExportCounters>>,
}

struct Worker {
    tx: Option<Sender<Arc<Event>>>,
    interest: Interest,
    policy: WhenFull,
    dropped: u64,
    stats: Arc<SinkStats>,
    handle: JoinHandle<SinkReport>,
}

/// Items an event carries, for the written/dropped counts.
fn items(e: &Event) -> u64 {
    match e {
        Event::Flows(r) => r.len() as u64,
        Event::Samples(s) => s.len() as u64,
        Event::Counters(_) => 0,
    }
}

fn deliver(sink: &mut dyn Sink, e: &Event) -> Result<(), super::ExportError> {
    match e {
        Event::Flows(r) => sink.flows(r),
        Event::Samples(s) => sink.samples(s),
        Event::Counters(c) => sink.counters(c),
    }
}

/// Hands every event to every sink that wants it.
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

    /// What the sinks want, together.
    pub fn interest(&self) -> Interest {
        self.workers
            .iter()
            .fold(Interest::default(), |a, w| Interest {
                flows: a.flows || w.interest.flows,
                samples: a.samples || w.interest.samples,
                counters: a.counters || w.interest.counters,
            })
    }

    /// Starts `sink` on its own thread with a queue of `queue` events.
    pub fn add(&mut self, mut sink: Box<dyn Sink>, policy: WhenFull, queue: usize) {
        let (tx, rx) = bounded::<Arc<Event>>(queue.max(1));
        let interest = sink.interest();
        let stats = Arc::new(SinkStats {
            name: sink.name(),
            queue_capacity: queue.max(1) as u64,
            ..SinkStats::default()
        });
        let live = stats.clone();
        let handle = std::thread::Builder::new()
            .name("sink".into())
            .spawn(move || {
                let mut report = SinkReport {
                    name: sink.name(),
                    ..SinkReport::default()
                };
                for event in rx.iter() {
                    live.queued.store(rx.len() as u64, Ordering::Relaxed);
                    if report.error.is_some() {
                        report.records_dropped += items(&event);
                        live.records_dropped
                            .fetch_add(items(&event), Ordering::Relaxed);
                        continue;
                    }
                    match deliver(sink.as_mut(), &event) {
                        Ok(()) => {
                            report.records_written += items(&event);
                            live.records_written
                                .fetch_add(items(&event), Ordering::Relaxed);
                        }
                        Err(e) => {
                            report.records_dropped += items(&event);
                            report.error = Some(e.to_string());
                            live.records_dropped
                                .fetch_add(items(&event), Ordering::Relaxed);
                            live.failed.store(true, Ordering::Relaxed);
                        }
                    }
                    if let Some(c) = sink.export_counters() {
                        *live.export.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
                    }
                }
                if report.error.is_none() {
                    if let Err(e) = sink.finish() {
                        report.error = Some(e.to_string());
                        live.failed.store(true, Ordering::Relaxed);
                    }
                    if let Some(c) = sink.export_counters() {
                        *live.export.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
                    }
                }
                report
            })
            .expect("spawning a sink thread");
        self.workers.push(Worker {
            tx: Some(tx),
            interest,
            policy,
            dropped: 0,
            stats,
            handle,
        });
    }

    /// Live counts of every sink, for metrics.
    pub fn stats(&self) -> Vec<Arc<SinkStats>> {
        self.workers.iter().map(|w| w.stats.clone()).collect()
    }

    /// Sends an event to every sink that wants it. Empty flow and sample batches are skipped.
    pub fn send(&mut self, event: Event) {
        if self.workers.is_empty() || matches!(&event, Event::Flows(r) if r.is_empty()) {
            return;
        }
        if matches!(&event, Event::Samples(s) if s.is_empty()) {
            return;
        }
        let event = Arc::new(event);
        for w in &mut self.workers {
            let Some(tx) = &w.tx else { continue };
            if !w.interest.wants(&event) {
                continue;
            }
            let result = match w.policy {
                WhenFull::Block => tx.send(event.clone()).map_err(|e| e.into_inner()),
                WhenFull::DropNewest => tx.try_send(event.clone()).map_err(|e| match e {
                    TrySendError::Full(b) | TrySendError::Disconnected(b) => b,
                }),
            };
            if let Err(e) = result {
                w.dropped += items(&e);
                w.stats
                    .records_dropped
                    .fetch_add(items(&e), Ordering::Relaxed);
            }
            w.stats.queued.store(tx.len() as u64, Ordering::Relaxed);
        }
    }

    /// Sends a batch of flow records.
    pub fn send_flows(&mut self, records: Vec<crate::flow::FlowRecord>) {
        self.send(Event::Flows(records));
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
