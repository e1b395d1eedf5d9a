//! The datagram path of the sFlow listener, without sockets or clocks: framing check,
//! decode (`sflow-parser`), sequence tracking, counter samples, and flow samples turned into
//! `PacketMeta`s for the flow cache. The listener thread feeds it; the fuzz target too.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use sflow_parser::models::record_flows::{HeaderProtocol, SampledHeader};
use sflow_parser::models::{
    Address, CounterData, CounterRecord, FlowData, FlowRecord as SflowRecord, SFlowDatagram,
    SampleData,
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
        let agent =
            if stats.agents.contains_key(&key) || stats.agents.len() < self.limits.max_agents {
                let a = stats.agents.entry(key).or_default();
                a.datagram(d.sequence_number, d.uptime);
                Some(a)
            } else {
                stats.other_agents.datagrams += 1;
                None
            };
        let mut agent = agent;
        for s in &d.samples {
            match &s.sample_data {
                SampleData::FlowSample(f) => {
                    let source = (u32::from(f.source_id.source_type()), f.source_id.index());
                    track(
                        &mut agent,
                        SampleKind::Flow,
                        source,
                        f.sequence_number,
                        f.drops,
                    );
                    let origin = Origin {
                        agent: addr,
                        sub_agent: d.sub_agent_id,
                        source_type: source.0,
                        source_index: source.1,
                        input: port(f.input.format(), f.input.value()),
                        output: port(f.output.format(), f.output.value()),
                        sampling_rate: f.sampling_rate.max(1),
                        scaled: self.scale,
                    };
                    let used = self.flow_sample(origin, &f.flow_records, now_ns, metas, counts);
                    if let Err(u) = used {
                        stats.unused_samples[u as usize] += 1;
                    }
                }
                SampleData::FlowSampleExpanded(f) => {
                    let source = (f.source_id.source_id_type, f.source_id.source_id_index);
                    track(
                        &mut agent,
                        SampleKind::Flow,
                        source,
                        f.sequence_number,
                        f.drops,
                    );
                    let origin = Origin {
                        agent: addr,
                        sub_agent: d.sub_agent_id,
                        source_type: source.0,
                        source_index: source.1,
                        input: port(f.input.format as u8, f.input.value),
                        output: port(f.output.format as u8, f.output.value),
                        sampling_rate: f.sampling_rate.max(1),
                        scaled: self.scale,
                    };
                    let used = self.flow_sample(origin, &f.flow_records, now_ns, metas, counts);
                    if let Err(u) = used {
                        stats.unused_samples[u as usize] += 1;
                    }
                }
                SampleData::CountersSample(c) => {
                    let source = (u32::from(c.source_id.source_type()), c.source_id.index());
                    track(
                        &mut agent,
                        SampleKind::Counter,
                        source,
                        c.sequence_number,
                        0,
                    );
                    counter_records(&mut stats.counters, key, source.1, &c.counters);
                }
                SampleData::CountersSampleExpanded(c) => {
                    let source = (c.source_id.source_id_type, c.source_id.source_id_index);
                    track(
                        &mut agent,
                        SampleKind::Counter,
                        source,
                        c.sequence_number,
                        0,
                    );
                    counter_records(&mut stats.counters, key, source.1, &c.counters);
                }
                _ => match &mut agent {
                    Some(a) => a.other_samples += 1,
                    None => stats.other_agents.other_samples += 1,
                },
            }
        }
        if agent.is_none() {
            count_other(&mut stats.other_agents, &d);
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

/// Follows a sample's sequence when its agent is followed.
fn track(
    agent: &mut Option<&mut AgentStats>,
    kind: SampleKind,
    source: (u32, u32),
    seq: u32,
    drops: u32,
) {
    if let Some(a) = agent {
        a.sample(kind, source, seq, drops);
    }
}

/// Samples of an agent beyond the cap, counted without sequence tracking.
fn count_other(other: &mut AgentStats, d: &SFlowDatagram) {
    for s in &d.samples {
        match s.sample_data {
            SampleData::FlowSample(_) | SampleData::FlowSampleExpanded(_) => other.samples[0] += 1,
            SampleData::CountersSample(_) | SampleData::CountersSampleExpanded(_) => {
                other.samples[1] += 1
            }
            _ => {}
        }
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
