//! The console (`/console`, `docs/console.md`): server-rendered pages over the admin API.
//!
//! Every page and every form is made of admin API calls ([`crate::gateway::admin_api::call`]) as the
//! signed-in key's principal: the console reads and changes exactly what that key could through
//! `/v1/…`, decided by the same rule, and adds no rule of its own. It holds sessions
//! ([`session`]) and renders HTML ([`pages`]); the CSS and the one script are compiled into the
//! binary ([`ASSET_CSS`], [`ASSET_JS`]) and nothing is loaded from elsewhere.

#![allow(clippy::indexing_slicing)] // `serde_json::Value["field"]` is `Null` when absent

mod link;
mod pages;
pub(crate) mod session;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use keeptrusts_core::directory::ApiKey;
use keeptrusts_core::Principal;
use serde_json::{json, Value};

use crate::backend;
use crate::gateway::{blocking, read_body, App, GwBody};
pub use link::{link, LinkArgs};
use pages::{FormError, Page};
use session::Session;

/// The stylesheet.
pub const ASSET_CSS: &str = include_str!("assets/console.css");
/// The script: formats `<time>` and money in the viewer's locale and time zone, copy buttons.
pub const ASSET_JS: &str = include_str!("assets/console.js");

/// The Content-Security-Policy of every console answer: nothing from elsewhere, no inline
/// script or style, no frames, forms only to the console itself.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Whether the console answers `path` (`/` sends the browser to it).
pub(crate) fn serves(path: &str) -> bool {
    path == "/" || path == "/console" || path.starts_with("/console/")
}

/// What a console handler knows about the request.
struct Req {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    cookies: String,
    /// Served over TLS (here or at a proxy in front that says so): the cookies are `Secure`.
    secure: bool,
    rid: String,
}

/// Answers one console request.
pub(crate) async fn handle(app: Arc<App>, req: Request<Incoming>, rid: String) -> Response<GwBody> {
    let h = req.headers();
    let cookies = h
        .get(hyper::header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let secure = req.uri().scheme_str() == Some("https")
        || h.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https")
        || std::env::var("KT_CONSOLE_SECURE_COOKIES").is_ok_and(|v| v == "1");
    let r = Req {
        method: req.method().clone(),
        path: req.uri().path().trim_end_matches('/').to_owned(),
        query: form(req.uri().query().unwrap_or("").as_bytes()),
        cookies,
        secure,
        rid,
    };
    let body = if r.method == Method::POST {
        match read_body(req, 64 << 10, app.client_timeout()).await {
            Ok(b) => b,
            Err(413) => return plain(413, "the form is too large"),
            Err(_) => return plain(400, "the form could not be read"),
        }
    } else {
        Bytes::new()
    };
    let f = form(&body);
    match (r.method.clone(), r.path.as_str()) {
        (Method::GET, "" | "/console") => redirect("/console/overview", &[]),
        (Method::GET, "/console/assets/console.css") => asset("text/css; charset=utf-8", ASSET_CSS),
        (Method::GET, "/console/assets/console.js") => {
            asset("text/javascript; charset=utf-8", ASSET_JS)
        }
        (Method::GET, "/console/sign-in") => sign_in_page(&r, None, 200),
        (Method::POST, "/console/sign-in") => sign_in(&app, &r, &f).await,
        (Method::GET, "/console/link") => link_page(&r),
        (Method::POST, "/console/link") => redeem_link(&app, &r, &f).await,
        (Method::POST, "/console/sign-out") => sign_out(&app, &r, &f).await,
        (m @ (Method::GET | Method::POST), p) => match p.strip_prefix("/console/") {
            Some(section) => section_page(&app, &r, m, section, &f).await,
            None => plain(404, "not found"),
        },
        _ => plain(405, "method not allowed"),
    }
}

/// `a=1&b=x%40y+z` as a map (the last value of a repeated name wins).
fn form(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decoding with `+` as a space (forms; a `+` sent as `%2B` stays a plus).
fn decode(s: &str) -> String {
    crate::gateway::admin_api::percent_decode(&s.replace('+', " "))
}

/// Percent-encoding of a query value or path segment.
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn with_security_headers(mut r: Response<GwBody>) -> Response<GwBody> {
    let h = r.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    r
}

fn response(status: u16, content_type: &'static str, body: String) -> Response<GwBody> {
    let mut r = Response::new(GwBody::Full(Some(Bytes::from(body))));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    with_security_headers(r)
}

fn html(status: u16, body: String, cookies: &[String]) -> Response<GwBody> {
    let mut r = response(status, "text/html; charset=utf-8", body);
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            r.headers_mut().append(hyper::header::SET_COOKIE, v);
        }
    }
    r
}

