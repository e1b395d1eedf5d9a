//! Packs samples into sFlow v5 datagrams for one collector stream.
//!
//! One [`Encoder`] per agent/sub-agent/collector stream owns the datagram sequence
//! number (sFlow v5 §5 `sample_datagram_v5.sequence_number`: incremented by one with
//! each datagram sent). [`Encoder::encode`] appends to `out` as few datagrams as the
//! greedy in-order packing allows, each at most `max_datagram` bytes (the UDP payload).
//!
//! # Samples larger than a datagram
//!
//! A sample that does not fit even an otherwise empty datagram is handled as follows:
//!
//! * a flow sample with `sampled_header` records has those header bytes cut (from the
//!   end, to a multiple of four bytes, first record first) until the sample fits. The
//!   record's `frame_length` and `stripped` are left as they are: a shorter header is
//!   still a correct prefix of the same packet, and the header length is carried by
//!   the opaque length. Such samples are counted in [`EncodeReport::truncated`];
//! * any other sample (a counter sample, a flow sample still too large with all its
//!   header bytes removed, an unknown sample) is dropped and counted in
//!   [`EncodeReport::dropped`]. Callers are expected to add these to the `drops` of
//!   their next flow sample if they want collectors to see them.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use crate::datagram::{DatagramHeader, Sample};
use crate::pad4;
use crate::records::FlowRecord;
use crate::xdr::Writer;

/// Default upper bound of a datagram (UDP payload) in bytes: fits a 1500-byte MTU with
/// IPv6 and UDP headers and room for tunnel overhead.
pub const DEFAULT_MAX_DATAGRAM: usize = 1400;

/// Configuration of one encoder (one collector stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderConfig {
    /// The agent address written in every datagram header.
    pub agent: IpAddr,
    /// The sub-agent id written in every datagram header.
    pub sub_agent_id: u32,
    /// Maximum datagram size (sFlow payload of one UDP packet) in bytes.
    pub max_datagram: usize,
}

impl EncoderConfig {
    /// Configuration for `agent`, sub-agent 0 and [`DEFAULT_MAX_DATAGRAM`].
    pub fn new(agent: IpAddr) -> Self {
        EncoderConfig {
            agent,
            sub_agent_id: 0,
            max_datagram: DEFAULT_MAX_DATAGRAM,
        }
    }
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}

/// What one [`Encoder::encode`] call (or, for [`Encoder::totals`], all calls) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncodeReport {
    /// Datagrams appended to `out`.
    pub datagrams: usize,
    /// Samples written (including truncated ones).
    pub samples: usize,
    /// Flow samples whose sampled header bytes were cut to fit `max_datagram`.
    pub truncated: usize,
    /// Samples dropped because they could not fit `max_datagram`.
    pub dropped: usize,
}

impl EncodeReport {
    fn add(&mut self, other: &EncodeReport) {
        self.datagrams += other.datagrams;
        self.samples += other.samples;
        self.truncated += other.truncated;
        self.dropped += other.dropped;
    }
}

/// sFlow v5 datagram encoder for one agent/sub-agent/collector stream.
#[derive(Debug, Clone)]
pub struct Encoder {
    config: EncoderConfig,
    next_sequence: u32,
    totals: EncodeReport,
}

