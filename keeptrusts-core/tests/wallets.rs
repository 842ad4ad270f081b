//! The seed's money story, replayed: allocations, the cascade, cost tickets, approval and funding.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use keeptrusts_core::pricing::Usage;
use keeptrusts_core::wallet::ticket::{self, TicketResolution, TicketStatus};
use keeptrusts_core::wallet::{self, Grant, LeaseStatus, Period, WalletScope};
use keeptrusts_core::EscalationStore;
use keeptrusts_core::{
    ChatRequest, Decision, Engine, MemoryEscalations, MemoryTickets, MemoryWallets, Principal,
    RequestContext, Role, Stores, TicketStore, Verdict, WalletKey, WalletStore,
};
use rust_decimal::Decimal;

const PACK: &str = r#"
pack: { name: budgets, version: "1.0" }
policies:
  chain: [rbac, audit-logger]
policy:
  rbac: { require_auth: true, deny_if_missing: [team, role] }
providers:
  targets:
    - id: mini
      provider: openai
      model: gpt-4o-mini
    - id: house
      provider: openai-compatible
      model: house-model
      base_url: http://127.0.0.1:9000/v1
      pricing: { input_per_1m: "1.00", output_per_1m: "2.00" }
"#;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

struct World {
    engine: Engine,
    escalations: MemoryEscalations,
    wallets: MemoryWallets,
    tickets: MemoryTickets,
}

impl World {
    fn new(pack: &str) -> Self {
        World {
            engine: Engine::from_yaml(pack).unwrap(),
            escalations: MemoryEscalations::new(),
            wallets: MemoryWallets::new(),
            tickets: MemoryTickets::new(),
        }
    }

    /// [`World::eval`] of one user message `text` to `model`, without a ticket.
    fn ask(&self, p: &Principal, model: &str, text: &str, id: &str) -> Decision {
        self.eval(p, &ChatRequest::user(model, text), id, None)
    }

    fn eval(&self, p: &Principal, r: &ChatRequest, id: &str, ticket: Option<&str>) -> Decision {
        let stores = Stores::new(&self.escalations).with_budget(&self.wallets, &self.tickets);
        let ctx = RequestContext {
            request_id: id.into(),
            now_ms: NOW,
            escalation_id: None,
            ticket_id: ticket.map(str::to_owned),
        };
        self.engine.evaluate(p, r, &ctx, &stores).unwrap()
    }

    fn allocate(&self, actor: &Principal, key: &WalletKey, amount: &str) {
        wallet::allocate(
            &self.wallets,
            actor,
            key,
            &[],
            &Grant::set(d(amount), "USD").every(Period::Monthly),
            NOW,
        )
        .unwrap();
    }

    fn wallet(&self, key: &WalletKey) -> keeptrusts_core::Wallet {
        self.wallets.get(key, NOW).unwrap().unwrap()
    }
}

const NOW: i64 = 1_795_556_220_000;

fn owner() -> Principal {
    Principal::new("cfo@yourco.com", "finance", Role::Owner)
}

/// The ruling that approves a ticket, charging team `to`'s wallet.
fn approval(to: &str) -> TicketResolution {
    TicketResolution::Approve {
        charge_to: team(to),
    }
}

fn team(t: &str) -> WalletKey {
    WalletKey::new(WalletScope::Team, t)
}

#[test]
fn seed_allocations_and_team_budgets() {
    let w = World::new(PACK);
    w.allocate(&owner(), &team("engineering"), "1000.00");
    w.allocate(&owner(), &team("support"), "200.00");
    assert_eq!(w.wallet(&team("engineering")).available(), d("1000"));

    let dev = Principal::new("dev@yourco.com", "engineering", Role::Member);
    let req = ChatRequest::user(
        "gpt-4o-mini",
        "Summarise the incident report in five bullet points.",
    );
    let dec = w.eval(&dev, &req, "r1", None);
    assert_eq!((dec.verdict, dec.status), (Verdict::Allow, 200));
    let lease = dec.reservation.clone().unwrap();
    assert_eq!(lease.wallet, team("engineering"));
    // the bound: 117 bytes of request JSON + 3 = 120 input tokens (a token covers at least one
    // byte), 1024 output, at 0.15 / 0.60 per 1M
    assert_eq!(dec.estimate.as_ref().unwrap().input_tokens, 120);
    assert_eq!(lease.amount, d("0.0006324"));
    assert_eq!(w.wallet(&team("engineering")).reserved, lease.amount);

    // settle with the provider's usage: 30 in, 200 out = 0.0000045 + 0.00012
    let usage = Usage {
        prompt_tokens: 30,
        completion_tokens: 200,
    };
    let settle = || w.engine.settle(&w.wallets, &lease.id, &usage, NOW).unwrap();
    let s = settle();
    assert_eq!(s.charged, d("0.0001245"));
    let again = settle();
    assert!(again.replay);
    let eng = w.wallet(&team("engineering"));
    assert_eq!((eng.spent, eng.reserved), (d("0.0001245"), Decimal::ZERO));
    assert_eq!(eng.available(), d("999.9998755"));

    // support's wallet is separate
    let agent = Principal::new("agent@yourco.com", "support", Role::Member);
    let dec = w.eval(&agent, &req, "r2", None);
    assert_eq!(dec.reservation.unwrap().wallet, team("support"));
    assert_eq!(w.wallet(&team("engineering")).reserved, Decimal::ZERO);
}

