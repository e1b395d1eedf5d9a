//! JSON Lines output: one object per flow record. The keys are a stable contract (README,
//! "JSON output"): users pipe them into jq.

use std::io::Write;
use std::net::IpAddr;

use serde::Serialize;

use super::{ExportError, Sink};
use crate::flow::{EndReason, FlowRecord};
use crate::ports::{PortDirectory, PortMap, PortReader};

/// The JSON shape of a flow record.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct JsonFlow {
    pub src_addr: IpAddr,
    pub dst_addr: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub ip_version: u8,
    pub packets: u64,
    pub bytes: u64,
    pub l2_bytes: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    pub tcp_flags: u8,
    pub min_ttl: u8,
    pub max_ttl: u8,
    pub dscp: u8,
    pub src_mac: String,
    pub dst_mac: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan_id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_if: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_if: Option<u32>,
    /// Port names and VM ids from the port map (`[[ports]]`, `--ovsdb`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_vm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_vm: Option<String>,
    /// Flows from sFlow (`--sflow-listen`): the agent, sub-agent, data source index and
    /// sampling rate of their samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_agent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling_rate: Option<u32>,
    pub end_reason: EndReason,
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

impl From<&FlowRecord> for JsonFlow {
    fn from(r: &FlowRecord) -> JsonFlow {
        JsonFlow::new(r, None)
    }
}

impl JsonFlow {
    /// The JSON shape of `r`, with port names and VM ids from `ports` when given.
    pub fn new(r: &FlowRecord, ports: Option<&PortMap>) -> JsonFlow {
        let (k, s) = (&r.key, &r.stats);
        let port = |i: u32| ports.and_then(|m| m.port(i));
        let (in_if, out_if) = r.interfaces();
        let o = r.origin;
        JsonFlow {
            src_addr: k.src_ip(),
            dst_addr: k.dst_ip(),
            src_port: k.src_port,
            dst_port: k.dst_port,
            protocol: k.protocol,
            ip_version: k.ip_version(),
            packets: s.packets,
            bytes: s.bytes,
            l2_bytes: s.l2_bytes,
            start_ns: s.start_ns,
            end_ns: s.end_ns,
            tcp_flags: s.tcp_flags,
            min_ttl: s.min_ttl,
            max_ttl: s.max_ttl,
            dscp: s.tos >> 2,
            src_mac: mac_string(&s.src_mac),
            dst_mac: mac_string(&s.dst_mac),
            vlan_id: (k.vlan_id != 0).then_some(k.vlan_id),
            tunnel_id: k.tunnel_id(),
            in_if: (in_if != 0).then_some(in_if),
            out_if: (out_if != 0).then_some(out_if),
            in_port: port(in_if).map(|p| p.name.clone()),
            out_port: port(out_if).map(|p| p.name.clone()),
            in_vm: port(in_if).and_then(|p| p.vm.clone()),
            out_vm: port(out_if).and_then(|p| p.vm.clone()),
            agent: o.map(|o| o.agent),
            sub_agent: o.map(|o| o.sub_agent),
            source_id: o.map(|o| o.source_index),
            sampling_rate: o.map(|o| o.sampling_rate),
            end_reason: r.end_reason,
        }
    }
}

