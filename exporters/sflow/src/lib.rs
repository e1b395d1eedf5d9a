//! sFlow version 5 wire encoding for the mirrorflow probe.
//!
//! This crate is pure wire code for the sflow.org "sFlow Version 5" specification
//! (<https://sflow.org/sflow_version_5.txt>, XDR encoding per RFC 4506) and the
//! "sFlow Tunnel Structures" extension (<https://sflow.org/sflow_tunnels.txt>).
//! It opens no sockets, starts no threads and never reads the system clock: the
//! agent uptime is passed in by the caller.
//!
//! The style follows smoltcp's `wire` modules: every structure has a plain `Repr`
//! with public fields, a `buffer_len()` and an `emit()` that never panics (it writes
//! exactly `buffer_len()` bytes into a buffer at least that long, and returns
//! [`Error::BufferTooSmall`] otherwise), plus a `parse()` returning the repr and the
//! number of bytes consumed.
//!
//! * [`datagram`]: the datagram header (§5 `sample_datagram_v5`) and [`Sample`].
//! * [`flow_sample`]: flow samples, enterprise 0 formats 1 (compact) and 3 (expanded).
//! * [`counter_sample`]: counter samples, enterprise 0 formats 2 (compact) and 4 (expanded).
//! * [`records`]: flow and counter records carried inside the samples.
//! * [`encoder`]: packs samples into datagrams of bounded size for one collector.
//! * [`sampler`]: random 1-in-N packet sampling with the skip-count method.
//!
//! # Example
//!
//! ```
//! use mirrorflow_sflow::{
//!     DataSource, Encoder, EncoderConfig, FlowRecord, FlowSampleRepr, Interface, Sample,
//!     SampledHeader, Sampler,
//! };
//!
//! let mut sampler = Sampler::new(64, 0x5eed);
//! let mut encoder = Encoder::new(EncoderConfig::new("192.0.2.1".parse().unwrap()));
//! let frame = [0u8; 60]; // a captured Ethernet frame
//! let mut samples = Vec::new();
//! for _ in 0..10_000 {
//!     if sampler.should_sample() {
//!         let mut s = FlowSampleRepr {
//!             source_id: DataSource::if_index(3),
//!             input: Interface::Single(3),
//!             output: Interface::NONE,
//!             records: vec![FlowRecord::SampledHeader(SampledHeader::ethernet(&frame, 128))],
//!             ..Default::default()
//!         };
//!         sampler.stamp(&mut s);
//!         samples.push(Sample::Flow(s));
//!     }
//! }
//! let mut datagrams = Vec::new();
//! let report = encoder.encode(&samples, 12_345, &mut datagrams);
//! assert_eq!(report.samples, samples.len());
//! assert!(datagrams.iter().all(|d| d.len() <= 1400));
//! ```

/// Generates the four smoltcp-style tests of a wire structure: parse known bytes,
/// emit over a junk-filled (0xA5) buffer, reject every too-short emit buffer, reject
/// every truncated input.
#[cfg(test)]
macro_rules! wire_tests {
    ($name:ident, $ty:ty, $repr:expr, $bytes:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use crate::test_util::*;

            fn repr() -> $ty {
                $repr
            }

            fn bytes() -> Vec<u8> {
                $bytes
            }

            #[test]
            fn parse_known_bytes() {
                let b = bytes();
                let (r, n) = <$ty>::parse(&b).expect("parse");
                assert_eq!(r, repr());
                assert_eq!(n, b.len());
            }

            #[test]
            fn emit_over_junk() {
                let r = repr();
                let mut buf = vec![0xA5u8; r.buffer_len() + 7];
                let n = r.emit(&mut buf).expect("emit");
                assert_eq!(n, r.buffer_len());
                assert_eq!(&buf[..n], &bytes()[..]);
                assert!(buf[n..].iter().all(|&b| b == 0xA5), "wrote past buffer_len");
            }

            #[test]
            fn emit_short_buffer_is_error() {
                let r = repr();
                let len = r.buffer_len();
                assert_eq!(len, bytes().len());
                for short in 0..len {
                    let mut buf = vec![0xA5u8; short];
                    assert_eq!(
                        r.emit(&mut buf),
                        Err(crate::Error::BufferTooSmall {
                            needed: len,
                            available: short
                        })
                    );
                }
            }

            #[test]
            fn parse_truncated_is_error() {
                let b = bytes();
                for short in 0..b.len() {
                    assert_eq!(
                        <$ty>::parse(&b[..short]).err(),
                        Some(crate::Error::Truncated),
                        "prefix of {short} bytes"
                    );
                }
            }
        }
    };
}

