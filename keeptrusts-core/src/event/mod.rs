//! Decision events: one per request, append-only and hash-chained per organization (`docs/events.md`).
//!
//! An event carries who, what, the verdict, per-policy results with entity *types and counts*, cost,
//! tokens and ids. It never carries request or response text, nor any detected value: it is built
//! from the [`Decision`] and the principal only, and `Decision` keeps detected values solely in the
//! rewritten request, which the event does not copy.
//!
//! Each event stores the hash of the previous event of its org (`prev_hash`) and its own `hash` =
//! SHA-256 over `prev_hash` and the canonical JSON of every other field. [`verify`] recomputes the
//! chain and reports the first position where an edit, deletion or reordering breaks it. Pruning
//! removes a prefix of expired events and keeps an [`Anchor`] (the sequence number and `prev_hash` of
//! the first kept event) so the rest still verifies.

use std::collections::HashMap;
use std::sync::Mutex;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::decision::{AuditStamp, Decision, PolicyResult, Verdict};
use crate::error::StoreError;
use crate::identity::{Principal, Role};
use crate::pricing::{Currency, Usage};
use crate::ratelimit::{Correction, RateCharge, RateCounters};
use crate::request::hex;
use crate::time::Millis;
use crate::wallet::budget::DEFAULT_ORG;
use crate::wallet::{Settlement, WalletError, WalletKey, WalletStore};

mod prune;
mod refusals;
pub mod tally;
mod verify;

pub use prune::{prune_plan, PrunePlan};
pub use refusals::{Admitted, RefusalLimiter};
pub use verify::{
    check, verify, verify_chain, Anchor, Chain, Head, Tamper, Verified, VerifyOptions, VerifyReport,
};

use tally::{Tally, TallyKey, TallyQuery};

/// Hash of "nothing before": the `prev_hash` of an org's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Cost of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostRecord {
    /// The reserved estimate.
    pub estimated: Decimal,
    /// What settlement charged (None until settled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<Decimal>,
    /// Currency.
    pub currency: Currency,
    /// The wallet charged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet: Option<WalletKey>,
    /// The provider billed more than was reserved (it ignored the forwarded limits).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overrun: bool,
    /// The answer carried no usable usage: the whole reservation was charged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unmetered: bool,
}

/// An event before it joins the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDraft {
    /// `evt_<request id>`.
    pub id: String,
    /// The request id.
    pub request_id: String,
    /// When the decision was made.
    pub timestamp: Millis,
    /// Organization (`default` when the principal names none).
    pub org: String,
    /// Team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// User.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Consumer group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_group: Option<String>,
    /// Model asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Target used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Final verdict.
    pub verdict: Verdict,
    /// HTTP status.
    pub status: u16,
    /// Reason code of the deciding policy or step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Per-policy results (kind, verdict, reason, entity counts).
    pub policies: Vec<PolicyResult>,
    /// Cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostRecord>,
    /// Token usage (the provider's, once known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Usage>,
    /// Escalation raised or used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_id: Option<String>,
    /// Cost ticket opened or used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    /// The audit-logger stamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditStamp>,
    /// For an administrative action (a team, member, key, wallet, ticket or escalation changed):
    /// what changed. Such events are not requests: dashboards do not count them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminChange>,
    /// For a request refused with a key that does not authenticate: the first 12 hex digits of
    /// the SHA-256 of what was presented (the stored key's `hash` starts the same), never the
    /// secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hint: Option<String>,
    /// For a summary of refusals over the per-minute bound ([`RefusalLimiter`]): how many
    /// refusals with this status had no event of their own in the minute starting at
    /// `timestamp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
}

