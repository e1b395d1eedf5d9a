//! A port map kept current: loaded from the static map and Open vSwitch, refreshed on a
//! background thread every `refresh` interval, at once when the database reports a change
//! (an RFC 7047 §4.1.5 `monitor` on the Bridge, Port and Interface tables), and on demand.
//!
//! Sharing: the current map is an `Arc<PortMap>` behind a `RwLock`, with a generation counter
//! beside it. Readers ([`PortReader`]) keep their own `Arc` and look at the counter (one atomic
//! load) before each use; they take the read lock only when the map changed, so the lock is
//! touched about once per refresh per reader. The writer swaps one pointer. That is the access
//! pattern `arc-swap` optimises, without its dependency: the lock is already off the hot path.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::fdb::{self, FdbPort};
use super::jsonrpc::Connection;
use super::ovsdb::{self, OvsBridge};
use super::{MapStats, Port, PortMap, PortMapBuilder, PortsError, StaticPorts};

/// Where Open vSwitch is.
#[derive(Clone, Debug)]
pub struct OvsConfig {
    /// The database socket (`--ovsdb unix:PATH`).
    pub db: PathBuf,
    /// vswitchd's control socket; when `None`, `ovs-vswitchd.PID.ctl` beside `db`.
    pub ctl: Option<PathBuf>,
    /// Bridges to read; all when empty.
    pub bridges: Vec<String>,
    /// Deadline of each request.
    pub timeout: Duration,
}

impl OvsConfig {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

