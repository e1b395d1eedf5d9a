//! Message headers: IPFIX (RFC 7011 §3.1) and NetFlow v9 (RFC 3954 §5.1).

use crate::error::{be16, be32, need, DecodeError};

/// IPFIX message header, RFC 7011 §3.1.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-------------------------------+-------------------------------+
/// |       Version Number (10)     |            Length             |
/// +-------------------------------+-------------------------------+
/// |                           Export Time                         |
/// +---------------------------------------------------------------+
/// |                       Sequence Number                         |
/// +---------------------------------------------------------------+
/// |                    Observation Domain ID                      |
/// +---------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpfixHeader {
    /// Total message length in bytes, header included.
    pub length: u16,
    /// Export time, Unix seconds.
    pub export_time: u32,
    /// Data records sent before this message in this observation domain, mod 2^32.
    pub sequence: u32,
    /// Observation domain id.
    pub domain_id: u32,
}

impl IpfixHeader {
    /// Header length in bytes.
    pub const LEN: usize = 16;
    /// Version number carried in the header.
    pub const VERSION: u16 = 10;

    /// Parse the first 16 bytes of `buf`. Checks only the version number.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        need(buf, 0, Self::LEN)?;
        let version = be16(buf, 0)?;
        if version != Self::VERSION {
            return Err(DecodeError::UnsupportedVersion { version });
        }
        Ok(IpfixHeader {
            length: be16(buf, 2)?,
            export_time: be32(buf, 4)?,
            sequence: be32(buf, 8)?,
            domain_id: be32(buf, 12)?,
        })
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Write the header into `buf[..16]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0..2].copy_from_slice(&Self::VERSION.to_be_bytes());
        buf[2..4].copy_from_slice(&self.length.to_be_bytes());
        buf[4..8].copy_from_slice(&self.export_time.to_be_bytes());
        buf[8..12].copy_from_slice(&self.sequence.to_be_bytes());
        buf[12..16].copy_from_slice(&self.domain_id.to_be_bytes());
    }
}

/// NetFlow v9 packet header, RFC 3954 §5.1.
///
/// ```text
/// | Version (9) | Count | System Uptime | UNIX Secs | Sequence Number | Source ID |
/// |      2      |   2   |       4       |     4     |        4        |     4     |
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V9Header {
    /// Total number of records (template, options template, data, options data) in the packet.
    pub count: u16,
    /// Milliseconds since the exporting device booted (wraps at 2^32).
    pub sys_uptime: u32,
    /// Seconds since the Unix epoch at export.
    pub unix_secs: u32,
    /// Export packets sent before this one by this exporter, mod 2^32.
    pub sequence: u32,
    /// Source id (exporter observation domain).
    pub source_id: u32,
}

impl V9Header {
    /// Header length in bytes.
    pub const LEN: usize = 20;
    /// Version number carried in the header.
    pub const VERSION: u16 = 9;

    /// Parse the first 20 bytes of `buf`. Checks only the version number.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        need(buf, 0, Self::LEN)?;
        let version = be16(buf, 0)?;
        if version != Self::VERSION {
            return Err(DecodeError::UnsupportedVersion { version });
        }
        Ok(V9Header {
            count: be16(buf, 2)?,
            sys_uptime: be32(buf, 4)?,
            unix_secs: be32(buf, 8)?,
            sequence: be32(buf, 12)?,
            source_id: be32(buf, 16)?,
        })
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Write the header into `buf[..20]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0..2].copy_from_slice(&Self::VERSION.to_be_bytes());
        buf[2..4].copy_from_slice(&self.count.to_be_bytes());
        buf[4..8].copy_from_slice(&self.sys_uptime.to_be_bytes());
        buf[8..12].copy_from_slice(&self.unix_secs.to_be_bytes());
        buf[12..16].copy_from_slice(&self.sequence.to_be_bytes());
        buf[16..20].copy_from_slice(&self.source_id.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static IPFIX_BYTES: [u8; 16] = [
        0x00, 0x0a, 0x00, 0x40, 0x5f, 0x5e, 0x10, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x01,
        0x02,
    ];
    const IPFIX_REPR: IpfixHeader = IpfixHeader {
        length: 64,
        export_time: 0x5f5e_1000,
        sequence: 7,
        domain_id: 258,
    };

    static V9_BYTES: [u8; 20] = [
        0x00, 0x09, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x5f, 0x5e, 0x10, 0x00, 0xff, 0xff, 0xff,
        0xff, 0x00, 0x00, 0x00, 0x2a,
    ];
    const V9_REPR: V9Header = V9Header {
        count: 3,
        sys_uptime: 65536,
        unix_secs: 0x5f5e_1000,
        sequence: u32::MAX,
        source_id: 42,
    };

    #[test]
    fn ipfix_deconstruct() {
        assert_eq!(IpfixHeader::parse(&IPFIX_BYTES).unwrap(), IPFIX_REPR);
    }

    #[test]
    fn ipfix_construct() {
        let mut buf = vec![0xa5; IPFIX_REPR.buffer_len()];
        IPFIX_REPR.emit(&mut buf);
        assert_eq!(buf, IPFIX_BYTES);
    }

    #[test]
    fn ipfix_round_trip_and_errors() {
        let mut buf = [0xa5u8; 16];
        IPFIX_REPR.emit(&mut buf);
        assert_eq!(IpfixHeader::parse(&buf).unwrap(), IPFIX_REPR);
        assert!(matches!(
            IpfixHeader::parse(&buf[..15]),
            Err(DecodeError::Truncated {
                offset: 0,
                needed: 16,
                available: 15
            })
        ));
        assert_eq!(
            IpfixHeader::parse(&V9_BYTES),
            Err(DecodeError::UnsupportedVersion { version: 9 })
        );
    }

    #[test]
    fn v9_deconstruct() {
        assert_eq!(V9Header::parse(&V9_BYTES).unwrap(), V9_REPR);
    }

    #[test]
    fn v9_construct() {
        let mut buf = vec![0xa5; V9_REPR.buffer_len()];
        V9_REPR.emit(&mut buf);
        assert_eq!(buf, V9_BYTES);
    }

    #[test]
    fn v9_round_trip_and_errors() {
        let mut buf = [0xa5u8; 20];
        V9_REPR.emit(&mut buf);
        assert_eq!(V9Header::parse(&buf).unwrap(), V9_REPR);
        assert!(matches!(
            V9Header::parse(&buf[..19]),
            Err(DecodeError::Truncated { needed: 20, .. })
        ));
        let mut other = V9_BYTES;
        other[1] = 10;
        assert_eq!(
            V9Header::parse(&other),
            Err(DecodeError::UnsupportedVersion { version: 10 })
        );
    }
}
