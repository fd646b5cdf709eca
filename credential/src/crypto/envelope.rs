//! The sealed envelope (format version 1; see `credential/FORMAT.md`).
//!
//! ```text
//! offset    size  field
//! 0         1     format version, 0x01
//! 1         1     key id length L (1..=64)
//! 2         L     key id, ASCII
//! 2+L       12    nonce, random
//! 14+L      N     ciphertext (AES-256-GCM, same length as the plaintext)
//! 14+L+N    16    authentication tag
//! ```
//!
//! The associated data binds the envelope to its place: the format version, the key id, the
//! credential id, the record version and the kind, each length-prefixed. A ciphertext copied to
//! another record, version or kind, or relabelled with another key id, fails to open.

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Nonce, Tag};
use zeroize::Zeroizing;

use super::{KeyId, MasterKey, random};
use crate::{Error, Result};

/// The envelope format version written by [`hazmat::seal`](crate::hazmat::seal).
pub const ENVELOPE_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const AAD_LABEL: &[u8] = b"credential/envelope/v1";

/// Where a sealed payload belongs. Bound into the ciphertext as associated data, so an envelope
/// opens only with the same id, version and kind it was sealed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealContext<'a> {
    /// The credential id.
    pub id: &'a str,
    /// The record version the payload belongs to.
    pub version: u64,
    /// The credential kind.
    pub kind: &'a str,
}

impl<'a> SealContext<'a> {
    /// The context of version `version` of credential `id` of kind `kind`.
    pub fn new(id: &'a str, version: u64, kind: &'a str) -> Self {
        Self { id, version, kind }
    }

    /// Calls `use_aad` with the associated data, built on the stack when it is small (it always is
    /// for ids and kinds of ordinary length) to keep an allocation off every seal and open.
    fn with_associated_data<T>(&self, key_id: &[u8], use_aad: impl FnOnce(&[u8]) -> T) -> T {
        const STACK_AAD: usize = 256;
        let parts = [key_id, self.id.as_bytes(), self.kind.as_bytes()];
        let len = AAD_LABEL.len() + parts.iter().map(|part| 4 + part.len()).sum::<usize>() + 8;
        let mut stack = [0u8; STACK_AAD];
        let mut heap = Vec::new();
        let aad = if len <= STACK_AAD {
            &mut stack[..len]
        } else {
            heap.resize(len, 0);
            heap.as_mut_slice()
        };
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            aad[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(AAD_LABEL);
        for part in parts {
            put(&(part.len() as u32).to_be_bytes());
            put(part);
        }
        put(&self.version.to_be_bytes());
        use_aad(aad)
    }
}

/// Seals `plaintext` under `key` for `context`.
pub(crate) fn seal(
    key: &MasterKey,
    context: &SealContext<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let key_id = key.id().as_str().as_bytes();
    let header_len = 2 + key_id.len() + NONCE_LEN;
    let mut envelope = Vec::with_capacity(header_len + plaintext.len() + TAG_LEN);
    envelope.push(ENVELOPE_VERSION);
    envelope.push(key_id.len() as u8);
    envelope.extend_from_slice(key_id);
    let mut nonce = [0u8; NONCE_LEN];
    random::fill_public(&mut nonce)?;
    envelope.extend_from_slice(&nonce);
    envelope.extend_from_slice(plaintext);
    let tag = context
        .with_associated_data(key_id, |aad| {
            key.cipher.encrypt_inout_detached(
                &Nonce::from(nonce),
                aad,
                (&mut envelope[header_len..]).into(),
            )
        })
        .map_err(|_| Error::PayloadTooLarge)?;
    envelope.extend_from_slice(&tag);
    Ok(envelope)
}

/// The parts of an envelope, borrowed.
pub(crate) struct Parsed<'a> {
    pub(crate) key_id: &'a str,
    nonce: [u8; NONCE_LEN],
    ciphertext: &'a [u8],
    tag: [u8; TAG_LEN],
}

/// Splits an envelope into its parts; `None` for anything malformed.
pub(crate) fn parse(envelope: &[u8]) -> Option<Parsed<'_>> {
    let (&version, rest) = envelope.split_first()?;
    if version != ENVELOPE_VERSION {
        return None;
    }
    let (&key_id_len, rest) = rest.split_first()?;
    let key_id_len = usize::from(key_id_len);
    if key_id_len == 0
        || key_id_len > KeyId::MAX_LEN
        || rest.len() < key_id_len + NONCE_LEN + TAG_LEN
    {
        return None;
    }
    let (key_id, rest) = rest.split_at(key_id_len);
    let key_id = std::str::from_utf8(key_id).ok()?;
    let (nonce, rest) = rest.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    Some(Parsed { key_id, nonce: nonce.try_into().ok()?, ciphertext, tag: tag.try_into().ok()? })
}

/// Opens a parsed envelope under `key`; `None` when it does not authenticate.
pub(crate) fn open(
    key: &MasterKey,
    context: &SealContext<'_>,
    parsed: &Parsed<'_>,
) -> Option<Zeroizing<Vec<u8>>> {
    let mut plaintext = Zeroizing::new(parsed.ciphertext.to_vec());
    context
        .with_associated_data(parsed.key_id.as_bytes(), |aad| {
            key.cipher.decrypt_inout_detached(
                &Nonce::from(parsed.nonce),
                aad,
                plaintext.as_mut_slice().into(),
                &Tag::from(parsed.tag),
            )
        })
        .ok()?;
    Some(plaintext)
}

/// The id of the master key an envelope says it was sealed under, read without opening it (the
/// claim is only trusted once the envelope opens). Lets a caller tell "this ring lacks the key"
/// apart from "this envelope was altered" before opening.
///
/// # Errors
/// [`Error::Decrypt`] for a malformed envelope.
pub fn envelope_key_id(envelope: &[u8]) -> Result<KeyId> {
    let parsed = parse(envelope).ok_or(Error::Decrypt)?;
    KeyId::parse(parsed.key_id).map_err(|_| Error::Decrypt)
}
