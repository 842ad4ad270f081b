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
use crate::wallet::{AllocateMode, Allocation, Wallet, WalletKey, WalletScope};
use crate::Verdict;

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
        let draft = EventDraft {
            id: format!("evt_{}", self.request_id),
            request_id: self.request_id.to_owned(),
            timestamp: self.now,
            org: if self.org.is_empty() {
                DEFAULT_ORG.to_owned()
            } else {
                self.org.to_owned()
            },
            team: team.map(str::to_owned),
            user: actor.and_then(|a| a.user.clone()),
            role: actor.and_then(|a| a.role),
            consumer_group: None,
            model: None,
            target: None,
            verdict: Verdict::Allow,
            status: 200,
            reason: Some(change.action.to_owned()),
            policies: Vec::new(),
            cost: None,
            tokens: None,
            escalation_id: change.escalation_id.map(str::to_owned),
            ticket_id: change.ticket_id.map(str::to_owned),
            audit: None,
            admin: Some(AdminChange {
                action: change.action.to_owned(),
                actor: self.actor_name(),
                target: change.target,
                before: change.before,
                after: change.after,
            }),
            key_hint: None,
            suppressed: None,
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

/// What a new key is for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// The team requests with the key are attributed to (slug or display name).
    pub team: String,
    /// The user the key acts as.
    #[serde(alias = "user")]
    pub email: String,
    /// The consumer group bound to the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_group: Option<String>,
    /// A label (`ci`, `laptop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// When the key expires (milliseconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
}

/// A key as issued: the secret, shown once, and its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issued {
    /// The secret (`kt_…`); only its hash is kept.
    pub key: String,
    /// The record.
    #[serde(flatten)]
    pub info: KeyInfo,
}

/// What a key for `user` in `team` acts as: their stored role there, raised for an org admin.
fn standing_of(store: &dyn Storage, team: &str, user: &str) -> Result<Standing, AdminError> {
    let role = member_of(store, team, user)?.map(|m| m.role);
    Ok(Standing::of(role, is_org_admin(store, user)?))
}

/// Issues a key for a member of a team (or an org admin): owners anywhere, the team's admins and
/// org admins for users below their own standing, anyone for themselves. The team is named as
/// [`find_team`] reads it.
///
/// # Errors
/// `Forbidden`, `NotFound` (no such team, or the user is not a member), `Invalid` (an expiry in
/// the past), `Conflict` (an archived team), a store failure.
pub fn create_key(store: &dyn Storage, ctx: &Ctx<'_>, new: &NewKey) -> Result<Issued, AdminError> {
    let found = find_team(store, &new.team)?;
    let team = found.slug.as_str();
    if let Some(a) = ctx.actor {
        if !a.administers(Some(team)) {
            return Err(AdminError::Forbidden(format!(
                "only owners and admins of `{team}` issue its keys"
            )));
        }
    }
    let standing = standing_of(store, team, &new.email)?;
    if standing == Standing::None {
        return Err(AdminError::NotFound(format!(
            "`{}` is not a member of `{team}` (add them first)",
            new.email
        )));
    }
    ctx.check(&Action::IssueKey {
        team,
        user: &new.email,
        standing,
    })?;
    active(&found)?;
    if new.expires_at.is_some_and(|e| e <= ctx.now) {
        return Err(AdminError::Invalid(
            "the key's expiry is in the past".into(),
        ));
    }
    let (secret, mut key) = ApiKey::issue(
        &ctx.random,
        &new.email,
        team,
        new.consumer_group.as_deref(),
        ctx.now,
    );
    key.label.clone_from(&new.label);
    key.expires_at = new.expires_at;
    store.insert_key(&key)?;
    ctx.record(
        store,
        Some(team),
        Change::new("key.create", &key.id).states(None, Some(key_state(&key))),
    )?;
    Ok(Issued {
        key: secret,
        info: KeyInfo::of(&key, ctx.now),
    })
}

fn key_state(k: &ApiKey) -> String {
    let mut s = format!("{} in {}", k.user, k.team);
    if let Some(g) = &k.consumer_group {
        s.push_str(&format!(", group {g}"));
    }
    if let Some(l) = &k.label {
        s.push_str(&format!(", label {l}"));
    }
    if let Some(e) = k.expires_at {
        s.push_str(&format!(", expires {e}"));
    }
    s
}

