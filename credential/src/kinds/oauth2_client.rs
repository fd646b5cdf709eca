//! OAuth 2.0 clients: what refreshes a token.

use secrecy::SecretString;

use crate as credential;

/// An OAuth 2.0 confidential client: the token endpoint, client id and client secret that
/// refresh [`OAuth2Token`](super::OAuth2Token)s naming it (RFC 6749 §2.3.1, sent with HTTP Basic
/// authentication), and the scopes its client-credentials grant asks for.
///
/// ```
/// use credential::Credential;
/// use credential::kinds::OAuth2Client;
///
/// let client = OAuth2Client {
///     token_endpoint: "https://auth.example.com/oauth/token".into(),
///     client_id: "workflow-engine".into(),
///     client_secret: "s3cr3t-from-the-provider".into(),
///     scopes: vec!["api".into()],
/// };
/// client.validate()?;
/// # Ok::<(), credential::ValidationErrors>(())
/// ```
#[derive(credential::Credential)]
#[credential(kind = "oauth2_client", crate = "crate")]
pub struct OAuth2Client {
    /// The provider's token endpoint: `https://`, or `http://` to a loopback address.
    #[credential(validate(non_empty, length(max = 2048)))]
    pub token_endpoint: String,
    /// The client id the provider issued.
    #[credential(validate(non_empty, length(max = 256)))]
    pub client_id: String,
    /// The client secret the provider issued.
    #[secret]
    #[credential(validate(non_empty))]
    pub client_secret: SecretString,
    /// The scopes the client-credentials grant asks for (none: the provider's default).
    #[credential(default)]
    pub scopes: Vec<String>,
}
