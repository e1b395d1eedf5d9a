//! Flows from sFlow (`--sflow-listen`) exported as IPFIX / NetFlow v9 to real collectors.
//!
//! Known truth: a switch (agent 192.0.2.20) sends 30 samples of flow A at 1 in 100 (ports
//! 7 → 8), 10 samples of flow B at 1 in 10 (ports 9 → 11) and 5 samples of flow C at 1 in
//! 100 (port 12 → several ports, which sFlow cannot name), all built here with the
//! mirrorflow-sflow encoder around Ethernet/IPv4/UDP frames from etherparse. The estimate of
//! each flow is samples × rate packets and samples × rate × IP length bytes.
//!
//! * Unscaled export (the default): records carry the sampled counts and a selector naming
//!   their rate, announced in selector options; pmacct's nfacctd with
//!   `nfacctd_renormalize: true` reports the estimates (IPFIX and v9), while nfcapd 1.7.1,
//!   which reads no sampler options, stores the sampled counts.
//! * `--sflow-in-scale`: the counts are already estimates and go out with the plain
//!   templates; nfcapd stores the estimates and a renormalizing nfacctd does not scale them
//!   a second time.
//! * Every record's ingress / egress interface is the sample's input / output port, the
//!   unknown output `--unknown-if-index`; every export datagram passes export-check.sh.

mod netflow_support;
mod sflow_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mirrorflow_sflow::{
    DataSource, DatagramRepr, FlowRecord, FlowSampleRepr, Interface, Sample, SampledHeader,
};
use netflow_support::{mirrorflow, wait_for, Guard, NfacctdCsv, Nfcapd};
use sflow_support::Capture;

const AGENT: &str = "192.0.2.20";
/// ifIndex for the unknown output port of flow C.
const UNKNOWN_IF: u32 = 99;

/// One flow of the truth table.
struct Truth {
    src: [u8; 4],
    dst: [u8; 4],
    samples: u32,
    rate: u32,
    input: u32,
    output: Interface,
    /// Bytes of the IP packet (what octetDeltaCount counts).
    ip_len: u64,
}

impl Truth {
    fn key(&self) -> (IpAddr, IpAddr) {
        (self.src.into(), self.dst.into())
    }

    /// (packets, bytes) after `k` (1 = sampled counts, rate = estimates).
    fn counts(&self, k: u64) -> (u64, u64) {
        let n = u64::from(self.samples) * k;
        (n, n * self.ip_len)
    }

    /// The egress ifIndex the records must carry.
    fn egress(&self) -> u32 {
        match self.output {
            Interface::Single(i) if i != 0 && i != 0x3FFF_FFFF => i,
            _ => UNKNOWN_IF,
        }
    }
}

fn truth() -> [Truth; 3] {
    [
        Truth {
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
            samples: 30,
            rate: 100,
            input: 7,
            output: Interface::Single(8),
            ip_len: 1028,
        },
        Truth {
            src: [10, 0, 0, 3],
            dst: [10, 0, 0, 4],
            samples: 10,
            rate: 10,
            input: 9,
            output: Interface::Single(11),
            ip_len: 128,
        },
        Truth {
            src: [10, 0, 0, 5],
            dst: [10, 0, 0, 6],
            samples: 5,
            rate: 100,
            input: 12,
            output: Interface::Multiple(3),
            ip_len: 228,
        },
    ]
}

/// An Ethernet/IPv4/UDP frame whose IP packet is `ip_len` bytes.
fn frame(t: &Truth) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(t.src, t.dst, 64)
        .udp(40_000, 5201);
    let mut out = Vec::new();
    b.write(&mut out, &vec![0u8; t.ip_len as usize - 28])
        .unwrap();
    out
}

/// The sFlow datagrams of the truth table: one datagram per round, each flow with a sample
/// in the rounds up to its count.
fn datagrams() -> Vec<Vec<u8>> {
    let flows = truth();
    let frames: Vec<Vec<u8>> = flows.iter().map(frame).collect();
    let rounds = flows.iter().map(|t| t.samples).max().unwrap();
    (1..=rounds)
        .map(|seq| {
            let samples = flows
                .iter()
                .zip(&frames)
                .filter(|(t, _)| seq <= t.samples)
                .map(|(t, f)| {
                    Sample::Flow(FlowSampleRepr {
                        sequence_number: seq,
                        source_id: DataSource::if_index(t.input),
                        sampling_rate: t.rate,
                        sample_pool: seq * t.rate,
                        drops: 0,
                        input: Interface::Single(t.input),
                        output: t.output,
                        records: vec![FlowRecord::SampledHeader(SampledHeader::ethernet(f, 128))],
                    })
                })
                .collect();
            let d = DatagramRepr {
                agent: AGENT.parse().unwrap(),
                sub_agent_id: 0,
                sequence_number: seq,
                uptime_ms: 1000 * seq,
                samples,
            };
            let mut buf = vec![0u8; d.buffer_len()];
            d.emit(&mut buf).unwrap();
            buf
        })
        .collect()
}

/// Body of `GET /metrics`.
fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connecting to /metrics");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

