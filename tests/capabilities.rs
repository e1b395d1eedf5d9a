//! mirrorflow without root: a copy of the binary run as an unprivileged system user
//! (`mfcaptest`, created if missing) with every inheritable capability dropped, capturing on
//! a veth in a network namespace the test creates.
//!
//! Proves that
//! - without capabilities it exits 1 with one line naming root and CAP_NET_RAW;
//! - CAP_NET_ADMIN alone is not enough (same error);
//! - with only `setcap cap_net_raw+ep` it captures in promiscuous mode (the interface's
//!   promiscuity count rises while it runs) and with `--no-promisc` (it stays 0): CAP_NET_RAW
//!   is the whole minimal set, CAP_NET_ADMIN is not needed;
//! - the captured ICMP echo shows up in `--json` after SIGTERM, within 10 s.
//!
//! Needs root, iproute2, iputils-ping, passwd (useradd), util-linux (setpriv) and libcap2-bin
//! (setcap): without them the test fails naming the tool.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mirrorflow");
const USER: &str = "mfcaptest";

fn run(cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} (is it installed?): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn need(tools: &[&str]) {
    for t in tools {
        let found = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .any(|d| d.join(t).is_file());
        assert!(
            found,
            "{t} is missing (apt-get install iproute2 iputils-ping passwd util-linux libcap2-bin)"
        );
    }
}

/// uid and gid of the test user, created (system user, no home) if missing.
fn test_user() -> (u32, u32) {
    let id = |flag: &str| {
        Command::new("id")
            .args([flag, USER])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8(o.stdout).unwrap().trim().parse().unwrap())
    };
    if id("-u").is_none() {
        let out = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ])
            .output()
            .expect("useradd");
        // A concurrent run may have created it meanwhile: only the lookup below decides.
        if !out.status.success() {
            eprintln!("useradd: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    (
        id("-u").unwrap_or_else(|| panic!("no user {USER}")),
        id("-g").unwrap(),
    )
}

/// Two namespaces joined by a veth: the capture side `va` (10.79.0.1) and the peer `vb`
/// (10.79.0.2) in the other. Deleted on drop.
struct Wire {
    capture_ns: String,
    peer_ns: String,
}

impl Wire {
    fn new() -> Wire {
        let id = format!("{:04x}", std::process::id() as u16 ^ (rand_u16()));
        let wire = Wire {
            capture_ns: format!("mfcap{id}-a"),
            peer_ns: format!("mfcap{id}-b"),
        };
        let (a, b) = (wire.capture_ns.as_str(), wire.peer_ns.as_str());
        run("ip", &["netns", "add", a]);
        run("ip", &["netns", "add", b]);
        run(
            "ip",
            &[
                "-n", a, "link", "add", "name", "va", "type", "veth", "peer", "name", "vb",
                "netns", b,
            ],
        );
        for (ns, dev, addr) in [(a, "va", "10.79.0.1/24"), (b, "vb", "10.79.0.2/24")] {
            run("ip", &["-n", ns, "addr", "add", addr, "dev", dev]);
            run("ip", &["-n", ns, "link", "set", dev, "up"]);
        }
        wire
    }

