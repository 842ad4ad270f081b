//! Cases shared by the SQLite and PostgreSQL suites: each runs against the in-memory store and
//! the SQL store, and the results must be identical.
#![allow(dead_code)]

use keeptrusts_core::escalation::{resolve, Escalation, EscalationStatus, Redeem, Resolution};
use keeptrusts_core::event::Journal;
use keeptrusts_core::pricing::Currency;
use keeptrusts_core::wallet::{Grant, ReserveOutcome, ReserveRequest, WalletScope, WalletStore};
use keeptrusts_core::{EscalationStore, Principal, Role, WalletKey};
use proptest::prelude::*;
use rust_decimal::Decimal;

/// A value as one line of a case's log (`{:?}`).
pub fn shown(v: impl std::fmt::Debug) -> String {
    format!("{v:?}")
}

/// Sets `key`'s allocation to `dollars` USD at time 0.
pub fn fund(store: &(impl WalletStore + ?Sized), key: &WalletKey, dollars: i64) {
    let amount = Decimal::new(dollars, 0);
    store.allocate(key, &Grant::set(amount, "USD"), 0).unwrap();
}

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
            Op::Allocate(w, a, t) => {
                let amount = Decimal::new(*a, 2);
                let grant = if *t {
                    Grant::top_up(amount, "USD")
                } else {
                    Grant::set(amount, "USD")
                };
                format!("{:?}", store.allocate(&keys[*w], &grant, now))
            }
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
        out.push(shown(store.list(now).unwrap()));
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
        excerpt: None,
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
    out.push(shown(
        store
            .insert(&escalation("e1", "legal", 9))
            .map_err(|e| e.code()),
    ));
    out.push(shown(
        store
            .list(Some("legal"))
            .unwrap()
            .iter()
            .map(|e| e.id.clone())
            .collect::<Vec<_>>(),
    ));
    out.push(shown(store.list(None).unwrap().len()));
    let admin = Principal::new("lead@yourco.com", "legal", Role::Admin);
    out.push(shown(
        resolve(store, &admin, "e1", Resolution::Approve, 5).map(|e| e.status),
    ));
    out.push(shown(
        resolve(store, &admin, "e2", Resolution::Approve, 5).map_err(|e| e.code()),
    ));
    out.push(shown(
        resolve(store, &admin, "e3", Resolution::Approve, 5_000).map_err(|e| e.code()),
    ));
    out.push(shown(store.redeem("e1", "fp", Some("legal"), 6).unwrap()));
    out.push(shown(store.redeem("e1", "fp", Some("legal"), 7).unwrap()));
    out.push(shown(store.redeem("e3", "fp", Some("legal"), 7).unwrap()));
    assert_eq!(
        store.redeem("e1", "fp", Some("legal"), 8).unwrap(),
        Redeem::Invalid("escalation approval already used")
    );
    out
}

fn draft(tag: &str, i: u64, now: i64) -> keeptrusts_core::event::EventDraft {
    event_draft(&format!("{tag}-{i}"), now)
}

/// An allowed request's event for engineering's member.
pub fn event_draft(request_id: &str, now: i64) -> keeptrusts_core::event::EventDraft {
    keeptrusts_core::event::EventDraft {
        team: Some("engineering".into()),
        user: Some("dev@yourco.com".into()),
        role: Some(Role::Member),
        model: Some("gpt-4o-mini".into()),
        ..keeptrusts_core::event::EventDraft::new(request_id, "default", now)
    }
}

/// A reservation of 1.00 USD on `key` alone, held for `ttl_ms`.
pub fn dollar_lease(lease_id: String, key: &WalletKey, ttl_ms: i64) -> ReserveRequest {
    ReserveRequest {
        lease_id: lease_id.into(),
        cascade: vec![key.clone()],
        amount: Decimal::new(1, 0),
        currency: Currency::USD,
        ttl_ms,
        price: None,
        force: None,
    }
}

/// This test binary again, running only the ignored test `name` (a worker process).
pub fn worker(name: &str) -> std::process::Command {
    let mut c = std::process::Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    c
}

