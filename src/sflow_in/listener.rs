//! The sFlow listener's sockets: UDP receive on every `--sflow-listen` address (tokio, one
//! current-thread runtime), a bounded queue in front of the datagram path, and the relay of
//! each datagram, unchanged, to the `--sflow` collectors.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::ingest::SflowInStats;

/// Receive buffer asked for on each socket (the kernel caps it at `net.core.rmem_max`).
const RECV_BUFFER: usize = 4 << 20;
/// Datagrams waiting between the sockets and the datagram path; beyond it they are dropped
/// and counted.
pub const QUEUE: usize = 4096;
/// How often the datagram path hands over what it has, and looks for a stop.
pub const TICK: Duration = Duration::from_millis(100);

/// Errors setting the listener up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("--sflow-listen {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("sFlow relay socket: {0}")]
    Relay(std::io::Error),
}

/// Bound sockets, ready to run.
#[derive(Debug)]
pub struct Listener {
    sockets: Vec<(SocketAddr, UdpSocket)>,
    relay: Relay,
}

impl Listener {
    /// Binds every address (errors before anything runs) and opens the relay socket.
    pub fn bind(addrs: &[SocketAddr], relay: &[SocketAddr]) -> Result<Listener, ListenError> {
        let mut sockets = Vec::new();
        for &addr in addrs {
            let s = bind(addr).map_err(|source| ListenError::Bind { addr, source })?;
            let local = s.local_addr().unwrap_or(addr);
            sockets.push((local, s));
        }
        Ok(Listener {
            sockets,
            relay: Relay::new(relay).map_err(ListenError::Relay)?,
        })
    }

    /// The bound addresses (ports chosen by the system for `:0`).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets.iter().map(|(a, _)| *a).collect()
    }

    /// Receives until `shutdown` is set, handing each datagram (relayed first) to `handle`
    /// and calling `tick` every [`TICK`] and once more at the end. Datagrams queued at the
    /// stop are still handled.
    pub fn run(
        self,
        stats: Arc<Mutex<SflowInStats>>,
        shutdown: Arc<AtomicBool>,
        mut handle: impl FnMut(&[u8]),
        mut tick: impl FnMut() -> bool,
    ) -> std::io::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let Listener { sockets, mut relay } = self;
        {
            let mut st = stats.lock().unwrap_or_else(|e| e.into_inner());
            st.relay = relay
                .targets
                .iter()
                .map(|t| (t.to_string(), 0, 0))
                .collect();
        }
        rt.block_on(async move {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(QUEUE);
            for (_, s) in sockets {
                let s = tokio::net::UdpSocket::from_std(s)?;
                let (tx, stats) = (tx.clone(), stats.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65_536];
                    loop {
                        let Ok((n, _)) = s.recv_from(&mut buf).await else {
                            // A socket error (none is expected on a bound UDP socket): back
                            // off rather than spin.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        };
                        if tx.try_send(buf[..n].to_vec()).is_err() {
                            stats.lock().unwrap_or_else(|e| e.into_inner()).queue_drops += 1;
                        }
                    }
                });
            }
            drop(tx);
            let mut ticker = tokio::time::interval(TICK);
            let mut deliver = |d: Vec<u8>| {
                relay.send(&d, &stats);
                handle(&d);
            };
            loop {
                tokio::select! {
                    d = rx.recv() => match d {
                        Some(d) => deliver(d),
                        None => break,
                    },
                    _ = ticker.tick() => {
                        if shutdown.load(Ordering::Relaxed) {
                            while let Ok(d) = rx.try_recv() {
                                deliver(d);
                            }
                            break;
                        }
                        if !tick() {
                            return Ok(());
                        }
                    }
                }
            }
            tick();
            Ok(())
        })
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    // Best effort: the kernel may cap it lower.
    let _ = s.set_recv_buffer_size(RECV_BUFFER);
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Sends each datagram unchanged to every relay target (no queue: a datagram that cannot
/// leave at once is counted as a send error).
#[derive(Debug)]
struct Relay {
    targets: Vec<SocketAddr>,
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
}

impl Relay {
    fn new(targets: &[SocketAddr]) -> std::io::Result<Relay> {
        let open = |want_v6: bool, any: &str| -> std::io::Result<Option<UdpSocket>> {
            if !targets.iter().any(|t| t.is_ipv6() == want_v6) {
                return Ok(None);
            }
            let s = UdpSocket::bind(any)?;
            s.set_nonblocking(true)?;
            Ok(Some(s))
        };
        Ok(Relay {
            targets: targets.to_vec(),
            v4: open(false, "0.0.0.0:0")?,
            v6: open(true, "[::]:0")?,
        })
    }

    fn send(&mut self, d: &[u8], stats: &Mutex<SflowInStats>) {
        if self.targets.is_empty() {
            return;
        }
        let mut st = stats.lock().unwrap_or_else(|e| e.into_inner());
        for (i, t) in self.targets.iter().enumerate() {
            let sock = if t.is_ipv6() { &self.v6 } else { &self.v4 };
            let ok = sock.as_ref().is_some_and(|s| s.send_to(d, t).is_ok());
            if let Some(r) = st.relay.get_mut(i) {
                if ok {
                    r.1 += 1;
                } else {
                    r.2 += 1;
                }
            }
        }
    }
}
