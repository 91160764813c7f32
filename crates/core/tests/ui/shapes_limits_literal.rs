use connpool_core::Limits;

fn main() {
    // `Limits` grows a field without a breaking change: built from
    // `Pool::limits` and its setters, never as a literal.
    let _ = |current: Limits| Limits { max_open: 8, ..current };
}
