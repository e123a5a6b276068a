//! Compile-time behaviour of the macros: every mistake is a spanned error (one per file under
//! `ui/fail`, plus `many_mistakes.rs` showing they are all reported at once), and every supported
//! shape compiles (`ui/pass`). Regenerate expected output with `TRYBUILD=overwrite` and review it.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/fail/*.rs");
    cases.pass("ui/pass/*.rs");
}
