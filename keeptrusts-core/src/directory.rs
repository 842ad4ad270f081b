//! Teams, memberships and API keys (SPEC §3, §9): who a caller is, and who may manage whom.
//!
//! A key is `kt_` followed by 64 hex digits of randomness the host supplies (the core does no
//! I/O); it is shown once, and only its SHA-256 is stored. A key names a user and a team (and
//! optionally a consumer group); the role comes from the user's membership in that team when the
//! key is used, so a changed role or a removed member takes effect at once.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::authority::{authorize, Action};
use crate::error::{AdminError, StoreError};
use crate::escalation::Millis;
use crate::identity::{slugify, Principal, Role};
use crate::request::hex;

/// A team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    /// Slug derived from the name (`engineering`).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Creation time.
    pub created_at: Millis,
}

/// A user's role in a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Team slug.
    pub team: String,
    /// User id (an email).
    pub user: String,
    /// Role in that team (`owner` is organization-wide).
    pub role: Role,
    /// When the membership was created or last changed.
    pub updated_at: Millis,
}

/// An API key record (the secret itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Public id: `kt_` and the first 8 hex digits of the secret; safe to show and log.
    pub id: String,
    /// SHA-256 of the secret, hex.
    pub hash: String,
    /// User id.
    pub user: String,
    /// Team slug requests with this key are attributed to.
    pub team: String,
    /// Consumer group bound to the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_group: Option<String>,
    /// Creation time.
    pub created_at: Millis,
    /// Whether the key was revoked.
    #[serde(default)]
    pub revoked: bool,
}

/// Prefix of every secret.
pub const KEY_PREFIX: &str = "kt_";

impl ApiKey {
    /// Issues a key from 32 random bytes: the secret (show it once) and the record to store.
    pub fn issue(
        random: &[u8; 32],
        user: &str,
        team: &str,
        consumer_group: Option<&str>,
        now: Millis,
    ) -> (String, ApiKey) {
        let secret = format!("{KEY_PREFIX}{}", hex(random));
        let id = secret
            .get(..KEY_PREFIX.len() + 8)
            .unwrap_or(&secret)
            .to_owned();
        let key = ApiKey {
            id,
            hash: Self::hash_secret(&secret),
            user: user.to_owned(),
            team: team.to_owned(),
            consumer_group: consumer_group.map(str::to_owned),
            created_at: now,
            revoked: false,
        };
        (secret, key)
    }

    /// The stored form of a secret.
    pub fn hash_secret(secret: &str) -> String {
        hex(&Sha256::digest(secret.as_bytes()))
    }
}

/// Storage for teams, members and keys. Each method is atomic.
pub trait Directory: Send + Sync {
    /// Creates a team; an existing slug is `StoreError::Conflict`.
    ///
    /// # Errors
    /// A store failure or conflict.
    fn create_team(&self, team: &Team) -> Result<(), StoreError>;
    /// One team.
    ///
    /// # Errors
    /// A store failure.
    fn team(&self, slug: &str) -> Result<Option<Team>, StoreError>;
    /// Every team, by slug.
    ///
    /// # Errors
    /// A store failure.
    fn teams(&self) -> Result<Vec<Team>, StoreError>;
    /// Adds a member or changes their role.
    ///
    /// # Errors
    /// A store failure.
    fn put_member(&self, member: &Member) -> Result<(), StoreError>;
    /// Members of a team (or of every team), by team then user.
    ///
    /// # Errors
    /// A store failure.
    fn members(&self, team: Option<&str>) -> Result<Vec<Member>, StoreError>;
    /// Stores a new key; an existing hash or id is `StoreError::Conflict`.
    ///
    /// # Errors
    /// A store failure or conflict.
    fn insert_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    /// The key with this hash.
    ///
    /// # Errors
    /// A store failure.
    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Keys of a team (or every key), newest first.
    ///
    /// # Errors
    /// A store failure.
    fn keys(&self, team: Option<&str>) -> Result<Vec<ApiKey>, StoreError>;
}

/// The principal a bearer secret stands for: `None` for an unknown or revoked key, or a key
/// whose user is no longer a member of its team.
///
/// # Errors
/// A store failure.
pub fn authenticate(
    dir: &dyn Directory,
    secret: &str,
    org: &str,
) -> Result<Option<Principal>, StoreError> {
    if !secret.starts_with(KEY_PREFIX) {
        return Ok(None);
    }
    let Some(key) = dir.key_by_hash(&ApiKey::hash_secret(secret))? else {
        return Ok(None);
    };
    if key.revoked {
        return Ok(None);
    }
    let member = dir
        .members(Some(&key.team))?
        .into_iter()
        .find(|m| m.user == key.user);
    let Some(member) = member else {
        return Ok(None);
    };
    Ok(Some(Principal {
        org: Some(org.to_owned()),
        user: Some(key.user),
        team: Some(key.team),
        role: Some(member.role),
        consumer_group: key.consumer_group,
        authenticated: true,
    }))
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

/// Creates a team from its name (owners only; `actor: None` is the local CLI, trusted).
///
/// # Errors
/// `Forbidden`, `Invalid` (empty name), `Conflict` (the slug exists), a store failure.
pub fn create_team(
    dir: &dyn Directory,
    actor: Option<&Principal>,
    name: &str,
    description: Option<&str>,
    now: Millis,
) -> Result<Team, AdminError> {
    if let Some(a) = actor {
        authorize(a, &Action::CreateTeam)?;
    }
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
        created_at: now,
    };
    dir.create_team(&team).map_err(|e| match e {
        StoreError::Conflict(_) => AdminError::Conflict(format!("team `{}` exists", team.slug)),
        e => AdminError::Store(e),
    })?;
    Ok(team)
}

