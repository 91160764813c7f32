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
