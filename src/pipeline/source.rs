//! Sources: read frames, filter, sample, decode, and hand batches of `PacketMeta`, packet
//! samples and counter deltas to the flow stage: through a bounded queue to the flow thread,
//! or (a file read with a single CPU) by a direct call on the same thread.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mirrorflow_sflow::Sampler;

use super::counts::{InterfaceReport, SourceCounts};
use crate::capture::{CaptureError, FileFilter, FileSource, Frame, LiveSource};
use crate::decode::{linktype, Decoded, Decoder, FrameInfo, PacketMeta};
use crate::ports::{PortDirectory, PortReader};
use crate::sample::{PacketSample, PortCounter, PortTable, SamplingConfig};

/// Packets per batch.
pub const BATCH: usize = 1024;
/// Longest a live batch waits before it is sent anyway.
const LIVE_FLUSH: Duration = Duration::from_millis(100);
/// Longest a live source keeps reading after a stop, to drain the kernel's ring.
const DRAIN: Duration = Duration::from_millis(500);
/// How often live interface statistics are read.
const STATS_EVERY: Duration = Duration::from_secs(1);

pub enum SourceMsg {
    Batch {
        metas: Vec<PacketMeta>,
        samples: Vec<PacketSample>,
        counts: SourceCounts,
        ports: PortTable,
    },
    /// Cumulative libpcap statistics of a live interface.
    Interface(InterfaceReport),
    /// The source stopped on an error.
    Error(String),
}

/// The flow stage, as a source feeding it on its own thread sees it.
pub trait Consumer {
    /// Takes a batch; `metas` may be changed in place (fragment ports are filled in).
    fn batch(
        &mut self,
        metas: &mut [PacketMeta],
        samples: Vec<PacketSample>,
        counts: &SourceCounts,
        ports: &PortTable,
    );
    /// The source stopped on an error.
    fn error(&mut self, e: String);
}

/// The bounded queue from a source thread to the flow thread, and the emptied batch buffers
/// coming back for reuse (their slots are overwritten, never re-initialized).
#[derive(Clone)]
pub struct Queue {
    pub tx: Sender<SourceMsg>,
    pub spare: Receiver<Vec<PacketMeta>>,
}

/// Where a source's batches go.
pub enum Out<'c> {
    /// To the flow thread, through the bounded queue.
    Channel(Queue),
    /// Straight into the flow stage on this thread: no handoff, and the one batch buffer is
    /// reused while it is still in the CPU's cache.
    Inline(&'c mut dyn Consumer),
}

impl Out<'_> {
    fn error(&mut self, e: String) {
        match self {
            Out::Channel(q) => {
                let _ = q.tx.send(SourceMsg::Error(e));
            }
            Out::Inline(c) => c.error(e),
        }
    }
}

/// What a source thread does to each frame, besides decoding it.
#[derive(Clone, Debug)]
pub struct SourceSetup {
    pub decoder: Decoder,
    /// BPF filter applied per frame (files only).
    pub filter: Option<String>,
    /// 1-in-N sampling of the frames that reach the flow cache (1: all).
    pub flow_sampling: u32,
    /// sFlow-style packet samples, when a sink wants them.
    pub packet_sampling: Option<SamplingConfig>,
    /// Keep port counters (when a sink wants counters).
    pub count_ports: bool,
    /// Index of this data source (the capture interface) for samples and port counters.
    pub source_index: u32,
    /// Seed of the samplers (fixed, so a replay samples the same packets).
    pub seed: u64,
    /// Port map: frames are attributed to the ports behind their MACs.
    pub ports: Option<PortDirectory>,
}

/// Decodes frames into a batch and counts what is not IP.
struct Batcher<'c> {
    setup: SourceSetup,
    filter: Option<FileFilter>,
    flow_sampler: Option<Sampler>,
    packet_sampler: Option<Sampler>,
    ports: Option<PortReader>,
    /// Capture drops of this source so far (live), for samples.
    drops: u32,
    /// The batch: its first `filled` entries. Slots past them hold stale entries that decoding
    /// overwrites, so a reused buffer (inline, or a spare back from the flow thread) is never
    /// re-initialized.
    metas: Vec<PacketMeta>,
    filled: usize,
    samples: Vec<PacketSample>,
    counts: SourceCounts,
    port_counts: PortTable,
    port_counter: PortCounter,
    out: Out<'c>,
}

