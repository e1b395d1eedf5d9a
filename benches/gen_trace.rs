//! Synthetic benchmark trace generator for mirrorflow.
//!
//! ```text
//! cargo run --release --example gen_trace -- --packets N --flows F --seed S -o FILE
//!     [--zipf EXP] [--duration SECS]
//! ```
//!
//! Writes a classic pcap file (magic `a1b2c3d4`, microsecond timestamps,
//! version 2.4, snaplen 128, linktype 1 = Ethernet) whose content is a pure
//! function of the parameters (same seed, same bytes).  Defaults: 10 000 000
//! packets, 1 000 000 flows, seed 1, Zipf exponent 1.1, 60 s of trace time.
//!
//! The trace:
//!
//! * `F` distinct unidirectional flows.  Per flow (decided by a hash of the
//!   seed and the flow id): 20 % IPv6 / 80 % IPv4, 10 % carry an 802.1Q tag
//!   (VLAN 1..=4094), protocol ~70 % TCP / ~25 % UDP / ~5 % ICMP (echo
//!   request; ICMPv6 for IPv6 flows).  Every flow has a unique source address
//!   (10.0.0.0/8 or fd00:6d66::/32, derived bijectively from the flow id), so
//!   5-tuples never collide; destinations come from a small "server" pool
//!   (198.18.0.0/15 or 2001:db8::/32) with realistic well-known ports.
//! * Flow sizes are Zipf-distributed: every flow gets exactly one "first"
//!   packet, placed at a uniformly random position of the trace (selection
//!   sampling over a shuffled flow order); every other slot draws a flow from
//!   Zipf(`EXP`) over flow ranks (alias method).  The total is exactly `N`
//!   packets and each flow has at least one packet.  Flows are interleaved over
//!   time; heavy flows span the whole trace (so active timeouts fire), most
//!   flows have a handful of packets (so idle timeouts fire).
//! * Packet sizes follow simple IMIX on the wire (pcap original length, FCS
//!   excluded): 7 small : 4 x 576 : 1 x 1500, chosen per packet.  "Small" is
//!   `max(64, L2 + L3 + L4 headers)`, i.e. 64 for IPv4 (68 with VLAN), 74 for
//!   IPv6/TCP, 62+ rounded up to 64 for IPv6/UDP/ICMPv6, etc.  The captured
//!   length is `min(orig, 128)`; the bytes past the headers are zero.
//! * Headers are valid: IPv4 total length / IPv6 payload length match the
//!   original frame length exactly (no Ethernet padding), IPv4 header checksum
//!   and TCP/UDP/ICMP/ICMPv6 checksums are correct for the (all-zero) full
//!   payload, UDP length is set, IPv4 has DF and TTL 64.  The first packet of a
//!   TCP flow is a SYN, later ones ACK (PSH|ACK when they carry data), sequence
//!   numbers advance by the payload length.  No FIN/RST: flows end by timeout.
//! * Timestamps are non-decreasing with 1 us resolution, spread uniformly (with
//!   jitter) over `SECS` seconds starting at 2023-11-14T22:13:20Z.
//!
//! At the end a summary line is printed to stderr and a sidecar
//! `FILE.truth.json` is written with the exact totals: `packets`, `flows`,
//! `ip_bytes` (sum of IP total lengths; IPv6: 40 + payload length),
//! `l2_bytes` (sum of original frame lengths), `ipv4_packets`,
//! `ipv6_packets`, `vlan_packets` plus a few extra fields (parameters,
//! per-protocol packet counts, time span).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

const SNAPLEN: usize = 128;
const START_TS_US: u64 = 1_700_000_000 * 1_000_000;
const MAX_FLOWS: u64 = 1 << 24;

// ---------------------------------------------------------------- RNG ----

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64 finaliser: a good stateless 64-bit mixer.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// splitmix64 generator.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(mix64(seed ^ 0x6D69_7272_6F72_666C))
    }
    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix64(self.0)
    }
    /// Uniform in `0..n` (Lemire's multiply-shift; bias < n / 2^64).
    #[inline]
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

// --------------------------------------------------------------- Zipf ----

