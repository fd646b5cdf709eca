//! Encode + decode of a 5-field credential (2 secrets) next to a serde_json round trip of the same
//! fields, in one run. Goal: the credential round trip costs at most 1.5× the JSON one.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use credential::prelude::*;
use criterion::{Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};

#[derive(Credential)]
#[credential(kind = "bench")]
struct Service {
    #[secret]
    token: SecretString,
    #[secret]
    password: SecretString,
    username: String,
    host: String,
    port: u16,
}

#[derive(Serialize, Deserialize)]
struct PlainService {
    token: String,
    password: String,
    username: String,
    host: String,
    port: u16,
}

const TOKEN: &str = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
const PASSWORD: &str = "correct horse battery staple";
const USERNAME: &str = "octocat";
const HOST: &str = "db.internal.example.com";

fn round_trips(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");
    let service = Service {
        token: TOKEN.into(),
        password: PASSWORD.into(),
        username: USERNAME.into(),
        host: HOST.into(),
        port: 5432,
    };
    group.bench_function("credential_encode_decode", |b| {
        b.iter(|| {
            let bytes = black_box(&service).encode();
            Service::decode(black_box(&bytes)).unwrap()
        })
    });
    let plain = PlainService {
        token: TOKEN.into(),
        password: PASSWORD.into(),
        username: USERNAME.into(),
        host: HOST.into(),
        port: 5432,
    };
    group.bench_function("serde_json_serialize_deserialize", |b| {
        b.iter(|| {
            let bytes = serde_json::to_vec(black_box(&plain)).unwrap();
            serde_json::from_slice::<PlainService>(black_box(&bytes)).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
