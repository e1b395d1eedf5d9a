//! Harness for the tests that replay the shared captures: finding them, running the pipeline
//! on one with an in-memory sink, and asking tshark for the reference answers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use mirrorflow::capture::CaptureError;
use mirrorflow::decode::{Decoder, TunnelMode};
use mirrorflow::export::{CounterSnapshot, ExportError, Fanout, Interest, Sink, WhenFull};
use mirrorflow::flow::FlowRecord;
use mirrorflow::pipeline::{self, PipelineConfig, Report, SourceSpec};

/// Files in the MANIFEST that are deliberately corrupt: opening them must fail.
pub const CORRUPT: [&str; 2] = [
    "libpcap__pcap-invalid-version-1.pcap",
    "libpcap__shb-option-too-long.pcapng",
];

/// The shared capture directory; panics (never skips) when it is missing.
pub fn pcaps_dir() -> PathBuf {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/pcaps"));
    assert!(
        dir.is_dir(),
        "shared capture directory {} is missing",
        dir.display()
    );
    dir.to_path_buf()
}

pub fn pcap(name: &str) -> PathBuf {
    let path = pcaps_dir().join(name);
    assert!(path.is_file(), "capture {} is missing", path.display());
    path
}

/// File names listed in MANIFEST.tsv (the `file` column), in MANIFEST order.
pub fn manifest() -> Vec<String> {
    let path = pcaps_dir().join("MANIFEST.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines.next().expect("MANIFEST.tsv is empty");
    let col = header
        .split('\t')
        .position(|c| c == "file")
        .unwrap_or_else(|| panic!("MANIFEST.tsv header has no `file` column: {header:?}"));
    let files: Vec<String> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split('\t')
                .nth(col)
                .unwrap_or_else(|| panic!("MANIFEST.tsv line without a file: {l:?}"))
                .to_string()
        })
        .collect();
    assert!(!files.is_empty(), "MANIFEST.tsv lists no captures");
    files
}

/// What a sink was handed: every record, and the time and frame count of every counter
/// snapshot, in delivery order.
#[derive(Default)]
struct Collected {
    records: Vec<FlowRecord>,
    snapshots: Vec<(u64, u64)>,
}

/// A sink that keeps everything it is handed.
struct Collect(Arc<Mutex<Collected>>);

impl Sink for Collect {
    fn name(&self) -> String {
        "collect".into()
    }

    fn interest(&self) -> Interest {
        Interest {
            counters: true,
            ..Interest::FLOWS
        }
    }

    fn flows(&mut self, records: &[FlowRecord]) -> Result<(), ExportError> {
        self.0.lock().unwrap().records.extend_from_slice(records);
        Ok(())
    }

    fn counters(&mut self, snapshot: &CounterSnapshot) -> Result<(), ExportError> {
        let s = (snapshot.time_ns, snapshot.report.frames);
        self.0.lock().unwrap().snapshots.push(s);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ExportError> {
        Ok(())
    }
}

/// What one replay of a capture produced.
pub struct Replay {
    pub report: Report,
    pub records: Vec<FlowRecord>,
    /// Time and frames so far of each counter snapshot (one per second of packet time).
    pub snapshots: Vec<(u64, u64)>,
}

/// Runs the whole pipeline on `path` with the default cache settings.
pub fn replay(path: &Path, tunnels: TunnelMode) -> Result<Replay, CaptureError> {
    replay_reading(path, tunnels, None)
}

/// Like [`replay`], with the file read on the flow thread itself (`Some(true)`), on a thread of
/// its own (`Some(false)`), or as the machine decides (`None`).
pub fn replay_reading(
    path: &Path,
    tunnels: TunnelMode,
    read_inline: Option<bool>,
) -> Result<Replay, CaptureError> {
    let cfg = PipelineConfig {
        decoder: Decoder::new(tunnels),
        read_inline,
        ..PipelineConfig::new(SourceSpec::File(path.to_path_buf()))
    };
    let store = Arc::new(Mutex::new(Collected::default()));
    let mut sinks = Fanout::new();
    sinks.add(Box::new(Collect(store.clone())), WhenFull::Block, 16);
    let report = pipeline::run(&cfg, sinks, Arc::new(AtomicBool::new(false)), |_| {})?;
    let got = std::mem::take(&mut *store.lock().unwrap());
    Ok(Replay {
        report,
        records: got.records,
        snapshots: got.snapshots,
    })
}

/// Like [`replay`] for a capture that must open; panics with the error otherwise.
pub fn replay_ok(name: &str, tunnels: TunnelMode) -> Replay {
    replay(&pcap(name), tunnels).unwrap_or_else(|e| panic!("{name}: pipeline failed: {e}"))
}

/// `tshark -r FILE ARGS...` stdout; panics clearly when tshark is missing or fails.
pub fn tshark(file: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run tshark ({e}): these tests need Wireshark's tshark on PATH (apt-get install tshark)")
        });
    assert!(
        out.status.success(),
        "tshark -r {} {args:?} failed ({}): {}",
        file.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tshark printed non-UTF-8")
}

/// Frames in `file` according to tshark.
pub fn tshark_frame_count(file: &Path) -> u64 {
    tshark(file, &["-T", "fields", "-e", "frame.number"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64
}
