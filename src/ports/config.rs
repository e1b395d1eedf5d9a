//! The static port map of the config file and the OVSDB socket setting.
//!
//! ```toml
//! unknown_if_index = 1          # catch-all for MACs of no known port (never 0)
//! ovsdb = "unix:/var/run/openvswitch/db.sock"
//!
//! [[ports]]
//! name = "vm1-eth0"
//! index = 10
//! macs = ["52:54:00:00:00:01"]
//! vm = "vm1"
//! ```

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Deserialize;

use super::{parse_mac, Mac, Port, PortConfigError, MAX_INDEX, MAX_MACS, MAX_PORTS};

/// The socket Open vSwitch's packages create (`ovsdb-server --remote=punix:...`).
pub const DEFAULT_OVSDB: &str = "unix:/var/run/openvswitch/db.sock";

/// One `[[ports]]` table of the config file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StaticPort {
    /// Interface name; an Open vSwitch interface of the same name is the same port.
    pub name: String,
    /// Port index exported for this port (1 ..= 0x3ffffffe, not the catch-all).
    pub index: u32,
    /// MAC addresses of the stations behind the port.
    #[serde(default)]
    pub macs: Vec<String>,
    /// VM name or id.
    #[serde(default)]
    pub vm: Option<String>,
}

/// A validated static map: ports with their MACs, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticPorts {
    pub ports: Vec<(Port, Vec<Mac>)>,
}

/// Checks the `[[ports]]` tables against each other and the catch-all index: names non-empty
/// and unique, indexes in 1 ..= 0x3ffffffe, unique and not the catch-all, MACs well-formed
/// station addresses claimed by one port only, at most [`MAX_PORTS`] ports and [`MAX_MACS`]
/// MACs in all.
pub fn validate(ports: &[StaticPort], unknown_index: u32) -> Result<StaticPorts, PortConfigError> {
    if unknown_index == 0 {
        return Err(PortConfigError::UnknownIndex(0, "must not be 0"));
    }
    if unknown_index > MAX_INDEX {
        return Err(PortConfigError::UnknownIndex(
            unknown_index,
            "must be at most 1073741822 (0x3ffffffe)",
        ));
    }
    if ports.len() > MAX_PORTS {
        return Err(PortConfigError::TooMany(ports.len(), MAX_PORTS));
    }
    let mut names = HashSet::new();
    let mut indexes = HashSet::new();
    let mut macs = HashSet::new();
    let mut out = Vec::with_capacity(ports.len());
    for p in ports {
        let err = |message: String| PortConfigError::Port {
            name: p.name.clone(),
            message,
        };
        if p.name.trim().is_empty() {
            return Err(err("the name is empty".into()));
        }
        if !names.insert(p.name.as_str()) {
            return Err(err("configured twice".into()));
        }
        if p.index == 0 || p.index > MAX_INDEX {
            return Err(err(format!("index {} is not in 1..=1073741822", p.index)));
        }
        if p.index == unknown_index {
            return Err(err(format!(
                "index {} is the catch-all index of unknown MACs",
                p.index
            )));
        }
        if !indexes.insert(p.index) {
            return Err(err(format!("index {} is used by another port", p.index)));
        }
        let mut port_macs = Vec::with_capacity(p.macs.len());
        for s in &p.macs {
            let mac = parse_mac(s).ok_or_else(|| err(format!("{s:?} is not a MAC address")))?;
            if !super::is_station(&mac) {
                return Err(err(format!(
                    "{s} is a group or zero address, not a station's"
                )));
            }
            if !macs.insert(mac) {
                return Err(err(format!("{s} is claimed by another port too")));
            }
            port_macs.push(mac);
        }
        if macs.len() > MAX_MACS {
            return Err(err(format!("more than {MAX_MACS} MACs in all")));
        }
        let vm = p.vm.as_ref().filter(|v| !v.trim().is_empty()).cloned();
        out.push((
            Port {
                index: p.index,
                name: p.name.clone(),
                vm,
                ofport: None,
            },
            port_macs,
        ));
    }
    Ok(StaticPorts { ports: out })
}

