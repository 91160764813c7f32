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

fn main() {
    let _builder = Pool::builder(Shards).initial(2);
}
