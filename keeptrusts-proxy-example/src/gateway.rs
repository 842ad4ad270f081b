//! `kt gateway run`: the OpenAI-compatible gateway (`docs/gateway.md`).
//!
//! hyper 1 on tokio. A request's reservation, settlement and event go through the write-behind
//! ledger (`keeptrusts_store::WriteBehind`): reserved from memory, written by one writer thread
//! in batches. The evaluation runs on the request's worker; the store calls it may still make
//! (a first float, escalations, tickets) block in place. Key lookups (cached for 10 s) and the
//! admin API run on the blocking pool.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use keeptrusts_core::decision::error_envelope;
use keeptrusts_core::directory::{authenticate_key, ApiKey, Refused};
use keeptrusts_core::event::{Closing, EventDraft, RefusalLimiter};
use keeptrusts_core::exchange::{Begin, Delta, Exchange, StreamEnd};
use keeptrusts_core::pack::spec::ProviderKind;
use keeptrusts_core::pricing::Usage;
use keeptrusts_core::request::Content;
use keeptrusts_core::routing::{Router, RouterOptions, Target};
use keeptrusts_core::{
    ChatRequest, ChatResponse, Engine, MemoryRateCounters, Principal, RateCounters, RequestContext,
    Storage, Stores, Verdict,
};
use rust_decimal::Decimal;
use tokio::sync::mpsc;

use crate::backend;
use api::{Api, Encoder};

pub(crate) mod admin_api;
pub(crate) mod anthropic;
pub(crate) mod api;
pub(crate) mod console;
mod hold;
mod http;
mod metrics;
mod mock;
mod notify;
mod server;
mod stream;
mod upstream;

pub(crate) use http::*;
use metrics::*;
use mock::*;
pub use server::run;
use stream::*;
use upstream::*;

/// `kt gateway run` options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The policy pack.
    #[arg(long)]
    pack: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:41002")]
    listen: SocketAddr,
    /// `sqlite:PATH` or `postgres://user@host:port/db`.
    #[arg(long, default_value = backend::DEFAULT_STORE)]
    store: String,
    /// Largest request body accepted (413 above).
    #[arg(long, default_value_t = 4 << 20)]
    max_body_bytes: usize,
    /// Seconds to wait for a provider: a target that does not answer in time counts as failed
    /// and the next one is tried; when every target failed, 502 `upstream_error`.
    #[arg(long, default_value_t = 120)]
    upstream_timeout: u64,
    /// Organization id events are chained under (`--org-id`, as in every other command;
    /// `--org` is accepted too).
    #[arg(long = "org-id", visible_alias = "org", default_value = "default")]
    org: String,
    /// Seconds a client has to send its request headers, and then its body (408 after).
    #[arg(long, default_value_t = 30)]
    client_timeout: u64,
    /// `durable`: an answer (or a stream's last event) is released only once its settlement
    /// and event are committed; `relaxed`: answered at once, written behind (a crash loses at
    /// most the last batch).
    #[arg(long, value_enum, default_value_t = Durability::Durable)]
    durability: Durability,
    /// On a store with no team yet, first create the first owner (`owner`) or the seed's org
    /// (`seed`: teams engineering, support and legal with an admin and a member each, and
    /// wallets), and print their keys once. A store that has teams is left as it is.
    #[arg(long, value_enum)]
    bootstrap: Option<crate::bootstrap::Bootstrap>,
}

/// When an answer may leave the gateway (see `docs/gateway.md`, "Durability").
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// After its settlement and event are committed.
    Durable,
    /// At once; written behind.
    Relaxed,
}

/// How long a durable answer waits for its commit before it is withheld (503).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Refusals before the lifecycle (bad keys, unreadable bodies, …) with an event of their own, per
/// status and minute; beyond that they are counted in one summary event per minute.
const REFUSAL_EVENTS_PER_MINUTE: u64 = 60;

/// How long an authenticated key is trusted without asking the store again: a key revoked, or a
/// member removed, on any gateway sharing the store is refused here within this interval.
const KEY_CACHE_TTL: Duration = Duration::from_millis(500);
/// Permits of the tracker for connections in flight (never exhausted).
const PERMITS: usize = 1 << 30;
/// A key hash's principal, its rate-limit identity, and when it was looked up.
type CachedKey = (Principal, Arc<str>, Instant);

