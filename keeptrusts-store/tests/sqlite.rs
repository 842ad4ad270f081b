//! The same cases against the in-memory stores and SQLite: results must be identical.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::process::Command;

use keeptrusts_core::event::{verify, EventDraft, EventStore, MemoryEvents};
use keeptrusts_core::pricing::Currency;
use keeptrusts_core::wallet::{
    AllocateMode, MemoryWallets, ReserveOutcome, ReserveRequest, WalletScope, WalletStore,
};
use keeptrusts_core::{
    ChatRequest, Engine, MemoryEscalations, Principal, RequestContext, Role, Stores, WalletKey,
};
use keeptrusts_store::SqliteStore;

mod common;
use common::{
    check_after_crash, concurrent_cycles, escalation_case, journal_case, op, rate_case, rate_race,
    request_cycle, run, ticket_case, JOURNAL_CASE,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_wallets_decide_exactly_as_the_memory_store(ops in proptest::collection::vec(op(), 1..40)) {
        let memory = MemoryWallets::new();
        let sqlite = SqliteStore::open_in_memory().unwrap();
        prop_assert_eq!(run(&memory, &ops), run(&sqlite, &ops));
    }
}

#[test]
fn settle_and_append_is_one_step() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert_eq!(journal_case(&store), JOURNAL_CASE);
}

