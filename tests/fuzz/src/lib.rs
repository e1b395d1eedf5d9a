//! The harness shared by the fuzz targets: one [`Ingest`] with small [`Limits`], fed
//! datagram by datagram, with the invariants of the datagram path checked after each one.
//!
//! Invariants (any failure panics, which libFuzzer reports as a crash):
//! * `handle` never panics and only appends to the metas it is given;
//! * a refused datagram adds no meta and no count, and is counted once under its reason;
//! * the framing check refuses nothing that `sflow-parser` reads, bytes after the last
//!   sample (the parser ignores them) and nested 802.11 aggregations (refused before the
//!   parser's recursion can overflow the stack) aside;
//! * an accepted datagram is counted once, for a followed agent or under `other`;
//! * every meta carries [`ORIGIN_BIT`], the id of an interned origin (rate ≥ 1) and the
//!   arrival time;
//! * `counts.frames` = metas + non-IP frames + decode errors of that call;
//! * followed agents ≤ `max_agents`; ports plus datapaths ≤ `max_ports` (they share the
//!   cap, see `Limits`); interned origins ≤ `max_origins`.
//!
//! `run.sh` gives the fuzzer the 2 MiB stack of the probe's `sflow-in` thread (`ulimit -s`),
//! so that deep recursion fails here as it would there. A stack overflow kills the fuzzer
//! with SIGSEGV and no crash file (libFuzzer's handler has no alternate stack).

use std::sync::{Arc, Mutex};

use mirrorflow::decode::{Decoder, FrameInfo, PacketMeta, TunnelMode};
use mirrorflow::flow::ORIGIN_BIT;
use mirrorflow::pipeline::SourceCounts;
use mirrorflow::sflow_in::{BadDatagram, Ingest, Limits, OriginReader, OriginTable, SflowInStats};

/// Small caps, so that a few inputs already reach them.
pub const LIMITS: Limits = Limits {
    max_agents: 4,
    max_ports: 8,
    max_origins: 16,
};

/// `in_if` of the meta placed before the call's own, to see that `handle` only appends.
const SENTINEL_IF: u32 = 0x5e11_7e11;

/// One datagram path and the views needed to check it.
pub struct Harness {
    ingest: Ingest,
    stats: Arc<Mutex<SflowInStats>>,
    origins: OriginTable,
    reader: OriginReader,
    scale: bool,
    now_ns: u64,
    metas: Vec<PacketMeta>,
}

impl Harness {
    pub fn new(tunnels: TunnelMode, scale: bool) -> Harness {
        let stats = Arc::<Mutex<SflowInStats>>::default();
        let origins = OriginTable::new(LIMITS.max_origins);
        let ingest = Ingest::new(
            Decoder::new(tunnels),
            origins.clone(),
            scale,
            LIMITS,
            stats.clone(),
        );
        Harness {
            ingest,
            reader: origins.reader(),
            origins,
            stats,
            scale,
            now_ns: 1_700_000_000_000_000_000,
            metas: Vec::new(),
        }
    }

    /// Feeds one datagram and checks every invariant; returns what `handle` returned.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), BadDatagram> {
        self.now_ns += 1_000_000;
        let (bad_before, seen_before) = self.totals();
        self.metas.clear();
        self.metas.push(PacketMeta {
            frame: FrameInfo {
                ts_ns: 0,
                wire_len: 0,
                in_if: SENTINEL_IF,
            },
            ..PacketMeta::default()
        });
        let mut counts = SourceCounts::default();
        let result = self
            .ingest
            .handle(data, self.now_ns, &mut self.metas, &mut counts);

        assert_eq!(
            self.metas[0].frame.in_if, SENTINEL_IF,
            "handle rewrote a meta"
        );
        let new = &self.metas[1..];
        let (bad_after, seen_after) = self.totals();
        match result {
            Err(e) => {
                assert!(new.is_empty(), "refused datagram ({e}) made metas");
                assert!(counts.is_empty(), "refused datagram ({e}) counted frames");
                assert_eq!(bad_after[e as usize], bad_before[e as usize] + 1);
                assert_eq!(sum(&bad_after), sum(&bad_before) + 1);
                assert_eq!(seen_after, seen_before, "refused datagram counted as seen");
                // Nested 802.11 aggregations are refused on purpose: the parser would read
                // them, recursing once per level, until its stack overflows.
                if !matches!(
                    e,
                    BadDatagram::Decode | BadDatagram::Trailing | BadDatagram::Nesting
                ) {
                    assert!(
                        sflow_parser::parse_datagram(data).is_err(),
                        "framing refused ({e}) a datagram that sflow-parser reads"
                    );
                }
            }
            Ok(()) => {
                assert_eq!(bad_after, bad_before, "accepted datagram counted as bad");
                assert_eq!(seen_after, seen_before + 1, "datagram not counted once");
            }
        }
        for m in new {
            assert_ne!(m.frame.in_if & ORIGIN_BIT, 0, "meta without origin bit");
            assert_eq!(
                m.frame.ts_ns, self.now_ns,
                "meta not stamped with arrival time"
            );
            let id = m.frame.in_if & !ORIGIN_BIT;
            let origin = self
                .reader
                .get(id)
                .expect("meta names an origin not interned");
            assert!(origin.sampling_rate >= 1, "origin with sampling rate 0");
            assert_eq!(origin.scaled, self.scale);
        }
        let non_ip: u64 = counts.non_ip.values().sum();
        assert_eq!(
            counts.frames,
            new.len() as u64 + non_ip + sum(&counts.decode_errors),
            "frames != metas + non-IP + decode errors"
        );
        assert_eq!((counts.filtered, counts.sampled_out), (0, 0));

        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        assert!(stats.agents.len() <= LIMITS.max_agents, "agent cap");
        let held = stats.counters.ports.len() + stats.counters.datapaths.len();
        assert!(
            held <= LIMITS.max_ports,
            "ports + datapaths over the port cap"
        );
        assert!(self.origins.len() <= LIMITS.max_origins, "origin cap");
        result
    }

    /// Refused datagrams by reason, and datagrams accepted (followed agents and `other`).
    fn totals(&self) -> ([u64; BadDatagram::ALL.len()], u64) {
        let s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let seen = s.agents.values().map(|a| a.datagrams).sum::<u64>() + s.other_agents.datagrams;
        (s.bad, seen)
    }
}

fn sum(v: &[u64]) -> u64 {
    v.iter().sum()
}