pub(crate) struct App {
    engine: Engine,
    router: Router,
    store: Arc<dyn Storage>,
    /// Reservations, settlements and events of requests: answered from memory, written behind.
    write_behind: Arc<keeptrusts_store::WriteBehind>,
    /// Escalations and tickets for evaluations on the async workers.
    inline: backend::Inline,
    org: String,
    keys: Mutex<HashMap<String, CachedKey>>,
    /// Bounds the events of refusals ([`REFUSAL_EVENTS_PER_MINUTE`] per status).
    refusals: Mutex<RefusalLimiter>,
    /// Where the pack's rate limits are counted: in this process on SQLite (one gateway per
    /// file), in the store on PostgreSQL (shared by every gateway on it); `None` when the pack
    /// sets no limit.
    rate: Option<Arc<dyn RateCounters>>,
    durability: Durability,
    /// How many of the write-behind's queued items are committed (told by its writer).
    committed: tokio::sync::watch::Receiver<u64>,
    metrics: Metrics,
    /// Over-budget requests held open for their ticket (`wallets.queue`).
    holds: Arc<hold::Holds>,
    /// The pack's webhooks (`notifications:`).
    notifier: notify::Notifier,
    max_body: usize,
    upstream_timeout: Duration,
    client_timeout: Duration,
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Full<Bytes>,
    >,
}

impl App {
    /// The principal for the request's bearer key, from the cache or the store.
    pub(crate) async fn principal(
        self: &Arc<Self>,
        req: &Request<Incoming>,
    ) -> Result<Result<Principal, Refused>, String> {
        Ok(self.keyed_principal(req).await?.map(|(p, _)| p))
    }

    /// [`App::principal`], with the key's rate-limit identity ([`ApiKey::rate_identity`]: the
    /// first key of its rotation chain, so rotating does not reset the limits).
    pub(crate) async fn keyed_principal(
        self: &Arc<Self>,
        req: &Request<Incoming>,
    ) -> Result<Result<(Principal, Arc<str>), Refused>, String> {
        let Some(secret) = bearer(req) else {
            return Ok(Err(Refused::Unknown));
        };
        let hash = ApiKey::hash_secret(secret);
        if let Ok(cache) = self.keys.lock() {
            if let Some((p, rate_id, at)) = cache.get(&hash) {
                if at.elapsed() < KEY_CACHE_TTL {
                    return Ok(Ok((p.clone(), Arc::clone(rate_id))));
                }
            }
        }
        let app = Arc::clone(self);
        let secret = secret.to_owned();
        let found = blocking(move || {
            authenticate_key(app.store.as_ref(), &secret, &app.org, backend::now_ms())
        })
        .await
        .ok_or("the key lookup failed")?
        .map_err(|e| e.to_string())?
        .map(|(p, key)| (p, Arc::<str>::from(key.rate_identity())));
        if let Ok(mut cache) = self.keys.lock() {
            match &found {
                Ok((p, rate_id)) => {
                    if cache.len() > 100_000 {
                        cache.clear();
                    }
                    cache.insert(hash, (p.clone(), Arc::clone(rate_id), Instant::now()));
                }
                Err(_) => {
                    cache.remove(&hash);
                }
            }
        }
        Ok(found)
    }