/// The key `id` and what it acts as, after the actor may manage it.
fn managed_key(store: &dyn Storage, ctx: &Ctx<'_>, id: &str) -> Result<ApiKey, AdminError> {
    let key = store
        .key(id)?
        .ok_or_else(|| AdminError::NotFound(format!("key `{id}`")))?;
    let standing = standing_of(store, &key.team, &key.user)?;
    ctx.check(&Action::ManageKey {
        key: &key,
        standing,
    })?;
    if key.revoked {
        return Err(AdminError::Conflict(format!(
            "key `{id}` is already revoked"
        )));
    }
    Ok(key)
}

/// Revokes a key: its holder, owners, and the team's admins and org admins for holders below
/// their own standing. Every gateway sharing the store refuses it within its key-cache interval.
///
/// # Errors
/// `NotFound`, `Forbidden`, `Conflict` (already revoked), a store failure.
pub fn revoke_key(store: &dyn Storage, ctx: &Ctx<'_>, id: &str) -> Result<KeyInfo, AdminError> {
    managed_key(store, ctx, id)?;
    let now = ctx.now;
    let key = store
        .update_key(id, &|k| {
            k.revoked = true;
            k.revoked_at = Some(now);
        })?
        .ok_or_else(|| AdminError::NotFound(format!("key `{id}`")))?;
    ctx.record(
        store,
        Some(&key.team),
        Change::new("key.revoke", id).states(Some("active".into()), Some("revoked".into())),
    )?;
    Ok(KeyInfo::of(&key, now))
}

/// Replaces a key by a new one with the same user, team, group and label (and an expiry as far
/// from now as the old one's was from its creation, unless `expires_at` is given), and revokes
/// the old one. Who may: as [`revoke_key`].
///
/// # Errors
/// As [`revoke_key`]; `Invalid` for an expiry in the past.
pub fn rotate_key(
    store: &dyn Storage,
    ctx: &Ctx<'_>,
    id: &str,
    expires_at: Option<Millis>,
) -> Result<Issued, AdminError> {
    let old = managed_key(store, ctx, id)?;
    let now = ctx.now;
    let expires_at = expires_at.or_else(|| {
        old.expires_at
            .map(|e| now.saturating_add(e.saturating_sub(old.created_at)))
    });
    if expires_at.is_some_and(|e| e <= now) {
        return Err(AdminError::Invalid(
            "the key's expiry is in the past".into(),
        ));
    }
    let (secret, mut key) = ApiKey::issue(
        &ctx.random,
        &old.user,
        &old.team,
        old.consumer_group.as_deref(),
        now,
    );
    key.label.clone_from(&old.label);
    key.expires_at = expires_at;
    // the same rate-limit counters as the key it replaces
    key.lineage = Some(old.rate_identity().to_owned());
    store.insert_key(&key)?;
    let new_id = key.id.clone();
    store.update_key(id, &|k| {
        k.revoked = true;
        k.revoked_at = Some(now);
        k.replaced_by = Some(new_id.clone());
    })?;
    ctx.record(
        store,
        Some(&key.team),
        Change::new("key.rotate", id).states(Some(old.id.clone()), Some(key.id.clone())),
    )?;
    Ok(Issued {
        key: secret,
        info: KeyInfo::of(&key, now),
    })
}

/// The keys the actor may see (of `team`, or of every team): owners and org admins all, a
/// team's admins that team's, a member their own. Never a secret or hash.
///
/// # Errors
/// `NotFound` (no such team), a store failure.
pub fn list_keys(
    store: &dyn Storage,
    ctx: &Ctx<'_>,
    team: Option<&str>,
) -> Result<Vec<KeyInfo>, AdminError> {
    let team = team.map(|t| find_team(store, t)).transpose()?;
    let keys = store.keys(team.as_ref().map(|t| t.slug.as_str()))?;
    Ok(keys
        .iter()
        .filter(|k| {
            ctx.actor
                .is_none_or(|a| authorize(a, &Action::ViewKey { key: k }).is_ok())
        })
        .map(|k| KeyInfo::of(k, ctx.now))
        .collect())
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
    let w = crate::wallet::allocate(
        store,
        &actor,
        &key,
        &user_teams,
        allocation.amount,
        &allocation.currency,
        allocation.period,
        allocation.mode.unwrap_or(AllocateMode::Set),
        ctx.now,
    )?;
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

/// An approval or a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ruling {
    /// Approve.
    Approve,
    /// Deny.
    Deny,
}

