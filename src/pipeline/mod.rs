//! The running probe: source threads decode frames into batches; this thread feeds the
//! fragment table and flow cache and hands expired records to the sinks.

mod counts;
mod sflow;
mod source;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{bounded, RecvTimeoutError};

pub use counts::{InterfaceReport, Report, SinkReportJson, SourceCounts, MAX_ETHERTYPES};
pub use source::{SourceSetup, BATCH};

use crate::capture::{CaptureError, FileFilter, FileSource, LiveConfig, LiveSource, Waker};
use crate::decode::Decoder;
use crate::export::{CounterSnapshot, Event, Fanout};
use crate::flow::{CacheConfig, EndReason, FlowCache, FragTable};
use crate::ports::{PortDirectory, PortReader};
use crate::sample::{PortTable, SamplingConfig};
use source::SourceMsg;

/// Where frames come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    File(PathBuf),
    Live(Vec<String>),
}

/// Everything the pipeline needs, validated.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub source: SourceSpec,
    pub decoder: Decoder,
    pub cache: CacheConfig,
    pub filter: Option<String>,
    pub live: LiveConfig,
    /// 1-in-N sampling in front of the flow cache (1: every packet).
    pub flow_sampling: u32,
    /// Packet samples for sinks that want them (sFlow).
    pub packet_sampling: Option<SamplingConfig>,
    /// How often (in packet time) sinks that want counters get a snapshot.
    pub counter_interval_ns: u64,
    /// Pace a file at this many times its recorded speed (`None`: as fast as possible).
    pub replay_speed: Option<f64>,
    /// VM identity: when set, flows, samples and port counters are attributed to the ports
    /// behind the frames' source and destination MACs instead of the capture interface.
    pub ports: Option<PortDirectory>,
    /// sFlow input (`--sflow-listen`): a source beside the live interfaces (or alone).
    pub sflow_in: Option<crate::sflow_in::SflowIn>,
    /// Read a file on the flow thread rather than a thread of its own; `None`: when the
    /// process has a single CPU (see [`run`]).
    pub read_inline: Option<bool>,
}

impl PipelineConfig {
    /// Defaults around a source: no filter, no sampling, counters every second.
    pub fn new(source: SourceSpec) -> PipelineConfig {
        PipelineConfig {
            source,
            decoder: Decoder::default(),
            cache: CacheConfig::default(),
            filter: None,
            live: LiveConfig {
                snaplen: 262_144,
                buffer_size: 32 << 20,
                promisc: true,
                filter: None,
                read_timeout_ms: 100,
            },
            flow_sampling: 1,
            packet_sampling: None,
            counter_interval_ns: 1_000_000_000,
            replay_speed: None,
            ports: None,
            sflow_in: None,
            read_inline: None,
        }
    }
}

/// Batches in flight between the sources and the flow thread.
const QUEUE_BATCHES: usize = 64;
/// Records per batch when the whole table is flushed at the end.
const FLUSH_BATCH: usize = 8192;
/// Seed of the samplers: fixed, so a replay samples the same packets every time.
const SAMPLER_SEED: u64 = 0x006d_666c_6f77;