    /// Forgets every cached key: after a revocation, a removal or an archive made through this
    /// gateway, its own next request is refused at once (other gateways within
    /// [`KEY_CACHE_TTL`]).
    pub(crate) fn forget_keys(&self) {
        if let Ok(mut cache) = self.keys.lock() {
            cache.clear();
        }
    }
}

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<GwBody> {
    let Some(rid) = request_id(&req) else {
        return error(
            503,
            "no_randomness",
            "the gateway cannot make request ids: the operating system gave no randomness",
            "-",
        );
    };
    let path = req.uri().path().to_owned();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/health") => json_response(200, &rid, &serde_json::json!({"status": "ok"})),
        (Method::GET, "/metrics") => {
            let text = format!(
                "{}{}{}# HELP keeptrusts_ledger_queue_depth Settlements and events queued, not yet committed.\n# TYPE keeptrusts_ledger_queue_depth gauge\nkeeptrusts_ledger_queue_depth {}\n",
                app.metrics.render(),
                app.holds.render(),
                app.notifier.render(),
                app.write_behind.queue_depth()
            );
            let mut r = Response::new(GwBody::Full(Some(Bytes::from(text))));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        (Method::GET, "/v1/models") => models(app, req, rid).await,
        (Method::POST, "/v1/chat/completions") => governed(app, req, rid, Api::Chat).await,
        (Method::POST, "/v1/responses") => governed(app, req, rid, Api::Responses).await,
        (Method::POST, "/v1/embeddings") => governed(app, req, rid, Api::Embeddings).await,
        (Method::POST, "/v1/messages") => {
            in_shape(Api::Messages, governed(app, req, rid, Api::Messages).await).await
        }
        _ if path.starts_with("/v1/") => crate::gateway::admin_api::handle(app, req, rid).await,
        _ if crate::gateway::console::serves(&path) => {
            crate::gateway::console::handle(app, req, rid).await
        }
        _ => error(404, "not_found", &format!("no route for {path}"), &rid),
    }
}

/// The caller of a governed endpoint: its key's principal, with the consumer group it names
/// (`x-consumer-group`), and the key's rate identity (its public id, or that of the first key of
/// its rotation chain; never the secret); or the refusal to answer (401, 403, 503), already
/// recorded.
async fn caller(
    app: &Arc<App>,
    req: &Request<Incoming>,
    rid: &str,
    started: Instant,
) -> Result<(Principal, Arc<str>), Response<GwBody>> {
    let (mut principal, key_id) = match app.keyed_principal(req).await {
        Ok(Ok(p)) => p,
        Ok(Err(refused)) => {
            app.metrics
                .record("-", "unauthenticated", started.elapsed());
            let hint = bearer(req).map(ApiKey::hint);
            return Err(app.refuse(None, hint, rid, 401, refused.code(), refused.message()));
        }
        Err(e) => {
            tracing::warn!(request_id = %rid, "key lookup failed: {e}");
            return Err(error(
                503,
                "store_unavailable",
                "the key store is unavailable",
                rid,
            ));
        }
    };
    // a key bound to a consumer group fixes the group (the key identifies it); an unbound key
    // may name one of the groups its team may use
    if let Some(cg) = header(req, "x-consumer-group") {
        match &principal.consumer_group {
            Some(bound) if *bound != cg => {
                app.metrics.record(
                    principal.team.as_deref().unwrap_or("-"),
                    "block",
                    started.elapsed(),
                );
                let message = format!(
                    "this key is bound to the consumer group `{bound}` and cannot use another"
                );
                return Err(app.refuse(
                    Some(&principal),
                    None,
                    rid,
                    403,
                    "consumer_group_mismatch",
                    &message,
                ));
            }
            Some(_) => {}
            None => principal.consumer_group = Some(cg),
        }
    }
    Ok((principal, key_id))
}

/// `GET /v1/models`: the models the caller's consumer group (or the pack's targets) serve that
/// its role may use.
async fn models(app: Arc<App>, req: Request<Incoming>, rid: String) -> Response<GwBody> {
    let (principal, _) = match caller(&app, &req, &rid, Instant::now()).await {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    match keeptrusts_core::exchange::models(&app.engine, &app.router, &principal) {
        Ok(list) => {
            let data: Vec<serde_json::Value> = list
                .iter()
                .map(|m| serde_json::json!({"id": m, "object": "model", "owned_by": "keeptrusts"}))
                .collect();
            json_response(
                200,
                &rid,
                &serde_json::json!({"object": "list", "data": data}),
            )
        }
        Err(e) => app.refuse(
            Some(&principal),
            None,
            &rid,
            e.status(),
            e.code(),
            &e.to_string(),
        ),
    }
}

/// An error answer in the shape of `api` (Anthropic's for the Messages API); any other answer
/// as it is.
async fn in_shape(api: Api, resp: Response<GwBody>) -> Response<GwBody> {
    if resp.status().as_u16() < 400 || api == Api::Chat {
        return resp;
    }
    let status = resp.status().as_u16();
    let (mut parts, body) = resp.into_parts();
    let GwBody::Full(Some(bytes)) = body else {
        return Response::from_parts(parts, body);
    };
    let Ok(envelope) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, GwBody::Full(Some(bytes)));
    };
    let shaped = api.error_body(status, envelope).to_string();
    parts.headers.remove(hyper::header::CONTENT_LENGTH);
    Response::from_parts(parts, GwBody::Full(Some(Bytes::from(shaped))))
}

