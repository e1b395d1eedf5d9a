//! The datagram path of the sFlow listener, without sockets or clocks: framing check,
//! decode (`sflow-parser`), sequence tracking, counter samples, and flow samples turned into
//! `PacketMeta`s for the flow cache. The listener thread feeds it; the fuzz target too.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use sflow_parser::models::record_flows::{HeaderProtocol, SampledHeader};
use sflow_parser::models::{
    Address, CounterData, CounterRecord, FlowData, FlowRecord as SflowRecord, SampleData,
};

use super::agents::{AgentKey, AgentStats, SampleKind};
use super::counters::CounterTable;
use super::framing::{self, BadDatagram};
use super::origins::{Origin, OriginTable};
use crate::decode::{linktype, Decoded, Decoder, FrameInfo, PacketMeta};
use crate::flow::ORIGIN_BIT;
use crate::pipeline::SourceCounts;

/// Why a flow sample fed no flow. [`UnusedSample::name`] is its metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnusedSample {
    /// Neither a raw packet header (0:1) nor a sampled IPv4/IPv6 record (0:3, 0:4).
    NoPacket = 0,
    /// A raw header of a protocol other than Ethernet, IPv4 or IPv6.
    HeaderProtocol = 1,
    /// The origin table was full.
    OriginCap = 2,
}

impl UnusedSample {
    pub const ALL: [UnusedSample; 3] = [
        UnusedSample::NoPacket,
        UnusedSample::HeaderProtocol,
        UnusedSample::OriginCap,
    ];

    pub fn name(self) -> &'static str {
        match self {
            UnusedSample::NoPacket => "no_packet",
            UnusedSample::HeaderProtocol => "header_protocol",
            UnusedSample::OriginCap => "origin_cap",
        }
    }
}

/// Limits of the listener's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Agents followed one by one; datagrams of the rest are counted under `other`.
    pub max_agents: usize,
    /// Ports (and datapaths) whose counters are kept, over all agents.
    pub max_ports: usize,
    /// Distinct origins (agent, source, ports, rate) of sFlow flows.
    pub max_origins: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_agents: 64,
            max_ports: 1024,
            max_origins: 65_536,
        }
    }
}

/// What the listener has seen; read by the metrics endpoint at scrape time.
#[derive(Clone, Debug, Default)]
pub struct SflowInStats {
    /// Datagrams refused, by [`BadDatagram`] (index in `BadDatagram::ALL`).
    pub bad: [u64; BadDatagram::ALL.len()],
    pub agents: BTreeMap<AgentKey, AgentStats>,
    /// Datagrams and samples of agents beyond `max_agents` (their sequences are not followed).
    pub other_agents: AgentStats,
    pub counters: CounterTable,
    /// Flow samples that fed no flow, by [`UnusedSample`].
    pub unused_samples: [u64; UnusedSample::ALL.len()],
    /// Datagrams dropped because the listener's queue was full.
    pub queue_drops: u64,
    /// Relay targets: address, datagrams sent, send errors.
    pub relay: Vec<(String, u64, u64)>,
}

/// The datagram path; see the module docs.
pub struct Ingest {
    decoder: Decoder,
    origins: OriginTable,
    scale: bool,
    limits: Limits,
    stats: Arc<Mutex<SflowInStats>>,
}

impl Ingest {
    pub fn new(
        decoder: Decoder,
        origins: OriginTable,
        scale: bool,
        limits: Limits,
        stats: Arc<Mutex<SflowInStats>>,
    ) -> Ingest {
        stats.lock().unwrap_or_else(|e| e.into_inner()).counters =
            CounterTable::new(limits.max_ports);
        Ingest {
            decoder,
            origins,
            scale,
            limits,
            stats,
        }
    }

