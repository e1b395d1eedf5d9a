//! Export-side packing: turns [`FlowRecord`]s into IPFIX messages (RFC 7011 §3) or
//! NetFlow v9 export packets (RFC 3954 §5), with the template refresh policy of
//! RFC 7011 §8.4 / RFC 3954 §9 (templates resent on a timer and every N datagrams).
//!
//! Packing rules:
//! * every datagram is at most `max_payload` bytes; a record never straddles two
//!   datagrams;
//! * within one datagram, records are grouped into one set per template (in order of
//!   first use), so the record order across templates inside a datagram is not kept
//!   (the order of records of one template is); sets of templates, options templates and
//!   options data go before the flow data sets, whenever they are added;
//! * a refresh puts, in this order, the template set, the options template sets and
//!   the options data sets (sampling, selectors, interfaces, exporter statistics) at the
//!   start of a datagram; flow data follows in the same datagram when it fits;
//! * each options template goes in a set of its own: pmacct's nfacctd (1.7) steps over an
//!   options template by a length computed from the header as if it were a v9 one with
//!   byte counts, lands inside the next template or the padding, calls the set malformed
//!   and drops the rest of the datagram; with one template per set the wrong step only
//!   ends the set early. (Template sets hold many templates: there its step is right.)
//! * every set is zero-padded to a multiple of 4 bytes (RFC 3954 §5.3 "SHOULD",
//!   RFC 7011 §3.3.1 "MAY"); the padding is counted in the set length and is always
//!   shorter than the smallest record, so it can't be mistaken for one;
//! * a record with its own sampling ([`FlowRecord::sampling`]) goes out with a selector
//!   template (263–266) and needs the options record describing its selector (267): the
//!   first such record of a stream brings the selector templates into the stream, each new
//!   rate its options record, right before the record; every refresh repeats them for every
//!   rate seen. At most [`MAX_SELECTORS`] rates are announced; records with further rates
//!   still carry their selector id (= the rate) and are counted
//!   ([`Encoder::selectors_over_cap`]);
//! * each selector options record goes in a set of its own: nfdump reads only the first
//!   record of a sampler options set;
//! * IPFIX sequence number = data records (flow data and options data) sent before this
//!   message, mod 2^32 (RFC 7011 §3.1); v9 sequence number = export packets sent
//!   before this one, mod 2^32 (RFC 3954 §5.1); v9 `count` = every record in the packet.

use crate::error::ConfigError;
use crate::flow::{ExporterStats, FlowRecord, InterfaceInfo, Sampling};
use crate::header::{IpfixHeader, V9Header};
use crate::set::{options_template_set_id, template_set_id, SetHeader};
use crate::templates::{
    self, FlowShape, OPTIONS_INTERFACES, OPTIONS_SAMPLING, OPTIONS_SELECTOR, OPTIONS_STATS,
};
use crate::Version;

/// Encoder configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderConfig {
    /// IPFIX or NetFlow v9.
    pub version: Version,
    /// IPFIX observation domain id; NetFlow v9 source id.
    pub observation_domain: u32,
    /// No datagram is longer than this (default 1400).
    pub max_payload: usize,
    /// Resend templates when this much (caller-given) time has passed; 0 = off.
    /// Default 60 000.
    pub template_refresh_ms: u64,
    /// Resend templates every this many datagrams; 0 = off. Default 100.
    pub template_refresh_packets: u32,
    /// Sampling in force (exported as options data).
    pub sampling: Sampling,
}

impl EncoderConfig {
    /// Defaults for `version`: domain 0, 1400-byte datagrams, refresh every 60 s or
    /// 100 datagrams, unsampled.
    pub fn new(version: Version) -> Self {
        EncoderConfig {
            version,
            observation_domain: 0,
            max_payload: 1400,
            template_refresh_ms: 60_000,
            template_refresh_packets: 100,
            sampling: Sampling::default(),
        }
    }
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig::new(Version::Ipfix)
    }
}

