//! Template and options template records: IPFIX RFC 7011 §3.4.1–3.4.2 and NetFlow v9
//! RFC 3954 §5.2 (template FlowSet) and §6.1 (options template FlowSet).

use crate::error::{be16, be32, need, DecodeError};
use crate::ie::VARIABLE_LENGTH;
use crate::set::MIN_DATA_SET_ID;
use crate::Version;

/// Field specifier, RFC 7011 §3.2 (v9: RFC 3954 §5.2 field type / length pairs).
///
/// In IPFIX the top bit of the element id is the enterprise bit; `id` here never
/// carries it, `enterprise` says whether a Private Enterprise Number follows.
/// For a NetFlow v9 options template scope field `id` is the scope field type
/// (RFC 3954 §6.1: 1 System, 2 Interface, 3 Line Card, 4 Cache, 5 Template).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSpec {
    /// Information element id (15 bits in IPFIX).
    pub id: u16,
    /// Private Enterprise Number for enterprise-specific elements (IPFIX only).
    pub enterprise: Option<u32>,
    /// Field length in bytes; 65535 = variable length (IPFIX only, RFC 7011 §7).
    pub length: u16,
}

impl FieldSpec {
    /// An IANA (non-enterprise) field.
    pub const fn new(id: u16, length: u16) -> Self {
        FieldSpec {
            id,
            enterprise: None,
            length,
        }
    }

    /// Whether this field uses the IPFIX variable-length encoding.
    pub fn is_variable(&self) -> bool {
        self.length == VARIABLE_LENGTH
    }

    /// Bytes this specifier takes in a template for `version`.
    pub fn buffer_len(&self, version: Version) -> usize {
        match (version, self.enterprise) {
            (Version::Ipfix, Some(_)) => 8,
            _ => 4,
        }
    }

    fn parse(buf: &[u8], offset: usize, version: Version) -> Result<(Self, usize), DecodeError> {
        let raw = be16(buf, offset)?;
        let length = be16(buf, offset + 2)?;
        if version == Version::Ipfix && raw & 0x8000 != 0 {
            let pen = be32(buf, offset + 4)?;
            Ok((
                FieldSpec {
                    id: raw & 0x7fff,
                    enterprise: Some(pen),
                    length,
                },
                8,
            ))
        } else {
            Ok((
                FieldSpec {
                    id: raw,
                    enterprise: None,
                    length,
                },
                4,
            ))
        }
    }

    fn emit(&self, buf: &mut [u8], version: Version) -> usize {
        match (version, self.enterprise) {
            (Version::Ipfix, Some(pen)) => {
                buf[0..2].copy_from_slice(&(self.id | 0x8000).to_be_bytes());
                buf[2..4].copy_from_slice(&self.length.to_be_bytes());
                buf[4..8].copy_from_slice(&pen.to_be_bytes());
                8
            }
            _ => {
                buf[0..2].copy_from_slice(&self.id.to_be_bytes());
                buf[2..4].copy_from_slice(&self.length.to_be_bytes());
                4
            }
        }
    }
}

/// A template record or options template record.
///
/// `scope_field_count == 0` is a plain template record (IPFIX set 2, v9 flowset 0);
/// otherwise it is an options template (IPFIX set 3, v9 flowset 1) whose first
/// `scope_field_count` fields are scope fields. An IPFIX record with no fields is a
/// template withdrawal (RFC 7011 §8.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TemplateRecord {
    /// Template id, >= 256 (or the set id for an IPFIX "withdraw all" record).
    pub template_id: u16,
    /// Number of leading scope fields; 0 for a plain template.
    pub scope_field_count: u16,
    /// Field specifiers, scope fields first.
    pub fields: Vec<FieldSpec>,
}

impl TemplateRecord {
    /// Whether this is an options template.
    pub fn is_options(&self) -> bool {
        self.scope_field_count > 0
    }

    /// Whether this is an IPFIX template withdrawal (field count 0).
    pub fn is_withdrawal(&self) -> bool {
        self.fields.is_empty()
    }

    /// Scope fields (empty for a plain template).
    pub fn scope_fields(&self) -> &[FieldSpec] {
        &self.fields[..(self.scope_field_count as usize).min(self.fields.len())]
    }

    /// Smallest data record this template can describe (variable-length fields count
    /// as their 1-byte length prefix).
    pub fn min_record_len(&self) -> usize {
        self.fields
            .iter()
            .map(|f| {
                if f.is_variable() {
                    1
                } else {
                    f.length as usize
                }
            })
            .sum()
    }

    /// Whether every field has a fixed length.
    pub fn is_fixed_length(&self) -> bool {
        self.fields.iter().all(|f| !f.is_variable())
    }

