//! Metrics settings: the `--metrics-*` and `--top-talkers` flags, validated.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::traffic::{Net, DEFAULT_INTERNAL_NETS};
use crate::config::ConfigError;

/// Default number of top talkers exported.
pub const DEFAULT_TOP_TALKERS: usize = 20;
/// Default cap on distinct `port` label values (the rest share `other`).
pub const DEFAULT_MAX_PORTS: usize = 64;
/// Default cap on distinct `in_if` label values (the rest share `other`).
pub const DEFAULT_MAX_INTERFACES: usize = 8;
/// Sliding window of the top talkers, packet time.
pub const TOP_TALKERS_WINDOW_NS: u64 = 60_000_000_000;
/// Upper limits of the caps: beyond them a label set is not "bounded" in any useful sense.
pub const MAX_TOP_TALKERS: usize = 1000;
pub const MAX_PORTS_LIMIT: usize = 4096;
pub const MAX_INTERFACES_LIMIT: usize = 256;

/// Validated metrics settings.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsConfig {
    /// Where `/metrics` is served.
    pub listen: SocketAddr,
    /// Top talkers exported (0: none).
    pub top_talkers: usize,
    pub top_talkers_window_ns: u64,
    /// Distinct `port` label values before `other`.
    pub max_ports: usize,
    /// Distinct `in_if` label values before `other`.
    pub max_interfaces: usize,
    /// Networks whose addresses are "internal" for the `direction` label.
    pub internal_nets: Vec<Net>,
    /// Label values for interface numbers and port indexes (live ifindex → interface name).
    pub names: BTreeMap<u32, String>,
}

/// The raw metrics flags and config keys.
#[derive(Clone, Debug, Default)]
pub struct MetricsFlags {
    pub listen: Option<String>,
    pub top_talkers: Option<usize>,
    pub max_ports: Option<usize>,
    pub max_interfaces: Option<usize>,
    pub internal_nets: Option<Vec<String>>,
}

fn value(flag: &'static str, message: String) -> ConfigError {
    ConfigError::Value { flag, message }
}

impl MetricsConfig {
    /// Validates the flags; `None` without `--metrics-listen` (the other flags need it).
    pub fn resolve(f: MetricsFlags) -> Result<Option<MetricsConfig>, ConfigError> {
        let Some(listen) = f.listen else {
            let given = [
                ("top-talkers", f.top_talkers.is_some()),
                ("metrics-max-ports", f.max_ports.is_some()),
                ("metrics-max-interfaces", f.max_interfaces.is_some()),
                ("metrics-internal-nets", f.internal_nets.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
                return Err(value(flag, "needs --metrics-listen".into()));
            }
            return Ok(None);
        };
        let listen: SocketAddr = listen.parse().map_err(|_| {
            value(
                "metrics-listen",
                format!("{listen:?}: expected ADDR:PORT, e.g. 127.0.0.1:9464 or [::]:9464"),
            )
        })?;
        let bounded = |flag: &'static str, v: Option<usize>, default: usize, max: usize| {
            let v = v.unwrap_or(default);
            if v > max {
                return Err(value(flag, format!("{v} is outside 0..={max}")));
            }
            Ok(v)
        };
        let top_talkers = bounded(
            "top-talkers",
            f.top_talkers,
            DEFAULT_TOP_TALKERS,
            MAX_TOP_TALKERS,
        )?;
        let max_ports = bounded(
            "metrics-max-ports",
            f.max_ports,
            DEFAULT_MAX_PORTS,
            MAX_PORTS_LIMIT,
        )?;
        let max_interfaces = bounded(
            "metrics-max-interfaces",
            f.max_interfaces,
            DEFAULT_MAX_INTERFACES,
            MAX_INTERFACES_LIMIT,
        )?;
        let nets: Vec<String> = match f.internal_nets {
            Some(v) => v,
            None => DEFAULT_INTERNAL_NETS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        let internal_nets = nets
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                Net::parse(s).ok_or_else(|| {
                    value(
                        "metrics-internal-nets",
                        format!("{s:?}: expected ADDR/LEN, e.g. 10.0.0.0/8 or fd00::/8"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(MetricsConfig {
            listen,
            top_talkers,
            top_talkers_window_ns: TOP_TALKERS_WINDOW_NS,
            max_ports,
            max_interfaces,
            internal_nets,
            names: BTreeMap::new(),
        }))
    }

    /// Most series `/metrics` can hold with this configuration, `sinks` sinks (the metrics
    /// sink included) and `interfaces` capture interfaces (a file counts as one).
    pub fn series_bound(&self, sinks: usize, interfaces: usize) -> usize {
        super::series_bound(
            self.max_interfaces,
            self.max_ports,
            self.top_talkers,
            sinks,
            interfaces,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(listen: &str) -> MetricsFlags {
        MetricsFlags {
            listen: Some(listen.into()),
            ..MetricsFlags::default()
        }
    }

    #[test]
    fn defaults_and_bounds() {
        let c = MetricsConfig::resolve(flags("127.0.0.1:9464"))
            .unwrap()
            .unwrap();
        assert_eq!((c.top_talkers, c.max_ports, c.max_interfaces), (20, 64, 8));
        assert_eq!(c.internal_nets.len(), DEFAULT_INTERNAL_NETS.len());
        assert!(MetricsConfig::resolve(MetricsFlags::default())
            .unwrap()
            .is_none());
    }

    #[test]
    fn bad_values() {
        let bad = |f: MetricsFlags| MetricsConfig::resolve(f).unwrap_err().to_string();
        assert!(bad(flags("localhost")).starts_with("--metrics-listen"));
        let e = bad(MetricsFlags {
            top_talkers: Some(5),
            ..MetricsFlags::default()
        });
        assert_eq!(e, "--top-talkers: needs --metrics-listen");
        let e = bad(MetricsFlags {
            max_ports: Some(100_000),
            ..flags("[::1]:0")
        });
        assert!(e.starts_with("--metrics-max-ports: 100000"), "{e}");
        let e = bad(MetricsFlags {
            internal_nets: Some(vec!["10.0.0.0/8".into(), "10.0.0.1".into()]),
            ..flags("[::1]:0")
        });
        assert!(e.starts_with("--metrics-internal-nets"), "{e}");
    }
}
