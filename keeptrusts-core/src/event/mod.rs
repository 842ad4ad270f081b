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

pub mod tally;

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
            key_hint: None,
            suppressed: None,
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
        EventDraft {
            id: format!("evt_{request_id}"),
            request_id: request_id.to_owned(),
            timestamp: now,
            org: principal
                .and_then(|p| p.org.clone())
                .unwrap_or_else(|| DEFAULT_ORG.to_owned()),
            team: principal.and_then(|p| p.team.clone()),
            user: principal.and_then(|p| p.user.clone()),
            role: principal.and_then(|p| p.role),
            consumer_group: principal.and_then(|p| p.consumer_group.clone()),
            model: None,
            target: None,
            verdict: Verdict::Block,
            status,
            reason: Some(code.to_owned()),
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
                request_id: b.request_id.clone(),
                timestamp: b.timestamp,
                org: b.org.clone(),
                team: None,
                user: None,
                role: None,
                consumer_group: None,
                model: None,
                target: None,
                verdict: b.verdict,
                status: b.status,
                reason: None,
                policies: Vec::new(),
                cost: None,
                tokens: None,
                escalation_id: None,
                ticket_id: None,
                audit: b.audit,
                admin: None,
                key_hint: None,
                suppressed: b.suppressed,
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

/// Where a verified chain starts after pruning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// Sequence number of the first kept event.
    pub seq: u64,
    /// Its `prev_hash`.
    pub prev_hash: String,
}

/// The last event of an org's chain, as the store records it apart from the events (and as an
/// operator may keep it elsewhere: `kt events head`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Head {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}`: expected SEQ:HASH, as `kt events head` prints it");
        let (seq, hash) = s.trim().split_once(':').ok_or_else(bad)?;
        let seq = seq.parse().map_err(|_| bad())?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Head {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// An org's chain as read in one snapshot: its events, the anchor left by pruning, and the head
/// the store recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    /// The events, in chain order.
    pub events: Vec<Event>,
    /// Where the kept chain starts, after a prefix was pruned.
    pub anchor: Option<Anchor>,
    /// The last event appended, as recorded with each append.
    pub head: Option<Head>,
}

impl Chain {
    /// The newest events of a chain (`events`, in chain order) as a chain of their own, anchored
    /// at the first of them unless that is where the kept chain starts, so [`verify_chain`]
    /// checks their hashes and links and that the last is the recorded head: what a gateway
    /// checks when it starts, without reading the whole chain.
    pub fn tail(events: Vec<Event>, anchor: Option<Anchor>, head: Option<Head>) -> Chain {
        let start = anchor.as_ref().map_or(0, |a| a.seq);
        let anchor = match events.first() {
            Some(first) if first.seq > start => Some(Anchor {
                seq: first.seq,
                prev_hash: first.prev_hash.clone(),
            }),
            _ => anchor,
        };
        Chain {
            events,
            anchor,
            head,
        }
    }
}

/// What [`verify_chain`] checks beyond the links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Now: a pruned event must be past its retention.
    pub now: Millis,
    /// The retention of events without an audit stamp, as pruning used it.
    pub default_days: u32,
    /// A head kept elsewhere: the chain must reach it, with that hash.
    pub expect_head: Option<Head>,
}