/// How long after a stop the live sources are woken out of blocking reads (longer than the
/// 100 ms ring-block timeout, so frames captured before the stop are delivered first).
const WAKE_AFTER_STOP: Duration = Duration::from_millis(300);
/// How far behind the wall clock live expiry runs. Frames reach this thread up to about
/// 200 ms after capture (libpcap's 100 ms block timeout, then the sources' 100 ms batch
/// flush); expiring on the raw wall clock would end flows whose next packets are in flight.
const LIVE_CLOCK_LAG_NS: u64 = 1_000_000_000;

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Runs until the sources end (file) or `shutdown` is set (sources see it within one read
/// timeout and hang up), then flushes every active flow. `tick` is called about once a second
/// during live capture with the counts so far.
///
/// A file is read on a thread of its own, feeding this one through a bounded queue, unless
/// [`read_inline`] says otherwise: then this thread reads it too.
///
/// Errors opening a source are returned before anything runs; errors that end a source later
/// are in [`Report::source_errors`].
pub fn run(
    cfg: &PipelineConfig,
    sinks: Fanout,
    shutdown: Arc<AtomicBool>,
    mut tick: impl FnMut(&Report),
) -> Result<Report, CaptureError> {
    let (tx, rx) = bounded::<SourceMsg>(QUEUE_BATCHES);
    let (spare_tx, spare_rx) = bounded::<Vec<crate::decode::PacketMeta>>(QUEUE_BATCHES);
    let queue = |tx: &crossbeam_channel::Sender<SourceMsg>| source::Queue {
        tx: tx.clone(),
        spare: spare_rx.clone(),
    };
    let mut threads = Vec::new();
    let mut wakers = Vec::new();
    let live = matches!(cfg.source, SourceSpec::Live(_));
    let interest = sinks.interest();
    if let Some(sflow) = &cfg.sflow_in {
        let listener = crate::sflow_in::Listener::bind(&sflow.config.listen, &sflow.config.relay)?;
        for a in listener.local_addrs() {
            eprintln!("mirrorflow: receiving sFlow on {a}");
        }
        let (sflow, stop, tx) = (sflow.clone(), shutdown.clone(), tx.clone());
        let decoder = cfg.decoder;
        threads.push(spawn("sflow-in", move || {
            sflow::run(listener, sflow, decoder, stop, tx)
        }));
    }
    let setup = |filter: Option<String>, source_index: u32| SourceSetup {
        decoder: cfg.decoder,
        filter,
        flow_sampling: cfg.flow_sampling.max(1),
        packet_sampling: cfg.packet_sampling.filter(|_| interest.samples),
        count_ports: interest.counters,
        source_index,
        seed: SAMPLER_SEED ^ u64::from(source_index),
        ports: cfg.ports.clone(),
    };
    let mut inline_file = None;
    match &cfg.source {
        SourceSpec::File(path) => {
            let src = FileSource::open(path)?;
            if let Some(f) = &cfg.filter {
                FileFilter::new(f)?;
            }
            let setup = setup(cfg.filter.clone(), 1);
            if read_inline(cfg) {
                inline_file = Some((src, setup));
            } else {
                let (stop, queue) = (shutdown.clone(), queue(&tx));
                let speed = cfg.replay_speed;
                threads.push(spawn("read", move || {
                    source::run_file(src, setup, speed, &stop, source::Out::Channel(queue))
                }));
            }
        }
        SourceSpec::Live(ifaces) => {
            let mut opened = Vec::new();
            for iface in ifaces {
                let src = LiveSource::open(iface, &cfg.live)?;
                eprintln!(
                    "mirrorflow: capturing on {iface} (ifindex {})",
                    src.ifindex()
                );
                opened.push(src);
            }
            for mut src in opened {
                wakers.push(src.waker());
                let (setup, stop, queue) =
                    (setup(None, src.ifindex()), shutdown.clone(), queue(&tx));
                threads.push(spawn("capture", move || {
                    source::run_live(src, setup, stop, queue)
                }));
            }
        }
    }
    drop(tx);

    let mut stage = FlowStage::new(cfg, sinks);
    if let Some((src, setup)) = inline_file {
        source::run_file(
            src,
            setup,
            cfg.replay_speed,
            &shutdown,
            source::Out::Inline(&mut stage),
        );
    }
    let mut last_tick = Instant::now();
    let mut stop_seen: Option<Instant> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(SourceMsg::Batch {
                mut metas,
                samples,
                counts,
                ports,
            }) => {
                source::Consumer::batch(&mut stage, &mut metas, samples, &counts, &ports);
                // Back to the sources for reuse; dropped when they have enough (or are gone).
                let _ = spare_tx.try_send(metas);
            }
            Ok(SourceMsg::Interface(stats)) => {
                match stage.interfaces.iter_mut().find(|i| i.name == stats.name) {
                    Some(i) => *i = stats,
                    None => stage.interfaces.push(stats),
                }
            }
            Ok(SourceMsg::Error(e)) => stage.errors.push(e),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if live && shutdown.load(Ordering::Relaxed) {
            // Give the sources one ring-block timeout to hand over what was captured before
            // the stop, then wake those blocked on an idle wire.
            let since = *stop_seen.get_or_insert_with(Instant::now);
            if since.elapsed() >= WAKE_AFTER_STOP {
                wakers.iter().for_each(Waker::wake);
            }
        }
        if live {
            // A quiet wire still ages flows out.
            stage
                .cache
                .handle_timeout(wall_ns().saturating_sub(LIVE_CLOCK_LAG_NS));
            stage.send_expired();
            // Batches send their own snapshots; the wall clock moves the flow clock too.
            stage.snapshot_if_due();
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                tick(&stage.report());
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(stage.finish())
}

/// Whether a file is read on the flow thread itself: when `cfg.read_inline` says so, or by
/// default when the process may run on a single CPU and nothing else feeds the flow thread.
/// A second thread there would only take turns with this one, and every batch would cross
/// through memory instead of staying in the CPU's cache.
fn read_inline(cfg: &PipelineConfig) -> bool {
    cfg.read_inline.unwrap_or_else(|| {
        cfg.sflow_in.is_none() && std::thread::available_parallelism().is_ok_and(|n| n.get() == 1)
    })
}

/// The flow thread's state: fragment table, flow cache, totals, and the sinks the expired
/// records go to.
struct FlowStage<'a> {
    cfg: &'a PipelineConfig,
    sinks: Fanout,
    interest: crate::export::Interest,
    resolver: Resolver,
    cache: FlowCache,
    frags: FragTable,
    totals: SourceCounts,
    ports: PortTable,
    interfaces: Vec<InterfaceReport>,
    errors: Vec<String>,
    /// Flow clock (ns) at which the next counter snapshot is due.
    next_snapshot: u128,
    batch_latency: crate::metrics::LatencyHistogram,
}

impl<'a> FlowStage<'a> {
    fn new(cfg: &'a PipelineConfig, sinks: Fanout) -> FlowStage<'a> {
        FlowStage {
            cfg,
            interest: sinks.interest(),
            sinks,
            resolver: Resolver {
                ports: cfg.ports.as_ref().map(PortDirectory::reader),
                origins: cfg.sflow_in.as_ref().map(|s| s.origins.reader()),
                scale: cfg.sflow_in.as_ref().is_some_and(|s| s.config.scale),
            },
            cache: FlowCache::new(cfg.cache),
            frags: FragTable::default(),
            totals: SourceCounts::default(),
            ports: PortTable::default(),
            interfaces: Vec::new(),
            errors: Vec::new(),
            next_snapshot: 0,
            batch_latency: crate::metrics::LatencyHistogram::default(),
        }
    }

    fn send_expired(&mut self) {
        let records = resolved(self.cache.take_expired(), &mut self.resolver);
        self.sinks.send_flows(records);
    }

    fn report(&self) -> Report {
        let mut r = Report::build(
            &self.totals,
            self.cache.counters(),
            self.cache.len(),
            self.frags.counters(),
        );
        r.interfaces = self.interfaces.clone();
        r
    }

    /// Sends a counter snapshot to the sinks that want one when the flow clock has passed the
    /// next counter interval.
    fn snapshot_if_due(&mut self) {
        if !self.interest.counters || u128::from(self.cache.clock()) < self.next_snapshot {
            return;
        }
        let time_ns = self.cache.clock();
        // In 128 bits: the next interval after a clock near 2^64 (a corrupt timestamp) is past
        // every clock, rather than an overflow.
        let interval = u128::from(self.cfg.counter_interval_ns.max(1));
        self.next_snapshot = (u128::from(time_ns) / interval + 1) * interval;
        let snapshot = CounterSnapshot {
            time_ns,
            last: false,
            report: self.report(),
            ports: self.ports.clone(),
            batch_latency: std::mem::take(&mut self.batch_latency),
            fragments_held: self.frags.len() as u64,
        };
        self.sinks.send(Event::Counters(Box::new(snapshot)));
    }

    /// Flushes every active flow, sends the last counter snapshot and closes the sinks.
    fn finish(mut self) -> Report {
        self.send_expired();
        while self.cache.flush_up_to(EndReason::ForcedEnd, FLUSH_BATCH) > 0 {
            self.send_expired();
        }
        let mut report = self.report();
        report.source_errors = std::mem::take(&mut self.errors);
        if self.interest.counters {
            self.sinks.send(Event::Counters(Box::new(CounterSnapshot {
                time_ns: self.cache.clock(),
                last: true,
                report: report.clone(),
                ports: std::mem::take(&mut self.ports),
                batch_latency: std::mem::take(&mut self.batch_latency),
                fragments_held: self.frags.len() as u64,
            })));
        }
        report.sinks = self
            .sinks
            .finish()
            .iter()
            .map(SinkReportJson::from)
            .collect();
        report
    }
}

impl source::Consumer for FlowStage<'_> {
    fn batch(
        &mut self,
        metas: &mut [crate::decode::PacketMeta],
        samples: Vec<crate::sample::PacketSample>,
        counts: &SourceCounts,
        ports: &PortTable,
    ) {
        let started = Instant::now();
        self.totals.absorb(counts);
        self.ports.absorb(ports);
        self.sinks.send(Event::Samples(samples));
        for m in metas.iter_mut() {
            self.frags.resolve(m);
        }
        self.cache.handle_batch(metas);
        self.send_expired();
        if self.interest.counters {
            self.batch_latency.record(started.elapsed());
        }
        self.snapshot_if_due();
    }

    fn error(&mut self, e: String) {
        self.errors.push(e);
    }
}

/// What the flow thread fills in when records leave the cache.
struct Resolver {
    ports: Option<PortReader>,
    origins: Option<crate::sflow_in::OriginReader>,
    /// Multiply the counts of sFlow flows by their sampling rate.
    scale: bool,
}

/// The records with each one's egress port filled in from its destination MAC, and flows
/// from sFlow with their origin (and, with `--sflow-in-scale`, scaled counts).
fn resolved(
    mut records: Vec<crate::flow::FlowRecord>,
    r: &mut Resolver,
) -> Vec<crate::flow::FlowRecord> {
    if let Some(reader) = &mut r.ports {
        let map = reader.map();
        for rec in &mut records {
            if rec.key.origin_id().is_none() {
                rec.out_if = map.lookup(&rec.stats.dst_mac);
            }
        }
    }
    if let Some(origins) = &mut r.origins {
        for rec in &mut records {
            let Some(id) = rec.key.origin_id() else {
                continue;
            };
            rec.origin = origins.get(id);
            if let (true, Some(o)) = (r.scale, rec.origin) {
                let n = u64::from(o.sampling_rate);
                let s = &mut rec.stats;
                (s.packets, s.bytes, s.l2_bytes) = (
                    s.packets.saturating_mul(n),
                    s.bytes.saturating_mul(n),
                    s.l2_bytes.saturating_mul(n),
                );
            }
        }
    }
    records
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("spawning a source thread")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The setting wins; without one, the number of CPUs the process may use decides.
    #[test]
    fn where_a_file_is_read() {
        let mut cfg = PipelineConfig::new(SourceSpec::File("x.pcap".into()));
        cfg.read_inline = Some(true);
        assert!(read_inline(&cfg));
        cfg.read_inline = Some(false);
        assert!(!read_inline(&cfg));
        cfg.read_inline = None;
        let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
        assert_eq!(read_inline(&cfg), one_cpu);
    }
}
