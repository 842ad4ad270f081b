//! Stores: the memory, SQLite and PostgreSQL stores and what a host does with them (admin commands, wallets, tickets, escalations, events, dashboards).

use super::*;
use keeptrusts_core::wallet::budget::DEFAULT_ORG;

/// Where everything is kept: teams and keys, wallets, tickets, escalations, the audit chain.
/// `new Store()` keeps it in memory; `Store.sqlite(path)`, `Store.postgres(url)` or
/// `Store.open(url)` persist it.
#[napi]
pub struct Store {
    pub(crate) inner: Arc<dyn Storage>,
}

#[napi]
impl Store {
    /// `memory` (the default), `sqlite:PATH` or `postgres://user@host:port/db`.
    #[napi(constructor)]
    pub fn new(url: Option<String>) -> Result<Self> {
        Store::open(url.unwrap_or_else(|| "memory".into()))
    }

    /// `memory`, `sqlite:PATH` or `postgres://user@host:port/db`.
    #[napi(factory)]
    pub fn open(url: String) -> Result<Self> {
        let inner = keeptrusts_store::open(&url).map_err(fail)?;
        Ok(Store { inner })
    }

    /// Kept in this process only.
    #[napi(factory)]
    pub fn memory() -> Self {
        Store {
            inner: Arc::new(core::MemoryStore::new()),
        }
    }

    /// One SQLite file (created and migrated on open).
    #[napi(factory)]
    pub fn sqlite(path: String) -> Result<Self> {
        let s = keeptrusts_store::SqliteStore::open(&path).map_err(fail)?;
        Ok(Store { inner: Arc::new(s) })
    }

    /// A PostgreSQL database shared by many processes (migrated on connect).
    #[napi(factory)]
    pub fn postgres(url: String) -> Result<Self> {
        let s = keeptrusts_store::PgStore::connect(&url).map_err(fail)?;
        Ok(Store { inner: Arc::new(s) })
    }

