//! HTTP Basic authentication.

use base64ct::Encoding;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate as credential;
use crate::rules::RuleError;

/// A user name and password for HTTP Basic authentication (RFC 7617).
///
/// ```
/// use credential::kinds::BasicAuth;
/// use credential::ExposeSecret;
///
/// let auth = BasicAuth { username: "Aladdin".into(), password: "open sesame".into() };
/// assert_eq!(auth.authorization().expose_secret(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
/// ```
#[derive(credential::Credential)]
#[credential(kind = "basic_auth", crate = "crate")]
pub struct BasicAuth {
    /// The user name; it may not contain `:` (RFC 7617).
    #[credential(validate(non_empty, custom = no_colon))]
    pub username: String,
    /// The password.
    #[secret]
    pub password: SecretString,
}

fn no_colon(username: &str) -> Result<(), RuleError> {
    if username.contains(':') { Err(RuleError::new("must not contain `:`")) } else { Ok(()) }
}

impl BasicAuth {
    /// The `Authorization` header value: `Basic ` and the base64 of `username:password`. Built in
    /// buffers that are wiped, at their final size.
    pub fn authorization(&self) -> SecretString {
        let password = self.password.expose_secret();
        let mut pair = Zeroizing::new(Vec::with_capacity(self.username.len() + 1 + password.len()));
        pair.extend_from_slice(self.username.as_bytes());
        pair.push(b':');
        pair.extend_from_slice(password.as_bytes());
        const PREFIX: &str = "Basic ";
        let mut value =
            Zeroizing::new(vec![0u8; PREFIX.len() + base64ct::Base64::encoded_len(&pair)]);
        value[..PREFIX.len()].copy_from_slice(PREFIX.as_bytes());
        let encoded_len =
            base64ct::Base64::encode(&pair, &mut value[PREFIX.len()..]).map_or(0, str::len);
        let text = std::str::from_utf8(&value[..PREFIX.len() + encoded_len]).unwrap_or_default();
        SecretString::new(Box::from(text))
    }
}
