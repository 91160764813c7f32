use connpool_core::{Manager, Pool, Pooled, async_trait};

struct Db;

#[async_trait]
impl Manager for Db {
    type Key = ();
    type Connection = u32;
    type Error = std::io::Error;

    async fn connect(&self, _: &()) -> Result<u32, std::io::Error> {
        Ok(7)
    }
}

async fn borrow(pool: Pool<Db>) {
    let conn = Pooled::into_owned(pool.get().await.unwrap());
    tokio::spawn(async move {
        let _ = *conn;
    });
}

fn main() {
    let _ = borrow;
}
