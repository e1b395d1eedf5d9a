//! Cost per flow record of the metrics sink's aggregates (traffic table, top talkers, the
//! duration / size histograms), on batches like the flow thread hands over: 8192 records of
//! distinct conversations with Zipf-like sizes, as in the 10 M-packet benchmark trace.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mirrorflow::decode::{FrameInfo, PacketMeta};
use mirrorflow::flow::{EndReason, FlowKey, FlowRecord, FlowStats};
use mirrorflow::metrics::{Input, MetricsConfig, MetricsFlags, State};

const BATCH: usize = 8192;

/// Record `i`: its own conversation, a size and duration spread like a heavy-tailed trace.
fn record(i: u64) -> FlowRecord {
    let mut m = PacketMeta {
        frame: FrameInfo {
            ts_ns: 0,
            wire_len: 128,
            in_if: 0,
        },
        ip_version: 4,
        protocol: if i.is_multiple_of(5) { 17 } else { 6 },
        src_port: (i & 0xffff) as u16,
        dst_port: 443,
        ..PacketMeta::default()
    };
    m.src_addr[..4].copy_from_slice(&(0x0a00_0000 | (i as u32 & 0xff_ffff)).to_be_bytes());
    m.dst_addr[..4].copy_from_slice(&(0xc000_0200 | (i as u32 % 251)).to_be_bytes());
    // Zipf-like: most flows one or a few packets, a few very large.
    let packets = 1 + 1_000_000 / (1 + (i * 2_654_435_761) % 1_000_000);
    let start_ns = 1_700_000_000_000_000_000 + i * 1_000;
    FlowRecord {
        key: FlowKey::from_meta(&m),
        stats: FlowStats {
            packets,
            bytes: packets * (64 + (i * 7919) % 1400),
            l2_bytes: packets * 1500,
            start_ns,
            end_ns: start_ns + (packets - 1) * 1_000_000,
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            tcp_flags: 0x18,
            min_ttl: 64,
            max_ttl: 64,
            tos: 0,
        },
        end_reason: EndReason::Idle,
        out_if: 0,
        origin: None,
    }
}

fn bench_metrics_sink(c: &mut Criterion) {
    let cfg = MetricsConfig::resolve(MetricsFlags {
        listen: Some("127.0.0.1:0".into()),
        ..MetricsFlags::default()
    })
    .expect("valid flags")
    .expect("metrics configured");
    let batches: Vec<Vec<FlowRecord>> = (0..16u64)
        .map(|b| {
            (0..BATCH as u64)
                .map(|i| record(b * BATCH as u64 + i))
                .collect()
        })
        .collect();
    let mut state = State::new(&cfg, Input::File, 1_000_000);
    let mut group = c.benchmark_group("metrics_sink");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut next = 0;
    group.bench_function("flows_per_record", |b| {
        b.iter(|| {
            state.flows(&batches[next % batches.len()]);
            next += 1;
        })
    });
    group.finish();
}

criterion_group!(benches, bench_metrics_sink);
criterion_main!(benches);
