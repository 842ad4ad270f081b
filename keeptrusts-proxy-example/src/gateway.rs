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
use keeptrusts_core::directory::{authenticate_key, ApiKey, Refused};
use keeptrusts_core::event::{Closing, EventDraft, RefusalLimiter};
use keeptrusts_core::exchange::{Begin, Delta, Exchange, StreamEnd};
use keeptrusts_core::pack::spec::ProviderKind;
use keeptrusts_core::pricing::Usage;
use keeptrusts_core::request::Content;
use keeptrusts_core::routing::{Router, RouterOptions, Target};
use keeptrusts_core::{
    ChatRequest, ChatResponse, Engine, MemoryRateCounters, Principal, RateCounters, RequestContext,
    Stores, Verdict,
};
use rust_decimal::Decimal;
use tokio::sync::mpsc;

use crate::anthropic;
use crate::api::{self, Api, Encoder};
use crate::backend::{self, Backend};

mod hold;
mod notify;

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
const BUCKETS_US: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 500_000, 2_000_000, 10_000_000,
];

#[derive(Default)]
struct Metrics {
    requests: Mutex<HashMap<(String, String), u64>>,
    spend: Mutex<HashMap<String, Decimal>>,
    buckets: [AtomicU64; 12],
    count: AtomicU64,
    sum_us: AtomicU64,
    /// Requests a provider billed above their reservation.
    overruns: AtomicU64,
    /// Answers that waited for their commit, and for how long in all.
    commit_waits: AtomicU64,
    commit_wait_us: AtomicU64,
    /// Answers withheld because their commit did not come in time.
    withheld: AtomicU64,
}

impl Metrics {
    fn record(&self, team: &str, verdict: &str, elapsed: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((team.to_owned(), verdict.to_owned())).or_default() += 1;
        }
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        for (b, limit) in self.buckets.iter().zip(BUCKETS_US) {
            if us <= limit {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    fn spend(&self, team: &str, amount: Decimal) {
        if let Ok(mut m) = self.spend.lock() {
            *m.entry(team.to_owned()).or_default() += amount;
        }
    }

    fn render(&self) -> String {
        let mut s = String::from(
            "# HELP keeptrusts_requests_total Requests by team and verdict.\n# TYPE keeptrusts_requests_total counter\n",
        );
        if let Ok(m) = self.requests.lock() {
            let mut rows: Vec<_> = m.iter().collect();
            rows.sort();
            for ((team, verdict), n) in rows {
                s.push_str(&format!(
                    "keeptrusts_requests_total{{team=\"{team}\",verdict=\"{verdict}\"}} {n}\n"
                ));
            }
        }
        s.push_str("# HELP keeptrusts_request_duration_seconds Gateway time per request.\n# TYPE keeptrusts_request_duration_seconds histogram\n");
        for (b, limit) in self.buckets.iter().zip(BUCKETS_US) {
            s.push_str(&format!(
                "keeptrusts_request_duration_seconds_bucket{{le=\"{}\"}} {}\n",
                f64::from(u32::try_from(limit).unwrap_or(u32::MAX)) / 1e6,
                b.load(Ordering::Relaxed)
            ));
        }
        let count = self.count.load(Ordering::Relaxed);
        s.push_str(&format!(
            "keeptrusts_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\nkeeptrusts_request_duration_seconds_sum {}\nkeeptrusts_request_duration_seconds_count {count}\n",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        ));
        s.push_str(&format!(
            "# HELP keeptrusts_overruns_total Requests a provider billed above their reservation.\n# TYPE keeptrusts_overruns_total counter\nkeeptrusts_overruns_total {}\n",
            self.overruns.load(Ordering::Relaxed)
        ));
        s.push_str(&format!(
            "# HELP keeptrusts_commit_wait_seconds Time durable answers waited for their settlement and event to be committed.\n# TYPE keeptrusts_commit_wait_seconds summary\nkeeptrusts_commit_wait_seconds_sum {}\nkeeptrusts_commit_wait_seconds_count {}\n# HELP keeptrusts_answers_withheld_total Durable answers withheld (503) because the store did not commit them in time.\n# TYPE keeptrusts_answers_withheld_total counter\nkeeptrusts_answers_withheld_total {}\n",
            self.commit_wait_us.load(Ordering::Relaxed) as f64 / 1e6,
            self.commit_waits.load(Ordering::Relaxed),
            self.withheld.load(Ordering::Relaxed)
        ));
        s.push_str("# HELP keeptrusts_spend_total Settled spend by team.\n# TYPE keeptrusts_spend_total counter\n");
        if let Ok(m) = self.spend.lock() {
            let mut rows: Vec<_> = m.iter().collect();
            rows.sort();
            for (team, amount) in rows {
                s.push_str(&format!(
                    "keeptrusts_spend_total{{team=\"{team}\"}} {amount}\n"
                ));
            }
        }
        s
    }
}

/// A key hash's principal, its rate-limit identity, and when it was looked up.
type CachedKey = (Principal, Arc<str>, Instant);

pub(crate) struct App {
    engine: Engine,
    router: Router,
    store: Arc<dyn Backend>,
    /// Reservations, settlements and events of requests: answered from memory, written behind.
    ledger: Arc<keeptrusts_store::WriteBehind>,
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
    /// How many of the ledger's queued items are committed (told by its writer).
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

/// A response body: whole, or a stream of SSE frames.
pub enum GwBody {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl Body for GwBody {
    type Data = Bytes;
    type Error = Infallible;

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            GwBody::Full(Some(b)) => hyper::body::SizeHint::with_exact(b.len() as u64),
            GwBody::Full(None) => hyper::body::SizeHint::with_exact(0),
            GwBody::Stream(_) => hyper::body::SizeHint::default(),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, GwBody::Full(None))
    }

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            GwBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            GwBody::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }
}

pub(crate) fn json_response(
    status: u16,
    request_id: &str,
    body: &serde_json::Value,
) -> Response<GwBody> {
    let mut r = Response::new(GwBody::Full(Some(Bytes::from(body.to_string()))));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        r.headers_mut().insert("x-request-id", v);
    }
    // a governance answer does not change on its own: tell the OpenAI SDKs (which retry 409 by
    // default) not to resend it; a retry must carry the escalation or ticket id instead. A 429
    // does change (its window ends): the SDKs retry it after `Retry-After`
    if (400..500).contains(&status) && status != 429 {
        r.headers_mut()
            .insert("x-should-retry", HeaderValue::from_static("false"));
    }
    r
}

