//! The request lifecycle (`exchange`) against generated provider behaviours: money and audit
//! invariants hold whatever the provider does.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use keeptrusts_core::event::{Closing, EventStore};
use keeptrusts_core::exchange::{Begin, Delta, Exchange, StreamEnd};
use keeptrusts_core::pack;
use keeptrusts_core::routing::{Router, RouterOptions};
use keeptrusts_core::wallet::ticket::{TicketResolution, TicketStore};
use keeptrusts_core::wallet::{Grant, WalletScope};
use keeptrusts_core::{
    ChatRequest, ChatResponse, Engine, MemoryStore, Principal, RequestContext, Role, Stores,
    WalletKey, WalletStore,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

const PACK: &str = r#"
pack: { name: lifecycle, version: "1.0" }
policies:
  chain: [rbac, pii-detector, audit-logger]
policy:
  rbac: { allowed_models: { member: [m0, m1] } }
  pii-detector: { action: redact }
providers:
  targets:
    - { id: t0, provider: openai-compatible, model: m0, base_url: "http://127.0.0.1:9/v1", secret_key_ref: { env: K }, pricing: { input_per_1m: "1000", output_per_1m: "2000" } }
    - { id: t2, provider: openai-compatible, model: m2, base_url: "http://127.0.0.1:9/v1", secret_key_ref: { env: K }, pricing: { input_per_1m: "1", output_per_1m: "1" } }
    - { id: t1, provider: openai, model: m1, base_url: "http://127.0.0.1:9/v1", secret_key_ref: { env: K }, pricing: { input_per_1m: "3000", output_per_1m: "6000" } }
  consumer_groups:
    - name: g
      routing: ordered
      models:
        - { provider: openai-compatible, model: m0 }
        - { provider: openai-compatible, model: m2 }
        - { provider: openai, model: m1 }
wallets:
  cascade: [team]
"#;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Provider {
    /// Answers within the forwarded limits, with or without usage.
    Honour { usage: bool },
    /// Bills far above the forwarded limits.
    Overbill,
    /// Fails before answering.
    Fail,
    /// Streams one piece, then the stream breaks.
    Break,
}

#[derive(Debug, Clone)]
struct Case {
    group: bool,
    max_tokens: Option<u32>,
    n: u64,
    stream: bool,
    text_len: usize,
    /// Behaviour per candidate, in order.
    providers: Vec<Provider>,
    /// 0: stays; 1: leaves before the call; 2: leaves during the call.
    client: u8,
    /// When ticketed: approve and retry (by the requester, or by a teammate).
    approve: Option<bool>,
}

fn provider() -> impl Strategy<Value = Provider> {
    prop_oneof![
        4 => any::<bool>().prop_map(|usage| Provider::Honour { usage }),
        1 => Just(Provider::Overbill),
        2 => Just(Provider::Fail),
        1 => Just(Provider::Break),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        prop_oneof![Just(None), (1u32..3000).prop_map(Some)],
        1u64..4,
        any::<bool>(),
        1usize..400,
        proptest::collection::vec(provider(), 3),
        prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        prop_oneof![Just(None), any::<bool>().prop_map(Some)],
    )
        .prop_map(
            |(group, max_tokens, n, stream, text_len, providers, client, approve)| Case {
                group,
                max_tokens,
                n,
                stream,
                text_len,
                providers,
                client,
                approve,
            },
        )
}

struct World {
    engine: Engine,
    router: Router,
    store: MemoryStore,
    /// Every closing written, with whether the provider honoured the forwarded limits.
    closings: Vec<(Closing, bool, Option<Decimal>)>,
    /// Provider calls that answered (and could bill).
    billed_calls: usize,
    exchanges: usize,
    now: i64,
}

fn team() -> WalletKey {
    WalletKey {
        scope: WalletScope::Team,
        id: "eng".into(),
    }
}

impl World {
    fn new(allocated: Decimal) -> World {
        let parsed = pack::parse(PACK).unwrap();
        let (router, _) = Router::new(
            &parsed.spec,
            &|_| Some("k".into()),
            RouterOptions {
                failure_threshold: u32::MAX,
                ..RouterOptions::default()
            },
        );
        let store = MemoryStore::new();
        store
            .allocate(&team(), &Grant::set(allocated, "USD"), 0)
            .unwrap();
        World {
            engine: Engine::compile(parsed).unwrap(),
            router,
            store,
            closings: Vec::new(),
            billed_calls: 0,
            exchanges: 0,
            now: 1_000,
        }
    }

