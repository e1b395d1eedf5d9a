//! Flow and counter records carried inside flow and counter samples.
//!
//! Each record on the wire is a `flow_record` / `counter_record` (sFlow v5 §5):
//! a [`DataFormat`] word, a length word, then the XDR body of the structure. The
//! body structures below (`SampledHeader`, `ExtendedSwitch`, …) emit and parse the
//! body only; [`FlowRecord`] and [`CounterRecord`] add the format and length words.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::xdr::{Reader, Writer};
use crate::{pad4, DataFormat, Error, Result};

/// `header_protocol` values of `sampled_header` (sFlow v5 §5 "Packet IP version 4/6"…).
pub mod header_protocol {
    /// ETHERNET-ISO88023: an Ethernet frame starting at the destination MAC.
    pub const ETHERNET_ISO88023: u32 = 1;
    /// An IPv4 packet starting at the IP header.
    pub const IPV4: u32 = 11;
    /// An IPv6 packet starting at the IP header.
    pub const IPV6: u32 = 12;
}

/// Flow record data formats (enterprise 0) used by this crate.
pub mod flow_format {
    use crate::DataFormat;
    /// sFlow v5 §5 `sampled_header`.
    pub const SAMPLED_HEADER: DataFormat = DataFormat::new(0, 1);
    /// sFlow v5 §5 `sampled_ipv4`.
    pub const SAMPLED_IPV4: DataFormat = DataFormat::new(0, 3);
    /// sFlow v5 §5 `sampled_ipv6`.
    pub const SAMPLED_IPV6: DataFormat = DataFormat::new(0, 4);
    /// sFlow v5 §5 `extended_switch`.
    pub const EXTENDED_SWITCH: DataFormat = DataFormat::new(0, 1001);
    /// sFlow tunnels `extended_ipv4_tunnel_egress`.
    pub const IPV4_TUNNEL_EGRESS: DataFormat = DataFormat::new(0, 1023);
    /// sFlow tunnels `extended_ipv4_tunnel_ingress`.
    pub const IPV4_TUNNEL_INGRESS: DataFormat = DataFormat::new(0, 1024);
    /// sFlow tunnels `extended_ipv6_tunnel_egress`.
    pub const IPV6_TUNNEL_EGRESS: DataFormat = DataFormat::new(0, 1025);
    /// sFlow tunnels `extended_ipv6_tunnel_ingress`.
    pub const IPV6_TUNNEL_INGRESS: DataFormat = DataFormat::new(0, 1026);
    /// sFlow tunnels `extended_vni_egress`.
    pub const VNI_EGRESS: DataFormat = DataFormat::new(0, 1029);
    /// sFlow tunnels `extended_vni_ingress`.
    pub const VNI_INGRESS: DataFormat = DataFormat::new(0, 1030);
}

/// Counter record data formats (enterprise 0) used by this crate.
pub mod counter_format {
    use crate::DataFormat;
    /// sFlow v5 §5 `if_counters`.
    pub const GENERIC_INTERFACE: DataFormat = DataFormat::new(0, 1);
    /// sFlow v5 §5 `ethernet_counters`.
    pub const ETHERNET: DataFormat = DataFormat::new(0, 2);
    /// sFlow OpenFlow structures `portName`.
    pub const PORT_NAME: DataFormat = DataFormat::new(0, 1005);
}

/// Raw packet header, sFlow v5 §5 `sampled_header`, enterprise 0 format 1.
///
/// ```text
/// header_protocol protocol; unsigned int frame_length; unsigned int stripped;
/// opaque header<>;   /* length word, bytes, zero padding to 4 */
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SampledHeader {
    /// `header_protocol` (see [`header_protocol`]; 1 = Ethernet ISO 802.3).
    pub protocol: u32,
    /// Original length of the packet before sampling; for a layer 2 protocol, the
    /// octets received on the network including the FCS.
    pub frame_length: u32,
    /// Octets removed from the packet before extracting `header` (4 for an 802.3
    /// frame whose FCS was removed).
    pub stripped: u32,
    /// The first bytes of the packet.
    pub header: Vec<u8>,
}

impl SampledHeader {
    /// Header record for an Ethernet frame as captured (without FCS): keeps at most
    /// `max_header` leading bytes, reports `frame_length = frame.len() + 4` (the FCS) and
    /// `stripped = 4`, as the spec asks for a non-encapsulated 802.3 packet.
    pub fn ethernet(frame: &[u8], max_header: usize) -> Self {
        let frame_length = u32::try_from(frame.len())
            .unwrap_or(u32::MAX)
            .saturating_add(4);
        SampledHeader {
            protocol: header_protocol::ETHERNET_ISO88023,
            frame_length,
            stripped: 4,
            header: frame[..frame.len().min(max_header)].to_vec(),
        }
    }

    /// Length of the body on the wire.
    pub fn buffer_len(&self) -> usize {
        16 + pad4(self.header.len())
    }

