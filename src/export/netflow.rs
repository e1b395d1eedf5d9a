//! IPFIX (RFC 7011) and NetFlow v9 (RFC 3954) export over UDP: one [`NetflowSink`] per
//! collector, wrapping a `mirrorflow_ipfix::Encoder` (wire format) with a connected UDP
//! socket, a token bucket (datagrams/s) and the export clock.
//!
//! Transport rules (RFC 7011 §10.3 / RFC 3954 §2): one message per datagram, templates
//! resent on a timer and every N datagrams (the encoder's refresh policy). UDP gives no
//! back-pressure, so the sink paces itself: a collector's receive buffer overflows
//! silently. Sends and name resolution that fail are counted, never fatal; the count is
//! reported when the sink finishes.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mirrorflow_ipfix::{Encoder, EncoderConfig, ExportClock, ExporterStats, Version};

use super::{ExportError, Sink};
use crate::flow::FlowRecord;

/// Records handed to the encoder at once: bounds the datagrams held in memory per call.
const CHUNK_RECORDS: usize = 512;
/// Minimum spacing of log lines and of name-resolution retries, per collector.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// One collector stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetflowConfig {
    /// IPFIX or NetFlow v9.
    pub version: Version,
    /// Collector host name or address (IPv6 without brackets).
    pub host: String,
    /// Collector UDP port, nonzero.
    pub port: u16,
    /// IPFIX observation domain id / NetFlow v9 source id.
    pub observation_domain: u32,
    /// Resend templates after this many seconds; 0 = off.
    pub template_refresh_secs: u64,
    /// Resend templates every this many datagrams; 0 = off.
    pub template_refresh_packets: u32,
    /// Datagrams per second at most, ≥ 1.
    pub export_rate: u32,
    /// ifIndex sent when a record has no ingress interface (never 0).
    pub unknown_if_index: u32,
    /// 1-in-N packet sampling in front of the flow cache, announced in the sampling options
    /// (counts in records stay unscaled).
    pub sampling_interval: u32,
}

impl NetflowConfig {
    /// Default pacing, datagrams per second per collector. 2000 × 1400 bytes ≈ 2.8 MB/s,
    /// ≈ 34 000 IPv4 flows/s: far below what nfcapd decodes on one core, and a burst of
    /// [`burst_for`] datagrams fits the 208 KiB default socket receive buffer
    /// (`net.core.rmem_default`) that a stock nfcapd keeps.
    pub const DEFAULT_EXPORT_RATE: u32 = 2000;
    /// Default ifIndex for records whose interface is unknown (ifIndex 0 means "unknown"
    /// to some collectors and is rejected by others).
    pub const DEFAULT_UNKNOWN_IF_INDEX: u32 = 1;

    /// Defaults for `version` towards `host:port`.
    pub fn new(version: Version, host: impl Into<String>, port: u16) -> Self {
        NetflowConfig {
            version,
            host: host.into(),
            port,
            observation_domain: 1,
            template_refresh_secs: 60,
            template_refresh_packets: 100,
            export_rate: Self::DEFAULT_EXPORT_RATE,
            unknown_if_index: Self::DEFAULT_UNKNOWN_IF_INDEX,
            sampling_interval: 1,
        }
    }

    /// `ipfix:HOST:PORT` or `netflow-v9:HOST:PORT` (IPv6 hosts in brackets).
    pub fn name(&self) -> String {
        let proto = match self.version {
            Version::Ipfix => "ipfix",
            Version::NetflowV9 => "netflow-v9",
        };
        if self.host.contains(':') {
            format!("{proto}:[{}]:{}", self.host, self.port)
        } else {
            format!("{proto}:{}:{}", self.host, self.port)
        }
    }
}

/// Burst size of the token bucket: 20 ms worth of datagrams, 1..=64.
pub fn burst_for(rate: u32) -> u32 {
    (rate / 50).clamp(1, 64)
}

/// Token bucket in datagrams; [`TokenBucket::take`] sleeps at most `1 / rate` per wait,
/// so a sink thread stuck here still drains its (bounded) queue and exits.
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: u32) -> Self {
        let burst = f64::from(burst_for(rate));
        TokenBucket {
            rate: f64::from(rate.max(1)),
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
    }

    /// Waits for one token and spends it.
    fn take(&mut self) {
        self.refill();
        while self.tokens < 1.0 {
            std::thread::sleep(Duration::from_secs_f64((1.0 - self.tokens) / self.rate));
            self.refill();
        }
        self.tokens -= 1.0;
    }
}

