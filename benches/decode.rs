//! Decode throughput on typical frames: plain IPv4/TCP, VLAN-tagged IPv6/UDP, VXLAN.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use etherparse::{PacketBuilder, VlanId};
use mirrorflow::decode::{linktype, Decoder, FrameInfo, PacketMeta, TunnelMode};

fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let mut tcp = Vec::new();
    PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, 443, 1, 1000)
        .write(&mut tcp, &[0; 74])
        .unwrap();
    let mut v6 = Vec::new();
    PacketBuilder::ethernet2([2; 6], [4; 6])
        .single_vlan(VlanId::try_new(100).unwrap())
        .ipv6([1; 16], [2; 16], 64)
        .udp(5000, 53)
        .write(&mut v6, &[0; 60])
        .unwrap();
    let mut payload = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    payload.extend_from_slice(&tcp);
    let mut vxlan = Vec::new();
    PacketBuilder::ethernet2([6; 6], [8; 6])
        .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .udp(50000, 4789)
        .write(&mut vxlan, &payload)
        .unwrap();
    vec![
        ("ipv4_tcp", tcp),
        ("vlan_ipv6_udp", v6),
        ("vxlan_ipv4_tcp", vxlan),
    ]
}

fn bench_decode(c: &mut Criterion) {
    let decoder = Decoder::new(TunnelMode::Inner);
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    for (name, f) in frames() {
        let info = FrameInfo {
            ts_ns: 1,
            wire_len: f.len() as u32,
            in_if: 0,
        };
        group.bench_with_input(BenchmarkId::from_parameter(name), &f, |b, f| {
            let mut meta = PacketMeta::default();
            b.iter(|| decoder.decode(linktype::ETHERNET, std::hint::black_box(f), info, &mut meta))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
