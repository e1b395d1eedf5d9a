//! The templates and options templates this crate exports, and the encoding of
//! [`FlowRecord`]s and options data into data records that follow them.
//!
//! | id  | kind                        | IPFIX                               | NetFlow v9                 |
//! |-----|-----------------------------|-------------------------------------|----------------------------|
//! | 256 | flow, IPv4                  | yes                                 | yes                        |
//! | 257 | flow, IPv6                  | yes                                 | yes                        |
//! | 258 | flow, IPv4 + 351            | yes (records with layer2SegmentId)  | no (351 is not sent in v9) |
//! | 259 | flow, IPv6 + 351            | yes                                 | no                         |
//! | 260 | options: sampling           | scope observationDomainId           | scope System (source id)   |
//! | 261 | options: ifaces             | scope ingressInterface              | scope Interface (ifIndex)  |
//! | 262 | options: stats              | scope observationDomainId           | scope System (source id)   |
//! | 263 | flow, IPv4 + selector       | + selectorId 302 (8)                | + FLOW_SAMPLER_ID 48 (4)   |
//! | 264 | flow, IPv6 + selector       | + selectorId 302 (8)                | + FLOW_SAMPLER_ID 48 (4)   |
//! | 265 | flow, IPv4 + 351 + selector | yes                                 | no                         |
//! | 266 | flow, IPv6 + 351 + selector | yes                                 | no                         |
//! | 267 | options: selector           | scope selectorId                    | scope System (source id)   |
//!
//! Templates 263–267 carry records whose sampling differs from the observation domain's
//! ([`FlowRecord::sampling`]): the record names its selector (RFC 5477 §8.1.1 selectorId;
//! v9 FLOW_SAMPLER_ID, RFC 3954 §8) and an options record of template 267 describes it. The
//! selector id is the 1-in-N rate itself, so it needs no state to assign and a reader that
//! missed the options still sees the rate. They are sent only once a stream has such a
//! record (see the encoder).
//!
//! Field lists: see [`flow_fields_of`] and the options template functions.

use crate::encoder::ExportClock;
use crate::flow::{ExporterStats, FlowRecord, InterfaceInfo, Sampling};
use crate::ie::{self, v9_scope, VARIABLE_LENGTH};
use crate::template::{FieldSpec, TemplateRecord};
use crate::Version;
use std::net::IpAddr;

/// Flow template, IPv4.
pub const FLOW_V4: u16 = 256;
/// Flow template, IPv6.
pub const FLOW_V6: u16 = 257;
/// Flow template, IPv4 with layer2SegmentId (IPFIX only).
pub const FLOW_V4_L2: u16 = 258;
/// Flow template, IPv6 with layer2SegmentId (IPFIX only).
pub const FLOW_V6_L2: u16 = 259;
/// Options template: sampling parameters.
pub const OPTIONS_SAMPLING: u16 = 260;
/// Options template: interface names.
pub const OPTIONS_INTERFACES: u16 = 261;
/// Options template: exporting-process statistics.
pub const OPTIONS_STATS: u16 = 262;
/// Flow template, IPv4, with a selector.
pub const FLOW_V4_SEL: u16 = 263;
/// Flow template, IPv6, with a selector.
pub const FLOW_V6_SEL: u16 = 264;
/// Flow template, IPv4 with layer2SegmentId and a selector (IPFIX only).
pub const FLOW_V4_L2_SEL: u16 = 265;
/// Flow template, IPv6 with layer2SegmentId and a selector (IPFIX only).
pub const FLOW_V6_L2_SEL: u16 = 266;
/// Options template: one selector (per-record sampling rate), scoped by its id.
pub const OPTIONS_SELECTOR: u16 = 267;

/// Bytes of selectorId in IPFIX (its IANA type, unsigned64; pmacct reads it only at 8).
pub const IPFIX_SELECTOR_ID_LEN: u16 = 8;
/// Bytes of FLOW_SAMPLER_ID in NetFlow v9 (pmacct reads 1, 2 or 4; nfdump any).
pub const V9_SAMPLER_ID_LEN: u16 = 4;

