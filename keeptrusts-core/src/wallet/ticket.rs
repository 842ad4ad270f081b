//! Cost tickets: what happens when no wallet in the cascade can cover a request.
//!
//! The request is refused with 402 and a ticket that records it (by fingerprint). An owner, or an
//! admin of the requester's team, approves it and names the wallet to charge, or denies it; or
//! somebody funds a wallet. The client re-sends the same request with `X-Keeptrusts-Ticket-Id`:
//! an approved ticket reserves on the named wallet (even beyond its balance: the approver accepted
//! the overrun) exactly once; a pending ticket tries the cascade again and, if a wallet can now
//! pay, is closed as fulfilled.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::WalletKey;
use crate::authority::{authorize, Action};
use crate::error::{AdminError, StoreError};
use crate::identity::{Principal, Role};
use crate::memory::Table;
use crate::time::Millis;

/// Lifecycle of a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TicketStatus {
    /// Waiting for approval or funding.
    Pending,
    /// Approved; the matching request may go through once, charged to `charge_to`.
    Approved,
    /// Denied.
    Denied,
    /// Not resolved before its deadline.
    Expired,
    /// A wallet was funded and the request went through on retry.
    Fulfilled,
}

/// One cost ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Id (`tkt_<request id>`), given back to the client.
    pub id: String,
    /// Fingerprint of the (redacted) request.
    pub fingerprint: String,
    /// Organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// User.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Model asked for.
    pub model: String,
    /// Estimated cost.
    pub estimate: Decimal,
    /// Currency of the estimate.
    pub currency: crate::pricing::Currency,
    /// Stored status (see [`Ticket::status_at`]).
    pub status: TicketStatus,
    /// Creation time.
    pub created_at: Millis,
    /// Pending tickets expire then.
    pub expires_at: Millis,
    /// Approval or denial time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Millis>,
    /// Who approved or denied it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// The wallet an approval charges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_to: Option<WalletKey>,
    /// When the request went through on this ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeemed_at: Option<Millis>,
    /// While a gateway holds the request open waiting for this ticket (`wallets.queue`): until
    /// when, at most. Cleared when the hold ends; a gateway that stopped without clearing it
    /// leaves a time that has passed ([`Ticket::held_at`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_until: Option<Millis>,
}

impl Ticket {
    /// Applies an approver's decision if the ticket is pending at `now`; returns whether it
    /// changed (every store applies this same rule inside its own atomic step).
    pub fn resolve_at(&mut self, resolution: &TicketResolution, by: &str, now: Millis) -> bool {
        if self.status_at(now) != TicketStatus::Pending {
            return false;
        }
        match resolution {
            TicketResolution::Approve { charge_to } => {
                self.status = TicketStatus::Approved;
                self.charge_to = Some(charge_to.clone());
            }
            TicketResolution::Deny => self.status = TicketStatus::Denied,
        }
        self.resolved_at = Some(now);
        self.resolved_by = Some(by.to_owned());
        true
    }

    /// Checks a retried request against this ticket; an approved match is marked used.
    pub fn redeem_at(
        &mut self,
        fingerprint: &str,
        team: Option<&str>,
        now: Millis,
    ) -> TicketRedeem {
        let out = redeem_outcome(self, fingerprint, team, now);
        if matches!(out, TicketRedeem::Approved(_)) {
            self.redeemed_at = Some(now);
        }
        out
    }

    /// Gives a used approval back (the request it let through failed before the provider
    /// could bill it, or its client went away first); returns whether it changed.
    pub fn restore_at(&mut self) -> bool {
        if self.status != TicketStatus::Approved || self.redeemed_at.is_none() {
            return false;
        }
        self.redeemed_at = None;
        true
    }

    /// Closes a pending ticket whose request went through after funding; returns whether it
    /// changed.
    pub fn fulfill_at(&mut self, now: Millis) -> bool {
        if self.status_at(now) != TicketStatus::Pending {
            return false;
        }
        self.status = TicketStatus::Fulfilled;
        self.redeemed_at = Some(now);
        true
    }

    /// Whether a gateway holds the ticket's request open at `now`.
    pub fn held_at(&self, now: Millis) -> bool {
        self.held_until.is_some_and(|u| now < u)
    }

    /// Status as of `now`: a pending ticket past its deadline is expired.
    pub fn status_at(&self, now: Millis) -> TicketStatus {
        if self.status == TicketStatus::Pending && now >= self.expires_at {
            TicketStatus::Expired
        } else {
            self.status
        }
    }
}

