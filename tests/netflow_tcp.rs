//! IPFIX over TCP (RFC 7011 §10.4) through a collector outage. No Debian collector speaks
//! IPFIX/TCP, so the test is the collector: it listens, frames the stream by the message
//! length and decodes it with the independent `netflow_parser` crate (not our decoder),
//! with a fresh parser per connection, as a collector keeps templates per session.
//!
//! The outage is made deterministic by TCP flow control instead of timing: the listener's
//! receive buffer is small and the test stops reading after a few messages, so mirrorflow
//! (replaying a file, which waits for its sinks) is stalled mid-file. The test then closes
//! the connection with data unread (a reset, as when a collector dies) after putting a new
//! listener on the same port; mirrorflow must notice, reconnect, start the new connection
//! with templates, and send the rest of the records, which must be exactly the tail of its
//! own `--json` output.

mod netflow_support;

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use netflow_parser::variable_versions::ipfix::lookup::IPFixField;
use netflow_parser::variable_versions::ipfix::FlowSetBody;
use netflow_parser::{FieldValue, NetflowPacket, NetflowParser};
use netflow_support::*;

/// A listener on 127.0.0.1:`port` (0: any) with a 64 KiB receive buffer, inherited by the
/// connections it accepts (which also turns receive-buffer autotuning off).
fn listen(port: u16) -> TcpListener {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    s.set_recv_buffer_size(64 << 10).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap_or_else(|e| panic!("binding 127.0.0.1:{port}: {e}"));
    s.listen(4).unwrap();
    s.into()
}

/// Accepts one connection, polling for at most 30 s.
fn accept(l: &TcpListener, mf: &mut Guard) -> TcpStream {
    l.set_nonblocking(true).unwrap();
    let mut conn = None;
    wait_for(Duration::from_secs(30), || {
        if let Ok((c, _)) = l.accept() {
            conn = Some(c);
        }
        conn.is_some() || mf.0.try_wait().unwrap().is_some()
    });
    let c = conn.expect("mirrorflow did not connect (or exited)");
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    c
}

/// A flow record as the test compares it: key (ICMP type/code as destination port, as in
/// mirrorflow's JSON), packets, bytes, start and end in ms.
type Rec = (Key, u64, u64, u64, u64);

/// One connection as a collector sees it.
#[derive(Default)]
struct Session {
    parser: NetflowParser,
    messages: usize,
    /// Index of each message that carried a template set.
    template_messages: Vec<usize>,
    records: Vec<Rec>,
    sequences: Vec<u32>,
}

fn uint(v: &FieldValue) -> u64 {
    let mut b = Vec::new();
    v.write_be_bytes(&mut b).expect("write_be_bytes");
    assert!(b.len() <= 8, "{v:?}");
    b.iter().fold(0, |a, &x| a << 8 | u64::from(x))
}

fn addr(v: &FieldValue) -> IpAddr {
    match v {
        FieldValue::Ip4Addr(a) => IpAddr::from(*a),
        FieldValue::Ip6Addr(a) => IpAddr::from(*a),
        other => panic!("not an address: {other:?}"),
    }
}

impl Session {
    /// Reads one framed message; `None` at a clean end of stream.
    fn read_message(&mut self, s: &mut TcpStream) -> Option<()> {
        let mut hdr = [0u8; 16];
        match s.read_exact(&mut hdr[..1]) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            r => r.expect("reading the stream"),
        }
        s.read_exact(&mut hdr[1..]).expect("message header");
        assert_eq!(u16::from_be_bytes([hdr[0], hdr[1]]), 10, "IPFIX version");
        let len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
        assert!(len >= 16, "message length {len}");
        let mut msg = hdr.to_vec();
        msg.resize(len, 0);
        s.read_exact(&mut msg[16..]).expect("message body");
        self.decode(&msg);
        Some(())
    }

    fn decode(&mut self, msg: &[u8]) {
        let ctx = format!("message {}", self.messages);
        let res = self.parser.parse_bytes(msg);
        assert!(res.error.is_none(), "{ctx}: {:?}", res.error);
        assert_eq!(res.packets.len(), 1, "{ctx}");
        let NetflowPacket::IPFix(p) = &res.packets[0] else {
            panic!("{ctx}: not IPFIX")
        };
        self.sequences.push(p.header.sequence_number);
        let field = |id: u16| IPFixField::new(id, None);
        for fs in &p.flowsets {
            match &fs.body {
                FlowSetBody::Template(_) | FlowSetBody::Templates(_)
                    if self.template_messages.last() != Some(&self.messages) =>
                {
                    self.template_messages.push(self.messages);
                }
                FlowSetBody::NoTemplate(n) => {
                    panic!("{ctx}: data set {} before its template", n.template_id)
                }
                FlowSetBody::Data(d) => {
                    for r in &d.fields {
                        let get = |ids: &[u16]| {
                            r.iter()
                                .find(|(f, _)| ids.iter().any(|&i| *f == field(i)))
                                .map(|(_, v)| v)
                                .unwrap_or_else(|| panic!("{ctx}: no IE {ids:?} in {r:?}"))
                        };
                        let proto = uint(get(&[4])) as u8;
                        let dst_port = if matches!(proto, 1 | 58) {
                            uint(get(&[32, 139]))
                        } else {
                            uint(get(&[11]))
                        };
                        self.records.push((
                            (
                                addr(get(&[8, 27])),
                                addr(get(&[12, 28])),
                                uint(get(&[7])) as u16,
                                dst_port as u16,
                                proto,
                            ),
                            uint(get(&[2])),
                            uint(get(&[1])),
                            uint(get(&[152])),
                            uint(get(&[153])),
                        ));
                    }
                }
                _ => {}
            }
        }
        self.messages += 1;
    }
}

