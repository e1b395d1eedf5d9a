//! IPFIX (RFC 7011) and NetFlow v9 (RFC 3954) export: one [`NetflowSink`] per collector,
//! wrapping a `mirrorflow_ipfix::Encoder` (wire format) with a transport and the export
//! clock.
//!
//! * UDP ([`udp`], RFC 7011 §10.3 / RFC 3954 §2): one message per datagram, templates
//!   resent on a timer and every N datagrams (the encoder's refresh policy). UDP gives no
//!   back-pressure, so the sink paces itself ([`pacing`]): a collector's receive buffer
//!   overflows silently.
//! * TCP, IPFIX only ([`tcp`], RFC 7011 §10.4): messages back to back on one connection;
//!   every new connection starts a new encoder (templates first, sequence numbers from 0);
//!   no periodic refresh and no pacing (TCP has flow control). While no connection can be
//!   made, records are dropped and counted.
//!
//! Failures (resolution, refused connections, sends) are counted and logged at a bounded
//! rate, never fatal; [`Sink::finish`] reports them, which makes the run exit with 1.

mod clock;
// Shared with the sFlow sink (src/export/udp.rs).
pub(super) mod log;
pub(super) mod pacing;
mod tcp;
mod udp;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use mirrorflow_ipfix::{Encoder, EncoderConfig, ExporterStats, InterfaceInfo, Version};

use super::{ExportError, Sink};
use crate::flow::FlowRecord;
use crate::pipeline::SourceSpec;
use crate::ports::{PortDirectory, PortMap};
use clock::Clock;
use log::LogLimiter;
use tcp::{Link, TcpTransport};
use udp::UdpTransport;

/// Records handed to the encoder at once over UDP: bounds the datagrams held in memory per
/// call, and is long enough for runs of full datagrams (segmentation offload).
const CHUNK_RECORDS: usize = 4096;
/// The same over TCP, where a chunk is one write and a failed write drops the whole chunk.
const TCP_CHUNK_RECORDS: usize = 512;

/// Transport of an IPFIX stream (NetFlow v9 is always UDP).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum IpfixTransport {
    /// One message per datagram, paced by `--export-rate`, templates refreshed.
    #[default]
    Udp,
    /// A connection per collector with reconnection; templates once per connection.
    Tcp,
}

/// One collector stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetflowConfig {
    /// IPFIX or NetFlow v9.
    pub version: Version,
    /// UDP or TCP (IPFIX only; NetFlow v9 ignores it and uses UDP).
    pub transport: IpfixTransport,
    /// Collector host name or address (IPv6 without brackets).
    pub host: String,
    /// Collector port, nonzero.
    pub port: u16,
    /// IPFIX observation domain id / NetFlow v9 source id.
    pub observation_domain: u32,
    /// Resend templates after this many seconds; 0 = off (UDP only).
    pub template_refresh_secs: u64,
    /// Resend templates every this many datagrams; 0 = off (UDP only).
    pub template_refresh_packets: u32,
    /// Datagrams per second at most, ≥ 1 (UDP only).
    pub export_rate: u32,
    /// Most payload bytes per datagram (UDP) or message (TCP).
    pub max_datagram: usize,
    /// ifIndex sent when a record has no ingress interface (never 0).
    pub unknown_if_index: u32,
    /// 1-in-N packet sampling in front of the flow cache, announced in the sampling options
    /// (counts in records stay unscaled).
    pub sampling_interval: u32,
    /// Capture interfaces, described in the interface options data.
    pub interfaces: Vec<InterfaceInfo>,
    /// UDP segmentation offload: runs of equal-length datagrams in one send (UDP only).
    pub gso: bool,
}

