//! Tools some tests run besides the code under test (`age`, `script`, `ssh-keygen`, `openssl`).
//! On a machine without one, a test that needs it says what to install and passes, so the
//! README's test command runs anywhere; with `CREDENTIAL_TEST_TOOLS_REQUIRED` set (CI sets it),
//! a missing tool fails the test instead.

/// Whether every tool of `needed` (a name and the Debian package that has it) is on the `PATH`.
pub(crate) fn installed(needed: &[(&str, &str)]) -> bool {
    use std::io::Write;
    let on_path = |tool: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
    };
    let missing: Vec<String> = needed
        .iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(tool, package)| format!("`{tool}` (Debian package `{package}`)"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let said = format!("this test needs {}: install it to run the test", missing.join(", "));
    assert!(std::env::var_os("CREDENTIAL_TEST_TOOLS_REQUIRED").is_none(), "{said}");
    // Straight to the process's standard error: the test harness shows no captured output
    // of a test that passes, and a skip must be seen.
    let _ = writeln!(std::io::stderr().lock(), "skipped: {said}");
    false
}
