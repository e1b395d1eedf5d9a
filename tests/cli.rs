//! The binary as a user meets it: exit codes, one-line errors, the JSON contract, the config
//! file and the summary line.

use std::io::Write;
use std::process::{Command, Output};

use etherparse::PacketBuilder;

const BIN: &str = env!("CARGO_BIN_EXE_mirrorflow");
const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/pcaps");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running mirrorflow")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code `code` and exactly one line on stderr that contains `needle`.
fn assert_fails(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A small capture: 3 packets of one TCP flow, 2 of a UDP flow on VLAN 10, and an ARP frame.
fn sample_pcap(dir: &std::path::Path) -> std::path::PathBuf {
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for flags in [0x02u8, 0x10, 0x10] {
        let mut v = Vec::new();
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 1, 0, 1], [10, 1, 0, 2], 64)
            .tcp(1234, 80, 1, 100);
        let b = if flags == 0x02 { b.syn() } else { b.ack(1) };
        b.write(&mut v, &[0; 100]).unwrap();
        frames.push(v);
    }
    for _ in 0..2 {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0, 4])
            .single_vlan(etherparse::VlanId::try_new(10).unwrap())
            .ipv6([0x20; 16], [0x21; 16], 7)
            .udp(5000, 53)
            .write(&mut v, &[0; 20])
            .unwrap();
        frames.push(v);
    }
    let mut arp = vec![0xffu8; 42];
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    frames.push(arp);

    let mut out = Vec::new();
    for x in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        for x in [1_700_000_000 + i as u32, 0, f.len() as u32, f.len() as u32] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(f);
    }
    let path = dir.join("sample.pcap");
    std::fs::write(&path, out).unwrap();
    path
}