/// What an administrative action changed (never a key secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminChange {
    /// The action: `team.create`, `member.set`, `key.revoke`, `wallet.allocate`, …
    pub action: String,
    /// Who acted: the actor's user id, or `local` for the host's own command line.
    pub actor: String,
    /// What it acted on: a team slug, `team/email`, a key id, a wallet (`team:legal`), a ticket
    /// or escalation id.
    pub target: String,
    /// The state before (a role, an amount with its currency, a name), when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// The state after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl EventDraft {
    /// An event of `request_id` in `org`'s chain at `now` that says nothing else yet: allowed
    /// (200), no principal, policies, cost or audit stamp. The constructors below and the
    /// hosts fill in what they know with struct update syntax.
    pub fn new(request_id: &str, org: &str, now: Millis) -> Self {
        EventDraft {
            id: format!("evt_{request_id}"),
            request_id: request_id.to_owned(),
            timestamp: now,
            org: org.to_owned(),
            team: None,
            user: None,
            role: None,
            consumer_group: None,
            model: None,
            target: None,
            verdict: Verdict::Allow,
            status: 200,
            reason: None,
            policies: Vec::new(),
            cost: None,
            tokens: None,
            escalation_id: None,
            ticket_id: None,
            audit: None,
            admin: None,
            key_hint: None,
            suppressed: None,
        }
    }

    /// The event for a decision (input phase), before settlement.
    pub fn from_decision(
        principal: &Principal,
        decision: &Decision,
        request_id: &str,
        model: Option<&str>,
        now: Millis,
    ) -> Self {
        let org = principal.org.as_deref().unwrap_or(DEFAULT_ORG);
        EventDraft {
            team: principal.team.clone(),
            user: principal.user.clone(),
            role: principal.role,
            consumer_group: principal.consumer_group.clone(),
            model: model.map(str::to_owned),
            verdict: decision.verdict,
            status: decision.status,
            reason: decision.reason.clone(),
            policies: decision.results.clone(),
            cost: decision.estimate.as_ref().map(|e| CostRecord {
                estimated: e.amount,
                settled: None,
                currency: e.price.currency,
                wallet: decision.reservation.as_ref().map(|l| l.wallet.clone()),
                overrun: false,
                unmetered: false,
            }),
            escalation_id: decision.escalation_id.clone(),
            ticket_id: decision.ticket_id.clone(),
            audit: decision.audit,
            ..EventDraft::new(request_id, org, now)
        }
    }

    /// The event of a request refused before its lifecycle could begin: a key that does not
    /// authenticate (401, with `key_hint`), a body that cannot be read or parsed (400, 408,
    /// 413), a consumer group the key may not use (403), a request the engine rejects (400).
    /// `principal` is who asked when known (never for a 401).
    pub fn refused(
        principal: Option<&Principal>,
        request_id: &str,
        status: u16,
        code: &str,
        now: Millis,
    ) -> Self {
        let org = principal.and_then(|p| p.org.as_deref());
        EventDraft {
            team: principal.and_then(|p| p.team.clone()),
            user: principal.and_then(|p| p.user.clone()),
            role: principal.and_then(|p| p.role),
            consumer_group: principal.and_then(|p| p.consumer_group.clone()),
            verdict: Verdict::Block,
            status,
            reason: Some(code.to_owned()),
            ..EventDraft::new(request_id, org.unwrap_or(DEFAULT_ORG), now)
        }
    }

    /// Records the target used, the provider's usage and the settled amount.
    pub fn settled(mut self, target: Option<&str>, usage: Usage, charged: Option<Decimal>) -> Self {
        self.target = target.map(str::to_owned);
        self.tokens = Some(usage);
        if let (Some(c), Some(amount)) = (self.cost.as_mut(), charged) {
            c.settled = Some(amount);
        }
        self
    }

    /// Whether a policy other than allow/redact spoke (a "policy event" for dashboards), or the
    /// request was redacted.
    pub fn is_policy_event(&self) -> bool {
        self.policies.iter().any(|p| p.verdict != Verdict::Allow)
    }
}

/// An event in its org's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the org's chain, from 0.
    pub seq: u64,
    /// The event's content.
    #[serde(flatten)]
    pub body: EventDraft,
    /// Hash of the previous event of the org ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// The event's hash: [`chain_hash`] over `prev_hash`, `seq`, the timestamp, the retention
    /// and `body_hash` (or, for an event written before `body_hash` existed, [`event_hash`]).
    pub hash: String,
    /// SHA-256 of the canonical JSON of `body`. The hash covers it, so an event whose retention
    /// ended can drop its content and still prove its place, time and retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_hash: Option<String>,
    /// The content was removed at the end of its retention: only the id, request id, time, org,
    /// verdict, status and audit stamp stay, and of those only the time and the retention are
    /// proven (by the hash).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pruned: bool,
}