/// An approver's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketResolution {
    /// Let the request through once, charged to this wallet.
    Approve {
        /// The wallet to charge.
        charge_to: WalletKey,
    },
    /// Refuse it.
    Deny,
}

impl TicketResolution {
    /// An approval charging `charge_to` (`team:ID`, `user:EMAIL`, `org:ID`), or by default the
    /// wallet of the ticket's team.
    ///
    /// # Errors
    /// `NotFound` for an unknown ticket, `Invalid` for a bad wallet or a ticket without a team
    /// and no `charge_to`, `Store`.
    pub fn approve(
        store: &dyn TicketStore,
        id: &str,
        charge_to: Option<&str>,
    ) -> Result<TicketResolution, AdminError> {
        let charge_to = match charge_to {
            Some(w) => w.parse()?,
            None => {
                let t = store
                    .get(id)?
                    .ok_or_else(|| AdminError::NotFound(format!("ticket `{id}`")))?;
                let team = t.team.ok_or_else(|| {
                    AdminError::Invalid("the ticket has no team: name the wallet to charge".into())
                })?;
                WalletKey::new(super::WalletScope::Team, &team)
            }
        };
        Ok(TicketResolution::Approve { charge_to })
    }
}

/// What a retried request may do with its ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketRedeem {
    /// Approved and matching: reserve on this wallet; the ticket is now used.
    Approved(WalletKey),
    /// Still pending (or the id was valid but not usable yet): try the cascade again.
    Pending,
    /// Denied.
    Denied,
    /// Expired.
    Expired,
    /// No such ticket, another request's, or already used.
    Invalid(&'static str),
}

/// Storage of tickets; `resolve`, `redeem` and `fulfill` are atomic.
pub trait TicketStore: Send + Sync {
    /// Inserts a ticket.
    ///
    /// # Errors
    /// `Conflict` if the id exists; a store failure.
    fn insert(&self, ticket: &Ticket) -> Result<(), StoreError>;
    /// One ticket.
    ///
    /// # Errors
    /// A store failure.
    fn get(&self, id: &str) -> Result<Option<Ticket>, StoreError>;
    /// Tickets of a team (all when `None`), newest first.
    ///
    /// # Errors
    /// A store failure.
    fn list(&self, team: Option<&str>) -> Result<Vec<Ticket>, StoreError>;
    /// Moves a pending, unexpired ticket to approved/denied; returns the record after the call
    /// (unchanged if it was not pending).
    ///
    /// # Errors
    /// A store failure.
    fn resolve(
        &self,
        id: &str,
        resolution: &TicketResolution,
        by: &str,
        now: Millis,
    ) -> Result<Option<Ticket>, StoreError>;
    /// Checks a retried request against its ticket; an approved match is marked used.
    ///
    /// # Errors
    /// A store failure.
    fn redeem(
        &self,
        id: &str,
        fingerprint: &str,
        team: Option<&str>,
        now: Millis,
    ) -> Result<TicketRedeem, StoreError>;
    /// Closes a pending ticket whose request went through after funding.
    ///
    /// # Errors
    /// A store failure.
    fn fulfill(&self, id: &str, now: Millis) -> Result<(), StoreError>;
    /// Makes a redeemed approval redeemable again ([`Ticket::restore_at`]).
    ///
    /// # Errors
    /// A store failure.
    fn restore(&self, id: &str) -> Result<(), StoreError>;
    /// Records that a gateway holds the ticket's request open until `until`, or (`None`) that
    /// it no longer does ([`Ticket::held_until`]); an unknown id is no error.
    ///
    /// # Errors
    /// A store failure.
    fn hold(&self, id: &str, until: Option<Millis>) -> Result<(), StoreError>;
}

/// The redeem rule every store applies.
pub fn redeem_outcome(
    t: &Ticket,
    fingerprint: &str,
    team: Option<&str>,
    now: Millis,
) -> TicketRedeem {
    if t.fingerprint != fingerprint || t.team.as_deref() != team {
        return TicketRedeem::Invalid("ticket belongs to another request");
    }
    match t.status_at(now) {
        TicketStatus::Pending => TicketRedeem::Pending,
        TicketStatus::Denied => TicketRedeem::Denied,
        TicketStatus::Expired => TicketRedeem::Expired,
        TicketStatus::Fulfilled => TicketRedeem::Invalid("ticket already fulfilled"),
        TicketStatus::Approved if t.redeemed_at.is_some() => {
            TicketRedeem::Invalid("ticket approval already used")
        }
        TicketStatus::Approved => match &t.charge_to {
            Some(k) => TicketRedeem::Approved(k.clone()),
            None => TicketRedeem::Invalid("approved ticket names no wallet"),
        },
    }
}