/// Time given by the caller for one `encode` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportClock {
    /// Wall time, Unix epoch milliseconds.
    pub unix_ms: u64,
    /// Milliseconds since the exporter started (NetFlow v9 sysUptime).
    pub uptime_ms: u64,
}

/// Largest `max_payload` accepted: the 16-bit IPFIX message length limit.
pub const MAX_PAYLOAD_LIMIT: usize = 65535;

/// Most distinct per-record sampling rates a stream announces (selector options records
/// resent with every refresh: 64 × 28 bytes at most).
pub const MAX_SELECTORS: usize = 64;

/// A datagram under construction: one set per set key, in order of first use, so that
/// interleaved IPv4 / IPv6 records share two data sets instead of alternating sets; except
/// that a new set of anything but flow data (templates, options templates, options data)
/// goes before the first flow data set, so that the templates and selector options a
/// record needs precede it even when they are announced after flow data of the message.
struct Msg {
    header_len: usize,
    sets: Vec<MsgSet>,
    /// Datagram length so far, with set headers and padding.
    len: usize,
    /// All records (v9 header count).
    records: u32,
    /// Data records incl. options data (IPFIX sequence number).
    data_records: u32,
}

#[derive(Debug, Clone)]
struct MsgSet {
    key: u32,
    set_id: u16,
    flow: bool,
    body: Vec<u8>,
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

/// Bytes a set with `body` record bytes takes: header, records, padding to 4.
fn set_size(body: usize) -> usize {
    let n = SetHeader::LEN + body;
    n + pad4(n)
}

/// Records with the same key share a set: the set id, except that each options template
/// (set id 3 in IPFIX, 1 in v9; each id unused by the other version) gets a set of its
/// own, keyed by its template id (see the module docs).
fn set_key(set_id: u16, rec: &[u8]) -> u32 {
    match (set_id, rec) {
        (1 | 3, [a, b, ..]) => 1 << 16 | u32::from(u16::from_be_bytes([*a, *b])),
        _ => u32::from(set_id),
    }
}

impl Msg {
    /// An empty datagram whose set list reuses `sets`' allocation.
    fn new(header_len: usize, mut sets: Vec<MsgSet>) -> Self {
        sets.clear();
        Msg {
            header_len,
            sets,
            len: header_len,
            records: 0,
            data_records: 0,
        }
    }

    /// The set `rec` joins, if any: the one with its key (solo records never join one).
    fn set_of(&mut self, p: Place, rec: &[u8]) -> Option<&mut MsgSet> {
        let key = set_key(p.set_id, rec);
        match p.solo {
            true => None,
            false => self.sets.iter_mut().find(|s| s.key == key),
        }
    }

    /// Bytes the datagram grows by when `rec` is added.
    fn growth(&mut self, p: Place, rec: &[u8]) -> usize {
        match self.set_of(p, rec) {
            Some(s) => set_size(s.body.len() + rec.len()) - set_size(s.body.len()),
            None => set_size(rec.len()),
        }
    }

    /// Whether `rec` still fits within `max` bytes.
    fn fits(&mut self, p: Place, rec: &[u8], max: usize) -> bool {
        self.len + self.growth(p, rec) <= max
    }

    fn add(&mut self, p: Place, rec: &[u8], pool: &mut Pool) {
        self.len += self.growth(p, rec);
        match self.set_of(p, rec) {
            Some(s) => s.body.extend_from_slice(rec),
            None => {
                let set = MsgSet {
                    // Solo sets get a key no other record asks for (set keys fit in 17 bits).
                    key: match p.solo {
                        true => 1 << 24 | self.sets.len() as u32,
                        false => set_key(p.set_id, rec),
                    },
                    set_id: p.set_id,
                    flow: p.flow,
                    body: pool.body(rec),
                };
                let at = match p.flow {
                    true => self.sets.len(),
                    false => self
                        .sets
                        .iter()
                        .position(|s| s.flow)
                        .unwrap_or(self.sets.len()),
                };
                self.sets.insert(at, set);
            }
        }
        self.records += 1;
        if p.data {
            self.data_records += 1;
        }
    }

