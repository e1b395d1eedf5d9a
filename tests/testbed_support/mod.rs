//! What the testbed tests share: a testbed script run in a temporary directory (torn down on
//! drop, also after a failed assertion) and mirrorflow capturing on the mirror's peer.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_mirrorflow");

/// Runs `bash SCRIPT CMD DIR` with `env` added to its environment.
fn script(script: &str, cmd: &str, dir: &Path, env: &[(&str, String)]) -> Output {
    Command::new("bash")
        .arg(script)
        .arg(cmd)
        .arg(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash {script}: {e}"))
}

/// A testbed built by one of the scripts under tests/testbed (`up|traffic|down DIR`).
pub struct Testbed {
    script: &'static str,
    pub dir: tempfile::TempDir,
    env: HashMap<String, String>,
    /// A log file (relative to `dir`) whose tail is printed when a test fails.
    panic_log: Option<&'static str>,
}

impl Testbed {
    /// `up` in a new temporary directory named `prefix…`, with `env` (e.g. `SFLOW_TARGET`)
    /// in the script's environment; the names it prints (KEY=VALUE) become [`Testbed::get`].
    pub fn up(script_path: &'static str, prefix: &str, env: &[(&str, String)]) -> Testbed {
        let mut bed = Testbed {
            script: script_path,
            dir: tempfile::Builder::new().prefix(prefix).tempdir().unwrap(),
            env: HashMap::new(),
            panic_log: None,
        };
        let out = bed.run("up", env);
        bed.env = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        bed
    }

    /// Prints the last lines of `log` (relative to the testbed directory) if a test fails.
    pub fn with_panic_log(mut self, log: &'static str) -> Testbed {
        self.panic_log = Some(log);
        self
    }

    fn name(&self) -> &str {
        Path::new(self.script)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(self.script)
    }

    fn run(&self, cmd: &str, env: &[(&str, String)]) -> Output {
        let out = script(self.script, cmd, self.dir.path(), env);
        assert!(
            out.status.success(),
            "{} {cmd} failed ({}): {}",
            self.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("testbed env has no {key}: {:?}", self.env))
    }

    pub fn vm(&self, n: usize, field: &str) -> &str {
        self.get(&format!("VM{n}_{field}"))
    }

    pub fn num(&self, key: &str) -> u64 {
        self.get(key).parse().unwrap()
    }

    /// Runs the script's traffic; returns the directory with its results.
    pub fn traffic(&self) -> PathBuf {
        self.run("traffic", &[]);
        self.dir.path().join("traffic")
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if let (true, Some(rel)) = (std::thread::panicking(), self.panic_log) {
            let log = self.dir.path().join(rel);
            if let Ok(text) = std::fs::read_to_string(&log) {
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                eprintln!("--- last lines of {}:", log.display());
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        let out = script(self.script, "down", self.dir.path(), &[]);
        if !out.status.success() {
            eprintln!(
                "{} down failed: {}",
                self.name(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// mirrorflow capturing on the mirror's peer; killed on drop if still running.
pub struct Probe {
    child: Child,
    stderr: mpsc::Receiver<String>,
    /// The `/metrics` address it announced (with `--metrics-listen`).
    pub metrics: Option<SocketAddr>,
}

impl Probe {
    pub fn start(iface: &str, json: &Path, stats: &Path, extra: &[String]) -> Probe {
        let mut child = Command::new(BIN)
            .args(["-i", iface, "--json"])
            .arg(json)
            .arg("--stats-json")
            .arg(stats)
            .args(extra)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting mirrorflow");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut probe = Probe {
            child,
            stderr: rx,
            metrics: None,
        };
        // Start-up lines (the metrics address) come before "capturing on"; at most 10.
        let mut seen = Vec::new();
        loop {
            let line = probe
                .stderr
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("mirrorflow did not start capturing: {seen:?}"));
            if let Some(rest) = line.split("serving metrics on http://").nth(1) {
                probe.metrics = Some(rest.trim_end_matches("/metrics").parse().unwrap());
            }
            if line.contains("capturing on") {
                break;
            }
            seen.push(line);
            assert!(seen.len() < 10, "mirrorflow: {seen:?}");
        }
        probe
    }

    /// SIGTERM, then wait (at most 10 s) for a clean exit, also on an idle interface;
    /// returns the rest of stderr.
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let mut status = None;
        for _ in 0..200 {
            status = self.child.try_wait().unwrap();
            if status.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let Some(status) = status else {
            let _ = self.child.kill();
            panic!("mirrorflow did not stop within 10 s of SIGTERM");
        };
        let rest: Vec<String> = self.stderr.try_iter().collect();
        assert!(status.success(), "mirrorflow: {status}: {rest:?}");
        rest.join("\n")
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Open vSwitch testbed specifics.
impl Testbed {
    /// `ovs-ofctl dump-ports BRIDGE`, parsed.
    pub fn dump_ports(&self) -> HashMap<String, [u64; 4]> {
        let out = Command::new("ovs-ofctl")
            .env("OVS_RUNDIR", self.get("OVS_RUNDIR"))
            .args(["dump-ports", self.get("BRIDGE")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ovs-ofctl dump-ports: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_dump_ports(&String::from_utf8(out.stdout).unwrap())
    }
}

/// `ovs-ofctl dump-ports` text → port ("1", "LOCAL") → (rx pkts, rx bytes, tx pkts, tx bytes).
pub fn parse_dump_ports(text: &str) -> HashMap<String, [u64; 4]> {
    let mut out = HashMap::new();
    let mut current: Option<String> = None;
    let field = |l: &str, key: &str| -> u64 {
        let at = l.find(key).unwrap_or_else(|| panic!("no {key} in {l:?}")) + key.len();
        l[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    for l in text.lines().map(str::trim) {
        if let Some(rest) = l.strip_prefix("port") {
            let (name, rx) = rest.split_once(':').unwrap();
            let name = name.trim().to_string();
            let e = out.entry(name.clone()).or_insert([0; 4]);
            e[0] = field(rx, "pkts=");
            e[1] = field(rx, "bytes=");
            current = Some(name);
        } else if let (Some(name), Some(tx)) = (&current, l.strip_prefix("tx")) {
            let e = out.get_mut(name).unwrap();
            e[2] = field(tx, "pkts=");
            e[3] = field(tx, "bytes=");
        }
    }
    out
}