impl NetflowConfig {
    /// Default pacing, datagrams per second per collector. 2000 × 1400 bytes ≈ 2.8 MB/s,
    /// ≈ 34 000 IPv4 flows/s: far below what nfcapd decodes on one core, and a burst of
    /// [`pacing::burst_for`] datagrams fits the 208 KiB default socket receive buffer
    /// (`net.core.rmem_default`) that a stock nfcapd keeps.
    pub const DEFAULT_EXPORT_RATE: u32 = 2000;
    /// Default payload bytes per datagram: fits a 1500-byte MTU with IPv6 and UDP headers
    /// and room for a tunnel on the way.
    pub const DEFAULT_MAX_DATAGRAM: usize = 1400;
    /// Largest payload of a UDP datagram over IPv4 (65 535 − 20 − 8).
    pub const MAX_DATAGRAM: usize = 65_507;
    /// Default ifIndex for records whose interface is unknown (ifIndex 0 means "unknown"
    /// to some collectors and is rejected by others).
    pub const DEFAULT_UNKNOWN_IF_INDEX: u32 = 1;

    /// Defaults for `version` towards `host:port` over UDP.
    pub fn new(version: Version, host: impl Into<String>, port: u16) -> Self {
        NetflowConfig {
            version,
            transport: IpfixTransport::Udp,
            host: host.into(),
            port,
            observation_domain: 1,
            template_refresh_secs: 60,
            template_refresh_packets: 100,
            export_rate: Self::DEFAULT_EXPORT_RATE,
            max_datagram: Self::DEFAULT_MAX_DATAGRAM,
            unknown_if_index: Self::DEFAULT_UNKNOWN_IF_INDEX,
            sampling_interval: 1,
            interfaces: Vec::new(),
            gso: false,
        }
    }

    /// Whether this stream runs over TCP.
    pub fn is_tcp(&self) -> bool {
        self.version == Version::Ipfix && self.transport == IpfixTransport::Tcp
    }

    /// `ipfix:HOST:PORT`, `ipfix-tcp:HOST:PORT` or `netflow-v9:HOST:PORT` (IPv6 hosts in
    /// brackets).
    pub fn name(&self) -> String {
        let proto = match (self.version, self.is_tcp()) {
            (Version::Ipfix, false) => "ipfix",
            (Version::Ipfix, true) => "ipfix-tcp",
            (Version::NetflowV9, _) => "netflow-v9",
        };
        if self.host.contains(':') {
            format!("{proto}:[{}]:{}", self.host, self.port)
        } else {
            format!("{proto}:{}:{}", self.host, self.port)
        }
    }
}

/// The interfaces described in the interface options: live capture, each interface with its
/// OS ifIndex; a file, index 1 named after the file (records of a classic pcap file carry
/// no interface and are sent with `--unknown-if-index`, 1 by default).
pub fn capture_interfaces(source: &SourceSpec) -> Vec<InterfaceInfo> {
    match source {
        SourceSpec::Live(names) => names
            .iter()
            .filter_map(|n| {
                Some(InterfaceInfo {
                    index: crate::capture::ifindex(n)?,
                    name: n.clone(),
                    description: format!("mirrorflow live capture on {n}"),
                })
            })
            .collect(),
        SourceSpec::File(path) => vec![InterfaceInfo {
            index: 1,
            name: path
                .file_name()
                .unwrap_or(path.as_os_str())
                .to_string_lossy()
                .into_owned(),
            description: format!("capture file {}", path.display()),
        }],
    }
}

/// The interface options: the capture interfaces, then every port of the port map (name;
/// description = the VM id, or "switch port" when it has none) whose index is not a capture
/// interface's. The map holds at most [`crate::ports::MAX_PORTS`] ports.
pub fn interfaces_with_ports(capture: &[InterfaceInfo], map: &PortMap) -> Vec<InterfaceInfo> {
    let mut ifs = capture.to_vec();
    for p in map.ports() {
        if capture.iter().any(|c| c.index == p.index) {
            continue;
        }
        ifs.push(InterfaceInfo {
            index: p.index,
            name: p.name.clone(),
            description: p.vm.clone().unwrap_or_else(|| "switch port".to_string()),
        });
    }
    ifs
}

