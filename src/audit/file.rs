//! Append-only file storage with crash recovery.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::sink::{EntryIter, check_next_seq};
use super::{AuditEntry, AuditError, AuditSink};

/// Record magic: identifies a record and the format version.
const MAGIC: [u8; 4] = *b"PSA1";
/// Seed of the record checksum, so that no run of zero bytes is a valid
/// record.
const CRC_SEED: u32 = 0x5053_4731;
/// Bytes before the payload: magic, length, checksum.
const HEADER_LEN: usize = 12;
/// Reason prefix for a record whose checksum is valid but whose entry cannot
/// be decoded (for example one written by a newer version with a new
/// [`Operation`](super::Operation)). Such a record is not a torn write, so it
/// is never cut off.
const UNDECODABLE: &str = "record checksum is valid but its entry cannot be decoded";
/// Largest payload accepted, in bytes.
pub(crate) const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// When a [`FileSink`] forces appended data to stable storage. See the
/// [module docs](super#durability-and-the-fsync-policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// `fdatasync` after every append: an entry is durable once `append`
    /// returns `Ok`.
    #[default]
    EveryAppend,
    /// Never sync implicitly; the host calls [`AuditSink::sync`]. Entries
    /// appended since the last sync may be lost in a crash.
    Never,
}

/// Bytes dropped from the end of a file because they did not form a
/// complete, valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discarded {
    /// Byte offset where the dropped bytes started (the end of the last
    /// complete record).
    pub offset: u64,
    /// How many bytes were dropped.
    pub bytes: u64,
    /// Why the first dropped record was not valid.
    pub reason: String,
    /// Where the dropped bytes were saved, unchanged, before the log was
    /// cut (`<log>.damaged-<n>`); `None` when the file was only read
    /// ([`FileSink::scan`]). Nothing is ever deleted from a log.
    pub saved_to: Option<PathBuf>,
}

/// What [`FileSink::open`] found and did. A `discarded` tail must be
/// looked at: its bytes were moved into a side file.
#[must_use = "a damaged tail moved out of the log must be reported"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Number of complete records kept.
    pub entries: u64,
    /// Length of the file after recovery.
    pub valid_len: u64,
    /// A torn tail that was cut off, if any.
    pub discarded: Option<Discarded>,
}

/// The result of reading a log file without changing it
/// ([`FileSink::scan`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedFile {
    /// The entries of all complete records, in file order.
    pub entries: Vec<AuditEntry>,
    /// Byte length of the complete records.
    pub valid_len: u64,
    /// A torn tail after the complete records, if any.
    pub discarded: Option<Discarded>,
}

/// An append-only audit log file.
///
/// # Format
///
/// The file is a sequence of records, each:
///
/// | bytes | content |
/// | --- | --- |
/// | 4 | magic `PSA1` |
/// | 4 | payload length `n`, little-endian u32 (at most 16 MiB) |
/// | 4 | CRC-32 (seeded with `0x50534731`) over magic, length and payload, little-endian |
/// | n | the entry's canonical bytes ([`AuditEntry::canonical_bytes`]) |
///
/// Because of the magic and the seeded checksum, zero-filled or random bytes
/// are never taken for a record.
///
/// # Recovery
///
/// [`FileSink::open`] reads every record. At the first invalid one it looks
/// for any valid record further on: if there is none, the invalid bytes are
/// a torn tail from an interrupted append, and they are cut off and reported
/// in [`RecoveryReport::discarded`]; if there is one, the file is corrupt
/// and opening fails with [`AuditError::Corrupt`] without changing it. A
/// record with a valid checksum whose entry cannot be decoded is never a
/// torn write: it also gives [`AuditError::Corrupt`], wherever it is.
///
/// ```
/// use privseg::audit::{AuditLog, FileSink, Operation, PendingEntry, SyncPolicy};
///
/// let path = std::env::temp_dir().join(format!("privseg-doc-{}.audit", std::process::id()));
/// # let _ = std::fs::remove_file(&path);
/// let (sink, report) = FileSink::open(&path, SyncPolicy::EveryAppend)?;
/// assert!(report.discarded.is_none());
/// let mut log = AuditLog::open(sink, &[42u8; 32])?;
/// log.append(PendingEntry::new(1_767_225_600, "svc", Operation::PolicyLoaded))?;
/// drop(log);
///
/// let (sink, report) = FileSink::open(&path, SyncPolicy::EveryAppend)?;
/// assert_eq!(report.entries, 1);
/// # drop(sink);
/// # std::fs::remove_file(&path).unwrap();
/// # std::fs::remove_file(path.with_extension("audit.head")).unwrap();
/// # Ok::<(), privseg::audit::AuditError>(())
/// ```
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: File,
    policy: SyncPolicy,
    end: u64,
    len: u64,
    poisoned: bool,
    dir_sync_pending: bool,
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> AuditError {
    move |error| AuditError::Io {
        context: context.into(),
        error,
    }
}

