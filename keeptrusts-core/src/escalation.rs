//! Escalations: requests held for human review (`docs/lifecycle.md`).
//!
//! An escalation is bound to the fingerprint of the (redacted) request that raised it. An admin
//! of the team, or an owner, approves or denies it; the client re-sends the same request with the
//! escalation id and an approved, unexpired, unused escalation lets it through exactly once.

use serde::{Deserialize, Serialize};

use crate::error::{AdminError, StoreError};
use crate::identity::{Principal, Role};
use crate::memory::Table;

/// Milliseconds since the Unix epoch (kept here for the paths hosts already import).
pub use crate::time::Millis;

/// The most characters of a held request an escalation keeps ([`excerpt`]).
pub const EXCERPT_CHARS: usize = 280;

/// The excerpt an escalation keeps for its reviewer: the last user message of `request`, scanned
/// whole for every built-in entity type ([`BuiltinDetector::all_types`]) and redacted to labels
/// (`[EMAIL]`), then cut to [`EXCERPT_CHARS`] characters (with `…` when cut). Redaction happens
/// before the cut, so a value split by the cut is still replaced. This is independent of the
/// team's own detectors: a chain with human-oversight and no detector keeps no raw value either.
///
/// [`BuiltinDetector::all_types`]: crate::detect::builtin::BuiltinDetector::all_types
pub fn excerpt(request: &crate::request::ChatRequest) -> Option<String> {
    use crate::detect::builtin::BuiltinDetector;
    use crate::detect::Detector as _;
    use crate::request::Texts as _;
    static DETECTOR: std::sync::OnceLock<Option<BuiltinDetector>> = std::sync::OnceLock::new();
    let detector = DETECTOR
        .get_or_init(|| BuiltinDetector::new(&BuiltinDetector::all_types(), &[], &[]).ok())
        .as_ref()?;
    let texts = request.texts();
    let (_, text) = texts.iter().rev().find(|(role, _)| *role == "user")?;
    let mut findings = Vec::new();
    detector.scan(text, &mut findings);
    crate::detect::resolve_overlaps(&mut findings);
    let redacted = crate::redact::Redactor::new(None, Vec::new(), [0; 32]).redact(text, &findings);
    let trimmed = redacted.trim();
    if trimmed.is_empty() {
        return None;
    }
    let mut out: String = trimmed.chars().take(EXCERPT_CHARS).collect();
    if trimmed.chars().nth(EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    Some(out)
}

/// Lifecycle of an escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EscalationStatus {
    /// Waiting for a reviewer.
    Pending,
    /// Approved; the matching request may go through once.
    Approved,
    /// Denied.
    Denied,
    /// Not resolved before its deadline (counts as a denial).
    Expired,
}

/// One escalation record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    /// Id, given back to the client.
    pub id: String,
    /// Hex digest of the redacted request.
    pub fingerprint: String,
    /// Organization of the requester.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Team of the requester.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// User id of the requester.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Role of the requester.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Why: `require_review` or `category:<name>`.
    pub reason: String,
    /// What the reviewer approves: the start of the held request's last user message, with every
    /// built-in entity type replaced by its label ([`excerpt`]). `None` for a request without
    /// user text, and for escalations recorded before excerpts existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
    /// Reviewer the pack names by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Stored status (see [`Escalation::status_at`] for expiry).
    pub status: EscalationStatus,
    /// Creation time.
    pub created_at: Millis,
    /// Pending escalations expire at this time.
    pub expires_at: Millis,
    /// When it was approved or denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Millis>,
    /// Who approved or denied it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// When the approved request went through (an approval is used once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeemed_at: Option<Millis>,
}

impl Escalation {
    /// Applies a reviewer's decision if the escalation is pending at `now`; returns whether it
    /// changed (every store applies this same rule inside its own atomic step).
    pub fn resolve_at(&mut self, resolution: Resolution, by: &str, now: Millis) -> bool {
        if self.status_at(now) != EscalationStatus::Pending {
            return false;
        }
        self.status = match resolution {
            Resolution::Approve => EscalationStatus::Approved,
            Resolution::Deny => EscalationStatus::Denied,
        };
        self.resolved_at = Some(now);
        self.resolved_by = Some(by.to_owned());
        true
    }

    /// Checks a retried request against this escalation; a granted approval is marked used.
    pub fn redeem_at(&mut self, fingerprint: &str, team: Option<&str>, now: Millis) -> Redeem {
        let out = redeem_outcome(self, fingerprint, team, now);
        if out == Redeem::Granted {
            self.redeemed_at = Some(now);
        }
        out
    }

    /// The status as of `now`: a pending escalation past its deadline is expired.
    pub fn status_at(&self, now: Millis) -> EscalationStatus {
        if self.status == EscalationStatus::Pending && now >= self.expires_at {
            EscalationStatus::Expired
        } else {
            self.status
        }
    }
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// Let the request through once.
    Approve,
    /// Refuse it.
    Deny,
}

