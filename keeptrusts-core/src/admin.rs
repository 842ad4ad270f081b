//! Administrative actions (`docs/authority.md`): teams, members, org admins, keys, wallets, tickets and
//! escalations, each decided by [`authorize`] and each recorded as an event in the org's hash
//! chain.
//!
//! Every host (the CLI, the admin API, the bindings, the console) calls these functions, or
//! [`execute`] with a [`Command`] (the same actions as JSON), so they decide alike. What an
//! action touches is read from the store (a member's current role, whether a user is an org
//! admin, the key or ticket as stored), never from what the caller claims. `actor: None` is the
//! host's own command line, trusted like the store's file permissions; its events name the actor
//! `local`.
//!
//! A change is written first and its event after it: if the store fails in between, the change
//! stands and the call reports the store failure.

use serde::{Deserialize, Serialize};

use crate::authority::{authorize, Action};
use crate::directory::{
    find_team, is_org_admin, valid_email, ApiKey, KeyInfo, Member, Team, ORG_SCOPE,
};
use crate::error::{AdminError, StoreError};
use crate::escalation::{Escalation, Resolution};
use crate::event::{AdminChange, Event, EventDraft};
use crate::identity::{slugify, Principal, Role, Standing};
use crate::store::Storage;
use crate::time::Millis;
use crate::wallet::budget::DEFAULT_ORG;
use crate::wallet::ticket::{Ticket, TicketResolution};
use crate::wallet::{AllocateMode, Allocation, Grant, Wallet, WalletKey, WalletScope};

mod command;
mod keys;

pub use command::{execute, Command, Ruling};
pub use keys::{create_key, list_keys, revoke_key, rotate_key, Issued, NewKey};

/// Who acts, when, and what the host supplies that the core cannot make (randomness for keys,
/// the id of the call).
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    /// The actor (`None`: the host's own command line).
    pub actor: Option<&'a Principal>,
    /// The org whose chain records the action.
    pub org: &'a str,
    /// Now.
    pub now: Millis,
    /// A unique id for this call (the event is `evt_<id>`).
    pub request_id: &'a str,
    /// 32 random bytes; a new key's secret is made from them.
    pub random: [u8; 32],
}

impl<'a> Ctx<'a> {
    /// A context for `actor` in `org`.
    pub fn new(
        actor: Option<&'a Principal>,
        org: &'a str,
        now: Millis,
        request_id: &'a str,
        random: [u8; 32],
    ) -> Self {
        Ctx {
            actor,
            org,
            now,
            request_id,
            random,
        }
    }

    fn check(&self, action: &Action<'_>) -> Result<(), AdminError> {
        match self.actor {
            Some(a) => Ok(authorize(a, action)?),
            None => Ok(()),
        }
    }

    fn actor_name(&self) -> String {
        self.actor
            .and_then(|a| a.user.clone())
            .unwrap_or_else(|| "local".into())
    }

    /// Appends the event of a change.
    fn record(
        &self,
        store: &dyn Storage,
        team: Option<&str>,
        change: Change<'_>,
    ) -> Result<Event, StoreError> {
        let actor = self.actor;
        let org = if self.org.is_empty() {
            DEFAULT_ORG
        } else {
            self.org
        };
        let draft = EventDraft {
            team: team.map(str::to_owned),
            user: actor.and_then(|a| a.user.clone()),
            role: actor.and_then(|a| a.role),
            reason: Some(change.action.to_owned()),
            escalation_id: change.escalation_id.map(str::to_owned),
            ticket_id: change.ticket_id.map(str::to_owned),
            admin: Some(AdminChange {
                action: change.action.to_owned(),
                actor: self.actor_name(),
                target: change.target,
                before: change.before,
                after: change.after,
            }),
            ..EventDraft::new(self.request_id, org, self.now)
        };
        store.append(draft)
    }
}

/// One change, for its event.
struct Change<'a> {
    action: &'a str,
    target: String,
    before: Option<String>,
    after: Option<String>,
    ticket_id: Option<&'a str>,
    escalation_id: Option<&'a str>,
}

