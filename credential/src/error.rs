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
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
