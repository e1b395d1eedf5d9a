//! Decoder tests on packets built here, with known truth (etherparse's `PacketBuilder` for the
//! ordinary layers, hand-built bytes for tunnels and odd link layers).

use etherparse::{PacketBuilder, VlanId};

use super::*;

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const IP_A: [u8; 4] = [10, 0, 0, 1];
const IP_B: [u8; 4] = [10, 0, 0, 2];

fn frame(len: usize) -> FrameInfo {
    FrameInfo {
        ts_ns: 1_700_000_000_000_000_000,
        wire_len: len as u32,
        in_if: 3,
    }
}

fn decode_as(linktype: u32, bytes: &[u8], mode: TunnelMode) -> (Decoded, PacketMeta) {
    decode_wire(linktype, bytes, bytes.len(), mode)
}

fn decode_wire(
    linktype: u32,
    bytes: &[u8],
    wire: usize,
    mode: TunnelMode,
) -> (Decoded, PacketMeta) {
    let mut m = PacketMeta::default();
    let d = Decoder::new(mode).decode(linktype, bytes, frame(wire), &mut m);
    (d, m)
}

fn eth(bytes: &[u8]) -> (Decoded, PacketMeta) {
    decode_as(linktype::ETHERNET, bytes, TunnelMode::Inner)
}

fn v4(a: [u8; 4]) -> [u8; 16] {
    let mut x = [0; 16];
    x[..4].copy_from_slice(&a);
    x
}

fn tcp_frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(IP_A, IP_B, 61)
        .tcp(40000, 443, 1, 1024)
        .syn()
        .write(&mut v, payload)
        .unwrap();
    v
}

#[test]
fn ethernet_ipv4_tcp() {
    let f = tcp_frame(&[0u8; 10]);
    let (d, m) = eth(&f);
    assert_eq!(d, Decoded::Ip);
    assert_eq!((m.ip_version, m.protocol), (4, 6));
    assert_eq!((m.src_addr, m.dst_addr), (v4(IP_A), v4(IP_B)));
    assert_eq!((m.src_port, m.dst_port, m.tcp_flags), (40000, 443, 0x02));
    assert_eq!((m.src_mac, m.dst_mac), (MAC_A, MAC_B));
    assert_eq!(m.ttl, 61);
    assert_eq!(m.ip_len, 20 + 20 + 10);
    assert_eq!(m.frame.in_if, 3);
    assert_eq!((m.vlan_id, m.tunnel_id, m.frag), (0, None, None));
}

#[test]
fn vlan_tags_record_the_outer_id() {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .double_vlan(VlanId::try_new(100).unwrap(), VlanId::try_new(200).unwrap())
        .ipv6([1; 16], [2; 16], 9)
        .udp(53, 5353)
        .write(&mut v, &[1, 2, 3])
        .unwrap();
    let (d, m) = eth(&v);
    assert_eq!(d, Decoded::Ip);
    assert_eq!(m.vlan_id, 100);
    assert_eq!(
        (m.ip_version, m.protocol, m.src_port, m.dst_port),
        (6, 17, 53, 5353)
    );
    assert_eq!(m.ip_len, 40 + 8 + 3);
    assert_eq!(m.ttl, 9);
}

#[test]
fn three_stacked_tags_and_too_many() {
    let inner = tcp_frame(&[]);
    let mut f = inner[..12].to_vec();
    for vid in [7u16, 8, 9] {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&inner[12..]);
    let (d, m) = eth(&f);
    assert_eq!((d, m.vlan_id, m.dst_port), (Decoded::Ip, 7, 443));

    let mut deep = inner[..12].to_vec();
    for _ in 0..=MAX_VLAN_TAGS {
        deep.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    }
    deep.extend_from_slice(&inner[12..]);
    assert_eq!(eth(&deep).0, Decoded::Error(DecodeError::TooManyLayers));
}

#[test]
fn icmp_type_and_code_become_the_destination_port() {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(IP_A, IP_B, 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut v, &[])
        .unwrap();
    let (_, m) = eth(&v);
    assert_eq!((m.protocol, m.src_port, m.dst_port), (1, 0, 8 << 8));
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6([1; 16], [2; 16], 64)
        .icmpv6_echo_reply(1, 1)
        .write(&mut v, &[])
        .unwrap();
    let (_, m) = eth(&v);
    assert_eq!((m.protocol, m.dst_port), (58, 129 << 8));
}

