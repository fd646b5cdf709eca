//! The key ring: several master keys, one current for new seals, the others open-only.

use std::path::Path;

use secrecy::SecretString;
use zeroize::Zeroizing;

use super::envelope::{self, SealContext};
use super::{KdfSettings, KeyId, MasterKey, record_tag};
use crate::{Error, Result};

/// Master keys by id. New seals use the current key; envelopes sealed under any key in the ring
/// open. Rotation: [`add`](Self::add) a new key, [`make_current`](Self::make_current), re-seal
/// every record with [`Manager::rekey`](crate::Manager::rekey), then [`retire`](Self::retire) the
/// old key. Sealing by hand is in [`hazmat`](crate::hazmat).
///
/// ```
/// use credential::hazmat::{self, SealContext};
/// use credential::crypto::MasterKey;
/// use credential::KeyRing;
///
/// # fn main() -> credential::Result<()> {
/// let mut ring = KeyRing::generate()?;
/// let context = SealContext::new("github/main", 1, "github");
/// let sealed = hazmat::seal(&ring, &context, b"encoded credential")?;
///
/// let old = ring.current_id().clone();
/// let new = ring.add(MasterKey::generate()?);
/// ring.make_current(&new)?;
/// let resealed = hazmat::reseal(&ring, &context, &sealed)?.expect("sealed under the old key");
/// ring.retire(&old)?;
/// assert_eq!(&*hazmat::open(&ring, &context, &resealed)?, b"encoded credential");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct KeyRing {
    /// Few keys (usually one or two): a scan beats a map.
    keys: Vec<MasterKey>,
    current: usize,
}

impl KeyRing {
    /// A ring holding `key`, current.
    pub fn new(key: MasterKey) -> Self {
        Self { keys: vec![key], current: 0 }
    }

    /// A ring with one fresh random key. Save it with [`MasterKey::to_base64`] or
    /// [`MasterKey::write_file`] (via [`current_key`](Self::current_key)), or the data sealed
    /// under it is lost with the process.
    ///
    /// # Errors
    /// [`Error::RandomUnavailable`].
    pub fn generate() -> Result<Self> {
        MasterKey::generate().map(Self::new)
    }

    /// A ring with the key in environment variable `var`; see [`MasterKey::from_env`].
    ///
    /// # Errors
    /// [`Error::InvalidMasterKey`].
    pub fn from_env(var: &str) -> Result<Self> {
        MasterKey::from_env(var).map(Self::new)
    }

