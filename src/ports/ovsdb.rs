//! Reading bridges, ports and interfaces from Open vSwitch's database (RFC 7047).
//!
//! One `transact` (§4.1.3) with three `select` operations (§5.2.2) on the `Open_vSwitch`
//! database's `Bridge`, `Port` and `Interface` tables (ovs-vswitchd.conf.db(5)); values are in
//! the RFC's JSON notation (§5.1): atoms, `["uuid", U]`, `["set", [..]]` (a one-element set may
//! be the bare atom) and `["map", [[K, V], ..]]`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use super::jsonrpc::Connection;
use super::{parse_mac, Mac, PortsError};

/// One interface of a bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OvsInterface {
    pub name: String,
    /// `Interface.type`: "" (a system interface: veth, tap), "internal", "patch", "dpdk", …
    pub kind: String,
    /// OpenFlow port number; `None` while unassigned or when adding the interface failed.
    pub ofport: Option<u32>,
    /// Linux ifindex; `None` when the interface has none (DPDK, tunnels).
    pub ifindex: Option<u32>,
    pub mac_in_use: Option<Mac>,
    pub external_ids: BTreeMap<String, String>,
    pub link_up: Option<bool>,
    /// Access VLAN of its port (`Port.tag`).
    pub tag: Option<u16>,
}

impl OvsInterface {
    /// The VM this interface belongs to: `vm-id` (libvirt), `vm-uuid` (OpenStack) or, when
    /// neither is set, `iface-id`.
    pub fn vm(&self) -> Option<&str> {
        ["vm-id", "vm-uuid", "iface-id"]
            .iter()
            .find_map(|k| self.external_ids.get(*k))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `external_ids:attached-mac`: the VM's own MAC as libvirt and OpenStack record it.
    pub fn attached_mac(&self) -> Option<Mac> {
        self.external_ids
            .get("attached-mac")
            .and_then(|s| parse_mac(s))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OvsBridge {
    pub name: String,
    pub interfaces: Vec<OvsInterface>,
}

/// Reads every bridge with its interfaces.
pub fn read_bridges(db: &Path, timeout: Duration) -> Result<Vec<OvsBridge>, PortsError> {
    let mut conn = Connection::connect(db, timeout)?;
    let result = conn.call("transact", transact_params(), timeout)?;
    bridges_from_result(&result)
}

/// `transact` parameters: the three selects.
pub fn transact_params() -> Value {
    json!([
        "Open_vSwitch",
        {"op": "select", "table": "Bridge", "where": [], "columns": ["name", "ports"]},
        {"op": "select", "table": "Port", "where": [], "columns": ["_uuid", "name", "interfaces", "tag"]},
        {"op": "select", "table": "Interface", "where": [],
         "columns": ["_uuid", "name", "type", "ofport", "ifindex", "mac_in_use", "external_ids", "link_state"]}
    ])
}

/// Joins the three result sets: bridge → ports → interfaces.
pub fn bridges_from_result(result: &Value) -> Result<Vec<OvsBridge>, PortsError> {
    let ops = result
        .as_array()
        .ok_or_else(|| schema("Bridge", "result is not an array"))?;
    let rows = |i: usize, table: &'static str| -> Result<&Vec<Value>, PortsError> {
        let op = ops.get(i).ok_or_else(|| schema(table, "no result"))?;
        if let Some(e) = op.get("error") {
            let detail = op.get("details").and_then(Value::as_str).unwrap_or("");
            return Err(schema(table, &format!("{e} {detail}")));
        }
        op.get("rows")
            .and_then(Value::as_array)
            .ok_or_else(|| schema(table, "no rows"))
    };
    let mut interfaces = HashMap::new();
    for row in rows(2, "Interface")? {
        let uuid =
            uuid(row.get("_uuid")).ok_or_else(|| schema("Interface", "row without _uuid"))?;
        let name =
            string(row.get("name")).ok_or_else(|| schema("Interface", "row without name"))?;
        interfaces.insert(
            uuid,
            OvsInterface {
                name,
                kind: string(row.get("type")).unwrap_or_default(),
                ofport: integer(row.get("ofport")).and_then(|p| u32::try_from(p).ok()),
                ifindex: integer(row.get("ifindex"))
                    .and_then(|i| u32::try_from(i).ok())
                    .filter(|&i| i != 0),
                mac_in_use: string(row.get("mac_in_use")).and_then(|s| parse_mac(&s)),
                external_ids: map(row.get("external_ids")),
                link_up: string(row.get("link_state")).map(|s| s == "up"),
                tag: None,
            },
        );
    }
    let mut ports = HashMap::new();
    for row in rows(1, "Port")? {
        let uuid = uuid(row.get("_uuid")).ok_or_else(|| schema("Port", "row without _uuid"))?;
        let tag = integer(row.get("tag")).and_then(|t| u16::try_from(t).ok());
        ports.insert(uuid, (uuids(row.get("interfaces")), tag));
    }
    let mut bridges = Vec::new();
    for row in rows(0, "Bridge")? {
        let name = string(row.get("name")).ok_or_else(|| schema("Bridge", "row without name"))?;
        let mut ifaces = Vec::new();
        for port in uuids(row.get("ports")) {
            let Some((members, tag)) = ports.get(&port) else {
                continue;
            };
            for m in members {
                if let Some(i) = interfaces.get(m) {
                    ifaces.push(OvsInterface {
                        tag: *tag,
                        ..i.clone()
                    });
                }
            }
        }
        ifaces.sort_by(|a, b| (a.ofport, &a.name).cmp(&(b.ofport, &b.name)));
        bridges.push(OvsBridge {
            name,
            interfaces: ifaces,
        });
    }
    bridges.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(bridges)
}

fn schema(table: &'static str, detail: &str) -> PortsError {
    PortsError::Schema {
        table,
        detail: detail.into(),
    }
}

/// The single atom of a value that may be a one-element set; `None` for an empty set.
fn atom(v: Option<&Value>) -> Option<&Value> {
    match v? {
        Value::Array(a) if a.first().and_then(Value::as_str) == Some("set") => {
            match a.get(1)?.as_array()?.as_slice() {
                [one] => Some(one),
                _ => None,
            }
        }
        other => Some(other),
    }
}

fn string(v: Option<&Value>) -> Option<String> {
    atom(v)?.as_str().map(str::to_string)
}

fn integer(v: Option<&Value>) -> Option<i64> {
    atom(v)?.as_i64()
}

fn uuid(v: Option<&Value>) -> Option<String> {
    match atom(v)?.as_array()?.as_slice() {
        [Value::String(t), Value::String(u)] if t == "uuid" => Some(u.clone()),
        _ => None,
    }
}

/// Members of a set of UUIDs (or a single UUID).
fn uuids(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) if a.first().and_then(Value::as_str) == Some("set") => a
            .get(1)
            .and_then(Value::as_array)
            .map(|m| m.iter().filter_map(|u| uuid(Some(u))).collect())
            .unwrap_or_default(),
        other => uuid(other).into_iter().collect(),
    }
}

