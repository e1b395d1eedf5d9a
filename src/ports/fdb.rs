//! MAC addresses ovs-vswitchd has learned, per bridge: the `fdb/show BRIDGE` command of its
//! control socket (the one `ovs-appctl` talks to: JSON-RPC, the result is the text
//! `ovs-appctl fdb/show` prints).
//!
//! The socket is `ovs-vswitchd.PID.ctl` in Open vSwitch's run directory, which also holds the
//! database socket and `ovs-vswitchd.pid`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::jsonrpc::Connection;
use super::{parse_mac, Mac, PortsError, MAX_MACS};

/// OpenFlow's `OFPP_LOCAL`, which fdb/show prints as `LOCAL`.
pub const OFPP_LOCAL: u32 = 65534;

/// The port column of one fdb/show line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FdbPort {
    /// OpenFlow port number (`LOCAL` is [`OFPP_LOCAL`]).
    Number(u32),
    /// A port name (printed instead of the number by some versions).
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdbEntry {
    pub port: FdbPort,
    pub vlan: u16,
    pub mac: Mac,
}

/// Parses fdb/show's table:
///
/// ```text
///  port  VLAN  MAC                Age
///     1     0  52:54:00:77:00:01    2
/// LOCAL     0  9e:01:ba:57:b6:17  static
/// ```
///
/// Returns the entries (at most [`MAX_MACS`]) and the number of lines that were not entries.
pub fn parse_fdb(text: &str) -> (Vec<FdbEntry>, u64) {
    let mut entries = Vec::new();
    let mut bad = 0;
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(port), Some(vlan), Some(mac)) = (f.next(), f.next(), f.next()) else {
            if !line.trim().is_empty() {
                bad += 1;
            }
            continue;
        };
        if port == "port" && vlan == "VLAN" {
            continue;
        }
        let (Ok(vlan), Some(mac)) = (vlan.parse::<u16>(), parse_mac(mac)) else {
            bad += 1;
            continue;
        };
        let port = match port {
            "LOCAL" => FdbPort::Number(OFPP_LOCAL),
            p => p
                .parse()
                .map(FdbPort::Number)
                .unwrap_or_else(|_| FdbPort::Name(p.to_string())),
        };
        if entries.len() >= MAX_MACS {
            bad += 1;
            continue;
        }
        entries.push(FdbEntry { port, vlan, mac });
    }
    (entries, bad)
}

/// vswitchd's control socket beside the database socket `db`: `ovs-vswitchd.PID.ctl` with
/// PID from `ovs-vswitchd.pid` in the same directory.
pub fn control_socket(db: &Path) -> Result<PathBuf, PortsError> {
    let dir = db.parent().ok_or_else(|| PortsError::NoControlSocket {
        detail: format!("{} has no directory", db.display()),
    })?;
    let pidfile = dir.join("ovs-vswitchd.pid");
    let text = std::fs::read_to_string(&pidfile).map_err(|e| PortsError::NoControlSocket {
        detail: format!("{}: {e}", pidfile.display()),
    })?;
    let pid: u32 = text
        .trim()
        .parse()
        .map_err(|_| PortsError::NoControlSocket {
            detail: format!("{}: not a process id: {:?}", pidfile.display(), text.trim()),
        })?;
    Ok(dir.join(format!("ovs-vswitchd.{pid}.ctl")))
}

/// Runs `fdb/show BRIDGE` on the control socket `ctl`.
pub fn show(ctl: &Path, bridge: &str, timeout: Duration) -> Result<String, PortsError> {
    let mut conn = Connection::connect(ctl, timeout)?;
    match conn.call("fdb/show", json!([bridge]), timeout)? {
        Value::String(s) => Ok(s),
        other => Err(PortsError::Protocol {
            path: ctl.to_owned(),
            detail: format!("fdb/show answered {other}, not text"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_of_ovs_3_1_parses() {
        // As ovs-vswitchd 3.1 printed it for the testbed (plus a LOCAL and a static entry).
        let text = " port  VLAN  MAC                Age\n\
                    \x20   2     0  52:54:00:77:00:02    2\n\
                    \x20   4   100  52:54:00:77:00:04    2\n\
                    LOCAL     0  9e:01:ba:57:b6:17  static\n\
                    vnet3     0  52:54:00:77:00:09    1\n\
                    garbage\n\
                    \x20   7  vlan  52:54:00:77:00:07    1\n";
        let (e, bad) = parse_fdb(text);
        assert_eq!(bad, 2);
        assert_eq!(
            e,
            vec![
                FdbEntry {
                    port: FdbPort::Number(2),
                    vlan: 0,
                    mac: [0x52, 0x54, 0, 0x77, 0, 2]
                },
                FdbEntry {
                    port: FdbPort::Number(4),
                    vlan: 100,
                    mac: [0x52, 0x54, 0, 0x77, 0, 4]
                },
                FdbEntry {
                    port: FdbPort::Number(OFPP_LOCAL),
                    vlan: 0,
                    mac: [0x9e, 0x01, 0xba, 0x57, 0xb6, 0x17]
                },
                FdbEntry {
                    port: FdbPort::Name("vnet3".into()),
                    vlan: 0,
                    mac: [0x52, 0x54, 0, 0x77, 0, 9]
                },
            ]
        );
    }

    #[test]
    fn the_control_socket_is_found_through_the_pidfile() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sock");
        assert!(control_socket(&db).is_err());
        std::fs::write(dir.path().join("ovs-vswitchd.pid"), "4242\n").unwrap();
        assert_eq!(
            control_socket(&db).unwrap(),
            dir.path().join("ovs-vswitchd.4242.ctl")
        );
        std::fs::write(dir.path().join("ovs-vswitchd.pid"), "x").unwrap();
        assert!(control_socket(&db)
            .unwrap_err()
            .to_string()
            .contains("not a process id"));
    }
}
