//! sFlow in: `--sflow-listen ADDR:PORT` takes the sFlow v5 that switches (Open vSwitch, hardware
//! switches) send as a source. Flow samples go through the same decoder as captured frames
//! into the flow cache, each flow remembering its [`Origin`] (agent, data source, ports,
//! sampling rate); counter samples and the agents' sequence numbers become metrics; the
//! original datagrams can be relayed unchanged to the `--sflow` collectors.
//!
//! * [`framing`]: length checks that refuse lying datagrams before they are decoded.
//! * [`ingest`]: the datagram path (no sockets, no clock).
//! * [`agents`]: sequence tracking, losses and restarts per agent.
//! * [`counters`]: the latest port and datapath counters per agent.
//! * [`origins`]: interned origins of sFlow flows.
//! * [`listener`]: the UDP sockets (tokio) and the relay.

pub mod agents;
pub mod counters;
pub mod framing;
pub mod ingest;
pub mod listener;
pub mod origins;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use agents::{AgentKey, AgentStats};
pub use framing::BadDatagram;
pub use ingest::{Ingest, Limits, SflowInStats, UnusedSample};
pub use listener::Listener;
pub use origins::{Origin, OriginReader, OriginTable};

/// sFlow input, validated: where to listen, what to do with counts, where to relay.
#[derive(Clone, Debug)]
pub struct SflowInConfig {
    pub listen: Vec<SocketAddr>,
    /// Multiply the counts of sFlow flows by their sampling rate (`--sflow-in-scale`).
    pub scale: bool,
    /// `--sflow` collectors that receive every datagram unchanged.
    pub relay: Vec<SocketAddr>,
    pub limits: Limits,
}

/// sFlow input with the state it shares with the flow thread and the metrics endpoint.
#[derive(Clone, Debug)]
pub struct SflowIn {
    pub config: SflowInConfig,
    pub origins: OriginTable,
    pub stats: Arc<Mutex<SflowInStats>>,
}

impl SflowIn {
    pub fn new(config: SflowInConfig) -> SflowIn {
        SflowIn {
            origins: OriginTable::new(config.limits.max_origins),
            stats: Arc::default(),
            config,
        }
    }
}
