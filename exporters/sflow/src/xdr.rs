//! Minimal XDR (RFC 4506) cursor helpers: big-endian 32/64-bit words, fixed opaque
//! data and variable-length opaque data padded to a multiple of four bytes.
//!
//! Every access is bounds checked and reported as an error, so emit/parse code built
//! on these never panics, even if a `buffer_len()` were to disagree with `emit()`.

use crate::{pad4, Error, Result};

/// Writes XDR items into a byte buffer.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Starts writing at the beginning of `buf`, after checking that `needed` bytes fit.
    pub(crate) fn new(buf: &'a mut [u8], needed: usize) -> Result<Self> {
        if buf.len() < needed {
            return Err(Error::BufferTooSmall {
                needed,
                available: buf.len(),
            });
        }
        Ok(Writer { buf, pos: 0 })
    }

    /// Bytes written so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> Result<&mut [u8]> {
        let available = self.buf.len();
        let end =
            self.pos
                .checked_add(n)
                .filter(|&e| e <= available)
                .ok_or(Error::BufferTooSmall {
                    needed: self.pos.saturating_add(n),
                    available,
                })?;
        let start = self.pos;
        self.pos = end;
        Ok(&mut self.buf[start..end])
    }

    pub(crate) fn u32(&mut self, v: u32) -> Result<()> {
        self.take(4)?.copy_from_slice(&v.to_be_bytes());
        Ok(())
    }

    pub(crate) fn u64(&mut self, v: u64) -> Result<()> {
        self.take(8)?.copy_from_slice(&v.to_be_bytes());
        Ok(())
    }

    /// Fixed-length opaque data (no length word); padded with zeros to 4 bytes.
    pub(crate) fn fixed(&mut self, data: &[u8]) -> Result<()> {
        self.take(data.len())?.copy_from_slice(data);
        let pad = pad4(data.len()) - data.len();
        self.take(pad)?.fill(0);
        Ok(())
    }

    /// Variable-length opaque data / string: length word, bytes, zero padding.
    pub(crate) fn opaque(&mut self, data: &[u8]) -> Result<()> {
        let len = u32::try_from(data.len()).map_err(|_| Error::Length("opaque"))?;
        self.u32(len)?;
        self.fixed(data)
    }

    /// Gives a sub-writer for the next `n` bytes (which the caller must fill completely).
    pub(crate) fn sub(&mut self, n: usize) -> Result<Writer<'_>> {
        let buf = self.take(n)?;
        Ok(Writer { buf, pos: 0 })
    }
}

/// Reads XDR items from a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(Error::Truncated)?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        let hi = self.u32()?;
        let lo = self.u32()?;
        Ok((u64::from(hi) << 32) | u64::from(lo))
    }

    /// Fixed-length opaque data of `n` bytes plus its padding (padding content ignored).
    pub(crate) fn fixed(&mut self, n: usize) -> Result<&'a [u8]> {
        let data = self.take(n)?;
        self.take(pad4(n) - n)?;
        Ok(data)
    }

    /// Variable-length opaque data: length word, bytes, padding.
    pub(crate) fn opaque(&mut self) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        self.fixed(len)
    }
}