pub mod counter_sample;
pub mod datagram;
pub mod encoder;
pub mod flow_sample;
pub mod records;
pub mod sampler;
mod xdr;

pub use counter_sample::CounterSampleRepr;
pub use datagram::{DatagramHeader, DatagramRepr, Sample};
pub use encoder::{EncodeReport, Encoder, EncoderConfig, DEFAULT_MAX_DATAGRAM};
pub use flow_sample::FlowSampleRepr;
pub use records::{
    CounterRecord, EthernetCounters, ExtendedSwitch, FlowRecord, GenericInterfaceCounters,
    PortName, SampledHeader, SampledIpv4, SampledIpv6,
};
pub use sampler::Sampler;

/// Errors of the sFlow wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `emit` was given a buffer shorter than `buffer_len()`.
    #[error("buffer too small: need {needed} bytes, have {available}")]
    BufferTooSmall {
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// The input ended before the structure did.
    #[error("truncated sFlow data")]
    Truncated,
    /// The datagram version is not 5.
    #[error("unsupported sFlow datagram version {0}")]
    Version(u32),
    /// The agent address type is neither 1 (IPv4) nor 2 (IPv6).
    #[error("unsupported agent address type {0}")]
    AddressType(u32),
    /// A compact interface (§5 `interface`) used the reserved format 3.
    #[error("invalid interface format {0}")]
    InterfaceFormat(u32),
    /// A sample had a data format other than the one(s) the parser expected.
    #[error("unexpected data format {0:#x}")]
    Format(u32),
    /// A structure's length field disagrees with the structure itself.
    #[error("inconsistent length field for {0}")]
    Length(&'static str),
    /// A string field is not valid UTF-8.
    #[error("string field is not UTF-8")]
    Utf8,
}

/// Result type of the sFlow wire code.
pub type Result<T> = core::result::Result<T, Error>;

/// An sFlow `data_format` (sFlow v5 §5 "Data Format"): the 20 most significant bits are the
/// SMI private enterprise code (0 = sflow.org standard structures), the 12 least
/// significant bits the structure format number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataFormat(pub u32);

impl DataFormat {
    /// Builds a data format; `enterprise` is cut to 20 bits and `format` to 12 bits.
    pub const fn new(enterprise: u32, format: u32) -> Self {
        DataFormat(((enterprise & 0xF_FFFF) << 12) | (format & 0xFFF))
    }

    /// The SMI private enterprise code.
    pub const fn enterprise(self) -> u32 {
        self.0 >> 12
    }

    /// The format number within the enterprise.
    pub const fn format(self) -> u32 {
        self.0 & 0xFFF
    }
}

/// An sFlow data source (sFlow v5 §5 `sflow_data_source` / `sflow_data_source_expanded`).
///
/// `source_type` is the sFlowDataSource class (0 = ifIndex, 1 = smonVlanDataSource,
/// 2 = entPhysicalEntry), `index` the index within that class. A source fits the compact
/// encoding when the type fits 8 bits and the index 24 bits; samples choose the expanded
/// encoding automatically otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DataSource {
    /// sFlowDataSource type (0 = ifIndex).
    pub source_type: u32,
    /// sFlowDataSource index.
    pub index: u32,
}

impl DataSource {
    /// Data source for interface `if_index` (type 0, ifIndex).
    pub const fn if_index(if_index: u32) -> Self {
        DataSource {
            source_type: 0,
            index: if_index,
        }
    }

    /// Whether the source fits the compact `sflow_data_source` (type 8 bits, index 24 bits).
    pub const fn fits_compact(&self) -> bool {
        self.source_type <= 0xFF && self.index <= 0x00FF_FFFF
    }

    pub(crate) const fn compact(&self) -> u32 {
        (self.source_type << 24) | (self.index & 0x00FF_FFFF)
    }

