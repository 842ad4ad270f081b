//! Cases shared by the SQLite and PostgreSQL suites: each runs against the in-memory store and
//! the SQL store, and the results must be identical.
#![allow(dead_code)]

use keeptrusts_core::escalation::{resolve, Escalation, EscalationStatus, Redeem, Resolution};
use keeptrusts_core::pricing::Currency;
use keeptrusts_core::wallet::{
    AllocateMode, ReserveOutcome, ReserveRequest, WalletScope, WalletStore,
};
use keeptrusts_core::{EscalationStore, Principal, Role, WalletKey};
use proptest::prelude::*;
use rust_decimal::Decimal;

pub fn keys() -> [WalletKey; 3] {
    [
        WalletKey::new(WalletScope::User, "u@yourco.com"),
        WalletKey::new(WalletScope::Team, "engineering"),
        WalletKey::new(WalletScope::Org, "default"),
    ]
}

#[derive(Debug, Clone)]
pub enum Op {
    Allocate(usize, i64, bool),
    Reserve(Vec<usize>, i64, i64, u8),
    Settle(u8, i64),
    Release(u8),
    Expire,
    Prune,
    Advance(i64),
}

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0usize..3, 0i64..5_000, any::<bool>()).prop_map(|(w, a, t)| Op::Allocate(w, if t { a.max(1) } else { a }, t)),
        3 => (proptest::sample::subsequence(vec![0usize, 1, 2], 0..=3), 0i64..2_000, 1i64..3_000, 0u8..12)
            .prop_map(|(c, a, ttl, id)| Op::Reserve(c, a, ttl, id)),
        2 => (0u8..12, 0i64..3_000).prop_map(|(id, a)| Op::Settle(id, a)),
        1 => (0u8..12).prop_map(Op::Release),
        1 => Just(Op::Expire),
        1 => Just(Op::Prune),
        1 => (1i64..2_000).prop_map(Op::Advance),
    ]
}

/// Runs ops on a store and records every observable result as text.
pub fn run(store: &dyn WalletStore, ops: &[Op]) -> Vec<String> {
    let keys = keys();
    let mut now = 10_000i64;
    let mut out = Vec::new();
    for op in ops {
        let r = match op {
            Op::Allocate(w, a, t) => format!(
                "{:?}",
                store.allocate(
                    &keys[*w],
                    Decimal::new(*a, 2),
                    "USD",
                    None,
                    if *t {
                        AllocateMode::TopUp
                    } else {
                        AllocateMode::Set
                    },
                    now
                )
            ),
            Op::Reserve(c, a, ttl, id) => {
                let req = ReserveRequest {
                    lease_id: format!("l{id}").into(),
                    cascade: c.iter().map(|i| keys[*i].clone()).collect(),
                    amount: Decimal::new(*a, 2),
                    currency: Currency::USD,
                    ttl_ms: *ttl,
                    price: None,
                    force: None,
                };
                match store.reserve(&req, now) {
                    Ok(ReserveOutcome::Reserved(l)) => {
                        format!("reserved {} on {} {:?}", l.id, l.wallet, l.status)
                    }
                    other => format!("{other:?}"),
                }
            }
            Op::Settle(id, a) => match store.settle(&format!("l{id}"), Decimal::new(*a, 2), now) {
                Ok(s) => format!("settled {} {} {}", s.lease.id, s.charged, s.replay),
                Err(e) => e.code().to_owned(),
            },
            Op::Release(id) => match store.release(&format!("l{id}"), now) {
                Ok(l) => format!("released {:?}", l.status),
                Err(e) => e.code().to_owned(),
            },
            Op::Expire => format!("{:?}", store.expire(now)),
            Op::Prune => format!("{:?}", store.prune(now - 1_000)),
            Op::Advance(ms) => {
                now += ms;
                String::new()
            }
        };
        out.push(r);
        out.push(format!("{:?}", store.list(now).unwrap()));
    }
    out
}

