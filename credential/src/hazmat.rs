//! Sealing primitives that are easy to misuse: sealing and opening payloads outside a
//! [`Manager`](crate::Manager), which otherwise does it for you with the right context, access
//! checks and audit.
//!
//! The context binds a payload to one record, version and kind: seal with the context the payload
//! will be opened with, or opening fails. A payload sealed here and written to a store by hand
//! skips the manager's validation, audit and compare-and-swap.
//!
//! ```
//! use credential::KeyRing;
//! use credential::hazmat::{self, SealContext};
//!
//! # fn main() -> credential::Result<()> {
//! let ring = KeyRing::generate()?;
//! let context = SealContext::new("default/github/main", 1, "github");
//! let sealed = hazmat::seal(&ring, &context, b"encoded credential")?;
//! assert_eq!(hazmat::envelope_key_id(&sealed)?, *ring.current_id());
//! assert_eq!(&*hazmat::open(&ring, &context, &sealed)?, b"encoded credential");
//! # Ok(()) }
//! ```

use zeroize::Zeroizing;

pub use crate::crypto::envelope::{ENVELOPE_VERSION, SealContext, envelope_key_id};
use crate::{KeyRing, Result};

/// Seals `plaintext` under `ring`'s current key, bound to `context`.
///
/// # Errors
/// [`Error::RandomUnavailable`](crate::Error::RandomUnavailable) when no nonce can be drawn.
pub fn seal(ring: &KeyRing, context: &SealContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
    ring.seal(context, plaintext)
}

/// Opens what [`seal`] sealed with the same `context`.
///
/// # Errors
/// [`Error::Decrypt`](crate::Error::Decrypt), whatever the reason: malformed, altered, moved to
/// another context, or sealed under a key the ring does not hold.
pub fn open(
    ring: &KeyRing,
    context: &SealContext<'_>,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    ring.open(context, sealed)
}

/// Re-seals `sealed` under `ring`'s current key; `None` when it already is.
///
/// # Errors
/// As [`open`] and [`seal`].
pub fn reseal(ring: &KeyRing, context: &SealContext<'_>, sealed: &[u8]) -> Result<Option<Vec<u8>>> {
    ring.reseal(context, sealed)
}

/// A tag for `record` under the master key it names, as a manager makes one on every write: what
/// a tool that writes records without a manager (a migration, say) stores in `record.meta.tag`.
///
/// # Errors
/// [`Error::WrongMasterKey`](crate::Error::WrongMasterKey) when the ring lacks the key the record
/// names, [`Error::RandomUnavailable`](crate::Error::RandomUnavailable).
pub fn tag(ring: &KeyRing, record: &crate::store::Record) -> Result<Vec<u8>> {
    ring.tag(&record.meta.key_id, &record.covered_bytes())
}

/// Whether `record`'s tag matches what it says about how it is served, checked under `ring`:
/// `None` for a record written before records were tagged (it has none). A manager refuses a
/// record whose tag does not match; this lets an operator's tool find such records.
///
/// ```
/// use credential::KeyRing;
/// use credential::store::{Record, RecordMeta};
///
/// # fn main() -> credential::Result<()> {
/// let ring = KeyRing::generate()?;
/// let key_id = ring.current_id().to_string();
/// let meta = RecordMeta::new("default/github/main", "github", "default", &key_id, chrono::Utc::now());
/// let untagged = Record::new(meta, Vec::new());
/// assert_eq!(credential::hazmat::verify_tag(&ring, &untagged)?, None);
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::WrongMasterKey`](crate::Error::WrongMasterKey) when the ring lacks the key the record
/// names.
pub fn verify_tag(ring: &KeyRing, record: &crate::store::Record) -> Result<Option<bool>> {
    if record.meta.tag.is_empty() {
        return Ok(None);
    }
    ring.verify_tag(&record.meta.key_id, &record.covered_bytes(), &record.meta.tag).map(Some)
}