/// Appends `r` as one JSON line, byte-identical to `serde_json` on [`JsonFlow`] but without
/// building strings: the sink writes about a million records per second this way.
pub fn write_json_line(r: &FlowRecord, ports: Option<&PortMap>, out: &mut Vec<u8>) {
    let (k, s) = (&r.key, &r.stats);
    let mut num = itoa::Buffer::new();
    let mut field = |out: &mut Vec<u8>, name: &str, v: u64| {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(num.format(v).as_bytes());
    };
    out.extend_from_slice(b"{\"src_addr\":\"");
    write_ip(out, k.ip_version(), &k.src_addr);
    out.extend_from_slice(b"\",\"dst_addr\":\"");
    write_ip(out, k.ip_version(), &k.dst_addr);
    out.push(b'"');
    field(out, "src_port", k.src_port.into());
    field(out, "dst_port", k.dst_port.into());
    field(out, "protocol", k.protocol.into());
    field(out, "ip_version", k.ip_version().into());
    field(out, "packets", s.packets);
    field(out, "bytes", s.bytes);
    field(out, "l2_bytes", s.l2_bytes);
    field(out, "start_ns", s.start_ns);
    field(out, "end_ns", s.end_ns);
    field(out, "tcp_flags", s.tcp_flags.into());
    field(out, "min_ttl", s.min_ttl.into());
    field(out, "max_ttl", s.max_ttl.into());
    field(out, "dscp", (s.tos >> 2).into());
    for (name, mac) in [("src_mac", &s.src_mac), ("dst_mac", &s.dst_mac)] {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":\"");
        for (i, b) in mac.iter().enumerate() {
            if i > 0 {
                out.push(b':');
            }
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
        out.push(b'"');
    }
    if k.vlan_id != 0 {
        field(out, "vlan_id", k.vlan_id.into());
    }
    if let Some(t) = k.tunnel_id() {
        field(out, "tunnel_id", t.into());
    }
    let (in_if, out_if) = r.interfaces();
    if in_if != 0 {
        field(out, "in_if", in_if.into());
    }
    if out_if != 0 {
        field(out, "out_if", out_if.into());
    }
    if let Some(map) = ports {
        let (inp, outp) = (map.port(in_if), map.port(out_if));
        let names = [
            ("in_port", inp.map(|p| &p.name)),
            ("out_port", outp.map(|p| &p.name)),
            ("in_vm", inp.and_then(|p| p.vm.as_ref())),
            ("out_vm", outp.and_then(|p| p.vm.as_ref())),
        ];
        for (name, value) in names {
            if let Some(v) = value {
                out.extend_from_slice(b",\"");
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"\":");
                // Names come from OVSDB or the config: escape them as JSON strings.
                out.extend_from_slice(serde_json::to_string(v).unwrap_or_default().as_bytes());
            }
        }
    }
    if let Some(o) = r.origin {
        out.extend_from_slice(b",\"agent\":\"");
        match o.agent {
            IpAddr::V4(a) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&a.octets());
                write_ip(out, 4, &b);
            }
            IpAddr::V6(a) => write_ip(out, 6, &a.octets()),
        }
        out.push(b'"');
        field(out, "sub_agent", o.sub_agent.into());
        field(out, "source_id", o.source_index.into());
        field(out, "sampling_rate", o.sampling_rate.into());
    }
    out.extend_from_slice(b",\"end_reason\":\"");
    out.extend_from_slice(r.end_reason.name().as_bytes());
    out.extend_from_slice(b"\"}\n");
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Dotted quad by hand (the common case); IPv6 through `Display` (RFC 5952 text).
fn write_ip(out: &mut Vec<u8>, version: u8, a: &[u8; 16]) {
    if version == 6 {
        use std::io::Write as _;
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{}", std::net::Ipv6Addr::from(*a));
        return;
    }
    let mut num = itoa::Buffer::new();
    for (i, b) in a[..4].iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(num.format(*b).as_bytes());
    }
}

/// Writes JSON Lines to a file or stdout.
pub struct JsonSink {
    name: String,
    ports: Option<PortReader>,
    out: Box<dyn Write + Send>,
    /// Reused serialization buffer: one batch of records, written with one call.
    line: Vec<u8>,
}

impl JsonSink {
    /// `-` is stdout; anything else a file, created or truncated.
    pub fn create(path: &str, ports: Option<&PortDirectory>) -> Result<JsonSink, ExportError> {
        let name = format!("json:{path}");
        let w: Box<dyn Write + Send> = if path == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::File::create(path).map_err(|source| ExportError::Io {
                    sink: name.clone(),
                    source,
                })?,
            )
        };
        Ok(JsonSink {
            name,
            ports: ports.map(PortDirectory::reader),
            out: w,
            line: Vec::new(),
        })
    }

    fn io(&self, source: std::io::Error) -> ExportError {
        ExportError::Io {
            sink: self.name.clone(),
            source,
        }
    }
}

