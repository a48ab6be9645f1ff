//! Scale-out: one segment answered by many engines, each holding a shard
//! of the subjects, with the release gate applied once on a driver.
//!
//! # Sharding
//!
//! A subject belongs to shard [`shard_of`]`(id, n)`: the first 8 bytes of
//! SHA-256 of the id's UTF-8 bytes, read as a big-endian `u64`, modulo `n`.
//! The function is stable across versions, platforms and languages (the
//! Python package computes the same), so any system can route a subject
//! to its shard without asking privseg.
//!
//! # Partials and the release
//!
//! A shard engine answers [`Engine::partial`]: the segment run over its
//! subjects (eligibility as of the shard's host clock, the predicate's
//! relative times against the caller's reference), gated by the permission
//! the release will need and recorded in the shard's audit log. A
//! [`Partial`] carries the policy version, the segment, the shard's number
//! and count, the member count, and the shard's audit size and Merkle root
//! taken after the partial's own entry was written. Nothing in a partial is
//! a release: no k-threshold, no noise, no pseudonyms.
//!
//! The driver (an engine with the same policy; it needs no subjects) takes
//! every shard's partial and releases once with [`Engine::release_count`],
//! [`Engine::release_dp_count`], [`Engine::release_members`] or
//! [`Engine::release_export`]. Each checks that the partials share the
//! driver's policy version, the segment, the reference time and the request,
//! that their shard numbers cover `0..n` exactly once, that each partial is
//! self-consistent (count, bitset, ids and rows agree, every id belongs to
//! its shard), and that each was made no later than the driver's now plus
//! the policy's clock skew and no earlier than [`PARTIAL_MAX_AGE_SECONDS`]
//! before it. It then merges (counts add; bitsets, ids and rows concatenate
//! in shard order) and applies the one release gate of a single engine:
//! the actor's permission on the driver, the k-threshold, one DP charge and
//! one noise draw, the recipient's agreement and pseudonyms. It writes ONE
//! audit entry whose `shard_roots` detail is the Merkle root of every
//! shard's `(shard, audit size, audit root)`, so an auditor can tie the
//! release to each shard's log.
//!
//! # What a partial exposes
//!
//! A partial is personal data under the controller's control, like the
//! engine's own memory, and travels from the executors to the driver inside
//! the controller's cluster: keep it there (no shuffle files on shared
//! storage, no logging of task results).
//!
//! - A count partial ([`PartialRequest::Count`]) carries the shard's member
//!   count only: no ids, no bitset. Counts below k are visible to whoever
//!   can read it; the k-threshold and the noise apply at release.
//! - A members partial carries the member bitset over the shard's rows and
//!   the ids of members only (never of non-members).
//! - An export partial carries, for members only, the raw id and the
//!   exported fields' values (stale or missing ones already nulled); the
//!   shard checks the recipient's agreement before it reads them, and
//!   pseudonyms are applied on the driver, so the recipients' keys never
//!   reach the executors.
//!
//! # Split releases
//!
//! Member lists and exports too large for the driver to hold are released
//! a shard at a time. A members partial splits ([`Partial::split_ids`])
//! into a header and its ids, an export partial ([`Partial::split_rows`])
//! into a header and its [`ExportRows`]; the header carries the SHA-256 of
//! what was split off. The driver collects the headers only and applies
//! the same gate as for whole partials (one function for both:
//! [`Engine::release_members_split`] and [`Engine::release_export_split`]
//! share it with [`Engine::release_members`] and
//! [`Engine::release_export`]), writing the release's one audit entry for
//! every member or row before any comes out. Each shard's ids or rows are
//! then released once ([`MembersRelease::ids`], [`ExportRelease::rows`]),
//! only if their count and SHA-256 are those of their header and every id
//! belongs to the shard; export rows are pseudonymised there, so the
//! pseudonyms are those of the whole export.
//!
//! The host is trusted to deliver each shard's partial as the shard made
//! it (partials carry no signature): the same trust it holds for the
//! engine's memory. Withdrawals recorded after a partial was made and
//! before the release are not seen by that release; the age limit bounds
//! that window.

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::access::{Actor, Permission};
use crate::audit::details::{self as entry_kind, EntryKind, SegmentRun, Sharded};
use crate::audit::merkle;
use crate::consent::DataUse;
use crate::engine::{Engine, EngineError, Members};
use crate::outputs::{ExportFormat, ExportSummary, ExportWriter};
use crate::policy::AttrId;
use crate::privacy::aggregate::{Count, k_threshold};
use crate::privacy::dp::{BudgetStore, Charge, Epsilon, RandomSource};
use crate::privacy::pseudonym::{Keyring, Pseudonymizer};
use crate::segment::CheckedSegment;
use crate::store::Value;
use crate::timestamp::Timestamp;

/// The oldest a partial may be at release, in seconds before the driver's
/// now. Eligibility is judged when a shard makes its partial; a partial
/// older than this is refused so that a release never rests on an
/// eligibility judged long ago (ten minutes).
pub const PARTIAL_MAX_AGE_SECONDS: i64 = 600;

/// The largest number of shards.
pub const MAX_SHARDS: u32 = 1 << 16;

