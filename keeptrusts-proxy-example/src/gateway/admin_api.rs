//! The admin API of the gateway (`docs/gateway.md`), for owner and admin keys. Every call applies the
//! core's own permission rule (`directory`, `wallet::allocate`, `ticket::resolve`,
//! `escalation::resolve`, `dashboard::view`), so the API and the CLI decide alike.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use keeptrusts_core::admin::{self, Command, Ctx};
use keeptrusts_core::dashboard::{self, Query, Section};
use keeptrusts_core::wallet;
use keeptrusts_core::{AdminError, Principal, Storage};

use crate::backend;
use crate::gateway::{blocking, error, json_response, read_body, App, GwBody};

fn admin_error(e: &AdminError, rid: &str) -> Response<GwBody> {
    let status = match e {
        AdminError::Forbidden(_) => 403,
        AdminError::NotFound(_) => 404,
        AdminError::Conflict(_) => 409,
        AdminError::Invalid(_) => 400,
        AdminError::Store(_) => 503,
    };
    error(status, e.code(), &e.to_string(), rid)
}

fn ok<T: serde::Serialize>(status: u16, v: &T, rid: &str) -> Response<GwBody> {
    json_response(status, rid, &serde_json::to_value(v).unwrap_or_default())
}

/// Routes one admin call.
pub async fn handle(app: Arc<App>, req: Request<Incoming>, rid: String) -> Response<GwBody> {
    let actor = match app.principal(&req).await {
        Ok(Ok(p)) => p,
        Ok(Err(refused)) => {
            let hint = crate::gateway::bearer(&req).map(keeptrusts_core::directory::ApiKey::hint);
            return app.refuse(None, hint, &rid, 401, refused.code(), refused.message());
        }
        Err(_) => {
            return error(
                503,
                "store_unavailable",
                "the key store is unavailable",
                &rid,
            )
        }
    };
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let body = if method == Method::POST || method == Method::PATCH {
        match read_body(req, app.max_body(), app.client_timeout()).await {
            Ok(b) => b,
            Err(413) => return error(413, "request_too_large", "the body is too large", &rid),
            Err(408) => return error(408, "request_timeout", "the body arrived too slowly", &rid),
            Err(_) => return error(400, "invalid_request", "the body could not be read", &rid),
        }
    } else {
        bytes::Bytes::new()
    };
    call(app, actor, &method, &path, &query, &body, rid).await
}

/// One admin call for an authenticated `actor`, as [`handle`] makes it once it has the key's
/// principal and the body. The console (`crate::gateway::console`) makes its calls here too, so both
/// decide by the same rule through the same functions.
pub(crate) async fn call(
    app: Arc<App>,
    actor: Principal,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
    rid: String,
) -> Response<GwBody> {
    let method = method.clone();
    let path = path.to_owned();
    let query = query.to_owned();
    let parts: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect();
    let p: Vec<&str> = parts.iter().map(String::as_str).collect();
    let now = backend::now_ms();
    // what the gateway still holds in memory is written first, so every answer is current
    let write_behind = Arc::clone(app.write_behind());
    if let Some(Err(e)) = blocking(move || write_behind.flush()).await {
        tracing::warn!(request_id = %rid, "the store did not take the queued writes: {e}");
        return error(503, "store_unavailable", "the store is unavailable", &rid);
    }
    let store = Arc::clone(app.store());
    let write_behind = Arc::clone(app.write_behind());
    let org = app.org().to_owned();
    if let Some((op, status, fields)) = command_route(&method, &p) {
        let command = match command_of(op, fields, body, &query) {
            Ok(c) => c,
            Err(msg) => return error(400, "invalid_request", &msg, &rid),
        };
        // a change of keys, members or teams is seen by this gateway's next request at once
        let forget = matches!(
            command,
            Command::RevokeKey { .. }
                | Command::RotateKey { .. }
                | Command::RemoveMember { .. }
                | Command::SetMember { .. }
                | Command::UpdateTeam { .. }
                | Command::RemoveOrgAdmin { .. }
        );
        let app2 = Arc::clone(&app);
        let id = rid.clone();
        let notifying = Arc::clone(&app);
        let out = run(&rid, status, move || {
            let random = backend::random32().map_err(AdminError::Invalid)?;
            let ctx = Ctx::new(Some(&actor), &org, now, &id, random);
            let result = admin::execute(store.as_ref(), &ctx, &command)?;
            // a resolution or a revocation is told to the webhooks that want it
            if let Some(n) =
                keeptrusts_core::notify::of_command(&command, &result, actor.user.as_deref())
            {
                notifying.notifier().send(&n);
            }
            Ok(result)
        })
        .await;
        if forget {
            app2.forget_keys();
        }
        return out.unwrap_or_else(|r| r);
    }
    let out: Result<Response<GwBody>, Response<GwBody>> = match (method, p.as_slice()) {
        (Method::GET, ["v1", "teams"]) => {
            run(&rid, 200, move || store.teams().map_err(AdminError::from)).await
        }
        (Method::GET, ["v1", "org", "admins"]) => {
            run(&rid, 200, move || admin::org_admins(store.as_ref())).await
        }
        (Method::GET, ["v1", "tickets"]) => {
            run(&rid, 200, move || {
                Ok::<_, AdminError>(keeptrusts_core::wallet::ticket::list_visible(
                    store.as_ref(),
                    &actor,
                )?)
            })
            .await
        }
        (Method::GET, ["v1", "escalations"]) => {
            run(&rid, 200, move || {
                Ok::<_, AdminError>(keeptrusts_core::escalation::list_visible(
                    store.as_ref(),
                    &actor,
                )?)
            })
            .await
        }
        (Method::GET, ["v1", "wallets", "balance"]) => {
            run(&rid, 200, move || {
                // the gateway's view: the unused part of its floats is not shown as reserved
                let all = keeptrusts_core::WalletStore::list(write_behind.as_ref(), now)?;
                Ok::<_, AdminError>(wallet::visible(&actor, all))
            })
            .await
        }
        (Method::GET, ["v1", "events"]) => {
            load_section(store, org, actor, Section::Events, &query, &rid).await
        }
        (Method::GET, ["v1", "dashboard", section]) => {
            let section: Section = match serde_json::from_value(serde_json::Value::String((*section).to_owned())) {
                Ok(s) => s,
                Err(_) => {
                    return error(
                        404,
                        "not_found",
                        &format!("no dashboard section `{section}` (overview, events, spend, escalations, usage)"),
                        &rid,
                    )
                }
            };
            load_section(store, org, actor, section, &query, &rid).await
        }
        _ => Err(error(
            404,
            "not_found",
            &format!("no route for {path}"),
            &rid,
        )),
    };
    out.unwrap_or_else(|r| r)
}