fn plain(status: u16, text: &str) -> Response<GwBody> {
    response(status, "text/plain; charset=utf-8", format!("{text}\n"))
}

fn asset(content_type: &'static str, text: &'static str) -> Response<GwBody> {
    let mut r = response(200, content_type, text.to_owned());
    r.headers_mut().insert(
        "cache-control",
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

fn redirect(location: &str, cookies: &[String]) -> Response<GwBody> {
    let mut r = html(303, String::new(), cookies);
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(hyper::header::LOCATION, v);
    }
    r
}

/// The sign-in page, with a fresh pre-session CSRF token in its form and its cookie.
fn sign_in_page(r: &Req, error: Option<&str>, status: u16) -> Response<GwBody> {
    let Ok(token) = session::token() else {
        return plain(503, "the operating system gave no randomness");
    };
    let notice = r.query.get("reason").map(|c| pages::reason_text(c));
    let body = pages::sign_in(&token, error, notice.as_deref());
    let c = session::set_cookie(session::PRE_COOKIE, &token, Some(600), r.secure);
    html(status, body, &[c])
}

/// Whether a sign-in form carries the token of its pre-session cookie.
fn pre_csrf_ok(r: &Req, f: &HashMap<String, String>) -> bool {
    match (
        session::cookie(&r.cookies, session::PRE_COOKIE),
        f.get("csrf"),
    ) {
        (Some(c), Some(t)) => session::same(c, t),
        _ => false,
    }
}

async fn authenticate(
    app: &Arc<App>,
    secret: String,
) -> Result<Result<(Principal, ApiKey), keeptrusts_core::directory::Refused>, String> {
    let a = Arc::clone(app);
    blocking(move || {
        keeptrusts_core::directory::authenticate_key(
            a.store().as_ref(),
            &secret,
            a.org(),
            backend::now_ms(),
        )
    })
    .await
    .ok_or("the key lookup failed")?
    .map_err(|e| e.to_string())
}

fn session_cookie(id: &str, secure: bool) -> String {
    session::set_cookie(session::COOKIE, id, None, secure)
}

fn cleared(secure: bool) -> Vec<String> {
    vec![
        session::set_cookie(session::COOKIE, "", Some(0), secure),
        session::set_cookie(session::PRE_COOKIE, "", Some(0), secure),
    ]
}

async fn sign_in(app: &Arc<App>, r: &Req, f: &HashMap<String, String>) -> Response<GwBody> {
    if !pre_csrf_ok(r, f) {
        return sign_in_page(r, Some("the form expired; sign in again"), 403);
    }
    let secret = f
        .get("key")
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    if secret.is_empty() {
        return sign_in_page(r, Some("enter your API key (kt_…)"), 400);
    }
    match authenticate(app, secret.clone()).await {
        Ok(Ok(_)) => {
            let hash = ApiKey::hash_secret(&secret);
            match session::open(&hash, None, backend::now_ms()) {
                Ok((id, _)) => redirect(
                    "/console/overview",
                    &[
                        session_cookie(&id, r.secure),
                        session::set_cookie(session::PRE_COOKIE, "", Some(0), r.secure),
                    ],
                ),
                Err(e) => plain(503, &e),
            }
        }
        Ok(Err(refused)) => {
            // audited as a refused API call is (the key's hint, never the secret)
            let _ = app.refuse(
                None,
                Some(ApiKey::hint(&secret)),
                &r.rid,
                401,
                refused.code(),
                refused.message(),
            );
            sign_in_page(r, Some(refused.message()), 401)
        }
        Err(_) => sign_in_page(r, Some("the key store is unavailable; try again"), 503),
    }
}

fn link_page(r: &Req) -> Response<GwBody> {
    let Ok(csrf) = session::token() else {
        return plain(503, "the operating system gave no randomness");
    };
    let token = r.query.get("token").cloned().unwrap_or_default();
    let c = session::set_cookie(session::PRE_COOKIE, &csrf, Some(600), r.secure);
    html(200, pages::link(&csrf, &token, None), &[c])
}

/// A sign-in link's key is exchanged once: it is rotated (so the link stops working) into a
/// key only this session knows, which expires with the session and is revoked at sign-out.
async fn redeem_link(app: &Arc<App>, r: &Req, f: &HashMap<String, String>) -> Response<GwBody> {
    let token = f.get("token").cloned().unwrap_or_default();
    let again = |msg: &str, status: u16| {
        let Ok(csrf) = session::token() else {
            return plain(503, "the operating system gave no randomness");
        };
        let c = session::set_cookie(session::PRE_COOKIE, &csrf, Some(600), r.secure);
        html(status, pages::link(&csrf, &token, Some(msg)), &[c])
    };
    if !pre_csrf_ok(r, f) {
        return again("the form expired; press the button again", 403);
    }
    let (actor, key) = match authenticate(app, token.clone()).await {
        Ok(Ok(found)) => found,
        Ok(Err(refused)) => {
            let _ = app.refuse(
                None,
                Some(ApiKey::hint(&token)),
                &r.rid,
                401,
                refused.code(),
                refused.message(),
            );
            return again(
                &format!(
                    "this link does not sign in: {} (a link works once; ask for a new one)",
                    refused.message()
                ),
                401,
            );
        }
        Err(_) => return again("the key store is unavailable; try again", 503),
    };
    if key.label.as_deref() != Some(link::LABEL) {
        return again(
            "this is not a sign-in link; sign in with your key instead",
            400,
        );
    }
    let life = session::lifetime() / 1000;
    let rotated = admin(
        app,
        &actor,
        &r.rid,
        Method::POST,
        &format!("/v1/keys/{}/rotate", encode(&key.id)),
        "",
        Some(json!({"expires_in": format!("{life}s")})),
    )
    .await;
    let fresh = match rotated {
        Ok(v) => v,
        Err(e) => return again(&e.message, e.status),
    };
    let (Some(secret), Some(id)) = (fresh["key"].as_str(), fresh["id"].as_str()) else {
        return again("the link could not be exchanged", 500);
    };
    match session::open(
        &ApiKey::hash_secret(secret),
        Some(id.to_owned()),
        backend::now_ms(),
    ) {
        Ok((sid, _)) => redirect(
            "/console/overview",
            &[
                session_cookie(&sid, r.secure),
                session::set_cookie(session::PRE_COOKIE, "", Some(0), r.secure),
            ],
        ),
        Err(e) => plain(503, &e),
    }
}

async fn sign_out(app: &Arc<App>, r: &Req, f: &HashMap<String, String>) -> Response<GwBody> {
    let Some(sid) = session::cookie(&r.cookies, session::COOKIE) else {
        return redirect("/console/sign-in", &cleared(r.secure));
    };
    let Some(s) = session::touch(sid, backend::now_ms()) else {
        return redirect("/console/sign-in", &cleared(r.secure));
    };
    if !f.get("csrf").is_some_and(|t| session::same(t, &s.csrf)) {
        return plain(403, "the form's CSRF token is missing or wrong");
    }
    session::close(sid);
    if let Some(id) = &s.link_key {
        // the key the link made lives only as long as the session
        if let Ok(Ok((actor, _))) = principal_of(app, &s).await {
            let _ = admin(
                app,
                &actor,
                &r.rid,
                Method::DELETE,
                &format!("/v1/keys/{}", encode(id)),
                "",
                None,
            )
            .await;
        }
    }
    redirect("/console/sign-in?reason=signed_out", &cleared(r.secure))
}

async fn principal_of(
    app: &Arc<App>,
    s: &Session,
) -> Result<Result<(Principal, ApiKey), keeptrusts_core::directory::Refused>, String> {
    let a = Arc::clone(app);
    let hash = s.key_hash.clone();
    blocking(move || {
        keeptrusts_core::directory::authenticate_hash(
            a.store().as_ref(),
            &hash,
            a.org(),
            backend::now_ms(),
        )
    })
    .await
    .ok_or("the key lookup failed")?
    .map_err(|e| e.to_string())
}

/// An admin API answer that is not a success.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// One admin API call as `actor`: the JSON of a 2xx, or the error's status, code and message.
pub(crate) async fn admin(
    app: &Arc<App>,
    actor: &Principal,
    rid: &str,
    method: Method,
    path: &str,
    query: &str,
    body: Option<Value>,
) -> Result<Value, ApiError> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let resp = crate::gateway::admin_api::call(
        Arc::clone(app),
        actor.clone(),
        &method,
        path,
        query,
        body.as_bytes(),
        rid.to_owned(),
    )
    .await;
    let status = resp.status().as_u16();
    let bytes = match resp.into_body() {
        GwBody::Full(Some(b)) => b,
        _ => Bytes::new(),
    };
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        Ok(v)
    } else {
        Err(ApiError {
            status,
            code: v["error"]["code"].as_str().unwrap_or("error").to_owned(),
            message: v["error"]["message"]
                .as_str()
                .unwrap_or("the call failed")
                .to_owned(),
        })
    }
}

