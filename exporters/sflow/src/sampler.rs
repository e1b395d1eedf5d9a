//! Random 1-in-N packet sampling with the skip-count method.
//!
//! sFlow v5 §4.2 ("Packet Flow Sampling") and sflow.org "Packet Sampling Basics": rather
//! than drawing a random number per packet, the agent keeps a skip counter, decrements
//! it for every packet and takes a sample when it reaches zero; it then draws the next
//! skip uniformly from `1 ..= 2N - 1`, whose mean is `N`. Per packet this costs one
//! decrement, one increment and one well-predicted branch.

/// A 1-in-N packet sampler for one data source.
///
/// It also keeps the data source's `sample_pool` (packets that could have been
/// sampled) and flow sample `sequence_number`, as carried by `flow_sample` (sFlow v5 §5).
#[derive(Debug, Clone)]
pub struct Sampler {
    rate: u32,
    skip: u64,
    sample_pool: u32,
    sequence_number: u32,
    rng: fastrand::Rng,
}

impl Sampler {
    /// Sampler taking on average one packet in `rate`, with its RNG seeded by `seed`
    /// (same seed, same decisions). `rate` 1 samples every packet; `rate` 0 disables
    /// sampling (no packet is ever sampled, the pool still counts).
    pub fn new(rate: u32, seed: u64) -> Self {
        let mut s = Sampler {
            rate,
            skip: 0,
            sample_pool: 0,
            sequence_number: 0,
            rng: fastrand::Rng::with_seed(seed),
        };
        s.skip = s.next_skip();
        s
    }

    /// Draws the next skip: uniform in `1 ..= 2 * rate - 1` (mean `rate`); for rate 0,
    /// `u64::MAX` (never reached in practice).
    fn next_skip(&mut self) -> u64 {
        match self.rate {
            0 => u64::MAX,
            1 => 1,
            n => self.rng.u64(1..=2 * u64::from(n) - 1),
        }
    }

    /// Counts one packet and tells whether to sample it. Call once per packet.
    #[inline]
    pub fn should_sample(&mut self) -> bool {
        self.sample_pool = self.sample_pool.wrapping_add(1);
        self.skip -= 1;
        if self.skip != 0 {
            return false;
        }
        self.take_sample()
    }

    #[cold]
    fn take_sample(&mut self) -> bool {
        self.skip = self.next_skip();
        if self.rate == 0 {
            return false;
        }
        self.sequence_number = self.sequence_number.wrapping_add(1);
        true
    }

    /// The sampling rate N.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Packets seen so far (`flow_sample.sample_pool`; wraps at 2^32).
    pub fn sample_pool(&self) -> u32 {
        self.sample_pool
    }

    /// Samples taken so far: the `flow_sample.sequence_number` of the latest sample.
    pub fn sequence_number(&self) -> u32 {
        self.sequence_number
    }

    /// Packets still to be skipped before the next sample (1 = the next packet).
    pub fn skip(&self) -> u64 {
        self.skip
    }

    /// Copies `sequence_number`, `sampling_rate` and `sample_pool` into a flow sample
    /// being built for the packet just sampled.
    pub fn stamp(&self, sample: &mut crate::FlowSampleRepr) {
        sample.sequence_number = self.sequence_number;
        sample.sampling_rate = self.rate;
        sample.sample_pool = self.sample_pool;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_one_samples_every_packet() {
        let mut s = Sampler::new(1, 99);
        for i in 1..=10_000u32 {
            assert!(s.should_sample());
            assert_eq!(s.sequence_number(), i);
            assert_eq!(s.sample_pool(), i);
        }
    }

    #[test]
    fn rate_64_over_a_million_packets_is_within_three_sigma() {
        const PACKETS: u32 = 1_000_000;
        const RATE: f64 = 64.0;
        let p = 1.0 / RATE;
        let mean = f64::from(PACKETS) * p;
        // Binomial sigma; the skip-count method's variance is lower still (about N/3 per
        // skip vs N^2 for Bernoulli), so this bound is conservative.
        let sigma = (f64::from(PACKETS) * p * (1.0 - p)).sqrt();
        for seed in [1u64, 2, 3, 0xDEAD_BEEF] {
            let mut s = Sampler::new(64, seed);
            let taken = (0..PACKETS).filter(|_| s.should_sample()).count() as f64;
            assert!(
                (taken - mean).abs() <= 3.0 * sigma,
                "seed {seed}: {taken} samples, expected {mean} ± {}",
                3.0 * sigma
            );
            assert_eq!(f64::from(s.sequence_number()), taken);
            assert_eq!(s.sample_pool(), PACKETS);
        }
    }

    #[test]
    fn skips_are_uniform_between_1_and_2n_minus_1() {
        let mut s = Sampler::new(8, 7);
        let mut last = 0u32;
        let mut seen = [false; 16];
        for _ in 0..100_000 {
            if s.should_sample() {
                let gap = s.sample_pool() - last;
                last = s.sample_pool();
                assert!((1..=15).contains(&gap), "gap {gap}");
                seen[gap as usize] = true;
            }
        }
        assert!(seen[1..=15].iter().all(|&b| b), "every gap 1..=15 occurs");
        assert!(!seen[0]);
    }

    #[test]
    fn same_seed_same_decisions_other_seed_differs() {
        let run = |seed| {
            let mut s = Sampler::new(16, seed);
            (0..10_000).map(|_| s.should_sample()).collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }

    #[test]
    fn rate_zero_never_samples() {
        let mut s = Sampler::new(0, 1);
        assert!((0..100_000).all(|_| !s.should_sample()));
        assert_eq!(s.sample_pool(), 100_000);
        assert_eq!(s.sequence_number(), 0);
    }

    #[test]
    fn stamp_copies_counters() {
        let mut s = Sampler::new(1, 1);
        s.should_sample();
        s.should_sample();
        let mut f = crate::FlowSampleRepr::default();
        s.stamp(&mut f);
        assert_eq!(
            (f.sequence_number, f.sampling_rate, f.sample_pool),
            (2, 1, 2)
        );
    }

    #[test]
    fn huge_rate_does_not_overflow() {
        let mut s = Sampler::new(u32::MAX, 3);
        assert!((1..2 * u64::from(u32::MAX)).contains(&s.skip()));
        for _ in 0..1000 {
            s.should_sample();
        }
    }
}
