//! Settings: command-line flags ([`crate::cli::Args`]) over an optional TOML file, validated
//! into the [`Settings`] the probe runs with.

use std::path::PathBuf;

use serde::Deserialize;

use crate::capture::LiveConfig;
use crate::decode::{Decoder, TunnelMode};
use crate::export::NetflowConfig;
use crate::flow::CacheConfig;
use crate::pipeline::{PipelineConfig, SourceSpec};

/// Usage and configuration errors (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}", path = .path.display())]
    File { path: PathBuf, message: String },
    #[error("give either --interface or --read (not both, not neither)")]
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
}

pub const DEFAULT_SNAPLEN: u32 = 262_144;
pub const DEFAULT_BUFFER_SIZE: u32 = 32 << 20;
pub const DEFAULT_IDLE_TIMEOUT: f64 = 15.0;
pub const DEFAULT_ACTIVE_TIMEOUT: f64 = 60.0;
pub const DEFAULT_MAX_FLOWS: usize = 1_000_000;
pub const DEFAULT_OBSERVATION_DOMAIN: u32 = 1;
pub const DEFAULT_TEMPLATE_REFRESH: u64 = 60;
pub const DEFAULT_TEMPLATE_REFRESH_PACKETS: u32 = 100;

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

impl Settings {
    /// Flags (`f`) win over the file (`c`).
    pub fn resolve(f: FileConfig, c: FileConfig) -> Result<Settings, ConfigError> {
        let interfaces = f.interface.filter(|v| !v.is_empty()).or(c.interface);
        let read = f.read.or(c.read);
        let source = match (interfaces, read) {
            (Some(i), None) if !i.is_empty() => SourceSpec::Live(i),
            (None, Some(r)) => SourceSpec::File(r),
            _ => return Err(ConfigError::Source),
        };
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
                    sampling_interval: flow_sampling,
                    ..NetflowConfig::new(version, host, port)
                });
            }
        }
        Ok(Settings {
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
                packet_sampling: None,
                counter_interval_ns: 1_000_000_000,
            },
            json: f.json.or(c.json),
            stats_json: f.stats_json.or(c.stats_json),
            netflow,
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
    }
}
