//! Reserve + settle pairs on the in-memory wallet store, one thread (target ≥ 1,000,000 pairs/s).
//!
//! Each iteration formats a fresh lease id, reserves 0.01 on a team wallet through a
//! user → team → org cascade whose user wallet is absent (so the cascade walk is exercised), and
//! settles 0.0071 on it. Finished leases are pruned when the table reaches the bench's size, as a
//! host would on a timer.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use keeptrusts_core::pricing::Currency;
use keeptrusts_core::wallet::{Grant, MemoryWallets, ReserveOutcome, ReserveRequest, WalletScope};
use keeptrusts_core::{WalletKey, WalletStore};
use rust_decimal::Decimal;

fn bench(c: &mut Criterion) {
    let store = MemoryWallets::new();
    let team = WalletKey::new(WalletScope::Team, "engineering");
    let org = WalletKey::new(WalletScope::Org, "acme");
    store
        .allocate(&team, &Grant::set(Decimal::new(1_000_000_000, 0), "USD"), 0)
        .unwrap();
    store
        .allocate(&org, &Grant::set(Decimal::new(1_000, 0), "USD"), 0)
        .unwrap();
    let cascade = vec![
        WalletKey::new(WalletScope::User, "dev@yourco.com"),
        team,
        org,
    ];
    let amount = Decimal::new(1, 2);
    let actual = Decimal::new(71, 4);
    let mut group = c.benchmark_group("wallet");
    group.throughput(Throughput::Elements(1));
    // Finished leases stay in the table for the idempotency window; the table's steady-state size
    // is (request rate × window). Two sizes: 10,000 (e.g. 1,000 req/s × 10 s) and 100,000.
    for table in [10_000u64, 100_000] {
        let mut i: u64 = 0;
        group.bench_function(format!("reserve_settle_pair/table_{table}"), |b| {
            b.iter(|| {
                i += 1;
                let req = ReserveRequest {
                    lease_id: format!("rsv_{i}").into(),
                    cascade: cascade.clone(),
                    amount,
                    currency: Currency::USD,
                    ttl_ms: 600_000,
                    price: None,
                    force: None,
                };
                let ReserveOutcome::Reserved(lease) = store.reserve(&req, 0).unwrap() else {
                    panic!("the wallet ran dry");
                };
                black_box(store.settle(&lease.id, actual, 0).unwrap());
                if i.is_multiple_of(table) {
                    store.prune(1).unwrap();
                }
            });
        });
        store.prune(1).unwrap();
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
