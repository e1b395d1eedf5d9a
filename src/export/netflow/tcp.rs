//! IPFIX over TCP (RFC 7011 §10.4): one connection per collector, messages written back
//! to back on the stream (each carries its own length, §3.1). Every connection is a new
//! Transport Session, so the sink starts it with the templates (§8, §10.4.2.2).
//!
//! The collector going away is noticed on the next write (a reset or a timed-out write)
//! or, for an orderly close, before it: a collector never sends on the connection, so a
//! readable socket means end of stream. A connection that had carried data is retried at
//! once; failed attempts back off from [`BACKOFF_MIN`], doubling up to [`BACKOFF_MAX`].
//! Writes time out after [`WRITE_TIMEOUT`], so a stalled collector delays the sink thread
//! (and shutdown) by a bounded time, never forever.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use super::{resolve, Status};

/// First delay after a failed connection attempt.
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Longest delay between connection attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A write blocked this long (collector not reading) drops the connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Limit of one connection attempt (per resolved address).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Exponential backoff between connection attempts, driven by the times it is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    delay: Duration,
    next_try: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            delay: BACKOFF_MIN,
            next_try: None,
        }
    }
}

impl Backoff {
    /// Whether an attempt may be made at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.next_try.is_none_or(|t| now >= t)
    }

    /// An attempt failed at `now`: wait the current delay, double it for next time.
    /// Returns the wait.
    pub fn failed(&mut self, now: Instant) -> Duration {
        let wait = self.delay;
        self.next_try = Some(now + wait);
        self.delay = (self.delay * 2).min(BACKOFF_MAX);
        wait
    }

    /// Allow an attempt right away, keeping the current delay.
    pub fn retry_now(&mut self) {
        self.next_try = None;
    }

    /// A connection works: start again from [`BACKOFF_MIN`].
    pub fn reset(&mut self) {
        *self = Backoff::default();
    }
}

/// State of the connection before a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Just connected: templates must go first.
    New,
    /// Connected before.
    Up,
    /// No connection (backing off, or the attempt failed).
    Down,
}

/// The connection to one IPFIX-over-TCP collector.
#[derive(Debug)]
pub struct TcpTransport {
    host: String,
    port: u16,
    stream: Option<TcpStream>,
    backoff: Backoff,
    /// A write succeeded on the current connection.
    carried: bool,
}

/// Whether the collector has closed (or reset) the connection. IPFIX collectors never send
/// on it, so anything readable is end of stream or an error; stray bytes are discarded.
fn peer_closed(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let mut buf = [0u8; 256];
    let r = (&*s).read(&mut buf);
    let restored = s.set_nonblocking(false).is_ok();
    match r {
        Ok(0) => true,
        Ok(_) => !restored,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => !restored,
        Err(_) => true,
    }
}

impl TcpTransport {
    pub fn new(host: &str, port: u16) -> Self {
        TcpTransport {
            host: host.to_string(),
            port,
            stream: None,
            backoff: Backoff::default(),
            carried: false,
        }
    }

    fn open(&self) -> io::Result<TcpStream> {
        let mut last = None;
        for addr in resolve(&self.host, self.port)? {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                    s.set_nodelay(true)?;
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no address")))
    }

    /// Checks the connection and (re)connects when allowed.
    pub fn link(&mut self, status: &mut Status) -> Link {
        if let Some(s) = &self.stream {
            if !peer_closed(s) {
                return Link::Up;
            }
            self.broken(status, "the collector closed the connection".into());
        }
        let now = Instant::now();
        if !self.backoff.ready(now) {
            return Link::Down;
        }
        match self.open() {
            Ok(s) => {
                status.counters.connections += 1;
                self.stream = Some(s);
                self.carried = false;
                Link::New
            }
            Err(e) => {
                status.counters.connect_errors += 1;
                let wait = self.backoff.failed(now);
                status.fault(format!(
                    "cannot connect to {}:{}: {e}; retrying in {:.1} s",
                    self.host,
                    self.port,
                    wait.as_secs_f64()
                ));
                Link::Down
            }
        }
    }

    /// Writes `bytes` (whole messages); on failure the connection is dropped and `false`
    /// returned (what part reached the collector is unknown).
    pub fn write(&mut self, bytes: &[u8], status: &mut Status) -> bool {
        let Some(s) = &mut self.stream else {
            return false;
        };
        match s.write_all(bytes) {
            Ok(()) => {
                self.carried = true;
                self.backoff.reset();
                true
            }
            Err(e) => {
                status.counters.send_errors += 1;
                self.broken(status, format!("send: {e}; reconnecting"));
                false
            }
        }
    }

    /// Drops the connection. One that had carried data is retried at once; one that broke
    /// before its first write counts as a failed attempt.
    fn broken(&mut self, status: &mut Status, msg: String) {
        self.stream = None;
        if self.carried {
            self.backoff.retry_now();
        } else {
            self.backoff.failed(Instant::now());
        }
        status.fault(msg);
    }

    /// Orderly close: what was written is still delivered.
    pub fn close(&mut self) {
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(Shutdown::Write);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert!(b.ready(t0));
        let waits: Vec<u64> = (0..9).map(|_| b.failed(t0).as_millis() as u64).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert!(!b.ready(t0 + Duration::from_secs(29)));
        assert!(b.ready(t0 + Duration::from_secs(30)));
        b.retry_now();
        assert!(b.ready(t0));
        assert_eq!(b.failed(t0), BACKOFF_MAX, "retry_now keeps the delay");
        b.reset();
        assert_eq!(b, Backoff::default());
    }
}
