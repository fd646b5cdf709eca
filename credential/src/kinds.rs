//! Built-in credential kinds for the common cases. Each is a `#[derive(Credential)]` struct with
//! validation; use them as they are or as models for your own.

mod api_key;
mod aws;
mod basic_auth;
mod bearer_token;
#[cfg(feature = "x509")]
mod certificate;
#[cfg(feature = "url")]
mod database;
#[cfg(feature = "url")]
mod database_url;
mod oauth2_client;
mod oauth2_token;
#[cfg(any(feature = "ssh", feature = "x509"))]
mod pem_key;
#[cfg(feature = "ssh")]
mod ssh_key;

pub use api_key::ApiKey;
pub use aws::Aws;
pub use basic_auth::BasicAuth;
pub use bearer_token::BearerToken;
#[cfg(feature = "x509")]
pub use certificate::Certificate;
#[cfg(feature = "url")]
pub use database::Database;
pub use oauth2_client::OAuth2Client;
pub use oauth2_token::OAuth2Token;
#[cfg(feature = "ssh")]
pub use ssh_key::SshKey;
