//! Node bindings: type conversion and error mapping only; every rule lives in keeptrusts-core.
//! Errors are thrown with `err.code` set to the core's stable code. Calls that can take long
//! (`scanAsync`, `redactAsync`, `Engine#evaluateAsync`) run on the libuv thread pool and return
//! Promises, which reject (never throw) with the same codes.

use std::sync::Arc;

use keeptrusts_core::admin::{self, Command, Ctx, NewKey};
use keeptrusts_core::dashboard::{self, EventFilter, Granularity, Query, Section};
use keeptrusts_core::detect::builtin::BuiltinDetector;
use keeptrusts_core::detect::{offsets, resolve_overlaps, Detector, EntityType, OffsetUnit};
use keeptrusts_core::directory;
use keeptrusts_core::escalation::Resolution;
use keeptrusts_core::event::{self, EventStore};
use keeptrusts_core::pricing::Usage;
use keeptrusts_core::redact::{key_from, Redactor};
use keeptrusts_core::wallet::{self, Allocation, WalletKey};
use keeptrusts_core::{self as core, Role, Storage};
use napi::bindgen_prelude::{AsyncTask, JsObjectValue, JsValue, ToNapiValue, Unknown};
use napi::{Env, ScopedTask, Status};
use napi_derive::napi;
use serde_json::Value;

type Result<T> = napi::Result<T, String>;

/// A failure as (code, message): what crosses threads before it becomes a JS error.
type Failure = (String, String);

/// The one place core errors become JS errors: `err.code` is the core's stable code.
fn js_error((code, message): Failure) -> napi::Error<String> {
    napi::Error::new(code, message)
}

/// Every core error type has a stable `code()`.
trait Coded: std::fmt::Display {
    fn code(&self) -> &str;
}

macro_rules! coded {
    ($($t:ty),*) => {$(
        impl Coded for $t {
            fn code(&self) -> &str {
                <$t>::code(self)
            }
        }
    )*};
}
coded!(
    core::PackError,
    core::RequestError,
    core::AdminError,
    core::StoreError,
    core::wallet::WalletError
);

fn failure<E: Coded>(e: E) -> Failure {
    (e.code().to_owned(), e.to_string())
}

fn fail<E: Coded>(e: E) -> napi::Error<String> {
    js_error(failure(e))
}

fn argument(message: String) -> Failure {
    ("invalid_argument".to_owned(), message)
}

/// JavaScript has one number type: integral numbers beyond 32 bits (times in milliseconds)
/// arrive as floats; give them back their integer form.
fn integral(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            #[allow(clippy::cast_possible_truncation)]
            Some(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                Value::from(f as i64)
            }
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(integral).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, integral(v))).collect()),
        other => other,
    }
}

fn from_js<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T> {
    serde_json::from_value(integral(v))
        .map_err(|e| js_error(argument(format!("invalid {what}: {e}"))))
}

/// A Promise API rejects (never throws) on bad arguments: the failure runs as the task.
fn task(job: Result<Job>) -> AsyncTask<Job> {
    AsyncTask::new(job.unwrap_or_else(|e| {
        let f = (e.status, e.reason);
        Job::new(move || Err(f))
    }))
}

fn optional<T: serde::de::DeserializeOwned>(v: Option<Value>, what: &str) -> Result<Option<T>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => from_js(v, what).map(Some),
    }
}

fn to_js<T: serde::Serialize>(v: &T) -> std::result::Result<Value, Failure> {
    serde_json::to_value(v).map_err(|e| ("internal".to_owned(), e.to_string()))
}

fn answer<T: serde::Serialize, E: Coded>(r: std::result::Result<T, E>) -> Result<Value> {
    r.map_err(fail).and_then(|v| to_js(&v).map_err(js_error))
}

/// `nowMs`, or the host clock.
fn now(now_ms: Option<i64>) -> i64 {
    now_ms.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)
        .map_err(|e| js_error(argument(format!("no randomness from the OS: {e}"))))?;
    Ok(b)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What an administrative call takes from the host: the actor (null: the host itself), the org
/// whose chain records it (default: the actor's, else `default`), the time (default: the host
/// clock), an id (default: a fresh `adm_…`) and 32 random bytes for a new key's secret.
struct AdminCall {
    actor: Option<core::Principal>,
    org: String,
    now: i64,
    request_id: String,
    random: [u8; 32],
}