impl<'a> Change<'a> {
    fn new(action: &'a str, target: impl Into<String>) -> Self {
        Change {
            action,
            target: target.into(),
            before: None,
            after: None,
            ticket_id: None,
            escalation_id: None,
        }
    }

    fn states(mut self, before: Option<String>, after: Option<String>) -> Self {
        self.before = before;
        self.after = after;
        self
    }
}

fn active(team: &Team) -> Result<(), AdminError> {
    match team.archived_at {
        Some(_) => Err(AdminError::Conflict(format!(
            "team `{}` is archived (restore it first)",
            team.slug
        ))),
        None => Ok(()),
    }
}

fn email(user: &str) -> Result<(), AdminError> {
    if valid_email(user) {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "`{user}` is not an email address"
        )))
    }
}

fn member_of(store: &dyn Storage, team: &str, user: &str) -> Result<Option<Member>, AdminError> {
    Ok(store
        .members(Some(team))?
        .into_iter()
        .find(|m| m.user == user))
}

/// Refuses a change that would leave the organization without an owner.
fn keep_an_owner(store: &dyn Storage, team: &str, user: &str) -> Result<(), AdminError> {
    let others = store
        .members(None)?
        .iter()
        .any(|m| m.role == Role::Owner && !(m.team == team && m.user == user));
    if others {
        Ok(())
    } else {
        Err(AdminError::Conflict(format!(
            "`{user}` is the last owner: make someone else an owner first"
        )))
    }
}

/// Creates a team from its name (owners and org admins).
///
/// # Errors
/// `Forbidden`, `Invalid` (empty name), `Conflict` (the slug or name exists), a store failure.
pub fn create_team(
    store: &dyn Storage,
    ctx: &Ctx<'_>,
    name: &str,
    description: Option<&str>,
) -> Result<Team, AdminError> {
    ctx.check(&Action::CreateTeam)?;
    let slug = slugify(name);
    if slug.is_empty() {
        return Err(AdminError::Invalid(format!(
            "team name `{name}` has no letters or digits"
        )));
    }
    let team = Team {
        slug,
        name: name.trim().to_owned(),
        description: description.map(str::to_owned),
        created_at: ctx.now,
        archived_at: None,
    };
    store.create_team(&team).map_err(|e| match e {
        StoreError::Conflict(_) => AdminError::Conflict(format!("team `{}` exists", team.slug)),
        e => AdminError::Store(e),
    })?;
    ctx.record(
        store,
        Some(&team.slug),
        Change::new("team.create", &team.slug).states(None, Some(team.name.clone())),
    )?;
    Ok(team)
}

/// What [`update_team`] changes; absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamChange {
    /// A new display name (the slug, which packs and keys name, stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `true` archives the team (its keys stop authenticating), `false` restores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived: Option<bool>,
}

