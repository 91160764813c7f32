//! One request of each workload: on a tokio-postgres client or a shared
//! connection's handle (its statements prepared by the pool's cache or
//! not), and through sqlx.

use connpool::managers::postgres::SharedPgConnection;
use futures_util::future::try_join_all;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use super::{BoxError, Workload};

const SELECT_WORLD: &str = "SELECT id, randomnumber FROM world WHERE id = $1";
const SELECT_FORTUNES: &str = "SELECT id, message FROM fortune";
const UPDATE_WORLDS: &str = "UPDATE world SET randomnumber = v.r \
     FROM (SELECT unnest($1::int[]) AS id, unnest($2::int[]) AS r) AS v WHERE world.id = v.id";
/// Rows read (and written) by one `queries` or `updates` request.
const QUERIES: usize = 20;

fn random_id() -> i32 {
    fastrand::i32(1..=10_000)
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// What a request runs its prepared statements on: a tokio-postgres client
/// or a shared connection's handle.
pub(super) trait Statements: Sync {
    fn query_one(
        &self,
        statement: &Statement,
        params: Params<'_>,
    ) -> impl Future<Output = Result<Row, BoxError>> + Send;
    fn query(
        &self,
        statement: &Statement,
        params: Params<'_>,
    ) -> impl Future<Output = Result<Vec<Row>, BoxError>> + Send;
    fn execute(
        &self,
        statement: &Statement,
        params: Params<'_>,
    ) -> impl Future<Output = Result<u64, BoxError>> + Send;
}

impl Statements for Client {
    async fn query_one(&self, statement: &Statement, params: Params<'_>) -> Result<Row, BoxError> {
        Ok(Client::query_one(self, statement, params).await?)
    }
    async fn query(&self, statement: &Statement, params: Params<'_>) -> Result<Vec<Row>, BoxError> {
        Ok(Client::query(self, statement, params).await?)
    }
    async fn execute(&self, statement: &Statement, params: Params<'_>) -> Result<u64, BoxError> {
        Ok(Client::execute(self, statement, params).await?)
    }
}

impl Statements for SharedPgConnection {
    async fn query_one(&self, statement: &Statement, params: Params<'_>) -> Result<Row, BoxError> {
        Ok(SharedPgConnection::query_one(self, statement, params).await?)
    }
    async fn query(&self, statement: &Statement, params: Params<'_>) -> Result<Vec<Row>, BoxError> {
        Ok(SharedPgConnection::query(self, statement, params).await?)
    }
    async fn execute(&self, statement: &Statement, params: Params<'_>) -> Result<u64, BoxError> {
        Ok(SharedPgConnection::execute(self, statement, params).await?)
    }
}

/// One request on `client`, its statements from `prepare`.
pub(super) async fn on_client<'a, C, F, Fut, E>(
    client: &'a C,
    workload: Workload,
    prepare: F,
) -> Result<(), BoxError>
where
    C: Statements,
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = Result<Statement, E>> + 'a,
    BoxError: From<E>,
{
    match workload {
        Workload::Single => {
            let select = prepare(SELECT_WORLD).await?;
            let row = client.query_one(&select, &[&random_id()]).await?;
            std::hint::black_box((row.get::<_, i32>(0), row.get::<_, i32>(1)));
        }
        Workload::Queries => {
            std::hint::black_box(worlds(client, &prepare(SELECT_WORLD).await?).await?);
        }
        Workload::Fortunes => {
            let select = prepare(SELECT_FORTUNES).await?;
            let rows = client.query(&select, &[]).await?;
            let fortunes = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            std::hint::black_box(render(fortunes));
        }
        Workload::Updates => {
            let select = prepare(SELECT_WORLD).await?;
            let update = prepare(UPDATE_WORLDS).await?;
            let (ids, numbers) = new_numbers(worlds(client, &select).await?);
            client.execute(&update, &[&ids, &numbers]).await?;
        }
    }
    Ok(())
}

/// [`QUERIES`] rows of `world`, pipelined on `client`.
async fn worlds(client: &impl Statements, select: &Statement) -> Result<Vec<(i32, i32)>, BoxError> {
    let ids: Vec<i32> = (0..QUERIES).map(|_| random_id()).collect();
    let params: Vec<[&(dyn ToSql + Sync); 1]> = ids.iter().map(|id| [id as _]).collect();
    let rows = try_join_all(params.iter().map(|p| client.query_one(select, p))).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The rows' ids (sorted, once each: concurrent updates then lock rows in
/// one order) and new random numbers for them.
fn new_numbers(mut rows: Vec<(i32, i32)>) -> (Vec<i32>, Vec<i32>) {
    rows.sort_unstable();
    rows.dedup_by_key(|r| r.0);
    rows.into_iter().map(|(id, _)| (id, random_id())).unzip()
}

/// The fortunes page: one fortune added, sorted by message, escaped.
fn render(mut fortunes: Vec<(i32, String)>) -> String {
    fortunes.push((0, "Additional fortune added at request time.".to_owned()));
    fortunes.sort_by(|a, b| a.1.cmp(&b.1));
    let mut html = String::from(
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>",
    );
    for (id, message) in &fortunes {
        html.push_str(&format!("<tr><td>{id}</td><td>"));
        for c in message.chars() {
            match c {
                '<' => html.push_str("&lt;"),
                '>' => html.push_str("&gt;"),
                '&' => html.push_str("&amp;"),
                '"' => html.push_str("&quot;"),
                '\'' => html.push_str("&#x27;"),
                c => html.push(c),
            }
        }
        html.push_str("</td></tr>");
    }
    html.push_str("</table></body></html>");
    html
}

/// One request through sqlx (its statement cache is per connection, on by
/// default; one connection per request, its queries one after another).
pub(super) async fn on_sqlx(pool: &sqlx::PgPool, workload: Workload) -> Result<(), BoxError> {
    let mut conn = pool.acquire().await?;
    match workload {
        Workload::Single => {
            let row: (i32, i32) = sqlx::query_as(SELECT_WORLD)
                .bind(random_id())
                .fetch_one(&mut *conn)
                .await?;
            std::hint::black_box(row);
        }
        Workload::Queries | Workload::Updates => {
            let mut rows = Vec::with_capacity(QUERIES);
            for _ in 0..QUERIES {
                let row: (i32, i32) = sqlx::query_as(SELECT_WORLD)
                    .bind(random_id())
                    .fetch_one(&mut *conn)
                    .await?;
                rows.push(row);
            }
            if workload == Workload::Updates {
                let (ids, numbers) = new_numbers(rows);
                sqlx::query(UPDATE_WORLDS)
                    .bind(ids)
                    .bind(numbers)
                    .execute(&mut *conn)
                    .await?;
            } else {
                std::hint::black_box(rows);
            }
        }
        Workload::Fortunes => {
            let fortunes: Vec<(i32, String)> = sqlx::query_as(SELECT_FORTUNES)
                .fetch_all(&mut *conn)
                .await?;
            std::hint::black_box(render(fortunes));
        }
    }
    Ok(())
}