impl<'c> Batcher<'c> {
    /// A batcher sending to `out`; a bad filter is reported there and gives `None`.
    fn new(setup: SourceSetup, mut out: Out<'c>) -> Option<Batcher<'c>> {
        let filter = match setup.filter.as_deref().map(FileFilter::new).transpose() {
            Ok(f) => f,
            Err(e) => {
                out.error(e.to_string());
                return None;
            }
        };
        Some(Batcher {
            filter,
            flow_sampler: (setup.flow_sampling > 1)
                .then(|| Sampler::new(setup.flow_sampling, setup.seed)),
            packet_sampler: setup
                .packet_sampling
                .map(|s| Sampler::new(s.rate, setup.seed ^ 0x5f10)),
            ports: setup.ports.as_ref().map(PortDirectory::reader),
            setup,
            drops: 0,
            metas: Vec::with_capacity(BATCH),
            filled: 0,
            samples: Vec::new(),
            counts: SourceCounts::default(),
            port_counts: PortTable::default(),
            port_counter: PortCounter::default(),
            out,
        })
    }

    /// Returns false when the flow thread has gone away. The frame comes by value and the
    /// function is inlined into the read loops, so the frame's fields stay in registers.
    #[inline(always)]
    fn push(&mut self, f: Frame<'_>) -> Result<bool, CaptureError> {
        self.counts.frames += 1;
        if let Some(filter) = &mut self.filter {
            if !filter.matches(f.linktype, f.data)? {
                self.counts.filtered += 1;
                return Ok(true);
            }
        }
        // Field by field: one 16-byte copy of the frame info, just written by the reader as
        // two 8-byte values, stalls on store forwarding.
        let (ts_ns, wire_len, mut in_if) = (f.info.ts_ns, f.info.wire_len, f.info.in_if);
        let (mut in_port, mut out_port) = (self.setup.source_index, 0);
        if self.ports.is_some() || self.setup.count_ports {
            (in_port, out_port) = self.ports_of(&f);
            if self.ports.is_some() {
                in_if = in_port;
            }
        }
        let info = FrameInfo {
            ts_ns,
            wire_len,
            in_if,
        };
        let to_flows = self.flow_sampler.as_mut().is_none_or(|s| s.should_sample());
        let to_sample = self
            .packet_sampler
            .as_mut()
            .is_some_and(|s| s.should_sample());
        if !to_flows && !to_sample {
            self.counts.sampled_out += 1;
            return Ok(true);
        }
        // Decoded in place: the batch slot is written, never copied from the stack (a copy
        // read back fields just written, and stalled on store forwarding).
        if self.filled == self.metas.len() {
            self.metas.push(PacketMeta::default());
        }
        let slot = &mut self.metas[self.filled];
        let decoded = self.setup.decoder.decode(f.linktype, f.data, info, slot);
        if to_sample {
            let meta = *slot;
            self.take_sample(&f, &meta, in_port, out_port);
        }
        match decoded {
            _ if !to_flows => self.counts.sampled_out += 1,
            Decoded::Ip => self.filled += 1,
            Decoded::NonIp(et) => self.counts.count_non_ip(et),
            Decoded::Error(e) => self.counts.count_error(e),
        }
        Ok(self.filled < BATCH || self.flush())
    }

    /// The switch ports a frame came in and went out on (behind its source and destination
    /// MACs), and the per-port counts.
    fn ports_of(&mut self, f: &Frame<'_>) -> (u32, u32) {
        let (dst_mac, src_mac) = match (f.linktype, f.data) {
            (linktype::ETHERNET, [d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5, ..]) => (
                [*d0, *d1, *d2, *d3, *d4, *d5],
                [*s0, *s1, *s2, *s3, *s4, *s5],
            ),
            _ => ([0; 6], [0; 6]),
        };
        let (in_port, out_port) = match &mut self.ports {
            Some(reader) => {
                let map = reader.map();
                (map.lookup(&src_mac), map.lookup(&dst_mac))
            }
            None => (self.setup.source_index, 0),
        };
        if self.setup.count_ports {
            self.port_counter.count(
                &mut self.port_counts,
                in_port,
                out_port,
                &dst_mac,
                f.info.wire_len,
            );
        }
        (in_port, out_port)
    }

    fn take_sample(&mut self, f: &Frame<'_>, m: &PacketMeta, in_port: u32, out_port: u32) {
        let (Some(cfg), Some(sampler)) = (&self.setup.packet_sampling, &self.packet_sampler) else {
            return;
        };
        let n = f.data.len().min(cfg.header_bytes);
        self.samples.push(PacketSample {
            frame: f.info,
            linktype: f.linktype,
            header: f.data[..n].to_vec(),
            vlan_id: m.vlan_id,
            vlan_pcp: m.vlan_pcp,
            tunnel_id: m.tunnel_id,
            in_port,
            out_port,
            sampling_rate: sampler.rate(),
            sample_pool: sampler.sample_pool(),
            sequence: sampler.sequence_number(),
            drops: self.drops,
            source_index: self.setup.source_index,
        });
    }

    fn flush(&mut self) -> bool {
        self.port_counter.flush(&mut self.port_counts);
        if self.filled == 0 && self.counts.is_empty() && self.samples.is_empty() {
            return true;
        }
        match &mut self.out {
            Out::Channel(q) => {
                let spare = q
                    .spare
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(BATCH));
                let mut batch = std::mem::replace(&mut self.metas, spare);
                batch.truncate(std::mem::take(&mut self.filled));
                let msg = SourceMsg::Batch {
                    metas: batch,
                    samples: std::mem::take(&mut self.samples),
                    counts: std::mem::take(&mut self.counts),
                    ports: std::mem::take(&mut self.port_counts),
                };
                q.tx.send(msg).is_ok()
            }
            Out::Inline(c) => {
                let samples = std::mem::take(&mut self.samples);
                let filled = std::mem::take(&mut self.filled);
                c.batch(
                    &mut self.metas[..filled],
                    samples,
                    &self.counts,
                    &self.port_counts,
                );
                self.counts = SourceCounts::default();
                self.port_counts = PortTable::default();
                true
            }
        }
    }

