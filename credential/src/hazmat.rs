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
