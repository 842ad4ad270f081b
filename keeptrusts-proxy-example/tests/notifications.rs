//! Webhooks (`notifications:`, docs/notifications.md): a receiver gets each event type once, with
//! a valid signature and no request text; a receiver that never answers slows no request.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{call, http, key_args, max_biller, post_json, read_request, stop, Env};

const SECRET: &str = "whsec-test-4f1c";

/// What a receiver got: each request's lowercase head and raw body.
type Got = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A webhook receiver, answering 204.
fn receiver() -> (String, Got) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let got = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&got);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let log = Arc::clone(&log);
            std::thread::spawn(move || loop {
                let Some(request) = read_request(&mut conn) else {
                    return;
                };
                log.lock().unwrap().push(request);
                let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n");
            });
        }
    });
    (addr, got)
}

/// A receiver that accepts connections and never answers.
fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    addr
}

fn pack(env: &Env, provider: &str, hook: &str, dead: &str) -> std::path::PathBuf {
    let p = env.write_pack(&format!(
            r#"pack: {{ name: notify, version: "1.0" }}
policies:
  chain:
    - rbac
    - human-oversight: {{ targeting: {{ scope: team, teams: [legal] }} }}
    - audit-logger
policy:
  human-oversight: {{ require_review: true }}
providers:
  targets:
    - {{ id: dear, provider: openai-compatible, model: m-dear, base_url: "http://{provider}/v1", pricing: {{ input_per_1m: "300", output_per_1m: "600" }} }}
wallets:
  alerts: [50, 100]
notifications:
  - url: http://{hook}/hooks/kt
    events: [ticket.created, ticket.resolved, escalation.created, escalation.resolved, budget.threshold_reached, key.revoked]
    secret_key_ref: {{ env: KT_TEST_WEBHOOK_SECRET }}
  - url: http://{dead}/never
    events: [ticket.created]
    secret_key_ref: {{ env: KT_TEST_WEBHOOK_SECRET }}
"#
        ));
    p
}

fn post(addr: &str, key: &str, text: &str) -> common::Reply {
    let body = json!({"model": "m-dear", "max_tokens": 500,
        "messages": [{"role": "user", "content": text}]});
    post_json(addr, "/v1/chat/completions", key, &body, &[])
}

