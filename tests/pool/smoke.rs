//! The default builder end to end: two gets, a waiter served by a return,
//! the returns kept idle, close.

use connpool::Pool;

use crate::support::*;

#[tokio::test(start_paused = true)]
async fn smoke() {
    let mock = Mock::<u32>::new();
    let pool = Pool::builder(mock.clone())
        .max_open(2)
        .build()
        .await
        .unwrap();
    let a = pool.get_for(&1).await.unwrap();
    let b = pool.get_for(&1).await.unwrap();
    check_counts(&pool, &[1]);
    let p2 = pool.clone();
    let t = tokio::spawn(async move { p2.get_for(&1).await.map(|c| c.id) });
    settle().await;
    assert_eq!(pool.state().waiting, 1);
    let aid = a.id;
    drop(a);
    assert_eq!(t.await.unwrap().unwrap(), aid);
    drop(b);
    settle().await;
    check_counts(&pool, &[1]);
    assert_eq!(pool.state().idle, 2);
    pool.close().await;
    assert_eq!(mock.closed().len(), 2);
}

/// A get's future carries the common path's state only: everything after
/// a first attempt that lent nothing (a wait, a health check, a
/// `before_lend` hook, a retry) is boxed when taken. Every caller that
/// moves the future (into a task, a `tower` service, `async-trait`'s box,
/// a `join`) copies what it holds; inline, the wait's state alone made it
/// several times larger.
#[tokio::test]
async fn a_get_s_future_stays_small() {
    let keyed = Pool::builder(Mock::<u32>::new()).build().await.unwrap();
    let single = Pool::builder(Mock::<()>::new()).build().await.unwrap();
    let get_for = std::mem::size_of_val(&keyed.get_for(&1));
    let get = std::mem::size_of_val(&single.get());
    assert!(
        get_for <= 128 && get <= 128,
        "get_for: {get_for} bytes, get: {get}"
    );
}

/// A checkout timeout names the key it waited for (as its manager names
/// it), so an operator reading the log knows which destination is short;
/// a pool of one key leaves it out.
#[tokio::test(start_paused = true)]
async fn a_checkout_timeout_names_its_key() {
    let (_mock, pool) = Mock::<u32>::pool(|b| {
        b.max_open(1)
            .checkout_timeout(std::time::Duration::from_secs(1))
    })
    .await;
    let held = ok(pool.get_for(&7).await);
    let err = pool.get_for(&7).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(
        err.to_string()
            .starts_with("no connection available to 7 within the checkout deadline"),
        "{err}"
    );
    drop(held);

    let (_mock, single) = Mock::<()>::pool(|b| {
        b.max_open(1)
            .checkout_timeout(std::time::Duration::from_secs(1))
    })
    .await;
    let held = ok(single.get().await);
    let err = single.get().await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no connection available within the checkout deadline"),
        "{err}"
    );
    drop(held);
}
