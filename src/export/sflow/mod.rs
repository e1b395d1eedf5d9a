//! sFlow v5 agent (sflow.org "sFlow Version 5"): packet samples and port counters go out as
//! flow and counter samples over UDP, one [`SflowSink`] per collector, each with its own
//! `mirrorflow_sflow::Encoder` (datagram sequence numbers are per collector stream).
//!
//! - Flow samples: [`flow`] (sampled header, extended switch, VNI).
//! - Counter samples: [`ports`], every `polling_secs` of snapshot time and, for every
//!   port, once more on the last snapshot (end of file, shutdown).
//! - Datagram header: agent address and sub-agent id from the configuration; uptime in
//!   ms since the sink started (live) or since the first packet time the sink saw
//!   (files, so a replay gives the same datagrams every time).
//! - Transport: [`super::udp`]: paced by a token bucket, send errors counted.

pub mod flow;
pub mod ports;

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use mirrorflow_sflow::{Encoder, EncoderConfig, Sample, DEFAULT_MAX_DATAGRAM};

use super::udp::{UdpCollector, UdpCounters};
use super::{CounterSnapshot, ExportError, Interest, Sink};
use crate::sample::{PacketSample, PortTable};
pub use ports::PortSource;

/// One sFlow collector stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SflowConfig {
    /// Collector host name or address (IPv6 without brackets).
    pub host: String,
    /// Collector UDP port, nonzero.
    pub port: u16,
    /// Agent address in the datagram header; `None`: the source address of the route to
    /// the collector (see [`fill_default_agent`]).
    pub agent: Option<IpAddr>,
    pub sub_agent_id: u32,
    /// Counter polling interval in seconds of snapshot time; 0: only the final counters.
    pub polling_secs: u64,
    /// Datagrams per second at most, ≥ 1.
    pub export_rate: u32,
    /// Largest datagram (UDP payload) in bytes.
    pub max_datagram: usize,
    /// Where port names and interface state come from; also picks the uptime clock.
    pub ports: PortSource,
}

impl SflowConfig {
    /// The sFlow collector port registered with IANA.
    pub const DEFAULT_PORT: u16 = 6343;
    /// Default 1-in-N sampling rate (the rate sFlow agents commonly use on 1 Gb/s links).
    pub const DEFAULT_SAMPLING: u32 = 400;
    /// Default bytes of each sampled frame (sFlow v5 §4 recommends 128).
    pub const DEFAULT_HEADER_BYTES: usize = 128;
    /// Default counter polling interval (the common agent default).
    pub const DEFAULT_POLLING_SECS: u64 = 20;
    /// Default pacing, datagrams per second per collector: 2000 × 1400 bytes = 2.8 MB/s,
    /// ≈ 12 000 flow samples/s (1-in-400 sampling of 4.8 M frames/s). A stock sfacctd on
    /// a busy 2-core machine keeps up with it (the 2 M-packet replay test at 1-in-64; at
    /// 5000/s its socket dropped datagrams), and a burst (40 datagrams) fits its default
    /// socket buffer.
    pub const DEFAULT_EXPORT_RATE: u32 = 2000;

    /// Defaults towards `host:port` for ports described by `ports`.
    pub fn new(host: impl Into<String>, port: u16, ports: PortSource) -> SflowConfig {
        SflowConfig {
            host: host.into(),
            port,
            agent: None,
            sub_agent_id: 0,
            polling_secs: Self::DEFAULT_POLLING_SECS,
            export_rate: Self::DEFAULT_EXPORT_RATE,
            max_datagram: DEFAULT_MAX_DATAGRAM,
            ports,
        }
    }

    /// `sflow:HOST:PORT` (IPv6 hosts in brackets).
    pub fn name(&self) -> String {
        if self.host.contains(':') {
            format!("sflow:[{}]:{}", self.host, self.port)
        } else {
            format!("sflow:{}:{}", self.host, self.port)
        }
    }
}

/// The source address of the route to `host:port`: what a UDP socket connected there
/// sends from.
pub fn route_source(host: &str, port: u16) -> io::Result<IpAddr> {
    Ok(super::udp::open(host, port)?.local_addr()?.ip())
}

