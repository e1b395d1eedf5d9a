//! Command line: raw flags (clap), kept apart from the validated [`Settings`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;

use crate::config::{FileConfig, Settings};
use crate::decode::TunnelMode;
use crate::export::{Fanout, JsonSink, NetflowSink, WhenFull};
use crate::pipeline::{self, Report, SourceSpec};

/// Traffic-visibility probe for virtual switches: reads a mirror port or a capture file and
/// exports flows.
#[derive(Parser, Debug)]
#[command(name = "mirrorflow", version, about)]
pub struct Args {
    /// Capture live on this interface (repeatable).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Vec<String>,
    /// Read packets from a pcap or pcapng file.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Option<PathBuf>,
    /// BPF filter expression (tcpdump syntax).
    #[arg(short = 'f', long, value_name = "BPF")]
    pub filter: Option<String>,
    /// Bytes captured per packet (live).
    #[arg(long, value_name = "BYTES")]
    pub snaplen: Option<u32>,
    /// Kernel capture buffer size in bytes (live).
    #[arg(long, value_name = "BYTES")]
    pub buffer_size: Option<u32>,
    /// Do not put the interface in promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,
    /// Write one JSON object per flow to PATH (`-` for stdout).
    #[arg(long, value_name = "PATH|-")]
    pub json: Option<String>,
    /// Write the final counters as JSON to PATH (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    pub stats_json: Option<PathBuf>,
    /// Export a flow after this many seconds without packets [default: 15].
    #[arg(long, value_name = "SECS")]
    pub idle_timeout: Option<f64>,
    /// Export long flows in pieces of this many seconds [default: 60].
    #[arg(long, value_name = "SECS")]
    pub active_timeout: Option<f64>,
    /// Most flows held at once; beyond it the least recently used is exported early
    /// [default: 1000000].
    #[arg(long, value_name = "N")]
    pub max_flows: Option<usize>,
    /// Key tunnelled traffic on the inner or the outer packet [default: inner].
    #[arg(long, value_enum, value_name = "MODE")]
    pub tunnels: Option<TunnelMode>,
    /// Feed the flow cache 1 packet in N, chosen at random (announced in IPFIX/v9 sampling
    /// options; counts stay unscaled) [default: 1].
    #[arg(long, value_name = "N")]
    pub flow_sampling: Option<u32>,
    /// Export IPFIX over UDP to this collector (repeatable).
    #[arg(long, value_name = "HOST:PORT")]
    pub ipfix: Vec<String>,
    /// Export NetFlow v9 over UDP to this collector (repeatable).
    #[arg(long = "netflow-v9", value_name = "HOST:PORT")]
    pub netflow_v9: Vec<String>,
    /// IPFIX observation domain id / NetFlow v9 source id [default: 1].
    #[arg(long, value_name = "N")]
    pub observation_domain: Option<u32>,
    /// Resend IPFIX / v9 templates every SECS seconds, 0 = off [default: 60].
    #[arg(long, value_name = "SECS")]
    pub template_refresh: Option<u64>,
    /// Resend IPFIX / v9 templates every N datagrams, 0 = off [default: 100].
    #[arg(long, value_name = "N")]
    pub template_refresh_packets: Option<u32>,
    /// Most IPFIX / v9 datagrams per second per collector [default: 2000].
    #[arg(long, value_name = "N")]
    pub export_rate: Option<u32>,
    /// TOML file with the same settings (snake_case keys); flags override it.
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl Args {
    fn into_settings(self) -> Result<Settings, crate::config::ConfigError> {
        let file = match &self.config {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        };
        let flags = FileConfig {
            interface: (!self.interface.is_empty()).then_some(self.interface),
            read: self.read,
            filter: self.filter,
            snaplen: self.snaplen,
            buffer_size: self.buffer_size,
            promisc: self.no_promisc.then_some(false),
            json: self.json,
            stats_json: self.stats_json,
            idle_timeout: self.idle_timeout,
            active_timeout: self.active_timeout,
            max_flows: self.max_flows,
            tunnels: self.tunnels,
            flow_sampling: self.flow_sampling,
            ipfix: (!self.ipfix.is_empty()).then_some(self.ipfix),
            netflow_v9: (!self.netflow_v9.is_empty()).then_some(self.netflow_v9),
            observation_domain: self.observation_domain,
            template_refresh: self.template_refresh,
            template_refresh_packets: self.template_refresh_packets,
            export_rate: self.export_rate,
        };
        Settings::resolve(flags, file)
    }
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("mirrorflow: {message}");
    ExitCode::from(code)
}

/// Entry point: parse, validate, run; a one-line message and exit code 2 for usage errors,
/// 1 for runtime failures.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let settings = match args.into_settings() {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, shutdown.clone()) {
            return fail(1, format!("cannot install signal handler: {e}"));
        }
    }
    let mut sinks = Fanout::new();
    if let Some(path) = &settings.json {
        match JsonSink::create(path) {
            Ok(s) => sinks.add(Box::new(s), WhenFull::Block, 64),
            Err(e) => return fail(1, e),
        }
    }
    let live = matches!(settings.pipeline.source, SourceSpec::Live(_));
    // A file can wait for a slow collector; live capture cannot, so there the newest batch is
    // dropped (and counted) when a collector's queue is full.
    let network_policy = if live {
        WhenFull::DropNewest
    } else {
        WhenFull::Block
    };
    for nf in &settings.netflow {
        match NetflowSink::new(nf.clone()) {
            Ok(s) => sinks.add(Box::new(s), network_policy, 64),
            Err(e) => return fail(2, e),
        }
    }
    let quiet = !sinks.is_empty();
    let report = match pipeline::run(&settings.pipeline, sinks, shutdown, |r: &Report| {
        if !quiet {
            println!("{}", r.summary_line());
        }
    }) {
        Ok(r) => r,
        // A filter that does not compile is a usage error.
        Err(e @ crate::capture::CaptureError::Filter { .. }) => return fail(2, e),
        Err(e) => return fail(1, e),
    };
    if !quiet && !live {
        println!("{}", report.summary_line());
    }
    if let Some(path) = &settings.stats_json {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default() + "\n";
        let written = if path.as_os_str() == "-" {
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())
        } else {
            std::fs::write(path, text)
        };
        if let Err(e) = written {
            return fail(1, format!("{}: {e}", path.display()));
        }
    }
    let mut code = ExitCode::SUCCESS;
    for e in &report.source_errors {
        code = fail(1, e);
    }
    for s in &report.sinks {
        if let Some(e) = &s.error {
            code = fail(
                1,
                format!("{e} ({} records not written)", s.records_dropped),
            );
        }
    }
    code
}
