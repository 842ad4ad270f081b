//! Held requests (`wallets.queue`, docs/wallets.md "Held requests"): an over-budget request is
//! held open after its ticket is created and goes on by itself when another process approves
//! the ticket or funds a wallet; a denial, a timeout, a full queue and a shutdown answer as
//! documented.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{call, events, get, http, ledger, max_biller, pg_env, pg_url, psql, stop, Env, Reply};

fn pack(env: &Env, provider: &str, queue: &str) -> std::path::PathBuf {
    let p = env.write_pack(&format!(
            r#"pack: {{ name: held, version: "1.0" }}
policies: {{ chain: [rbac, audit-logger] }}
providers:
  targets:
    - {{ id: dear, provider: openai-compatible, model: m-dear, base_url: "http://{provider}/v1", pricing: {{ input_per_1m: "300", output_per_1m: "600" }} }}
wallets:
  queue: {queue}
"#
        ));
    p
}

fn num(v: &Value) -> f64 {
    v.as_str()
        .map_or_else(|| v.as_f64().unwrap_or(0.0), |s| s.parse().unwrap())
}

/// 500 output tokens of m-dear ($0.30) do not fit the $0.10 wallet the tests give support.
fn body(text: &str) -> Value {
    json!({"model": "m-dear", "max_tokens": 500, "messages": [{"role": "user", "content": text}]})
}

fn send(
    addr: &str,
    key: &str,
    text: &str,
    headers: &[(&str, &str)],
) -> JoinHandle<(Reply, Duration)> {
    let (addr, key, text) = (addr.to_owned(), key.to_owned(), text.to_owned());
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    std::thread::spawn(move || {
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let t0 = Instant::now();
        let r = http(
            &addr,
            "POST",
            "/v1/chat/completions",
            Some(&key),
            &h,
            body(&text).to_string().as_bytes(),
        );
        (r, t0.elapsed())
    })
}

