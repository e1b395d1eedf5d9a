//! The sFlow v5 datagram: sFlow v5 §5 `sample_datagram_v5` and the `sample_record`s
//! it carries.
//!
//! ```text
//! struct sample_datagram_v5 {
//!    address agent_address;      /* 1 = IPv4 (4 bytes), 2 = IPv6 (16 bytes) */
//!    unsigned int sub_agent_id;
//!    unsigned int sequence_number;
//!    unsigned int uptime;        /* ms since the agent booted */
//!    sample_record samples<>;    /* count, then the samples */
//! }
//! /* preceded on the wire by the datagram version, 5 */
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::counter_sample::{CounterSampleRepr, COUNTER_SAMPLE, COUNTER_SAMPLE_EXPANDED};
use crate::flow_sample::{FlowSampleRepr, FLOW_SAMPLE, FLOW_SAMPLE_EXPANDED};
use crate::xdr::{Reader, Writer};
use crate::{pad4, DataFormat, Error, Result};

/// sFlow datagram version emitted and accepted.
pub const VERSION: u32 = 5;

/// The fixed part of a datagram, up to and including the sample count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramHeader {
    /// IP address of the sFlow agent (encoded as address type 1 or 2).
    pub agent: IpAddr,
    /// Sub-agent id, distinguishing independent datagram streams of one agent.
    pub sub_agent_id: u32,
    /// Datagram sequence number of this agent/sub-agent stream.
    pub sequence_number: u32,
    /// Agent uptime in milliseconds.
    pub uptime_ms: u32,
    /// Number of `sample_record`s that follow.
    pub num_samples: u32,
}

impl DatagramHeader {
    /// Header length for an agent address (28 bytes for IPv4, 40 for IPv6).
    pub const fn len_for(agent: &IpAddr) -> usize {
        match agent {
            IpAddr::V4(_) => 28,
            IpAddr::V6(_) => 40,
        }
    }

    /// Length on the wire.
    pub const fn buffer_len(&self) -> usize {
        Self::len_for(&self.agent)
    }

    /// Emits the header into `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf, self.buffer_len())?;
        self.emit_to(&mut w)?;
        Ok(w.pos())
    }

    pub(crate) fn emit_to(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u32(VERSION)?;
        match self.agent {
            IpAddr::V4(a) => {
                w.u32(1)?;
                w.fixed(&a.octets())?;
            }
            IpAddr::V6(a) => {
                w.u32(2)?;
                w.fixed(&a.octets())?;
            }
        }
        w.u32(self.sub_agent_id)?;
        w.u32(self.sequence_number)?;
        w.u32(self.uptime_ms)?;
        w.u32(self.num_samples)
    }

    /// Parses a header; returns it and the bytes consumed. Rejects versions other than 5
    /// ([`Error::Version`]) and address types other than 1 and 2 ([`Error::AddressType`]).
    pub fn parse(buf: &[u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let version = r.u32()?;
        if version != VERSION {
            return Err(Error::Version(version));
        }
        let agent = match r.u32()? {
            1 => IpAddr::V4(Ipv4Addr::from(r.u32()?)),
            2 => {
                let b: [u8; 16] = r.fixed(16)?.try_into().map_err(|_| Error::Truncated)?;
                IpAddr::V6(Ipv6Addr::from(b))
            }
            t => return Err(Error::AddressType(t)),
        };
        let repr = DatagramHeader {
            agent,
            sub_agent_id: r.u32()?,
            sequence_number: r.u32()?,
            uptime_ms: r.u32()?,
            num_samples: r.u32()?,
        };
        Ok((repr, r.pos()))
    }
}

/// One `sample_record` of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sample {
    /// A flow sample (format 0:1, or 0:3 when expanded).
    Flow(FlowSampleRepr),
    /// A counter sample (format 0:2, or 0:4 when expanded).
    Counter(CounterSampleRepr),
    /// Any other sample type (e.g. discarded packets 0:5 or vendor samples), raw body.
    Unknown {
        /// The sample's data format.
        format: DataFormat,
        /// The sample body.
        data: Vec<u8>,
    },
}

impl From<FlowSampleRepr> for Sample {
    fn from(s: FlowSampleRepr) -> Self {
        Sample::Flow(s)
    }
}

