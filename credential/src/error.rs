//! The crate's error type.

use crate::{DecodeError, ValidationErrors};

/// Everything that can go wrong in `credential`. Variants carry ids, kinds and field names, never
/// a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The credential breaks one or more validation rules.
    #[error("invalid credential: {0}")]
    Validation(#[from] ValidationErrors),

    /// Stored bytes or a record belong to another kind of credential than the one requested.
    #[error("expected a credential of kind `{expected}`, found kind `{found}`")]
    KindMismatch {
        /// The kind that was asked for.
        expected: String,
        /// The kind that was found.
        found: String,
    },

    /// Stored bytes are malformed or truncated.
    #[error("stored credential of kind `{kind}` cannot be decoded: {source}")]
    Decode {
        /// The kind that was being decoded.
        kind: String,
        /// What was wrong with the bytes.
        #[source]
        source: DecodeError,
    },

    /// Sealed data cannot be opened: it is malformed or altered, belongs to another credential,
    /// version or kind, or was sealed under a key the ring does not hold. Deliberately says no
    /// more.
    #[error("sealed data cannot be opened: wrong key, altered data, or another record's data")]
    Decrypt,

    /// The key ring does not hold the master key the data was sealed under.
    #[error(
        "wrong master key: the data is sealed under key `{key_id}`, which the key ring does not hold"
    )]
    WrongMasterKey {
        /// The id of the key the data needs.
        key_id: String,
    },

    /// A master key could not be read: unset, malformed or of the wrong length.
    #[error("master key from {origin} is unusable: {reason}")]
    InvalidMasterKey {
        /// Where the key came from (an environment variable or file), never the key.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A key file or store directory that its group or others may access.
    #[error("`{}` is accessible by group or others (mode {mode:03o}); run `chmod go-rwx` on it", path.display())]
    InsecurePermissions {
        /// The file or directory.
        path: std::path::PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// A key id that is not 1 to 64 characters of `a-z`, `0-9` and `-`.
    #[error("invalid key id: expected 1 to 64 characters of `a-z`, `0-9` and `-`")]
    InvalidKeyId,

    /// The key ring does not hold the key named.
    #[error("the key ring holds no key `{key_id}`")]
    UnknownKey {
        /// The key asked for.
        key_id: String,
    },

    /// The current key cannot be retired.
    #[error("key `{key_id}` is the current key: make another key current before retiring it")]
    KeyInUse {
        /// The current key.
        key_id: String,
    },

    /// Invalid passphrase-derivation settings or an empty passphrase.
    #[error("invalid key derivation: {reason}")]
    InvalidKdf {
        /// What is wrong.
        reason: String,
    },

    /// The operating system could not provide random bytes.
    #[error("the operating system's random number generator is unavailable")]
    RandomUnavailable,

    /// A payload too large to seal (AES-GCM's limit is 64 GiB).
    #[error("payload too large to seal")]
    PayloadTooLarge,

    /// A write lost a race: the record changed (or appeared, or vanished) since it was read.
    /// Nothing was written.
    #[error("conflict on credential `{id}`: it was changed concurrently; reload and retry")]
    Conflict {
        /// The credential id.
        id: String,
    },

    /// A credential id outside the allowlist.
    #[error("invalid credential id `{id}`: {reason}")]
    InvalidId {
        /// The id, escaped and truncated.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A stored record that cannot be read back.
    #[error("corrupt record: {reason}")]
    CorruptRecord {
        /// What is wrong, and where.
        reason: String,
    },

    /// A database written by a newer version of this crate.
    #[error(
        "the database has schema version {found}; this build supports up to {supported}: upgrade `credential`"
    )]
    UnsupportedSchema {
        /// The schema version found.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },

    /// A write to a read-only store.
    #[error("the {store} store is read-only")]
    ReadOnly {
        /// Which store.
        store: &'static str,
    },

    /// A storage backend failed.
    #[error("{backend} storage failed: {message}")]
    Storage {
        /// The backend.
        backend: &'static str,
        /// The backend's message.
        message: String,
    },

    /// An environment variable a mapping needs is not set.
    #[error("environment variable `{var}` is not set")]
    MissingEnv {
        /// The variable.
        var: String,
    },

    /// An environment variable holds something other than what the mapping expects.
    #[error("environment variable `{var}` is not {expected}")]
    InvalidEnv {
        /// The variable.
        var: String,
        /// What it should hold.
        expected: &'static str,
    },

    /// Background work was cancelled or panicked.
    #[error("a background task failed")]
    TaskFailed,

    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