    pub fn new(db: PathBuf) -> OvsConfig {
        OvsConfig {
            db,
            ctl: None,
            bridges: Vec::new(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

/// Everything a directory is built from.
#[derive(Clone, Debug)]
pub struct DirectoryConfig {
    pub unknown_index: u32,
    pub static_ports: StaticPorts,
    pub ovs: Option<OvsConfig>,
    /// Interval of the periodic refresh (learned MACs change without a database change).
    pub refresh: Duration,
}

impl DirectoryConfig {
    pub const DEFAULT_REFRESH: Duration = Duration::from_secs(5);
    /// On-demand and on-change refreshes come at most this often.
    pub const MIN_GAP: Duration = Duration::from_millis(200);

    pub fn new(unknown_index: u32) -> DirectoryConfig {
        DirectoryConfig {
            unknown_index,
            static_ports: StaticPorts::default(),
            ovs: None,
            refresh: Self::DEFAULT_REFRESH,
        }
    }
}

/// Counters of a directory since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryStats {
    /// Loads that produced a map.
    pub refreshes: u64,
    /// Loads that failed (the previous map stays).
    pub refresh_errors: u64,
    /// fdb/show requests that failed (the map is published without those bridges' learned
    /// MACs).
    pub fdb_errors: u64,
    /// fdb/show lines that were not entries.
    pub fdb_bad_lines: u64,
    /// fdb/show entries whose port is not an interface of the bridge.
    pub fdb_unknown_ports: u64,
    /// Change notifications from the database.
    pub db_updates: u64,
    /// The last load's error, cleared by a successful load.
    pub last_error: Option<String>,
    /// What the current map left out.
    pub map: MapStats,
}

/// What one [`load`] read.
#[derive(Debug)]
pub struct Loaded {
    pub map: PortMap,
    /// fdb/show failures, one per bridge at most.
    pub fdb_errors: Vec<PortsError>,
    pub fdb_bad_lines: u64,
    pub fdb_unknown_ports: u64,
}

/// Builds a map once: the static ports, then (when configured) Open vSwitch's interfaces,
/// their `attached-mac`, the MACs learned on them, and the own MAC of internal ports.
/// Fails only when the database cannot be read.
pub fn load(cfg: &DirectoryConfig) -> Result<Loaded, PortsError> {
    let mut b = PortMapBuilder::new(cfg.unknown_index);
    for (port, macs) in &cfg.static_ports.ports {
        if let Some(index) = b.add_port(port.clone()) {
            for &mac in macs {
                b.add_mac(index, mac);
            }
        }
    }
    let mut loaded = Loaded {
        map: PortMap::empty(cfg.unknown_index),
        fdb_errors: Vec::new(),
        fdb_bad_lines: 0,
        fdb_unknown_ports: 0,
    };
    if let Some(ovs) = &cfg.ovs {
        let mut bridges = ovsdb::read_bridges(&ovs.db, ovs.timeout)?;
        if !ovs.bridges.is_empty() {
            bridges.retain(|br| ovs.bridges.contains(&br.name));
        }
        add_ovs(&mut b, &bridges, ovs, &mut loaded);
    }
    loaded.map = b.build();
    Ok(loaded)
}

fn add_ovs(b: &mut PortMapBuilder, bridges: &[OvsBridge], ovs: &OvsConfig, out: &mut Loaded) {
    // Per bridge: OpenFlow port number → map index (ofport numbers are per bridge).
    let mut by_ofport: Vec<HashMap<u32, u32>> = Vec::with_capacity(bridges.len());
    for br in bridges {
        let mut ofports = HashMap::new();
        for i in &br.interfaces {
            let Some(index) = i.ifindex.or(i.ofport.filter(|&p| p > 0)) else {
                continue;
            };
            let port = Port {
                index,
                name: i.name.clone(),
                vm: i.vm().map(str::to_string),
                ofport: i.ofport,
            };
            if let Some(index) = b.add_port(port) {
                if let Some(of) = i.ofport {
                    ofports.insert(of, index);
                }
                if let Some(mac) = i.attached_mac() {
                    b.add_mac(index, mac);
                }
            }
        }
        by_ofport.push(ofports);
    }
    let ctl = match &ovs.ctl {
        Some(c) => Some(c.clone()),
        None => fdb::control_socket(&ovs.db)
            .map_err(|e| out.fdb_errors.push(e))
            .ok(),
    };
    for (br, ofports) in bridges.iter().zip(&by_ofport) {
        let Some(ctl) = &ctl else {
            break;
        };
        let text = match fdb::show(ctl, &br.name, ovs.timeout) {
            Ok(t) => t,
            Err(e) => {
                out.fdb_errors.push(e);
                continue;
            }
        };
        let (entries, bad) = fdb::parse_fdb(&text);
        out.fdb_bad_lines += bad;
        for e in entries {
            let index = match &e.port {
                FdbPort::Number(n) => ofports.get(n).copied(),
                FdbPort::Name(name) => b.index_of(name),
            };
            match index {
                Some(index) => {
                    b.add_mac(index, e.mac);
                }
                None => out.fdb_unknown_ports += 1,
            }
        }
    }
    for br in bridges {
        for i in br.interfaces.iter().filter(|i| i.kind == "internal") {
            if let (Some(index), Some(mac)) = (b.index_of(&i.name), i.mac_in_use) {
                b.add_mac(index, mac);
            }
        }
    }
}

struct Control {
    stop: bool,
    wake: bool,
}

struct Shared {
    map: RwLock<Arc<PortMap>>,
    generation: AtomicU64,
    stats: Mutex<DirectoryStats>,
    control: Mutex<Control>,
    cond: Condvar,
}

/// The shared, refreshed port map. Cheap to clone; every clone sees the same map.
#[derive(Clone)]
pub struct PortDirectory {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PortDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortDirectory")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl PortDirectory {
    /// A directory that never changes (a static map, tests).
    pub fn fixed(map: PortMap) -> PortDirectory {
        let stats = DirectoryStats {
            map: map.stats(),
            ..DirectoryStats::default()
        };
        PortDirectory {
            shared: Arc::new(Shared {
                map: RwLock::new(Arc::new(map)),
                generation: AtomicU64::new(1),
                stats: Mutex::new(stats),
                control: Mutex::new(Control {
                    stop: false,
                    wake: false,
                }),
                cond: Condvar::new(),
            }),
        }
    }

    /// Loads the map once (so it is ready when this returns; a failure is logged and kept in
    /// [`DirectoryStats::last_error`], and the static map is used meanwhile), then keeps it
    /// current on background threads until the handle is stopped or dropped.
    pub fn start(cfg: DirectoryConfig) -> (PortDirectory, RefreshHandle) {
        let dir = PortDirectory::fixed(PortMap::empty(cfg.unknown_index));
        let mut rf = Refresher {
            dir: dir.clone(),
            cfg: cfg.clone(),
            failing: false,
        };
        if !rf.refresh() {
            // Publish at least the static ports.
            let only_static = DirectoryConfig {
                ovs: None,
                ..cfg.clone()
            };
            if let Ok(l) = load(&only_static) {
                dir.publish(l.map);
            }
        }
        let mut threads = Vec::new();
        threads.push(
            std::thread::Builder::new()
                .name("ports-refresh".into())
                .spawn(move || rf.run())
                .expect("spawning the port refresher"),
        );
        if let Some(ovs) = cfg.ovs.clone() {
            let d = dir.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("ports-monitor".into())
                    .spawn(move || monitor(d, ovs, cfg.refresh))
                    .expect("spawning the OVSDB monitor"),
            );
        }
        let handle = RefreshHandle {
            dir: dir.clone(),
            threads,
        };
        (dir, handle)
    }

    /// The current map.
    pub fn current(&self) -> Arc<PortMap> {
        self.shared
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Changes each time a new map is published.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// A reader that caches the current map.
    pub fn reader(&self) -> PortReader {
        PortReader {
            dir: self.clone(),
            generation: self.generation(),
            map: self.current(),
        }
    }

    /// Asks for a refresh now (coalesced; at most one per [`DirectoryConfig::MIN_GAP`]).
    pub fn refresh_now(&self) {
        self.control().wake = true;
        self.shared.cond.notify_all();
    }

    pub fn stats(&self) -> DirectoryStats {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn publish(&self, map: PortMap) {
        let stats = map.stats();
        *self
            .shared
            .map
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(map);
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        self.with_stats(|s| s.map = stats);
    }

    fn with_stats(&self, f: impl FnOnce(&mut DirectoryStats)) {
        f(&mut self
            .shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner));
    }

    fn control(&self) -> std::sync::MutexGuard<'_, Control> {
        self.shared
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn stopped(&self) -> bool {
        self.control().stop
    }

    /// Waits until woken, stopped or `timeout`; returns (stop, woken).
    fn wait(&self, timeout: Duration) -> (bool, bool) {
        let deadline = Instant::now() + timeout;
        let mut c = self.control();
        loop {
            if c.stop || c.wake {
                let woken = std::mem::replace(&mut c.wake, false);
                return (c.stop, woken);
            }
            let now = Instant::now();
            if now >= deadline {
                return (false, false);
            }
            c = self
                .shared
                .cond
                .wait_timeout(c, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A thread's view of the directory: the map it holds stays valid while it works on a batch;
/// [`PortReader::map`] picks up a newer one.
pub struct PortReader {
    dir: PortDirectory,
    generation: u64,
    map: Arc<PortMap>,
}

impl PortReader {
    /// The current map (one atomic load when nothing changed).
    pub fn map(&mut self) -> &PortMap {
        let g = self.dir.generation();
        if g != self.generation {
            self.generation = g;
            self.map = self.dir.current();
        }
        &self.map
    }
}

/// Stops the background threads (on [`RefreshHandle::stop`] or drop).
pub struct RefreshHandle {
    dir: PortDirectory,
    threads: Vec<JoinHandle<()>>,
}

impl RefreshHandle {
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.dir.control().stop = true;
        self.dir.shared.cond.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for RefreshHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Refresher {
    dir: PortDirectory,
    cfg: DirectoryConfig,
    /// Whether the last load failed (errors are logged when this changes).
    failing: bool,
}

impl Refresher {
    fn run(&mut self) {
        let mut last = Instant::now();
        loop {
            let (stop, woken) = self
                .dir
                .wait(self.cfg.refresh.saturating_sub(last.elapsed()));
            if stop {
                return;
            }
            if woken {
                let gap = DirectoryConfig::MIN_GAP.saturating_sub(last.elapsed());
                if !gap.is_zero() && self.dir.wait_stop_only(gap) {
                    return;
                }
            }
            self.refresh();
            last = Instant::now();
        }
    }

    /// One load; returns whether it succeeded.
    fn refresh(&mut self) -> bool {
        match load(&self.cfg) {
            Ok(l) => {
                if self.failing {
                    eprintln!("mirrorflow: ports: reading Open vSwitch again");
                    self.failing = false;
                }
                let fdb_errors = l.fdb_errors.len() as u64;
                if let Some(e) = l.fdb_errors.first() {
                    self.dir.with_stats(|s| s.last_error = Some(e.to_string()));
                }
                self.dir.with_stats(|s| {
                    s.refreshes += 1;
                    s.fdb_errors += fdb_errors;
                    s.fdb_bad_lines += l.fdb_bad_lines;
                    s.fdb_unknown_ports += l.fdb_unknown_ports;
                    if fdb_errors == 0 {
                        s.last_error = None;
                    }
                });
                self.dir.publish(l.map);
                true
            }
            Err(e) => {
                if !self.failing {
                    eprintln!("mirrorflow: ports: {e} (keeping the previous port map)");
                    self.failing = true;
                }
                self.dir.with_stats(|s| {
                    s.refresh_errors += 1;
                    s.last_error = Some(e.to_string());
                });
                false
            }
        }
    }
}

impl PortDirectory {
    /// Waits up to `timeout` for a stop only (wakes stay pending); returns whether stopped.
    fn wait_stop_only(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut c = self.control();
        while !c.stop {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            c = self
                .shared
                .cond
                .wait_timeout(c, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// How often the monitor thread looks at the stop flag.
const MONITOR_TICK: Duration = Duration::from_millis(200);

/// Keeps an OVSDB `monitor` open and asks for a refresh on every `update` notification;
/// reconnects after `retry` when the connection fails.
fn monitor(dir: PortDirectory, ovs: OvsConfig, retry: Duration) {
    let columns = json!({
        "Bridge": {"columns": ["name", "ports"], "select": {"initial": false}},
        "Port": {"columns": ["name", "interfaces", "tag"], "select": {"initial": false}},
        "Interface": {"columns": ["name", "ofport", "ifindex", "mac_in_use", "external_ids"],
                      "select": {"initial": false}},
    });
    while !dir.stopped() {
        let conn = Connection::connect(&ovs.db, ovs.timeout).and_then(|mut c| {
            c.call(
                "monitor",
                json!(["Open_vSwitch", "mirrorflow-ports", columns]),
                ovs.timeout,
            )?;
            Ok(c)
        });
        if let Ok(mut conn) = conn {
            while !dir.stopped() {
                match conn.next_message(Instant::now() + MONITOR_TICK) {
                    Ok(None) => {}
                    Ok(Some(msg)) => {
                        if msg.get("method").and_then(Value::as_str) == Some("update") {
                            dir.with_stats(|s| s.db_updates += 1);
                            dir.refresh_now();
                        } else if conn.answer_echo(&msg).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        // The refresher reports database errors; here only wait before reconnecting.
        if dir.wait_stop_only(retry) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{validate, StaticPort};

    fn static_cfg() -> DirectoryConfig {
        let ports = [StaticPort {
            name: "vm1-eth0".into(),
            index: 10,
            macs: vec!["52:54:00:00:00:01".into()],
            vm: Some("vm1".into()),
        }];
        DirectoryConfig {
            static_ports: validate(&ports, 7).unwrap(),
            refresh: Duration::from_secs(600),
            ..DirectoryConfig::new(7)
        }
    }

    #[test]
    fn readers_follow_refreshes_and_stop_is_prompt() {
        let (dir, handle) = PortDirectory::start(static_cfg());
        let mut reader = dir.reader();
        assert_eq!(reader.map().lookup(&[0x52, 0x54, 0, 0, 0, 1]), 10);
        assert_eq!(reader.map().lookup(&[0x52, 0x54, 0, 0, 0, 2]), 7);
        let g = dir.generation();
        dir.refresh_now();
        let mut tries = 0;
        while dir.generation() == g && tries < 100 {
            std::thread::sleep(Duration::from_millis(20));
            tries += 1;
        }
        assert!(dir.generation() > g, "refresh_now published no map");
        assert_eq!(reader.map().port(10).unwrap().vm.as_deref(), Some("vm1"));
        let s = dir.stats();
        assert_eq!((s.refreshes >= 2, s.refresh_errors), (true, 0), "{s:?}");
        let t = Instant::now();
        handle.stop();
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn an_unreachable_database_keeps_the_static_map_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = static_cfg();
        cfg.ovs = Some(OvsConfig::new(dir.path().join("db.sock")));
        assert!(matches!(load(&cfg), Err(PortsError::Connect { .. })));
        let (d, handle) = PortDirectory::start(cfg);
        assert_eq!(d.current().lookup(&[0x52, 0x54, 0, 0, 0, 1]), 10);
        let s = d.stats();
        assert_eq!(s.refresh_errors, 1, "{s:?}");
        assert!(s.last_error.unwrap().contains("db.sock: cannot connect"));
        drop(handle);
    }
}
