//! Crash-safe audit (issue 26): the gateway under concurrent load, killed with SIGKILL at a
//! moment of the load, restarted; every request a client saw answered 200 has its event and its
//! settlement in the store, and the chain verifies. Durable is the default; relaxed mode may
//! lose the last batch, and the test says how much it lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;
use common::{chat, events, ledger, pg_env, pg_url, psql, stop, Env};

/// The request ids answered 200 before the kill.
fn load_then_kill(env: &Env, extra: &[&str], key: &str, kill_after: Duration) -> HashSet<String> {
    let (mut gw, addr) = env.gateway(extra);
    let answered = Arc::new(Mutex::new(HashSet::new()));
    let stop_flag = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let (addr, key) = (addr.clone(), key.to_owned());
            let (answered, stop_flag) = (Arc::clone(&answered), Arc::clone(&stop_flag));
            std::thread::spawn(move || {
                while !stop_flag.load(Ordering::Relaxed) {
                    // the gateway is gone once nothing listens
                    if std::net::TcpStream::connect(&addr).is_err() {
                        break;
                    }
                    let r = std::panic::catch_unwind(|| {
                        chat(&addr, Some(&key), "gpt-4o-mini", "hello there", &[])
                    });
                    let Ok(r) = r else { break };
                    if r.status == 200 {
                        let id = r
                            .headers
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("x-request-id: ")
                                    .map(|v| v.trim().to_owned())
                            })
                            .expect("an answer names its request");
                        answered.lock().unwrap().insert(id);
                    } else if r.status == 0 {
                        break;
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(kill_after);
    Command::new("kill")
        .args(["-KILL", &gw.id().to_string()])
        .status()
        .unwrap();
    let _ = gw.wait();
    stop_flag.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let out = answered.lock().unwrap().clone();
    out
}

/// Kills a loaded gateway `runs` times; returns (answered 200, of which without an event).
fn crash_runs(env: &Env, extra: &[&str], runs: u32) -> (usize, usize) {
    let key = env.support_team();
    env.allocate("support", "100000");
    let mut answered = HashSet::new();
    for i in 0..runs {
        // a moment of the load that differs from run to run
        let after = Duration::from_millis(150 + u64::from(i * 37 % 200));
        answered.extend(load_then_kill(env, extra, &key, after));
    }
    // a clean start after the last crash: before it says it listens, it has released the floats
    // the killed process held (nothing is in flight now)
    let (mut gw, _) = env.gateway(extra);
    let (_, reserved, _) = ledger(env);
    assert_eq!(
        reserved, 0.0,
        "the killed gateway's floats are still reserved"
    );
    stop(&mut gw);
    let answered_events: Vec<String> = events(env)
        .iter()
        .filter(|e| e["status"] == 200)
        .filter_map(|e| e["request_id"].as_str().map(str::to_owned))
        .collect();
    let recorded: HashSet<String> = answered_events.iter().cloned().collect();
    // exactly one event per answered request: a batch retried after a crash writes nothing twice
    assert_eq!(
        recorded.len(),
        answered_events.len(),
        "some answered request has two events"
    );
    let verified = env.ok(&["events", "verify"]);
    assert!(verified.starts_with("ok:"), "{verified}");
    // one settlement per event: the wallet spent exactly what the events say was settled
    let decimal = |v: &serde_json::Value| -> rust_decimal::Decimal {
        v.as_str()
            .map_or_else(|| v.to_string(), str::to_owned)
            .parse()
            .unwrap()
    };
    let settled: rust_decimal::Decimal = events(env)
        .iter()
        .filter(|e| !e["cost"]["settled"].is_null())
        .map(|e| decimal(&e["cost"]["settled"]))
        .sum();
    let balance: serde_json::Value =
        serde_json::from_str(&env.ok(&["wallet", "balance", "--json"])).unwrap();
    let spent = balance
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["wallet"] == "team:support")
        .map(|w| decimal(&w["spent"]))
        .unwrap();
    assert_eq!(
        spent, settled,
        "the wallet's spent is not the sum of the settled events"
    );
    let lost = answered.difference(&recorded).count();
    (answered.len(), lost)
}

#[test]
fn a_killed_durable_gateway_never_answered_a_request_it_did_not_record() {
    let env = Env::new("crash-durable");
    let (answered, lost) = crash_runs(&env, &[], 20);
    assert!(answered > 100, "the load ran: {answered} answers");
    assert_eq!(
        lost, 0,
        "{lost} of {answered} answered requests have no event"
    );
    // every answered request was charged: its event carries the settled cost
    let unsettled = events(&env)
        .iter()
        .filter(|e| e["status"] == 200 && e["cost"]["settled"].is_null())
        .count();
    assert_eq!(unsettled, 0);
}

/// A gateway under load is killed while another runs idle on the same store: the survivor's
/// sweep releases the killed one's floats within the stated bound (5 s on one machine, see
/// `keeptrusts_store::write_behind`; the test allows 3 s more for a loaded machine).
fn a_neighbour_releases_the_floats_of_a_killed_gateway(env: &Env) {
    let key = env.support_team();
    env.allocate("support", "100000");
    let (mut survivor, _) = env.gateway(&[]);
    let answered = load_then_kill(env, &[], &key, Duration::from_millis(400));
    assert!(!answered.is_empty(), "the load ran");
    let killed = std::time::Instant::now();
    let (_, reserved, _) = ledger(env);
    assert!(reserved > 0.0, "the killed gateway held a float");
    loop {
        let (_, reserved, _) = ledger(env);
        if reserved == 0.0 {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(8),
            "{reserved} still reserved {:?} after the kill",
            killed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("released {:?} after the kill", killed.elapsed());
    stop(&mut survivor);
}

#[test]
fn a_killed_gateways_floats_are_released_by_a_neighbour_on_sqlite() {
    a_neighbour_releases_the_floats_of_a_killed_gateway(&Env::new("crash-neighbour"));
}

#[test]
fn a_killed_relaxed_gateway_loses_at_most_its_last_batches() {
    let env = Env::new("crash-relaxed");
    let (answered, lost) = crash_runs(&env, &["--durability", "relaxed"], 5);
    assert!(answered > 50, "the load ran: {answered} answers");
    eprintln!("relaxed: {lost} of {answered} answered requests lost their event in 5 crashes");
    // the stated bound: what the ledger's queue may hold when the process dies (4,096 finished
    // requests; new reservations wait beyond that)
    assert!(lost <= 5 * 4_096, "{lost} lost");
}

#[test]
fn a_killed_durable_gateway_on_postgres_never_answered_a_request_it_did_not_record() {
    let Some(url) = pg_url() else { return };
    let db = format!("kt_crash_{}", std::process::id());
    let env = pg_env(&url, "crash-postgres", &db);
    let (answered, lost) = crash_runs(&env, &[], 20);
    assert!(answered > 100, "the load ran: {answered} answers");
    assert_eq!(
        lost, 0,
        "{lost} of {answered} answered requests have no event"
    );
    drop(env);
    // two gateways on one database: one is killed, the other releases its floats
    let env = pg_env(&url, "crash-postgres-neighbour", &db);
    a_neighbour_releases_the_floats_of_a_killed_gateway(&env);
    drop(env);
    psql(&url, &format!("DROP DATABASE {db}"));
}
