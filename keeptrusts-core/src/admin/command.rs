//! Every administrative action as JSON ([`Command`]) and the one entry point that runs it
//! ([`execute`]).

use super::*;

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
