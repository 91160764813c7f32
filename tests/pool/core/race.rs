//! The idle/dial race: a return and a getter's own dial, won both ways.

use connpool::{Pool, Pooled};
use tokio::task::JoinHandle;

use crate::support::*;

use super::M;

// ---------------------------------------------------------------------------
// 6. The idle/dial race, won both ways
// ---------------------------------------------------------------------------

/// How every race starts (`max_open(2)`): connection 1 lent, and a getter
/// `g` of key 1 waiting on its own dial, which `gate` holds.
struct Race {
    mock: M,
    pool: Pool<M>,
    c1: Pooled<'static, M>,
    gate: Gate,
    g: JoinHandle<Got<M>>,
}

async fn race() -> Race {
    let (mock, pool) = M::pool(|b| b.max_open(2)).await;
    let c1 = Pooled::into_owned(ok(pool.get_for(&1).await));
    let gate = mock.gate(1);
    let g = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 1, dialing: 1, waiting: 1, ..ZERO }
    );
    check_counts(&pool, &[1]);
    Race { mock, pool, c1, gate, g }
}

/// A return beats the getter's own dial: the getter gets the returned conn,
/// the dialed one goes idle afterwards.
#[tokio::test(start_paused = true)]
async fn race_return_first_then_dial_goes_idle() {
    let Race { mock, pool, c1, gate, g } = race().await;
    drop(c1);
    check_counts(&pool, &[1]);
    let got = ok(join(g).await);
    assert_eq!(got.id, 1);
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 1, dialing: 1, ..ZERO }
    );

    gate.succeed();
    settle().await;
    check_counts(&pool, &[1]);
    assert_eq!(counts(&pool), Counts { open: 2, idle: 1, lent: 1, ..ZERO });
    assert_eq!(mock.connects(), 2);
    let next = ok(pool.get_for(&1).await);
    assert_eq!(next.id, 2, "the dialed conn was kept idle");
    assert_eq!(mock.connects(), 2);
    assert!(mock.closed().is_empty());
}

/// Same race, with a second waiter arriving meanwhile: the dialed conn goes
/// to it.
#[tokio::test(start_paused = true)]
async fn race_return_first_then_dial_goes_to_next_waiter() {
    let Race { mock, pool, c1, gate, g } = race().await;
    drop(c1);
    let got = ok(join(g).await);
    assert_eq!(got.id, 1);

    // At the key's cap (one lent, one dialing): it waits, no dial.
    let g2 = spawn_get(&pool, 1);
    settle().await;
    assert_eq!(
        counts(&pool),
        Counts { open: 2, lent: 1, dialing: 1, waiting: 1, ..ZERO }
    );
    check_counts(&pool, &[1]);
    assert_eq!(mock.connects(), 2);

    gate.succeed();
    let got2 = ok(join(g2).await);
    assert_eq!(got2.id, 2);
    check_counts(&pool, &[1]);
    assert_eq!(counts(&pool), Counts { open: 2, lent: 2, ..ZERO });
    assert_eq!(mock.connects(), 2);
}

/// The dial beats a return: the getter gets the dialed conn, the returned
/// one goes idle.
#[tokio::test(start_paused = true)]
async fn race_dial_first_then_return_goes_idle() {
    let Race { mock, pool, c1, gate, g } = race().await;

    gate.succeed();
    let got = ok(join(g).await);
    assert_eq!(got.id, 2);
    check_counts(&pool, &[1]);
    assert_eq!(counts(&pool), Counts { open: 2, lent: 2, ..ZERO });

    drop(c1);
    check_counts(&pool, &[1]);
    assert_eq!(counts(&pool), Counts { open: 2, idle: 1, lent: 1, ..ZERO });
    let next = ok(pool.get_for(&1).await);
    assert_eq!(next.id, 1);
    assert_eq!(mock.connects(), 2);
    assert!(mock.closed().is_empty());
}
