//! Pacing of UDP export: a token bucket in datagrams per second. UDP has no flow control
//! (RFC 7011 §10.3.3 leaves congestion avoidance to the exporter), so a burst of expired
//! flows would otherwise overrun the collector's socket buffer.

use std::time::{Duration, Instant};

/// Burst size of the token bucket: 20 ms worth of datagrams, 1..=64.
pub fn burst_for(rate: u32) -> u32 {
    (rate / 50).clamp(1, 64)
}

/// Token bucket in datagrams; [`TokenBucket::take_n`] sleeps at most `n / rate` (`n` at most
/// the burst, 20 ms worth) per wait, so a sink thread stuck here still drains its (bounded)
/// queue and exits.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: u32) -> Self {
        let burst = f64::from(burst_for(rate));
        TokenBucket {
            rate: f64::from(rate.max(1)),
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
    }

    /// Waits for one token and spends it.
    pub fn take(&mut self) {
        self.take_n(1);
    }

    /// Waits for `n` tokens and spends them (one send of `n` segmented datagrams). Callers
    /// keep `n` within [`TokenBucket::burst`], the most the bucket holds; a larger `n` is
    /// charged as the burst.
    pub fn take_n(&mut self, n: u32) {
        debug_assert!(
            n as f64 <= self.burst,
            "{n} tokens at once, burst {}",
            self.burst
        );
        let n = f64::from(n).min(self.burst);
        self.refill();
        while self.tokens < n {
            std::thread::sleep(Duration::from_secs_f64((n - self.tokens) / self.rate));
            self.refill();
        }
        self.tokens -= n;
    }

    /// The most tokens one [`TokenBucket::take_n`] can spend.
    pub fn burst(&self) -> u32 {
        self.burst as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_paces_after_the_burst() {
        let mut b = TokenBucket::new(1000);
        let t0 = Instant::now();
        for _ in 0..(burst_for(1000) + 20) {
            b.take();
        }
        // 20 datagrams beyond the burst at 1000/s: about 20 ms.
        assert!(
            t0.elapsed() >= Duration::from_millis(15),
            "{:?}",
            t0.elapsed()
        );
    }

    #[test]
    fn batches_spend_their_size() {
        let mut b = TokenBucket::new(1000);
        assert_eq!(b.burst(), 20);
        let t0 = Instant::now();
        // The burst, then four more batches of 10 at 1000/s: about 40 ms.
        for _ in 0..3 {
            b.take_n(10);
            b.take_n(10);
        }
        assert!(
            t0.elapsed() >= Duration::from_millis(35),
            "{:?}",
            t0.elapsed()
        );
    }

    #[test]
    fn burst_is_bounded() {
        assert_eq!(burst_for(1), 1);
        assert_eq!(burst_for(2000), 40);
        assert_eq!(burst_for(1_000_000), 64);
    }
}
