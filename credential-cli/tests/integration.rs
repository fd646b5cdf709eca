//! The operator tool's tests: `cred` driven as an operator drives it, one module per concern.
//!
//! One binary, so that the suite links once and one harness spreads every test over the cores.

mod support;

mod backups;
mod commands;
mod custom_kinds;
mod doctor;
mod postgres;
mod rekey;
mod secrets;