    fn commit(&mut self, c: Closing, honoured: bool, reserved: Option<Decimal>) {
        c.clone()
            .commit(&self.store, Some(&self.store), self.now)
            .unwrap();
        self.closings.push((c, honoured, reserved));
    }

    /// One request through the lifecycle; returns the ticket id of a 402.
    fn run(
        &mut self,
        who: &Principal,
        c: &Case,
        rid: &str,
        ticket: Option<String>,
    ) -> Option<String> {
        self.now += 10;
        self.exchanges += 1;
        let mut p = who.clone();
        if c.group {
            p.consumer_group = Some("g".into());
        }
        let mut req = ChatRequest::user(
            "m0",
            &format!("mail ann@example.com {}", "x".repeat(c.text_len)),
        );
        req.max_tokens = c.max_tokens;
        if c.n > 1 {
            req.extra.insert("n".into(), serde_json::json!(c.n));
        }
        if c.stream {
            req.extra.insert("stream".into(), serde_json::json!(true));
        }
        let mut ctx = RequestContext::new(rid, self.now);
        ctx.ticket_id = ticket;
        let stores = Stores::new(&self.store).with_budget(&self.store, &self.store);
        let begun =
            Exchange::begin(&self.engine, Some(&self.router), &p, &req, &ctx, &stores).unwrap();
        let mut x = match begun {
            Begin::Answer(a) => {
                let ticket = a.body["error"]["ticket_id"].as_str().map(str::to_owned);
                self.commit(a.close, true, None);
                return ticket;
            }
            Begin::Forward(x) => x,
        };
        let reserved = x.decision().reservation.as_ref().map(|l| l.amount);
        assert!(
            reserved.is_some(),
            "a forwarded request holds a reservation"
        );
        // the forbidden model m2 is never a candidate
        assert!(x.candidates().iter().all(|c| c.model != "m2"));
        if c.client == 1 {
            let close = x.abandon().unwrap();
            assert!(
                close.actual.is_none(),
                "nothing was called: nothing is charged"
            );
            self.commit(close, true, reserved);
            return None;
        }
        let mut attempt = 0;
        loop {
            let Some(call) = x.next_call() else {
                let a = x.exhausted("all failed");
                assert_eq!(a.status, 502);
                self.commit(a.close, true, reserved);
                return None;
            };
            let behaviour = c.providers[attempt % c.providers.len()];
            attempt += 1;
            // what a provider that honours the body may bill at most
            let limit = u64::from(
                call.request
                    .max_tokens
                    .or_else(|| {
                        call.request.extra["max_completion_tokens"]
                            .as_u64()
                            .map(|v| v as u32)
                    })
                    .expect("the forwarded body carries an output limit"),
            );
            let n = call
                .request
                .extra
                .get("n")
                .and_then(|v| v.as_u64())
                .unwrap_or(1);
            // a tokenizer at its worst: one token per byte of text
            let prompt = call.request.messages[0]
                .content
                .as_ref()
                .map(|_| serde_json::to_string(&call.request.messages).unwrap().len() as u64)
                .unwrap();
            if behaviour == Provider::Fail {
                x.failed();
                continue;
            }
            if c.client == 2 {
                let close = x.abandon().unwrap();
                self.billed_calls += 1;
                self.commit(close, true, reserved);
                return None;
            }
            self.billed_calls += 1;
            let (completion, honoured, with_usage) = match behaviour {
                Provider::Honour { usage } => (limit * n, true, usage),
                Provider::Overbill => (limit * n + 50_000, false, true),
                _ => (limit * n, true, true),
            };
            if c.stream {
                let mut relay = x.relay();
                let mut sent = Vec::new();
                sent.extend(
                    relay
                        .push(Delta::Text {
                            choice: 0,
                            text: "hello ann@example.com ".into(),
                        })
                        .unwrap(),
                );
                if behaviour == Provider::Break {
                    sent.extend(relay.flush(None).unwrap());
                    let usage = relay.usage();
                    drop(relay);
                    let end = x.finish_stream(usage, StreamEnd::Broken("broke".into()));
                    assert!(end.error.is_some());
                    self.commit(end.close, true, reserved);
                    return None;
                }
                if with_usage {
                    relay
                        .push(Delta::Usage {
                            prompt_tokens: prompt,
                            completion_tokens: completion,
                        })
                        .unwrap();
                }
                sent.extend(
                    relay
                        .push(Delta::Finish {
                            choice: 0,
                            reason: "stop".into(),
                        })
                        .unwrap(),
                );
                let text: String = sent
                    .iter()
                    .filter_map(|d| match d {
                        Delta::Text { text, .. } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect();
                assert!(!text.contains("ann@example.com"), "{text}");
                sent.extend(relay.end().unwrap());
                let usage = relay.usage();
                drop(relay);
                let end = x.finish_stream(usage, StreamEnd::Complete);
                self.commit(end.close, honoured, reserved);
            } else {
                let mut body = serde_json::json!({
                    "id": "c1", "object": "chat.completion",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi ann@example.com"}, "finish_reason": "stop"}],
                });
                if with_usage {
                    body["usage"] = serde_json::json!({"prompt_tokens": prompt, "completion_tokens": completion});
                }
                let resp: ChatResponse = serde_json::from_value(body).unwrap();
                let a = x.answer(&resp);
                assert_eq!(a.status, 200);
                assert!(!a.body.to_string().contains("ann@example.com"));
                self.commit(a.close, honoured, reserved);
            }
            return None;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn money_and_audit_hold_whatever_the_provider_does(
        cases in proptest::collection::vec(case(), 1..24),
        allocated in (0u32..40).prop_map(Decimal::from),
    ) {
        let mut w = World::new(allocated);
        let member = Principal::new("dev@yourco.com", "eng", Role::Member);
        let mate = Principal::new("mate@yourco.com", "eng", Role::Member);
        for (i, c) in cases.iter().enumerate() {
            let rid = format!("r{i}");
            let ticket = w.run(&member, c, &rid, None);
            if let (Some(t), Some(by_owner)) = (ticket, c.approve) {
                w.store
                    .resolve(&t, &TicketResolution::Approve { charge_to: team() }, "lead@yourco.com", w.now)
                    .unwrap();
                let who = if by_owner { &member } else { &mate };
                w.run(who, c, &format!("{rid}-retry"), Some(t.clone()));
                if !by_owner {
                    // a teammate was refused; the requester still may
                    w.run(&member, c, &format!("{rid}-retry2"), Some(t));
                }
            }
        }
        let wallet = WalletStore::get(&w.store, &team(), w.now).unwrap().unwrap();
        // nothing stays reserved
        prop_assert_eq!(wallet.reserved, Decimal::ZERO);
        // every exchange wrote exactly one event
        let events = EventStore::list(&w.store, "default").unwrap();
        prop_assert_eq!(events.len(), w.exchanges);
        // spent = the sum of the events' settlements
        let settled: Decimal = events.iter().filter_map(|e| e.body.cost.as_ref().and_then(|c| c.settled)).sum();
        prop_assert_eq!(wallet.spent, settled);
        // every provider call that could bill was charged
        let charged = w.closings.iter().filter(|(c, _, _)| c.actual.is_some()).count();
        prop_assert_eq!(charged, w.billed_calls);
        for (c, honoured, reserved) in &w.closings {
            if let (Some(actual), Some(r)) = (c.actual, reserved) {
                let overrun = c.draft.cost.as_ref().unwrap().overrun;
                if *honoured {
                    prop_assert!(actual <= *r, "settled {} above reserved {}", actual, r);
                    prop_assert!(!overrun);
                } else {
                    prop_assert!(overrun, "an overbilling provider is flagged");
                }
                prop_assert!(actual > Decimal::ZERO, "a served request is never free");
            }
        }
    }
}

#[test]
fn without_a_budget_the_body_keeps_the_clients_limits() {
    // nothing is reserved, so nothing needs bounding: the host's provider gets the request as
    // the client wrote it (the governed text aside)
    let w = World::new(Decimal::ZERO);
    let p = Principal::new("dev@yourco.com", "eng", Role::Member);
    let req = ChatRequest::user("m0", "hello");
    let ctx = RequestContext::new("nb", 1);
    let stores = Stores::new(&w.store);
    let Begin::Forward(mut x) = Exchange::begin(&w.engine, None, &p, &req, &ctx, &stores).unwrap()
    else {
        panic!("forwarded")
    };
    let call = x.next_call().unwrap();
    assert_eq!(call.request.max_tokens, None);
    assert!(call.request.extra.get("max_completion_tokens").is_none());
    assert!(x.decision().reservation.is_none());
}
