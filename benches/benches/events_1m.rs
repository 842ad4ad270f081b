//! Dashboards and pages of events over a million events (issue 19): 10 teams of 100 members over
//! 100 days, on SQLite (a file, WAL) and, when `KEEPTRUSTS_TEST_POSTGRES_URL` is set, on
//! PostgreSQL. Measured through `dashboard::load`, the function the admin API, the CLI and the
//! bindings call: a member's page of 50 events, a member's overview (the team's per-day
//! aggregate), the same over the last 7 days, a member's spend (all time, and 30 days cut
//! within a day by week), an admin's usage section and an owner's org roll-up.
//!
//! The SQLite file is built once in `target/kt-bench-events.db` (about a minute) and reused;
//! `KT_BENCH_EVENTS` sets the count (default 1,000,000).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use keeptrusts_core::dashboard::{self, Query, Section};
use keeptrusts_core::decision::AuditStamp;
use keeptrusts_core::event::{CostRecord, EventDraft, EventStore};
use keeptrusts_core::pricing::{Currency, Usage};
use keeptrusts_core::{Principal, Role, Verdict};
use keeptrusts_store::{PgStore, SqliteStore};
use rust_decimal::Decimal;

const DAY: i64 = 86_400_000;
const T0: i64 = 1_790_000_000_000;

fn count() -> u64 {
    std::env::var("KT_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn draft(i: u64, n: u64) -> EventDraft {
    let team = format!("team{}", i % 10);
    let user = format!("u{}@{team}.example", (i / 10) % 100);
    let timestamp = T0 + i64::try_from(i * 100 * DAY as u64 / n).unwrap();
    EventDraft {
        team: Some(team),
        user: Some(user),
        role: Some(Role::Member),
        model: Some(
            match i % 3 {
                0 => "gpt-4o-mini",
                1 => "gpt-4o",
                _ => "claude-sonnet-4",
            }
            .into(),
        ),
        verdict: if i.is_multiple_of(17) {
            Verdict::Block
        } else {
            Verdict::Allow
        },
        cost: Some(CostRecord {
            estimated: Decimal::new(120, 6),
            settled: Some(Decimal::new(i64::try_from(i % 97).unwrap() + 3, 6)),
            currency: Currency::USD,
            wallet: None,
            overrun: false,
            unmetered: false,
        }),
        tokens: Some(Usage {
            prompt_tokens: 100 + i % 50,
            completion_tokens: 300,
        }),
        audit: Some(AuditStamp::default()),
        ..EventDraft::new(&format!("b{i}"), "default", timestamp)
    }
}

/// Appends `n` events from 32 threads (the store commits many per transaction).
fn fill(store: &(dyn EventStore + Sync), n: u64) {
    let threads = 32;
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut i = t;
                while i < n {
                    store.append(draft(i, n)).unwrap();
                    i += threads;
                }
            });
        }
    });
}

fn sqlite(n: u64) -> SqliteStore {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(format!("kt-bench-events-{n}.db"));
    if let Ok(s) = SqliteStore::open(&path) {
        let have = s
            .tail("default", 1)
            .map(|c| c.head.map_or(0, |h| h.seq + 1))
            .unwrap_or(0);
        if have == n {
            return s;
        }
    }
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
    let s = SqliteStore::open(&path).unwrap();
    eprintln!("building {} with {n} events…", path.display());
    fill(&s, n);
    s
}

fn cases(c: &mut Criterion, name: &str, store: &dyn EventStore, n: u64) {
    let member = Principal::new("u7@team3.example", "team3", Role::Member);
    let admin = Principal::new("lead@team3.example", "team3", Role::Admin);
    let last = T0 + 100 * DAY;
    let mut page = Query::new("team3", Section::Events);
    page.limit = Some(50);
    let overview = Query::new("team3", Section::Overview);
    let mut week = Query::new("team3", Section::Overview);
    week.filter.from = Some(last - 7 * DAY);
    let usage = Query::new("team3", Section::Usage);
    let spend = Query::new("team3", Section::Spend);
    let mut month = Query::new("team3", Section::Spend);
    month.filter.from = Some(last - 30 * DAY - 3_600_000);
    month.granularity = dashboard::Granularity::Week;
    let rollup = Query::new(dashboard::ORG_ROLLUP, Section::Overview);
    let owner = Principal::new("owner@example.com", "team0", Role::Owner);
    let mut group = c.benchmark_group(format!("events_{n}"));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for (label, viewer, q) in [
        ("member_page_of_50", &member, &page),
        ("member_overview_all_time", &member, &overview),
        ("member_overview_last_7_days", &member, &week),
        ("member_spend_all_time", &member, &spend),
        ("member_spend_last_30_days_by_week", &member, &month),
        ("admin_usage_all_time", &admin, &usage),
        ("owner_org_overview_all_time", &owner, &rollup),
    ] {
        group.bench_function(format!("{name}/{label}"), |b| {
            b.iter(|| black_box(dashboard::load(store, "default", viewer, q).unwrap()));
        });
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    let n = count();
    let s = sqlite(n);
    cases(c, "sqlite", &s, n);
    if let Ok(url) = std::env::var("KEEPTRUSTS_TEST_POSTGRES_URL") {
        let schema = format!("kt_bench_events_{n}");
        let pg = PgStore::connect_in_schema(&url, Some(&schema)).unwrap();
        let have = pg
            .tail("default", 1)
            .map(|c| c.head.map_or(0, |h| h.seq + 1))
            .unwrap_or(0);
        if have != n {
            assert_eq!(have, 0, "schema {schema} holds a partial run: drop it");
            eprintln!("filling PostgreSQL schema {schema} with {n} events…");
            fill(&pg, n);
        }
        cases(c, "postgres", &pg, n);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