    /// Runs one administrative command as `actor` (null: the host itself): an object in the
    /// shape of the core's `admin::Command`, `{ op: 'set_member', team: 'support', email, role:
    /// 'member' }`. Returns the command's answer; every change is recorded as an event in
    /// `org`'s chain (default: the actor's org, else `default`). Throws with `err.code`.
    #[napi(
        ts_args_type = "actor: Principal | null, command: AdminCommand, nowMs?: number | null, requestId?: string | null, org?: string | null",
        ts_return_type = "any"
    )]
    pub fn admin(
        &self,
        actor: Option<Value>,
        command: Value,
        now_ms: Option<i64>,
        request_id: Option<String>,
        org: Option<String>,
    ) -> Result<Value> {
        let call = admin_call(actor, now_ms, request_id, org)?;
        let command: Command = from_js(command, "command")?;
        answer(admin::execute(self.inner.as_ref(), &call.ctx(), &command))
    }

    /// Creates a team (owners and org admins; a `null` actor acts as the host itself).
    #[napi(
        ts_args_type = "actor: Principal | null, name: string, description?: string | null, nowMs?: number | null",
        ts_return_type = "Team"
    )]
    pub fn create_team(
        &self,
        actor: Option<Value>,
        name: String,
        description: Option<String>,
        now_ms: Option<i64>,
    ) -> Result<Value> {
        let call = admin_call(actor, now_ms, None, None)?;
        answer(admin::create_team(
            self.inner.as_ref(),
            &call.ctx(),
            &name,
            description.as_deref(),
        ))
    }

    /// Every team.
    #[napi(ts_return_type = "Team[]")]
    pub fn teams(&self) -> Result<Value> {
        answer(self.inner.teams())
    }

    /// Adds a member to a team, or changes their role.
    #[napi(
        ts_args_type = "actor: Principal | null, team: string, user: string, role: Role, nowMs?: number | null",
        ts_return_type = "Member"
    )]
    pub fn add_member(
        &self,
        actor: Option<Value>,
        team: String,
        user: String,
        role: String,
        now_ms: Option<i64>,
    ) -> Result<Value> {
        let role: Role = from_js(Value::String(role), "role (owner | admin | member)")?;
        let call = admin_call(actor, now_ms, None, None)?;
        answer(admin::set_member(
            self.inner.as_ref(),
            &call.ctx(),
            &team,
            &user,
            role,
        ))
    }

    /// Members of a team (or of every team).
    #[napi(ts_return_type = "Member[]")]
    pub fn members(&self, team: Option<String>) -> Result<Value> {
        answer(self.inner.members(team.as_deref()))
    }

    /// Issues an API key for a member: `{ secret, key }` (the key as `keys()` shows it); the
    /// secret is shown only here.
    #[napi(
        ts_args_type = "actor: Principal | null, team: string, user: string, consumerGroup?: string | null, nowMs?: number | null, options?: KeyOptions | null",
        ts_return_type = "IssuedKey"
    )]
    pub fn create_key(
        &self,
        actor: Option<Value>,
        team: String,
        user: String,
        consumer_group: Option<String>,
        now_ms: Option<i64>,
        options: Option<KeyOptions>,
    ) -> Result<Value> {
        let call = admin_call(actor, now_ms, None, None)?;
        let o = options.unwrap_or_default();
        let new = NewKey {
            team,
            email: user,
            consumer_group,
            label: o.label,
            expires_at: o.expires_at,
        };
        answer(
            admin::create_key(self.inner.as_ref(), &call.ctx(), &new)
                .map(|i| serde_json::json!({"secret": i.key, "key": i.info})),
        )
    }

    /// Keys of a team (or every key) with their status at `nowMs`: never a secret or a hash.
    #[napi(ts_return_type = "KeyInfo[]")]
    pub fn keys(&self, team: Option<String>, now_ms: Option<i64>) -> Result<Value> {
        let ctx = Ctx::new(None, DEFAULT_ORG, now(now_ms), "keys", [0; 32]);
        answer(admin::list_keys(self.inner.as_ref(), &ctx, team.as_deref()))
    }

    /// The principal a `kt_…` secret stands for now, or null.
    #[napi(ts_return_type = "Principal | null")]
    pub fn authenticate(
        &self,
        secret: String,
        org: Option<String>,
        now_ms: Option<i64>,
    ) -> Result<Value> {
        self.authenticated(&secret, org, now_ms, |r| r.ok())
    }

    /// What a `kt_…` secret stands for now: `{ principal }`, or `{ refused: code, message }`
    /// saying why not (`key_revoked`, `key_expired`, `not_a_member`, …).
    #[napi(ts_return_type = "AuthenticateStatus")]
    pub fn authenticate_status(
        &self,
        secret: String,
        org: Option<String>,
        now_ms: Option<i64>,
    ) -> Result<Value> {
        self.authenticated(&secret, org, now_ms, |r| match r {
            Ok(p) => serde_json::json!({ "principal": p }),
            Err(r) => serde_json::json!({ "refused": r.code(), "message": r.message() }),
        })
    }

    /// Sets or tops up a wallet as `actor` (null: the host itself): the seed's body `{ team:
    /// 'legal', amount: '1000', currency: 'USD', period: 'monthly' }` (or `user` / `org`;
    /// `mode`: set | top_up). The team or user must exist.
    #[napi(
        ts_args_type = "actor: Principal | null, allocation: Allocation, nowMs?: number | null",
        ts_return_type = "Wallet"
    )]
    pub fn allocate(
        &self,
        actor: Option<Value>,
        allocation: Value,
        now_ms: Option<i64>,
    ) -> Result<Value> {
        let call = admin_call(actor, now_ms, None, None)?;
        let a: Allocation = from_js(allocation, "allocation")?;
        answer(admin::allocate(self.inner.as_ref(), &call.ctx(), &a))
    }

    /// The wallets `viewer` may see (an owner all; others their team's and their own).
    #[napi(
        ts_args_type = "viewer: Principal, nowMs?: number | null",
        ts_return_type = "Wallet[]"
    )]
    pub fn balances(&self, viewer: Value, now_ms: Option<i64>) -> Result<Value> {
        let viewer: core::Principal = from_js(viewer, "viewer")?;
        answer(
            core::WalletStore::list(self.inner.as_ref(), now(now_ms))
                .map(|all| wallet::visible(&viewer, all)),
        )
    }

    /// One wallet (`team:ID`, `user:EMAIL`, `org:ID`), or null.
    #[napi(ts_return_type = "Wallet | null")]
    pub fn wallet(&self, key: String, now_ms: Option<i64>) -> Result<Value> {
        let key: WalletKey = key.parse().map_err(fail)?;
        answer(core::WalletStore::get(
            self.inner.as_ref(),
            &key,
            now(now_ms),
        ))
    }

    /// Releases reservations whose lease expired; returns how many.
    #[napi(ts_return_type = "number")]
    pub fn expire(&self, now_ms: Option<i64>) -> Result<Value> {
        answer(self.inner.expire(now(now_ms)))
    }

    /// Closes an evaluated request: with `usage` (the provider's), settles its reservation at the
    /// actual cost together with its event; without, releases the reservation and records the
    /// event. Completing twice charges once.
    #[napi(
        ts_args_type = "principal: Principal, decision: Decision, requestId: string, options?: CompleteOptions | null",
        ts_return_type = "Completion"
    )]
    pub fn complete(
        &self,
        principal: Value,
        decision: Value,
        request_id: String,
        options: Option<CompleteOptions>,
    ) -> Result<Value> {
        let p: core::Principal = from_js(principal, "principal")?;
        let d: core::Decision = from_js(decision, "decision")?;
        let o = options.unwrap_or_default();
        let usage: Option<Usage> = optional(o.usage, "usage")?;
        let served = usage.map(|u| (o.target.as_deref().unwrap_or(""), u));
        answer(event::complete(
            self.inner.as_ref(),
            &p,
            &d,
            &request_id,
            o.model.as_deref(),
            served,
            now(o.now_ms),
        ))
    }

    /// Cost tickets `viewer` may see (an owner every team's, an admin their team's, a member
    /// their own).
    #[napi(ts_args_type = "viewer: Principal", ts_return_type = "Ticket[]")]
    pub fn tickets(&self, viewer: Value) -> Result<Value> {
        let viewer: core::Principal = from_js(viewer, "viewer")?;
        answer(core::wallet::ticket::list_visible(
            self.inner.as_ref(),
            &viewer,
        ))
    }

    /// Approves (`chargeTo` a wallet, default the ticket's team) or denies a cost ticket; the
    /// resolution is recorded as an event.
    #[napi(
        ts_args_type = "reviewer: Principal, ticketId: string, resolution: Resolution, chargeTo?: string | null, nowMs?: number | null",
        ts_return_type = "Ticket"
    )]
    pub fn resolve_ticket(
        &self,
        reviewer: Value,
        ticket_id: String,
        resolution: String,
        charge_to: Option<String>,
        now_ms: Option<i64>,
    ) -> Result<Value> {
        let call = admin_call(Some(reviewer), now_ms, None, None)?;
        let approve = ruling(&resolution)?;
        answer(admin::resolve_ticket(
            self.inner.as_ref(),
            &call.ctx(),
            &ticket_id,
            approve,
            charge_to.as_deref(),
        ))
    }

    /// Escalations `viewer` reviews (an owner every team's, others their own team's).
    #[napi(ts_args_type = "viewer: Principal", ts_return_type = "Escalation[]")]
    pub fn escalations(&self, viewer: Value) -> Result<Value> {
        let viewer: core::Principal = from_js(viewer, "viewer")?;
        answer(core::escalation::list_visible(self.inner.as_ref(), &viewer))
    }

    /// One escalation, or null.
    #[napi(ts_return_type = "Escalation | null")]
    pub fn escalation(&self, escalation_id: String) -> Result<Value> {
        answer(core::EscalationStore::get(
            self.inner.as_ref(),
            &escalation_id,
        ))
    }

    /// Approves or denies an escalation as `reviewer` (an owner, an org admin, or an admin of its
    /// team); the resolution is recorded as an event.
    #[napi(
        ts_args_type = "reviewer: Principal, escalationId: string, resolution: Resolution, nowMs?: number | null",
        ts_return_type = "Escalation"
    )]
    pub fn resolve_escalation(
        &self,
        reviewer: Value,
        escalation_id: String,
        resolution: String,
        now_ms: Option<i64>,
    ) -> Result<Value> {
        let call = admin_call(Some(reviewer), now_ms, None, None)?;
        let r: Resolution = from_js(Value::String(resolution), "resolution (approve | deny)")?;
        answer(admin::resolve_escalation(
            self.inner.as_ref(),
            &call.ctx(),
            &escalation_id,
            r,
        ))
    }

    /// Every event of an org's audit chain, in order.
    #[napi(ts_return_type = "AuditEvent[]")]
    pub fn events(&self, org: Option<String>) -> Result<Value> {
        answer(EventStore::list(
            self.inner.as_ref(),
            org.as_deref().unwrap_or(DEFAULT_ORG),
        ))
    }

    /// Checks an org's chain: `{ valid, events, problem?, tamper? }` naming the first break.
    #[napi(ts_return_type = "VerifyReport")]
    pub fn verify(&self, org: Option<String>) -> Result<Value> {
        let opts = event::VerifyOptions {
            now: now(None),
            default_days: 365,
            expect_head: None,
        };
        answer(event::check(
            self.inner.as_ref(),
            org.as_deref().unwrap_or(DEFAULT_ORG),
            &opts,
        ))
    }

    /// Removes the content of events whose retention ended (each keeps its place and hash, so
    /// the chain still verifies); returns how many.
    #[napi(ts_return_type = "number")]
    pub fn prune(
        &self,
        org: Option<String>,
        default_days: Option<u32>,
        now_ms: Option<i64>,
    ) -> Result<Value> {
        answer(EventStore::prune(
            self.inner.as_ref(),
            org.as_deref().unwrap_or(DEFAULT_ORG),
            now(now_ms),
            default_days.unwrap_or(365),
        ))
    }

    /// A dashboard section (overview, events, spend, escalations, usage) of `options.team`
    /// (default: the viewer's), as `viewer` may see it.
    #[napi(
        ts_args_type = "viewer: Principal, section: Section, options?: DashboardOptions | null",
        ts_return_type = "Record<string, any>"
    )]
    pub fn dashboard(
        &self,
        viewer: Value,
        section: String,
        options: Option<DashboardOptions>,
    ) -> Result<Value> {
        let viewer: core::Principal = from_js(viewer, "viewer")?;
        let section: Section = from_js(Value::String(section), "section")?;
        let o = options.unwrap_or_default();
        let filter: EventFilter = optional(o.filter, "filter")?.unwrap_or_default();
        let granularity: Granularity = match o.granularity {
            Some(g) => from_js(Value::String(g), "granularity")?,
            None => Granularity::default(),
        };
        let org = o
            .org
            .or_else(|| viewer.org.clone())
            .unwrap_or_else(|| DEFAULT_ORG.into());
        let team = o.team.or_else(|| viewer.team.clone()).unwrap_or_default();
        let query = Query {
            team: directory::slug_of(self.inner.as_ref(), &team).map_err(fail)?,
            section,
            filter,
            granularity,
            limit: None,
            before: None,
        };
        answer(dashboard::load(self.inner.as_ref(), &org, &viewer, &query))
    }
}

