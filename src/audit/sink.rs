//! Storage back ends for audit entries.

use super::{AuditEntry, AuditError};

/// An iterator over stored entries, in order. Each item is an entry or the
/// error that stopped reading it.
pub type EntryIter<'a> = Box<dyn Iterator<Item = Result<AuditEntry, AuditError>> + 'a>;

/// Where audit entries are stored: append-only, in sequence order.
///
/// Implemented by [`FileSink`](super::FileSink) and [`MemorySink`], and by
/// `Box<S>` for any sink `S`, so an engine can hold a
/// `Box<dyn AuditSink + Send>`.
pub trait AuditSink {
    /// Appends one entry. `entry.seq` must equal [`AuditSink::len`];
    /// otherwise [`AuditError::InvalidArgument`] is returned and nothing is
    /// stored. When this returns `Ok`, the entry is acknowledged to the
    /// degree the sink's durability policy promises.
    fn append(&mut self, entry: &AuditEntry) -> Result<(), AuditError>;

    /// Iterates over all stored entries, from sequence number 0.
    fn iter(&self) -> Result<EntryIter<'_>, AuditError>;

    /// Number of stored entries.
    fn len(&self) -> u64;

    /// Whether no entry is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forces appended entries to stable storage (no-op for sinks without
    /// one).
    fn sync(&mut self) -> Result<(), AuditError> {
        Ok(())
    }

    /// The stored head record ([`AuditLog`](super::AuditLog) writes it at
    /// the start and end of each run that appends), or `None` if none was
    /// ever written. The head must be kept apart from the entries, so that
    /// cutting entries off does not cut it off too.
    fn read_head(&self) -> Result<Option<Vec<u8>>, AuditError>;

    /// Replaces the head record, atomically and durably: after a crash the
    /// old or the new head is found, never a mix.
    fn write_head(&mut self, head: &[u8]) -> Result<(), AuditError>;
}

impl<S: AuditSink + ?Sized> AuditSink for Box<S> {
    fn append(&mut self, entry: &AuditEntry) -> Result<(), AuditError> {
        (**self).append(entry)
    }
    fn iter(&self) -> Result<EntryIter<'_>, AuditError> {
        (**self).iter()
    }
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn is_empty(&self) -> bool {
        (**self).is_empty()
    }
    fn sync(&mut self) -> Result<(), AuditError> {
        (**self).sync()
    }
    fn read_head(&self) -> Result<Option<Vec<u8>>, AuditError> {
        (**self).read_head()
    }
    fn write_head(&mut self, head: &[u8]) -> Result<(), AuditError> {
        (**self).write_head(head)
    }
}

pub(crate) fn check_next_seq(entry: &AuditEntry, len: u64) -> Result<(), AuditError> {
    if entry.seq != len {
        return Err(AuditError::InvalidArgument(format!(
            "entry has sequence number {} but the sink expects {len}",
            entry.seq
        )));
    }
    Ok(())
}

/// An in-memory sink, for tests and for embedding where the host persists
/// entries itself. Nothing survives the process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemorySink {
    entries: Vec<AuditEntry>,
    head: Option<Vec<u8>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        MemorySink::default()
    }

    /// A sink holding `entries` as given and no head record, without any
    /// check. [`AuditLog::open`](super::AuditLog::open) refuses it unless
    /// `entries` is empty (a log with entries has a head); use
    /// [`MemorySink::from_parts`] to load a log kept elsewhere, or
    /// [`AuditLog::open_read_only`](super::AuditLog::open_read_only).
    pub fn from_entries(entries: Vec<AuditEntry>) -> Self {
        MemorySink {
            entries,
            head: None,
        }
    }

    /// A sink holding `entries` and the head record `head`, without any
    /// check; [`AuditLog::open`](super::AuditLog::open) checks them.
    pub fn from_parts(entries: Vec<AuditEntry>, head: Option<Vec<u8>>) -> Self {
        MemorySink { entries, head }
    }

    /// The stored head record.
    pub fn head(&self) -> Option<&[u8]> {
        self.head.as_deref()
    }

    /// Takes the stored entries and head record out.
    pub fn into_parts(self) -> (Vec<AuditEntry>, Option<Vec<u8>>) {
        (self.entries, self.head)
    }

    /// The stored entries.
    pub fn as_slice(&self) -> &[AuditEntry] {
        &self.entries
    }

    /// Takes the stored entries out.
    pub fn into_entries(self) -> Vec<AuditEntry> {
        self.entries
    }
}

impl AuditSink for MemorySink {
    fn append(&mut self, entry: &AuditEntry) -> Result<(), AuditError> {
        check_next_seq(entry, self.len())?;
        self.entries.push(entry.clone());
        Ok(())
    }

    fn iter(&self) -> Result<EntryIter<'_>, AuditError> {
        Ok(Box::new(self.entries.iter().cloned().map(Ok)))
    }

    fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    fn read_head(&self) -> Result<Option<Vec<u8>>, AuditError> {
        Ok(self.head.clone())
    }

    fn write_head(&mut self, head: &[u8]) -> Result<(), AuditError> {
        self.head = Some(head.to_vec());
        Ok(())
    }
}
