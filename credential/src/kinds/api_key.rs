//! An API key, optionally with the header it is sent in.

use secrecy::SecretString;

use crate as credential;
use crate::rules::RuleError;

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
    #[credential(validate(non_empty, custom = header_name))]
    pub header: Option<String>,
}

impl ApiKey {
    /// A key sent without a prescribed header.
    pub fn new(key: SecretString) -> Self {
        Self { key, header: None }
    }
}

/// A header name is an HTTP token (RFC 9110): letters, digits and ``!#$%&'*+-.^_`|~``.
fn header_name(name: &Option<String>) -> Result<(), RuleError> {
    let Some(name) = name else { return Ok(()) };
    let token_char = |byte: u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte);
    if name.bytes().all(token_char) {
        Ok(())
    } else {
        Err(RuleError::new("must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"))
    }
}