#[test]
fn cascade_order_user_then_team_then_org() {
    let w = World::new(PACK);
    let dev = Principal {
        org: Some("acme".into()),
        ..Principal::new("dev@yourco.com", "engineering", Role::Member)
    };
    let user = WalletKey::new(WalletScope::User, "dev@yourco.com");
    let org = WalletKey::new(WalletScope::Org, "acme");
    w.allocate(&owner(), &org, "50");
    w.allocate(&owner(), &team("engineering"), "0.001");
    w.allocate(&owner(), &user, "0.0005");
    let req = ChatRequest::user("house-model", "hi"); // 67 JSON bytes + 3 = 70 in, 1024 out at 1/2 per 1M
    let cost = d("0.002118");
    // the user wallet (0.0005) and the team wallet (0.001) cannot cover 0.002118: org pays
    let dec = w.eval(&dev, &req, "a", None);
    assert_eq!(dec.estimate.as_ref().unwrap().amount, cost);
    assert_eq!(dec.reservation.unwrap().wallet, org);
    // fund the team: now it pays, before the org
    w.allocate(&owner(), &team("engineering"), "1");
    assert_eq!(
        w.eval(&dev, &req, "b", None).reservation.unwrap().wallet,
        team("engineering")
    );
    // fund the user: the user wallet comes first
    w.allocate(&owner(), &user, "1");
    assert_eq!(
        w.eval(&dev, &req, "c", None).reservation.unwrap().wallet,
        user
    );
}

#[test]
fn the_pack_can_shorten_the_cascade() {
    let pack = format!("{PACK}wallets:\n  cascade: [team]\n  default_max_output_tokens: 100\n");
    let w = World::new(&pack);
    let dev = Principal::new("dev@yourco.com", "engineering", Role::Member);
    w.allocate(
        &owner(),
        &WalletKey::new(WalletScope::Org, "default"),
        "100",
    );
    let dec = w.eval(&dev, &ChatRequest::user("gpt-4o-mini", "hi"), "a", None);
    assert_eq!(
        (dec.verdict, dec.status, dec.code()),
        (Verdict::Ticket, 402, Some("budget_exceeded"))
    );
    assert_eq!(dec.estimate.unwrap().output_tokens, 100);
}