pub(crate) fn error_type(status: u16) -> &'static str {
    match status {
        400 | 408 | 413 => "invalid_request_error",
        401 => "authentication_error",
        402 => "insufficient_quota",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "policy_error",
        429 => "rate_limit_error",
        _ => "api_error",
    }
}

/// The error envelope (`docs/gateway.md`) for errors the gateway itself raises.
pub(crate) fn error(status: u16, code: &str, message: &str, request_id: &str) -> Response<GwBody> {
    json_response(
        status,
        request_id,
        &serde_json::json!({"error": {
            "type": error_type(status), "code": code, "message": message, "request_id": request_id
        }}),
    )
}

/// The request's id: unguessable, and unique even when the client sends its own
/// `X-Request-Id` (then it is that id, a dot and a random suffix), so that no client can borrow
/// another's id or ride on a request in flight. `None`: the OS gave no randomness.
fn request_id(req: &Request<Incoming>) -> Option<String> {
    let given = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 96
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        });
    match given {
        Some(v) => keeptrusts_store::random_id(&format!("{v}.")).ok(),
        None => keeptrusts_store::random_id("req_").ok(),
    }
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
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

/// An error with its sources, for the log.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The bearer secret a request presents.
pub(crate) fn bearer(req: &Request<Incoming>) -> Option<&str> {
    let h = req.headers();
    h.get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        // the Anthropic SDKs send the key as `x-api-key`
        .or_else(|| h.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

/// Runs the gateway until Ctrl-C or SIGTERM. Exit status: 0 after a clean shutdown, 2 for a bad
/// pack or option, 1 if the address cannot be bound.
pub fn run(args: &RunArgs) -> u8 {
    limit_malloc_arenas();
    let src = match std::fs::read_to_string(&args.pack) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kt gateway: cannot read {}: {e}", args.pack.display());
            return 2;
        }
    };
    let parsed = match keeptrusts_core::pack::parse(&src) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kt gateway: {}: {e}", args.pack.display());
            return 2;
        }
    };
    let (router, warnings) = Router::new(
        &parsed.spec,
        &|name| std::env::var(name).ok(),
        RouterOptions::default(),
    );
    for w in &warnings {
        eprintln!("kt gateway: warning: {w}");
    }
    let engine = match Engine::compile(parsed) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("kt gateway: {}: {e}", args.pack.display());
            return 2;
        }
    };
    let notifier = match notify::Notifier::from_pack(engine.spec(), &args.org) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("kt gateway: {}: {e}", args.pack.display());
            return 2;
        }
    };
    let (store, ledger) = match backend::open_gateway(&args.store) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kt gateway: {e}");
            return 2;
        }
    };
    if let Some(mode) = args.bootstrap {
        match crate::bootstrap::run(store.as_ref(), &args.org, mode) {
            Ok(Some(made)) => eprintln!("{}", crate::bootstrap::report(&made)),
            Ok(None) => eprintln!(
                "kt gateway: --bootstrap: the store already has teams; nothing was created"
            ),
            Err(e) => {
                eprintln!("kt gateway: --bootstrap: {e}");
                return 2;
            }
        }
    }
    // a pack that targets a team the store does not know (a display name, a team never
    // created) silently skips that team's policies: say so at start
    match store.teams() {
        Ok(teams) => {
            let (warnings, fallback) = crate::policy_cmd::store_teams(&engine, &src, &teams);
            for w in &warnings {
                eprintln!("kt gateway: warning: {}: {w}", args.pack.display());
            }
            if !fallback.is_empty() {
                eprintln!(
                    "kt gateway: teams no pack entry targets (they get the default chain): {}",
                    fallback.join(", ")
                );
            }
        }
        Err(e) => eprintln!("kt gateway: warning: cannot list the store's teams: {e}"),
    }
    check_chain_tail(store.as_ref(), &args.org);
    // TLS to providers: rustls with the Mozilla roots (no OpenSSL); plain http:// for local
    // OpenAI-compatible servers
    let https = match hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
    {
        Ok(b) => b.https_or_http().enable_http1().build(),
        Err(e) => {
            eprintln!("kt gateway: cannot set up TLS: {e}");
            return 1;
        }
    };
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(https);
    let (committed_tx, committed_rx) = tokio::sync::watch::channel(0u64);
    ledger.on_commit(Box::new(move |c| {
        committed_tx.send_replace(c);
    }));
    let rate: Option<Arc<dyn RateCounters>> = if engine.rate_limits().is_empty() {
        None
    } else if args.store.starts_with("postgres://") || args.store.starts_with("postgresql://") {
        Some(Arc::new(backend::InlineRate(Arc::clone(&store))))
    } else {
        Some(Arc::new(MemoryRateCounters::new()))
    };
    let app = Arc::new(App {
        rate,
        engine,
        router,
        inline: backend::Inline(Arc::clone(&store)),
        store,
        ledger,
        org: args.org.clone(),
        keys: Mutex::new(HashMap::new()),
        refusals: Mutex::new(RefusalLimiter::new(REFUSAL_EVENTS_PER_MINUTE)),
        durability: args.durability,
        committed: committed_rx,
        metrics: Metrics::default(),
        holds: Arc::default(),
        notifier,
        max_body: args.max_body_bytes,
        upstream_timeout: Duration::from_secs(args.upstream_timeout),
        client_timeout: Duration::from_secs(args.client_timeout.max(1)),
        client,
    });
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kt gateway: cannot start the runtime: {e}");
            return 1;
        }
    };
    let status = rt.block_on(serve(Arc::clone(&app), args.listen));
    // the runtime first, then the store, outside it: the PostgreSQL client closes its
    // connections with a runtime of its own, which cannot run inside tokio's
    drop(rt);
    drop(app);
    status
}