/// What a sink has sent, for reports and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetflowCounters {
    /// Datagrams (messages) the encoder produced.
    pub datagrams: u64,
    /// Flow records encoded.
    pub records: u64,
    /// Datagrams not sent (no socket / send error); TCP: failed writes.
    pub send_errors: u64,
    /// Failed name resolutions / socket setups (UDP).
    pub resolve_errors: u64,
    /// ICMP port-unreachable reports (UDP; a lower bound of datagrams the collector host
    /// dropped: the kernel keeps one pending error).
    pub unreachable: u64,
    /// TCP: connections made.
    pub connections: u64,
    /// TCP: failed connection attempts.
    pub connect_errors: u64,
    /// TCP: records dropped while disconnected or in a failed write.
    pub records_dropped: u64,
    /// Records handed to the sink.
    pub records_offered: u64,
    /// Records (from sFlow) whose sampling rate was not announced: the encoder announces at
    /// most `MAX_SELECTORS` distinct rates per stream.
    pub selectors_over_cap: u64,
}

/// Counters and fault reporting of one sink, shared with its transport.
#[derive(Debug)]
struct Status {
    name: String,
    counters: NetflowCounters,
    log: LogLimiter,
    last_error: Option<String>,
}

impl Status {
    #[cfg(test)]
    fn for_tests() -> Status {
        Status {
            name: "test".into(),
            counters: NetflowCounters::default(),
            log: LogLimiter::default(),
            last_error: None,
        }
    }

    /// Logs `msg` (rate-limited) and keeps it as the last error.
    fn fault(&mut self, msg: String) {
        self.log.log(&self.name, &msg);
        self.last_error = Some(msg);
    }
}

/// The addresses of `host:port`; an error when there are none.
fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} resolves to no address"),
        ));
    }
    Ok(addrs)
}

enum Transport {
    Udp(UdpTransport),
    Tcp(TcpTransport),
}

/// Sends flow records to one IPFIX or NetFlow v9 collector.
pub struct NetflowSink {
    cfg: NetflowConfig,
    enc_cfg: EncoderConfig,
    encoder: Encoder,
    transport: Transport,
    clock: Clock,
    status: Status,
    /// Scratch: converted records, encoded datagrams, TCP stream bytes.
    recs: Vec<mirrorflow_ipfix::FlowRecord>,
    out: Vec<Vec<u8>>,
    stream: Vec<u8>,
    /// The port map whose ports the interface options describe, and the generation of it
    /// the encoder has.
    ports: Option<(PortDirectory, u64)>,
    /// The current encoder's `selectors_over_cap` already counted.
    over_cap_seen: u64,
}

