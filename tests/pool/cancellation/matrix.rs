//! The matrix run: one test per point, each running its sub-matrix of cells.

use std::task::Poll;

use connpool::Pooled;

use crate::support::settle;

use super::cell::{Cancel, Cell, Dial, Point, Second};
use super::world::{Getter, World};
use super::{CELL_LIMIT, CHECKOUT, GetFuture, K, WRAPPER, advance_to, poll_once};

async fn run_cell(cell: Cell) {
    let mut world = World::setup(cell).await;
    let pool = world.pool.clone();
    let getter = if cell.cancel == Cancel::Select {
        tokio::select! {
            biased;
            () = async {
                // Let the `get` branch make its first poll (arming G).
                tokio::task::yield_now().await;
                world.after_arm().await;
                world.drive().await;
            } => Getter::Cancelled,
            got = pool.get_for(&K) => Getter::Got(got.map(Pooled::into_owned)),
        }
    } else {
        let mut fut: GetFuture<'_> = if cell.cancel == Cancel::Timeout {
            Box::pin(async {
                tokio::time::timeout(WRAPPER, pool.get_for(&K))
                    .await
                    .ok()
                    .map(|got| got.map(Pooled::into_owned))
            })
        } else {
            Box::pin(async { Some(pool.get_for(&K).await.map(Pooled::into_owned)) })
        };
        assert!(
            poll_once(fut.as_mut()).is_pending(),
            "{cell}: G should have to wait"
        );
        world.after_arm().await;
        world.drive().await;
        let at = match cell.cancel {
            Cancel::Deadline => Some(CHECKOUT),
            Cancel::Timeout => Some(WRAPPER),
            Cancel::Drop | Cancel::Select => None,
        };
        match at {
            None => {
                drop(fut);
                Getter::Cancelled
            }
            Some(at) => {
                advance_to(world.t0 + at).await;
                match poll_once(fut.as_mut()) {
                    Poll::Ready(Some(got)) => Getter::Got(got),
                    Poll::Ready(None) => {
                        drop(fut);
                        Getter::Cancelled
                    }
                    Poll::Pending => panic!("{cell}: G still pending after {at:?}"),
                }
            }
        }
    };
    world.check_getter(getter);
    settle().await;
    world.check_after_cancel();
    world.rest().await;
    world.check_second().await;
    world.check_final().await;
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "non-string panic".to_owned()),
        Err(e) => e.to_string(),
    }
}

/// Runs every cell of `point` (each in its own task, so one failing cell
/// does not hide the others) and reports the failing ones.
async fn run_point(point: Point) {
    let dials: &[Dial] = if point.uses_dial() {
        &Dial::ALL
    } else {
        &[Dial::Ok]
    };
    let mut failures = Vec::new();
    let mut cells = 0;
    for &dial in dials {
        for second in Second::ALL {
            for cancel in Cancel::ALL {
                let cell = Cell { point, dial, second, cancel };
                cells += 1;
                match tokio::spawn(tokio::time::timeout(CELL_LIMIT, run_cell(cell))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => failures.push(format!("{cell}: stuck")),
                    Err(e) => failures.push(panic_message(e)),
                }
            }
        }
    }
    assert_eq!(cells, dials.len() * Second::ALL.len() * Cancel::ALL.len());
    assert!(
        failures.is_empty(),
        "{} of {cells} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One test per point, each running its sub-matrix.
macro_rules! points {
    ($($test:ident: $point:ident,)*) => {$(
        #[tokio::test(start_paused = true)]
        async fn $test() {
            run_point(Point::$point).await;
        }
    )*};
}

points! {
    cancel_while_waiting_at_key_cap: AtKeyCap,
    cancel_while_waiting_at_pool_cap: AtPoolCap,
    cancel_while_own_dial_in_flight: Dialing,
    cancel_after_hand_off_with_own_dial_in_flight: HandedOff,
    cancel_after_hand_off_at_key_cap: HandedOffAtCap,
    cancel_after_own_dial_delivered: Dialed,
}