impl From<CounterSampleRepr> for Sample {
    fn from(s: CounterSampleRepr) -> Self {
        Sample::Counter(s)
    }
}

impl Sample {
    /// The sample's `data_format`.
    pub fn data_format(&self) -> DataFormat {
        match self {
            Sample::Flow(s) => s.data_format(),
            Sample::Counter(s) => s.data_format(),
            Sample::Unknown { format, .. } => *format,
        }
    }

    /// Length of the whole `sample_record` on the wire.
    pub fn buffer_len(&self) -> usize {
        match self {
            Sample::Flow(s) => s.buffer_len(),
            Sample::Counter(s) => s.buffer_len(),
            Sample::Unknown { data, .. } => 8 + pad4(data.len()),
        }
    }

    /// Emits the `sample_record` into `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf, self.buffer_len())?;
        self.emit_to(&mut w)?;
        Ok(w.pos())
    }

    pub(crate) fn emit_to(&self, w: &mut Writer<'_>) -> Result<()> {
        match self {
            Sample::Flow(s) => s.emit_to(w),
            Sample::Counter(s) => s.emit_to(w),
            Sample::Unknown { format, data } => {
                w.u32(format.0)?;
                w.opaque(data)
            }
        }
    }

    /// Parses a `sample_record`; returns it and the bytes consumed.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let format = DataFormat(r.u32()?);
        let body = r.opaque()?;
        let sample = match format {
            FLOW_SAMPLE | FLOW_SAMPLE_EXPANDED => Sample::Flow(FlowSampleRepr::parse_body(
                body,
                format == FLOW_SAMPLE_EXPANDED,
            )?),
            COUNTER_SAMPLE | COUNTER_SAMPLE_EXPANDED => Sample::Counter(
                CounterSampleRepr::parse_body(body, format == COUNTER_SAMPLE_EXPANDED)?,
            ),
            _ => Sample::Unknown {
                format,
                data: body.to_vec(),
            },
        };
        Ok((sample, r.pos()))
    }
}

/// A whole datagram: header fields and samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatagramRepr {
    /// IP address of the sFlow agent.
    pub agent: IpAddr,
    /// Sub-agent id.
    pub sub_agent_id: u32,
    /// Datagram sequence number.
    pub sequence_number: u32,
    /// Agent uptime in milliseconds.
    pub uptime_ms: u32,
    /// The samples.
    pub samples: Vec<Sample>,
}

impl DatagramRepr {
    /// The header of this datagram.
    pub fn header(&self) -> DatagramHeader {
        DatagramHeader {
            agent: self.agent,
            sub_agent_id: self.sub_agent_id,
            sequence_number: self.sequence_number,
            uptime_ms: self.uptime_ms,
            num_samples: u32::try_from(self.samples.len()).unwrap_or(u32::MAX),
        }
    }

    /// Length on the wire.
    pub fn buffer_len(&self) -> usize {
        DatagramHeader::len_for(&self.agent)
            + self.samples.iter().map(Sample::buffer_len).sum::<usize>()
    }