/// Pinned to one CPU, the binary reads the file on its flow thread (no second thread to take
/// turns with) and writes exactly the JSON it writes with every CPU available.
#[test]
fn one_cpu_writes_the_same_json() {
    let pcap = format!("{PCAPS}/tcpdump__vxlan.pcap");
    let args = ["-r", pcap.as_str(), "--json", "-"];
    let free = run(&args);
    let pinned = Command::new("taskset")
        .args(["-c", "0", BIN])
        .args(args)
        .output()
        .expect("running taskset (util-linux)");
    assert!(
        free.status.success() && pinned.status.success(),
        "{}",
        stderr(&pinned)
    );
    assert!(!free.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&free.stdout),
        String::from_utf8_lossy(&pinned.stdout)
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    let o = run(&["--max-flows", "0", "-r", "x.pcap"]);
    assert_fails(&o, 2, "--max-flows");
    let o = run(&["--idle-timeout", "-3", "-r", "x.pcap"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&["--snaplen", "12", "-r", "x.pcap"]);
    assert_fails(&o, 2, "--snaplen");
    let o = run(&[]);
    assert_fails(&o, 2, "or --read alone");
    let o = run(&["-r", "a.pcap", "-i", "lo"]);
    assert_fails(&o, 2, "or --read alone");
    let o = run(&["-r", "a.pcap", "--sflow-listen", "127.0.0.1:0"]);
    assert_fails(&o, 2, "or --read alone");
    let o = run(&["--sflow-listen", "localhost:6343"]);
    assert_fails(
        &o,
        2,
        "--sflow-listen: \"localhost:6343\": expected ADDR:PORT",
    );
    let o = run(&["--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["--tunnels", "sideways", "-r", "a"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn unreadable_and_corrupt_inputs_are_runtime_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pcap");
    let o = run(&["-r", missing.to_str().unwrap()]);
    assert_fails(&o, 1, "missing.pcap");
    for corrupt in [
        "libpcap__pcap-invalid-version-1.pcap",
        "libpcap__shb-option-too-long.pcapng",
    ] {
        let o = run(&["-r", &format!("{PCAPS}/{corrupt}")]);
        assert_fails(&o, 1, corrupt);
    }
    let o = run(&["-i", "mfnosuchif0"]);
    assert_fails(&o, 1, "no such interface");
    // A listen address already taken is a runtime error naming it.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = run(&["--sflow-listen", &addr]);
    assert_fails(&o, 1, &format!("--sflow-listen {addr}: "));
}

#[test]
fn a_filter_that_does_not_compile_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample_pcap(dir.path());
    let o = run(&["-r", pcap.to_str().unwrap(), "-f", "tcp and (("]);
    assert_fails(&o, 2, "invalid capture filter");
}

#[test]
fn json_lines_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample_pcap(dir.path());
    let json = dir.path().join("flows.jsonl");
    let o = run(&[
        "-r",
        pcap.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "no summary when an output is given");
    let text = std::fs::read_to_string(&json).unwrap();
    let flows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(flows.len(), 2);
    let tcp = flows.iter().find(|f| f["protocol"] == 6).expect("tcp flow");
    let always = [
        "src_addr",
        "dst_addr",
        "src_port",
        "dst_port",
        "protocol",
        "ip_version",
        "packets",
        "bytes",
        "l2_bytes",
        "start_ns",
        "end_ns",
        "tcp_flags",
        "min_ttl",
        "max_ttl",
        "dscp",
        "src_mac",
        "dst_mac",
        "end_reason",
    ];
    for k in always {
        assert!(tcp.get(k).is_some(), "missing {k} in {tcp}");
    }
    assert_eq!(tcp["src_addr"], "10.1.0.1");
    assert_eq!(tcp["dst_port"], 80);
    assert_eq!(tcp["packets"], 3);
    assert_eq!(tcp["bytes"], 3 * 140);
    assert_eq!(tcp["l2_bytes"], 3 * 154);
    assert_eq!(tcp["tcp_flags"], 0x12);
    assert_eq!(tcp["start_ns"], 1_700_000_000_000_000_000u64);
    assert_eq!(tcp["end_ns"], 1_700_000_002_000_000_000u64);
    assert_eq!(tcp["src_mac"], "02:00:00:00:00:01");
    assert_eq!(tcp["end_reason"], "forced_end");
    assert!(
        tcp.get("vlan_id").is_none()
            && tcp.get("tunnel_id").is_none()
            && tcp.get("in_if").is_none()
    );
    let udp = flows
        .iter()
        .find(|f| f["protocol"] == 17)
        .expect("udp flow");
    assert_eq!(
        (udp["ip_version"].as_u64(), udp["vlan_id"].as_u64()),
        (Some(6), Some(10))
    );
    assert_eq!(udp["src_addr"], "2020:2020:2020:2020:2020:2020:2020:2020");
    assert_eq!(udp["bytes"], 2 * 68);
}

#[test]
fn summary_line_and_stats_json_account_for_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample_pcap(dir.path());
    let stats = dir.path().join("stats.json");
    let o = run(&[
        "-r",
        pcap.to_str().unwrap(),
        "--stats-json",
        stats.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = String::from_utf8(o.stdout).unwrap();
    assert_eq!(
        line.trim(),
        "packets 6 flows 2 (records 2, active 0) non-ip 1 decode-errors 0 filtered 0 dropped 0"
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stats).unwrap()).unwrap();
    assert_eq!(s["frames"], 6);
    assert_eq!(s["flow_packets"], 5);
    assert_eq!(s["non_ip"]["arp"], 1);
}

#[test]
fn the_filter_applies_to_files_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample_pcap(dir.path());
    let o = run(&["-r", pcap.to_str().unwrap(), "-f", "tcp"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = String::from_utf8(o.stdout).unwrap();
    assert!(line.starts_with("packets 6 flows 1 "), "{line}");
    assert!(line.contains("filtered 3"), "{line}");
}

#[test]
fn the_config_file_sets_defaults_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample_pcap(dir.path());
    let json = dir.path().join("from-config.jsonl");
    let conf = dir.path().join("mirrorflow.toml");
    let mut f = std::fs::File::create(&conf).unwrap();
    writeln!(
        f,
        "read = {:?}\njson = {:?}\nidle_timeout = 0.5",
        pcap.to_str().unwrap(),
        json.to_str().unwrap()
    )
    .unwrap();
    drop(f);
    // Packets are 1 s apart: a 0.5 s idle timeout splits every flow into single packets.
    let o = run(&["-c", conf.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&json).unwrap().lines().count(), 5);
    let o = run(&["-c", conf.to_str().unwrap(), "--idle-timeout", "10"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&json).unwrap().lines().count(), 2);

    std::fs::write(&conf, "reed = \"typo.pcap\"\n").unwrap();
    let o = run(&["-c", conf.to_str().unwrap()]);
    assert_fails(&o, 2, "unknown field");
}

#[test]
fn flow_sampling_thins_the_flow_cache_and_counts_what_it_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.json");
    let o = run(&[
        "-r",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample.pcap"),
        "--flow-sampling",
        "4",
        "--stats-json",
        stats.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stats).unwrap()).unwrap();
    let (frames, flow, out) = (
        s["frames"].as_u64().unwrap(),
        s["flow_packets"].as_u64().unwrap(),
        s["sampled_out"].as_u64().unwrap(),
    );
    assert_eq!(frames, 600);
    assert_eq!(
        flow + out,
        frames,
        "every frame is in a flow or counted as sampled out"
    );
    // 1 in 4 of 600: within 4 standard deviations (sd = sqrt(600 * 1/4 * 3/4) ≈ 10.6).
    assert!((108..=192).contains(&flow), "{flow} packets kept");
    let o = run(&["-r", "x.pcap", "--flow-sampling", "0"]);
    assert_fails(&o, 2, "--flow-sampling");
}

