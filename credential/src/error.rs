//! The crate's error type.

use std::sync::Arc;

use crate::ValidationErrors;
use crate::field::DecodeError;

/// Everything that can go wrong in `credential`. Variants carry ids, kinds and field names, never
/// a secret value.
///
/// Errors are cheap to clone (causes are shared), so one failed load can be handed to every caller
/// that waited for it. [`is_transient`](Self::is_transient) tells whether retrying the same call
/// later can help.
#[derive(Debug, Clone, thiserror::Error)]
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

    /// A storage backend failed. The cause is kept; its message never holds a credential value
    /// (stores only ever see sealed data).
    #[error("{backend} storage failed: {source}")]
    Storage {
        /// The backend.
        backend: &'static str,
        /// Whether the failure is temporary (a busy database, a dropped connection): the same call
        /// may succeed later.
        transient: bool,
        /// The backend's error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
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

    /// The principal may not do this, or the credential does not exist: deliberately the same
    /// answer, so a denial says nothing about what exists.
    #[error("access denied to credential `{id}`")]
    AccessDenied {
        /// The credential id asked for.
        id: String,
    },

    /// No credential has this id.
    #[error("credential `{id}` not found")]
    NotFound {
        /// The credential id.
        id: String,
    },

    /// The credential was revoked.
    #[error("credential `{id}` is revoked")]
    Revoked {
        /// The credential id.
        id: String,
    },

    /// The credential's expiry has passed.
    #[error("credential `{id}` has expired")]
    Expired {
        /// The credential id.
        id: String,
    },

    /// The credential is not served in its current state (a draft).
    #[error("credential `{id}` is not active (it is {state})")]
    NotActive {
        /// The credential id.
        id: String,
        /// Its state.
        state: crate::LifecycleState,
    },

    /// A loaded credential is not in the state asked for.
    #[error("credential `{id}` is {found}, not {expected}")]
    WrongState {
        /// The credential id.
        id: String,
        /// The state asked for.
        expected: crate::LifecycleState,
        /// The state it is in.
        found: crate::LifecycleState,
    },

    /// A version that does not exist, was destroyed, or is past its grace period.
    #[error("version {version} of credential `{id}` is not available")]
    VersionUnavailable {
        /// The credential id.
        id: String,
        /// The version asked for.
        version: u64,
    },

    /// The audit sink could not record an event; the operation did not happen.
    #[error("audit failed: {reason}")]
    Audit {
        /// What went wrong.
        reason: String,
        /// The failure underneath, when there is one.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },

    /// The audit sink's queue is full (or its writer is failing): the read was refused rather
    /// than left unaudited. Retrying later can help.
    #[error("audit sink is not keeping up; the operation was refused")]
    AuditBackpressure,

    /// The manager was shut down ([`Manager::shutdown`](crate::Manager::shutdown)): it serves
    /// and changes nothing more.
    #[error("the manager has been shut down")]
    ShutDown,

    /// The audit trail's hash chain is broken.
    #[error("audit trail tampered with{}: {reason}", line.map(|line| format!(" at line {line}")).unwrap_or_default())]
    AuditTampered {
        /// The first line that fails the check, when known.
        line: Option<u64>,
        /// What is wrong.
        reason: String,
    },

    /// The store's own files are damaged, or are not a store at all (a file that is not an
    /// SQLite database, say): restore them from a backup rather than create a new store over them.
    #[error("the {backend} store is damaged or is not a store: {reason}")]
    CorruptStore {
        /// Which backend.
        backend: &'static str,
        /// What is wrong.
        reason: &'static str,
    },

    /// An access policy's JSON form does not read.
    #[error("invalid access policy: {reason}")]
    InvalidPolicy {
        /// What is wrong, and where.
        reason: String,
    },

    /// A manager was built with missing or invalid settings.
    #[error("invalid configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: &'static str,
    },

    /// A connection URL that cannot be read as a credential. Never shows the URL, which may hold
    /// a password.
    #[error("invalid connection URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A certificate or private key that cannot be read.
    #[error("invalid certificate: {reason}")]
    InvalidCertificate {
        /// What is wrong.
        reason: &'static str,
    },

    /// A malformed template. Names the byte offset, never the template's text.
    #[error("malformed template at byte {position}: {reason}")]
    Template {
        /// Where the problem starts.
        position: usize,
        /// What is wrong.
        reason: &'static str,
    },

    /// A header for an HTTP request cannot be made: its name is not a header name, or the value
    /// its template resolved to is not a header value. Never holds the value.
    #[error("header `{name}`: {reason}")]
    InvalidHeader {
        /// The header's name, as given (cut to 64 characters).
        name: String,
        /// What is wrong.
        reason: &'static str,
    },

    /// A template names a field the credential does not have.
    #[error("credential `{id}` has no field `{field}`")]
    UnknownField {
        /// The credential id.
        id: String,
        /// The field named.
        field: String,
    },

    /// `{{id}}` names a credential without exactly one secret field.
    #[error(
        "credential `{id}` does not have exactly one secret field: name the field, as in `{{{{{id}.field}}}}`"
    )]
    AmbiguousField {
        /// The credential id.
        id: String,
    },

    /// A template names a field that holds no value (an optional field left empty). A template
    /// never puts text nobody asked for in place of a value, such as `none` or an empty string.
    #[error("field `{field}` of credential `{id}` has no value")]
    AbsentField {
        /// The credential id.
        id: String,
        /// The field named.
        field: String,
    },

    /// A template names a binary secret, which cannot be put in text.
    #[error("field `{field}` of credential `{id}` holds bytes, not text")]
    NotText {
        /// The credential id.
        id: String,
        /// The field named.
        field: String,
    },

    /// A field value given as text that its field does not accept. Names the field and what is
    /// wrong, never the value.
    #[error("field `{field}` of kind `{kind}` {reason}")]
    InvalidFieldValue {
        /// The credential kind.
        kind: String,
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },

    /// A stored kind the manager cannot decode without its type.
    #[error("credential kind `{kind}` is not registered with this manager")]
    UnknownKind {
        /// The stored kind.
        kind: String,
    },

    /// The provider refused to refresh the credential (OAuth 2.0 `invalid_grant`: the refresh
    /// token was revoked, expired or used twice). The credential is kept, marked; reads fail with
    /// this error until an operator rotates in a new one.
    #[error("credential `{id}` needs reauthentication: the provider refused to refresh it")]
    ReauthRequired {
        /// The credential id.
        id: String,
    },

    /// The credential needed a refresh and none succeeded in time. Never holds a token or a
    /// response body.
    #[error("refreshing credential `{id}` failed: {reason}")]
    RefreshFailed {
        /// The credential id.
        id: String,
        /// What went wrong (a status, an OAuth 2.0 error code, a transport failure).
        reason: String,
        /// Whether trying again later can help (the provider was unreachable, overloaded or its
        /// circuit breaker open).
        transient: bool,
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
        source: Arc<std::io::Error>,
    },
}