impl Store {
    /// What `secret` stands for in `org` (default: `default`) at `now_ms`, as `shown` puts it.
    fn authenticated<T: serde::Serialize>(
        &self,
        secret: &str,
        org: Option<String>,
        now_ms: Option<i64>,
        shown: impl FnOnce(std::result::Result<core::Principal, directory::Refused>) -> T,
    ) -> Result<Value> {
        let org = org.as_deref().unwrap_or(DEFAULT_ORG);
        answer(directory::authenticate(self.inner.as_ref(), secret, org, now(now_ms)).map(shown))
    }
}

/// Options of [`Store::complete`].
#[napi(object)]
#[derive(Default)]
pub struct CompleteOptions {
    /// The model the request asked for.
    pub model: Option<String>,
    /// The target that served it.
    pub target: Option<String>,
    /// The provider's usage; without it the reservation is released.
    #[napi(ts_type = "Usage | null")]
    pub usage: Option<Value>,
    /// Now, in milliseconds (default: the clock).
    pub now_ms: Option<i64>,
}

/// Options of [`Store::create_key`].
#[napi(object)]
#[derive(Default)]
pub struct KeyOptions {
    /// What the key is for (`ci`, `laptop`).
    pub label: Option<String>,
    /// When the key stops authenticating (milliseconds since the epoch).
    pub expires_at: Option<i64>,
}

/// Options of [`Store::dashboard`].
#[napi(object)]
#[derive(Default)]
pub struct DashboardOptions {
    /// Team slug (default: the viewer's team).
    pub team: Option<String>,
    /// Event filters: `verdict`, `policy`, `user`, `from`, `to`.
    #[napi(ts_type = "Record<string, any> | null")]
    pub filter: Option<Value>,
    /// `day` (default), `week` or `month`.
    #[napi(ts_type = "'day' | 'week' | 'month' | null")]
    pub granularity: Option<String>,
    /// Org id (default: the viewer's, else `default`).
    pub org: Option<String>,
}
