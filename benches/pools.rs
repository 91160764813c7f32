//! Checkout + return against the other Rust pools (work in progress).
fn main() {}
