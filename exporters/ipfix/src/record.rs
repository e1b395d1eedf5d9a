//! Data records: IPFIX RFC 7011 §3.4.3 (with variable-length fields, §7) and NetFlow v9
//! RFC 3954 §5.3. A data record is the concatenation of its field values in template
//! order; integers are big-endian and may use reduced-size encoding (RFC 7011 §6.2).

use crate::error::{need, DecodeError};
use crate::template::TemplateRecord;

/// Field values of one data record, in template order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordRepr {
    /// Raw value bytes of each field (without the variable-length prefix).
    pub values: Vec<Vec<u8>>,
}

impl RecordRepr {
    /// Parse one record described by `template` from the start of `buf`.
    /// Returns the record and the bytes consumed.
    pub fn parse(buf: &[u8], template: &TemplateRecord) -> Result<(Self, usize), DecodeError> {
        let mut pos = 0;
        let mut values = Vec::with_capacity(template.fields.len());
        for f in &template.fields {
            let len = if f.is_variable() {
                let first = need(buf, pos, 1)?[0];
                pos += 1;
                if first == 255 {
                    let b = need(buf, pos, 2)?;
                    pos += 2;
                    u16::from_be_bytes([b[0], b[1]]) as usize
                } else {
                    first as usize
                }
            } else {
                f.length as usize
            };
            values.push(need(buf, pos, len)?.to_vec());
            pos += len;
        }
        Ok((RecordRepr { values }, pos))
    }

    /// Bytes `emit` writes for `template`. A variable-length value takes a 1-byte prefix
    /// below 255 bytes, else a 3-byte prefix (RFC 7011 §7); longer values are cut to
    /// 65535 bytes.
    pub fn buffer_len(&self, template: &TemplateRecord) -> usize {
        template
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if f.is_variable() {
                    let n = self.values.get(i).map_or(0, |v| v.len().min(65535));
                    n + if n < 255 { 1 } else { 3 }
                } else {
                    f.length as usize
                }
            })
            .sum()
    }

    /// Write the record into `buf[..buffer_len(template)]`; returns bytes written.
    /// A fixed-length value that is shorter than its field is zero-filled on the right,
    /// a longer one is cut; missing values are written as zeros.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8], template: &TemplateRecord) -> usize {
        let mut pos = 0;
        for (i, f) in template.fields.iter().enumerate() {
            let v: &[u8] = self.values.get(i).map_or(&[], |v| v.as_slice());
            let len = if f.is_variable() {
                let n = v.len().min(65535);
                if n < 255 {
                    buf[pos] = n as u8;
                    pos += 1;
                } else {
                    buf[pos] = 255;
                    buf[pos + 1..pos + 3].copy_from_slice(&(n as u16).to_be_bytes());
                    pos += 3;
                }
                n
            } else {
                f.length as usize
            };
            let n = v.len().min(len);
            buf[pos..pos + n].copy_from_slice(&v[..n]);
            buf[pos + n..pos + len].fill(0);
            pos += len;
        }
        pos
    }
}

/// Write `value` big-endian into `buf` using its length (1..=8 bytes; reduced-size
/// encoding of RFC 7011 §6.2 keeps the low-order bytes, 16-byte fields get zeros on the left).
pub fn put_uint(buf: &mut [u8], value: u64) {
    let bytes = value.to_be_bytes();
    let n = buf.len();
    if n <= 8 {
        buf.copy_from_slice(&bytes[8 - n..]);
    } else {
        buf[..n - 8].fill(0);
        buf[n - 8..].copy_from_slice(&bytes);
    }
}

/// Read a big-endian unsigned integer of 1..=8 bytes; `None` for other lengths.
pub fn get_uint(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::FieldSpec;

    fn template() -> TemplateRecord {
        TemplateRecord {
            template_id: 256,
            scope_field_count: 0,
            fields: vec![
                FieldSpec::new(7, 2),
                FieldSpec::new(82, 65535),
                FieldSpec::new(83, 65535),
            ],
        }
    }
    // port 80, "eth0" (short form), 300 x 'd' (long form).
    fn bytes() -> Vec<u8> {
        let mut b = vec![0x00, 0x50, 4, b'e', b't', b'h', b'0', 0xff, 0x01, 0x2c];
        b.extend(std::iter::repeat_n(b'd', 300));
        b
    }
    fn repr() -> RecordRepr {
        RecordRepr {
            values: vec![vec![0, 80], b"eth0".to_vec(), vec![b'd'; 300]],
        }
    }

    #[test]
    fn deconstruct() {
        let b = bytes();
        assert_eq!(
            RecordRepr::parse(&b, &template()).unwrap(),
            (repr(), b.len())
        );
    }

    #[test]
    fn construct() {
        let r = repr();
        let len = r.buffer_len(&template());
        assert_eq!(len, bytes().len());
        let mut buf = vec![0xa5; len + 1];
        assert_eq!(r.emit(&mut buf[..len], &template()), len);
        assert_eq!(&buf[..len], &bytes()[..]);
        assert_eq!(buf[len], 0xa5);
    }

    #[test]
    fn round_trip() {
        let r = repr();
        let mut buf = vec![0xa5; r.buffer_len(&template())];
        r.emit(&mut buf, &template());
        assert_eq!(RecordRepr::parse(&buf, &template()).unwrap().0, r);
    }

    #[test]
    fn truncated_and_ints() {
        let b = bytes();
        assert!(matches!(
            RecordRepr::parse(&b[..9], &template()),
            Err(DecodeError::Truncated { offset: 8, .. })
        ));
        assert!(matches!(
            RecordRepr::parse(&b[..20], &template()),
            Err(DecodeError::Truncated {
                offset: 10,
                needed: 300,
                available: 10
            })
        ));
        let mut x = [0xa5u8; 3];
        put_uint(&mut x, 0x0102_0304);
        assert_eq!(x, [2, 3, 4]);
        assert_eq!(get_uint(&x), Some(0x020304));
        assert_eq!(get_uint(&[]), None);
        assert_eq!(get_uint(&[0; 9]), None);
    }
}
