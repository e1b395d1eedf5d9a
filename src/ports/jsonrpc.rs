//! JSON-RPC 1.0 over a Unix stream socket, as Open vSwitch speaks it: ovsdb-server (RFC 7047
//! §4: `transact`, `monitor`, `echo`) and ovs-vswitchd's control socket (the `ovs-appctl`
//! protocol: one method per command, text result).
//!
//! Messages are JSON objects sent back to back with no delimiter, so [`Framer`] finds their
//! ends by counting brackets outside strings. Every read has a deadline and every message a
//! size limit.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::PortsError;

/// Longest message accepted: a full OVSDB dump of a large host is a few MiB.
pub const MAX_MESSAGE: usize = 16 << 20;

/// Splits a byte stream into top-level JSON values.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Bytes of `buf` already scanned for the current message.
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
    limit: usize,
}

impl Framer {
    pub fn new(limit: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            scanned: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            limit,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, if the buffer holds one. `Err` when the stream is not a
    /// sequence of JSON objects/arrays (the detail says why) or a message exceeds the limit.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let mut i = self.scanned;
        while i < self.buf.len() {
            let b = self.buf[i];
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
            } else if self.depth == 0 {
                match b {
                    b' ' | b'\t' | b'\r' | b'\n' => {
                        // Whitespace between messages: drop it.
                        self.buf.drain(..=i);
                        i = 0;
                        continue;
                    }
                    b'{' | b'[' => self.depth = 1,
                    other => return Err(FrameError::NotJson(other)),
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            let msg: Vec<u8> = self.buf.drain(..=i).collect();
                            self.scanned = 0;
                            return Ok(Some(msg));
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        self.scanned = i;
        if self.buf.len() > self.limit {
            return Err(FrameError::TooLarge);
        }
        Ok(None)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    NotJson(u8),
    TooLarge,
}

/// One JSON-RPC connection.
pub struct Connection {
    path: PathBuf,
    stream: UnixStream,
    framer: Framer,
    next_id: u64,
}

impl Connection {
    pub fn connect(path: &Path, timeout: Duration) -> Result<Connection, PortsError> {
        let stream = UnixStream::connect(path).map_err(|source| PortsError::Connect {
            path: path.to_owned(),
            source,
        })?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(|source| PortsError::Io {
                path: path.to_owned(),
                what: "setting the write timeout",
                source,
            })?;
        Ok(Connection {
            path: path.to_owned(),
            stream,
            framer: Framer::new(MAX_MESSAGE),
            next_id: 1,
        })
    }

    fn send(&mut self, msg: &Value) -> Result<(), PortsError> {
        let bytes = serde_json::to_vec(msg).expect("a Value always serializes");
        self.stream
            .write_all(&bytes)
            .map_err(|source| PortsError::Io {
                path: self.path.clone(),
                what: "sending",
                source,
            })
    }

    /// Calls `method` and waits up to `timeout` for its result. Echo requests from the peer
    /// (RFC 7047 §4.1.11) are answered meanwhile; other notifications are dropped.
    pub fn call(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, PortsError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"method": method, "params": params, "id": id}))?;
        let deadline = Instant::now() + timeout;
        loop {
            let Some(mut msg) = self.next_message(deadline)? else {
                return Err(PortsError::Timeout {
                    path: self.path.clone(),
                    method: method.into(),
                    timeout,
                });
            };
            if msg.get("id").and_then(Value::as_u64) != Some(id) || msg.get("method").is_some() {
                self.answer_echo(&msg)?;
                continue;
            }
            return match msg.get("error") {
                None | Some(Value::Null) => Ok(msg
                    .get_mut("result")
                    .map(Value::take)
                    .unwrap_or(Value::Null)),
                Some(e) => Err(PortsError::Rpc {
                    path: self.path.clone(),
                    method: method.into(),
                    detail: match e {
                        Value::String(s) => s.trim_end().to_string(),
                        other => other.to_string(),
                    },
                }),
            };
        }
    }

    /// Replies to `msg` if it is an echo request. Returns whether it was one.
    pub fn answer_echo(&mut self, msg: &Value) -> Result<bool, PortsError> {
        if msg.get("method").and_then(Value::as_str) != Some("echo") {
            return Ok(false);
        }
        let reply = json!({
            "result": msg.get("params").cloned().unwrap_or(Value::Array(vec![])),
            "error": null,
            "id": msg.get("id").cloned().unwrap_or(Value::Null),
        });
        self.send(&reply)?;
        Ok(true)
    }

    /// The next message from the peer, or `None` once `deadline` has passed.
    pub fn next_message(&mut self, deadline: Instant) -> Result<Option<Value>, PortsError> {
        let mut chunk = [0u8; 65536];
        loop {
            match self.framer.next_message() {
                Ok(Some(bytes)) => {
                    return serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                        PortsError::Protocol {
                            path: self.path.clone(),
                            detail: e.to_string(),
                        }
                    })
                }
                Ok(None) => {}
                Err(FrameError::TooLarge) => {
                    return Err(PortsError::TooLarge {
                        path: self.path.clone(),
                        limit: MAX_MESSAGE,
                    })
                }
                Err(FrameError::NotJson(b)) => {
                    return Err(PortsError::Protocol {
                        path: self.path.clone(),
                        detail: format!("byte {b:#04x} between messages"),
                    })
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.stream
                .set_read_timeout(Some(deadline - now))
                .map_err(|source| PortsError::Io {
                    path: self.path.clone(),
                    what: "setting the read timeout",
                    source,
                })?;
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(PortsError::Closed {
                        path: self.path.clone(),
                    })
                }
                Ok(n) => self.framer.push(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(None)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(PortsError::Io {
                        path: self.path.clone(),
                        what: "receiving",
                        source,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(f: &mut Framer) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(m) = f.next_message().unwrap() {
            out.push(String::from_utf8(m).unwrap());
        }
        out
    }

    #[test]
    fn messages_are_split_at_their_closing_bracket() {
        let mut f = Framer::new(1 << 20);
        f.push(br#"{"id":1,"result":"a}b{c\"}"} "#);
        f.push(b"\n{\"id\":2,\"result\":[1,[2");
        assert_eq!(all(&mut f), vec![r#"{"id":1,"result":"a}b{c\"}"}"#]);
        f.push(b"]],\"s\":\"\\\\\"}{\"id\":3}");
        assert_eq!(
            all(&mut f),
            vec![r#"{"id":2,"result":[1,[2]],"s":"\\"}"#, r#"{"id":3}"#]
        );
    }

    #[test]
    fn byte_at_a_time_gives_the_same_messages() {
        let text = br#"{"a":"x\"}y"}  {"b":{"c":[]}}"#;
        let mut f = Framer::new(1 << 20);
        let mut got = Vec::new();
        for b in text {
            f.push(&[*b]);
            got.extend(all(&mut f));
        }
        assert_eq!(got, vec![r#"{"a":"x\"}y"}"#, r#"{"b":{"c":[]}}"#]);
    }

    #[test]
    fn garbage_and_oversized_messages_are_errors() {
        let mut f = Framer::new(1 << 20);
        f.push(b"hello");
        assert_eq!(f.next_message(), Err(FrameError::NotJson(b'h')));
        let mut f = Framer::new(8);
        f.push(b"{\"a\":\"0123456789\"");
        assert_eq!(f.next_message(), Err(FrameError::TooLarge));
    }
}