    /// Handles one datagram received at `now_ns`: flow samples become metas in `metas` (and
    /// are counted as frames in `counts`), the rest updates the shared stats. A refused
    /// datagram is counted by reason and returned as the error.
    pub fn handle(
        &mut self,
        data: &[u8],
        now_ns: u64,
        metas: &mut Vec<PacketMeta>,
        counts: &mut SourceCounts,
    ) -> Result<(), BadDatagram> {
        let parsed = framing::check(data)
            .and_then(|()| sflow_parser::parse_datagram(data).map_err(|_| BadDatagram::Decode));
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let d = match parsed {
            Ok(d) => d,
            Err(e) => {
                stats.bad[e as usize] += 1;
                return Err(e);
            }
        };
        let addr = match d.agent_address {
            Address::IPv4(a) => IpAddr::V4(a),
            Address::IPv6(a) => IpAddr::V6(a),
            Address::Unknown => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        };
        let key = AgentKey {
            addr,
            sub_agent: d.sub_agent_id,
        };
        let stats = &mut *stats;
        let mut agent =
            if stats.agents.contains_key(&key) || stats.agents.len() < self.limits.max_agents {
                let a = stats.agents.entry(key).or_default();
                a.datagram(d.sequence_number, d.uptime);
                Some(a)
            } else {
                stats.other_agents.datagrams += 1;
                None
            };
        for s in &d.samples {
            let kind = match view(&s.sample_data) {
                View::Flow {
                    seq,
                    source,
                    rate,
                    drops,
                    input,
                    output,
                    records,
                } => {
                    if let Some(a) = &mut agent {
                        a.sample(SampleKind::Flow, source, seq, drops);
                    }
                    let origin = Origin {
                        agent: addr,
                        sub_agent: d.sub_agent_id,
                        source_type: source.0,
                        source_index: source.1,
                        input,
                        output,
                        sampling_rate: rate.max(1),
                        scaled: self.scale,
                    };
                    if let Err(u) = self.flow_sample(origin, records, now_ns, metas, counts) {
                        stats.unused_samples[u as usize] += 1;
                    }
                    Some(SampleKind::Flow)
                }
                View::Counter {
                    seq,
                    source,
                    records,
                } => {
                    if let Some(a) = &mut agent {
                        a.sample(SampleKind::Counter, source, seq, 0);
                    }
                    counter_records(&mut stats.counters, key, source.1, records);
                    Some(SampleKind::Counter)
                }
                View::Other => None,
            };
            match (&mut agent, kind) {
                (Some(_), Some(_)) => {}
                (Some(a), None) => a.other_samples += 1,
                (None, Some(k)) => stats.other_agents.samples[k as usize] += 1,
                (None, None) => stats.other_agents.other_samples += 1,
            }
        }
        Ok(())
    }

    /// Turns one flow sample into a meta: its raw header through the decoder, or its
    /// sampled IPv4/IPv6 record.
    fn flow_sample(
        &self,
        origin: Origin,
        records: &[SflowRecord],
        now_ns: u64,
        metas: &mut Vec<PacketMeta>,
        counts: &mut SourceCounts,
    ) -> Result<(), UnusedSample> {
        let mut header: Option<&SampledHeader> = None;
        let mut ip: Option<&FlowData> = None;
        let mut vlan = 0u16;
        for r in records {
            match &r.flow_data {
                FlowData::SampledHeader(h) => header = Some(h),
                d @ (FlowData::SampledIpv4(_) | FlowData::SampledIpv6(_)) => ip = Some(d),
                // 2³² − 1 is "unknown" (sFlow v5 errata); only real 802.1Q ids are taken.
                FlowData::ExtendedSwitch(s) if s.src_vlan < 4095 => vlan = s.src_vlan as u16,
                _ => {}
            }
        }
        let lt = match header.map(|h| h.protocol) {
            Some(HeaderProtocol::EthernetIso88023) => Some(linktype::ETHERNET),
            Some(HeaderProtocol::Ipv4) => Some(linktype::IPV4),
            Some(HeaderProtocol::Ipv6) => Some(linktype::IPV6),
            Some(_) if ip.is_none() => return Err(UnusedSample::HeaderProtocol),
            _ => None,
        };
        if lt.is_none() && ip.is_none() {
            return Err(UnusedSample::NoPacket);
        }
        let id = self.origins.intern(origin).ok_or(UnusedSample::OriginCap)?;
        let mut info = FrameInfo {
            ts_ns: now_ns,
            wire_len: 0,
            in_if: ORIGIN_BIT | id,
        };
        counts.frames += 1;
        let mut meta = PacketMeta::default();
        match (lt, header, ip) {
            (Some(lt), Some(h), _) => {
                info.wire_len = h.frame_length.saturating_sub(h.stripped);
                match self.decoder.decode(lt, &h.header, info, &mut meta) {
                    Decoded::Ip => {}
                    Decoded::NonIp(et) => {
                        counts.count_non_ip(et);
                        return Ok(());
                    }
                    Decoded::Error(e) => {
                        counts.count_error(e);
                        return Ok(());
                    }
                }
            }
            (_, _, Some(d)) => meta = sampled_ip(d, info),
            _ => unreachable!("checked above"),
        }
        if meta.vlan_id == 0 {
            meta.vlan_id = vlan;
        }
        metas.push(meta);
        Ok(())
    }
}