impl AdminCall {
    fn new(
        actor: Option<Value>,
        now_ms: Option<i64>,
        request_id: Option<String>,
        org: Option<String>,
    ) -> Result<Self> {
        let actor: Option<core::Principal> = optional(actor, "actor")?;
        let request_id = match request_id {
            Some(id) => id,
            None => format!("adm_{}", hex(&random::<8>()?)),
        };
        let org = org
            .or_else(|| actor.as_ref().and_then(|a| a.org.clone()))
            .unwrap_or_else(|| "default".into());
        Ok(AdminCall {
            actor,
            org,
            now: now(now_ms),
            request_id,
            random: random::<32>()?,
        })
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx::new(
            self.actor.as_ref(),
            &self.org,
            self.now,
            &self.request_id,
            self.random,
        )
    }
}

/// `approve` or `deny`.
fn ruling(resolution: &str) -> Result<bool> {
    match resolution {
        "approve" => Ok(true),
        "deny" => Ok(false),
        other => Err(js_error(argument(format!(
            "resolution must be `approve` or `deny`, not `{other}`"
        )))),
    }
}

/// The request context; `now_ms` defaults to the host clock and `request_id` to a fresh id.
fn request_context(v: Option<Value>) -> Result<core::RequestContext> {
    let mut v = match v {
        None | Some(Value::Null) => serde_json::json!({}),
        Some(v) => v,
    };
    if let Some(o) = v.as_object_mut() {
        o.entry("now_ms").or_insert_with(|| now(None).into());
        if !o.contains_key("request_id") {
            let id = format!("req_{}", hex(&random::<12>()?));
            o.insert("request_id".into(), id.into());
        }
    }
    from_js(v, "context")
}

/// Work for the libuv pool: runs a closure off the event loop, settles the Promise with its JSON
/// answer or rejects it with an error carrying `code`.
pub struct Job(Option<Box<dyn FnOnce() -> std::result::Result<Value, Failure> + Send>>);

impl Job {
    fn new(f: impl FnOnce() -> std::result::Result<Value, Failure> + Send + 'static) -> Self {
        Job(Some(Box::new(f)))
    }
}

impl<'task> ScopedTask<'task> for Job {
    type Output = std::result::Result<Value, Failure>;
    type JsValue = Unknown<'task>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        match self.0.take() {
            Some(f) => Ok(f()),
            None => Err(napi::Error::new(
                Status::GenericFailure,
                "the task already ran",
            )),
        }
    }

    fn resolve(&mut self, env: &'task Env, output: Self::Output) -> napi::Result<Unknown<'task>> {
        match output {
            Ok(v) => v.into_unknown(env),
            Err((code, message)) => {
                let mut e = env.create_error(napi::Error::new(Status::GenericFailure, message))?;
                e.set_named_property("code", code)?;
                Err(napi::Error::from(e.to_unknown()))
            }
        }
    }
}

