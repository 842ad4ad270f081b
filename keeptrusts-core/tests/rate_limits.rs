//! Rate limits through the lifecycle (`Exchange::begin` with `Stores::with_rate_limits`), as a
//! client over its limit, a blocked request and a store would break them.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use keeptrusts_core::exchange::{Begin, Exchange};
use keeptrusts_core::ratelimit::{RateCounters, Subject};
use keeptrusts_core::wallet::{Grant, WalletKey, WalletScope, WalletStore};
use keeptrusts_core::{
    ChatRequest, Engine, MemoryRateCounters, MemoryStore, Principal, RequestContext, Role, Stores,
    TicketStore,
};
use rust_decimal::Decimal;

const PACK: &str = r#"
pack: {name: lifecycle-limits, version: "1.0"}
policies:
  chain:
    - rbac
    - pii-detector:
        targeting: {scope: team, teams: [eng]}
policy:
  pii-detector: {action: block}
rate_limit_defaults:
  requests_per_minute: 2
  tokens_per_minute: 100000
  response_headers: true
"#;

fn principal() -> Principal {
    Principal::new("dev@yourco.com", "eng", Role::Member)
}

fn wallet() -> WalletKey {
    WalletKey {
        scope: WalletScope::Team,
        id: "eng".into(),
    }
}

fn begin(
    engine: &Engine,
    store: &MemoryStore,
    counters: &MemoryRateCounters,
    text: &str,
    id: &str,
    now: i64,
) -> Begin {
    let stores = Stores::new(store)
        .with_budget(store, store)
        .with_rate_limits(counters, Some("key-1"));
    let req = ChatRequest::user("gpt-4o-mini", text);
    Exchange::begin(
        engine,
        None,
        &principal(),
        &req,
        &RequestContext::new(id, now),
        &stores,
    )
    .unwrap()
}

fn tokens_used(engine: &Engine, counters: &MemoryRateCounters, now: i64) -> u64 {
    let hits = engine.rate_limits().hits(
        &Subject {
            org: "default",
            key: Some("key-1"),
            team: Some("eng"),
            consumer_group: None,
        },
        0,
        now,
    );
    let tpm = hits
        .iter()
        .find(|h| h.counter.ends_with(":tpm"))
        .expect("a tokens_per_minute counter");
    counters.value(&tpm.counter, tpm.window_start)
}

#[test]
fn a_request_over_its_limit_reserves_nothing_and_opens_no_ticket() {
    let engine = Engine::from_yaml(PACK).unwrap();
    // an empty wallet: a request that reached the budget step would open a ticket
    let store = MemoryStore::new();
    store
        .allocate(&wallet(), &Grant::set(Decimal::ZERO, "USD"), 0)
        .unwrap();
    let counters = MemoryRateCounters::new();
    for i in 0..2 {
        let Begin::Answer(a) = begin(&engine, &store, &counters, "hello", &format!("r{i}"), 0)
        else {
            panic!("an empty wallet forwards nothing")
        };
        assert_eq!(a.status, 402);
        // the refused request's reservation tokens are given back at its closing
        a.close.correct_rate(&counters).unwrap();
    }
    assert_eq!(TicketStore::list(&store, None).unwrap().len(), 2);
    let Begin::Answer(a) = begin(&engine, &store, &counters, "hello", "r2", 0) else {
        panic!("the third request of the minute is refused")
    };
    assert_eq!(a.status, 429);
    assert_eq!(a.body["error"]["code"], "rate_limited");
    assert_eq!(a.body["error"]["type"], "rate_limit_error");
    assert_eq!(a.close.draft.status, 429);
    assert_eq!(a.close.draft.reason.as_deref(), Some("rate_limited"));
    assert!(a.close.lease.is_none() && a.close.rate.is_none());
    let retry: Vec<_> = a
        .rate_headers
        .iter()
        .filter(|h| h.0 == "retry-after")
        .collect();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].1, "60");
    // no third ticket: the rate limit spoke before the budget step
    assert_eq!(TicketStore::list(&store, None).unwrap().len(), 2);
    assert_eq!(tokens_used(&engine, &counters, 0), 0);
}

#[test]
fn a_blocked_request_keeps_its_request_slot_but_gives_its_tokens_back() {
    let engine = Engine::from_yaml(PACK).unwrap();
    let store = MemoryStore::new();
    store
        .allocate(&wallet(), &Grant::set(Decimal::from(100), "USD"), 0)
        .unwrap();
    let counters = MemoryRateCounters::new();
    let Begin::Answer(a) = begin(
        &engine,
        &store,
        &counters,
        "my ssn is 123-45-6789",
        "blocked",
        0,
    ) else {
        panic!("pii-detector blocks")
    };
    assert_eq!(a.status, 409);
    let reserved = tokens_used(&engine, &counters, 0);
    assert!(reserved > 0, "counted at admission");
    assert_eq!(a.close.rate.as_ref().unwrap().reserved, reserved);
    a.close.correct_rate(&counters).unwrap();
    assert_eq!(tokens_used(&engine, &counters, 0), 0);
    // forwarded and answered: corrected to the usage the closing settles at
    let Begin::Forward(mut x) = begin(&engine, &store, &counters, "hello", "served", 0) else {
        panic!("forwarded")
    };
    assert!(x.rate_headers().iter().any(|h| h.0 == "x-ratelimit-limit"));
    x.next_call().unwrap();
    let resp = serde_json::from_value(serde_json::json!({"id": "c", "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2}}))
    .unwrap();
    let a = x.answer(&resp);
    assert_eq!(a.status, 200);
    assert!(a
        .rate_headers
        .iter()
        .any(|h| h.0 == "x-ratelimit-remaining"));
    a.close.correct_rate(&counters).unwrap();
    assert_eq!(tokens_used(&engine, &counters, 0), 9);
    // the two requests used the minute's two slots, blocked or not
    assert!(matches!(
        begin(&engine, &store, &counters, "hello", "third", 0),
        Begin::Answer(a) if a.status == 429
    ));
    // a new minute admits again
    assert!(matches!(
        begin(&engine, &store, &counters, "hello", "next", 60_000),
        Begin::Forward(_)
    ));
    assert_eq!(counters.prune_windows(120_000).unwrap(), 4);
}
