//! Fields that can carry `#[credential(expires_at)]`.

use chrono::{DateTime, Utc};

/// A field type that can say when a credential expires.
#[diagnostic::on_unimplemented(
    message = "`expires_at` cannot be read from `{Self}`",
    label = "not a date",
    note = "`#[credential(expires_at)]` goes on a `DateTime<Utc>` or `Option<DateTime<Utc>>` field"
)]
pub trait ExpiryField {
    /// The expiry instant, if any.
    fn expiry(&self) -> Option<DateTime<Utc>>;
}

impl ExpiryField for DateTime<Utc> {
    fn expiry(&self) -> Option<DateTime<Utc>> {
        Some(*self)
    }
}

impl ExpiryField for Option<DateTime<Utc>> {
    fn expiry(&self) -> Option<DateTime<Utc>> {
        *self
    }
}