/// A section page (GET) or one of its forms (POST), for the session's principal.
async fn section_page(
    app: &Arc<App>,
    r: &Req,
    method: Method,
    section: &str,
    f: &HashMap<String, String>,
) -> Response<GwBody> {
    let now = backend::now_ms();
    let back = |reason: &str| {
        redirect(
            &format!("/console/sign-in?reason={reason}"),
            &cleared(r.secure),
        )
    };
    let Some(sid) = session::cookie(&r.cookies, session::COOKIE) else {
        return back("signed_out");
    };
    let Some(s) = session::touch(sid, now) else {
        return back("expired");
    };
    // the key is asked about on every request: a revoked key, a removed member or an archived
    // team ends the session at once
    let actor = match principal_of(app, &s).await {
        Ok(Ok((p, _))) => p,
        Ok(Err(refused)) => {
            session::close(sid);
            return back(refused.code());
        }
        Err(_) => return plain(503, "the key store is unavailable; try again"),
    };
    if method == Method::POST && !f.get("csrf").is_some_and(|t| session::same(t, &s.csrf)) {
        return plain(403, "the form's CSRF token is missing or wrong");
    }
    let team = r
        .query
        .get("team")
        .filter(|t| !t.is_empty())
        .cloned()
        .or_else(|| actor.team.clone())
        .unwrap_or_default();
    let page = Page {
        app: Arc::clone(app),
        actor,
        csrf: s.csrf.clone(),
        team,
        query: r.query.clone(),
        rid: r.rid.clone(),
        flash: s.flash.clone(),
        section: section.to_owned(),
    };
    if method == Method::POST {
        return match pages::act(&page, f).await {
            Ok(pages::Done::Redirect(message)) => {
                session::flash(sid, &message);
                redirect(&page.href(&page.section, &[]), &[])
            }
            Ok(pages::Done::Show(extra)) => pages::render(&page, None, Some(extra)).await,
            Err(e) => pages::render(&page, Some(e), None).await,
        };
    }
    pages::render(&page, None::<FormError>, None).await
}
