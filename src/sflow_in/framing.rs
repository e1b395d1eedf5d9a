//! Framing check of an sFlow v5 datagram before it is decoded: every sample and record
//! length must fit inside its container, so a datagram whose lengths lie is rejected here,
//! with a reason, before the decoder allocates anything for it.
//!
//! Layout (sflow.org "sFlow Version 5", §5 `sample_datagram_v5`, XDR per RFC 4506): the
//! datagram header, then `samples<>` of `{data_format, opaque sample_data<>}`; flow and
//! counter samples (formats 1–4) hold `{data_format, opaque record_data<>}` records.

/// Why a datagram was refused. [`BadDatagram::name`] is its metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadDatagram {
    #[error("datagram ends inside its header or a sample")]
    Truncated,
    #[error("not sFlow version 5")]
    Version,
    #[error("unknown agent address type")]
    AddressType,
    #[error("a sample or record length runs past its container")]
    Length,
    #[error("bytes after the last sample")]
    Trailing,
    #[error("an 802.11 aggregation record inside another")]
    Nesting,
    #[error("the sFlow decoder refused the datagram")]
    Decode,
}

impl BadDatagram {
    pub const ALL: [BadDatagram; 7] = [
        BadDatagram::Truncated,
        BadDatagram::Version,
        BadDatagram::AddressType,
        BadDatagram::Length,
        BadDatagram::Trailing,
        BadDatagram::Nesting,
        BadDatagram::Decode,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BadDatagram::Truncated => "truncated",
            BadDatagram::Version => "version",
            BadDatagram::AddressType => "address_type",
            BadDatagram::Length => "length",
            BadDatagram::Trailing => "trailing",
            BadDatagram::Nesting => "nesting",
            BadDatagram::Decode => "decode",
        }
    }
}

/// Big-endian XDR reader over a slice that never reads past its end.
struct Xdr<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Xdr<'a> {
    fn u32(&mut self) -> Result<u32, BadDatagram> {
        let b = self
            .buf
            .get(self.pos..self.pos + 4)
            .ok_or(BadDatagram::Truncated)?;
        self.pos += 4;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn skip(&mut self, n: usize) -> Result<(), BadDatagram> {
        if self.left() < n {
            return Err(BadDatagram::Truncated);
        }
        self.pos += n;
        Ok(())
    }

    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// `opaque<>`: a length, then that many bytes padded to 4 (RFC 4506 §4.10).
    fn opaque(&mut self) -> Result<&'a [u8], BadDatagram> {
        let len = self.u32()? as usize;
        let padded = len.checked_add(3).ok_or(BadDatagram::Length)? & !3;
        if padded > self.left() {
            return Err(BadDatagram::Length);
        }
        let data = &self.buf[self.pos..self.pos + len];
        self.pos += padded;
        Ok(data)
    }

    /// An array count, checked against the bytes left (each element takes at least
    /// `min_size` bytes), so a lying count cannot make anyone loop or allocate.
    fn count(&mut self, min_size: usize) -> Result<usize, BadDatagram> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.left() {
            return Err(BadDatagram::Length);
        }
        Ok(n)
    }
}

/// Checks the framing of `datagram`; `Ok` means every length fits.
pub fn check(datagram: &[u8]) -> Result<(), BadDatagram> {
    let mut x = Xdr {
        buf: datagram,
        pos: 0,
    };
    if x.u32()? != 5 {
        return Err(BadDatagram::Version);
    }
    match x.u32()? {
        0 => {}
        1 => x.skip(4)?,
        2 => x.skip(16)?,
        _ => return Err(BadDatagram::AddressType),
    }
    x.skip(12)?; // sub_agent_id, sequence_number, uptime
    for _ in 0..x.count(8)? {
        let format = x.u32()?;
        let data = x.opaque()?;
        if format >> 12 == 0 {
            check_sample(format & 0xfff, data)?;
        }
    }
    if x.left() != 0 {
        return Err(BadDatagram::Trailing);
    }
    Ok(())
}

/// Flow samples (1, expanded 3), discarded-packet samples (5) and counter samples (2,
/// expanded 4): the fixed fields (sFlow v5 §5; discarded packets: sflow.org "sFlow Dropped
/// Packet Notification Structures"), then records whose lengths must fit the sample. Other
/// formats are opaque here.
fn check_sample(format: u32, data: &[u8]) -> Result<(), BadDatagram> {
    let (words, flow) = match format {
        1 => (7, true),
        3 => (10, true),
        5 => (7, true),
        2 => (2, false),
        4 => (3, false),
        _ => return Ok(()),
    };
    let mut x = Xdr { buf: data, pos: 0 };
    x.skip(words * 4).map_err(|_| BadDatagram::Length)?;
    if flow {
        check_flow_records(&mut x, false)
    } else {
        for _ in 0..x.count(8).map_err(|_| BadDatagram::Length)? {
            let rformat = x.u32().map_err(|_| BadDatagram::Length)?;
            let record = x.opaque()?;
            if rformat == 1005 {
                // Port name (0:1005): one string, which must fit.
                Xdr {
                    buf: record,
                    pos: 0,
                }
                .opaque()?;
            }
        }
        Ok(())
    }
}

