//! The shared permission matrix (`conformance/vectors/authority.json`) through the admin API
//! over HTTP: each `admin` step becomes the route a client would call, with the bearer key of
//! its actor, and must answer the error code the Rust, Python and Node runners answer. Steps
//! the host itself takes (`actor: null`) and key issuance for actors go to the store directly,
//! as `kt` would. Vector times are offsets from the start of a case's steps: a step at
//! `now_ms` waits until then, and a command's `expires_at` is moved by the same origin.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keeptrusts_core::admin::{self, Command, Ctx, NewKey};
use keeptrusts_core::Storage;
use serde_json::Value;

mod common;
use common::{get, http, root, stop, Env};

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

struct Run {
    store: Arc<dyn Storage>,
    /// `team/email` → (secret, id).
    keys: HashMap<String, (String, String)>,
    n: u8,
}

impl Run {
    fn secret(&mut self, name: &str) -> String {
        if let Some((s, _)) = self.keys.get(name) {
            return s.clone();
        }
        let (team, email) = name.split_once('/').unwrap();
        self.n += 1;
        let ctx = Ctx::new(None, "default", now_ms(), "matrix", [self.n; 32]);
        let new = NewKey {
            team: team.into(),
            email: email.into(),
            ..NewKey::default()
        };
        let issued = admin::create_key(self.store.as_ref(), &ctx, &new).unwrap();
        self.keys.insert(
            name.to_owned(),
            (issued.key.clone(), issued.info.key.id.clone()),
        );
        issued.key
    }
}

fn s<'a>(c: &'a Value, k: &str) -> &'a str {
    c[k].as_str().unwrap()
}

