//! A read buffer that hands out slices of a file without copying each record.

use std::fs::File;
use std::io::Read;

/// Reads a stream in large chunks, or maps a regular file whole; records are returned as
/// slices of the chunk (or of the mapping).
pub struct ChunkReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// The whole file, when it is mapped: then `buf` is unused and `end` is its length.
    map: Option<memmap2::Mmap>,
    /// Mapped bytes before this offset have been released (see [`ChunkReader::consume`]).
    released: usize,
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
            map: None,
            released: 0,
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
        }
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        match &self.map {
            Some(m) => m,
            None => &self.buf,
        }
    }

    /// Stream offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Bytes buffered and not yet consumed.
    #[inline]
    pub fn available(&self) -> usize {
        self.end - self.pos
    }

    /// Makes at least `n` bytes available; returns fewer only at end of stream.
    pub fn fill(&mut self, n: usize) -> std::io::Result<usize> {
        if self.available() >= n || self.eof || self.map.is_some() {
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
    #[inline]
    pub fn peek(&self, n: usize) -> &[u8] {
        &self.bytes()[self.pos..self.pos + n]
    }

    /// Consumes `n` bytes; returns the buffer index where they start.
    #[inline]
    pub fn consume(&mut self, n: usize) -> usize {
        let at = self.pos;
        self.pos += n;
        if self.map.is_some() && self.pos - self.released >= RELEASE_EVERY + RELEASE_MARGIN {
            self.release();
        }
        at
    }

    /// Drops the mapped pages well behind the read position from the process (they stay
    /// in the page cache): the resident size of a replay stays at about
    /// `RELEASE_EVERY + RELEASE_MARGIN` of file however long the file.
    #[inline(never)]
    fn release(&mut self) {
        let Some(map) = &self.map else { return };
        let upto = (self.pos - RELEASE_MARGIN) & !(PAGE - 1);
        if upto > self.released {
            let _ = drop_pages(map, self.released, upto - self.released);
            self.released = upto;
        }
    }

    /// Starts loading the bytes a little past the read position of a mapped file, so the next
    /// records are in cache when they are read (the hardware prefetchers stop at page
    /// boundaries). A no-op for buffered reads.
    #[inline]
    pub fn prefetch_ahead(&self) {
        if let Some(m) = &self.map {
            crate::hint::prefetch(m.as_ptr().wrapping_add(self.pos + PREFETCH_AHEAD));
        }
    }

    /// Bytes at buffer index `at` (from a previous `consume`).
    #[inline]
    pub fn slice(&self, at: usize, n: usize) -> &[u8] {
        &self.bytes()[at..at + n]
    }
}

/// How far ahead of the read position [`ChunkReader::prefetch_ahead`] reaches.
const PREFETCH_AHEAD: usize = 2048;

/// Mapped bytes are released in steps of this much…
const RELEASE_EVERY: usize = 64 << 20;
/// …keeping this much behind the read position mapped: more than the largest record
/// (`file::MAX_RECORD`), so no record handed out loses its pages.
const RELEASE_MARGIN: usize = 32 << 20;
/// Page size assumed for the release offsets (Linux x86_64, aarch64 with 4 KiB pages; with
/// larger pages madvise rounds inward and releases less).
const PAGE: usize = 4096;

/// Files larger than this are mapped rather than read (smaller ones are not worth a mapping).
const MAP_AT_LEAST: u64 = 1 << 20;

impl ChunkReader<File> {
    /// A reader over `file` that maps it when it is a regular file of at least 1 MiB, which
    /// spares the kernel's copy of every byte into the read buffer (a third of the CPU time
    /// of a replay); reads in chunks otherwise, or when mapping fails.
    pub fn for_file(file: File) -> Self {
        let mut r = ChunkReader::new(file);
        let regular = r
            .inner
            .metadata()
            .is_ok_and(|m| m.is_file() && m.len() >= MAP_AT_LEAST);
        if let Some(map) = regular.then(|| map_file(&r.inner)).flatten() {
            // Read ahead aggressively; the mapping is read front to back once.
            let _ = map.advise(memmap2::Advice::Sequential);
            r.end = map.len();
            r.eof = true;
            r.buf = Vec::new();
            r.map = Some(map);
        }
        r
    }
}

#[allow(unsafe_code)]
fn drop_pages(map: &memmap2::Mmap, offset: usize, len: usize) -> std::io::Result<()> {
    // SAFETY: MADV_DONTNEED on a read-only, file-backed mapping only removes the pages from
    // this process's page tables; touching them again reads the same file contents back, so
    // no reference into the mapping can observe a change. The range lies before the read
    // position minus a margin larger than any record, so no slice handed out refers to it.
    unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len) }
}

#[allow(unsafe_code)]
fn map_file(file: &File) -> Option<memmap2::Mmap> {
    // SAFETY: the mapping is read-only and private to this reader. The one hazard of a file
    // mapping is another process truncating the file while it is mapped, after which reading
    // the lost pages raises SIGBUS; capture files being replayed are not truncated in place
    // (README, "Command line", says so). Nothing here writes through the mapping.
    unsafe { memmap2::Mmap::map(file) }.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A mapped file larger than the release window reads back intact, record by record,
    /// while the pages behind are released; a pipe-like reader gives the same bytes.
    #[test]
    fn mapped_reads_survive_releases_and_match_chunked_reads() {
        let words = (RELEASE_EVERY + RELEASE_MARGIN + (8 << 20)) / 4;
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..words as u32).flat_map(|w| w.to_le_bytes()).collect();
        f.write_all(&data).unwrap();
        let mut mapped = ChunkReader::for_file(f.try_clone().unwrap());
        assert!(mapped.map.is_some());
        let mut chunked = ChunkReader::new(std::io::Cursor::new(data));
        let step = 65_536 + 12;
        let mut at_word = 0usize;
        loop {
            let n = mapped.fill(step).unwrap().min(step);
            assert_eq!(chunked.fill(step).unwrap().min(step), n);
            if n == 0 {
                break;
            }
            let (a, b) = (mapped.consume(n), chunked.consume(n));
            assert_eq!(mapped.slice(a, n), chunked.slice(b, n));
            let first = u32::from_le_bytes(mapped.slice(a, 4).try_into().unwrap());
            assert_eq!(first as usize, at_word);
            at_word += n / 4;
        }
        assert_eq!(at_word, words);
        assert!(mapped.released >= RELEASE_EVERY, "{}", mapped.released);
    }
}