/// The hash of an event written before `body_hash` existed: SHA-256 over `prev_hash`, `seq` and
/// the canonical JSON of its body. Such events verify as before but can only be pruned as a
/// prefix (with an [`Anchor`]).
pub fn event_hash(seq: u64, body: &EventDraft, prev_hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(seq.to_le_bytes());
    // struct fields serialize in declaration order and maps are sorted: canonical
    h.update(serde_json::to_vec(body).unwrap_or_default());
    hex(&h.finalize())
}

/// SHA-256 of a body's canonical JSON.
pub fn body_hash(body: &EventDraft) -> String {
    hex(&Sha256::digest(
        serde_json::to_vec(body).unwrap_or_default(),
    ))
}

/// The hash of an event: SHA-256 over a schema tag, `prev_hash`, `seq`, the timestamp, the
/// retention (`None`: the default of whoever prunes) and the body's hash.
pub fn chain_hash(
    seq: u64,
    prev_hash: &str,
    timestamp: Millis,
    retention_days: Option<u32>,
    body_hash: &str,
) -> String {
    let mut h = Sha256::new();
    h.update(b"keeptrusts-event-v2\0");
    h.update(prev_hash.as_bytes());
    h.update(seq.to_le_bytes());
    h.update(timestamp.to_le_bytes());
    match retention_days {
        Some(d) => {
            h.update([1]);
            h.update(d.to_le_bytes());
        }
        None => h.update([0]),
    }
    h.update(body_hash.as_bytes());
    hex(&h.finalize())
}

fn retention_of(body: &EventDraft) -> Option<u32> {
    body.audit.map(|a| a.retention_days)
}

impl Event {
    /// Chains `body` at `seq` after the event whose hash is `prev_hash`: what every store
    /// writes.
    pub fn chained(seq: u64, body: EventDraft, prev_hash: String) -> Event {
        let bh = body_hash(&body);
        let hash = chain_hash(seq, &prev_hash, body.timestamp, retention_of(&body), &bh);
        Event {
            seq,
            body,
            prev_hash,
            hash,
            body_hash: Some(bh),
            pruned: false,
        }
    }

    /// Whether what the event holds matches its hash (for a pruned event: what it kept).
    pub fn intact(&self) -> bool {
        match &self.body_hash {
            None => !self.pruned && event_hash(self.seq, &self.body, &self.prev_hash) == self.hash,
            Some(bh) => {
                (self.pruned || body_hash(&self.body) == *bh)
                    && chain_hash(
                        self.seq,
                        &self.prev_hash,
                        self.body.timestamp,
                        retention_of(&self.body),
                        bh,
                    ) == self.hash
            }
        }
    }

    /// What pruning keeps of this event: its place in the chain, its time and retention (proven
    /// by the hash), its id, request id, org, verdict and status; never its team, user, model,
    /// policies, cost or tokens. `None` for an event written before `body_hash` existed.
    pub fn tombstone(&self) -> Option<Event> {
        self.body_hash.as_ref()?;
        let b = &self.body;
        Some(Event {
            body: EventDraft {
                id: b.id.clone(),
                verdict: b.verdict,
                status: b.status,
                audit: b.audit,
                suppressed: b.suppressed,
                ..EventDraft::new(&b.request_id, &b.org, b.timestamp)
            },
            pruned: true,
            ..self.clone()
        })
    }

    /// This event as a [`Head`].
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

/// Which events to read: the store filters on these (in SQL for the SQL stores, with indexes),
/// and returns the matches in chain order — with a `limit`, the newest `limit` of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQuery {
    /// Team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// User.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Final verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// From (inclusive, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Millis>,
    /// To (exclusive, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Millis>,
    /// Only events with a smaller seq.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// At most this many (the newest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Only requests that raised an escalation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub escalated: bool,
}

impl EventQuery {
    /// Whether `e` matches (everything but the limit).
    pub fn keeps(&self, e: &Event) -> bool {
        let b = &e.body;
        self.team
            .as_ref()
            .is_none_or(|t| b.team.as_ref() == Some(t))
            && self
                .user
                .as_ref()
                .is_none_or(|u| b.user.as_ref() == Some(u))
            && self.verdict.is_none_or(|v| b.verdict == v)
            && self.from.is_none_or(|f| b.timestamp >= f)
            && self.to.is_none_or(|t| b.timestamp < t)
            && self.before.is_none_or(|s| e.seq < s)
            && (!self.escalated || b.escalation_id.is_some())
    }