#[test]
fn empty_cascade_opens_a_ticket_and_approval_lets_the_retry_through_once() {
    let w = World::new(PACK);
    let dev = Principal::new("dev@yourco.com", "engineering", Role::Member);
    let req = ChatRequest::user("gpt-4o-mini", "Draft the quarterly report.");
    let dec = w.eval(&dev, &req, "r1", None);
    assert_eq!(
        (dec.verdict, dec.status, dec.code()),
        (Verdict::Ticket, 402, Some("budget_exceeded"))
    );
    let body = dec.error_body().unwrap();
    assert_eq!(body["error"]["request_id"], "r1");
    assert_eq!(body["error"]["type"], "insufficient_quota");
    assert_eq!(body["error"]["code"], "budget_exceeded");
    let ticket_id = dec.ticket_id.clone().unwrap();
    assert_eq!(
        dec.error.as_ref().unwrap().ticket_id.as_deref(),
        Some(ticket_id.as_str())
    );
    assert!(dec.reservation.is_none());
    let t = w.tickets.get(&ticket_id).unwrap().unwrap();
    assert_eq!(
        (t.status, t.team.as_deref(), t.model.as_str()),
        (TicketStatus::Pending, Some("engineering"), "gpt-4o-mini")
    );

    // retry before approval: still 402 with the same ticket
    let dec = w.eval(&dev, &req, "r2", Some(&ticket_id));
    assert_eq!(
        (dec.status, dec.ticket_id.as_deref()),
        (402, Some(ticket_id.as_str()))
    );

    // a member cannot approve; an admin of another team cannot; the team admin can
    let member = Principal::new("m@yourco.com", "engineering", Role::Member);
    let other = Principal::new("a@yourco.com", "support", Role::Admin);
    let admin = Principal::new("lead@yourco.com", "engineering", Role::Admin);
    let approve = approval("engineering");
    let refusal = |who: &Principal, how: &TicketResolution| {
        let err = ticket::resolve(&w.tickets, who, &ticket_id, how, NOW).unwrap_err();
        err.code()
    };
    assert_eq!(refusal(&member, &approve), "forbidden");
    assert_eq!(refusal(&other, &approve), "forbidden");
    // the admin may not charge another team's wallet
    let elsewhere = approval("support");
    assert_eq!(refusal(&admin, &elsewhere), "forbidden");
    // approval charges the named wallet, which must exist (an empty allocation is enough)
    w.allocate(&admin, &team("engineering"), "0");
    ticket::resolve(&w.tickets, &admin, &ticket_id, &approve, NOW).unwrap();

    // a different request cannot use the ticket: refused with a clear code, the approval kept
    let other_req = ChatRequest::user("gpt-4o-mini", "Something else entirely.");
    let dec = w.eval(&dev, &other_req, "r3", Some(&ticket_id));
    assert_eq!(dec.status, 409);
    assert_eq!(dec.code(), Some("ticket_request_mismatch"));
    // nor the same request asking for more output than was approved
    let mut bigger = req.clone();
    bigger.max_tokens = Some(16_000);
    let dec = w.eval(&dev, &bigger, "r3b", Some(&ticket_id));
    assert_eq!(dec.code(), Some("ticket_request_mismatch"));
    // nor a teammate re-sending the requester's prompt
    let mate = Principal::new("mate@yourco.com", "engineering", Role::Member);
    let dec = w.eval(&mate, &req, "r3c", Some(&ticket_id));
    assert_eq!((dec.status, dec.code()), (403, Some("ticket_not_yours")));

    // the approved retry goes through, as an approved overrun on the engineering wallet
    let dec = w.eval(&dev, &req, "r4", Some(&ticket_id));
    assert_eq!((dec.verdict, dec.status), (Verdict::Allow, 200));
    let lease = dec.reservation.unwrap();
    assert!(lease.approved_overrun);
    assert_eq!(lease.wallet, team("engineering"));
    assert!(w.wallet(&team("engineering")).available() < Decimal::ZERO);

    // ... exactly once
    let dec = w.eval(&dev, &req, "r5", Some(&ticket_id));
    assert_eq!(dec.status, 402);
    assert_ne!(dec.ticket_id.as_deref(), Some(ticket_id.as_str()));
}

#[test]
fn funding_a_wallet_lets_the_queued_request_through_once() {
    let w = World::new(PACK);
    let agent = Principal::new("agent@yourco.com", "support", Role::Member);
    let req = ChatRequest::user("gpt-4o-mini", "Reply to the refund request.");
    let ticket_id = w.eval(&agent, &req, "r1", None).ticket_id.unwrap();
    w.allocate(&owner(), &team("support"), "200");
    let dec = w.eval(&agent, &req, "r2", Some(&ticket_id));
    assert_eq!((dec.verdict, dec.status), (Verdict::Allow, 200));
    assert_eq!(
        w.tickets.get(&ticket_id).unwrap().unwrap().status,
        TicketStatus::Fulfilled
    );
    // the ticket cannot be approved any more
    let approve = approval("support");
    assert_eq!(
        ticket::resolve(&w.tickets, &owner(), &ticket_id, &approve, NOW)
            .unwrap_err()
            .code(),
        "conflict"
    );
}

