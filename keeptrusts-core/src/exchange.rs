//! One request's lifecycle, sans I/O: what to reserve, which target to call with which exact
//! body, which usage counts, and the settlement and event that close it (`docs/lifecycle.md`, `docs/wallets.md`).
//!
//! An [`Exchange`] is made by [`Exchange::begin`] from the authenticated principal and the raw
//! request. It routes (every candidate priced and rbac-checked for its own model), runs the input
//! chain, and reserves an upper bound of the bill: the largest of the candidates' bounds. The host
//! then asks [`Exchange::next_call`] for a target and the exact request to send it, reports what
//! happened ([`Exchange::failed`], [`Exchange::answer`], or a stream through a [`Relay`] and
//! [`Exchange::finish_stream`]), and writes the [`Closing`] it gets back. The host moves bytes and
//! keeps clocks and stores; every rule is here, so the gateway and the middlewares cannot drift
//! apart.
//!
//! Rules:
//! - the forwarded body carries an output limit (`max_tokens`, `max_completion_tokens` for OpenAI,
//!   Anthropic's `max_tokens`) no larger than the output the reservation covers, injected when the
//!   client sent none; a provider that honours it cannot bill more than was reserved;
//! - a JSON answer settles on its `usage`; a stream on the provider's usage chunk (always asked
//!   for); an answer without usable usage settles the candidate's whole bound, never 0;
//! - usage above the bound is charged as billed and the event says `overrun`;
//! - a fallback is priced at the model that answered;
//! - a call that failed before the provider answered is not charged; once the answer has started
//!   (or the client left while the provider was working) the provider may bill, so the closing
//!   settles;
//! - exactly one [`Closing`] (one settlement or release, one event) per exchange, whatever happens.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::decision::{Decision, Verdict};
use crate::engine::{Engine, RequestContext, Stores};
use crate::error::RequestError;
use crate::event::{Closing, EventDraft};
use crate::identity::Principal;
use crate::pack::spec::ProviderKind;
use crate::pricing::{self, Estimate, Price, Usage};
use crate::ratelimit::{Limited, RateCharge, RateDecision, RateHeaders, Subject};
use crate::request::{ChatRequest, ChatResponse};
use crate::routing::Router;
use crate::time::Millis;
use crate::wallet::budget::DEFAULT_ORG;

mod refusal;
mod relay;

use refusal::{rate_limited, refusal};

pub use relay::{Delta, Relay};

/// A target the request may be sent to, priced for this request.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The target's index in the router.
    pub target: usize,
    /// The target's id.
    pub target_id: String,
    /// Its provider kind (decides the output-limit field).
    pub provider: ProviderKind,
    /// The model it runs.
    pub model: String,
    /// Output tokens per choice the forwarded body allows.
    pub output_limit: u32,
    /// The bound of this request on this target (when budgets are enforced).
    pub estimate: Option<Estimate>,
}

/// What the host answers the client, and what it writes to close the request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The JSON body (a chat completion, or the error envelope).
    pub body: serde_json::Value,
    /// The final verdict (for metrics).
    pub verdict: Verdict,
    /// The settlement or release and the event.
    pub close: Closing,
    /// Fields removed from the answer because no redaction can be made in them
    /// ([`Decision::dropped`]); the host says so with [`Answer::headers`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// Rate-limit headers for this answer (`Retry-After` on a 429, `X-RateLimit-*` when the pack
    /// asks for them); the host adds them as they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_headers: Vec<(&'static str, String)>,
}

/// The response header that tells the client its answer's `logprobs` were dropped (value
/// `true`): an output detector governed the answer, and logprobs repeat it token by token.
pub const LOGPROBS_DROPPED_HEADER: &str = "x-keeptrusts-logprobs-dropped";

/// The headers that say which fields were dropped from an answer.
fn dropped_headers(dropped: &[String]) -> Vec<(&'static str, &'static str)> {
    if dropped.iter().any(|f| f == "logprobs") {
        vec![(LOGPROBS_DROPPED_HEADER, "true")]
    } else {
        Vec::new()
    }
}

impl Answer {
    /// The response headers the host adds to this answer: [`LOGPROBS_DROPPED_HEADER`] when the
    /// answer's `logprobs` were dropped.
    pub fn headers(&self) -> Vec<(&'static str, &'static str)> {
        dropped_headers(&self.dropped)
    }
}