/// Where everything is kept: teams and keys, wallets, tickets, escalations, the audit chain.
/// `new Store()` keeps it in memory; `Store.sqlite(path)`, `Store.postgres(url)` or
/// `Store.open(url)` persist it.
#[napi]
pub struct Store {
    inner: Arc<dyn Storage>,
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
        let call = AdminCall::new(actor, now_ms, request_id, org)?;
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
        let call = AdminCall::new(actor, now_ms, None, None)?;
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
        let call = AdminCall::new(actor, now_ms, None, None)?;
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
        let call = AdminCall::new(actor, now_ms, None, None)?;
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
        let ctx = Ctx::new(None, "default", now(now_ms), "keys", [0; 32]);
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
        answer(
            directory::authenticate(
                self.inner.as_ref(),
                &secret,
                org.as_deref().unwrap_or("default"),
                now(now_ms),
            )
            .map(|r| r.ok()),
        )
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
        answer(
            directory::authenticate(
                self.inner.as_ref(),
                &secret,
                org.as_deref().unwrap_or("default"),
                now(now_ms),
            )
            .map(|r| match r {
                Ok(p) => serde_json::json!({ "principal": p }),
                Err(r) => serde_json::json!({ "refused": r.code(), "message": r.message() }),
            }),
        )
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
        let call = AdminCall::new(actor, now_ms, None, None)?;
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
        let call = AdminCall::new(Some(reviewer), now_ms, None, None)?;
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
        let call = AdminCall::new(Some(reviewer), now_ms, None, None)?;
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
            org.as_deref().unwrap_or("default"),
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
            org.as_deref().unwrap_or("default"),
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
            org.as_deref().unwrap_or("default"),
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
            .unwrap_or_else(|| "default".into());
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

/// A compiled, immutable pack.
#[napi]
pub struct Engine {
    inner: core::Engine,
}

/// The evaluation shared by `evaluate` and `evaluateAsync`.
fn evaluate_job(
    engine: core::Engine,
    principal: Value,
    request: Value,
    store: Option<&Store>,
    context: Option<Value>,
    budget: Option<bool>,
) -> Result<impl FnOnce() -> std::result::Result<Value, Failure> + Send + 'static> {
    let p: core::Principal = from_js(principal, "principal")?;
    let r: core::ChatRequest = from_js(request, "request")?;
    let ctx = request_context(context)?;
    let (store, budget): (Arc<dyn Storage>, bool) = match store {
        Some(s) => (Arc::clone(&s.inner), budget.unwrap_or(true)),
        None => (Arc::new(core::MemoryStore::new()), false),
    };
    Ok(move || {
        let mut stores = core::Stores::new(store.as_ref());
        if budget {
            stores = stores.with_budget(store.as_ref(), store.as_ref());
        }
        let d = engine.evaluate(&p, &r, &ctx, &stores).map_err(failure)?;
        to_js(&d)
    })
}

#[napi]
impl Engine {
    /// Parse, validate and compile a YAML pack; throws with `err.code` E000–E007.
    #[napi(factory)]
    pub fn from_yaml(source: String) -> Result<Engine> {
        let inner = core::Engine::from_yaml(&source).map_err(fail)?;
        Ok(Engine { inner })
    }

    /// Read a YAML pack from a file.
    #[napi(factory)]
    pub fn from_file(path: String) -> Result<Engine> {
        let src = std::fs::read_to_string(&path)
            .map_err(|e| js_error(("io_error".into(), format!("cannot read {path}: {e}"))))?;
        Engine::from_yaml(src)
    }

    /// Validation warnings.
    #[napi(getter, ts_return_type = "Diagnostic[]")]
    pub fn warnings(&self) -> Result<Value> {
        to_js(&self.inner.warnings()).map_err(js_error)
    }

    /// Team slugs named by targeting lists.
    #[napi]
    pub fn named_teams(&self) -> Vec<String> {
        self.inner.named_teams()
    }

    /// The effective chain (policy kind names, execution order) for a principal.
    #[napi(ts_args_type = "principal: Principal")]
    pub fn effective_chain(&self, principal: Value) -> Result<Vec<String>> {
        let p: core::Principal = from_js(principal, "principal")?;
        Ok(self
            .inner
            .effective_chain(&p)
            .kinds
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect())
    }

