//! The same cases against the in-memory stores and SQLite: results must be identical.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::process::Stdio;

use keeptrusts_core::event::{verify, EventStore, MemoryEvents};
use keeptrusts_core::wallet::{MemoryWallets, ReserveOutcome, WalletScope, WalletStore};
use keeptrusts_core::{MemoryEscalations, WalletKey};
use keeptrusts_store::SqliteStore;

mod common;
use common::{
    concurrent_cycles, escalation_case, journal_case, op, rate_case, rate_race, request_cycle, run,
    ticket_case, JOURNAL_CASE,
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
    let path = common::temp_db("sqlite-conc");
    let store = SqliteStore::open(&path).unwrap();
    concurrent_cycles(&store, 16, 100);
    drop(store);
    common::remove_temp_db(&path);
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
    let path = common::temp_db("upgrade");
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
    common::remove_temp_db(&path);
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
    let path = common::temp_db("events");
    let drafts = common::decision_drafts();
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
    let tag = std::env::var("KT_WORKER_TAG").unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let key = WalletKey::new(WalletScope::Team, "engineering");
    let mut charged = Decimal::ZERO;
    for i in 0..400 {
        let req = common::dollar_lease(format!("{tag}-{i}"), &key, 60_000);
        if let ReserveOutcome::Reserved(l) = store.reserve(&req, 0).unwrap() {
            charged += store.settle(&l.id, Decimal::new(73, 2), 0).unwrap().charged;
        }
    }
    println!("CHARGED={charged}");
}

#[test]
fn two_processes_on_one_sqlite_file_never_overspend() {
    let path = common::temp_db("store-2p");
    let store = SqliteStore::open(&path).unwrap();
    let key = WalletKey::new(WalletScope::Team, "engineering");
    common::fund(&store, &key, 300);
    let db = [("KT_STORE_WORKER_DB", path.to_str().unwrap())];
    let total = common::run_workers("sqlite_worker", &["a", "b"], &db);
    // 800 attempts of 1.00 against 300.00 settled at 0.73: the wallet ran dry
    common::drawn_exactly(&store, &key, total);
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
    let path = common::temp_db("store-kill");
    let store = SqliteStore::open(&path).unwrap();
    let key = WalletKey::new(WalletScope::Team, "engineering");
    common::fund(&store, &key, 1_000_000);
    let child = common::worker("sqlite_crash_worker")
        .env("KT_STORE_CRASH_DB", &path)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    common::kill_after(child, 1_500);
    drop(store);
    common::nothing_committed_lost(&SqliteStore::open(&path).unwrap());
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
    let path = common::temp_db("rate");
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    // two connections to one file, 8 threads each: the group's 5 a minute, exactly
    let (na, nb) = std::thread::scope(|s| {
        let ha = s.spawn(|| rate_race(&a, 8, 10));
        let hb = s.spawn(|| rate_race(&b, 8, 10));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    assert_eq!(na + nb, 5);
    common::remove_temp_db(&path);
}