    /// Assemble the datagram into `buf`; the header bytes are left zero for the caller.
    fn assemble_into(&self, buf: &mut Vec<u8>) {
        buf.clear();
        buf.resize(self.len, 0);
        let mut pos = self.header_len;
        for s in &self.sets {
            let length = set_size(s.body.len());
            SetHeader {
                set_id: s.set_id,
                length: length as u16,
            }
            .emit(&mut buf[pos..]);
            buf[pos + SetHeader::LEN..pos + SetHeader::LEN + s.body.len()].copy_from_slice(&s.body);
            pos += length;
        }
        debug_assert_eq!(pos, buf.len());
    }
}

/// Fills `order` with the indices of `records` grouped by flow template in template id
/// order, keeping their given order within a template (a counting sort: the ids are few).
fn by_template(records: &[FlowRecord], version: Version, order: &mut Vec<u32>) {
    const SLOTS: usize = 16;
    let slot = |r: &FlowRecord| {
        let t = templates::flow_template_id_of(version, FlowShape::of(r, version));
        usize::from(t.wrapping_sub(templates::FLOW_V4)).min(SLOTS - 1)
    };
    let mut start = [0u32; SLOTS + 1];
    for r in records {
        start[slot(r) + 1] += 1;
    }
    for i in 1..=SLOTS {
        start[i] += start[i - 1];
    }
    order.clear();
    order.resize(records.len(), 0);
    for (i, r) in records.iter().enumerate() {
        let s = &mut start[slot(r)];
        order[*s as usize] = i as u32;
        *s += 1;
    }
}

/// Buffers kept from flushed datagrams (set bodies, the set list) and handed back by the
/// caller ([`Encoder::recycle`]), so that steady-state encoding does not allocate.
#[derive(Debug, Clone, Default)]
struct Pool {
    bodies: Vec<Vec<u8>>,
    sets: Vec<MsgSet>,
    datagrams: Vec<Vec<u8>>,
}

/// Most buffers of each kind a [`Pool`] keeps.
const POOL_MAX: usize = 256;

impl Pool {
    /// A set body holding `rec`.
    fn body(&mut self, rec: &[u8]) -> Vec<u8> {
        let mut b = self.bodies.pop().unwrap_or_default();
        b.clear();
        b.extend_from_slice(rec);
        b
    }

    /// Takes back the buffers of a flushed datagram.
    fn reclaim(&mut self, mut m: Msg) {
        for s in m.sets.drain(..) {
            if self.bodies.len() < POOL_MAX {
                self.bodies.push(s.body);
            }
        }
        self.sets = m.sets;
    }
}

/// One encoder per collector stream: owns sequence numbers and template-refresh state.
#[derive(Debug, Clone)]
pub struct Encoder {
    cfg: EncoderConfig,
    /// IPFIX: data records sent so far (mod 2^32).
    data_records_sent: u32,
    /// Datagrams sent so far (v9 sequence number, mod 2^32).
    packets_sent: u32,
    /// Datagrams flushed since the end of the last template block (the datagram
    /// holding its tail counts as the first).
    packets_since_templates: u64,
    /// Clock of the last template refresh; `None` before the first.
    last_templates_ms: Option<u64>,
    force: bool,
    interfaces: Vec<InterfaceInfo>,
    stats: ExporterStats,
    /// Per-record sampling rates announced so far (at most [`MAX_SELECTORS`]), in order of
    /// first use.
    selectors: Vec<u32>,
    /// Records sent with a rate that could not be announced (over the cap).
    selectors_over_cap: u64,
    pool: Pool,
    /// Scratch: the order records are encoded in ([`by_template`]).
    order: Vec<u32>,
}

/// How a record is placed: its set, whether it is data (IPFIX sequence number), whether it
/// needs a set of its own, whether it is flow data (see [`Msg`]).
#[derive(Debug, Clone, Copy)]
struct Place {
    set_id: u16,
    data: bool,
    solo: bool,
    flow: bool,
}

impl Place {
    fn template(set_id: u16) -> Place {
        Place {
            set_id,
            data: false,
            solo: false,
            flow: false,
        }
    }