/// Version of the partial's serialised form.
const FORMAT: u32 = 1;

/// The shard of a subject id among `shards`: the first 8 bytes of SHA-256
/// of the id, big-endian, modulo `shards`. `shards` must be at least 1
/// (0 is treated as 1).
pub fn shard_of(id: &str, shards: u32) -> u32 {
    let d = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.as_ref()[..8]);
    (u64::from_be_bytes(b) % u64::from(shards.max(1))) as u32
}

/// What a partial is for: the release it feeds, and so the permission it
/// needs and what it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartialRequest<'a> {
    /// For [`Engine::release_count`] and [`Engine::release_dp_count`]
    /// (`count` permission): the member count only.
    Count,
    /// For [`Engine::release_members`] (`member_ids` permission): the
    /// member bitset and the members' ids.
    Members,
    /// For [`Engine::release_export`] (`export` permission for the
    /// recipient, and its agreement): members' ids and the fields' values.
    Export {
        /// Recipient id.
        recipient: &'a str,
        /// Fields to export.
        fields: &'a [&'a str],
    },
}

/// The kind of a partial, as serialised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartialKind {
    /// A member count.
    Count,
    /// Member bitset and ids.
    Members,
    /// Member ids and field values for an export.
    Export,
}

impl PartialKind {
    fn as_str(self) -> &'static str {
        match self {
            PartialKind::Count => "count",
            PartialKind::Members => "members",
            PartialKind::Export => "export",
        }
    }
}

/// One shard's answer to a segment, to be released on a driver. See the
/// module documentation for what it carries and exposes. Serialise it with
/// [`Partial::to_json`] and read it back with [`Partial::from_json`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partial {
    format: u32,
    policy_version: String,
    segment: String,
    purpose: String,
    reference: Timestamp,
    at: Timestamp,
    shard: u32,
    shards: u32,
    kind: PartialKind,
    #[serde(default)]
    recipient: Option<String>,
    #[serde(default)]
    fields: Vec<String>,
    rows: u64,
    count: u64,
    #[serde(default)]
    bits: Vec<u64>,
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    values: Vec<Vec<Option<Value>>>,
    /// For a partial split by [`Partial::split_ids`] or
    /// [`Partial::split_rows`]: the SHA-256 (hex) of what travels apart
    /// (the ids of a members partial; the ids and their rows of an export
    /// partial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    split_sha256: Option<String>,
    audit_size: u64,
    audit_root: String,
}

impl Partial {
    /// The shard's number.
    pub fn shard(&self) -> u32 {
        self.shard
    }
    /// The number of shards.
    pub fn shards(&self) -> u32 {
        self.shards
    }
    /// The shard's member count (not thresholded: not for release).
    pub fn count(&self) -> u64 {
        self.count
    }
    /// Segment name.
    pub fn segment(&self) -> &str {
        &self.segment
    }
    /// Purpose key.
    pub fn purpose(&self) -> &str {
        &self.purpose
    }
    /// Policy version (64 hex digits).
    pub fn policy_version(&self) -> &str {
        &self.policy_version
    }
    /// The kind.
    pub fn kind(&self) -> PartialKind {
        self.kind
    }
    /// The instant the shard judged eligibility at.
    pub fn at(&self) -> Timestamp {
        self.at
    }
    /// The shard's audit log size and Merkle root (hex) after the
    /// partial's entry.
    pub fn audit_root(&self) -> (u64, &str) {
        (self.audit_size, &self.audit_root)
    }
    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a partial serialises")
    }
    /// Reads the JSON form (its consistency is checked at release).
    pub fn from_json(text: &str) -> Result<Partial, ShardError> {
        serde_json::from_str(text).map_err(|e| ShardError::Malformed(e.to_string()))
    }

    /// Splits a members partial into its header (everything but the ids,
    /// with their SHA-256) and its ids, so that a driver can release the
    /// members of many shards a shard at a time
    /// ([`Engine::release_members_split`]) instead of holding every id at
    /// once. Other partials are returned whole, with no ids apart.
    pub fn split_ids(mut self) -> (Partial, Vec<String>) {
        if self.kind != PartialKind::Members || self.split_sha256.is_some() {
            return (self, Vec::new());
        }
        let ids = std::mem::take(&mut self.ids);
        self.split_sha256 = Some(hex(&ids_digest(&ids)));
        (self, ids)
    }

    /// Splits an export partial into its header (everything but the ids and
    /// their rows, with the SHA-256 of both) and its [`ExportRows`], so that
    /// a driver can release an export of many shards a shard at a time
    /// ([`Engine::release_export_split`]) instead of holding every row at
    /// once. Other partials are returned whole, with no rows apart.
    pub fn split_rows(mut self) -> (Partial, ExportRows) {
        if self.kind != PartialKind::Export || self.split_sha256.is_some() {
            return (self, ExportRows::default());
        }
        let rows = ExportRows {
            ids: std::mem::take(&mut self.ids),
            values: std::mem::take(&mut self.values),
        };
        self.split_sha256 = Some(hex(&rows.digest()));
        (self, rows)
    }
}

