//! mirrorflow: a traffic-visibility probe for virtual switches.
//!
//! Data flow: [`capture`] (pcap live or file) → [`decode`] (frame → `PacketMeta`) →
//! [`flow`] (fragment table, flow cache) → [`export`] (JSON lines; IPFIX, NetFlow v9, sFlow and
//! Prometheus in their own crates and modules), wired together by [`pipeline`]. [`sflow_in`]
//! is a second kind of source: the sFlow that switches send, decoded into the same flows.

pub mod capture;
pub mod cli;
pub mod config;
pub mod decode;
pub mod export;
pub mod flow;
pub(crate) mod hint;
pub mod metrics;
pub mod pipeline;
pub mod ports;
pub mod sample;
pub mod sflow_in;