    /// Emits the body into `buf`; returns the bytes written (`buffer_len()`).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf, self.buffer_len())?;
        self.emit_to(&mut w)?;
        Ok(w.pos())
    }

    pub(crate) fn emit_to(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u32(self.protocol)?;
        w.u32(self.frame_length)?;
        w.u32(self.stripped)?;
        w.opaque(&self.header)
    }

    /// Parses a body; returns it and the bytes consumed.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let repr = SampledHeader {
            protocol: r.u32()?,
            frame_length: r.u32()?,
            stripped: r.u32()?,
            header: r.opaque()?.to_vec(),
        };
        Ok((repr, r.pos()))
    }
}

/// Packet IPv4 data, sFlow v5 §5 `sampled_ipv4`, enterprise 0 format 3; also the body of
/// the tunnel structures `extended_ipv4_tunnel_egress` (1023) and `_ingress` (1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampledIpv4 {
    /// Length of the IP packet excluding lower layer encapsulations.
    pub length: u32,
    /// IP protocol number (6 TCP, 17 UDP, …).
    pub protocol: u32,
    /// Source address.
    pub src_ip: Ipv4Addr,
    /// Destination address.
    pub dst_ip: Ipv4Addr,
    /// TCP/UDP source port.
    pub src_port: u32,
    /// TCP/UDP destination port.
    pub dst_port: u32,
    /// TCP flags.
    pub tcp_flags: u32,
    /// IP type of service.
    pub tos: u32,
}

impl SampledIpv4 {
    /// Length of the body on the wire (32 bytes).
    pub const fn buffer_len(&self) -> usize {
        32
    }

    /// Emits the body into `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf, self.buffer_len())?;
        self.emit_to(&mut w)?;
        Ok(w.pos())
    }

    pub(crate) fn emit_to(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u32(self.length)?;
        w.u32(self.protocol)?;
        w.fixed(&self.src_ip.octets())?;
        w.fixed(&self.dst_ip.octets())?;
        w.u32(self.src_port)?;
        w.u32(self.dst_port)?;
        w.u32(self.tcp_flags)?;
        w.u32(self.tos)
    }

    /// Parses a body; returns it and the bytes consumed.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let repr = SampledIpv4 {
            length: r.u32()?,
            protocol: r.u32()?,
            src_ip: Ipv4Addr::from(r.u32()?),
            dst_ip: Ipv4Addr::from(r.u32()?),
            src_port: r.u32()?,
            dst_port: r.u32()?,
            tcp_flags: r.u32()?,
            tos: r.u32()?,
        };
        Ok((repr, r.pos()))
    }
}

/// Packet IPv6 data, sFlow v5 §5 `sampled_ipv6`, enterprise 0 format 4; also the body of
/// the tunnel structures `extended_ipv6_tunnel_egress` (1025) and `_ingress` (1026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampledIpv6 {
    /// Length of the IP packet excluding lower layer encapsulations.
    pub length: u32,
    /// IP next header.
    pub protocol: u32,
    /// Source address.
    pub src_ip: Ipv6Addr,
    /// Destination address.
    pub dst_ip: Ipv6Addr,
    /// TCP/UDP source port.
    pub src_port: u32,
    /// TCP/UDP destination port.
    pub dst_port: u32,
    /// TCP flags.
    pub tcp_flags: u32,
    /// IP priority.
    pub priority: u32,
}

impl SampledIpv6 {
    /// Length of the body on the wire (56 bytes).
    pub const fn buffer_len(&self) -> usize {
        56
    }

    /// Emits the body into `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf, self.buffer_len())?;
        self.emit_to(&mut w)?;
        Ok(w.pos())
    }

    pub(crate) fn emit_to(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u32(self.length)?;
        w.u32(self.protocol)?;
        w.fixed(&self.src_ip.octets())?;
        w.fixed(&self.dst_ip.octets())?;
        w.u32(self.src_port)?;
        w.u32(self.dst_port)?;
        w.u32(self.tcp_flags)?;
        w.u32(self.priority)
    }

    /// Parses a body; returns it and the bytes consumed.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let length = r.u32()?;
        let protocol = r.u32()?;
        let src: [u8; 16] = r.fixed(16)?.try_into().map_err(|_| Error::Truncated)?;
        let dst: [u8; 16] = r.fixed(16)?.try_into().map_err(|_| Error::Truncated)?;
        let repr = SampledIpv6 {
            length,
            protocol,
            src_ip: Ipv6Addr::from(src),
            dst_ip: Ipv6Addr::from(dst),
            src_port: r.u32()?,
            dst_port: r.u32()?,
            tcp_flags: r.u32()?,
            priority: r.u32()?,
        };
        Ok((repr, r.pos()))
    }
}

/// Extended switch data, sFlow v5 §5 `extended_switch`, enterprise 0 format 1001.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtendedSwitch {
    /// 802.1Q VLAN id of the incoming frame.
    pub src_vlan: u32,
    /// 802.1p priority of the incoming frame.
    pub src_priority: u32,
    /// 802.1Q VLAN id of the outgoing frame.
    pub dst_vlan: u32,
    /// 802.1p priority of the outgoing frame.
    pub dst_priority: u32,
}