#[test]
fn non_ip_frames_are_named_by_ethertype() {
    let mut arp = vec![0u8; 42];
    arp[12] = 0x08;
    arp[13] = 0x06;
    assert_eq!(eth(&arp).0, Decoded::NonIp(0x0806));
    let mut stp = vec![0u8; 60];
    stp[12] = 0x00;
    stp[13] = 0x26;
    assert_eq!(eth(&stp).0, Decoded::NonIp(ETHERTYPE_8023));
}

#[test]
fn broken_frames_are_errors_by_reason() {
    let f = tcp_frame(&[]);
    assert_eq!(
        eth(&f[..10]).0,
        Decoded::Error(DecodeError::TruncatedLinkHeader)
    );
    assert_eq!(
        eth(&f[..14]).0,
        Decoded::Error(DecodeError::TruncatedIpHeader)
    );
    assert_eq!(
        eth(&f[..30]).0,
        Decoded::Error(DecodeError::TruncatedIpHeader)
    );
    let mut bad = f.clone();
    bad[14] = 0x65; // version 6 under ethertype IPv4
    assert_eq!(eth(&bad).0, Decoded::Error(DecodeError::BadIpVersion));
    let mut ihl = f.clone();
    ihl[14] = 0x43;
    assert_eq!(eth(&ihl).0, Decoded::Error(DecodeError::BadIpHeader));
    assert_eq!(
        decode_as(9999, &f, TunnelMode::Inner).0,
        Decoded::Error(DecodeError::UnsupportedLinktype)
    );
}

#[test]
fn snaplen_cut_packets_count_their_ip_length() {
    let f = tcp_frame(&[0u8; 1000]);
    // Captured to 54 bytes (headers only), 1054 on the wire.
    let (d, m) = decode_wire(linktype::ETHERNET, &f[..54], f.len(), TunnelMode::Inner);
    assert_eq!(d, Decoded::Ip);
    assert_eq!(m.ip_len, 1040);
    assert_eq!((m.src_port, m.dst_port), (40000, 443));
    // Cut inside the TCP header: still an IP packet, ports unknown.
    let (d, m) = decode_wire(linktype::ETHERNET, &f[..36], f.len(), TunnelMode::Inner);
    assert_eq!((d, m.ip_len, m.dst_port), (Decoded::Ip, 1040, 0));
}

#[test]
fn lying_or_missing_ip_lengths_fall_back_to_the_wire() {
    let mut f = tcp_frame(&[0u8; 6]);
    // Total length larger than the frame: the frame's bytes count.
    f[16..18].copy_from_slice(&9000u16.to_be_bytes());
    assert_eq!(eth(&f).1.ip_len, 46);
    // Total length 0 (a GSO super-packet): likewise.
    f[16..18].copy_from_slice(&0u16.to_be_bytes());
    assert_eq!(eth(&f).1.ip_len, 46);
    // Ethernet padding beyond the IP length does not count.
    let mut padded = tcp_frame(&[]);
    padded.extend_from_slice(&[0; 6]);
    assert_eq!(eth(&padded).1.ip_len, 40);
}

#[test]
fn ipv4_fragments_carry_id_and_offset() {
    let mut f = tcp_frame(&[0u8; 16]);
    f[18..20].copy_from_slice(&0x1234u16.to_be_bytes());
    f[20..22].copy_from_slice(&0x2000u16.to_be_bytes()); // MF, offset 0
    let (_, m) = eth(&f);
    assert_eq!(
        m.frag,
        Some(FragInfo {
            id: 0x1234,
            offset: 0,
            more: true
        })
    );
    assert_eq!(m.dst_port, 443, "first fragment has ports");
    f[20..22].copy_from_slice(&0x0003u16.to_be_bytes()); // last fragment, offset 3
    let (d, m) = eth(&f);
    assert_eq!(d, Decoded::Ip);
    assert_eq!(
        m.frag,
        Some(FragInfo {
            id: 0x1234,
            offset: 3,
            more: false
        })
    );
    assert_eq!((m.src_port, m.dst_port, m.tcp_flags), (0, 0, 0));
    assert!(m.is_later_fragment());
}

