//! The export clock handed to the encoder: wall time and sysUptime.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mirrorflow_ipfix::ExportClock;

/// Export clock: wall time for `unix_ms`, an `Instant` for the uptime.
///
/// Both are moved back to the last whole wall-clock second: the headers carry whole
/// seconds (RFC 7011 §3.1 Export Time, RFC 3954 §5.1 UNIX Secs), and a collector
/// rebuilds NetFlow v9 times as `unix_secs * 1000 - sysUptime + FIRST_SWITCHED`, so a
/// fractional `unix_ms` would shift every v9 time by up to 999 ms. The uptime counts from
/// the whole second before sink creation, so it never goes below that shift.
#[derive(Debug)]
pub struct Clock {
    start: Instant,
    /// Milliseconds from the uptime origin to `start` (creation time mod 1000).
    offset_ms: u64,
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            start: Instant::now(),
            offset_ms: unix_ms_now() % 1000,
        }
    }

    pub fn now(&self) -> ExportClock {
        let unix_ms = unix_ms_now();
        let frac = unix_ms % 1000;
        let uptime_ms = self.start.elapsed().as_millis() as u64 + self.offset_ms;
        ExportClock {
            unix_ms: unix_ms - frac,
            uptime_ms: uptime_ms.saturating_sub(frac),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_on_whole_seconds() {
        let c = Clock::new();
        for _ in 0..3 {
            let t = c.now();
            assert_eq!(t.unix_ms % 1000, 0);
            assert!(t.uptime_ms < 2000, "{t:?}");
        }
    }
}