impl ExtendedSwitch {
    /// Length of the body on the wire (16 bytes).
    pub const fn buffer_len(&self) -> usize {
        16
    }

    /// Emits the body into `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf, self.buffer_len())?;
        self.emit_to(&mut w)?;
        Ok(w.pos())
    }

    pub(crate) fn emit_to(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u32(self.src_vlan)?;
        w.u32(self.src_priority)?;
        w.u32(self.dst_vlan)?;
        w.u32(self.dst_priority)
    }

    /// Parses a body; returns it and the bytes consumed.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let repr = ExtendedSwitch {
            src_vlan: r.u32()?,
            src_priority: r.u32()?,
            dst_vlan: r.u32()?,
            dst_priority: r.u32()?,
        };
        Ok((repr, r.pos()))
    }
}

/// A flow record (sFlow v5 §5 `flow_record`): `data_format flow_format; opaque flow_data<>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowRecord {
    /// Enterprise 0 format 1, `sampled_header`.
    SampledHeader(SampledHeader),
    /// Enterprise 0 format 3, `sampled_ipv4`.
    SampledIpv4(SampledIpv4),
    /// Enterprise 0 format 4, `sampled_ipv6`.
    SampledIpv6(SampledIpv6),
    /// Enterprise 0 format 1001, `extended_switch`.
    ExtendedSwitch(ExtendedSwitch),
    /// Enterprise 0 format 1023, `extended_ipv4_tunnel_egress` (outer IPv4 header added
    /// on egress; body is a `sampled_ipv4`).
    Ipv4TunnelEgress(SampledIpv4),
    /// Enterprise 0 format 1024, `extended_ipv4_tunnel_ingress` (outer IPv4 header of a
    /// packet received tunnelled; body is a `sampled_ipv4`).
    Ipv4TunnelIngress(SampledIpv4),
    /// Enterprise 0 format 1025, `extended_ipv6_tunnel_egress` (body `sampled_ipv6`).
    Ipv6TunnelEgress(SampledIpv6),
    /// Enterprise 0 format 1026, `extended_ipv6_tunnel_ingress` (body `sampled_ipv6`).
    Ipv6TunnelIngress(SampledIpv6),
    /// Enterprise 0 format 1029, `extended_vni_egress`: the VNI added on egress.
    VniEgress(u32),
    /// Enterprise 0 format 1030, `extended_vni_ingress`: the VNI of a packet received
    /// tunnelled (e.g. VXLAN).
    VniIngress(u32),
    /// Any other record, kept as its raw body (emitted with XDR padding).
    Unknown {
        /// The record's data format.
        format: DataFormat,
        /// The record body.
        data: Vec<u8>,
    },
}

impl FlowRecord {
    /// The record's `data_format`.
    pub fn data_format(&self) -> DataFormat {
        match self {
            FlowRecord::SampledHeader(_) => flow_format::SAMPLED_HEADER,
            FlowRecord::SampledIpv4(_) => flow_format::SAMPLED_IPV4,
            FlowRecord::SampledIpv6(_) => flow_format::SAMPLED_IPV6,
            FlowRecord::ExtendedSwitch(_) => flow_format::EXTENDED_SWITCH,
            FlowRecord::Ipv4TunnelEgress(_) => flow_format::IPV4_TUNNEL_EGRESS,
            FlowRecord::Ipv4TunnelIngress(_) => flow_format::IPV4_TUNNEL_INGRESS,
            FlowRecord::Ipv6TunnelEgress(_) => flow_format::IPV6_TUNNEL_EGRESS,
            FlowRecord::Ipv6TunnelIngress(_) => flow_format::IPV6_TUNNEL_INGRESS,
            FlowRecord::VniEgress(_) => flow_format::VNI_EGRESS,
            FlowRecord::VniIngress(_) => flow_format::VNI_INGRESS,
            FlowRecord::Unknown { format, .. } => *format,
        }
    }

    /// Body length without XDR padding (only `Unknown` bodies can need padding).
    fn body_len(&self) -> usize {
        match self {
            FlowRecord::SampledHeader(h) => h.buffer_len(),
            FlowRecord::SampledIpv4(v)
            | FlowRecord::Ipv4TunnelEgress(v)
            | FlowRecord::Ipv4TunnelIngress(v) => v.buffer_len(),
            FlowRecord::SampledIpv6(v)
            | FlowRecord::Ipv6TunnelEgress(v)
            | FlowRecord::Ipv6TunnelIngress(v) => v.buffer_len(),
            FlowRecord::ExtendedSwitch(s) => s.buffer_len(),
            FlowRecord::VniEgress(_) | FlowRecord::VniIngress(_) => 4,
            FlowRecord::Unknown { data, .. } => data.len(),
        }
    }