    /// The matches of `events` (in chain order), as a store answers.
    pub fn apply(&self, events: Vec<Event>) -> Vec<Event> {
        let mut out: Vec<Event> = events.into_iter().filter(|e| self.keeps(e)).collect();
        if let Some(n) = self.limit {
            let cut = out.len().saturating_sub(n);
            out.drain(..cut);
        }
        out
    }
}

/// Storage of events. `append` is atomic: it reads the org's head and writes the new event in one
/// step (a SQL store: one transaction with the head row locked).
pub trait EventStore: Send + Sync {
    /// Appends to the draft's org chain and returns the chained event.
    ///
    /// # Errors
    /// A store failure; nothing is appended then.
    fn append(&self, draft: EventDraft) -> Result<Event, StoreError>;
    /// Every event of an org, in chain order.
    ///
    /// # Errors
    /// A store failure.
    fn list(&self, org: &str) -> Result<Vec<Event>, StoreError>;
    /// The org's anchor after pruning (None if never pruned).
    ///
    /// # Errors
    /// A store failure.
    fn anchor(&self, org: &str) -> Result<Option<Anchor>, StoreError>;
    /// The org's events that `query` matches, in chain order (with a limit, the newest). The
    /// provided method filters [`EventStore::list`]; the SQL stores filter in SQL.
    ///
    /// # Errors
    /// A store failure.
    fn query(&self, org: &str, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        Ok(query.apply(self.list(org)?))
    }
    /// The org's requests that `query` adds up, grouped as it says, sorted by key (what
    /// [`tally::tally`] computes from [`EventStore::query`], the provided method; the SQL
    /// stores read their day tallies and only the partial days' events).
    ///
    /// # Errors
    /// A store failure.
    fn tally(&self, org: &str, query: &TallyQuery) -> Result<Vec<(TallyKey, Tally)>, StoreError> {
        Ok(tally::tally(&self.query(org, &query.events())?, query))
    }
    /// The org's events, anchor and recorded head, read in one snapshot (what
    /// [`verify_chain`] checks: a prune or an append in between cannot make a sound chain
    /// look broken).
    ///
    /// # Errors
    /// A store failure.
    fn snapshot(&self, org: &str) -> Result<Chain, StoreError>;
    /// The org's newest `n` events with its anchor and recorded head, read in one snapshot, as
    /// [`Chain::tail`] makes them. The provided method cuts [`EventStore::snapshot`]; the SQL
    /// stores read only those rows.
    ///
    /// # Errors
    /// A store failure.
    fn tail(&self, org: &str, n: usize) -> Result<Chain, StoreError> {
        let mut c = self.snapshot(org)?;
        let cut = c.events.len().saturating_sub(n);
        c.events.drain(..cut);
        Ok(Chain::tail(c.events, c.anchor, c.head))
    }
    /// Prunes the events whose retention (their audit stamp's `retention_days`, else
    /// `default_days`) ended before `now`, as [`prune_plan`] says, in one step; returns how
    /// many.
    ///
    /// # Errors
    /// A store failure.
    fn prune(&self, org: &str, now: Millis, default_days: u32) -> Result<usize, StoreError>;
}

/// A store holding both the ledger and the audit chain: settles a request's lease and appends its
/// event as one step. The provided method runs the two one after the other; the SQL stores
/// override it with one transaction, so a committed settlement always has its event.
pub trait Journal: WalletStore + EventStore {
    /// Settles `lease_id` at `actual` and, unless the settlement is a replay (the lease was
    /// already settled, so its event was already written), appends `draft`.
    ///
    /// # Errors
    /// As [`WalletStore::settle`] and [`EventStore::append`]; in the SQL stores nothing is
    /// written when either fails.
    fn settle_and_append(
        &self,
        lease_id: &str,
        actual: Decimal,
        now: Millis,
        draft: EventDraft,
    ) -> Result<(Settlement, Option<Event>), WalletError> {
        let s = self.settle(lease_id, actual, now)?;
        if s.replay {
            return Ok((s, None));
        }
        let e = self.append(draft)?;
        Ok((s, Some(e)))
    }
}