impl NetflowSink {
    /// Builds the encoder and tries to connect. A collector that does not resolve or
    /// refuses is logged (one line) and retried later; only a bad encoder setup fails.
    pub fn new(cfg: NetflowConfig) -> Result<NetflowSink, ExportError> {
        let name = cfg.name();
        let tcp = cfg.is_tcp();
        let enc_cfg = EncoderConfig {
            observation_domain: cfg.observation_domain,
            // Over TCP templates go once per connection (RFC 7011 §8.4 refreshes are UDP).
            template_refresh_ms: if tcp {
                0
            } else {
                cfg.template_refresh_secs.saturating_mul(1000)
            },
            template_refresh_packets: if tcp { 0 } else { cfg.template_refresh_packets },
            sampling: mirrorflow_ipfix::Sampling {
                interval: cfg.sampling_interval.max(1),
            },
            max_payload: cfg.max_datagram,
            ..EncoderConfig::new(cfg.version)
        };
        let mut encoder = Encoder::new(enc_cfg.clone()).map_err(|e| ExportError::Io {
            sink: name.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, e),
        })?;
        encoder.set_interfaces(cfg.interfaces.clone());
        let transport = if tcp {
            Transport::Tcp(TcpTransport::new(&cfg.host, cfg.port))
        } else {
            Transport::Udp(UdpTransport::new(
                &cfg.host,
                cfg.port,
                cfg.export_rate,
                cfg.gso,
            ))
        };
        let mut sink = NetflowSink {
            enc_cfg,
            encoder,
            transport,
            clock: Clock::new(),
            status: Status {
                name,
                counters: NetflowCounters::default(),
                log: LogLimiter::default(),
                last_error: None,
            },
            recs: Vec::with_capacity(CHUNK_RECORDS),
            out: Vec::new(),
            stream: Vec::new(),
            ports: None,
            over_cap_seen: 0,
            cfg,
        };
        match &mut sink.transport {
            Transport::Udp(u) => u.connect(&mut sink.status),
            Transport::Tcp(t) => {
                t.link(&mut sink.status);
            }
        }
        Ok(sink)
    }

    /// Describes the ports of `ports` (when given) in the interface options too, following
    /// its changes: a new map is picked up before the next batch is encoded and so goes out
    /// with the next template refresh.
    pub fn with_ports(mut self, ports: Option<&PortDirectory>) -> NetflowSink {
        // Generation 0 is never published: the first batch sets the interfaces.
        self.ports = ports.map(|d| (d.clone(), 0));
        self
    }

    /// The interfaces to describe now: the capture interfaces and the current map's ports.
    fn interfaces(&self) -> Vec<InterfaceInfo> {
        match &self.ports {
            Some((dir, _)) => interfaces_with_ports(&self.cfg.interfaces, &dir.current()),
            None => self.cfg.interfaces.clone(),
        }
    }

    /// Hands the encoder the current map's ports when the map has changed.
    fn follow_ports(&mut self) {
        let Some((dir, seen)) = &self.ports else {
            return;
        };
        let g = dir.generation();
        if g != *seen {
            let ifs = self.interfaces();
            self.encoder.set_interfaces(ifs);
            if let Some((_, seen)) = &mut self.ports {
                *seen = g;
            }
        }
    }

    /// Counters so far.
    pub fn counters(&self) -> NetflowCounters {
        self.status.counters
    }

    /// A fresh encoder for a new Transport Session: templates first, sequence from 0.
    fn restart_encoder(&mut self) {
        if let Ok(mut e) = Encoder::new(self.enc_cfg.clone()) {
            e.set_interfaces(self.interfaces());
            self.encoder = e;
            self.over_cap_seen = 0;
        }
    }

    /// Counts (and logs, rate-limited) the records the encoder sent with a sampling rate it
    /// could not announce.
    fn count_selectors_over_cap(&mut self) {
        let over = self.encoder.selectors_over_cap();
        if over > self.over_cap_seen {
            self.status.counters.selectors_over_cap += over - self.over_cap_seen;
            self.over_cap_seen = over;
            let msg = format!(
                "{} records from sFlow sent without their sampling rate announced (at most {} \
                 rates per stream); collectors cannot renormalize them",
                self.status.counters.selectors_over_cap,
                mirrorflow_ipfix::encoder::MAX_SELECTORS
            );
            self.status.log.log(&self.status.name, &msg);
        }
    }

    /// Encodes one chunk (≤ [`CHUNK_RECORDS`] / [`TCP_CHUNK_RECORDS`]) and sends it: UDP
    /// paced (by datagram, or by run with segmentation offload), TCP in one write.
    fn send_chunk(&mut self, records: &[FlowRecord]) {
        self.status.counters.records_offered += records.len() as u64;
        if let Transport::Tcp(t) = &mut self.transport {
            match t.link(&mut self.status) {
                Link::Down => {
                    self.status.counters.records_dropped += records.len() as u64;
                    return;
                }
                Link::New => self.restart_encoder(),
                Link::Up => {}
            }
        }
        self.follow_ports();
        self.recs.clear();
        let (unknown_if, domain) = (self.cfg.unknown_if_index, self.cfg.sampling_interval);
        self.recs
            .extend(records.iter().map(|r| to_wire(r, unknown_if, domain)));
        let c = &mut self.status.counters;
        self.encoder.set_stats(ExporterStats {
            messages: c.datagrams,
            records: c.records,
            ignored_packets: 0,
        });
        self.encoder.recycle(&mut self.out);
        self.encoder
            .encode(&self.recs, self.clock.now(), &mut self.out);
        c.records += self.recs.len() as u64;
        c.datagrams += self.out.len() as u64;
        self.count_selectors_over_cap();
        match &mut self.transport {
            Transport::Udp(u) => u.send_all(&self.out, &mut self.status),
            Transport::Tcp(t) => {
                self.stream.clear();
                for d in &self.out {
                    self.stream.extend_from_slice(d);
                }
                if !t.write(&self.stream, &mut self.status) {
                    self.status.counters.records_dropped += records.len() as u64;
                }
            }
        }
    }
}