/// Renames, describes, archives or restores a team: its admins rename and describe, owners and
/// org admins also archive and restore.
///
/// # Errors
/// `NotFound`, `Forbidden`, `Invalid` (an empty name or change), `Conflict` (the new name is
/// another team's), a store failure.
pub fn update_team(
    store: &dyn Storage,
    ctx: &Ctx<'_>,
    team: &str,
    change: &TeamChange,
) -> Result<Team, AdminError> {
    let before = find_team(store, team)?;
    ctx.check(&Action::UpdateTeam {
        team: &before.slug,
        archive: change.archived.is_some(),
    })?;
    if change == &TeamChange::default() {
        return Err(AdminError::Invalid(
            "name at least one of `name`, `description`, `archived`".into(),
        ));
    }
    if let Some(name) = &change.name {
        let slug = slugify(name);
        if slug.is_empty() {
            return Err(AdminError::Invalid(format!(
                "team name `{name}` has no letters or digits"
            )));
        }
        let clash = store.teams()?.into_iter().find(|t| {
            t.slug != before.slug && (t.slug == slug || t.name.eq_ignore_ascii_case(name.trim()))
        });
        if let Some(t) = clash {
            return Err(AdminError::Conflict(format!(
                "the name `{}` is taken by team `{}`",
                name.trim(),
                t.slug
            )));
        }
    }
    let now = ctx.now;
    let after = store
        .update_team(&before.slug, &|t| {
            if let Some(n) = &change.name {
                n.trim().clone_into(&mut t.name);
            }
            if let Some(d) = &change.description {
                t.description = Some(d.clone());
            }
            match change.archived {
                Some(true) if t.archived_at.is_none() => t.archived_at = Some(now),
                Some(false) => t.archived_at = None,
                _ => {}
            }
        })?
        .ok_or_else(|| AdminError::NotFound(format!("team `{}`", before.slug)))?;
    let action = match change.archived {
        Some(true) => "team.archive",
        Some(false) => "team.restore",
        None => "team.update",
    };
    let state = |t: &Team| {
        Some(format!(
            "{}{}",
            t.name,
            if t.archived_at.is_some() {
                " (archived)"
            } else {
                ""
            }
        ))
    };
    ctx.record(
        store,
        Some(&after.slug),
        Change::new(action, &after.slug).states(state(&before), state(&after)),
    )?;
    Ok(after)
}

/// A team, with its members for those who administer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamView {
    /// The team.
    #[serde(flatten)]
    pub team: Team,
    /// Its members (for owners, org admins and the team's admins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Member>>,
}

/// One team: its members for those who administer it, the team alone for its members.
///
/// # Errors
/// `NotFound`, `Forbidden`, a store failure.
pub fn get_team(store: &dyn Storage, ctx: &Ctx<'_>, team: &str) -> Result<TeamView, AdminError> {
    let team = find_team(store, team)?;
    let full = ctx.actor.is_none_or(|a| {
        authorize(
            a,
            &Action::ViewTeam {
                team: &team.slug,
                members: true,
            },
        )
        .is_ok()
    });
    if !full {
        ctx.check(&Action::ViewTeam {
            team: &team.slug,
            members: false,
        })?;
    }
    let members = if full {
        Some(store.members(Some(&team.slug))?)
    } else {
        None
    };
    Ok(TeamView { team, members })
}

/// Adds a user to a team with a role, or changes their role: owners anywhere; org admins and
/// admins of the team below their own standing. The team is named as [`find_team`] reads it.
///
/// # Errors
/// `Forbidden`, `NotFound` (no such team), `Invalid` (not an email), `Conflict` (an archived
/// team, or the last owner demoted), a store failure.
pub fn set_member(
    store: &dyn Storage,
    ctx: &Ctx<'_>,
    team: &str,
    user: &str,
    role: Role,
) -> Result<Member, AdminError> {
    let found = find_team(store, team)?;
    let team = found.slug.as_str();
    let current = member_of(store, team, user)?.map(|m| m.role);
    let elsewhere = store
        .members(None)?
        .iter()
        .any(|m| m.user == user && m.team != team);
    ctx.check(&Action::SetMember {
        team,
        user,
        role,
        current,
        elsewhere,
    })?;
    email(user)?;
    active(&found)?;
    if current == Some(Role::Owner) && role != Role::Owner {
        keep_an_owner(store, team, user)?;
    }
    let m = Member {
        team: team.to_owned(),
        user: user.to_owned(),
        role,
        updated_at: ctx.now,
    };
    store.put_member(&m)?;
    ctx.record(
        store,
        Some(team),
        Change::new("member.set", format!("{team}/{user}"))
            .states(current.map(|r| r.to_string()), Some(role.to_string())),
    )?;
    Ok(m)
}