/// Every administrative action as JSON: `{"op": "set_member", "team": "support", "email": …,
/// "role": "member"}`. The shared permission matrix (`conformance/vectors/authority.json`) is
/// written in these.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// [`create_team`].
    CreateTeam {
        /// Display name.
        name: String,
        /// Free text.
        #[serde(default)]
        description: Option<String>,
    },
    /// [`update_team`].
    UpdateTeam {
        /// The team.
        team: String,
        /// The change.
        #[serde(flatten)]
        change: TeamChange,
    },
    /// [`get_team`].
    GetTeam {
        /// The team.
        team: String,
    },
    /// [`set_member`].
    SetMember {
        /// The team.
        team: String,
        /// The user.
        #[serde(alias = "user")]
        email: String,
        /// The role.
        role: Role,
    },
    /// [`remove_member`].
    RemoveMember {
        /// The team.
        team: String,
        /// The user.
        #[serde(alias = "user")]
        email: String,
    },
    /// [`list_members`].
    ListMembers {
        /// The team.
        team: String,
    },
    /// [`set_org_admin`] granting.
    AddOrgAdmin {
        /// The user.
        email: String,
    },
    /// [`set_org_admin`] withdrawing.
    RemoveOrgAdmin {
        /// The user.
        email: String,
    },
    /// [`create_key`].
    CreateKey(NewKey),
    /// [`revoke_key`].
    RevokeKey {
        /// The key id.
        id: String,
    },
    /// [`rotate_key`].
    RotateKey {
        /// The key id.
        id: String,
        /// The new key's expiry.
        #[serde(default)]
        expires_at: Option<Millis>,
    },
    /// [`list_keys`].
    ListKeys {
        /// Only this team's.
        #[serde(default)]
        team: Option<String>,
    },
    /// [`allocate`].
    Allocate(Allocation),
    /// [`resolve_ticket`].
    ResolveTicket {
        /// The ticket id.
        id: String,
        /// Approve or deny.
        resolution: Ruling,
        /// The wallet an approval charges.
        #[serde(default)]
        charge_to: Option<String>,
    },
    /// [`resolve_escalation`].
    ResolveEscalation {
        /// The escalation id.
        id: String,
        /// Approve or deny.
        resolution: Ruling,
    },
}

fn json<T: Serialize>(v: T) -> Result<serde_json::Value, AdminError> {
    serde_json::to_value(v).map_err(|e| AdminError::Store(StoreError::Corrupt(e.to_string())))
}

/// Runs one [`Command`]; the answer is the function's result as JSON. A refused attempt
/// (`forbidden`) is recorded too, as `<op>.denied` with the rule that refused it, on the team
/// the command names (else the actor's), so its admins see who tried what.
///
/// # Errors
/// The function's.
pub fn execute(
    store: &dyn Storage,
    ctx: &Ctx<'_>,
    command: &Command,
) -> Result<serde_json::Value, AdminError> {
    let out = dispatch(store, ctx, command);
    if let (Err(AdminError::Forbidden(rule)), Some(actor)) = (&out, ctx.actor) {
        let v = serde_json::to_value(command).unwrap_or_default();
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        let op = field("op").unwrap_or_default();
        let action = format!("{op}.denied");
        let team = field("team")
            .map(|t| crate::directory::slug_of(store, &t).unwrap_or(t))
            .or_else(|| actor.team.clone());
        let target = field("id")
            .or_else(|| field("email"))
            .or_else(|| field("team"))
            .unwrap_or_else(|| op.clone());
        let change = Change::new(&action, target).states(None, Some(rule.clone()));
        ctx.record(store, team.as_deref(), change)?;
    }
    out
}

