//! Helpers of the sFlow end-to-end tests: real tools on loopback (tshark, export-check.sh,
//! sfacctd), bounded polling instead of sleeps, clear failures when a tool is missing.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Polls `cond` every 20 ms for at most `limit`.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Panics with an install hint when `tool` cannot be run.
pub fn require(tool: &str, version_flag: &str, package: &str) {
    match Command::new(tool).arg(version_flag).output() {
        Ok(_) => {}
        Err(e) => panic!(
            "{tool} is required for this test and could not be run ({e}); \
             install it with `apt-get install {package}`"
        ),
    }
}

pub fn shared_pcap(name: &str) -> PathBuf {
    let p = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/pcaps")).join(name);
    assert!(p.is_file(), "capture {} is missing", p.display());
    p
}

/// A free UDP port on 127.0.0.1 with a socket bound to it (kept open so the exporter gets
/// no ICMP port unreachable; tshark sees the datagrams on lo either way).
pub fn udp_listener() -> (UdpSocket, u16) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    (s, port)
}

/// rx_queue and drops of the IPv4 UDP socket bound to 127.0.0.1:`port`, if one is bound.
pub fn udp_socket_state(port: u16) -> Option<(u64, u64)> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(1) != Some(&local.as_str()) {
            return None;
        }
        let (_, rx) = f.get(4)?.split_once(':')?;
        let rx = u64::from_str_radix(rx, 16).ok()?;
        let drops = f.last()?.parse().ok()?;
        Some((rx, drops))
    })
}

/// `tshark -i lo` writing the UDP datagrams to `ports` into a pcapng file.
pub struct Capture {
    child: Child,
    pub file: PathBuf,
    marker_port: u16,
    _marker: UdpSocket,
}

impl Capture {
    /// Starts tshark and waits (bounded) for "Capturing on" on its stderr.
    pub fn start(dir: &Path, ports: &[u16]) -> Capture {
        require("tshark", "--version", "tshark");
        let (marker, marker_port) = udp_listener();
        let file = dir.join("export.pcapng");
        let filter = ports
            .iter()
            .chain([&marker_port])
            .map(|p| format!("udp port {p}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let mut child = Command::new("tshark")
            .args(["-i", "lo", "-f", &filter, "-w"])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tshark");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let t0 = Instant::now();
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(30).saturating_sub(t0.elapsed())) {
                Ok(l) if l.contains("Capturing on") => break,
                Ok(l) => seen.push(l),
                Err(_) => {
                    let _ = child.kill();
                    panic!("tshark did not start capturing on lo: {seen:?}");
                }
            }
        }
        let c = Capture {
            child,
            file,
            marker_port,
            _marker: marker,
        };
        // "Capturing on" can come before the filter is live: wait for a datagram to
        // show up in the file.
        assert!(c.mark(), "tshark on lo captured nothing");
        c
    }

    /// Marker datagrams in the capture file so far.
    fn markers(&self) -> usize {
        let filter = format!("udp.dstport == {}", self.marker_port);
        Command::new("tshark")
            .arg("-r")
            .arg(&self.file)
            .args(["-Y", &filter])
            .output()
            .map_or(0, |o| o.stdout.iter().filter(|&&b| b == b'\n').count())
    }

    /// Sends marker datagrams until one more is in the file than before: everything sent
    /// earlier is in the file too.
    fn mark(&self) -> bool {
        let before = self.markers();
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        wait_for(Duration::from_secs(30), || {
            probe
                .send_to(b"mark", ("127.0.0.1", self.marker_port))
                .unwrap();
            self.markers() > before
        })
    }

    /// Waits until the capture is complete, stops tshark with SIGINT and returns the file.
    pub fn stop(mut self) -> PathBuf {
        let marked = self.mark();
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let exited = wait_for(Duration::from_secs(20), || {
            self.child.try_wait().unwrap().is_some()
        });
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        assert!(marked, "the marker datagram never reached the capture file");
        self.file.clone()
    }
}

