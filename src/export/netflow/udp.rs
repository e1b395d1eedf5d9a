//! UDP transport (RFC 7011 §10.3, RFC 3954 §2): one export message per datagram on a
//! connected socket, paced by a [`TokenBucket`]. A failed resolution or send is counted
//! in [`Status`]; it never stops the sink.

use std::io;
use std::net::UdpSocket;
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
}

impl UdpTransport {
    /// Paced at `rate` datagrams per second.
    pub fn new(host: &str, port: u16, rate: u32) -> Self {
        UdpTransport {
            host: host.to_string(),
            port,
            socket: None,
            last_connect: None,
            bucket: TokenBucket::new(rate),
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

    /// Sends one datagram after waiting for a token; failures are counted.
    pub fn send(&mut self, datagram: &[u8], status: &mut Status) {
        self.bucket.take();
        self.connect(status);
        let Some(sock) = &self.socket else {
            status.counters.send_errors += 1;
            return;
        };
        let mut sent = sock.send(datagram);
        if matches!(&sent, Err(e) if e.kind() == io::ErrorKind::ConnectionRefused) {
            // An ICMP port unreachable for an earlier datagram (connected UDP socket);
            // this one was not sent yet: count the report, try once more.
            status.counters.unreachable += 1;
            status.fault("collector port unreachable (ICMP); nothing listening?".into());
            sent = sock.send(datagram);
        }
        if let Err(e) = sent {
            status.counters.send_errors += 1;
            status.fault(format!("send: {e}"));
        }
    }
}
