//! The masker over 10,000 known secrets: masking log text (with no secret, and with one in every
//! tenth line) through `mask` and through the writer, and what learning a new secret costs the
//! next mask. Goal: at least 200 MB/s; text without a secret costs one scan.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::io::Write;

use credential::SecretString;
use credential::masking::Masker;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const SECRETS: usize = 10_000;

/// Deterministic tokens of 40 characters, like API tokens.
fn make_tokens(count: usize, seed: u64) -> Vec<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let body: String = (0..36)
                .map(|_| char::from(ALPHABET[(next() % ALPHABET.len() as u64) as usize]))
                .collect();
            format!("tok_{body}")
        })
        .collect()
}

fn masker_knowing(tokens: &[String]) -> Masker {
    let masker = Masker::new();
    for token in tokens {
        masker.add(&SecretString::from(token.as_str()));
    }
    masker
}

/// About 1 MiB of log lines; every `secret_every`th line carries a known token.
fn log_text(tokens: &[String], secret_every: Option<usize>) -> String {
    let mut text = String::new();
    let mut line = 0;
    while text.len() < 1 << 20 {
        let token = match secret_every {
            Some(every) if line % every == 0 => tokens[line % tokens.len()].as_str(),
            _ => "none",
        };
        text.push_str(&format!(
            "2026-12-04T23:49:46.{line:06}Z INFO action{{run={line} step=fetch}}: GET \
             https://api.example.com/v1/items?page={line}&token={token} status=200 elapsed_ms=12\n"
        ));
        line += 1;
    }
    text
}

fn masking(c: &mut Criterion) {
    let tokens = make_tokens(SECRETS, 0x9e37_79b9_7f4a_7c15);
    let masker = masker_knowing(&tokens);
    masker.mask("");
    let clean = log_text(&tokens, None);
    let dirty = log_text(&tokens, Some(10));
    // The first mask built one automaton over the 10,000 values; the background thread builds
    // it again as the base. Let it finish before measuring.
    std::thread::sleep(std::time::Duration::from_secs(1));

    let mut group = c.benchmark_group("mask_10k_secrets");
    group.throughput(Throughput::Bytes(clean.len() as u64));
    group.bench_function("text_without_secrets", |b| {
        b.iter(|| masker.mask(black_box(&clean)).len())
    });
    group.bench_function("a_secret_every_10_lines", |b| {
        b.iter(|| masker.mask(black_box(&dirty)).len())
    });
    group.bench_function("writer_150_byte_lines", |b| {
        b.iter(|| {
            let mut writer = masker.writer(std::io::sink());
            for line in dirty.lines() {
                writer.write_all(line.as_bytes()).unwrap();
                writer.write_all(b"\n").unwrap();
            }
            writer.into_inner().unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("learn_then_mask");
    group.sample_size(20);
    let fresh = make_tokens(100_000, 0x2545_f491_4f6c_dd1d);
    let mut fresh = fresh.iter().cycle();
    group.bench_function("one_new_secret_among_10k", |b| {
        b.iter(|| {
            masker.add(&SecretString::from(fresh.next().unwrap().as_str()));
            masker.mask(black_box("a short line")).len()
        })
    });
    group.bench_function("first_mask_after_10k_new_secrets", |b| {
        b.iter_batched(
            || masker_knowing(&tokens),
            |masker| masker.mask(black_box("a short line")).len(),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, masking);
criterion_main!(benches);