/// Events the gateway checks at start (the newest of its org's chain).
const TAIL_CHECK: usize = 1_000;

/// Checks, at start, that the newest events of the org's chain are intact, linked, and end at
/// the head the store recorded (after a crash, or a store someone edited); says what it found.
/// The whole chain is `kt events verify`'s to check.
fn check_chain_tail(store: &dyn keeptrusts_core::event::EventStore, org: &str) {
    use keeptrusts_core::event::{verify_chain, VerifyOptions};
    let chain = match store.tail(org, TAIL_CHECK) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kt gateway: warning: cannot read the audit chain of org `{org}`: {e}");
            return;
        }
    };
    // pruning's retention is not known here: only the links and the head are checked
    let opts = VerifyOptions {
        now: backend::now_ms(),
        default_days: 0,
        expect_head: None,
    };
    match verify_chain(&chain, &opts) {
        Ok(v) => tracing::info!(
            org,
            checked = v.events,
            head = v
                .head
                .map_or_else(|| "none".to_owned(), |h| h.seq.to_string()),
            "the newest events of the audit chain end at the recorded head"
        ),
        Err(t) => eprintln!(
            "kt gateway: warning: the audit chain of org `{org}` is broken near its end: {t}; \
             run `kt events verify` (new events are chained after the recorded head)"
        ),
    }
}

/// glibc's malloc gives each thread that meets contention its own arena (up to 8 per core), and
/// the gateway's threads hand buffers to one another (the store writer frees what the workers
/// allocated), so the resident set grew by half (27 → 41 MB at 15,000 requests/s). glibc reads
/// its limit only at start-up, so the gateway starts itself again with `MALLOC_ARENA_MAX=2`,
/// unless the variable is already set (then the operator's value stands).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("MALLOC_ARENA_MAX", "2")
            .exec();
        // exec returns only when it failed: carry on with glibc's defaults
        tracing::debug!("could not restart with MALLOC_ARENA_MAX=2: {err}");
    }
}