/// Why a partial or a release failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// The engine refused (permission, agreement, budget, audit...).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The shard number or count is out of range.
    #[error(
        "shard {shard} of {shards}: the count must be 1 to {MAX_SHARDS} and the shard below it"
    )]
    BadShard {
        /// Shard number.
        shard: u32,
        /// Shard count.
        shards: u32,
    },
    /// The engine holds a subject of another shard.
    #[error(
        "shard {shard} of {shards} holds row {row}, which belongs to shard {belongs}: load each shard with the ids shard_of() gives it"
    )]
    WrongShard {
        /// Shard number.
        shard: u32,
        /// Shard count.
        shards: u32,
        /// The row.
        row: u32,
        /// Where it belongs.
        belongs: u32,
    },
    /// The partials cannot be released together.
    #[error("partials refused: {0}")]
    Partials(String),
    /// A partial could not be read.
    #[error("malformed partial: {0}")]
    Malformed(String),
}

/// An export partial's recipient, its fields, and what its gate returned:
/// the fields' ids and the data use members must be eligible for.
type PartialExport<'r> = (&'r str, &'r [&'r str], (Vec<AttrId>, DataUse));

impl Engine {
    /// This engine's answer to `seg` as shard `shard` of `shards`, for the
    /// release named by `request` (whose permission it needs). Every
    /// subject the engine holds must belong to this shard by [`shard_of`]
    /// (checked: a subject in two shards would be counted twice).
    /// Recorded in this engine's audit log before the partial is returned;
    /// the partial commits to the log's root after that entry.
    pub fn partial(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        reference: Timestamp,
        shard: u32,
        shards: u32,
        request: &PartialRequest<'_>,
    ) -> Result<Partial, ShardError> {
        if shards == 0 || shards > MAX_SHARDS || shard >= shards {
            return Err(ShardError::BadShard { shard, shards });
        }
        let (kind, export) = self.partial_gate(actor, seg, request)?;
        self.check_shard(shard, shards)?;
        let members = match &export {
            Some((_, _, (_, uses))) => self.run_for_export(seg, reference, *uses)?,
            None => self.evaluate_ungated(seg, reference)?,
        };
        let mut p = self.partial_of(seg, reference, shard, shards, kind, &members);
        if let Some((recipient, fields, (ids, _))) = &export {
            p.recipient = Some(recipient.to_string());
            p.fields = fields.iter().map(|f| f.to_string()).collect();
            p.values = self.partial_values(seg, &members, ids);
        }
        let entry = self.segment_entry(
            actor,
            seg,
            EntryKind::ShardPartial(entry_kind::ShardPartial {
                run: SegmentRun::new(seg.name(), reference),
                partial: kind.as_str().into(),
                shard: u64::from(shard),
                shards: u64::from(shards),
                members: members.count(),
                recipient: export.as_ref().map(|(r, _, _)| r.to_string()),
                fields: export.as_ref().map(|(_, f, _)| f.join(",")),
            }),
        );
        self.log(entry)?;
        let (size, root) = self.audit_root()?;
        p.audit_size = size;
        p.audit_root = hex(&root);
        Ok(p)
    }

