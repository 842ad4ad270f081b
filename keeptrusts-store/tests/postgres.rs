//! The shared store cases against PostgreSQL, plus many processes and threads on one wallet.
//!
//! The server comes from `KEEPTRUSTS_TEST_POSTGRES_URL` (`.ci/run` sets it to the machine's
//! server). Without the variable these tests print that they were not run; with it, an
//! unreachable server fails them. Each test works in a schema of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::process::Stdio;

use keeptrusts_core::event::{verify, EventStore, MemoryEvents};
use keeptrusts_core::wallet::{MemoryWallets, ReserveOutcome, WalletScope, WalletStore};
use keeptrusts_core::{MemoryEscalations, StoreError, WalletKey};
use keeptrusts_store::PgStore;
use proptest::prelude::*;
use rust_decimal::Decimal;

mod common;
use common::{
    concurrent_cycles, escalation_case, journal_case, op, rate_case, rate_race, request_cycle, run,
    ticket_case, JOURNAL_CASE,
};

fn url() -> Option<String> {
    let u = std::env::var("KEEPTRUSTS_TEST_POSTGRES_URL").ok();
    if u.is_none() {
        // a missing server must be a decision, never a silent pass
        assert!(
            std::env::var("KEEPTRUSTS_SKIP_POSTGRES").as_deref() == Ok("1"),
            "KEEPTRUSTS_TEST_POSTGRES_URL is not set (set KEEPTRUSTS_SKIP_POSTGRES=1 to skip the PostgreSQL tests)"
        );
        eprintln!("KEEPTRUSTS_SKIP_POSTGRES=1: PostgreSQL tests not run");
    }
    u
}

/// A store in an empty schema of its own.
fn fresh(url: &str, name: &str) -> PgStore {
    let schema = format!("kt_test_{}_{name}", std::process::id());
    let mut c = postgres::Client::connect(url, postgres::NoTls)
        .expect("KEEPTRUSTS_TEST_POSTGRES_URL is set but the server is unreachable");
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .unwrap();
    PgStore::connect_in_schema(url, Some(&schema)).unwrap()
}

fn truncate(url: &str, name: &str) {
    let schema = format!("kt_test_{}_{name}", std::process::id());
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.batch_execute(&format!("TRUNCATE {schema}.wallets, {schema}.leases"))
        .unwrap();
}

#[test]
fn postgres_wallets_decide_exactly_as_the_memory_store() {
    let Some(url) = url() else { return };
    let store = fresh(&url, "model");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..30), |ops| {
            truncate(&url, "model");
            let memory = MemoryWallets::new();
            prop_assert_eq!(run(&memory, &ops), run(&store, &ops));
            Ok(())
        })
        .unwrap();
}

#[test]
fn escalations_behave_the_same() {
    let Some(url) = url() else { return };
    let store = fresh(&url, "esc");
    assert_eq!(
        escalation_case(&MemoryEscalations::new()),
        escalation_case(&store)
    );
}

#[test]
fn event_chains_behave_the_same() {
    let Some(url) = url() else { return };
    let store = fresh(&url, "events");
    let memory = MemoryEvents::new();
    for draft in common::decision_drafts() {
        assert_eq!(
            memory.append(draft.clone()).unwrap(),
            store.append(draft).unwrap()
        );
    }
    let events = EventStore::list(&store, "default").unwrap();
    assert_eq!(events, memory.list("default").unwrap());
    assert_eq!(verify(&events, None), Ok(()));
    let now = 5 * 3_600_000 + 86_400_000 + 1;
    assert_eq!(
        EventStore::prune(&store, "default", now, 365).unwrap(),
        memory.prune("default", now, 365).unwrap()
    );
    let snapshot = store.snapshot("default").unwrap();
    assert_eq!(snapshot, memory.snapshot("default").unwrap());
    let opts = keeptrusts_core::event::VerifyOptions {
        now,
        default_days: 365,
        expect_head: None,
    };
    assert!(keeptrusts_core::event::verify_chain(&snapshot, &opts).is_ok());
}

