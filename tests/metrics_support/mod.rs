//! Helpers of the metrics tests: a mirrorflow process with `--metrics-listen`, a plain
//! HTTP/1.0 client, a parser for the Prometheus text format, and polling.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mirrorflow");

/// A capture from `../shared/pcaps`.
pub fn pcap(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/pcaps")
        .join(name)
}

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Polls `cond` every 50 ms for at most `limit`.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// `GET path` over HTTP/1.0; returns the status code and body.
pub fn http(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

pub fn get(addr: SocketAddr, path: &str) -> String {
    match http(addr, "GET", path) {
        Ok((200, body)) => body,
        other => panic!("GET http://{addr}{path}: {other:?}"),
    }
}

/// Percent-encodes a query-string value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One sample line of the text format.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the sample lines of a Prometheus text exposition (no escapes in label values).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("sample line");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => {
                    let inner = rest.strip_suffix('}').expect("closing brace");
                    let labels = split_labels(inner)
                        .into_iter()
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').expect("label");
                            (k.to_string(), v.trim_matches('"').to_string())
                        })
                        .collect();
                    (n.to_string(), labels)
                }
                None => (series.to_string(), BTreeMap::new()),
            };
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().expect("sample value"),
            };
            Sample {
                name,
                labels,
                value,
            }
        })
        .collect()
}

fn split_labels(s: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted) = (Vec::new(), 0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Sum of every sample named `name` whose labels include `with`.
pub fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// SIGTERM to `child`, then its exit status (within 20 s; killed and a failure after that).
pub fn terminate(child: &mut Child) -> ExitStatus {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let mut status = None;
    wait_for(Duration::from_secs(20), || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("mirrorflow did not stop on SIGTERM")
    })
}

/// The stderr line naming the metrics endpoint: `…serving metrics on http://ADDR/metrics`.
pub const METRICS_MARKER: &str = "serving metrics on http://";

/// Lines announcing an address: (marker, address).
pub type Announcements = mpsc::Receiver<(&'static str, String)>;

/// Spawns `cmd` (stdin and stdout closed) and collects its stderr; for each line that holds
/// one of `markers`, sends (marker, the text after it without a trailing `/metrics`).
pub fn spawn_announcing(
    mut cmd: Command,
    markers: &[&'static str],
) -> (Child, Arc<Mutex<String>>, Announcements) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting mirrorflow");
    let stderr = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let pipe = child.stderr.take().expect("stderr");
    let log = stderr.clone();
    let markers = markers.to_vec();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            for &marker in &markers {
                if let Some(rest) = line.split(marker).nth(1) {
                    let addr = rest.trim_end_matches("/metrics").to_string();
                    let _ = tx.send((marker, addr));
                }
            }
            let mut l = log.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    (child, stderr, rx)
}

/// A running mirrorflow with `--metrics-listen 127.0.0.1:0`.
pub struct Probe {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
}

impl Probe {
    /// Starts mirrorflow with `args` plus `--metrics-listen 127.0.0.1:0` and waits for the
    /// line that names the bound address.
    pub fn start<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Probe {
        let mut cmd = Command::new(BIN);
        cmd.args(args).args(["--metrics-listen", "127.0.0.1:0"]);
        let (mut child, stderr, rx) = spawn_announcing(cmd, &[METRICS_MARKER]);
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((_, a)) => a.parse().expect("address"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "mirrorflow did not announce its metrics address; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Probe {
            child,
            addr,
            stderr,
        }
    }

    pub fn scrape(&self) -> String {
        get(self.addr, "/metrics")
    }

    /// Polls `/metrics` until `mirrorflow_input_finished` is 1; returns that scrape.
    pub fn scrape_when_finished(&self) -> String {
        let mut last = String::new();
        let done = wait_for(Duration::from_secs(120), || {
            last = self.scrape();
            sum(&parse(&last), "mirrorflow_input_finished", &[]) == 1.0
        });
        assert!(done, "the input never finished; stderr:\n{}", self.log());
        last
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit status (within 20 s).
    pub fn terminate(&mut self) -> ExitStatus {
        terminate(&mut self.child)
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A UDP socket on loopback that takes datagrams and throws them away (a collector that is
/// up), and the address of a port where nothing listens (one that is down).
pub fn udp_sink() -> (std::net::UdpSocket, SocketAddr) {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    let r = s.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while r.recv(&mut buf).is_ok() {}
    });
    (s, addr)
}

pub fn closed_udp_port() -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

/// A required tool; fails the test with a clear message when it is missing.
pub fn require(tool: &str, package: &str) {
    match Command::new(tool).arg("--version").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("`{tool} --version` failed: {}", o.status),
        Err(e) => panic!(
            "{tool} is required by this test and could not be run ({e}); \
             install it with `apt-get install {package}`"
        ),
    }
}