/// What happened when a request tried to use an escalation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeem {
    /// Approved and matching: the request goes through; the approval is now used.
    Granted,
    /// Still waiting for review.
    Pending(String),
    /// Denied by a reviewer.
    Denied,
    /// Expired before review, or the approval's request never came in time.
    Expired,
    /// No such id, another request's fingerprint or team, or already used.
    Invalid(&'static str),
}

/// Storage of escalations. `redeem` and `resolve` must be atomic: a SQL store makes each one
/// statement or one transaction.
pub trait EscalationStore: Send + Sync {
    /// Inserts a new escalation.
    ///
    /// # Errors
    /// `StoreError::Conflict` if the id exists; other errors if the store failed.
    fn insert(&self, escalation: &Escalation) -> Result<(), StoreError>;

    /// Reads one escalation.
    ///
    /// # Errors
    /// If the store failed.
    fn get(&self, id: &str) -> Result<Option<Escalation>, StoreError>;

    /// Escalations of one team (all teams when `None`), newest first.
    ///
    /// # Errors
    /// If the store failed.
    fn list(&self, team: Option<&str>) -> Result<Vec<Escalation>, StoreError>;

    /// Atomically moves a pending, unexpired escalation to approved/denied. Returns the updated
    /// record, or the current one unchanged if it was not pending (the caller reports that).
    ///
    /// # Errors
    /// If the store failed.
    fn resolve(
        &self,
        id: &str,
        resolution: Resolution,
        by: &str,
        now: Millis,
    ) -> Result<Option<Escalation>, StoreError>;

    /// Atomically checks that the escalation is approved, matches `fingerprint` and `team`, and
    /// is unused, and marks it used.
    ///
    /// # Errors
    /// If the store failed.
    fn redeem(
        &self,
        id: &str,
        fingerprint: &str,
        team: Option<&str>,
        now: Millis,
    ) -> Result<Redeem, StoreError>;
}

/// The redeem rule shared by every store: given the current record, what the outcome is and
/// whether to mark it used.
pub fn redeem_outcome(
    esc: &Escalation,
    fingerprint: &str,
    team: Option<&str>,
    now: Millis,
) -> Redeem {
    if esc.fingerprint != fingerprint || esc.team.as_deref() != team {
        return Redeem::Invalid("escalation belongs to another request");
    }
    match esc.status_at(now) {
        EscalationStatus::Pending => Redeem::Pending(esc.id.clone()),
        EscalationStatus::Denied => Redeem::Denied,
        EscalationStatus::Expired => Redeem::Expired,
        EscalationStatus::Approved if esc.redeemed_at.is_some() => {
            Redeem::Invalid("escalation approval already used")
        }
        EscalationStatus::Approved => Redeem::Granted,
    }
}

impl crate::memory::Row for Escalation {
    fn id(&self) -> &str {
        &self.id
    }

    fn team(&self) -> Option<&str> {
        self.team.as_deref()
    }

    fn created_at(&self) -> Millis {
        self.created_at
    }
}

/// In-memory escalation store, for tests and single-process embedding.
#[derive(Debug)]
pub struct MemoryEscalations {
    table: Table<Escalation>,
}

impl Default for MemoryEscalations {
    fn default() -> Self {
        MemoryEscalations {
            table: Table::new("escalation"),
        }
    }
}

impl MemoryEscalations {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl EscalationStore for MemoryEscalations {
    fn insert(&self, escalation: &Escalation) -> Result<(), StoreError> {
        self.table.insert(escalation)
    }

    fn get(&self, id: &str) -> Result<Option<Escalation>, StoreError> {
        self.table.get(id)
    }

    fn list(&self, team: Option<&str>) -> Result<Vec<Escalation>, StoreError> {
        self.table.list(team)
    }

    fn resolve(
        &self,
        id: &str,
        resolution: Resolution,
        by: &str,
        now: Millis,
    ) -> Result<Option<Escalation>, StoreError> {
        let mut rows = self.table.lock()?;
        Ok(rows.get_mut(id).map(|e| {
            e.resolve_at(resolution, by, now);
            e.clone()
        }))
    }