async fn serve(app: Arc<App>, listen: SocketAddr) -> u8 {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("kt gateway: cannot listen on {listen}: {e}");
            return 1;
        }
    };
    let addr = listener.local_addr().map_or(listen, |a| a);
    // SIGTERM is caught from here on: a supervisor that stops the gateway as soon as it says it
    // listens gets a clean shutdown, not a kill
    let signals = Signals::install();
    eprintln!("kt gateway: console: http://{addr}/console");
    eprintln!("kt gateway: listening on http://{addr}");
    tracing::info!(%addr, "listening");
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let holds = Arc::clone(&app.holds);
    tokio::spawn(async move {
        signals.wait().await;
        let _ = stop_tx.send(true);
        // held requests answer 503 at once, with their ticket (they survive no restart)
        holds.stop();
    });
    let active = Arc::new(tokio::sync::Semaphore::new(PERMITS));
    notify::Notifier::start(&app);
    let watcher = Arc::clone(&app);
    tokio::spawn(async move {
        let mut ticks = 0u64;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            log_ledger_errors(&watcher);
            ticks += 1;
            // rate-limit windows that ended are forgotten once a minute
            if ticks.is_multiple_of(60) {
                if let Some(rate) = watcher.rate.clone() {
                    let pruned = blocking(move || rate.prune_windows(backend::now_ms())).await;
                    if let Some(Err(e)) = pruned {
                        tracing::warn!("rate-limit counters were not pruned: {e}");
                    }
                }
            }
        }
    });
    loop {
        tokio::select! {
            _ = stop_rx.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                let permit = Arc::clone(&active).acquire_owned().await;
                let mut stop = stop_rx.clone();
                let header_timeout = app.client_timeout;
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let app = Arc::clone(&app);
                        async move { Ok::<_, Infallible>(handle(app, req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(header_timeout)
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.changed() => {
                            // finish the request in flight, then close (idle keep-alive
                            // connections close at once)
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.as_mut().await;
                        }
                    }
                    drop(permit);
                });
            }
        }
    }
    eprintln!("kt gateway: shutting down, waiting for requests in flight");
    let deadline = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(deadline);
    loop {
        if active.available_permits() == PERMITS {
            break;
        }
        tokio::select! {
            _ = &mut deadline => break,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    // write what the ledger holds and give its floats back
    app.flush_refusals();
    let ledger = Arc::clone(&app.ledger);
    let closed = tokio::task::spawn_blocking(move || ledger.close()).await;
    log_ledger_errors(&app);
    match closed {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("kt gateway: the store did not take the last writes: {e}");
            1
        }
        Err(e) => {
            eprintln!("kt gateway: closing the store failed: {e}");
            1
        }
    }
}

/// Logs operations the ledger's writer had refused (none in normal operation), and what it did
/// on its own (the floats of a crashed gateway it released).
fn log_ledger_errors(app: &App) {
    for e in app.ledger.take_errors() {
        tracing::error!("store write refused: {e}");
    }
    for n in app.ledger.take_notices() {
        tracing::warn!("{n}");
    }
}

/// Ctrl-C and SIGTERM, registered before the gateway says it listens.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Signals {
        Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    async fn wait(self) {
        #[cfg(unix)]
        if let Some(mut term) = self.term {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
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
                app.ledger.queue_depth()
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
        _ if path.starts_with("/v1/") => crate::admin_api::handle(app, req, rid).await,
        _ if crate::console::serves(&path) => crate::console::handle(app, req, rid).await,
        _ => error(404, "not_found", &format!("no route for {path}"), &rid),
    }
}

/// Reads a body up to `limit` bytes: `Err(413)` above it, `Err(400)` if the connection fails.
/// The request body, at most `limit` bytes, within `timeout`: Err(413) when larger, Err(408)
/// when the client is too slow, Err(400) when the connection breaks.
pub async fn read_body(
    req: Request<Incoming>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, u16> {
    let limited = http_body_util::Limited::new(req.into_body(), limit);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(408),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(413),
        Ok(Err(_)) => Err(400),
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
    // on this worker: the reservation comes from the ledger's memory; the rare call that must
    // wait for the store (a first float, an escalation, a ticket) blocks in place
    let mut stores = Stores::new(&app.inline).with_budget(app.ledger.as_ref(), &app.inline);
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
                app.refusal_event(a.close.draft);
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
                                    a.body = api::envelope("upstream_error", &e, 502, &rid);
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

/// `resp` with the rate-limit headers of its answer.
fn with_headers(
    mut resp: Response<GwBody>,
    headers: &[(&'static str, String)],
) -> Response<GwBody> {
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.headers_mut().insert(*name, v);
        }
    }
    resp
}

/// A durable answer whose settlement and event the store did not commit in time.
fn withheld(rid: &str) -> Response<GwBody> {
    error(
        503,
        "audit_unavailable",
        "the answer is withheld: its settlement and audit event could not be written in time (they are written once the store is back)",
        rid,
    )
}

/// The answer to a request whose exchange was already closed (a bug: every path closes once).
fn finished_twice(rid: &str) -> Response<GwBody> {
    error(500, "internal_error", "the request was finished twice", rid)
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
    /// Writes a request's closing: its settlement or release and its event, behind; a used
    /// ticket approval is given back first when the request was not served.
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
            let mut draft = EventDraft::refused(principal, rid, status, code, now);
            draft.org.clone_from(&self.org);
            draft.key_hint = key_hint;
            self.commit(Closing::event(draft));
        }
        error(status, code, message, rid)
    }

    /// Records the event of a refusal made inside the lifecycle but bounded like those before it
    /// (a 429): its own event within [`REFUSAL_EVENTS_PER_MINUTE`] per status, beyond that
    /// counted in the minute's summary event.
    fn refusal_event(&self, mut draft: EventDraft) {
        let admitted = match self.refusals.lock() {
            Ok(mut l) => l.admit(&self.org, draft.status, draft.timestamp),
            Err(_) => keeptrusts_core::event::Admitted {
                record: true,
                summary: None,
            },
        };
        if let Some(summary) = admitted.summary {
            self.commit(Closing::event(summary));
        }
        if admitted.record {
            draft.org.clone_from(&self.org);
            self.commit(Closing::event(draft));
        }
    }

    /// Whether the answer of a closing queued with `receipt` may leave: at once when relaxed;
    /// when durable, once the ledger committed it (false after [`COMMIT_TIMEOUT`]: the store is
    /// not taking writes, and the answer is withheld).
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
        match self.ledger.complete(
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
        self.ledger.receipt()
    }
}