/// What [`complete`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// The settlement of the request's reservation (None when it had none, or the provider was
    /// not reached and the reservation was released).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement: Option<Settlement>,
    /// The request's event (None on a replayed settlement: it was written the first time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
}

/// Closes a request after the host called the provider (or gave up): with `served` = the target
/// and the provider's usage, the reservation is settled at the actual cost (at the price the lease
/// recorded) together with the event, in one store step; without it the reservation is released,
/// so nothing is charged, and the event is appended as it stands. A decision without a
/// reservation (blocked, or no budget enforced) only appends its event.
///
/// # Errors
/// `Overflow` for an impossible cost, or a store failure; nothing is charged or appended then
/// (the SQL stores write both or neither).
pub fn complete(
    journal: &dyn Journal,
    principal: &Principal,
    decision: &Decision,
    request_id: &str,
    model: Option<&str>,
    served: Option<(&str, Usage)>,
    now: Millis,
) -> Result<Completion, WalletError> {
    closing(principal, decision, request_id, model, served, now)?.commit(journal, None, now)
}

impl Closing {
    /// Writes this closing through a journal: the settlement with the event in one store step,
    /// or the release and then the event; a used ticket approval is given back through
    /// `tickets` when the request was not served.
    ///
    /// # Errors
    /// A store failure; nothing is charged or appended then (the SQL stores write both or
    /// neither).
    pub fn commit(
        self,
        journal: &dyn Journal,
        tickets: Option<&dyn crate::wallet::ticket::TicketStore>,
        now: Millis,
    ) -> Result<Completion, WalletError> {
        if let (Some(t), Some(store)) = (&self.restore_ticket, tickets) {
            store.restore(t)?;
        }
        match (self.lease, self.actual) {
            (Some(id), Some(actual)) => {
                let (s, event) = journal.settle_and_append(&id, actual, now, self.draft)?;
                Ok(Completion {
                    settlement: Some(s),
                    event,
                })
            }
            (lease, _) => {
                if let Some(id) = lease {
                    journal.release(&id, now)?;
                }
                Ok(Completion {
                    settlement: None,
                    event: Some(journal.append(self.draft)?),
                })
            }
        }
    }
}

/// What finishing a request writes (see [`closing`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Closing {
    /// The request's reservation, if it had one.
    pub lease: Option<std::sync::Arc<str>>,
    /// Its cost at the provider's usage: settle at this. `None`: release the reservation.
    pub actual: Option<Decimal>,
    /// The request's event.
    pub draft: EventDraft,
    /// A cost ticket whose approval the request used and must give back (it was not served).
    pub restore_ticket: Option<String>,
    /// The token reservation counted against rate limits, to correct to the event's tokens
    /// ([`Closing::rate_corrections`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateCharge>,
}

impl Closing {
    /// A closing that only appends `draft` (a refusal: nothing was reserved).
    pub fn event(draft: EventDraft) -> Closing {
        Closing {
            lease: None,
            actual: None,
            draft,
            restore_ticket: None,
            rate: None,
        }
    }

    /// The corrections that replace the request's token reservation in its rate-limit counters
    /// by the tokens it was settled at (the event's usage; 0 when no provider served it).
    pub fn rate_corrections(&self) -> Vec<Correction> {
        let Some(charge) = &self.rate else {
            return Vec::new();
        };
        let actual = self
            .draft
            .tokens
            .map_or(0, |u| u.prompt_tokens.saturating_add(u.completion_tokens));
        charge.corrections(actual)
    }

    /// Applies [`Closing::rate_corrections`] to `counters`.
    ///
    /// # Errors
    /// A store failure.
    pub fn correct_rate(&self, counters: &dyn RateCounters) -> Result<(), StoreError> {
        let c = self.rate_corrections();
        if c.is_empty() {
            return Ok(());
        }
        counters.adjust(&c)
    }
}

