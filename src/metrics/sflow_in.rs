//! Scrape-time families of the sFlow input (`--sflow-listen`): per agent, the datagram and
//! sample sequences and losses; per port, the counters the agents send; per Open vSwitch
//! datapath, its lookup counters. Label sets are bounded by the listener's caps (agents,
//! ports), see `crate::sflow_in::Limits`.

use prometheus::proto::MetricFamily;

use super::catalog::{self as c, Family};
use crate::ports::PortMap;
use crate::sflow_in::counters::ETHERNET_COUNTERS;
use crate::sflow_in::{AgentKey, AgentStats, BadDatagram, SflowInStats, UnusedSample};

/// Most series the sFlow-in families can hold with `max_agents` agents, `max_ports` ports
/// (and datapaths) and `relays` relay targets.
pub fn series_bound(max_agents: usize, max_ports: usize, relays: usize) -> usize {
    // datagrams, lost, out of order, restarts, agent drops; 3 sample kinds; 2 lost kinds.
    let per_agent = 5 + 3 + 2;
    // bytes 2, packets 6, discards 2, errors 2, ethernet, speed, up, info.
    let per_port = 2 + 6 + 2 + 2 + ETHERNET_COUNTERS.len() + 3;
    let per_datapath = 3 + 1;
    (max_agents + 1) * per_agent
        + BadDatagram::ALL.len()
        + 1
        + UnusedSample::ALL.len()
        + 1
        + 2 * relays
        + max_ports * per_port.max(per_datapath)
}

fn agent_labels(k: Option<&AgentKey>) -> [String; 2] {
    match k {
        Some(k) => [k.addr.to_string(), k.sub_agent.to_string()],
        None => ["other".into(), String::new()],
    }
}

/// The families, from the listener's stats; `ports` names ports and VMs by ifIndex.
pub fn families(s: &SflowInStats, ports: Option<&PortMap>) -> Vec<MetricFamily> {
    let mut out = Vec::new();
    let mut per_agent: Vec<Family> = [
        c::SFLOW_IN_DATAGRAMS,
        c::SFLOW_IN_LOST_DATAGRAMS,
        c::SFLOW_IN_OUT_OF_ORDER,
        c::SFLOW_IN_RESTARTS,
        c::SFLOW_IN_AGENT_DROPS,
    ]
    .into_iter()
    .map(Family::new)
    .collect();
    let mut samples = Family::new(c::SFLOW_IN_SAMPLES);
    let mut lost = Family::new(c::SFLOW_IN_LOST_SAMPLES);
    let agents = s
        .agents
        .iter()
        .map(|(k, a)| (Some(k), a))
        .chain((s.other_agents.datagrams > 0).then_some((None, &s.other_agents)));
    for (k, a) in agents {
        let [addr, sub] = agent_labels(k);
        let l = [addr.as_str(), sub.as_str()];
        let a: &AgentStats = a;
        for (f, v) in per_agent.iter_mut().zip([
            a.datagrams,
            a.lost_datagrams,
            a.out_of_order,
            a.restarts,
            a.agent_drops,
        ]) {
            f.add(&l, v as f64);
        }
        for (kind, n) in [
            ("flow", a.samples[0]),
            ("counter", a.samples[1]),
            ("other", a.other_samples),
        ] {
            samples.add(&[l[0], l[1], kind], n as f64);
        }
        lost.add(&[l[0], l[1], "flow"], a.lost_samples[0] as f64);
        lost.add(&[l[0], l[1], "counter"], a.lost_samples[1] as f64);
    }
    out.extend(per_agent.into_iter().map(Family::finish));
    out.push(samples.finish());
    out.push(lost.finish());

    let mut f = Family::new(c::SFLOW_IN_DROPPED);
    for b in BadDatagram::ALL {
        f.add(&[b.name()], s.bad[b as usize] as f64);
    }
    f.add(&["queue_full"], s.queue_drops as f64);
    out.push(f.finish());
    let mut f = Family::new(c::SFLOW_IN_UNUSED);
    for u in UnusedSample::ALL {
        f.add(&[u.name()], s.unused_samples[u as usize] as f64);
    }
    f.add(&["port_cap"], s.counters.over_cap as f64);
    out.push(f.finish());
    let mut relayed = Family::new(c::SFLOW_IN_RELAYED);
    let mut errors = Family::new(c::SFLOW_IN_RELAY_ERRORS);
    for (target, sent, errs) in &s.relay {
        relayed.add(&[target], *sent as f64);
        errors.add(&[target], *errs as f64);
    }
    out.push(relayed.finish());
    out.push(errors.finish());
    out.extend(port_families(s, ports));
    out
}

