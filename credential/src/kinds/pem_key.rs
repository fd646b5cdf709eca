//! PEM private keys: which kind they are, and their public half where the encoding carries it.
//!
//! The DER and PEM decoding is the `der` crate's; this module walks the few fields it needs.

use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, OctetStringRef, UintRef};
use der::{Decode, Reader, SliceReader, Tag, TagMode, TagNumber};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// rsaEncryption.
pub(crate) const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// id-ecPublicKey.
pub(crate) const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// A public key as an algorithm and its canonical bytes (RSA: modulus and exponent, without
/// leading zeros; EC and others: the encoded point or key).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PublicKey {
    pub(crate) algorithm: ObjectIdentifier,
    pub(crate) parts: Vec<Vec<u8>>,
}

/// What a PEM private key says about itself.
pub(crate) struct PrivateKeyInfo {
    /// The public half, when the encoding carries it (always for RSA; for EC when the optional
    /// field is present, as OpenSSL writes it; for others in PKCS#8 v2). Certificates match it
    /// against their own key; SSH keys only need the key to parse.
    #[cfg_attr(not(feature = "x509"), allow(dead_code))]
    pub(crate) public_key: Option<PublicKey>,
}

pub(crate) fn read_algorithm<'r>(reader: &mut SliceReader<'r>) -> der::Result<ObjectIdentifier> {
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
pub(crate) fn rsa_public_parts(der: &[u8]) -> der::Result<Vec<Vec<u8>>> {
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

/// Reads a PEM private key: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1
/// (`EC PRIVATE KEY`). Encrypted PEM keys are refused.
pub(crate) fn private_key_info(pem: &str) -> Result<PrivateKeyInfo> {
    let invalid =
        |_: der::Error| Error::InvalidCertificate { reason: "not a supported private key" };
    let (label, der) = der::pem::decode_vec(pem.trim().as_bytes())
        .map_err(|_| Error::InvalidCertificate { reason: "not an unencrypted PEM private key" })?;
    let der = Zeroizing::new(der);
    let public_key = match label {
        "PRIVATE KEY" => pkcs8_public_key(&der).map_err(invalid)?,
        "RSA PRIVATE KEY" => {
            Some(PublicKey { algorithm: RSA, parts: rsa_public_parts(&der).map_err(invalid)? })
        }
        "EC PRIVATE KEY" => ec_public_point(&der)
            .map_err(invalid)?
            .map(|point| PublicKey { algorithm: EC, parts: vec![point] }),
        _ => return Err(Error::InvalidCertificate { reason: "not a supported private key" }),
    };
    Ok(PrivateKeyInfo { public_key })
}

/// PKCS#8: the algorithm, then the RSA or EC key inside; for other algorithms the optional public
/// key of PKCS#8 v2.
fn pkcs8_public_key(der: &[u8]) -> der::Result<Option<PublicKey>> {
    let mut reader = SliceReader::new(der)?;
    reader.sequence(|info| {
        UintRef::decode(info)?; // version
        let algorithm = read_algorithm(info)?;
        let private_key = <&OctetStringRef>::decode(info)?.as_bytes();
        if algorithm == RSA {
            return Ok(Some(PublicKey { algorithm, parts: rsa_public_parts(private_key)? }));
        }
        if algorithm == EC {
            while !info.is_finished() {
                AnyRef::decode(info)?;
            }
            return Ok(ec_public_point(private_key)?
                .map(|point| PublicKey { algorithm, parts: vec![point] }));
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
        Ok(public.map(|public| PublicKey { algorithm, parts: vec![public.raw_bytes().to_vec()] }))
    })
}

/// SEC1 ECPrivateKey: the public point in its optional `[1]` field.
fn ec_public_point(der: &[u8]) -> der::Result<Option<Vec<u8>>> {
    let mut reader = SliceReader::new(der)?;
    reader.sequence(|key| {
        UintRef::decode(key)?; // version
        <&OctetStringRef>::decode(key)?; // private key
        key.context_specific::<ObjectIdentifier>(TagNumber(0), TagMode::Explicit)?; // curve
        let point = key.context_specific::<BitStringRef<'_>>(TagNumber(1), TagMode::Explicit)?;
        Ok(point.map(|point| point.raw_bytes().to_vec()))
    })
}