/// Removes a user from a team: owners anywhere, org admins and the team's admins for members
/// below their own standing, anyone for themselves (but not the last owner). Their keys for
/// that team stop authenticating at once.
///
/// # Errors
/// `NotFound` (no such team or membership), `Forbidden`, `Conflict` (the last owner), a store
/// failure.
pub fn remove_member(
    store: &dyn Storage,
    ctx: &Ctx<'_>,
    team: &str,
    user: &str,
) -> Result<Member, AdminError> {
    let found = find_team(store, team)?;
    let team = found.slug.as_str();
    let Some(current) = member_of(store, team, user)? else {
        // an admin of the team may learn who is not in it; others may not probe
        if let Some(a) = ctx.actor {
            if !a.administers(Some(team)) {
                return Err(AdminError::Forbidden(format!(
                    "only owners and admins of `{team}` manage its members"
                )));
            }
        }
        return Err(AdminError::NotFound(format!(
            "`{user}` is not a member of `{team}`"
        )));
    };
    ctx.check(&Action::RemoveMember {
        team,
        user,
        current: current.role,
    })?;
    if current.role == Role::Owner {
        keep_an_owner(store, team, user)?;
    }
    let removed = store
        .remove_member(team, user)?
        .ok_or_else(|| AdminError::NotFound(format!("`{user}` is not a member of `{team}`")))?;
    ctx.record(
        store,
        Some(team),
        Change::new("member.remove", format!("{team}/{user}"))
            .states(Some(removed.role.to_string()), None),
    )?;
    Ok(removed)
}

/// The members of a team, for those who administer it.
///
/// # Errors
/// `NotFound`, `Forbidden`, a store failure.
pub fn list_members(
    store: &dyn Storage,
    ctx: &Ctx<'_>,
    team: &str,
) -> Result<Vec<Member>, AdminError> {
    let team = find_team(store, team)?;
    ctx.check(&Action::ViewTeam {
        team: &team.slug,
        members: true,
    })?;
    Ok(store.members(Some(&team.slug))?)
}

/// Makes `user` an org admin (`grant`) or withdraws it: owners only. An org admin administers
/// every team (members below org admin, keys, team and user wallets, tickets, escalations,
/// events) but not owners, org admins, or the org wallet.
///
/// # Errors
/// `Forbidden`, `Invalid` (not an email), `NotFound` (withdrawing from a user who is not one), a
/// store failure.
pub fn set_org_admin(
    store: &dyn Storage,
    ctx: &Ctx<'_>,
    user: &str,
    grant: bool,
) -> Result<Option<Member>, AdminError> {
    ctx.check(&Action::SetOrgAdmin)?;
    email(user)?;
    let was = is_org_admin(store, user)?;
    let out = if grant {
        let m = Member {
            team: ORG_SCOPE.to_owned(),
            user: user.to_owned(),
            role: Role::Admin,
            updated_at: ctx.now,
        };
        store.put_member(&m)?;
        Some(m)
    } else {
        if !was {
            return Err(AdminError::NotFound(format!(
                "`{user}` is not an org admin"
            )));
        }
        store.remove_member(ORG_SCOPE, user)?;
        None
    };
    ctx.record(
        store,
        None,
        Change::new(
            if grant {
                "org_admin.add"
            } else {
                "org_admin.remove"
            },
            user,
        )
        .states(
            was.then(|| "org admin".to_owned()),
            grant.then(|| "org admin".to_owned()),
        ),
    )?;
    Ok(out)
}

/// The org admins.
///
/// # Errors
/// A store failure.
pub fn org_admins(store: &dyn Storage) -> Result<Vec<Member>, AdminError> {
    Ok(store.members(Some(ORG_SCOPE))?)
}

fn amount(w: Option<&Wallet>) -> Option<String> {
    w.map(|w| format!("{} {}", w.allocated, w.currency))
}

