//! The budget step of an evaluation: estimate the request's cost, reserve it on the first wallet
//! of the cascade that can pay, or open a cost ticket.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::ticket::{Ticket, TicketRedeem, TicketStatus, TicketStore};
use super::{
    Lease, ReserveOutcome, ReserveRequest, WalletError, WalletKey, WalletScope, WalletStore,
};
use crate::error::{RequestError, StoreError};
use crate::identity::Principal;
use crate::pack::spec::PackSpec;
use crate::pricing::{self, Currency, Estimate, Price};
use crate::request::ChatRequest;
use crate::time::Millis;

/// The wallet and ticket stores; when the host passes them, every forwarded request is budgeted.
#[derive(Clone, Copy)]
pub struct Budget<'a> {
    /// Wallets and leases.
    pub wallets: &'a dyn WalletStore,
    /// Cost tickets.
    pub tickets: &'a dyn TicketStore,
}

/// Budget settings compiled from the pack.
#[derive(Debug, Clone)]
pub(crate) struct BudgetConfig {
    cascade: Vec<WalletScope>,
    default_max_output_tokens: u32,
    reservation_ttl_ms: Millis,
    ticket_ttl_ms: Millis,
    queue: Option<super::queue::QueueConfig>,
    /// Per-target price overrides, by model name.
    overrides: HashMap<String, Price>,
}

/// Id of the org wallet when the principal names no org.
pub const DEFAULT_ORG: &str = "default";

fn secs(s: Option<u64>, default: u64) -> Millis {
    i64::try_from(s.unwrap_or(default))
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

impl BudgetConfig {
    pub fn new(spec: &PackSpec) -> Self {
        let w = spec.wallets.clone().unwrap_or_default();
        let mut overrides = HashMap::new();
        for t in spec
            .providers
            .iter()
            .flat_map(|p| p.targets.iter().flatten())
        {
            if let Some(p) = &t.pricing {
                overrides.entry(t.model.clone()).or_insert_with(|| Price {
                    input_per_1m: p.input_per_1m,
                    output_per_1m: p.output_per_1m,
                    // validated as an ISO code when the pack was parsed
                    currency: p
                        .currency
                        .as_deref()
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(Currency::USD),
                });
            }
        }
        BudgetConfig {
            cascade: w
                .cascade
                .unwrap_or_else(|| vec![WalletScope::User, WalletScope::Team, WalletScope::Org]),
            default_max_output_tokens: w.default_max_output_tokens.unwrap_or(1024),
            reservation_ttl_ms: secs(w.reservation_ttl_seconds, 600),
            ticket_ttl_ms: secs(w.ticket_ttl_seconds, 86_400),
            queue: super::queue::QueueConfig::from_spec(w.queue.as_ref()),
            overrides,
        }
    }

    /// `wallets.queue`, when the pack holds over-budget requests.
    pub fn queue(&self) -> Option<super::queue::QueueConfig> {
        self.queue
    }

    /// `wallets.default_max_output_tokens`.
    pub fn default_max_output_tokens(&self) -> u32 {
        self.default_max_output_tokens
    }

    /// The price of `model`: the pack's override, else the built-in table.
    pub fn price(&self, model: &str) -> Option<(Price, Option<u32>)> {
        let limit = pricing::listed(model).map(|l| l.max_output_tokens);
        match self.overrides.get(model) {
            Some(p) => Some((*p, limit)),
            None => pricing::builtin_price(model).map(|(p, l)| (p, Some(l))),
        }
    }

    pub fn estimate(&self, request: &ChatRequest) -> Option<Estimate> {
        let (price, limit) = self.price(request.model.as_deref()?)?;
        let input_tokens = pricing::estimate_input_tokens(request);
        let output_tokens =
            pricing::estimate_output_tokens(request, limit, self.default_max_output_tokens);
        let amount = price.cost(input_tokens, output_tokens)?;
        Some(Estimate {
            price,
            input_tokens,
            output_tokens,
            amount,
        })
    }

    /// The principal's wallets in cascade order (scopes it has no id for are skipped).
    pub fn cascade(&self, p: &Principal) -> Vec<WalletKey> {
        self.cascade
            .iter()
            .filter_map(|s| {
                let id = match s {
                    WalletScope::User => p.user.clone()?,
                    WalletScope::Team => p.team.clone()?,
                    WalletScope::Org => p.org.clone().unwrap_or_else(|| DEFAULT_ORG.to_owned()),
                };
                Some(WalletKey {
                    scope: *s,
                    id: id.into(),
                })
            })
            .collect()
    }
}

/// What the budget step decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Charge {
    /// Held on a wallet; the request goes through (on the approval of this ticket, if any).
    Reserved(Lease, Estimate, Option<String>),
    /// No wallet could pay: a ticket (new, or the pending one the client sent).
    Ticket(String, Estimate),
    /// Refused outright: (status, code, message).
    Refused(u16, &'static str, String),
}

fn wallet_failure(e: WalletError) -> RequestError {
    match e {
        WalletError::Store(s) => RequestError::Store(s),
        other => RequestError::Store(StoreError::Corrupt(other.to_string())),
    }
}

pub(crate) struct ChargeCtx<'a> {
    pub principal: &'a Principal,
    pub request: &'a ChatRequest,
    pub request_id: &'a str,
    pub ticket_id: Option<&'a str>,
    pub now: Millis,
    /// The bound to reserve, when the host priced the request itself (every routing candidate,
    /// see [`crate::exchange`]); otherwise the request's model is priced.
    pub estimate: Option<&'a Estimate>,
}

