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

/// A sink with its report and live counts: what a sink thread (or the caller, for an
/// inline sink) does with each event.
struct Runner {
    sink: Box<dyn Sink>,
    report: SinkReport,
    stats: Arc<SinkStats>,
}

impl Runner {
    fn new(sink: Box<dyn Sink>, stats: Arc<SinkStats>) -> Runner {
        let report = SinkReport {
            name: sink.name(),
            ..SinkReport::default()
        };
        let runner = Runner {
            sink,
            report,
            stats,
        };
        // An exporter's counters exist from the start, at zero: a scrape before its first
        // datagram (or while its thread is still behind the flow thread) shows them.
        runner.publish_counters();
        runner
    }

    /// Delivers one event; after a failure the sink gets nothing more and what it would
    /// have got is counted as dropped.
    fn handle(&mut self, event: &Event) {
        let (report, live) = (&mut self.report, &self.stats);
        if report.error.is_some() {
            report.records_dropped += items(event);
            live.records_dropped
                .fetch_add(items(event), Ordering::Relaxed);
            return;
        }
        match deliver(self.sink.as_mut(), event) {
            Ok(()) => {
                report.records_written += items(event);
                live.records_written
                    .fetch_add(items(event), Ordering::Relaxed);
            }
            Err(e) => {
                report.records_dropped += items(event);
                report.error = Some(e.to_string());
                live.records_dropped
                    .fetch_add(items(event), Ordering::Relaxed);
                live.failed.store(true, Ordering::Relaxed);
            }
        }
        self.publish_counters();
    }

    fn publish_counters(&self) {
        if let Some(c) = self.sink.export_counters() {
            *self.stats.export.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
        }
    }

    fn finish(mut self) -> SinkReport {
        if self.report.error.is_none() {
            if let Err(e) = self.sink.finish() {
                self.report.error = Some(e.to_string());
                self.stats.failed.store(true, Ordering::Relaxed);
            }
            self.publish_counters();
        }
        self.report
    }
}

/// A sink run on the caller's (the flow thread's) own thread.
struct Inline {
    runner: Runner,
    interest: Interest,
}

/// Hands every event to every sink that wants it.
#[derive(Default)]
pub struct Fanout {
    workers: Vec<Worker>,
    inline: Vec<Inline>,
}

impl Fanout {
    pub fn new() -> Fanout {
        Fanout::default()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty() && self.inline.is_empty()
    }

    /// What the sinks want, together.
    pub fn interest(&self) -> Interest {
        self.workers
            .iter()
            .map(|w| w.interest)
            .chain(self.inline.iter().map(|i| i.interest))
            .fold(Interest::default(), |a, w| Interest {
                flows: a.flows || w.flows,
                samples: a.samples || w.samples,
                counters: a.counters || w.counters,
            })
    }

    /// Starts `sink` on its own thread with a queue of `queue` events.
    pub fn add(&mut self, sink: Box<dyn Sink>, policy: WhenFull, queue: usize) {
        let (tx, rx) = bounded::<Arc<Event>>(queue.max(1));
        let interest = sink.interest();
        let stats = Arc::new(SinkStats {
            name: sink.name(),
            queue_capacity: queue.max(1) as u64,
            ..SinkStats::default()
        });
        let mut runner = Runner::new(sink, stats.clone());
        let handle = std::thread::Builder::new()
            .name("sink".into())
            .spawn(move || {
                for event in rx.iter() {
                    runner
                        .stats
                        .queued
                        .store(rx.len() as u64, Ordering::Relaxed);
                    runner.handle(&event);
                }
                runner.finish()
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

    /// Runs `sink` on the thread that sends the events, with no queue: for a sink whose
    /// work per event is small, bounded and never blocks for long (no I/O), where handing
    /// records to another core would cost more than the work (the metrics aggregates read
    /// each record while it is still in this core's cache).
    pub fn add_inline(&mut self, sink: Box<dyn Sink>) {
        let interest = sink.interest();
        let stats = Arc::new(SinkStats {
            name: sink.name(),
            ..SinkStats::default()
        });
        self.inline.push(Inline {
            runner: Runner::new(sink, stats),
            interest,
        });
    }

    /// Live counts of every sink, for metrics.
    pub fn stats(&self) -> Vec<Arc<SinkStats>> {
        self.workers
            .iter()
            .map(|w| w.stats.clone())
            .chain(self.inline.iter().map(|i| i.runner.stats.clone()))
            .collect()
    }

    /// Sends an event to every sink that wants it. Empty flow and sample batches are skipped.
    pub fn send(&mut self, event: Event) {
        if self.is_empty() || matches!(&event, Event::Flows(r) if r.is_empty()) {
            return;
        }
        if matches!(&event, Event::Samples(s) if s.is_empty()) {
            return;
        }
        for i in &mut self.inline {
            if i.interest.wants(&event) {
                i.runner.handle(&event);
            }
        }
        if self.workers.is_empty() {
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

    /// Closes the queues, waits for every sink to finish, and reports (inline sinks last).
    pub fn finish(self) -> Vec<SinkReport> {
        let inline = self.inline;
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
            .chain(inline.into_iter().map(|i| i.runner.finish()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A network exporter that has sent nothing yet.
    struct Idle;

    impl Sink for Idle {
        fn name(&self) -> String {
            "idle".into()
        }

        fn finish(&mut self) -> Result<(), super::super::ExportError> {
            Ok(())
        }

        fn export_counters(&self) -> Option<super::super::ExportCounters> {
            Some(super::super::ExportCounters {
                records: Some(0),
                ..Default::default()
            })
        }
    }

    /// Exporter counters are there (at zero) before the sink has handled any event, whether
    /// it runs on its own thread or inline.
    #[test]
    fn exporter_counters_exist_before_the_first_event() {
        let mut f = Fanout::new();
        f.add(Box::new(Idle), WhenFull::Block, 4);
        f.add_inline(Box::new(Idle));
        for s in f.stats() {
            let c = *s.export.lock().unwrap();
            assert_eq!(c.and_then(|c| c.records), Some(0), "{}", s.name);
        }
        assert_eq!(f.finish().len(), 2);
    }
}