/// Sets or tops up a wallet ([`Allocation`]) on behalf of the actor. A team is named by slug or
/// display name; an unknown team or user is `NotFound` (no wallet nobody draws from is made).
///
/// # Errors
/// As [`crate::wallet::allocate`]; `NotFound` for an unknown team or user.
pub fn allocate(
    store: &dyn Storage,
    ctx: &Ctx<'_>,
    allocation: &Allocation,
) -> Result<Wallet, AdminError> {
    let mut key = allocation.key()?;
    let mut user_teams = Vec::new();
    match key.scope {
        WalletScope::Team => {
            key = WalletKey::new(WalletScope::Team, &find_team(store, &key.id)?.slug)
        }
        WalletScope::User => {
            user_teams = store
                .members(None)?
                .into_iter()
                .filter(|m| m.user == *key.id && m.team != ORG_SCOPE)
                .map(|m| m.team)
                .collect();
            if user_teams.is_empty() && !is_org_admin(store, &key.id)? {
                return Err(AdminError::NotFound(format!(
                    "user `{}` is not a member of any team (add them first)",
                    key.id
                )));
            }
        }
        WalletScope::Org => {}
    }
    let actor = ctx.actor.cloned().unwrap_or_else(local_owner);
    let before = crate::WalletStore::get(store, &key, ctx.now)?;
    let grant = Grant {
        amount: allocation.amount,
        currency: &allocation.currency,
        period: allocation.period,
        mode: allocation.mode.unwrap_or(AllocateMode::Set),
    };
    let w = crate::wallet::allocate(store, &actor, &key, &user_teams, &grant, ctx.now)?;
    let team = match key.scope {
        WalletScope::Team => Some(key.id.to_string()),
        WalletScope::User => ctx
            .actor
            .and_then(|a| a.team.clone())
            .filter(|t| user_teams.contains(t))
            .or_else(|| user_teams.first().cloned()),
        WalletScope::Org => None,
    };
    ctx.record(
        store,
        team.as_deref(),
        Change::new("wallet.allocate", key.to_string())
            .states(amount(before.as_ref()), amount(Some(&w))),
    )?;
    Ok(w)
}

/// The host's own command line, as an actor the wallet rules accept.
fn local_owner() -> Principal {
    Principal {
        user: Some("local".into()),
        role: Some(Role::Owner),
        authenticated: true,
        ..Principal::default()
    }
}

/// Approves (charging `charge_to`, by default the ticket's team wallet) or denies a cost ticket.
///
/// # Errors
/// As [`crate::wallet::ticket::resolve`].
pub fn resolve_ticket(
    store: &dyn Storage,
    ctx: &Ctx<'_>,
    id: &str,
    approve: bool,
    charge_to: Option<&str>,
) -> Result<Ticket, AdminError> {
    let resolution = if approve {
        TicketResolution::approve(store, id, charge_to)?
    } else {
        TicketResolution::Deny
    };
    let actor = ctx.actor.cloned().unwrap_or_else(local_owner);
    let t = crate::wallet::ticket::resolve(store, &actor, id, &resolution, ctx.now)?;
    let after = match &resolution {
        TicketResolution::Approve { charge_to } => format!("approved, charged to {charge_to}"),
        TicketResolution::Deny => "denied".into(),
    };
    let mut change = Change::new(
        if approve {
            "ticket.approve"
        } else {
            "ticket.deny"
        },
        id,
    )
    .states(
        Some(format!("pending, {} {}", t.estimate, t.currency)),
        Some(after),
    );
    change.ticket_id = Some(id);
    ctx.record(store, t.team.as_deref(), change)?;
    Ok(t)
}

/// Approves or denies an escalation.
///
/// # Errors
/// As [`crate::escalation::resolve`].
pub fn resolve_escalation(
    store: &dyn Storage,
    ctx: &Ctx<'_>,
    id: &str,
    resolution: Resolution,
) -> Result<Escalation, AdminError> {
    let actor = ctx.actor.cloned().unwrap_or_else(local_owner);
    let e = crate::escalation::resolve(store, &actor, id, resolution, ctx.now)?;
    let (action, after) = match resolution {
        Resolution::Approve => ("escalation.approve", "approved"),
        Resolution::Deny => ("escalation.deny", "denied"),
    };
    let mut change = Change::new(action, id).states(Some("pending".into()), Some(after.to_owned()));
    change.escalation_id = Some(id);
    ctx.record(store, e.team.as_deref(), change)?;
    Ok(e)
}

#[cfg(test)]
mod tests;