fn checksum(header: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(CRC_SEED);
    h.update(header);
    h.update(payload);
    h.finalize()
}

/// Encodes one record.
pub(crate) fn encode_record(payload: &[u8]) -> Result<Vec<u8>, AuditError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(AuditError::InvalidArgument(format!(
            "entry is {} bytes, more than the {MAX_PAYLOAD} bytes a record can hold",
            payload.len()
        )));
    }
    let mut head = [0u8; 8];
    head[..4].copy_from_slice(&MAGIC);
    head[4..].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    let crc = checksum(&head, payload);
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Decodes the record at the start of `buf`, returning its length and entry.
#[cfg(test)]
fn decode_record_at(buf: &[u8]) -> Result<(usize, AuditEntry), String> {
    let header = buf.get(..HEADER_LEN).ok_or("incomplete record header")?;
    check_header(header)?;
    let n = payload_len(header);
    let payload = buf
        .get(HEADER_LEN..HEADER_LEN + n)
        .ok_or("incomplete record payload")?;
    let entry = check_payload(header, payload)?;
    Ok((HEADER_LEN + n, entry))
}

fn payload_len(header: &[u8]) -> usize {
    u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize
}

fn check_header(header: &[u8]) -> Result<(), String> {
    if header[..4] != MAGIC {
        return Err("bad record magic".to_owned());
    }
    let n = payload_len(header);
    if n > MAX_PAYLOAD {
        return Err(format!("record length {n} exceeds the maximum"));
    }
    Ok(())
}

fn check_payload(header: &[u8], payload: &[u8]) -> Result<AuditEntry, String> {
    let stored = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if checksum(&header[..8], payload) != stored {
        return Err("record checksum mismatch".to_owned());
    }
    AuditEntry::from_canonical_bytes(payload).map_err(|e| format!("{UNDECODABLE}: {e}"))
}

/// Reads up to `buf.len()` bytes; returns how many were read (short only at
/// end of file).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads one record from a stream. `Ok(None)` at a clean end of file;
/// `Ok(Some(Err(reason)))` for an invalid or incomplete record.
/// `remaining` is the number of bytes left in the stream: a length field
/// is checked against it before anything is allocated.
fn read_record(
    r: &mut impl Read,
    remaining: u64,
) -> std::io::Result<Option<Result<(u64, AuditEntry), String>>> {
    let mut header = [0u8; HEADER_LEN];
    let got = read_full(r, &mut header)?;
    if got == 0 {
        return Ok(None);
    }
    if got < HEADER_LEN {
        return Ok(Some(Err("incomplete record header".to_owned())));
    }
    if let Err(e) = check_header(&header) {
        return Ok(Some(Err(e)));
    }
    let n = payload_len(&header);
    if (HEADER_LEN + n) as u64 > remaining {
        return Ok(Some(Err("incomplete record payload".to_owned())));
    }
    let mut payload = vec![0u8; n];
    if read_full(r, &mut payload)? < n {
        return Ok(Some(Err("incomplete record payload".to_owned())));
    }
    Ok(Some(
        check_payload(&header, &payload).map(|e| ((HEADER_LEN + n) as u64, e)),
    ))
}

