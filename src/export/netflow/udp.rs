//! UDP transport (RFC 7011 §10.3, RFC 3954 §2): one export message per datagram on a
//! connected socket, paced by a [`TokenBucket`]. A failed resolution or send is counted
//! in [`Status`]; it never stops the sink.
//!
//! With segmentation offload (`--export-gso`, Linux UDP GSO) a run of messages of one
//! length goes to the kernel in one `sendmsg` with a `UDP_SEGMENT` control message; the
//! kernel (or the NIC) cuts it into exactly those datagrams. On the wire nothing changes,
//! but the per-datagram cost of the socket layer is paid once per run.

use std::io;
use std::net::UdpSocket;
#[cfg(target_os = "linux")]
use std::os::fd::AsRawFd;
use std::time::Instant;

use super::log::LOG_INTERVAL;
use super::pacing::TokenBucket;
use super::Status;

/// A connected UDP socket towards one collector, opened lazily and reopened at most once
/// per [`LOG_INTERVAL`] after a failure.
#[derive(Debug)]
pub struct UdpTransport {
    host: String,
    port: u16,
    socket: Option<UdpSocket>,
    last_connect: Option<Instant>,
    bucket: TokenBucket,
    /// Segmentation offload wanted and not yet refused by the kernel.
    gso: bool,
}

/// Most datagrams in one segmented send (the kernel's `UDP_MAX_SEGMENTS` is 64 or more).
const MAX_SEGMENTS: usize = 64;
/// Most payload bytes in one segmented send: the super-datagram must fit in one IP packet.
const MAX_GSO_BYTES: usize = 65_000;

/// How many of `datagrams` (from the first) go in one send: the first and the following
/// ones of its length, then at most one shorter (GSO cuts every segment at the first's
/// length, only the last may be short); at most `limit` and [`MAX_GSO_BYTES`] in all.
pub fn run_len(datagrams: &[Vec<u8>], limit: usize) -> usize {
    let Some(first) = datagrams.first() else {
        return 0;
    };
    let size = first.len().max(1);
    let limit = limit.min(MAX_SEGMENTS).min(MAX_GSO_BYTES / size).max(1);
    let mut n = 1;
    while n < limit.min(datagrams.len()) {
        let len = datagrams[n].len();
        if len > size || len == 0 {
            break;
        }
        n += 1;
        if len < size {
            break;
        }
    }
    n
}

/// One `sendmsg` of `datagrams` as `UDP_SEGMENT`-sized segments of the first's length.
#[cfg(target_os = "linux")]
fn send_segmented(sock: &UdpSocket, datagrams: &[Vec<u8>]) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::io::IoSlice;
    let size = u16::try_from(datagrams[0].len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment over 65535 bytes"))?;
    let iov: Vec<IoSlice> = datagrams.iter().map(|d| IoSlice::new(d)).collect();
    let cmsg = [ControlMessage::UdpGsoSegments(&size)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map(drop)
        .map_err(io::Error::from)
}

/// Elsewhere there is no UDP segmentation offload: refused, so the stream falls back.
#[cfg(not(target_os = "linux"))]
fn send_segmented(_: &UdpSocket, _: &[Vec<u8>]) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Errors by which the kernel refuses segmentation offload for this socket or route (no
/// checksum offload, a segment over the path MTU, a kernel without `UDP_SEGMENT`).
#[cfg(target_os = "linux")]
fn gso_refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EIO | nix::libc::EINVAL | nix::libc::ENOPROTOOPT | nix::libc::EOPNOTSUPP)
    )
}

#[cfg(not(target_os = "linux"))]
fn gso_refused(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
}

impl UdpTransport {
    /// Paced at `rate` datagrams per second; `gso`: segmentation offload when the kernel
    /// takes it.
    pub fn new(host: &str, port: u16, rate: u32, gso: bool) -> Self {
        UdpTransport {
            host: host.to_string(),
            port,
            socket: None,
            last_connect: None,
            bucket: TokenBucket::new(rate),
            gso,
        }
    }

    fn open(&self) -> io::Result<UdpSocket> {
        crate::export::udp::open(&self.host, self.port)
    }