/// The tickets the store lists as held now (by another process: the CLI).
fn held(env: &Env) -> Vec<String> {
    let list: Value = serde_json::from_str(&env.ok(&["ticket", "list", "--json"])).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    list.as_array()
        .unwrap()
        .iter()
        .filter(|t| t["held_until"].as_i64().is_some_and(|u| u > now))
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until `n` tickets are held, and returns them.
fn wait_held(env: &Env, n: usize) -> Vec<String> {
    let t0 = Instant::now();
    loop {
        let h = held(env);
        if h.len() >= n {
            return h;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "held: {h:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_held_request_is_released_by_an_approval_from_another_process_and_answers_200() {
    let env = Env::new("held-approve");
    let key = env.support_team();
    env.allocate("support", "0.10");
    let (addr, seen) = max_biller(Arc::default());
    let (mut gw, gw_addr) = env.gateway_with(
        &pack(&env, &addr, "{ hold_seconds: 20, max_held_per_team: 2 }"),
        &[],
    );
    let waiting = send(&gw_addr, &key, "a long report", &[]);
    let tickets = wait_held(&env, 1);
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing forwarded while held"
    );
    // the CLI, another process on the same store, approves it
    env.ok(&["ticket", "approve", &tickets[0]]);
    let (r, took) = waiting.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(took < Duration::from_secs(10), "released in {took:?}");
    assert!(
        r.headers
            .to_ascii_lowercase()
            .contains("preference-applied: wait=20"),
        "{}",
        r.headers
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    // its hold is over: the ticket is no longer listed as held
    std::thread::sleep(Duration::from_millis(300));
    assert!(held(&env).is_empty());
    stop(&mut gw);
    let evs = events(&env);
    // the 402 that opened the ticket, and the replay served on it
    assert_eq!(evs.len(), 2, "{evs:?}");
    assert_eq!(evs[0]["status"], 402);
    assert_eq!(evs[1]["status"], 200);
    assert_eq!(evs[1]["ticket_id"], tickets[0].as_str());
    let (spent, reserved, n) = ledger(&env);
    assert_eq!(n, 2);
    assert_eq!(reserved, 0.0);
    assert!((spent - num(&evs[1]["cost"]["settled"])).abs() < 1e-9);
    assert!(spent > 0.10, "the approver accepted the overrun: {spent}");
}

#[test]
fn funding_a_wallet_releases_a_held_request_and_fulfills_its_ticket() {
    let env = Env::new("held-fund");
    let key = env.support_team();
    env.allocate("support", "0.10");
    let (addr, seen) = max_biller(Arc::default());
    let (mut gw, gw_addr) = env.gateway_with(&pack(&env, &addr, "{ hold_seconds: 20 }"), &[]);
    let waiting = send(&gw_addr, &key, "a long report", &[]);
    let tickets = wait_held(&env, 1);
    env.allocate("support", "10");
    let (r, _) = waiting.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(seen.lock().unwrap().len(), 1);
    let list: Value = serde_json::from_str(&env.ok(&["ticket", "list", "--json"])).unwrap();
    assert_eq!(list[0]["id"], tickets[0].as_str());
    assert_eq!(list[0]["status"], "fulfilled");
    stop(&mut gw);
    let (spent, reserved, n) = ledger(&env);
    assert_eq!(n, 2);
    assert_eq!(reserved, 0.0);
    let evs = events(&env);
    assert!((spent - num(&evs[1]["cost"]["settled"])).abs() < 1e-9);
}

#[test]
fn a_denial_a_timeout_a_full_queue_and_a_shutdown_answer_as_documented() {
    let env = Env::new("held-refused");
    let key = env.support_team();
    env.allocate("support", "0.10");
    let (addr, seen) = max_biller(Arc::default());
    let (mut gw, gw_addr) = env.gateway_with(
        &pack(&env, &addr, "{ hold_seconds: 30, max_held_per_team: 2 }"),
        &[],
    );
    // denied while held: the answer a retry with a denied ticket gets
    let waiting = send(&gw_addr, &key, "report one", &[]);
    let tickets = wait_held(&env, 1);
    env.ok(&["ticket", "deny", &tickets[0]]);
    let (r, _) = waiting.join().unwrap();
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (409, Some("ticket_denied")),
        "{}",
        r.body
    );
    // the client asks for a shorter hold: the 402 after it, with the same ticket
    let (r, took) = send(&gw_addr, &key, "report two", &[("Prefer", "wait=1")])
        .join()
        .unwrap();
    assert_eq!(r.status, 402, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "budget_exceeded");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(r
        .headers
        .to_ascii_lowercase()
        .contains("preference-applied: wait=1"));
    // `wait=0`: at once
    let (r, took) = send(&gw_addr, &key, "report three", &[("Prefer", "wait=0")])
        .join()
        .unwrap();
    assert_eq!(r.status, 402);
    assert!(took < Duration::from_millis(900), "{took:?}");
    // two held (the team's bound): a third is answered 402 at once
    let a = send(&gw_addr, &key, "report four", &[]);
    let b = send(&gw_addr, &key, "report five", &[]);
    let two = wait_held(&env, 2);
    let (r, took) = send(&gw_addr, &key, "report six", &[]).join().unwrap();
    assert_eq!(r.status, 402, "{}", r.body);
    assert!(took < Duration::from_millis(900), "not held: {took:?}");
    let metrics = http(&gw_addr, "GET", "/metrics", None, &[], b"").body;
    assert!(metrics.contains("keeptrusts_held_requests 2"), "{metrics}");
    assert!(
        metrics.contains("keeptrusts_holds_total{outcome=\"queue_full\"} 1"),
        "{metrics}"
    );
    // the gateway stops: the held requests answer 503 with their tickets, at once
    let t0 = Instant::now();
    stop(&mut gw);
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    for w in [a, b] {
        let (r, _) = w.join().unwrap();
        assert_eq!(r.status, 503, "{}", r.body);
        let v = r.json();
        assert_eq!(v["error"]["code"], "gateway_stopping");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            two.iter().any(|t| message.contains(t.as_str())),
            "{message}"
        );
    }
    assert!(seen.lock().unwrap().is_empty(), "nothing was forwarded");
    let (spent, reserved, _) = ledger(&env);
    assert_eq!((spent, reserved), (0.0, 0.0));
}

#[test]
fn a_malformed_queue_stops_the_gateway_from_starting() {
    let env = Env::new("held-bad");
    env.support_team();
    for (queue, says) in [
        (
            "{ hold_seconds: 0 }",
            "hold_seconds must be 1 to 3600, found 0",
        ),
        ("{ hold_seconds: 7200 }", "found 7200"),
        (
            "{ max_held_per_team: 3 }",
            "wallets.queue needs hold_seconds",
        ),
        (
            "{ hold_seconds: 5, max_held_per_team: 0 }",
            "max_held_per_team must be at least 1",
        ),
        ("{ hold_second: 5 }", "hold_seconds"),
    ] {
        let p = pack(&env, "127.0.0.1:9", queue);
        let (code, _, err) = env.gateway_run(&p);
        assert_eq!(code, 2, "{queue}: {err}");
        assert!(err.contains(says), "{queue}: {err}");
        assert!(err.contains(": 7:"), "{queue}: a line and column: {err}");
    }
}

#[test]
fn two_gateways_on_postgres_a_request_held_on_one_is_released_by_an_approval_on_the_other() {
    let Some(url) = pg_url() else { return };
    let db = format!("kt_held_{}", std::process::id());
    let env = pg_env(&url, "held-postgres", &db);
    let key = env.support_team();
    let lead = env.member_key("support", "lead@yourco.com", Some("admin"));
    env.allocate("support", "0.10");
    let (addr, seen) = max_biller(Arc::default());
    let p = pack(&env, &addr, "{ hold_seconds: 20 }");
    let (mut a, a_addr) = env.gateway_with(&p, &[]);
    let (mut b, b_addr) = env.gateway_with(&p, &[]);
    let waiting = send(&a_addr, &key, "a long report", &[]);
    // gateway B lists it as held, and its team's admin approves it there
    let t0 = Instant::now();
    let ticket = loop {
        let r = get(&b_addr, "/v1/tickets", &lead);
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        let list = v
            .as_array()
            .cloned()
            .unwrap_or_else(|| v["data"].as_array().cloned().unwrap_or_default());
        if let Some(t) = list.iter().find(|t| t["held_until"].is_i64()) {
            break t["id"].as_str().unwrap().to_owned();
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "{v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let r = call(
        &b_addr,
        "POST",
        &format!("/v1/tickets/{ticket}/approve"),
        &lead,
        b"{}",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (r, _) = waiting.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(seen.lock().unwrap().len(), 1);
    stop(&mut a);
    stop(&mut b);
    let (_, reserved, n) = ledger(&env);
    assert_eq!((reserved, n), (0.0, 2));
    drop(env);
    psql(&url, &format!("DROP DATABASE {db}"));
}
