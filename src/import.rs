//! Bulk import: many subjects, their values and their events in one call,
//! all or nothing, recorded as one audit entry.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use time::Date;

use crate::access::{Actor, Permission};
use crate::audit::Operation;
use crate::audit::details::{self as entry_kind, EntryKind};
use crate::consent::{ConsentEvent, EventContext, EventRecord, Interner, Proof};
use crate::engine::{Engine, EngineError};
use crate::policy::{AttrId, Policy};
use crate::store::{BulkEvents, BulkSubjects, Store, Value};
use crate::timestamp::Timestamp;

/// One subject to import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectRow {
    /// External id.
    pub id: String,
    /// Jurisdiction code.
    pub jurisdiction: String,
    /// Birth date, if known.
    pub birth_date: Option<Date>,
    /// Attribute values with the time each was verified.
    pub values: Vec<(String, Value, Timestamp)>,
}

/// What an import did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportSummary {
    /// Subjects added.
    pub subjects: u64,
    /// Values set.
    pub values: u64,
    /// Events recorded.
    pub events: u64,
}

/// What part of an import batch an [`ImportError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImportItem {
    /// The batch as a whole (the permission check, the audit entry, the
    /// write); the index is then 0. Shown as `batch`.
    Batch,
    /// One subject row, by its index in the subjects. Shown as `subject`.
    Subject,
    /// One consent event, by its index in the events. Shown as `event`.
    Event,
}

impl ImportItem {
    /// The name shown in messages: `batch`, `subject` or `event`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportItem::Batch => "batch",
            ImportItem::Subject => "subject",
            ImportItem::Event => "event",
        }
    }
}

impl std::fmt::Display for ImportItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An import refused, with where.
#[derive(Debug, thiserror::Error)]
#[error("{what} {index}: {error}")]
pub struct ImportError {
    /// The batch, a subject or an event.
    pub what: ImportItem,
    /// Index in the batch (0-based).
    pub index: usize,
    /// What is wrong.
    #[source]
    pub error: Box<EngineError>,
}

/// Subjects and events checked for an import and laid out column-wise, not
/// yet written: [`Engine::commit_import`] writes them in one go.
///
/// Ids are kept once, in one byte arena, with a hash table of indexes into
/// it to find repeats and to resolve the subjects of events.
pub(crate) struct Staged {
    /// The new subjects, checked (ids new and distinct, values encoded).
    pub(crate) subjects: BulkSubjects,
    /// The events, checked against their subject's facts.
    pub(crate) events: BulkEvents,
    /// The store's interned strings and those the events add.
    pub(crate) strings: Interner,
    /// Values set (a value given twice for a subject counts twice).
    pub(crate) values: u64,
    /// Index of each staged subject, by the hash of its id.
    lookup: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// Rows before the first staged subject (the store's length).
    base: u32,
}

impl Staged {
    /// Nothing staged yet for `engine`.
    pub(crate) fn new(engine: &Engine) -> Staged {
        let store = engine.store();
        Staged {
            subjects: BulkSubjects::new(engine.policy().attribute_count()),
            events: BulkEvents::default(),
            strings: store.strings().clone(),
            values: 0,
            lookup: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            base: store.len() as u32,
        }
    }

    /// The staged index of an id.
    fn staged(&self, id: &str) -> Option<u32> {
        let id = id.as_bytes();
        let h = self.hasher.hash_one(id);
        self.lookup
            .find(h, |&i| self.subjects.id_bytes(i as usize) == id)
            .copied()
    }

    /// The row of a subject, staged or already in `store`.
    pub(crate) fn row(&self, store: &Store, id: &str) -> Option<u32> {
        match self.staged(id) {
            Some(i) => Some(self.base + i),
            None if store.is_empty() => None,
            None => store.row(id),
        }
    }

    /// What an event for `row` is checked against.
    pub(crate) fn context(&self, store: &Store, row: u32, now: Timestamp) -> EventContext {
        match row.checked_sub(self.base) {
            Some(k) => EventContext {
                jurisdiction: self.subjects.juris[k as usize],
                birth_date: self.subjects.birth[k as usize],
                now,
            },
            None => {
                let facts = store.facts(row);
                EventContext {
                    jurisdiction: facts.jurisdiction,
                    birth_date: facts.birth_date,
                    now,
                }
            }
        }
    }