    /// An options data record.
    fn data(set_id: u16) -> Place {
        Place {
            set_id,
            data: true,
            solo: false,
            flow: false,
        }
    }

    /// A flow data record.
    fn flow(set_id: u16) -> Place {
        Place {
            set_id,
            data: true,
            solo: false,
            flow: true,
        }
    }
}

impl Place {
    /// A selector options record: data, in a set of its own.
    fn selector() -> Place {
        Place {
            set_id: OPTIONS_SELECTOR,
            data: true,
            solo: true,
            flow: false,
        }
    }
}

/// `t` emitted into `rec` (cleared first).
fn emit_template(t: &crate::template::TemplateRecord, v: Version, rec: &mut Vec<u8>) {
    rec.clear();
    rec.resize(t.buffer_len(v), 0);
    t.emit(rec, v);
}

impl Encoder {
    /// Check `cfg` and build an encoder.
    pub fn new(cfg: EncoderConfig) -> Result<Self, ConfigError> {
        let largest = templates::largest_record(cfg.version);
        let min = cfg.version.header_len() + SetHeader::LEN + largest + pad4(largest);
        if cfg.max_payload < min {
            return Err(ConfigError::MaxPayloadTooSmall {
                max_payload: cfg.max_payload,
                min,
            });
        }
        if cfg.max_payload > MAX_PAYLOAD_LIMIT {
            return Err(ConfigError::MaxPayloadTooLarge {
                max_payload: cfg.max_payload,
                max: MAX_PAYLOAD_LIMIT,
            });
        }
        if cfg.sampling.interval == 0 {
            return Err(ConfigError::ZeroSamplingInterval);
        }
        Ok(Encoder {
            cfg,
            data_records_sent: 0,
            packets_sent: 0,
            packets_since_templates: 0,
            last_templates_ms: None,
            force: false,
            interfaces: Vec::new(),
            stats: ExporterStats::default(),
            selectors: Vec::new(),
            selectors_over_cap: 0,
            pool: Pool::default(),
            order: Vec::new(),
        })
    }

    /// Takes back (and empties `out` of) datagrams the caller has sent, to be reused by
    /// later calls instead of allocating anew.
    pub fn recycle(&mut self, out: &mut Vec<Vec<u8>>) {
        let room = POOL_MAX.saturating_sub(self.pool.datagrams.len());
        let keep = out.len().min(room);
        self.pool.datagrams.extend(out.drain(..keep));
        out.clear();
    }

    /// Per-record sampling rates announced so far, in order of first use.
    pub fn selectors(&self) -> &[u32] {
        &self.selectors
    }

    /// Records sent with a per-record sampling rate that was not announced because
    /// [`MAX_SELECTORS`] rates already were (they still carry the rate as selector id).
    pub fn selectors_over_cap(&self) -> u64 {
        self.selectors_over_cap
    }

    /// The configuration in force.
    pub fn config(&self) -> &EncoderConfig {
        &self.cfg
    }

    /// Datagrams produced so far (mod 2^32): the next NetFlow v9 sequence number.
    pub fn packets_sent(&self) -> u32 {
        self.packets_sent
    }

    /// Data records (flow and options data) produced so far (mod 2^32): the next
    /// IPFIX sequence number.
    pub fn data_records_sent(&self) -> u32 {
        self.data_records_sent
    }

    /// Force templates (+ options templates and options data) into the next message
    /// (new TCP connection, template-loss recovery).
    pub fn force_templates(&mut self) {
        self.force = true;
    }

    /// Interfaces to describe in the interface options data sent with every refresh.
    pub fn set_interfaces(&mut self, ifs: Vec<InterfaceInfo>) {
        self.interfaces = ifs;
    }

