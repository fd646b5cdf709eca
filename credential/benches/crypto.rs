//! Seal and open next to raw AES-256-GCM with a pre-built cipher, in one run; Argon2id with the
//! default parameters; re-sealing 100,000 records in memory after a master-key rotation.
//!
//! Goals: seal ≤ 2× raw encrypt, open ≤ 2× raw decrypt, re-sealing 100,000 records ≤ 2 s.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use credential::crypto::{KdfParams, KdfSettings, MasterKey};
use credential::hazmat::{self, SealContext};
use credential::{KeyRing, SecretString};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn context() -> SealContext<'static> {
    SealContext::new("github/main", 3, "github")
}

fn seal_and_open(c: &mut Criterion) {
    let ring = KeyRing::generate().unwrap();
    let raw = Aes256Gcm::new(&Key::<Aes256Gcm>::from([7u8; 32]));
    let nonce = Nonce::from([1u8; 12]);
    let aad = [0u8; 60];
    for size in [256usize, 4096] {
        let plaintext = vec![0x42u8; size];
        let mut group = c.benchmark_group(format!("seal_{size}"));
        group.bench_function("raw_aes_gcm_encrypt", |b| {
            b.iter(|| {
                let mut buffer = black_box(&plaintext).clone();
                let tag =
                    raw.encrypt_inout_detached(&nonce, &aad, buffer.as_mut_slice().into()).unwrap();
                (buffer, tag)
            })
        });
        group.bench_function("key_ring_seal", |b| {
            b.iter(|| hazmat::seal(&ring, &context(), black_box(&plaintext)).unwrap())
        });
        group.finish();

        let mut ciphertext = plaintext.clone();
        let tag: Tag =
            raw.encrypt_inout_detached(&nonce, &aad, ciphertext.as_mut_slice().into()).unwrap();
        let sealed = hazmat::seal(&ring, &context(), &plaintext).unwrap();
        let mut group = c.benchmark_group(format!("open_{size}"));
        group.bench_function("raw_aes_gcm_decrypt", |b| {
            b.iter(|| {
                let mut buffer = black_box(&ciphertext).clone();
                raw.decrypt_inout_detached(&nonce, &aad, buffer.as_mut_slice().into(), &tag)
                    .unwrap();
                buffer
            })
        });
        group.bench_function("key_ring_open", |b| {
            b.iter(|| hazmat::open(&ring, &context(), black_box(&sealed)).unwrap())
        });
        group.finish();
    }
}

fn argon2id_default(c: &mut Criterion) {
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    let settings = KdfSettings::generate(KdfParams::default()).unwrap();
    let passphrase = SecretString::from("correct horse battery staple");
    group.bench_function("derive_default_params", |b| {
        b.iter(|| settings.derive_key(&passphrase).unwrap())
    });
    group.finish();
}

fn reseal_after_rotation(c: &mut Criterion) {
    const RECORDS: usize = 100_000;
    let mut ring = KeyRing::generate().unwrap();
    let ids: Vec<String> = (0..RECORDS).map(|i| format!("service/{i}")).collect();
    let sealed: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| hazmat::seal(&ring, &SealContext::new(id, 1, "api_key"), &[0x42; 200]).unwrap())
        .collect();
    let new = ring.add(MasterKey::generate().unwrap());
    ring.make_current(&new).unwrap();

    let mut group = c.benchmark_group("rotation");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.bench_function("reseal_100000_records_in_memory", |b| {
        b.iter_batched(
            || sealed.clone(),
            |mut records| {
                for (id, record) in ids.iter().zip(records.iter_mut()) {
                    if let Some(moved) =
                        hazmat::reseal(&ring, &SealContext::new(id, 1, "api_key"), record).unwrap()
                    {
                        *record = moved;
                    }
                }
                records
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Checking a record's tag, as every read from the store does, next to raw AES-256-GCM
/// authenticating the same number of bytes. Goal: ≤ 2×.
fn record_tag(c: &mut Criterion) {
    use credential::store::{Record, RecordMeta, SealedVersion, VersionState};
    let ring = KeyRing::generate().unwrap();
    let key_id = ring.current_id().to_string();
    let now = chrono::Utc::now();
    let meta = RecordMeta::new("default/github/main", "github", "default", &key_id, now);
    let versions = (1..=3)
        .map(|number| SealedVersion::new(number, VersionState::Deprecated, vec![7; 300], now))
        .collect();
    let mut record = Record::new(meta, versions);
    // A record as a manager writes it: tagged.
    record.meta.tag = hazmat::tag(&ring, &record).unwrap();
    let raw = Aes256Gcm::new(&Key::<Aes256Gcm>::from([7u8; 32]));
    let nonce = Nonce::from([1u8; 12]);
    let aad = [0u8; 160];
    let mut group = c.benchmark_group("record_tag");
    group.bench_function("raw_gmac_160_bytes", |b| {
        b.iter(|| raw.encrypt_inout_detached(&nonce, black_box(&aad), (&mut [][..]).into()))
    });
    group.bench_function("verify_three_versions", |b| {
        b.iter(|| hazmat::verify_tag(&ring, black_box(&record)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, seal_and_open, argon2id_default, reseal_after_rotation, record_tag);
criterion_main!(benches);
