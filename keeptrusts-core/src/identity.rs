//! Who is asking: principals, roles and team slugs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A role, lowest to highest: `member` < `admin` < `owner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Uses the gateway; sees own events and team aggregates.
    Member,
    /// Configures a team (or the org); sees all of the team's data.
    Admin,
    /// Everything, everywhere in the organization.
    Owner,
}

impl Role {
    /// All roles, lowest first.
    pub const ALL: [Role; 3] = [Role::Member, Role::Admin, Role::Owner];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not `member`, `admin` or `owner`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role; expected `member`, `admin` or `owner`")]
pub struct UnknownRole;

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "member" => Ok(Role::Member),
            "admin" => Ok(Role::Admin),
            "owner" => Ok(Role::Owner),
            _ => Err(UnknownRole),
        }
    }
}

/// The caller of one request, as the host established it.
///
/// Every attribute is optional because `rbac` decides what a missing one means; `authenticated`
/// says whether the host verified the caller (an API key, a session).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// Organization id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// User id (an email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Team slug the request is attributed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Role in that team (or in the org, for owners).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Consumer group named by the request or bound to the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_group: Option<String>,
    /// Whether the host authenticated the caller.
    #[serde(default)]
    pub authenticated: bool,
    /// Whether the caller is an admin of the whole organization (an `admin` membership of the
    /// org scope): they administer every team, but not owners or the org's wallet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub org_admin: bool,
}

impl Principal {
    /// An authenticated principal with user, team and role.
    pub fn new(user: &str, team: &str, role: Role) -> Self {
        Principal {
            org: None,
            user: Some(user.to_owned()),
            team: Some(team.to_owned()),
            role: Some(role),
            consumer_group: None,
            authenticated: true,
            org_admin: false,
        }
    }

    /// An org admin: an `admin` of every team (`team` is where their requests are attributed).
    pub fn org_admin(user: &str, team: &str) -> Self {
        Principal {
            org_admin: true,
            ..Principal::new(user, team, Role::Admin)
        }
    }

    /// Whether this principal is an owner, an org admin, or an admin of `team`.
    pub fn administers(&self, team: Option<&str>) -> bool {
        match self.role {
            Some(Role::Owner) => true,
            Some(Role::Admin) => team.is_some() && (self.org_admin || self.team.as_deref() == team),
            _ => false,
        }
    }

    /// How far this principal's authority reaches, for the rule that nobody manages a standing
    /// at or above their own (owners excepted).
    pub fn standing(&self) -> Standing {
        Standing::of(self.role, self.org_admin && self.role >= Some(Role::Admin))
    }

    /// Whose tickets and escalations this principal reviews: every team's (`None`) for an owner
    /// or an org admin, else their own team's.
    pub fn review_scope(&self) -> Option<String> {
        if self.role == Some(Role::Owner) || self.standing() == Standing::OrgAdmin {
            None
        } else {
            Some(self.team.clone().unwrap_or_default())
        }
    }
}

/// Authority, lowest to highest: a member, a team admin, an org admin, an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// No role.
    None,
    /// A team member.
    Member,
    /// An admin of one team.
    TeamAdmin,
    /// An admin of every team.
    OrgAdmin,
    /// An owner of the organization.
    Owner,
}

impl Standing {
    /// The standing of a role in a team, raised to `OrgAdmin` for an org admin.
    pub fn of(role: Option<Role>, org_admin: bool) -> Standing {
        let by_role = match role {
            None => Standing::None,
            Some(Role::Member) => Standing::Member,
            Some(Role::Admin) => Standing::TeamAdmin,
            Some(Role::Owner) => Standing::Owner,
        };
        if org_admin {
            by_role.max(Standing::OrgAdmin)
        } else {
            by_role
        }
    }

    /// The name used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::None => "caller without a role",
            Standing::Member => "member",
            Standing::TeamAdmin => "team admin",
            Standing::OrgAdmin => "org admin",
            Standing::Owner => "owner",
        }
    }
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Derives a team slug from a display name: lowercase ASCII letters and digits, words joined by
/// `-` (`"Legal & Compliance"` → `legal-compliance`). Returns an empty string when the name has no
/// letter or digit.
pub fn slugify(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            dash = true;
        }
    }
    out
}

/// Whether `s` is a well-formed slug: 1–64 chars of `[a-z0-9-]`, no leading/trailing/double dash.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Member < Role::Admin && Role::Admin < Role::Owner);
        assert_eq!("Admin".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("Engineering"), "engineering");
        assert_eq!(slugify("  Legal & Compliance "), "legal-compliance");
        assert_eq!(slugify("Data/ML Team 2"), "data-ml-team-2");
        assert_eq!(slugify("!!!"), "");
        assert!(is_slug("legal-compliance"));
        assert!(!is_slug("Legal"));
        assert!(!is_slug("a--b"));
    }

    #[test]
    fn administers() {
        let admin = Principal::new("a@x.com", "legal", Role::Admin);
        assert!(admin.administers(Some("legal")));
        assert!(!admin.administers(Some("support")));
        let owner = Principal::new("o@x.com", "eng", Role::Owner);
        assert!(owner.administers(Some("support")));
        let member = Principal::new("m@x.com", "legal", Role::Member);
        assert!(!member.administers(Some("legal")));
        let org_admin = Principal::org_admin("oa@x.com", "legal");
        assert!(org_admin.administers(Some("support")));
        assert!(org_admin.standing() > admin.standing());
        assert!(org_admin.standing() < owner.standing());
        // the flag alone, on a member's key, grants nothing
        let claimed = Principal {
            org_admin: true,
            ..member
        };
        assert!(!claimed.administers(Some("support")));
    }
}