    fn fail(&mut self, e: CaptureError) {
        self.flush();
        self.out.error(e.to_string());
    }
}

/// Longest single wait of a paced replay: a longer pause in the capture is shortened to this.
const MAX_PACE_WAIT: Duration = Duration::from_secs(10);

/// Paces a replay at `speed` times the recorded speed: a frame stamped `t` is released
/// `(t - t0) / speed` after the first frame (stamped `t0`). Frames stamped earlier than an
/// earlier frame go at once.
struct Pacer {
    speed: f64,
    start: Option<(u64, Instant)>,
    /// Pauses cut to [`MAX_PACE_WAIT`], added up.
    skipped: Duration,
}

impl Pacer {
    /// How long to wait before the frame stamped `ts_ns`, if at all.
    fn delay(&mut self, ts_ns: u64) -> Option<Duration> {
        let (t0, start) = *self.start.get_or_insert((ts_ns, Instant::now()));
        let due = Duration::from_secs_f64(ts_ns.saturating_sub(t0) as f64 / 1e9 / self.speed);
        let now = start.elapsed() + self.skipped;
        let wait = due.checked_sub(now)?;
        if wait > MAX_PACE_WAIT {
            self.skipped += wait - MAX_PACE_WAIT;
            return Some(MAX_PACE_WAIT);
        }
        (wait >= Duration::from_millis(1)).then_some(wait)
    }
}

