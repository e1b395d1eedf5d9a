//! IPFIX (RFC 7011) and NetFlow v9 (RFC 3954) wire format for mirrorflow.
//!
//! Pure wire-format code: no sockets, no threads, no system clock. Time is always
//! passed in by the caller ([`ExportClock`]).
//!
//! * Wire types (`header`, `set`, `template`, `record`) follow smoltcp's `wire` style:
//!   a plain `Repr` with `parse`, `buffer_len` and `emit`; `emit` never panics on a
//!   buffer of `buffer_len()` bytes.
//! * [`Encoder`] turns [`FlowRecord`]s into export datagrams (one `Encoder` per
//!   collector stream: it owns sequence numbers and template-refresh state).
//! * [`Decoder`] parses export datagrams with a template cache keyed by
//!   (version, observation domain / source id, template id); errors carry byte offsets.
//!
//! See `templates.rs` for the exact template layouts this crate exports.

pub mod decoder;
pub mod encoder;
pub mod error;
pub mod flow;
pub mod header;
pub mod ie;
pub mod record;
pub mod set;
pub mod template;
pub mod templates;

pub use decoder::{DataRecord, Decoder, FieldValue, Message, Set, TimeBase};
pub use encoder::{Encoder, EncoderConfig, ExportClock};
pub use error::{ConfigError, DecodeError, RecordError};
pub use flow::{ExporterStats, FlowRecord, InterfaceInfo, Sampling};
pub use header::{IpfixHeader, V9Header};
pub use set::SetHeader;
pub use template::{FieldSpec, TemplateRecord};

/// Export protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// IPFIX, RFC 7011 (header version number 10).
    Ipfix,
    /// NetFlow version 9, RFC 3954 (header version number 9).
    NetflowV9,
}

impl Version {
    /// The version number carried in the message header (RFC 7011 §3.1, RFC 3954 §5.1).
    pub fn number(self) -> u16 {
        match self {
            Version::Ipfix => 10,
            Version::NetflowV9 => 9,
        }
    }

    /// Length of the message header: 16 bytes for IPFIX, 20 for NetFlow v9.
    pub fn header_len(self) -> usize {
        match self {
            Version::Ipfix => header::IpfixHeader::LEN,
            Version::NetflowV9 => header::V9Header::LEN,
        }
    }
}