/// sFlow v5 §5 (`if_counters`, `ethernet_counters`, and the structures after them): a
/// 32-bit counter the agent does not know is sent as 2³² − 1 (64-bit: 2⁶⁴ − 1). Such series
/// are left out rather than exported as values.
fn known32(v: u32) -> Option<f64> {
    (v != u32::MAX).then_some(f64::from(v))
}

fn known64(v: u64) -> Option<f64> {
    (v != u64::MAX).then_some(v as f64)
}

fn port_families(s: &SflowInStats, ports: Option<&PortMap>) -> Vec<MetricFamily> {
    let mut bytes = Family::new(c::SFLOW_PORT_BYTES);
    let mut packets = Family::new(c::SFLOW_PORT_PACKETS);
    let mut discards = Family::new(c::SFLOW_PORT_DISCARDS);
    let mut errors = Family::new(c::SFLOW_PORT_ERRORS);
    let mut ethernet = Family::new(c::SFLOW_PORT_ETHERNET);
    let mut speed = Family::new(c::SFLOW_PORT_SPEED);
    let mut up = Family::new(c::SFLOW_PORT_UP);
    let mut info = Family::new(c::SFLOW_PORT_INFO);
    for ((agent, index), p) in &s.counters.ports {
        let [addr, sub] = agent_labels(Some(agent));
        let port = index.to_string();
        let l = [addr.as_str(), sub.as_str(), port.as_str()];
        let mapped = ports.and_then(|m| m.port(*index));
        let name = p
            .name
            .clone()
            .or_else(|| mapped.map(|m| m.name.clone()))
            .unwrap_or_default();
        let vm = mapped.and_then(|m| m.vm.clone()).unwrap_or_default();
        info.add(&[l[0], l[1], l[2], &name, &vm], 1.0);
        if let Some(g) = &p.generic {
            for (dir, octets, uc, mc, bc, disc, err) in [
                (
                    "in",
                    g.if_in_octets,
                    g.if_in_ucast_pkts,
                    g.if_in_multicast_pkts,
                    g.if_in_broadcast_pkts,
                    g.if_in_discards,
                    g.if_in_errors,
                ),
                (
                    "out",
                    g.if_out_octets,
                    g.if_out_ucast_pkts,
                    g.if_out_multicast_pkts,
                    g.if_out_broadcast_pkts,
                    g.if_out_discards,
                    g.if_out_errors,
                ),
            ] {
                let d = [l[0], l[1], l[2], dir];
                if let Some(v) = known64(octets) {
                    bytes.add(&d, v);
                }
                for (cast, n) in [("unicast", uc), ("multicast", mc), ("broadcast", bc)] {
                    if let Some(v) = known32(n) {
                        packets.add(&[l[0], l[1], l[2], dir, cast], v);
                    }
                }
                if let Some(v) = known32(disc) {
                    discards.add(&d, v);
                }
                if let Some(v) = known32(err) {
                    errors.add(&d, v);
                }
            }
            if let Some(v) = known64(g.if_speed) {
                speed.add(&l, v / 8.0);
            }
            // ifStatus bit 1: ifOperStatus up (sFlow v5 §5 if_counters).
            up.add(&l, f64::from((g.if_status >> 1) & 1));
        }
        if let Some(e) = &p.ethernet {
            for (name, v) in ETHERNET_COUNTERS.iter().zip(e) {
                if let Some(v) = known32(*v) {
                    ethernet.add(&[l[0], l[1], l[2], name], v);
                }
            }
        }
    }
    let mut lookups = Family::new(c::SFLOW_OVS_LOOKUPS);
    let mut flows = Family::new(c::SFLOW_OVS_FLOWS);
    for ((agent, index), d) in &s.counters.datapaths {
        let [addr, sub] = agent_labels(Some(agent));
        let dp = index.to_string();
        for (result, n) in [("hit", d.hits), ("missed", d.misses), ("lost", d.lost)] {
            if let Some(v) = known32(n) {
                lookups.add(&[&addr, &sub, &dp, result], v);
            }
        }
        if let Some(v) = known32(d.flows) {
            flows.add(&[&addr, &sub, &dp], v);
        }
    }
    [
        bytes, packets, discards, errors, ethernet, speed, up, info, lookups, flows,
    ]
    .into_iter()
    .map(Family::finish)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sflow_in::counters::CounterTable;
    use sflow_parser::models::record_counters::{
        EthernetInterfaceCounters, GenericInterfaceCounters,
    };

    fn agent(i: u32) -> AgentKey {
        AgentKey {
            addr: std::net::IpAddr::from([192, 0, 2, i as u8]),
            sub_agent: i,
        }
    }

    /// Counters an agent sends as 2³² − 1 ("unknown", as Open vSwitch does for broadcast
    /// and most Ethernet counters) have no series.
    #[test]
    fn unknown_counters_have_no_series() {
        let mut s = SflowInStats {
            counters: CounterTable::new(4),
            ..SflowInStats::default()
        };
        let mut g = generic();
        g.if_in_broadcast_pkts = u32::MAX;
        g.if_in_octets = 1234;
        s.counters.generic(agent(0), 5, &g);
        let fams = families(&s, None);
        let packets = fams
            .iter()
            .find(|f| f.name() == "mirrorflow_sflow_port_packets_total")
            .unwrap();
        assert_eq!(packets.get_metric().len(), 5, "6 series less in-broadcast");
        let bytes = fams
            .iter()
            .find(|f| f.name() == "mirrorflow_sflow_port_bytes_total")
            .unwrap();
        assert_eq!(bytes.get_metric()[0].get_counter().get_value(), 1234.0);
    }

    /// With every agent slot, the `other` bucket, every port slot and every relay in use,
    /// the families hold exactly [`series_bound`] series.
    #[test]
    fn a_full_state_reaches_the_bound_and_no_more() {
        let (agents, ports, relays) = (4, 6, 2);
        let mut s = SflowInStats {
            counters: CounterTable::new(ports),
            ..SflowInStats::default()
        };
        for i in 0..agents {
            s.agents.insert(agent(i as u32), AgentStats::default());
        }
        s.other_agents.datagrams = 1;
        s.relay = (0..relays).map(|i| (format!("r{i}"), 1, 0)).collect();
        let g = generic();
        let e = ethernet();
        for i in 0..ports as u32 + 3 {
            s.counters.generic(agent(0), i, &g);
            s.counters.ethernet(agent(0), i, &e);
        }
        let series: usize = families(&s, None)
            .iter()
            .map(|f| f.get_metric().len())
            .sum();
        assert_eq!(series, series_bound(agents, ports, relays));
        assert_eq!(series_bound(64, 1024, 0), 29_334);
    }

    fn generic() -> GenericInterfaceCounters {
        GenericInterfaceCounters {
            if_index: 0,
            if_type: 6,
            if_speed: 0,
            if_direction: 0,
            if_status: 3,
            if_in_octets: 0,
            if_in_ucast_pkts: 0,
            if_in_multicast_pkts: 0,
            if_in_broadcast_pkts: 0,
            if_in_discards: 0,
            if_in_errors: 0,
            if_in_unknown_protos: 0,
            if_out_octets: 0,
            if_out_ucast_pkts: 0,
            if_out_multicast_pkts: 0,
            if_out_broadcast_pkts: 0,
            if_out_discards: 0,
            if_out_errors: 0,
            if_promiscuous_mode: 0,
        }
    }

    fn ethernet() -> EthernetInterfaceCounters {
        EthernetInterfaceCounters {
            dot3_stats_alignment_errors: 0,
            dot3_stats_fcs_errors: 0,
            dot3_stats_single_collision_frames: 0,
            dot3_stats_multiple_collision_frames: 0,
            dot3_stats_sqe_test_errors: 0,
            dot3_stats_deferred_transmissions: 0,
            dot3_stats_late_collisions: 0,
            dot3_stats_excessive_collisions: 0,
            dot3_stats_internal_mac_transmit_errors: 0,
            dot3_stats_carrier_sense_errors: 0,
            dot3_stats_frame_too_longs: 0,
            dot3_stats_internal_mac_receive_errors: 0,
            dot3_stats_symbol_errors: 0,
        }
    }
}