/// Tokens of the mock provider's answers: one per 4 bytes.
fn mock_tokens(bytes: usize) -> u64 {
    u64::try_from(bytes.div_ceil(4)).unwrap_or(u64::MAX)
}

/// What the mock provider answers.
struct MockReply {
    /// The answer's text (none when it calls a tool).
    text: String,
    /// A call of the request's first function tool: (call id, name, JSON arguments).
    call: Option<(String, String, String)>,
    usage: Usage,
}

/// The text of a message's content.
fn content_text(content: Option<&Content>) -> String {
    match content {
        Some(Content::Text(t)) => t.clone(),
        Some(Content::Parts(p)) => p
            .iter()
            .filter_map(|x| x.text.clone())
            .collect::<Vec<_>>()
            .join(" "),
        None => String::new(),
    }
}

/// The mock provider: answers with the (already governed) last user message, cut to the
/// forwarded output limit as a real provider would, and reports its usage. With `tools` (and a
/// `tool_choice` other than `none`) it first calls the first function tool with that message
/// as `{"text": …}`; once the conversation ends with the tool's result, it echoes the result.
fn mock_answer(r: &ChatRequest) -> MockReply {
    let last = r.messages.last();
    let said = r
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| content_text(m.content.as_ref()))
        .unwrap_or_default();
    let tool = r
        .extra
        .get("tools")
        .and_then(serde_json::Value::as_array)
        .and_then(|t| t.first())
        .and_then(|t| t.pointer("/function/name"))
        .and_then(serde_json::Value::as_str)
        .filter(|_| {
            r.extra
                .get("tool_choice")
                .and_then(serde_json::Value::as_str)
                != Some("none")
        });
    let prompt = serde_json::to_vec(&r.messages).map_or(0, |v| v.len());
    if let (Some(name), Some("user")) = (tool, last.map(|m| m.role.as_str())) {
        let arguments = serde_json::json!({"text": said}).to_string();
        return MockReply {
            text: String::new(),
            usage: Usage {
                prompt_tokens: mock_tokens(prompt),
                completion_tokens: mock_tokens(arguments.len()),
            },
            call: Some(("call_mock_0".to_owned(), name.to_owned(), arguments)),
        };
    }
    let mut text = match last {
        Some(m) if m.role == "tool" => format!("Echo: {}", content_text(m.content.as_ref())),
        _ => format!("Echo: {said}"),
    };
    let limit = r
        .max_tokens
        .map(u64::from)
        .or_else(|| {
            r.extra
                .get("max_completion_tokens")
                .and_then(serde_json::Value::as_u64)
        })
        .unwrap_or(u64::MAX);
    let max_bytes = usize::try_from(limit.saturating_mul(4)).unwrap_or(usize::MAX);
    if text.len() > max_bytes {
        let mut cut = max_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    MockReply {
        usage: Usage {
            prompt_tokens: mock_tokens(prompt),
            completion_tokens: mock_tokens(text.len()),
        },
        text,
        call: None,
    }
}

/// The most a provider's whole answer may weigh: beyond it the answer is refused (502
/// `upstream_too_large`) rather than buffered.
const UPSTREAM_MAX_BODY: usize = 16 << 20;
/// The longest SSE line a provider may send in a stream.
const UPSTREAM_MAX_LINE: usize = 1 << 20;

/// Why a 2xx answer could not be used: a code for the client and a message that names no URL.
struct Broken {
    code: &'static str,
    message: String,
}

impl Broken {
    fn new(message: impl Into<String>) -> Self {
        Broken {
            code: "upstream_error",
            message: message.into(),
        }
    }
}