fn map(v: Option<&Value>) -> BTreeMap<String, String> {
    let Some(Value::Array(a)) = v else {
        return BTreeMap::new();
    };
    if a.first().and_then(Value::as_str) != Some("map") {
        return BTreeMap::new();
    }
    a.get(1)
        .and_then(Value::as_array)
        .map(|pairs| {
            pairs
                .iter()
                .filter_map(|p| match p.as_array()?.as_slice() {
                    [Value::String(k), Value::String(v)] => Some((k.clone(), v.clone())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from a real answer of ovsdb-server 3.1 (the testbed's bridge).
    const ANSWER: &str = r#"[
      {"rows":[{"name":"br","ports":["set",[["uuid","p1"],["uuid","p2"],["uuid","pl"]]]}]},
      {"rows":[
        {"_uuid":["uuid","p1"],"name":"v1","interfaces":["uuid","i1"],"tag":["set",[]]},
        {"_uuid":["uuid","p2"],"name":"v2","interfaces":["uuid","i2"],"tag":100},
        {"_uuid":["uuid","pl"],"name":"br","interfaces":["uuid","il"],"tag":["set",[]]}]},
      {"rows":[
        {"_uuid":["uuid","i1"],"name":"v1","type":"","ofport":1,"ifindex":9,
         "mac_in_use":"26:57:a6:5c:28:ab","link_state":"up",
         "external_ids":["map",[["attached-mac","52:54:00:77:00:01"],["iface-id","if-1"],["vm-id","vm-1"]]]},
        {"_uuid":["uuid","i2"],"name":"v2","type":"","ofport":2,"ifindex":11,
         "mac_in_use":"02:12:a0:4b:c8:cf","link_state":"down",
         "external_ids":["map",[["iface-id","if-2"],["vm-uuid","vm-2"]]]},
        {"_uuid":["uuid","il"],"name":"br","type":"internal","ofport":65534,"ifindex":["set",[]],
         "mac_in_use":["set",[]],"link_state":["set",[]],"external_ids":["map",[]]},
        {"_uuid":["uuid","io"],"name":"orphan","type":"","ofport":-1,"ifindex":0,
         "mac_in_use":["set",[]],"link_state":["set",[]],"external_ids":["map",[]]}]}
    ]"#;

    #[test]
    fn bridges_ports_and_interfaces_are_joined() {
        let v: Value = serde_json::from_str(ANSWER).unwrap();
        let b = bridges_from_result(&v).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].name, "br");
        let names: Vec<&str> = b[0].interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["v1", "v2", "br"], "orphan belongs to no bridge");
        let v1 = &b[0].interfaces[0];
        assert_eq!(
            (v1.ofport, v1.ifindex, v1.tag, v1.link_up),
            (Some(1), Some(9), None, Some(true))
        );
        assert_eq!(v1.vm(), Some("vm-1"));
        assert_eq!(v1.attached_mac(), Some([0x52, 0x54, 0, 0x77, 0, 1]));
        assert_eq!(v1.mac_in_use, Some([0x26, 0x57, 0xa6, 0x5c, 0x28, 0xab]));
        let v2 = &b[0].interfaces[1];
        assert_eq!(
            (v2.tag, v2.vm(), v2.attached_mac()),
            (Some(100), Some("vm-2"), None)
        );
        let local = &b[0].interfaces[2];
        assert_eq!(
            (local.ofport, local.ifindex, local.mac_in_use),
            (Some(65534), None, None)
        );
        assert_eq!(local.vm(), None);
    }

    #[test]
    fn operation_errors_name_the_table() {
        let v = json!([{"rows": []}, {"error": "unknown column", "details": "tag"}, {"rows": []}]);
        let e = bridges_from_result(&v).unwrap_err().to_string();
        assert!(e.contains("Port") && e.contains("unknown column"), "{e}");
        assert!(bridges_from_result(&json!({"x": 1})).is_err());
    }
}
