//! What a pool with the documented defaults does (the Builder docs' table
//! against the defaults: the core's unit tests of the builder).

use connpool::Pool;

use crate::support;
use crate::support::check_counts;

use super::M;

/// A pool built with no setting dials nothing: no pre-warming, no
/// background dial (`min_idle` 0), nothing open. (Each default as built,
/// against its constant and its documented value: the core's unit tests of
/// the builder.)
#[tokio::test(start_paused = true)]
async fn a_pool_with_the_defaults_dials_nothing() {
    let mock = M::new();
    let pool = Pool::builder(mock.clone()).build().await.unwrap();
    assert_eq!(mock.connects(), 0, "no pre-warming by default");
    support::settle().await;
    assert_eq!(mock.connects(), 0, "no background dial by default");
    assert_eq!(pool.state().open, 0);
    check_counts(&pool, &[]);
    pool.close().await;
}
