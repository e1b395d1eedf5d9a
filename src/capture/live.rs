//! Live capture on an interface with libpcap (the `pcap` crate): promiscuous mode, snaplen,
//! kernel buffer size, BPF filter, immediate delivery, nanosecond timestamps.

use super::file::Frame;
use super::CaptureError;
use crate::decode::FrameInfo;

/// Settings for one live capture.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub snaplen: u32,
    pub buffer_size: u32,
    pub promisc: bool,
    pub filter: Option<String>,
    /// How long a read waits before returning with nothing (so the caller can tick timers).
    pub read_timeout_ms: i32,
}

/// Packet counts libpcap reports for an interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveStats {
    pub received: u64,
    /// Dropped by the kernel because the capture buffer was full.
    pub dropped: u64,
    /// Dropped by the interface or driver.
    pub if_dropped: u64,
}

pub struct LiveSource {
    iface: String,
    cap: pcap::Capture<pcap::Active>,
    linktype: u32,
    ifindex: u32,
}

/// The OS interface index, if the interface exists.
pub fn ifindex(iface: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn live_error(iface: &str, e: pcap::Error) -> CaptureError {
    let mut message = e.to_string();
    if message.contains("ermission") || message.contains("not permitted") {
        // CAP_NET_RAW alone suffices, promiscuous mode included (PACKET_MR_PROMISC is a
        // packet-socket option, not an interface flag change).
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "mirrorflow".into());
        message.push_str(&format!(
            " (capturing needs root or the CAP_NET_RAW capability: setcap cap_net_raw+ep {exe})"
        ));
    }
    CaptureError::Live {
        iface: iface.to_string(),
        message,
    }
}

impl LiveSource {
    pub fn open(iface: &str, cfg: &LiveConfig) -> Result<LiveSource, CaptureError> {
        let Some(index) = ifindex(iface) else {
            return Err(CaptureError::Live {
                iface: iface.to_string(),
                message: "no such interface".into(),
            });
        };
        let cap = pcap::Capture::from_device(iface)
            .map_err(|e| live_error(iface, e))?
            .promisc(cfg.promisc)
            .snaplen(cfg.snaplen as i32)
            .buffer_size(cfg.buffer_size as i32)
            // Not immediate mode: frames arrive in ring blocks that retire after the read
            // timeout, so a source gets control (and flushes its batch) within about 100 ms of
            // any frame; immediate mode hands over frames one by one but never times out, which
            // held a source's last partial batch until the next frame.
            .immediate_mode(false)
            .timeout(cfg.read_timeout_ms)
            .precision(pcap::Precision::Nano)
            .open()
            .map_err(|e| live_error(iface, e))?;
        let mut cap = cap;
        if let Some(f) = &cfg.filter {
            cap.filter(f, true).map_err(|e| CaptureError::Filter {
                filter: f.clone(),
                message: e.to_string(),
            })?;
        }
        let linktype = cap.get_datalink().0 as u32;
        Ok(LiveSource {
            iface: iface.to_string(),
            cap,
            linktype,
            ifindex: index,
        })
    }

    pub fn iface(&self) -> &str {
        &self.iface
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The next frame; `Ok(None)` when the read timeout passed with nothing.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        match self.cap.next_packet() {
            Ok(p) => {
                let ts = &p.header.ts;
                let ts_ns = (ts.tv_sec as u64)
                    .saturating_mul(1_000_000_000)
                    .saturating_add(ts.tv_usec as u64);
                Ok(Some(Frame {
                    linktype: self.linktype,
                    info: FrameInfo {
                        ts_ns,
                        wire_len: p.header.len.max(p.header.caplen),
                        in_if: self.ifindex,
                    },
                    data: p.data,
                }))
            }
            // A read timeout, or pcap_breakloop() from `Waker::wake` (libpcap returns -2).
            Err(pcap::Error::TimeoutExpired | pcap::Error::NoMorePackets) => Ok(None),
            Err(e) => Err(live_error(&self.iface, e)),
        }
    }

    /// A handle that wakes this capture out of a blocking read from another thread: on an
    /// idle wire libpcap's read timeout never fires (TPACKET_V3 only wakes when a ring block
    /// with a frame in it retires), so a stop must break the read explicitly.
    pub fn waker(&mut self) -> Waker {
        Waker(self.cap.breakloop_handle())
    }

    pub fn stats(&mut self) -> LiveStats {
        match self.cap.stats() {
            Ok(s) => LiveStats {
                received: u64::from(s.received),
                dropped: u64::from(s.dropped),
                if_dropped: u64::from(s.if_dropped),
            },
            Err(_) => LiveStats::default(),
        }
    }
}

/// Breaks a [`LiveSource`]'s blocking read (see [`LiveSource::waker`]).
pub struct Waker(pcap::BreakLoop);

impl Waker {
    pub fn wake(&self) {
        self.0.breakloop();
    }
}