/// Runs worker `name` once per tag, side by side (the tag in `KT_WORKER_TAG`, and `vars`), and
/// returns what they charged in all ([`charged_by`]).
pub fn run_workers(name: &str, tags: &[&str], vars: &[(&str, &str)]) -> Decimal {
    use std::process::Stdio;
    let children = tags
        .iter()
        .map(|tag| {
            let mut c = worker(name);
            c.envs(vars.iter().copied()).env("KT_WORKER_TAG", tag);
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    charged_by(children)
}

/// A fresh path `kt-NAME-PID/NAME.db` in the temporary directory (its folder made, the file
/// absent).
pub fn temp_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kt-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    let _ = std::fs::remove_file(&path);
    path
}

/// Removes the folder [`temp_db`] made for `path`.
pub fn remove_temp_db(path: &std::path::Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Lets a worker run for `ms`, then SIGKILLs it: no destructor, no rollback hook, mid-transaction
/// as likely as not.
pub fn kill_after(mut child: std::process::Child, ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    child.kill().unwrap();
    child.wait().unwrap();
}

/// [`check_after_crash`] on a store a killed worker cycled on; the worker must have got going.
pub fn nothing_committed_lost(store: &dyn Journal) {
    let (events, settled) = check_after_crash(store, store, "k");
    assert!(
        events > 20 && settled > 20,
        "the worker got going: {events} events, {settled} settlements"
    );
}

/// Ten decisions of an rbac + audit-logger pack, an hour apart, as event drafts.
pub fn decision_drafts() -> Vec<keeptrusts_core::event::EventDraft> {
    use keeptrusts_core::{ChatRequest, Engine, MemoryEscalations, RequestContext, Stores};
    let engine = Engine::from_yaml("pack: {name: e, version: \"1\"}\npolicies: {chain: [rbac, audit-logger]}\npolicy: {audit-logger: {retention_days: 1}}\n").unwrap();
    let p = Principal::new("u@yourco.com", "legal", Role::Member);
    let esc = MemoryEscalations::new();
    (0..10)
        .map(|i| {
            let id = format!("r{i}");
            let ctx = RequestContext::new(&id, i * 3_600_000);
            let chat = ChatRequest::user("m", "hi");
            let d = engine
                .evaluate(&p, &chat, &ctx, &Stores::new(&esc))
                .unwrap();
            keeptrusts_core::event::EventDraft::from_decision(&p, &d, &id, Some("m"), i * 3_600_000)
        })
        .collect()
}

/// One unit of gateway storage work, repeated by the SIGKILL workers and the concurrency tests:
/// reserve, then settle and append the request's event in one step.
pub fn request_cycle(store: &dyn Journal, tag: &str, i: u64) {
    let key = WalletKey::new(WalletScope::Team, "engineering");
    let req = dollar_lease(format!("{tag}-{i}"), &key, 1_000);
    let now = i64::try_from(i).unwrap_or(0);
    if let Ok(ReserveOutcome::Reserved(l)) = store.reserve(&req, now) {
        let _ = store.settle_and_append(&l.id, Decimal::new(37, 2), now, draft(tag, i, now));
    }
}

/// After a crash (or a concurrent run): the chain verifies, holds one event per committed
/// settlement, spent equals the sum of committed settlements, and expiry releases every lease
/// left active.
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
    let logged = chain
        .iter()
        .filter(|e| e.body.request_id.starts_with(&format!("{tag}-")))
        .count();
    assert_eq!(logged, n_settled, "one event per committed settlement");
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
        held_until: None,
    };
    let mut out = Vec::new();
    store.insert(&t("t1", "support", 1)).unwrap();
    store.insert(&t("t2", "support", 2)).unwrap();
    store.insert(&t("t3", "legal", 3)).unwrap();
    out.push(shown(
        store.insert(&t("t1", "support", 5)).map_err(|e| e.code()),
    ));
    // a gateway holds t3's request open, then lets it go; an unknown id is no error
    store.hold("t3", Some(900)).unwrap();
    let held = store.get("t3").unwrap().unwrap();
    assert_eq!(held.held_until, Some(900));
    assert!(held.held_at(899) && !held.held_at(900));
    store.hold("t3", None).unwrap();
    assert_eq!(store.get("t3").unwrap().unwrap().held_until, None);
    store.hold("nope", Some(1)).unwrap();
    out.push(shown(
        store
            .list(Some("support"))
            .unwrap()
            .iter()
            .map(|t| t.id.clone())
            .collect::<Vec<_>>(),
    ));
    let admin = Principal::new("lead@yourco.com", "support", Role::Admin);
    let approve = TicketResolution::Approve {
        charge_to: WalletKey::new(WalletScope::Team, "support"),
    };
    out.push(shown(
        resolve_ticket(store, &admin, "t1", &approve, 5).map(|t| t.status),
    ));
    out.push(shown(
        resolve_ticket(store, &admin, "t3", &approve, 5).map_err(|e| e.code()),
    ));
    out.push(shown(
        resolve_ticket(store, &admin, "t2", &TicketResolution::Deny, 5).map(|t| t.status),
    ));
    out.push(shown(
        store.redeem("t1", "other", Some("support"), 6).unwrap(),
    ));
    out.push(shown(store.redeem("t1", "fp", Some("support"), 6).unwrap()));
    out.push(shown(store.redeem("t1", "fp", Some("support"), 7).unwrap()));
    out.push(shown(store.redeem("t2", "fp", Some("support"), 7).unwrap()));
    store.fulfill("t3", 8).unwrap();
    out.push(shown(store.get("t3").unwrap().map(|t| t.status)));
    out.push(shown(store.redeem("t3", "fp", Some("legal"), 9).unwrap()));
    out
}

