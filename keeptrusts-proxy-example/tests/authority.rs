//! Authority through the admin API, tried the way a hostile team admin or member would
//! (the authority issue's findings): each request below succeeded before the one decision point.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use serde_json::Value;

mod common;
use common::{chat, get, http, stop, Env};

/// An org: the owner (in `finance`, also a member of `support`), a support admin and two
/// support members; returns the keys (owner, admin, member, mate, legal's counsel).
fn org(env: &Env) -> [String; 5] {
    let keys = common::org(env, "Finance", "cfo@yourco.com");
    // the owner is also on the support team, with the owner role there
    env.add_member("support", "cfo@yourco.com", Some("owner"));
    keys
}

fn post(addr: &str, key: &str, path: &str, body: &Value) -> common::Reply {
    http(
        addr,
        "POST",
        path,
        Some(key),
        &[],
        body.to_string().as_bytes(),
    )
}

fn code(r: &common::Reply) -> (u16, String) {
    (
        r.status,
        r.json()["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[test]
fn a_team_admin_cannot_mint_an_owners_key_or_demote_an_owner() {
    let env = Env::new("auth-owner");
    let [_, admin, _, _, _] = org(&env);
    let (mut gw, addr) = env.gateway(&[]);
    let body = serde_json::json!({"team": "support", "email": "cfo@yourco.com"});
    let r = post(&addr, &admin, "/v1/keys", &body);
    assert_eq!(code(&r), (403, "forbidden".into()), "{}", r.body);
    let body = serde_json::json!({"email": "cfo@yourco.com", "role": "member"});
    let r = post(&addr, &admin, "/v1/teams/support/members", &body);
    assert_eq!(code(&r), (403, "forbidden".into()), "{}", r.body);
    // nor raise a member to their own rank
    let body = serde_json::json!({"email": "ana@yourco.com", "role": "admin"});
    let r = post(&addr, &admin, "/v1/teams/support/members", &body);
    assert_eq!(code(&r), (403, "forbidden".into()), "{}", r.body);
    // what an admin may do still works: a member's key, a new member
    let body = serde_json::json!({"team": "support", "email": "ana@yourco.com"});
    assert_eq!(post(&addr, &admin, "/v1/keys", &body).status, 201);
    let body = serde_json::json!({"email": "new@yourco.com", "role": "member"});
    assert_eq!(
        post(&addr, &admin, "/v1/teams/support/members", &body).status,
        201
    );
    stop(&mut gw);
}

#[test]
fn a_team_admin_cannot_fund_or_charge_another_teams_users_wallet() {
    let env = Env::new("auth-wallet");
    let [owner, admin, member, _, _] = org(&env);
    let (mut gw, addr) = env.gateway(&[]);
    // counsel is in legal only: claiming `user_team: support` in the body does not make them so
    let body =
        serde_json::json!({"user": "counsel@yourco.com", "user_team": "support", "amount": 0});
    let r = post(&addr, &admin, "/v1/wallets/allocate", &body);
    assert_eq!(code(&r), (403, "forbidden".into()), "{}", r.body);
    // a user of the admin's own team is theirs to fund
    let body = serde_json::json!({"user": "ana@yourco.com", "amount": 2});
    let r = post(&addr, &admin, "/v1/wallets/allocate", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    // the seed's own spelling of the allocation body
    let body = serde_json::json!({"team_id": "legal", "amount": 1000.00, "currency": "USD"});
    let r = post(&addr, &owner, "/v1/wallets/allocate", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    // a ticket approval may not charge someone else's wallet
    env.allocate("support", "0");
    env.ok(&[
        "wallet",
        "allocate",
        "--user",
        "ana@yourco.com",
        "--amount",
        "0",
    ]);
    let r = chat(&addr, Some(&member), "gpt-4o", "a long report", &[]);
    assert_eq!(r.status, 402, "{}", r.body);
    let ticket = r.json()["error"]["ticket_id"].as_str().unwrap().to_owned();
    let body = serde_json::json!({"charge_to": "user:counsel@yourco.com"});
    let r = post(
        &addr,
        &admin,
        &format!("/v1/tickets/{ticket}/approve"),
        &body,
    );
    assert_eq!(code(&r), (403, "forbidden".into()), "{}", r.body);
    let body = serde_json::json!({"charge_to": "user:ana@yourco.com"});
    let r = post(
        &addr,
        &admin,
        &format!("/v1/tickets/{ticket}/approve"),
        &body,
    );
    assert_eq!(r.status, 200, "the requester's own wallet: {}", r.body);
    stop(&mut gw);
}

#[test]
fn members_see_only_their_own_tickets_and_nobody_approves_their_own() {
    let env = Env::new("auth-tickets");
    let [_, admin, member, mate, _] = org(&env);
    env.allocate("support", "0");
    let (mut gw, addr) = env.gateway(&[]);
    let r = chat(&addr, Some(&member), "gpt-4o", "a long report", &[]);
    assert_eq!(r.status, 402, "{}", r.body);
    let r = chat(&addr, Some(&mate), "gpt-4o", "another report", &[]);
    assert_eq!(r.status, 402, "{}", r.body);
    let list = |key: &str| -> Vec<String> {
        let r = get(&addr, "/v1/tickets", key);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["user"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(list(&member), ["ana@yourco.com"]);
    assert_eq!(list(&mate), ["bo@yourco.com"]);
    let mut all = list(&admin);
    all.sort();
    assert_eq!(all, ["ana@yourco.com", "bo@yourco.com"]);
    // the admin's own ticket: they may not approve it themselves
    let r = chat(&addr, Some(&admin), "gpt-4o", "my own report", &[]);
    assert_eq!(r.status, 402, "{}", r.body);
    let own = r.json()["error"]["ticket_id"].as_str().unwrap().to_owned();
    let r = post(
        &addr,
        &admin,
        &format!("/v1/tickets/{own}/approve"),
        &serde_json::json!({}),
    );
    assert_eq!(code(&r), (403, "forbidden".into()), "{}", r.body);
    stop(&mut gw);
}

#[test]
fn a_requester_never_approves_their_own_escalation() {
    let env = Env::new("auth-escalation");
    org(&env);
    env.add_member("legal", "gc@yourco.com", Some("admin"));
    env.allocate("legal", "100");
    let gc = env.key("legal", "gc@yourco.com");
    let (mut gw, addr) = env.gateway(&[]);
    // legal's chain escalates every request for review
    let r = chat(&addr, Some(&gc), "gpt-4o", "Review this contract", &[]);
    assert_eq!(code(&r), (409, "escalation_required".into()), "{}", r.body);
    let id = r.json()["error"]["escalation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post(
        &addr,
        &gc,
        &format!("/v1/escalations/{id}/approve"),
        &serde_json::json!({}),
    );
    assert_eq!(code(&r), (403, "forbidden".into()), "{}", r.body);
    stop(&mut gw);
}

#[test]
fn the_seeds_commands_work_as_written_and_unknown_teams_get_a_suggestion() {
    let env = Env::new("auth-seed");
    env.ok(&["team", "create", "--name", "Engineering"]);
    // the seed writes the display name
    env.add_member("Engineering", "dev@yourco.com", None);
    env.ok(&[
        "key",
        "create",
        "--team",
        "Engineering",
        "--email",
        "dev@yourco.com",
    ]);
    env.allocate("Engineering", "10");
    let balance = env.ok(&["wallet", "balance"]);
    assert!(balance.contains("team:engineering"), "{balance}");
    assert!(
        !balance.contains("team:Engineering"),
        "no orphan wallet: {balance}"
    );
    // a typo is not found, with the team it probably meant
    let (code, _, err) = env.kt(&[
        "team",
        "add-member",
        "--team",
        "Enginering",
        "--email",
        "x@yourco.com",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("did you mean `engineering`"), "{err}");
}