    /// Length of the whole record on the wire (format and length words included).
    pub fn buffer_len(&self) -> usize {
        8 + pad4(self.body_len())
    }

    /// Emits the record into `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf, self.buffer_len())?;
        self.emit_to(&mut w)?;
        Ok(w.pos())
    }

    pub(crate) fn emit_to(&self, w: &mut Writer<'_>) -> Result<()> {
        let body_len = self.body_len();
        w.u32(self.data_format().0)?;
        w.u32(u32::try_from(body_len).map_err(|_| Error::Length("flow_record"))?)?;
        let mut body = w.sub(pad4(body_len))?;
        match self {
            FlowRecord::SampledHeader(h) => h.emit_to(&mut body),
            FlowRecord::SampledIpv4(v)
            | FlowRecord::Ipv4TunnelEgress(v)
            | FlowRecord::Ipv4TunnelIngress(v) => v.emit_to(&mut body),
            FlowRecord::SampledIpv6(v)
            | FlowRecord::Ipv6TunnelEgress(v)
            | FlowRecord::Ipv6TunnelIngress(v) => v.emit_to(&mut body),
            FlowRecord::ExtendedSwitch(s) => s.emit_to(&mut body),
            FlowRecord::VniEgress(vni) | FlowRecord::VniIngress(vni) => body.u32(*vni),
            FlowRecord::Unknown { data, .. } => body.fixed(data),
        }
    }

    /// Parses a whole record; returns it and the bytes consumed. Records of other
    /// formats become [`FlowRecord::Unknown`]. A known body must fill its length field
    /// exactly.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let format = DataFormat(r.u32()?);
        let data = r.opaque()?;
        let (record, used) = match format {
            flow_format::SAMPLED_HEADER => {
                let (h, n) = SampledHeader::parse(data)?;
                (FlowRecord::SampledHeader(h), n)
            }
            flow_format::SAMPLED_IPV4
            | flow_format::IPV4_TUNNEL_EGRESS
            | flow_format::IPV4_TUNNEL_INGRESS => {
                let (v, n) = SampledIpv4::parse(data)?;
                let rec = match format {
                    flow_format::SAMPLED_IPV4 => FlowRecord::SampledIpv4(v),
                    flow_format::IPV4_TUNNEL_EGRESS => FlowRecord::Ipv4TunnelEgress(v),
                    _ => FlowRecord::Ipv4TunnelIngress(v),
                };
                (rec, n)
            }
            flow_format::SAMPLED_IPV6
            | flow_format::IPV6_TUNNEL_EGRESS
            | flow_format::IPV6_TUNNEL_INGRESS => {
                let (v, n) = SampledIpv6::parse(data)?;
                let rec = match format {
                    flow_format::SAMPLED_IPV6 => FlowRecord::SampledIpv6(v),
                    flow_format::IPV6_TUNNEL_EGRESS => FlowRecord::Ipv6TunnelEgress(v),
                    _ => FlowRecord::Ipv6TunnelIngress(v),
                };
                (rec, n)
            }
            flow_format::EXTENDED_SWITCH => {
                let (s, n) = ExtendedSwitch::parse(data)?;
                (FlowRecord::ExtendedSwitch(s), n)
            }
            flow_format::VNI_EGRESS | flow_format::VNI_INGRESS => {
                let vni = Reader::new(data).u32()?;
                let rec = if format == flow_format::VNI_EGRESS {
                    FlowRecord::VniEgress(vni)
                } else {
                    FlowRecord::VniIngress(vni)
                };
                (rec, 4)
            }
            _ => {
                let rec = FlowRecord::Unknown {
                    format,
                    data: data.to_vec(),
                };
                (rec, data.len())
            }
        };
        if used != data.len() {
            return Err(Error::Length("flow_record"));
        }
        Ok((record, r.pos()))
    }
}

/// Generic interface counters, sFlow v5 §5 `if_counters`, enterprise 0 format 1 (RFC 2233
/// ifTable/ifXTable values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct GenericInterfaceCounters {
    pub if_index: u32,
    pub if_type: u32,
    pub if_speed: u64,
    /// 0 unknown, 1 full-duplex, 2 half-duplex, 3 in, 4 out.
    pub if_direction: u32,
    /// Bit 0 ifAdminStatus up, bit 1 ifOperStatus up.
    pub if_status: u32,
    pub if_in_octets: u64,
    pub if_in_ucast_pkts: u32,
    pub if_in_multicast_pkts: u32,
    pub if_in_broadcast_pkts: u32,
    pub if_in_discards: u32,
    pub if_in_errors: u32,
    pub if_in_unknown_protos: u32,
    pub if_out_octets: u64,
    pub if_out_ucast_pkts: u32,
    pub if_out_multicast_pkts: u32,
    pub if_out_broadcast_pkts: u32,
    pub if_out_discards: u32,
    pub if_out_errors: u32,
    pub if_promiscuous_mode: u32,
}

