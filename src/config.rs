//! Settings: command-line flags ([`crate::cli::Args`]) over an optional TOML file, validated
//! into the [`Settings`] the probe runs with.

use std::path::PathBuf;

use serde::Deserialize;

use crate::capture::LiveConfig;
use crate::decode::{Decoder, TunnelMode};
use crate::export::sflow::PortSource;
use crate::export::{NetflowConfig, SflowConfig};
use crate::flow::CacheConfig;
use crate::pipeline::{PipelineConfig, SourceSpec};
use crate::sample::SamplingConfig;
use crate::sflow_in::{Limits, SflowIn, SflowInConfig};

/// Usage and configuration errors (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}", path = .path.display())]
    File { path: PathBuf, message: String },
    #[error("give --interface and/or --sflow-listen, or --read alone")]
    Source,
    #[error("--{flag}: {message}")]
    Value { flag: &'static str, message: String },
}

/// The TOML file: the same settings as the flags, with the flags' long names (snake_case).
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub interface: Option<Vec<String>>,
    pub read: Option<PathBuf>,
    pub filter: Option<String>,
    pub snaplen: Option<u32>,
    pub buffer_size: Option<u32>,
    pub promisc: Option<bool>,
    pub json: Option<String>,
    pub stats_json: Option<PathBuf>,
    pub idle_timeout: Option<f64>,
    pub active_timeout: Option<f64>,
    pub max_flows: Option<usize>,
    pub tunnels: Option<TunnelMode>,
    pub flow_sampling: Option<u32>,
    pub ipfix: Option<Vec<String>>,
    pub netflow_v9: Option<Vec<String>>,
    pub observation_domain: Option<u32>,
    pub template_refresh: Option<u64>,
    pub template_refresh_packets: Option<u32>,
    pub export_rate: Option<u32>,
    pub export_max_datagram: Option<usize>,
    pub export_gso: Option<bool>,
    pub ipfix_transport: Option<crate::export::IpfixTransport>,
    pub unknown_if_index: Option<u32>,
    /// `[[ports]]` tables: static VM identity (MACs → port index, name, VM).
    pub ports: Option<Vec<crate::ports::StaticPort>>,
    /// Open vSwitch database to read ports and learned MACs from (`unix:PATH`).
    pub ovsdb: Option<String>,
    pub sflow: Option<Vec<String>>,
    pub sflow_sampling: Option<u32>,
    pub sflow_header_bytes: Option<usize>,
    pub sflow_polling: Option<u64>,
    pub agent_address: Option<String>,
    pub sub_agent_id: Option<u32>,
    // sFlow input (src/sflow_in).
    pub sflow_listen: Option<Vec<String>>,
    pub sflow_in_scale: Option<bool>,
    // Metrics (src/metrics) and replay pacing.
    pub metrics_listen: Option<String>,
    pub exit_at_eof: Option<bool>,
    pub replay_speed: Option<f64>,
    pub top_talkers: Option<usize>,
    pub metrics_max_ports: Option<usize>,
    pub metrics_max_interfaces: Option<usize>,
    pub metrics_internal_nets: Option<Vec<String>>,
}

