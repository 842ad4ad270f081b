//! The engine: a compiled pack that evaluates requests and responses.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::decision::{
    error_type, AuditStamp, Decision, DecisionDiagnostic, ErrorInfo, Phase, PolicyResult, Verdict,
};
use crate::error::{Diagnostic, PackError, RequestError, Severity, StoreError};
use crate::escalation::EscalationStore;
use crate::identity::Principal;
use crate::pack::spec::{FailMode, KindOptions, PackSpec, PolicyKind};
use crate::pack::{self, merge_options, ParsedPack};
use crate::policy::{Inputs, Outcome, Policy, PolicyFailure};
use crate::pricing::Usage;
use crate::ratelimit::{RateCounters, RateLimits};
use crate::request::{ChatRequest, ChatResponse};
use crate::targeting::{EffectiveChain, Targeting};
use crate::time::Millis;
use crate::wallet::budget::{self, Budget, BudgetConfig, Charge, ChargeCtx};
use crate::wallet::ticket::TicketStore;
use crate::wallet::{Settlement, WalletError, WalletStore};

/// Per-request facts the host supplies: an id, the time, and replay headers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestContext {
    /// Unique request id (the host's, or the client's `X-Request-Id`).
    pub request_id: String,
    /// Now, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub now_ms: Millis,
    /// `X-Keeptrusts-Escalation-Id`, when the client re-sends an escalated request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_id: Option<String>,
    /// `X-Keeptrusts-Ticket-Id`, when the client re-sends a ticketed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
}

impl RequestContext {
    /// A context with an id and a time.
    pub fn new(request_id: &str, now_ms: Millis) -> Self {
        RequestContext {
            request_id: request_id.to_owned(),
            now_ms,
            ..Default::default()
        }
    }
}

/// The stores an evaluation may read and write.
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    /// Escalations (`human-oversight`).
    pub escalations: &'a dyn EscalationStore,
    /// Wallets and cost tickets. When present, every request the chain lets through is
    /// estimated and reserved (`docs/wallets.md`); when absent, no budget is enforced.
    pub budget: Option<Budget<'a>>,
    /// Rate-limit counters and the API key the request came with. When present, the pack's
    /// rate limits are enforced by the lifecycle (`docs/rate-limits.md`); when absent, none are.
    pub rate: Option<RateLimiting<'a>>,
}

/// The counters the pack's rate limits are kept in, and the request's key.
#[derive(Clone, Copy)]
pub struct RateLimiting<'a> {
    /// Where the counters are (memory for one process, the store for several).
    pub counters: &'a dyn RateCounters,
    /// The API key's stable identity (per-key limits apply only with one).
    pub key: Option<&'a str>,
}

impl<'a> Stores<'a> {
    /// Stores without budget enforcement.
    pub fn new(escalations: &'a dyn EscalationStore) -> Self {
        Stores {
            escalations,
            budget: None,
            rate: None,
        }
    }

    /// Enforces the pack's rate limits with these counters, for the API key `key`.
    pub fn with_rate_limits(
        mut self,
        counters: &'a dyn RateCounters,
        key: Option<&'a str>,
    ) -> Self {
        self.rate = Some(RateLimiting { counters, key });
        self
    }

    /// Everything in one store (a host's): escalations, and wallets and tickets when `budget`.
    pub fn of(store: &'a dyn crate::Storage, budget: bool) -> Self {
        let stores = Stores::new(store);
        if budget {
            stores.with_budget(store, store)
        } else {
            stores
        }
    }

    /// Enforces budgets with these wallet and ticket stores.
    pub fn with_budget(
        mut self,
        wallets: &'a dyn WalletStore,
        tickets: &'a dyn TicketStore,
    ) -> Self {
        self.budget = Some(Budget { wallets, tickets });
        self
    }
}

#[derive(Debug)]
struct Entry {
    kind: PolicyKind,
    policy: Box<dyn Policy>,
    fail_mode: FailMode,
}

#[derive(Debug)]
struct Inner {
    spec: PackSpec,
    warnings: Vec<Diagnostic>,
    enabled: bool,
    entries: Vec<Entry>,
    targeting: Targeting,
    budget: BudgetConfig,
    rate: RateLimits,
}

/// A compiled, immutable pack. Cheap to clone (`Arc`), `Send + Sync`: share one per pack.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// Options for [`Engine::compile_with`].
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Key for the `hash` marker format's digest. Hosts should pass a secret; when absent a key
    /// derived from the pack name is used, which keeps markers stable but guessable.
    pub redaction_key: Option<[u8; 32]>,
}