/// One call the host makes.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The router index of the target.
    pub target: usize,
    /// The request to send (the governed request, for this target's model, with its limits).
    pub request: ChatRequest,
}

/// How a stream ended, as the host saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The provider finished the stream.
    Complete,
    /// The provider's stream broke (a message for the client).
    Broken(String),
    /// An output detector with `action: block` stopped it (the kind's name).
    Blocked(String),
    /// The client went away.
    ClientGone,
}

impl StreamEnd {
    /// The end a binding names: `complete`, `broken` (with the message for the client) or
    /// `client_gone`.
    pub fn named(name: &str, message: &str) -> Option<StreamEnd> {
        match name {
            "complete" => Some(StreamEnd::Complete),
            "broken" => Some(StreamEnd::Broken(message.to_owned())),
            "client_gone" => Some(StreamEnd::ClientGone),
            _ => None,
        }
    }
}

/// What finishing a stream sends and writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamClose {
    /// The usage chunk to send, when the client asked for one (`stream_options.include_usage`).
    pub usage: Option<Usage>,
    /// The error event to send instead of the end (code, message, status).
    pub error: Option<(String, String, u16)>,
    /// The final verdict (for metrics).
    pub verdict: Verdict,
    /// The settlement and the event.
    pub close: Closing,
}

/// What [`Exchange::begin`] decided.
#[derive(Debug)]
pub enum Begin {
    /// Forward: call the targets the exchange names.
    Forward(Box<Exchange>),
    /// Refused before any provider call: answer this and write its closing.
    Answer(Box<Answer>),
}

/// One request in flight; see the module documentation.
#[derive(Debug)]
pub struct Exchange {
    /// The engine (an `Arc`: the exchange can move to another task or thread).
    engine: Engine,
    principal: Principal,
    request_id: String,
    now: Millis,
    decision: Decision,
    request: ChatRequest,
    candidates: Vec<Candidate>,
    next: usize,
    current: Option<usize>,
    stream: bool,
    client_usage: bool,
    /// Candidates come from a router (each runs its own model); otherwise the host answers.
    routed: bool,
    closed: bool,
    /// The stream relay of a host that passes chunks ([`Exchange::push_chunk`]).
    relay: Option<Relay>,
    /// The output detector that blocked that stream.
    blocked: Option<String>,
    /// The tokens counted against rate limits, corrected at the closing.
    rate: Option<RateCharge>,
    /// The `X-RateLimit-*` headers of the answer.
    rate_headers: Vec<(&'static str, String)>,
}

/// What `GET /v1/models` lists for `principal`: the models its consumer group (or, without one,
/// the pack's targets) serve that its role may use (`rbac.allowed_models`).
///
/// # Errors
/// The principal names a consumer group that does not exist or its team may not use.
pub fn models<'a>(
    engine: &Engine,
    router: &'a Router,
    principal: &Principal,
) -> Result<Vec<&'a str>, crate::routing::RouteError> {
    let mut out = router.models(principal)?;
    out.retain(|m| engine.model_allowed(principal, m));
    Ok(out)
}

/// The provider's usage in an answer's `usage` object, when it is usable: both token counts
/// present as whole numbers (OpenAI's `prompt_tokens`/`completion_tokens`, or Anthropic's
/// `input_tokens`/`output_tokens`).
pub fn usage_of(v: &serde_json::Value) -> Option<Usage> {
    let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    match (n("prompt_tokens"), n("completion_tokens")) {
        (Some(p), Some(c)) => Some(Usage {
            prompt_tokens: p,
            completion_tokens: c,
        }),
        _ => Some(Usage {
            prompt_tokens: n("input_tokens")?,
            completion_tokens: n("output_tokens")?,
        }),
    }
}