    /// Appends checked subjects after the staged ones. On the first id
    /// already in `store` or staged (or repeated within `chunk`), returns
    /// its index in `chunk` and the error; the subjects before it stay
    /// staged.
    pub(crate) fn append_subjects(
        &mut self,
        store: &Store,
        chunk: BulkSubjects,
    ) -> Result<(), (usize, EngineError)> {
        let first = self.subjects.len();
        self.subjects.append(chunk);
        let (subjects, hasher) = (&self.subjects, &self.hasher);
        let hash = |i: &u32| hasher.hash_one(subjects.id_bytes(*i as usize));
        self.lookup.reserve(subjects.len() - first, hash);
        let in_store = !store.is_empty();
        for i in first..subjects.len() {
            let id = subjects.id_bytes(i);
            let h = hasher.hash_one(id);
            let staged = self
                .lookup
                .find(h, |&j| subjects.id_bytes(j as usize) == id);
            if staged.is_some() || (in_store && store.row(subjects.id(i)).is_some()) {
                let e = EngineError::DuplicateSubject(subjects.id(i).to_string());
                self.subjects.truncate(i);
                return Err((i - first, e));
            }
            self.lookup.insert_unique(h, i as u32, hash);
        }
        Ok(())
    }

    /// Is this id already in `store` or staged?
    pub(crate) fn is_known(&self, store: &Store, id: &str) -> bool {
        self.row(store, id).is_some()
    }

    /// Appends a checked event.
    pub(crate) fn push_event(&mut self, row: u32, rec: EventRecord, proof: Proof) {
        self.events.rows.push(row);
        self.events.recs.push(rec);
        self.events.proofs.push(proof);
    }

    /// Puts a checked event in the place held for it (by a placeholder of
    /// [`Staged::append_events`]).
    pub(crate) fn fill_event(&mut self, slot: usize, row: u32, rec: EventRecord, proof: Proof) {
        self.events.rows[slot] = row;
        self.events.recs[slot] = rec;
        self.events.proofs[slot] = proof;
    }

    /// Appends events checked against `strings`, a copy of the staged
    /// strings when it had `base` of them, with more added: those are
    /// interned into the staged strings and the events renumbered. Events
    /// whose row is `u32::MAX` are placeholders, filled later with
    /// [`Staged::fill_event`].
    pub(crate) fn append_events(
        &mut self,
        mut events: BulkEvents,
        strings: &Interner,
        base: usize,
    ) {
        let map: Vec<u32> = (base..strings.len())
            .map(|i| self.strings.intern(strings.get(i as u32)))
            .collect();
        let renumber = |id: &mut u32| {
            if *id != u32::MAX && *id as usize >= base {
                *id = map[*id as usize - base];
            }
        };
        if !map.is_empty() {
            let held = events
                .rows
                .iter()
                .zip(events.recs.iter_mut().zip(&mut events.proofs));
            for (row, (rec, proof)) in held {
                if *row != u32::MAX {
                    renumber(&mut rec.notice);
                    renumber(&mut proof.channel);
                    renumber(&mut proof.collector);
                }
            }
        }
        self.events.rows.append(&mut events.rows);
        self.events.recs.append(&mut events.recs);
        self.events.proofs.append(&mut events.proofs);
    }
}

impl Engine {
    /// Imports subjects (new ids only) and events (for new or existing
    /// subjects). Everything is checked first; on any error nothing is
    /// changed and the error names the subject or event by its index in the
    /// batch. One audit entry records the import with its counts and a
    /// keyed digest (`import_mac`: HMAC-SHA-256 under a key derived from the
    /// audit key, see [`AuditPseudonymizer::digest`]) of the subject ids and
    /// every field of every event, so that the entry commits to each event
    /// of the batch; a plain hash of ids could be reversed by hashing
    /// guessed ids. Attribute values are counted, not digested.
    ///
    /// [`AuditPseudonymizer::digest`]: crate::audit::AuditPseudonymizer::digest
    pub fn import(
        &mut self,
        actor: &Actor,
        subjects: &[SubjectRow],
        events: &[ConsentEvent],
    ) -> Result<ImportSummary, ImportError> {
        self.allow(actor, Permission::Subjects, None)
            .map_err(|e| at(ImportItem::Batch, 0, e))?;
        let mut staged = Staged::new(self);
        let today = self.now().date();
        for (i, s) in subjects.iter().enumerate() {
            self.stage_row(&mut staged, s, today)
                .map_err(|e| at(ImportItem::Subject, i, e))?;
        }
        // The recording instant, from the host clock.
        let now = self.now();
        for (i, e) in events.iter().enumerate() {
            self.stage_event(&mut staged, e, now)
                .map_err(|err| at(ImportItem::Event, i, err))?;
        }
        self.commit_import(actor, staged)
            .map_err(|e| at(ImportItem::Batch, 0, e))
    }