pub(crate) fn charge(
    cfg: &BudgetConfig,
    budget: &Budget<'_>,
    c: &ChargeCtx<'_>,
) -> Result<Charge, RequestError> {
    let Some(estimate) = c.estimate.cloned().or_else(|| cfg.estimate(c.request)) else {
        let msg = match c.request.model.as_deref() {
            None => "the request names no model, so its cost cannot be estimated".to_owned(),
            Some(_) => {
                "the model has no known price: add `pricing` to its target in the pack".to_owned()
            }
        };
        return Ok(Charge::Refused(400, "model_price_unknown", msg));
    };
    // computed only when a ticket is named or opened: most requests need none
    let fingerprint = std::cell::OnceCell::new();
    let fingerprint = || fingerprint.get_or_init(|| c.request.fingerprint()).clone();
    let mut reserve = ReserveRequest {
        lease_id: format!("rsv_{}", c.request_id).into(),
        cascade: cfg.cascade(c.principal),
        amount: estimate.amount,
        currency: estimate.price.currency,
        ttl_ms: cfg.reservation_ttl_ms,
        price: Some(estimate.price),
        force: None,
    };
    let mut pending_ticket = None;
    let mut redeemed = None;
    if let Some(id) = c.ticket_id {
        if let Some(t) = budget.tickets.get(id)? {
            if let Some(refusal) = ticket_refusal(budget, &t, c, &fingerprint(), &estimate)? {
                return Ok(refusal);
            }
        }
        match budget
            .tickets
            .redeem(id, &fingerprint(), c.principal.team.as_deref(), c.now)?
        {
            TicketRedeem::Approved(wallet) => {
                reserve.force = Some(wallet);
                redeemed = Some(id.to_owned());
            }
            TicketRedeem::Pending => pending_ticket = Some(id.to_owned()),
            TicketRedeem::Denied => {
                return Ok(Charge::Refused(
                    409,
                    "ticket_denied",
                    "the cost ticket was denied".into(),
                ))
            }
            TicketRedeem::Expired => {
                return Ok(Charge::Refused(
                    409,
                    "ticket_expired",
                    "the cost ticket expired before approval".into(),
                ))
            }
            TicketRedeem::Invalid(_) => {}
        }
    }
    let outcome = match budget.wallets.reserve(&reserve, c.now) {
        Err(WalletError::LeaseReused(_)) => {
            return Ok(Charge::Refused(
                409,
                "duplicate_request_id",
                "this request id was already used by a completed request".into(),
            ))
        }
        other => {
            let out = other.map_err(wallet_failure);
            if let (Err(_), Some(id)) = (&out, &redeemed) {
                // the approval was used up for a reservation that failed: give it back
                budget.tickets.restore(id)?;
            }
            out?
        }
    };
    match outcome {
        ReserveOutcome::Reserved(lease) => {
            if let Some(id) = &pending_ticket {
                budget.tickets.fulfill(id, c.now)?;
            }
            Ok(Charge::Reserved(
                lease,
                estimate,
                redeemed.or(pending_ticket),
            ))
        }
        ReserveOutcome::Insufficient => {
            if let Some(id) = pending_ticket {
                return Ok(Charge::Ticket(id, estimate));
            }
            let p = c.principal;
            let ticket = Ticket {
                id: format!("tkt_{}", c.request_id),
                fingerprint: fingerprint(),
                org: p.org.clone(),
                team: p.team.clone(),
                user: p.user.clone(),
                role: p.role,
                model: c.request.model.clone().unwrap_or_default(),
                estimate: estimate.amount,
                currency: estimate.price.currency,
                status: TicketStatus::Pending,
                created_at: c.now,
                expires_at: c.now.saturating_add(cfg.ticket_ttl_ms),
                resolved_at: None,
                resolved_by: None,
                charge_to: None,
                redeemed_at: None,
                held_until: None,
            };
            match budget.tickets.insert(&ticket) {
                Ok(()) => {}
                // A host retry with the same request id: the ticket is already there.
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(Charge::Ticket(ticket.id, estimate))
        }
    }
}

/// Why a retry that names ticket `t` may not use it, if it may not: the ticket is another user's,
/// or its approval was for another request or a smaller amount, or the wallet it charges cannot
/// take the charge (checked first, so that the approval is not used up by a refusal).
fn ticket_refusal(
    budget: &Budget<'_>,
    t: &Ticket,
    c: &ChargeCtx<'_>,
    fingerprint: &str,
    estimate: &Estimate,
) -> Result<Option<Charge>, RequestError> {
    let p = c.principal;
    if t.user != p.user || t.team != p.team {
        return Ok(Some(Charge::Refused(
            403,
            "ticket_not_yours",
            "the cost ticket belongs to another user: only its requester may redeem it".into(),
        )));
    }
    if t.status != TicketStatus::Approved || t.redeemed_at.is_some() {
        return Ok(None);
    }
    if t.fingerprint != fingerprint {
        return Ok(Some(Charge::Refused(
            409,
            "ticket_request_mismatch",
            "the request differs from the one the ticket approved (model, messages, max_tokens, n, tools or images): re-send that request".into(),
        )));
    }
    if t.currency != estimate.price.currency || estimate.amount > t.estimate {
        return Ok(Some(Charge::Refused(
            409,
            "ticket_amount_exceeded",
            format!(
                "the request's reservation ({} {}) is above the amount the ticket approved ({} {})",
                estimate.amount, estimate.price.currency, t.estimate, t.currency
            ),
        )));
    }
    if let Some(k) = t.charge_to.as_ref() {
        let usable = budget
            .wallets
            .get(k, c.now)?
            .is_some_and(|w| w.currency == estimate.price.currency);
        if !usable {
            return Ok(Some(Charge::Refused(
                409,
                "ticket_wallet_unavailable",
                format!(
                    "the wallet the ticket charges ({k}) does not exist or is in another currency"
                ),
            )));
        }
    }
    Ok(None)
}

/// Exact cost of provider usage at the lease's price (zero without a price).
pub fn actual_cost(lease: &Lease, usage: &pricing::Usage) -> Result<Decimal, WalletError> {
    match &lease.price {
        Some(p) => p
            .cost(usage.prompt_tokens, usage.completion_tokens)
            .ok_or(WalletError::Overflow),
        None => Ok(Decimal::ZERO),
    }
}