#[test]
fn concurrent_requests_share_transactions_and_lose_nothing() {
    let dir = std::env::temp_dir().join(format!("kt-sqlite-conc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("conc.db");
    let _ = std::fs::remove_file(&path);
    let store = SqliteStore::open(&path).unwrap();
    concurrent_cycles(&store, 16, 100);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn event_queries_filter_in_sql_exactly_as_the_core_does() {
    let lines = common::event_query_case(&SqliteStore::open_in_memory().unwrap());
    assert!(
        lines.iter().any(|l| l.ends_with("[22, 24, 26, 28]")),
        "{lines:?}"
    );
}

#[test]
fn day_tallies_add_up_exactly_as_the_core_does() {
    let compared = common::tally_case(&SqliteStore::open_in_memory().unwrap());
    assert!(compared > 100, "only {compared} non-empty comparisons");
}

#[test]
fn a_database_from_before_the_tallies_is_backfilled_on_open() {
    let dir = std::env::temp_dir().join(format!("kt-upgrade-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kt.db");
    let memory = common::fill_tally_events(&SqliteStore::open(&path).unwrap());
    // back to schema 5: no per-team tallies (the migration fills them from the per-user ones)
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE team_tallies; DROP TABLE rate_counters; PRAGMA user_version = 5;",
        )
        .unwrap();
    common::same_tallies(&SqliteStore::open(&path).unwrap(), &memory);
    // back to schema 4: no tally columns, no tallies table
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE team_tallies; DROP TABLE rate_counters;
             DROP INDEX events_time; DROP INDEX events_escalated; DROP TABLE tallies;
             ALTER TABLE events DROP COLUMN requests; ALTER TABLE events DROP COLUMN denied;
             ALTER TABLE events DROP COLUMN policy_events; ALTER TABLE events DROP COLUMN cost;
             ALTER TABLE events DROP COLUMN prompt_tokens;
             ALTER TABLE events DROP COLUMN completion_tokens;
             ALTER TABLE events DROP COLUMN model; ALTER TABLE events DROP COLUMN escalation;
             PRAGMA user_version = 4;",
        )
        .unwrap();
    common::same_tallies(&SqliteStore::open(&path).unwrap(), &memory);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn directories_behave_the_same() {
    let memory = keeptrusts_core::MemoryStore::new();
    assert_eq!(
        common::directory_case(&memory),
        common::directory_case(&SqliteStore::open_in_memory().unwrap())
    );
}

#[test]
fn escalations_behave_the_same() {
    let sqlite = SqliteStore::open_in_memory().unwrap();
    assert_eq!(
        escalation_case(&MemoryEscalations::new()),
        escalation_case(&sqlite)
    );
}

#[test]
fn event_chains_behave_the_same_and_survive_reopening() {
    let dir = std::env::temp_dir().join(format!("kt-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("events.db");
    let _ = std::fs::remove_file(&path);
    let engine = Engine::from_yaml("pack: {name: e, version: \"1\"}\npolicies: {chain: [rbac, audit-logger]}\npolicy: {audit-logger: {retention_days: 1}}\n").unwrap();
    let p = Principal::new("u@yourco.com", "legal", Role::Member);
    let esc = MemoryEscalations::new();
    let drafts: Vec<EventDraft> = (0..10)
        .map(|i| {
            let id = format!("r{i}");
            let d = engine
                .evaluate(
                    &p,
                    &ChatRequest::user("m", "hi"),
                    &RequestContext::new(&id, i * 3_600_000),
                    &Stores::new(&esc),
                )
                .unwrap();
            EventDraft::from_decision(&p, &d, &id, Some("m"), i * 3_600_000)
        })
        .collect();
    let memory = MemoryEvents::new();
    {
        let sqlite = SqliteStore::open(&path).unwrap();
        for d in &drafts {
            assert_eq!(
                memory.append(d.clone()).unwrap(),
                sqlite.append(d.clone()).unwrap()
            );
        }
    }
    let sqlite = SqliteStore::open(&path).unwrap();
    let (a, b) = (
        memory.list("default").unwrap(),
        EventStore::list(&sqlite, "default").unwrap(),
    );
    assert_eq!(a, b);
    assert_eq!(verify(&b, None), Ok(()));
    let now = 5 * 3_600_000 + 86_400_000 + 1;
    assert_eq!(
        memory.prune("default", now, 365).unwrap(),
        EventStore::prune(&sqlite, "default", now, 365).unwrap()
    );
    assert_eq!(
        memory.anchor("default").unwrap(),
        sqlite.anchor("default").unwrap()
    );
    // pruned events keep their place (content removed), and both stores hold the same chain
    let snapshot = sqlite.snapshot("default").unwrap();
    assert_eq!(snapshot, memory.snapshot("default").unwrap());
    assert_eq!(snapshot.events.len(), 10);
    assert_eq!(snapshot.events.iter().filter(|e| e.pruned).count(), 6);
    let opts = keeptrusts_core::event::VerifyOptions {
        now,
        default_days: 365,
        expect_head: None,
    };
    assert!(keeptrusts_core::event::verify_chain(&snapshot, &opts).is_ok());
    // the newest events deleted underneath: the recorded head finds it
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("DELETE FROM events WHERE seq >= 8", [])
        .unwrap();
    let cut = sqlite.snapshot("default").unwrap();
    assert_eq!(
        keeptrusts_core::event::verify_chain(&cut, &opts),
        Err(keeptrusts_core::event::Tamper::Truncated {
            head: 9,
            last: Some(7)
        })
    );
}

#[test]
fn the_seed_flow_runs_on_sqlite() {
    common::seed_flow(&SqliteStore::open_in_memory().unwrap());
}

/// Worker for the two-process test: reserves and settles against one wallet in the file named by
/// KT_STORE_WORKER_DB and prints how much it settled.
#[test]
#[ignore = "spawned by two_processes_on_one_sqlite_file_never_overspend"]
fn sqlite_worker() {
    let Ok(path) = std::env::var("KT_STORE_WORKER_DB") else {
        return;
    };
    let tag = std::env::var("KT_STORE_WORKER_TAG").unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let key = WalletKey::new(WalletScope::Team, "engineering");
    let mut charged = Decimal::ZERO;
    for i in 0..400 {
        let req = ReserveRequest {
            lease_id: format!("{tag}-{i}").into(),
            cascade: vec![key.clone()],
            amount: Decimal::new(1, 0),
            currency: Currency::USD,
            ttl_ms: 60_000,
            price: None,
            force: None,
        };
        if let ReserveOutcome::Reserved(l) = store.reserve(&req, 0).unwrap() {
            charged += store.settle(&l.id, Decimal::new(73, 2), 0).unwrap().charged;
        }
    }
    println!("CHARGED={charged}");
}

#[test]
fn two_processes_on_one_sqlite_file_never_overspend() {
    let dir = std::env::temp_dir().join(format!("kt-store-2p-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wallets.db");
    let _ = std::fs::remove_file(&path);
    let store = SqliteStore::open(&path).unwrap();
    let key = WalletKey::new(WalletScope::Team, "engineering");
    store
        .allocate(
            &key,
            Decimal::new(300, 0),
            "USD",
            None,
            AllocateMode::Set,
            0,
        )
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|tag| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "sqlite_worker",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("KT_STORE_WORKER_DB", &path)
                .env("KT_STORE_WORKER_TAG", tag)
                .output_async()
        })
        .collect();
    let total = common::charged_by(children);
    // 800 attempts of 1.00 against 300.00 settled at 0.73: the wallet ran dry
    common::drawn_exactly(&store, &key, total);
}

trait SpawnOutput {
    fn output_async(&mut self) -> std::process::Child;
}

impl SpawnOutput for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// Worker for the SIGKILL test: cycles until killed.
#[test]
#[ignore = "spawned by a_killed_process_loses_nothing_committed"]
fn sqlite_crash_worker() {
    let Ok(path) = std::env::var("KT_STORE_CRASH_DB") else {
        return;
    };
    let store = SqliteStore::open(&path).unwrap();
    for i in 0..u64::MAX {
        request_cycle(&store, "k", i);
        if i == 20 {
            println!("\nREADY");
        }
    }
}

#[test]
fn a_killed_process_loses_nothing_committed() {
    let dir = std::env::temp_dir().join(format!("kt-store-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("crash.db");
    let _ = std::fs::remove_file(&path);
    let store = SqliteStore::open(&path).unwrap();
    let key = WalletKey::new(WalletScope::Team, "engineering");
    store
        .allocate(
            &key,
            Decimal::new(1_000_000, 0),
            "USD",
            None,
            AllocateMode::Set,
            0,
        )
        .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sqlite_crash_worker",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KT_STORE_CRASH_DB", &path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    // SIGKILL: no destructor, no rollback hook, mid-transaction as likely as not
    child.kill().unwrap();
    child.wait().unwrap();
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    let (events, settled) = check_after_crash(&store, &store, "k");
    assert!(
        events > 20 && settled > 20,
        "the worker got going: {events} events, {settled} settlements"
    );
}

#[test]
fn tickets_behave_the_same() {
    let sqlite = SqliteStore::open_in_memory().unwrap();
    assert_eq!(
        ticket_case(&keeptrusts_core::MemoryTickets::new()),
        ticket_case(&sqlite)
    );
}

#[test]
fn rate_counters_decide_exactly_as_the_memory_counters() {
    let sqlite = SqliteStore::open_in_memory().unwrap();
    let memory = keeptrusts_core::MemoryRateCounters::new();
    let expected = rate_case(&memory);
    assert_eq!(expected, rate_case(&sqlite));
    // the case exercises refusals by each limit and both scopes
    let text = expected.join("\n");
    for needle in [
        "TokensPerMinute",
        "RequestsPerMinute",
        "ConsumerGroup",
        "admitted",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }
}

#[test]
fn rate_counters_on_one_file_never_admit_past_a_limit() {
    let dir = std::env::temp_dir().join(format!("kt-rate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rate.db");
    let _ = std::fs::remove_file(&path);
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    // two connections to one file, 8 threads each: the group's 5 a minute, exactly
    let (na, nb) = std::thread::scope(|s| {
        let ha = s.spawn(|| rate_race(&a, 8, 10));
        let hb = s.spawn(|| rate_race(&b, 8, 10));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    assert_eq!(na + nb, 5);
    let _ = std::fs::remove_dir_all(&dir);
}
