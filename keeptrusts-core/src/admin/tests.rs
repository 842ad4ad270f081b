//! Tests of the administrative actions.

#![allow(clippy::unwrap_used)]
use super::*;
use crate::directory::{authenticate, Directory};
use crate::event::EventStore;
use crate::MemoryStore;
use rust_decimal::Decimal;

fn local(now: Millis) -> Ctx<'static> {
    Ctx::new(None, "default", now, "t", [9; 32])
}

fn as_actor(p: &Principal, now: Millis, random: u8) -> Ctx<'_> {
    Ctx::new(Some(p), "default", now, "t", [random; 32])
}

fn code<T: std::fmt::Debug>(r: Result<T, AdminError>) -> &'static str {
    r.unwrap_err().code()
}

/// Support with an admin, a member and the org owner as a member; legal with a member.
fn org() -> MemoryStore {
    let s = MemoryStore::new();
    let l = local(1);
    create_team(&s, &l, "Support", None).unwrap();
    create_team(&s, &l, "Legal", None).unwrap();
    create_team(&s, &l, "Platform", None).unwrap();
    set_member(&s, &l, "platform", "root@x.com", Role::Owner).unwrap();
    set_member(&s, &l, "support", "root@x.com", Role::Owner).unwrap();
    set_member(&s, &l, "support", "lead@x.com", Role::Admin).unwrap();
    set_member(&s, &l, "support", "dev@x.com", Role::Member).unwrap();
    set_member(&s, &l, "legal", "counsel@x.com", Role::Member).unwrap();
    s
}

fn key_for(s: &MemoryStore, team: &str, user: &str, random: u8) -> (String, String) {
    let new = NewKey {
        team: team.into(),
        email: user.into(),
        ..NewKey::default()
    };
    let mut ctx = local(2);
    ctx.random = [random; 32];
    let i = create_key(s, &ctx, &new).unwrap();
    (i.key, i.info.key.id)
}

fn login(s: &MemoryStore, secret: &str, now: Millis) -> Principal {
    authenticate(s, secret, "default", now).unwrap().unwrap()
}

#[test]
fn a_team_admin_cannot_reach_the_owner_in_their_team() {
    let s = org();
    let (secret, _) = key_for(&s, "support", "lead@x.com", 1);
    let lead = login(&s, &secret, 3);
    let mint = NewKey {
        team: "support".into(),
        email: "root@x.com".into(),
        ..NewKey::default()
    };
    let ctx = as_actor(&lead, 4, 2);
    assert_eq!(code(create_key(&s, &ctx, &mint)), "forbidden");
    let demote = set_member(&s, &ctx, "support", "root@x.com", Role::Member);
    assert_eq!(code(demote), "forbidden");
    let remove = remove_member(&s, &ctx, "support", "root@x.com");
    assert_eq!(code(remove), "forbidden");
    // nor a peer admin, nor grant admin
    let promote = set_member(&s, &ctx, "support", "dev@x.com", Role::Admin);
    assert_eq!(code(promote), "forbidden");
}

#[test]
fn a_rotated_key_keeps_the_rate_identity_of_the_first_key_of_its_chain() {
    let s = org();
    let (secret, first) = key_for(&s, "support", "dev@x.com", 1);
    let dev = login(&s, &secret, 3);
    let second = rotate_key(&s, &as_actor(&dev, 4, 2), &first, None).unwrap();
    let dev = login(&s, &second.key, 5);
    let third = rotate_key(&s, &as_actor(&dev, 6, 3), &second.info.key.id, None).unwrap();
    let (_, key) = crate::directory::authenticate_key(&s, &third.key, "default", 7)
        .unwrap()
        .unwrap();
    assert_ne!(key.id, first);
    assert_eq!(key.rate_identity(), first);
    // a fresh key has its own
    let (fresh, id) = key_for(&s, "support", "dev@x.com", 4);
    let (_, key) = crate::directory::authenticate_key(&s, &fresh, "default", 8)
        .unwrap()
        .unwrap();
    assert_eq!(key.rate_identity(), id);
}

#[test]
fn a_team_admin_cannot_claim_someone_from_another_team() {
    let s = org();
    let (secret, _) = key_for(&s, "support", "lead@x.com", 1);
    let lead = login(&s, &secret, 3);
    let ctx = as_actor(&lead, 4, 2);
    // adding legal's counsel would give the admin their wallet and a key acting as them
    assert_eq!(
        code(set_member(
            &s,
            &ctx,
            "support",
            "counsel@x.com",
            Role::Member
        )),
        "forbidden"
    );
    let wallet = Allocation {
        user: Some("counsel@x.com".into()),
        team: None,
        amount: Decimal::from(5),
        ..allocation()
    };
    assert_eq!(code(allocate(&s, &ctx, &wallet)), "forbidden");
    // a newcomer is theirs to add, and their wallet theirs to fund
    set_member(&s, &ctx, "support", "new@x.com", Role::Member).unwrap();
    let wallet = Allocation {
        user: Some("new@x.com".into()),
        ..wallet
    };
    allocate(&s, &ctx, &wallet).unwrap();
}