    /// The permission a partial needs, by its request; for an export, the
    /// export's gate with what it returns.
    fn partial_gate<'r>(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        request: &PartialRequest<'r>,
    ) -> Result<(PartialKind, Option<PartialExport<'r>>), ShardError> {
        let purpose = seg.purpose_key();
        Ok(match *request {
            PartialRequest::Count => {
                self.allow(actor, Permission::Count(purpose), Some(purpose))?;
                (PartialKind::Count, None)
            }
            PartialRequest::Members => {
                self.allow(actor, Permission::MemberIds(purpose), Some(purpose))?;
                (PartialKind::Members, None)
            }
            PartialRequest::Export { recipient, fields } => {
                let gate = self.export_gate(actor, seg, recipient, fields)?;
                (PartialKind::Export, Some((recipient, fields, gate)))
            }
        })
    }

    /// Every subject this engine holds belongs to shard `shard` of
    /// `shards`: one held by two shards would be counted twice.
    fn check_shard(&self, shard: u32, shards: u32) -> Result<(), ShardError> {
        let store = self.store();
        for row in 0..store.len() as u32 {
            if store.is_erased(row) {
                continue;
            }
            let belongs = shard_of(store.id(row), shards);
            if belongs != shard {
                return Err(ShardError::WrongShard {
                    shard,
                    shards,
                    row,
                    belongs,
                });
            }
        }
        Ok(())
    }

    /// The partial of `members`: counts always, bits for members, ids for
    /// members and exports; no recipient, values or audit root yet.
    fn partial_of(
        &self,
        seg: &CheckedSegment,
        reference: Timestamp,
        shard: u32,
        shards: u32,
        kind: PartialKind,
        members: &Members,
    ) -> Partial {
        let store = self.store();
        Partial {
            format: FORMAT,
            policy_version: self.policy().version_hex().to_string(),
            segment: seg.name().into(),
            purpose: seg.purpose_key().into(),
            reference,
            at: members.at(),
            shard,
            shards,
            kind,
            recipient: None,
            fields: Vec::new(),
            rows: store.len() as u64,
            count: members.count(),
            bits: match kind {
                PartialKind::Members => members.bits().as_raw_slice().to_vec(),
                _ => Vec::new(),
            },
            ids: match kind {
                PartialKind::Count => Vec::new(),
                _ => members.rows().map(|r| store.id(r).to_string()).collect(),
            },
            values: Vec::new(),
            split_sha256: None,
            audit_size: 0,
            audit_root: String::new(),
        }
    }

    /// Each member's exported values, missing or stale ones as `None`.
    fn partial_values(
        &self,
        seg: &CheckedSegment,
        members: &Members,
        ids: &[AttrId],
    ) -> Vec<Vec<Option<Value>>> {
        let fresh = self.fresh_since(seg, ids, members.at());
        let mut values = Vec::with_capacity(ids.len());
        members
            .rows()
            .map(|r| {
                self.export_values(ids, &fresh, r, &mut values);
                values.clone()
            })
            .collect()
    }

    /// The k-threshold count of the merged partials (of kind `count`),
    /// released once under this engine's `count` permission and recorded
    /// once, like [`Engine::count`].
    pub fn release_count(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        partials: &[Partial],
    ) -> Result<Count, ShardError> {
        self.allow(
            actor,
            Permission::Count(seg.purpose_key()),
            Some(seg.purpose_key()),
        )?;
        let m = self.merge(seg, partials, PartialKind::Count, None, &[])?;
        let c = k_threshold(m.count, self.policy().k_threshold());
        self.log(self.segment_entry(
            actor,
            seg,
            EntryKind::Counted(entry_kind::Counted {
                run: SegmentRun::new(seg.name(), m.reference),
                reported: c.to_string(),
                sharded: Some(m.sharded()),
            }),
        ))?;
        Ok(c)
    }

    /// A differentially private count of the merged partials (of kind
    /// `count`): the budget charged once and the noise drawn once, on this
    /// engine, exactly as [`Engine::dp_count`] does for its own count.
    pub fn release_dp_count<S: BudgetStore, R: RandomSource + ?Sized>(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        partials: &[Partial],
        epsilon: Option<Epsilon>,
        budgets: &mut S,
        rng: &mut R,
    ) -> Result<(i64, Charge), ShardError> {
        let (budget, epsilon) = self.dp_gate(actor, seg, epsilon)?;
        let m = self.merge(seg, partials, PartialKind::Count, None, &[])?;
        Ok(self.dp_release(
            actor,
            seg,
            m.reference,
            m.count,
            &budget,
            epsilon,
            budgets,
            rng,
            Some(m.sharded()),
        )?)
    }

    /// The ids of the merged partials' members (of kind `members`), in
    /// shard order then row order within a shard, released under this
    /// engine's `member_ids` permission and recorded once.
    pub fn release_members(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        partials: &[Partial],
    ) -> Result<Vec<String>, ShardError> {
        let m = self.members_gate(actor, seg, partials, false)?;
        Ok(m.order
            .iter()
            .flat_map(|&i| partials[i].ids.iter().cloned())
            .collect())
    }

    /// The gate of a member release: the `member_ids` permission, the
    /// partials (or, `split`, their headers) merged, and one audit entry
    /// for every member, written before any id is released.
    fn members_gate(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        partials: &[Partial],
        split: bool,
    ) -> Result<Merged, ShardError> {
        self.allow(
            actor,
            Permission::MemberIds(seg.purpose_key()),
            Some(seg.purpose_key()),
        )?;
        let m = self.merge_parts(seg, partials, PartialKind::Members, None, &[], split)?;
        self.log(self.segment_entry(
            actor,
            seg,
            EntryKind::MemberIdsReleased(entry_kind::MemberIdsReleased {
                segment: seg.name().into(),
                at: Some(m.reference.to_string()),
                released_ids: m.count,
                sharded: Some(m.sharded()),
            }),
        ))?;
        Ok(m)
    }

    /// Starts releasing the members of split partials
    /// ([`Partial::split_ids`]) a shard at a time: checks the headers as
    /// [`Engine::release_members`] checks whole partials (the same
    /// permission, coverage, policy, segment and age) and records the
    /// release of every member once, before any id is returned. Each
    /// shard's ids then come out of [`MembersRelease::ids`], checked against
    /// the SHA-256 its header carries, so that the driver never holds more
    /// than one shard's ids.
    pub fn release_members_split(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        headers: &[Partial],
    ) -> Result<MembersRelease, ShardError> {
        let m = self.members_gate(actor, seg, headers, true)?;
        Ok(MembersRelease {
            split: SplitRelease::of(&m, headers),
        })
    }

    /// Exports the merged partials' members (of kind `export`, made for
    /// the same recipient and fields) as [`Engine::export`] does: the
    /// recipient's agreement checked again here, one audit entry, ids
    /// pseudonymised under the recipient's key from `keys` on this engine.
    /// Rows come in shard order, then row order within a shard.
    #[allow(clippy::too_many_arguments)]
    pub fn release_export<W: Write>(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        partials: &[Partial],
        recipient: &str,
        fields: &[&str],
        format: ExportFormat,
        keys: &Keyring,
        out: W,
    ) -> Result<ExportSummary, ShardError> {
        let (m, pseudonymizer) =
            self.export_release_gate(actor, seg, partials, recipient, fields, keys, false)?;
        let mut writer = ExportWriter::start(format, fields, out)?;
        for &i in &m.order {
            let p = &partials[i];
            write_rows(&mut writer, &pseudonymizer, &p.ids, &p.values)?;
        }
        writer.finish()?;
        Ok(ExportSummary::new(
            recipient,
            seg,
            m.count,
            fields,
            pseudonymizer.version(),
        ))
    }

    /// The gate of an export release, whole or split: the recipient's
    /// agreement and the actor's `export` permission for the selection and
    /// the fields ([`Engine::export`]'s gate), the recipient's current key,
    /// the partials (or, `split`, their headers) merged, and one audit entry
    /// for every row, written before any row is released.
    #[allow(clippy::too_many_arguments)]
    fn export_release_gate(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        partials: &[Partial],
        recipient: &str,
        fields: &[&str],
        keys: &Keyring,
        split: bool,
    ) -> Result<(Merged, Pseudonymizer), ShardError> {
        self.export_gate(actor, seg, recipient, fields)?;
        let pseudonymizer = keys
            .current(recipient, seg.purpose_key())
            .map_err(EngineError::Pseudonym)?;
        let m = self.merge_parts(
            seg,
            partials,
            PartialKind::Export,
            Some(recipient),
            fields,
            split,
        )?;
        self.log(self.segment_entry(
            actor,
            seg,
            EntryKind::Exported(entry_kind::Exported {
                run: SegmentRun::new(seg.name(), m.reference),
                recipient: recipient.into(),
                fields: fields.join(","),
                rows: m.count,
                key_version: pseudonymizer.version(),
                sharded: Some(m.sharded()),
            }),
        ))?;
        Ok((m, pseudonymizer))
    }

    /// Starts releasing an export of split partials ([`Partial::split_rows`])
    /// a shard at a time: applies [`Engine::release_export`]'s gate to the
    /// headers (the same permission, recipient agreement, key, coverage,
    /// policy, segment, recipient, fields and age) and records the export of
    /// every row once, before any row is returned. Each shard's rows then
    /// come out of [`ExportRelease::rows`], checked against the SHA-256 its
    /// header carries and pseudonymised there, so that the driver never
    /// holds more than one shard's rows. The rows of all shards, in any
    /// order, are the rows [`Engine::release_export`] writes.
    #[allow(clippy::too_many_arguments)]
    pub fn release_export_split(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        headers: &[Partial],
        recipient: &str,
        fields: &[&str],
        format: ExportFormat,
        keys: &Keyring,
    ) -> Result<ExportRelease, ShardError> {
        let (m, pseudonymizer) =
            self.export_release_gate(actor, seg, headers, recipient, fields, keys, true)?;
        let summary = ExportSummary::new(recipient, seg, m.count, fields, pseudonymizer.version());
        Ok(ExportRelease {
            split: SplitRelease::of(&m, headers),
            pseudonymizer,
            format,
            fields: fields.iter().map(|f| f.to_string()).collect(),
            started: false,
            summary,
        })
    }

    /// Checks that the partials can be released together and merges them.
    fn merge(
        &self,
        seg: &CheckedSegment,
        partials: &[Partial],
        kind: PartialKind,
        recipient: Option<&str>,
        fields: &[&str],
    ) -> Result<Merged, ShardError> {
        self.merge_parts(seg, partials, kind, recipient, fields, false)
    }

    /// [`Engine::merge`]; `split`: the partials are members headers whose
    /// ids travel apart (checked when each shard's ids arrive).
    fn merge_parts(
        &self,
        seg: &CheckedSegment,
        partials: &[Partial],
        kind: PartialKind,
        recipient: Option<&str>,
        fields: &[&str],
        split: bool,
    ) -> Result<Merged, ShardError> {
        let refuse = |m: String| Err(ShardError::Partials(m));
        let Some(first) = partials.first() else {
            return refuse("no partial was given".into());
        };
        let n = first.shards;
        if n == 0 || n > MAX_SHARDS || partials.len() != n as usize {
            return refuse(format!(
                "{} partials were given for {} shards: every shard must give exactly one",
                partials.len(),
                n
            ));
        }
        let now = self.now();
        let skew = i64::try_from(self.policy().event_clock_skew_seconds()).unwrap_or(i64::MAX);
        let mut order: Vec<usize> = vec![usize::MAX; n as usize];
        let mut count = 0u64;
        let mut leaves = Vec::with_capacity(partials.len());
        for (i, p) in partials.iter().enumerate() {
            let who = format!("partial of shard {} of {}", p.shard, p.shards);
            if p.format != FORMAT {
                return refuse(format!("{who}: unknown format {}", p.format));
            }
            if p.shards != n || p.shard >= n {
                return refuse(format!("{who}: the shard counts differ ({n} expected)"));
            }
            if order[p.shard as usize] != usize::MAX {
                return refuse(format!("{who}: shard {} is given twice", p.shard));
            }
            order[p.shard as usize] = i;
            let refused = |m: String| ShardError::Partials(format!("{who}: {m}"));
            self.check_made_for(p, seg, first.reference, kind, recipient, fields)
                .map_err(refused)?;
            check_age(p, now, skew).map_err(refused)?;
            self.check_partial(p, &who, split)?;
            count = count
                .checked_add(p.count)
                .ok_or_else(|| ShardError::Partials("the counts overflow".into()))?;
            leaves.push((p.shard, audit_leaf(p).map_err(refused)?));
        }
        leaves.sort_by_key(|(s, _)| *s);
        let hashes: Vec<merkle::Hash> = leaves.into_iter().map(|(_, h)| h).collect();
        Ok(Merged {
            count,
            shards: u64::from(n),
            reference: first.reference,
            roots: hex(&merkle::root_of(&hashes)),
            order,
        })
    }

    /// Was the partial made for this release: this engine's policy, the
    /// segment, the reference time, the kind, the recipient and fields?
    fn check_made_for(
        &self,
        p: &Partial,
        seg: &CheckedSegment,
        reference: Timestamp,
        kind: PartialKind,
        recipient: Option<&str>,
        fields: &[&str],
    ) -> Result<(), String> {
        if p.policy_version != self.policy().version_hex() {
            return Err(format!(
                "made under policy {}, but this engine runs {}",
                p.policy_version,
                self.policy().version_hex()
            ));
        }
        if p.segment != seg.name() || p.purpose != seg.purpose_key() {
            return Err(format!(
                "made for segment {:?} ({}), not {:?} ({})",
                p.segment,
                p.purpose,
                seg.name(),
                seg.purpose_key()
            ));
        }
        if p.reference != reference {
            return Err(format!(
                "reference time {} differs from {reference}",
                p.reference
            ));
        }
        if p.kind != kind {
            return Err(format!(
                "made for a {} release, not a {} release",
                p.kind.as_str(),
                kind.as_str()
            ));
        }
        if p.recipient.as_deref() != recipient
            || p.fields.len() != fields.len()
            || p.fields.iter().zip(fields).any(|(a, b)| a != b)
        {
            return Err("made for another recipient or other fields".into());
        }
        Ok(())
    }

    /// A partial's own consistency: count, bitset, ids and rows agree, and
    /// every id belongs to the partial's shard.
    fn check_partial(&self, p: &Partial, who: &str, split: bool) -> Result<(), ShardError> {
        let bad = |m: String| Err(ShardError::Partials(format!("{who}: {m}")));
        match (split, &p.split_sha256) {
            (false, Some(_)) => {
                return bad(
                    "its ids were split off: release it with release_members_split or release_export_split"
                        .into(),
                );
            }
            (true, None) => return bad("its ids or rows were not split off".into()),
            (true, Some(_)) if !p.ids.is_empty() || !p.values.is_empty() => {
                return bad("a split partial still carries ids or rows".into());
            }
            _ => {}
        }
        match p.kind {
            PartialKind::Count => {
                if !p.bits.is_empty() || !p.ids.is_empty() || !p.values.is_empty() {
                    return bad("a count partial carries ids or rows".into());
                }
                if p.count > p.rows {
                    return bad("more members than rows".into());
                }
            }
            PartialKind::Members | PartialKind::Export => {
                if !split && p.ids.len() as u64 != p.count {
                    return bad(format!("{} ids for {} members", p.ids.len(), p.count));
                }
                // A split header's count is recorded before its ids or rows
                // come: at least bounded by the shard's rows.
                if p.count > p.rows {
                    return bad("more members than rows".into());
                }
                if p.kind == PartialKind::Members {
                    if p.bits.len() as u64 != p.rows.div_ceil(64) {
                        return bad("the bitset does not span the shard's rows".into());
                    }
                    let ones: u64 = p.bits.iter().map(|w| u64::from(w.count_ones())).sum();
                    let tail = p.rows % 64;
                    if ones != p.count
                        || (tail != 0 && p.bits.last().is_some_and(|w| w >> tail != 0))
                    {
                        return bad("the bitset does not match the member count".into());
                    }
                } else if p.values.len() != p.ids.len()
                    || p.values.iter().any(|v| v.len() != p.fields.len())
                {
                    return bad("the rows do not match the members and fields".into());
                }
                if p.ids.iter().any(|id| shard_of(id, p.shards) != p.shard) {
                    return bad("it holds a subject of another shard".into());
                }
            }
        }
        Ok(())
    }
}

