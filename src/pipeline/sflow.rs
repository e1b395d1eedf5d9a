//! The sFlow input thread: datagrams from the listener go through the datagram path
//! ([`crate::sflow_in::Ingest`]); the metas it makes reach the flow thread in batches, like a
//! capture source's.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crossbeam_channel::Sender;

use super::counts::SourceCounts;
use super::source::{SourceMsg, BATCH};
use super::wall_ns;
use crate::decode::{Decoder, PacketMeta};
use crate::sample::PortTable;
use crate::sflow_in::{Ingest, Listener, SflowIn};

/// Runs the listener until shutdown; flow samples are timed by their arrival.
pub fn run(
    listener: Listener,
    sflow: SflowIn,
    decoder: Decoder,
    shutdown: Arc<AtomicBool>,
    tx: Sender<SourceMsg>,
) {
    let mut ingest = Ingest::new(
        decoder,
        sflow.origins.clone(),
        sflow.config.scale,
        sflow.config.limits,
        sflow.stats.clone(),
    );
    let mut metas: Vec<PacketMeta> = Vec::with_capacity(BATCH);
    let mut counts = SourceCounts::default();
    let batch = std::cell::RefCell::new((&mut metas, &mut counts));
    let flush = |tx: &Sender<SourceMsg>| -> bool {
        let mut b = batch.borrow_mut();
        if b.0.is_empty() && b.1.is_empty() {
            return true;
        }
        let msg = SourceMsg::Batch {
            metas: std::mem::replace(b.0, Vec::with_capacity(BATCH)),
            samples: Vec::new(),
            counts: std::mem::take(b.1),
            ports: PortTable::default(),
        };
        tx.send(msg).is_ok()
    };
    let result = listener.run(
        sflow.stats.clone(),
        shutdown,
        |d| {
            let full = {
                let mut b = batch.borrow_mut();
                let (m, c) = &mut *b;
                // A refused datagram is counted by reason in the shared stats.
                let _ = ingest.handle(d, wall_ns(), m, c);
                m.len() >= BATCH
            };
            if full {
                flush(&tx);
            }
        },
        || flush(&tx),
    );
    if let Err(e) = result {
        let _ = tx.send(SourceMsg::Error(format!("sFlow listener: {e}")));
    }
}
