//! Per-agent bookkeeping of sFlow input: datagram and sample sequence numbers (sFlow v5 §5:
//! the datagram sequence counts datagrams per agent and sub-agent, each data source numbers
//! its flow and counter samples), the agents' own drop counters, and restarts.

use std::collections::HashMap;
use std::net::IpAddr;

/// An sFlow agent: its address and sub-agent id (together they own a datagram sequence).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentKey {
    pub addr: IpAddr,
    pub sub_agent: u32,
}

/// A backwards jump of the datagram sequence larger than this is a restart even when the
/// agent's uptime went on (no network reorders a thousand datagrams).
const REORDER_WINDOW: u32 = 1000;
/// Most data sources whose sample sequences are followed per agent.
pub const MAX_SOURCES_PER_AGENT: usize = 4096;

/// Kind of sample, for the sample counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SampleKind {
    Flow = 0,
    Counter = 1,
}

/// What one agent has sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentStats {
    pub datagrams: u64,
    /// Datagrams missing from the sequence (gaps).
    pub lost_datagrams: u64,
    /// Datagrams that came late or twice (sequence not after the last one).
    pub out_of_order: u64,
    /// Times the agent restarted (its sequence and uptime went back).
    pub restarts: u64,
    /// Samples received, by [`SampleKind`].
    pub samples: [u64; 2],
    /// Samples of other formats (discarded-packet, RT, enterprise).
    pub other_samples: u64,
    /// Samples missing from their data source's sequence, by [`SampleKind`].
    pub lost_samples: [u64; 2],
    /// Packets the agent itself dropped (growth of the flow samples' `drops`).
    pub agent_drops: u64,
    last_seq: Option<u32>,
    last_uptime: u32,
    sources: HashMap<(SampleKind, u32, u32), SourceSeq>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SourceSeq {
    seq: u32,
    drops: u32,
}

/// How a datagram's sequence number relates to the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sequence {
    First,
    Next,
    /// This many datagrams went missing before this one.
    Gap(u32),
    /// Late or duplicate.
    OutOfOrder,
    /// The agent restarted: sample sequences start over.
    Restart,
}

impl AgentStats {
    /// Follows the datagram sequence (sFlow v5 §5 `sequence_number`, `uptime`).
    pub fn datagram(&mut self, seq: u32, uptime: u32) -> Sequence {
        self.datagrams += 1;
        let Some(last) = self.last_seq else {
            (self.last_seq, self.last_uptime) = (Some(seq), uptime);
            return Sequence::First;
        };
        let ahead = seq.wrapping_sub(last);
        let back = last.wrapping_sub(seq);
        let s = if ahead == 1 {
            Sequence::Next
        } else if ahead != 0 && ahead < 1 << 31 && uptime >= self.last_uptime {
            Sequence::Gap(ahead - 1)
        } else if uptime < self.last_uptime && (ahead == 0 || ahead >= 1 << 31 || seq <= 1)
            || back > REORDER_WINDOW && back < 1 << 31
        {
            Sequence::Restart
        } else {
            Sequence::OutOfOrder
        };
        match s {
            Sequence::Gap(n) => self.lost_datagrams += u64::from(n),
            Sequence::OutOfOrder => {
                self.out_of_order += 1;
                return s;
            }
            Sequence::Restart => {
                self.restarts += 1;
                self.sources.clear();
            }
            _ => {}
        }
        (self.last_seq, self.last_uptime) = (Some(seq), uptime);
        s
    }

    /// Follows a data source's sample sequence; `drops` is the flow sample's cumulative
    /// drop counter (0 for counter samples).
    pub fn sample(&mut self, kind: SampleKind, source: (u32, u32), seq: u32, drops: u32) {
        self.samples[kind as usize] += 1;
        let key = (kind, source.0, source.1);
        let Some(last) = self.sources.get_mut(&key) else {
            if self.sources.len() < MAX_SOURCES_PER_AGENT {
                self.sources.insert(key, SourceSeq { seq, drops });
            }
            return;
        };
        let ahead = seq.wrapping_sub(last.seq);
        if ahead == 0 || ahead >= 1 << 31 {
            // Late or duplicate (a restart is seen on the datagram sequence).
            return;
        }
        self.lost_samples[kind as usize] += u64::from(ahead - 1);
        if drops >= last.drops {
            self.agent_drops += u64::from(drops - last.drops);
        }
        *last = SourceSeq { seq, drops };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_counted_exactly() {
        let mut a = AgentStats::default();
        assert_eq!(a.datagram(10, 100), Sequence::First);
        assert_eq!(a.datagram(11, 101), Sequence::Next);
        assert_eq!(a.datagram(14, 102), Sequence::Gap(2));
        assert_eq!(a.datagram(13, 102), Sequence::OutOfOrder);
        assert_eq!(a.datagram(15, 103), Sequence::Next);
        assert_eq!((a.lost_datagrams, a.out_of_order, a.datagrams), (2, 1, 5));
    }

    #[test]
    fn the_sequence_wraps() {
        let mut a = AgentStats::default();
        a.datagram(u32::MAX - 1, 5);
        assert_eq!(a.datagram(u32::MAX, 6), Sequence::Next);
        assert_eq!(a.datagram(1, 7), Sequence::Gap(1));
    }

    #[test]
    fn restarts_reset_the_sample_sequences() {
        let mut a = AgentStats::default();
        a.datagram(500, 60_000);
        a.sample(SampleKind::Flow, (0, 3), 70, 0);
        assert_eq!(a.datagram(1, 20), Sequence::Restart);
        a.sample(SampleKind::Flow, (0, 3), 1, 0);
        assert_eq!(a.lost_samples, [0, 0]);
        assert_eq!(a.restarts, 1);
        // A sequence that jumps far back while uptime goes on is a restart too.
        a.datagram(5000, 30);
        assert_eq!(a.datagram(2, 40), Sequence::Restart);
    }

    #[test]
    fn sample_gaps_and_agent_drops() {
        let mut a = AgentStats::default();
        a.sample(SampleKind::Flow, (0, 3), 1, 10);
        a.sample(SampleKind::Flow, (0, 3), 2, 10);
        a.sample(SampleKind::Flow, (0, 3), 5, 17);
        a.sample(SampleKind::Counter, (0, 3), 9, 0);
        a.sample(SampleKind::Counter, (0, 3), 11, 0);
        a.sample(SampleKind::Flow, (0, 4), 1, 0);
        assert_eq!(a.lost_samples, [2, 1]);
        assert_eq!(a.agent_drops, 7);
        assert_eq!(a.samples, [4, 2]);
    }
}