/// Merged partials.
struct Merged {
    count: u64,
    shards: u64,
    reference: Timestamp,
    /// Merkle root (hex) of the shards' audit roots.
    roots: String,
    /// Index into the partials, by shard.
    order: Vec<usize>,
}

impl Merged {
    /// The shards merged, as an audit entry names them.
    fn sharded(&self) -> Sharded {
        Sharded {
            shards: self.shards,
            shard_roots: self.roots.clone(),
        }
    }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A partial is not from the future (beyond the clock skew) and not older
/// than [`PARTIAL_MAX_AGE_SECONDS`].
fn check_age(p: &Partial, now: Timestamp, skew: i64) -> Result<(), String> {
    if p.at.unix() > now.unix().saturating_add(skew) {
        return Err(format!("made at {}, later than now ({now})", p.at));
    }
    if now.unix().saturating_sub(p.at.unix()) > PARTIAL_MAX_AGE_SECONDS {
        return Err(format!(
            "made at {}, more than {PARTIAL_MAX_AGE_SECONDS} s before now ({now}): make it again",
            p.at
        ));
    }
    Ok(())
}

/// What a split release still expects: each shard's member count and the
/// SHA-256 of what its header says travels apart, and which shards came.
#[derive(Debug)]
struct SplitRelease {
    shards: u32,
    /// Each shard's member count and SHA-256 (hex), by shard.
    expected: Vec<(u64, String)>,
    released: Vec<bool>,
    total: u64,
}

impl SplitRelease {
    /// The expectations of the merged headers `m`.
    fn of(m: &Merged, headers: &[Partial]) -> SplitRelease {
        let mut expected = vec![(0, String::new()); m.order.len()];
        for &i in &m.order {
            let h = &headers[i];
            expected[h.shard as usize] = (h.count, h.split_sha256.clone().unwrap_or_default());
        }
        SplitRelease {
            shards: headers.first().map_or(0, |h| h.shards),
            expected,
            released: vec![false; m.order.len()],
            total: m.count,
        }
    }