/// Calls a target for a whole answer. `Err`: the call failed before a 2xx status (nothing was
/// billed); `Ok(Err)`: a 2xx whose body could not be read.
async fn call_json(
    app: &Arc<App>,
    target: &Target,
    r: &ChatRequest,
) -> Result<Result<ChatResponse, Broken>, String> {
    if target.provider == ProviderKind::Mock {
        let MockReply { text, call, usage } = mock_answer(r);
        let (message, finish) = match call {
            Some((id, name, arguments)) => (
                serde_json::json!({"role": "assistant", "content": null, "tool_calls": [{"id": id,
                    "type": "function", "function": {"name": name, "arguments": arguments}}]}),
                "tool_calls",
            ),
            None => (
                serde_json::json!({"role": "assistant", "content": text}),
                "stop",
            ),
        };
        let v = serde_json::json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": backend::now_ms() / 1000,
            "model": target.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                      "total_tokens": usage.prompt_tokens + usage.completion_tokens},
        });
        return Ok(serde_json::from_value(v).map_err(|e| Broken::new(e.to_string())));
    }
    let body = upstream_body(target, r, false)?;
    let resp = send(app, target, chat_path(target), body).await?;
    let bytes = match read_upstream(app, target, resp).await {
        Ok(b) => b,
        Err(b) => return Ok(Err(b)),
    };
    if target.provider == ProviderKind::Anthropic {
        return Ok(serde_json::from_slice::<serde_json::Value>(&bytes)
            .map_err(|e| format!("the provider answered with something that is not JSON: {e}"))
            .and_then(|v| anthropic::response_to_chat(&v, backend::now_ms() / 1000))
            .and_then(|chat| serde_json::from_value(chat).map_err(|e| e.to_string()))
            .map_err(Broken::new));
    }
    Ok(serde_json::from_slice(&bytes).map_err(|e| {
        Broken::new(format!(
            "the provider answered with something that is not a chat completion: {e}"
        ))
    }))
}

/// The body sent to a target: the exchange's request as is for OpenAI-style targets, translated
/// for Anthropic's Messages API (its `max_tokens` is the exchange's limit).
fn upstream_body(target: &Target, r: &ChatRequest, stream: bool) -> Result<Bytes, String> {
    if target.provider == ProviderKind::Anthropic {
        let v = serde_json::to_value(r).map_err(|e| e.to_string())?;
        let limit = r.max_tokens.unwrap_or(1024);
        let body = anthropic::request_body(&v, &target.model, stream, limit)?;
        return serde_json::to_vec(&body)
            .map(Bytes::from)
            .map_err(|e| e.to_string());
    }
    if !matches!(
        target.provider,
        ProviderKind::Openai | ProviderKind::OpenaiCompatible | ProviderKind::Azure
    ) {
        return Err(format!(
            "provider `{:?}` is not supported by this gateway build yet",
            target.provider
        ));
    }
    serde_json::to_vec(r)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

/// Calls a target's embeddings API with the governed inputs. `Err`: the call failed before a
/// 2xx status (nothing billed); `Ok(Err)`: a 2xx whose body could not be read.
async fn call_embeddings(
    app: &Arc<App>,
    target: &Target,
    r: &ChatRequest,
    original: &serde_json::Value,
) -> Result<Result<serde_json::Value, Broken>, String> {
    if target.provider == ProviderKind::Mock {
        let base64 = original
            .get("encoding_format")
            .and_then(serde_json::Value::as_str)
            == Some("base64");
        let dims = original
            .get("dimensions")
            .and_then(serde_json::Value::as_u64)
            .and_then(|d| usize::try_from(d).ok())
            .unwrap_or(8)
            .clamp(1, 4096);
        let inputs = api::embeddings::inputs(r);
        let tokens: u64 = inputs.iter().map(|t| mock_tokens(t.len())).sum();
        let data: Vec<serde_json::Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                serde_json::json!({"object": "embedding", "index": i,
                    "embedding": api::embeddings::encode(&api::embeddings::mock_vector(t, dims), base64)})
            })
            .collect();
        return Ok(Ok(
            serde_json::json!({"object": "list", "data": data, "model": target.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
        ));
    }
    if !matches!(
        target.provider,
        ProviderKind::Openai | ProviderKind::OpenaiCompatible | ProviderKind::Azure
    ) {
        return Err(format!(
            "target `{}` ({:?}) has no embeddings API",
            target.id, target.provider
        ));
    }
    let body = api::embeddings::upstream_body(r, original, &target.model);
    let resp = send(app, target, "embeddings", Bytes::from(body.to_string())).await?;
    Ok(read_json(app, target, resp).await)
}

/// A provider's whole 2xx answer as JSON, within [`UPSTREAM_MAX_BODY`] and the upstream
/// timeout.
async fn read_json(
    app: &Arc<App>,
    target: &Target,
    resp: Response<Incoming>,
) -> Result<serde_json::Value, Broken> {
    let bytes = read_upstream(app, target, resp).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Broken::new(format!(
            "the provider answered with something that is not JSON: {e}"
        ))
    })
}

