//! The HTTP client for token endpoints and Vault: `reqwest` over rustls on `ring`, redirects off.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};

use crate::{Error, Result};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client that trusts the certificates in the PEM file `ca_file`, or Mozilla's roots without
/// one. Redirects are not followed: a credential or token never goes anywhere it was not sent.
pub(crate) fn client(ca_file: Option<&Path>) -> Result<reqwest::Client> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let unreadable = |_| Error::InvalidCertificate {
                reason: "the CA file cannot be read as PEM certificates",
            };
            for certificate in CertificateDer::pem_file_iter(path).map_err(unreadable)? {
                roots.add(certificate.map_err(unreadable)?).map_err(|_| {
                    Error::InvalidCertificate {
                        reason: "the CA file holds an unusable certificate",
                    }
                })?;
            }
        }
    }
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
