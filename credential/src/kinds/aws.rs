//! AWS access keys.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate as credential;
use crate::rules::RuleError;

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
    #[credential(validate(length(min = 16, max = 128), custom = upper_case_and_digits))]
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
    #[credential(validate(custom = region_name))]
    pub region: String,
    /// When temporary credentials expire.
    #[credential(expires_at)]
    pub expires: Option<DateTime<Utc>>,
}

/// Access key ids are upper-case letters and digits.
fn upper_case_and_digits(id: &SecretString) -> Result<(), RuleError> {
    let id = id.expose_secret();
    if id.bytes().all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit()) {
        Ok(())
    } else {
        Err(RuleError::new("must be upper-case letters and digits"))
    }
}

/// A region name: two letters, one or more words, a number (`eu-west-1`, `us-gov-east-1`), all
/// lower case.
fn region_name(region: &str) -> Result<(), RuleError> {
    let parts: Vec<&str> = region.split('-').collect();
    let letters = |part: &&str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase());
    let shaped = parts.len() >= 3
        && parts[0].len() == 2
        && letters(&parts[0])
        && parts[1..parts.len() - 1].iter().all(letters)
        && parts.last().is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if shaped { Ok(()) } else { Err(RuleError::new("must be a region name such as `eu-west-1`")) }
}