/// The route a client calls for a command, and its body.
fn route(c: &Value) -> (&'static str, String, Value) {
    let mut body = c.clone();
    let obj = body.as_object_mut().unwrap();
    obj.remove("op");
    let mut take = |k: &str| {
        obj.remove(k)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let (method, path) = match s(c, "op") {
        "create_team" => ("POST", "/v1/teams".to_owned()),
        "update_team" => ("PATCH", format!("/v1/teams/{}", take("team"))),
        "get_team" => ("GET", format!("/v1/teams/{}", take("team"))),
        "list_members" => ("GET", format!("/v1/teams/{}/members", take("team"))),
        "set_member" => ("POST", format!("/v1/teams/{}/members", take("team"))),
        "remove_member" => {
            let team = take("team");
            (
                "DELETE",
                format!("/v1/teams/{team}/members/{}", take("email")),
            )
        }
        "add_org_admin" => ("POST", "/v1/org/admins".to_owned()),
        "remove_org_admin" => ("DELETE", format!("/v1/org/admins/{}", take("email"))),
        "create_key" => ("POST", "/v1/keys".to_owned()),
        "list_keys" => match take("team") {
            t if t.is_empty() => ("GET", "/v1/keys".to_owned()),
            t => ("GET", format!("/v1/keys?team={t}")),
        },
        "revoke_key" => ("DELETE", format!("/v1/keys/{}", take("id"))),
        "rotate_key" => ("POST", format!("/v1/keys/{}/rotate", take("id"))),
        "allocate" => ("POST", "/v1/wallets/allocate".to_owned()),
        "resolve_ticket" => {
            let id = take("id");
            ("POST", format!("/v1/tickets/{id}/{}", take("resolution")))
        }
        "resolve_escalation" => {
            let id = take("id");
            (
                "POST",
                format!("/v1/escalations/{id}/{}", take("resolution")),
            )
        }
        other => panic!("no route for {other}"),
    };
    (method, path, body)
}

fn error_code(r: &common::Reply) -> Option<String> {
    if (200..300).contains(&r.status) {
        None
    } else {
        Some(r.json()["error"]["code"].as_str().unwrap_or("?").to_owned())
    }
}

fn run_case(case: &Value, i: usize) -> Result<(), String> {
    let env = Env::new(&format!("matrix-{i}"));
    let store: Arc<dyn Storage> = keeptrusts_store::open(&env.store).unwrap();
    let mut run = Run {
        store,
        keys: HashMap::new(),
        n: 0,
    };
    let steps = case["steps"].as_array().unwrap();
    // the host's own steps that succeed, before the first keyed one, set the org up; then the
    // gateway starts
    let setup = steps
        .iter()
        .take_while(|s| {
            s["actor"].is_null() && s["op"] == "admin" && s["expect"]["error"].is_null()
        })
        .count();
    for step in &steps[..setup] {
        let command: Command = serde_json::from_value(step["command"].clone()).unwrap();
        let ctx = Ctx::new(None, "default", now_ms(), "setup", [0; 32]);
        admin::execute(run.store.as_ref(), &ctx, &command).map_err(|e| e.to_string())?;
    }
    let pack = root().join(format!("examples/packs/{}.yaml", s(case, "pack")));
    let (mut gw, addr) = env.gateway_with(&pack, &[]);
    let t0 = now_ms();
    let mut out = Ok(());
    for (k, step) in steps.iter().enumerate().skip(setup) {
        let at = step["now_ms"].as_i64().unwrap_or(0);
        let wait = t0 + at - now_ms();
        if wait > 0 {
            std::thread::sleep(Duration::from_millis(u64::try_from(wait).unwrap()));
        }
        let fail = |m: String| Err(format!("step {k}: {m}"));
        if step["op"] == "authenticate" {
            let secret = run.secret(s(step, "key"));
            let r = get(&addr, "/v1/keys", &secret);
            let want = step["expect"]["refused"].as_str().map(str::to_owned);
            if error_code(&r) != want {
                out = fail(format!("authenticate: expected {want:?}, got {}", r.body));
                break;
            }
            continue;
        }
        let mut command = step["command"].clone();
        if let Some(name) = command["id"].as_str().and_then(|v| v.strip_prefix("$key:")) {
            let name = name.to_owned();
            run.secret(&name);
            command["id"] = Value::String(run.keys[&name].1.clone());
        }
        if let Some(e) = command["expires_at"].as_i64() {
            command["expires_at"] = Value::from(t0 + e);
        }
        let want = step["expect"]["error"].as_str().map(str::to_owned);
        let (got, answer) = if step["actor"].is_null() {
            let parsed: Command = serde_json::from_value(command.clone()).unwrap();
            let ctx = Ctx::new(None, "default", now_ms(), "local", [99; 32]);
            match admin::execute(run.store.as_ref(), &ctx, &parsed) {
                Ok(v) => (None, v),
                Err(e) => (Some(e.code().to_owned()), Value::Null),
            }
        } else {
            let secret = run.secret(step["actor"]["key"].as_str().unwrap());
            let (method, path, body) = route(&command);
            let body = if method == "GET" || method == "DELETE" {
                Vec::new()
            } else {
                body.to_string().into_bytes()
            };
            let r = http(&addr, method, &path, Some(&secret), &[], &body);
            let answer = if r.body.is_empty() {
                Value::Null
            } else {
                r.json()
            };
            (error_code(&r), answer)
        };
        if got != want {
            out = fail(format!(
                "{}: expected error {want:?}, got {got:?} ({answer})",
                command["op"]
            ));
            break;
        }
        if let (Some(name), Some(secret)) = (step["as"].as_str(), answer["key"].as_str()) {
            let id = answer["id"].as_str().unwrap().to_owned();
            run.keys.insert(name.to_owned(), (secret.to_owned(), id));
        }
    }
    stop(&mut gw);
    out
}

#[test]
fn the_permission_matrix_answers_over_http_as_in_every_binding() {
    let text = std::fs::read_to_string(root().join("conformance/vectors/authority.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 7);
    let started = Instant::now();
    let failures: Vec<String> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            run_case(c, i)
                .err()
                .map(|e| format!("{}: {e}", s(c, "name")))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed over HTTP ({:?}):\n{}",
        failures.len(),
        cases.len(),
        started.elapsed(),
        failures.join("\n")
    );
}
