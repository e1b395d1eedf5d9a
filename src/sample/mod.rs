//! Packet sampling and port counters: what the source threads keep for sFlow and metrics,
//! besides flows.
//!
//! - [`PacketSample`]: a sampled frame's first bytes plus the decoded fields an sFlow flow
//!   sample needs (sFlow v5 §5 `flow_sample`: sampled header, extended switch).
//! - [`PortCounters`]: interface counters per port (sFlow v5 `if_counters`), kept from the
//!   traffic the probe sees.
//!
//! Sampling decisions are made per frame before decoding, with the skip-count sampler of the
//! sFlow crate, so frames nobody samples cost a decrement.

use std::collections::BTreeMap;

use crate::decode::FrameInfo;

/// One sampled frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketSample {
    pub frame: FrameInfo,
    pub linktype: u32,
    /// The first bytes of the frame (at most the configured header size).
    pub header: Vec<u8>,
    /// Outermost VLAN id (0 untagged) and its priority.
    pub vlan_id: u16,
    pub vlan_pcp: u8,
    /// Tunnel id (VNI, GRE key, ERSPAN session) when the frame came in a tunnel.
    pub tunnel_id: Option<u32>,
    /// Port the frame entered the switch on (its source), and left on (its destination).
    pub in_port: u32,
    pub out_port: u32,
    /// 1-in-N rate the sample was taken at.
    pub sampling_rate: u32,
    /// Frames the sampler of this source has seen, this one included.
    pub sample_pool: u32,
    /// Flow sample sequence number of this source.
    pub sequence: u32,
    /// Frames of this source lost before sampling (capture drops).
    pub drops: u32,
    /// Data source (capture interface) index.
    pub source_index: u32,
}

/// Interface counters of one port, as seen on the mirror (sFlow v5 generic interface counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Traffic the port received from its VM (frames whose source is behind the port).
    pub in_octets: u64,
    pub in_unicast: u64,
    pub in_multicast: u64,
    pub in_broadcast: u64,
    /// Traffic the port sent to its VM.
    pub out_octets: u64,
    pub out_unicast: u64,
    pub out_multicast: u64,
    pub out_broadcast: u64,
}

impl PortCounters {
    /// Adds `d`'s counts.
    pub fn add(&mut self, d: &PortCounters) {
        self.in_octets += d.in_octets;
        self.in_unicast += d.in_unicast;
        self.in_multicast += d.in_multicast;
        self.in_broadcast += d.in_broadcast;
        self.out_octets += d.out_octets;
        self.out_unicast += d.out_unicast;
        self.out_multicast += d.out_multicast;
        self.out_broadcast += d.out_broadcast;
    }
}

/// Most ports counted one by one; the rest share [`OTHER_PORT`].
pub const MAX_PORTS: usize = 4096;
/// Port index of the shared bucket.
pub const OTHER_PORT: u32 = 0x3fff_fffe;

/// Counters by port index, bounded by [`MAX_PORTS`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortTable {
    pub ports: BTreeMap<u32, PortCounters>,
}

impl PortTable {
    fn slot(&mut self, port: u32) -> &mut PortCounters {
        let key = if self.ports.len() >= MAX_PORTS && !self.ports.contains_key(&port) {
            OTHER_PORT
        } else {
            port
        };
        self.ports.entry(key).or_default()
    }

    /// Counts one frame of `octets` with destination MAC `dst_mac`, entering at `in_port` and
    /// leaving at `out_port` (either may be 0: not a known port).
    pub fn count_frame(&mut self, in_port: u32, out_port: u32, dst_mac: &[u8; 6], octets: u32) {
        let mut f = Frames::default();
        f.add(dst_mac, octets);
        self.add_frames(in_port, out_port, &f);
    }

    /// Adds frames that entered at `in_port` and left at `out_port` (0: not a known port).
    fn add_frames(&mut self, in_port: u32, out_port: u32, f: &Frames) {
        if in_port != 0 {
            let c = self.slot(in_port);
            c.in_octets += f.octets;
            c.in_unicast += f.unicast;
            c.in_multicast += f.multicast;
            c.in_broadcast += f.broadcast;
        }
        if out_port != 0 {
            let c = self.slot(out_port);
            c.out_octets += f.octets;
            c.out_unicast += f.unicast;
            c.out_multicast += f.multicast;
            c.out_broadcast += f.broadcast;
        }
    }