/// Sleeps `d` in slices, returning false as soon as shutdown is set.
fn sleep_unless(d: Duration, shutdown: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    loop {
        if shutdown.load(Ordering::Relaxed) {
            return false;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Reads a capture file to its end (or until shutdown), paced at `speed` times the recorded
/// speed when given.
pub fn run_file(
    mut src: FileSource,
    setup: SourceSetup,
    speed: Option<f64>,
    shutdown: &AtomicBool,
    out: Out<'_>,
) {
    let Some(mut b) = Batcher::new(setup, out) else {
        return;
    };
    let mut n: u32 = 0;
    let mut pacer = speed.map(|speed| Pacer {
        speed,
        start: None,
        skipped: Duration::ZERO,
    });
    /// Why reading stopped before the end of the file.
    enum Stop {
        Shutdown,
        /// The flow stage has gone away.
        Gone,
        Failed(CaptureError),
    }
    let read = src.for_each_frame(|frame| {
        n = n.wrapping_add(1);
        if n.is_multiple_of(4096) && shutdown.load(Ordering::Relaxed) {
            return ControlFlow::Break(Stop::Shutdown);
        }
        if let Some(wait) = pacer.as_mut().and_then(|p| p.delay(frame.info.ts_ns)) {
            // Hand over what is batched first, so the flow thread follows the replay.
            if !b.flush() {
                return ControlFlow::Break(Stop::Gone);
            }
            if !sleep_unless(wait, shutdown) {
                return ControlFlow::Break(Stop::Shutdown);
            }
        }
        match b.push(frame) {
            Ok(true) => ControlFlow::Continue(()),
            Ok(false) => ControlFlow::Break(Stop::Gone),
            Err(e) => ControlFlow::Break(Stop::Failed(e)),
        }
    });
    match read {
        Ok(ControlFlow::Continue(()) | ControlFlow::Break(Stop::Shutdown)) => {
            b.flush();
        }
        Ok(ControlFlow::Break(Stop::Gone)) => {}
        Ok(ControlFlow::Break(Stop::Failed(e))) | Err(e) => b.fail(e),
    }
}

/// Captures on a live interface until shutdown.
pub fn run_live(mut src: LiveSource, setup: SourceSetup, shutdown: Arc<AtomicBool>, queue: Queue) {
    let tx = queue.tx.clone();
    let Some(mut b) = Batcher::new(setup, Out::Channel(queue)) else {
        return;
    };
    let mut last_flush = Instant::now();
    let mut last_stats = Instant::now();
    while !shutdown.load(Ordering::Relaxed) {
        match src.next_frame() {
            Ok(Some(frame)) => match b.push(frame) {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => return b.fail(e),
            },
            Ok(None) => {}
            Err(e) => return b.fail(e),
        }
        let now = Instant::now();
        if now.duration_since(last_flush) >= LIVE_FLUSH {
            if !b.flush() {
                return;
            }
            last_flush = now;
        }
        if now.duration_since(last_stats) >= STATS_EVERY {
            last_stats = now;
            b.drops = send_stats(&mut src, &tx);
        }
    }
    // Drain what the kernel captured before the stop: frames wait in a ring block until the
    // block retires (one read timeout), so read until a read comes back empty (bounded, for a
    // busy wire).
    let drain_until = Instant::now() + DRAIN;
    while Instant::now() < drain_until {
        match src.next_frame() {
            Ok(Some(frame)) => {
                if !matches!(b.push(frame), Ok(true)) {
                    break;
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    b.flush();
    send_stats(&mut src, &tx);
}

/// Sends the interface's libpcap statistics; returns its drops.
fn send_stats(src: &mut LiveSource, tx: &Sender<SourceMsg>) -> u32 {
    let s = src.stats();
    let _ = tx.send(SourceMsg::Interface(InterfaceReport {
        name: src.iface().to_string(),
        received: s.received,
        kernel_drops: s.dropped,
        interface_drops: s.if_dropped,
    }));
    (s.dropped + s.if_dropped) as u32
}