impl Engine {
    /// Parses, validates and compiles a YAML pack.
    ///
    /// # Errors
    /// Every validation error of the pack (see [`pack::parse`]); nothing is half-loaded.
    pub fn from_yaml(src: &str) -> Result<Engine, PackError> {
        Engine::compile(pack::parse(src)?).map_err(|mut e| {
            pack::locate(src, &mut e);
            e
        })
    }

    /// Compiles a validated pack.
    ///
    /// # Errors
    /// A policy whose options cannot be compiled (an invalid custom regex, …) as `E003`, at line
    /// 0: the spec carries no positions; [`pack::locate`] gives the error the line and column of
    /// its chain entry in the source ([`Engine::from_yaml`] does).
    pub fn compile(parsed: ParsedPack) -> Result<Engine, PackError> {
        Engine::compile_with(parsed, &EngineOptions::default())
    }

    /// Compiles a validated pack with options.
    ///
    /// # Errors
    /// As [`Engine::compile`].
    pub fn compile_with(parsed: ParsedPack, options: &EngineOptions) -> Result<Engine, PackError> {
        let ParsedPack { spec, warnings } = parsed;
        let key = options.redaction_key.unwrap_or_else(|| {
            let mut h = Sha256::new();
            h.update(b"keeptrusts-redaction-key:");
            h.update(spec.pack.name.as_bytes());
            h.finalize().into()
        });
        let mut entries = Vec::with_capacity(spec.policies.chain.len());
        let mut errors = Vec::new();
        for (i, e) in spec.policies.chain.iter().enumerate() {
            let merged = merge_options(spec.policy.get(e.kind), e.options.clone());
            let fail = FailMode::or_closed(merged.as_ref().and_then(KindOptions::fail_mode));
            let compiled = e.kind.compile(merged.as_ref(), &key);
            match compiled {
                Ok(policy) => entries.push(Entry {
                    kind: e.kind,
                    policy,
                    fail_mode: fail,
                }),
                Err(msg) => errors.push(Diagnostic::new(
                    "E003",
                    Severity::Error,
                    &format!("policies.chain[{i}]"),
                    crate::pack::yaml::Mark::default(),
                    format!("`{}` cannot be compiled: {msg}", e.kind),
                )),
            }
        }
        if !errors.is_empty() {
            return Err(PackError { errors, warnings });
        }
        let targeting = Targeting::new(&spec.policies.chain);
        Ok(Engine {
            inner: Arc::new(Inner {
                budget: BudgetConfig::new(&spec),
                rate: RateLimits::new(&spec),
                enabled: spec.pack.enabled.unwrap_or(true),
                spec,
                warnings,
                entries,
                targeting,
            }),
        })
    }

    /// The validated spec this engine was compiled from.
    pub fn spec(&self) -> &PackSpec {
        &self.inner.spec
    }

