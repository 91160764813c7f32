//! The order in which the clients of a benchmark take their turns.

/// The order in which `n` clients take their turn in round `round`: each
/// round starts with the next client and walks the clients with a step
/// that changes from round to round (every step that visits them all: 1
/// and `n - 1`, forwards and backwards, and, for `n` ≥ 5, steps in
/// between), so that no client always comes first, nor always follows the
/// same clients (whose connections and tasks may still be winding down,
/// and whose load the server may still be working off).
pub fn turns(n: usize, round: usize) -> impl Iterator<Item = usize> {
    let n = n.max(1);
    let steps: Vec<usize> = (1..n.max(2)).filter(|&s| gcd(s, n) == 1).collect();
    let step = steps[round % steps.len()];
    let start = round % n;
    (0..n).map(move |i| (start + i * step) % n)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}