impl Exchange {
    /// Routes, runs the input chain and reserves. `router`: the targets to choose from, or `None`
    /// when the host answers the request itself (a middleware in front of an app): then the one
    /// candidate is the model asked for, priced by the pack. `stores` are those of
    /// [`Engine::evaluate`]: with a budget, the reservation is the largest bound over the
    /// candidates.
    ///
    /// # Errors
    /// `RequestError::Invalid` for a request that cannot be evaluated (no messages), or a store
    /// failure; nothing is reserved then.
    pub fn begin(
        engine: &Engine,
        router: Option<&Router>,
        principal: &Principal,
        request: &ChatRequest,
        ctx: &RequestContext,
        stores: &Stores<'_>,
    ) -> Result<Begin, RequestError> {
        let rid = ctx.request_id.as_str();
        let model = request.model.as_deref();
        if request.messages.is_empty() {
            return Err(RequestError::Invalid("`messages` must not be empty".into()));
        }
        // (router index, target id, provider, model, the target's own price)
        type Route = (usize, String, ProviderKind, String, Option<Price>);
        let route: Vec<Route> = match router {
            Some(router) => match router.route(principal, request, ctx.now_ms) {
                Ok(r) => r
                    .candidates
                    .iter()
                    .filter_map(|&i| {
                        let t = router.target(i)?;
                        Some((i, t.id.clone(), t.provider, t.model.clone(), t.price))
                    })
                    .collect(),
                Err(e) => {
                    return Ok(Begin::Answer(Box::new(refusal(
                        principal,
                        rid,
                        model,
                        ctx.now_ms,
                        e.status(),
                        e.code(),
                        e.to_string(),
                    ))))
                }
            },
            // the host is the provider (a middleware in front of an app): the model asked for
            None => vec![(
                0,
                "host".to_owned(),
                ProviderKind::OpenaiCompatible,
                model.unwrap_or_default().to_owned(),
                None,
            )],
        };
        let routed = router.is_some();
        let budgeted = stores.budget.is_some();
        let default_max = engine.budget_config().default_max_output_tokens();
        let limits = engine.rate_limits();
        let rate = stores.rate.filter(|_| !limits.is_empty());
        // the largest token bound over the candidates: what rate limits count
        let mut rate_tokens = 0u64;
        let mut candidates = Vec::with_capacity(route.len());
        let mut excluded = None;
        for (i, target_id, provider, target_model, own_price) in route {
            // the chain checks the model asked for; a routed candidate is checked for its own
            if routed && !engine.model_allowed(principal, &target_model) {
                excluded.get_or_insert((403, "rbac_denied", target_model));
                continue;
            }
            let limit_of = pricing::listed(&target_model).map(|l| l.max_output_tokens);
            let priced = match own_price {
                Some(p) => Some((p, limit_of)),
                None => engine.budget_config().price(&target_model),
            };
            let limit = pricing::output_limit(request, priced.and_then(|p| p.1), default_max);
            let estimate = priced.and_then(|(price, l)| {
                let input_tokens = pricing::input_tokens_on(request, &target_model);
                let output_tokens = pricing::estimate_output_tokens(request, l, default_max);
                price
                    .cost(input_tokens, output_tokens)
                    .map(|amount| Estimate {
                        price,
                        input_tokens,
                        output_tokens,
                        amount,
                    })
            });
            if budgeted && estimate.is_none() {
                excluded.get_or_insert((400, "model_price_unknown", target_model));
                continue;
            }
            if rate.is_some() {
                let tokens = match &estimate {
                    Some(e) => e.input_tokens.saturating_add(e.output_tokens),
                    None => pricing::input_tokens_on(request, &target_model)
                        .saturating_add(u64::from(limit).saturating_mul(pricing::choices(request))),
                };
                rate_tokens = rate_tokens.max(tokens);
            }
            candidates.push(Candidate {
                target: i,
                target_id,
                provider,
                model: target_model,
                output_limit: limit,
                estimate,
            });
        }
        // one currency per reservation: the first candidate's
        if let Some(cur) = candidates
            .first()
            .and_then(|c| c.estimate.as_ref())
            .map(|e| e.price.currency)
        {
            candidates.retain(|c| c.estimate.as_ref().is_none_or(|e| e.price.currency == cur));
        }
        let Some(first) = candidates.first() else {
            // nothing may serve it: the chain still speaks first (an unauthenticated caller is
            // 401, whatever it asked for), and the budget step refuses an unpriced model itself
            let (status, code, excluded_model) =
                excluded.unwrap_or((503, "no_target_available", String::new()));
            let mut working = request.clone();
            if routed && principal.consumer_group.is_some() && !excluded_model.is_empty() {
                working.model = Some(excluded_model.clone());
            }
            let d = engine.evaluate_bounded(principal, &working, ctx, stores, None)?;
            if !d.forwards() {
                return Ok(Begin::Answer(Box::new(Self::refused(
                    principal, rid, &working, ctx, d,
                ))));
            }
            if let (Some(l), Some(b)) = (&d.reservation, &stores.budget) {
                b.wallets.release(&l.id, ctx.now_ms).map_err(|e| {
                    RequestError::Store(crate::error::StoreError::Corrupt(e.to_string()))
                })?;
            }
            let message = match code {
                "rbac_denied" => format!(
                    "role {} may not use the model `{excluded_model}`",
                    principal.role.map_or("(none)", |r| r.as_str())
                ),
                "model_price_unknown" => format!(
                    "the model `{excluded_model}` has no known price: add `pricing` to its target in the pack"
                ),
                _ => "no provider target can serve this request".to_owned(),
            };
            return Ok(Begin::Answer(Box::new(refusal(
                principal, rid, model, ctx.now_ms, status, code, message,
            ))));
        };
        // rate limits, before the chain: a request over a limit reserves nothing, creates no
        // ticket or escalation, and is answered 429
        let (rate_charge, rate_headers) = match rate {
            None => (None, Vec::new()),
            Some(r) => {
                let subject = Subject {
                    org: principal.org.as_deref().unwrap_or(DEFAULT_ORG),
                    key: r.key,
                    team: principal.team.as_deref(),
                    consumer_group: principal.consumer_group.as_deref(),
                };
                match limits.check(r.counters, &subject, rate_tokens, ctx.now_ms)? {
                    RateDecision::Unlimited => (None, Vec::new()),
                    RateDecision::Admitted { headers, charge } => {
                        (charge, headers.map(|h| h.pairs()).unwrap_or_default())
                    }
                    RateDecision::Limited { limited, headers } => {
                        return Ok(Begin::Answer(Box::new(rate_limited(
                            principal, rid, model, ctx.now_ms, &limited, headers,
                        ))));
                    }
                }
            }
        };
        // a consumer group runs the chain (rbac's model check) on the model that will run
        let mut working = Cow::Borrowed(request);
        if routed && principal.consumer_group.is_some() {
            working.to_mut().model = Some(first.model.clone());
        }
        let bound = candidates
            .iter()
            .filter_map(|c| c.estimate.as_ref())
            .max_by(|a, b| a.amount.cmp(&b.amount))
            .cloned();
        let decision =
            match engine.evaluate_bounded(principal, &working, ctx, stores, bound.as_ref()) {
                Ok(d) => d,
                Err(e) => {
                    // nothing will be served: the counted tokens go back
                    if let (Some(r), Some(charge)) = (rate, &rate_charge) {
                        let _ = r.counters.adjust(&charge.corrections(0));
                    }
                    return Err(e);
                }
            };
        if !decision.forwards() {
            let mut a = Self::refused(principal, rid, &working, ctx, decision);
            // refused after counting: its tokens are corrected to 0 with the closing
            a.close.rate = rate_charge;
            a.rate_headers = rate_headers;
            return Ok(Begin::Answer(Box::new(a)));
        }
        // the governed request lives here from now on (what `next_call` sends)
        let mut decision = decision;
        let effective = match decision.request.take() {
            Some(redacted) => redacted,
            None => working.into_owned(),
        };
        let stream = effective
            .extra
            .get("stream")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let client_usage = effective
            .extra
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        Ok(Begin::Forward(Box::new(Exchange {
            engine: engine.clone(),
            principal: principal.clone(),
            request_id: rid.to_owned(),
            now: ctx.now_ms,
            decision,
            request: effective,
            candidates,
            next: 0,
            current: None,
            stream,
            client_usage,
            routed,
            closed: false,
            relay: None,
            blocked: None,
            rate: rate_charge,
            rate_headers,
        })))
    }

