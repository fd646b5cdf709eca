//! Sealed envelopes: round trips, tamper and truncation detection, context binding, wrong keys,
//! key rotation, and nonce uniqueness.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;
use std::collections::HashSet;

use credential::crypto::{KeyId, MasterKey};
use credential::hazmat::{self, SealContext, envelope_key_id};
use credential::{Error, KeyRing};

fn context() -> SealContext<'static> {
    SealContext::new("github/main", 3, "github")
}

/// Opens an `api_key` version-1 envelope of credential `id`.
fn open_api_key(ring: &KeyRing, id: &str, sealed: &[u8]) -> Vec<u8> {
    hazmat::open(ring, &SealContext::new(id, 1, "api_key"), sealed).unwrap().to_vec()
}

fn is_decrypt(result: credential::Result<impl Sized>) -> bool {
    matches!(result, Err(Error::Decrypt))
}

#[test]
fn round_trips_at_several_sizes() {
    let ring = KeyRing::generate().unwrap();
    for size in [0, 1, 15, 16, 17, 255, 256, 4096, 65_537] {
        let plaintext: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let sealed = hazmat::seal(&ring, &context(), &plaintext).unwrap();
        assert_eq!(sealed.len(), 2 + 16 + 12 + size + 16);
        assert_eq!(&*hazmat::open(&ring, &context(), &sealed).unwrap(), plaintext.as_slice());
    }
}

#[test]
fn sealing_twice_gives_different_envelopes() {
    let ring = KeyRing::generate().unwrap();
    let first = hazmat::seal(&ring, &context(), b"same").unwrap();
    let second = hazmat::seal(&ring, &context(), b"same").unwrap();
    assert_ne!(first, second);
}

#[test]
fn flipping_any_single_byte_is_one_opaque_error() {
    let ring = KeyRing::generate().unwrap();
    let sealed = hazmat::seal(&ring, &context(), b"a credential payload of some length").unwrap();
    for position in 0..sealed.len() {
        for mask in [0x01, 0x80, 0xff] {
            let mut tampered = sealed.clone();
            tampered[position] ^= mask;
            assert!(
                is_decrypt(hazmat::open(&ring, &context(), &tampered)),
                "flip at {position} with {mask:#x} not refused"
            );
        }
    }
}

#[test]
fn truncation_at_every_length_is_an_error() {
    let ring = KeyRing::generate().unwrap();
    let sealed = hazmat::seal(&ring, &context(), b"a credential payload").unwrap();
    for len in 0..sealed.len() {
        assert!(
            is_decrypt(hazmat::open(&ring, &context(), &sealed[..len])),
            "truncated to {len} opened"
        );
    }
    let mut extended = sealed.clone();
    extended.push(0);
    assert!(is_decrypt(hazmat::open(&ring, &context(), &extended)));
}

#[test]
fn an_envelope_moved_to_another_id_version_or_kind_does_not_open() {
    let ring = KeyRing::generate().unwrap();
    let sealed = hazmat::seal(&ring, &context(), b"payload").unwrap();
    for other in [
        SealContext::new("github/other", 3, "github"),
        SealContext::new("github/main", 4, "github"),
        SealContext::new("github/main", 3, "gitlab"),
        SealContext::new("github/mai", 3, "ngithub"),
    ] {
        assert!(is_decrypt(hazmat::open(&ring, &other, &sealed)), "{other:?}");
    }
}

#[test]
fn wrong_master_key_is_one_clear_error() {
    let right = KeyRing::generate().unwrap();
    let wrong = KeyRing::generate().unwrap();
    let sealed = hazmat::seal(&right, &context(), b"payload").unwrap();
    let needed = envelope_key_id(&sealed).unwrap();
    assert_eq!(&needed, right.current_id());
    match wrong.check(&needed) {
        Err(Error::WrongMasterKey { key_id }) => assert_eq!(key_id, needed.to_string()),
        other => panic!("expected WrongMasterKey, got {other:?}"),
    }
    assert!(is_decrypt(hazmat::open(&wrong, &context(), &sealed)));
}

#[test]
fn rotation_keeps_old_records_open_and_lets_the_old_key_retire_after_resealing() {
    let mut ring = KeyRing::generate().unwrap();
    let old = ring.current_id().clone();
    let contexts: Vec<String> = (0..20).map(|i| format!("service/{i}")).collect();
    let mut records: Vec<Vec<u8>> = contexts
        .iter()
        .map(|id| hazmat::seal(&ring, &SealContext::new(id, 1, "api_key"), id.as_bytes()).unwrap())
        .collect();

    let new = ring.add(MasterKey::generate().unwrap());
    ring.make_current(&new).unwrap();
    assert!(matches!(ring.retire(&new), Err(Error::KeyInUse { .. })));

    // Old records still open; new seals use the new key.
    for (id, sealed) in contexts.iter().zip(&records) {
        assert_eq!(open_api_key(&ring, id, sealed), id.as_bytes());
    }
    let fresh = hazmat::seal(&ring, &context(), b"new").unwrap();
    assert_eq!(envelope_key_id(&fresh).unwrap(), new);

    // Interrupt the re-seal halfway: every record still opens under some key of the ring.
    for (id, sealed) in contexts.iter().zip(records.iter_mut()).take(10) {
        *sealed =
            hazmat::reseal(&ring, &SealContext::new(id, 1, "api_key"), sealed).unwrap().unwrap();
    }
    for (id, sealed) in contexts.iter().zip(&records) {
        assert!(hazmat::open(&ring, &SealContext::new(id, 1, "api_key"), sealed).is_ok());
    }
    // Resume: already re-sealed records are skipped, the rest move to the new key.
    let mut resealed = 0;
    for (id, sealed) in contexts.iter().zip(records.iter_mut()) {
        if let Some(moved) =
            hazmat::reseal(&ring, &SealContext::new(id, 1, "api_key"), sealed).unwrap()
        {
            *sealed = moved;
            resealed += 1;
        }
    }
    assert_eq!(resealed, 10);
    assert!(records.iter().all(|sealed| envelope_key_id(sealed).unwrap() == new));

    ring.retire(&old).unwrap();
    assert!(!ring.holds(&old));
    for (id, sealed) in contexts.iter().zip(&records) {
        assert_eq!(open_api_key(&ring, id, sealed), id.as_bytes());
    }
    assert!(matches!(
        ring.retire(&KeyId::parse("0000000000000000").unwrap()),
        Err(Error::UnknownKey { .. })
    ));
}

/// A nonce source that repeats (a fixed or counter nonce reset per key, a broken random source)
/// repeats within the first thousand seals; 96 random bits do not repeat in a million with any
/// probability worth naming. `CREDENTIAL_STRESS=1`: a million.
#[test]
fn no_nonce_repeats_over_many_seals() {
    let ring = KeyRing::generate().unwrap();
    let seals = support::stress::count(1_000, 1_000_000);
    let mut nonces = HashSet::with_capacity(seals);
    for _ in 0..seals {
        let sealed = hazmat::seal(&ring, &context(), b"").unwrap();
        let nonce: [u8; 12] = sealed[18..30].try_into().unwrap();
        assert!(nonces.insert(nonce), "nonce repeated");
    }
}