impl GenericInterfaceCounters {
    /// Length of the body on the wire (88 bytes).
    pub const fn buffer_len(&self) -> usize {
        88
    }

    /// Emits the body into `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf, self.buffer_len())?;
        self.emit_to(&mut w)?;
        Ok(w.pos())
    }

    pub(crate) fn emit_to(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u32(self.if_index)?;
        w.u32(self.if_type)?;
        w.u64(self.if_speed)?;
        w.u32(self.if_direction)?;
        w.u32(self.if_status)?;
        w.u64(self.if_in_octets)?;
        w.u32(self.if_in_ucast_pkts)?;
        w.u32(self.if_in_multicast_pkts)?;
        w.u32(self.if_in_broadcast_pkts)?;
        w.u32(self.if_in_discards)?;
        w.u32(self.if_in_errors)?;
        w.u32(self.if_in_unknown_protos)?;
        w.u64(self.if_out_octets)?;
        w.u32(self.if_out_ucast_pkts)?;
        w.u32(self.if_out_multicast_pkts)?;
        w.u32(self.if_out_broadcast_pkts)?;
        w.u32(self.if_out_discards)?;
        w.u32(self.if_out_errors)?;
        w.u32(self.if_promiscuous_mode)
    }

    /// Parses a body; returns it and the bytes consumed.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let repr = GenericInterfaceCounters {
            if_index: r.u32()?,
            if_type: r.u32()?,
            if_speed: r.u64()?,
            if_direction: r.u32()?,
            if_status: r.u32()?,
            if_in_octets: r.u64()?,
            if_in_ucast_pkts: r.u32()?,
            if_in_multicast_pkts: r.u32()?,
            if_in_broadcast_pkts: r.u32()?,
            if_in_discards: r.u32()?,
            if_in_errors: r.u32()?,
            if_in_unknown_protos: r.u32()?,
            if_out_octets: r.u64()?,
            if_out_ucast_pkts: r.u32()?,
            if_out_multicast_pkts: r.u32()?,
            if_out_broadcast_pkts: r.u32()?,
            if_out_discards: r.u32()?,
            if_out_errors: r.u32()?,
            if_promiscuous_mode: r.u32()?,
        };
        Ok((repr, r.pos()))
    }
}

/// Ethernet interface counters, sFlow v5 §5 `ethernet_counters`, enterprise 0 format 2
/// (RFC 2358 dot3StatsTable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct EthernetCounters {
    pub dot3_stats_alignment_errors: u32,
    pub dot3_stats_fcs_errors: u32,
    pub dot3_stats_single_collision_frames: u32,
    pub dot3_stats_multiple_collision_frames: u32,
    pub dot3_stats_sqe_test_errors: u32,
    pub dot3_stats_deferred_transmissions: u32,
    pub dot3_stats_late_collisions: u32,
    pub dot3_stats_excessive_collisions: u32,
    pub dot3_stats_internal_mac_transmit_errors: u32,
    pub dot3_stats_carrier_sense_errors: u32,
    pub dot3_stats_frame_too_longs: u32,
    pub dot3_stats_internal_mac_receive_errors: u32,
    pub dot3_stats_symbol_errors: u32,
}

impl EthernetCounters {
    /// Length of the body on the wire (52 bytes).
    pub const fn buffer_len(&self) -> usize {
        52
    }

    fn words(&self) -> [u32; 13] {
        [
            self.dot3_stats_alignment_errors,
            self.dot3_stats_fcs_errors,
            self.dot3_stats_single_collision_frames,
            self.dot3_stats_multiple_collision_frames,
            self.dot3_stats_sqe_test_errors,
            self.dot3_stats_deferred_transmissions,
            self.dot3_stats_late_collisions,
            self.dot3_stats_excessive_collisions,
            self.dot3_stats_internal_mac_transmit_errors,
            self.dot3_stats_carrier_sense_errors,
            self.dot3_stats_frame_too_longs,
            self.dot3_stats_internal_mac_receive_errors,
            self.dot3_stats_symbol_errors,
        ]
    }

    /// Emits the body into `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf, self.buffer_len())?;
        self.emit_to(&mut w)?;
        Ok(w.pos())
    }

    pub(crate) fn emit_to(&self, w: &mut Writer<'_>) -> Result<()> {
        self.words().iter().try_for_each(|&v| w.u32(v))
    }

    /// Parses a body; returns it and the bytes consumed.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let mut v = [0u32; 13];
        for slot in &mut v {
            *slot = r.u32()?;
        }
        let repr = EthernetCounters {
            dot3_stats_alignment_errors: v[0],
            dot3_stats_fcs_errors: v[1],
            dot3_stats_single_collision_frames: v[2],
            dot3_stats_multiple_collision_frames: v[3],
            dot3_stats_sqe_test_errors: v[4],
            dot3_stats_deferred_transmissions: v[5],
            dot3_stats_late_collisions: v[6],
            dot3_stats_excessive_collisions: v[7],
            dot3_stats_internal_mac_transmit_errors: v[8],
            dot3_stats_carrier_sense_errors: v[9],
            dot3_stats_frame_too_longs: v[10],
            dot3_stats_internal_mac_receive_errors: v[11],
            dot3_stats_symbol_errors: v[12],
        };
        Ok((repr, r.pos()))
    }
}