#[test]
fn denied_and_expired_tickets_refuse_the_retry() {
    let w = World::new(&format!("{PACK}wallets:\n  ticket_ttl_seconds: 60\n"));
    let dev = Principal::new("dev@yourco.com", "engineering", Role::Member);
    let req = ChatRequest::user("gpt-4o-mini", "hello");
    let id = w.eval(&dev, &req, "r1", None).ticket_id.unwrap();
    ticket::resolve(&w.tickets, &owner(), &id, &TicketResolution::Deny, NOW).unwrap();
    let dec = w.eval(&dev, &req, "r2", Some(&id));
    assert_eq!(
        (dec.verdict, dec.status, dec.code()),
        (Verdict::Block, 409, Some("ticket_denied"))
    );

    let id = w.eval(&dev, &req, "r3", None).ticket_id.unwrap();
    let stores = Stores::new(&w.escalations).with_budget(&w.wallets, &w.tickets);
    let later = RequestContext {
        request_id: "r4".into(),
        now_ms: NOW + 61_000,
        escalation_id: None,
        ticket_id: Some(id),
    };
    let dec = w.engine.evaluate(&dev, &req, &later, &stores).unwrap();
    assert_eq!(dec.code(), Some("ticket_expired"));
}

#[test]
fn unknown_models_are_refused_never_free() {
    let w = World::new(PACK);
    w.allocate(&owner(), &team("engineering"), "1000");
    let dev = Principal::new("dev@yourco.com", "engineering", Role::Member);
    let dec = w.ask(&dev, "my-private-finetune", "hi", "a");
    assert_eq!(
        (dec.verdict, dec.status, dec.code()),
        (Verdict::Block, 400, Some("model_price_unknown"))
    );
    assert_eq!(dec.error.as_ref().unwrap().request_id, "a");
    let mut no_model = ChatRequest::user("x", "hi");
    no_model.model = None;
    assert_eq!(
        w.eval(&dev, &no_model, "b", None).code(),
        Some("model_price_unknown")
    );
    assert_eq!(w.wallet(&team("engineering")).reserved, Decimal::ZERO);
}

#[test]
fn denied_requests_reserve_nothing_and_failures_release() {
    let w = World::new(PACK);
    w.allocate(&owner(), &team("engineering"), "10");
    let anonymous = Principal {
        authenticated: false,
        ..Principal::new("x", "engineering", Role::Member)
    };
    let dec = w.ask(&anonymous, "gpt-4o-mini", "hi", "a");
    assert_eq!(dec.status, 401);
    assert!(dec.reservation.is_none() && dec.estimate.is_none());
    assert_eq!(w.wallet(&team("engineering")).reserved, Decimal::ZERO);

    let dev = Principal::new("dev@yourco.com", "engineering", Role::Member);
    let lease = w
        .eval(&dev, &ChatRequest::user("gpt-4o-mini", "hi"), "b", None)
        .reservation
        .unwrap();
    assert!(w.wallet(&team("engineering")).reserved > Decimal::ZERO);
    assert_eq!(
        w.wallets.release(&lease.id, NOW).unwrap().status,
        LeaseStatus::Released
    );
    assert_eq!(w.wallet(&team("engineering")).reserved, Decimal::ZERO);
    // the same request id again returns the same lease instead of holding twice
    let l1 = w
        .eval(&dev, &ChatRequest::user("gpt-4o-mini", "hi"), "c", None)
        .reservation
        .unwrap();
    let l2 = w
        .eval(&dev, &ChatRequest::user("gpt-4o-mini", "hi"), "c", None)
        .reservation
        .unwrap();
    assert_eq!(l1, l2);
    assert_eq!(w.wallet(&team("engineering")).reserved, l1.amount);
    // a completed request's id cannot be reused to ride on its settled lease
    let lease = w
        .eval(&dev, &ChatRequest::user("gpt-4o-mini", "hi"), "d", None)
        .reservation
        .unwrap();
    w.wallets
        .settle(&lease.id, Decimal::new(1, 4), NOW)
        .unwrap();
    let again = w.ask(&dev, "gpt-4o-mini", "something else", "d");
    assert_eq!(
        (again.verdict, again.status, again.code()),
        (Verdict::Block, 409, Some("duplicate_request_id"))
    );
    assert!(again.reservation.is_none());
    // expiry releases
    assert_eq!(w.wallets.expire(NOW + 600_000).unwrap(), 1);
    assert_eq!(w.wallet(&team("engineering")).reserved, Decimal::ZERO);
}