/// What [`journal_case`] must print on every store.
pub const JOURNAL_CASE: [&str; 5] = [
    "charged 0.25 replay false event Some(0)",
    "charged 0.25 replay true event None",
    "unknown lease: unknown_lease",
    "events 1",
    "spent 0.25 reserved 0",
];

/// `settle_and_append`: one event per settlement, none on a replay or a failed settlement.
pub fn journal_case(store: &dyn Journal) -> Vec<String> {
    let key = WalletKey::new(WalletScope::Team, "engineering");
    store
        .allocate(&key, &Grant::set(Decimal::new(10, 0), "USD"), 0)
        .unwrap();
    let mut out = Vec::new();
    let req = dollar_lease("j-1".into(), &key, 1_000);
    assert!(matches!(
        store.reserve(&req, 1).unwrap(),
        ReserveOutcome::Reserved(_)
    ));
    for _ in 0..2 {
        let (s, e) = store
            .settle_and_append("j-1", Decimal::new(25, 2), 2, draft("j", 1, 2))
            .unwrap();
        out.push(format!(
            "charged {} replay {} event {:?}",
            s.charged,
            s.replay,
            e.map(|e| e.seq)
        ));
    }
    let err = store
        .settle_and_append("j-404", Decimal::new(1, 0), 3, draft("j", 404, 3))
        .unwrap_err();
    out.push(format!("unknown lease: {}", err.code()));
    let chain = keeptrusts_core::event::EventStore::list(store, "default").unwrap();
    out.push(format!("events {}", chain.len()));
    let w = store.get(&key, 3).unwrap().unwrap();
    out.push(format!("spent {} reserved {}", w.spent, w.reserved));
    out
}

/// `threads` threads each run `per_thread` request cycles against one store (so the store
/// batches them); then the same checks as after a crash.
pub fn concurrent_cycles(store: &(dyn Journal + Sync), threads: u64, per_thread: u64) {
    let key = WalletKey::new(WalletScope::Team, "engineering");
    fund(store, &key, 1_000_000);
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for i in 0..per_thread {
                    request_cycle(store, "c", t * per_thread + i);
                }
            });
        }
    });
    let (events, settled) = check_after_crash(store, store, "c");
    assert_eq!(
        settled as u64,
        threads * per_thread,
        "every cycle settled (the wallet could cover all of them)"
    );
    assert_eq!(events as u64, threads * per_thread);
}

/// A key request for `email` in `team`, nothing else set.
fn new_key(team: &str, email: &str) -> keeptrusts_core::admin::NewKey {
    keeptrusts_core::admin::NewKey {
        team: team.into(),
        email: email.into(),
        ..keeptrusts_core::admin::NewKey::default()
    }
}

