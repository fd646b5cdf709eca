//! Built-in credential kinds for the common cases. Each is a `#[derive(Credential)]` struct with
//! validation; use them as they are or as models for your own.

mod api_key;
mod aws;
mod basic_auth;
mod bearer_token;
mod certificate;
mod database;
mod database_url;
mod oauth2_token;
mod pem_key;
mod ssh_key;

pub use api_key::ApiKey;
pub use aws::Aws;
pub use basic_auth::BasicAuth;
pub use bearer_token::BearerToken;
pub use certificate::Certificate;
pub use database::Database;
pub use oauth2_token::OAuth2Token;
pub use ssh_key::SshKey;