/// Bytes of the zero-padded fixed IF_NAME field in NetFlow v9.
pub const V9_IF_NAME_LEN: u16 = 32;
/// Bytes of the zero-padded fixed IF_DESC field in NetFlow v9.
pub const V9_IF_DESC_LEN: u16 = 64;
/// Longest interfaceName sent in IPFIX (variable length), in bytes.
pub const IPFIX_IF_NAME_MAX: usize = 64;
/// Longest interfaceDescription sent in IPFIX (variable length), in bytes.
pub const IPFIX_IF_DESC_MAX: usize = 128;

/// Which flow template a record needs: address family, layer2SegmentId, selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowShape {
    /// IPv6 addresses (else IPv4).
    pub v6: bool,
    /// layer2SegmentId present (IPFIX only; ignored for v9).
    pub l2: bool,
    /// A selector field naming the record's own sampling ([`FlowRecord::sampling`]).
    pub selector: bool,
}

impl FlowShape {
    /// The shape `rec` is exported with in `version`.
    pub fn of(rec: &FlowRecord, version: Version) -> FlowShape {
        FlowShape {
            v6: is_v6(rec),
            l2: rec.layer2_segment_id.is_some() && version == Version::Ipfix,
            selector: rec.sampling.is_some(),
        }
    }
}

/// The selector field of the flow templates 263–266 (and the selector of template 267):
/// IPFIX selectorId (RFC 5477 §8.1.1), v9 FLOW_SAMPLER_ID (RFC 3954 §8).
pub fn selector_field(version: Version) -> FieldSpec {
    match version {
        Version::Ipfix => FieldSpec::new(ie::SELECTOR_ID, IPFIX_SELECTOR_ID_LEN),
        Version::NetflowV9 => FieldSpec::new(ie::FLOW_SAMPLER_ID, V9_SAMPLER_ID_LEN),
    }
}

/// Field list of a flow template: (IE id, length) for `version` and `shape`. The order is
/// the record order; the selector field, when present, comes last.
pub fn flow_fields_of(version: Version, shape: FlowShape) -> Vec<FieldSpec> {
    let ipfix = version == Version::Ipfix;
    let (src, dst, alen) = if shape.v6 {
        (ie::SOURCE_IPV6_ADDRESS, ie::DESTINATION_IPV6_ADDRESS, 16)
    } else {
        (ie::SOURCE_IPV4_ADDRESS, ie::DESTINATION_IPV4_ADDRESS, 4)
    };
    let (start, end, tlen) = if ipfix {
        (ie::FLOW_START_MILLISECONDS, ie::FLOW_END_MILLISECONDS, 8)
    } else {
        (ie::FIRST_SWITCHED, ie::LAST_SWITCHED, 4)
    };
    let icmp = if shape.v6 {
        ie::ICMP_TYPE_CODE_IPV6
    } else {
        ie::ICMP_TYPE_CODE_IPV4
    };
    let mut f = vec![
        FieldSpec::new(src, alen),
        FieldSpec::new(dst, alen),
        FieldSpec::new(ie::SOURCE_TRANSPORT_PORT, 2),
        FieldSpec::new(ie::DESTINATION_TRANSPORT_PORT, 2),
        FieldSpec::new(ie::PROTOCOL_IDENTIFIER, 1),
        FieldSpec::new(ie::OCTET_DELTA_COUNT, 8),
        FieldSpec::new(ie::PACKET_DELTA_COUNT, 8),
        FieldSpec::new(start, tlen),
        FieldSpec::new(end, tlen),
        FieldSpec::new(ie::TCP_CONTROL_BITS, if ipfix { 2 } else { 1 }),
        FieldSpec::new(icmp, 2),
        FieldSpec::new(ie::IP_CLASS_OF_SERVICE, 1),
        FieldSpec::new(ie::MINIMUM_TTL, 1),
        FieldSpec::new(ie::MAXIMUM_TTL, 1),
        FieldSpec::new(ie::SOURCE_MAC_ADDRESS, 6),
        FieldSpec::new(ie::DESTINATION_MAC_ADDRESS, 6),
        FieldSpec::new(ie::VLAN_ID, 2),
        FieldSpec::new(ie::INGRESS_INTERFACE, 4),
        FieldSpec::new(ie::EGRESS_INTERFACE, 4),
        FieldSpec::new(ie::FLOW_DIRECTION, 1),
        FieldSpec::new(ie::FLOW_END_REASON, 1),
        FieldSpec::new(ie::IP_VERSION, 1),
    ];
    if ipfix && shape.l2 {
        f.push(FieldSpec::new(ie::LAYER2_SEGMENT_ID, 8));
    }
    if shape.selector {
        f.push(selector_field(version));
    }
    f
}

