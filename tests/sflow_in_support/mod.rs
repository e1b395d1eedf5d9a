//! Shared by the sFlow-input tests: a running mirrorflow with `--sflow-listen` on IPv4 and
//! IPv6 loopback plus `--metrics-listen`, sFlow payloads read out of captures, and a sender.
//! Tests that include it include `metrics_support` too.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[allow(unused_imports)]
pub use crate::metrics_support::wait_for;

use mirrorflow::capture::FileSource;

const BIN: &str = env!("CARGO_BIN_EXE_mirrorflow");

/// A capture under ../shared/pcaps (the test fails when it is missing).
pub fn shared_pcap(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/pcaps")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing (CI provides ../shared/pcaps)",
        p.display()
    );
    p
}

/// The UDP payloads sent to `port` in a capture, in capture order.
pub fn udp_payloads(path: &Path, port: u16) -> Vec<Vec<u8>> {
    let mut src = FileSource::open(path).expect("opening the capture");
    let mut out = Vec::new();
    while let Some(f) = src.next_frame().expect("reading the capture") {
        let Ok(p) = etherparse::SlicedPacket::from_ethernet(f.data) else {
            continue;
        };
        if let Some(etherparse::TransportSlice::Udp(u)) = p.transport {
            if u.destination_port() == port {
                out.push(u.payload().to_vec());
            }
        }
    }
    out
}

/// Sends each datagram to `to` from one socket of the right family.
pub fn send_all(to: SocketAddr, datagrams: &[Vec<u8>]) {
    let s = UdpSocket::bind(if to.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    })
    .unwrap();
    for d in datagrams {
        s.send_to(d, to).expect("sending a datagram");
    }
}

/// mirrorflow receiving sFlow on 127.0.0.1 and [::1] (ports chosen by the system).
pub struct SflowProbe {
    pub child: Child,
    pub v4: SocketAddr,
    pub v6: SocketAddr,
    pub metrics: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
}

impl SflowProbe {
    pub fn start(extra: &[&str]) -> SflowProbe {
        let mut cmd = Command::new(BIN);
        cmd.args(["--sflow-listen", "127.0.0.1:0", "--sflow-listen", "[::1]:0"])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(extra);
        let (mut child, stderr, rx) = crate::metrics_support::spawn_announcing(
            cmd,
            &[
                "receiving sFlow on ",
                crate::metrics_support::METRICS_MARKER,
            ],
        );
        let mut listen = Vec::new();
        let mut metrics = None;
        while listen.len() < 2 || metrics.is_none() {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok((m, a)) if m.starts_with("receiving") => listen.push(a.parse().unwrap()),
                Ok((_, a)) => metrics = Some(a.parse().unwrap()),
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "mirrorflow did not start; stderr:\n{}",
                        stderr.lock().unwrap()
                    );
                }
            }
        }
        let v4 = *listen.iter().find(|a: &&SocketAddr| a.is_ipv4()).unwrap();
        let v6 = *listen.iter().find(|a: &&SocketAddr| a.is_ipv6()).unwrap();
        SflowProbe {
            child,
            v4,
            v6,
            metrics: metrics.unwrap(),
            stderr,
        }
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit status (within 20 s).
    pub fn terminate(&mut self) -> ExitStatus {
        crate::metrics_support::terminate(&mut self.child)
    }
}

impl Drop for SflowProbe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
