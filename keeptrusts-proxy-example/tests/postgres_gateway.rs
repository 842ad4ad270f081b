//! The gateway on PostgreSQL: requests reserve, settle and write their events through the
//! write-behind ledger into the server, and the gateway shuts down cleanly.
//!
//! The server comes from `KEEPTRUSTS_TEST_POSTGRES_URL` (`.ci/run` sets it); without it the test
//! prints that it was not run. It works in a database of its own, made with `psql`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::process::Command;

mod common;
use common::{chat, ledger, stop, Env};

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_gateway_on_postgres_charges_writes_events_and_stops_cleanly() {
    let Ok(url) = std::env::var("KEEPTRUSTS_TEST_POSTGRES_URL") else {
        eprintln!("KEEPTRUSTS_TEST_POSTGRES_URL is not set: the PostgreSQL gateway test not run");
        return;
    };
    let db = format!("kt_gw_{}", std::process::id());
    psql(&url, &format!("DROP DATABASE IF EXISTS {db}"));
    psql(&url, &format!("CREATE DATABASE {db}"));
    let (server, _) = url.rsplit_once('/').expect("a URL ending in /DATABASE");
    let mut env = Env::new("postgres");
    env.store = format!("{server}/{db}");
    let key = env.support_team();
    let (mut gw, addr) = env.gateway(&[]);
    for i in 0..20 {
        let r = chat(
            &addr,
            Some(&key),
            "gpt-4o-mini",
            &format!("call me at 415-555-01{i:02}"),
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // the admin API writes what is queued first: the balance is current while the gateway runs
    let admin = env.key("support", "agent@yourco.com");
    let b = common::http(&addr, "GET", "/v1/wallets/balance", Some(&admin), &[], b"");
    assert_eq!(b.status, 200, "{}", b.body);
    stop(&mut gw);
    let log = std::fs::read_to_string(env.dir.join("gateway.log")).unwrap();
    assert!(!log.contains("panicked"), "{log}");
    let (spent, reserved, events) = ledger(&env);
    assert_eq!(events, 20);
    assert!(spent > 0.0);
    assert_eq!(reserved, 0.0, "the float was given back");
    drop(env);
    psql(&url, &format!("DROP DATABASE {db}"));
}
