//! A read buffer that hands out slices of a file without copying each record.

use std::io::Read;

/// Reads a stream in large chunks; records are returned as slices of the chunk.
pub struct ChunkReader<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
}

const CHUNK: usize = 4 << 20;

impl<R: Read> ChunkReader<R> {
    pub fn new(inner: R) -> Self {
        ChunkReader {
            inner,
            buf: vec![0; CHUNK],
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
        }
    }

    /// Stream offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Bytes buffered and not yet consumed.
    pub fn available(&self) -> usize {
        self.end - self.pos
    }

    /// Makes at least `n` bytes available; returns fewer only at end of stream.
    pub fn fill(&mut self, n: usize) -> std::io::Result<usize> {
        if self.available() >= n || self.eof {
            return Ok(self.available());
        }
        if self.pos + n > self.buf.len() {
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
            if n > self.buf.len() {
                self.buf.resize(n.next_power_of_two(), 0);
            }
        }
        while self.available() < n {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => self.end += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.available())
    }

    /// The next `n` available bytes, without consuming them.
    pub fn peek(&self, n: usize) -> &[u8] {
        &self.buf[self.pos..self.pos + n]
    }

    /// Consumes `n` bytes; returns the buffer index where they start.
    pub fn consume(&mut self, n: usize) -> usize {
        let at = self.pos;
        self.pos += n;
        at
    }

    /// Bytes at buffer index `at` (from a previous `consume`).
    pub fn slice(&self, at: usize, n: usize) -> &[u8] {
        &self.buf[at..at + n]
    }
}
