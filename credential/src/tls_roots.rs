//! Which certificate authorities a TLS client trusts: those in the PEM file it was given, or
//! Mozilla's roots.

use std::path::Path;

use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

use crate::{Error, Result};

/// The CAs in `ca_file`, or Mozilla's roots without one. The file is read now, so a missing or
/// unreadable one is an error before the first connection.
pub(crate) fn trusted(ca_file: Option<&Path>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let Some(path) = ca_file else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(roots);
    };
    let unreadable =
        |_| Error::InvalidCertificate { reason: "the CA file cannot be read as PEM certificates" };
    for certificate in CertificateDer::pem_file_iter(path).map_err(unreadable)? {
        roots.add(certificate.map_err(unreadable)?).map_err(|_| Error::InvalidCertificate {
            reason: "the CA file holds an unusable CA certificate",
        })?;
    }
    Ok(roots)
}