/// Export clock: wall time for `unix_ms`, an `Instant` for the uptime.
///
/// Both are moved back to the last whole wall-clock second: the headers carry whole
/// seconds (RFC 7011 §3.1 Export Time, RFC 3954 §5.1 UNIX Secs), and a collector
/// rebuilds NetFlow v9 times as `unix_secs * 1000 - sysUptime + FIRST_SWITCHED`, so a
/// fractional `unix_ms` would shift every v9 time by up to 999 ms. The uptime counts from
/// the whole second before sink creation, so it never goes below that shift.
#[derive(Debug)]
struct Clock {
    start: Instant,
    /// Milliseconds from the uptime origin to `start` (creation time mod 1000).
    offset_ms: u64,
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Clock {
    fn new() -> Self {
        Clock {
            start: Instant::now(),
            offset_ms: unix_ms_now() % 1000,
        }
    }

    fn now(&self) -> ExportClock {
        let unix_ms = unix_ms_now();
        let frac = unix_ms % 1000;
        let uptime_ms = self.start.elapsed().as_millis() as u64 + self.offset_ms;
        ExportClock {
            unix_ms: unix_ms - frac,
            uptime_ms: uptime_ms.saturating_sub(frac),
        }
    }
}

/// At most one log line per [`LOG_INTERVAL`]; counts the lines it held back.
#[derive(Debug, Default)]
struct LogLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    fn log(&mut self, sink: &str, msg: &str) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < LOG_INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        self.last = Some(now);
        if self.suppressed > 0 {
            eprintln!(
                "mirrorflow: {sink}: {msg} ({} similar messages suppressed)",
                self.suppressed
            );
            self.suppressed = 0;
        } else {
            eprintln!("mirrorflow: {sink}: {msg}");
        }
    }
}

/// What a sink has sent, for reports and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetflowCounters {
    /// Datagrams the encoder produced.
    pub datagrams: u64,
    /// Flow records encoded.
    pub records: u64,
    /// Datagrams not sent (no socket / send error).
    pub send_errors: u64,
    /// Failed name resolutions / socket setups.
    pub resolve_errors: u64,
    /// ICMP port-unreachable reports (a lower bound of datagrams the collector host
    /// dropped: the kernel keeps one pending error).
    pub unreachable: u64,
}

/// Sends flow records to one IPFIX or NetFlow v9 collector over UDP.
pub struct NetflowSink {
    name: String,
    cfg: NetflowConfig,
    encoder: Encoder,
    socket: Option<UdpSocket>,
    /// Last connect attempt (resolution retries are spaced by [`LOG_INTERVAL`]).
    last_connect: Option<Instant>,
    bucket: TokenBucket,
    clock: Clock,
    log: LogLimiter,
    counters: NetflowCounters,
    last_error: Option<String>,
    /// Scratch: converted records and encoded datagrams.
    recs: Vec<mirrorflow_ipfix::FlowRecord>,
    out: Vec<Vec<u8>>,
}

