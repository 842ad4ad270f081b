//! The gateway on PostgreSQL: requests reserve, settle and write their events through the
//! write-behind ledger into the server, and the gateway shuts down cleanly.
//!
//! The server comes from `KEEPTRUSTS_TEST_POSTGRES_URL` (`.ci/run` sets it); without it the tests
//! fail unless `KEEPTRUSTS_SKIP_POSTGRES=1` skips them. It works in a database of its own, made with `psql`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

mod common;
use common::{chat, ledger, pg_env, pg_url, psql, stop};

#[test]
fn the_gateway_on_postgres_charges_writes_events_and_stops_cleanly() {
    let Some(url) = pg_url() else { return };
    let db = format!("kt_gw_{}", std::process::id());
    let env = pg_env(&url, "postgres", &db);
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

#[test]
fn two_gateways_on_one_postgres_wallet_never_overspend_against_a_maximal_biller() {
    let Some(url) = pg_url() else { return };
    let db = format!("kt_gw2_{}", std::process::id());
    let env = pg_env(&url, "postgres-two", &db);
    let key = env.support_team();
    // about nine requests' bounds fit: each reserves ~$0.21 (1,024 output tokens at $200 per 1M)
    env.allocate("support", "2");
    let (provider, seen) = common::max_biller(std::sync::Arc::default());
    let pack = env.write_pack(&format!(
            "pack: {{ name: pg-two, version: \"1.0\" }}\npolicies: {{ chain: [audit-logger] }}\nproviders:\n  targets:\n    - {{ id: cheap, provider: openai-compatible, model: m-cheap, base_url: \"http://{provider}/v1\", pricing: {{ input_per_1m: \"100\", output_per_1m: \"200\" }} }}\n"
        ));
    let (mut a, addr_a) = env.gateway_with(&pack, &[]);
    let (mut b, addr_b) = env.gateway_with(&pack, &[]);
    // requests without max_tokens, from both gateways at once
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let addr = if i % 2 == 0 {
                addr_a.clone()
            } else {
                addr_b.clone()
            };
            let key = key.clone();
            std::thread::spawn(move || {
                (0..6)
                    .map(|_| chat(&addr, Some(&key), "m-cheap", "bill me all you can", &[]).status)
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let statuses: Vec<u16> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    stop(&mut a);
    stop(&mut b);
    let served = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 402),
        "{statuses:?}"
    );
    assert!(served > 0 && served < statuses.len(), "{statuses:?}");
    let (spent, reserved, events) = ledger(&env);
    eprintln!("{served} of {} served, {spent} of 2 spent", statuses.len());
    assert!(spent <= 2.0, "spent {spent} of 2");
    assert_eq!(reserved, 0.0, "nothing left reserved");
    assert_eq!(events, statuses.len(), "every request audited");
    // every provider call charged: one charged event per call
    let charged = common::events(&env)
        .iter()
        .filter(|e| {
            e["cost"]["settled"]
                .as_str()
                .is_some_and(|s| s.parse::<f64>().unwrap() > 0.0)
        })
        .count();
    assert_eq!(charged, seen.lock().unwrap().len());
    assert_eq!(charged, served);
    drop(env);
    psql(&url, &format!("DROP DATABASE {db}"));
}

#[test]
fn a_key_revoked_on_one_gateway_is_refused_by_another_within_a_second() {
    let Some(url) = pg_url() else { return };
    let db = format!("kt_gw3_{}", std::process::id());
    let env = pg_env(&url, "postgres-revoke", &db);
    let key = env.support_team();
    let admin = env.member_key("support", "lead@yourco.com", Some("admin"));
    let (mut a, addr_a) = env.gateway(&[]);
    let (mut b, addr_b) = env.gateway(&[]);
    // gateway b has the key in its cache
    let r = chat(&addr_b, Some(&key), "gpt-4o-mini", "hello", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let keys = common::http(&addr_a, "GET", "/v1/keys", Some(&admin), &[], b"");
    let id = keys
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["user"] == "agent@yourco.com")
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .unwrap();
    let revoked = common::http(
        &addr_a,
        "DELETE",
        &format!("/v1/keys/{id}"),
        Some(&admin),
        &[],
        b"",
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let at = std::time::Instant::now();
    // refused by the gateway that revoked it at once, and by the other within a second
    let r = chat(&addr_a, Some(&key), "gpt-4o-mini", "hello", &[]);
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (401, Some("key_revoked"))
    );
    let refused_after = loop {
        let r = chat(&addr_b, Some(&key), "gpt-4o-mini", "hello", &[]);
        if r.status == 401 {
            assert_eq!(r.json()["error"]["code"], "key_revoked");
            break at.elapsed();
        }
        assert!(
            at.elapsed() < std::time::Duration::from_secs(3),
            "still served after 3 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(
        refused_after < std::time::Duration::from_secs(1),
        "gateway b served a revoked key for {refused_after:?}"
    );
    stop(&mut a);
    stop(&mut b);
    drop(env);
    psql(&url, &format!("DROP DATABASE {db}"));
}
