//! Teams, memberships and API keys (`docs/authority.md`): who a caller is, and who may manage whom.
//!
//! A key is `kt_` followed by 64 hex digits of randomness the host supplies (the core does no
//! I/O); it is shown once, and only its SHA-256 is stored. A key names a user and a team (and
//! optionally a consumer group); the role comes from the user's membership in that team when the
//! key is used, so a changed role or a removed member takes effect at once.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{AdminError, StoreError};
use crate::identity::{slugify, Principal, Role};
use crate::request::hex;
use crate::time::Millis;

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
    /// When the team was archived: its keys no longer authenticate, its members and wallets
    /// stay on record. `None` for an active team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<Millis>,
}

/// The team of a [`Member`] that makes its user an org admin (not a slug, so no team can
/// take it).
pub const ORG_SCOPE: &str = "*";

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
    /// What the key is for (`ci`, `laptop`), as its issuer wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// When the key stops authenticating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
    /// When it was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Millis>,
    /// The key that replaced it, when it was rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// The id of the first key of its rotation chain, for a key made by rotating another: its
    /// rate-limit counters are that key's, so rotating a key does not reset its limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<String>,
    /// When it last authenticated a request (to [`LAST_USED_PRECISION`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Millis>,
}

/// How stale a key's `last_used_at` may be: authentication writes it at most this often, so a
/// busy key costs one write a minute, not one per request.
pub const LAST_USED_PRECISION: Millis = 60_000;

/// Why a secret does not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not a `kt_` secret, or no key has it.
    Unknown,
    /// The key was revoked (or rotated).
    Revoked,
    /// The key expired.
    Expired,
    /// The key's user is no longer a member of its team.
    NotAMember,
    /// The key's team was archived.
    TeamArchived,
}

impl Refused {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Refused::Unknown => "unauthenticated",
            Refused::Revoked => "key_revoked",
            Refused::Expired => "key_expired",
            Refused::NotAMember => "not_a_member",
            Refused::TeamArchived => "team_archived",
        }
    }

    /// A message for the caller.
    pub fn message(self) -> &'static str {
        match self {
            Refused::Unknown => "the API key is not valid: send Authorization: Bearer kt_…",
            Refused::Revoked => "the API key was revoked",
            Refused::Expired => "the API key expired",
            Refused::NotAMember => "the API key's user is no longer a member of its team",
            Refused::TeamArchived => "the API key's team is archived",
        }
    }
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
            label: None,
            expires_at: None,
            revoked_at: None,
            replaced_by: None,
            lineage: None,
            last_used_at: None,
        };
        (secret, key)
    }

    /// Who the key is for rate limits: the first key of its rotation chain (its own id when it
    /// was never rotated). Public, like the id.
    pub fn rate_identity(&self) -> &str {
        self.lineage.as_deref().unwrap_or(&self.id)
    }

    /// The stored form of a secret.
    pub fn hash_secret(secret: &str) -> String {
        hex(&Sha256::digest(secret.as_bytes()))
    }

    /// What an event may say of a presented secret: the first 12 hex digits of its SHA-256 (the
    /// stored key's `hash` starts the same, so an admin can tell which key was used), never the
    /// secret.
    pub fn hint(secret: &str) -> String {
        let mut h = Self::hash_secret(secret);
        h.truncate(12);
        h
    }

    /// `active`, `revoked` or `expired` at `now`.
    pub fn status_at(&self, now: Millis) -> &'static str {
        if self.revoked {
            "revoked"
        } else if self.expires_at.is_some_and(|e| now >= e) {
            "expired"
        } else {
            "active"
        }
    }
}

/// A key as the admin API shows it: every field but the hash, and its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The key.
    #[serde(flatten)]
    pub key: KeyFields,
    /// `active`, `revoked` or `expired`.
    pub status: &'static str,
}

/// [`ApiKey`] without its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyFields {
    /// Public id.
    pub id: String,
    /// User id.
    pub user: String,
    /// Team slug.
    pub team: String,
    /// Consumer group bound to the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_group: Option<String>,
    /// Label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Creation time.
    pub created_at: Millis,
    /// Expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
    /// Revocation time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Millis>,
    /// Its replacement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// Last use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Millis>,
}