/// A governed request of any API: the caller, the body translated to the chat completion the
/// lifecycle governs, the exchange with the targets, the answer written back in the API's shape.
async fn governed(
    app: Arc<App>,
    req: Request<Incoming>,
    rid: String,
    api: Api,
) -> Response<GwBody> {
    let started = Instant::now();
    let (principal, key_id) = match caller(&app, &req, &rid, started).await {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    // the key's identity for per-key rate limits: its public id, or that of the first key of
    // its rotation chain (never the secret)
    let rate_key = app.rate.as_ref().map(|_| key_id);
    if api == Api::Messages && header(&req, "anthropic-version").is_none() {
        let message = "the Messages API needs the `anthropic-version` header (e.g. 2023-06-01)";
        return app.refuse(
            Some(&principal),
            None,
            &rid,
            400,
            "invalid_request",
            message,
        );
    }
    let mut ctx = RequestContext::new(&rid, backend::now_ms());
    ctx.escalation_id = header(&req, "x-keeptrusts-escalation-id");
    ctx.ticket_id = header(&req, "x-keeptrusts-ticket-id");
    let prefer = header(&req, "prefer");
    let body = match read_body(req, app.max_body, app.client_timeout).await {
        Ok(b) => b,
        Err(code) => {
            let (status, code, message) = match code {
                408 => (
                    408,
                    "request_timeout",
                    format!(
                        "the body did not arrive within {} s",
                        app.client_timeout.as_secs()
                    ),
                ),
                413 => (
                    413,
                    "request_too_large",
                    format!("the body is larger than {} bytes", app.max_body),
                ),
                _ => (
                    400,
                    "invalid_request",
                    "the request body could not be read".to_owned(),
                ),
            };
            return app.refuse(Some(&principal), None, &rid, status, code, &message);
        }
    };
    let (request, inbound) = match api.parse(&body) {
        Ok(r) => r,
        Err(refused) => {
            return app.refuse(
                Some(&principal),
                None,
                &rid,
                400,
                refused.code,
                &refused.message,
            );
        }
    };
    hold::governed_held(
        &app,
        &principal,
        rate_key,
        ctx,
        &request,
        &inbound,
        api,
        rid,
        started,
        prefer.as_deref(),
    )
    .await
}

/// One pass of a governed request through the lifecycle: targeting, the chain, the budget, the
/// provider calls, the answer in the API's shape. A request refused for its budget with a cost
/// ticket carries the ticket in its response's extensions ([`hold::TicketOf`]) so that it
/// can be held.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn exchange(
    app: &Arc<App>,
    principal: &Principal,
    rate_key: Option<&str>,
    ctx: &RequestContext,
    request: &ChatRequest,
    inbound: &api::Inbound,
    api: Api,
    rid: String,
    started: Instant,
) -> Response<GwBody> {
    let app = Arc::clone(app);
    let team = principal.team.clone().unwrap_or_else(|| "-".into());
    let t_eval = Instant::now();
    // on this worker: the reservation comes from the write-behind's memory; the rare call that must
    // wait for the store (a first float, an escalation, a ticket) blocks in place
    let mut stores = Stores::new(&app.inline).with_budget(app.write_behind.as_ref(), &app.inline);
    if let Some(rate) = &app.rate {
        stores = stores.with_rate_limits(rate.as_ref(), rate_key);
    }
    let begun = Exchange::begin(
        &app.engine,
        Some(&app.router),
        principal,
        request,
        ctx,
        &stores,
    );
    tracing::debug!(request_id = %rid, eval_us = t_eval.elapsed().as_micros() as u64, since_start_us = started.elapsed().as_micros() as u64, "evaluated");
    let exchange = match begun {
        Ok(Begin::Forward(x)) => x,
        Ok(Begin::Answer(a)) => {
            let a = *a;
            if a.status == 429 {
                // over a rate limit: a refusal event, bounded like every refusal's, so that a
                // client hammering past its limit cannot fill the store
                tracing::info!(request_id = %rid, status = 429, code = "rate_limited", team = %team, "refused");
                app.metrics.record(&team, "rate_limited", started.elapsed());
                let draft = a.close.draft;
                app.refusal_event(draft.status, draft.timestamp, || draft);
                return with_headers(json_response(a.status, &rid, &a.body), &a.rate_headers);
            }
            if matches!(a.verdict, Verdict::Ticket | Verdict::Escalate) {
                // a new cost ticket or escalation: someone must act on it
                let draft = &a.close.draft;
                let estimate = draft
                    .cost
                    .as_ref()
                    .map(|c| (c.estimated, c.currency.as_str()));
                if let Some(n) = keeptrusts_core::notify::of_refusal(
                    &rid,
                    principal,
                    &a.body,
                    draft.model.as_deref(),
                    estimate,
                ) {
                    app.notifier.send(&n);
                }
            }
            let receipt = app.commit(a.close);
            app.metrics
                .record(&team, a.verdict.as_str(), started.elapsed());
            if !app.released(receipt).await {
                return withheld(&rid);
            }
            let mut resp = with_headers(json_response(a.status, &rid, &a.body), &a.rate_headers);
            if a.verdict == Verdict::Ticket {
                if let Some(id) = a.body.pointer("/error/ticket_id").and_then(|v| v.as_str()) {
                    resp.extensions_mut().insert(hold::TicketOf(id.to_owned()));
                }
            }
            return resp;
        }
        Err(e) => {
            return match e {
                keeptrusts_core::RequestError::Invalid(_) => {
                    app.refuse(Some(principal), None, &rid, 400, e.code(), &e.to_string())
                }
                keeptrusts_core::RequestError::Store(_) => {
                    // the store that would keep the event is what failed
                    tracing::warn!(request_id = %rid, "the store failed during evaluation: {e}");
                    error(503, e.code(), &e.to_string(), &rid)
                }
            };
        }
    };
    // from here until the answer is on its way, a client that goes away (hyper then drops this
    // future) must not leave the request unclosed: the guard closes it (released before any
    // call, settled at its bound while a provider works on it)
    let mut unfinished = Unfinished {
        app: Arc::clone(&app),
        exchange: Some(exchange),
    };
    let mut last_err = String::from("no provider target serves this model");
    loop {
        let Some(x) = unfinished.exchange.as_mut() else {
            return finished_twice(&rid);
        };
        let Some(call) = x.next_call() else {
            let a = x.exhausted(&last_err);
            unfinished.exchange = None;
            let receipt = app.commit(a.close);
            app.metrics
                .record(&team, "upstream_error", started.elapsed());
            if !app.released(receipt).await {
                return withheld(&rid);
            }
            return with_headers(json_response(a.status, &rid, &a.body), &a.rate_headers);
        };
        let Some(target) = app.router.target(call.target).cloned() else {
            x.failed();
            continue;
        };
        let t0 = Instant::now();
        let stream = x.is_stream();
        let result = if api == Api::Embeddings {
            call_embeddings(&app, &target, &call.request, &inbound.original)
                .await
                .map(Upstream::Embeddings)
        } else if stream {
            call_stream(&app, &target, &call.request)
                .await
                .map(Upstream::Stream)
        } else {
            call_json(&app, &target, &call.request)
                .await
                .map(Upstream::Json)
        };
        tracing::debug!(request_id = %rid, upstream_us = t0.elapsed().as_micros() as u64, "upstream");
        let Some(x) = unfinished.exchange.as_mut() else {
            return finished_twice(&rid);
        };
        match result {
            Ok(up) => {
                app.router.record_success(
                    call.target,
                    u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX),
                    ctx.now_ms,
                );
                let mut answer = match up {
                    Upstream::Json(Ok(resp)) => x.answer(&resp),
                    Upstream::Json(Err(b)) | Upstream::Embeddings(Err(b)) => {
                        x.broken_as(b.code, &b.message)
                    }
                    Upstream::Embeddings(Ok(vectors)) => {
                        // settled on the provider's input tokens: an embedding has no output
                        let usage = api::embeddings::prompt_tokens(&vectors).map(
                            |p| serde_json::json!({"prompt_tokens": p, "completion_tokens": 0}),
                        );
                        let mut resp = ChatResponse::default();
                        if let Some(u) = usage {
                            resp.extra.insert("usage".into(), u);
                        }
                        let mut a = x.answer(&resp);
                        if a.status == 200 {
                            let settled = a.close.draft.tokens.unwrap_or_default().prompt_tokens;
                            let inputs = api::embeddings::inputs(&call.request).len();
                            match api::embeddings::answer(&vectors, &target.model, inputs, settled)
                            {
                                Ok(body) => a.body = body,
                                Err(e) => {
                                    a.status = 502;
                                    a.body = error_envelope(502, "upstream_error", &e, &rid);
                                }
                            }
                        }
                        a
                    }
                    Upstream::Stream(rx) => {
                        let Some(x) = unfinished.exchange.take() else {
                            return finished_twice(&rid);
                        };
                        let encoder = api.encoder(inbound, &rid, &target.model);
                        return finish_stream(Arc::clone(&app), x, rx, rid, encoder);
                    }
                };
                unfinished.exchange = None;
                let headers = answer.headers();
                let rate_headers = std::mem::take(&mut answer.rate_headers);
                let receipt = app.commit(answer.close);
                app.metrics
                    .record(&team, answer.verdict.as_str(), started.elapsed());
                if !app.released(receipt).await {
                    return withheld(&rid);
                }
                let body = if answer.status == 200 {
                    api.render(answer.body, inbound, &rid)
                } else {
                    answer.body
                };
                let mut resp = json_response(answer.status, &rid, &body);
                for (name, value) in headers {
                    resp.headers_mut()
                        .insert(name, HeaderValue::from_static(value));
                }
                return with_headers(resp, &rate_headers);
            }
            Err(e) => {
                app.router.record_failure(call.target, ctx.now_ms);
                tracing::warn!(request_id = %rid, target = %target.id, "upstream failed: {e}");
                x.failed();
                last_err = e;
            }
        }
    }
}

