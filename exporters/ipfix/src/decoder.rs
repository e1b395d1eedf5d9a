//! Collector-side parsing of IPFIX messages (RFC 7011) and NetFlow v9 export packets
//! (RFC 3954), with an explicit template cache keyed by
//! (version, observation domain / source id, template id) (RFC 7011 §8, RFC 3954 §9).
//!
//! Handles enterprise-specific elements (§3.2), variable-length fields (§7), options
//! templates with scope fields (§3.4.2.2, RFC 3954 §6.1), set padding (§3.3.1) and
//! template withdrawals (§8.1). A data set whose template is unknown is skipped and
//! counted, not an error (§8: the collector may not have seen the template yet).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{be16, DecodeError, RecordError};
use crate::flow::FlowRecord;
use crate::header::{IpfixHeader, V9Header};
use crate::ie;
use crate::record::{get_uint, RecordRepr};
use crate::set::{self, SetHeader, MIN_DATA_SET_ID};
use crate::template::TemplateRecord;
use crate::Version;

/// One field of a decoded data record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldValue {
    /// Information element id (v9 options scope fields: the scope type).
    pub ie_id: u16,
    /// Private Enterprise Number of an enterprise-specific element.
    pub enterprise: Option<u32>,
    /// Whether this is a scope field of an options record.
    pub scope: bool,
    /// Raw value bytes (variable-length prefix removed).
    pub value: Vec<u8>,
}

/// How times in a data record relate to wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBase {
    /// Times are absolute (IPFIX flowStart/EndMilliseconds).
    Absolute,
    /// NetFlow v9 FIRST/LAST_SWITCHED are sysUptime values; wall time =
    /// `unix_ms - (uptime_ms - switched)` with the uptime difference taken mod 2^32.
    SysUptime {
        /// Wall time of the export, Unix ms.
        unix_ms: u64,
        /// sysUptime of the export, ms.
        uptime_ms: u32,
    },
}

/// One decoded data record (flow or options data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRecord {
    /// Template id (= set id) the record follows.
    pub template_id: u16,
    /// Fields in template order.
    pub fields: Vec<FieldValue>,
}

impl DataRecord {
    /// Whether the record follows an options template (has scope fields).
    pub fn is_options(&self) -> bool {
        self.fields.iter().any(|f| f.scope)
    }