impl crate::memory::Row for Ticket {
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

/// In-memory ticket store.
#[derive(Debug)]
pub struct MemoryTickets {
    table: Table<Ticket>,
}

impl Default for MemoryTickets {
    fn default() -> Self {
        MemoryTickets {
            table: Table::new("ticket"),
        }
    }
}

impl MemoryTickets {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl TicketStore for MemoryTickets {
    fn insert(&self, ticket: &Ticket) -> Result<(), StoreError> {
        self.table.insert(ticket)
    }

    fn get(&self, id: &str) -> Result<Option<Ticket>, StoreError> {
        self.table.get(id)
    }

    fn list(&self, team: Option<&str>) -> Result<Vec<Ticket>, StoreError> {
        self.table.list(team)
    }

    fn resolve(
        &self,
        id: &str,
        resolution: &TicketResolution,
        by: &str,
        now: Millis,
    ) -> Result<Option<Ticket>, StoreError> {
        let mut rows = self.table.lock()?;
        Ok(rows.get_mut(id).map(|t| {
            t.resolve_at(resolution, by, now);
            t.clone()
        }))
    }

    fn redeem(
        &self,
        id: &str,
        fingerprint: &str,
        team: Option<&str>,
        now: Millis,
    ) -> Result<TicketRedeem, StoreError> {
        let mut rows = self.table.lock()?;
        Ok(match rows.get_mut(id) {
            Some(t) => t.redeem_at(fingerprint, team, now),
            None => TicketRedeem::Invalid("no such ticket"),
        })
    }

    fn fulfill(&self, id: &str, now: Millis) -> Result<(), StoreError> {
        let mut rows = self.table.lock()?;
        if let Some(t) = rows.get_mut(id) {
            t.fulfill_at(now);
        }
        Ok(())
    }

    fn restore(&self, id: &str) -> Result<(), StoreError> {
        let mut rows = self.table.lock()?;
        if let Some(t) = rows.get_mut(id) {
            t.restore_at();
        }
        Ok(())
    }

    fn hold(&self, id: &str, until: Option<Millis>) -> Result<(), StoreError> {
        let mut rows = self.table.lock()?;
        if let Some(t) = rows.get_mut(id) {
            t.held_until = until;
        }
        Ok(())
    }
}

/// Approves (charging the wallet the approver names) or denies a ticket on behalf of `approver`:
/// an owner, or an admin of the ticket's team who may also manage the named wallet.
///
/// # Errors
/// `Forbidden`, `NotFound`, `Conflict` (not pending: resolved, fulfilled or expired), `Store`.
pub fn resolve(
    store: &dyn TicketStore,
    approver: &Principal,
    id: &str,
    resolution: &TicketResolution,
    now: Millis,
) -> Result<Ticket, AdminError> {
    let current = store
        .get(id)?
        .ok_or_else(|| AdminError::NotFound(format!("ticket `{id}`")))?;
    let charge_to = match resolution {
        TicketResolution::Approve { charge_to } => Some(charge_to),
        TicketResolution::Deny => None,
    };
    authorize(
        approver,
        &Action::ResolveTicket {
            team: current.team.as_deref(),
            requester: current.user.as_deref(),
            charge_to,
        },
    )?;
    let by = approver.user.clone().unwrap_or_else(|| "unknown".into());
    let after = store
        .resolve(id, resolution, &by, now)?
        .ok_or_else(|| AdminError::NotFound(format!("ticket `{id}`")))?;
    if after.resolved_at != Some(now) || after.resolved_by.as_deref() != Some(by.as_str()) {
        let state = match after.status_at(now) {
            TicketStatus::Pending => "pending",
            TicketStatus::Approved => "approved",
            TicketStatus::Denied => "denied",
            TicketStatus::Expired => "expired",
            TicketStatus::Fulfilled => "fulfilled",
        };
        return Err(AdminError::Conflict(format!(
            "ticket `{id}` is {state}, not pending"
        )));
    }
    Ok(after)
}

/// The cost tickets `viewer` may see: an owner every team's, an admin their team's, a member
/// their own ([`Action::ViewRequest`]).
///
/// # Errors
/// A store failure.
pub fn list_visible(
    store: &dyn TicketStore,
    viewer: &Principal,
) -> Result<Vec<Ticket>, StoreError> {
    let rows = store.list(viewer.review_scope().as_deref())?;
    Ok(crate::authority::visible(viewer, rows, |t| {
        (t.team.as_deref(), t.user.as_deref())
    }))
}
