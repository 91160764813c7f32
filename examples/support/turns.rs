//! The order in which the clients of a benchmark take their turns.

/// The order in which `n` clients take their turn in round `round`: each
/// round starts with the next client, every other one going backwards, so
/// that no client always comes first or always follows the same client
/// (whose connections and tasks may still be winding down).
pub fn turns(n: usize, round: usize) -> impl Iterator<Item = usize> {
    let start = round % n.max(1);
    let step = if round.is_multiple_of(2) {
        1
    } else {
        n.max(1) - 1
    };
    (0..n).map(move |i| (start + i * step) % n)
}