    /// Exporting-process statistics sent as options data with every refresh
    /// (values are sent as given).
    pub fn set_stats(&mut self, s: ExporterStats) {
        self.stats = s;
    }

    fn refresh_due(&self, clock: &ExportClock) -> bool {
        let Some(last) = self.last_templates_ms else {
            return true;
        };
        self.force
            || (self.cfg.template_refresh_ms > 0
                && clock.unix_ms.saturating_sub(last) >= self.cfg.template_refresh_ms)
            || (self.cfg.template_refresh_packets > 0
                && self.packets_since_templates >= u64::from(self.cfg.template_refresh_packets))
    }

    /// Pack `records` into datagrams appended to `out` (each <= `max_payload`), with
    /// templates, options templates and options data first whenever the refresh policy
    /// (first call, `force_templates`, time or datagram count) says so. With no records
    /// and no refresh due nothing is produced.
    ///
    /// Records go out grouped by template (in their given order within a template), so a
    /// run of full messages of one template all have the same length: what UDP
    /// segmentation offload needs to send them in one go.
    pub fn encode(&mut self, records: &[FlowRecord], clock: ExportClock, out: &mut Vec<Vec<u8>>) {
        let mut msg = None;
        if self.refresh_due(&clock) {
            self.push_templates(&mut msg, &clock, out);
        }
        let mut order = std::mem::take(&mut self.order);
        by_template(records, self.cfg.version, &mut order);
        let mut rec = Vec::with_capacity(128);
        for r in order.iter().map(|&i| &records[i as usize]) {
            if let Some(n) = r.sampling.map(templates::selector_id) {
                if !self.selectors.contains(&n) {
                    if self.selectors.len() < MAX_SELECTORS {
                        self.announce(n, &mut msg, &clock, out);
                    } else {
                        self.selectors_over_cap += 1;
                    }
                }
            }
            rec.clear();
            let tid = templates::encode_flow(r, self.cfg.version, &clock, &mut rec);
            self.push(&mut msg, Place::flow(tid), &rec, &clock, out, true);
        }
        self.order = order;
        self.flush(&mut msg, &clock, out);
    }

    /// Adds rate `n` to the announced selectors and sends what a collector needs before the
    /// first record with it: the selector templates (for the first rate of the stream) and
    /// the options record of `n`. A refresh falling due first sends them all anyway.
    fn announce(
        &mut self,
        n: u32,
        msg: &mut Option<Msg>,
        clock: &ExportClock,
        out: &mut Vec<Vec<u8>>,
    ) {
        let first = self.selectors.is_empty();
        self.selectors.push(n);
        if msg.is_none() && self.refresh_due(clock) {
            self.push_templates(msg, clock, out);
            return;
        }
        let mut rec = Vec::with_capacity(128);
        if first {
            self.push_selector_templates(msg, clock, out, &mut rec);
        }
        rec.clear();
        let v = self.cfg.version;
        templates::encode_selector(v, self.cfg.observation_domain, n, &mut rec);
        self.push(msg, Place::selector(), &rec, clock, out, false);
    }

    /// The selector flow templates (263–266) and the selector options template (267).
    fn push_selector_templates(
        &mut self,
        msg: &mut Option<Msg>,
        clock: &ExportClock,
        out: &mut Vec<Vec<u8>>,
        rec: &mut Vec<u8>,
    ) {
        let v = self.cfg.version;
        for t in templates::selector_flow_templates(v) {
            emit_template(&t, v, rec);
            self.push(
                msg,
                Place::template(template_set_id(v)),
                rec,
                clock,
                out,
                false,
            );
        }
        emit_template(&templates::selector_template(v), v, rec);
        let place = Place::template(options_template_set_id(v));
        self.push(msg, place, rec, clock, out, false);
    }