    fn pending(&self) -> Vec<u32> {
        (0..self.shards)
            .filter(|&s| !self.released[s as usize])
            .collect()
    }

    /// [`SplitRelease::check`], then marks the shard released.
    fn take(
        &mut self,
        what: &str,
        shard: u32,
        ids: &[String],
        digest: [u8; 32],
    ) -> Result<(), ShardError> {
        self.check(what, shard, ids, digest)?;
        self.released[shard as usize] = true;
        Ok(())
    }

    /// Checks that shard `shard` has not come yet and that `ids` (with
    /// `digest` their SHA-256 with whatever travels with them) are exactly
    /// what its header was made with, all of this shard. `what` names what
    /// came, for the refusal.
    fn check(
        &self,
        what: &str,
        shard: u32,
        ids: &[String],
        digest: [u8; 32],
    ) -> Result<(), ShardError> {
        let refuse = |m: String| {
            Err(ShardError::Partials(format!(
                "{what} of shard {shard}: {m}"
            )))
        };
        let Some((count, expected)) = self.expected.get(shard as usize) else {
            return refuse(format!("there are {} shards", self.shards));
        };
        if self.released[shard as usize] {
            return refuse("already released".into());
        }
        if ids.len() as u64 != *count || hex(&digest) != *expected {
            return refuse(format!("they are not the {what} its header was made with"));
        }
        if ids.iter().any(|id| shard_of(id, self.shards) != shard) {
            return refuse("they hold a subject of another shard".into());
        }
        Ok(())
    }
}

/// A release of split members partials in progress (see
/// [`Engine::release_members_split`]): recorded already; each shard's ids
/// come out once, checked against its header.
#[derive(Debug)]
pub struct MembersRelease {
    split: SplitRelease,
}

impl MembersRelease {
    /// The number of members released over all shards.
    pub fn total(&self) -> u64 {
        self.split.total
    }

