//! Capture files: classic pcap (µs or ns timestamps, either byte order) and pcapng (several
//! interfaces with their own link types and timestamp resolutions), told apart by content.
//!
//! Our own reader rather than libpcap's: libpcap refuses pcapng files whose interfaces have
//! different link types, and reading records in place from a large buffer is faster than a
//! copy per packet. Formats: draft-ietf-opsawg-pcap §4-5 and draft-ietf-opsawg-pcapng §3-4.

use std::fs::File;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::buffer::ChunkReader;
use super::CaptureError;
use crate::decode::FrameInfo;

/// Largest record accepted; anything larger means a corrupt length field.
const MAX_RECORD: usize = 16 << 20;

/// One frame read from a source.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub linktype: u32,
    pub info: FrameInfo,
    pub data: &'a [u8],
}

/// How to turn a timestamp in interface units into nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsScale {
    /// Units are 10^-k s with k ≤ 9: multiply.
    Mul(u64),
    /// Units are 10^-k s with k > 9: divide.
    Div(u64),
    /// Units are 2^-k s.
    Pow2(u32),
}

impl TsScale {
    fn from_tsresol(v: u8) -> TsScale {
        let k = u32::from(v & 0x7f);
        if v & 0x80 != 0 {
            TsScale::Pow2(k.min(63))
        } else if k <= 9 {
            TsScale::Mul(10u64.pow(9 - k))
        } else {
            TsScale::Div(10u64.pow((k - 9).min(19)))
        }
    }

