//! OAuth 2.0 tokens.

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate as credential;

/// An OAuth 2.0 access token with its refresh token, type, scopes and expiry (RFC 6749 §5.1),
/// and the client credential that refreshes it.
///
/// With the `oauth2` feature, `OAuth2Refresher` refreshes it: with its refresh token (RFC 6749
/// §6) when it has one, else by the client-credentials grant (§4.4).
///
/// ```
/// use credential::kinds::OAuth2Token;
/// use credential::Credential;
///
/// let token = OAuth2Token {
///     access_token: "ya29.a0Af".into(),
///     refresh_token: Some("1//0g-refresh".into()),
///     token_type: "Bearer".into(),
///     scopes: vec!["repo".into()],
///     expires: None,
///     client: Some("github/oauth-app".into()),
/// };
/// token.validate()?;
/// # Ok::<(), credential::ValidationErrors>(())
/// ```
#[derive(credential::Credential)]
#[credential(kind = "oauth2_token", crate = "crate")]
pub struct OAuth2Token {
    /// The access token.
    #[secret(reveal_last = 4)]
    #[credential(validate(non_empty))]
    pub access_token: SecretString,
    /// The refresh token, when the grant issued one.
    #[secret]
    #[credential(validate(non_empty))]
    pub refresh_token: Option<SecretString>,
    /// The token type, usually `Bearer`.
    #[credential(validate(non_empty, length(max = 64)))]
    pub token_type: String,
    /// The granted scopes.
    #[credential(default)]
    pub scopes: Vec<String>,
    /// When the access token expires.
    #[credential(expires_at)]
    pub expires: Option<DateTime<Utc>>,
    /// The id of the [`OAuth2Client`](super::OAuth2Client) credential that refreshes this token
    /// (token endpoint, client id and secret); `None` for a token nothing refreshes.
    #[credential(default)]
    pub client: Option<String>,
}