impl FileConfig {
    pub fn load(path: &std::path::Path) -> Result<FileConfig, ConfigError> {
        let err = |message: String| ConfigError::File {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        toml::from_str(&text).map_err(|e| err(e.message().to_string()))
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub pipeline: PipelineConfig,
    pub json: Option<String>,
    pub stats_json: Option<PathBuf>,
    /// One per IPFIX / NetFlow v9 collector.
    pub netflow: Vec<NetflowConfig>,
    /// One per sFlow collector.
    pub sflow: Vec<SflowConfig>,
    /// Prometheus endpoint, when `--metrics-listen` is given.
    pub metrics: Option<crate::metrics::MetricsConfig>,
    /// With a file and metrics: exit at the end of the file instead of serving on.
    pub exit_at_eof: bool,
    /// VM identity sources, when `[[ports]]` or `--ovsdb` are given.
    pub port_directory: Option<crate::ports::DirectoryConfig>,
}

pub const DEFAULT_SNAPLEN: u32 = 262_144;
pub const DEFAULT_BUFFER_SIZE: u32 = 32 << 20;
pub const DEFAULT_IDLE_TIMEOUT: f64 = 15.0;
pub const DEFAULT_ACTIVE_TIMEOUT: f64 = 60.0;
pub const DEFAULT_MAX_FLOWS: usize = 1_000_000;
pub const DEFAULT_OBSERVATION_DOMAIN: u32 = 1;
pub const DEFAULT_TEMPLATE_REFRESH: u64 = 60;
pub const DEFAULT_TEMPLATE_REFRESH_PACKETS: u32 = 100;

/// The port directory's configuration from `[[ports]]` and `--ovsdb`; `None` when neither is
/// given (flows are then attributed to the capture interface).
fn port_directory(
    ports: Option<Vec<crate::ports::StaticPort>>,
    ovsdb: Option<String>,
    unknown_index: u32,
) -> Result<Option<crate::ports::DirectoryConfig>, ConfigError> {
    use crate::ports::{parse_ovsdb_target, validate, DirectoryConfig, OvsConfig};
    if ports.is_none() && ovsdb.is_none() {
        return Ok(None);
    }
    let static_ports =
        validate(&ports.unwrap_or_default(), unknown_index).map_err(|e| ConfigError::Value {
            flag: "config [[ports]]",
            message: e.to_string(),
        })?;
    let ovs = match ovsdb {
        None => None,
        Some(t) => Some(OvsConfig::new(parse_ovsdb_target(&t).map_err(|e| {
            ConfigError::Value {
                flag: "ovsdb",
                message: e.to_string(),
            }
        })?)),
    };
    Ok(Some(DirectoryConfig {
        static_ports,
        ovs,
        ..DirectoryConfig::new(unknown_index)
    }))
}

fn seconds(flag: &'static str, v: f64) -> Result<u64, ConfigError> {
    if !(v.is_finite() && v > 0.0 && v <= 86_400.0 * 365.0) {
        return Err(ConfigError::Value {
            flag,
            message: format!("{v} is not a number of seconds between 0 and one year"),
        });
    }
    Ok((v * 1e9) as u64)
}

/// `HOST:PORT`, `[V6ADDR]:PORT`; port nonzero.
fn collector(flag: &'static str, s: &str) -> Result<(String, u16), ConfigError> {
    let err = |message: &str| ConfigError::Value {
        flag,
        message: format!("{s:?}: {message}"),
    };
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| err("expected HOST:PORT"))?;
    let host = match host.strip_prefix('[') {
        Some(h) => h
            .strip_suffix(']')
            .filter(|h| h.contains(':'))
            .ok_or_else(|| err("expected [IPV6]:PORT"))?,
        None if host.contains(':') => return Err(err("write an IPv6 host as [ADDR]:PORT")),
        None => host,
    };
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(err("expected HOST:PORT"));
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok((host.to_string(), p)),
        _ => Err(err("the port must be a number in 1..=65535")),
    }
}

/// `HOST:PORT`, `[V6ADDR]:PORT`, or a bare `HOST` / `[V6ADDR]` / `V6ADDR` with the sFlow
/// port 6343.
fn sflow_collector(s: &str) -> Result<(String, u16), ConfigError> {
    let bare = if let Some(h) = s.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(h)
    } else if s.parse::<std::net::Ipv6Addr>().is_ok() || !s.contains(':') {
        Some(s)
    } else {
        None
    };
    match bare {
        Some(h) if !h.is_empty() && !h.chars().any(char::is_whitespace) => {
            Ok((h.to_string(), SflowConfig::DEFAULT_PORT))
        }
        Some(_) => Err(ConfigError::Value {
            flag: "sflow",
            message: format!("{s:?}: expected HOST[:PORT]"),
        }),
        None => collector("sflow", s),
    }
}

/// `--sflow-listen` addresses: `ADDR:PORT` or `[V6ADDR]:PORT`, numeric.
fn sflow_listen(v: Option<Vec<String>>) -> Result<Vec<std::net::SocketAddr>, ConfigError> {
    v.unwrap_or_default()
        .iter()
        .map(|s| {
            s.trim().parse().map_err(|_| ConfigError::Value {
                flag: "sflow-listen",
                message: format!("{s:?}: expected ADDR:PORT, e.g. 0.0.0.0:6343 or [::]:6343"),
            })
        })
        .collect()
}

