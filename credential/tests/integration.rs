//! The library's integration tests: real stores, servers and files, one module per concern.
//!
//! One binary, so that the suite links once and one harness spreads every test over the cores;
//! a test that runs another test in a child process names it with `support::test_named`.

mod support;

mod audit_trail;
mod builtin_kinds;
mod cache_coherence;
mod certificates;
mod derive_round_trip;
mod encoding_properties;
mod envelope_properties;
mod hostile_files;
mod lifecycle_canary;
mod manager_lifecycle;
mod masking;
mod master_key_rotation;
mod master_keys;
mod oauth2_refresh;
mod postgres_fleet;
mod postgres_restart;
mod postgres_rotation;
mod postgres_store;
mod refresh_leases;
mod restores;
mod revoke_across_processes;
mod sealing;
mod secret_canary;
mod ssh_keys;
mod store_processes;
mod stores;
mod tampered_metadata;
mod telemetry_canary;
mod templates;
mod untyped_operations;
mod validation_rules;
mod vault_store;
mod zeroize_on_drop;