pub fn escalation(id: &str, team: &str, created_at: i64) -> Escalation {
    Escalation {
        id: id.into(),
        fingerprint: "fp".into(),
        org: None,
        team: Some(team.into()),
        user: Some("u@yourco.com".into()),
        role: Some(Role::Member),
        reason: "require_review".into(),
        assignee: None,
        status: EscalationStatus::Pending,
        created_at,
        expires_at: created_at + 1_000,
        resolved_at: None,
        resolved_by: None,
        redeemed_at: None,
    }
}

pub fn escalation_case(store: &dyn EscalationStore) -> Vec<String> {
    let mut out = Vec::new();
    store.insert(&escalation("e1", "legal", 1)).unwrap();
    store.insert(&escalation("e2", "support", 2)).unwrap();
    store.insert(&escalation("e3", "legal", 3)).unwrap();
    out.push(format!(
        "{:?}",
        store
            .insert(&escalation("e1", "legal", 9))
            .map_err(|e| e.code())
    ));
    out.push(format!(
        "{:?}",
        store
            .list(Some("legal"))
            .unwrap()
            .iter()
            .map(|e| e.id.clone())
            .collect::<Vec<_>>()
    ));
    out.push(format!("{:?}", store.list(None).unwrap().len()));
    let admin = Principal::new("lead@yourco.com", "legal", Role::Admin);
    out.push(format!(
        "{:?}",
        resolve(store, &admin, "e1", Resolution::Approve, 5).map(|e| e.status)
    ));
    out.push(format!(
        "{:?}",
        resolve(store, &admin, "e2", Resolution::Approve, 5).map_err(|e| e.code())
    ));
    out.push(format!(
        "{:?}",
        resolve(store, &admin, "e3", Resolution::Approve, 5_000).map_err(|e| e.code())
    ));
    out.push(format!(
        "{:?}",
        store.redeem("e1", "fp", Some("legal"), 6).unwrap()
    ));
    out.push(format!(
        "{:?}",
        store.redeem("e1", "fp", Some("legal"), 7).unwrap()
    ));
    out.push(format!(
        "{:?}",
        store.redeem("e3", "fp", Some("legal"), 7).unwrap()
    ));
    assert_eq!(
        store.redeem("e1", "fp", Some("legal"), 8).unwrap(),
        Redeem::Invalid("escalation approval already used")
    );
    out
}

/// One unit of gateway storage work, repeated by the SIGKILL workers: reserve, settle, append.
pub fn request_cycle(
    wallets: &dyn WalletStore,
    events: &dyn keeptrusts_core::event::EventStore,
    tag: &str,
    i: u64,
) {
    let key = WalletKey::new(WalletScope::Team, "engineering");
    let req = ReserveRequest {
        lease_id: format!("{tag}-{i}").into(),
        cascade: vec![key],
        amount: Decimal::new(1, 0),
        currency: Currency::USD,
        ttl_ms: 1_000,
        price: None,
        force: None,
    };
    let now = i64::try_from(i).unwrap_or(0);
    if let Ok(ReserveOutcome::Reserved(l)) = wallets.reserve(&req, now) {
        let _ = wallets.settle(&l.id, Decimal::new(37, 2), now);
        let draft = keeptrusts_core::event::EventDraft {
            id: format!("evt_{tag}-{i}"),
            request_id: format!("{tag}-{i}"),
            timestamp: now,
            org: "default".into(),
            team: Some("engineering".into()),
            user: Some("dev@yourco.com".into()),
            role: Some(Role::Member),
            consumer_group: None,
            model: Some("gpt-4o-mini".into()),
            target: None,
            verdict: keeptrusts_core::Verdict::Allow,
            status: 200,
            reason: None,
            policies: Vec::new(),
            cost: None,
            tokens: None,
            escalation_id: None,
            ticket_id: None,
            audit: None,
        };
        let _ = events.append(draft);
    }
}

