//! Tags that authenticate what a stored record says about how it is served (its state, its
//! versions' numbers and states, expiry, refresh marks, key id, kind, environment and id),
//! so that someone who can write the store but lacks the master key cannot change what is
//! served: swap the current and a deprecated version, say.
//!
//! A tag is GMAC: AES-256-GCM over an empty message with the covered bytes as associated data,
//! under a key of its own derived from the master key (SHA-256 of a label and the master key),
//! with a random 96-bit nonce. Byte form: version (1), nonce (12), GCM tag (16). The nonce bound
//! is the envelopes' (see `crypto`): rotate master keys far below 2^32 writes per key.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::random;
use crate::{Error, Result};

/// The first byte of every tag.
const TAG_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;
/// The length of a tag.
pub(crate) const TAG_LEN: usize = 1 + NONCE_LEN + GCM_TAG_LEN;
/// What the tag key is derived under, so it is never the sealing key.
const DERIVATION_LABEL: &[u8] = b"credential/record-tag/v1";

/// The cipher a master key's tags are made with.
pub(crate) fn tag_cipher(master: &[u8; 32]) -> Aes256Gcm {
    // Written straight into the wiped buffer: no copy of the derived key is left behind.
    let mut derived = Zeroizing::new([0u8; 32]);
    Sha256::new()
        .chain_update(DERIVATION_LABEL)
        .chain_update(master)
        .finalize_into((&mut *derived).into());
    let key: &Key<Aes256Gcm> = (&*derived).into();
    Aes256Gcm::new(key)
}

/// A tag over `covered`.
///
/// # Errors
/// [`Error::RandomUnavailable`] when no nonce can be drawn.
pub(crate) fn tag(cipher: &Aes256Gcm, covered: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    random::fill_public(&mut nonce)?;
    let gcm = cipher
        .encrypt_inout_detached(&Nonce::from(nonce), covered, (&mut [][..]).into())
        .map_err(|_| Error::PayloadTooLarge)?;
    let mut tag = Vec::with_capacity(TAG_LEN);
    tag.push(TAG_VERSION);
    tag.extend_from_slice(&nonce);
    tag.extend_from_slice(&gcm);
    Ok(tag)
}

/// Whether `tag` authenticates `covered`.
pub(crate) fn verify(cipher: &Aes256Gcm, covered: &[u8], tag: &[u8]) -> bool {
    let Some((&TAG_VERSION, rest)) = tag.split_first() else {
        return false;
    };
    if rest.len() != NONCE_LEN + GCM_TAG_LEN {
        return false;
    }
    let (nonce, gcm) = rest.split_at(NONCE_LEN);
    let (Ok(nonce), Ok(gcm)) =
        (<[u8; NONCE_LEN]>::try_from(nonce), <[u8; GCM_TAG_LEN]>::try_from(gcm))
    else {
        return false;
    };
    cipher
        .decrypt_inout_detached(&Nonce::from(nonce), covered, (&mut [][..]).into(), &Tag::from(gcm))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_authenticates_exactly_what_it_covers_under_its_own_key() {
        let cipher = tag_cipher(&[7; 32]);
        let tag = tag(&cipher, b"state=active").unwrap();
        assert_eq!(tag.len(), TAG_LEN);
        assert!(verify(&cipher, b"state=active", &tag));
        assert!(!verify(&cipher, b"state=revoked", &tag));
        assert!(!verify(&tag_cipher(&[8; 32]), b"state=active", &tag));
        for at in 0..tag.len() {
            let mut flipped = tag.clone();
            flipped[at] ^= 1;
            assert!(!verify(&cipher, b"state=active", &flipped), "byte {at}");
        }
        assert!(!verify(&cipher, b"state=active", &tag[..TAG_LEN - 1]));
        assert!(!verify(&cipher, b"state=active", &[]));
        // Random nonces: two tags of the same bytes differ, both verify.
        let again = super::tag(&cipher, b"state=active").unwrap();
        assert_ne!(tag, again);
        assert!(verify(&cipher, b"state=active", &again));
    }
}
