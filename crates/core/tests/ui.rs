//! Compile-time messages a user meets (trybuild): `get()` and `initial()`
//! on a keyed pool name what to write instead; a guard made owned moves
//! into a spawned task; `Limits` cannot be built as a literal nor `Health`
//! matched without a wildcard, so either can grow without a breaking
//! change.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/keyed_*.rs");
    t.compile_fail("tests/ui/shapes_*.rs");
    t.pass("tests/ui/owned_*.rs");
}