    /// The answer and closing of a request the chain or the budget refused.
    fn refused(
        principal: &Principal,
        rid: &str,
        working: &ChatRequest,
        ctx: &RequestContext,
        decision: Decision,
    ) -> Answer {
        let draft = EventDraft::from_decision(
            principal,
            &decision,
            rid,
            working.model.as_deref(),
            ctx.now_ms,
        );
        Answer {
            status: decision.status,
            body: decision.error_body().unwrap_or_default(),
            verdict: decision.verdict,
            close: Closing {
                lease: None,
                actual: None,
                draft,
                restore_ticket: None,
                rate: None,
            },
            dropped: Vec::new(),
            rate_headers: Vec::new(),
        }
    }

    /// The rate-limit headers of this request's answer (`X-RateLimit-*`, when the pack asks
    /// for them): a host that streams sends them with the stream's headers.
    pub fn rate_headers(&self) -> &[(&'static str, String)] {
        &self.rate_headers
    }

    /// Whether the client asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.stream
    }

    /// The response headers of a streamed answer, known before it starts:
    /// [`LOGPROBS_DROPPED_HEADER`] when the client asked for `logprobs` (a relay passes each
    /// choice's text, refusal, tool calls and finish, never logprobs: they cannot be redacted).
    pub fn stream_headers(&self) -> Vec<(&'static str, &'static str)> {
        let asked = self
            .request
            .extra
            .get("logprobs")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        if asked {
            dropped_headers(&["logprobs".to_owned()])
        } else {
            Vec::new()
        }
    }