#[test]
fn event_queries_filter_in_sql_exactly_as_the_core_does() {
    let Some(url) = url() else { return };
    common::event_query_case(&fresh(&url, "queries"));
}

#[test]
fn day_tallies_add_up_exactly_as_the_core_does() {
    let Some(url) = url() else { return };
    let compared = common::tally_case(&fresh(&url, "tallies"));
    assert!(compared > 100, "only {compared} non-empty comparisons");
}

#[test]
fn a_schema_from_before_the_tallies_is_backfilled_on_connect() {
    let Some(url) = url() else { return };
    let memory = common::fill_tally_events(&fresh(&url, "upgrade"));
    let schema = format!("kt_test_{}_upgrade", std::process::id());
    postgres::Client::connect(&url, postgres::NoTls)
        .unwrap()
        .batch_execute(&format!(
            "SET search_path TO {schema};
             DROP TABLE tallies, team_tallies, rate_counters; DROP INDEX events_time; DROP INDEX events_escalated;
             ALTER TABLE events DROP COLUMN requests, DROP COLUMN denied,
                 DROP COLUMN policy_events, DROP COLUMN cost, DROP COLUMN prompt_tokens,
                 DROP COLUMN completion_tokens, DROP COLUMN model, DROP COLUMN escalation;
             UPDATE keeptrusts_schema SET version = 4;"
        ))
        .unwrap();
    let reopened = PgStore::connect_in_schema(&url, Some(&schema)).unwrap();
    common::same_tallies(&reopened, &memory);
}

#[test]
fn directories_behave_the_same() {
    let Some(url) = url() else { return };
    let memory = keeptrusts_core::MemoryStore::new();
    assert_eq!(
        common::directory_case(&memory),
        common::directory_case(&fresh(&url, "directory"))
    );
}

#[test]
fn settle_and_append_is_one_step() {
    let Some(url) = url() else { return };
    assert_eq!(journal_case(&fresh(&url, "journal")), JOURNAL_CASE);
}

#[test]
fn concurrent_requests_share_transactions_and_lose_nothing() {
    let Some(url) = url() else { return };
    concurrent_cycles(&fresh(&url, "concurrent"), 32, 50);
}

#[test]
fn the_seed_flow_runs_on_postgres() {
    let Some(url) = url() else { return };
    common::seed_flow(&fresh(&url, "seed"));
}

#[test]
fn an_unreachable_server_fails_fast_and_closed() {
    let started = std::time::Instant::now();
    let err = PgStore::connect("postgres://postgres@127.0.0.1:1/test").unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(err.code(), "store_unavailable");
}

/// Retries a store call that failed closed (`store_unavailable`); any other error fails the test.
fn retry<T>(mut f: impl FnMut() -> Result<T, keeptrusts_core::wallet::WalletError>) -> T {
    for _ in 0..20 {
        match f() {
            Ok(v) => return v,
            Err(e) if e.code() == "store_unavailable" => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the store stayed unavailable for 20 attempts")
}

const THREADS: usize = 32;
const PER_THREAD: usize = 25;

/// Worker process: 32 threads reserving 1.00 and settling 0.73 on one wallet.
#[test]
#[ignore = "spawned by four_processes_of_32_threads_never_overspend"]
fn postgres_worker() {
    let (Ok(url), Ok(schema), Ok(tag)) = (
        std::env::var("KEEPTRUSTS_TEST_POSTGRES_URL"),
        std::env::var("KT_PG_WORKER_SCHEMA"),
        std::env::var("KT_WORKER_TAG"),
    ) else {
        return;
    };
    let store = std::sync::Arc::new(PgStore::connect_in_schema(&url, Some(&schema)).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, tag) = (std::sync::Arc::clone(&store), tag.clone());
            std::thread::spawn(move || {
                let key = WalletKey::new(WalletScope::Team, "engineering");
                let mut charged = Decimal::ZERO;
                for i in 0..PER_THREAD {
                    let req = common::dollar_lease(format!("{tag}-{t}-{i}"), &key, 60_000);
                    // Under this deliberate overload (128 threads, one row, 2 cores) a call may
                    // fail closed waiting for a connection; a client retries, and both calls are
                    // idempotent per lease id, so a retry never holds or charges twice.
                    let reserved = retry(|| store.reserve(&req, 0));
                    if let ReserveOutcome::Reserved(l) = reserved {
                        charged += retry(|| store.settle(&l.id, Decimal::new(73, 2), 0)).charged;
                    }
                }
                charged
            })
        })
        .collect();
    let total: Decimal = handles.into_iter().map(|h| h.join().unwrap()).sum();
    println!("\nCHARGED={total}");
}