#[test]
fn allocation_permissions_and_validation() {
    let w = World::new(PACK);
    let admin = Principal::new("lead@yourco.com", "support", Role::Admin);
    let member = Principal::new("m@yourco.com", "support", Role::Member);
    let set = |actor: &Principal, key: &WalletKey, amount: &str, currency: &str| {
        let grant = Grant::set(d(amount), currency);
        wallet::allocate(&w.wallets, actor, key, &[], &grant, NOW)
    };
    assert!(set(&admin, &team("support"), "200", "USD").is_ok());
    // (who, wallet, amount, currency) and the refusal's code
    let refused = [
        (&admin, "engineering", "200", "USD", "forbidden"),
        (&member, "support", "200", "USD", "forbidden"),
        (&admin, "support", "-1", "USD", "invalid_argument"),
        (&admin, "support", "1", "usd", "invalid_argument"),
        (&admin, "support", "1", "EUR", "conflict"),
    ];
    for (actor, wallet, amount, currency, code) in refused {
        let err = set(actor, &team(wallet), amount, currency).unwrap_err();
        assert_eq!(err.code(), code, "{wallet} {amount} {currency}");
    }
    let top = wallet::allocate(
        &w.wallets,
        &admin,
        &team("support"),
        &[],
        &Grant::top_up(d("50.5"), "USD"),
        NOW,
    )
    .unwrap();
    assert_eq!(top.allocated, d("250.5"));
}

#[test]
fn an_escalation_approval_is_not_used_up_by_a_request_the_budget_refuses() {
    let pack = PACK.replace(
        "  chain: [rbac, audit-logger]\n",
        "  chain: [rbac, human-oversight, audit-logger]\n",
    ) + "  \n";
    let pack = pack.replace(
        "  rbac: { require_auth: true, deny_if_missing: [team, role] }\n",
        "  rbac: { require_auth: true, deny_if_missing: [team, role] }\n  human-oversight: { require_review: true }\n",
    );
    let w = World::new(&pack);
    let counsel = Principal::new("counsel@yourco.com", "legal", Role::Member);
    let lead = Principal::new("lead@yourco.com", "legal", Role::Admin);
    let req = ChatRequest::user("gpt-4o-mini", "Review the indemnity clause.");
    let stores = Stores::new(&w.escalations).with_budget(&w.wallets, &w.tickets);
    let eval = |id: &str, esc: Option<&str>| {
        let ctx = RequestContext {
            request_id: id.into(),
            now_ms: NOW,
            escalation_id: esc.map(str::to_owned),
            ticket_id: None,
        };
        w.engine.evaluate(&counsel, &req, &ctx, &stores).unwrap()
    };
    let esc = eval("r1", None).escalation_id.unwrap();
    keeptrusts_core::escalation::resolve(
        &w.escalations,
        &lead,
        &esc,
        keeptrusts_core::Resolution::Approve,
        NOW,
    )
    .unwrap();
    // approved, but no wallet can pay: 402, and the approval is kept
    let d = eval("r2", Some(&esc));
    assert_eq!((d.status, d.code()), (402, Some("budget_exceeded")));
    assert!(w
        .escalations
        .get(&esc)
        .unwrap()
        .unwrap()
        .redeemed_at
        .is_none());
    // funded: the retry goes through and uses the approval
    w.allocate(&owner(), &team("legal"), "10");
    let d = eval("r3", Some(&esc));
    assert_eq!((d.verdict, d.status), (Verdict::Allow, 200));
    assert!(w
        .escalations
        .get(&esc)
        .unwrap()
        .unwrap()
        .redeemed_at
        .is_some());
    // once
    assert_eq!(eval("r4", Some(&esc)).code(), Some("escalation_required"));
}

#[test]
fn an_approved_ticket_on_a_missing_wallet_keeps_its_approval() {
    let w = World::new(PACK);
    let dev = Principal::new("dev@yourco.com", "engineering", Role::Member);
    let req = ChatRequest::user("gpt-4o-mini", "Draft the plan.");
    let id = w.eval(&dev, &req, "r1", None).ticket_id.unwrap();
    let approve = approval("engineering");
    ticket::resolve(&w.tickets, &owner(), &id, &approve, NOW).unwrap();
    // the named wallet does not exist yet
    let d = w.eval(&dev, &req, "r2", Some(&id));
    assert_eq!(
        (d.status, d.code()),
        (409, Some("ticket_wallet_unavailable"))
    );
    assert!(w.tickets.get(&id).unwrap().unwrap().redeemed_at.is_none());
    w.allocate(&owner(), &team("engineering"), "0");
    let d = w.eval(&dev, &req, "r3", Some(&id));
    assert_eq!((d.verdict, d.status), (Verdict::Allow, 200));
}