/// After a crash: the chain verifies, spent equals the committed settlements, and expiry releases
/// every lease left active.
pub fn check_after_crash(
    wallets: &dyn WalletStore,
    events: &dyn keeptrusts_core::event::EventStore,
    tag: &str,
) -> (usize, usize) {
    let chain = events.list("default").unwrap();
    assert_eq!(
        keeptrusts_core::event::verify(&chain, events.anchor("default").unwrap().as_ref()),
        Ok(())
    );
    let key = WalletKey::new(WalletScope::Team, "engineering");
    let mut settled = Decimal::ZERO;
    let mut n_settled = 0;
    // lease ids are sequential: read them until a run of 50 missing ids
    let (mut i, mut missing) = (0u64, 0);
    while missing < 50 {
        match wallets.lease(&format!("{tag}-{i}")).unwrap() {
            Some(l) => {
                missing = 0;
                if let Some(c) = l.charged {
                    settled += c;
                    n_settled += 1;
                }
            }
            None => missing += 1,
        }
        i += 1;
    }
    let w = wallets.get(&key, 0).unwrap().unwrap();
    assert_eq!(
        w.spent, settled,
        "spent equals the sum of committed settlements"
    );
    wallets.expire(i64::MAX / 2).unwrap();
    let w = wallets.get(&key, 0).unwrap().unwrap();
    assert_eq!(
        w.reserved,
        Decimal::ZERO,
        "expiry released every unsettled lease"
    );
    (chain.len(), n_settled)
}

pub fn ticket_case(store: &dyn keeptrusts_core::TicketStore) -> Vec<String> {
    use keeptrusts_core::wallet::ticket::{
        resolve as resolve_ticket, Ticket, TicketResolution, TicketStatus,
    };
    let t = |id: &str, team: &str, at: i64| Ticket {
        id: id.into(),
        fingerprint: "fp".into(),
        org: None,
        team: Some(team.into()),
        user: Some("u@yourco.com".into()),
        role: Some(Role::Member),
        model: "gpt-4o-mini".into(),
        estimate: Decimal::new(12, 3),
        currency: Currency::USD,
        status: TicketStatus::Pending,
        created_at: at,
        expires_at: at + 1_000,
        resolved_at: None,
        resolved_by: None,
        charge_to: None,
        redeemed_at: None,
    };
    let mut out = Vec::new();
    store.insert(&t("t1", "support", 1)).unwrap();
    store.insert(&t("t2", "support", 2)).unwrap();
    store.insert(&t("t3", "legal", 3)).unwrap();
    out.push(format!(
        "{:?}",
        store.insert(&t("t1", "support", 5)).map_err(|e| e.code())
    ));
    out.push(format!(
        "{:?}",
        store
            .list(Some("support"))
            .unwrap()
            .iter()
            .map(|t| t.id.clone())
            .collect::<Vec<_>>()
    ));
    let admin = Principal::new("lead@yourco.com", "support", Role::Admin);
    let approve = TicketResolution::Approve {
        charge_to: WalletKey::new(WalletScope::Team, "support"),
    };
    out.push(format!(
        "{:?}",
        resolve_ticket(store, &admin, "t1", &approve, 5).map(|t| t.status)
    ));
    out.push(format!(
        "{:?}",
        resolve_ticket(store, &admin, "t3", &approve, 5).map_err(|e| e.code())
    ));
    out.push(format!(
        "{:?}",
        resolve_ticket(store, &admin, "t2", &TicketResolution::Deny, 5).map(|t| t.status)
    ));
    out.push(format!(
        "{:?}",
        store.redeem("t1", "other", Some("support"), 6).unwrap()
    ));
    out.push(format!(
        "{:?}",
        store.redeem("t1", "fp", Some("support"), 6).unwrap()
    ));
    out.push(format!(
        "{:?}",
        store.redeem("t1", "fp", Some("support"), 7).unwrap()
    ));
    out.push(format!(
        "{:?}",
        store.redeem("t2", "fp", Some("support"), 7).unwrap()
    ));
    store.fulfill("t3", 8).unwrap();
    out.push(format!("{:?}", store.get("t3").unwrap().map(|t| t.status)));
    out.push(format!(
        "{:?}",
        store.redeem("t3", "fp", Some("legal"), 9).unwrap()
    ));
    out
}