/// Sum of the samples of metric `name` (all label sets).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs mirrorflow with `--sflow-listen 127.0.0.1:0` (and metrics, to know when the
/// datagrams are in) plus `export` flags, sends the truth table's datagrams once it reports
/// its socket, waits until all are handled and stops it with SIGTERM, which flushes every
/// flow. Returns its stderr.
fn run_mirrorflow(export: &[String]) -> String {
    let mut child = Guard(
        mirrorflow()
            .args([
                "--sflow-listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .args(["--unknown-if-index", &UNKNOWN_IF.to_string()])
            .args(export)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting mirrorflow"),
    );
    let (tx, rx) = mpsc::channel();
    let pipe = child.0.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let (mut sflow, mut metrics): (Option<SocketAddr>, Option<SocketAddr>) = (None, None);
    let mut seen = Vec::new();
    while sflow.is_none() || metrics.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("mirrorflow did not get ready: {seen:?}"));
        if let Some(a) = line.strip_prefix("mirrorflow: receiving sFlow on ") {
            sflow = Some(a.trim().parse().unwrap());
        }
        if let Some(a) = line.strip_prefix("mirrorflow: serving metrics on http://") {
            metrics = Some(a.trim().trim_end_matches("/metrics").parse().unwrap());
        }
        seen.push(line);
    }
    let (sflow, metrics) = (sflow.unwrap(), metrics.unwrap());
    let sent = datagrams();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in &sent {
        sock.send_to(d, sflow).unwrap();
    }
    let mut last = String::new();
    let handled = wait_for(Duration::from_secs(30), || {
        last = scrape(metrics);
        metric(&last, "mirrorflow_sflow_in_datagrams_total") >= sent.len() as f64
    });
    assert!(handled, "mirrorflow did not take every datagram:\n{last}");
    assert_eq!(
        metric(&last, "mirrorflow_sflow_in_samples_total"),
        truth().iter().map(|t| f64::from(t.samples)).sum::<f64>()
    );
    child.signal("TERM");
    let status = child.wait_exit(Duration::from_secs(30));
    let log = reader.join().unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "mirrorflow: {status:?}\n{log}"
    );
    log
}

/// nfacctd's totals: (src, dst, in_iface, out_iface) → (packets, bytes).
type Totals = HashMap<(IpAddr, IpAddr, u32, u32), (u64, u64)>;

/// nfdump's view: (src, dst) → (packets, bytes, input, output, sampled).
type Stored = HashMap<(IpAddr, IpAddr), (u64, u64, u32, u32, u64)>;

/// nfacctd renormalizing by the announced sampling (`nfacctd_renormalize: true`),
/// aggregating by addresses and interfaces.
struct Nfacctd(NfacctdCsv);

impl Nfacctd {
    fn start() -> Nfacctd {
        Nfacctd(NfacctdCsv::start_with(
            "src_host, dst_host, src_port, dst_port, proto, in_iface, out_iface",
            "nfacctd_renormalize: true\n",
        ))
    }

    /// Waits (at most 10 s) for `packets` in the plugin's output, stops nfacctd and returns
    /// its totals per (source, destination, ingress, egress) and its log.
    fn stop(self, packets: u64) -> (Totals, String) {
        let (rows, log) = self.0.stop(packets);
        let mut out = HashMap::new();
        for r in rows {
            let n = |c: &str| -> u64 { r[c].parse().unwrap_or_else(|_| panic!("{c}: {r:?}")) };
            let a = |c: &str| -> IpAddr { r[c].parse().unwrap() };
            let k = (
                a("SRC_IP"),
                a("DST_IP"),
                n("IN_IFACE") as u32,
                n("OUT_IFACE") as u32,
            );
            let t: &mut (u64, u64) = out.entry(k).or_default();
            (t.0, t.1) = (t.0 + n("PACKETS"), t.1 + n("BYTES"));
        }
        (out, log)
    }
}

/// nfdump's view of an nfcapd's files.
fn nfdump(dir: &Path) -> Stored {
    let mut map = HashMap::new();
    for r in &netflow_support::nfdump_json(dir) {
        let u = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
        let a = |k: &str| -> IpAddr { r[k].as_str().unwrap().parse().unwrap() };
        let k = (a("src4_addr"), a("dst4_addr"));
        let e = map.entry(k).or_insert((0, 0, 0, 0, 0));
        e.0 += u("in_packets");
        e.1 += u("in_bytes");
        (e.2, e.3, e.4) = (
            u("input_snmp") as u32,
            u("output_snmp") as u32,
            u("sampled"),
        );
    }
    map
}

