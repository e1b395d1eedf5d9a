//! Export-side packing: turns [`FlowRecord`]s into IPFIX messages (RFC 7011 §3) or
//! NetFlow v9 export packets (RFC 3954 §5), with the template refresh policy of
//! RFC 7011 §8.4 / RFC 3954 §9 (templates resent on a timer and every N datagrams).
//!
//! Packing rules:
//! * every datagram is at most `max_payload` bytes; a record never straddles two
//!   datagrams;
//! * within one datagram, records are grouped into one set per template (in order of
//!   first use), so the record order across templates inside a datagram is not kept
//!   (the order of records of one template is);
//! * a refresh puts, in this order, the template set, the options template set and
//!   the options data sets (sampling, interfaces, exporter statistics) at the start of
//!   a datagram; flow data follows in the same datagram when it fits;
//! * each options template goes in a set of its own: pmacct's nfacctd (1.7) steps over an
//!   options template by a length computed from the header as if it were a v9 one with
//!   byte counts, lands inside the next template or the padding, calls the set malformed
//!   and drops the rest of the datagram; with one template per set the wrong step only
//!   ends the set early. (Template sets hold many templates: there its step is right.)
//! * every set is zero-padded to a multiple of 4 bytes (RFC 3954 §5.3 "SHOULD",
//!   RFC 7011 §3.3.1 "MAY"); the padding is counted in the set length and is always
//!   shorter than the smallest record, so it can't be mistaken for one;
//! * IPFIX sequence number = data records (flow data and options data) sent before this
//!   message, mod 2^32 (RFC 7011 §3.1); v9 sequence number = export packets sent
//!   before this one, mod 2^32 (RFC 3954 §5.1); v9 `count` = every record in the packet.

use crate::error::ConfigError;
use crate::flow::{ExporterStats, FlowRecord, InterfaceInfo, Sampling};
use crate::header::{IpfixHeader, V9Header};
use crate::set::{options_template_set_id, template_set_id, SetHeader};
use crate::templates::{self, OPTIONS_INTERFACES, OPTIONS_SAMPLING, OPTIONS_STATS};
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

/// A datagram under construction: one set per set id, in order of first use, so that
/// interleaved IPv4 / IPv6 records share two data sets instead of alternating sets.
struct Msg {
    header_len: usize,
    /// (set key, set id, records bytes) per set.
    sets: Vec<(u32, u16, Vec<u8>)>,
    /// Datagram length so far, with set headers and padding.
    len: usize,
    /// All records (v9 header count).
    records: u32,
    /// Data records incl. options data (IPFIX sequence number).
    data_records: u32,
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
    fn new(header_len: usize) -> Self {
        Msg {
            header_len,
            sets: Vec::new(),
            len: header_len,
            records: 0,
            data_records: 0,
        }
    }

    /// Whether record `rec` of set `set_id` still fits within `max` bytes.
    fn fits(&self, set_id: u16, rec: &[u8], max: usize) -> bool {
        let (key, len) = (set_key(set_id, rec), rec.len());
        let grow = match self.sets.iter().find(|(k, _, _)| *k == key) {
            Some((_, _, body)) => set_size(body.len() + len) - set_size(body.len()),
            None => set_size(len),
        };
        self.len + grow <= max
    }

    fn add(&mut self, set_id: u16, rec: &[u8], data: bool) {
        let key = set_key(set_id, rec);
        match self.sets.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, _, body)) => {
                self.len += set_size(body.len() + rec.len()) - set_size(body.len());
                body.extend_from_slice(rec);
            }
            None => {
                self.len += set_size(rec.len());
                self.sets.push((key, set_id, rec.to_vec()));
            }
        }
        self.records += 1;
        if data {
            self.data_records += 1;
        }
    }

    /// Assemble the datagram; the header bytes are left zero for the caller.
    fn assemble(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.len];
        let mut pos = self.header_len;
        for (_, set_id, body) in &self.sets {
            let length = set_size(body.len());
            SetHeader {
                set_id: *set_id,
                length: length as u16,
            }
            .emit(&mut buf[pos..]);
            buf[pos + SetHeader::LEN..pos + SetHeader::LEN + body.len()].copy_from_slice(body);
            pos += length;
        }
        debug_assert_eq!(pos, buf.len());
        buf
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
        })
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
    pub fn encode(&mut self, records: &[FlowRecord], clock: ExportClock, out: &mut Vec<Vec<u8>>) {
        let mut msg = None;
        if self.refresh_due(&clock) {
            self.push_templates(&mut msg, &clock, out);
        }
        let mut rec = Vec::with_capacity(128);
        for r in records {
            rec.clear();
            let tid = templates::encode_flow(r, self.cfg.version, &clock, &mut rec);
            self.push(&mut msg, tid, &rec, true, &clock, out, true);
        }
        self.flush(&mut msg, &clock, out);
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
            rec.clear();
            rec.resize(t.buffer_len(v), 0);
            t.emit(&mut rec, v);
            self.push(msg, template_set_id(v), &rec, false, clock, out, false);
        }
        for t in templates::options_templates(v) {
            rec.clear();
            rec.resize(t.buffer_len(v), 0);
            t.emit(&mut rec, v);
            self.push(
                msg,
                options_template_set_id(v),
                &rec,
                false,
                clock,
                out,
                false,
            );
        }
        let domain = self.cfg.observation_domain;
        rec.clear();
        templates::encode_sampling(v, domain, self.cfg.sampling, &mut rec);
        self.push(msg, OPTIONS_SAMPLING, &rec, true, clock, out, false);
        let ifs = std::mem::take(&mut self.interfaces);
        for i in &ifs {
            rec.clear();
            templates::encode_interface(v, i, &mut rec);
            self.push(msg, OPTIONS_INTERFACES, &rec, true, clock, out, false);
        }
        self.interfaces = ifs;
        rec.clear();
        templates::encode_stats(domain, self.stats, &mut rec);
        self.push(msg, OPTIONS_STATS, &rec, true, clock, out, false);
        // Count datagrams from the one holding the end of the template block, so a
        // block spanning several datagrams can't retrigger itself.
        self.packets_since_templates = 0;
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        msg: &mut Option<Msg>,
        set_id: u16,
        rec: &[u8],
        data: bool,
        clock: &ExportClock,
        out: &mut Vec<Vec<u8>>,
        allow_refresh: bool,
    ) {
        let max = self.cfg.max_payload;
        if msg.as_ref().is_some_and(|m| !m.fits(set_id, rec, max)) {
            self.flush(msg, clock, out);
        }
        if msg.is_none() && allow_refresh && self.refresh_due(clock) {
            self.push_templates(msg, clock, out);
            if msg.as_ref().is_some_and(|m| !m.fits(set_id, rec, max)) {
                self.flush(msg, clock, out);
            }
        }
        msg.get_or_insert_with(|| Msg::new(self.cfg.version.header_len()))
            .add(set_id, rec, data);
    }

    fn flush(&mut self, msg: &mut Option<Msg>, clock: &ExportClock, out: &mut Vec<Vec<u8>>) {
        let Some(m) = msg.take() else { return };
        if m.records == 0 {
            return;
        }
        let mut buf = m.assemble();
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
        out.push(buf);
    }
}