    /// Validation warnings.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.inner.warnings
    }

    /// Team slugs named by targeting lists, in first-mention order.
    pub fn named_teams(&self) -> Vec<String> {
        self.inner.targeting.named_teams()
    }

    /// Consumer groups named by targeting lists, in first-mention order.
    pub fn named_groups(&self) -> Vec<String> {
        self.inner.targeting.named_groups()
    }

    /// The rate limits compiled from the pack.
    pub fn rate_limits(&self) -> &RateLimits {
        &self.inner.rate
    }

    /// The budget settings compiled from the pack.
    pub(crate) fn budget_config(&self) -> &BudgetConfig {
        &self.inner.budget
    }

    /// The pack's `wallets.queue`: how long an over-budget request may be held open
    /// ([`crate::wallet::queue`]); `None` when it holds none.
    pub fn queue(&self) -> Option<crate::wallet::queue::QueueConfig> {
        self.inner.budget.queue()
    }

    /// The principal's wallets in the pack's cascade order (what a held request waits on).
    pub fn wallet_cascade(&self, principal: &Principal) -> Vec<crate::wallet::WalletKey> {
        self.inner.budget.cascade(principal)
    }

    /// Whether the principal's `rbac` (if its chain has one) lets it use `model`
    /// (`rbac.allowed_models`); the lifecycle asks this of every routing candidate, so a
    /// fallback never runs a model the role may not use.
    pub fn model_allowed(&self, principal: &Principal, model: &str) -> bool {
        if !self.inner.enabled {
            return true;
        }
        let chain = self.effective_chain(principal);
        chain.entries.iter().all(|&i| {
            self.inner
                .entries
                .get(i)
                .is_none_or(|e| e.policy.allows_model(principal, model))
        })
    }

    /// The effective chain for `principal` (cached per team, user and consumer group).
    pub fn effective_chain(&self, principal: &Principal) -> Arc<EffectiveChain> {
        self.inner.targeting.resolve(principal)
    }

    fn audit_of(&self, chain: &EffectiveChain) -> Option<AuditStamp> {
        chain
            .entries
            .iter()
            .find_map(|i| self.inner.entries.get(*i)?.policy.audit())
    }

    /// Evaluates a request before it is sent to a provider (the input phase).
    ///
    /// Runs the principal's effective chain in order; a `block` stops it. The decision's verdict is
    /// the highest-precedence one (block > escalate > ticket > redact > allow); redactions carry
    /// forward, so later policies see the rewritten text.
    ///
    /// # Errors
    /// `RequestError::Invalid` if the request has no messages. Failures inside one policy are not
    /// errors: they become diagnostics and block (or pass, with `fail_mode: open`).
    pub fn evaluate(
        &self,
        principal: &Principal,
        request: &ChatRequest,
        ctx: &RequestContext,
        stores: &Stores<'_>,
    ) -> Result<Decision, RequestError> {
        self.evaluate_bounded(principal, request, ctx, stores, None)
    }

    /// [`Engine::evaluate`], reserving `bound` instead of the estimate of the request's model
    /// (the lifecycle prices every routing candidate and reserves the largest).
    pub(crate) fn evaluate_bounded(
        &self,
        principal: &Principal,
        request: &ChatRequest,
        ctx: &RequestContext,
        stores: &Stores<'_>,
        bound: Option<&crate::pricing::Estimate>,
    ) -> Result<Decision, RequestError> {
        if request.messages.is_empty() {
            return Err(RequestError::Invalid("`messages` must not be empty".into()));
        }
        let chain = self.effective_chain(principal);
        let mut working: Cow<'_, ChatRequest> = Cow::Borrowed(request);
        let mut run = Run::new(Phase::Input, &chain, self.audit_of(&chain));
        if self.inner.enabled {
            let inputs = Inputs {
                principal,
                request_id: &ctx.request_id,
                escalation_id: ctx.escalation_id.as_deref(),
                now: ctx.now_ms,
                store: stores.escalations,
            };
            for &i in &chain.entries {
                let Some(entry) = self.inner.entries.get(i) else {
                    continue;
                };
                let Some(outcome) = entry.policy.input(&mut working, &inputs) else {
                    continue;
                };
                if run.record(entry, outcome) {
                    break;
                }
            }
        }
        let forwards = run.forwards();
        let consume = run.consume.take();
        let mut d = run.finish(&ctx.request_id);
        if let (true, Some(b)) = (forwards, &stores.budget) {
            let charge = budget::charge(
                &self.inner.budget,
                b,
                &ChargeCtx {
                    principal,
                    request: &working,
                    request_id: &ctx.request_id,
                    ticket_id: ctx.ticket_id.as_deref(),
                    now: ctx.now_ms,
                    estimate: bound,
                },
            )?;
            match charge {
                Charge::Reserved(lease, estimate, ticket) => {
                    d.reservation = Some(lease);
                    d.estimate = Some(estimate);
                    d.ticket_id = ticket;
                }
                Charge::Ticket(id, estimate) => {
                    d.estimate = Some(estimate);
                    d.deny(&ctx.request_id, Verdict::Ticket, 402, "budget_exceeded", "no wallet in the cascade can cover the estimated cost; the request is queued as a cost ticket".into());
                    if let Some(e) = d.error.as_mut() {
                        e.ticket_id = Some(id.clone());
                    }
                    d.ticket_id = Some(id);
                }
                Charge::Refused(status, code, message) => {
                    d.deny(&ctx.request_id, Verdict::Block, status, code, message)
                }
            }
        }
        // The request goes through: now use up the approval it came with, atomically. If another
        // request used it first, this one is refused and its reservation given back.
        if let (true, Some((id, fingerprint))) = (d.forwards(), consume) {
            let granted = stores.escalations.redeem(
                &id,
                &fingerprint,
                principal.team.as_deref(),
                ctx.now_ms,
            )?;
            if granted != crate::escalation::Redeem::Granted {
                if let (Some(lease), Some(b)) = (d.reservation.take(), &stores.budget) {
                    b.wallets
                        .release(&lease.id, ctx.now_ms)
                        .map_err(|e| RequestError::Store(StoreError::Corrupt(e.to_string())))?;
                    if let Some(t) = d.ticket_id.take() {
                        b.tickets.restore(&t)?;
                    }
                }
                d.deny(
                    &ctx.request_id,
                    Verdict::Escalate,
                    409,
                    "escalation_used",
                    "the escalation approval was already used by another request".into(),
                );
            }
        }
        d.request = owned(working);
        Ok(d)
    }

    /// Settles a reservation with the provider's usage, at the price recorded on the lease.
    /// Idempotent: settling a lease twice charges once.
    ///
    /// # Errors
    /// `UnknownLease`, `Overflow`, or a store failure; nothing is charged then.
    pub fn settle(
        &self,
        wallets: &dyn WalletStore,
        lease_id: &str,
        usage: &Usage,
        now_ms: Millis,
    ) -> Result<Settlement, WalletError> {
        let lease = wallets
            .lease(lease_id)?
            .ok_or_else(|| WalletError::UnknownLease(lease_id.to_owned()))?;
        let actual = budget::actual_cost(&lease, usage)?;
        wallets.settle(lease_id, actual, now_ms)
    }

    /// A filter for a streamed response (the output phase of SSE): the principal's output
    /// detectors as [`StreamRedactor`](crate::redact::StreamRedactor)s in chain order. Feed it
    /// the text deltas; it returns the text that is safe to send.
    pub fn output_filter(&self, principal: &Principal) -> OutputFilter<'static> {
        let chain = self.effective_chain(principal);
        let mut stages = Vec::new();
        if self.inner.enabled {
            for &i in &chain.entries {
                if let Some(entry) = self.inner.entries.get(i) {
                    if let Some((blocks, detector, redactor)) = entry.policy.stream() {
                        stages.push((
                            entry.kind,
                            blocks,
                            crate::redact::StreamRedactor::shared(detector, redactor),
                        ));
                    }
                }
            }
        }
        OutputFilter { stages }
    }

    /// Evaluates a provider response (the output phase): detectors whose `apply_to` covers
    /// output redact or block every governed text of it (see [`Field`](crate::request::Field):
    /// content, refusals, tool-call arguments, audio transcripts); when one applies, the
    /// choices' `logprobs` are dropped and [`Decision::dropped`] says so.
    ///
    /// # Errors
    /// None at present; the `Result` leaves room for response validation.
    pub fn evaluate_output(
        &self,
        principal: &Principal,
        response: &ChatResponse,
        ctx: &RequestContext,
    ) -> Result<Decision, RequestError> {
        let chain = self.effective_chain(principal);
        let mut working: Cow<'_, ChatResponse> = Cow::Borrowed(response);
        let mut run = Run::new(Phase::Output, &chain, self.audit_of(&chain));
        let mut detected = false;
        if self.inner.enabled {
            for &i in &chain.entries {
                let Some(entry) = self.inner.entries.get(i) else {
                    continue;
                };
                let Some(outcome) = entry.policy.output(&mut working) else {
                    continue;
                };
                detected = true;
                let outcome = Ok(outcome);
                if run.record(entry, outcome) {
                    break;
                }
            }
        }
        // logprobs repeat the answer token by token and list alternatives: no redaction can be
        // made in them, so an answer an output detector governs goes without them
        let drop_logprobs = detected && working.has_logprobs();
        if drop_logprobs {
            working.to_mut().drop_logprobs();
        }
        let mut d = run.finish(&ctx.request_id);
        if drop_logprobs {
            d.dropped.push("logprobs".to_owned());
        }
        d.response = owned(working);
        Ok(d)
    }
}