    /// Parse one record at the start of `buf`. `options` says whether the enclosing set
    /// is an options template set. Returns the record and the bytes consumed.
    pub fn parse(
        buf: &[u8],
        version: Version,
        options: bool,
    ) -> Result<(Self, usize), DecodeError> {
        let template_id = be16(buf, 0)?;
        let invalid = |reason| DecodeError::InvalidTemplate {
            offset: 0,
            template_id,
            reason,
        };
        match version {
            Version::Ipfix => {
                let field_count = be16(buf, 2)?;
                if field_count == 0 {
                    // Withdrawal: template id + field count only (RFC 7011 §8.1).
                    if template_id < MIN_DATA_SET_ID && template_id != 2 && template_id != 3 {
                        return Err(invalid("template id below 256"));
                    }
                    return Ok((
                        TemplateRecord {
                            template_id,
                            scope_field_count: 0,
                            fields: Vec::new(),
                        },
                        4,
                    ));
                }
                if template_id < MIN_DATA_SET_ID {
                    return Err(invalid("template id below 256"));
                }
                let (scope_field_count, mut pos) =
                    if options { (be16(buf, 4)?, 6) } else { (0, 4) };
                if options && (scope_field_count == 0 || scope_field_count > field_count) {
                    return Err(invalid(
                        "options template scope field count is 0 or exceeds the field count",
                    ));
                }
                let mut fields = Vec::with_capacity(field_count as usize);
                for _ in 0..field_count {
                    let (f, n) = FieldSpec::parse(buf, pos, version)?;
                    fields.push(f);
                    pos += n;
                }
                Ok((
                    TemplateRecord {
                        template_id,
                        scope_field_count,
                        fields,
                    },
                    pos,
                ))
            }
            Version::NetflowV9 => {
                if template_id < MIN_DATA_SET_ID {
                    return Err(invalid("template id below 256"));
                }
                let (scope_count, option_count, mut pos) = if options {
                    let scope_len = be16(buf, 2)? as usize;
                    let option_len = be16(buf, 4)? as usize;
                    if (scope_len | option_len) & 3 != 0 {
                        return Err(invalid(
                            "options scope/option length is not a multiple of 4",
                        ));
                    }
                    (scope_len / 4, option_len / 4, 6)
                } else {
                    (0, be16(buf, 2)? as usize, 4)
                };
                need(buf, pos, (scope_count + option_count) * 4)?;
                let mut fields = Vec::with_capacity(scope_count + option_count);
                for _ in 0..scope_count + option_count {
                    let (f, n) = FieldSpec::parse(buf, pos, version)?;
                    if f.is_variable() {
                        return Err(invalid("NetFlow v9 has no variable-length fields"));
                    }
                    fields.push(f);
                    pos += n;
                }
                if options && scope_count > u16::MAX as usize {
                    return Err(invalid("too many scope fields"));
                }
                Ok((
                    TemplateRecord {
                        template_id,
                        scope_field_count: scope_count as u16,
                        fields,
                    },
                    pos,
                ))
            }
        }
    }

    /// Bytes `emit` writes for `version`.
    pub fn buffer_len(&self, version: Version) -> usize {
        let head = if self.is_options() && !self.fields.is_empty() {
            6
        } else {
            4
        };
        head + self
            .fields
            .iter()
            .map(|f| f.buffer_len(version))
            .sum::<usize>()
    }