/// Teams, members and keys: creation, conflicts, role changes, authentication.
pub fn directory_case(d: &dyn keeptrusts_core::Storage) -> Vec<String> {
    use keeptrusts_core::admin::{self, Ctx, NewKey, TeamChange};
    use keeptrusts_core::directory::authenticate;
    let mut out = Vec::new();
    let ctx = |now, random| Ctx::new(None, "default", now, "dir", [random; 32]);
    let owner = Principal::new("cfo@yourco.com", "finance", Role::Owner);
    let as_owner = Ctx::new(Some(&owner), "default", 1, "dir", [1; 32]);
    out.push(shown(
        admin::create_team(d, &as_owner, "Customer Support", Some("tier 1")).map(|t| t.slug),
    ));
    out.push(shown(
        admin::create_team(d, &ctx(2, 0), "customer-support", None).map_err(|e| e.code()),
    ));
    out.push(shown(
        admin::create_team(d, &ctx(3, 0), "Legal", None).map(|t| t.slug),
    ));
    for (user, role) in [
        ("ana@yourco.com", Role::Member),
        ("lead@yourco.com", Role::Admin),
        ("bo@yourco.com", Role::Member),
    ] {
        out.push(shown(
            admin::set_member(d, &ctx(4, 0), "Customer Support", user, role).map(|m| m.role),
        ));
    }
    let new = NewKey {
        team: "customer-support".into(),
        email: "ana@yourco.com".into(),
        consumer_group: Some("fast".into()),
        label: Some("laptop".into()),
        expires_at: Some(1_000_000),
    };
    let issued = admin::create_key(d, &ctx(6, 3), &new).unwrap();
    let (secret, id) = (issued.key.clone(), issued.info.key.id.clone());
    out.push(format!("key {id} {:?}", issued.info));
    out.push(shown(
        admin::create_key(d, &ctx(7, 3), &new).map_err(|e| e.code()),
    ));
    let p = authenticate(d, &secret, "default", 8).unwrap().unwrap();
    out.push(format!("{:?} {:?} {:?}", p.user, p.team, p.role));
    admin::set_member(
        d,
        &ctx(9, 0),
        "customer-support",
        "ana@yourco.com",
        Role::Admin,
    )
    .unwrap();
    out.push(shown(
        authenticate(d, &secret, "default", 10)
            .unwrap()
            .map(|p| p.role),
    ));
    out.push(shown(authenticate(d, "kt_0000", "default", 10).unwrap()));
    out.push(format!(
        "last used {:?}",
        d.key(&id).unwrap().and_then(|k| k.last_used_at)
    ));
    out.push(format!(
        "expired {:?}",
        authenticate(d, &secret, "default", 1_000_000).unwrap()
    ));
    // rotation, revocation, removal, archive, org admins
    let rotated = admin::rotate_key(d, &ctx(11, 4), &id, None).unwrap();
    out.push(format!(
        "rotated {:?} {:?} {:?}",
        rotated.info,
        authenticate(d, &secret, "default", 12).unwrap(),
        d.key(&id).unwrap().map(|k| (k.revoked_at, k.replaced_by))
    ));
    out.push(shown(
        admin::revoke_key(d, &ctx(13, 0), &rotated.info.key.id).map(|k| k.status),
    ));
    let bo = new_key("customer-support", "bo@yourco.com");
    let bo = admin::create_key(d, &ctx(14, 5), &bo).unwrap();
    out.push(shown(
        admin::remove_member(d, &ctx(15, 0), "customer-support", "bo@yourco.com").map(|m| m.user),
    ));
    out.push(format!(
        "{:?} {:?}",
        authenticate(d, &bo.key, "default", 16).unwrap(),
        d.remove_member("customer-support", "bo@yourco.com")
            .unwrap()
    ));
    admin::set_org_admin(d, &ctx(17, 0), "ops@yourco.com", true).unwrap();
    let ops = new_key("legal", "ops@yourco.com");
    let ops = admin::create_key(d, &ctx(18, 6), &ops).unwrap();
    out.push(shown(authenticate(d, &ops.key, "default", 19).unwrap()));
    let change = TeamChange {
        name: Some("Legal & Compliance".into()),
        archived: Some(true),
        ..TeamChange::default()
    };
    out.push(shown(admin::update_team(d, &ctx(20, 0), "legal", &change)));
    out.push(shown(authenticate(d, &ops.key, "default", 21).unwrap()));
    out.push(format!(
        "teams {:?}",
        d.teams()
            .unwrap()
            .iter()
            .map(|t| (t.slug.clone(), t.name.clone(), t.archived_at))
            .collect::<Vec<_>>()
    ));
    out.push(format!(
        "members {:?}",
        d.members(None)
            .unwrap()
            .iter()
            .map(|m| (m.team.clone(), m.user.clone(), m.role))
            .collect::<Vec<_>>()
    ));
    out.push(format!(
        "keys {:?}",
        admin::list_keys(d, &ctx(22, 0), None)
            .unwrap()
            .iter()
            .map(|k| (k.key.id.clone(), k.status))
            .collect::<Vec<_>>()
    ));
    let events = keeptrusts_core::event::EventStore::list(d, "default").unwrap();
    out.push(format!(
        "events {:?} {:?}",
        events
            .iter()
            .filter_map(|e| e.body.admin.as_ref().map(|a| a.action.clone()))
            .collect::<Vec<_>>(),
        keeptrusts_core::event::verify(&events, None).is_ok()
    ));
    out
}