    /// Shards whose ids have not come out yet.
    pub fn pending(&self) -> Vec<u32> {
        self.split.pending()
    }

    /// Shard `shard`'s ids, released if they are exactly those its header
    /// was made with (count, SHA-256, every id of this shard), once.
    pub fn ids(&mut self, shard: u32, ids: Vec<String>) -> Result<Vec<String>, ShardError> {
        self.split.take("ids", shard, &ids, ids_digest(&ids))?;
        Ok(ids)
    }
}

/// The ids of an export partial's members and their exported values (one
/// row per member, one value per field, stale or missing ones `None`), as
/// [`Partial::split_rows`] splits them off. Raw ids: personal data that
/// stays inside the controller's cluster until [`ExportRelease::rows`]
/// pseudonymises them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRows {
    ids: Vec<String>,
    values: Vec<Vec<Option<Value>>>,
}

impl ExportRows {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("rows serialise")
    }
    /// Reads the JSON form (checked against its header at release).
    pub fn from_json(text: &str) -> Result<ExportRows, ShardError> {
        serde_json::from_str(text).map_err(|e| ShardError::Malformed(e.to_string()))
    }

    /// The SHA-256 of the rows: for each, the id, a zero byte, the values
    /// as JSON (which holds no zero byte) and a zero byte; the count of
    /// values first, so that rows and ids cannot be shifted against each
    /// other.
    fn digest(&self) -> [u8; 32] {
        let mut d = ring::digest::Context::new(&ring::digest::SHA256);
        d.update(&(self.values.len() as u64).to_be_bytes());
        for (i, id) in self.ids.iter().enumerate() {
            d.update(id.as_bytes());
            d.update(&[0]);
            let row = self.values.get(i).map(Vec::as_slice).unwrap_or_default();
            d.update(&serde_json::to_vec(row).expect("values serialise"));
            d.update(&[0]);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(d.finish().as_ref());
        out
    }
}

