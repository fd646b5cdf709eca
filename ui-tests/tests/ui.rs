//! Compile-fail and compile-pass suites. Regenerate `.stderr` files with
//! `TRYBUILD=overwrite cargo test -p ui-tests` after an intended message change.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/derive/*.rs");
    cases.compile_fail("tests/ui/lifecycle/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