/// Walker/Vose alias table over ranks `0..n` with weight `1 / (r+1)^s`.
struct Zipf {
    prob: Vec<u32>,
    alias: Vec<u32>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let w: Vec<f64> = (0..n).map(|r| ((r + 1) as f64).powf(-s)).collect();
        let total: f64 = w.iter().sum();
        let mut scaled: Vec<f64> = w.iter().map(|x| x * n as f64 / total).collect();
        let mut prob = vec![u32::MAX; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let mut small: Vec<u32> = Vec::with_capacity(n);
        let mut large: Vec<u32> = Vec::with_capacity(n);
        for (i, &p) in scaled.iter().enumerate() {
            if p < 1.0 {
                small.push(i as u32)
            } else {
                large.push(i as u32)
            }
        }
        while let (Some(&l), Some(&g)) = (small.last(), large.last()) {
            small.pop();
            prob[l as usize] = (scaled[l as usize] * 4_294_967_296.0).min(u32::MAX as f64) as u32;
            alias[l as usize] = g;
            scaled[g as usize] = (scaled[g as usize] + scaled[l as usize]) - 1.0;
            if scaled[g as usize] < 1.0 {
                large.pop();
                small.push(g);
            }
        }
        // Leftovers (numerical noise) keep prob = 1 (u32::MAX ~ always self).
        Zipf { prob, alias }
    }

    #[inline]
    fn sample(&self, rng: &mut Rng) -> u32 {
        let r = rng.next_u64();
        let i = (((r >> 32) * self.prob.len() as u64) >> 32) as usize;
        if (r as u32) < self.prob[i] {
            i as u32
        } else {
            self.alias[i]
        }
    }
}

// -------------------------------------------------------------- Flows ----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
    Icmp,
}

struct FlowDesc {
    v6: bool,
    vlan: Option<u16>,
    proto: Proto,
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    flow_label: u32,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    isn: u32,
}

const TCP_PORTS: [u16; 8] = [443, 443, 443, 80, 80, 22, 8080, 3306];
const UDP_PORTS: [u16; 8] = [53, 53, 443, 123, 4789, 5060, 514, 161];

/// Everything about flow `id` that does not change per packet: a pure
/// function of (seed, id).  Cheap enough to recompute per packet.
#[inline]
fn flow_desc(seed: u64, id: u32) -> FlowDesc {
    let base = mix64(seed.wrapping_mul(GOLDEN) ^ mix64(id as u64 ^ 0xF10F));
    let h1 = mix64(base.wrapping_add(1));
    let h2 = mix64(base.wrapping_add(2));
    let h3 = mix64(base.wrapping_add(3));
    let v6 = h1 % 100 < 20;
    let vlan = if (h1 >> 32) % 100 < 10 {
        Some(1 + (h2 % 4094) as u16)
    } else {
        None
    };
    let pr = (h2 >> 32) % 100;
    let proto = if pr < 70 {
        Proto::Tcp
    } else if pr < 95 {
        Proto::Udp
    } else {
        Proto::Icmp
    };
    // Bijective id -> 24-bit host part (odd multiplier mod 2^24), so every
    // flow has its own source address.
    let host = (id.wrapping_mul(0x9E_3779).wrapping_add(seed as u32)) & 0x00FF_FFFF;
    let server = (h3 & 0xFFF) as u32; // 4096 servers
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    if v6 {
        src[..4].copy_from_slice(&[0xfd, 0x00, 0x6d, 0x66]);
        src[8..12].copy_from_slice(&((h3 >> 32) as u32).to_be_bytes());
        src[12..16].copy_from_slice(&host.to_be_bytes());
        dst[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        dst[15] = 1;
        dst[4..8].copy_from_slice(&server.to_be_bytes());
    } else {
        src[..4].copy_from_slice(&(0x0A00_0000 | host).to_be_bytes());
        dst[..4].copy_from_slice(&(0xC612_0000 | (server * 17 % 0x1_FFFF)).to_be_bytes());
    }
    let (sport, dport) = match proto {
        Proto::Tcp => (
            32768 + ((h3 >> 12) % 28232) as u16,
            TCP_PORTS[((h3 >> 40) & 7) as usize],
        ),
        Proto::Udp => (
            32768 + ((h3 >> 12) % 28232) as u16,
            UDP_PORTS[((h3 >> 40) & 7) as usize],
        ),
        // ICMP echo: "sport" = identifier, type/code fixed.
        Proto::Icmp => ((h3 >> 12) as u16, 0),
    };
    let mut src_mac = [0x02, 0x00, 0, 0, 0, 0];
    src_mac[2..6].copy_from_slice(&((h2 >> 8) as u32).to_be_bytes());
    let mut dst_mac = [0x02, 0x53, 0, 0, 0, 0];
    dst_mac[2..6].copy_from_slice(&server.to_be_bytes());
    FlowDesc {
        v6,
        vlan,
        proto,
        src,
        dst,
        sport,
        dport,
        flow_label: (base >> 44) as u32 & 0xF_FFFF,
        src_mac,
        dst_mac,
        isn: (base >> 8) as u32,
    }
}

// ---------------------------------------------------------- Checksums ----

#[inline]
fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [b] = chunks.remainder() {
        acc += (*b as u32) << 8;
    }
    acc
}