    /// Evaluate a request (input phase). With a store, escalations are kept there and, unless
    /// `budget` is false, the estimated cost is reserved on the principal's wallets (or a
    /// ticket opened). Returns the decision.
    #[napi(
        ts_args_type = "principal: Principal, request: ChatRequest, store?: Store | null, context?: RequestContext | null, budget?: boolean | null",
        ts_return_type = "Decision"
    )]
    pub fn evaluate(
        &self,
        principal: Value,
        request: Value,
        store: Option<&Store>,
        context: Option<Value>,
        budget: Option<bool>,
    ) -> Result<Value> {
        let job = evaluate_job(
            self.inner.clone(),
            principal,
            request,
            store,
            context,
            budget,
        )?;
        job().map_err(js_error)
    }

    /// `evaluate` on the libuv thread pool: the event loop keeps running meanwhile.
    #[napi(
        ts_args_type = "principal: Principal, request: ChatRequest, store?: Store | null, context?: RequestContext | null, budget?: boolean | null",
        ts_return_type = "Promise<Decision>"
    )]
    pub fn evaluate_async(
        &self,
        principal: Value,
        request: Value,
        store: Option<&Store>,
        context: Option<Value>,
        budget: Option<bool>,
    ) -> AsyncTask<Job> {
        task(
            evaluate_job(
                self.inner.clone(),
                principal,
                request,
                store,
                context,
                budget,
            )
            .map(Job::new),
        )
    }

    /// Begin a request's lifecycle: the input chain, the reservation (unless `budget` is
    /// false), and what to send. A refusal is already answered and written
    /// (`exchange.refusal`).
    #[napi(
        ts_args_type = "principal: Principal, request: ChatRequest, store?: Store | null, context?: RequestContext | null, budget?: boolean | null"
    )]
    pub fn begin(
        &self,
        principal: Value,
        request: Value,
        store: Option<&Store>,
        context: Option<Value>,
        budget: Option<bool>,
    ) -> Result<Exchange> {
        let p: core::Principal = from_js(principal, "principal")?;
        let r: core::ChatRequest = from_js(request, "request")?;
        let ctx = request_context(context)?;
        let (store, budget): (Arc<dyn Storage>, bool) = match store {
            Some(s) => (Arc::clone(&s.inner), budget.unwrap_or(true)),
            None => (Arc::new(core::MemoryStore::new()), false),
        };
        let mut stores = core::Stores::new(store.as_ref());
        if budget {
            stores = stores.with_budget(store.as_ref(), store.as_ref());
        }
        let begun = core::exchange::Exchange::begin(&self.inner, None, &p, &r, &ctx, &stores)
            .map_err(fail)?;
        Ok(match begun {
            core::exchange::Begin::Forward(x) => Exchange {
                x: Some(x),
                refusal: None,
                store,
            },
            core::exchange::Begin::Answer(a) => {
                a.close
                    .clone()
                    .commit(store.as_ref(), Some(store.as_ref()), ctx.now_ms)
                    .map_err(fail)?;
                Exchange {
                    x: None,
                    refusal: Some(*a),
                    store,
                }
            }
        })
    }

    /// Evaluate a provider response (output phase); returns the decision.
    #[napi(
        ts_args_type = "principal: Principal, response: ChatResponse, context?: RequestContext | null",
        ts_return_type = "Decision"
    )]
    pub fn evaluate_output(
        &self,
        principal: Value,
        response: Value,
        context: Option<Value>,
    ) -> Result<Value> {
        let p: core::Principal = from_js(principal, "principal")?;
        let r: core::ChatResponse = from_js(response, "response")?;
        let ctx = request_context(context)?;
        answer(self.inner.evaluate_output(&p, &r, &ctx))
    }
}

/// An answer, and its closing to write.
fn written(a: core::exchange::Answer) -> (core::exchange::Answer, Option<event::Closing>) {
    let c = a.close.clone();
    (a, Some(c))
}

/// One request through its lifecycle (`Engine#begin`): the host calls its provider (or app)
/// with `nextCall()` and reports what happened; every closing (settlement or release, and the
/// event) is written to the store the exchange began with.
#[napi]
pub struct Exchange {
    x: Option<Box<core::exchange::Exchange>>,
    refusal: Option<core::exchange::Answer>,
    store: Arc<dyn Storage>,
}

impl Exchange {
    /// Runs `f` on the lifecycle, writes the closing it returns, and converts the value.
    fn with<T: serde::Serialize>(
        &mut self,
        f: impl FnOnce(&mut core::exchange::Exchange) -> (T, Option<event::Closing>),
    ) -> Result<Value> {
        let x = self.x.as_mut().ok_or_else(|| {
            js_error(argument(
                "the request was refused: nothing to call".to_owned(),
            ))
        })?;
        let (v, close) = f(x);
        if let Some(c) = close {
            c.commit(self.store.as_ref(), Some(self.store.as_ref()), now(None))
                .map_err(fail)?;
        }
        to_js(&v).map_err(js_error)
    }
}

#[napi]
impl Exchange {
    /// The refusal (`{status, body, verdict, close}`) when the request was answered before any
    /// call (its closing is already written); null when it goes through.
    #[napi(getter, ts_return_type = "ExchangeAnswer | null")]
    pub fn refusal(&self) -> Result<Value> {
        to_js(&self.refusal).map_err(js_error)
    }

