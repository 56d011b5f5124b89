//! One open file read as lines: large buffered reads, memchr splitting, CRLF,
//! partial last lines held back, overlong lines truncated (memory stays
//! bounded by `max_line_bytes`), invalid UTF-8 replaced and flagged.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// Reads start this small: most followed files hold a few new lines at a
/// time, and thousands of them may be open at once.
const MIN_CHUNK: usize = 16 * 1024;
/// Reads double up to this while they keep filling the whole chunk (a
/// backlog), where large reads pay off.
const MAX_CHUNK: usize = 256 * 1024;

/// A complete line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// Byte offset just past its newline: where to resume after it.
    pub end: u64,
    /// Made straight from the read buffer: one allocation for a line longer
    /// than an inline string, none for a short one.
    pub text: crate::event::Str,
    /// The line was longer than `max_line_bytes`; `text` holds its start.
    pub truncated: bool,
    /// The line was not valid UTF-8; bad bytes were replaced with U+FFFD.
    pub invalid_utf8: bool,
    /// Several lines joined by multiline rules.
    pub multiline: bool,
}

/// Why `read_lines` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The batch limit was reached; more may be ready.
    Full,
    /// End of file (a partial line may be held).
    Eof,
}

pub struct LineReader {
    file: File,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    start: usize,
    max_line: usize,
    /// Inside an overlong line: its head, kept until its newline arrives.
    overlong: Option<(u64, Vec<u8>)>,
    /// Size of the next read.
    chunk: usize,
}

impl LineReader {
    /// Reads `file` from `offset` (which must start a line).
    pub fn new(mut file: File, offset: u64, max_line: usize) -> io::Result<Self> {
        file.seek(SeekFrom::Start(offset))?;
        Ok(LineReader {
            file,
            buf_offset: offset,
            buf: Vec::new(),
            start: 0,
            max_line: max_line.max(1),
            overlong: None,
            chunk: MIN_CHUNK,
        })
    }

    /// Offset just past the last complete line handed out: the position to
    /// resume from after a restart.
    pub fn position(&self) -> u64 {
        match &self.overlong {
            Some((offset, _)) => *offset,
            None => self.buf_offset + self.start as u64,
        }
    }

    /// Offset of the next byte to read from the file.
    pub fn read_position(&self) -> u64 {
        self.buf_offset + self.buf.len() as u64
    }

    /// Bytes of an unfinished last line held back.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len() - self.start + self.overlong.as_ref().map_or(0, |(_, h)| h.len())
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Appends complete lines to `out` until `max_lines` or `max_bytes` are
    /// reached or the file ends. Empty lines are skipped.
    pub fn read_lines(
        &mut self,
        out: &mut Vec<Line>,
        max_lines: usize,
        max_bytes: usize,
    ) -> io::Result<Stop> {
        let mut bytes = 0;
        loop {
            while let Some(pos) = memchr::memchr(b'\n', &self.buf[self.start..]) {
                let line_start = self.start;
                let newline = line_start + pos;
                self.start = newline + 1;
                let end = self.buf_offset + self.start as u64;
                if let Some((offset, mut head)) = self.overlong.take() {
                    let room = self.max_line.saturating_sub(head.len());
                    head.extend_from_slice(&self.buf[line_start..line_start + pos.min(room)]);
                    bytes += head.len();
                    out.push(make_line(offset, end, &head, true));
                } else {
                    let mut raw = &self.buf[line_start..newline];
                    if raw.last() == Some(&b'\r') {
                        raw = &raw[..raw.len() - 1];
                    }
                    if raw.is_empty() {
                        continue;
                    }
                    let truncated = raw.len() > self.max_line;
                    let raw = &raw[..raw.len().min(self.max_line)];
                    bytes += raw.len();
                    let offset = self.buf_offset + line_start as u64;
                    out.push(make_line(offset, end, raw, truncated));
                }
                if out.len() >= max_lines || bytes >= max_bytes {
                    return Ok(Stop::Full);
                }
            }
            self.spill_overlong();
            if self.fill()? == 0 {
                self.release_buffer();
                return Ok(Stop::Eof);
            }
        }
    }