/// Field list of a plain flow template (no selector): [`flow_fields_of`].
pub fn flow_fields(version: Version, v6: bool, l2: bool) -> Vec<FieldSpec> {
    flow_fields_of(
        version,
        FlowShape {
            v6,
            l2,
            selector: false,
        },
    )
}

/// Template id used for a record of this shape (layer2SegmentId counts in IPFIX only).
pub fn flow_template_id_of(version: Version, shape: FlowShape) -> u16 {
    let l2 = shape.l2 && version == Version::Ipfix;
    match (shape.selector, shape.v6, l2) {
        (false, false, false) => FLOW_V4,
        (false, true, false) => FLOW_V6,
        (false, false, true) => FLOW_V4_L2,
        (false, true, true) => FLOW_V6_L2,
        (true, false, false) => FLOW_V4_SEL,
        (true, true, false) => FLOW_V6_SEL,
        (true, false, true) => FLOW_V4_L2_SEL,
        (true, true, true) => FLOW_V6_L2_SEL,
    }
}

/// Template id used for a record of this family / layer2SegmentId presence, no selector.
pub fn flow_template_id(version: Version, v6: bool, l2: bool) -> u16 {
    flow_template_id_of(
        version,
        FlowShape {
            v6,
            l2,
            selector: false,
        },
    )
}

/// The flow template record for `version` and `shape`.
pub fn flow_template_of(version: Version, shape: FlowShape) -> TemplateRecord {
    TemplateRecord {
        template_id: flow_template_id_of(version, shape),
        scope_field_count: 0,
        fields: flow_fields_of(version, shape),
    }
}

/// The plain flow template record for `version`, family and layer2SegmentId presence.
pub fn flow_template(version: Version, v6: bool, l2: bool) -> TemplateRecord {
    flow_template_of(
        version,
        FlowShape {
            v6,
            l2,
            selector: false,
        },
    )
}

fn templates_with(version: Version, selector: bool) -> Vec<TemplateRecord> {
    let l2s: &[bool] = match version {
        Version::Ipfix => &[false, true],
        Version::NetflowV9 => &[false],
    };
    let mut v = Vec::new();
    for &l2 in l2s {
        for v6 in [false, true] {
            v.push(flow_template_of(version, FlowShape { v6, l2, selector }));
        }
    }
    v.sort_by_key(|t| t.template_id);
    v
}

/// The plain flow templates exported for `version` (256–259), sent with every refresh.
pub fn flow_templates(version: Version) -> Vec<TemplateRecord> {
    templates_with(version, false)
}

/// The flow templates with a selector (263–266), sent once a stream has a record with
/// [`FlowRecord::sampling`].
pub fn selector_flow_templates(version: Version) -> Vec<TemplateRecord> {
    templates_with(version, true)
}

fn domain_scope(version: Version) -> FieldSpec {
    match version {
        Version::Ipfix => FieldSpec::new(ie::OBSERVATION_DOMAIN_ID, 4),
        Version::NetflowV9 => FieldSpec::new(v9_scope::SYSTEM, 4),
    }
}

