//! `credential` with `default-features = false`: the derive, the crypto, `MemoryStore` and the
//! manager. Its tests run with `cargo test -p credential-minimal`, which builds nothing else (in a
//! whole-workspace build other members turn the default features back on).
