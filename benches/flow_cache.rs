//! Flow cache cost per packet, with the table at 1 k and 1 M active flows (the second is
//! memory-bound: every lookup misses the CPU caches), and the table memory per flow.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mirrorflow::decode::{FrameInfo, PacketMeta};
use mirrorflow::flow::{CacheConfig, FlowCache};

/// A packet of flow `i` at time `ts_ns`.
fn packet(i: u32, ts_ns: u64) -> PacketMeta {
    let mut m = PacketMeta {
        frame: FrameInfo {
            ts_ns,
            wire_len: 128,
            in_if: 0,
        },
        ip_version: 4,
        protocol: 6,
        src_port: (i & 0xffff) as u16,
        dst_port: 443,
        ttl: 64,
        ip_len: 114,
        tcp_flags: 0x10,
        ..PacketMeta::default()
    };
    m.src_addr[..4].copy_from_slice(&(0x0a00_0000 | (i >> 16)).to_be_bytes());
    m.dst_addr[..4].copy_from_slice(&[192, 0, 2, 1]);
    m
}

fn bench_cache(c: &mut Criterion) {
    let mut group = c.benchmark_group("flow_cache");
    group.throughput(Throughput::Elements(1));
    for flows in [1_000u32, 1_000_000] {
        let mut cache = FlowCache::new(CacheConfig {
            max_flows: flows as usize,
            ..CacheConfig::default()
        });
        for i in 0..flows {
            cache.handle_packet(&packet(i, 1_000));
        }
        eprintln!(
            "flow_cache: {flows} flows hold {} bytes of table memory ({} bytes per flow)",
            cache.memory_bytes(),
            cache.memory_bytes() / flows as usize
        );
        // Visit flows in a scattered order (a multiplicative hash of a counter).
        let mut n: u32 = 0;
        let mut ts = 2_000;
        group.bench_function(BenchmarkId::new("update", flows), |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                ts += 10;
                let i = n.wrapping_mul(2_654_435_761) % flows;
                cache.handle_packet(&packet(i, ts));
            })
        });
        assert_eq!(
            cache.len(),
            flows as usize,
            "no flow expired during the bench"
        );
    }
    group.finish();
}

criterion_group!(benches, bench_cache);
criterion_main!(benches);