/// `flow_record records<>`: every record fits; raw headers (0:1) fit their record; an
/// 802.11 aggregation (0:1016, `pdu pdus<>` of `flow_record records<>`) holds records that
/// fit and no aggregation of its own, since decoding recurses once per level.
fn check_flow_records(x: &mut Xdr<'_>, in_aggregation: bool) -> Result<(), BadDatagram> {
    for _ in 0..x.count(8).map_err(|_| BadDatagram::Length)? {
        let rformat = x.u32().map_err(|_| BadDatagram::Length)?;
        let record = x.opaque()?;
        match rformat {
            1 => check_sampled_header(record)?,
            1016 if in_aggregation => return Err(BadDatagram::Nesting),
            1016 => {
                let mut a = Xdr {
                    buf: record,
                    pos: 0,
                };
                for _ in 0..a.count(4).map_err(|_| BadDatagram::Length)? {
                    check_flow_records(&mut a, true)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Raw packet header record (flow data format 0:1): protocol, frame_length, stripped, then
/// `opaque header<>`, which must fit the record.
fn check_sampled_header(record: &[u8]) -> Result<(), BadDatagram> {
    let mut x = Xdr {
        buf: record,
        pos: 0,
    };
    x.skip(12).map_err(|_| BadDatagram::Length)?;
    x.opaque()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    /// A datagram (IPv4 agent) holding one flow sample with one raw-header record.
    fn datagram(header_len: u32) -> Vec<u8> {
        let mut record = be(&[1, 64, 0, header_len]);
        record.extend(vec![0xab; header_len as usize]);
        record.resize(record.len().next_multiple_of(4), 0);
        let mut sample = be(&[1, 3, 100, 500, 0, 3, 4, 1, 1, record.len() as u32]);
        sample.extend(record);
        let mut d = be(&[5, 1, 0xc000_0201, 0, 7, 1000, 1, 1, sample.len() as u32]);
        d.extend(sample);
        d
    }

    #[test]
    fn a_well_formed_datagram_passes() {
        for n in [0, 1, 14, 64] {
            assert_eq!(check(&datagram(n)), Ok(()), "header of {n} bytes");
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        let d = datagram(14);
        for n in 0..d.len() {
            assert!(check(&d[..n]).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn lying_lengths_and_counts_are_refused() {
        let mut d = datagram(14);
        d[8 * 4..9 * 4].copy_from_slice(&0xffff_fff0u32.to_be_bytes()); // sample length
        assert_eq!(check(&d), Err(BadDatagram::Length));
        let mut d = datagram(14);
        d[6 * 4..7 * 4].copy_from_slice(&1_000_000u32.to_be_bytes()); // sample count
        assert_eq!(check(&d), Err(BadDatagram::Length));
        let mut d = datagram(14);
        let hl = d.len() - 16 - 4; // header_length of the raw-header record
        d[hl..hl + 4].copy_from_slice(&4096u32.to_be_bytes());
        assert_eq!(check(&d), Err(BadDatagram::Length));
    }

    /// An expanded flow sample (0:3) has ten fixed words before its records.
    #[test]
    fn expanded_flow_samples_pass() {
        let mut record = be(&[1, 64, 0, 14]);
        record.extend([0xab; 16]);
        let mut sample = be(&[1, 0, 3, 100, 500, 0, 0, 3, 0, 4, 1, 1, record.len() as u32]);
        sample.extend(record);
        let mut d = be(&[5, 1, 0xc000_0201, 0, 7, 1000, 1, 3, sample.len() as u32]);
        d.extend(sample);
        assert_eq!(check(&d), Ok(()));
    }

    /// An 802.11 aggregation inside another is refused whatever the depth; one level is
    /// fine.
    #[test]
    fn nested_aggregations_are_refused() {
        fn aggregation(depth: usize) -> Vec<u8> {
            // One PDU with one record: an aggregation (format 1016) or, at the bottom, an
            // extended switch record.
            let inner = if depth == 0 {
                [be(&[1001, 16]), vec![0; 16]].concat()
            } else {
                let body = aggregation(depth - 1);
                [be(&[1016, body.len() as u32]), body].concat()
            };
            [be(&[1, 1]), inner].concat()
        }
        for (depth, want) in [
            (0, Ok(())),
            (1, Err(BadDatagram::Nesting)),
            (50, Err(BadDatagram::Nesting)),
        ] {
            let body = aggregation(depth);
            let mut sample = be(&[1, 3, 100, 500, 0, 3, 4, 1, 1016, body.len() as u32]);
            sample.extend(body);
            let mut d = be(&[5, 1, 0xc000_0201, 0, 7, 1000, 1, 1, sample.len() as u32]);
            d.extend(sample);
            assert_eq!(check(&d), want, "depth {depth}");
        }
    }

    #[test]
    fn version_address_and_trailing_bytes() {
        let mut d = datagram(14);
        d[3] = 4;
        assert_eq!(check(&d), Err(BadDatagram::Version));
        let mut d = datagram(14);
        d[7] = 9;
        assert_eq!(check(&d), Err(BadDatagram::AddressType));
        let mut d = datagram(14);
        d.extend([0; 4]);
        assert_eq!(check(&d), Err(BadDatagram::Trailing));
    }
}
