//! Capture errors, each with the file or interface it concerns.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}", path = .path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: read error at byte {offset}: {source}", path = .path.display())]
    Read {
        path: PathBuf,
        offset: u64,
        source: std::io::Error,
    },
    #[error("{path}: not a pcap or pcapng file (first bytes {magic:#010x})", path = .path.display())]
    NotACapture { path: PathBuf, magic: u32 },
    #[error("{path}: corrupt capture file at byte {offset}: {what}", path = .path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("interface {iface}: {message}")]
    Live { iface: String, message: String },
    #[error("invalid capture filter {filter:?}: {message}")]
    Filter { filter: String, message: String },
    #[error(transparent)]
    SflowListen(#[from] crate::sflow_in::listener::ListenError),
}
