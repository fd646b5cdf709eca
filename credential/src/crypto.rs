//! Encryption at rest: master keys, the key ring and passphrase key derivation. Sealing by hand
//! lives in [`hazmat`](crate::hazmat).
//!
//! # Design
//!
//! The key ring encrypts payloads directly (Vault-style): each master key holds a ready
//! AES-256-GCM cipher, a seal draws a random 96-bit nonce and writes the key id in the header, and
//! the associated data binds the credential id, record version, kind and key id. Master-key
//! rotation re-seals each payload under the new key.
//!
//! Per-record data keys wrapped by the master key were measured and rejected: opening one costs a
//! second AES-GCM operation and a fresh AES key schedule (about 140 ns here), which puts opening a
//! 256-byte credential at about twice a raw decryption. Credentials are small and read far more
//! often than keys rotate, and re-sealing 100,000 records in memory takes well under a second, so
//! the cheaper read path wins. Revocation destroys the sealed payloads themselves.
//!
//! # Nonces
//!
//! Random 96-bit nonces under one key stay safe while the number of seals stays far below 2^32
//! (NIST SP 800-38D): the chance of a repeat after `n` seals is about `n² / 2^97`. At 100 seals a
//! second that bound is 1,300 years away; rotate master keys long before. Nonces come from the
//! operating system's RNG through a per-thread pool that refills after `fork`, so a child process
//! never reuses its parent's nonces. The format is documented byte by byte in `FORMAT.md`.

pub(crate) mod envelope;
mod kdf;
mod key_id;
mod key_ring;
mod master_key;
mod random;
mod record_tag;

pub use kdf::{KdfParams, KdfSettings};
pub use key_id::KeyId;
pub use key_ring::KeyRing;
pub use master_key::{MASTER_KEY_LEN, MasterKey};

use std::path::Path;

use zeroize::Zeroizing;

use crate::util::regular_file::{self, Links};
use crate::{Error, Result};

/// The contents of a small file that keeps a key or what derives one (a passphrase key's
/// settings, say), at most `limit` bytes, in a buffer wiped when dropped. A link is followed;
/// anything but a regular file at the end of it (a FIFO, socket or device) is an error at once,
/// never a hang.
///
/// ```
/// # fn main() -> credential::Result<()> {
/// let path = std::env::temp_dir().join(format!("credential-doc-settings-{}", std::process::id()));
/// std::fs::write(&path, "argon2id m=19456 t=2 p=1").unwrap();
/// let text = credential::crypto::read_key_file(&path, 4096)?;
/// assert!(text.starts_with(b"argon2id"));
/// assert!(credential::crypto::read_key_file("/dev/zero", 4096).is_err());
/// # std::fs::remove_file(&path).unwrap();
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Io`] naming the path and what is wrong (not a regular file, larger than `limit`, or
/// the system's own error).
pub fn read_key_file(path: impl AsRef<Path>, limit: u64) -> Result<Zeroizing<Vec<u8>>> {
    let path = path.as_ref();
    regular_file::read(path, Links::Follow, limit)
        .map_err(|source| Error::io(format!("reading `{}`", path.display()), source))
}
