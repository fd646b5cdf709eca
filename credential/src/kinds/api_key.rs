//! An API key, optionally with the header it is sent in.

use secrecy::SecretString;

use crate as credential;

/// An API key, and the header it goes in when the service names one (`X-API-Key`, say).
///
/// ```
/// use credential::kinds::ApiKey;
/// use credential::Credential;
///
/// let key = ApiKey { key: "sk_live_0123456789abcdef".into(), header: Some("X-API-Key".into()) };
/// key.validate()?;
/// assert_eq!(key.redacted().to_string(), "api_key { key: ****cdef, header: X-API-Key }");
/// # Ok::<(), credential::ValidationErrors>(())
/// ```
#[derive(credential::Credential)]
#[credential(kind = "api_key", crate = "crate")]
pub struct ApiKey {
    /// The key.
    #[secret(reveal_last = 4)]
    #[credential(validate(non_empty))]
    pub key: SecretString,
    /// The header name the key is sent in, if the service prescribes one.
    #[credential(validate(non_empty, pattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"))]
    pub header: Option<String>,
}

impl ApiKey {
    /// A key sent without a prescribed header.
    pub fn new(key: SecretString) -> Self {
        Self { key, header: None }
    }
}