    pub(crate) const fn from_compact(v: u32) -> Self {
        DataSource {
            source_type: v >> 24,
            index: v & 0x00FF_FFFF,
        }
    }
}

/// An input/output interface of a flow sample (sFlow v5 §5 `interface` and
/// `interface_expanded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interface {
    /// Format 0: a single interface, by ifIndex. [`Interface::NONE`] (0x3FFFFFFF) means
    /// "no interface" (traffic not sent through the device); 0 means unknown.
    Single(u32),
    /// Format 1: the packet was discarded; the value is a reason code.
    Discarded(u32),
    /// Format 2: sent to multiple interfaces; the value is their count (0 = unknown).
    Multiple(u32),
}

impl Default for Interface {
    fn default() -> Self {
        Interface::Single(0)
    }
}

impl Interface {
    /// "No input or output interface" in the compact encoding (format 0, value 0x3FFFFFFF).
    pub const NONE: Interface = Interface::Single(0x3FFF_FFFF);

    /// The 2-bit format number (0 single, 1 discarded, 2 multiple).
    pub const fn format(&self) -> u32 {
        match self {
            Interface::Single(_) => 0,
            Interface::Discarded(_) => 1,
            Interface::Multiple(_) => 2,
        }
    }

    /// The value (ifIndex, reason code or interface count).
    pub const fn value(&self) -> u32 {
        match self {
            Interface::Single(v) | Interface::Discarded(v) | Interface::Multiple(v) => *v,
        }
    }

    /// Whether the value fits the 30 bits of the compact encoding.
    pub const fn fits_compact(&self) -> bool {
        self.value() <= 0x3FFF_FFFF
    }

    /// Builds an interface from its format and value; `None` for an unknown format.
    pub const fn from_parts(format: u32, value: u32) -> Option<Self> {
        match format {
            0 => Some(Interface::Single(value)),
            1 => Some(Interface::Discarded(value)),
            2 => Some(Interface::Multiple(value)),
            _ => None,
        }
    }

    pub(crate) const fn compact(&self) -> u32 {
        (self.format() << 30) | (self.value() & 0x3FFF_FFFF)
    }

    pub(crate) fn from_compact(v: u32) -> Result<Self> {
        Interface::from_parts(v >> 30, v & 0x3FFF_FFFF).ok_or(Error::InterfaceFormat(v >> 30))
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    /// Big-endian bytes of XDR words.
    pub(crate) fn words(w: &[u32]) -> Vec<u8> {
        w.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    /// Concatenates byte vectors.
    pub(crate) fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }
}

/// Rounds `len` up to a multiple of 4 (XDR alignment).
pub(crate) const fn pad4(len: usize) -> usize {
    len.saturating_add(3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_format_packs_enterprise_and_format() {
        let f = DataFormat::new(4413, 5);
        assert_eq!(f.0, (4413 << 12) | 5);
        assert_eq!((f.enterprise(), f.format()), (4413, 5));
        assert_eq!(DataFormat::new(0, 1001).0, 1001);
    }

    #[test]
    fn data_source_compact_limits() {
        assert!(DataSource::if_index(0x00FF_FFFF).fits_compact());
        assert!(!DataSource::if_index(0x0100_0000).fits_compact());
        let s = DataSource {
            source_type: 0xFF,
            index: 5,
        };
        assert!(s.fits_compact());
        assert_eq!(s.compact(), 0xFF00_0005);
        assert_eq!(DataSource::from_compact(0xFF00_0005), s);
        assert!(!DataSource {
            source_type: 0x100,
            index: 5
        }
        .fits_compact());
    }

    #[test]
    fn interface_compact_encoding() {
        assert_eq!(Interface::NONE.compact(), 0x3FFF_FFFF);
        assert_eq!(Interface::Discarded(0x102).compact(), 0x4000_0102);
        assert_eq!(Interface::Multiple(7).compact(), 0x8000_0007);
        assert_eq!(
            Interface::from_compact(0x8000_0007),
            Ok(Interface::Multiple(7))
        );
        assert_eq!(
            Interface::from_compact(0xC000_0001),
            Err(Error::InterfaceFormat(3))
        );
        assert!(Interface::Single(0x3FFF_FFFF).fits_compact());
        assert!(!Interface::Single(0x4000_0000).fits_compact());
    }
}