/// The team `name` designates, as the seed writes teams: its slug (`engineering`), its display
/// name in any case (`Engineering`), or a name that slugifies to its slug.
///
/// # Errors
/// `NotFound` naming the closest existing team ("did you mean"), a store failure.
pub fn find_team(dir: &dyn Directory, name: &str) -> Result<Team, AdminError> {
    if let Some(t) = dir.team(name)? {
        return Ok(t);
    }
    let teams = dir.teams()?;
    let slug = slugify(name);
    let wanted = name.trim();
    if let Some(t) = teams
        .iter()
        .find(|t| t.slug == slug || t.name.eq_ignore_ascii_case(wanted))
    {
        return Ok(t.clone());
    }
    let hint = crate::pack::de::suggest(&slug, teams.iter().map(|t| t.slug.as_str()))
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    Err(AdminError::NotFound(format!("team `{wanted}`{hint}")))
}

/// Adds a user to a team with a role, or changes their role: owners anywhere, admins in their
/// own team and never granting `owner`. The team is named as [`find_team`] reads it.
///
/// # Errors
/// `Forbidden`, `NotFound` (no such team), `Invalid` (not an email), a store failure.
pub fn add_member(
    dir: &dyn Directory,
    actor: Option<&Principal>,
    team: &str,
    user: &str,
    role: Role,
    now: Millis,
) -> Result<Member, AdminError> {
    let found = find_team(dir, team)?;
    let team = found.slug.as_str();
    if let Some(a) = actor {
        // the role the user has there now, as stored: an admin cannot demote an owner
        let current = if a.administers(Some(team)) {
            dir.members(Some(team))?
                .into_iter()
                .find(|m| m.user == user)
                .map(|m| m.role)
        } else {
            None
        };
        authorize(
            a,
            &Action::SetMember {
                team,
                user,
                role,
                current,
            },
        )?;
    }
    if !valid_email(user) {
        return Err(AdminError::Invalid(format!(
            "`{user}` is not an email address"
        )));
    }
    let m = Member {
        team: team.to_owned(),
        user: user.to_owned(),
        role,
        updated_at: now,
    };
    dir.put_member(&m)?;
    Ok(m)
}

/// Issues a key for a member of a team: owners anywhere, admins in their team. The team is
/// named as [`find_team`] reads it.
///
/// # Errors
/// `Forbidden`, `NotFound` (no such team, or the user is not a member), a store failure.
pub fn create_key(
    dir: &dyn Directory,
    actor: Option<&Principal>,
    team: &str,
    user: &str,
    consumer_group: Option<&str>,
    random: &[u8; 32],
    now: Millis,
) -> Result<(String, ApiKey), AdminError> {
    let found = find_team(dir, team)?;
    let team = found.slug.as_str();
    if actor.is_some_and(|a| !a.administers(Some(team))) {
        return Err(AdminError::Forbidden(format!(
            "only owners and admins of `{team}` issue its keys"
        )));
    }
    let Some(member) = dir
        .members(Some(team))?
        .into_iter()
        .find(|m| m.user == user)
    else {
        return Err(AdminError::NotFound(format!(
            "`{user}` is not a member of `{team}` (add them first)"
        )));
    };
    // the key acts with the member's stored role: an admin cannot mint an owner's key
    if let Some(a) = actor {
        authorize(
            a,
            &Action::IssueKey {
                team,
                user,
                role: member.role,
            },
        )?;
    }
    let (secret, key) = ApiKey::issue(random, user, team, consumer_group, now);
    dir.insert_key(&key)?;
    Ok((secret, key))
}

#[derive(Debug, Default)]
struct Tables {
    teams: HashMap<String, Team>,
    members: HashMap<(String, String), Member>,
    keys: HashMap<String, ApiKey>,
}

/// In-memory directory.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    tables: Mutex<Tables>,
}

impl MemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Tables>, StoreError> {
        self.tables
            .lock()
            .map_err(|_| StoreError::Unavailable("directory lock poisoned".into()))
    }
}

impl Directory for MemoryDirectory {
    fn create_team(&self, team: &Team) -> Result<(), StoreError> {
        let mut t = self.lock()?;
        if t.teams.contains_key(&team.slug) {
            return Err(StoreError::Conflict(format!("team `{}` exists", team.slug)));
        }
        t.teams.insert(team.slug.clone(), team.clone());
        Ok(())
    }

