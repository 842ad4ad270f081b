//! Every refusal is audited: a bad key (401), an unreadable or invalid body (400, 413), an
//! unknown model, a consumer group the key may not use (403), and a forbidden admin call each
//! leave an event and a log line; a flood of them is bounded per minute. Before the audit issue
//! none of these left an event.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use serde_json::Value;

mod common;
use common::{all_events, call, chat, http, stop, Env};

fn post(addr: &str, key: Option<&str>, body: &[u8]) -> common::Reply {
    http(addr, "POST", "/v1/chat/completions", key, &[], body)
}

fn refusals(env: &Env) -> Vec<Value> {
    all_events(env)
        .into_iter()
        .filter(|e| e["verdict"] == "block" && e.get("admin").is_none())
        .collect()
}

#[test]
fn bad_keys_bad_bodies_and_unknown_models_leave_events_and_log_lines() {
    let env = Env::new("refusals");
    let key = env.support_team();
    let (mut gw, addr) = env.gateway(&[]);
    let wrong = "kt_0000000000000000000000000000000000000000000000000000000000000bad";
    let r = chat(&addr, Some(wrong), "gpt-4o-mini", "hello", &[]);
    assert_eq!(r.status, 401);
    let r = chat(&addr, None, "gpt-4o-mini", "hello", &[]);
    assert_eq!(r.status, 401);
    let r = post(&addr, Some(&key), b"{not json");
    assert_eq!(r.status, 400);
    let r = chat(&addr, Some(&key), "no-such-model", "hello", &[]);
    assert!(r.status >= 400, "{}", r.body);
    let unknown_model = r.json()["error"]["code"].as_str().unwrap().to_owned();
    stop(&mut gw);
    let events = refusals(&env);
    let by_status =
        |s: u64| -> Vec<&Value> { events.iter().filter(|e| e["status"] == s).collect() };
    let unauth = by_status(401);
    assert_eq!(unauth.len(), 2, "{events:?}");
    // the bad key is named by its hash prefix, never the secret; nobody is attributed
    assert_eq!(
        unauth[0]["key_hint"].as_str().unwrap(),
        &keeptrusts_core::directory::ApiKey::hash_secret(wrong)[..12]
    );
    assert!(unauth
        .iter()
        .all(|e| e.get("user").is_none() && e.get("team").is_none()));
    assert!(unauth[1].get("key_hint").is_none(), "no key, no hint");
    let text = serde_json::to_string(&all_events(&env)).unwrap();
    assert!(!text.contains(wrong) && !text.contains(&key));
    let bad_body = by_status(400);
    assert!(bad_body
        .iter()
        .any(|e| e["reason"] == "invalid_request" && e["user"] == "agent@yourco.com"));
    assert!(
        events.iter().any(|e| e["reason"] == unknown_model.as_str()),
        "the unknown model ({unknown_model}) left no event: {events:?}"
    );
    let log = std::fs::read_to_string(env.dir.join("gateway.log")).unwrap();
    assert!(log.contains("refused") && log.contains("401"), "{log}");
    assert!(env.ok(&["events", "verify"]).starts_with("ok:"));
}

#[test]
fn a_flood_of_bad_keys_is_counted_not_written_one_by_one() {
    let env = Env::new("refusal-flood");
    env.support_team();
    let (mut gw, addr) = env.gateway(&[]);
    for i in 0..150 {
        let r = chat(
            &addr,
            Some(&format!("kt_flood{i}")),
            "gpt-4o-mini",
            "x",
            &[],
        );
        assert_eq!(r.status, 401);
    }
    stop(&mut gw);
    let events = refusals(&env);
    let single = events
        .iter()
        .filter(|e| e.get("suppressed").is_none())
        .count();
    let suppressed: u64 = events.iter().filter_map(|e| e["suppressed"].as_u64()).sum();
    // at most 60 a minute each; the rest counted (the run may straddle a minute boundary)
    assert!(single <= 120, "{single} events for 150 refusals");
    assert_eq!(single as u64 + suppressed, 150);
    assert!(events
        .iter()
        .filter(|e| e.get("suppressed").is_some())
        .all(|e| e["reason"] == "refusals_suppressed"));
}

#[test]
fn a_forbidden_admin_call_is_recorded_with_the_rule_that_refused_it() {
    let env = Env::new("refusal-admin");
    env.support_team();
    env.add_member("support", "boss@yourco.com", Some("owner"));
    let lead = env.member_key("support", "lead@yourco.com", Some("admin"));
    let (mut gw, addr) = env.gateway(&[]);
    let body = serde_json::json!({"team": "support", "email": "boss@yourco.com"});
    let r = call(
        &addr,
        "POST",
        "/v1/keys",
        &lead,
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    stop(&mut gw);
    let denied: Vec<Value> = all_events(&env)
        .into_iter()
        .filter(|e| e["admin"]["action"] == "create_key.denied")
        .collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["user"], "lead@yourco.com");
    assert_eq!(denied[0]["team"], "support");
    assert_eq!(denied[0]["admin"]["target"], "boss@yourco.com");
    assert!(denied[0]["admin"]["after"]
        .as_str()
        .unwrap()
        .contains("only owners"));
}