    fn redeem(
        &self,
        id: &str,
        fingerprint: &str,
        team: Option<&str>,
        now: Millis,
    ) -> Result<Redeem, StoreError> {
        let mut rows = self.table.lock()?;
        Ok(match rows.get_mut(id) {
            Some(e) => e.redeem_at(fingerprint, team, now),
            None => Redeem::Invalid("no such escalation"),
        })
    }
}

/// Approves or denies an escalation on behalf of `reviewer`, who must be an owner or an admin of
/// the escalation's team.
///
/// # Errors
/// `Forbidden` for anyone else, `NotFound` for an unknown id, `Conflict` when the escalation is
/// no longer pending (already resolved or expired), `Store` if the store failed.
pub fn resolve(
    store: &dyn EscalationStore,
    reviewer: &Principal,
    id: &str,
    resolution: Resolution,
    now: Millis,
) -> Result<Escalation, AdminError> {
    let current = store
        .get(id)?
        .ok_or_else(|| AdminError::NotFound(format!("escalation `{id}`")))?;
    crate::authority::authorize(
        reviewer,
        &crate::authority::Action::ResolveEscalation {
            team: current.team.as_deref(),
            requester: current.user.as_deref(),
        },
    )?;
    let by = reviewer.user.clone().unwrap_or_else(|| "unknown".into());
    let after = store
        .resolve(id, resolution, &by, now)?
        .ok_or_else(|| AdminError::NotFound(format!("escalation `{id}`")))?;
    let expected = match resolution {
        Resolution::Approve => EscalationStatus::Approved,
        Resolution::Deny => EscalationStatus::Denied,
    };
    if after.status != expected || after.resolved_at != Some(now) {
        let state = match after.status_at(now) {
            EscalationStatus::Pending => "pending",
            EscalationStatus::Approved => "approved",
            EscalationStatus::Denied => "denied",
            EscalationStatus::Expired => "expired",
        };
        return Err(AdminError::Conflict(format!(
            "escalation `{id}` is {state}, not pending"
        )));
    }
    Ok(after)
}

/// The escalations `viewer` may see, as [`crate::wallet::ticket::list_visible`].
///
/// # Errors
/// A store failure.
pub fn list_visible(
    store: &dyn EscalationStore,
    viewer: &Principal,
) -> Result<Vec<Escalation>, StoreError> {
    let rows = store.list(viewer.review_scope().as_deref())?;
    Ok(crate::authority::visible(viewer, rows, |e| {
        (e.team.as_deref(), e.user.as_deref())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_is_redacted_before_it_is_cut() {
        let r = crate::request::ChatRequest::user(
            "m",
            "Patient jane.doe@example.com, SSN 123-45-6789, asks for a review",
        );
        let e = excerpt(&r).unwrap();
        assert!(!e.contains("jane.doe") && !e.contains("123-45-6789"), "{e}");
        assert!(e.contains("[EMAIL]") && e.contains("[US_SSN]"), "{e}");
        let long = format!("{} 4111 1111 1111 1111", "a".repeat(EXCERPT_CHARS - 10));
        let e = excerpt(&crate::request::ChatRequest::user("m", &long)).unwrap();
        assert!(
            !e.contains("4111"),
            "a value across the cut is redacted: {e}"
        );
        assert!(e.ends_with('…') && e.chars().count() == EXCERPT_CHARS + 1);
        assert_eq!(excerpt(&crate::request::ChatRequest::user("m", "  ")), None);
    }

    fn esc(id: &str) -> Escalation {
        Escalation {
            id: id.into(),
            fingerprint: "f".into(),
            org: None,
            team: Some("legal".into()),
            user: Some("u@x.com".into()),
            role: Some(Role::Member),
            reason: "require_review".into(),
            excerpt: None,
            assignee: None,
            status: EscalationStatus::Pending,
            created_at: 0,
            expires_at: 1000,
            resolved_at: None,
            resolved_by: None,
            redeemed_at: None,
        }
    }

    #[test]
    fn approve_then_redeem_once() {
        let s = MemoryEscalations::new();
        s.insert(&esc("e1")).unwrap();
        let admin = Principal::new("a@x.com", "legal", Role::Admin);
        resolve(&s, &admin, "e1", Resolution::Approve, 10).unwrap();
        assert_eq!(
            s.redeem("e1", "f", Some("legal"), 20).unwrap(),
            Redeem::Granted
        );
        assert!(matches!(
            s.redeem("e1", "f", Some("legal"), 21).unwrap(),
            Redeem::Invalid(_)
        ));
    }

    #[test]
    fn only_team_admins_and_owners_resolve() {
        let s = MemoryEscalations::new();
        s.insert(&esc("e1")).unwrap();
        let other = Principal::new("a@x.com", "support", Role::Admin);
        let member = Principal::new("m@x.com", "legal", Role::Member);
        assert_eq!(
            resolve(&s, &other, "e1", Resolution::Approve, 1)
                .unwrap_err()
                .code(),
            "forbidden"
        );
        assert_eq!(
            resolve(&s, &member, "e1", Resolution::Approve, 1)
                .unwrap_err()
                .code(),
            "forbidden"
        );
        let owner = Principal::new("o@x.com", "eng", Role::Owner);
        resolve(&s, &owner, "e1", Resolution::Deny, 1).unwrap();
        assert_eq!(
            resolve(&s, &owner, "e1", Resolution::Approve, 2)
                .unwrap_err()
                .code(),
            "conflict"
        );
    }

    #[test]
    fn expiry_blocks_resolution() {
        let s = MemoryEscalations::new();
        s.insert(&esc("e1")).unwrap();
        let owner = Principal::new("o@x.com", "eng", Role::Owner);
        assert_eq!(
            resolve(&s, &owner, "e1", Resolution::Approve, 1000)
                .unwrap_err()
                .code(),
            "conflict"
        );
        assert_eq!(
            s.redeem("e1", "f", Some("legal"), 1000).unwrap(),
            Redeem::Expired
        );
    }
}
