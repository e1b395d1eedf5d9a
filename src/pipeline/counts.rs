//! Frame accounting. Every frame read ends in exactly one place: the packet count of an
//! exported flow, or one of the named counters here. [`Report::unaccounted`] checks it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::decode::{ethertype_name, DecodeError};
use crate::export::SinkReport;
use crate::flow::{CacheCounters, EndReason, FragCounters};

/// Distinct non-IP ethertypes counted one by one; the rest share the `other` key.
pub const MAX_ETHERTYPES: usize = 64;
/// Key of the shared bucket (0xffff is reserved by IEEE, never a real ethertype).
const OTHER_ETHERTYPE: u16 = 0xffff;

/// Counters a source keeps while reading and decoding; sent with each batch as a delta.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceCounts {
    pub frames: u64,
    pub filtered: u64,
    /// Frames left out of the flow cache by `--flow-sampling`.
    pub sampled_out: u64,
    pub non_ip: BTreeMap<u16, u64>,
    pub decode_errors: [u64; DecodeError::ALL.len()],
}

impl SourceCounts {
    pub fn count_non_ip(&mut self, ethertype: u16) {
        let key = if self.non_ip.len() >= MAX_ETHERTYPES && !self.non_ip.contains_key(&ethertype) {
            OTHER_ETHERTYPE
        } else {
            ethertype
        };
        *self.non_ip.entry(key).or_default() += 1;
    }

    pub fn count_error(&mut self, e: DecodeError) {
        self.decode_errors[e.index()] += 1;
    }

    pub fn is_empty(&self) -> bool {
        *self == SourceCounts::default()
    }

    /// Adds a delta, keeping the ethertype cap.
    pub fn absorb(&mut self, d: &SourceCounts) {
        self.frames += d.frames;
        self.filtered += d.filtered;
        self.sampled_out += d.sampled_out;
        for (&et, &n) in &d.non_ip {
            let key = if self.non_ip.len() >= MAX_ETHERTYPES && !self.non_ip.contains_key(&et) {
                OTHER_ETHERTYPE
            } else {
                et
            };
            *self.non_ip.entry(key).or_default() += n;
        }
        for (a, b) in self.decode_errors.iter_mut().zip(d.decode_errors) {
            *a += b;
        }
    }
}

/// Capture statistics of one live interface.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InterfaceReport {
    pub name: String,
    pub received: u64,
    pub kernel_drops: u64,
    pub interface_drops: u64,
}

/// Everything a run counted; printed as the summary line and by `--stats-json`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Frames read from the sources.
    pub frames: u64,
    /// Frames rejected by the BPF filter (capture files only; live filters run in the kernel).
    pub filtered: u64,
    /// Frames left out of the flow cache by 1-in-N flow sampling.
    pub sampled_out: u64,
    /// Frames without IP, by ethertype name.
    pub non_ip: BTreeMap<String, u64>,
    /// Frames that failed to decode, by reason.
    pub decode_errors: BTreeMap<&'static str, u64>,
    /// Flow records exported, and the packets and IP bytes in them.
    pub flow_records: u64,
    pub flow_packets: u64,
    pub flow_bytes: u64,
    /// Records by end reason.
    pub records_by_reason: BTreeMap<&'static str, u64>,
    pub flows_created: u64,
    /// Flows exported early because the table was full.
    pub evictions: u64,
    pub active_flows: u64,
    pub fragments: u64,
    pub fragments_unmatched: u64,
    pub fragment_table_full: u64,
    /// Packets stamped far ahead of the flow clock (a lone future timestamp) that did not move it.
    pub clock_outliers: u64,
    pub interfaces: Vec<InterfaceReport>,
    pub sinks: Vec<SinkReportJson>,
    /// Errors that ended a source early (a corrupt record in the middle of a file, say).
    pub source_errors: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SinkReportJson {
    pub name: String,
    pub records_written: u64,
    pub records_dropped: u64,
    pub error: Option<String>,
}

impl From<&SinkReport> for SinkReportJson {
    fn from(s: &SinkReport) -> Self {
        SinkReportJson {
            name: s.name.clone(),
            records_written: s.records_written,
            records_dropped: s.records_dropped,
            error: s.error.clone(),
        }
    }
}

impl Report {
    pub fn build(
        src: &SourceCounts,
        cache: &CacheCounters,
        active_flows: usize,
        frag: &FragCounters,
    ) -> Report {
        Report {
            frames: src.frames,
            filtered: src.filtered,
            sampled_out: src.sampled_out,
            non_ip: src
                .non_ip
                .iter()
                .map(|(&et, &n)| {
                    let name = if et == OTHER_ETHERTYPE {
                        "other".to_string()
                    } else {
                        ethertype_name(et)
                    };
                    (name, n)
                })
                .collect(),
            decode_errors: DecodeError::ALL
                .iter()
                .filter(|e| src.decode_errors[e.index()] != 0)
                .map(|e| (e.name(), src.decode_errors[e.index()]))
                .collect(),
            flow_records: cache.records_by_reason.iter().sum(),
            flow_packets: cache.exported_packets,
            flow_bytes: cache.exported_bytes,
            records_by_reason: EndReason::ALL
                .iter()
                .map(|r| (r.name(), cache.records_by_reason[*r as usize]))
                .collect(),
            flows_created: cache.flows_created,
            evictions: cache.records_by_reason[EndReason::LackOfResources as usize],
            active_flows: active_flows as u64,
            fragments: frag.fragments,
            fragments_unmatched: frag.unmatched,
            fragment_table_full: frag.table_full,
            clock_outliers: cache.clock_outliers,
            ..Report::default()
        }
    }

    pub fn non_ip_total(&self) -> u64 {
        self.non_ip.values().sum()
    }

    pub fn decode_error_total(&self) -> u64 {
        self.decode_errors.values().sum()
    }

    pub fn kernel_drops(&self) -> u64 {
        self.interfaces
            .iter()
            .map(|i| i.kernel_drops + i.interface_drops)
            .sum()
    }

    /// Frames read minus frames accounted for; zero once every flow has been exported.
    pub fn unaccounted(&self) -> i128 {
        i128::from(self.frames)
            - i128::from(self.flow_packets)
            - i128::from(self.non_ip_total())
            - i128::from(self.decode_error_total())
            - i128::from(self.filtered)
            - i128::from(self.sampled_out)
    }

    /// The one-line summary.
    pub fn summary_line(&self) -> String {
        format!(
            "packets {} flows {} (records {}, active {}) non-ip {} decode-errors {} filtered {} dropped {}",
            self.frames,
            self.flows_created,
            self.flow_records,
            self.active_flows,
            self.non_ip_total(),
            self.decode_error_total(),
            self.filtered,
            self.kernel_drops(),
        )
    }
}
