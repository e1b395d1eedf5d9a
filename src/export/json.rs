//! JSON Lines output: one object per flow record. The keys are a stable contract (README,
//! "JSON output"): users pipe them into jq.

use std::io::Write;
use std::net::IpAddr;

use serde::Serialize;

use super::{ExportError, FlowSink};
use crate::flow::{EndReason, FlowRecord};

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
        let (k, s) = (&r.key, &r.stats);
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
            in_if: (k.in_if != 0).then_some(k.in_if),
            end_reason: r.end_reason,
        }
    }
}

/// Writes JSON Lines to a file or stdout.
pub struct JsonSink {
    name: String,
    out: std::io::BufWriter<Box<dyn Write + Send>>,
}

impl JsonSink {
    /// `-` is stdout; anything else a file, created or truncated.
    pub fn create(path: &str) -> Result<JsonSink, ExportError> {
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
            out: std::io::BufWriter::with_capacity(1 << 16, w),
        })
    }

    fn io(&self, source: std::io::Error) -> ExportError {
        ExportError::Io {
            sink: self.name.clone(),
            source,
        }
    }
}

impl FlowSink for JsonSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn write(&mut self, records: &[FlowRecord]) -> Result<(), ExportError> {
        for r in records {
            serde_json::to_writer(&mut self.out, &JsonFlow::from(r))
                .map_err(|e| self.io(e.into()))?;
            self.out.write_all(b"\n").map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ExportError> {
        self.out.flush().map_err(|e| self.io(e))
    }
}
