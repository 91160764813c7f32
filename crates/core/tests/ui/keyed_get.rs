use connpool_core::{Manager, Pool, async_trait};

/// A manager keyed by shard number.
struct Shards;

#[async_trait]
impl Manager for Shards {
    type Key = u32;
    type Connection = String;
    type Error = std::io::Error;

    async fn connect(&self, shard: &u32) -> Result<String, std::io::Error> {
        Ok(format!("shard {shard}"))
    }
}

async fn borrow(pool: Pool<Shards>) {
    let _conn = pool.get().await;
}

fn main() {
    let _ = borrow;
}
