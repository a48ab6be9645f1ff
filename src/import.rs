//! Bulk import: many subjects, their values and their events in one call,
//! all or nothing, recorded as one audit entry.

use std::collections::HashMap;

use time::Date;

use crate::Timestamp;
use crate::access::{Actor, Permission};
use crate::audit::Operation;
use crate::consent::{ConsentEvent, EventContext, EventRecord, Proof};
use crate::engine::{Engine, EngineError};
use crate::policy::AttrId;
use crate::store::{NewSubject, Store, Value, ValueChange, ValueWrite};

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
        let at_batch = |what, index, error: EngineError| ImportError {
            what,
            index,
            error: Box::new(error),
        };
        self.allow(actor, Permission::Subjects, None)
            .map_err(|e| at_batch(ImportItem::Batch, 0, e))?;
        let policy = self.policy().clone();
        let base = self.store().len() as u32;
        let mut new_rows: HashMap<&str, u32> = HashMap::with_capacity(subjects.len());
        let mut juris = Vec::with_capacity(subjects.len());
        let mut values: Vec<ValueWrite> = Vec::new();
        let mut digest = self.audit_ids().digest();
        let mut attr_cache: HashMap<&str, AttrId> = HashMap::new();
        for (i, s) in subjects.iter().enumerate() {
            crate::engine::check_subject(&s.id, s.birth_date, self.now().date())
                .map_err(|e| at_batch(ImportItem::Subject, i, e))?;
            if self.store().row(&s.id).is_some() || new_rows.contains_key(s.id.as_str()) {
                return Err(at_batch(
                    ImportItem::Subject,
                    i,
                    EngineError::DuplicateSubject(s.id.clone()),
                ));
            }
            let j = policy.jurisdiction_id(&s.jurisdiction).ok_or_else(|| {
                at_batch(
                    ImportItem::Subject,
                    i,
                    EngineError::UnknownJurisdiction {
                        subject: s.id.clone(),
                        code: s.jurisdiction.clone(),
                    },
                )
            })?;
            let row = base + i as u32;
            new_rows.insert(&s.id, row);
            juris.push(j);
            for (name, v, verified) in &s.values {
                let a = match attr_cache.get(name.as_str()) {
                    Some(a) => *a,
                    None => {
                        let a = policy.attr_id(name).ok_or_else(|| {
                            at_batch(
                                ImportItem::Subject,
                                i,
                                EngineError::UnknownAttribute(name.clone()),
                            )
                        })?;
                        attr_cache.insert(name, a);
                        a
                    }
                };
                let code = Store::encode(&policy, a, v)
                    .map_err(|e| at_batch(ImportItem::Subject, i, e.into()))?;
                values.push(ValueWrite {
                    row,
                    attr: a,
                    change: ValueChange::Set {
                        code,
                        verified: *verified,
                    },
                });
            }
            digest.update(s.id.as_bytes());
            digest.update(&[0]);
        }
        let mut records: Vec<(u32, EventRecord, Proof)> = Vec::with_capacity(events.len());
        // The recording instant, from the host clock.
        let now = self.now();
        for (i, e) in events.iter().enumerate() {
            let row = match new_rows.get(e.subject.as_str()) {
                Some(r) => *r,
                None => self.store().row(&e.subject).ok_or_else(|| {
                    at_batch(
                        ImportItem::Event,
                        i,
                        EngineError::UnknownSubject(e.subject.clone()),
                    )
                })?,
            };
            let ctx = match row.checked_sub(base) {
                Some(k) => EventContext {
                    jurisdiction: juris[k as usize],
                    birth_date: subjects[k as usize].birth_date,
                    now,
                },
                None => {
                    let facts = self.store().facts(row);
                    EventContext {
                        jurisdiction: facts.jurisdiction,
                        birth_date: facts.birth_date,
                        now,
                    }
                }
            };
            let (rec, proof) = self
                .store_check_event(e, &ctx)
                .map_err(|err| at_batch(ImportItem::Event, i, err.into()))?;
            records.push((row, rec, proof));
            digest.update(e.subject.as_bytes());
            digest.update(&[0]);
            digest.update(e.kind.as_str().as_bytes());
            digest.update(&e.at.unix().to_be_bytes());
            // Every other field of the event, so that the entry commits to
            // each event whole (a batch differing in a purpose, a notice
            // or an expiry has another digest). Optional fields are tagged
            // present or absent, text fields end with a zero byte.
            let text = |d: &mut crate::audit::AuditDigest, v: Option<&str>| {
                d.update(&[u8::from(v.is_some())]);
                d.update(v.unwrap_or("").as_bytes());
                d.update(&[0]);
            };
            text(&mut digest, e.purpose.as_deref());
            text(&mut digest, e.notice_version.as_deref());
            text(&mut digest, e.notice_sha256.as_deref());
            text(&mut digest, Some(&e.channel));
            text(&mut digest, Some(&e.collector));
            text(&mut digest, e.evidence_sha256.as_deref());
            digest.update(&[u8::from(e.expires_at.is_some()), u8::from(e.explicit)]);
            digest.update(&e.expires_at.map_or(0, |t| t.unix()).to_be_bytes());
        }
        let digest = digest.finish();
        let summary = ImportSummary {
            subjects: subjects.len() as u64,
            values: values.len() as u64,
            events: records.len() as u64,
        };
        self.log(
            self.entry(actor.id(), Operation::SubjectAdded)
                .detail("import_subjects", summary.subjects)
                .detail("import_values", summary.values)
                .detail("import_events", summary.events)
                .detail("import_mac", digest),
        )
        .map_err(|e| at_batch(ImportItem::Batch, 0, e))?;
        // Nothing below can fail, but for a durable store's write (then
        // nothing is changed).
        let new: Vec<NewSubject<'_>> = subjects
            .iter()
            .zip(juris)
            .map(|(s, jurisdiction)| NewSubject {
                id: &s.id,
                jurisdiction,
                birth_date: s.birth_date,
            })
            .collect();
        self.apply_import(&new, &values, records)
            .map_err(|e| at_batch(ImportItem::Batch, 0, e))?;
        Ok(summary)
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