    /// The input decision (verdict, policy results, reservation, estimate); the governed
    /// request itself is what [`Exchange::next_call`] sends.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// The candidates, in the order they are tried.
    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    /// The candidate being called (after [`Exchange::next_call`]).
    pub fn current(&self) -> Option<&Candidate> {
        self.current.and_then(|i| self.candidates.get(i))
    }

    /// The request id.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The next target to call and the exact request to send it; `None` when every candidate
    /// was tried (then [`Exchange::exhausted`]).
    pub fn next_call(&mut self) -> Option<Call> {
        if self.closed {
            return None;
        }
        let c = self.candidates.get(self.next)?;
        self.current = Some(self.next);
        self.next += 1;
        Some(Call {
            target: c.target,
            request: self.forwarded(c),
        })
    }

    /// The governed request as sent to candidate `c`: its model, an output limit no larger than
    /// the reservation covers, and a stream that reports usage.
    fn forwarded(&self, c: &Candidate) -> ChatRequest {
        let mut r = self.request.clone();
        if self.routed {
            r.model = Some(c.model.clone());
        }
        if self.decision.reservation.is_some() {
            Self::limit_output(&mut r, c);
        }
        if self.stream {
            r.extra
                .insert("stream".into(), serde_json::Value::Bool(true));
            r.extra.insert(
                "stream_options".into(),
                serde_json::json!({"include_usage": true}),
            );
        }
        r
    }

    /// Caps the output the body allows at what the reservation covers (nothing is reserved
    /// without a budget, and then the body's limits stay the client's).
    fn limit_output(r: &mut ChatRequest, c: &Candidate) {
        let limit = c.output_limit;
        let had_completion_limit = r.extra.contains_key("max_completion_tokens");
        if had_completion_limit {
            r.extra
                .insert("max_completion_tokens".into(), serde_json::json!(limit));
        }
        if r.max_tokens.is_some() {
            r.max_tokens = Some(limit);
        } else if !had_completion_limit {
            match c.provider {
                // OpenAI's reasoning models refuse `max_tokens`; every chat model takes this
                ProviderKind::Openai | ProviderKind::Azure => {
                    r.extra
                        .insert("max_completion_tokens".into(), serde_json::json!(limit));
                }
                _ => r.max_tokens = Some(limit),
            }
        }
    }

    /// The call to the current candidate failed before the provider answered (refused, an error
    /// status, unreachable): nothing is charged for it; the next candidate may be tried.
    pub fn failed(&mut self) {
        self.current = None;
    }

    /// Every candidate failed: 502, the reservation released, the event written.
    pub fn exhausted(&mut self, message: &str) -> Answer {
        let close = self.close(None, Some((502, "upstream_error")));
        Answer {
            status: 502,
            body: crate::decision::error_envelope(
                502,
                "upstream_error",
                &format!("every provider target failed: {message}"),
                &self.request_id,
            ),
            verdict: self.decision.verdict,
            close,
            dropped: Vec::new(),
            rate_headers: std::mem::take(&mut self.rate_headers),
        }
    }