/// Whether a record with a valid checksum starts in `rest` at an offset
/// other than 0 (its entry need not decode: a record with a valid checksum
/// is never a torn write).
///
/// Linear in `rest.len()` plus O(log n) per candidate: the CRC register of
/// every prefix needed is computed in one pass, and the checksum of a
/// candidate's payload `rest[s..e]` is derived from the registers at `s`
/// and `e` (CRC-32 is linear; see [`crc_range`]), so bytes shared by many
/// overlapping candidates are hashed once, not once per candidate.
fn valid_record_after(rest: &[u8]) -> bool {
    // Candidates: a magic, a complete header with an acceptable length, and
    // a payload that fits in `rest`.
    let mut candidates = Vec::new();
    let mut p = 1;
    while p + HEADER_LEN <= rest.len() {
        if rest[p..p + 4] == MAGIC {
            let header = &rest[p..p + HEADER_LEN];
            let n = payload_len(header);
            if n <= MAX_PAYLOAD && p + HEADER_LEN + n <= rest.len() {
                candidates.push((p, n));
            }
        }
        p += 1;
    }
    if candidates.is_empty() {
        return false;
    }
    let mut positions: Vec<usize> = candidates
        .iter()
        .flat_map(|&(p, n)| [p + HEADER_LEN, p + HEADER_LEN + n])
        .collect();
    positions.sort_unstable();
    positions.dedup();
    let registers = crc_range::prefix_registers(rest, &positions);
    let at = |pos: usize| registers[positions.binary_search(&pos).unwrap_or(0)];
    let table = crc_range::X2nTable::new();
    candidates.iter().any(|&(p, n)| {
        let header = &rest[p..p + HEADER_LEN];
        let stored = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        let r1 = crc_range::raw_update(!CRC_SEED, &header[..8]);
        let (s, e) = (p + HEADER_LEN, p + HEADER_LEN + n);
        let rf = table.shift(r1 ^ at(s), n as u64) ^ at(e);
        !rf == stored
    })
}

/// CRC-32 (IEEE, reflected polynomial `0xEDB88320`) register arithmetic,
/// after zlib's `crc32_combine`: the raw register (before the final
/// inversion) is linear, so `update(r, B) = shift_|B|(r) ^ update(0, B)`,
/// where `shift_n` multiplies by `x^(8n)` modulo the polynomial.
pub(crate) mod crc_range {
    const POLY: u32 = 0xedb8_8320;

