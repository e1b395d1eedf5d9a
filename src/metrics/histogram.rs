//! Distributions kept in `hdrhistogram`s and exposed as Prometheus histograms.
//!
//! Values are recorded with 3 significant digits (batch latency: 2); the Prometheus buckets
//! are computed at scrape time from the recorded distribution, so changing the bucket list
//! needs no change where values are recorded. A value counts in bucket `le` when the lowest
//! value of its HDR cell is ≤ `le`: bucket edges are exact to 0.1 % (latency: 1 %; counts up
//! to 2048 exactly).
//! `_sum` is kept exactly beside the histogram.

use hdrhistogram::Histogram;
use prometheus::proto;

/// Significant decimal digits kept by every histogram (0.1 % resolution).
const SIGFIG: u8 = 3;

/// Bucket upper bounds of `mirrorflow_flow_duration_seconds`.
pub const DURATION_BUCKETS_S: &[f64] = &[
    0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
/// Bucket upper bounds of `mirrorflow_flow_size_bytes`.
pub const BYTES_BUCKETS: &[f64] = &[
    64.0,
    128.0,
    256.0,
    512.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    16777216.0,
    268435456.0,
    1073741824.0,
];
/// Bucket upper bounds of `mirrorflow_flow_size_packets`.
pub const PACKETS_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 1048576.0,
];
/// Bucket upper bounds of `mirrorflow_batch_processing_seconds`.
pub const LATENCY_BUCKETS_S: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 1.0,
];

/// An HDR histogram of integer values in `unit` (seconds per unit, or 1 for plain counts),
/// with an exact sum.
#[derive(Clone, Debug)]
pub struct Distribution {
    hist: Histogram<u64>,
    /// Sum of the recorded values, in units.
    sum: u128,
    /// Value of one unit in the exported base unit (1e-6 for microseconds → seconds).
    unit: f64,
}

impl Distribution {
    /// Values 0..=`high` units; larger values are recorded as `high`.
    pub fn new(high: u64, unit: f64) -> Distribution {
        Distribution::with_sigfig(high, unit, SIGFIG)
    }

    /// As [`Distribution::new`], keeping `sigfig` significant digits (1..=5).
    pub fn with_sigfig(high: u64, unit: f64, sigfig: u8) -> Distribution {
        Distribution {
            hist: Histogram::new_with_bounds(1, high.max(2), sigfig.clamp(1, 5))
                .expect("constant bounds are valid"),
            sum: 0,
            unit,
        }
    }

    /// Flow durations, microseconds up to one year.
    pub fn duration() -> Distribution {
        Distribution::new(366 * 86_400 * 1_000_000, 1e-6)
    }

    /// Plain counts (bytes, packets) up to 2^50.
    pub fn count() -> Distribution {
        Distribution::new(1 << 50, 1.0)
    }

    pub fn record(&mut self, v: u64) {
        self.hist.saturating_record(v);
        self.sum += u128::from(v);
    }

    /// Adds every value of `other` (same bounds).
    pub fn merge(&mut self, other: &Distribution) {
        // Same bounds on both sides, so adding cannot fail; saturate rather than panic.
        if self.hist.add(&other.hist).is_err() {
            for v in other.hist.iter_recorded() {
                self.hist
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        self.sum += other.sum;
    }

    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// Prometheus histogram with cumulative counts at `bounds` (base units, ascending); the
    /// `+Inf` bucket is added by the text encoder from the count.
    pub fn to_proto(&self, bounds: &[f64]) -> proto::Histogram {
        let mut counts = vec![0u64; bounds.len()];
        for v in self.hist.iter_recorded() {
            let low = self.hist.lowest_equivalent(v.value_iterated_to()) as f64 * self.unit;
            if let Some(i) = bounds.iter().position(|&b| low <= b * (1.0 + 1e-12)) {
                counts[i] += v.count_at_value();
            }
        }
        let mut acc = 0;
        let buckets = bounds
            .iter()
            .zip(counts)
            .map(|(&b, c)| {
                acc += c;
                let mut bucket = proto::Bucket::default();
                bucket.set_upper_bound(b);
                bucket.set_cumulative_count(acc);
                bucket
            })
            .collect();
        let mut h = proto::Histogram::default();
        h.set_bucket(buckets);
        h.set_sample_count(self.hist.len());
        h.set_sample_sum(self.sum as f64 * self.unit);
        h
    }
}

/// Per-batch processing time of the flow thread, nanoseconds (up to one hour, 2 significant
/// digits: a new one is made for every snapshot, so it is kept small), between two counter
/// snapshots. Travels in [`crate::export::CounterSnapshot`].
#[derive(Clone, Debug)]
pub struct LatencyHistogram(pub Distribution);

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram(Distribution::with_sigfig(3_600 * 1_000_000_000, 1e-9, 2))
    }
}

impl LatencyHistogram {
    pub fn record(&mut self, d: std::time::Duration) {
        self.0
            .record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_exact_for_small_counts() {
        let mut d = Distribution::count();
        for v in [1, 1, 2, 3, 100, 5000] {
            d.record(v);
        }
        let h = d.to_proto(&[1.0, 2.0, 4.0, 128.0, 4096.0]);
        let got: Vec<u64> = h
            .get_bucket()
            .iter()
            .map(|b| b.cumulative_count())
            .collect();
        assert_eq!(got, [2, 3, 4, 5, 5]);
        assert_eq!(h.get_sample_count(), 6);
        assert_eq!(h.get_sample_sum(), 5107.0);
    }

    #[test]
    fn durations_are_exported_in_seconds() {
        let mut d = Distribution::duration();
        d.record(0);
        d.record(500_000); // 0.5 s
        d.record(2_000_000); // 2 s
        let h = d.to_proto(DURATION_BUCKETS_S);
        let at = |le: f64| {
            h.get_bucket()
                .iter()
                .find(|b| b.upper_bound() == le)
                .unwrap()
                .cumulative_count()
        };
        assert_eq!((at(0.001), at(0.5), at(1.0), at(5.0)), (1, 2, 2, 3));
        assert!((h.get_sample_sum() - 2.5).abs() < 1e-9);
    }

    #[test]
    fn merge_and_saturate() {
        let mut a = LatencyHistogram::default();
        a.record(std::time::Duration::from_micros(30));
        let mut b = LatencyHistogram::default();
        b.record(std::time::Duration::from_secs(100_000)); // beyond one hour: saturates
        a.0.merge(&b.0);
        assert_eq!(a.0.len(), 2);
        let h = a.0.to_proto(LATENCY_BUCKETS_S);
        assert_eq!(h.get_bucket()[2].cumulative_count(), 1); // le 50 µs
        assert_eq!(h.get_bucket().last().unwrap().cumulative_count(), 1);
    }

    #[test]
    fn bucket_lists_ascend() {
        for b in [
            DURATION_BUCKETS_S,
            BYTES_BUCKETS,
            PACKETS_BUCKETS,
            LATENCY_BUCKETS_S,
        ] {
            assert!(b.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