    /// Emits the datagram into `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if u32::try_from(self.samples.len()).is_err() {
            return Err(Error::Length("sample_datagram_v5"));
        }
        let mut w = Writer::new(buf, self.buffer_len())?;
        self.header().emit_to(&mut w)?;
        self.samples.iter().try_for_each(|s| s.emit_to(&mut w))?;
        Ok(w.pos())
    }

    /// Parses a datagram that must fill `buf` exactly; returns it.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let (header, mut pos) = DatagramHeader::parse(buf)?;
        // Each sample takes at least 8 bytes: bound the allocation by the data present.
        let cap = (header.num_samples as usize).min((buf.len() - pos) / 8);
        let mut samples = Vec::with_capacity(cap);
        for _ in 0..header.num_samples {
            let (s, n) = Sample::parse(&buf[pos..])?;
            pos += n;
            samples.push(s);
        }
        if pos != buf.len() {
            return Err(Error::Length("sample_datagram_v5"));
        }
        Ok(DatagramRepr {
            agent: header.agent,
            sub_agent_id: header.sub_agent_id,
            sequence_number: header.sequence_number,
            uptime_ms: header.uptime_ms,
            samples,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{CounterRecord, FlowRecord};
    use crate::test_util::{cat, words};
    use crate::{DataSource, Interface};

    wire_tests!(
        header_ipv4,
        DatagramHeader,
        DatagramHeader {
            agent: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            sub_agent_id: 7,
            sequence_number: 42,
            uptime_ms: 123_456,
            num_samples: 2,
        },
        words(&[5, 1, 0xC000_0201, 7, 42, 123_456, 2])
    );

    wire_tests!(
        header_ipv6,
        DatagramHeader,
        DatagramHeader {
            agent: "2001:db8::5".parse().unwrap(),
            sub_agent_id: 0,
            sequence_number: 1,
            uptime_ms: 9,
            num_samples: 0,
        },
        words(&[5, 2, 0x2001_0db8, 0, 0, 5, 0, 1, 9, 0])
    );

    wire_tests!(
        sample_unknown,
        Sample,
        Sample::Unknown {
            format: DataFormat::new(0, 5),
            data: vec![1, 2, 3, 4, 5],
        },
        cat(&[&words(&[5, 5]), &[1, 2, 3, 4, 5, 0, 0, 0]])
    );

    wire_tests!(
        sample_counter,
        Sample,
        Sample::Counter(CounterSampleRepr {
            sequence_number: 1,
            source_id: DataSource::if_index(4),
            records: vec![],
        }),
        words(&[2, 12, 1, 4, 0])
    );

    fn datagram() -> DatagramRepr {
        DatagramRepr {
            agent: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            sub_agent_id: 1,
            sequence_number: 3,
            uptime_ms: 1000,
            samples: vec![
                Sample::Flow(FlowSampleRepr {
                    sequence_number: 1,
                    source_id: DataSource::if_index(4),
                    sampling_rate: 1,
                    sample_pool: 1,
                    drops: 0,
                    input: Interface::Single(4),
                    output: Interface::NONE,
                    records: vec![FlowRecord::VniIngress(5)],
                }),
                Sample::Counter(CounterSampleRepr {
                    sequence_number: 2,
                    source_id: DataSource::if_index(4),
                    records: vec![CounterRecord::Unknown {
                        format: DataFormat::new(0, 2000),
                        data: vec![],
                    }],
                }),
            ],
        }
    }

    fn datagram_bytes() -> Vec<u8> {
        words(&[
            5,
            1,
            0xC633_6407,
            1,
            3,
            1000,
            2,
            1,
            44,
            1,
            4,
            1,
            1,
            0,
            4,
            0x3FFF_FFFF,
            1,
            1030,
            4,
            5,
            2,
            20,
            2,
            4,
            1,
            2000,
            0,
        ])
    }

    #[test]
    fn datagram_parse_known_bytes() {
        assert_eq!(DatagramRepr::parse(&datagram_bytes()), Ok(datagram()));
    }

    #[test]
    fn datagram_emit_over_junk() {
        let d = datagram();
        let mut buf = vec![0xA5; d.buffer_len() + 3];
        assert_eq!(d.emit(&mut buf), Ok(d.buffer_len()));
        assert_eq!(&buf[..d.buffer_len()], &datagram_bytes()[..]);
        assert_eq!(&buf[d.buffer_len()..], &[0xA5; 3]);
    }

    #[test]
    fn datagram_emit_short_buffer_is_error() {
        let d = datagram();
        for short in 0..d.buffer_len() {
            assert!(matches!(
                d.emit(&mut vec![0; short]),
                Err(Error::BufferTooSmall { .. })
            ));
        }
    }

    #[test]
    fn datagram_parse_truncated_or_padded_is_error() {
        let b = datagram_bytes();
        for short in 0..b.len() {
            assert_eq!(DatagramRepr::parse(&b[..short]), Err(Error::Truncated));
        }
        let mut long = b.clone();
        long.extend([0; 4]);
        assert_eq!(
            DatagramRepr::parse(&long),
            Err(Error::Length("sample_datagram_v5"))
        );
    }

    #[test]
    fn header_rejects_bad_version_and_address_type() {
        assert_eq!(
            DatagramHeader::parse(&words(&[4, 1, 0, 0, 0, 0, 0])),
            Err(Error::Version(4))
        );
        assert_eq!(
            DatagramHeader::parse(&words(&[5, 0, 0, 0, 0, 0])),
            Err(Error::AddressType(0))
        );
    }
}