/// Sampling options template (id 260).
///
/// IPFIX: scope observationDomainId(4); samplingInterval(4), samplingAlgorithm(1),
/// samplingPacketInterval(4), samplingPacketSpace(4), selectorAlgorithm(2).
/// v9: scope System(4); SAMPLING_INTERVAL(4), SAMPLING_ALGORITHM(1).
pub fn sampling_template(version: Version) -> TemplateRecord {
    let mut fields = vec![
        domain_scope(version),
        FieldSpec::new(ie::SAMPLING_INTERVAL, 4),
        FieldSpec::new(ie::SAMPLING_ALGORITHM, 1),
    ];
    if version == Version::Ipfix {
        fields.extend([
            FieldSpec::new(ie::SAMPLING_PACKET_INTERVAL, 4),
            FieldSpec::new(ie::SAMPLING_PACKET_SPACE, 4),
            FieldSpec::new(ie::SELECTOR_ALGORITHM, 2),
        ]);
    }
    TemplateRecord {
        template_id: OPTIONS_SAMPLING,
        scope_field_count: 1,
        fields,
    }
}

/// Interface options template (id 261).
///
/// IPFIX: scope ingressInterface(4); interfaceName(variable), interfaceDescription(variable).
/// v9: scope Interface(4); IF_NAME(32, zero-padded), IF_DESC(64, zero-padded).
pub fn interfaces_template(version: Version) -> TemplateRecord {
    let fields = match version {
        Version::Ipfix => vec![
            FieldSpec::new(ie::INGRESS_INTERFACE, 4),
            FieldSpec::new(ie::INTERFACE_NAME, VARIABLE_LENGTH),
            FieldSpec::new(ie::INTERFACE_DESCRIPTION, VARIABLE_LENGTH),
        ],
        Version::NetflowV9 => vec![
            FieldSpec::new(v9_scope::INTERFACE, 4),
            FieldSpec::new(ie::INTERFACE_NAME, V9_IF_NAME_LEN),
            FieldSpec::new(ie::INTERFACE_DESCRIPTION, V9_IF_DESC_LEN),
        ],
    };
    TemplateRecord {
        template_id: OPTIONS_INTERFACES,
        scope_field_count: 1,
        fields,
    }
}

/// Exporting-process statistics options template (id 262).
///
/// scope observationDomainId(4) (v9: System(4)); exportedMessageTotalCount(8),
/// exportedFlowRecordTotalCount(8), ignoredPacketTotalCount(8).
pub fn stats_template(version: Version) -> TemplateRecord {
    TemplateRecord {
        template_id: OPTIONS_STATS,
        scope_field_count: 1,
        fields: vec![
            domain_scope(version),
            FieldSpec::new(ie::EXPORTED_MESSAGE_TOTAL_COUNT, 8),
            FieldSpec::new(ie::EXPORTED_FLOW_RECORD_TOTAL_COUNT, 8),
            FieldSpec::new(ie::IGNORED_PACKET_TOTAL_COUNT, 8),
        ],
    }
}

/// All options templates, in id order.
pub fn options_templates(version: Version) -> Vec<TemplateRecord> {
    vec![
        sampling_template(version),
        interfaces_template(version),
        stats_template(version),
    ]
}

/// Selector options template (id 267): what a selector id in a flow record stands for.
///
/// IPFIX (RFC 5477 §8.1–8.2, scope per RFC 7011 §3.4.2.1): scope selectorId(8);
/// samplingInterval(4), samplingAlgorithm(1), samplingPacketInterval(4),
/// samplingPacketSpace(4), selectorAlgorithm(2) — the fields and order of template 260, so
/// readers that take the older pair and readers that take the RFC 5477 ones agree (nfdump
/// stores 34 and 306 in one slot and keeps the later, 306).
///
/// v9 (RFC 3954 §6.1 / §8, Cisco's sampler options): scope System(4) = source id;
/// FLOW_SAMPLER_ID(4), FLOW_SAMPLER_MODE(1), FLOW_SAMPLER_RANDOM_INTERVAL(4). nfdump reads
/// the sampler only from option (not scope) fields; SAMPLING_INTERVAL / SAMPLING_ALGORITHM are
/// left out because nfdump would take them for the domain-wide rate.
pub fn selector_template(version: Version) -> TemplateRecord {
    let fields = match version {
        Version::Ipfix => vec![
            selector_field(version),
            FieldSpec::new(ie::SAMPLING_INTERVAL, 4),
            FieldSpec::new(ie::SAMPLING_ALGORITHM, 1),
            FieldSpec::new(ie::SAMPLING_PACKET_INTERVAL, 4),
            FieldSpec::new(ie::SAMPLING_PACKET_SPACE, 4),
            FieldSpec::new(ie::SELECTOR_ALGORITHM, 2),
        ],
        Version::NetflowV9 => vec![
            domain_scope(version),
            selector_field(version),
            FieldSpec::new(ie::FLOW_SAMPLER_MODE, 1),
            FieldSpec::new(ie::FLOW_SAMPLER_RANDOM_INTERVAL, 4),
        ],
    };
    TemplateRecord {
        template_id: OPTIONS_SELECTOR,
        scope_field_count: 1,
        fields,
    }
}