/// Port name, sFlow OpenFlow structures (sflow.org `sflow_openflow.txt`) `portName`,
/// enterprise 0 format 1005: `string name<255>`.
///
/// A name longer than 255 bytes is cut, on emit, to the longest prefix of at most 255
/// bytes that ends on a UTF-8 character boundary.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortName {
    /// The interface name.
    pub name: String,
}

impl PortName {
    /// Maximum length of the name on the wire.
    pub const MAX_LEN: usize = 255;

    /// The name as emitted (cut to at most 255 bytes on a character boundary).
    pub fn wire_name(&self) -> &str {
        let mut end = self.name.len().min(Self::MAX_LEN);
        while !self.name.is_char_boundary(end) {
            end -= 1;
        }
        &self.name[..end]
    }

    /// Length of the body on the wire.
    pub fn buffer_len(&self) -> usize {
        4 + pad4(self.wire_name().len())
    }

    /// Emits the body into `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf, self.buffer_len())?;
        self.emit_to(&mut w)?;
        Ok(w.pos())
    }

    pub(crate) fn emit_to(&self, w: &mut Writer<'_>) -> Result<()> {
        w.opaque(self.wire_name().as_bytes())
    }

    /// Parses a body; returns it and the bytes consumed. Names longer than 255 bytes are
    /// accepted; names that are not UTF-8 are rejected with [`Error::Utf8`].
    pub fn parse(buf: &[u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let name = core::str::from_utf8(r.opaque()?).map_err(|_| Error::Utf8)?;
        Ok((
            PortName {
                name: name.to_owned(),
            },
            r.pos(),
        ))
    }
}

/// A counter record (sFlow v5 §5 `counter_record`):
/// `data_format counter_format; opaque counter_data<>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterRecord {
    /// Enterprise 0 format 1, `if_counters`.
    GenericInterface(GenericInterfaceCounters),
    /// Enterprise 0 format 2, `ethernet_counters`.
    Ethernet(EthernetCounters),
    /// Enterprise 0 format 1005, `portName`.
    PortName(PortName),
    /// Any other record, kept as its raw body (emitted with XDR padding).
    Unknown {
        /// The record's data format.
        format: DataFormat,
        /// The record body.
        data: Vec<u8>,
    },
}

impl CounterRecord {
    /// The record's `data_format`.
    pub fn data_format(&self) -> DataFormat {
        match self {
            CounterRecord::GenericInterface(_) => counter_format::GENERIC_INTERFACE,
            CounterRecord::Ethernet(_) => counter_format::ETHERNET,
            CounterRecord::PortName(_) => counter_format::PORT_NAME,
            CounterRecord::Unknown { format, .. } => *format,
        }
    }

    /// Body length without XDR padding (only `Unknown` bodies can need padding).
    fn body_len(&self) -> usize {
        match self {
            CounterRecord::GenericInterface(c) => c.buffer_len(),
            CounterRecord::Ethernet(c) => c.buffer_len(),
            CounterRecord::PortName(p) => p.buffer_len(),
            CounterRecord::Unknown { data, .. } => data.len(),
        }
    }

    /// Length of the whole record on the wire (format and length words included).
    pub fn buffer_len(&self) -> usize {
        8 + pad4(self.body_len())
    }