    /// (Re)connects unless a socket exists or the last try was under a second ago.
    pub fn connect(&mut self, status: &mut Status) {
        if self.socket.is_some()
            || self
                .last_connect
                .is_some_and(|t| t.elapsed() < LOG_INTERVAL)
        {
            return;
        }
        self.last_connect = Some(Instant::now());
        match self.open() {
            Ok(s) => self.socket = Some(s),
            Err(e) => {
                status.counters.resolve_errors += 1;
                status.fault(format!("cannot reach {}:{}: {e}", self.host, self.port));
            }
        }
    }

    /// Sends `datagrams` in order, paced; with segmentation offload a run of one length
    /// goes in one send ([`run_len`]). Failures are counted per datagram.
    pub fn send_all(&mut self, datagrams: &[Vec<u8>], status: &mut Status) {
        let mut rest = datagrams;
        while !rest.is_empty() {
            let n = if self.gso {
                run_len(rest, self.bucket.burst() as usize)
            } else {
                1
            };
            let (batch, tail) = rest.split_at(n);
            self.bucket.take_n(n as u32);
            self.send_batch(batch, status);
            rest = tail;
        }
    }

    fn send_batch(&mut self, batch: &[Vec<u8>], status: &mut Status) {
        self.connect(status);
        let Some(sock) = &self.socket else {
            status.counters.send_errors += batch.len() as u64;
            return;
        };
        let send = |sock: &UdpSocket| -> io::Result<()> {
            match batch {
                [one] => sock.send(one).map(drop),
                _ => send_segmented(sock, batch),
            }
        };
        let mut sent = send(sock);
        if matches!(&sent, Err(e) if e.kind() == io::ErrorKind::ConnectionRefused) {
            // An ICMP port unreachable for an earlier datagram (connected UDP socket);
            // this one was not sent yet: count the report, try once more.
            status.counters.unreachable += 1;
            status.fault("collector port unreachable (ICMP); nothing listening?".into());
            sent = send(sock);
        }
        match sent {
            Ok(()) => {}
            Err(e) if batch.len() > 1 && gso_refused(&e) => {
                self.gso = false;
                status.fault(format!(
                    "segmentation offload refused ({e}); sending datagrams one by one"
                ));
                for d in batch {
                    self.send_batch(std::slice::from_ref(d), status);
                }
            }
            Err(e) => {
                status.counters.send_errors += batch.len() as u64;
                status.fault(format!("send: {e}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(lens: &[usize]) -> Vec<Vec<u8>> {
        lens.iter().map(|&n| vec![0u8; n]).collect()
    }

    #[test]
    fn runs_take_equal_lengths_and_one_shorter_tail() {
        assert_eq!(run_len(&sizes(&[]), 64), 0);
        assert_eq!(run_len(&sizes(&[100]), 64), 1);
        assert_eq!(run_len(&sizes(&[100, 100, 100, 60, 60]), 64), 4);
        assert_eq!(run_len(&sizes(&[100, 120, 100]), 64), 1);
        assert_eq!(run_len(&sizes(&[100, 100, 100]), 2), 2);
        // 65 000 bytes in all at most: 46 datagrams of 1400.
        assert_eq!(run_len(&sizes(&[1400; 60]), 64), 46);
        assert_eq!(run_len(&sizes(&[1400; 80]), 1000), 46);
        assert_eq!(run_len(&sizes(&[500; 200]), 1000), MAX_SEGMENTS);
        assert_eq!(run_len(&sizes(&[60_000, 60_000]), 64), 1);
    }

    /// The receiver sees exactly the datagrams handed over, in order, segmented or not.
    #[test]
    fn segmented_sends_arrive_as_the_same_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let port = rx.local_addr().unwrap().port();
        // Within the receiver's default buffer: no loss on loopback.
        let mut datagrams: Vec<Vec<u8>> = (0..30u8).map(|i| vec![i; 1000]).collect();
        datagrams.insert(15, vec![0xee; 300]);
        datagrams.push(vec![0xff; 7]);
        let mut status = Status::for_tests();
        let mut t = UdpTransport::new("127.0.0.1", port, 1_000_000, true);
        t.send_all(&datagrams, &mut status);
        assert!(
            t.gso,
            "lo refused segmentation offload: {:?}",
            status.last_error
        );
        assert_eq!(status.counters.send_errors, 0);
        let mut buf = vec![0u8; 65_536];
        for (i, want) in datagrams.iter().enumerate() {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &want[..], "datagram {i}");
        }
    }
}