#[inline]
fn fold(mut acc: u32) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    !(acc as u16)
}

// ---------------------------------------------------------------- CLI ----

struct Args {
    packets: u64,
    flows: u64,
    seed: u64,
    zipf: f64,
    duration_s: f64,
    out: String,
}

const USAGE: &str = "usage: gen_trace [--packets N] [--flows F] [--seed S] [--zipf EXP] \
[--duration SECS] -o FILE\n  defaults: --packets 10000000 --flows 1000000 --seed 1 --zipf 1.1 \
--duration 60 -o trace.pcap\n  numbers may contain '_' and a k/M/G suffix";

fn parse_num(s: &str) -> Result<u64, String> {
    let t: String = s.chars().filter(|&c| c != '_').collect();
    let (digits, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1_000),
        Some('m' | 'M') => (&t[..t.len() - 1], 1_000_000),
        Some('g' | 'G') => (&t[..t.len() - 1], 1_000_000_000),
        _ => (&t[..], 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|v| v.checked_mul(mult))
        .ok_or_else(|| format!("bad number: {s:?}"))
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        packets: 10_000_000,
        flows: 1_000_000,
        seed: 1,
        zipf: 1.1,
        duration_s: 60.0,
        out: "trace.pcap".to_string(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if key == "-h" || key == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let val = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{key} needs a value"))?,
        };
        match key.as_str() {
            "-n" | "--packets" => a.packets = parse_num(&val)?,
            "-f" | "--flows" => a.flows = parse_num(&val)?,
            "-s" | "--seed" => a.seed = parse_num(&val)?,
            "-o" | "--output" => a.out = val,
            "--zipf" => a.zipf = val.parse().map_err(|_| format!("bad --zipf {val:?}"))?,
            "--duration" => {
                a.duration_s = val.parse().map_err(|_| format!("bad --duration {val:?}"))?
            }
            _ => return Err(format!("unknown argument {key:?}")),
        }
    }
    if a.flows == 0 || a.flows > MAX_FLOWS {
        return Err(format!("--flows must be in 1..={MAX_FLOWS}"));
    }
    if a.packets < a.flows {
        return Err("--packets must be >= --flows (every flow has >= 1 packet)".into());
    }
    if !(a.zipf.is_finite() && a.zipf > 0.0 && a.duration_s.is_finite() && a.duration_s > 0.0) {
        return Err("--zipf and --duration must be > 0".into());
    }
    Ok(a)
}

// --------------------------------------------------------------- main ----

#[derive(Default)]
struct Truth {
    ip_bytes: u64,
    l2_bytes: u64,
    cap_bytes: u64,
    ipv4: u64,
    ipv6: u64,
    vlan: u64,
    tcp: u64,
    udp: u64,
    icmp: u64,
    syn: u64,
    first_ts: u64,
    last_ts: u64,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gen_trace: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_trace: {}: {e}", args.out);
            ExitCode::FAILURE
        }
    }
}

