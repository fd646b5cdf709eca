//! A master key: 32 bytes from the OS, an environment variable, a key file or a passphrase.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::Path;

use aes_gcm::aead::KeyInit;
use aes_gcm::aes::Aes256;
use aes_gcm::aes::cipher::BlockCipherEncrypt;
use aes_gcm::{Aes256Gcm, Key};
use base64ct::Encoding;
use secrecy::SecretString;
use zeroize::Zeroizing;

use super::{KeyId, random, record_tag};
use crate::util::regular_file::{self, Links};
use crate::{Error, Result};

/// The length of a master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;

/// The block encrypted to derive a key's id. Not all zeros: `E_K(0)` is GCM's hash key and must
/// never be published.
const KEY_ID_BLOCK: [u8; 16] = *b"credential/keyid";

/// An AES-256 master key with its cipher ready. The key bytes are wiped on drop; `Debug` shows
/// only the id.
///
/// ```
/// use credential::crypto::MasterKey;
///
/// # fn main() -> credential::Result<()> {
/// let key = MasterKey::generate()?;
/// let text = key.to_base64();                       // store it somewhere safe
/// # use credential::ExposeSecret;
/// let again = MasterKey::from_text(text.expose_secret(), "backup")?;
/// assert_eq!(key.id(), again.id());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MasterKey {
    id: KeyId,
    bytes: Zeroizing<[u8; MASTER_KEY_LEN]>,
    pub(crate) cipher: Aes256Gcm,
    /// Makes and checks record tags, under a key derived from this one (see `record_tag`).
    pub(crate) tagger: Aes256Gcm,
}

impl MasterKey {
    /// A fresh random key from the operating system.
    ///
    /// # Errors
    /// [`Error::RandomUnavailable`] when the OS has no randomness to give.
    pub fn generate() -> Result<Self> {
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        random::fill_secret(bytes.as_mut_slice())?;
        Ok(Self::from_bytes(bytes))
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: Zeroizing<[u8; MASTER_KEY_LEN]>) -> Self {
        // A view of the wiped buffer, not a copy: no stray copy of the key is left on the stack.
        let key: &Key<Aes256Gcm> = (&*bytes).into();
        let mut block = KEY_ID_BLOCK.into();
        Aes256::new(key).encrypt_block(&mut block);
        let id = KeyId::from_check_block(&block);
        let cipher = Aes256Gcm::new(key);
        let tagger = record_tag::tag_cipher(&bytes);
        Self { id, bytes, cipher, tagger }
    }

    /// A key written as 64 hex characters or as base64 (standard or URL alphabet, padded or
    /// not), surrounding whitespace ignored. `origin` names where the text came from, for errors.
    ///
    /// # Errors
    /// [`Error::InvalidMasterKey`] when the text is neither, or does not decode to exactly 32
    /// bytes. The error never contains the text.
    pub fn from_text(text: &str, origin: &str) -> Result<Self> {
        let text = text.trim();
        let mut decoded = Zeroizing::new([0u8; 3 * MASTER_KEY_LEN]);
        let is_hex =
            text.len() == 2 * MASTER_KEY_LEN && text.bytes().all(|byte| byte.is_ascii_hexdigit());
        let len = if is_hex {
            base16ct::mixed::decode(text, decoded.as_mut_slice()).map(<[u8]>::len).ok()
        } else {
            decode_base64(text, decoded.as_mut_slice())
        }
        .ok_or_else(|| Error::InvalidMasterKey {
            origin: origin.to_owned(),
            reason: format!("expected {MASTER_KEY_LEN} bytes as 64 hex characters or base64"),
        })?;
        if len != MASTER_KEY_LEN {
            return Err(Error::InvalidMasterKey {
                origin: origin.to_owned(),
                reason: format!("decodes to {len} bytes, expected {MASTER_KEY_LEN}"),
            });
        }
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        bytes.copy_from_slice(&decoded[..MASTER_KEY_LEN]);
        Ok(Self::from_bytes(bytes))
    }

    /// The key in the environment variable `var` (hex or base64, see
    /// [`from_text`](Self::from_text)).
    ///
    /// # Errors
    /// [`Error::InvalidMasterKey`] when the variable is unset, not Unicode, or not a 32-byte key.
    pub fn from_env(var: &str) -> Result<Self> {
        let origin = format!("environment variable `{var}`");
        let value = std::env::var_os(var).ok_or_else(|| Error::InvalidMasterKey {
            origin: origin.clone(),
            reason: "is not set".to_owned(),
        })?;
        let value = Zeroizing::new(value.into_encoded_bytes());
        let text = std::str::from_utf8(&value).map_err(|_| Error::InvalidMasterKey {
            origin: origin.clone(),
            reason: "is not valid UTF-8".to_owned(),
        })?;
        Self::from_text(text, &origin)
    }