fn sorted(mut v: Vec<Rec>) -> Vec<Rec> {
    v.sort();
    v
}

#[test]
fn ipfix_tcp_reconnects_and_resends_templates() {
    let work = tempfile::tempdir().unwrap();
    let trace = work.path().join("trace.pcap");
    // 300 000 one-packet flows: ~25 MB of IPFIX, far more than the socket buffers hold,
    // so mirrorflow is still mid-file when the collector goes away.
    gen_trace(&trace, 300_000, 300_000);
    let json = work.path().join("flows.jsonl");
    let stderr = work.path().join("stderr.txt");

    let l1 = listen(0);
    let port = l1.local_addr().unwrap().port();
    let mut mf = Guard(
        mirrorflow()
            .arg("-r")
            .arg(&trace)
            .args(["--ipfix", &format!("127.0.0.1:{port}")])
            .args(["--ipfix-transport", "tcp", "--json"])
            .arg(&json)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("starting mirrorflow"),
    );

    // First connection: 50 messages, then the collector dies with data unread.
    let mut c1 = accept(&l1, &mut mf);
    let mut first = Session::default();
    for n in 0..50 {
        let read = first.read_message(&mut c1);
        assert!(read.is_some(), "stream ended after {n} messages");
    }
    assert_eq!(first.template_messages, [0], "templates open the session");
    assert_eq!(first.sequences[0], 0);
    // The restarted collector listens before the old connection goes, so mirrorflow's
    // first reconnection attempt succeeds (failed attempts and their backoff are covered
    // by the unit tests).
    drop(l1);
    let l2 = listen(port);
    drop(c1);

    let mut c2 = accept(&l2, &mut mf);
    let mut second = Session::default();
    while second.read_message(&mut c2).is_some() {}
    let status = mf
        .wait_exit(Duration::from_secs(60))
        .expect("mirrorflow did not exit");
    let log = std::fs::read_to_string(&stderr).unwrap();
    eprintln!(
        "first connection: {} messages, {} records; second: {} messages, {} records; \
         mirrorflow {status}: {log}",
        first.messages,
        first.records.len(),
        second.messages,
        second.records.len()
    );

    assert_eq!(
        second.template_messages,
        [0],
        "the new connection starts with templates, and only then"
    );
    assert_eq!(second.sequences[0], 0, "a new session numbers from 0");
    let mine: Vec<Rec> = json_flows(&json)
        .into_iter()
        .map(|f| {
            let ms = |ns: u64| ns / 1_000_000;
            (f.key, f.packets, f.bytes, ms(f.start_ns), ms(f.end_ns))
        })
        .collect();
    assert!(mine.len() >= 300_000, "{} records", mine.len());
    let k = second.records.len();
    assert!(
        k > mine.len() / 4,
        "only {k} of {} records after reconnection: was mirrorflow stalled?",
        mine.len()
    );
    // Whole encoder chunks go to the new connection: its records are exactly the last ones
    // mirrorflow produced, intact.
    assert_eq!(
        sorted(second.records.clone()),
        sorted(mine[mine.len() - k..].to_vec()),
        "records after reconnection vs the tail of mirrorflow's JSON"
    );
    // Those before the outage are the first ones (some were in flight when it broke).
    let head = sorted(mine[..first.records.len() + 512].to_vec());
    for r in &first.records {
        assert!(
            head.binary_search(r).is_ok(),
            "{r:?} not among the first records"
        );
    }
    assert!(
        log.contains("the collector closed the connection") || log.contains("send: "),
        "no log line about the lost connection: {log}"
    );
    // What was in flight on the dead connection is lost; records the sink knows it could
    // not send are counted and make the run fail.
    assert!(
        status.success() || log.contains("records not sent"),
        "{status}: {log}"
    );
}
