//! Compile-fail suites, and (in `pass`) what must compile. Regenerate `.stderr` files with
//! `TRYBUILD=overwrite cargo test -p ui-tests` after an intended message change.

mod pass;

#[test]
fn compile_fail() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/derive/*.rs");
    cases.compile_fail("tests/ui/lifecycle/*.rs");
}
