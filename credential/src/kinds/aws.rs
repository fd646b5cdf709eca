//! AWS access keys.

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate as credential;

/// An AWS access key pair, with a session token and expiry for temporary credentials.
///
/// The access key id is treated as a secret shown as its first four characters (`AKIA****` tells
/// long-term from `ASIA****` temporary keys without revealing the key).
///
/// ```
/// use credential::kinds::Aws;
/// use credential::Credential;
///
/// let aws = Aws {
///     access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
///     secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
///     session_token: None,
///     region: "eu-west-1".into(),
///     expires: None,
/// };
/// aws.validate()?;
/// assert!(aws.redacted().to_string().contains("access_key_id: AKIA****"));
/// # Ok::<(), credential::ValidationErrors>(())
/// ```
#[derive(credential::Credential)]
#[credential(kind = "aws", crate = "crate")]
pub struct Aws {
    /// The access key id (`AKIA…` or `ASIA…`).
    #[secret(reveal_first = 4)]
    #[credential(validate(length(min = 16, max = 128), pattern = "^[A-Z0-9]+$"))]
    pub access_key_id: SecretString,
    /// The secret access key.
    #[secret]
    #[credential(validate(non_empty))]
    pub secret_access_key: SecretString,
    /// The session token of temporary credentials.
    #[secret]
    #[credential(validate(non_empty))]
    pub session_token: Option<SecretString>,
    /// The region, such as `eu-west-1`.
    #[credential(validate(pattern = "^[a-z]{2}(-[a-z]+)+-[0-9]+$"))]
    pub region: String,
    /// When temporary credentials expire.
    #[credential(expires_at)]
    pub expires: Option<DateTime<Utc>>,
}
