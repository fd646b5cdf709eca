//! TLS certificates with their private key: expiry from the leaf's notAfter, and a check that the
//! key belongs to the certificate.
//!
//! The DER and PEM decoding is the `der` crate's; this module only walks the few fields it needs
//! (X.509 validity and subject public key, and the public half carried by RSA and EC private keys).

use chrono::{DateTime, Utc};
use der::asn1::{
    AnyRef, BitStringRef, GeneralizedTime, ObjectIdentifier, OctetStringRef, UintRef, UtcTime,
};
use der::{Decode, Reader, SliceReader, Tag, TagMode, TagNumber};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::{self as credential, Error, Result, ValidationErrors};

const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

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
    match (leaf, public_key_of(certificate.private_key.expose_secret())) {
        (_, Err(_)) => errors.add(
            "private_key",
            "key",
            "must be a PEM RSA or EC private key (PKCS#8, PKCS#1 or SEC1)",
        ),
        (Some(leaf), Ok(key)) if key != leaf.public_key => {
            errors.add(
                "private_key",
                "matches_certificate",
                "does not belong to the leaf certificate",
            );
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

/// A public key as an algorithm and its canonical bytes (RSA: modulus and exponent, without
/// leading zeros; EC and others: the encoded point or key).
#[derive(Debug, PartialEq, Eq)]
struct PublicKey {
    algorithm: ObjectIdentifier,
    parts: Vec<Vec<u8>>,
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

fn read_algorithm<'r>(reader: &mut SliceReader<'r>) -> der::Result<ObjectIdentifier> {
    reader.sequence(|algorithm| {
        let oid = ObjectIdentifier::decode(algorithm)?;
        while !algorithm.is_finished() {
            AnyRef::decode(algorithm)?;
        }
        Ok(oid)
    })
}

/// Modulus and exponent of an RSAPublicKey, or the first two integers after the version of an
/// RSAPrivateKey (which are the same two numbers).
fn rsa_public_parts(der: &[u8]) -> der::Result<Vec<Vec<u8>>> {
    let mut reader = SliceReader::new(der)?;
    reader.sequence(|key| {
        let first = UintRef::decode(key)?;
        let is_zero = first.as_bytes().iter().all(|byte| *byte == 0);
        let (modulus, exponent) = if is_zero && !key.is_finished() {
            // RSAPrivateKey: version 0, then modulus and publicExponent.
            (UintRef::decode(key)?, UintRef::decode(key)?)
        } else {
            (first, UintRef::decode(key)?)
        };
        while !key.is_finished() {
            AnyRef::decode(key)?;
        }
        Ok(vec![modulus.as_bytes().to_vec(), exponent.as_bytes().to_vec()])
    })
}

/// The public half of a PEM private key.
fn public_key_of(pem: &str) -> Result<PublicKey> {
    let invalid =
        |_: der::Error| Error::InvalidCertificate { reason: "not a supported private key" };
    let (label, der) = der::pem::decode_vec(pem.trim().as_bytes())
        .map_err(|_| Error::InvalidCertificate { reason: "not a PEM private key" })?;
    let der = Zeroizing::new(der);
    match label {
        "PRIVATE KEY" => pkcs8_public_key(&der).map_err(invalid),
        "RSA PRIVATE KEY" => {
            Ok(PublicKey { algorithm: RSA, parts: rsa_public_parts(&der).map_err(invalid)? })
        }
        "EC PRIVATE KEY" => ec_public_point(&der)
            .map(|point| PublicKey { algorithm: EC, parts: vec![point] })
            .map_err(invalid),
        _ => Err(Error::InvalidCertificate { reason: "not a supported private key" }),
    }
}

/// PKCS#8: the algorithm, then the RSA or EC key inside; for other algorithms the public key
/// must be present (PKCS#8 v2).
fn pkcs8_public_key(der: &[u8]) -> der::Result<PublicKey> {
    let mut reader = SliceReader::new(der)?;
    reader.sequence(|info| {
        UintRef::decode(info)?; // version
        let algorithm = read_algorithm(info)?;
        let private_key = <&OctetStringRef>::decode(info)?.as_bytes();
        if algorithm == RSA {
            return Ok(PublicKey { algorithm, parts: rsa_public_parts(private_key)? });
        }
        if algorithm == EC {
            while !info.is_finished() {
                AnyRef::decode(info)?;
            }
            return Ok(PublicKey { algorithm, parts: vec![ec_public_point(private_key)?] });
        }
        // Other algorithms: the optional `[1] IMPLICIT BIT STRING` public key (PKCS#8 v2).
        let mut public = None;
        while !info.is_finished() {
            match Tag::peek(info)? {
                Tag::ContextSpecific { number: TagNumber(1), .. } => {
                    public =
                        info.context_specific::<BitStringRef<'_>>(TagNumber(1), TagMode::Implicit)?;
                }
                _ => {
                    AnyRef::decode(info)?;
                }
            }
        }
        let public = public.ok_or(der::ErrorKind::Failed)?;
        Ok(PublicKey { algorithm, parts: vec![public.raw_bytes().to_vec()] })
    })
}

/// SEC1 ECPrivateKey: the public point in its `[1]` field.
fn ec_public_point(der: &[u8]) -> der::Result<Vec<u8>> {
    let mut reader = SliceReader::new(der)?;
    reader.sequence(|key| {
        UintRef::decode(key)?; // version
        <&OctetStringRef>::decode(key)?; // private key
        key.context_specific::<ObjectIdentifier>(TagNumber(0), TagMode::Explicit)?; // curve
        let point = key
            .context_specific::<BitStringRef<'_>>(TagNumber(1), TagMode::Explicit)?
            .ok_or(der::ErrorKind::Failed)?;
        Ok(point.raw_bytes().to_vec())
    })
}