    /// First non-enterprise, non-scope field with element id `ie_id`.
    pub fn field(&self, ie_id: u16) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.ie_id == ie_id && f.enterprise.is_none() && !f.scope)
            .map(|f| f.value.as_slice())
    }

    /// Unsigned integer value of field `ie_id` (1..=8 bytes).
    pub fn uint(&self, ie_id: u16) -> Option<u64> {
        self.field(ie_id).and_then(get_uint)
    }

    /// Convert a flow data record (as exported by [`crate::Encoder`], or any record with
    /// the same IANA elements) back into a [`FlowRecord`]. Addresses and start / end
    /// times are required; other missing fields read as 0 (`layer2_segment_id` as `None`).
    /// `ipVersion` is not needed: the address fields say the family. `sampling` is the
    /// record's selectorId / FLOW_SAMPLER_ID, which this crate's encoder makes equal to the
    /// 1-in-N rate (other exporters' ids mean what their options say: see
    /// [`Message::selector_intervals`]).
    pub fn to_flow_record(&self, time: TimeBase) -> Result<FlowRecord, RecordError> {
        let uint = |id: u16| -> Result<u64, RecordError> {
            match self.field(id) {
                None => Ok(0),
                Some(v) => get_uint(v).ok_or(RecordError::BadFieldLength {
                    ie: id,
                    length: v.len(),
                }),
            }
        };
        let addr = |id: u16, len: usize| -> Result<Option<IpAddr>, RecordError> {
            match self.field(id) {
                None => Ok(None),
                Some(v) if v.len() == len && len == 4 => {
                    Ok(Some(Ipv4Addr::new(v[0], v[1], v[2], v[3]).into()))
                }
                Some(v) if v.len() == len => {
                    let mut b = [0u8; 16];
                    b.copy_from_slice(v);
                    Ok(Some(Ipv6Addr::from(b).into()))
                }
                Some(v) => Err(RecordError::BadFieldLength {
                    ie: id,
                    length: v.len(),
                }),
            }
        };
        let mac = |id: u16| -> Result<[u8; 6], RecordError> {
            match self.field(id) {
                None => Ok([0; 6]),
                Some(v) => v.try_into().map_err(|_| RecordError::BadFieldLength {
                    ie: id,
                    length: v.len(),
                }),
            }
        };
        let (src_addr, dst_addr) = match (
            addr(ie::SOURCE_IPV4_ADDRESS, 4)?,
            addr(ie::DESTINATION_IPV4_ADDRESS, 4)?,
            addr(ie::SOURCE_IPV6_ADDRESS, 16)?,
            addr(ie::DESTINATION_IPV6_ADDRESS, 16)?,
        ) {
            (Some(s), Some(d), _, _) | (_, _, Some(s), Some(d)) => (s, d),
            _ => return Err(RecordError::NoAddresses),
        };
        let time_of = |abs: u16, rel: u16| -> Result<u64, RecordError> {
            if self.field(abs).is_some() {
                return uint(abs);
            }
            match (self.field(rel), time) {
                (Some(_), TimeBase::SysUptime { unix_ms, uptime_ms }) => {
                    let sw = uint(rel)? as u32;
                    Ok(unix_ms.wrapping_sub(u64::from(uptime_ms.wrapping_sub(sw))))
                }
                _ => Err(RecordError::MissingField { ie: abs }),
            }
        };
        let icmp = if self.field(ie::ICMP_TYPE_CODE_IPV6).is_some() {
            uint(ie::ICMP_TYPE_CODE_IPV6)?
        } else {
            uint(ie::ICMP_TYPE_CODE_IPV4)?
        };
        Ok(FlowRecord {
            src_addr,
            dst_addr,
            src_port: uint(ie::SOURCE_TRANSPORT_PORT)? as u16,
            dst_port: uint(ie::DESTINATION_TRANSPORT_PORT)? as u16,
            protocol: uint(ie::PROTOCOL_IDENTIFIER)? as u8,
            octets: uint(ie::OCTET_DELTA_COUNT)?,
            packets: uint(ie::PACKET_DELTA_COUNT)?,
            start_ms: time_of(ie::FLOW_START_MILLISECONDS, ie::FIRST_SWITCHED)?,
            end_ms: time_of(ie::FLOW_END_MILLISECONDS, ie::LAST_SWITCHED)?,
            tcp_flags: uint(ie::TCP_CONTROL_BITS)? as u8,
            icmp_type_code: icmp as u16,
            tos: uint(ie::IP_CLASS_OF_SERVICE)? as u8,
            min_ttl: uint(ie::MINIMUM_TTL)? as u8,
            max_ttl: uint(ie::MAXIMUM_TTL)? as u8,
            src_mac: mac(ie::SOURCE_MAC_ADDRESS)?,
            dst_mac: mac(ie::DESTINATION_MAC_ADDRESS)?,
            vlan_id: uint(ie::VLAN_ID)? as u16,
            ingress_if: uint(ie::INGRESS_INTERFACE)? as u32,
            egress_if: uint(ie::EGRESS_INTERFACE)? as u32,
            direction: uint(ie::FLOW_DIRECTION)? as u8,
            end_reason: uint(ie::FLOW_END_REASON)? as u8,
            layer2_segment_id: match self.field(ie::LAYER2_SEGMENT_ID) {
                None => None,
                Some(_) => Some(uint(ie::LAYER2_SEGMENT_ID)?),
            },
            sampling: match (self.field(ie::SELECTOR_ID), self.field(ie::FLOW_SAMPLER_ID)) {
                (Some(_), _) => Some(uint(ie::SELECTOR_ID)? as u32),
                (None, Some(_)) => Some(uint(ie::FLOW_SAMPLER_ID)? as u32),
                (None, None) => None,
            },
        })
    }

    /// The (selector id, 1-in-N interval) an options record describes: IPFIX selectorId
    /// (scope) with samplingPacketInterval / samplingPacketSpace (RFC 5477 §8.2.2:
    /// N = (interval + space) / interval) or samplingInterval; v9 FLOW_SAMPLER_ID with
    /// FLOW_SAMPLER_RANDOM_INTERVAL. `None` for any other record.
    pub fn selector_interval(&self) -> Option<(u64, u32)> {
        let by = |id: u16| {
            self.fields
                .iter()
                .find(|f| f.ie_id == id && f.enterprise.is_none())
                .and_then(|f| get_uint(&f.value))
        };
        if !self.is_options() {
            return None;
        }
        let id = by(ie::SELECTOR_ID).or_else(|| by(ie::FLOW_SAMPLER_ID))?;
        let n = match (
            by(ie::SAMPLING_PACKET_INTERVAL),
            by(ie::SAMPLING_PACKET_SPACE),
        ) {
            (Some(i), Some(s)) if i > 0 => (i + s) / i,
            _ => by(ie::FLOW_SAMPLER_RANDOM_INTERVAL).or_else(|| by(ie::SAMPLING_INTERVAL))?,
        };
        Some((id, u32::try_from(n).ok()?))
    }
}