    fn to_ns(self, ticks: u64) -> u64 {
        match self {
            TsScale::Mul(m) => ticks.saturating_mul(m),
            TsScale::Div(d) => ticks / d,
            TsScale::Pow2(k) => ((u128::from(ticks) * 1_000_000_000) >> k) as u64,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    scale: TsScale,
    offset_s: i64,
}

enum Format {
    Pcap {
        big_endian: bool,
        nanos: bool,
        linktype: u32,
    },
    Pcapng {
        big_endian: bool,
        interfaces: Vec<Interface>,
        last_ts: u64,
    },
}

/// A capture file being read front to back.
pub struct FileSource {
    path: PathBuf,
    r: ChunkReader<File>,
    format: Format,
}

const SHB: u32 = 0x0A0D_0D0A;
const BOM: u32 = 0x1A2B_3C4D;

fn u16_at(b: &[u8], at: usize, be: bool) -> u16 {
    let x = [b[at], b[at + 1]];
    if be {
        u16::from_be_bytes(x)
    } else {
        u16::from_le_bytes(x)
    }
}

fn u32_at(b: &[u8], at: usize, be: bool) -> u32 {
    let x = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if be {
        u32::from_be_bytes(x)
    } else {
        u32::from_le_bytes(x)
    }
}

/// Iterates pcapng options (code, value) in `b`; `Err` names the first malformed one.
/// Time and original length from a classic pcap record header (pcap(5), "Packet Record").
#[inline]
fn pcap_frame_info(h: &[u8], big_endian: bool, nanos: bool, caplen: usize) -> FrameInfo {
    let secs = u64::from(u32_at(h, 0, big_endian));
    let frac = u64::from(u32_at(h, 4, big_endian));
    let wire_len = u32_at(h, 12, big_endian);
    let frac_ns = if nanos {
        frac
    } else {
        frac.saturating_mul(1000)
    };
    FrameInfo {
        ts_ns: secs.saturating_mul(1_000_000_000).saturating_add(frac_ns),
        wire_len: wire_len.max(caplen as u32),
        in_if: 0,
    }
}

fn options(b: &[u8], be: bool, mut f: impl FnMut(u16, &[u8])) -> Result<(), String> {
    let mut at = 0;
    while at + 4 <= b.len() {
        let code = u16_at(b, at, be);
        let len = usize::from(u16_at(b, at + 2, be));
        if code == 0 {
            return Ok(());
        }
        let padded = (len + 3) & !3;
        if at + 4 + padded > b.len() {
            return Err(format!(
                "option {code} of length {len} overruns its block by {} bytes",
                at + 4 + padded - b.len()
            ));
        }
        f(code, &b[at + 4..at + 4 + len]);
        at += 4 + padded;
    }
    Ok(())
}

impl FileSource {
    pub fn open(path: &Path) -> Result<FileSource, CaptureError> {
        let file = File::open(path).map_err(|source| CaptureError::Open {
            path: path.to_owned(),
            source,
        })?;
        let mut src = FileSource {
            path: path.to_owned(),
            r: ChunkReader::for_file(file),
            format: Format::Pcap {
                big_endian: false,
                nanos: false,
                linktype: 0,
            },
        };
        let got = src.fill(24)?;
        let mut magic = [0u8; 4];
        magic[..got.min(4)].copy_from_slice(src.r.peek(got.min(4)));
        let magic_le = u32::from_le_bytes(magic);
        let magic_be = u32::from_be_bytes(magic);
        if magic_be == SHB {
            src.format = Format::Pcapng {
                big_endian: false,
                interfaces: Vec::new(),
                last_ts: 0,
            };
            // Read the section header now, so a corrupt one is an error before any packet.
            src.pcapng_block()?;
            return Ok(src);
        }
        let (big_endian, nanos) = match (magic_le, magic_be) {
            (0xa1b2_c3d4, _) => (false, false),
            (0xa1b2_3c4d, _) => (false, true),
            (_, 0xa1b2_c3d4) => (true, false),
            (_, 0xa1b2_3c4d) => (true, true),
            _ => {
                return Err(CaptureError::NotACapture {
                    path: path.to_owned(),
                    magic: magic_be,
                })
            }
        };
        if got < 24 {
            return Err(src.corrupt("file ends inside the pcap file header".into()));
        }
        let h = src.r.peek(24);
        let (major, minor) = (u16_at(h, 4, big_endian), u16_at(h, 6, big_endian));
        if major != 2 {
            return Err(src.corrupt(format!("unsupported pcap version {major}.{minor}")));
        }
        let linktype = u32_at(h, 20, big_endian) & 0x0fff_ffff;
        src.r.consume(24);
        src.format = Format::Pcap {
            big_endian,
            nanos,
            linktype: linktype & 0xffff,
        };
        Ok(src)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fill(&mut self, n: usize) -> Result<usize, CaptureError> {
        let offset = self.r.offset();
        self.r.fill(n).map_err(|source| CaptureError::Read {
            path: self.path.clone(),
            offset,
            source,
        })
    }

    fn corrupt(&self, what: String) -> CaptureError {
        CaptureError::Corrupt {
            path: self.path.clone(),
            offset: self.r.offset(),
            what,
        }
    }

    /// The next frame, `None` at the end of the file.
    /// The next frame, `None` at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        match self.format {
            Format::Pcap {
                big_endian,
                nanos,
                linktype,
            } => self.pcap_record(big_endian, nanos, linktype),
            Format::Pcapng { .. } => self.pcapng_frame(),
        }
    }

    /// Calls `f` with each frame in turn until it breaks (its value is returned) or the file
    /// ends (`Continue`). The same frames as [`FileSource::next_frame`], read faster: the
    /// common classic pcap record (whole in the buffer, always so for a mapped file) is parsed
    /// in this loop and handed to `f` directly, not returned through a `Result` and copied
    /// again by the caller.
    #[inline]
    pub fn for_each_frame<B>(
        &mut self,
        mut f: impl FnMut(Frame<'_>) -> ControlFlow<B>,
    ) -> Result<ControlFlow<B>, CaptureError> {
        let Format::Pcap {
            big_endian,
            nanos,
            linktype,
        } = self.format
        else {
            while let Some(frame) = self.pcapng_frame()? {
                if let ControlFlow::Break(b) = f(frame) {
                    return Ok(ControlFlow::Break(b));
                }
            }
            return Ok(ControlFlow::Continue(()));
        };
        loop {
            let avail = self.r.available();
            if avail >= 16 {
                let h = self.r.peek(16);
                let caplen = u32_at(h, 8, big_endian) as usize;
                if caplen <= MAX_RECORD && 16 + caplen <= avail {
                    let info = pcap_frame_info(h, big_endian, nanos, caplen);
                    let at = self.r.consume(16 + caplen) + 16;
                    self.r.prefetch_ahead();
                    let frame = Frame {
                        linktype,
                        info,
                        data: self.r.slice(at, caplen),
                    };
                    if let ControlFlow::Break(b) = f(frame) {
                        return Ok(ControlFlow::Break(b));
                    }
                    continue;
                }
            }
            match self.pcap_record(big_endian, nanos, linktype)? {
                Some(frame) => {
                    if let ControlFlow::Break(b) = f(frame) {
                        return Ok(ControlFlow::Break(b));
                    }
                }
                None => return Ok(ControlFlow::Continue(())),
            }
        }
    }

    /// A classic pcap record that may need reading in, or is cut or oversized.
    #[inline(never)]
    fn pcap_record(
        &mut self,
        big_endian: bool,
        nanos: bool,
        linktype: u32,
    ) -> Result<Option<Frame<'_>>, CaptureError> {
        let got = self.fill(16)?;
        if got == 0 {
            return Ok(None);
        }
        if got < 16 {
            return Err(self.corrupt("file ends inside a packet record header".into()));
        }
        let caplen = u32_at(self.r.peek(16), 8, big_endian) as usize;
        if caplen > MAX_RECORD {
            return Err(self.corrupt(format!("packet record of {caplen} bytes")));
        }
        if self.fill(16 + caplen)? < 16 + caplen {
            return Err(self.corrupt(format!(
                "file ends inside a packet record ({caplen} bytes announced, {} present)",
                self.r.available() - 16
            )));
        }
        let info = pcap_frame_info(self.r.peek(16), big_endian, nanos, caplen);
        let at = self.r.consume(16 + caplen) + 16;
        Ok(Some(Frame {
            linktype,
            info,
            data: self.r.slice(at, caplen),
        }))
    }

    #[inline(never)]
    fn pcapng_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        loop {
            match self.pcapng_block()? {
                Block::End => return Ok(None),
                Block::Other => continue,
                Block::Packet {
                    at,
                    caplen,
                    linktype,
                    info,
                } => {
                    return Ok(Some(Frame {
                        linktype,
                        info,
                        data: self.r.slice(at, caplen),
                    }))
                }
            }
        }
    }