    pub fn absorb(&mut self, d: &PortTable) {
        for (&port, c) in &d.ports {
            self.slot(port).add(c);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }
}

/// Frames counted together: octets and frames by destination class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Frames {
    octets: u64,
    unicast: u64,
    multicast: u64,
    broadcast: u64,
}

impl Frames {
    #[inline]
    fn add(&mut self, dst_mac: &[u8; 6], octets: u32) {
        self.octets += u64::from(octets);
        match dst_mac {
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] => self.broadcast += 1,
            m if m[0] & 1 == 1 => self.multicast += 1,
            _ => self.unicast += 1,
        }
    }
}

/// Counts frames into a [`PortTable`], adding them up while their (in, out) port pair
/// repeats. On a mirror without a port map every frame has the same pair, so a frame costs
/// a few additions instead of a map lookup. Call [`PortCounter::flush`] before reading the
/// table.
#[derive(Clone, Debug, Default)]
pub struct PortCounter {
    pair: (u32, u32),
    pending: Frames,
}

impl PortCounter {
    #[inline]
    pub fn count(
        &mut self,
        table: &mut PortTable,
        in_port: u32,
        out_port: u32,
        dst_mac: &[u8; 6],
        octets: u32,
    ) {
        if self.pair != (in_port, out_port) {
            self.flush(table);
            self.pair = (in_port, out_port);
        }
        self.pending.add(dst_mac, octets);
    }

    /// Moves what is pending into `table`.
    pub fn flush(&mut self, table: &mut PortTable) {
        if self.pending != Frames::default() {
            table.add_frames(self.pair.0, self.pair.1, &self.pending);
            self.pending = Frames::default();
        }
    }
}

/// sFlow-style packet sampling settings for the sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplingConfig {
    /// 1-in-N.
    pub rate: u32,
    /// Bytes of each sampled frame kept.
    pub header_bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_classified_by_destination_mac() {
        let mut t = PortTable::default();
        t.count_frame(1, 2, &[0x02, 0, 0, 0, 0, 1], 100);
        t.count_frame(1, 0, &[0x01, 0, 0x5e, 0, 0, 1], 60);
        t.count_frame(2, 0, &[0xff; 6], 42);
        let p1 = t.ports[&1];
        assert_eq!((p1.in_octets, p1.in_unicast, p1.in_multicast), (160, 1, 1));
        let p2 = t.ports[&2];
        assert_eq!(
            (p2.out_octets, p2.out_unicast, p2.in_broadcast),
            (100, 1, 1)
        );
    }

    /// Counting through a [`PortCounter`] gives the same table as frame by frame, whatever
    /// the order of port pairs.
    #[test]
    fn the_port_counter_adds_up_like_single_frames() {
        let macs = [[0x02, 0, 0, 0, 0, 1], [0x01, 0, 0x5e, 0, 0, 1], [0xff; 6]];
        let (mut one, mut many, mut c) = (
            PortTable::default(),
            PortTable::default(),
            PortCounter::default(),
        );
        let mut x = 12345u32;
        for i in 0..10_000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            // Long runs of one pair, then changes, as on a mirror.
            let pair = if i % 1000 < 900 {
                (1, 0)
            } else {
                (x % 4, (x >> 8) % 4)
            };
            let mac = &macs[(x >> 16) as usize % 3];
            let len = 60 + x % 1400;
            one.count_frame(pair.0, pair.1, mac, len);
            c.count(&mut many, pair.0, pair.1, mac, len);
        }
        c.flush(&mut many);
        assert_eq!(one, many);
        c.flush(&mut many);
        assert_eq!(one, many, "a second flush adds nothing");
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = PortTable::default();
        for p in 1..=(MAX_PORTS as u32 + 10) {
            t.count_frame(p, 0, &[0; 6], 1);
        }
        assert_eq!(t.ports.len(), MAX_PORTS + 1);
        assert_eq!(t.ports[&OTHER_PORT].in_octets, 10);
    }
}