/// A provider's whole 2xx answer, within [`UPSTREAM_MAX_BODY`] and the upstream timeout.
async fn read_upstream(
    app: &Arc<App>,
    target: &Target,
    resp: Response<Incoming>,
) -> Result<Bytes, Broken> {
    let limited = http_body_util::Limited::new(resp.into_body(), UPSTREAM_MAX_BODY);
    match tokio::time::timeout(app.upstream_timeout, limited.collect()).await {
        Err(_) => Err(Broken::new("the provider stopped sending")),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(Broken {
            code: "upstream_too_large",
            message: format!(
                "target `{}` answered with more than {UPSTREAM_MAX_BODY} bytes",
                target.id
            ),
        }),
        Ok(Err(_)) => Err(Broken::new("the provider's answer broke off")),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

/// Starts a streamed completion; once the provider's status is 2xx, the receiver yields the
/// deltas of each of its events (Err: the stream broke).
async fn call_stream(
    app: &Arc<App>,
    target: &Target,
    r: &ChatRequest,
) -> Result<mpsc::Receiver<Result<Vec<Delta>, String>>, String> {
    let (tx, rx) = mpsc::channel(64);
    if target.provider == ProviderKind::Mock {
        let MockReply { text, call, usage } = mock_answer(r);
        tokio::spawn(async move {
            let mut pieces: Vec<Delta> = text
                .split_inclusive(' ')
                .map(|piece| Delta::Text {
                    choice: 0,
                    text: piece.to_owned(),
                })
                .collect();
            let finish = if let Some((id, name, arguments)) = call {
                pieces.push(Delta::ToolCall {
                    choice: 0,
                    index: 0,
                    id: Some(id),
                    name: Some(name),
                    arguments: String::new(),
                });
                // the arguments in two pieces, as providers stream them
                let mut cut = arguments.len() / 2;
                while !arguments.is_char_boundary(cut) {
                    cut -= 1;
                }
                for a in [&arguments[..cut], &arguments[cut..]] {
                    pieces.push(Delta::ToolCall {
                        choice: 0,
                        index: 0,
                        id: None,
                        name: None,
                        arguments: a.to_owned(),
                    });
                }
                "tool_calls"
            } else {
                "stop"
            };
            for d in pieces {
                if tx.send(Ok(vec![d])).await.is_err() {
                    return;
                }
            }
            let end = vec![
                Delta::Finish {
                    choice: 0,
                    reason: finish.into(),
                },
                Delta::Usage {
                    prompt_tokens: usage.prompt_tokens,
                    completion_tokens: usage.completion_tokens,
                },
            ];
            let _ = tx.send(Ok(end)).await;
        });
        return Ok(rx);
    }
    // relay: SSE events are parsed as they arrive and their deltas passed on at once
    let body = upstream_body(target, r, true)?;
    let resp = send(app, target, chat_path(target), body).await?;
    let idle = app.upstream_timeout;
    let messages_api = target.provider == ProviderKind::Anthropic;
    tokio::spawn(async move {
        let mut body = resp.into_body();
        let mut pending: Vec<u8> = Vec::new();
        let mut seen_event = false;
        let mut messages = anthropic::StreamReader::default();
        loop {
            let frame = match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => {
                    let _ = tx.send(Err("the provider stopped sending".into())).await;
                    return;
                }
                // a stream that ends without `[DONE]` is complete if it carried any event
                // (some OpenAI-compatible servers omit the marker), broken if it carried none
                Ok(None) => {
                    if !seen_event {
                        let _ = tx
                            .send(Err("the provider closed the stream without an event".into()))
                            .await;
                    }
                    return;
                }
                Ok(Some(Err(e))) => {
                    let _ = tx.send(Err(format!("the stream broke: {e}"))).await;
                    return;
                }
                Ok(Some(Ok(f))) => f,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            if pending.len() > UPSTREAM_MAX_LINE && !pending.contains(&b'\n') {
                let _ = tx
                    .send(Err(format!(
                        "the provider sent a stream line longer than {UPSTREAM_MAX_LINE} bytes"
                    )))
                    .await;
                return;
            }
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line);
                let Some(event) = line.trim_end().strip_prefix("data:") else {
                    continue;
                };
                let event = event.trim();
                if event == "[DONE]" {
                    return;
                }
                seen_event = true;
                let Ok(v) = serde_json::from_str::<serde_json::Value>(event) else {
                    let _ = tx
                        .send(Err("the provider sent a malformed event".into()))
                        .await;
                    return;
                };
                let (deltas, stop) = if messages_api {
                    match messages.event(&v) {
                        Ok(x) => x,
                        Err(e) => {
                            let _ = tx
                                .send(Err(format!("the provider reported `{e}` mid-stream")))
                                .await;
                            return;
                        }
                    }
                } else {
                    (Delta::from_chunk(&v), false)
                };
                if !deltas.is_empty() && tx.send(Ok(deltas)).await.is_err() {
                    return;
                }
                if stop {
                    return;
                }
            }
        }
    });
    Ok(rx)
}

