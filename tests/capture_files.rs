//! The capture-file reader on files written here with known content: classic pcap in both
//! byte orders and both timestamp resolutions, pcapng with interfaces of different link types
//! and resolutions, and files that are cut or corrupt.

use std::io::Write;

use mirrorflow::capture::{CaptureError, FileSource};

/// A frame's bytes: distinct per index so misplaced data shows.
fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|b| (i * 31 + b) as u8).collect()
}

fn pcap(big_endian: bool, nanos: bool, linktype: u32, frames: &[(u64, Vec<u8>, u32)]) -> Vec<u8> {
    let w32 = |v: &mut Vec<u8>, x: u32| {
        v.extend_from_slice(&if big_endian {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    let w16 = |v: &mut Vec<u8>, x: u16| {
        v.extend_from_slice(&if big_endian {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    let mut v = Vec::new();
    w32(&mut v, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    w16(&mut v, 2);
    w16(&mut v, 4);
    w32(&mut v, 0);
    w32(&mut v, 0);
    w32(&mut v, 65535);
    w32(&mut v, linktype);
    for (ts_ns, data, wire) in frames {
        w32(&mut v, (ts_ns / 1_000_000_000) as u32);
        let frac = ts_ns % 1_000_000_000;
        w32(&mut v, if nanos { frac } else { frac / 1000 } as u32);
        w32(&mut v, data.len() as u32);
        w32(&mut v, *wire);
        v.extend_from_slice(data);
    }
    v
}

fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

/// A frame as read: (linktype, ts_ns, wire_len, in_if, data).
type Read = (u32, u64, u32, u32, Vec<u8>);

fn as_read(f: &mirrorflow::capture::Frame<'_>) -> Read {
    (
        f.linktype,
        f.info.ts_ns,
        f.info.wire_len,
        f.info.in_if,
        f.data.to_vec(),
    )
}

/// Every frame of the file, read with `next_frame`; reading it again with `for_each_frame`
/// (the replay loop's fast path) must give the same frames and the same error.
fn read_all(path: &std::path::Path) -> Result<Vec<Read>, CaptureError> {
    let mut src = FileSource::open(path)?;
    let mut out = Vec::new();
    let mut failure = None;
    loop {
        match src.next_frame() {
            Ok(Some(f)) => out.push(as_read(&f)),
            Ok(None) => break,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let mut again = FileSource::open(path)?;
    let mut each = Vec::new();
    let end = again.for_each_frame(|f| {
        each.push(as_read(&f));
        std::ops::ControlFlow::<()>::Continue(())
    });
    assert_eq!(each, out, "for_each_frame and next_frame differ");
    assert_eq!(
        end.as_ref().err().map(ToString::to_string),
        failure.as_ref().map(ToString::to_string)
    );
    match failure {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// A file large enough to be mapped rather than read in chunks (over 1 MiB), cut inside its
/// last record: both ways of reading give every whole frame, then the same error.
#[test]
fn a_mapped_file_reads_the_same_both_ways() {
    let frames: Vec<(u64, Vec<u8>, u32)> = (0..20_000)
        .map(|i| (i as u64 * 1000, payload(i, 40 + i % 200), 1514))
        .collect();
    let mut bytes = pcap(true, true, 1, &frames);
    bytes.truncate(bytes.len() - 7);
    let f = write_temp(&bytes);
    assert!(bytes.len() > 2 << 20);
    let e = read_all(f.path()).unwrap_err();
    assert!(
        e.to_string().contains("file ends inside a packet record"),
        "{e}"
    );
    bytes.truncate(bytes.len() - (40 + 19_999 % 200 - 7) - 16);
    let whole = read_all(write_temp(&bytes).path()).unwrap();
    assert_eq!(whole.len(), 19_999);
    assert_eq!(whole[12_345].4, payload(12_345, 40 + 12_345 % 200));
}

/// `for_each_frame` stops when the callback breaks and returns its value.
#[test]
fn for_each_frame_stops_on_break() {
    let frames: Vec<(u64, Vec<u8>, u32)> =
        (0..10).map(|i| (i as u64, payload(i, 60), 60)).collect();
    let f = write_temp(&pcap(false, false, 1, &frames));
    let mut src = FileSource::open(f.path()).unwrap();
    let mut seen = 0;
    let end = src
        .for_each_frame(|_| {
            seen += 1;
            if seen == 4 {
                std::ops::ControlFlow::Break("stop")
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!((end, seen), (std::ops::ControlFlow::Break("stop"), 4));
    let next = src.next_frame().unwrap().unwrap();
    assert_eq!(
        next.data,
        &payload(4, 60)[..],
        "reading resumes after the fourth frame"
    );
}

#[test]
fn classic_pcap_in_every_byte_order_and_resolution() {
    let frames: Vec<(u64, Vec<u8>, u32)> = (0..50)
        .map(|i| {
            (
                1_600_000_000_123_456_789 + i as u64 * 1_000_001_000,
                payload(i, 60 + i),
                1500,
            )
        })
        .collect();
    for big_endian in [false, true] {
        for nanos in [false, true] {
            let f = write_temp(&pcap(big_endian, nanos, 1, &frames));
            let got = read_all(f.path()).unwrap();
            assert_eq!(got.len(), frames.len());
            for (g, (ts, data, wire)) in got.iter().zip(&frames) {
                let want_ts = if nanos { *ts } else { ts / 1000 * 1000 };
                assert_eq!(
                    (g.0, g.1, g.2, g.3),
                    (1, want_ts, *wire, 0),
                    "be={big_endian} ns={nanos}"
                );
                assert_eq!(&g.4, data);
            }
        }
    }
}

#[test]
fn records_larger_than_the_read_buffer_are_read_whole() {
    let big = payload(1, 9 << 20);
    let f = write_temp(&pcap(
        false,
        false,
        1,
        &[
            (0, big.clone(), big.len() as u32),
            (1000, payload(2, 64), 64),
        ],
    ));
    let got = read_all(f.path()).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].4, big);
    assert_eq!(got[1].4, payload(2, 64));
}

struct Pcapng(Vec<u8>);

impl Pcapng {
    fn block(&mut self, kind: u32, body: &[u8]) {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let total = (body.len() + 12) as u32;
        self.0.extend_from_slice(&kind.to_le_bytes());
        self.0.extend_from_slice(&total.to_le_bytes());
        self.0.extend_from_slice(&body);
        self.0.extend_from_slice(&total.to_le_bytes());
    }

    fn shb(&mut self, options: &[u8]) {
        let mut b = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        b.extend_from_slice(&[1, 0, 0, 0]);
        b.extend_from_slice(&(-1i64).to_le_bytes());
        b.extend_from_slice(options);
        self.block(0x0a0d_0d0a, &b);
    }

    fn idb(&mut self, linktype: u16, tsresol: Option<u8>) {
        let mut b = linktype.to_le_bytes().to_vec();
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&0u32.to_le_bytes());
        if let Some(r) = tsresol {
            b.extend_from_slice(&[9, 0, 1, 0, r, 0, 0, 0]);
            b.extend_from_slice(&[0, 0, 0, 0]);
        }
        self.block(1, &b);
    }

    fn epb(&mut self, iface: u32, ticks: u64, data: &[u8], wire: u32) {
        let mut b = iface.to_le_bytes().to_vec();
        b.extend_from_slice(&((ticks >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ticks as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&wire.to_le_bytes());
        b.extend_from_slice(data);
        self.block(6, &b);
    }
}

#[test]
fn pcapng_interfaces_keep_their_own_link_type_and_resolution() {
    let mut p = Pcapng(Vec::new());
    p.shb(&[]);
    p.idb(1, None); // Ethernet, µs
    p.idb(113, Some(9)); // Linux SLL, ns
    p.block(0x0bad, &[1, 2, 3, 4]); // unknown block: skipped
    p.epb(0, 1_600_000_000_000_001, &payload(0, 60), 60);
    p.epb(1, 1_600_000_000_000_000_002, &payload(1, 61), 1000);
    p.idb(101, Some(0x80 | 20)); // raw IP, 2^-20 s
    p.epb(2, 3 << 20, &payload(2, 20), 20);
    let f = write_temp(&p.0);
    let got = read_all(f.path()).unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(
        (got[0].0, got[0].1, got[0].2, got[0].3),
        (1, 1_600_000_000_000_001_000, 60, 1)
    );
    assert_eq!(
        (got[1].0, got[1].1, got[1].2, got[1].3),
        (113, 1_600_000_000_000_000_002, 1000, 2)
    );
    assert_eq!((got[2].0, got[2].1, got[2].3), (101, 3_000_000_000, 3));
    assert_eq!(got[1].4, payload(1, 61));
}

#[test]
fn corrupt_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pcap");
    let e = read_all(&missing).unwrap_err();
    assert!(matches!(e, CaptureError::Open { .. }), "{e}");

    let text = write_temp(b"hello, this is not a capture file at all");
    let e = read_all(text.path()).unwrap_err();
    assert!(e.to_string().contains("not a pcap or pcapng file"), "{e}");

    let mut v = pcap(false, false, 1, &[(0, payload(0, 100), 100)]);
    v[4] = 1; // major version 1
    let e = read_all(write_temp(&v).path()).unwrap_err();
    assert!(e.to_string().contains("unsupported pcap version 1"), "{e}");

    // Cut in the middle of the second record: the first is read, then a clear error.
    let v = pcap(
        false,
        false,
        1,
        &[(0, payload(0, 100), 100), (1, payload(1, 100), 100)],
    );
    let f = write_temp(&v[..v.len() - 30]);
    let mut src = FileSource::open(f.path()).unwrap();
    assert!(src.next_frame().unwrap().is_some());
    let e = src.next_frame().unwrap_err();
    assert!(
        e.to_string().contains("file ends inside a packet record"),
        "{e}"
    );

    let mut p = Pcapng(Vec::new());
    p.shb(&[2, 0, 40, 0, b'x', b'y', b'z', 0]); // option of 40 bytes in a 4-byte space
    let e = read_all(write_temp(&p.0).path()).unwrap_err();
    assert!(e.to_string().contains("overruns its block"), "{e}");

    let mut p = Pcapng(Vec::new());
    p.shb(&[]);
    p.epb(0, 0, &payload(0, 10), 10); // no interface declared
    let e = read_all(write_temp(&p.0).path()).unwrap_err();
    assert!(e.to_string().contains("undeclared interface"), "{e}");
    assert!(!e.to_string().contains('\n'));
}