#[test]
fn a_receiver_gets_each_event_type_once_signed_and_without_request_text() {
    let env = Env::new("notify");
    let key = env.support_team();
    let lead = env.member_key("support", "lead@yourco.com", Some("admin"));
    env.ok(&["team", "create", "--name", "Legal"]);
    env.add_member("legal", "counsel@yourco.com", None);
    env.add_member("legal", "gc@yourco.com", Some("admin"));
    let counsel = env.key("legal", "counsel@yourco.com");
    let gc = env.key("legal", "gc@yourco.com");
    env.allocate("legal", "100");
    // one request of m-dear (about $0.30) takes support past 50 % of $0.50; the next does not fit
    env.allocate("support", "0.50");
    let spare = env.ok(&key_args("support", "agent@yourco.com", &["--json"]));
    let spare: Value = serde_json::from_str(&spare).unwrap();
    let (provider, _) = max_biller(Arc::default());
    let (hook, got) = receiver();
    let dead = black_hole();
    let (mut gw, addr) = env.gateway_env(
        &pack(&env, &provider, &hook, &dead),
        &[],
        &[("KT_TEST_WEBHOOK_SECRET", SECRET)],
    );
    let prompt = "quarterly numbers for ann.lee@example.com";
    assert_eq!(post(&addr, &key, prompt).status, 200);
    // the budget watch reads the wallets every 2 s
    let t0 = Instant::now();
    while got.lock().unwrap().is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no budget.threshold_reached"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // over budget, with the second webhook never answering: not slower than the first request
    let r = post(&addr, &key, prompt);
    assert_eq!(r.status, 402, "{}", r.body);
    let ticket = r.json()["error"]["ticket_id"].as_str().unwrap().to_owned();
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let t = Instant::now();
        let r = post(&addr, &key, &format!("{prompt} {i}"));
        assert_eq!(r.status, 402);
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a dead webhook slowed requests: {slowest:?}"
    );
    let r = call(
        &addr,
        "POST",
        &format!("/v1/tickets/{ticket}/approve"),
        &lead,
        b"{}",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(&addr, &counsel, prompt);
    assert_eq!(r.status, 409, "{}", r.body);
    let esc = r.json()["error"]["escalation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = call(
        &addr,
        "POST",
        &format!("/v1/escalations/{esc}/approve"),
        &gc,
        b"{}",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let spare_id = spare["id"].as_str().unwrap();
    let r = call(&addr, "DELETE", &format!("/v1/keys/{spare_id}"), &lead, b"");
    assert_eq!(r.status, 200, "{}", r.body);
    // all in; then a little longer, so that a second delivery of any would be seen
    let t0 = Instant::now();
    while got.lock().unwrap().len() < 5 + 21 {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "{:?}",
            got.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(2500));
    let metrics = http(&addr, "GET", "/metrics", None, &[], b"").body;
    stop(&mut gw);
    let got = got.lock().unwrap();
    let mut kinds = Vec::new();
    for (head, body) in got.iter() {
        let v: Value = serde_json::from_slice(body).unwrap();
        let kind = v["type"].as_str().unwrap().to_owned();
        // the signature: t=<ms>,v1=<HMAC-SHA256(secret, "<t>.<body>")>
        let sig = head
            .lines()
            .find_map(|l| l.strip_prefix("x-keeptrusts-signature: "))
            .unwrap_or_else(|| panic!("unsigned: {head}"));
        let t: i64 = sig
            .split(',')
            .next()
            .unwrap()
            .strip_prefix("t=")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            sig,
            keeptrusts_core::notify::signature(SECRET.as_bytes(), t, body)
        );
        assert_ne!(
            sig,
            keeptrusts_core::notify::signature(b"another key", t, body)
        );
        assert!(
            head.contains(&format!("x-keeptrusts-event: {kind}")),
            "{head}"
        );
        let text = String::from_utf8_lossy(body);
        assert!(
            !text.contains("ann.lee") && !text.contains("quarterly"),
            "{text}"
        );
        assert!(v["id"].as_str().unwrap().starts_with("ntf_"));
        kinds.push(kind);
    }
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("ticket.created"), 21, "{kinds:?}");
    for k in [
        "ticket.resolved",
        "escalation.created",
        "escalation.resolved",
        "budget.threshold_reached",
        "key.revoked",
    ] {
        assert_eq!(count(k), 1, "{k}: {kinds:?}");
    }
    let body = |k: &str| -> Value {
        got.iter()
            .map(|(_, b)| serde_json::from_slice::<Value>(b).unwrap())
            .find(|v| v["type"] == k)
            .unwrap()
    };
    let created = body("ticket.created");
    assert_eq!(created["data"]["ticket_id"], ticket.as_str());
    assert_eq!(created["team"], "support");
    assert_eq!(created["data"]["currency"], "USD");
    assert!(
        created["data"]["estimate"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 0.2
    );
    let resolved = body("ticket.resolved");
    assert_eq!(resolved["data"]["status"], "approved");
    assert_eq!(resolved["data"]["charge_to"], "team:support");
    assert_eq!(resolved["data"]["resolved_by"], "lead@yourco.com");
    assert_eq!(
        body("escalation.created")["data"]["escalation_id"],
        esc.as_str()
    );
    assert_eq!(body("escalation.resolved")["data"]["status"], "approved");
    let budget = body("budget.threshold_reached");
    assert_eq!(budget["data"]["wallet"], "team:support");
    assert_eq!(budget["data"]["threshold"], 50);
    assert_eq!(body("key.revoked")["data"]["key_id"], spare_id);
    // the dead webhook's deliveries are retried, never delivered
    assert!(
        metrics.contains("keeptrusts_notifications_total{outcome=\"delivered\"} 26"),
        "{metrics}"
    );
    assert!(
        metrics.contains("keeptrusts_notification_retries_total"),
        "{metrics}"
    );
}

#[test]
fn a_webhook_without_its_signing_key_stops_the_gateway_from_starting() {
    let env = Env::new("notify-nokey");
    env.support_team();
    let p = env.write_pack("pack: { name: n, version: \"1.0\" }\npolicies: { chain: [rbac] }\nnotifications:\n  - url: https://hooks.example.com/kt\n    events: [ticket.created]\n    secret_key_ref: { env: KT_TEST_UNSET_WEBHOOK_KEY }\n");
    let (code, _, err) = env.gateway_run(&p);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("notifications[0].secret_key_ref.env")
            && err.contains("KT_TEST_UNSET_WEBHOOK_KEY"),
        "{err}"
    );
    // a misspelt event type is a pack error with its place and a suggestion
    std::fs::write(
        &p,
        "pack: { name: n, version: \"1.0\" }\npolicies: { chain: [rbac] }\nnotifications:\n  - url: https://hooks.example.com/kt\n    events: [ticket.create]\n    secret_key_ref: { env: PATH }\n",
    )
    .unwrap();
    let (code, _, err) = env.gateway_run(&p);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("5:14")
            && err.contains("notifications[0].events[0]")
            && err.contains("ticket.created"),
        "{err}"
    );
}