/// A forwarded request not yet answered; dropped with its exchange (the client went away), it
/// closes it.
struct Unfinished {
    app: Arc<App>,
    exchange: Option<Box<Exchange>>,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(c) = self.exchange.as_mut().and_then(|x| x.abandon()) {
            self.app.commit(c);
        }
    }
}

/// What a provider call returned once its status was 2xx.
enum Upstream {
    /// A whole answer, or why it could not be read (the provider may have billed it).
    Json(Result<ChatResponse, Broken>),
    Stream(mpsc::Receiver<Result<Vec<Delta>, String>>),
    /// An embeddings answer (its vectors and usage), or why it could not be read.
    Embeddings(Result<serde_json::Value, Broken>),
}

impl App {
    /// Answers a request refused before its lifecycle began, logs it, and records its event
    /// (within the per-minute bound; beyond it, counted in a summary event).
    pub(crate) fn refuse(
        &self,
        principal: Option<&Principal>,
        key_hint: Option<String>,
        rid: &str,
        status: u16,
        code: &str,
        message: &str,
    ) -> Response<GwBody> {
        tracing::info!(request_id = %rid, status, code, team = principal.and_then(|p| p.team.as_deref()).unwrap_or("-"), "refused");
        let now = backend::now_ms();
        self.refusal_event(status, now, || {
            let mut draft = EventDraft::refused(principal, rid, status, code, now);
            draft.key_hint = key_hint;
            draft
        });
        error(status, code, message, rid)
    }