/// The probe's record in the exporter's terms (RFC 7012 information elements): times
/// ns → ms, ICMP type/code (carried as the destination port) moved to
/// icmpTypeCode{IPv4,IPv6} with ports 0, missing ifIndex replaced by `unknown_if`.
///
/// A record built from sFlow ([`FlowRecord::origin`]) takes its interfaces from the samples
/// (input / output ifIndex; 0 there means unknown) and its sampling from the agent: 1 in
/// `sampling_rate`, or 1 when `--sflow-in-scale` already multiplied its counts. When that
/// differs from `domain_sampling` (the stream's announced `--flow-sampling`) the record
/// carries it (`sampling`), so it goes out with a selector template and its rate announced;
/// otherwise the plain templates and the domain's rate describe it. A scaled record thus
/// never carries a rate: a renormalizing collector would scale it twice.
pub fn to_wire(
    r: &FlowRecord,
    unknown_if: u32,
    domain_sampling: u32,
) -> mirrorflow_ipfix::FlowRecord {
    let (k, s) = (&r.key, &r.stats);
    let icmp = matches!(k.protocol, 1 | 58);
    let unknown_if = unknown_if.max(1);
    let known = |i: u32| if i != 0 { i } else { unknown_if };
    let (ingress_if, egress_if) = r.interfaces();
    let (ingress_if, egress_if) = (known(ingress_if), known(egress_if));
    let sampling = r.origin.and_then(|o| {
        let rate = if o.scaled { 1 } else { o.sampling_rate.max(1) };
        (rate != domain_sampling.max(1)).then_some(rate)
    });
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
        ingress_if,
        egress_if,
        direction: 0,
        end_reason: r.end_reason as u8,
        layer2_segment_id: k.tunnel_id().map(u64::from),
        sampling,
    }
}

impl Sink for NetflowSink {
    fn name(&self) -> String {
        self.status.name.clone()
    }

    /// For metrics (src/metrics): what this exporter counts.
    fn export_counters(&self) -> Option<super::ExportCounters> {
        let c = &self.status.counters;
        let tcp = matches!(self.transport, Transport::Tcp(_));
        Some(super::ExportCounters {
            messages: Some(c.datagrams),
            records: Some(c.records),
            send_errors: Some(c.send_errors),
            unreachable: (!tcp).then_some(c.unreachable),
            connections: tcp.then_some(c.connections),
            connect_errors: Some(c.resolve_errors + c.connect_errors),
            ..super::ExportCounters::default()
        })
    }

    /// Never fails: send errors are counted and reported by [`Sink::finish`].
    fn flows(&mut self, records: &[FlowRecord]) -> Result<(), ExportError> {
        let n = match self.transport {
            Transport::Udp(_) => CHUNK_RECORDS,
            Transport::Tcp(_) => TCP_CHUNK_RECORDS,
        };
        for chunk in records.chunks(n) {
            self.send_chunk(chunk);
        }
        Ok(())
    }