#[test]
fn a_static_port_map_names_the_vms_behind_each_flow() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = sample_pcap(dir.path());
    let json = dir.path().join("ports.jsonl");
    let conf = dir.path().join("ports.toml");
    std::fs::write(
        &conf,
        "[[ports]]\nname = \"vm1-eth0\"\nindex = 11\nmacs = [\"02:00:00:00:00:01\"]\nvm = \"vm1\"\n\
         [[ports]]\nname = \"vm2-eth0\"\nindex = 12\nmacs = [\"02:00:00:00:00:02\"]\n",
    )
    .unwrap();
    let o = run(&[
        "-c",
        conf.to_str().unwrap(),
        "-r",
        pcap.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--unknown-if-index",
        "99",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let flows: Vec<serde_json::Value> = std::fs::read_to_string(&json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let tcp = flows.iter().find(|f| f["protocol"] == 6).expect("tcp flow");
    assert_eq!(
        (tcp["in_if"].as_u64(), tcp["out_if"].as_u64()),
        (Some(11), Some(12))
    );
    assert_eq!(
        (tcp["in_port"].as_str(), tcp["out_port"].as_str()),
        (Some("vm1-eth0"), Some("vm2-eth0"))
    );
    assert_eq!(tcp["in_vm"], "vm1");
    assert!(tcp.get("out_vm").is_none());
    // MACs nobody claimed go to the catch-all port, never 0, and carry no name.
    let udp = flows
        .iter()
        .find(|f| f["protocol"] == 17)
        .expect("udp flow");
    assert_eq!(
        (udp["in_if"].as_u64(), udp["out_if"].as_u64()),
        (Some(99), Some(99))
    );
    assert!(udp.get("in_port").is_none());

    std::fs::write(&conf, "[[ports]]\nname = \"a\"\nindex = 0\n").unwrap();
    let o = run(&["-c", conf.to_str().unwrap(), "-r", pcap.to_str().unwrap()]);
    assert_fails(&o, 2, "ports");
}
