//! Cuts an input into chunks of whole records, to be parsed in parallel.
//!
//! A CSV record may span lines (a quoted field holding a line break), so
//! CSV is cut only at a line break outside quotes, found by following the
//! quoting as the CSV parser does (RFC 4180: a quote opens a quoted field
//! only at the start of a field; two quotes inside one stand for one).
//! JSON Lines are cut at any line break.

use std::io::Read;

use super::LoadError;

/// Bytes read from the input at a time (at least).
const READ: usize = 8 << 10;

/// Buffers kept for reuse (two batches of chunks on a large machine).
const MAX_SPARE: usize = 256;

/// Whole records of an input, and where they start.
pub(super) struct Chunk {
    /// The records' bytes, up to and including a line break (or the end of
    /// the input).
    pub bytes: Vec<u8>,
    /// Line breaks before the chunk: its first line is `line0 + 1`.
    pub line0: u64,
    /// Bytes of the input up to the end of the chunk.
    pub end: u64,
}

/// Where the CSV scan is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// At the start of a field (of a record).
    Start,
    /// Inside an unquoted field (a quote there is an ordinary byte).
    Field,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field: a second quote stands for
    /// one, anything else ends the quoting.
    QuoteInQuoted,
}

/// Reads an input and hands it out in chunks of whole records.
pub(super) struct Chunker<R> {
    reader: R,
    file: String,
    /// The CSV delimiter, or `None` for JSON Lines.
    csv: Option<u8>,
    buf: Vec<u8>,
    /// Bytes of `buf` already scanned for a cut, and the state there.
    scanned: usize,
    state: Scan,
    eof: bool,
    lines: u64,
    offset: u64,
    /// Buffers of parsed chunks, handed back by [`Chunker::recycle`]: a
    /// fresh buffer for every chunk would be a fresh mapping whose pages
    /// the kernel zeroes on first touch.
    spare: Vec<Vec<u8>>,
}

impl<R: Read> Chunker<R> {
    /// A chunker for CSV with this delimiter (`Some`) or for JSON Lines.
    pub fn new(reader: R, file: &str, csv: Option<u8>) -> Chunker<R> {
        Chunker {
            reader,
            file: file.to_string(),
            csv,
            buf: Vec::new(),
            scanned: 0,
            state: Scan::Start,
            eof: false,
            lines: 0,
            offset: 0,
            spare: Vec::new(),
        }
    }

    /// Takes back the buffers of chunks that are parsed, for the chunks
    /// still to come.
    pub fn recycle(&mut self, chunks: Vec<Chunk>) {
        for c in chunks {
            if self.spare.len() >= MAX_SPARE {
                break;
            }
            let mut b = c.bytes;
            b.clear();
            self.spare.push(b);
        }
    }

    /// The next chunk: the records up to the first record boundary at
    /// least `target` bytes in, or what is left at the end of the input.
    pub fn next(&mut self, target: usize) -> Result<Option<Chunk>, LoadError> {
        let target = target.max(1);
        loop {
            let cut = match self.csv {
                Some(d) => self.csv_cut(d, target),
                None => self.line_cut(target),
            };
            if let Some(cut) = cut {
                return Ok(Some(self.take(cut)));
            }
            if self.eof {
                let n = self.buf.len();
                return Ok((n > 0).then(|| self.take(n)));
            }
            self.fill(target)?;
        }
    }

    /// Up to `n` next chunks.
    pub fn batch(&mut self, n: usize, target: usize) -> Result<Vec<Chunk>, LoadError> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.next(target)? {
                Some(c) => out.push(c),
                None => break,
            }
        }
        Ok(out)
    }

    /// Reads up to `target` bytes, then a little at a time: what follows
    /// the cut (copied into the next chunk) stays small.
    fn fill(&mut self, target: usize) -> Result<(), LoadError> {
        let len = self.buf.len();
        let want = target.saturating_sub(len).clamp(READ, 1 << 20);
        // Room for the reads past `target` too, so the buffer is not moved.
        self.buf.reserve(want + (64 << 10));
        match (&mut self.reader)
            .take(want as u64)
            .read_to_end(&mut self.buf)
        {
            Ok(n) => {
                self.eof = n < want;
                Ok(())
            }
            Err(error) => {
                self.buf.truncate(len);
                Err(LoadError::Io {
                    file: self.file.clone(),
                    error,
                })
            }
        }
    }

    fn take(&mut self, cut: usize) -> Chunk {
        let mut rest = self.spare.pop().unwrap_or_default();
        rest.extend_from_slice(&self.buf[cut..]);
        let mut bytes = std::mem::replace(&mut self.buf, rest);
        bytes.truncate(cut);
        let line0 = self.lines;
        self.lines += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        self.offset += cut as u64;
        self.scanned = 0;
        self.state = Scan::Start;
        Chunk {
            bytes,
            line0,
            end: self.offset,
        }
    }

    /// The first line end at least `target` bytes in.
    fn line_cut(&mut self, target: usize) -> Option<usize> {
        let from = self.scanned.max(target - 1);
        if from >= self.buf.len() {
            return None;
        }
        match self.buf[from..].iter().position(|&b| b == b'\n') {
            Some(k) => Some(from + k + 1),
            None => {
                self.scanned = self.buf.len();
                None
            }
        }
    }

    /// The first line end outside quotes at least `target` bytes in.
    fn csv_cut(&mut self, delim: u8, target: usize) -> Option<usize> {
        let buf = &self.buf;
        let mut i = self.scanned;
        while i < buf.len() {
            match self.state {
                Scan::Quoted => match buf[i..].iter().position(|&b| b == b'"') {
                    Some(k) => {
                        i += k + 1;
                        self.state = Scan::QuoteInQuoted;
                    }
                    None => i = buf.len(),
                },
                Scan::QuoteInQuoted => {
                    if buf[i] == b'"' {
                        self.state = Scan::Quoted;
                        i += 1;
                    } else {
                        // The quoting is over; the byte is read as outside it.
                        self.state = Scan::Field;
                    }
                }
                Scan::Start | Scan::Field => {
                    let Some(k) = buf[i..].iter().position(|&b| b == b'"' || b == b'\n') else {
                        let last = buf[buf.len() - 1];
                        self.state = if last == delim || last == b'\r' {
                            Scan::Start
                        } else {
                            Scan::Field
                        };
                        i = buf.len();
                        continue;
                    };
                    let j = i + k;
                    if buf[j] == b'\n' {
                        i = j + 1;
                        self.state = Scan::Start;
                        if i >= target {
                            return Some(i);
                        }
                        continue;
                    }
                    let at_start = if k == 0 {
                        self.state == Scan::Start
                    } else {
                        buf[j - 1] == delim || buf[j - 1] == b'\r'
                    };
                    self.state = if at_start { Scan::Quoted } else { Scan::Field };
                    i = j + 1;
                }
            }
        }
        self.scanned = i;
        None
    }
}
