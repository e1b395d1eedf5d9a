//! `--metrics-listen`: the endpoint, its text format (checked by `promtool check metrics`,
//! Debian package `prometheus`), the agreement of its counters with the JSON flow output,
//! the flags around it, and the names the dashboards and alert rules use.

mod metrics_support;
mod sflow_in_support;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use metrics_support::*;

/// A scrape of a replay of a varied capture (ARP, 802.3, ICMP, TCP, UDP, IPv6) with an IPFIX
/// exporter to a collector that is up, so every family mirrorflow can export is present.
fn full_scrape() -> String {
    let (_collector, addr) = udp_sink();
    let json = tempfile::NamedTempFile::new().unwrap();
    let p = Probe::start(&[
        "-r".as_ref(),
        pcap("pcpp__many-protocols.pcap").as_os_str(),
        "--json".as_ref(),
        json.path().as_os_str(),
        "--ipfix".as_ref(),
        addr.to_string().as_ref(),
    ]);
    p.scrape_when_finished()
}

/// A scrape of mirrorflow receiving sFlow (`--sflow-listen`): the datagrams of an IPv6 agent's
/// capture (flow and counter samples, generic interface counters), so the sFlow-in families
/// are present.
fn sflow_scrape() -> String {
    use sflow_in_support::{send_all, shared_pcap, udp_payloads, SflowProbe};
    let payloads = udp_payloads(&shared_pcap("tcpdump__sflow-print-v6.pcap"), 6343);
    let p = SflowProbe::start(&[]);
    send_all(p.v4, &payloads);
    let mut text = String::new();
    let done = wait_for(Duration::from_secs(30), || {
        text = get(p.metrics, "/metrics");
        sum(&parse(&text), "mirrorflow_sflow_in_datagrams_total", &[]) == payloads.len() as f64
    });
    assert!(
        done,
        "the datagrams were not all handled; stderr:\n{}",
        p.log()
    );
    text
}

#[test]
fn promtool_accepts_a_live_scrape() {
    require("promtool", "prometheus");
    for text in [full_scrape(), sflow_scrape()] {
        check_with_promtool(&text);
    }
}

/// `promtool check metrics` reports nothing, and every family has HELP.
fn check_with_promtool(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool: {report}");
    assert_eq!(report.trim(), "", "promtool reported problems");
    // HELP and TYPE on every family.
    let samples = parse(text);
    for s in &samples {
        let family = s
            .name
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            text.contains(&format!("# HELP {family} "))
                || text.contains(&format!("# HELP {} ", s.name)),
            "no HELP for {}",
            s.name
        );
    }
}

#[test]
fn pages_and_methods() {
    let p = Probe::start(&["-r".as_ref(), pcap("pcpp__IcmpPackets.pcap").as_os_str()]);
    let (status, body) = http(p.addr, "GET", "/").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("<a href=\"/metrics\">"), "{body}");
    assert_eq!(
        http(p.addr, "GET", "/healthz").unwrap(),
        (200, "ok\n".into())
    );
    assert_eq!(http(p.addr, "GET", "/nope").unwrap().0, 404);
    assert_eq!(http(p.addr, "POST", "/metrics").unwrap().0, 405);
    let (status, body) = http(p.addr, "HEAD", "/metrics").unwrap();
    assert_eq!((status, body.as_str()), (200, ""));
    assert!(p.scrape().contains("mirrorflow_build_info{version=\""));
}

#[test]
fn serves_after_the_end_of_a_file_until_sigterm() {
    let mut p = Probe::start(&["-r".as_ref(), pcap("pcpp__IcmpPackets.pcap").as_os_str()]);
    p.scrape_when_finished();
    // Still serving after the end of the file (scrape_when_finished saw it finished).
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "exited at end of file"
    );
    // The metrics can show the input finished a moment before main says it will serve on.
    let said = wait_for(Duration::from_secs(10), || {
        p.log().contains("until SIGINT or SIGTERM")
    });
    assert!(said, "{}", p.log());
    let status = p.terminate();
    assert!(status.success(), "{status}; {}", p.log());

    // --exit-at-eof: exits by itself, status 0.
    let mut p = Probe::start(&[
        "-r".as_ref(),
        pcap("pcpp__IcmpPackets.pcap").as_os_str(),
        "--exit-at-eof".as_ref(),
    ]);
    let mut status = None;
    assert!(wait_for(Duration::from_secs(30), || {
        status = p.child.try_wait().unwrap();
        status.is_some()
    }));
    assert!(status.unwrap().success());
}

