//! The keyed MAC chain over entries and the MACed head record of each run.
//!
//! Every key here is derived with HKDF-SHA-256 from the host's audit key
//! under its own label, so the chain key, the head key and the digest key
//! are independent of each other and of the pseudonym key (which is the
//! host's key itself, as before).

use ring::{hkdf, hmac};
use serde::{Deserialize, Serialize};

use super::merkle::Hash;
use super::{AuditEntry, AuditError};

/// Shortest audit key accepted, in bytes (the same rule as for
/// [`AuditPseudonymizer`](super::AuditPseudonymizer)).
pub(crate) const MIN_KEY_LEN: usize = 16;

const CHAIN_LABEL: &[u8] = b"privseg-audit-chain/v1";
const HEAD_LABEL: &[u8] = b"privseg-audit-head/v1";
pub(crate) const DIGEST_LABEL: &[u8] = b"privseg-audit-digest/v1";

/// Derives an HMAC-SHA-256 key from the host's audit key under `label`.
pub(crate) fn derive(key: &[u8], label: &[u8]) -> Result<hmac::Key, AuditError> {
    if key.len() < MIN_KEY_LEN {
        return Err(AuditError::InvalidKey(format!(
            "audit key must be at least {MIN_KEY_LEN} bytes, got {}",
            key.len()
        )));
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"privseg-audit").extract(key);
    let labels = [label];
    let okm = prk
        .expand(&labels, hmac::HMAC_SHA256)
        .map_err(|_| AuditError::InvalidKey("key derivation failed".to_owned()))?;
    Ok(hmac::Key::from(okm))
}

/// The keys of one log: entry chain and head record.
pub(crate) struct ChainKeys {
    chain: hmac::Key,
    head: hmac::Key,
}

impl std::fmt::Debug for ChainKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKeys { <redacted> }")
    }
}

impl ChainKeys {
    pub(crate) fn derive(key: &[u8]) -> Result<ChainKeys, AuditError> {
        Ok(ChainKeys {
            chain: derive(key, CHAIN_LABEL)?,
            head: derive(key, HEAD_LABEL)?,
        })
    }

    /// `HMAC(chain key, prev || canonical bytes of entry with a zero mac)`.
    /// The entry's own `seq` is in its bytes, so renumbering changes it.
    pub(crate) fn entry_mac(&self, prev: &Hash, entry: &AuditEntry) -> Result<Hash, AuditError> {
        let mut body = entry.clone();
        body.mac = [0u8; 32];
        let bytes = body.canonical_bytes()?;
        let mut ctx = hmac::Context::with_key(&self.chain);
        ctx.update(prev);
        ctx.update(&bytes);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        Ok(out)
    }

    /// For an entry whose `mac` is still zero: its chain MAC, and its
    /// canonical bytes with that MAC in place (one serialization: `mac` is
    /// the last field, 64 hex digits before the closing `"}`).
    pub(crate) fn seal_entry(
        &self,
        prev: &Hash,
        entry: &mut AuditEntry,
    ) -> Result<Vec<u8>, AuditError> {
        entry.mac = [0u8; 32];
        let mut bytes = entry.canonical_bytes()?;
        let mut ctx = hmac::Context::with_key(&self.chain);
        ctx.update(prev);
        ctx.update(&bytes);
        entry.mac.copy_from_slice(ctx.sign().as_ref());
        let end = bytes.len() - 2;
        bytes[end - 64..end].copy_from_slice(super::hex::encode(&entry.mac).as_bytes());
        debug_assert_eq!(bytes, entry.canonical_bytes().unwrap_or_default());
        Ok(bytes)
    }

    fn head_mac(&self, h: &HeadBody) -> Hash {
        let msg = format!(
            "privseg-audit-head/v1\n{}\n{}\n{}\n{}\n",
            h.entries,
            super::hex::encode(&h.chain),
            if h.sealed { "sealed" } else { "open" },
            h.run
        );
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.head, msg.as_bytes()).as_ref());
        out
    }

    pub(crate) fn make_head(&self, entries: u64, chain: Hash, sealed: bool, run: u64) -> Vec<u8> {
        let body = HeadBody {
            entries,
            chain,
            sealed,
            run,
        };
        let mac = self.head_mac(&body);
        let rec = HeadRecord { body, mac };
        let mut v = serde_json::to_vec(&rec).expect("a head record always serializes");
        v.push(b'\n');
        v
    }

    /// Decodes a head record and checks its MAC.
    pub(crate) fn check_head(&self, bytes: &[u8]) -> Result<HeadBody, String> {
        let rec: HeadRecord = serde_json::from_slice(bytes.trim_ascii_end())
            .map_err(|e| format!("head record cannot be decoded: {e}"))?;
        let want = self.head_mac(&rec.body);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&want[..], &rec.mac[..])) {
            return Err("head record MAC does not verify (forged, damaged or another key)".into());
        }
        Ok(rec.body)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeadBody {
    pub(crate) entries: u64,
    #[serde(with = "super::hex::serde_hash")]
    pub(crate) chain: Hash,
    pub(crate) sealed: bool,
    pub(crate) run: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadRecord {
    #[serde(flatten)]
    body: HeadBody,
    #[serde(with = "super::hex::serde_hash")]
    mac: Hash,
}

/// What [`AuditLog::open`](super::AuditLog::open) found about the previous
/// run, from the head record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunState {
    /// No entry and no head record: a new log.
    Fresh,
    /// The last run that appended sealed the log with a head record
    /// covering every entry.
    Sealed {
        /// Entries covered by the head.
        entries: u64,
    },
    /// The last run that appended did not end with a sealed head: the
    /// process stopped (crash, kill, power loss) while the log was open.
    /// Entries `sealed_entries..` were appended by that run; their chain
    /// MACs verify, but if some of that run's last entries are missing
    /// (lost in the crash, or removed by someone with file access) this
    /// cannot be told. Entries before `sealed_entries` are fully protected.
    Unsealed {
        /// Entries covered by the last head record (the run's start).
        sealed_entries: u64,
        /// Entries found after them.
        unsealed_entries: u64,
    },
}