    /// The input decision (verdict, policy results, reservation, estimate).
    #[napi(getter, ts_return_type = "Decision")]
    pub fn decision(&mut self) -> Result<Value> {
        self.with(|x| (x.decision().clone(), None))
    }

    /// The request to send next (the governed request with its output limit), or null when
    /// every candidate was tried.
    #[napi(ts_return_type = "ChatRequest | null")]
    pub fn next_call(&mut self) -> Result<Value> {
        self.with(|x| (x.next_call().map(|c| c.request), None))
    }

    /// The call failed before any answer (nothing is charged for it).
    #[napi]
    pub fn failed(&mut self) -> Result<()> {
        self.with(|x| {
            x.failed();
            ((), None)
        })
        .map(|_| ())
    }

    /// Every call failed: the 502 answer; the reservation is released and the event written.
    #[napi(ts_return_type = "ExchangeAnswer")]
    pub fn exhausted(&mut self, message: String) -> Result<Value> {
        self.with(|x| written(x.exhausted(&message)))
    }

    /// A whole chat completion answered: the output phase and the settlement on its usage (its
    /// whole bound without one).
    #[napi(
        ts_args_type = "response: ChatResponse",
        ts_return_type = "ExchangeAnswer"
    )]
    pub fn answer(&mut self, response: Value) -> Result<Value> {
        let r: core::ChatResponse = from_js(response, "response")?;
        self.with(|x| written(x.answer(&r)))
    }

    /// A 2xx answer that could not be read: 502, and the whole bound settled.
    #[napi(ts_return_type = "ExchangeAnswer")]
    pub fn broken(&mut self, message: String) -> Result<Value> {
        self.with(|x| written(x.broken(&message)))
    }

    /// One streamed chat completion chunk through the output filter: the chunks to send now.
    #[napi(
        ts_args_type = "chunk: Record<string, any>",
        ts_return_type = "Record<string, any>[]"
    )]
    pub fn push_chunk(&mut self, chunk: Value) -> Result<Value> {
        self.with(|x| (x.push_chunk(&chunk), None))
    }

    /// Ends the stream (`end`: `complete`, `broken` with `message`, or `client_gone`): returns
    /// `{chunks, close, verdict}`, the chunks to send last; the closing is written.
    #[napi(
        ts_args_type = "end?: 'complete' | 'broken' | 'client_gone' | null, message?: string | null",
        ts_return_type = "StreamFinish"
    )]
    pub fn finish_stream(&mut self, end: Option<String>, message: Option<String>) -> Result<Value> {
        let name = end.unwrap_or_else(|| "complete".to_owned());
        let end = core::exchange::StreamEnd::named(&name, message.as_deref().unwrap_or(""))
            .ok_or_else(|| {
                js_error(argument(format!(
                    "unknown stream end `{name}`: complete, broken or client_gone"
                )))
            })?;
        self.with(|x| {
            let (chunks, done) = x.finish_chunks(end);
            let c = done.close.clone();
            (
                serde_json::json!({"chunks": chunks, "close": done.close, "verdict": done.verdict}),
                Some(c),
            )
        })
    }

    /// The client went away: the closing (released before any call, the whole bound while a
    /// call was under way) is written; null if the request was already closed.
    #[napi(ts_return_type = "Record<string, any> | null")]
    pub fn abandon(&mut self) -> Result<Value> {
        self.with(|x| {
            let c = x.abandon();
            (c.clone(), c)
        })
    }
}

/// Validate a pack: `{ valid, errors, warnings }`.
#[napi(ts_return_type = "LintReport")]
pub fn lint(source: String) -> Value {
    match core::pack::parse(&source) {
        Ok(p) => serde_json::json!({ "valid": true, "errors": [], "warnings": p.warnings }),
        Err(e) => serde_json::json!({ "valid": false, "errors": e.errors, "warnings": e.warnings }),
    }
}

fn detector(entities: Option<Vec<String>>) -> Result<BuiltinDetector> {
    let types: Vec<EntityType> = match entities {
        Some(list) => from_js(Value::from(list), "entities")?,
        None => BuiltinDetector::all_types(),
    };
    BuiltinDetector::new(&types, &[], &[]).map_err(|(_, e)| js_error(argument(e)))
}