fn allocation() -> Allocation {
    serde_json::from_value(serde_json::json!({"team": "support", "amount": "10"})).unwrap()
}

#[test]
fn allocations_name_existing_teams_and_users() {
    let s = org();
    let l = local(5);
    let mut a = allocation();
    a.team = Some("Support".into());
    assert_eq!(
        allocate(&s, &l, &a).unwrap().key.to_string(),
        "team:support"
    );
    a.team = Some("Suport".into());
    let e = allocate(&s, &l, &a).unwrap_err();
    assert_eq!(e.code(), "not_found");
    assert!(e.to_string().contains("did you mean `support`"), "{e}");
    a.team = None;
    a.user = Some("ghost@x.com".into());
    assert_eq!(code(allocate(&s, &l, &a)), "not_found");
    assert!(crate::WalletStore::list(&s, 5).unwrap().len() == 1);
}

#[test]
fn revoked_expired_removed_and_archived_keys_stop_at_once() {
    let s = org();
    let (dev_key, dev_id) = key_for(&s, "support", "dev@x.com", 1);
    let (lead_key, _) = key_for(&s, "support", "lead@x.com", 2);
    let lead = login(&s, &lead_key, 3);
    let dev = login(&s, &dev_key, 3);
    // a member revokes their own key; rotation by the admin first
    let rotated = rotate_key(&s, &as_actor(&lead, 4, 3), &dev_id, None).unwrap();
    assert_eq!(
        authenticate(&s, &dev_key, "default", 5).unwrap(),
        Err(crate::directory::Refused::Revoked)
    );
    let dev2 = login(&s, &rotated.key, 5);
    assert_eq!(dev2.user, dev.user);
    revoke_key(&s, &as_actor(&dev2, 6, 0), &rotated.info.key.id).unwrap();
    assert_eq!(
        code(revoke_key(&s, &as_actor(&lead, 7, 0), &rotated.info.key.id)),
        "conflict"
    );
    // expiry
    let mut ctx = local(10);
    ctx.random = [4; 32];
    let short = create_key(
        &s,
        &ctx,
        &NewKey {
            team: "support".into(),
            email: "dev@x.com".into(),
            expires_at: Some(100),
            label: Some("ci".into()),
            ..NewKey::default()
        },
    )
    .unwrap();
    login(&s, &short.key, 99);
    assert_eq!(
        authenticate(&s, &short.key, "default", 100).unwrap(),
        Err(crate::directory::Refused::Expired)
    );
    // removal
    let (k3, _) = key_for(&s, "support", "dev@x.com", 5);
    login(&s, &k3, 11);
    remove_member(&s, &as_actor(&lead, 12, 0), "support", "dev@x.com").unwrap();
    assert_eq!(
        authenticate(&s, &k3, "default", 13).unwrap(),
        Err(crate::directory::Refused::NotAMember)
    );
    // archive: only org-wide admins; the lead's own key stops
    assert_eq!(
        code(update_team(
            &s,
            &as_actor(&lead, 14, 0),
            "support",
            &TeamChange {
                archived: Some(true),
                ..TeamChange::default()
            }
        )),
        "forbidden"
    );
    update_team(
        &s,
        &local(15),
        "Support",
        &TeamChange {
            archived: Some(true),
            ..TeamChange::default()
        },
    )
    .unwrap();
    assert_eq!(
        authenticate(&s, &lead_key, "default", 16).unwrap(),
        Err(crate::directory::Refused::TeamArchived)
    );
}

#[test]
fn keys_are_listed_by_who_may_see_them_and_record_their_last_use() {
    let s = org();
    let (dev_key, dev_id) = key_for(&s, "support", "dev@x.com", 1);
    let (lead_key, _) = key_for(&s, "support", "lead@x.com", 2);
    key_for(&s, "legal", "counsel@x.com", 3);
    let dev = login(&s, &dev_key, 1_000);
    let lead = login(&s, &lead_key, 1_000);
    let ids = |p: &Principal| -> Vec<String> {
        list_keys(&s, &as_actor(p, 2_000, 0), None)
            .unwrap()
            .into_iter()
            .map(|k| k.key.id)
            .collect()
    };
    assert_eq!(ids(&dev), vec![dev_id.clone()]);
    assert_eq!(ids(&lead).len(), 2);
    assert_eq!(list_keys(&s, &local(0), None).unwrap().len(), 3);
    let used = s.key(&dev_id).unwrap().unwrap().last_used_at;
    assert_eq!(used, Some(1_000));
    // within the precision nothing is written; after it, the new time
    login(&s, &dev_key, 1_000 + LAST_USED);
    assert_eq!(s.key(&dev_id).unwrap().unwrap().last_used_at, Some(1_000));
    login(&s, &dev_key, 1_000 + crate::directory::LAST_USED_PRECISION);
    assert_eq!(
        s.key(&dev_id).unwrap().unwrap().last_used_at,
        Some(1_000 + crate::directory::LAST_USED_PRECISION)
    );
    // no hash in what is shown
    let shown = serde_json::to_string(&list_keys(&s, &local(0), None).unwrap()).unwrap();
    assert!(!shown.contains("hash"), "{shown}");
}