/// The `--sflow` collectors as relay targets of the sFlow input. A collector whose name
/// does not resolve is left out of the relay with a one-line warning (its sFlow sink counts
/// its own errors).
fn relay_targets(collectors: &[SflowConfig]) -> Vec<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    collectors
        .iter()
        .filter_map(|c| {
            let addr = (c.host.as_str(), c.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next());
            if addr.is_none() {
                eprintln!(
                    "mirrorflow: sFlow relay to {}:{}: cannot resolve; not relayed",
                    c.host, c.port
                );
            }
            addr
        })
        .collect()
}

/// The sFlow collectors and the packet sampling they need (none without collectors).
fn sflow_settings(
    f: SflowFlags,
    c: SflowFlags,
    source: &SourceSpec,
) -> Result<(Vec<SflowConfig>, Option<SamplingConfig>), ConfigError> {
    let value = |flag, message| ConfigError::Value { flag, message };
    let rate = f
        .sampling
        .or(c.sampling)
        .unwrap_or(SflowConfig::DEFAULT_SAMPLING);
    if !(1..=1_000_000).contains(&rate) {
        return Err(value(
            "sflow-sampling",
            format!("{rate} is outside 1..=1000000"),
        ));
    }
    let header_bytes = f
        .header_bytes
        .or(c.header_bytes)
        .unwrap_or(SflowConfig::DEFAULT_HEADER_BYTES);
    if !(16..=1024).contains(&header_bytes) {
        return Err(value(
            "sflow-header-bytes",
            format!("{header_bytes} is outside 16..=1024"),
        ));
    }
    let polling = f
        .polling
        .or(c.polling)
        .unwrap_or(SflowConfig::DEFAULT_POLLING_SECS);
    if polling > 86_400 {
        return Err(value(
            "sflow-polling",
            format!("{polling} s is outside 0..=86400 (0 = only the final counters)"),
        ));
    }
    let agent = match f.agent.or(c.agent) {
        Some(a) => Some(a.trim().parse::<std::net::IpAddr>().map_err(|_| {
            value(
                "agent-address",
                format!("{a:?} is not an IPv4 or IPv6 address"),
            )
        })?),
        None => None,
    };
    let ports = match source {
        SourceSpec::Live(_) => PortSource::Live,
        SourceSpec::File(path) => PortSource::file(path),
    };
    let mut out = Vec::new();
    for s in f
        .collectors
        .filter(|v| !v.is_empty())
        .or(c.collectors)
        .unwrap_or_default()
    {
        let (host, port) = sflow_collector(&s)?;
        out.push(SflowConfig {
            agent,
            sub_agent_id: f.sub_agent_id.or(c.sub_agent_id).unwrap_or(0),
            polling_secs: polling,
            ..SflowConfig::new(host, port, ports.clone())
        });
    }
    let sampling = (!out.is_empty()).then_some(SamplingConfig { rate, header_bytes });
    Ok((out, sampling))
}

/// The sFlow settings of one side (flags or file).
struct SflowFlags {
    collectors: Option<Vec<String>>,
    sampling: Option<u32>,
    header_bytes: Option<usize>,
    polling: Option<u64>,
    agent: Option<String>,
    sub_agent_id: Option<u32>,
}

impl SflowFlags {
    fn take(f: &mut FileConfig) -> SflowFlags {
        SflowFlags {
            collectors: f.sflow.take(),
            sampling: f.sflow_sampling.take(),
            header_bytes: f.sflow_header_bytes.take(),
            polling: f.sflow_polling.take(),
            agent: f.agent_address.take(),
            sub_agent_id: f.sub_agent_id.take(),
        }
    }
}