    /// Hands out the held partial line as if it were complete (used when the
    /// file is finished: `exit_after_eof`, or the partial-line timeout).
    pub fn flush_partial(&mut self) -> Option<Line> {
        let end = self.read_position();
        let line = if let Some((offset, head)) = self.overlong.take() {
            Some(make_line(offset, end, &head, true))
        } else {
            let mut raw = &self.buf[self.start..];
            if raw.last() == Some(&b'\r') {
                raw = &raw[..raw.len() - 1];
            }
            (!raw.is_empty()).then(|| {
                let truncated = raw.len() > self.max_line;
                let offset = self.buf_offset + self.start as u64;
                make_line(offset, end, &raw[..raw.len().min(self.max_line)], truncated)
            })
        };
        self.buf_offset = end;
        self.buf.clear();
        self.start = 0;
        line
    }

    /// Moves the head of a partial line that outgrew `max_line` aside, so the
    /// buffer never holds more than one chunk plus one line.
    fn spill_overlong(&mut self) {
        let partial = self.buf.len() - self.start;
        match &mut self.overlong {
            Some((_, head)) => {
                let room = self.max_line.saturating_sub(head.len());
                head.extend_from_slice(&self.buf[self.start..self.start + partial.min(room)]);
                self.start = self.buf.len();
            }
            None if partial > self.max_line => {
                let offset = self.buf_offset + self.start as u64;
                let head = self.buf[self.start..self.start + self.max_line].to_vec();
                self.overlong = Some((offset, head));
                self.start = self.buf.len();
            }
            None => {}
        }
    }

    /// At the end of the file with nothing held back, the buffer is given
    /// back: an idle file costs its descriptor and this struct, not a chunk.
    fn release_buffer(&mut self) {
        if self.start == self.buf.len() && self.overlong.is_none() {
            self.buf_offset += self.start as u64;
            self.start = 0;
            self.buf = Vec::new();
            self.chunk = MIN_CHUNK;
        }
    }

    /// Bytes of memory held for reading (buffer capacity and overlong head).
    pub fn buffer_bytes(&self) -> usize {
        self.buf.capacity() + self.overlong.as_ref().map_or(0, |(_, h)| h.capacity())
    }

    fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.buf_offset += self.start as u64;
            self.start = 0;
        }
        let len = self.buf.len();
        let chunk = self.chunk;
        self.buf.resize(len + chunk, 0);
        let read = loop {
            match self.file.read(&mut self.buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(len + read);
        if read == chunk {
            self.chunk = (chunk * 2).min(MAX_CHUNK);
        }
        Ok(read)
    }
}