/// A flow or counter sample, compact (sFlow v5 §5 formats 1, 2) or expanded (3, 4), in one
/// shape.
enum View<'a> {
    Flow {
        seq: u32,
        /// Data source type and index.
        source: (u32, u32),
        rate: u32,
        drops: u32,
        /// Input and output ifIndex, 0 when none.
        input: u32,
        output: u32,
        records: &'a [SflowRecord],
    },
    Counter {
        seq: u32,
        source: (u32, u32),
        records: &'a [CounterRecord],
    },
    Other,
}

fn view(s: &SampleData) -> View<'_> {
    match s {
        SampleData::FlowSample(f) => View::Flow {
            seq: f.sequence_number,
            source: (u32::from(f.source_id.source_type()), f.source_id.index()),
            rate: f.sampling_rate,
            drops: f.drops,
            input: port(f.input.format(), f.input.value()),
            output: port(f.output.format(), f.output.value()),
            records: &f.flow_records,
        },
        SampleData::FlowSampleExpanded(f) => View::Flow {
            seq: f.sequence_number,
            source: (f.source_id.source_id_type, f.source_id.source_id_index),
            rate: f.sampling_rate,
            drops: f.drops,
            input: port(f.input.format.min(255) as u8, f.input.value),
            output: port(f.output.format.min(255) as u8, f.output.value),
            records: &f.flow_records,
        },
        SampleData::CountersSample(c) => View::Counter {
            seq: c.sequence_number,
            source: (u32::from(c.source_id.source_type()), c.source_id.index()),
            records: &c.counters,
        },
        SampleData::CountersSampleExpanded(c) => View::Counter {
            seq: c.sequence_number,
            source: (c.source_id.source_id_type, c.source_id.source_id_index),
            records: &c.counters,
        },
        _ => View::Other,
    }
}

/// An sFlow interface value as an ifIndex (sFlow v5 §5 `interface`): format 0 is a single
/// ifIndex, 0x3FFFFFFF there meaning internal to the device; discarded (format 1) and
/// multiple ports (format 2) have none. No ifIndex is 0.
fn port(format: u8, value: u32) -> u32 {
    match (format, value) {
        (0, 0x3FFF_FFFF) => 0,
        (0, v) => v,
        _ => 0,
    }
}

/// A meta from a sampled IPv4 (0:3) or IPv6 (0:4) record.
fn sampled_ip(d: &FlowData, info: FrameInfo) -> PacketMeta {
    let mut m = PacketMeta {
        frame: info,
        ..PacketMeta::default()
    };
    let (len, proto, sport, dport, flags) = match d {
        FlowData::SampledIpv4(r) => {
            m.ip_version = 4;
            m.src_addr[..4].copy_from_slice(&r.src_ip.octets());
            m.dst_addr[..4].copy_from_slice(&r.dst_ip.octets());
            m.tos = r.tos as u8;
            (r.length, r.protocol, r.src_port, r.dst_port, r.tcp_flags)
        }
        FlowData::SampledIpv6(r) => {
            m.ip_version = 6;
            m.src_addr = r.src_ip.octets();
            m.dst_addr = r.dst_ip.octets();
            m.tos = r.priority as u8;
            (r.length, r.protocol, r.src_port, r.dst_port, r.tcp_flags)
        }
        _ => return m,
    };
    m.protocol = proto as u8;
    (m.src_port, m.dst_port) = (sport as u16, dport as u16);
    if proto == 6 {
        m.tcp_flags = flags as u8;
    }
    m.ip_len = len;
    m.frame.wire_len = len;
    m
}

