//! TLS certificates with their private key: expiry from the leaf's notAfter, and a check that the
//! key belongs to the certificate.
//!
//! The DER and PEM decoding is the `der` crate's; this module only walks the few fields it needs
//! (X.509 validity and subject public key, and the public half carried by RSA and EC private keys).

use chrono::{DateTime, Utc};
use der::asn1::{AnyRef, BitStringRef, GeneralizedTime, UintRef, UtcTime};
use der::{Decode, Reader, SliceReader, Tag};
use secrecy::{ExposeSecret, SecretString};

use super::pem_key::{PublicKey, RSA, private_key_info, read_algorithm, rsa_public_parts};
use crate::{self as credential, Error, Result, ValidationErrors};

/// A PEM certificate chain (leaf first) and the leaf's private key.
///
/// [`Certificate::new`] takes `expires` from the leaf's notAfter. Validation parses every
/// certificate of the chain and checks that the private key's public half is the leaf's public
/// key. RSA (PKCS#8 or PKCS#1) and EC (PKCS#8 or SEC1) keys are checked; other keys are accepted
/// only when their PKCS#8 form carries the public key.
#[derive(credential::Credential)]
#[credential(kind = "certificate", crate = "crate", validate = key_matches_leaf)]
pub struct Certificate {
    /// The PEM certificates, leaf first.
    #[credential(validate(non_empty))]
    pub chain: String,
    /// The leaf's private key, PEM.
    #[secret]
    pub private_key: SecretString,
    /// When the leaf certificate stops being valid.
    #[credential(expires_at)]
    pub expires: Option<DateTime<Utc>>,
}

impl Certificate {
    /// A certificate whose expiry is the leaf's notAfter.
    ///
    /// # Errors
    /// [`Error::InvalidCertificate`] when the chain's first certificate cannot be read.
    pub fn new(chain: String, private_key: SecretString) -> Result<Self> {
        let leaf = pem_blocks(&chain)?
            .into_iter()
            .next()
            .ok_or(Error::InvalidCertificate { reason: "no certificate" })?;
        let expires = Some(parse_leaf(&leaf)?.not_after);
        Ok(Self { chain, private_key, expires })
    }

    /// The leaf's notAfter, read from the chain.
    ///
    /// # Errors
    /// [`Error::InvalidCertificate`].
    pub fn not_after(&self) -> Result<DateTime<Utc>> {
        let leaf = pem_blocks(&self.chain)?
            .into_iter()
            .next()
            .ok_or(Error::InvalidCertificate { reason: "no certificate" })?;
        Ok(parse_leaf(&leaf)?.not_after)
    }
}

fn key_matches_leaf(certificate: &Certificate) -> std::result::Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let leaf = match pem_blocks(&certificate.chain) {
        Ok(blocks) if blocks.is_empty() => {
            errors.add("chain", "x509", "must hold at least one PEM certificate");
            return errors.into_result();
        }
        Ok(blocks) => {
            let parsed: Vec<_> = blocks.iter().map(|block| parse_leaf(block)).collect();
            if parsed.iter().any(std::result::Result::is_err) {
                errors.add("chain", "x509", "must hold only PEM X.509 certificates");
                return errors.into_result();
            }
            parsed.into_iter().next().and_then(std::result::Result::ok)
        }
        Err(_) => {
            errors.add("chain", "x509", "must hold only PEM X.509 certificates");
            return errors.into_result();
        }
    };
    let key = private_key_info(certificate.private_key.expose_secret()).map(|info| info.public_key);
    match (leaf, key) {
        (_, Err(_) | Ok(None)) => errors.add(
            "private_key",
            "key",
            "must be a PEM RSA or EC private key (PKCS#8, PKCS#1 or SEC1) that carries its public key",
        ),
        (Some(leaf), Ok(Some(key))) if key != leaf.public_key => {
            errors.add("private_key", "matches_certificate", "does not belong to the leaf certificate");
        }
        _ => {}
    }
    errors.into_result()
}

/// The DER contents of every `CERTIFICATE` block of a PEM text.
fn pem_blocks(text: &str) -> Result<Vec<Vec<u8>>> {
    let invalid = |reason| Error::InvalidCertificate { reason };
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let end_marker =
            rest[start..].find("-----END ").ok_or(invalid("unterminated PEM block"))? + start;
        let end =
            rest[end_marker..].find('\n').map_or(rest.len(), |newline| end_marker + newline + 1);
        let (label, der) = der::pem::decode_vec(&rest.as_bytes()[start..end])
            .map_err(|_| invalid("malformed PEM block"))?;
        if label != "CERTIFICATE" {
            return Err(invalid("the chain may only hold CERTIFICATE blocks"));
        }
        blocks.push(der);
        rest = &rest[end..];
    }
    Ok(blocks)
}

/// What validation needs from a certificate.
struct Leaf {
    not_after: DateTime<Utc>,
    /// The subject public key: algorithm and key bits.
    public_key: PublicKey,
}

fn parse_leaf(der: &[u8]) -> Result<Leaf> {
    let invalid = |_: der::Error| Error::InvalidCertificate { reason: "not an X.509 certificate" };
    let mut reader = SliceReader::new(der).map_err(invalid)?;
    let leaf = reader
        .sequence(|certificate| {
            let leaf = certificate.sequence(|tbs| {
                if Tag::peek(tbs)? != Tag::Integer {
                    AnyRef::decode(tbs)?; // [0] version
                }
                UintRef::decode(tbs)?; // serial number
                AnyRef::decode(tbs)?; // signature algorithm
                AnyRef::decode(tbs)?; // issuer
                let not_after = tbs.sequence(|validity| {
                    read_time(validity)?;
                    read_time(validity)
                })?;
                AnyRef::decode(tbs)?; // subject
                let public_key = read_spki(tbs)?;
                while !tbs.is_finished() {
                    AnyRef::decode(tbs)?;
                }
                Ok::<_, der::Error>(Leaf { not_after, public_key })
            })?;
            AnyRef::decode(certificate)?; // signature algorithm
            BitStringRef::decode(certificate)?; // signature
            Ok::<_, der::Error>(leaf)
        })
        .map_err(invalid)?;
    reader.finish().map_err(invalid)?;
    Ok(leaf)
}

fn read_time<'r>(reader: &mut SliceReader<'r>) -> der::Result<DateTime<Utc>> {
    let since_epoch = if Tag::peek(reader)? == Tag::UtcTime {
        UtcTime::decode(reader)?.to_unix_duration()
    } else {
        GeneralizedTime::decode(reader)?.to_unix_duration()
    };
    let seconds = i64::try_from(since_epoch.as_secs()).map_err(|_| der::ErrorKind::Overflow)?;
    DateTime::from_timestamp(seconds, 0).ok_or_else(|| der::ErrorKind::Overflow.into())
}

/// SubjectPublicKeyInfo: the algorithm and, for RSA, the modulus and exponent inside the bits.
fn read_spki<'r>(reader: &mut SliceReader<'r>) -> der::Result<PublicKey> {
    reader.sequence(|spki| {
        let algorithm = read_algorithm(spki)?;
        let bits = BitStringRef::decode(spki)?.raw_bytes();
        let parts = if algorithm == RSA { rsa_public_parts(bits)? } else { vec![bits.to_vec()] };
        Ok(PublicKey { algorithm, parts })
    })
}
