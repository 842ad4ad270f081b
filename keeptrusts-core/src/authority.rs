//! Who may do what (`docs/authority.md`): one decision, over the directory as stored.
//!
//! Every administrative entry point (the directory's, the wallets', the tickets' and the
//! escalations' functions, and through them the CLI, the admin API and the bindings) asks
//! [`authorize`]. What an action touches is looked up by the caller from the store (a member's
//! current role, the teams a user belongs to, the ticket as stored), never taken from what a
//! request claims. The rules:
//!
//! - nobody grants, issues a key for, or changes a role at or above their own unless they are an
//!   owner (an admin manages members of their team; a key for oneself grants nothing new);
//! - user wallets are managed by owners and by admins of a team the user belongs to; team wallets
//!   by owners and that team's admins; org wallets by owners;
//! - a reviewer (of a cost ticket or an escalation) is an owner or an admin of its team, and never
//!   its requester; an admin charges an approval to their team's wallet or the requester's own;
//! - members see their own tickets and escalations; admins their team's; owners every team's.

use crate::directory::ApiKey;
pub use crate::error::Denied;
use crate::identity::{Principal, Role, Standing};
use crate::pack::spec::WalletScope;
use crate::wallet::key::WalletKey;

/// Something an actor wants to do.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Create a team.
    CreateTeam,
    /// Rename or describe a team (`archive`: also archive or restore it).
    UpdateTeam {
        /// The team.
        team: &'a str,
        /// Whether the change archives or restores the team.
        archive: bool,
    },
    /// Read a team (`members`: with its member list).
    ViewTeam {
        /// The team.
        team: &'a str,
        /// Whether the member list is asked for.
        members: bool,
    },
    /// Add `user` to `team` with `role`, or change their role (`current`: their role there now).
    SetMember {
        /// The team.
        team: &'a str,
        /// The user.
        user: &'a str,
        /// The role to give.
        role: Role,
        /// Their role in the team now, as stored.
        current: Option<Role>,
        /// Whether the user is a member of another team (as stored): claiming someone who
        /// already belongs elsewhere (and with them their wallet) is for org-wide admins.
        elsewhere: bool,
    },
    /// Remove `user`, whose role there is `current` (as stored), from `team`.
    RemoveMember {
        /// The team.
        team: &'a str,
        /// The user.
        user: &'a str,
        /// Their role in the team, as stored.
        current: Role,
    },
    /// Make a user an org admin, or withdraw it.
    SetOrgAdmin,
    /// Issue an API key for `user` in `team`; `standing`: what the key will act as (the
    /// user's stored role there, raised for an org admin).
    IssueKey {
        /// The team.
        team: &'a str,
        /// The user the key acts as.
        user: &'a str,
        /// What the key acts as.
        standing: Standing,
    },
    /// Revoke or rotate a key whose holder has `standing` (as stored).
    ManageKey {
        /// The key as stored.
        key: &'a ApiKey,
        /// What the key acts as.
        standing: Standing,
    },
    /// Read a key's record (never its secret).
    ViewKey {
        /// The key as stored.
        key: &'a ApiKey,
    },
    /// Fund or charge a wallet; `user_teams`: for a user wallet, the teams the user belongs to
    /// (as stored).
    ManageWallet {
        /// The wallet.
        key: &'a WalletKey,
        /// The user's teams.
        user_teams: &'a [String],
    },
    /// Approve or deny a cost ticket, charging `charge_to` on approval.
    ResolveTicket {
        /// The ticket's team, as stored.
        team: Option<&'a str>,
        /// The ticket's requester, as stored.
        requester: Option<&'a str>,
        /// The wallet an approval charges.
        charge_to: Option<&'a WalletKey>,
    },
    /// Approve or deny an escalation.
    ResolveEscalation {
        /// The escalation's team, as stored.
        team: Option<&'a str>,
        /// The escalation's requester, as stored.
        requester: Option<&'a str>,
    },
    /// Read a ticket, an escalation or an event of this team and user.
    ViewRequest {
        /// Its team.
        team: Option<&'a str>,
        /// Its requester.
        user: Option<&'a str>,
    },
}

fn deny<T>(m: impl Into<String>) -> Result<T, Denied> {
    Err(Denied(m.into()))
}

/// The rule that nobody reaches a standing at or above their own, owners excepted.
fn below(actor: Standing, target: Standing, what: &str) -> Result<(), Denied> {
    if actor == Standing::Owner || target < actor {
        Ok(())
    } else {
        deny(format!(
            "only owners {what} a {target} (it is not below the actor's own standing, {actor})"
        ))
    }
}