    /// The key in the file at `path`: 32 raw bytes, or hex or base64 text. Like ssh, a key file
    /// that its group or others may read is refused, and so is anything but a regular file (a
    /// FIFO or a device fails at once instead of blocking or streaming).
    ///
    /// # Errors
    /// [`Error::InsecurePermissions`] for a group- or world-accessible file, [`Error::Io`] when it
    /// cannot be read, [`Error::InvalidMasterKey`] when it holds no 32-byte key.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io_error = |source| Error::io(format!("reading key file `{}`", path.display()), source);
        let mut file = regular_file::open(path, OpenOptions::new().read(true), Links::Follow)
            .map_err(io_error)?;
        check_private(path, &file.metadata().map_err(io_error)?)?;
        let mut contents = Zeroizing::new(Vec::with_capacity(256));
        // Bounded read into a buffer that never grows: no partial copies left behind.
        let mut chunk = Zeroizing::new([0u8; 256]);
        loop {
            let read = file.read(chunk.as_mut_slice()).map_err(io_error)?;
            if read == 0 {
                break;
            }
            if contents.len() + read > contents.capacity() {
                return Err(Error::InvalidMasterKey {
                    origin: format!("key file `{}`", path.display()),
                    reason: "is larger than any key encoding".to_owned(),
                });
            }
            contents.extend_from_slice(&chunk[..read]);
        }
        let origin = format!("key file `{}`", path.display());
        if contents.len() == MASTER_KEY_LEN {
            let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
            bytes.copy_from_slice(&contents);
            return Ok(Self::from_bytes(bytes));
        }
        let text = std::str::from_utf8(&contents).map_err(|_| Error::InvalidMasterKey {
            origin: origin.clone(),
            reason: format!("is neither {MASTER_KEY_LEN} raw bytes nor hex or base64 text"),
        })?;
        Self::from_text(text, &origin)
    }

    /// Writes the key as base64 to a new file at `path`, created with mode 0600 (no window in
    /// which others could open it). Refuses to overwrite an existing file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file exists or cannot be written.
    pub fn write_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let io_error = |source| Error::io(format!("writing key file `{}`", path.display()), source);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io_error)?;
        let text = Zeroizing::new(base64ct::Base64::encode_string(self.bytes.as_slice()));
        file.write_all(text.as_bytes()).map_err(io_error)?;
        file.write_all(b"\n").map_err(io_error)?;
        file.sync_all().map_err(io_error)
    }

    /// The key as base64, for storing it where [`from_text`](Self::from_text),
    /// [`from_env`](Self::from_env) or [`from_file`](Self::from_file) can read it back.
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(base64ct::Base64::encode_string(self.bytes.as_slice()))
    }

    /// The key's id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Decodes base64 in any of its common alphabets and paddings; `None` when none fits.
fn decode_base64(text: &str, out: &mut [u8]) -> Option<usize> {
    type Decoder = fn(&str, &mut [u8]) -> std::result::Result<usize, base64ct::Error>;
    let decoders: [Decoder; 4] = [
        |text, out| base64ct::Base64::decode(text, out).map(|decoded| decoded.len()),
        |text, out| base64ct::Base64Unpadded::decode(text, out).map(|decoded| decoded.len()),
        |text, out| base64ct::Base64Url::decode(text, out).map(|decoded| decoded.len()),
        |text, out| base64ct::Base64UrlUnpadded::decode(text, out).map(|decoded| decoded.len()),
    ];
    decoders.iter().find_map(|decode| decode(text, out).ok())
}

#[cfg(unix)]
fn check_private(path: &Path, metadata: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::InsecurePermissions { path: path.to_owned(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path, _: &std::fs::Metadata) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let bytes = Zeroizing::new([9u8; MASTER_KEY_LEN]);
        let first = MasterKey::from_bytes(bytes.clone());
        let second = MasterKey::from_bytes(bytes);
        assert_eq!(first.id(), second.id());
        assert_eq!(first.id().as_str().len(), 16);
        assert_ne!(first.id(), MasterKey::generate().unwrap().id());
    }

    #[test]
    fn text_forms_all_decode_to_the_same_key() {
        let key = MasterKey::generate().unwrap();
        let base64 = key.to_base64();
        let hex = base16ct::lower::encode_string(key.bytes.as_slice());
        let unpadded = base64.expose_secret().trim_end_matches('=').to_owned();
        for text in
            [base64.expose_secret(), &hex, &hex.to_uppercase(), &unpadded, &format!("  {hex}\n")]
        {
            assert_eq!(MasterKey::from_text(text, "test").unwrap().id(), key.id());
        }
    }

    #[test]
    fn wrong_lengths_and_garbage_are_clear_errors_without_the_text() {
        let short = base64ct::Base64::encode_string(&[1u8; 16]);
        let error = MasterKey::from_text(&short, "test").unwrap_err().to_string();
        assert!(error.contains("decodes to 16 bytes, expected 32"), "{error}");
        assert!(!error.contains(&short));
        let error = MasterKey::from_text("not a key!", "test").unwrap_err().to_string();
        assert!(!error.contains("not a key"), "{error}");
    }

    #[test]
    fn debug_shows_only_the_id() {
        let key = MasterKey::from_bytes(Zeroizing::new([0x41; MASTER_KEY_LEN]));
        let shown = format!("{key:?}");
        assert!(shown.starts_with("MasterKey { id: KeyId("), "{shown}");
        assert!(!shown.contains("AAAA") && !shown.contains("65, 65"), "{shown}");
    }
}
