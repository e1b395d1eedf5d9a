//! Source threads: read frames, filter, decode, and send batches of `PacketMeta` with counter
//! deltas to the flow thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::counts::{InterfaceReport, SourceCounts};
use crate::capture::{CaptureError, FileFilter, FileSource, Frame, LiveSource};
use crate::decode::{Decoded, Decoder, PacketMeta};

/// Packets per batch.
pub const BATCH: usize = 1024;
/// Longest a live batch waits before it is sent anyway.
const LIVE_FLUSH: Duration = Duration::from_millis(100);
/// How often live interface statistics are read.
const STATS_EVERY: Duration = Duration::from_secs(1);

pub enum SourceMsg {
    Batch {
        metas: Vec<PacketMeta>,
        counts: SourceCounts,
    },
    /// Cumulative libpcap statistics of a live interface.
    Interface(InterfaceReport),
    /// The source stopped on an error.
    Error(String),
}

/// Decodes frames into a batch and counts what is not IP.
struct Batcher {
    decoder: Decoder,
    filter: Option<FileFilter>,
    metas: Vec<PacketMeta>,
    counts: SourceCounts,
    tx: Sender<SourceMsg>,
}

impl Batcher {
    fn new(decoder: Decoder, filter: Option<FileFilter>, tx: Sender<SourceMsg>) -> Batcher {
        Batcher {
            decoder,
            filter,
            metas: Vec::with_capacity(BATCH),
            counts: SourceCounts::default(),
            tx,
        }
    }

    /// Returns false when the flow thread has gone away.
    fn push(&mut self, f: &Frame<'_>) -> Result<bool, CaptureError> {
        self.counts.frames += 1;
        if let Some(filter) = &mut self.filter {
            if !filter.matches(f.linktype, f.data)? {
                self.counts.filtered += 1;
                return Ok(true);
            }
        }
        self.metas.push(PacketMeta::default());
        let slot = self.metas.last_mut().expect("just pushed");
        match self.decoder.decode(f.linktype, f.data, f.info, slot) {
            Decoded::Ip => {}
            Decoded::NonIp(et) => {
                self.metas.pop();
                self.counts.count_non_ip(et);
            }
            Decoded::Error(e) => {
                self.metas.pop();
                self.counts.count_error(e);
            }
        }
        Ok(self.metas.len() < BATCH || self.flush())
    }

    fn flush(&mut self) -> bool {
        if self.metas.is_empty() && self.counts.is_empty() {
            return true;
        }
        let msg = SourceMsg::Batch {
            metas: std::mem::replace(&mut self.metas, Vec::with_capacity(BATCH)),
            counts: std::mem::take(&mut self.counts),
        };
        self.tx.send(msg).is_ok()
    }

    fn fail(&mut self, e: CaptureError) {
        self.flush();
        let _ = self.tx.send(SourceMsg::Error(e.to_string()));
    }
}

/// Reads a capture file to its end (or until shutdown).
pub fn run_file(
    mut src: FileSource,
    decoder: Decoder,
    filter: Option<String>,
    shutdown: Arc<AtomicBool>,
    tx: Sender<SourceMsg>,
) {
    let filter = match filter.as_deref().map(FileFilter::new).transpose() {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.send(SourceMsg::Error(e.to_string()));
            return;
        }
    };
    let mut b = Batcher::new(decoder, filter, tx);
    let mut n: u32 = 0;
    loop {
        n = n.wrapping_add(1);
        if n.is_multiple_of(4096) && shutdown.load(Ordering::Relaxed) {
            break;
        }
        match src.next_frame() {
            Ok(Some(frame)) => match b.push(&frame) {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => return b.fail(e),
            },
            Ok(None) => break,
            Err(e) => return b.fail(e),
        }
    }
    b.flush();
}

/// Captures on a live interface until shutdown.
pub fn run_live(
    mut src: LiveSource,
    decoder: Decoder,
    shutdown: Arc<AtomicBool>,
    tx: Sender<SourceMsg>,
) {
    let mut b = Batcher::new(decoder, None, tx.clone());
    let mut last_flush = Instant::now();
    let mut last_stats = Instant::now();
    while !shutdown.load(Ordering::Relaxed) {
        match src.next_frame() {
            Ok(Some(frame)) => match b.push(&frame) {
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
            send_stats(&mut src, &tx);
        }
    }
    b.flush();
    send_stats(&mut src, &tx);
}

fn send_stats(src: &mut LiveSource, tx: &Sender<SourceMsg>) {
    let s = src.stats();
    let _ = tx.send(SourceMsg::Interface(InterfaceReport {
        name: src.iface().to_string(),
        received: s.received,
        kernel_drops: s.dropped,
        interface_drops: s.if_dropped,
    }));
}