/// Whether `actor` may do `action`.
///
/// # Errors
/// [`Denied`], with the rule that refused it.
pub fn authorize(actor: &Principal, action: &Action<'_>) -> Result<(), Denied> {
    if !actor.authenticated {
        return deny("the actor is not authenticated");
    }
    let own = actor.standing();
    let owner = own == Standing::Owner;
    let org_wide = own >= Standing::OrgAdmin;
    let is_self = |user: &str| actor.user.as_deref() == Some(user);
    match *action {
        Action::CreateTeam if org_wide => Ok(()),
        Action::CreateTeam => deny("only owners and org admins create teams"),
        Action::UpdateTeam { team, archive } => {
            if archive && !org_wide {
                return deny("only owners and org admins archive or restore a team");
            }
            if actor.administers(Some(team)) {
                Ok(())
            } else {
                deny(format!(
                    "only owners, org admins and admins of `{team}` change it"
                ))
            }
        }
        Action::ViewTeam { team, members } => {
            let ok =
                actor.administers(Some(team)) || (!members && actor.team.as_deref() == Some(team));
            if ok {
                Ok(())
            } else {
                deny(format!(
                    "members see their own team; only its admins see `{team}`'s members"
                ))
            }
        }
        Action::SetMember {
            team,
            role,
            current,
            elsewhere,
            ..
        } => {
            if !actor.administers(Some(team)) {
                return deny(format!(
                    "only owners and admins of `{team}` manage its members"
                ));
            }
            if elsewhere && current.is_none() && !org_wide {
                return deny(format!(
                    "the user belongs to another team: only owners and org admins add them to `{team}`"
                ));
            }
            below(own, Standing::of(Some(role), false), "grant the role of")?;
            match current {
                Some(c) => below(own, Standing::of(Some(c), false), "change the role of"),
                None => Ok(()),
            }
        }
        Action::RemoveMember {
            team,
            user,
            current,
        } => {
            if !actor.administers(Some(team)) {
                return deny(format!(
                    "only owners and admins of `{team}` manage its members"
                ));
            }
            if is_self(user) && current != Role::Owner {
                // leaving a team never grants anything
                return Ok(());
            }
            below(own, Standing::of(Some(current), false), "remove")
        }
        Action::SetOrgAdmin if owner => Ok(()),
        Action::SetOrgAdmin => deny("only owners appoint or withdraw org admins"),
        Action::IssueKey {
            team,
            user,
            standing,
        } => {
            if !actor.administers(Some(team)) {
                return deny(format!("only owners and admins of `{team}` issue its keys"));
            }
            // a key for oneself in one's own team grants nothing new
            if is_self(user) && (actor.team.as_deref() == Some(team) || standing <= own) {
                return Ok(());
            }
            below(own, standing, "issue keys for")
        }
        Action::ManageKey { key, standing } => {
            if is_self(&key.user) {
                return Ok(());
            }
            if !actor.administers(Some(&key.team)) {
                return deny(format!(
                    "only the key's holder, owners and admins of `{}` manage key `{}`",
                    key.team, key.id
                ));
            }
            below(own, standing, "manage the keys of")
        }
        Action::ViewKey { key } => {
            if is_self(&key.user) || actor.administers(Some(&key.team)) {
                Ok(())
            } else {
                deny("members see their own keys, admins their team's")
            }
        }
        Action::ManageWallet { key, user_teams } => {
            let ok = match key.scope {
                WalletScope::Org => owner,
                WalletScope::Team => actor.administers(Some(&key.id)),
                WalletScope::User => {
                    org_wide || user_teams.iter().any(|t| actor.administers(Some(t)))
                }
            };
            if ok {
                Ok(())
            } else {
                deny(format!(
                    "only an owner (for an org wallet), an org admin, or an admin of the wallet's team (for a user wallet: of a team the user belongs to) may manage {key}"
                ))
            }
        }
        Action::ResolveTicket {
            team,
            requester,
            charge_to,
        } => {
            reviewer(actor, team, requester, "ticket")?;
            let Some(k) = charge_to else { return Ok(()) };
            let ours = match k.scope {
                WalletScope::Team => team == Some(&*k.id),
                WalletScope::User => requester == Some(&*k.id),
                WalletScope::Org => false,
            };
            if owner || ours || (org_wide && k.scope == WalletScope::Team) {
                Ok(())
            } else {
                deny(format!(
                    "the approver may not charge {k}: an admin charges the ticket's team wallet or the requester's own"
                ))
            }
        }
        Action::ResolveEscalation { team, requester } => {
            reviewer(actor, team, requester, "escalation")
        }
        Action::ViewRequest { team, user } => {
            let ok = org_wide
                || (actor.administers(team))
                || (user.is_some()
                    && actor.user.as_deref() == user
                    && actor.team.as_deref() == team);
            if ok {
                Ok(())
            } else {
                deny("members see their own tickets, escalations and events, admins their team's")
            }
        }
    }
}