/// NetFlow v9 FIRST_SWITCHED / LAST_SWITCHED value of an absolute time: the exporter's
/// sysUptime at `t_ms`, i.e. `uptime_ms - (unix_ms - t_ms)` in wrapping u32 arithmetic.
/// A flow that predates the exporter start yields a wrapped (large) value, which
/// collectors that subtract from the header sysUptime with u32 wrapping read correctly.
pub fn v9_switched(t_ms: u64, clock: &ExportClock) -> u32 {
    let age = clock.unix_ms.wrapping_sub(t_ms) as u32;
    (clock.uptime_ms as u32).wrapping_sub(age)
}

fn addr_bytes(a: IpAddr, v6: bool) -> [u8; 16] {
    let mut out = [0u8; 16];
    match (a, v6) {
        (IpAddr::V4(a), false) => out[..4].copy_from_slice(&a.octets()),
        (IpAddr::V4(a), true) => out = a.to_ipv6_mapped().octets(),
        (IpAddr::V6(a), _) => out = a.octets(),
    }
    out
}

/// Whether `rec` goes out with an IPv6 template (either address IPv6).
pub fn is_v6(rec: &FlowRecord) -> bool {
    rec.src_addr.is_ipv6() || rec.dst_addr.is_ipv6()
}

/// A record's bytes in a stack buffer: fixed-size big-endian writes, no capacity check per
/// field (a flow record is at most 16 + 16 + 62 + 8 + 8 = 110 bytes).
struct RecordBuf {
    b: [u8; 128],
    n: usize,
}

impl RecordBuf {
    #[inline(always)]
    fn put<const N: usize>(&mut self, bytes: [u8; N]) {
        self.b[self.n..self.n + N].copy_from_slice(&bytes);
        self.n += N;
    }
}

