//! API keys: issuing, revoking, rotating and listing them.

use super::*;

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