/// Streams the governed answer: each delta through the output detectors, written by the API's
/// encoder; the closing committed before the last frames leave.
fn finish_stream(
    app: Arc<App>,
    x: Box<Exchange>,
    mut deltas: mpsc::Receiver<Result<Vec<Delta>, String>>,
    rid: String,
    mut encoder: Box<dyn Encoder>,
) -> Response<GwBody> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let mut resp = Response::new(GwBody::Stream(rx));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    resp.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    for (name, value) in x.stream_headers() {
        resp.headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    let resp = with_headers(resp, x.rate_headers());
    // the guard closes the exchange if this task is dropped (the runtime shuts down)
    let mut unfinished = Unfinished {
        app: Arc::clone(&app),
        exchange: Some(x),
    };
    tokio::spawn(async move {
        let started = Instant::now();
        let Some(x) = unfinished.exchange.as_mut() else {
            return;
        };
        let mut relay = x.relay();
        let mut end = StreamEnd::Complete;
        'events: {
            for frame in encoder.open() {
                if tx.send(frame).await.is_err() {
                    end = StreamEnd::ClientGone;
                    break 'events;
                }
            }
            while let Some(d) = deltas.recv().await {
                match d {
                    Ok(ds) => {
                        for d in ds {
                            match relay.push(d) {
                                Ok(out) => {
                                    for frame in out.iter().flat_map(|o| encoder.delta(o)) {
                                        if tx.send(frame).await.is_err() {
                                            end = StreamEnd::ClientGone;
                                            break 'events;
                                        }
                                    }
                                }
                                Err(kind) => {
                                    end = StreamEnd::Blocked(kind);
                                    break 'events;
                                }
                            }
                        }
                    }
                    Err(e) => {
                        end = StreamEnd::Broken(e);
                        break 'events;
                    }
                }
            }
        }
        // the text held back for redaction was received: it is sent (redacted) before the end,
        // or before the error event when the provider's stream broke
        let rest = match end {
            StreamEnd::Complete => relay.end(),
            StreamEnd::Broken(_) => relay.flush(None),
            _ => Ok(Vec::new()),
        };
        match rest {
            Ok(out) => {
                for frame in out.iter().flat_map(|o| encoder.delta(o)) {
                    let _ = tx.send(frame).await;
                }
            }
            Err(kind) if end == StreamEnd::Complete => end = StreamEnd::Blocked(kind),
            Err(_) => {}
        }
        let usage = relay.usage();
        drop(relay);
        let done = x.finish_stream(usage, end);
        let team = done.close.draft.team.clone().unwrap_or_else(|| "-".into());
        let verdict = done.verdict;
        drop(unfinished.exchange.take());
        // the stream's last event leaves once its settlement and event are committed
        let receipt = app.commit(done.close);
        app.metrics
            .record(&team, verdict.as_str(), started.elapsed());
        let last = if app.released(receipt).await {
            let error = done
                .error
                .as_ref()
                .map(|(code, message, status)| (code.as_str(), message.as_str(), *status));
            encoder.close(done.usage, error)
        } else {
            encoder.withheld(
                "the answer's settlement and audit event could not be written in time; the stream is not complete",
            )
        };
        for frame in last {
            let _ = tx.send(frame).await;
        }
    });
    resp
}

/// The path of a target's chat API under its `base_url`.
fn chat_path(target: &Target) -> &'static str {
    if target.provider == ProviderKind::Anthropic {
        "messages"
    } else {
        "chat/completions"
    }
}

/// Sends a body to `path` under a target's `base_url`; returns the response once the headers
/// arrive.
async fn send(
    app: &Arc<App>,
    target: &Target,
    path: &str,
    body: Bytes,
) -> Result<Response<Incoming>, String> {
    let url = format!("{}/{path}", target.base_url.trim_end_matches('/'));
    // what the client reads names the target, never its URL or the connection's details (they
    // are in the log)
    let fail = |client: &str, detail: &dyn std::fmt::Display| {
        tracing::warn!(target = %target.id, %url, "upstream: {client}: {detail}");
        format!("target `{}`: {client}", target.id)
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(fail(
            "its URL does not start with http:// or https://",
            &"check the pack",
        ));
    }
    let mut req = Request::post(&url)
        .header(CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(body))
        .map_err(|e| e.to_string())?;
    if target.provider == ProviderKind::Anthropic {
        req.headers_mut().insert(
            "anthropic-version",
            HeaderValue::from_static(anthropic::VERSION),
        );
        if let Some(v) = target
            .secret
            .as_ref()
            .and_then(|s| HeaderValue::from_str(s).ok())
        {
            req.headers_mut().insert("x-api-key", v);
        }
    } else if let Some(s) = &target.secret {
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {s}")) {
            req.headers_mut().insert(AUTHORIZATION, v);
        }
    }
    let resp = tokio::time::timeout(app.upstream_timeout, app.client.request(req))
        .await
        .map_err(|_| fail("the provider did not answer in time", &"timeout"))?
        .map_err(|e| fail("the provider could not be reached", &error_chain(&e)))?;
    if !resp.status().is_success() {
        let status = resp.status();
        return Err(fail(&format!("the provider answered {status}"), &status));
    }
    Ok(resp)
}

impl App {
    pub(crate) fn store(&self) -> &Arc<dyn Backend> {
        &self.store
    }

    pub(crate) fn ledger(&self) -> &Arc<keeptrusts_store::WriteBehind> {
        &self.ledger
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