impl Error {
    /// An I/O failure while doing `context`.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { context: context.into(), source: Arc::new(source) }
    }

    /// An audit failure saying `reason`, for [`AuditSink`](crate::audit::AuditSink)
    /// implementations.
    ///
    /// ```
    /// let error = credential::Error::audit("the trail is read-only");
    /// assert_eq!(error.to_string(), "audit failed: the trail is read-only");
    /// ```
    pub fn audit(reason: impl Into<String>) -> Self {
        Self::Audit { reason: reason.into(), source: None }
    }

    /// An audit failure caused by `source`, which it keeps (its text is the reason).
    ///
    /// ```
    /// use std::error::Error as _;
    ///
    /// let error = credential::Error::audit_caused_by(std::io::Error::other("disk full"));
    /// assert_eq!(error.to_string(), "audit failed: disk full");
    /// assert!(error.source().is_some());
    /// ```
    pub fn audit_caused_by(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Audit { reason: source.to_string(), source: Some(Arc::new(source)) }
    }

    /// A failure of storage backend `backend`, keeping its cause; for [`Store`](crate::store::Store)
    /// implementations.
    ///
    /// ```
    /// let error = credential::Error::storage("custom", true, std::io::Error::other("busy"));
    /// assert!(error.is_transient());
    /// ```
    pub fn storage(
        backend: &'static str,
        transient: bool,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Storage { backend, transient, source: Arc::new(source) }
    }

    /// Whether the same call may succeed if it is simply retried later: a busy or unreachable
    /// store, an interrupted I/O operation, a full audit queue. Conflicts need a reload first and
    /// are not transient; neither is anything a retry would only repeat (a wrong key, a revoked
    /// credential, invalid input).
    pub fn is_transient(&self) -> bool {
        use std::io::ErrorKind;
        match self {
            Self::Storage { transient, .. } => *transient,
            Self::Io { source, .. } => matches!(
                source.kind(),
                ErrorKind::Interrupted
                    | ErrorKind::TimedOut
                    | ErrorKind::WouldBlock
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::ConnectionRefused
            ),
            Self::AuditBackpressure | Self::TaskFailed => true,
            Self::RefreshFailed { transient, .. } => *transient,
            _ => false,
        }
    }

    /// A short, stable name for the kind of error (`conflict`, `access_denied`, ...), as audit
    /// events record it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation",
            Self::KindMismatch { .. } => "kind_mismatch",
            Self::Decode { .. } => "decode",
            Self::Decrypt => "decrypt",
            Self::WrongMasterKey { .. } => "wrong_master_key",
            Self::InvalidMasterKey { .. } => "invalid_master_key",
            Self::InsecurePermissions { .. } => "insecure_permissions",
            Self::InvalidKeyId => "invalid_key_id",
            Self::UnknownKey { .. } => "unknown_key",
            Self::KeyInUse { .. } => "key_in_use",
            Self::InvalidKdf { .. } => "invalid_kdf",
            Self::RandomUnavailable => "random_unavailable",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Conflict { .. } => "conflict",
            Self::InvalidId { .. } => "invalid_id",
            Self::CorruptRecord { .. } => "corrupt_record",
            Self::UnsupportedSchema { .. } => "unsupported_schema",
            Self::ReadOnly { .. } => "read_only",
            Self::Storage { .. } => "storage",
            Self::MissingEnv { .. } => "missing_env",
            Self::InvalidEnv { .. } => "invalid_env",
            Self::AccessDenied { .. } => "access_denied",
            Self::NotFound { .. } => "not_found",
            Self::Revoked { .. } => "revoked",
            Self::Expired { .. } => "expired",
            Self::NotActive { .. } => "not_active",
            Self::WrongState { .. } => "wrong_state",
            Self::VersionUnavailable { .. } => "version_unavailable",
            Self::Audit { .. } => "audit",
            Self::AuditBackpressure => "audit_backpressure",
            Self::AuditTampered { .. } => "audit_tampered",
            Self::ShutDown => "shut_down",
            Self::InvalidPolicy { .. } => "invalid_policy",
            Self::CorruptStore { .. } => "corrupt_store",
            Self::Config { .. } => "config",
            Self::InvalidUrl { .. } => "invalid_url",
            Self::Template { .. } => "template",
            Self::InvalidHeader { .. } => "invalid_header",
            Self::InvalidCertificate { .. } => "invalid_certificate",
            Self::UnknownField { .. } => "unknown_field",
            Self::AmbiguousField { .. } => "ambiguous_field",
            Self::NotText { .. } => "not_text",
            Self::AbsentField { .. } => "absent_field",
            Self::UnknownKind { .. } => "unknown_kind",
            Self::InvalidFieldValue { .. } => "invalid_field_value",
            Self::ReauthRequired { .. } => "reauth_required",
            Self::RefreshFailed { .. } => "refresh_failed",
            Self::TaskFailed => "task_failed",
            Self::Io { .. } => "io",
        }
    }
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The future an `async_trait` method of ours returns, as `async_trait` writes it: what the
/// `Arc` forwarding impls of [`Store`](crate::store::Store) and
/// [`AuditSink`](crate::audit::AuditSink) hand back without boxing it again.
pub(crate) type ResultFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>>;