    /// Closes a TCP connection in order; fails if anything could not be sent (UDP: send
    /// errors or port-unreachable reports; TCP: records dropped), with the counts and the
    /// last error.
    fn finish(&mut self) -> Result<(), ExportError> {
        let c = self.status.counters;
        let last = self
            .status
            .last_error
            .clone()
            .unwrap_or_else(|| "unknown error".into());
        let message = match &mut self.transport {
            Transport::Udp(_) if c.send_errors == 0 && c.unreachable == 0 => return Ok(()),
            Transport::Udp(_) => format!(
                "{} of {} datagrams not sent, {} port-unreachable reports (last error: {last})",
                c.send_errors, c.datagrams, c.unreachable
            ),
            Transport::Tcp(t) => {
                t.close();
                if c.records_dropped == 0 && c.send_errors == 0 {
                    return Ok(());
                }
                format!(
                    "{} of {} records not sent ({} connections, {} failed connection \
                     attempts, {} failed writes; last error: {last})",
                    c.records_dropped,
                    c.records_offered,
                    c.connections,
                    c.connect_errors,
                    c.send_errors
                )
            }
        };
        Err(ExportError::Io {
            sink: self.status.name.clone(),
            source: io::Error::other(message),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{EndReason, FlowKey, FlowStats};
    use crate::sflow_in::Origin;
    use std::io::Read;
    use std::net::{TcpListener, UdpSocket};
    use std::time::Duration;

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
            out_if: 0,
            origin: None,
        }
    }

    #[test]
    fn converts_times_ports_and_interfaces() {
        let w = to_wire(&record(17, 53, 0), 1, 1);
        assert_eq!((w.src_port, w.dst_port, w.icmp_type_code), (1234, 53, 0));
        assert_eq!(
            (w.start_ms, w.end_ms),
            (1_600_000_000_123, 1_600_000_001_000)
        );
        assert_eq!((w.ingress_if, w.egress_if), (1, 1));
        assert_eq!((w.tos, w.vlan_id, w.end_reason), (0xb8, 7, 1));
        assert_eq!(w.layer2_segment_id, None);
        let icmp = to_wire(&record(1, 0x0800, 5), 0, 1);
        assert_eq!(
            (icmp.src_port, icmp.dst_port, icmp.icmp_type_code),
            (0, 0, 0x0800)
        );
        assert_eq!((icmp.ingress_if, icmp.egress_if), (5, 1));
        assert_eq!(to_wire(&record(6, 80, 0), 7, 1).ingress_if, 7);
        assert_eq!(
            w.sampling, None,
            "captured records use the domain's sampling"
        );
    }

    fn origin(rate: u32, scaled: bool, input: u32, output: u32) -> &'static Origin {
        Box::leak(Box::new(Origin {
            agent: "192.0.2.1".parse().unwrap(),
            sub_agent: 0,
            source_type: 0,
            source_index: input,
            input,
            output,
            sampling_rate: rate,
            scaled,
        }))
    }

    /// A record built from sFlow: the flow key's interface holds the origin id.
    fn sflow_record(o: Option<&'static Origin>) -> FlowRecord {
        let mut r = record(17, 53, crate::flow::ORIGIN_BIT | 5);
        r.origin = o;
        r
    }

    #[test]
    fn sflow_records_take_interfaces_and_rate_from_their_origin() {
        let w = to_wire(&sflow_record(Some(origin(100, false, 3, 4))), 1, 1);
        assert_eq!((w.ingress_if, w.egress_if, w.sampling), (3, 4, Some(100)));
        // Unknown ports: the unknown index, never 0 nor the origin id.
        let w = to_wire(&sflow_record(Some(origin(100, false, 0, 0))), 9, 1);
        assert_eq!((w.ingress_if, w.egress_if), (9, 9));
        let w = to_wire(&sflow_record(None), 9, 1);
        assert_eq!((w.ingress_if, w.egress_if, w.sampling), (9, 9, None));
        // Scaled counts are estimates: no rate announced (a collector would scale twice).
        let w = to_wire(&sflow_record(Some(origin(100, true, 3, 4))), 1, 1);
        assert_eq!(w.sampling, None);
        // Unsampled sFlow (rate 1) needs no selector on an unsampled stream ...
        assert_eq!(
            to_wire(&sflow_record(Some(origin(1, false, 3, 4))), 1, 1).sampling,
            None
        );
        // ... but does on a stream whose domain samples (--flow-sampling), like scaled ones.
        let w = to_wire(&sflow_record(Some(origin(1, false, 3, 4))), 1, 8);
        assert_eq!(w.sampling, Some(1));
        assert_eq!(
            to_wire(&sflow_record(Some(origin(64, true, 3, 4))), 1, 8).sampling,
            Some(1)
        );
        // A rate equal to the domain's is the domain's.
        assert_eq!(
            to_wire(&sflow_record(Some(origin(8, false, 3, 4))), 1, 8).sampling,
            None
        );
    }

    #[test]
    fn capture_file_is_interface_one() {
        let ifs = capture_interfaces(&SourceSpec::File("/tmp/x/trace.pcap".into()));
        assert_eq!(ifs.len(), 1);
        assert_eq!((ifs[0].index, ifs[0].name.as_str()), (1, "trace.pcap"));
        let lo = capture_interfaces(&SourceSpec::Live(vec!["lo".into(), "nope0".into()]));
        assert_eq!(lo.len(), 1, "unknown interfaces are left out");
        assert_eq!(lo[0].name, "lo");
        assert_ne!(lo[0].index, 0);
    }