/// Append the data record for `rec` (following [`flow_fields_of`], field by field in the
/// same order) to `out`; returns the template id. `clock` is used for the NetFlow v9
/// sysUptime-relative times. Straight-line code rather than a walk over the field list:
/// this is the exporter's per-record cost. The round-trip tests hold the two together, and
/// `records_have_their_template_length` checks every shape's length.
pub fn encode_flow(
    rec: &FlowRecord,
    version: Version,
    clock: &ExportClock,
    out: &mut Vec<u8>,
) -> u16 {
    let shape = FlowShape::of(rec, version);
    let ipfix = version == Version::Ipfix;
    let mut w = RecordBuf { b: [0; 128], n: 0 };
    if shape.v6 {
        w.put(addr_bytes(rec.src_addr, true));
        w.put(addr_bytes(rec.dst_addr, true));
    } else {
        let v4 = |a: IpAddr| match a {
            IpAddr::V4(a) => a.octets(),
            IpAddr::V6(_) => [0; 4],
        };
        w.put(v4(rec.src_addr));
        w.put(v4(rec.dst_addr));
    }
    w.put(rec.src_port.to_be_bytes());
    w.put(rec.dst_port.to_be_bytes());
    w.put([rec.protocol]);
    w.put(rec.octets.to_be_bytes());
    w.put(rec.packets.to_be_bytes());
    if ipfix {
        w.put(rec.start_ms.to_be_bytes());
        w.put(rec.end_ms.to_be_bytes());
        w.put(u16::from(rec.tcp_flags).to_be_bytes());
    } else {
        w.put(v9_switched(rec.start_ms, clock).to_be_bytes());
        w.put(v9_switched(rec.end_ms, clock).to_be_bytes());
        w.put([rec.tcp_flags]);
    }
    w.put(rec.icmp_type_code.to_be_bytes());
    w.put([rec.tos, rec.min_ttl, rec.max_ttl]);
    w.put(rec.src_mac);
    w.put(rec.dst_mac);
    w.put(rec.vlan_id.to_be_bytes());
    w.put(rec.ingress_if.to_be_bytes());
    w.put(rec.egress_if.to_be_bytes());
    w.put([rec.direction, rec.end_reason, if shape.v6 { 6 } else { 4 }]);
    if ipfix && shape.l2 {
        w.put(rec.layer2_segment_id.unwrap_or(0).to_be_bytes());
    }
    if shape.selector {
        let id = selector_id(rec.sampling.unwrap_or(1));
        match version {
            Version::Ipfix => w.put(u64::from(id).to_be_bytes()),
            Version::NetflowV9 => w.put(id.to_be_bytes()),
        }
    }
    out.extend_from_slice(&w.b[..w.n]);
    flow_template_id_of(version, shape)
}

/// Sampling options data record. samplingAlgorithm is 1 (deterministic) for an
/// unsampled stream (interval 1) and 2 (random) otherwise; selectorAlgorithm (RFC 5477)
/// is 1 (systematic count-based, 1 packet selected out of every 1) when unsampled and
/// 3 (random n-out-of-N) otherwise; samplingPacketInterval = 1 and
/// samplingPacketSpace = interval - 1 give the 1-in-N rate the way nfdump/pmacct read it.
pub fn encode_sampling(version: Version, domain: u32, s: Sampling, out: &mut Vec<u8>) {
    out.extend_from_slice(&domain.to_be_bytes());
    encode_sampling_fields(version, s, out);
}

/// The non-scope fields of [`encode_sampling`].
fn encode_sampling_fields(version: Version, s: Sampling, out: &mut Vec<u8>) {
    let n = s.interval.max(1);
    out.extend_from_slice(&n.to_be_bytes());
    out.push(if n == 1 { 1 } else { 2 });
    if version == Version::Ipfix {
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&(n - 1).to_be_bytes());
        out.extend_from_slice(&(if n == 1 { 1u16 } else { 3 }).to_be_bytes());
    }
}

/// The selector id of 1-in-`interval` sampling: the interval itself (0 read as 1).
pub fn selector_id(interval: u32) -> u32 {
    interval.max(1)
}

