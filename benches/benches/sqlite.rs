//! One request's storage work: reserve, then settle and append its event (one step) — on SQLite
//! (WAL, file on disk) and, when `KEEPTRUSTS_TEST_POSTGRES_URL` is set, on PostgreSQL. Issue 7's
//! targets are ≥ 10,000 requests/s on SQLite and ≥ 3,000 on PostgreSQL on this machine. Each is
//! measured from one thread (latency) and from 32 threads sharing the store, as a gateway's
//! concurrent requests do (the stores then commit many requests per transaction).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use keeptrusts_core::decision::{AuditStamp, PolicyResult};
use keeptrusts_core::event::{EventDraft, Journal};
use keeptrusts_core::pricing::{Currency, Usage};
use keeptrusts_core::wallet::{Grant, ReserveOutcome, ReserveRequest, WalletScope, WalletStore};
use keeptrusts_core::{PolicyKind, Role, Verdict, WalletKey};
use keeptrusts_store::{PgStore, SqliteStore, WriteBehind};
use rust_decimal::Decimal;

fn request(id: &str, cascade: &[WalletKey]) -> ReserveRequest {
    ReserveRequest {
        lease_id: format!("rsv_{id}").into(),
        cascade: cascade.to_vec(),
        amount: Decimal::new(1, 2),
        currency: Currency::USD,
        ttl_ms: 600_000,
        price: None,
        force: None,
    }
}

fn cycle(store: &dyn Journal, cascade: &[WalletKey], i: u64) {
    let ReserveOutcome::Reserved(lease) =
        store.reserve(&request(&i.to_string(), cascade), 0).unwrap()
    else {
        panic!("dry")
    };
    black_box(
        store
            .settle_and_append(&lease.id, Decimal::new(71, 4), 0, draft(&i.to_string()))
            .unwrap(),
    );
}

/// The same work through the gateway's write-behind ledger: reserve from memory, queue the
/// settlement and event for its writer.
fn cycle_behind(wb: &WriteBehind, cascade: &[WalletKey]) {
    let id = wb.new_request_id().unwrap();
    let ReserveOutcome::Reserved(lease) = wb.reserve(&request(&id, cascade), 0).unwrap() else {
        panic!("dry")
    };
    black_box(
        wb.complete(
            Some(&lease.id),
            Some(Decimal::new(71, 4)),
            0,
            Some(draft(&id)),
        )
        .unwrap(),
    );
}

fn draft(request_id: &str) -> EventDraft {
    EventDraft {
        team: Some("engineering".into()),
        user: Some("dev@yourco.com".into()),
        role: Some(Role::Member),
        model: Some("gpt-4o-mini".into()),
        policies: vec![PolicyResult {
            kind: PolicyKind::Rbac,
            verdict: Verdict::Allow,
            reason: None,
            entities: Default::default(),
        }],
        tokens: Some(Usage {
            prompt_tokens: 10,
            completion_tokens: 20,
        }),
        audit: Some(AuditStamp::default()),
        ..EventDraft::new(request_id, "default", 0)
    }
}

/// A billion USD on `key`, so no bench runs dry.
fn fund(store: &dyn WalletStore, key: &WalletKey) {
    store
        .allocate(key, &Grant::set(Decimal::new(1_000_000_000, 0), "USD"), 0)
        .unwrap();
}

const THREADS: u64 = 32;

/// `iters` cycles split over [`THREADS`] threads; returns the wall time.
fn concurrent(
    store: &(dyn Journal + Sync),
    cascade: &[WalletKey],
    base: u64,
    iters: u64,
) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                let mut i = t;
                while i < iters {
                    cycle(store, cascade, base + i);
                    i += THREADS;
                }
            });
        }
    });
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let key = WalletKey::new(WalletScope::Team, "engineering");
    let cascade = vec![
        WalletKey::new(WalletScope::User, "dev@yourco.com"),
        key.clone(),
    ];
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(1));

    let dir = std::env::temp_dir().join(format!("kt-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = SqliteStore::open(dir.join("bench.db")).unwrap();
    fund(&sqlite, &key);
    let mut i: u64 = 0;
    group.bench_function("sqlite/reserve_settle_append", |b| {
        b.iter(|| {
            i += 1;
            cycle(&sqlite, &cascade, i);
        });
    });
    group.bench_function("sqlite/reserve_settle_append_32_threads", |b| {
        b.iter_custom(|iters| {
            let t = concurrent(&sqlite, &cascade, i + 1, iters);
            i += iters + 1;
            t
        });
    });

    // the gateway's path: every iteration's settlement and event are written before the
    // measurement ends (the writer's batches are timed, not just the queueing)
    let behind = WriteBehind::sqlite(
        SqliteStore::open(dir.join("behind.db")).unwrap(),
        std::sync::Arc::new(|f: &mut dyn FnMut()| f()),
    )
    .unwrap();
    fund(behind.as_ref(), &key);
    group.bench_function("sqlite_write_behind/reserve_settle_append", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                cycle_behind(&behind, &cascade);
            }
            behind.flush().unwrap();
            start.elapsed()
        });
    });
    behind.close().unwrap();

    if let Ok(url) = std::env::var("KEEPTRUSTS_TEST_POSTGRES_URL") {
        let schema = format!("kt_bench_{}", std::process::id());
        let pg = PgStore::connect_in_schema(&url, Some(&schema)).unwrap();
        fund(&pg, &key);
        let mut j: u64 = 0;
        group.bench_function("postgres/reserve_settle_append", |b| {
            b.iter(|| {
                j += 1;
                cycle(&pg, &cascade, j);
            });
        });
        group.bench_function("postgres/reserve_settle_append_32_threads", |b| {
            b.iter_custom(|iters| {
                let t = concurrent(&pg, &cascade, j + 1, iters);
                j += iters + 1;
                t
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