impl Sink for JsonSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn flows(&mut self, records: &[FlowRecord]) -> Result<(), ExportError> {
        self.line.clear();
        let map = self.ports.as_mut().map(|p| p.map());
        for r in records {
            write_json_line(r, map, &mut self.line);
        }
        self.out.write_all(&self.line).map_err(|e| self.io(e))
    }

    fn finish(&mut self) -> Result<(), ExportError> {
        self.out.flush().map_err(|e| self.io(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{FrameInfo, PacketMeta};
    use crate::flow::{FlowKey, FlowStats};

    fn record(
        v6: bool,
        vlan: u16,
        tunnel: Option<u32>,
        in_if: u32,
        reason: EndReason,
    ) -> FlowRecord {
        let mut m = PacketMeta {
            frame: FrameInfo {
                ts_ns: 0,
                wire_len: 0,
                in_if,
            },
            ip_version: if v6 { 6 } else { 4 },
            protocol: 17,
            src_port: 65535,
            dst_port: 0,
            vlan_id: vlan,
            tunnel_id: tunnel,
            ..PacketMeta::default()
        };
        m.src_addr = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        m.dst_addr = [255, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab];
        FlowRecord {
            key: FlowKey::from_meta(&m),
            stats: FlowStats {
                packets: u64::MAX,
                bytes: 1,
                l2_bytes: 0,
                start_ns: 1_700_000_000_123_456_789,
                end_ns: u64::MAX - 1,
                src_mac: [0, 0x1f, 0xa0, 0xff, 0x0a, 0xb9],
                dst_mac: [0xff; 6],
                tcp_flags: 0xff,
                min_ttl: 0,
                max_ttl: 255,
                tos: 0xb9,
            },
            end_reason: reason,
            out_if: 0,
            origin: None,
        }
    }

    /// Flows from sFlow show the sample's ports and the agent, byte-identical to serde.
    #[test]
    fn sflow_origin_fields_match_serde() {
        for agent in ["192.0.2.7", "2001:db8::7"] {
            let origin: &'static crate::sflow_in::Origin =
                Box::leak(Box::new(crate::sflow_in::Origin {
                    agent: agent.parse().unwrap(),
                    sub_agent: 2,
                    source_type: 0,
                    source_index: 5,
                    input: 5,
                    output: 6,
                    sampling_rate: 256,
                    scaled: false,
                }));
            let mut r = record(false, 0, None, crate::flow::ORIGIN_BIT | 3, EndReason::Idle);
            r.origin = Some(origin);
            let mut fast = Vec::new();
            write_json_line(&r, None, &mut fast);
            let slow = serde_json::to_string(&JsonFlow::new(&r, None)).unwrap() + "\n";
            assert_eq!(String::from_utf8(fast).unwrap(), slow);
            let v: serde_json::Value = serde_json::from_str(&slow).unwrap();
            assert_eq!(
                (v["in_if"].as_u64(), v["out_if"].as_u64()),
                (Some(5), Some(6))
            );
            assert_eq!(v["agent"], agent);
            assert_eq!(
                (v["sub_agent"].as_u64(), v["source_id"].as_u64()),
                (Some(2), Some(5))
            );
            assert_eq!(v["sampling_rate"], 256);
        }
    }

    #[test]
    fn port_names_match_serde_and_are_escaped() {
        use crate::ports::{Port, PortMapBuilder};
        let mut b = PortMapBuilder::new(1);
        b.add_port(Port {
            index: 7,
            name: "vm\"1\"-eth0".into(),
            vm: Some("vm-uuid-1".into()),
            ofport: Some(3),
        });
        b.add_port(Port {
            index: 9,
            name: "tap9".into(),
            vm: None,
            ofport: None,
        });
        let map = b.build();
        let mut r = record(false, 0, None, 7, EndReason::Idle);
        r.out_if = 9;
        let mut fast = Vec::new();
        write_json_line(&r, Some(&map), &mut fast);
        let slow = serde_json::to_string(&JsonFlow::new(&r, Some(&map))).unwrap() + "\n";
        assert_eq!(String::from_utf8(fast).unwrap(), slow);
        let v: serde_json::Value = serde_json::from_str(&slow).unwrap();
        assert_eq!(v["in_port"], "vm\"1\"-eth0");
        assert_eq!(
            (v["in_vm"].as_str(), v["out_port"].as_str()),
            (Some("vm-uuid-1"), Some("tap9"))
        );
        assert!(v.get("out_vm").is_none());
        assert_eq!(v["out_if"], 9);
    }

    #[test]
    fn fast_writer_matches_serde_byte_for_byte() {
        for v6 in [false, true] {
            for (vlan, tunnel, in_if) in [
                (0, None, 0),
                (4094, Some(0), 7),
                (1, Some(u32::MAX), u32::MAX),
            ] {
                for reason in EndReason::ALL {
                    let r = record(v6, vlan, tunnel, in_if, reason);
                    let mut fast = Vec::new();
                    write_json_line(&r, None, &mut fast);
                    let slow = serde_json::to_string(&JsonFlow::from(&r)).unwrap() + "\n";
                    assert_eq!(String::from_utf8(fast).unwrap(), slow);
                }
            }
        }
    }
}