    #[cfg(test)]
    thread_local! {
        /// Bytes fed to the CRC by this thread (tests assert on it).
        pub(crate) static HASHED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    /// The raw register after feeding `buf` to register `r`.
    pub(crate) fn raw_update(r: u32, buf: &[u8]) -> u32 {
        #[cfg(test)]
        HASHED.with(|h| h.set(h.get() + buf.len() as u64));
        let mut h = crc32fast::Hasher::new_with_initial(!r);
        h.update(buf);
        !h.finalize()
    }

    /// `a * b` modulo the polynomial (bit 31 is `x^0`).
    fn multmodp(a: u32, mut b: u32) -> u32 {
        let mut p = 0u32;
        for i in 0..32 {
            if a & (1u32 << (31 - i)) != 0 {
                p ^= b;
            }
            b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
        }
        p
    }

    /// `x^(2^k)` modulo the polynomial, for k in 0..32.
    pub(crate) struct X2nTable([u32; 32]);

    impl X2nTable {
        pub(crate) fn new() -> X2nTable {
            let mut t = [0u32; 32];
            let mut p = 1u32 << 30; // x^1
            for slot in &mut t {
                *slot = p;
                p = multmodp(p, p);
            }
            X2nTable(t)
        }

        /// The register `r` followed by `n` zero bytes' worth of shifting.
        pub(crate) fn shift(&self, r: u32, n: u64) -> u32 {
            let mut p = 1u32 << 31; // x^0
            let (mut n, mut k) = (n, 3usize); // x^(8n) = x^(n * 2^3)
            while n != 0 {
                if n & 1 != 0 {
                    p = multmodp(self.0[k & 31], p);
                }
                n >>= 1;
                k += 1;
            }
            multmodp(p, r)
        }
    }

    /// The raw register `update(0, data[..pos])` at each of the sorted,
    /// distinct `positions`, in one pass over `data`.
    pub(crate) fn prefix_registers(data: &[u8], positions: &[usize]) -> Vec<u32> {
        let mut out = Vec::with_capacity(positions.len());
        let (mut r, mut done) = (0u32, 0usize);
        for &pos in positions {
            r = raw_update(r, &data[done..pos]);
            done = pos;
            out.push(r);
        }
        out
    }
}

/// Scans a whole file; `visit` sees each valid entry in order.
fn scan(
    file: &mut File,
    mut visit: impl FnMut(AuditEntry),
) -> Result<(u64, u64, Option<Discarded>), AuditError> {
    let file_len = file
        .metadata()
        .map_err(io_err("reading file metadata"))?
        .len();
    file.seek(SeekFrom::Start(0))
        .map_err(io_err("seeking to start"))?;
    let mut reader = BufReader::with_capacity(64 * 1024, &mut *file);
    let mut offset = 0u64;
    let mut count = 0u64;
    let bad = loop {
        let remaining = file_len.saturating_sub(offset);
        match read_record(&mut reader, remaining).map_err(io_err("reading records"))? {
            None => return Ok((count, offset, None)),
            Some(Ok((size, entry))) => {
                visit(entry);
                offset += size;
                count += 1;
            }
            Some(Err(reason)) => break reason,
        }
    };
    drop(reader);
    if bad.starts_with(UNDECODABLE) {
        return Err(AuditError::Corrupt {
            index: count,
            offset,
            reason: bad,
        });
    }
    // Is the bad record a torn tail, or followed by intact records?
    file.seek(SeekFrom::Start(offset))
        .map_err(io_err("seeking to damaged record"))?;
    let mut rest = Vec::new();
    file.read_to_end(&mut rest)
        .map_err(io_err("reading after damaged record"))?;
    if valid_record_after(&rest) {
        return Err(AuditError::Corrupt {
            index: count,
            offset,
            reason: bad,
        });
    }
    // Damage from the very first byte: the log would be left empty. Refuse
    // instead, leaving the file as it is (a crash in the first append of a
    // new log, or a file that is no log at all, needs a person to look at
    // it); only zeros, which hold nothing, are treated as a torn tail.
    if count == 0 && rest.iter().any(|&b| b != 0) {
        return Err(AuditError::Corrupt {
            index: 0,
            offset: 0,
            reason: format!(
                "no complete record: the file is damaged from its first byte ({bad}); \
                 it was left unchanged"
            ),
        });
    }
    Ok((
        count,
        offset,
        Some(Discarded {
            offset,
            bytes: file_len - offset,
            reason: bad,
            saved_to: None,
        }),
    ))
}

/// Copies `bytes` into a new file `<log>.damaged-<n>` (the first `n` from 1
/// not taken) and makes it durable.
fn save_damaged(path: &Path, bytes: &[u8]) -> Result<PathBuf, AuditError> {
    let mut n = 1u32;
    loop {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".damaged-{n}"));
        let side = PathBuf::from(name);
        match OpenOptions::new().write(true).create_new(true).open(&side) {
            Ok(mut f) => {
                f.write_all(bytes)
                    .and_then(|()| f.sync_all())
                    .map_err(io_err(format!("writing {}", side.display())))?;
                sync_parent(&side)?;
                return Ok(side);
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists && n < u32::MAX => n += 1,
            Err(e) => return Err(io_err(format!("creating {}", side.display()))(e)),
        }
    }
}