/// The rewritten value, if any policy rewrote it.
fn owned<T: Clone>(working: Cow<'_, T>) -> Option<T> {
    match working {
        Cow::Owned(v) => Some(v),
        Cow::Borrowed(_) => None,
    }
}

/// Accumulates policy outcomes into a decision.
struct Run {
    phase: Phase,
    chain: Vec<PolicyKind>,
    audit: Option<AuditStamp>,
    results: Vec<PolicyResult>,
    diagnostics: Vec<DecisionDiagnostic>,
    /// The deciding outcome so far (highest precedence, first of its level).
    top: Option<(PolicyKind, Outcome)>,
    escalation_id: Option<String>,
    /// An approved escalation (id, fingerprint) to consume if the request goes through.
    consume: Option<(String, String)>,
}

impl Run {
    fn new(phase: Phase, chain: &EffectiveChain, audit: Option<AuditStamp>) -> Self {
        Run {
            phase,
            chain: chain.kinds.clone(),
            audit,
            results: Vec::with_capacity(chain.kinds.len()),
            diagnostics: Vec::new(),
            top: None,
            escalation_id: None,
            consume: None,
        }
    }

    /// Whether the policies so far let the request through.
    fn forwards(&self) -> bool {
        self.top
            .as_ref()
            .is_none_or(|(_, o)| matches!(o.verdict, Verdict::Allow | Verdict::Redact))
    }