impl NetflowSink {
    /// Builds the encoder and tries to connect. A host that does not resolve is logged
    /// (one line) and retried at most once a second; only a bad encoder setup fails.
    pub fn new(cfg: NetflowConfig) -> Result<NetflowSink, ExportError> {
        let name = cfg.name();
        let enc_cfg = EncoderConfig {
            observation_domain: cfg.observation_domain,
            template_refresh_ms: cfg.template_refresh_secs.saturating_mul(1000),
            template_refresh_packets: cfg.template_refresh_packets,
            sampling: mirrorflow_ipfix::Sampling {
                interval: cfg.sampling_interval.max(1),
            },
            ..EncoderConfig::new(cfg.version)
        };
        let encoder = Encoder::new(enc_cfg).map_err(|e| ExportError::Io {
            sink: name.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, e),
        })?;
        let mut sink = NetflowSink {
            name,
            bucket: TokenBucket::new(cfg.export_rate),
            cfg,
            encoder,
            socket: None,
            last_connect: None,
            clock: Clock::new(),
            log: LogLimiter::default(),
            counters: NetflowCounters::default(),
            last_error: None,
            recs: Vec::with_capacity(CHUNK_RECORDS),
            out: Vec::new(),
        };
        sink.connect();
        Ok(sink)
    }

    /// Counters so far.
    pub fn counters(&self) -> NetflowCounters {
        self.counters
    }

    fn open(&self) -> io::Result<UdpSocket> {
        let addrs: Vec<SocketAddr> = (self.cfg.host.as_str(), self.cfg.port)
            .to_socket_addrs()?
            .collect();
        let mut last = io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} resolves to no address", self.cfg.host),
        );
        for addr in addrs {
            let local: SocketAddr = if addr.is_ipv6() {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            };
            match UdpSocket::bind(local).and_then(|s| s.connect(addr).map(|()| s)) {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// (Re)connects unless a socket exists or the last try was under a second ago.
    fn connect(&mut self) {
        if self.socket.is_some()
            || self
                .last_connect
                .is_some_and(|t| t.elapsed() < LOG_INTERVAL)
        {
            return;
        }
        self.last_connect = Some(Instant::now());
        match self.open() {
            Ok(s) => self.socket = Some(s),
            Err(e) => {
                self.counters.resolve_errors += 1;
                let msg = format!("cannot reach {}:{}: {e}", self.cfg.host, self.cfg.port);
                self.log.log(&self.name, &msg);
                self.last_error = Some(msg);
            }
        }
    }

    /// Encodes one chunk (≤ [`CHUNK_RECORDS`]) and sends its datagrams, paced.
    fn send_chunk(&mut self, records: &[FlowRecord]) {
        self.recs.clear();
        let unknown_if = self.cfg.unknown_if_index;
        self.recs
            .extend(records.iter().map(|r| to_wire(r, unknown_if)));
        self.encoder.set_stats(ExporterStats {
            messages: self.counters.datagrams,
            records: self.counters.records,
            ignored_packets: 0,
        });
        self.out.clear();
        self.encoder
            .encode(&self.recs, self.clock.now(), &mut self.out);
        self.counters.records += self.recs.len() as u64;
        self.counters.datagrams += self.out.len() as u64;
        let out = std::mem::take(&mut self.out);
        for d in &out {
            self.bucket.take();
            self.send(d);
        }
        self.out = out;
    }

    fn send(&mut self, datagram: &[u8]) {
        self.connect();
        let Some(sock) = &self.socket else {
            self.counters.send_errors += 1;
            return;
        };
        let mut sent = sock.send(datagram);
        if matches!(&sent, Err(e) if e.kind() == io::ErrorKind::ConnectionRefused) {
            // An ICMP port unreachable for an earlier datagram (connected UDP socket);
            // this one was not sent yet: count the report, try once more.
            self.counters.unreachable += 1;
            let msg = "collector port unreachable (ICMP); nothing listening?".to_string();
            self.log.log(&self.name, &msg);
            self.last_error = Some(msg);
            sent = sock.send(datagram);
        }
        if let Err(e) = sent {
            self.counters.send_errors += 1;
            let msg = format!("send: {e}");
            self.log.log(&self.name, &msg);
            self.last_error = Some(msg);
        }
    }
}

/// The probe's record in the exporter's terms (RFC 7012 information elements): times
/// ns → ms, ICMP type/code (carried as the destination port) moved to
/// icmpTypeCode{IPv4,IPv6} with ports 0, missing ifIndex replaced by `unknown_if`.
pub fn to_wire(r: &FlowRecord, unknown_if: u32) -> mirrorflow_ipfix::FlowRecord {
    let (k, s) = (&r.key, &r.stats);
    let icmp = matches!(k.protocol, 1 | 58);
    let unknown_if = unknown_if.max(1);
    mirrorflow_ipfix::FlowRecord {
        src_addr: k.src_ip(),
        dst_addr: k.dst_ip(),
        src_port: if icmp { 0 } else { k.src_port },
        dst_port: if icmp { 0 } else { k.dst_port },
        protocol: k.protocol,
        octets: s.bytes,
        packets: s.packets,
        start_ms: s.start_ns / 1_000_000,
        end_ms: s.end_ns / 1_000_000,
        tcp_flags: s.tcp_flags,
        icmp_type_code: if icmp { k.dst_port } else { 0 },
        tos: s.tos,
        min_ttl: s.min_ttl,
        max_ttl: s.max_ttl,
        src_mac: s.src_mac,
        dst_mac: s.dst_mac,
        vlan_id: k.vlan_id,
        ingress_if: if k.in_if != 0 { k.in_if } else { unknown_if },
        egress_if: unknown_if,
        direction: 0,
        end_reason: r.end_reason as u8,
        layer2_segment_id: k.tunnel_id().map(u64::from),
    }
}

impl Sink for NetflowSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    /// Never fails: send errors are counted and reported by [`Sink::finish`].
    fn flows(&mut self, records: &[FlowRecord]) -> Result<(), ExportError> {
        for chunk in records.chunks(CHUNK_RECORDS) {
            self.send_chunk(chunk);
        }
        Ok(())
    }

    /// Fails if any datagram could not be sent or was reported unreachable, with the
    /// counts and the last error.
    fn finish(&mut self) -> Result<(), ExportError> {
        let c = self.counters;
        if c.send_errors == 0 && c.unreachable == 0 {
            return Ok(());
        }
        let last = self.last_error.as_deref().unwrap_or("unknown error");
        Err(ExportError::Io {
            sink: self.name.clone(),
            source: io::Error::other(format!(
                "{} of {} datagrams not sent, {} port-unreachable reports (last error: {last})",
                c.send_errors, c.datagrams, c.unreachable
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{EndReason, FlowKey, FlowStats};

    fn record(protocol: u8, dst_port: u16, in_if: u32) -> FlowRecord {
        let mut key = FlowKey::default();
        (key.protocol, key.src_port, key.dst_port) = (protocol, 1234, dst_port);
        (key.in_if, key.vlan_id) = (in_if, 7);
        key.src_addr[..4].copy_from_slice(&[10, 0, 0, 1]);
        key.dst_addr[..4].copy_from_slice(&[10, 0, 0, 2]);
        FlowRecord {
            key,
            stats: FlowStats {
                packets: 3,
                bytes: 300,
                start_ns: 1_600_000_000_123_999_999,
                end_ns: 1_600_000_001_000_000_000,
                tos: 0xb8,
                ..FlowStats::default()
            },
            end_reason: EndReason::Idle,
        }
    }

    #[test]
    fn converts_times_ports_and_interfaces() {
        let w = to_wire(&record(17, 53, 0), 1);
        assert_eq!((w.src_port, w.dst_port, w.icmp_type_code), (1234, 53, 0));
        assert_eq!(
            (w.start_ms, w.end_ms),
            (1_600_000_000_123, 1_600_000_001_000)
        );
        assert_eq!((w.ingress_if, w.egress_if), (1, 1));
        assert_eq!((w.tos, w.vlan_id, w.end_reason), (0xb8, 7, 1));
        assert_eq!(w.layer2_segment_id, None);
        let icmp = to_wire(&record(1, 0x0800, 5), 0);
        assert_eq!(
            (icmp.src_port, icmp.dst_port, icmp.icmp_type_code),
            (0, 0, 0x0800)
        );
        assert_eq!((icmp.ingress_if, icmp.egress_if), (5, 1));
    }

    #[test]
    fn clock_is_on_whole_seconds() {
        let c = Clock::new();
        for _ in 0..3 {
            let t = c.now();
            assert_eq!(t.unix_ms % 1000, 0);
            assert!(t.uptime_ms < 2000, "{t:?}");
        }
    }

    #[test]
    fn bucket_paces_after_the_burst() {
        let mut b = TokenBucket::new(1000);
        let t0 = Instant::now();
        for _ in 0..(burst_for(1000) + 20) {
            b.take();
        }
        // 20 datagrams beyond the burst at 1000/s: about 20 ms.
        assert!(
            t0.elapsed() >= Duration::from_millis(15),
            "{:?}",
            t0.elapsed()
        );
    }

    #[test]
    fn send_errors_are_counted_not_fatal() {
        // A port with nobody listening: the kernel's ICMP port unreachable makes a later
        // send on the connected socket fail with ECONNREFUSED, counted and retried.
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let mut cfg = NetflowConfig::new(Version::Ipfix, "127.0.0.1", port);
        cfg.export_rate = 100_000;
        let mut sink = NetflowSink::new(cfg).unwrap();
        let recs = vec![record(17, 53, 0); 100];
        for _ in 0..5 {
            sink.flows(&recs).unwrap();
        }
        let c = sink.counters();
        assert_eq!(c.records, 500);
        assert!(c.datagrams >= 30, "{c:?}");
        assert!(c.unreachable > 0, "{c:?}");
        assert!(sink.finish().is_err());
    }

    #[test]
    fn unresolvable_host_is_counted() {
        let cfg = NetflowConfig::new(Version::NetflowV9, "no-such-host.invalid", 2055);
        let mut sink = NetflowSink::new(cfg).unwrap();
        sink.flows(&[record(6, 80, 0)]).unwrap();
        let c = sink.counters();
        assert_eq!(c.resolve_errors, 1);
        assert_eq!(c.send_errors, c.datagrams);
        let e = sink.finish().unwrap_err().to_string();
        assert!(
            e.starts_with("netflow-v9:no-such-host.invalid:2055: "),
            "{e}"
        );
    }
}