/// Reads the same pages and filters from `store` and from the memory store, after the same
/// appends: the SQL filtering answers exactly what the core's filtering answers.
pub fn event_query_case(store: &dyn keeptrusts_core::event::EventStore) -> Vec<String> {
    use keeptrusts_core::event::{EventQuery, EventStore, MemoryEvents};
    use keeptrusts_core::Verdict;
    let memory = MemoryEvents::new();
    for i in 0..40u64 {
        let mut d = event_draft(&format!("q{i}"), 1_000 * i as i64);
        d.team = Some(["support", "legal"][(i % 2) as usize].to_owned());
        d.user = Some(format!("u{}@x.com", i % 3));
        d.verdict = if i % 5 == 0 {
            Verdict::Block
        } else {
            Verdict::Allow
        };
        memory.append(d.clone()).unwrap();
        store.append(d).unwrap();
    }
    let queries = [
        EventQuery::default(),
        EventQuery {
            team: Some("support".into()),
            ..EventQuery::default()
        },
        EventQuery {
            team: Some("support".into()),
            user: Some("u1@x.com".into()),
            ..EventQuery::default()
        },
        EventQuery {
            team: Some("legal".into()),
            verdict: Some(Verdict::Block),
            ..EventQuery::default()
        },
        EventQuery {
            from: Some(5_000),
            to: Some(20_000),
            ..EventQuery::default()
        },
        EventQuery {
            team: Some("support".into()),
            limit: Some(4),
            ..EventQuery::default()
        },
        EventQuery {
            team: Some("support".into()),
            limit: Some(4),
            before: Some(30),
            ..EventQuery::default()
        },
        EventQuery {
            team: Some("nobody".into()),
            ..EventQuery::default()
        },
    ];
    // the newest events as a chain of their own: the same rows, anchor and head, and sound
    for n in [0, 5, 40, 100] {
        let tail = store.tail("default", n).unwrap();
        assert_eq!(tail, memory.tail("default", n).unwrap(), "tail of {n}");
        let opts = keeptrusts_core::event::VerifyOptions::default();
        assert!(
            keeptrusts_core::event::verify_chain(&tail, &opts).is_ok() == (n > 0),
            "tail of {n}"
        );
    }
    let mut out = Vec::new();
    for q in &queries {
        let want = memory.query("default", q).unwrap();
        let got = store.query("default", q).unwrap();
        assert_eq!(got, want, "{q:?}");
        out.push(format!(
            "{q:?}: {:?}",
            got.iter().map(|e| e.seq).collect::<Vec<_>>()
        ));
    }
    out
}

/// A small deterministic generator (the cases below must be the same on every store and run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }

    fn pick<'a>(&mut self, of: &[Option<&'a str>]) -> Option<&'a str> {
        of[self.next(of.len() as u64) as usize]
    }
}

const TALLY_T0: i64 = 1_790_000_000_000 - 1_790_000_000_000 % 86_400_000;

/// A varied request event: teams, users and models (some absent), verdicts, exact costs with
/// many decimals, tokens, policy events, escalations, administrative events, retention.
fn tally_draft(rng: &mut Lcg, i: u64) -> keeptrusts_core::event::EventDraft {
    use keeptrusts_core::decision::{AuditStamp, PolicyResult};
    use keeptrusts_core::event::{AdminChange, CostRecord};
    use keeptrusts_core::pack::spec::PolicyKind;
    use keeptrusts_core::pricing::Usage;
    use keeptrusts_core::Verdict;
    // on the hour half of the time, so ranges cut exactly at events
    let hour = 3_600_000;
    let at = rng.next(6 * 24) * hour + [0, rng.next(hour)][rng.next(2) as usize];
    let mut d = event_draft(&format!("t{i}"), TALLY_T0 + at as i64);
    d.team = rng
        .pick(&[Some("support"), Some("legal"), Some("support"), None])
        .map(Into::into);
    d.user = rng
        .pick(&[Some("a@x.com"), Some("b@x.com"), Some("c@x.com"), None])
        .map(Into::into);
    d.model = rng
        .pick(&[Some("gpt-4o"), Some("claude"), None])
        .map(Into::into);
    d.verdict = [
        Verdict::Allow,
        Verdict::Redact,
        Verdict::Block,
        Verdict::Escalate,
    ][rng.next(4) as usize];
    if rng.next(3) == 0 {
        d.policies = vec![PolicyResult {
            kind: PolicyKind::PiiDetector,
            verdict: d.verdict,
            reason: None,
            entities: Default::default(),
        }];
    }
    if rng.next(5) != 0 {
        d.cost = Some(CostRecord {
            estimated: Decimal::new(rng.next(1_000_000) as i64, 9),
            settled: (rng.next(2) == 0).then(|| Decimal::new(rng.next(10_000_000) as i64, 12)),
            currency: Currency::USD,
            wallet: None,
            overrun: false,
            unmetered: false,
        });
    }
    if rng.next(4) != 0 {
        d.tokens = Some(Usage {
            prompt_tokens: rng.next(5_000),
            completion_tokens: rng.next(5_000),
        });
    }
    if d.verdict == Verdict::Escalate {
        d.escalation_id = Some(format!("esc_{i}"));
    }
    if rng.next(25) == 0 {
        d.admin = Some(AdminChange {
            action: "team.update".into(),
            actor: "local".into(),
            target: "support".into(),
            before: None,
            after: None,
        });
    }
    d.audit = Some(AuditStamp {
        retention_days: if rng.next(3) == 0 { 1 } else { 365 },
        ..AuditStamp::default()
    });
    d
}