#[test]
fn counters_agree_with_the_json_output() {
    for name in [
        "pcpp__many-protocols.pcap",
        "pktvisor__dns_udp_tcp_random.pcap",
        "pcpp__many_interfaces-1.pcapng",
        "ndpi__ip_fragmented_garbage.pcap",
        "tcpdump__vxlan.pcap",
    ] {
        let json = tempfile::NamedTempFile::new().unwrap();
        let stats = tempfile::NamedTempFile::new().unwrap();
        let p = Probe::start(&[
            "-r".as_ref(),
            pcap(name).as_os_str(),
            "--json".as_ref(),
            json.path().as_os_str(),
            "--stats-json".as_ref(),
            stats.path().as_os_str(),
        ]);
        let m = parse(&p.scrape_when_finished());
        // The JSON file is complete once the run has ended (it is written before the
        // final snapshot, in event order, and flushed at finish): wait for the stats file,
        // written after every sink has finished.
        assert!(
            wait_for(Duration::from_secs(30), || std::fs::metadata(stats.path())
                .is_ok_and(|m| m.len() > 0)),
            "{name}: no stats"
        );
        let text = std::fs::read_to_string(json.path()).unwrap();
        let (mut bytes, mut packets, mut records) = (0u64, 0u64, 0u64);
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            bytes += v["bytes"].as_u64().unwrap();
            packets += v["packets"].as_u64().unwrap();
            records += 1;
        }
        let stats: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(stats.path()).unwrap()).unwrap();
        let got = |n: &str| sum(&m, n, &[]) as u64;
        assert_eq!(got("mirrorflow_traffic_bytes_total"), bytes, "{name}");
        assert_eq!(got("mirrorflow_traffic_packets_total"), packets, "{name}");
        assert_eq!(got("mirrorflow_flow_records_total"), records, "{name}");
        for h in [
            "mirrorflow_flow_duration_seconds_count",
            "mirrorflow_flow_size_bytes_count",
            "mirrorflow_flow_size_packets_count",
        ] {
            assert_eq!(got(h), records, "{name} {h}");
        }
        assert_eq!(got("mirrorflow_flow_size_bytes_sum"), bytes, "{name}");
        assert_eq!(got("mirrorflow_flow_size_packets_sum"), packets, "{name}");
        assert_eq!(
            got("mirrorflow_frames_total"),
            stats["frames"].as_u64().unwrap()
        );
        assert_eq!(
            got("mirrorflow_non_ip_frames_total"),
            stats["non_ip"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum::<u64>(),
            "{name}"
        );
        assert_eq!(
            got("mirrorflow_flow_evictions_total"),
            stats["evictions"].as_u64().unwrap()
        );
        assert_eq!(
            sum(&m, "mirrorflow_sink_records_total", &[("sink", "metrics")]) as u64,
            records
        );
    }
}

#[test]
fn replay_speed_paces_a_file() {
    // 140 packets over 6.0 s of capture time, at 4x: at least 1.5 s.
    let file = pcap("pktvisor__dns_ipv4_udp.pcap");
    let t0 = Instant::now();
    let out = Command::new(BIN)
        .arg("-r")
        .arg(&file)
        .args(["--replay-speed", "4"])
        .output()
        .unwrap();
    let paced = t0.elapsed();
    assert!(out.status.success());
    assert!(
        paced >= Duration::from_millis(1450) && paced < Duration::from_secs(10),
        "{paced:?}"
    );
    let t0 = Instant::now();
    assert!(Command::new(BIN)
        .arg("-r")
        .arg(&file)
        .output()
        .unwrap()
        .status
        .success());
    assert!(t0.elapsed() < paced / 2, "unpaced took {:?}", t0.elapsed());
}