impl Encoder {
    /// New encoder; its first datagram carries sequence number 1.
    pub fn new(config: EncoderConfig) -> Self {
        Encoder {
            config,
            next_sequence: 1,
            totals: EncodeReport::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// Sequence number the next datagram will carry.
    pub fn next_sequence(&self) -> u32 {
        self.next_sequence
    }

    /// Sums of the reports of all `encode` calls so far.
    pub fn totals(&self) -> EncodeReport {
        self.totals
    }

    /// Encodes `samples`, in order, into datagrams appended to `out`, each holding as
    /// many samples as fit in `max_datagram` bytes. `uptime_ms` is the agent uptime
    /// written in every datagram. No datagram is produced when no sample is written.
    /// Oversized samples are truncated or dropped as described in the module docs.
    pub fn encode(
        &mut self,
        samples: &[Sample],
        uptime_ms: u32,
        out: &mut Vec<Vec<u8>>,
    ) -> EncodeReport {
        let mut report = EncodeReport::default();
        let header_len = DatagramHeader::len_for(&self.config.agent);
        let room = self.config.max_datagram.saturating_sub(header_len);
        let mut batch: Vec<Cow<'_, Sample>> = Vec::new();
        let mut batch_len = 0;
        for sample in samples {
            let mut len = sample.buffer_len();
            let sample = if len <= room {
                Cow::Borrowed(sample)
            } else if let Some(cut) = truncate_to_fit(sample, room) {
                report.truncated += 1;
                len = cut.buffer_len();
                Cow::Owned(cut)
            } else {
                report.dropped += 1;
                continue;
            };
            if batch_len + len > room {
                self.flush(&mut batch, batch_len, uptime_ms, out, &mut report);
                batch_len = 0;
            }
            batch.push(sample);
            batch_len += len;
        }
        if !batch.is_empty() {
            self.flush(&mut batch, batch_len, uptime_ms, out, &mut report);
        }
        self.totals.add(&report);
        report
    }

    fn flush(
        &mut self,
        batch: &mut Vec<Cow<'_, Sample>>,
        batch_len: usize,
        uptime_ms: u32,
        out: &mut Vec<Vec<u8>>,
        report: &mut EncodeReport,
    ) {
        let header = DatagramHeader {
            agent: self.config.agent,
            sub_agent_id: self.config.sub_agent_id,
            sequence_number: self.next_sequence,
            uptime_ms,
            // The batch fits in max_datagram bytes, each sample taking at least 8.
            num_samples: u32::try_from(batch.len()).unwrap_or(u32::MAX),
        };
        let total = header.buffer_len() + batch_len;
        let mut buf = vec![0u8; total];
        let written = Writer::new(&mut buf, total).and_then(|mut w| {
            header.emit_to(&mut w)?;
            batch.iter().try_for_each(|s| s.emit_to(&mut w))?;
            Ok(w.pos())
        });
        match written {
            Ok(n) if n == total => {
                out.push(buf);
                self.next_sequence = self.next_sequence.wrapping_add(1);
                report.datagrams += 1;
                report.samples += batch.len();
            }
            // Unreachable while buffer_len() agrees with emit(); never send a bad datagram.
            _ => report.dropped += batch.len(),
        }
        batch.clear();
    }
}

/// Cuts the sampled header bytes of a flow sample until its `sample_record` fits `room`
/// bytes; `None` if that is impossible.
fn truncate_to_fit(sample: &Sample, room: usize) -> Option<Sample> {
    let Sample::Flow(flow) = sample else {
        return None;
    };
    let mut over = flow.buffer_len().checked_sub(room)?;
    let mut flow = flow.clone();
    for record in &mut flow.records {
        if over == 0 {
            break;
        }
        if let FlowRecord::SampledHeader(h) = record {
            let padded = pad4(h.header.len());
            if padded > over {
                let keep = ((padded - over) & !3).min(h.header.len());
                h.header.truncate(keep);
                over = 0;
            } else {
                over -= padded;
                h.header.clear();
            }
        }
    }
    (over == 0 && flow.buffer_len() <= room).then_some(Sample::Flow(flow))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagram::DatagramRepr;
    use crate::records::{CounterRecord, SampledHeader};
    use crate::{CounterSampleRepr, DataFormat, DataSource, FlowSampleRepr, Interface};

    fn flow(seq: u32, header_len: usize) -> Sample {
        Sample::Flow(FlowSampleRepr {
            sequence_number: seq,
            source_id: DataSource::if_index(1),
            sampling_rate: 10,
            sample_pool: seq * 10,
            drops: 0,
            input: Interface::Single(1),
            output: Interface::Single(2),
            records: vec![FlowRecord::SampledHeader(SampledHeader {
                protocol: 1,
                frame_length: 1500,
                stripped: 4,
                header: (0..header_len).map(|i| i as u8).collect(),
            })],
        })
    }

    fn encoder(max: usize) -> Encoder {
        Encoder::new(EncoderConfig {
            agent: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
            sub_agent_id: 3,
            max_datagram: max,
        })
    }

    #[test]
    fn packs_greedily_and_numbers_datagrams() {
        // Each sample: 8 + 32 + 8 + 16 + 128 = 192 bytes; header 28: 7 fit in 1400.
        let samples: Vec<Sample> = (1..=20).map(|i| flow(i, 128)).collect();
        assert_eq!(samples[0].buffer_len(), 192);
        let mut enc = encoder(1400);
        let mut out = Vec::new();
        let rep = enc.encode(&samples, 5000, &mut out);
        assert_eq!(
            rep,
            EncodeReport {
                datagrams: 3,
                samples: 20,
                truncated: 0,
                dropped: 0
            }
        );
        let counts: Vec<usize> = out
            .iter()
            .map(|d| DatagramRepr::parse(d).unwrap().samples.len())
            .collect();
        assert_eq!(counts, [7, 7, 6]);
        assert_eq!(out[0].len(), 28 + 7 * 192);
        let mut all = Vec::new();
        for (i, d) in out.iter().enumerate() {
            let d = DatagramRepr::parse(d).unwrap();
            assert_eq!(d.sequence_number, i as u32 + 1);
            assert_eq!((d.sub_agent_id, d.uptime_ms), (3, 5000));
            all.extend(d.samples);
        }
        assert_eq!(all, samples);
        // The next call continues the sequence.
        enc.encode(&samples[..1], 6000, &mut out);
        assert_eq!(DatagramRepr::parse(&out[3]).unwrap().sequence_number, 4);
        assert_eq!(enc.next_sequence(), 5);
        assert_eq!(enc.totals().samples, 21);
    }

    #[test]
    fn no_samples_no_datagram() {
        let mut out = Vec::new();
        let mut enc = encoder(1400);
        assert_eq!(enc.encode(&[], 0, &mut out), EncodeReport::default());
        assert!(out.is_empty());
        assert_eq!(enc.next_sequence(), 1);
    }

    #[test]
    fn oversized_flow_sample_header_is_truncated_to_fit() {
        // 8 + 32 + 8 + 16 + 2000 bytes: far over 1400.
        let big = flow(1, 2000);
        let small = flow(2, 64);
        let mut out = Vec::new();
        let mut enc = encoder(1400);
        let rep = enc.encode(&[small.clone(), big.clone(), small.clone()], 1, &mut out);
        assert_eq!(rep.truncated, 1);
        assert_eq!(rep.dropped, 0);
        assert_eq!(rep.samples, 3);
        assert!(out.iter().all(|d| d.len() <= 1400));
        let samples: Vec<Sample> = out
            .iter()
            .flat_map(|d| DatagramRepr::parse(d).unwrap().samples)
            .collect();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0], small);
        let Sample::Flow(cut) = &samples[1] else {
            panic!("not a flow sample")
        };
        let FlowRecord::SampledHeader(h) = &cut.records[0] else {
            panic!("not a header record")
        };
        // Room for samples 1400 - 28 = 1372, minus 64 bytes of sample/record framing.
        assert_eq!(h.header.len(), 1372 - 64);
        assert_eq!(
            h.header[..],
            (0..1308).map(|i| i as u8).collect::<Vec<_>>()[..]
        );
        assert_eq!((h.frame_length, h.stripped), (1500, 4));
        // The big sample got a datagram of its own, exactly full.
        assert_eq!(out[1].len(), 1400);
    }

