//! The programs some tests need besides Rust (Chromium, spin, wrk, nginx,
//! schemathesis, openapi-generator, …). Outside CI a missing one skips the
//! test, saying so; in CI it fails the test, because `.ci/run` installs
//! every one of them and a missing one there is a broken CI, not a skip.

/// Whether `program` runs with `args` and succeeds (`--version` and the like).
pub fn runs(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Reports the test skipped for want of `program` (installed by `install`),
/// or, in CI, fails it.
pub fn skip_without(program: &str, install: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{program} is missing ({install}); CI must run this test (.ci/run installs it)"
    );
    eprintln!("SKIPPED: {program} is not installed ({install})");
}