impl Settings {
    /// Flags (`f`) win over the file (`c`).
    pub fn resolve(mut f: FileConfig, mut c: FileConfig) -> Result<Settings, ConfigError> {
        let (sflow_f, sflow_c) = (SflowFlags::take(&mut f), SflowFlags::take(&mut c));
        let interfaces = f.interface.filter(|v| !v.is_empty()).or(c.interface);
        let read = f.read.or(c.read);
        let sflow_listen =
            sflow_listen(f.sflow_listen.filter(|v| !v.is_empty()).or(c.sflow_listen))?;
        let source = match (interfaces, read, sflow_listen.is_empty()) {
            (Some(i), None, _) if !i.is_empty() => SourceSpec::Live(i),
            (None, None, false) => SourceSpec::Live(Vec::new()),
            (None, Some(r), true) => SourceSpec::File(r),
            _ => return Err(ConfigError::Source),
        };
        let sflow_in_scale = f.sflow_in_scale.or(c.sflow_in_scale).unwrap_or(false);
        let snaplen = f.snaplen.or(c.snaplen).unwrap_or(DEFAULT_SNAPLEN);
        if !(64..=262_144).contains(&snaplen) {
            return Err(ConfigError::Value {
                flag: "snaplen",
                message: format!("{snaplen} is outside 64..=262144"),
            });
        }
        let buffer_size = f
            .buffer_size
            .or(c.buffer_size)
            .unwrap_or(DEFAULT_BUFFER_SIZE);
        if buffer_size < 65_536 {
            return Err(ConfigError::Value {
                flag: "buffer-size",
                message: format!("{buffer_size} bytes is below the 65536-byte minimum"),
            });
        }
        let max_flows = f.max_flows.or(c.max_flows).unwrap_or(DEFAULT_MAX_FLOWS);
        if max_flows == 0 || max_flows > 100_000_000 {
            return Err(ConfigError::Value {
                flag: "max-flows",
                message: format!("{max_flows} is outside 1..=100000000"),
            });
        }
        let filter = f.filter.or(c.filter).filter(|s| !s.trim().is_empty());
        let cache = CacheConfig {
            idle_timeout_ns: seconds(
                "idle-timeout",
                f.idle_timeout
                    .or(c.idle_timeout)
                    .unwrap_or(DEFAULT_IDLE_TIMEOUT),
            )?,
            active_timeout_ns: seconds(
                "active-timeout",
                f.active_timeout
                    .or(c.active_timeout)
                    .unwrap_or(DEFAULT_ACTIVE_TIMEOUT),
            )?,
            max_flows,
        };
        let export_rate = f
            .export_rate
            .or(c.export_rate)
            .unwrap_or(NetflowConfig::DEFAULT_EXPORT_RATE);
        if !(1..=1_000_000).contains(&export_rate) {
            return Err(ConfigError::Value {
                flag: "export-rate",
                message: format!("{export_rate} datagrams/s is outside 1..=1000000"),
            });
        }
        let max_datagram = f
            .export_max_datagram
            .or(c.export_max_datagram)
            .unwrap_or(NetflowConfig::DEFAULT_MAX_DATAGRAM);
        if !(512..=NetflowConfig::MAX_DATAGRAM).contains(&max_datagram) {
            return Err(ConfigError::Value {
                flag: "export-max-datagram",
                message: format!(
                    "{max_datagram} bytes is outside 512..={}",
                    NetflowConfig::MAX_DATAGRAM
                ),
            });
        }
        let template_refresh = f
            .template_refresh
            .or(c.template_refresh)
            .unwrap_or(DEFAULT_TEMPLATE_REFRESH);
        if template_refresh > 86_400 {
            return Err(ConfigError::Value {
                flag: "template-refresh",
                message: format!("{template_refresh} s is outside 0..=86400 (0 = off)"),
            });
        }
        let template_refresh_packets = f
            .template_refresh_packets
            .or(c.template_refresh_packets)
            .unwrap_or(DEFAULT_TEMPLATE_REFRESH_PACKETS);
        if template_refresh == 0 && template_refresh_packets == 0 {
            // Over UDP templates must be resent periodically (RFC 7011 §8.4).
            return Err(ConfigError::Value {
                flag: "template-refresh",
                message: "and --template-refresh-packets cannot both be 0 over UDP".into(),
            });
        }
        let flow_sampling = f.flow_sampling.or(c.flow_sampling).unwrap_or(1);
        if !(1..=1_000_000).contains(&flow_sampling) {
            return Err(ConfigError::Value {
                flag: "flow-sampling",
                message: format!("{flow_sampling} is outside 1..=1000000"),
            });
        }
        let unknown_if_index = f
            .unknown_if_index
            .or(c.unknown_if_index)
            .unwrap_or(NetflowConfig::DEFAULT_UNKNOWN_IF_INDEX);
        if unknown_if_index == 0 {
            return Err(ConfigError::Value {
                flag: "unknown-if-index",
                message: "0 is not a valid ifIndex (use 1 or more)".into(),
            });
        }
        let ipfix_transport = f.ipfix_transport.or(c.ipfix_transport).unwrap_or_default();
        let interfaces = crate::export::capture_interfaces(&source);
        let mut netflow = Vec::new();
        for (flag, version, list) in [
            (
                "ipfix",
                mirrorflow_ipfix::Version::Ipfix,
                f.ipfix.filter(|v| !v.is_empty()).or(c.ipfix),
            ),
            (
                "netflow-v9",
                mirrorflow_ipfix::Version::NetflowV9,
                f.netflow_v9.filter(|v| !v.is_empty()).or(c.netflow_v9),
            ),
        ] {
            for s in list.unwrap_or_default() {
                let (host, port) = collector(flag, &s)?;
                netflow.push(NetflowConfig {
                    observation_domain: f
                        .observation_domain
                        .or(c.observation_domain)
                        .unwrap_or(DEFAULT_OBSERVATION_DOMAIN),
                    template_refresh_secs: template_refresh,
                    template_refresh_packets,
                    export_rate,
                    max_datagram,
                    gso: f.export_gso.or(c.export_gso).unwrap_or(false),
                    sampling_interval: flow_sampling,
                    transport: ipfix_transport,
                    unknown_if_index,
                    interfaces: interfaces.clone(),
                    ..NetflowConfig::new(version, host, port)
                });
            }
        }
        let (sflow, packet_sampling) = sflow_settings(sflow_f, sflow_c, &source)?;
        let metrics = crate::metrics::MetricsConfig::resolve(crate::metrics::MetricsFlags {
            listen: f.metrics_listen.or(c.metrics_listen),
            top_talkers: f.top_talkers.or(c.top_talkers),
            max_ports: f.metrics_max_ports.or(c.metrics_max_ports),
            max_interfaces: f.metrics_max_interfaces.or(c.metrics_max_interfaces),
            internal_nets: f.metrics_internal_nets.or(c.metrics_internal_nets),
        })?;
        let replay_speed = f.replay_speed.or(c.replay_speed);
        if let Some(x) = replay_speed {
            let message = if matches!(source, SourceSpec::Live(_)) {
                "needs --read".to_string()
            } else if !(x.is_finite() && x > 0.0 && x <= 1e6) {
                format!("{x} is outside (0, 1000000]")
            } else {
                String::new()
            };
            if !message.is_empty() {
                let flag = "replay-speed";
                return Err(ConfigError::Value { flag, message });
            }
        }
        let port_directory =
            port_directory(f.ports.or(c.ports), f.ovsdb.or(c.ovsdb), unknown_if_index)?;
        Ok(Settings {
            port_directory,
            pipeline: PipelineConfig {
                source,
                decoder: Decoder::new(f.tunnels.or(c.tunnels).unwrap_or_default()),
                cache,
                live: LiveConfig {
                    snaplen,
                    buffer_size,
                    promisc: f.promisc.or(c.promisc).unwrap_or(true),
                    filter: filter.clone(),
                    read_timeout_ms: 100,
                },
                filter,
                flow_sampling,
                packet_sampling,
                counter_interval_ns: 1_000_000_000,
                replay_speed,
                ports: None,
                read_inline: None,
                sflow_in: (!sflow_listen.is_empty()).then(|| {
                    SflowIn::new(SflowInConfig {
                        listen: sflow_listen,
                        scale: sflow_in_scale,
                        relay: relay_targets(&sflow),
                        limits: Limits::default(),
                    })
                }),
            },
            json: f.json.or(c.json),
            stats_json: f.stats_json.or(c.stats_json),
            netflow,
            sflow,
            metrics,
            exit_at_eof: f.exit_at_eof.or(c.exit_at_eof).unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(read: &str) -> FileConfig {
        FileConfig {
            read: Some(read.into()),
            ..FileConfig::default()
        }
    }

    #[test]
    fn flags_override_the_file() {
        let flags = FileConfig {
            idle_timeout: Some(5.0),
            ..file("a.pcap")
        };
        let conf = FileConfig {
            idle_timeout: Some(30.0),
            max_flows: Some(10),
            ..FileConfig::default()
        };
        let s = Settings::resolve(flags, conf).unwrap();
        assert_eq!(s.pipeline.cache.idle_timeout_ns, 5_000_000_000);
        assert_eq!(s.pipeline.cache.max_flows, 10);
        assert_eq!(s.pipeline.source, SourceSpec::File("a.pcap".into()));
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let e = toml::from_str::<FileConfig>("idle_timout = 3").unwrap_err();
        assert!(e.message().contains("unknown field"), "{e}");
        let ok: FileConfig = toml::from_str("tunnels = \"outer\"\nmax_flows = 5").unwrap();
        assert_eq!(ok.tunnels, Some(TunnelMode::Outer));
    }

    #[test]
    fn bad_values_are_rejected() {
        let bad = |f: FileConfig| Settings::resolve(f, FileConfig::default()).unwrap_err();
        assert!(matches!(bad(FileConfig::default()), ConfigError::Source));
        let both = FileConfig {
            interface: Some(vec!["eth0".into()]),
            ..file("x")
        };
        assert!(matches!(bad(both), ConfigError::Source));
        let zero = FileConfig {
            idle_timeout: Some(0.0),
            ..file("x")
        };
        assert!(bad(zero).to_string().starts_with("--idle-timeout"));
        let flows = FileConfig {
            max_flows: Some(0),
            ..file("x")
        };
        assert!(bad(flows).to_string().starts_with("--max-flows"));
        for (ipfix, rate) in [("h", 1), ("h:0", 1), (":9", 1), ("::1:9", 1), ("h:9", 0)] {
            let f = FileConfig {
                ipfix: Some(vec![ipfix.into()]),
                export_rate: Some(rate),
                ..file("x")
            };
            assert!(
                matches!(bad(f), ConfigError::Value { .. }),
                "{ipfix} {rate}"
            );
        }
    }

    #[test]
    fn collectors() {
        let flags = FileConfig {
            ipfix: Some(vec!["127.0.0.1:4739".into(), "[::1]:4740".into()]),
            observation_domain: Some(7),
            ..file("a.pcap")
        };
        let conf: FileConfig =
            toml::from_str("netflow_v9 = [\"collector.example:2055\"]\nexport_rate = 50").unwrap();
        let s = Settings::resolve(flags, conf).unwrap();
        let got: Vec<_> = s
            .netflow
            .iter()
            .map(|n| (n.name(), n.observation_domain, n.export_rate))
            .collect();
        assert_eq!(
            got,
            [
                ("ipfix:127.0.0.1:4739".to_string(), 7, 50),
                ("ipfix:[::1]:4740".to_string(), 7, 50),
                ("netflow-v9:collector.example:2055".to_string(), 7, 50),
            ]
        );
        assert_eq!(s.netflow[0].template_refresh_secs, 60);
        assert_eq!(s.netflow[0].template_refresh_packets, 100);
        assert_eq!(s.netflow[0].max_datagram, 1400);
        let conf: FileConfig =
            toml::from_str("ipfix = [\"h:4739\"]\nexport_max_datagram = 8960").unwrap();
        let s = Settings::resolve(file("a.pcap"), conf).unwrap();
        assert_eq!(s.netflow[0].max_datagram, 8960);
        for bytes in [511, 65_508] {
            let f = FileConfig {
                ipfix: Some(vec!["h:4739".into()]),
                export_max_datagram: Some(bytes),
                ..file("x")
            };
            let e = Settings::resolve(f, FileConfig::default())
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("--export-max-datagram: "), "{e}");
        }
    }

    #[test]
    fn ipfix_transport_and_unknown_interface() {
        let conf: FileConfig =
            toml::from_str("ipfix = [\"h:4739\"]\nipfix_transport = \"tcp\"\nunknown_if_index = 9")
                .unwrap();
        let s = Settings::resolve(file("dir/t.pcap"), conf).unwrap();
        let nf = &s.netflow[0];
        assert_eq!(
            (nf.name().as_str(), nf.unknown_if_index),
            ("ipfix-tcp:h:4739", 9)
        );
        assert_eq!(nf.interfaces.len(), 1);
        assert_eq!(
            (nf.interfaces[0].index, nf.interfaces[0].name.as_str()),
            (1, "t.pcap")
        );
        let zero = FileConfig {
            ipfix: Some(vec!["h:4739".into()]),
            unknown_if_index: Some(0),
            ..file("x")
        };
        let e = Settings::resolve(zero, FileConfig::default()).unwrap_err();
        assert!(e.to_string().starts_with("--unknown-if-index"), "{e}");
        assert!(toml::from_str::<FileConfig>("ipfix_transport = \"sctp\"").is_err());
    }

    #[test]
    fn sflow_collectors_and_sampling() {
        let none = Settings::resolve(file("a.pcap"), FileConfig::default()).unwrap();
        assert!(none.sflow.is_empty());
        assert_eq!(none.pipeline.packet_sampling, None);
        let flags = FileConfig {
            sflow: Some(vec![
                "127.0.0.1".into(),
                "[::1]:9999".into(),
                "::1".into(),
                "[::1]".into(),
                "collector.example:6344".into(),
            ]),
            sflow_header_bytes: Some(64),
            agent_address: Some("192.0.2.1".into()),
            ..file("/tmp/t.pcap")
        };
        let conf: FileConfig =
            toml::from_str("sflow_sampling = 64\nsflow_polling = 0\nsub_agent_id = 7").unwrap();
        let s = Settings::resolve(flags, conf).unwrap();
        let got: Vec<_> = s.sflow.iter().map(|c| (c.host.as_str(), c.port)).collect();
        assert_eq!(
            got,
            [
                ("127.0.0.1", 6343),
                ("::1", 9999),
                ("::1", 6343),
                ("::1", 6343),
                ("collector.example", 6344)
            ]
        );
        let c = &s.sflow[0];
        assert_eq!((c.polling_secs, c.sub_agent_id), (0, 7));
        assert_eq!(c.agent, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(c.ports, PortSource::File("t.pcap".into()));
        assert_eq!(
            s.pipeline.packet_sampling,
            Some(SamplingConfig {
                rate: 64,
                header_bytes: 64
            })
        );
        let live = FileConfig {
            interface: Some(vec!["lo".into()]),
            sflow: Some(vec!["127.0.0.1".into()]),
            ..FileConfig::default()
        };
        let s = Settings::resolve(live, FileConfig::default()).unwrap();
        assert_eq!(s.sflow[0].ports, PortSource::Live);
        assert_eq!(s.sflow[0].polling_secs, 20);
        assert_eq!(s.pipeline.packet_sampling.unwrap().rate, 400);
        assert_eq!(s.pipeline.packet_sampling.unwrap().header_bytes, 128);
    }

    #[test]
    fn bad_sflow_values_are_rejected() {
        let bad = |f: FileConfig| {
            let e = Settings::resolve(f, FileConfig::default()).unwrap_err();
            assert!(matches!(e, ConfigError::Value { .. }), "{e}");
            e.to_string()
        };
        let with = |f: FileConfig| FileConfig {
            sflow: Some(vec!["127.0.0.1".into()]),
            ..f
        };
        for s in ["", "h:0", "h:x", "[::1", "a b"] {
            let f = FileConfig {
                sflow: Some(vec![s.into()]),
                ..file("x")
            };
            assert!(bad(f).starts_with("--sflow: "), "{s:?}");
        }
        let e = bad(with(FileConfig {
            sflow_sampling: Some(0),
            ..file("x")
        }));
        assert!(e.starts_with("--sflow-sampling"), "{e}");
        let e = bad(with(FileConfig {
            sflow_header_bytes: Some(8),
            ..file("x")
        }));
        assert!(e.starts_with("--sflow-header-bytes"), "{e}");
        let e = bad(with(FileConfig {
            sflow_polling: Some(100_000),
            ..file("x")
        }));
        assert!(e.starts_with("--sflow-polling"), "{e}");
        let e = bad(with(FileConfig {
            agent_address: Some("10.0.0".into()),
            ..file("x")
        }));
        assert!(e.starts_with("--agent-address"), "{e}");
    }
}
