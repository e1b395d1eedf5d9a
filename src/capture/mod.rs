//! Sources of frames: capture files and live interfaces.

mod buffer;
mod error;
mod file;
mod filter;
mod live;

pub use error::CaptureError;
pub use file::{FileSource, Frame};
pub use filter::FileFilter;
pub use live::{ifindex, LiveConfig, LiveSource, LiveStats, Waker};