    fn team(&self, slug: &str) -> Result<Option<Team>, StoreError> {
        Ok(self.lock()?.teams.get(slug).cloned())
    }

    fn teams(&self) -> Result<Vec<Team>, StoreError> {
        let mut v: Vec<Team> = self.lock()?.teams.values().cloned().collect();
        v.sort_by(|a, b| a.slug.cmp(&b.slug));
        Ok(v)
    }

    fn put_member(&self, m: &Member) -> Result<(), StoreError> {
        self.lock()?
            .members
            .insert((m.team.clone(), m.user.clone()), m.clone());
        Ok(())
    }

    fn members(&self, team: Option<&str>) -> Result<Vec<Member>, StoreError> {
        let mut v: Vec<Member> = self
            .lock()?
            .members
            .values()
            .filter(|m| team.is_none_or(|t| m.team == t))
            .cloned()
            .collect();
        v.sort_by(|a, b| (&a.team, &a.user).cmp(&(&b.team, &b.user)));
        Ok(v)
    }

    fn insert_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let mut t = self.lock()?;
        if t.keys.contains_key(&key.hash) || t.keys.values().any(|k| k.id == key.id) {
            return Err(StoreError::Conflict(format!("key `{}` exists", key.id)));
        }
        t.keys.insert(key.hash.clone(), key.clone());
        Ok(())
    }

    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.lock()?.keys.get(hash).cloned())
    }

    fn keys(&self, team: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
        let mut v: Vec<ApiKey> = self
            .lock()?
            .keys
            .values()
            .filter(|k| team.is_none_or(|t| k.team == t))
            .cloned()
            .collect();
        v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_authenticate_with_the_current_role() {
        let d = MemoryDirectory::new();
        let owner = Principal::new("cfo@yourco.com", "finance", Role::Owner);
        let t = create_team(&d, Some(&owner), "Engineering", None, 1).unwrap();
        assert_eq!(t.slug, "engineering");
        add_member(&d, None, "engineering", "dev@yourco.com", Role::Member, 2).unwrap();
        let (secret, key) = create_key(
            &d,
            Some(&owner),
            "engineering",
            "dev@yourco.com",
            None,
            &[7; 32],
            3,
        )
        .unwrap();
        assert!(secret.starts_with("kt_") && secret.len() == 67);
        assert_ne!(key.hash, secret);
        let p = authenticate(&d, &secret, "default").unwrap().unwrap();
        assert_eq!(p.role, Some(Role::Member));
        add_member(&d, None, "engineering", "dev@yourco.com", Role::Admin, 4).unwrap();
        let p = authenticate(&d, &secret, "default").unwrap().unwrap();
        assert_eq!(p.role, Some(Role::Admin));
        assert!(authenticate(&d, "kt_nope", "default").unwrap().is_none());
        assert!(authenticate(&d, "sk-other", "default").unwrap().is_none());
    }

    #[test]
    fn permissions_and_errors() {
        let d = MemoryDirectory::new();
        create_team(&d, None, "Support", None, 1).unwrap();
        create_team(&d, None, "Legal", None, 1).unwrap();
        let admin = Principal::new("lead@yourco.com", "support", Role::Admin);
        let member = Principal::new("m@yourco.com", "support", Role::Member);
        assert_eq!(
            create_team(&d, Some(&admin), "X", None, 1)
                .unwrap_err()
                .code(),
            "forbidden"
        );
        assert_eq!(
            create_team(&d, None, "support", None, 1)
                .unwrap_err()
                .code(),
            "conflict"
        );
        assert_eq!(
            create_team(&d, None, "  ", None, 1).unwrap_err().code(),
            "invalid_argument"
        );
        add_member(&d, Some(&admin), "support", "a@yourco.com", Role::Member, 1).unwrap();
        assert_eq!(
            add_member(&d, Some(&admin), "legal", "a@yourco.com", Role::Member, 1)
                .unwrap_err()
                .code(),
            "forbidden"
        );
        assert_eq!(
            add_member(&d, Some(&admin), "support", "b@yourco.com", Role::Owner, 1)
                .unwrap_err()
                .code(),
            "forbidden"
        );
        assert_eq!(
            add_member(
                &d,
                Some(&member),
                "support",
                "b@yourco.com",
                Role::Member,
                1
            )
            .unwrap_err()
            .code(),
            "forbidden"
        );
        assert_eq!(
            add_member(&d, None, "support", "not-an-email", Role::Member, 1)
                .unwrap_err()
                .code(),
            "invalid_argument"
        );
        assert_eq!(
            add_member(&d, None, "nope", "a@yourco.com", Role::Member, 1)
                .unwrap_err()
                .code(),
            "not_found"
        );
        assert_eq!(
            create_key(
                &d,
                None,
                "support",
                "stranger@yourco.com",
                None,
                &[1; 32],
                1
            )
            .unwrap_err()
            .code(),
            "not_found"
        );
        assert_eq!(
            create_key(
                &d,
                Some(&member),
                "support",
                "a@yourco.com",
                None,
                &[1; 32],
                1
            )
            .unwrap_err()
            .code(),
            "forbidden"
        );
    }
}
