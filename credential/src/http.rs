//! The HTTP client for token endpoints and Vault: `reqwest` over rustls on `ring`, redirects off.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls::{ClientConfig, crypto::ring};

use crate::{Error, Result};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client that trusts the certificates in the PEM file `ca_file`, or Mozilla's roots without
/// one. Redirects are not followed: a credential or token never goes anywhere it was not sent.
pub(crate) fn client(ca_file: Option<&Path>) -> Result<reqwest::Client> {
    let roots = crate::tls_roots::trusted(ca_file)?;
    let tls = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|_| Error::Config { reason: "no TLS protocol version is available" })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|_| Error::Config { reason: "the HTTP client cannot be built" })
}

/// What went wrong with a request that got no answer, without its URL.
pub(crate) fn unanswered(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "did not answer in time"
    } else if error.is_connect() {
        "could not be reached"
    } else {
        "failed mid-request"
    }
}