fn redactor(format: Option<String>, hash_key: Option<&str>) -> Result<Redactor> {
    let marker_format = from_js(
        Value::from(format.unwrap_or_else(|| "label".into())),
        "format",
    )?;
    let o = core::pack::spec::RedactionOptions {
        marker_format: Some(marker_format),
        ..Default::default()
    };
    Ok(Redactor::new(
        Some(&o),
        Vec::new(),
        key_from(hash_key.unwrap_or("")),
    ))
}

fn spans(d: &BuiltinDetector, text: &str) -> Value {
    let mut found = Vec::new();
    d.scan(text, &mut found);
    resolve_overlaps(&mut found);
    let spans: Vec<Value> = found
        .iter()
        .zip(offsets(text, &found, OffsetUnit::Utf16))
        .map(|(f, (start, end))| serde_json::json!({"start": start, "end": end, "type": f.entity.as_str()}))
        .collect();
    Value::from(spans)
}

fn redacted(d: &BuiltinDetector, r: &Redactor, text: &str) -> String {
    let mut found = Vec::new();
    d.scan(text, &mut found);
    resolve_overlaps(&mut found);
    r.redact(text, &found)
}

/// Sensitive values in `text`: `{start, end, type}` in UTF-16 code units (JavaScript string
/// indices), sorted, without overlaps.
#[napi(ts_return_type = "Span[]")]
pub fn scan(text: String, entities: Option<Vec<String>>) -> Result<Value> {
    let d = detector(entities)?;
    Ok(spans(&d, &text))
}

/// `scan` on the libuv thread pool: the event loop keeps running meanwhile.
#[napi(ts_return_type = "Promise<Span[]>")]
pub fn scan_async(text: String, entities: Option<Vec<String>>) -> AsyncTask<Job> {
    task(detector(entities).map(|d| Job::new(move || Ok(spans(&d, &text)))))
}

/// Options of [`redact`].
#[napi(object)]
pub struct RedactOptions {
    /// `label` (default), `mask`, `hash` or `partial`.
    #[napi(ts_type = "MarkerFormat")]
    pub format: Option<String>,
    /// Entity types to look for (default: all).
    pub entities: Option<Vec<String>>,
    /// Keys the `hash` format.
    pub hash_key: Option<String>,
}

fn redact_parts(options: Option<RedactOptions>) -> Result<(BuiltinDetector, Redactor)> {
    let (format, entities, key) = match options {
        Some(o) => (o.format, o.entities, o.hash_key),
        None => (None, None, None),
    };
    Ok((detector(entities)?, redactor(format, key.as_deref())?))
}

/// `text` with every detected value replaced by a marker.
#[napi]
pub fn redact(text: String, options: Option<RedactOptions>) -> Result<String> {
    let (d, r) = redact_parts(options)?;
    Ok(redacted(&d, &r, &text))
}

/// `redact` on the libuv thread pool.
#[napi(ts_return_type = "Promise<string>")]
pub fn redact_async(text: String, options: Option<RedactOptions>) -> AsyncTask<Job> {
    task(
        redact_parts(options)
            .map(|(d, r)| Job::new(move || Ok(Value::String(redacted(&d, &r, &text))))),
    )
}

/// Redacts a text stream chunk by chunk (an LLM's streamed answer): `push` returns what is safe
/// to send now, `finish` the rest. The output equals `redact()` of the whole text.
#[napi]
pub struct StreamRedactor {
    inner: core::redact::StreamRedactor<'static>,
}

#[napi]
impl StreamRedactor {
    #[napi(constructor)]
    pub fn new(options: Option<RedactOptions>) -> Result<Self> {
        let (d, r) = redact_parts(options)?;
        let d: Arc<dyn Detector> = Arc::new(d);
        Ok(StreamRedactor {
            inner: core::redact::StreamRedactor::shared(d, Arc::new(r)),
        })
    }

    /// Adds a chunk; returns the redacted text that can be sent now (possibly empty).
    #[napi]
    pub fn push(&mut self, chunk: String) -> String {
        self.inner.push(&chunk)
    }

    /// Ends the stream: returns the rest, redacted.
    #[napi]
    pub fn finish(&mut self) -> String {
        self.inner.finish()
    }

    /// Whether anything emitted so far was redacted.
    #[napi(getter)]
    pub fn redacted(&self) -> bool {
        self.inner.redacted()
    }
}