    /// Records the event of a refusal made inside the lifecycle but bounded like those before it
    /// (a 429): its own event within [`REFUSAL_EVENTS_PER_MINUTE`] per status, beyond that
    /// counted in the minute's summary event. The draft is made only when it is recorded (a
    /// flood of refusals costs no event beyond the bound).
    fn refusal_event(
        &self,
        status: u16,
        now: keeptrusts_core::time::Millis,
        draft: impl FnOnce() -> EventDraft,
    ) {
        let admitted = match self.refusals.lock() {
            Ok(mut l) => l.admit(&self.org, status, now),
            Err(_) => keeptrusts_core::event::Admitted {
                record: true,
                summary: None,
            },
        };
        if let Some(summary) = admitted.summary {
            self.commit(Closing::event(summary));
        }
        if admitted.record {
            let mut draft = draft();
            draft.org.clone_from(&self.org);
            self.commit(Closing::event(draft));
        }
    }

    /// Whether the answer of a closing queued with `receipt` may leave: at once when relaxed;
    /// when durable, once the write-behind committed it (false after [`COMMIT_TIMEOUT`]: the
    /// store is not taking writes, and the answer is withheld).
    async fn released(&self, receipt: u64) -> bool {
        if self.durability == Durability::Relaxed {
            return true;
        }
        let started = Instant::now();
        let mut rx = self.committed.clone();
        let ok = matches!(
            tokio::time::timeout(COMMIT_TIMEOUT, rx.wait_for(|c| *c >= receipt)).await,
            Ok(Ok(_))
        );
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.metrics.commit_waits.fetch_add(1, Ordering::Relaxed);
        self.metrics.commit_wait_us.fetch_add(us, Ordering::Relaxed);
        if !ok {
            self.metrics.withheld.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                receipt,
                "an answer is withheld: its settlement and event were not committed in time"
            );
        }
        ok
    }

    /// Writes the summaries of refusals still counted (at shutdown).
    fn flush_refusals(&self) {
        let pending = match self.refusals.lock() {
            Ok(mut l) => l.flush(&self.org),
            Err(_) => Vec::new(),
        };
        for d in pending {
            self.commit(Closing::event(d));
        }
    }

    /// Queues a closing; returns the receipt its answer waits for ([`App::released`]).
    fn commit(&self, c: Closing) -> u64 {
        // the rate-limit counters: the token reservation replaced by what was settled
        if let Some(rate) = &self.rate {
            if let Err(e) = c.correct_rate(rate.as_ref()) {
                tracing::error!(request_id = %c.draft.request_id, "the rate-limit tokens were not corrected: {e}");
            }
        }
        if let Some(t) = &c.restore_ticket {
            if let Err(e) = keeptrusts_core::TicketStore::restore(&self.inline, t) {
                tracing::error!(ticket = %t, "the ticket's approval was not given back: {e}");
            }
        }
        let rid = c.draft.request_id.clone();
        let team = c.draft.team.clone().unwrap_or_else(|| "-".into());
        if c.draft.cost.as_ref().is_some_and(|k| k.overrun) {
            self.metrics.overruns.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(request_id = %rid, "the provider billed more than was reserved (overrun)");
        }
        let actual = c.actual;
        match self.write_behind.complete(
            c.lease.as_deref(),
            c.actual,
            backend::now_ms(),
            Some(c.draft),
        ) {
            Ok(_) => {
                if let Some(a) = actual {
                    self.metrics.spend(&team, a);
                }
            }
            Err(e) => tracing::error!(request_id = %rid, "the request's closing was refused: {e}"),
        }
        self.write_behind.receipt()
    }
}

impl App {
    pub(crate) fn store(&self) -> &Arc<dyn Storage> {
        &self.store
    }

    pub(crate) fn write_behind(&self) -> &Arc<keeptrusts_store::WriteBehind> {
        &self.write_behind
    }

    pub(crate) fn max_body(&self) -> usize {
        self.max_body
    }

    pub(crate) fn client_timeout(&self) -> Duration {
        self.client_timeout
    }

    pub(crate) fn org(&self) -> &str {
        &self.org
    }

    /// The pack's webhooks.
    pub(crate) fn notifier(&self) -> &notify::Notifier {
        &self.notifier
    }
}