/// The settlement (or release) and the event that finish a request, without writing them: what
/// [`complete`] writes through a journal, for hosts that write elsewhere (the gateway's
/// write-behind ledger).
///
/// # Errors
/// `Overflow` for an impossible cost.
pub fn closing(
    principal: &Principal,
    decision: &Decision,
    request_id: &str,
    model: Option<&str>,
    served: Option<(&str, Usage)>,
    now: Millis,
) -> Result<Closing, WalletError> {
    let draft = EventDraft::from_decision(principal, decision, request_id, model, now);
    let lease = decision
        .reservation
        .as_ref()
        .map(|l| std::sync::Arc::clone(&l.id));
    Ok(match (&decision.reservation, served) {
        (Some(l), Some((target, usage))) => {
            let actual = crate::wallet::budget::actual_cost(l, &usage)?;
            Closing {
                lease,
                actual: Some(actual),
                draft: draft.settled(Some(target), usage, Some(actual)),
                restore_ticket: None,
                rate: None,
            }
        }
        (_, served) => Closing {
            lease,
            actual: None,
            restore_ticket: None,
            rate: None,
            draft: match served {
                Some((target, usage)) => draft.settled(Some(target), usage, None),
                None => draft,
            },
        },
    })
}

#[derive(Debug, Default)]
struct OrgChain {
    events: Vec<Event>,
    anchor: Option<Anchor>,
    /// seq and hash of the last event, kept across pruning
    head: Option<(u64, String)>,
}

/// In-memory event store.
#[derive(Debug, Default)]
pub struct MemoryEvents {
    orgs: Mutex<HashMap<String, OrgChain>>,
}

impl MemoryEvents {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, OrgChain>>, StoreError> {
        self.orgs
            .lock()
            .map_err(|_| StoreError::Unavailable("event store lock poisoned".into()))
    }

    /// Test and tooling access: replace an org's stored events as they are (no re-hashing), to
    /// simulate tampering with the storage underneath.
    pub fn overwrite(&self, org: &str, events: Vec<Event>) -> Result<(), StoreError> {
        let mut orgs = self.lock()?;
        orgs.entry(org.to_owned()).or_default().events = events;
        Ok(())
    }
}

fn retention_end(e: &Event, default_days: u32) -> Millis {
    let days = e.body.audit.map_or(default_days, |a| a.retention_days);
    e.body
        .timestamp
        .saturating_add(i64::from(days).saturating_mul(86_400_000))
}

impl EventStore for MemoryEvents {
    fn append(&self, draft: EventDraft) -> Result<Event, StoreError> {
        let mut orgs = self.lock()?;
        let chain = orgs.entry(draft.org.clone()).or_default();
        let (seq, prev_hash) = match &chain.head {
            Some((s, h)) => (s + 1, h.clone()),
            None => (0, GENESIS.to_owned()),
        };
        let event = Event::chained(seq, draft, prev_hash);
        chain.head = Some((seq, event.hash.clone()));
        chain.events.push(event.clone());
        Ok(event)
    }

    fn list(&self, org: &str) -> Result<Vec<Event>, StoreError> {
        Ok(self
            .lock()?
            .get(org)
            .map(|c| c.events.clone())
            .unwrap_or_default())
    }

    fn anchor(&self, org: &str) -> Result<Option<Anchor>, StoreError> {
        Ok(self.lock()?.get(org).and_then(|c| c.anchor.clone()))
    }

    fn snapshot(&self, org: &str) -> Result<Chain, StoreError> {
        let orgs = self.lock()?;
        Ok(orgs
            .get(org)
            .map(|c| Chain {
                events: c.events.clone(),
                anchor: c.anchor.clone(),
                head: c.head.as_ref().map(|(seq, hash)| Head {
                    seq: *seq,
                    hash: hash.clone(),
                }),
            })
            .unwrap_or_default())
    }

    fn prune(&self, org: &str, now: Millis, default_days: u32) -> Result<usize, StoreError> {
        let mut orgs = self.lock()?;
        let Some(chain) = orgs.get_mut(org) else {
            return Ok(0);
        };
        let plan = prune_plan(&chain.events, now, default_days);
        for t in &plan.tombstones {
            if let Some(e) = chain.events.iter_mut().find(|e| e.seq == t.seq) {
                *e = t.clone();
            }
        }
        if let Some(cut) = &plan.cut {
            chain.events.retain(|e| e.seq >= cut.seq);
            chain.anchor = Some(cut.clone());
        }
        Ok(plan.len())
    }
}