fn counter_records(t: &mut CounterTable, agent: AgentKey, index: u32, records: &[CounterRecord]) {
    for r in records {
        match &r.counter_data {
            CounterData::GenericInterface(c) => t.generic(agent, index, c),
            CounterData::EthernetInterface(c) => t.ethernet(agent, index, c),
            CounterData::OpenFlowPortName(n) => t.name(agent, index, &n.port_name),
            CounterData::OpenFlowPort(p) => t.openflow(agent, index, p.datapath_id, p.port_no),
            CounterData::OvsDpStats(s) => t.datapath(agent, index, s),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirrorflow_sflow::{
        DataSource, DatagramRepr, ExtendedSwitch, FlowRecord as Record, FlowSampleRepr, Interface,
        Sample, SampledIpv4,
    };

    fn ingest(limits: Limits) -> (Ingest, Arc<Mutex<SflowInStats>>) {
        let stats = Arc::default();
        let origins = OriginTable::new(limits.max_origins);
        (
            Ingest::new(
                Decoder::default(),
                origins,
                false,
                limits,
                Arc::clone(&stats),
            ),
            stats,
        )
    }

    fn datagram(agent: &str, seq: u32, records: Vec<Record>) -> Vec<u8> {
        let d = DatagramRepr {
            agent: agent.parse().unwrap(),
            sub_agent_id: 0,
            sequence_number: seq,
            uptime_ms: seq,
            samples: vec![Sample::Flow(FlowSampleRepr {
                sequence_number: seq,
                source_id: DataSource::if_index(4),
                sampling_rate: 512,
                input: Interface::Single(4),
                output: Interface::NONE,
                records,
                ..FlowSampleRepr::default()
            })],
        };
        let mut buf = vec![0; d.buffer_len()];
        d.emit(&mut buf).unwrap();
        buf
    }

    fn ipv4() -> Record {
        Record::SampledIpv4(SampledIpv4 {
            length: 1500,
            protocol: 6,
            src_ip: "10.1.0.1".parse().unwrap(),
            dst_ip: "10.1.0.2".parse().unwrap(),
            src_port: 443,
            dst_port: 50_000,
            tcp_flags: 0x18,
            tos: 0x28,
        })
    }

    /// A sample with only a sampled IPv4 record (0:3) and an extended switch record makes a
    /// meta from their fields; its origin is interned with the sample's ports and rate.
    #[test]
    fn sampled_ipv4_records_and_the_switch_vlan() {
        let (mut ing, stats) = ingest(Limits::default());
        let sw = Record::ExtendedSwitch(ExtendedSwitch {
            src_vlan: 30,
            ..ExtendedSwitch::default()
        });
        let (mut metas, mut counts) = (Vec::new(), SourceCounts::default());
        let d = datagram("192.0.2.1", 1, vec![ipv4(), sw]);
        ing.handle(&d, 7, &mut metas, &mut counts).unwrap();
        assert_eq!((metas.len(), counts.frames), (1, 1));
        let m = metas[0];
        assert_eq!((m.ip_version, m.protocol, m.ip_len), (4, 6, 1500));
        assert_eq!(
            (m.src_port, m.dst_port, m.tcp_flags, m.tos),
            (443, 50_000, 0x18, 0x28)
        );
        assert_eq!((m.vlan_id, m.frame.ts_ns), (30, 7));
        let id = m.frame.in_if & !ORIGIN_BIT;
        let o = ing.origins.reader().get(id).unwrap();
        assert_eq!((o.input, o.output, o.sampling_rate), (4, 0, 512));
        assert_eq!(stats.lock().unwrap().agents.len(), 1);
    }

    /// Agents beyond the cap are counted under `other`, not followed; samples without a
    /// packet feed no flow and are counted.
    #[test]
    fn agents_beyond_the_cap_and_samples_without_a_packet() {
        let limits = Limits {
            max_agents: 2,
            ..Limits::default()
        };
        let (mut ing, stats) = ingest(limits);
        let (mut metas, mut counts) = (Vec::new(), SourceCounts::default());
        for (i, agent) in ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]
            .iter()
            .enumerate()
        {
            let d = datagram(agent, i as u32, vec![ipv4()]);
            ing.handle(&d, 1, &mut metas, &mut counts).unwrap();
        }
        let d = datagram("192.0.2.1", 9, vec![]);
        ing.handle(&d, 1, &mut metas, &mut counts).unwrap();
        let st = stats.lock().unwrap();
        assert_eq!(st.agents.len(), 2);
        assert_eq!(
            (st.other_agents.datagrams, st.other_agents.samples),
            (2, [2, 0])
        );
        assert_eq!(st.unused_samples[UnusedSample::NoPacket as usize], 1);
        assert_eq!(metas.len(), 4);
    }

    /// Refused datagrams are counted by reason and leave nothing behind.
    #[test]
    fn refused_datagrams_are_counted() {
        let (mut ing, stats) = ingest(Limits::default());
        let (mut metas, mut counts) = (Vec::new(), SourceCounts::default());
        let mut d = datagram("192.0.2.1", 1, vec![ipv4()]);
        d.truncate(d.len() - 3);
        assert_eq!(
            ing.handle(&d, 1, &mut metas, &mut counts),
            Err(BadDatagram::Length)
        );
        assert_eq!(
            ing.handle(&[0, 0, 0, 4], 1, &mut metas, &mut counts),
            Err(BadDatagram::Version)
        );
        let st = stats.lock().unwrap();
        assert_eq!(st.bad[BadDatagram::Length as usize], 1);
        assert_eq!(st.bad[BadDatagram::Version as usize], 1);
        assert!(metas.is_empty() && counts.is_empty() && st.agents.is_empty());
    }
}