#[test]
fn four_processes_of_32_threads_never_overspend() {
    let Some(url) = url() else { return };
    let store = fresh(&url, "load");
    let key = WalletKey::new(WalletScope::Team, "engineering");
    common::fund(&store, &key, 1000);
    let schema = format!("kt_test_{}_load", std::process::id());
    let vars = [
        ("KEEPTRUSTS_TEST_POSTGRES_URL", url.as_str()),
        ("KT_PG_WORKER_SCHEMA", schema.as_str()),
    ];
    let total = common::run_workers("postgres_worker", &["p0", "p1", "p2", "p3"], &vars);
    // 3,200 attempts of 1.00 against 1,000.00 settled at 0.73: the wallet ran dry
    common::drawn_exactly(&store, &key, total);
}

/// Worker for the PostgreSQL SIGKILL test: cycles until killed.
#[test]
#[ignore = "spawned by a_killed_process_loses_nothing_committed_on_postgres"]
fn postgres_crash_worker() {
    let (Ok(url), Ok(schema)) = (
        std::env::var("KEEPTRUSTS_TEST_POSTGRES_URL"),
        std::env::var("KT_PG_CRASH_SCHEMA"),
    ) else {
        return;
    };
    let store = PgStore::connect_in_schema(&url, Some(&schema)).unwrap();
    for i in 0..u64::MAX {
        request_cycle(&store, "k", i);
    }
}

#[test]
fn a_killed_process_loses_nothing_committed_on_postgres() {
    let Some(url) = url() else { return };
    let store = fresh(&url, "crash");
    let key = WalletKey::new(WalletScope::Team, "engineering");
    common::fund(&store, &key, 1_000_000);
    let child = common::worker("postgres_crash_worker")
        .env("KEEPTRUSTS_TEST_POSTGRES_URL", &url)
        .env(
            "KT_PG_CRASH_SCHEMA",
            format!("kt_test_{}_crash", std::process::id()),
        )
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    common::kill_after(child, 2_000);
    // a COMMIT the server had already received when the client died still completes: let the
    // server finish it before reading (reading meanwhile could see its lease but not its event)
    std::thread::sleep(std::time::Duration::from_millis(1_000));
    common::nothing_committed_lost(&store);
}

#[test]
fn tickets_behave_the_same() {
    let Some(url) = url() else { return };
    let store = fresh(&url, "tickets");
    assert_eq!(
        ticket_case(&keeptrusts_core::MemoryTickets::new()),
        ticket_case(&store)
    );
}

#[test]
fn rate_counters_decide_exactly_as_the_memory_counters() {
    let Some(url) = url() else { return };
    let store = fresh(&url, "rate");
    let memory = keeptrusts_core::MemoryRateCounters::new();
    assert_eq!(rate_case(&memory), rate_case(&store));
}

#[test]
fn rate_counters_shared_by_two_stores_never_admit_past_a_limit() {
    let Some(url) = url() else { return };
    let a = fresh(&url, "rate_race");
    let schema = format!("kt_test_{}_rate_race", std::process::id());
    let b = PgStore::connect_in_schema(&url, Some(&schema)).unwrap();
    // two stores (two gateways' pools) on one schema, 8 threads each: the group's 5 a minute,
    // exactly
    let (na, nb) = std::thread::scope(|s| {
        let ha = s.spawn(|| rate_race(&a, 8, 10));
        let hb = s.spawn(|| rate_race(&b, 8, 10));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    assert_eq!(na + nb, 5);
}