    /// Checks one subject row and stages it.
    fn stage_row(
        &self,
        staged: &mut Staged,
        s: &SubjectRow,
        today: Date,
    ) -> Result<(), EngineError> {
        crate::engine::check_subject(&s.id, s.birth_date, today)?;
        if staged.is_known(self.store(), &s.id) {
            return Err(EngineError::DuplicateSubject(s.id.clone()));
        }
        let policy = self.policy();
        let j = policy.jurisdiction_id(&s.jurisdiction).ok_or_else(|| {
            EngineError::UnknownJurisdiction {
                subject: s.id.clone(),
                code: s.jurisdiction.clone(),
            }
        })?;
        let codes = encode_values(policy, &s.values)?;
        let mut one = BulkSubjects::new(policy.attribute_count());
        one.push(&s.id, j, s.birth_date);
        for (a, code, verified) in &codes {
            one.set(*a, *code, *verified);
        }
        staged
            .append_subjects(self.store(), one)
            .map_err(|(_, e)| e)?;
        staged.values += codes.len() as u64;
        Ok(())
    }

    /// Resolves an event's subject, checks it and stages it.
    pub(crate) fn stage_event(
        &self,
        staged: &mut Staged,
        e: &ConsentEvent,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let store = self.store();
        let row = staged
            .row(store, &e.subject)
            .ok_or_else(|| EngineError::UnknownSubject(e.subject.clone()))?;
        let ctx = staged.context(store, row, now);
        let (rec, proof) =
            crate::consent::check_event(self.policy(), e, &ctx, &mut staged.strings)?;
        staged.push_event(row, rec, proof);
        Ok(())
    }

    /// Records one audit entry for a staged import, then writes it (one
    /// transaction for a durable store). Nothing is changed on an error.
    pub(crate) fn commit_import(
        &mut self,
        actor: &Actor,
        staged: Staged,
    ) -> Result<ImportSummary, EngineError> {
        let summary = ImportSummary {
            subjects: staged.subjects.len() as u64,
            values: staged.values,
            events: staged.events.len() as u64,
        };
        let digest = self.import_digest(&staged);
        self.log(
            // A batch with subjects is logged as adding subjects; one with
            // only events, as recording events (see `EntryKind::Import`).
            self.entry(actor.id(), Operation::SubjectAdded)
                .with_kind(EntryKind::Import(entry_kind::Import {
                    import_subjects: summary.subjects,
                    import_values: summary.values,
                    import_events: summary.events,
                    import_mac: digest,
                })),
        )?;
        let Staged {
            mut subjects,
            events,
            strings,
            lookup,
            hasher,
            base,
            ..
        } = staged;
        // Staged positions are the rows when the store has none yet.
        if base == 0 {
            subjects.index = Some((lookup, hasher));
        }
        self.apply_bulk(subjects, events, &strings)?;
        Ok(summary)
    }