fn run(a: &Args) -> std::io::Result<()> {
    let t0 = Instant::now();
    let n = a.packets;
    let nflows = a.flows as usize;
    let mut rng = Rng::new(a.seed);

    let zipf = Zipf::new(nflows, a.zipf);
    // Order in which flows get their guaranteed first packet.
    let mut order: Vec<u32> = (0..nflows as u32).collect();
    for i in (1..nflows).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    // Per-flow state: next TCP sequence number / ICMP echo sequence.
    let mut state: Vec<u32> = vec![0; nflows];
    let mut seen: Vec<u64> = vec![0; nflows.div_ceil(64)];

    let mut w = BufWriter::with_capacity(4 << 20, File::create(&a.out)?);
    // Global header, native (little-endian) byte order.
    let mut gh = [0u8; 24];
    gh[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    gh[4..6].copy_from_slice(&2u16.to_le_bytes());
    gh[6..8].copy_from_slice(&4u16.to_le_bytes());
    gh[16..20].copy_from_slice(&(SNAPLEN as u32).to_le_bytes());
    gh[20..24].copy_from_slice(&1u32.to_le_bytes());
    w.write_all(&gh)?;

    let duration_us = (a.duration_s * 1e6) as u128;
    let mut rec = [0u8; 16 + SNAPLEN];
    let mut t = Truth::default();
    let mut remaining_new = a.flows;
    let mut next_new = 0usize;
    let mut ip_id: u16 = 0;

    for i in 0..n {
        // Exactly `flows` of the `n` slots are first packets, uniformly spread.
        let fid = if rng.below(n - i) < remaining_new {
            remaining_new -= 1;
            next_new += 1;
            order[next_new - 1]
        } else {
            zipf.sample(&mut rng)
        };
        let f = flow_desc(a.seed, fid);
        let first = seen[fid as usize / 64] & (1 << (fid % 64)) == 0;
        seen[fid as usize / 64] |= 1 << (fid % 64);

        // Lengths.
        let l2 = if f.vlan.is_some() { 18 } else { 14 };
        let l3 = if f.v6 { 40 } else { 20 };
        let l4 = if f.proto == Proto::Tcp { 20 } else { 8 };
        let hdrs = l2 + l3 + l4;
        let small = hdrs.max(64);
        let orig: usize = if first && f.proto == Proto::Tcp {
            small
        } else {
            match rng.below(12) {
                0..=6 => small,
                7..=10 => 576,
                _ => 1500,
            }
        };
        let ip_len = orig - l2;
        let l4_len = ip_len - l3;
        let payload = l4_len - l4;
        let cap = orig.min(SNAPLEN);

        // Timestamp: slot i of n over the duration, jittered inside the slot.
        let frac = rng.next_u64() >> 32;
        let ts = START_TS_US
            + (((i as u128) << 32 | frac as u128) * duration_us / ((n as u128) << 32)) as u64;

        // Record header.
        rec[0..4].copy_from_slice(&((ts / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((ts % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&(cap as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(orig as u32).to_le_bytes());
        let p = &mut rec[16..16 + cap];
        p.fill(0);

        // Ethernet (+ 802.1Q).
        p[0..6].copy_from_slice(&f.dst_mac);
        p[6..12].copy_from_slice(&f.src_mac);
        let ethertype: u16 = if f.v6 { 0x86DD } else { 0x0800 };
        if let Some(vid) = f.vlan {
            p[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
            p[14..16].copy_from_slice(&vid.to_be_bytes());
            p[16..18].copy_from_slice(&ethertype.to_be_bytes());
            t.vlan += 1;
        } else {
            p[12..14].copy_from_slice(&ethertype.to_be_bytes());
        }

        // IP header and pseudo-header sum for the L4 checksum.
        let proto_num: u8 = match (f.proto, f.v6) {
            (Proto::Tcp, _) => 6,
            (Proto::Udp, _) => 17,
            (Proto::Icmp, false) => 1,
            (Proto::Icmp, true) => 58,
        };
        let (ip, rest) = p[l2..].split_at_mut(l3);
        let pseudo: u32;
        if f.v6 {
            let vtf = (6u32 << 28) | f.flow_label;
            ip[0..4].copy_from_slice(&vtf.to_be_bytes());
            ip[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            ip[6] = proto_num;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&f.src);
            ip[24..40].copy_from_slice(&f.dst);
            pseudo = sum16(&ip[8..40], l4_len as u32 + proto_num as u32);
            t.ipv6 += 1;
        } else {
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
            ip[4..6].copy_from_slice(&ip_id.to_be_bytes());
            ip_id = ip_id.wrapping_add(1);
            ip[6] = 0x40; // DF
            ip[8] = 64;
            ip[9] = proto_num;
            ip[12..16].copy_from_slice(&f.src[..4]);
            ip[16..20].copy_from_slice(&f.dst[..4]);
            let c = fold(sum16(ip, 0));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            // ICMPv4 has no pseudo-header.
            pseudo = if f.proto == Proto::Icmp {
                0
            } else {
                sum16(&ip[12..20], l4_len as u32 + proto_num as u32)
            };
            t.ipv4 += 1;
        }

        // L4 header; payload bytes are all zero, so the checksum over the
        // header alone equals the checksum over the whole segment.
        let l4h = &mut rest[..l4];
        let st = &mut state[fid as usize];
        match f.proto {
            Proto::Tcp => {
                l4h[0..2].copy_from_slice(&f.sport.to_be_bytes());
                l4h[2..4].copy_from_slice(&f.dport.to_be_bytes());
                if first {
                    *st = f.isn;
                }
                l4h[4..8].copy_from_slice(&st.to_be_bytes());
                let flags: u8 = if first {
                    t.syn += 1;
                    *st = st.wrapping_add(1);
                    0x02
                } else {
                    l4h[8..12].copy_from_slice(&f.isn.rotate_left(13).to_be_bytes());
                    if payload > 0 {
                        0x18
                    } else {
                        0x10
                    }
                };
                *st = st.wrapping_add(payload as u32);
                l4h[12] = 5 << 4;
                l4h[13] = flags;
                l4h[14..16].copy_from_slice(&64240u16.to_be_bytes());
                let c = fold(sum16(l4h, pseudo));
                l4h[16..18].copy_from_slice(&c.to_be_bytes());
                t.tcp += 1;
            }
            Proto::Udp => {
                l4h[0..2].copy_from_slice(&f.sport.to_be_bytes());
                l4h[2..4].copy_from_slice(&f.dport.to_be_bytes());
                l4h[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
                let c = match fold(sum16(l4h, pseudo)) {
                    0 => 0xFFFF,
                    c => c,
                };
                l4h[6..8].copy_from_slice(&c.to_be_bytes());
                t.udp += 1;
            }
            Proto::Icmp => {
                l4h[0] = if f.v6 { 128 } else { 8 }; // echo request
                l4h[4..6].copy_from_slice(&f.sport.to_be_bytes());
                l4h[6..8].copy_from_slice(&(*st as u16).to_be_bytes());
                *st = st.wrapping_add(1);
                let c = fold(sum16(l4h, pseudo));
                l4h[2..4].copy_from_slice(&c.to_be_bytes());
                t.icmp += 1;
            }
        }

        w.write_all(&rec[..16 + cap])?;
        t.ip_bytes += ip_len as u64;
        t.l2_bytes += orig as u64;
        t.cap_bytes += cap as u64;
        if i == 0 {
            t.first_ts = ts;
        }
        t.last_ts = ts;
    }
    w.flush()?;
    drop(w);
    debug_assert_eq!(next_new, nflows);

    let file_bytes = 24 + 16 * n + t.cap_bytes;
    let elapsed = t0.elapsed().as_secs_f64();
    let truth = format!(
        "{{\n  \"packets\": {},\n  \"flows\": {},\n  \"ip_bytes\": {},\n  \"l2_bytes\": {},\n  \
         \"ipv4_packets\": {},\n  \"ipv6_packets\": {},\n  \"vlan_packets\": {},\n  \
         \"tcp_packets\": {},\n  \"udp_packets\": {},\n  \"icmp_packets\": {},\n  \
         \"tcp_syn_packets\": {},\n  \"seed\": {},\n  \"zipf\": {},\n  \"duration_s\": {},\n  \
         \"first_ts_us\": {},\n  \"last_ts_us\": {},\n  \"file_bytes\": {}\n}}\n",
        n,
        a.flows,
        t.ip_bytes,
        t.l2_bytes,
        t.ipv4,
        t.ipv6,
        t.vlan,
        t.tcp,
        t.udp,
        t.icmp,
        t.syn,
        a.seed,
        a.zipf,
        a.duration_s,
        t.first_ts,
        t.last_ts,
        file_bytes
    );
    std::fs::write(format!("{}.truth.json", a.out), truth)?;
    eprintln!(
        "gen_trace: wrote {} packets / {} flows (seed {}) to {} in {:.2}s: {} bytes, \
         ip_bytes={} l2_bytes={} ipv4={} ipv6={} vlan={} tcp={} udp={} icmp={}",
        n,
        a.flows,
        a.seed,
        a.out,
        elapsed,
        file_bytes,
        t.ip_bytes,
        t.l2_bytes,
        t.ipv4,
        t.ipv6,
        t.vlan,
        t.tcp,
        t.udp,
        t.icmp
    );
    Ok(())
}