/// Dashboard `section` for `actor` with the query `?query`.
async fn load_section(
    store: Arc<dyn Storage>,
    org: String,
    actor: Principal,
    section: Section,
    query: &str,
    rid: &str,
) -> Result<Response<GwBody>, Response<GwBody>> {
    let mut q = dashboard_query(&actor, section, query)
        .map_err(|msg| error(400, "invalid_request", &msg, rid))?;
    run(rid, 200, move || {
        // `?team=Support` is the team `support`, as everywhere else
        if q.team != dashboard::ORG_ROLLUP {
            q.team = keeptrusts_core::directory::slug_of(store.as_ref(), &q.team)?;
        }
        dashboard::load(store.as_ref(), &org, &actor, &q)
    })
    .await
}

/// The query for a section: `?team=` (the caller's own team by default; `*`: the whole org,
/// for owners and org admins), `?user=`, `?verdict=`, `?policy=`, `?from=` / `?to=` (ms),
/// `?granularity=day|week|month`, and for events `?limit=` (at most 1,000) with `?cursor=` (the
/// previous page's `next`).
fn dashboard_query(actor: &Principal, section: Section, query: &str) -> Result<Query, String> {
    let team = query_param(query, "team").unwrap_or_else(|| actor.team.clone().unwrap_or_default());
    let mut q = Query::new(&team, section);
    let named = |v: &str| serde_json::Value::String(v.to_owned());
    for (k, v) in query.split('&').filter_map(|p| p.split_once('=')) {
        let v = percent_decode(v);
        let bad = |what: &str| format!("`?{k}={v}`: expected {what}");
        let number = || v.parse::<i64>().map_err(|_| bad("a number"));
        match k {
            "team" => {}
            "user" => q.filter.user = Some(v.clone()),
            "verdict" => {
                q.filter.verdict = Some(
                    serde_json::from_value(named(&v))
                        .map_err(|_| bad("allow, redact, ticket, escalate or block"))?,
                );
            }
            "policy" => {
                q.filter.policy =
                    Some(serde_json::from_value(named(&v)).map_err(|_| bad("a policy kind"))?);
            }
            "from" => q.filter.from = Some(number()?),
            "to" => q.filter.to = Some(number()?),
            "granularity" => {
                q.granularity = serde_json::from_value(named(&v))
                    .map_err(|_| bad("day, week or month"))?;
            }
            "limit" => {
                let n: usize = v.parse().map_err(|_| bad("a number of rows"))?;
                if n == 0 || n > dashboard::MAX_PAGE {
                    return Err(bad("1 to 1000 rows"));
                }
                q.limit = Some(n);
            }
            "cursor" | "before" => {
                q.before = Some(v.parse().map_err(|_| bad("the `next` of the previous page"))?);
            }
            other => {
                return Err(format!(
                    "unknown query parameter `{other}` (team, user, verdict, policy, from, to, granularity, limit, cursor)"
                ))
            }
        }
    }
    Ok(q)
}