/// A release of split export partials in progress (see
/// [`Engine::release_export_split`]): recorded already; each shard's rows
/// come out once, checked against its header, pseudonymised here.
#[derive(Debug)]
pub struct ExportRelease {
    split: SplitRelease,
    pseudonymizer: Pseudonymizer,
    format: ExportFormat,
    fields: Vec<String>,
    /// Whether output was written (the CSV header goes out once, first).
    started: bool,
    summary: ExportSummary,
}

impl ExportRelease {
    /// What the whole export releases (recipient, rows over all shards,
    /// fields, key version), as [`Engine::release_export`] returns it.
    pub fn summary(&self) -> &ExportSummary {
        &self.summary
    }

    /// Shards whose rows have not come out yet.
    pub fn pending(&self) -> Vec<u32> {
        self.split.pending()
    }

    /// Writes shard `shard`'s rows to `out` in the export's format, ids
    /// pseudonymised, if they are exactly those its header was made with
    /// (count, SHA-256 of ids and values, every id of this shard, one value
    /// per field), once; returns the number of rows written. The first call
    /// that succeeds writes the CSV header line first, so the outputs of
    /// every call, concatenated, are one export. Nothing is written when
    /// the rows are refused.
    pub fn rows<W: Write>(
        &mut self,
        shard: u32,
        rows: &ExportRows,
        out: W,
    ) -> Result<u64, ShardError> {
        if rows.values.len() != rows.ids.len()
            || rows.values.iter().any(|v| v.len() != self.fields.len())
        {
            return Err(ShardError::Partials(format!(
                "rows of shard {shard}: they do not match the members and fields"
            )));
        }
        self.split.check("rows", shard, &rows.ids, rows.digest())?;
        let pseudonyms = rows
            .ids
            .iter()
            .map(|id| pseudonym(&self.pseudonymizer, id))
            .collect::<Result<Vec<String>, ShardError>>()?;
        // Marked before writing: rows that failed to write half-way are not
        // written again (the export is then incomplete, as a whole export
        // whose sink fails is).
        self.split.released[shard as usize] = true;
        let fields: Vec<&str> = self.fields.iter().map(String::as_str).collect();
        let mut writer = if self.started {
            ExportWriter::resume(self.format, &fields, out)
        } else {
            ExportWriter::start(self.format, &fields, out)?
        };
        self.started = true;
        for (ps, values) in pseudonyms.iter().zip(&rows.values) {
            writer.row(ps, values)?;
        }
        writer.finish()?;
        Ok(rows.ids.len() as u64)
    }
}

/// Writes members' rows, each id pseudonymised.
fn write_rows<W: Write>(
    writer: &mut ExportWriter<'_, W>,
    pseudonymizer: &Pseudonymizer,
    ids: &[String],
    values: &[Vec<Option<Value>>],
) -> Result<(), ShardError> {
    for (id, values) in ids.iter().zip(values) {
        writer.row(&pseudonym(pseudonymizer, id)?, values)?;
    }
    Ok(())
}

/// A subject id's pseudonym for the export's recipient.
fn pseudonym(pseudonymizer: &Pseudonymizer, id: &str) -> Result<String, ShardError> {
    Ok(pseudonymizer
        .pseudonymize(crate::privacy::normalize::IdKind::SubjectId, id)
        .map_err(EngineError::Pseudonym)?
        .to_string())
}

/// The SHA-256 of a list of ids, each followed by a zero byte (ids hold no
/// control characters).
fn ids_digest(ids: &[String]) -> [u8; 32] {
    let mut d = ring::digest::Context::new(&ring::digest::SHA256);
    for id in ids {
        d.update(id.as_bytes());
        d.update(&[0]);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(d.finish().as_ref());
    out
}

/// The Merkle leaf of a partial's audit root: shard, log size and root.
fn audit_leaf(p: &Partial) -> Result<merkle::Hash, String> {
    let root = unhex(&p.audit_root).ok_or_else(|| "unreadable audit root".to_string())?;
    let mut leaf = Vec::with_capacity(44);
    leaf.extend_from_slice(&p.shard.to_be_bytes());
    leaf.extend_from_slice(&p.audit_size.to_be_bytes());
    leaf.extend_from_slice(&root);
    Ok(merkle::leaf_hash(&leaf))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented hash, pinned: other languages compute the same shard.
    #[test]
    fn shard_of_is_the_documented_hash() {
        // SHA-256("c-1") starts with these 8 bytes.
        let d = ring::digest::digest(&ring::digest::SHA256, b"c-1");
        let v = u64::from_be_bytes(d.as_ref()[..8].try_into().unwrap());
        for n in 1..10 {
            assert_eq!(u64::from(shard_of("c-1", n)), v % u64::from(n));
        }
        assert_eq!(shard_of("anything", 1), 0);
        assert_eq!(shard_of("anything", 0), 0);
    }

    #[test]
    fn hex_round_trips() {
        let b = [7u8; 32];
        assert_eq!(unhex(&hex(&b)), Some(b));
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(&"é".repeat(32)), None);
    }
}