/// Appends the same varied events to `store` and to the memory store and compares the tallies
/// of many queries (every grouping, teams, users, ranges cut anywhere in a day), before and after
/// a prune: the day tallies plus partial days answer exactly what the core adds up from events.
pub fn tally_case(store: &dyn keeptrusts_core::event::EventStore) -> usize {
    use keeptrusts_core::event::tally::{Grouping, TallyQuery};
    use keeptrusts_core::event::{EventQuery, EventStore, MemoryEvents};
    let memory = MemoryEvents::new();
    let mut rng = Lcg(7);
    for i in 0..400 {
        let d = tally_draft(&mut rng, i);
        memory.append(d.clone()).unwrap();
        store.append(d).unwrap();
    }
    let day = 86_400_000;
    let bound = |rng: &mut Lcg| -> Option<i64> {
        match rng.next(4) {
            0 => None,
            1 => Some(TALLY_T0 + rng.next(7) as i64 * day),
            2 => Some(TALLY_T0 - day + rng.next(8 * 24) as i64 * 3_600_000),
            _ => Some(TALLY_T0 - day + rng.next(8 * day as u64) as i64),
        }
    };
    let mut compared = 0;
    let mut compare = |rng: &mut Lcg, stage: &str| {
        for _ in 0..150 {
            let by = rng.next(8);
            let q = TallyQuery {
                team: rng
                    .pick(&[Some("support"), Some("legal"), None])
                    .map(Into::into),
                user: rng.pick(&[Some("a@x.com"), None, None]).map(Into::into),
                from: bound(rng),
                to: bound(rng),
                by: Grouping {
                    day: by & 1 != 0,
                    user: by & 2 != 0,
                    model: by & 4 != 0,
                },
            };
            let want = memory.tally("default", &q).unwrap();
            let got = store.tally("default", &q).unwrap();
            assert_eq!(got, want, "{stage}: {q:?}");
            compared += usize::from(!got.is_empty());
        }
        let escalated = EventQuery {
            team: Some("support".into()),
            escalated: true,
            ..EventQuery::default()
        };
        assert_eq!(
            store.query("default", &escalated).unwrap(),
            memory.query("default", &escalated).unwrap(),
            "{stage}: escalations"
        );
    };
    compare(&mut rng, "appended");
    let now = TALLY_T0 + 9 * day;
    let pruned = store.prune("default", now, 30).unwrap();
    assert_eq!(pruned, memory.prune("default", now, 30).unwrap());
    assert!(pruned > 50, "the case prunes events: {pruned}");
    compare(&mut rng, "pruned");
    compared
}

/// Appends the varied events of [`tally_case`] to `store`, returning the same in memory.
pub fn fill_tally_events(
    store: &dyn keeptrusts_core::event::EventStore,
) -> keeptrusts_core::event::MemoryEvents {
    use keeptrusts_core::event::EventStore;
    let memory = keeptrusts_core::event::MemoryEvents::new();
    let mut rng = Lcg(11);
    for i in 0..200 {
        let d = tally_draft(&mut rng, i);
        memory.append(d.clone()).unwrap();
        store.append(d).unwrap();
    }
    memory
}

