//! TLS for the PostgreSQL store: rustls on `ring`, with libpq's `sslmode` and `sslrootcert`.
//!
//! | `sslmode`     | encrypted        | server checked                                   |
//! |---------------|------------------|--------------------------------------------------|
//! | `disable`     | no               | no                                               |
//! | `prefer`      | if the server can | no (libpq's default, and ours)                  |
//! | `require`     | yes              | no; with `sslrootcert`, the chain (as libpq does) |
//! | `verify-ca`   | yes              | the chain                                        |
//! | `verify-full` | yes              | the chain and the host name                      |
//!
//! The chain is checked against the CA certificates in the PEM file `sslrootcert` names, or,
//! without one, against Mozilla's root store (for servers with publicly trusted certificates).

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{WebPkiSupportedAlgorithms, ring};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme,
};

use crate::{Error, Result};

/// What a connection URL asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    pub(crate) mode: TlsMode,
    /// PEM file of the CA certificates to trust (`sslrootcert`).
    pub(crate) root_cert: Option<PathBuf>,
}

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    pub(crate) fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "disable" => Self::Disable,
            // `allow` tries without TLS first; for a secrets store it means the same as `prefer`.
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => {
                return Err(Error::InvalidUrl {
                    reason: "`sslmode` must be disable, prefer, require, verify-ca or verify-full",
                });
            }
        })
    }
}

impl TlsSettings {
    /// The mode the driver negotiates with.
    pub(crate) fn ssl_mode(&self) -> SslMode {
        match self.mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        }
    }

    /// The connector for these settings: reads the CA file now, so a missing or unreadable one is
    /// an error at connect time rather than at the first handshake.
    pub(crate) fn connector(&self) -> Result<RustlsConnector> {
        let provider = Arc::new(ring::default_provider());
        let check_chain = matches!(
            (self.mode, &self.root_cert),
            (TlsMode::VerifyCa | TlsMode::VerifyFull, _) | (TlsMode::Require, Some(_))
        );
        let chain = if check_chain {
            let roots = Arc::new(crate::tls_roots::trusted(self.root_cert.as_deref())?);
            let verifier =
                WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
                    .build()
                    .map_err(|_| Error::InvalidCertificate {
                    reason: "the CA file holds no usable certificate",
                })?;
            Some(verifier)
        } else {
            None
        };
        let verifier = PeerVerifier {
            chain,
            check_name: self.mode == TlsMode::VerifyFull,
            algorithms: provider.signature_verification_algorithms,
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| Error::storage("postgres", false, error))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(RustlsConnector { config: Arc::new(config) })
    }
}

/// Checks the server's certificate as the mode asks; the handshake's signatures always.
#[derive(Debug)]
struct PeerVerifier {
    /// The chain check, when the mode has one.
    chain: Option<Arc<WebPkiServerVerifier>>,
    /// Whether the certificate must name the host.
    check_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Makes TLS connections for the driver.
#[derive(Clone)]
pub(crate) struct RustlsConnector {
    config: Arc<ClientConfig>,
}

impl<S> MakeTlsConnect<S> for RustlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> io::Result<RustlsConnect> {
        let server_name = ServerName::try_from(host.to_owned()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "not a valid TLS host name")
        })?;
        Ok(RustlsConnect { config: Arc::clone(&self.config), server_name })
    }
}

/// One TLS handshake to come.
pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move {
            connector.connect(self.server_name, stream).await.map(|tls| RustlsStream(Box::new(tls)))
        })
    }
}

/// A TLS connection to the server.
pub(crate) struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_libpq_mode_is_read_and_others_are_refused_without_echoing_them() {
        for (text, mode) in [
            ("disable", TlsMode::Disable),
            ("allow", TlsMode::Prefer),
            ("prefer", TlsMode::Prefer),
            ("require", TlsMode::Require),
            ("verify-ca", TlsMode::VerifyCa),
            ("verify-full", TlsMode::VerifyFull),
        ] {
            assert_eq!(TlsMode::parse(text).unwrap(), mode);
        }
        let error = TlsMode::parse("hunter2-canary").unwrap_err();
        assert!(!error.to_string().contains("hunter2"));
    }

    #[test]
    fn a_missing_ca_file_is_a_clear_error() {
        let settings = TlsSettings {
            mode: TlsMode::VerifyFull,
            root_cert: Some(PathBuf::from("/nonexistent/credential-ca.pem")),
        };
        assert!(matches!(settings.connector(), Err(Error::InvalidCertificate { .. })));
        let public_roots = TlsSettings { mode: TlsMode::VerifyFull, root_cert: None };
        assert!(public_roots.connector().is_ok());
    }
}
