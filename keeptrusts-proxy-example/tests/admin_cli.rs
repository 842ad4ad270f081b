//! Withdrawing keys, members and teams from the command line, org admins, admin actions in the
//! audit chain, and a pack's teams checked against the store: each of these was impossible (or
//! silently wrong) before the authority issue.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{chat, get, http, key_args, root, stop, Env};

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The error code of a chat request with `key` (`None` when it is served).
fn refused(addr: &str, key: &str) -> Option<String> {
    let r = chat(addr, Some(key), "gpt-4o-mini", "hello", &[]);
    if r.status == 200 {
        return None;
    }
    assert_eq!(r.status, 401, "{}", r.body);
    Some(r.json()["error"]["code"].as_str().unwrap().to_owned())
}

/// Waits (at most one second: the gateway's key cache is 500 ms) until `key` is refused.
fn refused_within_a_second(addr: &str, key: &str) -> String {
    let at = Instant::now();
    loop {
        if let Some(code) = refused(addr, key) {
            return code;
        }
        assert!(
            at.elapsed() < Duration::from_secs(1),
            "the key was still served after a second"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn keys_are_listed_revoked_rotated_and_expire() {
    let env = Env::new("cli-keys");
    let first = env.support_team();
    let issued = json(&env.ok(&[
        "key",
        "create",
        "--team",
        "Support",
        "--email",
        "agent@yourco.com",
        "--label",
        "ci",
        "--expires-in",
        "30d",
        "--json",
    ]));
    let (second, second_id) = (
        issued["key"].as_str().unwrap().to_owned(),
        issued["id"].as_str().unwrap().to_owned(),
    );
    assert_eq!(issued["label"], "ci");
    assert!(issued["expires_at"].as_i64().unwrap() > issued["created_at"].as_i64().unwrap());
    let (mut gw, addr) = env.gateway(&[]);
    assert_eq!(refused(&addr, &first), None);
    assert_eq!(refused(&addr, &second), None);
    let listed = json(&env.ok(&["key", "list", "--team", "support", "--json"]));
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|k| k["status"] == "active" && k.get("hash").is_none()));
    assert!(rows.iter().all(|k| k["last_used_at"].is_i64()), "{listed}");
    // revoke: the running gateway refuses it within its cache interval
    let first_id = rows.iter().find(|k| k["id"] != second_id.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.ok(&["key", "revoke", &first_id]);
    assert_eq!(refused_within_a_second(&addr, &first), "key_revoked");
    let (code, _, err) = env.kt(&["key", "revoke", &first_id]);
    assert_eq!(code, 2);
    assert!(err.contains("already revoked"), "{err}");
    // rotate: a new secret, the old one refused
    let rotated = json(&env.ok(&["key", "rotate", &second_id, "--json"]));
    let third = rotated["key"].as_str().unwrap().to_owned();
    assert_eq!(rotated["label"], "ci");
    assert_eq!(refused_within_a_second(&addr, &second), "key_revoked");
    assert_eq!(refused(&addr, &third), None);
    let soon = ["--expires-in", "soon"];
    let (code, _, err) = env.kt(&key_args("support", "agent@yourco.com", &soon));
    assert_eq!(code, 2);
    assert!(err.contains("30d"), "{err}");
    stop(&mut gw);
}

#[test]
fn removed_members_and_archived_teams_lose_their_keys() {
    let env = Env::new("cli-members");
    let agent = env.support_team();
    let bo = env.member_key("support", "bo@yourco.com", None);
    let (mut gw, addr) = env.gateway(&[]);
    assert_eq!(refused(&addr, &bo), None);
    env.ok(&[
        "team",
        "remove-member",
        "--team",
        "Support",
        "--email",
        "bo@yourco.com",
    ]);
    assert_eq!(refused_within_a_second(&addr, &bo), "not_a_member");
    let shown = json(&env.ok(&["team", "show", "--team", "support", "--json"]));
    assert_eq!(shown["members"].as_array().unwrap().len(), 1);
    env.ok(&[
        "team",
        "update",
        "--team",
        "support",
        "--name",
        "Customer Support",
    ]);
    assert_eq!(refused(&addr, &agent), None, "a rename keeps the slug");
    env.ok(&["team", "update", "--team", "Customer Support", "--archive"]);
    assert_eq!(refused_within_a_second(&addr, &agent), "team_archived");
    env.ok(&["team", "update", "--team", "support", "--restore"]);
    // a refusal is never cached: the restored team's key works on its next request
    assert_eq!(refused(&addr, &agent), None);
    stop(&mut gw);
}

#[test]
fn org_admins_manage_every_team_but_not_the_org_wallet() {
    let env = Env::new("cli-org");
    env.support_team();
    env.ok(&["team", "create", "--name", "Legal"]);
    env.ok(&["org", "add-admin", "--email", "ops@yourco.com"]);
    assert!(env.ok(&["org", "admins"]).contains("ops@yourco.com"));
    // no membership needed for the key: an org admin acts in any team
    let ops = env.key("support", "ops@yourco.com");
    let (mut gw, addr) = env.gateway(&[]);
    let post = |path: &str, body: Value| {
        http(
            &addr,
            "POST",
            path,
            Some(&ops),
            &[],
            body.to_string().as_bytes(),
        )
    };
    let r = post("/v1/teams", serde_json::json!({"name": "Research"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post(
        "/v1/teams/legal/members",
        serde_json::json!({"email": "para@yourco.com", "role": "admin"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post(
        "/v1/wallets/allocate",
        serde_json::json!({"team_id": "Legal", "amount": 100.0, "currency": "USD"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        "/v1/wallets/allocate",
        serde_json::json!({"org_id": "default", "amount": 100.0}),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = post(
        "/v1/org/admins",
        serde_json::json!({"email": "friend@yourco.com"}),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    env.ok(&["org", "remove-admin", "--email", "ops@yourco.com"]);
    assert_eq!(refused_within_a_second(&addr, &ops), "not_a_member");
    stop(&mut gw);
}

#[test]
fn admin_actions_are_exported_and_verified_with_the_chain() {
    let env = Env::new("cli-events");
    let key = env.support_team();
    let (mut gw, addr) = env.gateway(&[]);
    assert_eq!(refused(&addr, &key), None);
    stop(&mut gw);
    env.ok(&[
        "wallet", "allocate", "--team", "Support", "--amount", "7", "--top-up",
    ]);
    let events: Vec<Value> = common::all_events(&env);
    let actions: Vec<&str> = events
        .iter()
        .filter_map(|e| e["admin"]["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "team.create",
            "member.set",
            "key.create",
            "wallet.allocate",
            "wallet.allocate"
        ]
    );
    let top_up = events.iter().rev().find(|e| !e["admin"].is_null()).unwrap();
    assert_eq!(top_up["admin"]["before"], "5 USD");
    assert_eq!(top_up["admin"]["after"], "12 USD");
    assert_eq!(top_up["admin"]["actor"], "local");
    assert_eq!(top_up["team"], "support");
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&key), "a key secret reached the chain");
    assert!(env
        .ok(&["events", "verify"])
        .starts_with(&format!("ok: {} events", events.len())));
    // an admin's own view of their team lists them; a member sees their own rows only
    let lead = env.member_key("support", "lead@yourco.com", Some("admin"));
    let (mut gw, addr) = env.gateway(&[]);
    let r = get(&addr, "/v1/events?team=support", &lead);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("member.set"), "{}", r.body);
    let r = get(&addr, "/v1/events?team=support", &key);
    assert!(!r.body.contains("member.set"), "{}", r.body);
    stop(&mut gw);
}

#[test]
fn lint_and_start_name_pack_teams_the_store_does_not_know() {
    let env = Env::new("cli-lint");
    env.ok(&["team", "create", "--name", "Engineering"]);
    env.ok(&["team", "create", "--name", "Research"]);
    let pack = root().join("examples/packs/per-team-targeting.yaml");
    let (code, out, err) = env.kt(&["policy", "lint", "--file", pack.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    let warned: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["code"] == "W002")
        .filter_map(|w| w["message"].as_str())
        .collect();
    assert!(warned.iter().any(|m| m.contains("`legal`")), "{v}");
    assert!(!warned.iter().any(|m| m.contains("`engineering`")), "{v}");
    assert_eq!(v["fallback_teams"], serde_json::json!(["research"]));
    // the gateway says the same when it starts
    let (mut gw, _) = env.gateway_with(&pack, &[]);
    stop(&mut gw);
    let log = std::fs::read_to_string(env.dir.join("gateway.log")).unwrap();
    assert!(log.contains("warning") && log.contains("`legal`"), "{log}");
    assert!(log.contains("default chain): research"), "{log}");
}

#[test]
fn verify_catches_a_truncated_or_emptied_chain_and_a_rewritten_head() {
    let env = Env::new("cli-verify");
    env.support_team();
    env.ok(&["team", "create", "--name", "Legal"]);
    env.ok(&["team", "create", "--name", "Research"]);
    let head = env.ok(&["events", "head"]).trim().to_owned();
    assert!(head.starts_with("5:"), "{head}");
    let ok = env.ok(&["events", "verify", "--expect-head", &head]);
    assert!(ok.starts_with("ok: 6 events"), "{ok}");
    let path = env.store.strip_prefix("sqlite:").unwrap().to_owned();
    let db = rusqlite::Connection::open(&path).unwrap();
    // the newest events deleted
    db.execute("DELETE FROM events WHERE seq >= 4", []).unwrap();
    let (code, _, err) = env.kt(&["events", "verify"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("newer events were removed"), "{err}");
    // the gateway says so when it starts
    let (mut gw, _) = env.gateway(&[]);
    stop(&mut gw);
    let log = std::fs::read_to_string(env.dir.join("gateway.log")).unwrap();
    assert!(
        log.contains("broken near its end") && log.contains("kt events verify"),
        "{log}"
    );
    // ... and the head row rewritten to match: only the head kept elsewhere catches it
    let last: String = db
        .query_row("SELECT body FROM events WHERE seq = 3", [], |r| r.get(0))
        .unwrap();
    let hash = json(&last)["hash"].as_str().unwrap().to_owned();
    db.execute("UPDATE event_heads SET seq = 3, hash = ?1", [&hash])
        .unwrap();
    env.ok(&["events", "verify"]);
    let (code, _, err) = env.kt(&["events", "verify", "--expect-head", &head]);
    assert_eq!(code, 3, "{err}");
    // every event deleted
    db.execute("DELETE FROM events", []).unwrap();
    let (code, _, err) = env.kt(&["events", "verify"]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = env.kt(&["events", "verify", "--expect-head", "nonsense"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn prune_removes_each_events_content_at_the_end_of_its_own_retention() {
    let env = Env::new("cli-prune");
    env.support_team();
    // every event is younger than a day: nothing goes
    let out = env.ok(&["events", "prune", "--default-days", "1"]);
    assert!(out.contains("pruned 0"), "{out}");
    let verified = env.ok(&["events", "verify", "--default-days", "1"]);
    assert!(verified.contains("0 pruned"), "{verified}");
}

#[test]
fn events_are_paged_and_filtered_by_the_store_with_the_viewers_rules() {
    let env = Env::new("cli-pages");
    let agent = env.support_team();
    for (email, role) in [("lead@yourco.com", "admin"), ("root@yourco.com", "owner")] {
        env.add_member("support", email, Some(role));
    }
    let lead = env.key("support", "lead@yourco.com");
    let root = env.key("support", "root@yourco.com");
    let (mut gw, addr) = env.gateway(&[]);
    for i in 0..7 {
        assert_eq!(refused(&addr, &agent), None, "request {i}");
    }
    assert_eq!(refused(&addr, &lead), None);
    let page = |key: &str, q: &str| {
        let r = get(&addr, &format!("/v1/events?{q}"), key);
        (r.status, r.json())
    };
    // pages of three, newest first, until `next` is absent
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, v) = page(&lead, &format!("limit=3&user=agent%40yourco.com{cursor}"));
        assert_eq!(status, 200, "{v}");
        let rows = v["rows"].as_array().unwrap();
        assert!(rows.len() <= 3);
        seen.extend(rows.iter().map(|e| e["seq"].as_u64().unwrap()));
        match v["next"].as_u64() {
            Some(n) => cursor = format!("&cursor={n}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );
    // a member asking for someone else's rows gets their own only
    let (_, v) = page(&agent, "user=lead%40yourco.com&limit=50");
    assert!(v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["user"] == "agent@yourco.com"));
    let (_, v) = page(&lead, "verdict=block&limit=50");
    assert!(v["rows"].as_array().unwrap().is_empty(), "{v}");
    // the org roll-up is for owners
    let (status, _) = page(&root, "team=*&limit=5");
    assert_eq!(status, 200);
    let (status, _) = page(&lead, "team=*");
    assert_eq!(status, 403);
    let r = get(&addr, "/v1/dashboard/overview?team=*", &root);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["days"][0]["requests"], 8, "{}", r.body);
    for bad in [
        "limit=0",
        "limit=5000",
        "verdict=maybe",
        "from=yesterday",
        "colour=red",
    ] {
        let (status, v) = page(&lead, bad);
        assert_eq!(status, 400, "{bad}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains('`'), "{v}");
    }
    stop(&mut gw);
}
