//! Shared test helpers: translation of `sflow-parser` (an independent sFlow v5 decoder)
//! output into this crate's reprs, so decoded datagrams can be compared field by field
//! with what was encoded.

#![allow(dead_code)]

use std::net::IpAddr;

use mirrorflow_sflow::records::{
    CounterRecord, EthernetCounters, ExtendedSwitch, FlowRecord, GenericInterfaceCounters,
    PortName, SampledHeader, SampledIpv4, SampledIpv6,
};
use mirrorflow_sflow::{
    CounterSampleRepr, DataFormat, DataSource, DatagramRepr, FlowSampleRepr, Interface, Sample,
};
use sflow_parser::models as sp;

/// Decodes `bytes` with sflow-parser and translates the result; panics on any decode
/// error or on a structure this crate does not emit.
pub fn decode_with_sflow_parser(bytes: &[u8]) -> DatagramRepr {
    let d = sflow_parser::parse_datagram(bytes).expect("sflow-parser rejected the datagram");
    assert_eq!(d.version, sp::DatagramVersion::Version5);
    DatagramRepr {
        agent: match d.agent_address {
            sp::Address::IPv4(a) => IpAddr::V4(a),
            sp::Address::IPv6(a) => IpAddr::V6(a),
            sp::Address::Unknown => panic!("unknown agent address"),
        },
        sub_agent_id: d.sub_agent_id,
        sequence_number: d.sequence_number,
        uptime_ms: d.uptime,
        samples: d.samples.into_iter().map(sample).collect(),
    }
}

fn iface(i: sp::Interface) -> Interface {
    Interface::from_parts(u32::from(i.format()), i.value()).expect("interface format")
}

fn iface_x(i: sp::InterfaceExpanded) -> Interface {
    Interface::from_parts(i.format, i.value).expect("interface format")
}

fn source(s: sp::DataSource) -> DataSource {
    DataSource {
        source_type: u32::from(s.source_type()),
        index: s.index(),
    }
}

fn source_x(s: sp::DataSourceExpanded) -> DataSource {
    DataSource {
        source_type: s.source_id_type,
        index: s.source_id_index,
    }
}

fn sample(s: sp::SampleRecord) -> Sample {
    let format = s.sample_type.0;
    let out = match s.sample_data {
        sp::SampleData::FlowSample(f) => {
            assert_eq!(format, 1);
            Sample::Flow(FlowSampleRepr {
                sequence_number: f.sequence_number,
                source_id: source(f.source_id),
                sampling_rate: f.sampling_rate,
                sample_pool: f.sample_pool,
                drops: f.drops,
                input: iface(f.input),
                output: iface(f.output),
                records: f.flow_records.into_iter().map(flow_record_strict).collect(),
            })
        }
        sp::SampleData::FlowSampleExpanded(f) => {
            assert_eq!(format, 3);
            Sample::Flow(FlowSampleRepr {
                sequence_number: f.sequence_number,
                source_id: source_x(f.source_id),
                sampling_rate: f.sampling_rate,
                sample_pool: f.sample_pool,
                drops: f.drops,
                input: iface_x(f.input),
                output: iface_x(f.output),
                records: f.flow_records.into_iter().map(flow_record_strict).collect(),
            })
        }
        sp::SampleData::CountersSample(c) => {
            assert_eq!(format, 2);
            Sample::Counter(CounterSampleRepr {
                sequence_number: c.sequence_number,
                source_id: source(c.source_id),
                records: c.counters.into_iter().map(counter_record_strict).collect(),
            })
        }
        sp::SampleData::CountersSampleExpanded(c) => {
            assert_eq!(format, 4);
            Sample::Counter(CounterSampleRepr {
                sequence_number: c.sequence_number,
                source_id: source_x(c.source_id),
                records: c.counters.into_iter().map(counter_record_strict).collect(),
            })
        }
        sp::SampleData::Unknown { format, data } => Sample::Unknown {
            format: DataFormat(format.0),
            data,
        },
        other => panic!("unexpected sample {other:?}"),
    };
    // The expanded/compact choice must agree with the format the sample was sent as.
    assert_eq!(out.data_format().0, format);
    out
}

fn ipv4(h: sp::SampledIpv4) -> SampledIpv4 {
    SampledIpv4 {
        length: h.length,
        protocol: h.protocol,
        src_ip: h.src_ip,
        dst_ip: h.dst_ip,
        src_port: h.src_port,
        dst_port: h.dst_port,
        tcp_flags: h.tcp_flags,
        tos: h.tos,
    }
}

fn ipv6(h: sp::SampledIpv6) -> SampledIpv6 {
    SampledIpv6 {
        length: h.length,
        protocol: h.protocol,
        src_ip: h.src_ip,
        dst_ip: h.dst_ip,
        src_port: h.src_port,
        dst_port: h.dst_port,
        tcp_flags: h.tcp_flags,
        priority: h.priority,
    }
}

fn flow_record_strict(r: sp::FlowRecord) -> FlowRecord {
    let format = r.flow_format.0;
    let out = flow_record(r).expect("flow record this crate does not emit");
    assert_eq!(out.data_format().0, format);
    out
}

