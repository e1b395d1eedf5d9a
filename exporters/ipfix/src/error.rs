//! Error types. Decode errors carry the byte offset (from the start of the datagram)
//! where the problem was found.

use thiserror::Error;

/// Invalid [`crate::EncoderConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// `max_payload` cannot hold a header plus the largest single record this crate emits.
    #[error("max_payload {max_payload} is too small: at least {min} bytes are needed")]
    MaxPayloadTooSmall { max_payload: usize, min: usize },
    /// `max_payload` does not fit the 16-bit length fields of the protocol.
    #[error("max_payload {max_payload} is too large: at most {max} bytes are allowed")]
    MaxPayloadTooLarge { max_payload: usize, max: usize },
    /// A sampling interval of 0 is meaningless (1 means unsampled).
    #[error("sampling interval must be at least 1 (1 = unsampled), got 0")]
    ZeroSamplingInterval,
}

/// Error while parsing a datagram. Every `offset` is counted from the first byte
/// of the datagram.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Fewer bytes were available than the structure at `offset` needs.
    #[error("truncated at byte {offset}: need {needed} bytes, {available} available")]
    Truncated {
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// The header version is neither 9 nor 10.
    #[error("unsupported version {version} at byte 0 (expected 9 or 10)")]
    UnsupportedVersion { version: u16 },
    /// The IPFIX header length field disagrees with the datagram (RFC 7011 §3.1).
    #[error(
        "IPFIX header length {header_length} does not fit the datagram of {datagram_length} bytes"
    )]
    LengthMismatch {
        header_length: usize,
        datagram_length: usize,
    },
    /// A set / flowset length is shorter than its 4-byte header or runs past the message end.
    #[error("set {set_id} at byte {offset}: invalid length {length} ({remaining} bytes remain in the message)")]
    BadSetLength {
        offset: usize,
        set_id: u16,
        length: usize,
        remaining: usize,
    },
    /// A template record is malformed.
    #[error("template {template_id} at byte {offset}: {reason}")]
    InvalidTemplate {
        offset: usize,
        template_id: u16,
        reason: &'static str,
    },
    /// Bytes after the last set that cannot hold a set header.
    #[error("{count} trailing bytes at byte {offset} after the last set")]
    TrailingBytes { offset: usize, count: usize },
}

impl DecodeError {
    /// Shift every offset by `base`: used when a sub-slice was parsed.
    pub fn at(self, base: usize) -> Self {
        use DecodeError::*;
        match self {
            Truncated {
                offset,
                needed,
                available,
            } => Truncated {
                offset: offset + base,
                needed,
                available,
            },
            BadSetLength {
                offset,
                set_id,
                length,
                remaining,
            } => BadSetLength {
                offset: offset + base,
                set_id,
                length,
                remaining,
            },
            InvalidTemplate {
                offset,
                template_id,
                reason,
            } => InvalidTemplate {
                offset: offset + base,
                template_id,
                reason,
            },
            TrailingBytes { offset, count } => TrailingBytes {
                offset: offset + base,
                count,
            },
            e @ (UnsupportedVersion { .. } | LengthMismatch { .. }) => e,
        }
    }
}

/// A data record could not be turned back into a [`crate::FlowRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    /// A field the flow record needs is absent from the template.
    #[error("information element {ie} is missing from the record")]
    MissingField { ie: u16 },
    /// A field has a length that cannot hold its value.
    #[error("information element {ie} has unusable length {length}")]
    BadFieldLength { ie: u16, length: usize },
    /// Source and destination addresses are of different families or absent.
    #[error("record has no usable address pair")]
    NoAddresses,
}

/// Bounds-checked big-endian reads used by every `parse`.
pub(crate) fn need(buf: &[u8], offset: usize, len: usize) -> Result<&[u8], DecodeError> {
    match buf.get(offset..offset.saturating_add(len)) {
        Some(b) => Ok(b),
        None => Err(DecodeError::Truncated {
            offset,
            needed: len,
            available: buf.len().saturating_sub(offset),
        }),
    }
}

pub(crate) fn be16(buf: &[u8], offset: usize) -> Result<u16, DecodeError> {
    let b = need(buf, offset, 2)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

pub(crate) fn be32(buf: &[u8], offset: usize) -> Result<u32, DecodeError> {
    let b = need(buf, offset, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}