/// What a sound chain holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Events stored.
    pub events: usize,
    /// Of which pruned (content removed at the end of its retention).
    pub pruned: usize,
    /// The last event.
    pub head: Option<Head>,
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
    /// Events are missing at the end: the store recorded (or the operator kept) a later head.
    #[error("the chain ends at {last:?} but its head is seq {head}: newer events were removed")]
    Truncated {
        /// The head's seq.
        head: u64,
        /// The last event's seq (`None`: no event left).
        last: Option<u64>,
    },
    /// The event at the head's position is not the one the head names (rewritten).
    #[error("the event at seq {seq} is not the recorded head")]
    HeadMismatch {
        /// Its seq.
        seq: u64,
    },
    /// Events exist but the store recorded no head for them.
    #[error("the store has events but no recorded head")]
    HeadMissing,
    /// An event's content was removed before its retention ended.
    #[error("event at position {position} (seq {seq}) was pruned before its retention ended")]
    PrunedEarly {
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
        if !e.intact() {
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

/// Verifies an org's chain as read in one snapshot: the links and hashes ([`verify`]), that
/// every pruned event was past its retention, that nothing is missing at the end (the last event
/// is the head the store recorded), and that it reaches `expect_head` with that hash.
///
/// # Errors
/// The first break found.
pub fn verify_chain(chain: &Chain, opts: &VerifyOptions) -> Result<Verified, Tamper> {
    verify(&chain.events, chain.anchor.as_ref())?;
    for (position, e) in chain.events.iter().enumerate() {
        if e.pruned && retention_end(e, opts.default_days) >= opts.now {
            return Err(Tamper::PrunedEarly {
                position,
                seq: e.seq,
            });
        }
    }
    // the last event, or (everything pruned as a prefix) the one the anchor follows
    let last = match (chain.events.last(), &chain.anchor) {
        (Some(e), _) => Some(e.head()),
        (None, Some(a)) if a.seq > 0 => Some(Head {
            seq: a.seq - 1,
            hash: a.prev_hash.clone(),
        }),
        _ => None,
    };
    match (&chain.head, &last) {
        (None, None) => {}
        (None, Some(_)) => return Err(Tamper::HeadMissing),
        (Some(h), Some(l)) if h == l => {}
        (Some(h), l) if l.as_ref().is_none_or(|l| l.seq < h.seq) => {
            return Err(Tamper::Truncated {
                head: h.seq,
                last: l.as_ref().map(|l| l.seq),
            })
        }
        (Some(_), Some(l)) => return Err(Tamper::HeadMismatch { seq: l.seq }),
        (Some(_), None) => unreachable!("handled as truncated"),
    }
    if let Some(x) = &opts.expect_head {
        if last.as_ref().is_none_or(|l| l.seq < x.seq) {
            return Err(Tamper::Truncated {
                head: x.seq,
                last: last.as_ref().map(|l| l.seq),
            });
        }
        let at = chain.events.iter().find(|e| e.seq == x.seq);
        let hash = at.map(|e| e.hash.as_str()).or(match &last {
            Some(l) if l.seq == x.seq => Some(l.hash.as_str()),
            _ => None,
        });
        // an expected head older than a pruned prefix cannot be compared any more
        if hash.is_some_and(|h| h != x.hash) {
            return Err(Tamper::HeadMismatch { seq: x.seq });
        }
    }
    Ok(Verified {
        events: chain.events.len(),
        pruned: chain.events.iter().filter(|e| e.pruned).count(),
        head: last,
    })
}

/// What a host reports of a verification ([`check`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Whether the chain is sound.
    pub valid: bool,
    /// Events stored.
    pub events: usize,
    /// Of which pruned.
    pub pruned: usize,
    /// The last event (when sound).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<Head>,
    /// What is wrong, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// What is wrong, as data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tamper: Option<Tamper>,
}

/// Reads an org's chain in one snapshot and verifies it ([`verify_chain`]).
///
/// # Errors
/// A store failure (a broken chain is a report, not an error).
pub fn check(
    store: &dyn EventStore,
    org: &str,
    opts: &VerifyOptions,
) -> Result<VerifyReport, StoreError> {
    let chain = store.snapshot(org)?;
    let pruned = chain.events.iter().filter(|e| e.pruned).count();
    Ok(match verify_chain(&chain, opts) {
        Ok(v) => VerifyReport {
            valid: true,
            events: v.events,
            pruned: v.pruned,
            head: v.head,
            problem: None,
            tamper: None,
        },
        Err(t) => VerifyReport {
            valid: false,
            events: chain.events.len(),
            pruned,
            head: None,
            problem: Some(t.to_string()),
            tamper: Some(t),
        },
    })
}

/// Bounds the events of refusals, so a flood of bad keys or junk bodies cannot fill the store:
/// in each minute, the first `per_minute` refusals of each status get their own event; the rest
/// are counted, and one summary event per status (`reason: refusals_suppressed`, `suppressed:
/// n`) is written for that minute when the next refusal of a later minute arrives, or when the
/// host flushes it (at shutdown). The host keeps one limiter (in memory, per process).
#[derive(Debug, Clone)]
pub struct RefusalLimiter {
    per_minute: u64,
    /// status → (minute start, events written, refusals suppressed)
    windows: HashMap<u16, (Millis, u64, u64)>,
}

/// What [`RefusalLimiter::admit`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Whether this refusal gets its own event.
    pub record: bool,
    /// A summary of an earlier minute to write first.
    pub summary: Option<EventDraft>,
}

