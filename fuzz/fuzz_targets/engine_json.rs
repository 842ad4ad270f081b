//! The engine through its JSON entry point, as the bindings and the gateway call it: the first
//! byte picks a pack, the rest is `{"principal", "request", "response"?, "context"?}`. Whatever
//! parses is evaluated with budgets on; the decision must be coherent (status, verdict, error and
//! reservation agree), survive a JSON round trip, and closing the request must leave nothing
//! reserved and a verifiable audit chain.
#![no_main]

use std::sync::OnceLock;

use keeptrusts_core::event::{self, EventStore};
use keeptrusts_core::pricing::Usage;
use keeptrusts_core::wallet::{Grant, WalletScope};
use keeptrusts_core::{
    ChatRequest, ChatResponse, Decision, Engine, MemoryStore, Principal, RequestContext, Stores, Verdict,
    WalletKey, WalletStore,
};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

const PACKS: [&str; 4] = [
    include_str!("../../examples/packs/gateway-quickstart.yaml"),
    include_str!("../../examples/packs/multi-team-governance.yaml"),
    include_str!("../../examples/packs/per-team-targeting.yaml"),
    include_str!("../../examples/packs/rbac.yaml"),
];

fn engines() -> &'static Vec<Engine> {
    static E: OnceLock<Vec<Engine>> = OnceLock::new();
    E.get_or_init(|| PACKS.iter().map(|p| Engine::from_yaml(p).expect("example packs compile")).collect())
}

#[derive(Deserialize)]
struct Input {
    principal: Principal,
    request: ChatRequest,
    #[serde(default)]
    response: Option<ChatResponse>,
    #[serde(default)]
    context: Option<RequestContext>,
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(input) = serde_json::from_slice::<Input>(rest) else { return };
    let engine = &engines()[usize::from(pick) % PACKS.len()];
    let store = MemoryStore::new();
    for team in ["engineering", "support", "legal"] {
        let key = WalletKey::new(WalletScope::Team, team);
        store.allocate(&key, &Grant::set("1000".parse().unwrap(), "USD"), 0).unwrap();
    }
    let ctx = input.context.unwrap_or_else(|| RequestContext::new("fuzz", 0));
    let stores = Stores::new(&store).with_budget(&store, &store);
    let Ok(d) = engine.evaluate(&input.principal, &input.request, &ctx, &stores) else { return };
    assert!([200, 400, 401, 402, 403, 409].contains(&d.status), "status {}", d.status);
    assert_eq!(d.forwards(), d.status == 200);
    assert_eq!(d.error.is_some(), !d.forwards());
    if d.verdict == Verdict::Redact {
        assert!(d.request.is_some(), "a redaction carries the rewritten request");
    }
    if d.forwards() {
        assert!(d.reservation.is_some(), "a forwarded request holds a reservation");
    }
    let json = serde_json::to_string(&d).unwrap();
    let back: Decision = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
    let usage = Usage { prompt_tokens: u64::from(pick), completion_tokens: rest.len() as u64 };
    let served = d.forwards().then_some(("t", usage));
    if event::complete(&store, &input.principal, &d, &ctx.request_id, input.request.model.as_deref(), served, ctx.now_ms).is_ok() {
        for w in WalletStore::list(&store, ctx.now_ms).unwrap() {
            assert_eq!(w.reserved, rust_decimal::Decimal::ZERO, "a closed request holds nothing");
        }
        let org = input.principal.org.clone().unwrap_or_else(|| "default".into());
        let events = EventStore::list(&store, &org).unwrap();
        assert_eq!(event::verify(&events, None), Ok(()));
    }
    if let Some(resp) = &input.response {
        if let Ok(o) = engine.evaluate_output(&input.principal, resp, &ctx) {
            assert_eq!(o.forwards(), o.status == 200);
            if o.verdict == Verdict::Redact {
                assert!(o.response.is_some());
            }
        }
    }
});