#[test]
fn usage_errors() {
    let file = pcap("pcpp__IcmpPackets.pcap");
    for (args, flag) in [
        (vec!["--replay-speed", "0"], "--replay-speed"),
        (vec!["--replay-speed", "nan"], "--replay-speed"),
        (vec!["--top-talkers", "5"], "--top-talkers"),
        (vec!["--metrics-listen", "localhost"], "--metrics-listen"),
        (
            vec![
                "--metrics-listen",
                "127.0.0.1:0",
                "--metrics-max-ports",
                "99999",
            ],
            "--metrics-max-ports",
        ),
        (
            vec![
                "--metrics-listen",
                "127.0.0.1:0",
                "--metrics-internal-nets",
                "10.0.0.0/99",
            ],
            "--metrics-internal-nets",
        ),
    ] {
        let out = Command::new(BIN)
            .arg("-r")
            .arg(&file)
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with(&format!("mirrorflow: {flag}")),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let out = Command::new(BIN)
        .args(["-i", "lo", "--replay-speed", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A port already taken: one line, exit 1.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = Command::new(BIN)
        .arg("-r")
        .arg(&file)
        .args(["--metrics-listen", &taken.local_addr().unwrap().to_string()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("mirrorflow: --metrics-listen 127.0.0.1:"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// Metric names (`mirrorflow_…`, `process_…`) in a dashboard or rules file.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for prefix in ["mirrorflow_", "process_"] {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().next_back();
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.insert(tail[..end].to_string());
            }
            rest = &tail[end..];
        }
    }
    out
}

#[test]
fn dashboards_and_rules_name_only_exported_metrics() {
    let exported: BTreeSet<String> = parse(&(full_scrape() + &sflow_scrape()))
        .into_iter()
        .map(|s| s.name)
        .collect();
    for file in [
        "dashboards/traffic-overview.json",
        "dashboards/probe-health.json",
        "dashboards/alerts.yml",
    ] {
        let text = std::fs::read_to_string(repo(file)).unwrap();
        let names = names_in(&text);
        assert!(names.len() > 5, "{file}: {names:?}");
        let missing: Vec<_> = names.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "{file} names metrics mirrorflow does not export: {missing:?}"
        );
    }
}

#[test]
fn readme_documents_every_metric() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let section = readme
        .split("## Metrics")
        .nth(1)
        .expect("README has a Metrics section");
    for spec in mirrorflow::metrics::CATALOG {
        assert!(
            section.contains(spec.name),
            "README does not document {}",
            spec.name
        );
    }
}

#[test]
fn promtool_accepts_the_rules_and_the_example_config() {
    require("promtool", "prometheus");
    for args in [
        ["check", "rules", "dashboards/alerts.yml"],
        ["check", "config", "dashboards/prometheus.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(repo("."))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "promtool {args:?}: {text}");
        assert!(text.contains("SUCCESS"), "{text}");
    }
}

/// Importable as they are: a `DS_PROMETHEUS` input used by every query, stable uids, panel
/// ids unique, panels inside the 24-column grid; the provisioning files name the same path.
#[test]
fn dashboards_are_importable() {
    for (file, uid) in [
        ("dashboards/traffic-overview.json", "mirrorflow-traffic"),
        ("dashboards/probe-health.json", "mirrorflow-probe-health"),
    ] {
        let d: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(repo(file)).unwrap()).unwrap();
        assert_eq!(d["uid"], uid, "{file}");
        assert!(d["id"].is_null(), "{file}: id must be null for import");
        let inputs = d["__inputs"].as_array().unwrap();
        assert!(
            inputs
                .iter()
                .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
            "{file}"
        );
        let mut ids = BTreeSet::new();
        for p in d["panels"].as_array().unwrap() {
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "{file}: duplicate id"
            );
            let g = &p["gridPos"];
            assert!(
                g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24,
                "{file}"
            );
            if p["type"] == "row" {
                continue;
            }
            assert!(
                !p["description"].as_str().unwrap_or("").is_empty(),
                "{file}: {}",
                p["title"]
            );
            assert_eq!(
                p["datasource"]["uid"], "${DS_PROMETHEUS}",
                "{file}: {}",
                p["title"]
            );
            for t in p["targets"].as_array().unwrap() {
                assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{file}");
            }
        }
    }
    let provider =
        std::fs::read_to_string(repo("dashboards/provisioning/dashboards/mirrorflow.yml")).unwrap();
    assert!(provider.contains("path: /var/lib/grafana/dashboards/mirrorflow"));
    let ds = std::fs::read_to_string(repo("dashboards/provisioning/datasources/mirrorflow.yml"))
        .unwrap();
    assert!(ds.contains("type: prometheus"));
}

#[test]
fn settings_from_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("mirrorflow.toml");
    std::fs::write(
        &conf,
        "metrics_listen = \"127.0.0.1:0\"\nexit_at_eof = true\ntop_talkers = 3\n\
         metrics_max_ports = 2\nmetrics_max_interfaces = 1\n\
         metrics_internal_nets = [\"10.0.0.0/8\"]\nreplay_speed = 1000.0\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("-r")
        .arg(pcap("pktvisor__dns_ipv4_udp.pcap"))
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("serving metrics on http://127.0.0.1:"),
        "{err}"
    );
}

/// Idle connections are capped (64): one more is closed at once instead of queued, and the
/// endpoint answers again as soon as they go away.
#[test]
fn connections_are_bounded() {
    let p = Probe::start(&["-r".as_ref(), pcap("pcpp__IcmpPackets.pcap").as_os_str()]);
    let mut idle = Vec::new();
    for _ in 0..64 {
        idle.push(std::net::TcpStream::connect(p.addr).unwrap());
    }
    // The server takes the 64 in its own time: poll until one more is turned away.
    assert!(wait_for(Duration::from_secs(10), || http(
        p.addr, "GET", "/healthz"
    )
    .map_or(true, |(status, _)| status != 200)));
    drop(idle);
    assert!(wait_for(Duration::from_secs(10), || http(
        p.addr, "GET", "/healthz"
    )
    .is_ok_and(|(status, _)| status == 200)));
}