/// Translates a flow record; `None` for records sflow-parser decodes into a structure
/// this crate does not model.
pub fn flow_record(r: sp::FlowRecord) -> Option<FlowRecord> {
    Some(match r.flow_data {
        sp::FlowData::SampledHeader(h) => FlowRecord::SampledHeader(SampledHeader {
            protocol: h.protocol as u32,
            frame_length: h.frame_length,
            stripped: h.stripped,
            header: h.header,
        }),
        sp::FlowData::SampledIpv4(h) => FlowRecord::SampledIpv4(ipv4(h)),
        sp::FlowData::SampledIpv6(h) => FlowRecord::SampledIpv6(ipv6(h)),
        sp::FlowData::ExtendedSwitch(s) => FlowRecord::ExtendedSwitch(ExtendedSwitch {
            src_vlan: s.src_vlan,
            src_priority: s.src_priority,
            dst_vlan: s.dst_vlan,
            dst_priority: s.dst_priority,
        }),
        sp::FlowData::ExtendedIpv4TunnelEgress(t) => FlowRecord::Ipv4TunnelEgress(ipv4(t.header)),
        sp::FlowData::ExtendedIpv4TunnelIngress(t) => FlowRecord::Ipv4TunnelIngress(ipv4(t.header)),
        sp::FlowData::ExtendedIpv6TunnelEgress(t) => FlowRecord::Ipv6TunnelEgress(ipv6(t.header)),
        sp::FlowData::ExtendedIpv6TunnelIngress(t) => FlowRecord::Ipv6TunnelIngress(ipv6(t.header)),
        sp::FlowData::ExtendedVniEgress(v) => FlowRecord::VniEgress(v.vni),
        sp::FlowData::ExtendedVniIngress(v) => FlowRecord::VniIngress(v.vni),
        sp::FlowData::Unknown { format, data } => FlowRecord::Unknown {
            format: DataFormat(format.0),
            data,
        },
        _ => return None,
    })
}

fn counter_record_strict(r: sp::CounterRecord) -> CounterRecord {
    let format = r.counter_format.0;
    let out = counter_record(r).expect("counter record this crate does not emit");
    assert_eq!(out.data_format().0, format);
    out
}

/// Translates a counter record; `None` for records sflow-parser decodes into a structure
/// this crate does not model.
pub fn counter_record(r: sp::CounterRecord) -> Option<CounterRecord> {
    Some(match r.counter_data {
        sp::CounterData::GenericInterface(c) => {
            CounterRecord::GenericInterface(GenericInterfaceCounters {
                if_index: c.if_index,
                if_type: c.if_type,
                if_speed: c.if_speed,
                if_direction: c.if_direction,
                if_status: c.if_status,
                if_in_octets: c.if_in_octets,
                if_in_ucast_pkts: c.if_in_ucast_pkts,
                if_in_multicast_pkts: c.if_in_multicast_pkts,
                if_in_broadcast_pkts: c.if_in_broadcast_pkts,
                if_in_discards: c.if_in_discards,
                if_in_errors: c.if_in_errors,
                if_in_unknown_protos: c.if_in_unknown_protos,
                if_out_octets: c.if_out_octets,
                if_out_ucast_pkts: c.if_out_ucast_pkts,
                if_out_multicast_pkts: c.if_out_multicast_pkts,
                if_out_broadcast_pkts: c.if_out_broadcast_pkts,
                if_out_discards: c.if_out_discards,
                if_out_errors: c.if_out_errors,
                if_promiscuous_mode: c.if_promiscuous_mode,
            })
        }
        sp::CounterData::EthernetInterface(c) => CounterRecord::Ethernet(EthernetCounters {
            dot3_stats_alignment_errors: c.dot3_stats_alignment_errors,
            dot3_stats_fcs_errors: c.dot3_stats_fcs_errors,
            dot3_stats_single_collision_frames: c.dot3_stats_single_collision_frames,
            dot3_stats_multiple_collision_frames: c.dot3_stats_multiple_collision_frames,
            dot3_stats_sqe_test_errors: c.dot3_stats_sqe_test_errors,
            dot3_stats_deferred_transmissions: c.dot3_stats_deferred_transmissions,
            dot3_stats_late_collisions: c.dot3_stats_late_collisions,
            dot3_stats_excessive_collisions: c.dot3_stats_excessive_collisions,
            dot3_stats_internal_mac_transmit_errors: c.dot3_stats_internal_mac_transmit_errors,
            dot3_stats_carrier_sense_errors: c.dot3_stats_carrier_sense_errors,
            dot3_stats_frame_too_longs: c.dot3_stats_frame_too_longs,
            dot3_stats_internal_mac_receive_errors: c.dot3_stats_internal_mac_receive_errors,
            dot3_stats_symbol_errors: c.dot3_stats_symbol_errors,
        }),
        sp::CounterData::OpenFlowPortName(p) => {
            CounterRecord::PortName(PortName { name: p.port_name })
        }
        sp::CounterData::Unknown { format, data } => CounterRecord::Unknown {
            format: DataFormat(format.0),
            data,
        },
        _ => return None,
    })
}
