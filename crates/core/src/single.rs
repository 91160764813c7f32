//! [`Single`]: a keyed manager as a manager of one key.

use async_trait::async_trait;

use crate::manager::{Health, Lending, Manager};

/// A keyed manager made a manager of one key (`Key = ()`), so that its
/// pool is used with [`Pool::get`](crate::Pool::get): every method goes to
/// the manager inside, with its key. The ready-made managers make one with
/// their `single()` (the key their configuration names); any manager makes
/// one with [`Single::new`].
///
/// ```
/// use connpool::{Manager, Pool, Single, async_trait};
///
/// /// Connects to a shard by number.
/// struct Shards;
///
/// #[async_trait]
/// impl Manager for Shards {
///     type Key = u32;
///     type Connection = String;
///     type Error = std::io::Error;
///
///     async fn connect(&self, shard: &u32) -> Result<String, std::io::Error> {
///         Ok(format!("shard {shard}"))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(Single::new(Shards, 7)).build().await?;
/// assert_eq!(*pool.get().await?, "shard 7");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Single<M: Manager> {
    manager: M,
    key: M::Key,
}

impl<M: Manager> Single<M> {
    /// `manager`, for `key` alone.
    pub fn new(manager: M, key: M::Key) -> Self {
        Self { manager, key }
    }

    /// The keyed manager inside.
    pub fn manager(&self) -> &M {
        &self.manager
    }

    /// The one key.
    pub fn key(&self) -> &M::Key {
        &self.key
    }
}

#[async_trait]
impl<M: Manager> Manager for Single<M> {
    type Key = ();
    type Connection = M::Connection;
    type Error = M::Error;

    fn key_name(&self, _: &()) -> String {
        self.manager.key_name(&self.key)
    }

    fn default_max_open(&self) -> Option<usize> {
        self.manager.default_max_open()
    }

    async fn connect(&self, _: &()) -> Result<M::Connection, M::Error> {
        self.manager.connect(&self.key).await
    }

    async fn ping(&self, conn: &mut M::Connection) -> Result<(), M::Error> {
        self.manager.ping(conn).await
    }

    fn health(&self, conn: &mut M::Connection) -> Health {
        self.manager.health(conn)
    }

    fn lending(&self, conn: &M::Connection) -> Lending<M::Connection> {
        self.manager.lending(conn)
    }

    fn liveness(&mut self, liveness: &crate::manager::Liveness) {
        self.manager.liveness(liveness);
    }

    async fn recycle(&self, conn: &mut M::Connection) -> Result<(), M::Error> {
        self.manager.recycle(conn).await
    }

    async fn close(&self, conn: M::Connection) {
        self.manager.close(conn).await
    }
}

/// The key of a pool of one key: `()`. What [`Pool::get`](crate::Pool::get)
/// and [`Builder::initial`](crate::Builder::initial) ask of a pool's key,
/// so that calling them on a keyed pool says what to write instead.
/// Sealed: implemented for `()` alone.
#[diagnostic::on_unimplemented(
    message = "`get()` and `initial()` need a pool of one key (`Key = ()`); this pool is keyed by `{Self}`",
    label = "a keyed pool",
    note = "borrow a connection of a key with `pool.get_for(&key)` (and pre-warm one with `initial_for(key, n)`)",
    note = "or build the pool over one key, the manager's `single()` (or `connpool::Single::new(manager, key)`), and call `pool.get()`"
)]
pub trait OneKey: sealed::Sealed + Sized + 'static {
    /// The one key.
    #[doc(hidden)]
    fn key() -> &'static Self;
}

impl OneKey for () {
    fn key() -> &'static () {
        &()
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for () {}
}