impl Drop for Capture {
    /// A test that fails before [`Capture::stop`] leaves no tshark behind.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `/work/shared/tools/export-check.sh` on `capture` with `sflow_ports`; panics with
/// its report unless it finds 0 problems.
pub fn export_check(capture: &Path, sflow_ports: &[u16]) -> String {
    let script = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/tools/export-check.sh"
    ));
    assert!(script.is_file(), "{} is missing", script.display());
    let ports = sflow_ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let out = Command::new("bash")
        .arg(script)
        .arg(capture)
        .arg("")
        .arg(&ports)
        .output()
        .expect("running export-check.sh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.contains(" 0 problems"),
        "export-check.sh found problems:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// `tshark -r FILE ARGS…` stdout.
pub fn tshark(file: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
        .expect("running tshark");
    assert!(
        out.status.success(),
        "tshark -r {} {args:?}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tshark printed non-UTF-8")
}

/// Runs the mirrorflow binary with `args`; panics with its stderr unless it succeeds.
pub fn mirrorflow(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_mirrorflow"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running mirrorflow");
    assert!(
        out.status.success(),
        "mirrorflow {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A running pmacct `sfacctd` on 127.0.0.1 whose print plugin appends CSV (sampled
/// packets, not renormalized) to a file every second. `aggregate` is its `aggregate`
/// key, e.g. `peer_src_ip,src_host,dst_host,src_port,dst_port,proto` (peer_src_ip is the
/// agent address of the datagrams: it tells agents sharing the collector apart).
pub struct Sfacctd {
    child: Child,
    pub port: u16,
    pub csv: PathBuf,
    log: PathBuf,
}

impl Sfacctd {
    /// Starts sfacctd on a free port with its files in `dir` and waits (bounded) until
    /// its socket is bound.
    pub fn start(dir: &Path, aggregate: &str) -> Sfacctd {
        require("sfacctd", "-V", "pmacct");
        let csv = dir.join("sfacctd.csv");
        let log = dir.join("sfacctd.log");
        for _ in 0..5 {
            // A free port, released just before sfacctd binds it: retried if taken.
            let port = udp_listener().1;
            let conf = dir.join("sfacctd.conf");
            std::fs::write(
                &conf,
                format!(
                    "daemonize: false\n\
                     sfacctd_ip: 127.0.0.1\n\
                     sfacctd_port: {port}\n\
                     sfacctd_renormalize: false\n\
                     plugins: print\n\
                     aggregate: {aggregate}\n\
                     print_output: csv\n\
                     print_output_file: {}\n\
                     print_output_file_append: true\n\
                     print_refresh_time: 1\n\
                     logfile: {}\n",
                    csv.display(),
                    log.display()
                ),
            )
            .unwrap();
            let mut child = Command::new("sfacctd")
                .arg("-f")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting sfacctd");
            let mut exited = false;
            let bound = wait_for(Duration::from_secs(10), || {
                exited = exited || child.try_wait().unwrap().is_some();
                exited || udp_socket_state(port).is_some()
            });
            if bound && !exited {
                return Sfacctd {
                    child,
                    port,
                    csv,
                    log,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "sfacctd did not bind a UDP port: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Every CSV row written so far (all purges), by column name (`SRC_IP`, `PACKETS`, …).
    pub fn rows(&self) -> Vec<std::collections::BTreeMap<String, String>> {
        let mut text = std::fs::read_to_string(&self.csv).unwrap_or_default();
        // A purge may be half written: only whole lines count.
        text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
        let mut lines = text.lines();
        let Some(header) = lines.next() else {
            return Vec::new();
        };
        let cols: Vec<&str> = header.split(',').collect();
        lines
            .filter(|l| *l != header && !l.is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                assert_eq!(f.len(), cols.len(), "sfacctd CSV row {l:?} vs {header:?}");
                cols.iter()
                    .zip(f)
                    .map(|(c, v)| (c.to_string(), v.to_string()))
                    .collect()
            })
            .collect()
    }

    /// sfacctd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sfacctd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