/// Makes a directory entry durable (where directories can be opened).
fn sync_parent(path: &Path) -> Result<(), AuditError> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(format!("syncing directory {}", dir.display())))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The head record's file: `<log>.head`.
fn head_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".head");
    PathBuf::from(name)
}

/// The head record of the log at `path` (from `<path>.head`), if any.
pub(crate) fn read_head_file(log: &Path) -> Result<Option<Vec<u8>>, AuditError> {
    let path = head_path(log);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(format!("opening {}", path.display()))(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_HEAD + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(format!("reading {}", path.display())))?;
    if bytes.len() as u64 > MAX_HEAD {
        return Err(AuditError::Tampered {
            index: 0,
            reason: format!(
                "head file {} is too large to be a head record",
                path.display()
            ),
        });
    }
    Ok(Some(bytes))
}

/// Largest head file read, in bytes (a head record is about 200).
const MAX_HEAD: u64 = 4096;

/// Scans the file at `path` read-only; `visit` sees each valid entry in
/// order, including those before a corrupt record.
pub(crate) fn scan_path(
    path: &Path,
    visit: impl FnMut(AuditEntry),
) -> Result<(u64, u64, Option<Discarded>), AuditError> {
    let mut file = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
    scan(&mut file, visit)
}

impl FileSink {
    /// Opens (creating if needed) the log file at `path`, recovering from
    /// an interrupted append as described in the type docs: a torn tail is
    /// first copied to `<path>.damaged-<n>`, then cut off, and reported in
    /// [`RecoveryReport::discarded`]. The head record lives in
    /// `<path>.head`.
    ///
    /// Errors: [`AuditError::Io`] if the file cannot be opened, read, saved
    /// or cut; [`AuditError::Corrupt`] if a damaged record is followed by
    /// valid ones, or if the damage starts at the first byte (so that the
    /// log would be left empty), unless the damage is only zeros (the file
    /// is then left as it was).
    pub fn open(
        path: impl AsRef<Path>,
        policy: SyncPolicy,
    ) -> Result<(FileSink, RecoveryReport), AuditError> {
        let path = path.as_ref().to_path_buf();
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err(format!("opening {}", path.display())))?;
        let (len, end, mut discarded) = scan(&mut file, |_| {})?;
        if let Some(d) = &mut discarded {
            let mut tail = Vec::new();
            file.seek(SeekFrom::Start(end))
                .and_then(|_| file.read_to_end(&mut tail))
                .map_err(io_err("reading a torn record"))?;
            d.saved_to = Some(save_damaged(&path, &tail)?);
            file.set_len(end)
                .map_err(io_err("cutting off a torn record"))?;
            file.sync_all()
                .map_err(io_err("syncing after cutting a torn record"))?;
        }
        let mut sink = FileSink {
            path,
            file,
            policy,
            end,
            len,
            poisoned: false,
            dir_sync_pending: !existed,
        };
        if policy == SyncPolicy::EveryAppend {
            sink.sync_dir()?;
        }
        let report = RecoveryReport {
            entries: len,
            valid_len: end,
            discarded,
        };
        Ok((sink, report))
    }

    /// Reads the file at `path` without changing it: the entries of all
    /// complete records and any torn tail. Fails with
    /// [`AuditError::Corrupt`] where [`FileSink::open`] would.
    pub fn scan(path: impl AsRef<Path>) -> Result<ScannedFile, AuditError> {
        let mut entries = Vec::new();
        let (_, valid_len, discarded) = scan_path(path.as_ref(), |e| entries.push(e))?;
        Ok(ScannedFile {
            entries,
            valid_len,
            discarded,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sync policy.
    pub fn policy(&self) -> SyncPolicy {
        self.policy
    }

    /// Byte length of the records written so far.
    pub fn byte_len(&self) -> u64 {
        self.end
    }

    fn sync_dir(&mut self) -> Result<(), AuditError> {
        if !self.dir_sync_pending {
            return Ok(());
        }
        // Make the new file's directory entry durable. Directories cannot be
        // opened as files on every platform; where they cannot, skip.
        #[cfg(unix)]
        {
            let dir = match self.path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(format!("syncing directory {}", dir.display())))?;
        }
        self.dir_sync_pending = false;
        Ok(())
    }
}

impl AuditSink for FileSink {
    /// Writes one record. Under [`SyncPolicy::EveryAppend`] the record is
    /// synced before this returns. If the write or sync fails, the sink
    /// tries to cut the file back; the entry is not acknowledged, and if
    /// the cut fails too the sink refuses further appends
    /// ([`AuditError::Poisoned`]) until reopened.
    fn append(&mut self, entry: &AuditEntry) -> Result<(), AuditError> {
        if self.poisoned {
            return Err(AuditError::Poisoned);
        }
        check_next_seq(entry, self.len)?;
        let record = encode_record(&entry.canonical_bytes()?)?;
        let mut result = self
            .file
            .write_all(&record)
            .map_err(io_err("appending a record"));
        if result.is_ok() && self.policy == SyncPolicy::EveryAppend {
            result = self
                .file
                .sync_data()
                .map_err(io_err("syncing an appended record"))
                .and_then(|()| self.sync_dir());
        }
        match result {
            Ok(()) => {
                self.end += record.len() as u64;
                self.len += 1;
                Ok(())
            }
            Err(e) => {
                if self.file.set_len(self.end).is_err() {
                    self.poisoned = true;
                }
                Err(e)
            }
        }
    }

    fn iter(&self) -> Result<EntryIter<'_>, AuditError> {
        let mut file = self
            .file
            .try_clone()
            .map_err(io_err("cloning the file handle"))?;
        file.seek(SeekFrom::Start(0))
            .map_err(io_err("seeking to start"))?;
        let end = self.end;
        let mut reader = BufReader::with_capacity(64 * 1024, file.take(end));
        let mut offset = 0u64;
        let mut index = 0u64;
        let mut done = false;
        Ok(Box::new(std::iter::from_fn(move || {
            if done {
                return None;
            }
            let item = match read_record(&mut reader, end - offset) {
                Ok(None) => {
                    done = true;
                    return None;
                }
                Ok(Some(Ok((size, entry)))) => {
                    offset += size;
                    index += 1;
                    return Some(Ok(entry));
                }
                Ok(Some(Err(reason))) => AuditError::Corrupt {
                    index,
                    offset,
                    reason,
                },
                Err(error) => AuditError::Io {
                    context: "reading records".to_owned(),
                    error,
                },
            };
            done = true;
            Some(Err(item))
        })))
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn sync(&mut self) -> Result<(), AuditError> {
        self.file.sync_data().map_err(io_err("syncing"))?;
        self.sync_dir()
    }

    fn read_head(&self) -> Result<Option<Vec<u8>>, AuditError> {
        read_head_file(&self.path)
    }

    /// Writes `<log>.head.tmp`, syncs it, renames it over `<log>.head` and
    /// syncs the directory.
    fn write_head(&mut self, head: &[u8]) -> Result<(), AuditError> {
        let path = head_path(&self.path);
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = File::create(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
        f.write_all(head)
            .and_then(|()| f.sync_all())
            .map_err(io_err(format!("writing {}", tmp.display())))?;
        std::fs::rename(&tmp, &path).map_err(io_err(format!("renaming {}", tmp.display())))?;
        sync_parent(&path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Operation, PendingEntry};

    #[test]
    fn record_roundtrip_and_rejections() {
        let e = PendingEntry::new(0, "a", Operation::Counted).with_seq(0);
        let rec = encode_record(&e.canonical_bytes().unwrap()).unwrap();
        let (n, back) = decode_record_at(&rec).unwrap();
        assert_eq!((n, back), (rec.len(), e));
        assert_eq!(
            decode_record_at(&vec![0u8; rec.len()]).unwrap_err(),
            "bad record magic"
        );
        let mut bad = rec.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(
            decode_record_at(&bad).unwrap_err(),
            "record checksum mismatch"
        );
        assert_eq!(
            decode_record_at(&rec[..rec.len() - 1]).unwrap_err(),
            "incomplete record payload"
        );
        // Magic followed by zeros: length 0, checksum 0 is not the seeded
        // checksum of an empty payload.
        let mut z = vec![0u8; HEADER_LEN];
        z[..4].copy_from_slice(&MAGIC);
        assert_eq!(
            decode_record_at(&z).unwrap_err(),
            "record checksum mismatch"
        );
    }

    /// The checksum of a candidate derived from prefix registers equals
    /// the one computed directly, for every start and length.
    #[test]
    fn range_checksums_match_direct_ones() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let table = crc_range::X2nTable::new();
        let positions: Vec<usize> = (0..=data.len()).collect();
        let regs = crc_range::prefix_registers(&data, &positions);
        for s in 0..data.len() {
            for e in s..=data.len() {
                let header = [1u8, 2, 3, 4, 5, 6, 7, 8];
                let r1 = crc_range::raw_update(!CRC_SEED, &header);
                let derived = !(table.shift(r1 ^ regs[s], (e - s) as u64) ^ regs[e]);
                assert_eq!(derived, checksum(&header, &data[s..e]), "{s}..{e}");
            }
        }
    }

    /// A crafted tail where a record magic with a huge length starts every
    /// 12 bytes: checking each candidate over its whole payload hashes
    /// about size²/24 bytes (about 7·10^11 for this 4 MiB tail, minutes of
    /// work); the scan must hash each byte a bounded number of times.
    #[test]
    fn recovery_scan_is_linear_on_crafted_input() {
        let size = 4 << 20;
        let mut rest = vec![0u8; size];
        // The damaged record at offset 0, then candidates.
        let mut p = 1;
        let mut candidates = 0u64;
        while p + HEADER_LEN <= size {
            let n = (size - p - HEADER_LEN).min(MAX_PAYLOAD) as u32;
            rest[p..p + 4].copy_from_slice(&MAGIC);
            rest[p + 4..p + 8].copy_from_slice(&n.to_le_bytes());
            rest[p + 8..p + 12].copy_from_slice(&0xdead_beef_u32.to_le_bytes());
            candidates += 1;
            p += HEADER_LEN;
        }
        crc_range::HASHED.with(|h| h.set(0));
        assert!(!valid_record_after(&rest));
        let hashed = crc_range::HASHED.with(|h| h.get());
        assert!(candidates > 300_000);
        assert!(
            hashed <= size as u64 + 8 * candidates,
            "{hashed} bytes hashed for a {size}-byte tail"
        );

        // And a real record after the damage is still found, at any place.
        let e =
            crate::audit::PendingEntry::new(0, "a", crate::audit::Operation::Counted).with_seq(0);
        let rec = encode_record(&e.canonical_bytes().unwrap()).unwrap();
        let mut with_real = vec![0u8; 1000];
        with_real.extend_from_slice(&rec);
        with_real.extend_from_slice(&[7u8; 50]);
        assert!(valid_record_after(&with_real));
        with_real[1000 + 20] ^= 1;
        assert!(!valid_record_after(&with_real));
    }

    #[test]
    fn oversized_payload_is_refused() {
        let big = vec![b' '; MAX_PAYLOAD + 1];
        assert!(matches!(
            encode_record(&big),
            Err(AuditError::InvalidArgument(_))
        ));
    }
}