/// The result of checking a run of entries against chain and head.
pub(crate) struct ChainCheck {
    pub(crate) last_mac: Hash,
    pub(crate) run: u64,
    pub(crate) state: RunState,
}

/// Checks sequence numbers and chain MACs of `entries`, then the head.
/// On success gives the last MAC and what the head says about the last run.
pub(crate) fn check(
    keys: &ChainKeys,
    entries: impl IntoIterator<Item = Result<AuditEntry, AuditError>>,
    head: Option<&[u8]>,
    visit: impl FnMut(&AuditEntry) -> Result<(), AuditError>,
) -> Result<ChainCheck, AuditError> {
    let head = head
        .map(|h| keys.check_head(h))
        .transpose()
        .map_err(|reason| AuditError::Tampered { index: 0, reason })?;
    let walked = walk(keys, entries, head.as_ref().map(|h| h.entries), visit)?;
    match head {
        None => without_head(walked),
        Some(h) => against_head(&h, walked),
    }
}

/// What walking the chain found.
struct Walked {
    /// The MAC of the last entry (zeros for an empty log).
    last_mac: Hash,
    /// Number of entries.
    entries: u64,
    /// The chain MAC after the first `head_entries` entries, if the log
    /// holds that many.
    at_head: Option<Hash>,
}

/// Checks each entry's sequence number and chain MAC, in order, and hands it
/// to `visit`; notes the chain MAC after `head_entries` entries.
fn walk(
    keys: &ChainKeys,
    entries: impl IntoIterator<Item = Result<AuditEntry, AuditError>>,
    head_entries: Option<u64>,
    mut visit: impl FnMut(&AuditEntry) -> Result<(), AuditError>,
) -> Result<Walked, AuditError> {
    let mut prev = [0u8; 32];
    let mut at_head = (head_entries == Some(0)).then_some(prev);
    let mut n = 0u64;
    for entry in entries {
        let entry = entry?;
        if entry.seq != n {
            return Err(AuditError::Inconsistent {
                index: n,
                reason: format!("expected sequence number {n}, found {}", entry.seq),
            });
        }
        let mac = keys.entry_mac(&prev, &entry)?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&mac[..], &entry.mac[..])) {
            return Err(AuditError::Tampered {
                index: n,
                reason: "entry MAC does not verify: the entry, an earlier one or their order \
                         was changed, or the log was written under another key"
                    .to_owned(),
            });
        }
        visit(&entry)?;
        prev = mac;
        n += 1;
        if head_entries == Some(n) {
            at_head = Some(prev);
        }
    }
    Ok(Walked {
        last_mac: prev,
        entries: n,
        at_head,
    })
}

/// A log without a head record is fine only if it is empty (a new log).
fn without_head(w: Walked) -> Result<ChainCheck, AuditError> {
    let n = w.entries;
    if n == 0 {
        return Ok(ChainCheck {
            last_mac: w.last_mac,
            run: 0,
            state: RunState::Fresh,
        });
    }
    Err(AuditError::Tampered {
        index: n,
        reason: format!("the log holds {n} entries but its head record is missing"),
    })
}

/// Checks the walked chain against the head record: the head's entry is in
/// the log with the MAC it names, and nothing follows a sealed head.
fn against_head(h: &HeadBody, w: Walked) -> Result<ChainCheck, AuditError> {
    let n = w.entries;
    if h.entries > n {
        return Err(AuditError::Tampered {
            index: n,
            reason: format!(
                "the log ends after {n} entries but its head record covers {}: entries were removed",
                h.entries
            ),
        });
    }
    if w.at_head != Some(h.chain) {
        return Err(AuditError::Tampered {
            index: h.entries.saturating_sub(1),
            reason: "the entry the head record names is not the one in the log: the log was \
                     replaced or rewritten"
                .to_owned(),
        });
    }
    let state = if h.sealed {
        if n > h.entries {
            return Err(AuditError::Tampered {
                index: h.entries,
                reason: format!(
                    "{} entries follow a sealed head record without a run having been opened",
                    n - h.entries
                ),
            });
        }
        RunState::Sealed { entries: n }
    } else {
        RunState::Unsealed {
            sealed_entries: h.entries,
            unsealed_entries: n - h.entries,
        }
    };
    Ok(ChainCheck {
        last_mac: w.last_mac,
        run: h.run,
        state,
    })
}