/// The tallies a dashboard reads (by day, by user, by day and model, over all time and over a
/// range cut within days) are the same in `store` as in `memory`.
pub fn same_tallies(
    store: &dyn keeptrusts_core::event::EventStore,
    memory: &keeptrusts_core::event::MemoryEvents,
) {
    use keeptrusts_core::event::tally::{Grouping, TallyQuery};
    use keeptrusts_core::event::EventStore;
    for (from, to) in [
        (None, None),
        (Some(TALLY_T0 + 7_000_000), Some(TALLY_T0 + 300_000_000)),
    ] {
        for by in [
            (true, false, false),
            (false, true, false),
            (true, false, true),
        ] {
            let q = TallyQuery {
                team: Some("support".into()),
                user: None,
                from,
                to,
                by: Grouping {
                    day: by.0,
                    user: by.1,
                    model: by.2,
                },
            };
            let want = memory.tally("default", &q).unwrap();
            assert!(!want.is_empty());
            assert_eq!(store.tally("default", &q).unwrap(), want, "{q:?}");
        }
    }
}

/// The pack the rate-limit cases count against: 3 requests and 100 tokens a minute per key,
/// 5 requests a minute for the group `tools`.
pub const RATE_PACK: &str = "pack: {name: r, version: \"1\"}\npolicies: {chain: []}\nrate_limit_defaults: {requests_per_minute: 3, tokens_per_minute: 100, response_headers: true}\nproviders:\n  targets: [{id: m, provider: mock, model: gpt-4o-mini}]\n  consumer_groups:\n    - {name: tools, models: [{provider: mock, model: gpt-4o-mini}], rate_limits: {requests_per_minute: 5}}\n";

/// Admissions, refusals, corrections and pruning of rate-limit counters; one line per step.
pub fn rate_case(store: &dyn keeptrusts_core::RateCounters) -> Vec<String> {
    use keeptrusts_core::ratelimit::{RateDecision, RateLimits, Subject};
    let spec = keeptrusts_core::pack::parse(RATE_PACK).unwrap().spec;
    let limits = RateLimits::new(&spec);
    let subject = |key: &'static str, group: Option<&'static str>| Subject {
        org: "default",
        key: Some(key),
        team: Some("eng"),
        consumer_group: group,
    };
    let minute = 60_000 * 1_000;
    let mut out = Vec::new();
    let mut charges = Vec::new();
    let steps: &[(&str, Option<&str>, u64, i64)] = &[
        ("a", None, 10, 0),
        ("a", None, 10, 1),
        ("a", None, 95, 2), // tokens: 20 + 95 > 100
        ("a", None, 10, 3),
        ("a", None, 10, 4), // 4th request of the minute
        ("b", Some("tools"), 1, 5),
        ("c", Some("tools"), 1, 6),
        ("d", Some("tools"), 1, 7),
        ("e", Some("tools"), 1, 8),
        ("f", Some("tools"), 1, 9),
        ("g", Some("tools"), 1, 10), // the group's 6th
        ("a", None, 10, 60_000),     // the next minute
    ];
    for (key, group, tokens, at) in steps {
        let d = limits
            .check(store, &subject(key, *group), *tokens, minute + at)
            .unwrap();
        match d {
            RateDecision::Admitted { headers, charge } => {
                out.push(format!("{key} admitted {headers:?}"));
                charges.extend(charge);
            }
            RateDecision::Limited { limited, headers } => {
                out.push(format!("{key} limited {limited:?} {headers:?}"))
            }
            RateDecision::Unlimited => out.push(format!("{key} unlimited")),
        }
    }
    // settle the first two of key a at 2 tokens each: 16 freed, 95 fits now with ...
    for c in charges.iter().take(2) {
        store.adjust(&c.corrections(2)).unwrap();
    }
    let d = limits
        .check(store, &subject("h", None), 100, minute + 11)
        .unwrap();
    out.push(format!("h {d:?}"));
    // an overrun raises the counter above the limit: h is refused by its tokens, not requests
    if let RateDecision::Admitted {
        charge: Some(c), ..
    } = &d
    {
        store.adjust(&c.corrections(500)).unwrap();
    }
    let d = limits
        .check(store, &subject("h", None), 1, minute + 12)
        .unwrap();
    out.push(format!("h after overrun {d:?}"));
    // a correction to a counter already forgotten starts it again from 0, never below
    if let Some(c) = charges.first() {
        store.prune_windows(minute + 60_000).unwrap();
        store.adjust(&c.corrections(0)).unwrap();
    }
    // the first minute's counters are gone (some stores also keep the refused requests' rows
    // at 0, so the count differs by store): the second minute's remain
    out.push(format!(
        "pruned again {}",
        store.prune_windows(minute + 60_000).unwrap()
    ));
    let d = limits
        .check(store, &subject("a", None), 10, minute + 60_001)
        .unwrap();
    out.push(format!("a in the second minute {d:?}"));
    let d = limits
        .check(store, &subject("h", None), 100, minute + 13)
        .unwrap();
    out.push(format!("h after pruning {d:?}"));
    out
}