fn dispatch(
    store: &dyn Storage,
    ctx: &Ctx<'_>,
    command: &Command,
) -> Result<serde_json::Value, AdminError> {
    match command {
        Command::CreateTeam { name, description } => {
            json(create_team(store, ctx, name, description.as_deref())?)
        }
        Command::UpdateTeam { team, change } => json(update_team(store, ctx, team, change)?),
        Command::GetTeam { team } => json(get_team(store, ctx, team)?),
        Command::SetMember { team, email, role } => {
            json(set_member(store, ctx, team, email, *role)?)
        }
        Command::RemoveMember { team, email } => json(remove_member(store, ctx, team, email)?),
        Command::ListMembers { team } => json(list_members(store, ctx, team)?),
        Command::AddOrgAdmin { email } => json(set_org_admin(store, ctx, email, true)?),
        Command::RemoveOrgAdmin { email } => json(set_org_admin(store, ctx, email, false)?),
        Command::CreateKey(new) => json(create_key(store, ctx, new)?),
        Command::RevokeKey { id } => json(revoke_key(store, ctx, id)?),
        Command::RotateKey { id, expires_at } => json(rotate_key(store, ctx, id, *expires_at)?),
        Command::ListKeys { team } => json(list_keys(store, ctx, team.as_deref())?),
        Command::Allocate(a) => json(allocate(store, ctx, a)?),
        Command::ResolveTicket {
            id,
            resolution,
            charge_to,
        } => json(resolve_ticket(
            store,
            ctx,
            id,
            *resolution == Ruling::Approve,
            charge_to.as_deref(),
        )?),
        Command::ResolveEscalation { id, resolution } => json(resolve_escalation(
            store,
            ctx,
            id,
            match resolution {
                Ruling::Approve => Resolution::Approve,
                Ruling::Deny => Resolution::Deny,
            },
        )?),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::directory::{authenticate, Directory};
    use crate::event::EventStore;
    use crate::MemoryStore;
    use rust_decimal::Decimal;

    fn local(now: Millis) -> Ctx<'static> {
        Ctx::new(None, "default", now, "t", [9; 32])
    }

    fn as_actor(p: &Principal, now: Millis, random: u8) -> Ctx<'_> {
        Ctx::new(Some(p), "default", now, "t", [random; 32])
    }

    fn code<T: std::fmt::Debug>(r: Result<T, AdminError>) -> &'static str {
        r.unwrap_err().code()
    }

    /// Support with an admin, a member and the org owner as a member; legal with a member.
    fn org() -> MemoryStore {
        let s = MemoryStore::new();
        let l = local(1);
        create_team(&s, &l, "Support", None).unwrap();
        create_team(&s, &l, "Legal", None).unwrap();
        create_team(&s, &l, "Platform", None).unwrap();
        set_member(&s, &l, "platform", "root@x.com", Role::Owner).unwrap();
        set_member(&s, &l, "support", "root@x.com", Role::Owner).unwrap();
        set_member(&s, &l, "support", "lead@x.com", Role::Admin).unwrap();
        set_member(&s, &l, "support", "dev@x.com", Role::Member).unwrap();
        set_member(&s, &l, "legal", "counsel@x.com", Role::Member).unwrap();
        s
    }

    fn key_for(s: &MemoryStore, team: &str, user: &str, random: u8) -> (String, String) {
        let new = NewKey {
            team: team.into(),
            email: user.into(),
            ..NewKey::default()
        };
        let mut ctx = local(2);
        ctx.random = [random; 32];
        let i = create_key(s, &ctx, &new).unwrap();
        (i.key, i.info.key.id)
    }

    fn login(s: &MemoryStore, secret: &str, now: Millis) -> Principal {
        authenticate(s, secret, "default", now).unwrap().unwrap()
    }

    #[test]
    fn a_team_admin_cannot_reach_the_owner_in_their_team() {
        let s = org();
        let (secret, _) = key_for(&s, "support", "lead@x.com", 1);
        let lead = login(&s, &secret, 3);
        let mint = NewKey {
            team: "support".into(),
            email: "root@x.com".into(),
            ..NewKey::default()
        };
        assert_eq!(
            code(create_key(&s, &as_actor(&lead, 4, 2), &mint)),
            "forbidden"
        );
        assert_eq!(
            code(set_member(
                &s,
                &as_actor(&lead, 4, 2),
                "support",
                "root@x.com",
                Role::Member
            )),
            "forbidden"
        );
        assert_eq!(
            code(remove_member(
                &s,
                &as_actor(&lead, 4, 2),
                "support",
                "root@x.com"
            )),
            "forbidden"
        );
        // nor a peer admin, nor grant admin
        assert_eq!(
            code(set_member(
                &s,
                &as_actor(&lead, 4, 2),
                "support",
                "dev@x.com",
                Role::Admin
            )),
            "forbidden"
        );
    }

    #[test]
    fn a_rotated_key_keeps_the_rate_identity_of_the_first_key_of_its_chain() {
        let s = org();
        let (secret, first) = key_for(&s, "support", "dev@x.com", 1);
        let dev = login(&s, &secret, 3);
        let second = rotate_key(&s, &as_actor(&dev, 4, 2), &first, None).unwrap();
        let dev = login(&s, &second.key, 5);
        let third = rotate_key(&s, &as_actor(&dev, 6, 3), &second.info.key.id, None).unwrap();
        let (_, key) = crate::directory::authenticate_key(&s, &third.key, "default", 7)
            .unwrap()
            .unwrap();
        assert_ne!(key.id, first);
        assert_eq!(key.rate_identity(), first);
        // a fresh key has its own
        let (fresh, id) = key_for(&s, "support", "dev@x.com", 4);
        let (_, key) = crate::directory::authenticate_key(&s, &fresh, "default", 8)
            .unwrap()
            .unwrap();
        assert_eq!(key.rate_identity(), id);
    }

    #[test]
    fn a_team_admin_cannot_claim_someone_from_another_team() {
        let s = org();
        let (secret, _) = key_for(&s, "support", "lead@x.com", 1);
        let lead = login(&s, &secret, 3);
        let ctx = as_actor(&lead, 4, 2);
        // adding legal's counsel would give the admin their wallet and a key acting as them
        assert_eq!(
            code(set_member(
                &s,
                &ctx,
                "support",
                "counsel@x.com",
                Role::Member
            )),
            "forbidden"
        );
        let wallet = Allocation {
            user: Some("counsel@x.com".into()),
            team: None,
            amount: Decimal::from(5),
            ..allocation()
        };
        assert_eq!(code(allocate(&s, &ctx, &wallet)), "forbidden");
        // a newcomer is theirs to add, and their wallet theirs to fund
        set_member(&s, &ctx, "support", "new@x.com", Role::Member).unwrap();
        let wallet = Allocation {
            user: Some("new@x.com".into()),
            ..wallet
        };
        allocate(&s, &ctx, &wallet).unwrap();
    }

    fn allocation() -> Allocation {
        serde_json::from_value(serde_json::json!({"team": "support", "amount": "10"})).unwrap()
    }

    #[test]
    fn allocations_name_existing_teams_and_users() {
        let s = org();
        let l = local(5);
        let mut a = allocation();
        a.team = Some("Support".into());
        assert_eq!(
            allocate(&s, &l, &a).unwrap().key.to_string(),
            "team:support"
        );
        a.team = Some("Suport".into());
        let e = allocate(&s, &l, &a).unwrap_err();
        assert_eq!(e.code(), "not_found");
        assert!(e.to_string().contains("did you mean `support`"), "{e}");
        a.team = None;
        a.user = Some("ghost@x.com".into());
        assert_eq!(code(allocate(&s, &l, &a)), "not_found");
        assert!(crate::WalletStore::list(&s, 5).unwrap().len() == 1);
    }

    #[test]
    fn revoked_expired_removed_and_archived_keys_stop_at_once() {
        let s = org();
        let (dev_key, dev_id) = key_for(&s, "support", "dev@x.com", 1);
        let (lead_key, _) = key_for(&s, "support", "lead@x.com", 2);
        let lead = login(&s, &lead_key, 3);
        let dev = login(&s, &dev_key, 3);
        // a member revokes their own key; rotation by the admin first
        let rotated = rotate_key(&s, &as_actor(&lead, 4, 3), &dev_id, None).unwrap();
        assert_eq!(
            authenticate(&s, &dev_key, "default", 5).unwrap(),
            Err(crate::directory::Refused::Revoked)
        );
        let dev2 = login(&s, &rotated.key, 5);
        assert_eq!(dev2.user, dev.user);
        revoke_key(&s, &as_actor(&dev2, 6, 0), &rotated.info.key.id).unwrap();
        assert_eq!(
            code(revoke_key(&s, &as_actor(&lead, 7, 0), &rotated.info.key.id)),
            "conflict"
        );
        // expiry
        let mut ctx = local(10);
        ctx.random = [4; 32];
        let short = create_key(
            &s,
            &ctx,
            &NewKey {
                team: "support".into(),
                email: "dev@x.com".into(),
                expires_at: Some(100),
                label: Some("ci".into()),
                ..NewKey::default()
            },
        )
        .unwrap();
        login(&s, &short.key, 99);
        assert_eq!(
            authenticate(&s, &short.key, "default", 100).unwrap(),
            Err(crate::directory::Refused::Expired)
        );
        // removal
        let (k3, _) = key_for(&s, "support", "dev@x.com", 5);
        login(&s, &k3, 11);
        remove_member(&s, &as_actor(&lead, 12, 0), "support", "dev@x.com").unwrap();
        assert_eq!(
            authenticate(&s, &k3, "default", 13).unwrap(),
            Err(crate::directory::Refused::NotAMember)
        );
        // archive: only org-wide admins; the lead's own key stops
        assert_eq!(
            code(update_team(
                &s,
                &as_actor(&lead, 14, 0),
                "support",
                &TeamChange {
                    archived: Some(true),
                    ..TeamChange::default()
                }
            )),
            "forbidden"
        );
        update_team(
            &s,
            &local(15),
            "Support",
            &TeamChange {
                archived: Some(true),
                ..TeamChange::default()
            },
        )
        .unwrap();
        assert_eq!(
            authenticate(&s, &lead_key, "default", 16).unwrap(),
            Err(crate::directory::Refused::TeamArchived)
        );
    }

    #[test]
    fn keys_are_listed_by_who_may_see_them_and_record_their_last_use() {
        let s = org();
        let (dev_key, dev_id) = key_for(&s, "support", "dev@x.com", 1);
        let (lead_key, _) = key_for(&s, "support", "lead@x.com", 2);
        key_for(&s, "legal", "counsel@x.com", 3);
        let dev = login(&s, &dev_key, 1_000);
        let lead = login(&s, &lead_key, 1_000);
        let ids = |p: &Principal| -> Vec<String> {
            list_keys(&s, &as_actor(p, 2_000, 0), None)
                .unwrap()
                .into_iter()
                .map(|k| k.key.id)
                .collect()
        };
        assert_eq!(ids(&dev), vec![dev_id.clone()]);
        assert_eq!(ids(&lead).len(), 2);
        assert_eq!(list_keys(&s, &local(0), None).unwrap().len(), 3);
        let used = s.key(&dev_id).unwrap().unwrap().last_used_at;
        assert_eq!(used, Some(1_000));
        // within the precision nothing is written; after it, the new time
        login(&s, &dev_key, 1_000 + LAST_USED);
        assert_eq!(s.key(&dev_id).unwrap().unwrap().last_used_at, Some(1_000));
        login(&s, &dev_key, 1_000 + crate::directory::LAST_USED_PRECISION);
        assert_eq!(
            s.key(&dev_id).unwrap().unwrap().last_used_at,
            Some(1_000 + crate::directory::LAST_USED_PRECISION)
        );
        // no hash in what is shown
        let shown = serde_json::to_string(&list_keys(&s, &local(0), None).unwrap()).unwrap();
        assert!(!shown.contains("hash"), "{shown}");
    }

    const LAST_USED: Millis = 10;

    #[test]
    fn org_admins_manage_every_team_but_not_owners_or_the_org_wallet() {
        let s = org();
        set_org_admin(&s, &local(2), "ops@x.com", true).unwrap();
        // an org admin needs no membership for a key
        let (secret, _) = key_for(&s, "platform", "ops@x.com", 7);
        let ops = login(&s, &secret, 3);
        assert!(ops.org_admin && ops.role == Some(Role::Admin));
        let ctx = as_actor(&ops, 4, 8);
        create_team(&s, &ctx, "Research", None).unwrap();
        set_member(&s, &ctx, "legal", "para@x.com", Role::Admin).unwrap();
        set_member(&s, &ctx, "support", "counsel@x.com", Role::Member).unwrap();
        assert_eq!(
            code(set_member(&s, &ctx, "support", "root@x.com", Role::Member)),
            "forbidden"
        );
        assert_eq!(
            code(set_org_admin(&s, &ctx, "friend@x.com", true)),
            "forbidden"
        );
        let org_wallet: Allocation =
            serde_json::from_value(serde_json::json!({"org_id": "default", "amount": "1"}))
                .unwrap();
        assert_eq!(code(allocate(&s, &ctx, &org_wallet)), "forbidden");
        allocate(&s, &ctx, &allocation()).unwrap();
        // withdrawn: the same key is a plain key again (no membership, so no key at all)
        set_org_admin(&s, &local(5), "ops@x.com", false).unwrap();
        assert_eq!(
            authenticate(&s, &secret, "default", 6).unwrap(),
            Err(crate::directory::Refused::NotAMember)
        );
    }

    #[test]
    fn the_last_owner_stays() {
        let s = MemoryStore::new();
        let l = local(1);
        create_team(&s, &l, "Platform", None).unwrap();
        set_member(&s, &l, "platform", "root@x.com", Role::Owner).unwrap();
        assert_eq!(
            code(set_member(&s, &l, "platform", "root@x.com", Role::Admin)),
            "conflict"
        );
        assert_eq!(
            code(remove_member(&s, &l, "platform", "root@x.com")),
            "conflict"
        );
        set_member(&s, &l, "platform", "cfo@x.com", Role::Owner).unwrap();
        remove_member(&s, &l, "platform", "root@x.com").unwrap();
    }

    #[test]
    fn every_change_is_an_event_in_the_chain() {
        let s = org();
        let (lead_key, lead_id) = key_for(&s, "support", "lead@x.com", 1);
        let lead = login(&s, &lead_key, 3);
        let ctx = Ctx::new(Some(&lead), "default", 4, "adm_1", [2; 32]);
        set_member(&s, &ctx, "support", "new@x.com", Role::Member).unwrap();
        revoke_key(
            &s,
            &Ctx {
                request_id: "adm_2",
                ..ctx.clone()
            },
            &lead_id,
        )
        .unwrap();
        let events = EventStore::list(&s, "default").unwrap();
        let actions: Vec<&str> = events
            .iter()
            .filter_map(|e| e.body.admin.as_ref().map(|a| a.action.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                "team.create",
                "team.create",
                "team.create",
                "member.set",
                "member.set",
                "member.set",
                "member.set",
                "member.set",
                "key.create",
                "member.set",
                "key.revoke"
            ]
        );
        let last = &events[events.len() - 2].body;
        assert_eq!(last.user.as_deref(), Some("lead@x.com"));
        assert_eq!(last.team.as_deref(), Some("support"));
        let change = last.admin.as_ref().unwrap();
        assert_eq!(
            (change.before.as_deref(), change.after.as_deref()),
            (None, Some("member"))
        );
        assert!(crate::event::verify(&events, None).is_ok());
        // no secret in the chain
        let text = serde_json::to_string(&events).unwrap();
        assert!(!text.contains(&lead_key), "the secret leaked into an event");
    }

    #[test]
    fn commands_read_the_seed_s_json() {
        let c: Command = serde_json::from_value(serde_json::json!({
            "op": "allocate", "team_id": "Support", "amount": "1000.00", "currency": "USD"
        }))
        .unwrap();
        assert!(matches!(c, Command::Allocate(_)));
        let bad = serde_json::from_value::<Command>(serde_json::json!({
            "op": "set_member", "team": "support", "email": "a@x.com", "role": "member", "x": 1
        }));
        assert!(bad.is_err());
        let bad = serde_json::from_value::<Command>(serde_json::json!({
            "op": "allocate", "team": "support", "amount": "1", "colour": "red"
        }));
        assert!(bad.is_err(), "unknown field accepted");
        let s = org();
        let v = execute(
            &s,
            &local(9),
            &serde_json::from_value(serde_json::json!({"op": "get_team", "team": "Legal"}))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(v["slug"], "legal");
        assert_eq!(v["members"].as_array().unwrap().len(), 1);
    }
}