    #[test]
    fn truncation_keeps_header_a_multiple_of_four_when_cut() {
        for max in 1390..1400 {
            let mut out = Vec::new();
            encoder(max).encode(&[flow(1, 1501)], 1, &mut out);
            assert_eq!(out.len(), 1);
            assert!(out[0].len() <= max);
            let d = DatagramRepr::parse(&out[0]).unwrap();
            let Sample::Flow(f) = &d.samples[0] else {
                panic!()
            };
            let FlowRecord::SampledHeader(h) = &f.records[0] else {
                panic!()
            };
            assert_eq!(h.header.len() % 4, 0);
            assert!(out[0].len() + 4 > max, "could have kept more bytes");
        }
    }

    #[test]
    fn samples_that_cannot_fit_are_dropped_and_counted() {
        let counters = Sample::Counter(CounterSampleRepr {
            sequence_number: 1,
            source_id: DataSource::if_index(1),
            records: vec![CounterRecord::Unknown {
                format: DataFormat::new(0, 2000),
                data: vec![0; 2000],
            }],
        });
        let unknown = Sample::Unknown {
            format: DataFormat::new(0, 5),
            data: vec![0; 1500],
        };
        let mut out = Vec::new();
        let mut enc = encoder(1400);
        let rep = enc.encode(&[counters, flow(1, 10), unknown], 1, &mut out);
        assert_eq!((rep.dropped, rep.samples, rep.datagrams), (2, 1, 1));
        // A datagram limit below header + smallest sample drops everything.
        let mut enc = encoder(60);
        let rep = enc.encode(&[flow(1, 0)], 1, &mut out);
        assert_eq!((rep.dropped, rep.datagrams), (1, 0));
        assert_eq!(enc.next_sequence(), 1);
    }

    #[test]
    fn ipv6_agent_header_is_accounted_for() {
        let mut enc = Encoder::new(EncoderConfig {
            max_datagram: 40 + 192,
            ..EncoderConfig::new("2001:db8::1".parse().unwrap())
        });
        let mut out = Vec::new();
        let rep = enc.encode(&[flow(1, 128), flow(2, 128)], 1, &mut out);
        assert_eq!((rep.datagrams, rep.truncated), (2, 0));
        assert!(out.iter().all(|d| d.len() == 232));
    }
}
