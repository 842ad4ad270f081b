//! Decision events: one per request, append-only and hash-chained per organization (SPEC §8).
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
use crate::escalation::Millis;
use crate::identity::{Principal, Role};
use crate::pricing::{Currency, Usage};
use crate::request::hex;
use crate::wallet::budget::DEFAULT_ORG;
use crate::wallet::{Settlement, WalletError, WalletKey, WalletStore};

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
    /// The event for a decision (input phase), before settlement.
    pub fn from_decision(
        principal: &Principal,
        decision: &Decision,
        request_id: &str,
        model: Option<&str>,
        now: Millis,
    ) -> Self {
        EventDraft {
            id: format!("evt_{request_id}"),
            request_id: request_id.to_owned(),
            timestamp: now,
            org: principal
                .org
                .clone()
                .unwrap_or_else(|| DEFAULT_ORG.to_owned()),
            team: principal.team.clone(),
            user: principal.user.clone(),
            role: principal.role,
            consumer_group: principal.consumer_group.clone(),
            model: model.map(str::to_owned),
            target: None,
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
            tokens: None,
            escalation_id: decision.escalation_id.clone(),
            ticket_id: decision.ticket_id.clone(),
            audit: decision.audit,
            admin: None,
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
    /// SHA-256 of `prev_hash`, `seq` and the canonical JSON of `body`.
    pub hash: String,
}

/// The hash an event must carry.
pub fn event_hash(seq: u64, body: &EventDraft, prev_hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(seq.to_le_bytes());
    // struct fields serialize in declaration order and maps are sorted: canonical
    h.update(serde_json::to_vec(body).unwrap_or_default());
    hex(&h.finalize())
}

/// Where a verified chain starts after pruning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// Sequence number of the first kept event.
    pub seq: u64,
    /// Its `prev_hash`.
    pub prev_hash: String,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
pub enum Tamper {
    /// An event's content no longer matches its hash (edited).
    #[error("event at position {position} (seq {seq}) was modified")]
    Modified {
        /// Index in the list.
        position: usize,
        /// Its sequence number.
        seq: u64,
    },
    /// The sequence skips (an event was deleted) or goes backwards (reordered).
    #[error("sequence broken at position {position}: expected seq {expected}, found {found}")]
    Sequence {
        /// Index in the list.
        position: usize,
        /// The seq that should be there.
        expected: u64,
        /// The seq that is there.
        found: u64,
    },
    /// An event does not point at the hash of the one before it.
    #[error("link broken at position {position} (seq {seq})")]
    Link {
        /// Index in the list.
        position: usize,
        /// Its sequence number.
        seq: u64,
    },
}

/// Verifies one org's events, in stored order, from `anchor` (genesis when `None`).
///
/// # Errors
/// The first break found, with its position.
pub fn verify(events: &[Event], anchor: Option<&Anchor>) -> Result<(), Tamper> {
    let (mut expected_seq, mut prev) = match anchor {
        Some(a) => (a.seq, a.prev_hash.clone()),
        None => (0, GENESIS.to_owned()),
    };
    for (position, e) in events.iter().enumerate() {
        if e.seq != expected_seq {
            return Err(Tamper::Sequence {
                position,
                expected: expected_seq,
                found: e.seq,
            });
        }
        if event_hash(e.seq, &e.body, &e.prev_hash) != e.hash {
            return Err(Tamper::Modified {
                position,
                seq: e.seq,
            });
        }
        if e.prev_hash != prev {
            return Err(Tamper::Link {
                position,
                seq: e.seq,
            });
        }
        prev = e.hash.clone();
        expected_seq += 1;
    }
    Ok(())
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
    /// Removes the longest prefix of events whose retention (their audit stamp's
    /// `retention_days`, else `default_days`) ended before `now`; returns how many.
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
            }
        }
        (_, served) => Closing {
            lease,
            actual: None,
            restore_ticket: None,
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
        let hash = event_hash(seq, &draft, &prev_hash);
        let event = Event {
            seq,
            body: draft,
            prev_hash,
            hash,
        };
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

    fn prune(&self, org: &str, now: Millis, default_days: u32) -> Result<usize, StoreError> {
        let mut orgs = self.lock()?;
        let Some(chain) = orgs.get_mut(org) else {
            return Ok(0);
        };
        let n = chain
            .events
            .iter()
            .take_while(|e| retention_end(e, default_days) < now)
            .count();
        if n == 0 {
            return Ok(0);
        }
        chain.events.drain(..n);
        chain.anchor = match chain.events.first() {
            Some(first) => Some(Anchor {
                seq: first.seq,
                prev_hash: first.prev_hash.clone(),
            }),
            None => chain.head.as_ref().map(|(s, h)| Anchor {
                seq: s + 1,
                prev_hash: h.clone(),
            }),
        };
        Ok(n)
    }
}