const MINUTE: Millis = 60_000;

impl RefusalLimiter {
    /// A limiter writing at most `per_minute` refusal events per status and minute.
    pub fn new(per_minute: u64) -> Self {
        RefusalLimiter {
            per_minute,
            windows: HashMap::new(),
        }
    }

    fn summary(org: &str, status: u16, start: Millis, n: u64) -> EventDraft {
        let rid = format!("suppressed_{status}_{start}");
        let mut d = EventDraft::refused(None, &rid, status, "refusals_suppressed", start);
        d.org = org.to_owned();
        d.suppressed = Some(n);
        d
    }

    /// Counts a refusal with `status` at `now` (for the chain of `org`).
    pub fn admit(&mut self, org: &str, status: u16, now: Millis) -> Admitted {
        let start = now - now.rem_euclid(MINUTE);
        let w = self.windows.entry(status).or_insert((start, 0, 0));
        let mut summary = None;
        if w.0 != start {
            if w.2 > 0 {
                summary = Some(Self::summary(org, status, w.0, w.2));
            }
            *w = (start, 0, 0);
        }
        let record = w.1 < self.per_minute;
        if record {
            w.1 += 1;
        } else {
            w.2 += 1;
        }
        Admitted { record, summary }
    }

    /// The summaries of every minute with suppressed refusals (the host writes them at
    /// shutdown).
    pub fn flush(&mut self, org: &str) -> Vec<EventDraft> {
        let mut out: Vec<EventDraft> = self
            .windows
            .iter_mut()
            .filter(|(_, w)| w.2 > 0)
            .map(|(status, w)| {
                let d = Self::summary(org, *status, w.0, w.2);
                w.2 = 0;
                d
            })
            .collect();
        out.sort_by_key(|d| (d.timestamp, d.status));
        out
    }
}

/// What pruning an org's chain at `now` changes: the events whose retention ended lose their
/// content ([`Event::tombstone`]) wherever they are in the chain, so one long-retention event
/// keeps nobody else's data; events written before `body_hash` existed can only go as a
/// prefix, replaced by an anchor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrunePlan {
    /// Events to store in their pruned form.
    pub tombstones: Vec<Event>,
    /// Delete the events before this anchor and record it.
    pub cut: Option<Anchor>,
    /// How many events the cut deletes.
    pub dropped: usize,
}

impl PrunePlan {
    /// How many events the plan prunes.
    pub fn len(&self) -> usize {
        self.tombstones.len() + self.dropped
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events of `events` (those the plan was made from) that the plan deletes or prunes:
    /// what a store subtracts from its day tallies.
    pub fn removed<'a>(&self, events: &'a [Event]) -> impl Iterator<Item = &'a Event> {
        let pruned: std::collections::HashSet<u64> =
            self.tombstones.iter().map(|t| t.seq).collect();
        let dropped = self.dropped;
        events
            .iter()
            .enumerate()
            .filter(move |(i, e)| *i < dropped || pruned.contains(&e.seq))
            .map(|(_, e)| e)
    }
}

/// The [`PrunePlan`] of `events` (one org's, in chain order) at `now`.
pub fn prune_plan(events: &[Event], now: Millis, default_days: u32) -> PrunePlan {
    let expired = |e: &Event| retention_end(e, default_days) < now;
    let dropped = events
        .iter()
        .take_while(|e| e.body_hash.is_none() && expired(e))
        .count();
    let cut = if dropped == 0 {
        None
    } else {
        match events.get(dropped) {
            Some(first) => Some(Anchor {
                seq: first.seq,
                prev_hash: first.prev_hash.clone(),
            }),
            None => events.last().map(|last| Anchor {
                seq: last.seq + 1,
                prev_hash: last.hash.clone(),
            }),
        }
    };
    let tombstones = events
        .iter()
        .skip(dropped)
        .filter(|e| !e.pruned && expired(e))
        .filter_map(Event::tombstone)
        .collect();
    PrunePlan {
        tombstones,
        cut,
        dropped,
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
