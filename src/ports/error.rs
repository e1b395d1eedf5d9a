//! Errors of the port sources (OVSDB, vswitchd's control socket) and of the static port map.

use std::path::PathBuf;
use std::time::Duration;

/// Reading the port map from Open vSwitch failed. Each variant names the socket it concerns.
#[derive(Debug, thiserror::Error)]
pub enum PortsError {
    #[error("{path}: cannot connect: {source}", path = .path.display())]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {what}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{path}: no answer to {method} within {timeout:?}", path = .path.display())]
    Timeout {
        path: PathBuf,
        method: String,
        timeout: Duration,
    },
    #[error("{path}: connection closed by the peer", path = .path.display())]
    Closed { path: PathBuf },
    #[error("{path}: message longer than {limit} bytes", path = .path.display())]
    TooLarge { path: PathBuf, limit: usize },
    #[error("{path}: malformed JSON-RPC message: {detail}", path = .path.display())]
    Protocol { path: PathBuf, detail: String },
    #[error("{path}: {method} failed: {detail}", path = .path.display())]
    Rpc {
        path: PathBuf,
        method: String,
        detail: String,
    },
    #[error("OVSDB table {table}: {detail}")]
    Schema { table: &'static str, detail: String },
    #[error("cannot find ovs-vswitchd's control socket: {detail}")]
    NoControlSocket { detail: String },
}

/// A bad static port map or port setting (a usage error: exit code 2 at the edge).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortConfigError {
    #[error("port {name:?}: {message}")]
    Port { name: String, message: String },
    #[error("catch-all port index {0}: {1}")]
    UnknownIndex(u32, &'static str),
    #[error("{0} ports configured; at most {1}")]
    TooMany(usize, usize),
    #[error("{0:?}: expected unix:PATH (or a socket path)")]
    OvsdbTarget(String),
}