    /// The current candidate answered with a whole chat completion: the output chain runs, the
    /// answer's usage is settled (its whole bound when it has none).
    pub fn answer(&mut self, response: &ChatResponse) -> Answer {
        let usage = response.extra.get("usage").and_then(usage_of);
        let ctx = RequestContext::new(&self.request_id, self.now);
        let out = self.engine.evaluate_output(&self.principal, response, &ctx);
        let mut dropped = Vec::new();
        let (status, body, verdict) = match out {
            Ok(d) if d.forwards() => {
                let verdict = self.decision.verdict.max(d.verdict);
                let r = d.response.as_ref().unwrap_or(response);
                dropped.clone_from(&d.dropped);
                (200, serde_json::to_value(r).unwrap_or_default(), verdict)
            }
            Ok(d) => (d.status, d.error_body().unwrap_or_default(), d.verdict),
            Err(e) => (
                500,
                crate::decision::error_envelope(
                    500,
                    "internal_error",
                    &e.to_string(),
                    &self.request_id,
                ),
                self.decision.verdict,
            ),
        };
        let code = (status != 200).then_some((status, "policy_blocked"));
        let mut close = self.close(Some(usage), code);
        close.draft.verdict = verdict;
        Answer {
            status,
            body,
            verdict,
            close,
            dropped,
            rate_headers: std::mem::take(&mut self.rate_headers),
        }
    }

    /// The current candidate answered 2xx but its answer could not be read (not JSON, cut
    /// off): 502 for the client, and the whole bound settled (the provider may bill it).
    pub fn broken(&mut self, message: &str) -> Answer {
        self.broken_as("upstream_error", message)
    }

    /// As [`Exchange::broken`], with a code of the host's naming the cause
    /// (`upstream_too_large`, …).
    pub fn broken_as(&mut self, code: &str, message: &str) -> Answer {
        let close = self.close(Some(None), Some((502, code)));
        Answer {
            status: 502,
            body: crate::decision::error_envelope(502, code, message, &self.request_id),
            verdict: self.decision.verdict,
            close,
            dropped: Vec::new(),
            rate_headers: std::mem::take(&mut self.rate_headers),
        }
    }

    /// The output filter for the current candidate's stream.
    pub fn relay(&self) -> Relay {
        Relay::new(&self.engine, &self.principal)
    }

    /// The current candidate's stream ended: what to send last, and the closing (settled on the
    /// stream's usage chunk, [`Relay::usage`], or on the whole bound when it had none).
    pub fn finish_stream(&mut self, usage: Option<Usage>, end: StreamEnd) -> StreamClose {
        let (error, verdict) = match &end {
            StreamEnd::Complete | StreamEnd::ClientGone => (None, self.decision.verdict),
            StreamEnd::Broken(m) => (
                Some(("upstream_error".to_owned(), m.clone(), 502)),
                self.decision.verdict,
            ),
            StreamEnd::Blocked(kind) => (
                Some((
                    "policy_blocked".to_owned(),
                    format!("{kind} found sensitive data in the response and blocks it"),
                    409,
                )),
                Verdict::Block,
            ),
        };
        let status = match (&end, &error) {
            (StreamEnd::ClientGone, _) => Some((499, "client_closed")),
            (_, Some((code, _, s))) => Some((
                *s,
                if code == "upstream_error" {
                    "upstream_error"
                } else {
                    "policy_blocked"
                },
            )),
            _ => None,
        };
        let mut close = self.close(Some(usage), status);
        close.draft.verdict = verdict;
        let send_usage = self.client_usage && error.is_none() && end == StreamEnd::Complete;
        StreamClose {
            usage: if send_usage {
                Some(close.draft.tokens.unwrap_or_default())
            } else {
                None
            },
            error,
            verdict,
            close,
        }
    }

    /// For hosts that pass the provider's (or an app's) OpenAI chunks along, as middlewares do:
    /// one chunk through the output filter; returns the chunks to send now. After an output
    /// detector blocked the stream, nothing more is sent: finish it with
    /// [`Exchange::finish_chunks`].
    pub fn push_chunk(&mut self, chunk: &serde_json::Value) -> Vec<serde_json::Value> {
        if self.blocked.is_some() || self.closed {
            return Vec::new();
        }
        let relay = match &mut self.relay {
            Some(r) => r,
            None => self.relay.insert(Relay::new(&self.engine, &self.principal)),
        };
        match relay.push_chunk(chunk) {
            Ok(out) => out,
            Err(kind) => {
                self.blocked = Some(kind);
                Vec::new()
            }
        }
    }