/// A reviewer of a request's ticket or escalation: an owner or an admin of its team, not its
/// requester.
fn reviewer(
    actor: &Principal,
    team: Option<&str>,
    requester: Option<&str>,
    what: &str,
) -> Result<(), Denied> {
    if !actor.administers(team) {
        return deny(format!(
            "only an owner or an admin of the {what}'s team may resolve it"
        ));
    }
    if requester.is_some() && actor.user.as_deref() == requester {
        return deny(format!("a reviewer is never the requester of the {what}"));
    }
    Ok(())
}

/// The rows of `rows` that `viewer` may see ([`Action::ViewRequest`]).
pub fn visible<T>(
    viewer: &Principal,
    rows: Vec<T>,
    of: impl Fn(&T) -> (Option<&str>, Option<&str>),
) -> Vec<T> {
    rows.into_iter()
        .filter(|r| {
            let (team, user) = of(r);
            authorize(viewer, &Action::ViewRequest { team, user }).is_ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(user: &str, team: &str, role: Role) -> Principal {
        Principal::new(user, team, role)
    }

    #[test]
    fn an_admin_cannot_reach_an_owner_or_their_own_rank() {
        let admin = p("lead@x.com", "support", Role::Admin);
        let set = |role, current| Action::SetMember {
            team: "support",
            user: "u@x.com",
            role,
            current,
            elsewhere: false,
        };
        assert!(authorize(&admin, &set(Role::Member, None)).is_ok());
        assert!(authorize(&admin, &set(Role::Admin, None)).is_err());
        assert!(authorize(&admin, &set(Role::Owner, None)).is_err());
        // demoting the org owner who is a member of the admin's team
        assert!(authorize(&admin, &set(Role::Member, Some(Role::Owner))).is_err());
        let key = |user, standing| Action::IssueKey {
            team: "support",
            user,
            standing,
        };
        assert!(authorize(&admin, &key("u@x.com", Standing::Member)).is_ok());
        assert!(authorize(&admin, &key("boss@x.com", Standing::Owner)).is_err());
        assert!(authorize(&admin, &key("peer@x.com", Standing::TeamAdmin)).is_err());
        // a member of the team who is an org admin elsewhere: their key would act org-wide
        assert!(authorize(&admin, &key("oa@x.com", Standing::OrgAdmin)).is_err());
        assert!(authorize(&admin, &key("lead@x.com", Standing::TeamAdmin)).is_ok());
        let owner = p("root@x.com", "platform", Role::Owner);
        assert!(authorize(&owner, &key("boss@x.com", Standing::Owner)).is_ok());
        let org_admin = Principal::org_admin("oa@x.com", "platform");
        assert!(authorize(&org_admin, &key("peer@x.com", Standing::TeamAdmin)).is_ok());
        assert!(authorize(&org_admin, &key("boss@x.com", Standing::Owner)).is_err());
    }

    #[test]
    fn user_wallets_follow_the_stored_membership() {
        let admin = p("lead@x.com", "support", Role::Admin);
        let k = WalletKey::new(WalletScope::User, "someone@x.com");
        let teams = vec!["legal".to_owned()];
        assert!(authorize(
            &admin,
            &Action::ManageWallet {
                key: &k,
                user_teams: &teams
            }
        )
        .is_err());
        let teams = vec!["legal".to_owned(), "support".to_owned()];
        assert!(authorize(
            &admin,
            &Action::ManageWallet {
                key: &k,
                user_teams: &teams
            }
        )
        .is_ok());
        let org = WalletKey::new(WalletScope::Org, "default");
        let org_admin = Principal::org_admin("oa@x.com", "platform");
        let manage = |key| Action::ManageWallet {
            key,
            user_teams: &[],
        };
        assert!(authorize(&org_admin, &manage(&k)).is_ok());
        assert!(authorize(&org_admin, &manage(&org)).is_err());
    }
}