/// Selector options data record (template 267) for 1-in-`interval` sampling: the selector
/// id, then the rate in the same vocabularies as [`encode_sampling`] (IPFIX) or as Cisco's
/// sampler options (v9: FLOW_SAMPLER_MODE 2 random / 1 deterministic for interval 1,
/// FLOW_SAMPLER_RANDOM_INTERVAL = interval).
pub fn encode_selector(version: Version, domain: u32, interval: u32, out: &mut Vec<u8>) {
    let n = selector_id(interval);
    match version {
        Version::Ipfix => {
            out.extend_from_slice(&u64::from(n).to_be_bytes());
            encode_sampling_fields(version, Sampling { interval: n }, out);
        }
        Version::NetflowV9 => {
            out.extend_from_slice(&domain.to_be_bytes());
            out.extend_from_slice(&n.to_be_bytes());
            out.push(if n == 1 { 1 } else { 2 });
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Longest prefix of `s` that is at most `max` bytes and ends on a char boundary.
pub fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Interface options data record. IPFIX uses variable-length strings (name cut to
/// 64 bytes, description to 128); v9 uses fixed 32 / 64-byte zero-padded fields.
pub fn encode_interface(version: Version, i: &InterfaceInfo, out: &mut Vec<u8>) {
    out.extend_from_slice(&i.index.to_be_bytes());
    match version {
        Version::Ipfix => {
            for (s, max) in [
                (&i.name, IPFIX_IF_NAME_MAX),
                (&i.description, IPFIX_IF_DESC_MAX),
            ] {
                let s = truncate_str(s, max);
                out.push(s.len() as u8);
                out.extend_from_slice(s.as_bytes());
            }
        }
        Version::NetflowV9 => {
            for (s, len) in [(&i.name, V9_IF_NAME_LEN), (&i.description, V9_IF_DESC_LEN)] {
                let s = truncate_str(s, len as usize);
                let start = out.len();
                out.extend_from_slice(s.as_bytes());
                out.resize(start + len as usize, 0);
            }
        }
    }
}

/// Exporting-process statistics options data record.
pub fn encode_stats(domain: u32, s: ExporterStats, out: &mut Vec<u8>) {
    out.extend_from_slice(&domain.to_be_bytes());
    out.extend_from_slice(&s.messages.to_be_bytes());
    out.extend_from_slice(&s.records.to_be_bytes());
    out.extend_from_slice(&s.ignored_packets.to_be_bytes());
}

/// Largest single record (template or data) the encoder can produce for `version`,
/// used to bound `max_payload` from below.
pub fn largest_record(version: Version) -> usize {
    let t = flow_templates(version)
        .iter()
        .chain(selector_flow_templates(version).iter())
        .chain(options_templates(version).iter())
        .chain(std::iter::once(&selector_template(version)))
        .map(|t| t.buffer_len(version))
        .max()
        .unwrap_or(0);
    let iface = match version {
        Version::Ipfix => 4 + 1 + IPFIX_IF_NAME_MAX + 1 + IPFIX_IF_DESC_MAX,
        Version::NetflowV9 => 4 + (V9_IF_NAME_LEN + V9_IF_DESC_LEN) as usize,
    };
    let flow = flow_fields_of(
        version,
        FlowShape {
            v6: true,
            l2: true,
            selector: true,
        },
    )
    .iter()
    .map(|f| f.length as usize)
    .sum::<usize>();
    let selector = selector_template(version).min_record_len();
    t.max(iface).max(flow).max(selector)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(v6: bool, l2: bool, sampling: Option<u32>) -> FlowRecord {
        let (src, dst) = if v6 {
            ("2001:db8::1", "2001:db8::2")
        } else {
            ("10.0.0.1", "10.0.0.2")
        };
        FlowRecord {
            src_addr: src.parse().unwrap(),
            dst_addr: dst.parse().unwrap(),
            src_port: 1,
            dst_port: 2,
            protocol: 6,
            octets: 4,
            packets: 5,
            start_ms: 1_700_000_000_006,
            end_ms: 1_700_000_000_107,
            tcp_flags: 8,
            icmp_type_code: 0,
            tos: 10,
            min_ttl: 11,
            max_ttl: 12,
            src_mac: [1; 6],
            dst_mac: [2; 6],
            vlan_id: 13,
            ingress_if: 14,
            egress_if: 15,
            direction: 1,
            end_reason: 3,
            layer2_segment_id: l2.then_some(18),
            sampling,
        }
    }

    #[test]
    fn records_have_their_template_length() {
        let clock = ExportClock {
            unix_ms: 1_700_000_001_000,
            uptime_ms: 50_000,
        };
        for version in [Version::Ipfix, Version::NetflowV9] {
            for v6 in [false, true] {
                for l2 in [false, true] {
                    for sampling in [None, Some(10)] {
                        let r = record(v6, l2, sampling);
                        let shape = FlowShape::of(&r, version);
                        let want: usize = flow_fields_of(version, shape)
                            .iter()
                            .map(|f| usize::from(f.length))
                            .sum();
                        let mut out = vec![0xaa];
                        let id = encode_flow(&r, version, &clock, &mut out);
                        assert_eq!(out.len() - 1, want, "{version:?} {shape:?}");
                        assert_eq!(id, flow_template_id_of(version, shape));
                    }
                }
            }
        }
    }
}
