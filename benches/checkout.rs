//! Checkout + return through the pool with a no-op manager: the cost of the
//! pool itself, with 1, 100 and 10,000 keys (what many keys cost over one).
//! The same get-then-drop loop for each: one pre-warmed connection per key,
//! `k` cycling over the keys; the default config except the limits that let
//! the pool hold one connection per key. The other pools are in `pools.rs`,
//! naive dialing in `naive.rs`; figures in BENCHMARKS.md.

use std::hint::black_box;

mod support;

use connpool::Pool;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use support::Noop;

fn checkout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("checkout_return");
    for keys in [1u32, 100, 10_000] {
        let pool = rt.block_on(async {
            let mut b = Pool::builder(Noop)
                .max_open(keys as usize)
                .max_open_per_key(1);
            for k in 0..keys {
                b = b.initial_for(k, 1);
            }
            b.build().await.unwrap()
        });
        let mut k = 0u32;
        group.bench_with_input(BenchmarkId::new("keys", keys), &keys, |b, &keys| {
            b.to_async(&rt).iter(|| {
                k = (k + 1) % keys;
                let pool = &pool;
                async move {
                    let conn = pool.get_for(&k).await.unwrap();
                    black_box(*conn);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, checkout);
criterion_main!(benches);