/// One set / flowset of a message. `offset` is the byte offset of the set header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Set {
    /// Template set (IPFIX 2, v9 0). Withdrawals appear as records without fields.
    Templates {
        offset: usize,
        records: Vec<TemplateRecord>,
    },
    /// Options template set (IPFIX 3, v9 1).
    OptionsTemplates {
        offset: usize,
        records: Vec<TemplateRecord>,
    },
    /// Data set whose template is known.
    Data {
        offset: usize,
        template_id: u16,
        records: Vec<DataRecord>,
    },
    /// Data set with an unknown template, or a set with a reserved id: skipped.
    Skipped {
        offset: usize,
        set_id: u16,
        length: u16,
    },
}

impl Set {
    /// Records in the set (0 for a skipped set).
    pub fn record_count(&self) -> usize {
        match self {
            Set::Templates { records, .. } | Set::OptionsTemplates { records, .. } => records.len(),
            Set::Data { records, .. } => records.len(),
            Set::Skipped { .. } => 0,
        }
    }
}

/// A decoded message with its header fields and sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// IPFIX or NetFlow v9.
    pub version: Version,
    /// v9 header record count (RFC 3954 §5.1); `None` for IPFIX.
    pub count: Option<u16>,
    /// IPFIX header message length (RFC 7011 §3.1); `None` for v9.
    pub length: Option<u16>,
    /// Sequence number.
    pub sequence: u32,
    /// IPFIX export time / v9 UNIX secs.
    pub export_time: u32,
    /// v9 sysUptime (ms); `None` for IPFIX.
    pub sys_uptime_ms: Option<u32>,
    /// Observation domain id (IPFIX) / source id (v9).
    pub domain_id: u32,
    /// Sets in wire order.
    pub sets: Vec<Set>,
}

impl Message {
    /// Total records in all decoded sets (template, options template, data, options data).
    /// Equals the v9 header `count` when no set was skipped.
    pub fn record_count(&self) -> usize {
        self.sets.iter().map(Set::record_count).sum()
    }

    /// Number of skipped sets (unknown template or reserved set id).
    pub fn skipped_sets(&self) -> usize {
        self.sets
            .iter()
            .filter(|s| matches!(s, Set::Skipped { .. }))
            .count()
    }

    /// All data records (flow and options data) in wire order.
    pub fn data_records(&self) -> impl Iterator<Item = &DataRecord> {
        self.sets.iter().flat_map(|s| match s {
            Set::Data { records, .. } => records.as_slice(),
            _ => &[],
        })
    }

    /// Template and options template records in wire order.
    pub fn templates(&self) -> impl Iterator<Item = &TemplateRecord> {
        self.sets.iter().flat_map(|s| match s {
            Set::Templates { records, .. } | Set::OptionsTemplates { records, .. } => {
                records.as_slice()
            }
            _ => &[],
        })
    }

    /// Time base for [`DataRecord::to_flow_record`] taken from the header (v9: whole
    /// seconds, so reconstructed v9 times are exact only when the export happened on a
    /// whole second; otherwise they are up to 999 ms early).
    pub fn time_base(&self) -> TimeBase {
        match self.sys_uptime_ms {
            Some(uptime_ms) => TimeBase::SysUptime {
                unix_ms: u64::from(self.export_time) * 1000,
                uptime_ms,
            },
            None => TimeBase::Absolute,
        }
    }

    /// (selector id, 1-in-N interval) of every selector options record in the message
    /// ([`DataRecord::selector_interval`]), in wire order.
    pub fn selector_intervals(&self) -> Vec<(u64, u32)> {
        self.data_records()
            .filter_map(DataRecord::selector_interval)
            .collect()
    }

    /// Non-options data records converted to [`FlowRecord`]s with [`Self::time_base`].
    pub fn flow_records(&self) -> Vec<Result<FlowRecord, RecordError>> {
        let tb = self.time_base();
        self.data_records()
            .filter(|r| !r.is_options())
            .map(|r| r.to_flow_record(tb))
            .collect()
    }
}

/// Template cache and parser for one collector.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    templates: HashMap<(Version, u32, u16), TemplateRecord>,
    skipped_sets: u64,
}

fn all_zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

impl Decoder {
    /// Empty template cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Template known for (version, domain / source id, template id).
    pub fn template(&self, version: Version, domain: u32, id: u16) -> Option<&TemplateRecord> {
        self.templates.get(&(version, domain, id))
    }

