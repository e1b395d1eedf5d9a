//! Flow state: the fragment table and the flow cache.
//!
//! Both are driven only by the timestamps they are given: no clock, no I/O. Replaying a file
//! therefore always yields the same records in the same order.

mod cache;
mod frag;
mod index;
mod record;

pub use cache::{CacheConfig, CacheCounters, FlowCache};
pub use frag::{FragCounters, FragTable, FRAG_TABLE_CAP, FRAG_TIMEOUT_NS};
pub use record::{EndReason, FlowKey, FlowRecord, FlowStats, ORIGIN_BIT};

/// TCP FIN and RST flag bits.
pub const TCP_FIN: u8 = 0x01;
pub const TCP_RST: u8 = 0x04;