impl KeyInfo {
    /// The shown form of `key` at `now`.
    pub fn of(key: &ApiKey, now: Millis) -> KeyInfo {
        KeyInfo {
            status: key.status_at(now),
            key: KeyFields {
                id: key.id.clone(),
                user: key.user.clone(),
                team: key.team.clone(),
                consumer_group: key.consumer_group.clone(),
                label: key.label.clone(),
                created_at: key.created_at,
                expires_at: key.expires_at,
                revoked_at: key.revoked_at,
                replaced_by: key.replaced_by.clone(),
                last_used_at: key.last_used_at,
            },
        }
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
    /// Changes a team in one atomic read-modify-write; `None` if there is no such team.
    ///
    /// # Errors
    /// A store failure.
    fn update_team(
        &self,
        slug: &str,
        change: &dyn Fn(&mut Team),
    ) -> Result<Option<Team>, StoreError>;
    /// Removes a membership; the removed one, or `None` if there was none.
    ///
    /// # Errors
    /// A store failure.
    fn remove_member(&self, team: &str, user: &str) -> Result<Option<Member>, StoreError>;
    /// The key with this public id.
    ///
    /// # Errors
    /// A store failure.
    fn key(&self, id: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Changes a key in one atomic read-modify-write (its id and hash stay); `None` if there is
    /// no such key.
    ///
    /// # Errors
    /// A store failure.
    fn update_key(
        &self,
        id: &str,
        change: &dyn Fn(&mut ApiKey),
    ) -> Result<Option<ApiKey>, StoreError>;
}

/// The principal a bearer secret stands for at `now`, or why it stands for none. The role comes
/// from the user's membership in the key's team as stored now; an org admin (an `admin`
/// membership of [`ORG_SCOPE`]) acts as an admin of every team. A key used for the first time in
/// [`LAST_USED_PRECISION`] has its `last_used_at` written.
///
/// # Errors
/// A store failure.
pub fn authenticate(
    dir: &dyn Directory,
    secret: &str,
    org: &str,
    now: Millis,
) -> Result<Result<Principal, Refused>, StoreError> {
    Ok(authenticate_key(dir, secret, org, now)?.map(|(p, _)| p))
}

/// [`authenticate`], with the stored key it matched (for its [`ApiKey::rate_identity`]).
///
/// # Errors
/// A store failure.
pub fn authenticate_key(
    dir: &dyn Directory,
    secret: &str,
    org: &str,
    now: Millis,
) -> Result<Result<(Principal, ApiKey), Refused>, StoreError> {
    if !secret.starts_with(KEY_PREFIX) {
        return Ok(Err(Refused::Unknown));
    }
    authenticate_hash(dir, &ApiKey::hash_secret(secret), org, now)
}

/// [`authenticate_key`] for a key known by its SHA-256 ([`ApiKey::hash_secret`]), as a host
/// that keeps only the hash (a console session) asks again on each request: the same checks,
/// in the same order.
///
/// # Errors
/// A store failure.
pub fn authenticate_hash(
    dir: &dyn Directory,
    hash: &str,
    org: &str,
    now: Millis,
) -> Result<Result<(Principal, ApiKey), Refused>, StoreError> {
    let Some(key) = dir.key_by_hash(hash)? else {
        return Ok(Err(Refused::Unknown));
    };
    if key.revoked {
        return Ok(Err(Refused::Revoked));
    }
    if key.expires_at.is_some_and(|e| now >= e) {
        return Ok(Err(Refused::Expired));
    }
    if dir
        .team(&key.team)?
        .is_some_and(|t| t.archived_at.is_some())
    {
        return Ok(Err(Refused::TeamArchived));
    }
    let role = dir
        .members(Some(&key.team))?
        .into_iter()
        .find(|m| m.user == key.user)
        .map(|m| m.role);
    let org_admin = is_org_admin(dir, &key.user)?;
    let role = match (role, org_admin) {
        (Some(r), true) => r.max(Role::Admin),
        (Some(r), false) => r,
        (None, true) => Role::Admin,
        (None, false) => return Ok(Err(Refused::NotAMember)),
    };
    if key
        .last_used_at
        .is_none_or(|t| now.saturating_sub(t) >= LAST_USED_PRECISION)
    {
        dir.update_key(&key.id, &|k| k.last_used_at = Some(now))?;
    }
    let principal = Principal {
        org: Some(org.to_owned()),
        user: Some(key.user.clone()),
        team: Some(key.team.clone()),
        role: Some(role),
        consumer_group: key.consumer_group.clone(),
        authenticated: true,
        org_admin,
    };
    Ok(Ok((principal, key)))
}

/// Whether `user` holds an `admin` membership of the org scope.
///
/// # Errors
/// A store failure.
pub fn is_org_admin(dir: &dyn Directory, user: &str) -> Result<bool, StoreError> {
    Ok(dir
        .members(Some(ORG_SCOPE))?
        .iter()
        .any(|m| m.user == user && m.role >= Role::Admin))
}

pub(crate) fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

/// The slug of the team `name` designates ([`find_team`]), or `name` itself when no team
/// matches (a view of it then shows nothing, or refuses with the name as written).
///
/// # Errors
/// A store failure.
pub fn slug_of(dir: &dyn Directory, name: &str) -> Result<String, StoreError> {
    match find_team(dir, name) {
        Ok(t) => Ok(t.slug),
        Err(AdminError::Store(e)) => Err(e),
        Err(_) => Ok(name.to_owned()),
    }
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

    fn update_team(
        &self,
        slug: &str,
        change: &dyn Fn(&mut Team),
    ) -> Result<Option<Team>, StoreError> {
        let mut t = self.lock()?;
        Ok(t.teams.get_mut(slug).map(|team| {
            change(team);
            team.slug = slug.to_owned();
            team.clone()
        }))
    }

    fn remove_member(&self, team: &str, user: &str) -> Result<Option<Member>, StoreError> {
        Ok(self
            .lock()?
            .members
            .remove(&(team.to_owned(), user.to_owned())))
    }

    fn key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.lock()?.keys.values().find(|k| k.id == id).cloned())
    }

    fn update_key(
        &self,
        id: &str,
        change: &dyn Fn(&mut ApiKey),
    ) -> Result<Option<ApiKey>, StoreError> {
        let mut t = self.lock()?;
        Ok(t.keys.values_mut().find(|k| k.id == id).map(|k| {
            let (id, hash) = (k.id.clone(), k.hash.clone());
            change(k);
            k.id = id;
            k.hash = hash;
            k.clone()
        }))
    }
}