    /// A ring with the key in a private key file; see [`MasterKey::from_file`].
    ///
    /// # Errors
    /// [`Error::InsecurePermissions`], [`Error::Io`], [`Error::InvalidMasterKey`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        MasterKey::from_file(path).map(Self::new)
    }

    /// A ring with the key derived from `passphrase` by Argon2id with `kdf`'s salt and
    /// parameters. The derivation (tens of milliseconds by design) runs on the blocking thread
    /// pool when called inside a Tokio runtime, never on an async worker thread.
    ///
    /// # Errors
    /// [`Error::InvalidKdf`] for an empty passphrase.
    pub async fn from_passphrase(passphrase: SecretString, kdf: KdfSettings) -> Result<Self> {
        let derive = move || kdf.derive_key(&passphrase);
        let key = match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::spawn_blocking(derive).await.map_err(|_| Error::TaskFailed)??,
            Err(_) => derive()?,
        };
        Ok(Self::new(key))
    }

    /// Adds `key` as open-only and returns its id. Adding a key the ring holds changes nothing.
    pub fn add(&mut self, key: MasterKey) -> KeyId {
        let id = key.id().clone();
        if self.position(&id).is_none() {
            self.keys.push(key);
        }
        id
    }

    /// Makes the key `id` the one new seals use.
    ///
    /// # Errors
    /// [`Error::UnknownKey`] when the ring does not hold it.
    pub fn make_current(&mut self, id: &KeyId) -> Result<()> {
        self.current =
            self.position(id).ok_or_else(|| Error::UnknownKey { key_id: id.to_string() })?;
        Ok(())
    }

    /// Removes the key `id`: envelopes sealed under it no longer open. Retire a key only after
    /// every record was re-sealed under another.
    ///
    /// # Errors
    /// [`Error::UnknownKey`], or [`Error::KeyInUse`] for the current key.
    pub fn retire(&mut self, id: &KeyId) -> Result<()> {
        let position =
            self.position(id).ok_or_else(|| Error::UnknownKey { key_id: id.to_string() })?;
        if position == self.current {
            return Err(Error::KeyInUse { key_id: id.to_string() });
        }
        self.keys.remove(position);
        if position < self.current {
            self.current -= 1;
        }
        Ok(())
    }

    /// The id of the key new seals use.
    pub fn current_id(&self) -> &KeyId {
        self.current_key().id()
    }

    /// The key new seals use.
    pub fn current_key(&self) -> &MasterKey {
        &self.keys[self.current]
    }

    /// Whether the ring holds the key `id`.
    pub fn holds(&self, id: &KeyId) -> bool {
        self.position(id).is_some()
    }

    /// The ids of every key in the ring.
    pub fn ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.iter().map(MasterKey::id)
    }

    /// Checks that the ring holds `expected`, the key id recorded beside the data: one clear
    /// error for a wrong master key instead of a decryption failure per record.
    ///
    /// # Errors
    /// [`Error::WrongMasterKey`].
    pub fn check(&self, expected: &KeyId) -> Result<()> {
        if self.holds(expected) {
            Ok(())
        } else {
            Err(Error::WrongMasterKey { key_id: expected.to_string() })
        }
    }

    /// Seals `plaintext` under the current key, bound to `context`.
    ///
    /// # Errors
    /// [`Error::RandomUnavailable`] when no nonce can be drawn.
    pub(crate) fn seal(&self, context: &SealContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
        envelope::seal(self.current_key(), context, plaintext)
    }

    /// Opens an envelope sealed under any key of the ring for the same `context`.
    ///
    /// # Errors
    /// [`Error::Decrypt`], whatever the reason: malformed, altered, moved to another context, or
    /// sealed under a key the ring does not hold.
    pub(crate) fn open(
        &self,
        context: &SealContext<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let parsed = envelope::parse(sealed).ok_or(Error::Decrypt)?;
        let key = self
            .keys
            .iter()
            .find(|key| key.id().as_str() == parsed.key_id)
            .ok_or(Error::Decrypt)?;
        envelope::open(key, context, &parsed).ok_or(Error::Decrypt)
    }

    /// A tag authenticating `covered` (what a record says about how it is served) under the key
    /// `key_id` names, which the record is sealed under.
    ///
    /// # Errors
    /// [`Error::WrongMasterKey`] when the ring lacks that key, [`Error::RandomUnavailable`].
    pub(crate) fn tag(&self, key_id: &str, covered: &[u8]) -> Result<Vec<u8>> {
        let key = self.key_named(key_id)?;
        record_tag::tag(&key.tagger, covered)
    }

    /// Whether `tag` authenticates `covered` under the key `key_id` names.
    ///
    /// # Errors
    /// [`Error::WrongMasterKey`] when the ring lacks that key.
    pub(crate) fn verify_tag(&self, key_id: &str, covered: &[u8], tag: &[u8]) -> Result<bool> {
        let key = self.key_named(key_id)?;
        Ok(record_tag::verify(&key.tagger, covered, tag))
    }

    fn key_named(&self, key_id: &str) -> Result<&MasterKey> {
        self.keys
            .iter()
            .find(|key| key.id().as_str() == key_id)
            .ok_or_else(|| Error::WrongMasterKey { key_id: key_id.to_owned() })
    }

    /// Re-seals an envelope under the current key: `Ok(None)` when it already is. Idempotent, so
    /// an interrupted rotation can simply run again.
    ///
    /// # Errors
    /// As [`open`](Self::open) and [`seal`](Self::seal).
    pub(crate) fn reseal(
        &self,
        context: &SealContext<'_>,
        sealed: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        let parsed = envelope::parse(sealed).ok_or(Error::Decrypt)?;
        if parsed.key_id == self.current_id().as_str() {
            return Ok(None);
        }
        let plaintext = self.open(context, sealed)?;
        self.seal(context, &plaintext).map(Some)
    }

    fn position(&self, id: &KeyId) -> Option<usize> {
        self.keys.iter().position(|key| key.id() == id)
    }
}