#[test]
fn ipv6_fragment_header_is_found() {
    // IPv6 + fragment header (offset 0, M=1, id 77) + UDP.
    let mut p = vec![0x60, 0, 0, 0, 0, 16, 44, 64];
    p.extend_from_slice(&[1; 16]);
    p.extend_from_slice(&[2; 16]);
    p.extend_from_slice(&[17, 0, 0x00, 0x01, 0, 0, 0, 77]);
    p.extend_from_slice(&[0x13, 0x88, 0x00, 0x35, 0, 8, 0, 0]);
    let (d, m) = decode_as(linktype::RAW, &p, TunnelMode::Inner);
    assert_eq!(d, Decoded::Ip);
    assert_eq!((m.protocol, m.src_port, m.dst_port), (17, 5000, 53));
    assert_eq!(
        m.frag,
        Some(FragInfo {
            id: 77,
            offset: 0,
            more: true
        })
    );
    assert_eq!(m.ip_len, 56);
}

/// Outer Ethernet/IPv4/UDP to `dport` around `inner`.
fn udp_tunnel(dport: u16, header: &[u8], inner: &[u8]) -> Vec<u8> {
    let mut payload = header.to_vec();
    payload.extend_from_slice(inner);
    let mut v = Vec::new();
    PacketBuilder::ethernet2([0xaa; 6], [0xbb; 6])
        .single_vlan(VlanId::try_new(42).unwrap())
        .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .udp(51000, dport)
        .write(&mut v, &payload)
        .unwrap();
    v
}

#[test]
fn vxlan_is_keyed_on_the_inner_packet() {
    let inner = tcp_frame(&[0u8; 4]);
    let f = udp_tunnel(4789, &[0x08, 0, 0, 0, 0x00, 0x30, 0x39, 0], &inner);
    let (d, m) = eth(&f);
    assert_eq!(d, Decoded::Ip);
    assert_eq!((m.src_addr, m.dst_port), (v4(IP_A), 443));
    assert_eq!(m.tunnel_id, Some(12345));
    assert_eq!(m.src_mac, MAC_A, "inner MACs");
    assert_eq!(m.vlan_id, 42, "outer VLAN kept");
    assert_eq!(m.ip_len, 44);

    let (_, outer) = decode_as(linktype::ETHERNET, &f, TunnelMode::Outer);
    assert_eq!((outer.src_addr, outer.dst_port), (v4([192, 0, 2, 1]), 4789));
    assert_eq!(outer.tunnel_id, None);
}

#[test]
fn tunnel_with_non_ip_inside_keeps_the_outer_packet() {
    let mut arp = vec![0u8; 42];
    arp[12] = 0x08;
    arp[13] = 0x06;
    let f = udp_tunnel(4789, &[0x08, 0, 0, 0, 0, 0, 7, 0], &arp);
    let (d, m) = eth(&f);
    assert_eq!(d, Decoded::Ip);
    assert_eq!((m.dst_port, m.tunnel_id), (4789, Some(7)));
    assert_eq!(m.src_mac, [0xaa; 6]);
}

