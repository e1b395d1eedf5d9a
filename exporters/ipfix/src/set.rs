//! Set / FlowSet header: IPFIX RFC 7011 §3.3.2, NetFlow v9 RFC 3954 §5.2–5.4.
//!
//! Both protocols use the same 4-byte layout: a 16-bit set id and a 16-bit length that
//! counts the header, the records and any padding.

use crate::error::{be16, need, DecodeError};
use crate::Version;

/// IPFIX Template Set id (RFC 7011 §3.3.2).
pub const IPFIX_TEMPLATE_SET: u16 = 2;
/// IPFIX Options Template Set id.
pub const IPFIX_OPTIONS_TEMPLATE_SET: u16 = 3;
/// NetFlow v9 Template FlowSet id (RFC 3954 §5.2).
pub const V9_TEMPLATE_FLOWSET: u16 = 0;
/// NetFlow v9 Options Template FlowSet id (RFC 3954 §6.1).
pub const V9_OPTIONS_TEMPLATE_FLOWSET: u16 = 1;
/// First id usable for templates and data sets in both protocols.
pub const MIN_DATA_SET_ID: u16 = 256;

/// Set id of template sets for `version`.
pub fn template_set_id(version: Version) -> u16 {
    match version {
        Version::Ipfix => IPFIX_TEMPLATE_SET,
        Version::NetflowV9 => V9_TEMPLATE_FLOWSET,
    }
}

/// Set id of options template sets for `version`.
pub fn options_template_set_id(version: Version) -> u16 {
    match version {
        Version::Ipfix => IPFIX_OPTIONS_TEMPLATE_SET,
        Version::NetflowV9 => V9_OPTIONS_TEMPLATE_FLOWSET,
    }
}

/// Set header: `| Set ID (2) | Length (2) |`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetHeader {
    /// 2/3 (IPFIX) or 0/1 (v9) for (options) templates, >= 256 for data.
    pub set_id: u16,
    /// Length of the whole set including this header and padding.
    pub length: u16,
}

impl SetHeader {
    /// Header length in bytes.
    pub const LEN: usize = 4;

    /// Parse a set header. Rejects lengths below 4 (RFC 7011 §3.3.2: the set must at
    /// least hold its header) and lengths running past `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        need(buf, 0, Self::LEN)?;
        let set_id = be16(buf, 0)?;
        let length = be16(buf, 2)?;
        if (length as usize) < Self::LEN || length as usize > buf.len() {
            return Err(DecodeError::BadSetLength {
                offset: 0,
                set_id,
                length: length as usize,
                remaining: buf.len(),
            });
        }
        Ok(SetHeader { set_id, length })
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Write the header into `buf[..4]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0..2].copy_from_slice(&self.set_id.to_be_bytes());
        buf[2..4].copy_from_slice(&self.length.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static BYTES: [u8; 8] = [0x01, 0x00, 0x00, 0x08, 1, 2, 3, 4];
    const REPR: SetHeader = SetHeader {
        set_id: 256,
        length: 8,
    };

    #[test]
    fn deconstruct() {
        assert_eq!(SetHeader::parse(&BYTES).unwrap(), REPR);
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 8];
        REPR.emit(&mut buf);
        assert_eq!(&buf[..4], &BYTES[..4]);
        assert_eq!(&buf[4..], &[0xa5; 4]);
    }

    #[test]
    fn round_trip() {
        let mut buf = [0xa5u8; 8];
        REPR.emit(&mut buf);
        assert_eq!(SetHeader::parse(&buf).unwrap(), REPR);
    }

    #[test]
    fn bad_lengths() {
        // Shorter than its own header.
        assert!(matches!(
            SetHeader::parse(&[0, 2, 0, 3, 0, 0]),
            Err(DecodeError::BadSetLength { length: 3, .. })
        ));
        // Longer than the remaining message.
        assert!(matches!(
            SetHeader::parse(&BYTES[..7]),
            Err(DecodeError::BadSetLength {
                length: 8,
                remaining: 7,
                ..
            })
        ));
        assert!(matches!(
            SetHeader::parse(&BYTES[..3]),
            Err(DecodeError::Truncated { offset: 0, .. })
        ));
    }
}
