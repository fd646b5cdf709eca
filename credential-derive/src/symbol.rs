//! Every attribute name the derive understands, in one place.

/// `#[credential(...)]`, on the struct and on fields.
pub(crate) const CREDENTIAL: &str = "credential";
/// `#[secret]` / `#[secret(reveal_first = N, reveal_last = N)]` on a field.
pub(crate) const SECRET: &str = "secret";

// Container keys.
pub(crate) const KIND: &str = "kind";
pub(crate) const CRATE: &str = "crate";
pub(crate) const VALIDATE: &str = "validate";

// Field keys.
pub(crate) const RENAME: &str = "rename";
pub(crate) const DEFAULT: &str = "default";
pub(crate) const EXPIRES_AT: &str = "expires_at";
pub(crate) const REVEAL_FIRST: &str = "reveal_first";
pub(crate) const REVEAL_LAST: &str = "reveal_last";

// Rules inside `validate(...)`.
pub(crate) const NON_EMPTY: &str = "non_empty";
pub(crate) const LENGTH: &str = "length";
pub(crate) const RANGE: &str = "range";
pub(crate) const URL: &str = "url";
pub(crate) const PATTERN: &str = "pattern";
pub(crate) const CUSTOM: &str = "custom";
pub(crate) const MIN: &str = "min";
pub(crate) const MAX: &str = "max";