/// Gives every configuration without an agent address the source address of the route to
/// the first collector. When that cannot be found (the host does not resolve) the agent
/// is 0.0.0.0, with a one-line warning.
pub fn fill_default_agent(cfgs: &mut [SflowConfig]) {
    let Some(first) = cfgs.first() else { return };
    if cfgs.iter().all(|c| c.agent.is_some()) {
        return;
    }
    let agent = route_source(&first.host, first.port).unwrap_or_else(|e| {
        eprintln!(
            "mirrorflow: {}: no route to the collector ({e}); agent address 0.0.0.0 \
             (set --agent-address)",
            first.name()
        );
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    for c in cfgs.iter_mut().filter(|c| c.agent.is_none()) {
        c.agent = Some(agent);
    }
}

/// The datagram header's uptime (sFlow v5 §5 `sample_datagram_v5.uptime`, ms).
#[derive(Debug)]
enum Uptime {
    /// Live: since the sink started.
    Wall(Instant),
    /// Files: latest minus first event time the sink has seen (packet time; never
    /// decreases).
    Packet { first: Option<u64>, latest: u64 },
}

impl Uptime {
    fn see(&mut self, t_ns: u64) {
        if let Uptime::Packet { first, latest } = self {
            if t_ns != 0 {
                first.get_or_insert(t_ns);
                *latest = (*latest).max(t_ns);
            }
        }
    }

    fn ms(&self) -> u32 {
        match self {
            Uptime::Wall(t0) => t0.elapsed().as_millis() as u32,
            Uptime::Packet {
                first: Some(f),
                latest,
            } => (latest.saturating_sub(*f) / 1_000_000) as u32,
            Uptime::Packet { first: None, .. } => 0,
        }
    }
}

/// What a sink has done, for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SflowStats {
    pub flow_samples: u64,
    pub counter_samples: u64,
    /// Flow samples sent without a sampled header (link type with no header protocol).
    pub without_header: u64,
    /// Samples whose header bytes the encoder cut to fit a datagram.
    pub truncated: u64,
    /// Samples too large for any datagram (not sent).
    pub dropped: u64,
    pub udp: UdpCounters,
}

/// Sends packet samples and port counters to one sFlow collector over UDP.
pub struct SflowSink {
    name: String,
    polling_ns: u64,
    encoder: Encoder,
    udp: UdpCollector,
    uptime: Uptime,
    ports: ports::Ports,
    /// Port names from the port map (`[[ports]]`, `--ovsdb`), when there is one.
    port_map: Option<crate::ports::PortReader>,
    /// Counter sample sequence number per port (data source).
    counter_seq: BTreeMap<u32, u32>,
    next_poll_ns: Option<u64>,
    counters: SflowStats,
    batch: Vec<Sample>,
    out: Vec<Vec<u8>>,
}

impl SflowSink {
    /// Connects (a collector that does not resolve is retried when sending) and, without
    /// an agent address, takes the route's source address.
    pub fn new(mut cfg: SflowConfig) -> SflowSink {
        fill_default_agent(std::slice::from_mut(&mut cfg));
        let name = cfg.name();
        let encoder = Encoder::new(EncoderConfig {
            agent: cfg.agent.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            sub_agent_id: cfg.sub_agent_id,
            max_datagram: cfg.max_datagram,
        });
        let uptime = match cfg.ports {
            PortSource::Live => Uptime::Wall(Instant::now()),
            PortSource::File(_) => Uptime::Packet {
                first: None,
                latest: 0,
            },
        };
        SflowSink {
            udp: UdpCollector::new(name.clone(), &cfg.host, cfg.port, cfg.export_rate),
            name,
            polling_ns: cfg.polling_secs.saturating_mul(1_000_000_000),
            encoder,
            uptime,
            ports: ports::Ports::new(cfg.ports),
            port_map: None,
            counter_seq: BTreeMap::new(),
            next_poll_ns: None,
            counters: SflowStats::default(),
            batch: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Names the counter samples' ports from `ports` (the port map) where it knows them.
    pub fn with_ports(mut self, ports: Option<&crate::ports::PortDirectory>) -> SflowSink {
        self.port_map = ports.map(crate::ports::PortDirectory::reader);
        self
    }

    /// The agent address the datagrams carry.
    pub fn agent(&self) -> IpAddr {
        self.encoder.config().agent
    }

    pub fn stats(&self) -> SflowStats {
        SflowStats {
            udp: self.udp.counters(),
            ..self.counters
        }
    }

    /// Encodes the pending batch and sends its datagrams, paced.
    fn flush(&mut self) {
        self.out.clear();
        let report = self
            .encoder
            .encode(&self.batch, self.uptime.ms(), &mut self.out);
        self.batch.clear();
        self.counters.truncated += report.truncated as u64;
        self.counters.dropped += report.dropped as u64;
        if report.dropped > 0 {
            let msg = format!("{} samples too large for a datagram", report.dropped);
            self.udp.log_error(msg);
        }
        for d in &self.out {
            self.udp.send(d);
        }
    }

    /// Whether the periodic poll is due at snapshot time `t`.
    fn poll_due(&mut self, t: u64) -> bool {
        if self.polling_ns == 0 || t == 0 {
            return false;
        }
        match self.next_poll_ns {
            None => {
                self.next_poll_ns = Some(t.saturating_add(self.polling_ns));
                false
            }
            Some(next) if t >= next => {
                let behind = (t - next) / self.polling_ns + 1;
                self.next_poll_ns = Some(next.saturating_add(behind * self.polling_ns));
                true
            }
            Some(_) => false,
        }
    }

    /// One counter sample per port of `table`.
    fn send_counters(&mut self, table: &PortTable) {
        let map = self.port_map.as_mut().map(|r| r.map());
        let infos = self.ports.describe(table.ports.keys().copied(), map);
        for (&port, c) in &table.ports {
            let seq = self.counter_seq.entry(port).or_insert(0);
            *seq = seq.wrapping_add(1);
            let s = ports::counter_sample(port, *seq, c, &infos[&port]);
            self.batch.push(Sample::Counter(s));
        }
        self.counters.counter_samples += table.ports.len() as u64;
        self.flush();
    }
}

impl Sink for SflowSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn interest(&self) -> Interest {
        Interest {
            flows: false,
            samples: true,
            counters: true,
        }
    }

    /// Never fails: send errors are counted and reported by [`Sink::finish`].
    fn samples(&mut self, samples: &[PacketSample]) -> Result<(), ExportError> {
        for s in samples {
            self.uptime.see(s.frame.ts_ns);
            let f = flow::flow_sample(s);
            if !matches!(
                f.records.first(),
                Some(mirrorflow_sflow::FlowRecord::SampledHeader(_))
            ) {
                self.counters.without_header += 1;
            }
            self.batch.push(Sample::Flow(f));
        }
        self.counters.flow_samples += samples.len() as u64;
        self.flush();
        Ok(())
    }

    fn counters(&mut self, snapshot: &CounterSnapshot) -> Result<(), ExportError> {
        self.uptime.see(snapshot.time_ns);
        let due = self.poll_due(snapshot.time_ns);
        if (due || snapshot.last) && !snapshot.ports.is_empty() {
            self.send_counters(&snapshot.ports);
        }
        Ok(())
    }

    /// Fails if any datagram could not be sent or was reported unreachable.
    fn finish(&mut self) -> Result<(), ExportError> {
        self.udp.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_defaults() {
        let c = SflowConfig::new("::1", 6343, PortSource::Live);
        assert_eq!(c.name(), "sflow:[::1]:6343");
        assert_eq!((c.polling_secs, c.sub_agent_id, c.agent), (20, 0, None));
        let c = SflowConfig::new("collector.example", 9, PortSource::Live);
        assert_eq!(c.name(), "sflow:collector.example:9");
    }

    #[test]
    fn the_default_agent_is_the_route_source() {
        let mut cfgs = vec![
            SflowConfig::new("127.0.0.1", 6343, PortSource::Live),
            SflowConfig {
                agent: Some("192.0.2.1".parse().unwrap()),
                ..SflowConfig::new("127.0.0.2", 6343, PortSource::Live)
            },
            SflowConfig::new("::1", 6343, PortSource::Live),
        ];
        fill_default_agent(&mut cfgs);
        let agents: Vec<_> = cfgs.iter().map(|c| c.agent.unwrap().to_string()).collect();
        assert_eq!(agents, ["127.0.0.1", "192.0.2.1", "127.0.0.1"]);
        let mut bad = vec![SflowConfig::new(
            "no-such-host.invalid",
            1,
            PortSource::Live,
        )];
        fill_default_agent(&mut bad);
        assert_eq!(bad[0].agent, Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    }

    #[test]
    fn packet_uptime_counts_from_the_first_event_and_never_goes_back() {
        let mut u = Uptime::Packet {
            first: None,
            latest: 0,
        };
        assert_eq!(u.ms(), 0);
        u.see(0);
        u.see(5_000_000_000);
        u.see(7_500_000_000);
        u.see(6_000_000_000);
        assert_eq!(u.ms(), 2500);
    }

    #[test]
    fn polls_every_interval_of_snapshot_time() {
        let cfg = SflowConfig {
            polling_secs: 20,
            ..SflowConfig::new("127.0.0.1", 9, PortSource::File("f".into()))
        };
        let mut s = SflowSink::new(cfg);
        let sec = 1_000_000_000;
        let due: Vec<u64> = (1..=70)
            .filter(|&t| s.poll_due(1000 * sec + t * sec))
            .collect();
        assert_eq!(due, [21, 41, 61]);
        // A gap of several intervals polls once; the schedule keeps its grid.
        assert!(s.poll_due(1200 * sec));
        assert!(!s.poll_due(1200 * sec + sec / 2));
        assert!(s.poll_due(1201 * sec));
    }
}