    /// Records one policy's outcome; returns true when the chain must stop (block).
    fn record(&mut self, entry: &Entry, outcome: Result<Outcome, PolicyFailure>) -> bool {
        let outcome = match outcome {
            Ok(o) => o,
            Err(f) => {
                self.diagnostics.push(DecisionDiagnostic {
                    kind: entry.kind,
                    code: f.code.to_owned(),
                    message: f.message,
                });
                match entry.fail_mode {
                    FailMode::Open => Outcome::allow(),
                    FailMode::Closed => Outcome::deny(
                        Verdict::Block,
                        409,
                        "policy_blocked",
                        "policy_error",
                        format!("{} failed and fails closed", entry.kind),
                    ),
                }
            }
        };
        if let Some(id) = &outcome.escalation_id {
            self.escalation_id = Some(id.clone());
            if let Some(fp) = &outcome.consume {
                self.consume = Some((id.clone(), fp.clone()));
            }
        }
        self.results.push(PolicyResult {
            kind: entry.kind,
            verdict: outcome.verdict,
            reason: outcome.reason.clone(),
            entities: outcome.entities.clone(),
        });
        let stop = outcome.verdict == Verdict::Block;
        let replace = self
            .top
            .as_ref()
            .is_none_or(|(_, t)| outcome.verdict > t.verdict);
        if replace {
            self.top = Some((entry.kind, outcome));
        }
        stop
    }

    fn finish(self, request_id: &str) -> Decision {
        let (kind, top) = match self.top {
            Some((k, o)) => (Some(k), o),
            None => (None, Outcome::allow()),
        };
        let error = top.code.map(|code| ErrorInfo {
            kind: error_type(top.status).to_owned(),
            code: code.to_owned(),
            message: top
                .message
                .clone()
                .unwrap_or_else(|| code.replace('_', " ")),
            policy: kind,
            request_id: request_id.to_owned(),
            escalation_id: top.escalation_id.clone(),
            ticket_id: None,
        });
        Decision {
            phase: self.phase,
            verdict: top.verdict,
            status: top.status,
            reason: top.reason,
            error,
            chain: self.chain,
            results: self.results,
            request: None,
            response: None,
            escalation_id: self.escalation_id,
            ticket_id: None,
            reservation: None,
            estimate: None,
            audit: self.audit,
            diagnostics: self.diagnostics,
            dropped: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn engine_is_send_sync() {
        assert_send_sync::<Engine>();
    }
}

/// Streaming output filter; see [`Engine::output_filter`].
#[derive(Debug)]
pub struct OutputFilter<'e> {
    stages: Vec<(PolicyKind, bool, crate::redact::StreamRedactor<'e>)>,
}

impl OutputFilter<'_> {
    /// Whether any output detector applies (if not, text passes through unchanged).
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Feeds a text delta; returns what is safe to send now.
    ///
    /// # Errors
    /// The policy whose `action: block` found sensitive data: stop the stream.
    pub fn push(&mut self, text: &str) -> Result<String, PolicyKind> {
        self.run(text, false)
    }

    /// Ends the stream; returns the rest.
    ///
    /// # Errors
    /// As [`OutputFilter::push`].
    pub fn finish(&mut self) -> Result<String, PolicyKind> {
        self.run("", true)
    }

    fn run(&mut self, text: &str, last: bool) -> Result<String, PolicyKind> {
        let mut carry = text.to_owned();
        let n = self.stages.len();
        for k in 0..n {
            let Some((kind, blocks, stage)) = self.stages.get_mut(k) else {
                continue;
            };
            let mut out = stage.push(&carry);
            if last {
                out.push_str(&stage.finish());
            }
            if *blocks && stage.redacted() {
                return Err(*kind);
            }
            carry = out;
        }
        Ok(carry)
    }
}