    #[test]
    fn map_ports_follow_the_capture_interfaces() {
        use crate::ports::{Port, PortMapBuilder};
        let capture = capture_interfaces(&SourceSpec::File("/tmp/x/trace.pcap".into()));
        let mut b = PortMapBuilder::new(1);
        for (index, name, vm) in [(11, "vm1-eth0", Some("vm1")), (12, "tap2", None)] {
            b.add_port(Port {
                index,
                name: name.into(),
                vm: vm.map(String::from),
                ofport: None,
            });
        }
        let ifs = interfaces_with_ports(&capture, &b.build());
        let got: Vec<_> = ifs
            .iter()
            .map(|i| (i.index, i.name.as_str(), i.description.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (1, "trace.pcap", "capture file /tmp/x/trace.pcap"),
                (11, "vm1-eth0", "vm1"),
                (12, "tap2", "switch port"),
            ]
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

    fn tcp_cfg(port: u16) -> NetflowConfig {
        NetflowConfig {
            transport: IpfixTransport::Tcp,
            ..NetflowConfig::new(Version::Ipfix, "127.0.0.1", port)
        }
    }

    /// Reads whole IPFIX messages from `s` until `records` flow records have arrived;
    /// returns them decoded (our decoder; the integration test uses an independent one).
    fn read_records(s: &mut std::net::TcpStream, records: usize) -> Vec<mirrorflow_ipfix::Message> {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut dec = mirrorflow_ipfix::Decoder::new();
        let (mut msgs, mut got) = (Vec::new(), 0);
        while got < records {
            let mut hdr = [0u8; 16];
            s.read_exact(&mut hdr).unwrap();
            let len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
            let mut msg = hdr.to_vec();
            msg.resize(len, 0);
            s.read_exact(&mut msg[16..]).unwrap();
            let m = dec.decode(&msg).unwrap();
            got += m.data_records().filter(|r| !r.is_options()).count();
            msgs.push(m);
        }
        assert_eq!(got, records);
        msgs
    }

    fn has_templates(m: &mirrorflow_ipfix::Message) -> bool {
        m.sets
            .iter()
            .any(|s| matches!(s, mirrorflow_ipfix::Set::Templates { .. }))
    }

    #[test]
    fn tcp_reconnects_with_templates_first() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut sink = NetflowSink::new(tcp_cfg(port)).unwrap();
        let (mut conn1, _) = listener.accept().unwrap();
        let recs = vec![record(17, 53, 0); 40];
        sink.flows(&recs).unwrap();
        let first = read_records(&mut conn1, 40);
        assert!(has_templates(&first[0]));
        assert_eq!(first[0].sequence, 0);
        // Orderly close by the collector: noticed before the next write, which goes to a
        // new connection and starts with templates again, sequence numbers from 0.
        drop(conn1);
        sink.flows(&recs).unwrap();
        let (mut conn2, _) = listener.accept().unwrap();
        let second = read_records(&mut conn2, 40);
        assert!(has_templates(&second[0]));
        assert_eq!(second[0].sequence, 0);
        assert!(
            second.iter().skip(1).all(|m| !has_templates(m)),
            "no refresh over TCP"
        );
        let c = sink.counters();
        assert_eq!((c.connections, c.records_dropped), (2, 0), "{c:?}");
        sink.finish().unwrap();
        let mut rest = Vec::new();
        conn2.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "finish closes the stream");
    }

    #[test]
    fn tcp_collector_down_drops_and_counts() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut sink = NetflowSink::new(tcp_cfg(port)).unwrap();
        for _ in 0..3 {
            sink.flows(&vec![record(6, 80, 0); 10]).unwrap();
        }
        let c = sink.counters();
        // One refused attempt at creation; the next waits for the backoff.
        assert_eq!((c.connect_errors, c.connections), (1, 0), "{c:?}");
        assert_eq!((c.records_dropped, c.records), (30, 0), "{c:?}");
        let e = sink.finish().unwrap_err().to_string();
        let want = format!("ipfix-tcp:127.0.0.1:{port}: 30 of 30 records not sent");
        assert!(e.starts_with(&want), "{e}");
    }
}