    fn pcapng_block(&mut self) -> Result<Block, CaptureError> {
        let got = self.fill(12)?;
        if got == 0 {
            return Ok(Block::End);
        }
        if got < 12 {
            return Err(self.corrupt("file ends inside a block header".into()));
        }
        let Format::Pcapng { big_endian, .. } = self.format else {
            unreachable!("pcapng_block on a classic pcap file")
        };
        let mut be = big_endian;
        let head = self.r.peek(12);
        // The section header's type reads the same in both byte orders; its byte-order magic
        // sets the order for the whole section.
        if u32_at(head, 0, be) == SHB {
            be = match (u32_at(head, 8, true), u32_at(head, 8, false)) {
                (BOM, _) => true,
                (_, BOM) => false,
                _ => return Err(self.corrupt("section header with a bad byte-order magic".into())),
            };
        }
        let total = u32_at(head, 4, be) as usize;
        if !(12..=MAX_RECORD).contains(&total) || !total.is_multiple_of(4) {
            return Err(self.corrupt(format!("block of impossible length {total}")));
        }
        if self.fill(total)? < total {
            return Err(self.corrupt(format!("file ends inside a block of {total} bytes")));
        }
        let b = self.r.peek(total);
        if u32_at(b, total - 4, be) as usize != total {
            return Err(self.corrupt("block trailer length differs from its header".into()));
        }
        let body = &b[8..total - 4];
        let Format::Pcapng {
            interfaces,
            last_ts,
            big_endian,
        } = &mut self.format
        else {
            unreachable!()
        };
        let result = match u32_at(b, 0, be) {
            SHB => {
                if body.len() < 16 {
                    Err("section header block too short".to_string())
                } else if u16_at(body, 4, be) != 1 {
                    Err(format!(
                        "unsupported pcapng version {}",
                        u16_at(body, 4, be)
                    ))
                } else {
                    *big_endian = be;
                    interfaces.clear();
                    options(&body[16..], be, |_, _| {}).map(|_| Block::Other)
                }
            }
            // Interface Description Block.
            1 => {
                if body.len() < 8 {
                    Err("interface description block too short".to_string())
                } else {
                    let mut iface = Interface {
                        linktype: u32::from(u16_at(body, 0, be)),
                        snaplen: u32_at(body, 4, be),
                        scale: TsScale::Mul(1000),
                        offset_s: 0,
                    };
                    let r = options(&body[8..], be, |code, v| match (code, v.len()) {
                        (9, 1) => iface.scale = TsScale::from_tsresol(v[0]),
                        (14, 8) => {
                            let x = if be {
                                u64::from_be_bytes(v.try_into().unwrap_or_default())
                            } else {
                                u64::from_le_bytes(v.try_into().unwrap_or_default())
                            };
                            iface.offset_s = x as i64;
                        }
                        _ => {}
                    });
                    interfaces.push(iface);
                    r.map(|_| Block::Other)
                }
            }
            // Enhanced Packet Block and the obsolete Packet Block.
            t @ (6 | 2) => {
                let (if_id, ts_at) = if t == 6 {
                    (u32_at(body, 0, be) as usize, 4)
                } else {
                    (usize::from(u16_at(body, 0, be)), 4)
                };
                if body.len() < 20 {
                    Err("packet block too short".to_string())
                } else if if_id >= interfaces.len() {
                    Err(format!("packet for undeclared interface {if_id}"))
                } else {
                    let caplen = u32_at(body, 12, be) as usize;
                    let wire_len = u32_at(body, 16, be);
                    if 20 + caplen > body.len() {
                        Err(format!("packet data of {caplen} bytes overruns its block"))
                    } else {
                        let iface = interfaces[if_id];
                        let ticks = u64::from(u32_at(body, ts_at, be)) << 32
                            | u64::from(u32_at(body, ts_at + 4, be));
                        let ts = iface
                            .scale
                            .to_ns(ticks)
                            .saturating_add_signed(iface.offset_s.saturating_mul(1_000_000_000));
                        *last_ts = ts;
                        Ok(Block::Packet {
                            at: 8 + 20,
                            caplen,
                            linktype: iface.linktype,
                            info: FrameInfo {
                                ts_ns: ts,
                                wire_len: wire_len.max(caplen as u32),
                                in_if: if_id as u32 + 1,
                            },
                        })
                    }
                }
            }
            // Simple Packet Block: interface 0, no timestamp (the previous one is reused).
            3 => match interfaces.first() {
                None => Err("simple packet block before any interface".to_string()),
                Some(_) if body.len() < 4 => Err("simple packet block too short".to_string()),
                Some(iface) => {
                    let wire_len = u32_at(body, 0, be);
                    let mut caplen = (wire_len as usize).min(body.len() - 4);
                    if iface.snaplen != 0 {
                        caplen = caplen.min(iface.snaplen as usize);
                    }
                    Ok(Block::Packet {
                        at: 8 + 4,
                        caplen,
                        linktype: iface.linktype,
                        info: FrameInfo {
                            ts_ns: *last_ts,
                            wire_len: wire_len.max(caplen as u32),
                            in_if: 1,
                        },
                    })
                }
            },
            _ => Ok(Block::Other),
        };
        match result {
            Ok(Block::Packet {
                at,
                caplen,
                linktype,
                info,
            }) => {
                let start = self.r.consume(total);
                Ok(Block::Packet {
                    at: start + at,
                    caplen,
                    linktype,
                    info,
                })
            }
            Ok(other) => {
                self.r.consume(total);
                Ok(other)
            }
            Err(what) => Err(self.corrupt(what)),
        }
    }
}

enum Block {
    End,
    Other,
    Packet {
        at: usize,
        caplen: usize,
        linktype: u32,
        info: FrameInfo,
    },
}
