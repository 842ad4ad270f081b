//! The admin API of the gateway (SPEC §9), for owner and admin keys. Every call applies the
//! core's own permission rule (`directory`, `wallet::allocate`, `ticket::resolve`,
//! `escalation::resolve`, `dashboard::view`), so the API and the CLI decide alike.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use keeptrusts_core::dashboard::{self, Query, Section};
use keeptrusts_core::directory::{add_member, create_key, create_team};
use keeptrusts_core::wallet;
use keeptrusts_core::wallet::ticket::{self, TicketResolution};
use keeptrusts_core::{escalation, AdminError, Principal, Resolution, Role};
use serde::Deserialize;

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTeam {
    name: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMember {
    email: String,
    role: Role,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    team: String,
    email: String,
    #[serde(default)]
    consumer_group: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Approval {
    /// The wallet an approved ticket charges (`team:legal`, `user:…`, `org:default`).
    #[serde(default)]
    charge_to: Option<String>,
}

#[allow(clippy::result_large_err)]
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8], rid: &str) -> Result<T, Response<GwBody>> {
    serde_json::from_slice(body)
        .map_err(|e| error(400, "invalid_request", &format!("invalid body: {e}"), rid))
}

fn ok<T: serde::Serialize>(status: u16, v: &T, rid: &str) -> Response<GwBody> {
    json_response(status, rid, &serde_json::to_value(v).unwrap_or_default())
}

/// Routes one admin call.
pub async fn handle(app: Arc<App>, req: Request<Incoming>, rid: String) -> Response<GwBody> {
    let actor = match app.principal(&req).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return error(
                401,
                "unauthenticated",
                "send an API key: Authorization: Bearer kt_…",
                &rid,
            )
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
    let parts: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect();
    let body = if method == Method::POST {
        match read_body(req, app.max_body(), app.client_timeout()).await {
            Ok(b) => b,
            Err(413) => return error(413, "request_too_large", "the body is too large", &rid),
            Err(408) => return error(408, "request_timeout", "the body arrived too slowly", &rid),
            Err(_) => return error(400, "invalid_request", "the body could not be read", &rid),
        }
    } else {
        bytes::Bytes::new()
    };
    let p: Vec<&str> = parts.iter().map(String::as_str).collect();
    let now = backend::now_ms();
    // what the gateway still holds in memory is written first, so every answer is current
    let fast = Arc::clone(app.ledger());
    if let Some(Err(e)) = blocking(move || fast.flush()).await {
        tracing::warn!(request_id = %rid, "the store did not take the queued writes: {e}");
        return error(503, "store_unavailable", "the store is unavailable", &rid);
    }
    let store = Arc::clone(app.store());
    let fast = Arc::clone(app.ledger());
    let org = app.org().to_owned();
    let out: Result<Response<GwBody>, Response<GwBody>> = match (method, p.as_slice()) {
        (Method::POST, ["v1", "teams"]) => {
            let t: NewTeam = match parse(&body, &rid) {
                Ok(t) => t,
                Err(r) => return r,
            };
            run(&rid, 201, move || {
                create_team(
                    store.as_ref(),
                    Some(&actor),
                    &t.name,
                    t.description.as_deref(),
                    now,
                )
            })
            .await
        }
        (Method::GET, ["v1", "teams"]) => {
            run(&rid, 200, move || store.teams().map_err(AdminError::from)).await
        }
        (Method::POST, ["v1", "teams", team, "members"]) => {
            let m: NewMember = match parse(&body, &rid) {
                Ok(m) => m,
                Err(r) => return r,
            };
            let team = (*team).to_owned();
            run(&rid, 201, move || {
                add_member(store.as_ref(), Some(&actor), &team, &m.email, m.role, now)
            })
            .await
        }
        (Method::POST, ["v1", "keys"]) => {
            let k: NewKey = match parse(&body, &rid) {
                Ok(k) => k,
                Err(r) => return r,
            };
            run(&rid, 201, move || {
                let random = backend::random32().map_err(AdminError::Invalid)?;
                let (secret, key) = create_key(
                    store.as_ref(), Some(&actor), &k.team, &k.email, k.consumer_group.as_deref(), &random, now,
                )?;
                Ok(serde_json::json!({"key": secret, "id": key.id, "team": key.team, "user": key.user,
                    "consumer_group": key.consumer_group,
                    "note": "store this key now: it is shown once and kept only as a hash"}))
            })
            .await
        }
        (Method::POST, ["v1", "wallets", "allocate"]) => {
            let a: wallet::Allocation = match parse(&body, &rid) {
                Ok(a) => a,
                Err(r) => return r,
            };
            run(&rid, 200, move || a.apply(store.as_ref(), &actor, now)).await
        }
        (Method::GET, ["v1", "wallets", "balance"]) => {
            run(&rid, 200, move || {
                // the gateway's view: the unused part of its floats is not shown as reserved
                let all = keeptrusts_core::WalletStore::list(fast.as_ref(), now)?;
                Ok::<_, AdminError>(wallet::visible(&actor, all))
            })
            .await
        }
        (Method::GET, ["v1", "tickets"]) => {
            run(&rid, 200, move || {
                Ok::<_, AdminError>(keeptrusts_core::authority::tickets(store.as_ref(), &actor)?)
            })
            .await
        }
        (Method::POST, ["v1", "tickets", id, verb @ ("approve" | "deny")]) => {
            let a: Approval = if body.is_empty() {
                Approval::default()
            } else {
                match parse(&body, &rid) {
                    Ok(a) => a,
                    Err(r) => return r,
                }
            };
            let (id, approve) = ((*id).to_owned(), *verb == "approve");
            run(&rid, 200, move || {
                let resolution = if approve {
                    TicketResolution::approve(store.as_ref(), &id, a.charge_to.as_deref())?
                } else {
                    TicketResolution::Deny
                };
                ticket::resolve(store.as_ref(), &actor, &id, &resolution, now)
            })
            .await
        }
        (Method::GET, ["v1", "escalations"]) => {
            run(&rid, 200, move || {
                Ok::<_, AdminError>(keeptrusts_core::authority::escalations(
                    store.as_ref(),
                    &actor,
                )?)
            })
            .await
        }
        (Method::POST, ["v1", "escalations", id, verb @ ("approve" | "deny")]) => {
            let (id, r) = (
                (*id).to_owned(),
                if *verb == "approve" {
                    Resolution::Approve
                } else {
                    Resolution::Deny
                },
            );
            run(&rid, 200, move || {
                escalation::resolve(store.as_ref(), &actor, &id, r, now)
            })
            .await
        }
        (Method::GET, ["v1", "events"]) => {
            let q = dashboard_query(&actor, Section::Events, &query);
            run(&rid, 200, move || {
                let events = keeptrusts_core::event::EventStore::list(store.as_ref(), &org)?;
                dashboard::view(&actor, &q, &events)
            })
            .await
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
            let q = dashboard_query(&actor, section, &query);
            run(&rid, 200, move || {
                let events = keeptrusts_core::event::EventStore::list(store.as_ref(), &org)?;
                dashboard::view(&actor, &q, &events)
            })
            .await
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

/// The query for a section: `?team=` or the caller's own team.
fn dashboard_query(actor: &Principal, section: Section, query: &str) -> Query {
    let team = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == "team")
        .map_or_else(
            || actor.team.clone().unwrap_or_default(),
            |(_, v)| v.to_owned(),
        );
    Query {
        team,
        section,
        filter: Default::default(),
        granularity: Default::default(),
    }
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
