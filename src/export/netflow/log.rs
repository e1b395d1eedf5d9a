//! Rate-limited log lines: a fault that repeats per datagram is logged once a second.

use std::time::{Duration, Instant};

/// Minimum spacing of log lines, per collector.
pub const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// At most one log line per [`LOG_INTERVAL`]; counts the lines it held back.
#[derive(Debug, Default)]
pub struct LogLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    pub fn log(&mut self, sink: &str, msg: &str) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < LOG_INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        self.last = Some(now);
        if self.suppressed > 0 {
            eprintln!(
                "mirrorflow: {sink}: {msg} ({} similar messages suppressed)",
                self.suppressed
            );
            self.suppressed = 0;
        } else {
            eprintln!("mirrorflow: {sink}: {msg}");
        }
    }
}
