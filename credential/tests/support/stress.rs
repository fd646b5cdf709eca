//! How hard the stress tests push: each test's count is sized by what it proves (its comment
//! says why that count suffices), and `CREDENTIAL_STRESS=1` (what `.ci/stress` sets) runs the
//! long variant of the same test instead.

/// `normal`, or `long` when `CREDENTIAL_STRESS` is set.
pub(crate) fn count(normal: usize, long: usize) -> usize {
    if std::env::var_os("CREDENTIAL_STRESS").is_some() { long } else { normal }
}
