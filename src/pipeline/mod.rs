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
/// Errors opening a source are returned before anything runs; errors that end a source later
/// are in [`Report::source_errors`].
pub fn run(
    cfg: &PipelineConfig,
    mut sinks: Fanout,
    shutdown: Arc<AtomicBool>,
    mut tick: impl FnMut(&Report),
) -> Result<Report, CaptureError> {
    let (tx, rx) = bounded::<SourceMsg>(QUEUE_BATCHES);
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
    match &cfg.source {
        SourceSpec::File(path) => {
            let src = FileSource::open(path)?;
            if let Some(f) = &cfg.filter {
                FileFilter::new(f)?;
            }
            let (setup, stop, tx) = (setup(cfg.filter.clone(), 1), shutdown.clone(), tx.clone());
            let speed = cfg.replay_speed;
            threads.push(spawn("read", move || {
                source::run_file(src, setup, speed, stop, tx)
            }));
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
                let (setup, stop, tx) = (setup(None, src.ifindex()), shutdown.clone(), tx.clone());
                threads.push(spawn("capture", move || {
                    source::run_live(src, setup, stop, tx)
                }));
            }
        }
    }
    drop(tx);

    let mut out_ports = Resolver {
        ports: cfg.ports.as_ref().map(PortDirectory::reader),
        origins: cfg.sflow_in.as_ref().map(|s| s.origins.reader()),
        scale: cfg.sflow_in.as_ref().is_some_and(|s| s.config.scale),
    };
    let mut cache = FlowCache::new(cfg.cache);
    let mut frags = FragTable::default();
    let mut totals = SourceCounts::default();
    let mut ports = PortTable::default();
    let mut interfaces: Vec<InterfaceReport> = Vec::new();
    let mut errors = Vec::new();
    let mut last_tick = Instant::now();
    let mut stop_seen: Option<Instant> = None;
    let mut next_snapshot = 0u64;
    let mut batch_latency = crate::metrics::LatencyHistogram::default();
    let snapshot = |totals: &SourceCounts,
                    cache: &FlowCache,
                    frags: &FragTable,
                    interfaces: &[InterfaceReport]| {
        let mut r = Report::build(totals, cache.counters(), cache.len(), frags.counters());
        r.interfaces = interfaces.to_vec();
        r
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(SourceMsg::Batch {
                mut metas,
                samples,
                counts,
                ports: port_delta,
            }) => {
                let started = Instant::now();
                totals.absorb(&counts);
                ports.absorb(&port_delta);
                sinks.send(Event::Samples(samples));
                for m in &mut metas {
                    frags.resolve(m);
                }
                cache.handle_batch(&metas);
                sinks.send_flows(resolved(cache.take_expired(), &mut out_ports));
                if interest.counters {
                    batch_latency.record(started.elapsed());
                }
            }
            Ok(SourceMsg::Interface(stats)) => {
                match interfaces.iter_mut().find(|i| i.name == stats.name) {
                    Some(i) => *i = stats,
                    None => interfaces.push(stats),
                }
            }
            Ok(SourceMsg::Error(e)) => errors.push(e),
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
            cache.handle_timeout(wall_ns().saturating_sub(LIVE_CLOCK_LAG_NS));
            sinks.send_flows(resolved(cache.take_expired(), &mut out_ports));
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                tick(&snapshot(&totals, &cache, &frags, &interfaces));
            }
        }
        if interest.counters && cache.clock() >= next_snapshot {
            let time_ns = cache.clock();
            next_snapshot = time_ns - time_ns % cfg.counter_interval_ns + cfg.counter_interval_ns;
            sinks.send(Event::Counters(Box::new(CounterSnapshot {
                time_ns,
                last: false,
                report: snapshot(&totals, &cache, &frags, &interfaces),
                ports: ports.clone(),
                batch_latency: std::mem::take(&mut batch_latency),
                fragments_held: frags.len() as u64,
            })));
        }
    }
    for t in threads {
        let _ = t.join();
    }
    sinks.send_flows(resolved(cache.take_expired(), &mut out_ports));
    while cache.flush_up_to(EndReason::ForcedEnd, FLUSH_BATCH) > 0 {
        sinks.send_flows(resolved(cache.take_expired(), &mut out_ports));
    }
    let mut report = snapshot(&totals, &cache, &frags, &interfaces);
    report.source_errors = errors;
    if interest.counters {
        sinks.send(Event::Counters(Box::new(CounterSnapshot {
            time_ns: cache.clock(),
            last: true,
            report: report.clone(),
            ports,
            batch_latency,
            fragments_held: frags.len() as u64,
        })));
    }
    report.sinks = sinks.finish().iter().map(SinkReportJson::from).collect();
    Ok(report)
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