    /// Write the record into `buf[..buffer_len(version)]`; returns bytes written.
    /// Enterprise numbers are dropped for NetFlow v9, which has none.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8], version: Version) -> usize {
        buf[0..2].copy_from_slice(&self.template_id.to_be_bytes());
        let mut pos;
        match version {
            Version::Ipfix => {
                buf[2..4].copy_from_slice(&(self.fields.len() as u16).to_be_bytes());
                pos = 4;
                if self.is_options() && !self.fields.is_empty() {
                    buf[4..6].copy_from_slice(&self.scope_field_count.to_be_bytes());
                    pos = 6;
                }
            }
            Version::NetflowV9 => {
                if self.is_options() {
                    let scopes = self.scope_fields().len();
                    let scope_len = (scopes * 4) as u16;
                    let option_len = ((self.fields.len() - scopes) * 4) as u16;
                    buf[2..4].copy_from_slice(&scope_len.to_be_bytes());
                    buf[4..6].copy_from_slice(&option_len.to_be_bytes());
                    pos = 6;
                } else {
                    buf[2..4].copy_from_slice(&(self.fields.len() as u16).to_be_bytes());
                    pos = 4;
                }
            }
        }
        for f in &self.fields {
            pos += f.emit(&mut buf[pos..], version);
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // IPFIX template 256: sourceIPv4Address(4), enterprise 5 / PEN 29305 len 65535.
    static IPFIX_TEMPLATE: [u8; 16] = [
        0x01, 0x00, 0x00, 0x02, 0x00, 0x08, 0x00, 0x04, 0x80, 0x05, 0xff, 0xff, 0x00, 0x00, 0x72,
        0x79,
    ];
    fn ipfix_template() -> TemplateRecord {
        TemplateRecord {
            template_id: 256,
            scope_field_count: 0,
            fields: vec![
                FieldSpec::new(8, 4),
                FieldSpec {
                    id: 5,
                    enterprise: Some(29305),
                    length: 65535,
                },
            ],
        }
    }

    // IPFIX options template 260: scope observationDomainId(4), samplingInterval(4).
    static IPFIX_OPTIONS: [u8; 14] = [
        0x01, 0x04, 0x00, 0x02, 0x00, 0x01, 0x00, 0x95, 0x00, 0x04, 0x00, 0x22, 0x00, 0x04,
    ];
    // v9 options template 260: scope System(4), SAMPLING_INTERVAL(4).
    static V9_OPTIONS: [u8; 14] = [
        0x01, 0x04, 0x00, 0x04, 0x00, 0x04, 0x00, 0x01, 0x00, 0x04, 0x00, 0x22, 0x00, 0x04,
    ];
    fn options(scope_id: u16) -> TemplateRecord {
        TemplateRecord {
            template_id: 260,
            scope_field_count: 1,
            fields: vec![FieldSpec::new(scope_id, 4), FieldSpec::new(34, 4)],
        }
    }
    // v9 template 300: IPV4_SRC_ADDR(4), IN_BYTES(8)
    static V9_TEMPLATE: [u8; 12] = [
        0x01, 0x2c, 0x00, 0x02, 0x00, 0x08, 0x00, 0x04, 0x00, 0x01, 0x00, 0x08,
    ];
    fn v9_template() -> TemplateRecord {
        TemplateRecord {
            template_id: 300,
            scope_field_count: 0,
            fields: vec![FieldSpec::new(8, 4), FieldSpec::new(1, 8)],
        }
    }

    #[test]
    fn deconstruct() {
        assert_eq!(
            TemplateRecord::parse(&IPFIX_TEMPLATE, Version::Ipfix, false).unwrap(),
            (ipfix_template(), 16)
        );
        assert_eq!(
            TemplateRecord::parse(&IPFIX_OPTIONS, Version::Ipfix, true).unwrap(),
            (options(149), 14)
        );
        assert_eq!(
            TemplateRecord::parse(&V9_TEMPLATE, Version::NetflowV9, false).unwrap(),
            (v9_template(), 12)
        );
        assert_eq!(
            TemplateRecord::parse(&V9_OPTIONS, Version::NetflowV9, true).unwrap(),
            (options(1), 14)
        );
    }

    #[test]
    fn construct() {
        for (repr, version, bytes) in [
            (ipfix_template(), Version::Ipfix, &IPFIX_TEMPLATE[..]),
            (options(149), Version::Ipfix, &IPFIX_OPTIONS[..]),
            (v9_template(), Version::NetflowV9, &V9_TEMPLATE[..]),
            (options(1), Version::NetflowV9, &V9_OPTIONS[..]),
        ] {
            let len = repr.buffer_len(version);
            assert_eq!(len, bytes.len());
            let mut buf = vec![0xa5; len + 2];
            assert_eq!(repr.emit(&mut buf[..len], version), len);
            assert_eq!(&buf[..len], bytes);
            assert_eq!(&buf[len..], &[0xa5, 0xa5]);
        }
    }

    #[test]
    fn round_trip() {
        for (repr, version) in [
            (ipfix_template(), Version::Ipfix),
            (options(149), Version::Ipfix),
            (v9_template(), Version::NetflowV9),
            (options(1), Version::NetflowV9),
        ] {
            let mut buf = vec![0xa5; repr.buffer_len(version)];
            repr.emit(&mut buf, version);
            let (back, n) = TemplateRecord::parse(&buf, version, repr.is_options()).unwrap();
            assert_eq!(back, repr);
            assert_eq!(n, buf.len());
        }
    }

    #[test]
    fn malformed() {
        // Truncated in the enterprise number.
        assert!(matches!(
            TemplateRecord::parse(&IPFIX_TEMPLATE[..14], Version::Ipfix, false),
            Err(DecodeError::Truncated { offset: 12, .. })
        ));
        // Template id below 256.
        let mut b = IPFIX_TEMPLATE;
        b[0] = 0;
        assert!(matches!(
            TemplateRecord::parse(&b, Version::Ipfix, false),
            Err(DecodeError::InvalidTemplate { .. })
        ));
        // Scope field count 0 in an options template.
        let mut o = IPFIX_OPTIONS;
        o[5] = 0;
        assert!(matches!(
            TemplateRecord::parse(&o, Version::Ipfix, true),
            Err(DecodeError::InvalidTemplate { .. })
        ));
        // Withdrawal.
        let (w, n) = TemplateRecord::parse(&[1, 0, 0, 0], Version::Ipfix, false).unwrap();
        assert!(w.is_withdrawal());
        assert_eq!(n, 4);
        // v9 scope length not a multiple of 4.
        let mut v = V9_OPTIONS;
        v[3] = 3;
        assert!(matches!(
            TemplateRecord::parse(&v, Version::NetflowV9, true),
            Err(DecodeError::InvalidTemplate { .. })
        ));
    }
}