    /// The keyed digest of an import: each subject id, then each event's
    /// subject id, kind and time.
    fn import_digest(&self, staged: &Staged) -> String {
        let mut digest = self.audit_ids().digest();
        let subjects = &staged.subjects;
        for i in 0..subjects.len() {
            digest.update(subjects.id_bytes(i));
            digest.update(&[0]);
        }
        let store = self.store();
        let base = staged.base;
        let events = &staged.events;
        let strings = &staged.strings;
        for ((row, rec), proof) in events.rows.iter().zip(&events.recs).zip(&events.proofs) {
            let id = match row.checked_sub(base) {
                Some(k) => subjects.id_bytes(k as usize),
                None => store.id(*row).as_bytes(),
            };
            digest.update(id);
            digest.update(&[0]);
            digest.update(rec.kind.as_str().as_bytes());
            digest.update(&rec.at.to_be_bytes());
            // Every other field of the event, so that the entry commits to
            // each event whole (a batch differing in a purpose, a notice
            // or an expiry has another digest). Optional fields are tagged
            // present or absent, text fields end with a zero byte.
            let text = |d: &mut crate::audit::AuditDigest, v: Option<&[u8]>| {
                d.update(&[u8::from(v.is_some())]);
                d.update(v.unwrap_or(b""));
                d.update(&[0]);
            };
            let purpose = rec.purpose.map(|p| self.policy().purpose(p).key.as_bytes());
            text(&mut digest, purpose);
            let notice = (rec.notice != u32::MAX).then(|| strings.get(rec.notice).as_bytes());
            text(&mut digest, notice);
            text(&mut digest, proof.notice_sha256.as_ref().map(|h| &h[..]));
            text(&mut digest, Some(strings.get(proof.channel).as_bytes()));
            text(&mut digest, Some(strings.get(proof.collector).as_bytes()));
            text(&mut digest, proof.evidence_sha256.as_ref().map(|h| &h[..]));
            digest.update(&[u8::from(rec.expires_at != i64::MAX), u8::from(rec.explicit)]);
            digest.update(&rec.expires_at.to_be_bytes());
        }
        digest.finish()
    }
}

/// Encodes a row's values: `(attribute, code, verified)` for each.
fn encode_values(
    policy: &Policy,
    values: &[(String, Value, Timestamp)],
) -> Result<Vec<(AttrId, i64, Timestamp)>, EngineError> {
    values
        .iter()
        .map(|(name, v, verified)| {
            let a = policy
                .attr_id(name)
                .ok_or_else(|| EngineError::UnknownAttribute(name.clone()))?;
            let code = Store::encode(policy, a, v)?;
            Ok((a, code, *verified))
        })
        .collect()
}

fn at(what: ImportItem, index: usize, error: EngineError) -> ImportError {
    ImportError {
        what,
        index,
        error: Box::new(error),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::audit::{AuditLog, AuditPseudonymizer, AuditSink, MemorySink};
    use crate::consent::{ConsentEvent, EventKind};
    use crate::policy::Policy;
    use crate::{Actor, Engine, Timestamp};

    use super::SubjectRow;

    /// The `import_mac` of importing one subject and `event` under a fixed
    /// audit key.
    fn mac_of(event: &ConsentEvent) -> String {
        let key = [7u8; 32];
        let log = AuditLog::open(
            Box::new(MemorySink::new()) as Box<dyn AuditSink + Send>,
            &key,
        )
        .unwrap();
        let ids = AuditPseudonymizer::new(&key).unwrap();
        let policy = Policy::from_json(include_str!("../examples/data/policy.json")).unwrap();
        let mut e = Engine::with_audit(Arc::new(policy), log, ids).unwrap();
        let admin = Actor::new("admin", &["admin"]);
        let row = SubjectRow {
            id: "alice".into(),
            jurisdiction: "EU-FR".into(),
            birth_date: None,
            values: vec![],
        };
        e.import(&admin, &[row], std::slice::from_ref(event))
            .unwrap();
        let entries = e.audit_entries().unwrap();
        let import = entries
            .iter()
            .rev()
            .find(|x| x.details.contains_key("import_mac"))
            .unwrap();
        import.details["import_mac"].as_str().unwrap().to_owned()
    }

    /// The import entry commits to each event whole: changing only its
    /// purpose, its notice, its expiry or its explicit flag changes the
    /// digest (the same batch gives the same digest).
    #[test]
    fn the_import_digest_commits_to_every_field_of_an_event() {
        let at = Timestamp::parse("2020-01-01T00:00:00Z").unwrap();
        let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let base = ConsentEvent::grant("alice", "marketing.email", at, "v3", sha);
        let mac = mac_of(&base);
        assert_eq!(mac, mac_of(&base));
        let mut other = base.clone();
        other.purpose = Some("analytics.product".into());
        assert_ne!(mac, mac_of(&other), "purpose");
        let mut other = base.clone();
        other.expires_at = Some(Timestamp::parse("2021-01-01T00:00:00Z").unwrap());
        assert_ne!(mac, mac_of(&other), "expiry");
        let mut other = base.clone();
        other.explicit = !other.explicit;
        assert_ne!(mac, mac_of(&other), "explicit");
        let mut other = base.clone();
        other.kind = EventKind::ConsentRefused;
        assert_ne!(mac, mac_of(&other), "kind");
    }
}
