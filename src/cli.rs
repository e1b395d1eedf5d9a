//! Command line: raw flags (clap), kept apart from the validated [`Settings`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;

use crate::config::{FileConfig, Settings};
use crate::decode::TunnelMode;
use crate::export::{Fanout, JsonSink, NetflowSink, SflowSink, WhenFull};
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
    /// Most payload bytes per IPFIX / v9 datagram (512..=65507) [default: 1400].
    #[arg(long, value_name = "BYTES")]
    pub export_max_datagram: Option<usize>,
    /// IPFIX / v9 over UDP: hand runs of equal-length datagrams to the kernel in one send
    /// (Linux UDP segmentation offload); the datagrams on the wire are the same, but a
    /// capture on this host shows each run as one large packet.
    #[arg(long)]
    pub export_gso: bool,
    /// IPFIX transport: udp (paced datagrams) or tcp (a connection per collector,
    /// reconnected with backoff) [default: udp].
    #[arg(long, value_enum, value_name = "PROTO")]
    pub ipfix_transport: Option<crate::export::IpfixTransport>,
    /// IPFIX / v9 ifIndex for records whose ingress interface is unknown (never 0)
    /// [default: 1].
    #[arg(long, value_name = "N")]
    pub unknown_if_index: Option<u32>,
    /// Export sFlow v5 over UDP to this collector (repeatable; port 6343 when omitted).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub sflow: Vec<String>,
    /// sFlow packet sampling: 1 frame in N, at random (independent of --flow-sampling)
    /// [default: 400].
    #[arg(long, value_name = "N")]
    pub sflow_sampling: Option<u32>,
    /// Bytes of each sampled frame sent in sFlow flow samples [default: 128].
    #[arg(long, value_name = "BYTES")]
    pub sflow_header_bytes: Option<usize>,
    /// sFlow counter polling interval, 0 = only at the end [default: 20].
    #[arg(long, value_name = "SECS")]
    pub sflow_polling: Option<u64>,
    /// sFlow agent address [default: the source address of the route to the first
    /// collector].
    #[arg(long, value_name = "IP")]
    pub agent_address: Option<String>,
    /// sFlow sub-agent id [default: 0].
    #[arg(long, value_name = "N")]
    pub sub_agent_id: Option<u32>,
    /// Receive sFlow v5 from switches on ADDR:PORT (repeatable; IPv4 or [IPv6]); their flow
    /// samples feed the flow cache, their counters the metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub sflow_listen: Vec<String>,
    /// Multiply the packet and byte counts of flows from sFlow by their sampling rate
    /// (otherwise unscaled, with the rate announced in IPFIX / v9 sampling options).
    #[arg(long)]
    pub sflow_in_scale: bool,
    /// Serve Prometheus metrics on ADDR:PORT (`/metrics`, `/`, `/healthz`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,
    /// With -r and --metrics-listen: exit at the end of the file instead of serving on.
    #[arg(long)]
    pub exit_at_eof: bool,
    /// Replay a file at X times its recorded speed [default: as fast as possible].
    #[arg(long, value_name = "X")]
    pub replay_speed: Option<f64>,
    /// Top talkers (conversations by bytes over 60 s) in the metrics, 0 = none [default: 20].
    #[arg(long, value_name = "K")]
    pub top_talkers: Option<usize>,
    /// Distinct `port` label values in the metrics; the rest share `other` [default: 64].
    #[arg(long, value_name = "N")]
    pub metrics_max_ports: Option<usize>,
    /// Distinct `in_if` label values in the metrics; the rest share `other` [default: 8].
    #[arg(long, value_name = "N")]
    pub metrics_max_interfaces: Option<usize>,
    /// Internal networks for the `direction` label [default: RFC 1918, 100.64/10, loopback,
    /// link-local, fc00::/7].
    #[arg(long, value_name = "CIDR,…", value_delimiter = ',')]
    pub metrics_internal_nets: Vec<String>,
    /// Read VM ports and learned MACs from Open vSwitch (default socket
    /// /var/run/openvswitch/db.sock); flows are then attributed to VM ports.
    #[arg(long, value_name = "unix:PATH", num_args = 0..=1,
          default_missing_value = crate::ports::DEFAULT_OVSDB)]
    pub ovsdb: Option<String>,
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
            ovsdb: self.ovsdb,
            ports: None,
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
            export_max_datagram: self.export_max_datagram,
            export_gso: self.export_gso.then_some(true),
            ipfix_transport: self.ipfix_transport,
            unknown_if_index: self.unknown_if_index,
            sflow: (!self.sflow.is_empty()).then_some(self.sflow),
            sflow_sampling: self.sflow_sampling,
            sflow_header_bytes: self.sflow_header_bytes,
            sflow_polling: self.sflow_polling,
            agent_address: self.agent_address,
            sub_agent_id: self.sub_agent_id,
            sflow_listen: (!self.sflow_listen.is_empty()).then_some(self.sflow_listen),
            sflow_in_scale: self.sflow_in_scale.then_some(true),
            metrics_listen: self.metrics_listen,
            exit_at_eof: self.exit_at_eof.then_some(true),
            replay_speed: self.replay_speed,
            top_talkers: self.top_talkers,
            metrics_max_ports: self.metrics_max_ports,
            metrics_max_interfaces: self.metrics_max_interfaces,
            metrics_internal_nets: (!self.metrics_internal_nets.is_empty())
                .then_some(self.metrics_internal_nets),
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
    let mut settings = match args.into_settings() {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    // VM identity: loaded once before capture starts, then refreshed in the background until
    // `_port_refresh` is dropped at the end of main.
    let _port_refresh = settings.port_directory.clone().map(|cfg| {
        let (dir, handle) = crate::ports::PortDirectory::start(cfg);
        if let Some(e) = dir.stats().last_error {
            eprintln!("mirrorflow: port map: {e} (using the static ports meanwhile)");
        }
        settings.pipeline.ports = Some(dir.clone());
        (dir, handle)
    });
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, shutdown.clone()) {
            return fail(1, format!("cannot install signal handler: {e}"));
        }
    }
    let mut sinks = Fanout::new();
    if let Some(path) = &settings.json {
        match JsonSink::create(path, settings.pipeline.ports.as_ref()) {
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
            Ok(s) => sinks.add(
                Box::new(s.with_ports(settings.pipeline.ports.as_ref())),
                network_policy,
                64,
            ),
            Err(e) => return fail(2, e),
        }
    }
    let mut sflow = settings.sflow.clone();
    crate::export::sflow::fill_default_agent(&mut sflow);
    for cfg in sflow {
        let sink = SflowSink::new(cfg).with_ports(settings.pipeline.ports.as_ref());
        sinks.add(Box::new(sink), network_policy, 64);
    }
    let quiet = !sinks.is_empty();
    // Metrics last: the endpoint reads the live counts of every other sink.
    let metrics = match &settings.metrics {
        Some(m) => match crate::metrics::Metrics::start(m, &settings.pipeline, &mut sinks) {
            Ok(m) => Some(m),
            Err(e) => return fail(1, e),
        },
        None => None,
    };
    let report = match pipeline::run(&settings.pipeline, sinks, shutdown.clone(), |r: &Report| {
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
            code = match s.records_dropped {
                0 => fail(1, e),
                n => fail(1, format!("{e} ({n} records not written)")),
            };
        }
    }
    // After a file, /metrics stays up (to be scraped and watched) until SIGINT or SIGTERM.
    if let Some(m) = &metrics {
        if !live && !settings.exit_at_eof {
            m.serve_until(&shutdown);
        }
    }
    code
}