    /// Ends a stream fed with [`Exchange::push_chunk`]: the held-back text (redacted), the usage
    /// chunk when the client asked for one, or the error event; and the closing, settled on the
    /// stream's usage chunk.
    pub fn finish_chunks(&mut self, end: StreamEnd) -> (Vec<serde_json::Value>, StreamClose) {
        let mut relay = self
            .relay
            .take()
            .unwrap_or_else(|| Relay::new(&self.engine, &self.principal));
        let mut end = match self.blocked.take() {
            Some(kind) => StreamEnd::Blocked(kind),
            None => end,
        };
        let rest = match end {
            StreamEnd::Complete => relay.end_chunks(),
            StreamEnd::Broken(_) => relay
                .flush(None)
                .map(|ds| ds.iter().map(|d| relay.chunk_of(d)).collect()),
            _ => Ok(Vec::new()),
        };
        let mut chunks = match rest {
            Ok(c) => c,
            Err(kind) => {
                if end == StreamEnd::Complete {
                    end = StreamEnd::Blocked(kind);
                }
                Vec::new()
            }
        };
        let done = self.finish_stream(relay.usage(), end);
        match (&done.error, done.usage) {
            (Some((code, message, status)), _) => chunks.push(crate::decision::error_envelope(
                *status,
                code,
                message,
                &self.request_id,
            )),
            (None, Some(u)) => chunks.push(relay.chunk_of(&Delta::Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            })),
            (None, None) => {}
        }
        (chunks, done)
    }

    /// The client went away. While a provider call is under way it may bill: the whole bound of
    /// the current candidate is settled; before any call, the reservation is released. Either
    /// way a ticket's approval the request used stays redeemable (its client got no answer).
    /// `None` when the exchange was already closed.
    pub fn abandon(&mut self) -> Option<Closing> {
        if self.closed {
            return None;
        }
        let served = self.current.is_some().then_some(None);
        let mut close = self.close(served, Some((499, "client_closed")));
        // the client never got an answer: a ticket's approval stays redeemable
        close.restore_ticket = self.decision.ticket_id.clone();
        Some(close)
    }

    /// Whether the closing was produced.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The exchange's one closing. `served`: `None` = no provider answered (release); `Some(u)` =
    /// the current candidate answered, with usable usage `u` or none. `status`: the status and
    /// reason that override the decision's (an error after forwarding).
    fn close(&mut self, served: Option<Option<Usage>>, status: Option<(u16, &str)>) -> Closing {
        self.closed = true;
        let current = self.current.and_then(|i| self.candidates.get(i));
        let model = current
            .map(|c| c.model.clone())
            .or_else(|| self.request.model.clone());
        let mut draft = EventDraft::from_decision(
            &self.principal,
            &self.decision,
            &self.request_id,
            model.as_deref(),
            self.now,
        );
        if let Some((s, reason)) = status {
            draft.status = s;
            draft.reason = Some(reason.to_owned());
        }
        let lease = self
            .decision
            .reservation
            .as_ref()
            .map(|l| std::sync::Arc::clone(&l.id));
        let (Some(usage), Some(c)) = (served, current) else {
            // nothing billed: the reservation goes back, and so does a ticket's approval
            return Closing {
                lease,
                actual: None,
                draft,
                restore_ticket: self.decision.ticket_id.clone(),
                rate: self.rate.take(),
            };
        };
        let bound = c.estimate.as_ref();
        let metered = usage.is_some();
        let usage = usage.unwrap_or_else(|| Usage {
            prompt_tokens: bound.map_or(0, |e| e.input_tokens),
            completion_tokens: bound.map_or(0, |e| e.output_tokens),
        });
        let actual = match bound {
            // an impossible usage (overflow) is charged at the whole bound: never 0
            Some(e) if metered => Some(
                e.price
                    .cost(usage.prompt_tokens, usage.completion_tokens)
                    .unwrap_or(e.amount),
            ),
            Some(e) => Some(e.amount),
            None => None,
        };
        let reserved = self.decision.reservation.as_ref().map(|l| l.amount);
        let overrun = matches!((actual, reserved), (Some(a), Some(r)) if a > r);
        draft = draft.settled(
            Some(&c.target_id),
            usage,
            actual.filter(|_| lease.is_some()),
        );
        if let Some(cost) = draft.cost.as_mut() {
            cost.overrun = overrun;
            cost.unmetered = !metered;
        }
        Closing {
            lease,
            actual: actual.filter(|_| self.decision.reservation.is_some()),
            draft,
            restore_ticket: None,
            rate: self.rate.take(),
        }
    }
}