fn make_line(offset: u64, end: u64, raw: &[u8], truncated: bool) -> Line {
    let (text, invalid_utf8) = match std::str::from_utf8(raw) {
        Ok(text) => (crate::event::Str::new(text), false),
        Err(_) => (crate::event::Str::new(String::from_utf8_lossy(raw)), true),
    };
    Line {
        offset,
        end,
        text,
        truncated,
        invalid_utf8,
        multiline: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn reader_over(
        bytes: &[u8],
        offset: u64,
        max_line: usize,
    ) -> (tempfile::NamedTempFile, LineReader) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        let r = LineReader::new(File::open(f.path()).unwrap(), offset, max_line).unwrap();
        (f, r)
    }

    fn all_lines(r: &mut LineReader) -> Vec<Line> {
        let mut out = Vec::new();
        while r.read_lines(&mut out, usize::MAX, usize::MAX).unwrap() == Stop::Full {}
        out
    }

    #[test]
    fn splits_lf_and_crlf_and_skips_empty_lines() {
        let (_f, mut r) = reader_over(b"a\r\n\nbb\n\r\nccc\n", 0, 100);
        let lines = all_lines(&mut r);
        let texts: Vec<_> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a", "bb", "ccc"]);
        assert_eq!((lines[1].offset, lines[1].end), (4, 7));
        assert_eq!(r.position(), 13);
    }

    #[test]
    fn a_partial_last_line_is_held_until_flushed() {
        let (mut f, mut r) = reader_over(b"one\ntw", 0, 100);
        assert_eq!(all_lines(&mut r).len(), 1);
        assert_eq!(r.position(), 4);
        assert_eq!(r.pending_bytes(), 2);
        f.write_all(b"o\n").unwrap();
        f.flush().unwrap();
        let lines = all_lines(&mut r);
        assert_eq!(lines[0].text, "two");
        assert_eq!(lines[0].offset, 4);
        assert_eq!(r.position(), 8);

        f.write_all(b"tail").unwrap();
        f.flush().unwrap();
        assert!(all_lines(&mut r).is_empty());
        let last = r.flush_partial().unwrap();
        assert_eq!((last.text.as_str(), last.offset, last.end), ("tail", 8, 12));
        assert_eq!(r.position(), 12);
    }

    #[test]
    fn overlong_lines_are_truncated_with_bounded_memory() {
        let mut data = vec![b'x'; 3 * MAX_CHUNK];
        data.push(b'\n');
        data.extend_from_slice(b"next\n");
        let (_f, mut r) = reader_over(&data, 0, 10);
        let lines = all_lines(&mut r);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text, "xxxxxxxxxx");
        assert!(lines[0].truncated);
        assert_eq!(lines[0].end, 3 * MAX_CHUNK as u64 + 1);
        assert_eq!(lines[1].text, "next");
        assert!(!lines[1].truncated);
    }

    #[test]
    fn reads_grow_through_a_backlog_and_the_buffer_goes_at_the_end() {
        let line = format!("{}\n", "y".repeat(99));
        let data = line.repeat(10_000); // ~1 MB
        let (mut f, mut r) = reader_over(data.as_bytes(), 0, 1000);
        let mut out = Vec::new();
        assert_eq!(r.read_lines(&mut out, 2, usize::MAX).unwrap(), Stop::Full);
        assert!(r.buffer_bytes() <= 2 * MIN_CHUNK, "{}", r.buffer_bytes());
        let lines = all_lines(&mut r);
        assert_eq!(lines.len() + 2, 10_000);
        assert_eq!(r.buffer_bytes(), 0, "an idle file keeps no buffer");
        assert_eq!(r.position(), data.len() as u64);
        // A partial line keeps what it needs, and reading goes on after it.
        f.write_all(b"par").unwrap();
        f.flush().unwrap();
        assert!(all_lines(&mut r).is_empty());
        assert!(r.buffer_bytes() > 0);
        f.write_all(b"tial\n").unwrap();
        f.flush().unwrap();
        assert_eq!(all_lines(&mut r)[0].text, "partial");
        assert_eq!(r.buffer_bytes(), 0);
    }

    #[test]
    fn invalid_utf8_is_replaced_and_flagged() {
        let (_f, mut r) = reader_over(b"ok\n\xff\xfebad\n", 0, 100);
        let lines = all_lines(&mut r);
        assert!(!lines[0].invalid_utf8);
        assert!(lines[1].invalid_utf8);
        assert_eq!(lines[1].text, "\u{fffd}\u{fffd}bad");
    }

    #[test]
    fn batches_stop_at_the_line_limit_and_resume() {
        let (_f, mut r) = reader_over(b"1\n2\n3\n", 0, 100);
        let mut out = Vec::new();
        assert_eq!(r.read_lines(&mut out, 2, usize::MAX).unwrap(), Stop::Full);
        assert_eq!(out.len(), 2);
        assert_eq!(r.position(), 4);
        let mut rest = Vec::new();
        assert_eq!(r.read_lines(&mut rest, 2, usize::MAX).unwrap(), Stop::Eof);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].text, "3");
    }

    #[test]
    fn reading_starts_at_the_given_offset() {
        let (_f, mut r) = reader_over(b"skip\nkeep\n", 5, 100);
        let lines = all_lines(&mut r);
        assert_eq!(lines.len(), 1);
        assert_eq!((lines[0].text.as_str(), lines[0].offset), ("keep", 5));
    }
}