/// `threads` threads × `per_thread` requests of one key, against a limit of `limit` requests a
/// minute: returns how many were admitted.
pub fn rate_race(
    store: &(dyn keeptrusts_core::RateCounters + Sync),
    threads: u64,
    per_thread: u64,
) -> u64 {
    use keeptrusts_core::ratelimit::{RateDecision, RateLimits, Subject};
    let spec = keeptrusts_core::pack::parse(RATE_PACK).unwrap().spec;
    let limits = RateLimits::new(&spec);
    let admitted = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (limits, admitted) = (&limits, &admitted);
            s.spawn(move || {
                for _ in 0..per_thread {
                    let subject = Subject {
                        org: "default",
                        key: None,
                        team: None,
                        consumer_group: Some("tools"),
                    };
                    let _ = t;
                    if matches!(
                        limits.check(store, &subject, 1, 120_000).unwrap(),
                        RateDecision::Admitted { .. }
                    ) {
                        admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    admitted.into_inner()
}

/// The seed flow on `store`: a legal counsel's request is escalated, approved by the team's
/// admin, retried with the escalation and redacted, and settled at the provider's usage.
pub fn seed_flow<S: keeptrusts_core::Storage>(store: &S) {
    use keeptrusts_core::{ChatRequest, Engine, RequestContext, Stores, Verdict};
    let engine = Engine::from_yaml(include_str!(
        "../../../examples/packs/per-team-targeting.yaml"
    ))
    .unwrap();
    let owner = Principal::new("cfo@yourco.com", "finance", Role::Owner);
    keeptrusts_core::wallet::allocate(
        store,
        &owner,
        &WalletKey::new(WalletScope::Team, "legal"),
        &[],
        &Grant::set(Decimal::new(1000, 0), "USD"),
        0,
    )
    .unwrap();
    let stores = Stores::new(store).with_budget(store, store);
    let counsel = Principal::new("counsel@yourco.com", "legal", Role::Member);
    let req = ChatRequest::user("gpt-4o", "Review clause 4 for Patient: John Smith");
    let d = engine
        .evaluate(&counsel, &req, &RequestContext::new("r1", 0), &stores)
        .unwrap();
    assert_eq!((d.verdict, d.status), (Verdict::Escalate, 409));
    let id = d.escalation_id.unwrap();
    resolve(
        store,
        &Principal::new("lead@yourco.com", "legal", Role::Admin),
        &id,
        Resolution::Approve,
        1,
    )
    .unwrap();
    let retry = RequestContext {
        request_id: "r2".into(),
        now_ms: 2,
        escalation_id: Some(id),
        ticket_id: None,
    };
    let d = engine.evaluate(&counsel, &req, &retry, &stores).unwrap();
    assert_eq!((d.verdict, d.status), (Verdict::Redact, 200));
    let lease = d.reservation.unwrap();
    assert_eq!(lease.wallet, WalletKey::new(WalletScope::Team, "legal"));
    let s = engine
        .settle(
            store,
            &lease.id,
            &keeptrusts_core::pricing::Usage {
                prompt_tokens: 100,
                completion_tokens: 50,
            },
            3,
        )
        .unwrap();
    assert_eq!(s.charged, Decimal::new(75, 5)); // 100 × 2.50/M + 50 × 10/M = 0.00025 + 0.0005
}

/// What the worker processes settled in all (each prints `CHARGED=<amount>`), once each has
/// exited successfully.
pub fn charged_by(children: Vec<std::process::Child>) -> Decimal {
    let mut total = Decimal::ZERO;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        // the harness prints "test NAME ... " on the same line before the worker's output
        let value = text
            .lines()
            .find_map(|l| l.split("CHARGED=").nth(1))
            .expect("worker output");
        total += value.trim().parse::<Decimal>().unwrap();
    }
    total
}

/// The wallet the workers drew on: it spent exactly what they settled, holds nothing reserved,
/// never went over its allocation and ran dry (fewer than 1.00 left).
pub fn drawn_exactly(store: &dyn WalletStore, key: &WalletKey, total: Decimal) {
    let w = store.get(key, 0).unwrap().unwrap();
    assert_eq!(
        w.spent, total,
        "the ledger equals the sum of the processes' settlements"
    );
    assert_eq!(w.reserved, Decimal::ZERO);
    assert!(w.spent <= w.allocated);
    assert!(w.available() < Decimal::new(1, 0), "{w:?}");
}