const LAST_USED: Millis = 10;

#[test]
fn org_admins_manage_every_team_but_not_owners_or_the_org_wallet() {
    let s = org();
    set_org_admin(&s, &local(2), "ops@x.com", true).unwrap();
    // an org admin needs no membership for a key
    let (secret, _) = key_for(&s, "platform", "ops@x.com", 7);
    let ops = login(&s, &secret, 3);
    assert!(ops.org_admin && ops.role == Some(Role::Admin));
    let ctx = as_actor(&ops, 4, 8);
    create_team(&s, &ctx, "Research", None).unwrap();
    set_member(&s, &ctx, "legal", "para@x.com", Role::Admin).unwrap();
    set_member(&s, &ctx, "support", "counsel@x.com", Role::Member).unwrap();
    assert_eq!(
        code(set_member(&s, &ctx, "support", "root@x.com", Role::Member)),
        "forbidden"
    );
    assert_eq!(
        code(set_org_admin(&s, &ctx, "friend@x.com", true)),
        "forbidden"
    );
    let org_wallet: Allocation =
        serde_json::from_value(serde_json::json!({"org_id": "default", "amount": "1"})).unwrap();
    assert_eq!(code(allocate(&s, &ctx, &org_wallet)), "forbidden");
    allocate(&s, &ctx, &allocation()).unwrap();
    // withdrawn: the same key is a plain key again (no membership, so no key at all)
    set_org_admin(&s, &local(5), "ops@x.com", false).unwrap();
    assert_eq!(
        authenticate(&s, &secret, "default", 6).unwrap(),
        Err(crate::directory::Refused::NotAMember)
    );
}

#[test]
fn the_last_owner_stays() {
    let s = MemoryStore::new();
    let l = local(1);
    create_team(&s, &l, "Platform", None).unwrap();
    set_member(&s, &l, "platform", "root@x.com", Role::Owner).unwrap();
    assert_eq!(
        code(set_member(&s, &l, "platform", "root@x.com", Role::Admin)),
        "conflict"
    );
    assert_eq!(
        code(remove_member(&s, &l, "platform", "root@x.com")),
        "conflict"
    );
    set_member(&s, &l, "platform", "cfo@x.com", Role::Owner).unwrap();
    remove_member(&s, &l, "platform", "root@x.com").unwrap();
}

#[test]
fn every_change_is_an_event_in_the_chain() {
    let s = org();
    let (lead_key, lead_id) = key_for(&s, "support", "lead@x.com", 1);
    let lead = login(&s, &lead_key, 3);
    let ctx = Ctx::new(Some(&lead), "default", 4, "adm_1", [2; 32]);
    set_member(&s, &ctx, "support", "new@x.com", Role::Member).unwrap();
    revoke_key(
        &s,
        &Ctx {
            request_id: "adm_2",
            ..ctx.clone()
        },
        &lead_id,
    )
    .unwrap();
    let events = EventStore::list(&s, "default").unwrap();
    let actions: Vec<&str> = events
        .iter()
        .filter_map(|e| e.body.admin.as_ref().map(|a| a.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            "team.create",
            "team.create",
            "team.create",
            "member.set",
            "member.set",
            "member.set",
            "member.set",
            "member.set",
            "key.create",
            "member.set",
            "key.revoke"
        ]
    );
    let last = &events[events.len() - 2].body;
    assert_eq!(last.user.as_deref(), Some("lead@x.com"));
    assert_eq!(last.team.as_deref(), Some("support"));
    let change = last.admin.as_ref().unwrap();
    assert_eq!(
        (change.before.as_deref(), change.after.as_deref()),
        (None, Some("member"))
    );
    assert!(crate::event::verify(&events, None).is_ok());
    // no secret in the chain
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&lead_key), "the secret leaked into an event");
}

#[test]
fn commands_read_the_seed_s_json() {
    let c: Command = serde_json::from_value(serde_json::json!({
        "op": "allocate", "team_id": "Support", "amount": "1000.00", "currency": "USD"
    }))
    .unwrap();
    assert!(matches!(c, Command::Allocate(_)));
    let bad = serde_json::from_value::<Command>(serde_json::json!({
        "op": "set_member", "team": "support", "email": "a@x.com", "role": "member", "x": 1
    }));
    assert!(bad.is_err());
    let bad = serde_json::from_value::<Command>(serde_json::json!({
        "op": "allocate", "team": "support", "amount": "1", "colour": "red"
    }));
    assert!(bad.is_err(), "unknown field accepted");
    let s = org();
    let v = execute(
        &s,
        &local(9),
        &serde_json::from_value(serde_json::json!({"op": "get_team", "team": "Legal"})).unwrap(),
    )
    .unwrap();
    assert_eq!(v["slug"], "legal");
    assert_eq!(v["members"].as_array().unwrap().len(), 1);
}