/// Frames of `file` matching the display filter `filter`, cflow decoded on `ports`.
fn frames(file: &Path, ports: &[u16], filter: &str) -> usize {
    let mut args = Vec::new();
    for p in ports {
        args.extend(["-d".to_string(), format!("udp.port=={p},cflow")]);
    }
    args.extend(["-Y".to_string(), filter.to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sflow_support::tshark(file, &args).lines().count()
}

/// export-check.sh on the export datagrams to `ports`: zero problems.
fn export_check(file: &Path, ports: &[u16]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/export-check.sh");
    assert!(script.is_file(), "{} is missing", script.display());
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let out = Command::new("bash")
        .arg(&script)
        .arg(file)
        .arg(ports.join(","))
        .output()
        .expect("running export-check.sh");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && report.contains(" 0 problems"),
        "export-check.sh: {report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One nfacctd at a time (two at once were seen holding records back from their plugins).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Unscaled export in `flag`'s protocol to a renormalizing nfacctd and to nfcapd at once.
fn unscaled(flag: &str) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let work = tempfile::tempdir().unwrap();
    let nfacctd = Nfacctd::start();
    let nfcapd = Nfcapd::start();
    let ports = [nfacctd.0.port, nfcapd.port];
    let cap = Capture::start(work.path(), &ports);
    run_mirrorflow(&[
        flag.into(),
        format!("127.0.0.1:{}", nfacctd.0.port),
        flag.into(),
        format!("127.0.0.1:{}", nfcapd.port),
    ]);
    let flows = truth();
    let estimate: u64 = flows.iter().map(|t| t.counts(t.rate.into()).0).sum();
    let (theirs, log) = nfacctd.stop(estimate);
    for bad in ["malformed", "ERROR", "WARN"] {
        assert!(!log.contains(bad), "nfacctd logged {bad}: {log}");
    }
    for t in &flows {
        let k = (t.key().0, t.key().1, t.input, t.egress());
        assert_eq!(
            theirs.get(&k),
            Some(&t.counts(t.rate.into())),
            "{flag} nfacctd, renormalized, flow {k:?}: {theirs:?}"
        );
    }
    assert_eq!(theirs.len(), flows.len(), "{theirs:?}");
    // nfcapd 1.7.1 reads no sampler options: it stores what was sent, the sampled counts.
    let (_keep, dir) = nfcapd.stop();
    let stored = nfdump(&dir);
    for t in &flows {
        let (p, b) = t.counts(1);
        assert_eq!(
            stored.get(&t.key()),
            Some(&(p, b, t.input, t.egress(), 0)),
            "{flag} nfcapd, flow {:?}: {stored:?}",
            t.key()
        );
    }
    let file = cap.stop();
    export_check(&file, &ports);
    // The records went out with the selector templates and their rates announced.
    let (sel, opt) = match flag {
        "--ipfix" => ("cflow.selector_id", "cflow.template_id == 267"),
        _ => ("cflow.sampler_id", "cflow.template_id == 267"),
    };
    assert!(
        frames(&file, &ports, sel) > 0,
        "{flag}: no selector in the export"
    );
    assert!(
        frames(&file, &ports, opt) > 0,
        "{flag}: no selector options template"
    );
}

#[test]
fn ipfix_unscaled_is_renormalized_by_nfacctd() {
    unscaled("--ipfix");
}

#[test]
fn netflow_v9_unscaled_is_renormalized_by_nfacctd() {
    unscaled("--netflow-v9");
}

/// `--sflow-in-scale`: IPFIX to nfcapd, NetFlow v9 to a renormalizing nfacctd; both report
/// the estimates once, and no selector goes out.
#[test]
fn scaled_export_reaches_nfcapd_and_nfacctd_once() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let work = tempfile::tempdir().unwrap();
    let nfacctd = Nfacctd::start();
    let nfcapd = Nfcapd::start();
    let ports = [nfacctd.0.port, nfcapd.port];
    let cap = Capture::start(work.path(), &ports);
    run_mirrorflow(&[
        "--sflow-in-scale".into(),
        "--ipfix".into(),
        format!("127.0.0.1:{}", nfcapd.port),
        "--netflow-v9".into(),
        format!("127.0.0.1:{}", nfacctd.0.port),
    ]);
    let flows = truth();
    let (_keep, dir) = nfcapd.stop();
    let stored = nfdump(&dir);
    for t in &flows {
        let (p, b) = t.counts(t.rate.into());
        assert_eq!(
            stored.get(&t.key()),
            Some(&(p, b, t.input, t.egress(), 0)),
            "nfcapd, flow {:?}: {stored:?}",
            t.key()
        );
    }
    let estimate: u64 = flows.iter().map(|t| t.counts(t.rate.into()).0).sum();
    let (theirs, log) = nfacctd.stop(estimate);
    for bad in ["malformed", "ERROR", "WARN"] {
        assert!(!log.contains(bad), "nfacctd logged {bad}: {log}");
    }
    for t in &flows {
        let k = (t.key().0, t.key().1, t.input, t.egress());
        assert_eq!(
            theirs.get(&k),
            Some(&t.counts(t.rate.into())),
            "nfacctd, scaled once, flow {k:?}: {theirs:?}"
        );
    }
    let file = cap.stop();
    export_check(&file, &ports);
    assert!(frames(&file, &ports, "cflow") > 0);
    assert_eq!(
        frames(
            &file,
            &ports,
            "cflow.flowset_id >= 263 || cflow.template_id >= 263"
        ),
        0,
        "scaled records must not name a sampling rate"
    );
}