    fn push_templates(
        &mut self,
        msg: &mut Option<Msg>,
        clock: &ExportClock,
        out: &mut Vec<Vec<u8>>,
    ) {
        let v = self.cfg.version;
        self.force = false;
        self.last_templates_ms = Some(clock.unix_ms);
        self.packets_since_templates = 0;
        let mut rec = Vec::with_capacity(256);
        for t in templates::flow_templates(v) {
            emit_template(&t, v, &mut rec);
            self.push(
                msg,
                Place::template(template_set_id(v)),
                &rec,
                clock,
                out,
                false,
            );
        }
        for t in templates::options_templates(v) {
            emit_template(&t, v, &mut rec);
            let place = Place::template(options_template_set_id(v));
            self.push(msg, place, &rec, clock, out, false);
        }
        if !self.selectors.is_empty() {
            self.push_selector_templates(msg, clock, out, &mut rec);
        }
        let domain = self.cfg.observation_domain;
        rec.clear();
        templates::encode_sampling(v, domain, self.cfg.sampling, &mut rec);
        self.push(msg, Place::data(OPTIONS_SAMPLING), &rec, clock, out, false);
        for i in 0..self.selectors.len() {
            rec.clear();
            templates::encode_selector(v, domain, self.selectors[i], &mut rec);
            self.push(msg, Place::selector(), &rec, clock, out, false);
        }
        let ifs = std::mem::take(&mut self.interfaces);
        for i in &ifs {
            rec.clear();
            templates::encode_interface(v, i, &mut rec);
            self.push(
                msg,
                Place::data(OPTIONS_INTERFACES),
                &rec,
                clock,
                out,
                false,
            );
        }
        self.interfaces = ifs;
        rec.clear();
        templates::encode_stats(domain, self.stats, &mut rec);
        self.push(msg, Place::data(OPTIONS_STATS), &rec, clock, out, false);
        // Count datagrams from the one holding the end of the template block, so a
        // block spanning several datagrams can't retrigger itself.
        self.packets_since_templates = 0;
    }

    fn push(
        &mut self,
        msg: &mut Option<Msg>,
        p: Place,
        rec: &[u8],
        clock: &ExportClock,
        out: &mut Vec<Vec<u8>>,
        allow_refresh: bool,
    ) {
        let max = self.cfg.max_payload;
        if msg.as_mut().is_some_and(|m| !m.fits(p, rec, max)) {
            self.flush(msg, clock, out);
        }
        if msg.is_none() && allow_refresh && self.refresh_due(clock) {
            self.push_templates(msg, clock, out);
            if msg.as_mut().is_some_and(|m| !m.fits(p, rec, max)) {
                self.flush(msg, clock, out);
            }
        }
        let pool = &mut self.pool;
        msg.get_or_insert_with(|| {
            Msg::new(
                self.cfg.version.header_len(),
                std::mem::take(&mut pool.sets),
            )
        })
        .add(p, rec, pool);
    }

    fn flush(&mut self, msg: &mut Option<Msg>, clock: &ExportClock, out: &mut Vec<Vec<u8>>) {
        let Some(m) = msg.take() else { return };
        if m.records == 0 {
            self.pool.reclaim(m);
            return;
        }
        let mut buf = self.pool.datagrams.pop().unwrap_or_default();
        m.assemble_into(&mut buf);
        let unix_secs = (clock.unix_ms / 1000) as u32;
        match self.cfg.version {
            Version::Ipfix => IpfixHeader {
                length: buf.len() as u16,
                export_time: unix_secs,
                sequence: self.data_records_sent,
                domain_id: self.cfg.observation_domain,
            }
            .emit(&mut buf),
            Version::NetflowV9 => V9Header {
                count: m.records as u16,
                sys_uptime: clock.uptime_ms as u32,
                unix_secs,
                sequence: self.packets_sent,
                source_id: self.cfg.observation_domain,
            }
            .emit(&mut buf),
        }
        self.data_records_sent = self.data_records_sent.wrapping_add(m.data_records);
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.packets_since_templates += 1;
        self.pool.reclaim(m);
        out.push(buf);
    }
}
