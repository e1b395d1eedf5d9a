//! UDP transport of the sFlow sink: one connected socket per collector with counted,
//! never fatal, send and resolution errors, paced by the token bucket and logging through
//! the rate limiter of the IPFIX / NetFlow v9 sink (`netflow::pacing`, `netflow::log`).
//!
//! UDP gives no back-pressure: a collector whose receive buffer overflows drops datagrams
//! silently, so the sender paces itself. The bucket's burst (20 ms worth, at most 64
//! datagrams) fits the 208 KiB default socket receive buffer (`net.core.rmem_default`)
//! that a stock collector keeps.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Instant;

use super::netflow::log::{LogLimiter, LOG_INTERVAL};
use super::netflow::pacing::TokenBucket;
use super::ExportError;

/// What a collector connection has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpCounters {
    /// Datagrams handed to [`UdpCollector::send`] (sent or not).
    pub datagrams: u64,
    /// Datagrams not sent (no socket / send error).
    pub send_errors: u64,
    /// Failed name resolutions / socket setups.
    pub resolve_errors: u64,
    /// ICMP port-unreachable reports (a lower bound of datagrams the collector host
    /// dropped: the kernel keeps one pending error).
    pub unreachable: u64,
}

/// A connected UDP socket towards one collector, paced by a [`TokenBucket`].
#[derive(Debug)]
pub struct UdpCollector {
    /// Sink name, for log lines and errors.
    name: String,
    host: String,
    port: u16,
    socket: Option<UdpSocket>,
    /// Last connect attempt (resolution retries are spaced by [`LOG_INTERVAL`]).
    last_connect: Option<Instant>,
    bucket: TokenBucket,
    log: LogLimiter,
    counters: UdpCounters,
    last_error: Option<String>,
}

/// Binds an unspecified local address of `addr`'s family and connects to `addr`.
fn connect_to(addr: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = if addr.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(local)?;
    s.connect(addr)?;
    Ok(s)
}

/// Resolves `host:port` and connects a UDP socket to the first address that accepts it.
pub fn open(host: &str, port: u16) -> io::Result<UdpSocket> {
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{host} resolves to no address"),
    );
    for addr in (host, port).to_socket_addrs()? {
        match connect_to(addr) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl UdpCollector {
    /// Tries to connect right away; a host that does not resolve is logged (one line) and
    /// retried at most once per [`LOG_INTERVAL`] when sending.
    pub fn new(name: impl Into<String>, host: &str, port: u16, rate: u32) -> Self {
        let mut c = UdpCollector {
            name: name.into(),
            host: host.to_string(),
            port,
            socket: None,
            last_connect: None,
            bucket: TokenBucket::new(rate),
            log: LogLimiter::default(),
            counters: UdpCounters::default(),
            last_error: None,
        };
        c.connect();
        c
    }

    pub fn counters(&self) -> UdpCounters {
        self.counters
    }

    /// Logs `msg` (rate-limited) and keeps it as the last error.
    pub fn log_error(&mut self, msg: String) {
        self.log.log(&self.name, &msg);
        self.last_error = Some(msg);
    }

    /// (Re)connects unless a socket exists or the last try was under a second ago.
    fn connect(&mut self) {
        if self.socket.is_some()
            || self
                .last_connect
                .is_some_and(|t| t.elapsed() < LOG_INTERVAL)
        {
            return;
        }
        self.last_connect = Some(Instant::now());
        match open(&self.host, self.port) {
            Ok(s) => self.socket = Some(s),
            Err(e) => {
                self.counters.resolve_errors += 1;
                let msg = format!("cannot reach {}:{}: {e}", self.host, self.port);
                self.log_error(msg);
            }
        }
    }

    /// Waits for the bucket, then sends one datagram; failures are counted and logged.
    pub fn send(&mut self, datagram: &[u8]) {
        self.counters.datagrams += 1;
        self.bucket.take();
        self.connect();
        let Some(sock) = &self.socket else {
            self.counters.send_errors += 1;
            return;
        };
        let mut sent = sock.send(datagram);
        if matches!(&sent, Err(e) if e.kind() == io::ErrorKind::ConnectionRefused) {
            // An ICMP port unreachable for an earlier datagram (connected UDP socket);
            // this one was not sent yet: count the report, try once more.
            self.counters.unreachable += 1;
            self.log_error("collector port unreachable (ICMP); nothing listening?".into());
            let Some(sock) = &self.socket else { return };
            sent = sock.send(datagram);
        }
        if let Err(e) = sent {
            self.counters.send_errors += 1;
            self.log_error(format!("send: {e}"));
        }
    }

    /// The end-of-run verdict: an error with the counts and the last error if any datagram
    /// could not be sent or was reported unreachable.
    pub fn finish(&self) -> Result<(), ExportError> {
        let c = self.counters;
        if c.send_errors == 0 && c.unreachable == 0 {
            return Ok(());
        }
        let last = self.last_error.as_deref().unwrap_or("unknown error");
        Err(ExportError::Io {
            sink: self.name.clone(),
            source: io::Error::other(format!(
                "{} of {} datagrams not sent, {} port-unreachable reports (last error: {last})",
                c.send_errors, c.datagrams, c.unreachable
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_ports_are_counted_not_fatal() {
        // A port with nobody listening: the kernel's ICMP port unreachable makes a later
        // send on the connected socket fail with ECONNREFUSED, counted and retried.
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let mut c = UdpCollector::new("t", "127.0.0.1", port, 100_000);
        for _ in 0..50 {
            c.send(&[0; 8]);
        }
        let n = c.counters();
        assert_eq!(n.datagrams, 50);
        assert!(n.unreachable > 0, "{n:?}");
        assert!(c.finish().is_err());
    }

    #[test]
    fn unresolvable_hosts_are_counted() {
        let mut c = UdpCollector::new("x", "no-such-host.invalid", 9, 100);
        c.send(&[1]);
        let n = c.counters();
        assert_eq!((n.resolve_errors, n.send_errors, n.datagrams), (1, 1, 1));
        assert!(c.finish().unwrap_err().to_string().starts_with("x: 1 of 1"));
    }
}