    fn promiscuity(&self) -> u64 {
        let out = run(
            "ip",
            &["-n", &self.capture_ns, "-d", "-j", "link", "show", "va"],
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["promiscuity"].as_u64().unwrap()
    }

    fn ping(&self, count: u32) {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &self.peer_ns,
                "ping",
                "-c",
                &count.to_string(),
                "-i",
                "0.05",
                "-q",
                "10.79.0.1",
            ],
        );
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        for ns in [&self.capture_ns, &self.peer_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn rand_u16() -> u16 {
    let mut b = [0u8; 2];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .unwrap();
    u16::from_ne_bytes(b)
}

/// mirrorflow as the test user inside the capture namespace, every capability it would
/// inherit dropped: only file capabilities of the binary count.
fn spawn(
    wire: &Wire,
    user: (u32, u32),
    bin: &Path,
    args: &[&str],
) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &wire.capture_ns, "setpriv"])
        .arg(format!("--reuid={}", user.0))
        .arg(format!("--regid={}", user.1))
        .args(["--clear-groups", "--inh-caps=-all"])
        .arg(bin)
        .args(["-i", "va"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip netns exec … setpriv … mirrorflow");
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits at most 10 s for `child` to exit.
fn wait_exit(child: &mut Child, what: &str) -> std::process::ExitStatus {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{what}: mirrorflow did not exit within 10 s");
}

/// Without the capability: exit 1 and one line that says what is missing.
fn refused(wire: &Wire, user: (u32, u32), bin: &Path, json: &Path, what: &str) {
    let (mut child, stderr) = spawn(wire, user, bin, &["--json", json.to_str().unwrap()]);
    let status = wait_exit(&mut child, what);
    let lines: Vec<String> = stderr.iter().collect();
    eprintln!("{what}: {status}: {lines:?}");
    assert_eq!(status.code(), Some(1), "{what}: {lines:?}");
    assert_eq!(lines.len(), 1, "{what}: one line: {lines:?}");
    let l = &lines[0];
    assert!(
        l.starts_with("mirrorflow: ")
            && l.contains("va")
            && l.contains("root")
            && l.contains("CAP_NET_RAW"),
        "{what}: {l}"
    );
}

/// With the capability: captures (promiscuous unless `--no-promisc`), stops on SIGTERM within
/// 10 s and has the echo exchange in its JSON.
fn captures(wire: &Wire, user: (u32, u32), bin: &Path, json: &Path, promisc: bool) {
    let what = if promisc {
        "promiscuous"
    } else {
        "--no-promisc"
    };
    let mut args = vec!["--json", json.to_str().unwrap()];
    if !promisc {
        args.push("--no-promisc");
    }
    let (mut child, stderr) = spawn(wire, user, bin, &args);
    let first = stderr.recv_timeout(Duration::from_secs(20));
    if !matches!(&first, Ok(l) if l.contains("capturing on")) {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{what}: mirrorflow: {first:?} {:?}",
            stderr.try_iter().collect::<Vec<_>>()
        );
    }
    let promiscuity = wire.promiscuity();
    wire.ping(3);
    run("kill", &["-TERM", &child.id().to_string()]);
    // `ip netns exec` and setpriv exec into mirrorflow: the child is mirrorflow itself.
    let status = wait_exit(&mut child, what);
    let rest: Vec<String> = stderr.try_iter().collect();
    assert!(status.success(), "{what}: {status}: {rest:?}");
    assert_eq!(
        promiscuity,
        u64::from(promisc),
        "{what}: promiscuity while capturing"
    );
    assert_eq!(wire.promiscuity(), 0, "{what}: promiscuous mode left on");
    let flows: Vec<Value> = std::fs::read_to_string(json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (src, dst, code) in [
        ("10.79.0.2", "10.79.0.1", 8 << 8),
        ("10.79.0.1", "10.79.0.2", 0),
    ] {
        let packets: u64 = flows
            .iter()
            .filter(|f| {
                f["src_addr"] == src
                    && f["dst_addr"] == dst
                    && f["protocol"] == 1
                    && f["dst_port"] == code
            })
            .map(|f| f["packets"].as_u64().unwrap())
            .sum();
        eprintln!("{what}: ICMP {src} → {dst}: {packets} packets");
        assert_eq!(packets, 3, "{what}: ICMP {src} → {dst}: {flows:?}");
    }
}

fn setcap(caps: &str, bin: &Path) {
    run("setcap", &[caps, bin.to_str().unwrap()]);
}

#[test]
fn capture_without_root_needs_only_cap_net_raw() {
    need(&["ip", "ping", "setpriv", "setcap", "getcap", "useradd"]);
    assert!(
        Command::new("id").arg("-u").output().unwrap().stdout == b"0\n",
        "this test needs root (it creates a user, namespaces and sets file capabilities)"
    );
    let user = test_user();
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin: PathBuf = work.path().join("mirrorflow");
    std::fs::copy(BIN, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = work.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(user.0), Some(user.1)).unwrap();
    let wire = Wire::new();

    refused(&wire, user, &bin, &out.join("none.json"), "no capabilities");
    setcap("cap_net_admin+ep", &bin);
    refused(
        &wire,
        user,
        &bin,
        &out.join("admin.json"),
        "CAP_NET_ADMIN only",
    );
    setcap("cap_net_raw+ep", &bin);
    let caps = run("getcap", &[bin.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&caps.stdout).contains("cap_net_raw=ep"),
        "file capabilities did not stick (is {} mounted nosuid?): {:?}",
        work.path().display(),
        caps
    );
    captures(&wire, user, &bin, &out.join("promisc.json"), true);
    captures(&wire, user, &bin, &out.join("no-promisc.json"), false);
}
