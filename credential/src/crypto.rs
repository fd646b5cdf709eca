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

pub use kdf::{KdfParams, KdfSettings};
pub use key_id::KeyId;
pub use key_ring::KeyRing;
pub use master_key::{MASTER_KEY_LEN, MasterKey};
