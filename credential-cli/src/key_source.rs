//! Where the master key comes from: a key file, an environment variable, or a passphrase whose
//! salt and cost are kept beside the store.

use std::path::{Path, PathBuf};

use credential::crypto::{KdfParams, KdfSettings, MasterKey};
use credential::{KeyRing, SecretString};
use zeroize::Zeroizing;

use crate::exit::{Failure, Outcome, Status};
use crate::files::write_private;
use crate::prompt;

/// The master key's source, as the command line names it.
#[derive(Debug, Clone)]
pub(crate) enum KeySource {
    File(PathBuf),
    Env(String),
    /// A passphrase asked for at the terminal, or read from `from_file`; the KDF settings are in
    /// `kdf`.
    Passphrase {
        kdf: PathBuf,
        from_file: Option<PathBuf>,
    },
}

impl KeySource {
    /// The one source given: `--key-file`, `--key-env`, or the passphrase file that exists.
    pub(crate) fn choose(
        key_file: Option<&Path>,
        key_env: Option<&str>,
        kdf_file: Option<PathBuf>,
    ) -> Outcome<Self> {
        match (key_file, key_env, kdf_file) {
            (Some(path), _, _) => Ok(Self::File(path.to_owned())),
            (None, Some(var), _) => Ok(Self::Env(var.to_owned())),
            (None, None, Some(kdf)) if kdf.exists() => {
                Ok(Self::Passphrase { kdf, from_file: None })
            }
            _ => Err(Failure::usage(
                "no master key: give --key-file PATH or --key-env VAR, or create a passphrase \
                 key with `cred init --passphrase`",
            )),
        }
    }

    /// This source, with a passphrase read from `file` (if given) rather than asked for.
    pub(crate) fn with_passphrase_file(self, file: Option<PathBuf>) -> Self {
        match self {
            Self::Passphrase { kdf, .. } => Self::Passphrase { kdf, from_file: file },
            other => other,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Self::File(path) => format!("key file {}", path.display()),
            Self::Env(var) => format!("environment variable {var}"),
            Self::Passphrase { kdf, .. } => {
                format!("passphrase (salt and cost in {})", kdf.display())
            }
        }
    }

    /// The key ring holding the master key.
    pub(crate) async fn load(&self) -> Outcome<KeyRing> {
        match self {
            Self::File(path) => Ok(KeyRing::from_file(path)?),
            Self::Env(var) => Ok(KeyRing::from_env(var)?),
            Self::Passphrase { kdf, from_file } => {
                let stored = PassphraseKey::read(kdf)?;
                let passphrase = match from_file {
                    Some(file) => passphrase_from_file(file)?,
                    None => prompt::passphrase("Passphrase")?,
                };
                let ring = KeyRing::from_passphrase(passphrase, stored.settings).await?;
                if ring.current_id().as_str() != stored.key_id {
                    return Err(Failure::new(
                        Status::Integrity,
                        "wrong_passphrase",
                        "wrong passphrase: it derives another key than the one this store was set \
                         up with",
                    ));
                }
                Ok(ring)
            }
        }
    }
}

/// What a passphrase key keeps beside the store: the derivation's salt and cost, and the id of
/// the key the right passphrase derives (so a mistyped passphrase is caught before it seals
/// anything).
/// The largest passphrase key file read: two short lines.
const MAX_KDF_FILE_LEN: u64 = 4096;

struct PassphraseKey {
    settings: KdfSettings,
    key_id: String,
}

impl PassphraseKey {
    const KEY_ID: &'static str = "key-id ";

    fn read(path: &Path) -> Outcome<Self> {
        let bytes = credential::crypto::read_key_file(path, MAX_KDF_FILE_LEN)?;
        let unreadable = || {
            Failure::new(
                Status::Integrity,
                "invalid_kdf",
                format!("{} is not a passphrase key file", path.display()),
            )
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| unreadable())?;
        let mut lines = text.lines();
        let settings =
            lines.next().ok_or_else(unreadable)?.trim().parse().map_err(|_| unreadable())?;
        let key_id = lines
            .next()
            .and_then(|line| line.strip_prefix(Self::KEY_ID))
            .ok_or_else(unreadable)?
            .trim()
            .to_owned();
        Ok(Self { settings, key_id })
    }

    fn text(&self) -> String {
        format!("{}\n{}{}\n", self.settings, Self::KEY_ID, self.key_id)
    }
}

/// Creates the key file at `path` with a new random key, unless one is there already.
pub(crate) fn create_key_file(path: &Path) -> Outcome<bool> {
    if path.exists() {
        return Ok(false);
    }
    MasterKey::generate()?.write_file(path)?;
    Ok(true)
}

/// The largest passphrase file read.
const MAX_PASSPHRASE_FILE: u64 = 4096;

/// The passphrase in the first line of `path`, a file only its owner may read.
fn passphrase_from_file(path: &Path) -> Outcome<SecretString> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let file =
        std::fs::File::open(path).map_err(|error| Failure::io(path.display(), "open", &error))?;
    let metadata = file.metadata().map_err(|error| Failure::io(path.display(), "read", &error))?;
    if metadata.mode() & 0o077 != 0 {
        return Err(Failure::new(
            Status::Invalid,
            "insecure_permissions",
            format!("{} may be read by others: chmod 600 it", path.display()),
        ));
    }
    let mut text = Zeroizing::new(String::with_capacity(MAX_PASSPHRASE_FILE as usize));
    file.take(MAX_PASSPHRASE_FILE)
        .read_to_string(&mut text)
        .map_err(|error| Failure::io(path.display(), "read", &error))?;
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(Failure::usage(format!("{} holds no passphrase", path.display())));
    }
    Ok(SecretString::from(line))
}

/// Takes a new passphrase (from `from_file`, else asked twice at the terminal), writes fresh KDF
/// settings to `kdf_file` and derives the key.
pub(crate) async fn create_passphrase_key(
    kdf_file: &Path,
    from_file: Option<&Path>,
) -> Outcome<KeyRing> {
    if kdf_file.exists() {
        return Err(Failure::new(
            Status::Conflict,
            "exists",
            format!(
                "{} exists: this store has a passphrase key already (run commands without \
                 --passphrase to be asked for it)",
                kdf_file.display()
            ),
        ));
    }
    let passphrase = match from_file {
        Some(file) => passphrase_from_file(file)?,
        None => prompt::new_passphrase()?,
    };
    let settings = KdfSettings::generate(KdfParams::default())?;
    let ring = KeyRing::from_passphrase(passphrase, settings.clone()).await?;
    let stored = PassphraseKey { settings, key_id: ring.current_id().to_string() };
    write_private(kdf_file, stored.text().as_bytes())?;
    Ok(ring)
}