async fn run<T: serde::Serialize + Send + 'static>(
    rid: &str,
    status: u16,
    f: impl FnOnce() -> Result<T, AdminError> + Send + 'static,
) -> Result<Response<GwBody>, Response<GwBody>> {
    match blocking(f).await {
        Some(Ok(v)) => Ok(ok(status, &v, rid)),
        Some(Err(e)) => Err(admin_error(&e, rid)),
        None => Err(error(500, "internal_error", "the call failed", rid)),
    }
}

/// An admin route: the command's op, the status of a success, the fields the path supplies.
type Route<'a> = (&'static str, u16, Vec<(&'static str, &'a str)>);

/// The administrative command a route names: its op, the status of a success, and the fields
/// the path supplies.
fn command_route<'a>(method: &Method, p: &[&'a str]) -> Option<Route<'a>> {
    Some(match (method.as_str(), p) {
        ("POST", ["v1", "teams"]) => ("create_team", 201, vec![]),
        ("GET", ["v1", "teams", team]) => ("get_team", 200, vec![("team", *team)]),
        ("PATCH", ["v1", "teams", team]) => ("update_team", 200, vec![("team", *team)]),
        ("GET", ["v1", "teams", team, "members"]) => ("list_members", 200, vec![("team", *team)]),
        ("POST", ["v1", "teams", team, "members"]) => ("set_member", 201, vec![("team", *team)]),
        ("DELETE", ["v1", "teams", team, "members", email]) => (
            "remove_member",
            200,
            vec![("team", *team), ("email", *email)],
        ),
        ("POST", ["v1", "org", "admins"]) => ("add_org_admin", 201, vec![]),
        ("DELETE", ["v1", "org", "admins", email]) => {
            ("remove_org_admin", 200, vec![("email", *email)])
        }
        ("POST", ["v1", "keys"]) => ("create_key", 201, vec![]),
        ("GET", ["v1", "keys"]) => ("list_keys", 200, vec![]),
        ("DELETE", ["v1", "keys", id]) => ("revoke_key", 200, vec![("id", *id)]),
        ("POST", ["v1", "keys", id, "rotate"]) => ("rotate_key", 201, vec![("id", *id)]),
        ("POST", ["v1", "wallets", "allocate"]) => ("allocate", 200, vec![]),
        ("POST", ["v1", "tickets", id, verb @ ("approve" | "deny")]) => (
            "resolve_ticket",
            200,
            vec![("id", *id), ("resolution", *verb)],
        ),
        ("POST", ["v1", "escalations", id, verb @ ("approve" | "deny")]) => (
            "resolve_escalation",
            200,
            vec![("id", *id), ("resolution", *verb)],
        ),
        _ => return None,
    })
}

/// The command of a route: the JSON body (or `{}`), the path's fields over it, `?team=` for a
/// key listing, and `expires_in` (`30d`) turned into `expires_at`.
fn command_of(
    op: &str,
    fields: Vec<(&str, &str)>,
    body: &[u8],
    query: &str,
) -> Result<Command, String> {
    let mut v: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| format!("invalid body: {e}"))?
    };
    let obj = v
        .as_object_mut()
        .ok_or("invalid body: expected a JSON object")?;
    for (k, val) in fields {
        obj.insert(k.to_owned(), serde_json::Value::String(percent_decode(val)));
    }
    if op == "list_keys" {
        if let Some(team) = query_param(query, "team") {
            obj.insert("team".into(), serde_json::Value::String(team));
        }
    }
    if let Some(d) = obj.remove("expires_in") {
        let text = d
            .as_str()
            .ok_or("`expires_in`: expected a duration like \"30d\"")?;
        let ms = backend::parse_duration(text).map_err(|e| format!("`expires_in`: {e}"))?;
        obj.insert(
            "expires_at".into(),
            serde_json::Value::from(backend::now_ms().saturating_add(ms)),
        );
    }
    obj.insert("op".into(), serde_json::Value::String(op.to_owned()));
    serde_json::from_value(v).map_err(|e| format!("invalid body: {e}"))
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
}

/// `%40` → `@` (an email in a path), `+` left as is.
pub(crate) fn percent_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&c, tail)) = rest.split_first() {
        let hex = |i: usize| tail.get(i).and_then(|&d| (d as char).to_digit(16));
        match (c, hex(0), hex(1)) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                rest = tail.get(2..).unwrap_or_default();
            }
            _ => {
                out.push(c);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