    /// Number of templates in the cache.
    pub fn template_count(&self) -> usize {
        self.templates.len()
    }

    /// Data sets skipped so far because their template was unknown (and reserved sets).
    pub fn skipped_sets(&self) -> u64 {
        self.skipped_sets
    }

    /// Decode one datagram, learning the templates it carries.
    pub fn decode(&mut self, datagram: &[u8]) -> Result<Message, DecodeError> {
        let version = be16(datagram, 0)?;
        let (mut msg, body, mut pos) = match version {
            IpfixHeader::VERSION => {
                let h = IpfixHeader::parse(datagram)?;
                let len = h.length as usize;
                if len < IpfixHeader::LEN || len > datagram.len() {
                    return Err(DecodeError::LengthMismatch {
                        header_length: len,
                        datagram_length: datagram.len(),
                    });
                }
                let msg = Message {
                    version: Version::Ipfix,
                    count: None,
                    length: Some(h.length),
                    sequence: h.sequence,
                    export_time: h.export_time,
                    sys_uptime_ms: None,
                    domain_id: h.domain_id,
                    sets: Vec::new(),
                };
                (msg, &datagram[..len], IpfixHeader::LEN)
            }
            V9Header::VERSION => {
                let h = V9Header::parse(datagram)?;
                let msg = Message {
                    version: Version::NetflowV9,
                    count: Some(h.count),
                    length: None,
                    sequence: h.sequence,
                    export_time: h.unix_secs,
                    sys_uptime_ms: Some(h.sys_uptime),
                    domain_id: h.source_id,
                    sets: Vec::new(),
                };
                (msg, datagram, V9Header::LEN)
            }
            version => return Err(DecodeError::UnsupportedVersion { version }),
        };
        while pos < body.len() {
            let rest = &body[pos..];
            if rest.len() < SetHeader::LEN {
                return Err(DecodeError::TrailingBytes {
                    offset: pos,
                    count: rest.len(),
                });
            }
            let sh = SetHeader::parse(rest).map_err(|e| e.at(pos))?;
            let content = &rest[SetHeader::LEN..sh.length as usize];
            let set = self
                .parse_set(&msg, sh, content, pos)
                .map_err(|e| e.at(pos + SetHeader::LEN))?;
            msg.sets.push(set);
            pos += sh.length as usize;
        }
        Ok(msg)
    }

    /// Parse the body of one set; errors are relative to `content`.
    fn parse_set(
        &mut self,
        msg: &Message,
        sh: SetHeader,
        content: &[u8],
        offset: usize,
    ) -> Result<Set, DecodeError> {
        let v = msg.version;
        let domain = msg.domain_id;
        let is_template = sh.set_id == set::template_set_id(v);
        let is_options = sh.set_id == set::options_template_set_id(v);
        if is_template || is_options {
            let min_len = if is_options && v == Version::NetflowV9 {
                6
            } else {
                4
            };
            let mut records = Vec::new();
            let mut p = 0;
            while content.len() - p >= min_len && !all_zero(&content[p..]) {
                let (t, n) =
                    TemplateRecord::parse(&content[p..], v, is_options).map_err(|e| e.at(p))?;
                self.learn(v, domain, &t, is_options);
                records.push(t);
                p += n;
            }
            return Ok(if is_template {
                Set::Templates { offset, records }
            } else {
                Set::OptionsTemplates { offset, records }
            });
        }
        let skipped = Set::Skipped {
            offset,
            set_id: sh.set_id,
            length: sh.length,
        };
        if sh.set_id < MIN_DATA_SET_ID {
            self.skipped_sets += 1;
            return Ok(skipped);
        }
        let Some(t) = self.templates.get(&(v, domain, sh.set_id)) else {
            self.skipped_sets += 1;
            return Ok(skipped);
        };
        let min = t.min_record_len();
        let mut records = Vec::new();
        let mut p = 0;
        // Anything shorter than the smallest record is padding (RFC 7011 §3.3.1).
        while min > 0 && content.len() - p >= min {
            let (r, n) = RecordRepr::parse(&content[p..], t).map_err(|e| e.at(p))?;
            let scopes = t.scope_field_count as usize;
            let fields = t
                .fields
                .iter()
                .zip(r.values)
                .enumerate()
                .map(|(i, (f, value))| FieldValue {
                    ie_id: f.id,
                    enterprise: f.enterprise,
                    scope: i < scopes,
                    value,
                })
                .collect();
            records.push(DataRecord {
                template_id: sh.set_id,
                fields,
            });
            p += n;
        }
        Ok(Set::Data {
            offset,
            template_id: sh.set_id,
            records,
        })
    }

