//! The running probe: source threads decode frames into batches; this thread feeds the
//! fragment table and flow cache and hands expired records to the sinks.

mod counts;
mod source;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{bounded, RecvTimeoutError};

pub use counts::{InterfaceReport, Report, SinkReportJson, SourceCounts, MAX_ETHERTYPES};
pub use source::BATCH;

use crate::capture::{CaptureError, FileFilter, FileSource, LiveConfig, LiveSource};
use crate::decode::Decoder;
use crate::export::Fanout;
use crate::flow::{CacheConfig, EndReason, FlowCache, FragTable};
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
}

/// Batches in flight between the sources and the flow thread.
const QUEUE_BATCHES: usize = 64;
/// Records per batch when the whole table is flushed at the end.
const FLUSH_BATCH: usize = 8192;

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Runs until the sources end (file) or `shutdown` is set (sources see it within one read
/// timeout and hang up), then flushes every active flow. `tick` is called about once a second during live capture with the counts so far.
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
    let live = matches!(cfg.source, SourceSpec::Live(_));
    match &cfg.source {
        SourceSpec::File(path) => {
            let src = FileSource::open(path)?;
            if let Some(f) = &cfg.filter {
                FileFilter::new(f)?;
            }
            let (decoder, filter, stop, tx) = (
                cfg.decoder,
                cfg.filter.clone(),
                shutdown.clone(),
                tx.clone(),
            );
            threads.push(spawn("read", move || {
                source::run_file(src, decoder, filter, stop, tx)
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
            for src in opened {
                let (decoder, stop, tx) = (cfg.decoder, shutdown.clone(), tx.clone());
                threads.push(spawn("capture", move || {
                    source::run_live(src, decoder, stop, tx)
                }));
            }
        }
    }
    drop(tx);

    let mut cache = FlowCache::new(cfg.cache);
    let mut frags = FragTable::default();
    let mut totals = SourceCounts::default();
    let mut interfaces: Vec<InterfaceReport> = Vec::new();
    let mut errors = Vec::new();
    let mut last_tick = Instant::now();
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
            Ok(SourceMsg::Batch { mut metas, counts }) => {
                totals.absorb(&counts);
                for m in &mut metas {
                    frags.resolve(m);
                }
                cache.handle_batch(&metas);
                sinks.send(cache.take_expired());
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
        if live {
            // A quiet wire still ages flows out.
            cache.handle_timeout(wall_ns());
            sinks.send(cache.take_expired());
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                tick(&snapshot(&totals, &cache, &frags, &interfaces));
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
    sinks.send(cache.take_expired());
    while cache.flush_up_to(EndReason::ForcedEnd, FLUSH_BATCH) > 0 {
        sinks.send(cache.take_expired());
    }
    let mut report = snapshot(&totals, &cache, &frags, &interfaces);
    report.sinks = sinks.finish().iter().map(SinkReportJson::from).collect();
    report.source_errors = errors;
    Ok(report)
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("spawning a source thread")
}