#[test]
fn geneve_with_options_and_ip_payload() {
    let inner = tcp_frame(&[]);
    // One 8-byte option (opt len 2 words), protocol IPv4, VNI 0x0a0b0c.
    let header = [
        0x02, 0, 0x08, 0x00, 0x0a, 0x0b, 0x0c, 0, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    let f = udp_tunnel(6081, &header, &inner[14..]);
    let (_, m) = eth(&f);
    assert_eq!(
        (m.src_addr, m.dst_port, m.tunnel_id),
        (v4(IP_A), 443, Some(0x0a0b0c))
    );
    assert_eq!(m.src_mac, [0xaa; 6], "no inner Ethernet: outer MACs stay");
}

fn gre_frame(gre: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([0xaa; 6], [0xbb; 6])
        .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .write(&mut v, etherparse::IpNumber::GRE, gre)
        .unwrap();
    v
}

#[test]
fn gre_with_key_and_erspan() {
    let inner = tcp_frame(&[]);
    // GRE with key 0xdead and IPv4 payload.
    let mut g = vec![0x20, 0x00, 0x08, 0x00, 0, 0, 0xde, 0xad];
    g.extend_from_slice(&inner[14..]);
    let (_, m) = eth(&gre_frame(&g));
    assert_eq!((m.dst_port, m.tunnel_id), (443, Some(0xdead)));

    // ERSPAN type II: GRE with sequence number, 8-byte ERSPAN header, session 0x155.
    let mut g = vec![0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1];
    g.extend_from_slice(&[0x10, 0x00, 0x01, 0x55, 0, 0, 0, 0]);
    g.extend_from_slice(&inner);
    let (_, m) = eth(&gre_frame(&g));
    assert_eq!(
        (m.src_mac, m.dst_port, m.tunnel_id),
        (MAC_A, 443, Some(0x155))
    );

    // ERSPAN type III with the platform sub-header (O flag), frame type Ethernet.
    let mut g = vec![0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1];
    g.extend_from_slice(&[0x20, 0x00, 0x00, 0x09, 0, 0, 0, 0, 0, 0, 0x00, 0x01]);
    g.extend_from_slice(&[0; 8]);
    g.extend_from_slice(&inner);
    let (_, m) = eth(&gre_frame(&g));
    assert_eq!((m.dst_port, m.tunnel_id), (443, Some(9)));
}

#[test]
fn mpls_stack_then_ip_or_pseudowire() {
    let inner = tcp_frame(&[]);
    let mut f = inner[..12].to_vec();
    f.extend_from_slice(&[0x88, 0x47, 0, 0x01, 0x20, 0x40, 0, 0x01, 0x01, 0x40]);
    f.extend_from_slice(&inner[14..]);
    assert_eq!(eth(&f).1.dst_port, 443);

    let mut pw = inner[..12].to_vec();
    pw.extend_from_slice(&[0x88, 0x47, 0, 0x01, 0x01, 0x40, 0, 0, 0, 0]);
    pw.extend_from_slice(&inner);
    let (d, m) = eth(&pw);
    assert_eq!((d, m.dst_port, m.src_mac), (Decoded::Ip, 443, MAC_A));
}

#[test]
fn cooked_raw_and_loopback_link_types() {
    let inner = tcp_frame(&[]);
    let ip = &inner[14..];
    let mut sll = vec![0, 0, 0, 1, 0, 6];
    sll.extend_from_slice(&MAC_A);
    sll.extend_from_slice(&[0, 0, 0x08, 0x00]);
    sll.extend_from_slice(ip);
    let (_, m) = decode_as(linktype::LINUX_SLL, &sll, TunnelMode::Inner);
    assert_eq!((m.src_mac, m.dst_port), (MAC_A, 443));

    let mut sll2 = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6];
    sll2.extend_from_slice(&MAC_B);
    sll2.extend_from_slice(&[0, 0]);
    let mut v6 = Vec::new();
    PacketBuilder::ipv6([1; 16], [2; 16], 5)
        .udp(1, 2)
        .write(&mut v6, &[])
        .unwrap();
    sll2.extend_from_slice(&v6);
    let (_, m) = decode_as(linktype::LINUX_SLL2, &sll2, TunnelMode::Inner);
    assert_eq!((m.src_mac, m.ip_version, m.dst_port), (MAC_B, 6, 2));

    for lt in [linktype::RAW, linktype::RAW_BSD12, linktype::IPV4] {
        assert_eq!(
            decode_as(lt, ip, TunnelMode::Inner).1.dst_port,
            443,
            "linktype {lt}"
        );
    }
    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(ip);
    assert_eq!(
        decode_as(linktype::NULL, &null, TunnelMode::Inner)
            .1
            .dst_port,
        443
    );
    let mut null6 = 30u32.to_le_bytes().to_vec();
    null6.extend_from_slice(&v6);
    assert_eq!(
        decode_as(linktype::NULL, &null6, TunnelMode::Inner)
            .1
            .ip_version,
        6
    );
}

#[test]
fn pppoe_session_carries_ip() {
    let inner = tcp_frame(&[]);
    let mut f = inner[..12].to_vec();
    f.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x00, 0x01, 0x00, 0x2a, 0x00, 0x21]);
    f.extend_from_slice(&inner[14..]);
    assert_eq!(eth(&f).1.dst_port, 443);
}
