//! Against a real Prometheus (Debian package `prometheus`): a server started here on loopback
//! scrapes three mirrorflow replays every second and evaluates the shipped alert rules every
//! second. Then every PromQL expression of every dashboard panel returns data, every rule
//! evaluates without error, and the alerts for the two faults made here fire: a collector that
//! is down (IPFIX to a closed UDP port) and a flow table at its cap (`--max-flows 10`), and
//! only for the probe that has them.

mod metrics_support;
mod sflow_in_support;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use metrics_support::*;
use serde_json::Value;

/// A Prometheus server on 127.0.0.1 with its own storage, scraping the targets of a file
/// (file_sd, so targets can be added once their ports are known).
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped rules with every `for:` shortened to 1 s (the expressions are untouched).
fn test_rules(shipped: &str) -> String {
    shipped
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for:") {
            Some(_) => format!("{}for: 1s", &l[..l.len() - l.trim_start().len()]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Prometheus {
    fn start() -> Prometheus {
        require("prometheus", "prometheus");
        let dir = tempfile::tempdir().unwrap();
        let shipped = std::fs::read_to_string(repo("dashboards/alerts.yml")).unwrap();
        std::fs::write(dir.path().join("alerts.yml"), test_rules(&shipped)).unwrap();
        std::fs::write(dir.path().join("targets.json"), "[]").unwrap();
        std::fs::write(
            dir.path().join("prometheus.yml"),
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - alerts.yml\n\
             scrape_configs:\n  - job_name: mirrorflow\n    file_sd_configs:\n      \
             - files: [targets.json]\n        refresh_interval: 1s\n",
        )
        .unwrap();
        for _ in 0..5 {
            // A free port, released just before Prometheus binds it: retried if taken.
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
            let mut child = Command::new("prometheus")
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("starting prometheus");
            let ready = wait_for(Duration::from_secs(30), || {
                child.try_wait().ok().flatten().is_none()
                    && http(addr, "GET", "/-/ready").is_ok_and(|(s, _)| s == 200)
            });
            if ready {
                return Prometheus { child, addr, dir };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("prometheus did not become ready");
    }

    fn scrape(&self, targets: &[SocketAddr]) {
        let list: Vec<String> = targets.iter().map(|a| format!("\"{a}\"")).collect();
        let json = format!("[{{\"targets\": [{}]}}]", list.join(", "));
        let tmp = self.dir.path().join("targets.json.new");
        std::fs::write(&tmp, json).unwrap();
        std::fs::rename(tmp, self.dir.path().join("targets.json")).unwrap();
    }

    fn api(&self, path: &str) -> Value {
        let (status, body) = http(self.addr, "GET", path).unwrap();
        let v: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {status} {body}"));
        assert_eq!(v["status"], "success", "{path}: {body}");
        v["data"].clone()
    }

    fn query(&self, expr: &str) -> Value {
        self.api(&format!("/api/v1/query?query={}", urlencode(expr)))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

/// Grafana variables the dashboards use, as Prometheus sees them at query time.
fn expand(expr: &str) -> String {
    expr.replace("$__rate_interval", "10s")
        .replace("$__range", "1h")
        .replace("$__interval", "2s")
        .replace("$instance", ".*")
}

/// Every PromQL expression of a dashboard, with its panel title.
fn expressions(dashboard: &Path) -> Vec<(String, String)> {
    let d: Value = serde_json::from_str(&std::fs::read_to_string(dashboard).unwrap()).unwrap();
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = d["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = panels.pop() {
        if let Some(inner) = p["panels"].as_array() {
            panels.extend(inner);
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push((p["title"].as_str().unwrap_or("").to_string(), e.to_string()));
            }
        }
    }
    for v in d["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            // label_values(metric, label) is Grafana's; check the metric has series.
            if let Some(inner) = q.strip_prefix("label_values(") {
                let metric = inner.split(',').next().unwrap().trim();
                out.push((format!("variable {}", v["name"]), metric.to_string()));
            }
        }
    }
    out
}

fn firing(p: &Prometheus) -> BTreeSet<(String, String)> {
    p.api("/api/v1/alerts")["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap().to_string(),
                a["labels"]["instance"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn dashboards_and_alerts_against_a_real_prometheus() {
    let prom = Prometheus::start();
    // Healthy: paced replay (30 s of DNS traffic at 2x) exporting to a collector that is up.
    let (_up, collector) = udp_sink();
    let json = tempfile::NamedTempFile::new().unwrap();
    let dns = pcap("pktvisor__dns_udp_tcp_random.pcap");
    let healthy = Probe::start(&[
        "-r".as_ref(),
        dns.as_os_str(),
        "--replay-speed".as_ref(),
        "2".as_ref(),
        "--json".as_ref(),
        json.path().as_os_str(),
        "--ipfix".as_ref(),
        collector.to_string().as_ref(),
    ]);
    // Faulty: the same replay with a 10-flow table and a collector that is down.
    let faulty = Probe::start(&[
        "-r".as_ref(),
        dns.as_os_str(),
        "--replay-speed".as_ref(),
        "2".as_ref(),
        "--max-flows".as_ref(),
        "10".as_ref(),
        "--ipfix".as_ref(),
        closed_udp_port().to_string().as_ref(),
    ]);
    // Varied: ARP, 802.3, ICMP, IPv6 at full speed, kept up after the end of the file.
    let varied = Probe::start(&["-r".as_ref(), pcap("pcpp__many-protocols.pcap").as_os_str()]);
    // sFlow in: an IPv6 agent's datagrams (flow and counter samples) for the sFlow panels.
    let sflow = sflow_in_support::SflowProbe::start(&[]);
    let payloads = sflow_in_support::udp_payloads(
        &sflow_in_support::shared_pcap("tcpdump__sflow-print-v6.pcap"),
        6343,
    );
    sflow_in_support::send_all(sflow.v4, &payloads);
    let targets = [healthy.addr, faulty.addr, varied.addr, sflow.metrics];
    prom.scrape(&targets);

    // Every target up, with data.
    let up = wait_for(Duration::from_secs(60), || {
        let t = prom.api("/api/v1/targets");
        let active = t["activeTargets"].as_array().cloned().unwrap_or_default();
        active.len() == targets.len() && active.iter().all(|t| t["health"] == "up")
    });
    assert!(
        up,
        "targets not up: {}\n{}",
        prom.api("/api/v1/targets"),
        prom.log()
    );
    assert!(wait_for(Duration::from_secs(30), || {
        prom.query("mirrorflow_build_info")["result"]
            .as_array()
            .is_some_and(|r| r.len() == targets.len())
    }));

    // Every panel expression returns data.
    for file in [
        "dashboards/traffic-overview.json",
        "dashboards/probe-health.json",
    ] {
        let exprs = expressions(&repo(file));
        assert!(exprs.len() > 10, "{file}");
        for (title, expr) in exprs {
            let q = expand(&expr);
            let mut last = Value::Null;
            let ok = wait_for(Duration::from_secs(45), || {
                last = prom.query(&q);
                last["result"].as_array().is_some_and(|r| !r.is_empty())
            });
            assert!(ok, "{file}: panel {title:?}: {q} returned no data: {last}");
        }
    }

    // Every rule evaluates without error.
    let rules_ok = wait_for(Duration::from_secs(30), || {
        let groups = prom.api("/api/v1/rules")["groups"].clone();
        let rules: Vec<Value> = groups
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        rules.len() >= 10
            && rules.iter().all(|r| {
                r["health"] == "ok"
                    && !r["lastEvaluation"]
                        .as_str()
                        .unwrap_or("0001")
                        .starts_with("0001")
            })
    });
    assert!(rules_ok, "rules: {}", prom.api("/api/v1/rules"));

    // The faults fire, for the faulty probe only.
    let faulty_instance = faulty.addr.to_string();
    let mut alerts = BTreeSet::new();
    let fired = wait_for(Duration::from_secs(60), || {
        alerts = firing(&prom);
        ["MirrorflowCollectorDown", "MirrorflowFlowTableFull"]
            .iter()
            .all(|a| alerts.contains(&(a.to_string(), faulty_instance.clone())))
    });
    assert!(
        fired,
        "alerts firing: {alerts:?}\nfaulty probe: {}\n{}",
        faulty.log(),
        prom.api("/api/v1/rules")
    );
    for (name, instance) in &alerts {
        if name == "MirrorflowCollectorDown" || name == "MirrorflowFlowTableFull" {
            assert_eq!(
                instance, &faulty_instance,
                "{name} fired for a healthy probe"
            );
        }
    }
}