    /// Emits the record into `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf, self.buffer_len())?;
        self.emit_to(&mut w)?;
        Ok(w.pos())
    }

    pub(crate) fn emit_to(&self, w: &mut Writer<'_>) -> Result<()> {
        let body_len = self.body_len();
        w.u32(self.data_format().0)?;
        w.u32(u32::try_from(body_len).map_err(|_| Error::Length("counter_record"))?)?;
        let mut body = w.sub(pad4(body_len))?;
        match self {
            CounterRecord::GenericInterface(c) => c.emit_to(&mut body),
            CounterRecord::Ethernet(c) => c.emit_to(&mut body),
            CounterRecord::PortName(p) => p.emit_to(&mut body),
            CounterRecord::Unknown { data, .. } => body.fixed(data),
        }
    }

    /// Parses a whole record; returns it and the bytes consumed. Records of other
    /// formats become [`CounterRecord::Unknown`]. A known body must fill its length field
    /// exactly.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let format = DataFormat(r.u32()?);
        let data = r.opaque()?;
        let (record, used) = match format {
            counter_format::GENERIC_INTERFACE => {
                let (c, n) = GenericInterfaceCounters::parse(data)?;
                (CounterRecord::GenericInterface(c), n)
            }
            counter_format::ETHERNET => {
                let (c, n) = EthernetCounters::parse(data)?;
                (CounterRecord::Ethernet(c), n)
            }
            counter_format::PORT_NAME => {
                let (p, n) = PortName::parse(data)?;
                (CounterRecord::PortName(p), n)
            }
            _ => {
                let rec = CounterRecord::Unknown {
                    format,
                    data: data.to_vec(),
                };
                (rec, data.len())
            }
        };
        if used != data.len() {
            return Err(Error::Length("counter_record"));
        }
        Ok((record, r.pos()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{cat, words};

    fn switch() -> ExtendedSwitch {
        ExtendedSwitch {
            src_vlan: 10,
            src_priority: 1,
            dst_vlan: 20,
            dst_priority: 2,
        }
    }

    fn ipv4() -> SampledIpv4 {
        SampledIpv4 {
            length: 60,
            protocol: 17,
            src_ip: Ipv4Addr::new(10, 0, 0, 1),
            dst_ip: Ipv4Addr::new(10, 0, 0, 2),
            src_port: 40000,
            dst_port: 4789,
            tcp_flags: 0,
            tos: 0x10,
        }
    }

    fn ipv4_bytes() -> Vec<u8> {
        words(&[60, 17, 0x0A00_0001, 0x0A00_0002, 40000, 4789, 0, 0x10])
    }

    fn ipv6() -> SampledIpv6 {
        SampledIpv6 {
            length: 100,
            protocol: 6,
            src_ip: "2001:db8::1".parse().unwrap(),
            dst_ip: "2001:db8::2".parse().unwrap(),
            src_port: 443,
            dst_port: 51000,
            tcp_flags: 0x18,
            priority: 3,
        }
    }

    fn ipv6_bytes() -> Vec<u8> {
        words(&[
            100,
            6,
            0x2001_0db8,
            0,
            0,
            1,
            0x2001_0db8,
            0,
            0,
            2,
            443,
            51000,
            0x18,
            3,
        ])
    }

    fn generic() -> GenericInterfaceCounters {
        GenericInterfaceCounters {
            if_index: 3,
            if_type: 6,
            if_speed: 10_000_000_000,
            if_direction: 1,
            if_status: 3,
            if_in_octets: 0x1_0000_0002,
            if_in_ucast_pkts: 11,
            if_in_multicast_pkts: 12,
            if_in_broadcast_pkts: 13,
            if_in_discards: 14,
            if_in_errors: 15,
            if_in_unknown_protos: 16,
            if_out_octets: 0x2_0000_0003,
            if_out_ucast_pkts: 21,
            if_out_multicast_pkts: 22,
            if_out_broadcast_pkts: 23,
            if_out_discards: 24,
            if_out_errors: 25,
            if_promiscuous_mode: 1,
        }
    }

    fn generic_bytes() -> Vec<u8> {
        words(&[
            3,
            6,
            0x2,
            0x540B_E400,
            1,
            3,
            1,
            2,
            11,
            12,
            13,
            14,
            15,
            16,
            2,
            3,
            21,
            22,
            23,
            24,
            25,
            1,
        ])
    }

    fn ethernet() -> EthernetCounters {
        EthernetCounters {
            dot3_stats_alignment_errors: 1,
            dot3_stats_fcs_errors: 2,
            dot3_stats_single_collision_frames: 3,
            dot3_stats_multiple_collision_frames: 4,
            dot3_stats_sqe_test_errors: 5,
            dot3_stats_deferred_transmissions: 6,
            dot3_stats_late_collisions: 7,
            dot3_stats_excessive_collisions: 8,
            dot3_stats_internal_mac_transmit_errors: 9,
            dot3_stats_carrier_sense_errors: 10,
            dot3_stats_frame_too_longs: 11,
            dot3_stats_internal_mac_receive_errors: 12,
            dot3_stats_symbol_errors: 13,
        }
    }

    wire_tests!(
        sampled_header,
        SampledHeader,
        SampledHeader {
            protocol: header_protocol::ETHERNET_ISO88023,
            frame_length: 64,
            stripped: 4,
            header: vec![0xDE, 0xAD, 0xBE, 0xEF, 0x01],
        },
        cat(&[
            &words(&[1, 64, 4, 5]),
            &[0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0, 0, 0]
        ])
    );

    wire_tests!(sampled_ipv4, SampledIpv4, ipv4(), ipv4_bytes());
    wire_tests!(sampled_ipv6, SampledIpv6, ipv6(), ipv6_bytes());
    wire_tests!(
        extended_switch,
        ExtendedSwitch,
        switch(),
        words(&[10, 1, 20, 2])
    );

    wire_tests!(
        flow_record_sampled_header,
        FlowRecord,
        FlowRecord::SampledHeader(SampledHeader {
            protocol: 1,
            frame_length: 1518,
            stripped: 4,
            header: vec![1, 2, 3, 4, 5, 6, 7, 8],
        }),
        cat(&[&words(&[1, 24, 1, 1518, 4, 8]), &[1, 2, 3, 4, 5, 6, 7, 8]])
    );
    wire_tests!(
        flow_record_extended_switch,
        FlowRecord,
        FlowRecord::ExtendedSwitch(switch()),
        words(&[1001, 16, 10, 1, 20, 2])
    );
    wire_tests!(
        flow_record_vni_ingress,
        FlowRecord,
        FlowRecord::VniIngress(0x12_3456),
        words(&[1030, 4, 0x12_3456])
    );
    wire_tests!(
        flow_record_vni_egress,
        FlowRecord,
        FlowRecord::VniEgress(42),
        words(&[1029, 4, 42])
    );
    wire_tests!(
        flow_record_ipv4_tunnel_ingress,
        FlowRecord,
        FlowRecord::Ipv4TunnelIngress(ipv4()),
        cat(&[&words(&[1024, 32]), &ipv4_bytes()])
    );
    wire_tests!(
        flow_record_ipv6_tunnel_ingress,
        FlowRecord,
        FlowRecord::Ipv6TunnelIngress(ipv6()),
        cat(&[&words(&[1026, 56]), &ipv6_bytes()])
    );
    wire_tests!(
        flow_record_unknown,
        FlowRecord,
        FlowRecord::Unknown {
            format: DataFormat::new(4413, 7),
            data: vec![1, 2, 3],
        },
        cat(&[&words(&[(4413 << 12) | 7, 3]), &[1, 2, 3, 0]])
    );

    wire_tests!(
        generic_interface_counters,
        GenericInterfaceCounters,
        generic(),
        generic_bytes()
    );
    wire_tests!(
        ethernet_counters,
        EthernetCounters,
        ethernet(),
        words(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])
    );
    wire_tests!(
        port_name,
        PortName,
        PortName {
            name: "eth0.100".into()
        },
        cat(&[&words(&[8]), b"eth0.100"])
    );
    wire_tests!(
        counter_record_generic,
        CounterRecord,
        CounterRecord::GenericInterface(generic()),
        cat(&[&words(&[1, 88]), &generic_bytes()])
    );
    wire_tests!(
        counter_record_ethernet,
        CounterRecord,
        CounterRecord::Ethernet(ethernet()),
        cat(&[
            &words(&[2, 52]),
            &words(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])
        ])
    );
    wire_tests!(
        counter_record_port_name,
        CounterRecord,
        CounterRecord::PortName(PortName {
            name: "vnet12".into()
        }),
        cat(&[&words(&[1005, 12, 6]), b"vnet12", &[0, 0]])
    );

    #[test]
    fn port_name_longer_than_255_is_cut_on_a_char_boundary() {
        // 127 two-byte characters (254 bytes) + one more two-byte character: 256 bytes.
        let name = "é".repeat(128);
        let p = PortName { name };
        assert_eq!(p.wire_name().len(), 254);
        let mut buf = vec![0xA5; p.buffer_len()];
        assert_eq!(p.emit(&mut buf), Ok(4 + 256));
        let (back, _) = PortName::parse(&buf).unwrap();
        assert_eq!(back.name.chars().count(), 127);
        let ascii = PortName {
            name: "x".repeat(300),
        };
        assert_eq!(ascii.wire_name().len(), 255);
        assert_eq!(ascii.buffer_len(), 4 + 256);
    }

    #[test]
    fn port_name_rejects_non_utf8() {
        let b = cat(&[&words(&[2]), &[0xFF, 0xFE, 0, 0]]);
        assert_eq!(PortName::parse(&b), Err(Error::Utf8));
    }

    #[test]
    fn record_length_must_match_known_body() {
        // extended_switch announcing 20 bytes of body: 4 bytes too many.
        let b = words(&[1001, 20, 10, 1, 20, 2, 0]);
        assert_eq!(FlowRecord::parse(&b), Err(Error::Length("flow_record")));
        // ethernet counters announcing 48 bytes: one word missing.
        let mut b = words(&[2, 48]);
        b.extend(words(&[0; 12]));
        assert_eq!(CounterRecord::parse(&b), Err(Error::Truncated));
    }

    #[test]
    fn ethernet_header_helper_accounts_for_fcs() {
        let frame = [0x11u8; 200];
        let h = SampledHeader::ethernet(&frame, 128);
        assert_eq!(h.protocol, 1);
        assert_eq!(h.frame_length, 204);
        assert_eq!(h.stripped, 4);
        assert_eq!(h.header.len(), 128);
        assert_eq!(SampledHeader::ethernet(&frame[..60], 128).header.len(), 60);
    }

    #[test]
    fn header_padding_is_written_as_zero() {
        for len in 0..9 {
            let h = SampledHeader {
                protocol: 1,
                frame_length: 100,
                stripped: 4,
                header: vec![0x5A; len],
            };
            let mut buf = vec![0xA5; h.buffer_len()];
            h.emit(&mut buf).unwrap();
            assert_eq!(buf.len() % 4, 0);
            assert!(buf[16 + len..].iter().all(|&b| b == 0), "len {len}");
        }
    }
}