    fn learn(&mut self, v: Version, domain: u32, t: &TemplateRecord, options: bool) {
        if t.is_withdrawal() {
            if t.template_id < MIN_DATA_SET_ID {
                // Withdraw all (options) templates of this domain (RFC 7011 §8.1).
                self.templates.retain(|&(tv, td, _), rec| {
                    !(tv == v && td == domain && rec.is_options() == options)
                });
            } else {
                self.templates.remove(&(v, domain, t.template_id));
            }
        } else {
            self.templates.insert((v, domain, t.template_id), t.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPFIX message: template 300 {enterprise 1/PEN 9 len 2, sourceTransportPort 2,
    /// interfaceName varlen} then data set 300 with two records + 4 padding bytes,
    /// then a data set for unknown template 999.
    fn sample() -> Vec<u8> {
        let mut m = vec![0, 10, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 7];
        // template set: 4 + 4 + 8 + 4 + 4 = 24
        m.extend([0, 2, 0, 24, 0x01, 0x2c, 0, 3]);
        m.extend([0x80, 1, 0, 2, 0, 0, 0, 9, 0, 7, 0, 2, 0, 82, 0xff, 0xff]);
        // data set: 4 + (2+2+1+2) + (2+2+1+0) + 4 pad = 20 (padding < smallest record)
        m.extend([0x01, 0x2c, 0, 20, 0xaa, 0xbb, 0, 80, 2, b'e', b'0']);
        m.extend([0xcc, 0xdd, 0, 81, 0, 0, 0, 0, 0]);
        // unknown template
        m.extend([0x03, 0xe7, 0, 8, 1, 2, 3, 4]);
        let len = m.len() as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        m
    }

    #[test]
    fn enterprise_varlen_padding_unknown() {
        let mut d = Decoder::new();
        let m = d.decode(&sample()).unwrap();
        assert_eq!(m.version, Version::Ipfix);
        assert_eq!(m.sequence, 5);
        assert_eq!(m.domain_id, 7);
        assert_eq!(m.sets.len(), 3);
        let recs: Vec<_> = m.data_records().collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].fields[0].enterprise, Some(9));
        assert_eq!(recs[0].fields[0].value, vec![0xaa, 0xbb]);
        assert_eq!(recs[0].uint(7), Some(80));
        assert_eq!(recs[0].field(82), Some(&b"e0"[..]));
        assert_eq!(recs[1].field(82), Some(&b""[..]));
        assert_eq!(m.skipped_sets(), 1);
        assert_eq!(d.skipped_sets(), 1);
        assert!(matches!(
            m.sets[2],
            Set::Skipped {
                set_id: 999,
                offset: 60,
                ..
            }
        ));
    }

    #[test]
    fn errors_carry_offsets() {
        let mut b = sample();
        // Data set length 3 (< 4) at offset 40.
        b[42..44].copy_from_slice(&3u16.to_be_bytes());
        assert_eq!(
            Decoder::new().decode(&b),
            Err(DecodeError::BadSetLength {
                offset: 40,
                set_id: 300,
                length: 3,
                remaining: 28
            })
        );
        // Varlen length running past the set: record 2's name claims 9 bytes.
        let mut b = sample();
        b[55] = 9;
        let e = Decoder::new().decode(&b).unwrap_err();
        assert_eq!(
            e,
            DecodeError::Truncated {
                offset: 56,
                needed: 9,
                available: 4
            }
        );
        // Header length larger than the datagram.
        let mut b = sample();
        b[3] += 1;
        assert!(matches!(
            Decoder::new().decode(&b),
            Err(DecodeError::LengthMismatch { .. })
        ));
        assert!(matches!(
            Decoder::new().decode(&[0, 5, 0, 0]),
            Err(DecodeError::UnsupportedVersion { version: 5 })
        ));
    }

    #[test]
    fn withdrawal_forgets_template() {
        let mut d = Decoder::new();
        d.decode(&sample()).unwrap();
        assert!(d.template(Version::Ipfix, 7, 300).is_some());
        let w = [
            0, 10, 0, 24, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 7, 0, 2, 0, 8, 1, 44, 0, 0,
        ];
        d.decode(&w).unwrap();
        assert!(d.template(Version::Ipfix, 7, 300).is_none());
        // Other domains have their own cache.
        assert!(d.template(Version::Ipfix, 8, 300).is_none());
    }
}