/// The OVSDB socket of `--ovsdb`: `unix:PATH` or a plain absolute path. (Open vSwitch's
/// `tcp:` and `ssl:` remotes are not supported: the control socket of vswitchd, which the
/// learned MACs come from, is local anyway.)
pub fn parse_ovsdb_target(s: &str) -> Result<PathBuf, PortConfigError> {
    let path = match s.strip_prefix("unix:") {
        Some(p) => p,
        None if s.starts_with('/') => s,
        None => return Err(PortConfigError::OvsdbTarget(s.into())),
    };
    if path.is_empty() {
        return Err(PortConfigError::OvsdbTarget(s.into()));
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(name: &str, index: u32, macs: &[&str]) -> StaticPort {
        StaticPort {
            name: name.into(),
            index,
            macs: macs.iter().map(|s| s.to_string()).collect(),
            vm: Some("vm".into()),
        }
    }

    #[test]
    fn the_config_file_tables_deserialize() {
        #[derive(Deserialize)]
        struct F {
            ports: Vec<StaticPort>,
        }
        let f: F = toml::from_str(
            r#"
            [[ports]]
            name = "vm1-eth0"
            index = 10
            macs = ["52:54:00:00:00:01"]
            vm = "vm1"
            [[ports]]
            name = "uplink"
            index = 11
            "#,
        )
        .unwrap();
        let v = validate(&f.ports, 1).unwrap();
        assert_eq!(v.ports.len(), 2);
        assert_eq!(v.ports[0].0.vm.as_deref(), Some("vm1"));
        assert_eq!(v.ports[0].1, vec![[0x52, 0x54, 0, 0, 0, 1]]);
        assert!(v.ports[1].1.is_empty());
        assert!(toml::from_str::<F>("[[ports]]\nname='a'\nindex=1\nmac='x'\n").is_err());
    }

    #[test]
    fn bad_maps_are_refused_with_the_port_named() {
        let cases: &[(&[StaticPort], u32, &str)] = &[
            (&[sp("a", 0, &[])], 1, "index 0"),
            (&[sp("a", 0x3fff_ffff, &[])], 1, "index 1073741823"),
            (&[sp("a", 7, &[])], 7, "catch-all"),
            (&[sp("a", 7, &[]), sp("b", 7, &[])], 1, "used by another"),
            (&[sp("a", 7, &[]), sp("a", 8, &[])], 1, "twice"),
            (&[sp("", 7, &[])], 1, "empty"),
            (&[sp("a", 7, &["52:54:00:00:00"])], 1, "not a MAC"),
            (&[sp("a", 7, &["ff:ff:ff:ff:ff:ff"])], 1, "group"),
            (
                &[
                    sp("a", 7, &["52:54:00:00:00:01"]),
                    sp("b", 8, &["52:54:00:00:00:01"]),
                ],
                1,
                "claimed",
            ),
        ];
        for (ports, unknown, want) in cases {
            let e = validate(ports, *unknown).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        }
        assert!(validate(&[], 0).is_err());
        assert!(validate(&[], 0x3fff_ffff).is_err());
    }

    #[test]
    fn ovsdb_targets() {
        assert_eq!(
            parse_ovsdb_target(DEFAULT_OVSDB).unwrap(),
            PathBuf::from("/var/run/openvswitch/db.sock")
        );
        assert_eq!(
            parse_ovsdb_target("/tmp/x/db.sock").unwrap(),
            PathBuf::from("/tmp/x/db.sock")
        );
        for bad in ["tcp:127.0.0.1:6640", "unix:", "db.sock"] {
            assert!(parse_ovsdb_target(bad).is_err(), "{bad}");
        }
    }
}
