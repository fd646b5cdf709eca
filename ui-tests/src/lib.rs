//! Compile-fail and compile-pass suites live under `tests/`.
