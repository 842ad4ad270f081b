//! Python bindings: type conversion and error mapping only; every rule lives in keeptrusts-core.

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
use keeptrusts_core::wallet::{self, Allocation, WalletError, WalletKey};
use keeptrusts_core::{
    self as core, AdminError, MemoryStore as CoreMemoryStore, PackError, RequestError, Role,
    Storage, StoreError,
};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pythonize::{depythonize, pythonize};
use serde::de::DeserializeOwned;
use serde::Serialize;

create_exception!(
    _native,
    KeeptrustsError,
    PyException,
    "Base class of keeptrusts errors; `.code` is stable."
);
create_exception!(
    _native,
    PackError_,
    KeeptrustsError,
    "An invalid pack; `.errors` lists every diagnostic."
);
create_exception!(
    _native,
    RequestError_,
    KeeptrustsError,
    "A request that cannot be evaluated."
);
create_exception!(
    _native,
    StoreError_,
    KeeptrustsError,
    "A storage backend failed."
);
create_exception!(
    _native,
    AdminError_,
    KeeptrustsError,
    "An administrative operation was refused."
);
create_exception!(
    _native,
    WalletError_,
    KeeptrustsError,
    "A wallet operation was refused (unknown lease, currency mismatch, overflow)."
);
create_exception!(
    _native,
    InvalidArgument,
    KeeptrustsError,
    "An argument has the wrong shape."
);

/// The one place errors become Python exceptions.
enum Error {
    Pack(PackError),
    Request(RequestError),
    Admin(AdminError),
    Wallet(WalletError),
    Store(StoreError),
    Argument(String),
}

impl From<PackError> for Error {
    fn from(e: PackError) -> Self {
        Error::Pack(e)
    }
}
impl From<RequestError> for Error {
    fn from(e: RequestError) -> Self {
        Error::Request(e)
    }
}
impl From<AdminError> for Error {
    fn from(e: AdminError) -> Self {
        Error::Admin(e)
    }
}
impl From<WalletError> for Error {
    fn from(e: WalletError) -> Self {
        Error::Wallet(e)
    }
}
impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        Python::attach(|py| {
            let store = |s: &StoreError| (StoreError_::new_err(s.to_string()), s.code());
            let (err, code) = match &e {
                Error::Pack(p) => (PackError_::new_err(p.to_string()), p.code()),
                Error::Request(RequestError::Store(s))
                | Error::Admin(AdminError::Store(s))
                | Error::Wallet(WalletError::Store(s))
                | Error::Store(s) => store(s),
                Error::Request(r) => (RequestError_::new_err(r.to_string()), r.code()),
                Error::Admin(a) => (AdminError_::new_err(a.to_string()), a.code()),
                Error::Wallet(w) => (WalletError_::new_err(w.to_string()), w.code()),
                Error::Argument(m) => (InvalidArgument::new_err(m.clone()), "invalid_argument"),
            };
            let value = err.value(py);
            let _ = value.setattr("code", code);
            if let Error::Pack(p) = &e {
                if let Ok(list) = pythonize(py, &p.errors) {
                    let _ = value.setattr("errors", list);
                }
                if let Ok(list) = pythonize(py, &p.warnings) {
                    let _ = value.setattr("warnings", list);
                }
            }
            err
        })
    }
}

type Result<T> = std::result::Result<T, Error>;

fn from_py<T: DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> Result<T> {
    depythonize(obj).map_err(|e| Error::Argument(format!("invalid {what}: {e}")))
}

/// A value from a Python string through its serde name (`"approve"`, `"spend"`, …).
fn from_name<T: DeserializeOwned>(name: &str, what: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|e| Error::Argument(format!("invalid {what} `{name}`: {e}")))
}

fn to_py<T: Serialize>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    Ok(pythonize(py, value)
        .map_err(|e| PyException::new_err(e.to_string()))?
        .unbind())
}

fn optional<T: DeserializeOwned>(obj: Option<&Bound<'_, PyAny>>, what: &str) -> Result<Option<T>> {
    match obj {
        Some(o) if !o.is_none() => from_py(o, what).map(Some),
        _ => Ok(None),
    }
}

/// `now_ms`, or the host clock when the caller passes none.
fn now(now_ms: Option<i64>) -> i64 {
    now_ms.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })
}

/// `N` random bytes from the OS.
fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)
        .map_err(|e| Error::Argument(format!("no randomness from the OS: {e}")))?;
    Ok(b)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What an administrative call takes from the host: the actor (None: the host itself), the org
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
        actor: Option<core::Principal>,
        now_ms: Option<i64>,
        request_id: Option<String>,
        org: Option<String>,
    ) -> Result<Self> {
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
        other => Err(Error::Argument(format!(
            "resolution must be `approve` or `deny`, not `{other}`"
        ))),
    }
}

/// The request context; `now_ms` defaults to the host clock, as in every store method, and
/// `request_id` to a fresh random id.
fn request_context(context: Option<&Bound<'_, PyAny>>) -> Result<core::RequestContext> {
    let mut v: serde_json::Value =
        optional(context, "context")?.unwrap_or_else(|| serde_json::json!({}));
    if let Some(o) = v.as_object_mut() {
        o.entry("now_ms").or_insert_with(|| now(None).into());
        if !o.contains_key("request_id") {
            // each request needs its own id: the reservation and ticket are named after it
            let id = format!("req_{}", hex(&random::<12>()?));
            o.insert("request_id".into(), id.into());
        }
    }
    serde_json::from_value(v).map_err(|e| Error::Argument(format!("invalid context: {e}")))
}

/// Runs `f` without the GIL and converts its answer.
fn detached<T: Serialize + Send, E: Into<Error> + Send>(
    py: Python<'_>,
    f: impl FnOnce() -> std::result::Result<T, E> + Send,
) -> PyResult<Py<PyAny>> {
    let v = py.detach(f).map_err(|e| PyErr::from(e.into()))?;
    to_py(py, &v)
}

/// Where everything is kept: teams and keys, wallets, tickets, escalations, the audit chain.
/// Build one with `MemoryStore()`, `SqliteStore(path)`, `PostgresStore(url)` or `Store.open(url)`;
/// it is safe to share between threads.
#[pyclass(subclass, frozen, module = "keeptrusts._native")]
struct Store {
    inner: Arc<dyn Storage>,
}

/// Kept in this process only.
#[pyclass(extends = Store, frozen, module = "keeptrusts._native")]
struct MemoryStore;

#[pymethods]
impl MemoryStore {
    #[new]
    fn new() -> PyClassInitializer<Self> {
        PyClassInitializer::from(Store {
            inner: Arc::new(CoreMemoryStore::new()),
        })
        .add_subclass(MemoryStore)
    }
}

/// One SQLite file (created and migrated on open).
#[pyclass(extends = Store, frozen, module = "keeptrusts._native")]
struct SqliteStore;

#[pymethods]
impl SqliteStore {
    #[new]
    fn new(py: Python<'_>, path: std::path::PathBuf) -> PyResult<PyClassInitializer<Self>> {
        let s = py
            .detach(move || keeptrusts_store::SqliteStore::open(&path))
            .map_err(Error::Store)?;
        Ok(PyClassInitializer::from(Store { inner: Arc::new(s) }).add_subclass(SqliteStore))
    }
}

/// A PostgreSQL database shared by many processes (migrated on connect).
#[pyclass(extends = Store, frozen, module = "keeptrusts._native")]
struct PostgresStore;

#[pymethods]
impl PostgresStore {
    #[new]
    fn new(py: Python<'_>, url: &str) -> PyResult<PyClassInitializer<Self>> {
        let u = url.to_owned();
        let s = py
            .detach(move || keeptrusts_store::PgStore::connect(&u))
            .map_err(Error::Store)?;
        Ok(PyClassInitializer::from(Store { inner: Arc::new(s) }).add_subclass(PostgresStore))
    }
}

#[pymethods]
impl Store {
    /// `memory`, `sqlite:PATH` or `postgres://user@host:port/db`.
    #[staticmethod]
    fn open(py: Python<'_>, url: &str) -> PyResult<Store> {
        let u = url.to_owned();
        let inner = py
            .detach(move || keeptrusts_store::open(&u))
            .map_err(Error::Store)?;
        Ok(Store { inner })
    }

    // ---- administration: teams, members, org admins, keys, wallets, tickets, escalations

    /// Runs one administrative command as `actor` (None: the host itself): a dict in the shape of
    /// the core's `admin::Command`, `{"op": "set_member", "team": "support", "email": …,
    /// "role": "member"}`. Returns the command's answer; every change is recorded as an event in
    /// `org`'s chain (default: the actor's org, else `default`). Raises AdminError with `.code`.
    #[pyo3(signature = (actor, command, now_ms=None, request_id=None, org=None))]
    fn admin(
        &self,
        py: Python<'_>,
        actor: Option<&Bound<'_, PyAny>>,
        command: &Bound<'_, PyAny>,
        now_ms: Option<i64>,
        request_id: Option<String>,
        org: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let call = AdminCall::new(optional(actor, "actor")?, now_ms, request_id, org)?;
        let command: Command = from_py(command, "command")?;
        let s = Arc::clone(&self.inner);
        detached(py, move || {
            admin::execute(s.as_ref(), &call.ctx(), &command)
        })
    }

    /// Creates a team (owners and org admins; `actor=None` acts as the host itself).
    #[pyo3(signature = (actor, name, description=None, now_ms=None))]
    fn create_team(
        &self,
        py: Python<'_>,
        actor: Option<&Bound<'_, PyAny>>,
        name: &str,
        description: Option<String>,
        now_ms: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let call = AdminCall::new(optional(actor, "actor")?, now_ms, None, None)?;
        let (s, name) = (Arc::clone(&self.inner), name.to_owned());
        detached(py, move || {
            admin::create_team(s.as_ref(), &call.ctx(), &name, description.as_deref())
        })
    }

    /// Every team.
    fn teams(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let s = Arc::clone(&self.inner);
        detached(py, move || s.teams())
    }

    /// Adds a member to a team, or changes their role.
    #[pyo3(signature = (actor, team, user, role, now_ms=None))]
    fn add_member(
        &self,
        py: Python<'_>,
        actor: Option<&Bound<'_, PyAny>>,
        team: &str,
        user: &str,
        role: &str,
        now_ms: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let role: Role = from_name(role, "role")?;
        let call = AdminCall::new(optional(actor, "actor")?, now_ms, None, None)?;
        let (s, team, user) = (Arc::clone(&self.inner), team.to_owned(), user.to_owned());
        detached(py, move || {
            admin::set_member(s.as_ref(), &call.ctx(), &team, &user, role)
        })
    }

    /// Members of a team (or of every team).
    #[pyo3(signature = (team=None))]
    fn members(&self, py: Python<'_>, team: Option<String>) -> PyResult<Py<PyAny>> {
        let s = Arc::clone(&self.inner);
        detached(py, move || s.members(team.as_deref()))
    }

    /// Issues an API key for a member: `{"secret", "key"}` (the key as `keys()` shows it); the
    /// secret is shown only here.
    #[pyo3(signature = (actor, team, user, consumer_group=None, now_ms=None, label=None, expires_at=None))]
    #[allow(clippy::too_many_arguments)]
    fn create_key(
        &self,
        py: Python<'_>,
        actor: Option<&Bound<'_, PyAny>>,
        team: &str,
        user: &str,
        consumer_group: Option<String>,
        now_ms: Option<i64>,
        label: Option<String>,
        expires_at: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let call = AdminCall::new(optional(actor, "actor")?, now_ms, None, None)?;
        let new = NewKey {
            team: team.to_owned(),
            email: user.to_owned(),
            consumer_group,
            label,
            expires_at,
        };
        let s = Arc::clone(&self.inner);
        detached(py, move || {
            admin::create_key(s.as_ref(), &call.ctx(), &new)
                .map(|i| serde_json::json!({"secret": i.key, "key": i.info}))
        })
    }

    /// Keys of a team (or every key) with their status at `now_ms`: never a secret or a hash.
    #[pyo3(signature = (team=None, now_ms=None))]
    fn keys(
        &self,
        py: Python<'_>,
        team: Option<String>,
        now_ms: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let s = Arc::clone(&self.inner);
        detached(py, move || {
            let ctx = Ctx::new(None, "default", now(now_ms), "keys", [0; 32]);
            admin::list_keys(s.as_ref(), &ctx, team.as_deref())
        })
    }

    /// The principal a `kt_…` secret stands for now, or None.
    #[pyo3(signature = (secret, org="default", now_ms=None))]
    fn authenticate(
        &self,
        py: Python<'_>,
        secret: &str,
        org: &str,
        now_ms: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let (s, secret, org) = (Arc::clone(&self.inner), secret.to_owned(), org.to_owned());
        detached(py, move || {
            directory::authenticate(s.as_ref(), &secret, &org, now(now_ms)).map(|r| r.ok())
        })
    }

    /// What a `kt_…` secret stands for now: `{"principal": {...}}`, or `{"refused": code,
    /// "message"}` saying why not (`key_revoked`, `key_expired`, `not_a_member`, …).
    #[pyo3(signature = (secret, org="default", now_ms=None))]
    fn authenticate_status(
        &self,
        py: Python<'_>,
        secret: &str,
        org: &str,
        now_ms: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let (s, secret, org) = (Arc::clone(&self.inner), secret.to_owned(), org.to_owned());
        detached(py, move || {
            directory::authenticate(s.as_ref(), &secret, &org, now(now_ms)).map(|r| match r {
                Ok(p) => serde_json::json!({ "principal": p }),
                Err(r) => serde_json::json!({ "refused": r.code(), "message": r.message() }),
            })
        })
    }

    // ---- wallets and tickets

    /// Sets or tops up a wallet as `actor` (None: the host itself): the seed's body `{"team":
    /// "legal", "amount": "1000", "currency": "USD", "period": "monthly"}` (or `user` / `org`;
    /// `mode`: set | top_up). The team or user must exist.
    #[pyo3(signature = (actor, allocation, now_ms=None))]
    fn allocate(
        &self,
        py: Python<'_>,
        actor: Option<&Bound<'_, PyAny>>,
        allocation: &Bound<'_, PyAny>,
        now_ms: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let call = AdminCall::new(optional(actor, "actor")?, now_ms, None, None)?;
        let a: Allocation = from_py(allocation, "allocation")?;
        let s = Arc::clone(&self.inner);
        detached(py, move || admin::allocate(s.as_ref(), &call.ctx(), &a))
    }

    /// The wallets `viewer` may see (an owner all; others their team's and their own).
    #[pyo3(signature = (viewer, now_ms=None))]
    fn balances(
        &self,
        py: Python<'_>,
        viewer: &Bound<'_, PyAny>,
        now_ms: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let viewer: core::Principal = from_py(viewer, "viewer")?;
        let s = Arc::clone(&self.inner);
        detached(py, move || {
            core::WalletStore::list(s.as_ref(), now(now_ms))
                .map(|all| wallet::visible(&viewer, all))
        })
    }

    /// One wallet (`team:ID`, `user:EMAIL`, `org:ID`), or None.
    #[pyo3(signature = (key, now_ms=None))]
    fn wallet(&self, py: Python<'_>, key: &str, now_ms: Option<i64>) -> PyResult<Py<PyAny>> {
        let key: WalletKey = key.parse().map_err(Error::Admin)?;
        let s = Arc::clone(&self.inner);
        detached(py, move || {
            core::WalletStore::get(s.as_ref(), &key, now(now_ms))
        })
    }

    /// Releases reservations whose lease expired; returns how many.
    #[pyo3(signature = (now_ms=None))]
    fn expire(&self, py: Python<'_>, now_ms: Option<i64>) -> PyResult<Py<PyAny>> {
        let s = Arc::clone(&self.inner);
        detached(py, move || s.expire(now(now_ms)))
    }

    /// Closes an evaluated request: with `usage` (the provider's), settles its reservation at the
    /// actual cost together with its event; without, releases the reservation and records the
    /// event. Returns `{"settlement"?, "event"?}`; completing twice charges once.
    #[pyo3(signature = (principal, decision, request_id, model=None, target=None, usage=None, now_ms=None))]
    #[allow(clippy::too_many_arguments)]
    fn complete(
        &self,
        py: Python<'_>,
        principal: &Bound<'_, PyAny>,
        decision: &Bound<'_, PyAny>,
        request_id: &str,
        model: Option<String>,
        target: Option<String>,
        usage: Option<&Bound<'_, PyAny>>,
        now_ms: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let p: core::Principal = from_py(principal, "principal")?;
        let d: core::Decision = from_py(decision, "decision")?;
        let usage: Option<Usage> = optional(usage, "usage")?;
        let (s, rid) = (Arc::clone(&self.inner), request_id.to_owned());
        detached(py, move || {
            let served = usage.map(|u| (target.as_deref().unwrap_or(""), u));
            event::complete(
                s.as_ref(),
                &p,
                &d,
                &rid,
                model.as_deref(),
                served,
                now(now_ms),
            )
        })
    }

    /// Cost tickets `viewer` may see (an owner every team's, an admin their team's, a member
    /// their own).
    fn tickets(&self, py: Python<'_>, viewer: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let viewer: core::Principal = from_py(viewer, "viewer")?;
        let s = Arc::clone(&self.inner);
        detached(py, move || {
            core::wallet::ticket::list_visible(s.as_ref(), &viewer)
        })
    }

    /// Approves (`charge_to` a wallet, default the ticket's team) or denies a cost ticket; the
    /// resolution is recorded as an event.
    #[pyo3(signature = (reviewer, ticket_id, resolution, charge_to=None, now_ms=None))]
    fn resolve_ticket(
        &self,
        py: Python<'_>,
        reviewer: &Bound<'_, PyAny>,
        ticket_id: &str,
        resolution: &str,
        charge_to: Option<String>,
        now_ms: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let call = AdminCall::new(Some(from_py(reviewer, "reviewer")?), now_ms, None, None)?;
        let approve = ruling(resolution)?;
        let (s, id) = (Arc::clone(&self.inner), ticket_id.to_owned());
        detached(py, move || {
            admin::resolve_ticket(s.as_ref(), &call.ctx(), &id, approve, charge_to.as_deref())
        })
    }

    // ---- escalations

    /// Escalations `viewer` reviews (an owner every team's, others their own team's).
    fn escalations(&self, py: Python<'_>, viewer: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let viewer: core::Principal = from_py(viewer, "viewer")?;
        let s = Arc::clone(&self.inner);
        detached(py, move || {
            core::escalation::list_visible(s.as_ref(), &viewer)
        })
    }

    /// One escalation, or None.
    fn escalation(&self, py: Python<'_>, escalation_id: &str) -> PyResult<Py<PyAny>> {
        let (s, id) = (Arc::clone(&self.inner), escalation_id.to_owned());
        detached(py, move || core::EscalationStore::get(s.as_ref(), &id))
    }

    /// Approves or denies an escalation as `reviewer` (an owner, an org admin, or an admin of its
    /// team); the resolution is recorded as an event.
    #[pyo3(signature = (reviewer, escalation_id, resolution, now_ms=None))]
    fn resolve_escalation(
        &self,
        py: Python<'_>,
        reviewer: &Bound<'_, PyAny>,
        escalation_id: &str,
        resolution: &str,
        now_ms: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let call = AdminCall::new(Some(from_py(reviewer, "reviewer")?), now_ms, None, None)?;
        let r: Resolution = from_name(resolution, "resolution (approve | deny)")?;
        let (s, id) = (Arc::clone(&self.inner), escalation_id.to_owned());
        detached(py, move || {
            admin::resolve_escalation(s.as_ref(), &call.ctx(), &id, r)
        })
    }

    // ---- events and dashboards

    /// Every event of an org's audit chain, in order.
    #[pyo3(signature = (org="default"))]
    fn events(&self, py: Python<'_>, org: &str) -> PyResult<Py<PyAny>> {
        let (s, org) = (Arc::clone(&self.inner), org.to_owned());
        detached(py, move || EventStore::list(s.as_ref(), &org))
    }

    /// Checks an org's chain: `{"valid", "events", "problem"?, "tamper"?}` naming the first break.
    #[pyo3(signature = (org="default"))]
    fn verify(&self, py: Python<'_>, org: &str) -> PyResult<Py<PyAny>> {
        let (s, org) = (Arc::clone(&self.inner), org.to_owned());
        detached(py, move || {
            let opts = event::VerifyOptions {
                now: now(None),
                default_days: 365,
                expect_head: None,
            };
            event::check(s.as_ref(), &org, &opts)
        })
    }

    /// Removes the content of events whose retention ended (each keeps its place and hash, so
    /// the chain still verifies); returns how many.
    #[pyo3(signature = (org="default", default_days=365, now_ms=None))]
    fn prune(
        &self,
        py: Python<'_>,
        org: &str,
        default_days: u32,
        now_ms: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let (s, org) = (Arc::clone(&self.inner), org.to_owned());
        detached(py, move || {
            EventStore::prune(s.as_ref(), &org, now(now_ms), default_days)
        })
    }

    /// A dashboard section (overview, events, spend, escalations, usage) of `team` (default:
    /// the viewer's), as `viewer` may see it; `filter` and `granularity` as in the admin API.
    #[pyo3(signature = (viewer, section, team=None, filter=None, granularity=None, org=None))]
    #[allow(clippy::too_many_arguments)]
    fn dashboard(
        &self,
        py: Python<'_>,
        viewer: &Bound<'_, PyAny>,
        section: &str,
        team: Option<String>,
        filter: Option<&Bound<'_, PyAny>>,
        granularity: Option<&str>,
        org: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let viewer: core::Principal = from_py(viewer, "viewer")?;
        let section: Section = from_name(section, "section")?;
        let filter: EventFilter = optional(filter, "filter")?.unwrap_or_default();
        let granularity: Granularity = match granularity {
            Some(g) => from_name(g, "granularity")?,
            None => Granularity::default(),
        };
        let query = Query {
            team: team.or_else(|| viewer.team.clone()).unwrap_or_default(),
            section,
            filter,
            granularity,
            limit: None,
            before: None,
        };
        let org = org
            .or_else(|| viewer.org.clone())
            .unwrap_or_else(|| "default".into());
        let s = Arc::clone(&self.inner);
        detached(py, move || {
            let mut query = query;
            query.team = directory::slug_of(s.as_ref(), &query.team)?;
            dashboard::load(s.as_ref(), &org, &viewer, &query)
        })
    }
}

/// A compiled, immutable pack; safe to share between threads.
#[pyclass(frozen, module = "keeptrusts._native")]
struct Engine {
    inner: core::Engine,
}

#[pymethods]
impl Engine {
    /// Parse, validate and compile a YAML pack. Raises PackError.
    #[staticmethod]
    fn from_yaml(py: Python<'_>, source: &str) -> PyResult<Self> {
        let src = source.to_owned();
        let inner = py
            .detach(move || core::Engine::from_yaml(&src))
            .map_err(Error::Pack)?;
        Ok(Engine { inner })
    }

    /// Read a YAML pack from a file. Raises OSError or PackError.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let src = std::fs::read_to_string(&path)?;
        Engine::from_yaml(py, &src)
    }

    /// Validation warnings.
    #[getter]
    fn warnings(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_py(py, &self.inner.warnings())
    }

    /// Team slugs named by targeting lists.
    fn named_teams(&self) -> Vec<String> {
        self.inner.named_teams()
    }

    /// The effective chain (policy kind names, execution order) for a principal dict.
    fn effective_chain(&self, principal: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let p: core::Principal = from_py(principal, "principal")?;
        Ok(self
            .inner
            .effective_chain(&p)
            .kinds
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect())
    }

    /// Evaluate a request (input phase). With a store, escalations are kept there and, unless
    /// `budget=False`, the request's estimated cost is reserved on its wallets (or a ticket
    /// opened). Returns the decision as a dict.
    #[pyo3(signature = (principal, request, store=None, context=None, budget=true))]
    fn evaluate(
        &self,
        py: Python<'_>,
        principal: &Bound<'_, PyAny>,
        request: &Bound<'_, PyAny>,
        store: Option<PyRef<'_, Store>>,
        context: Option<&Bound<'_, PyAny>>,
        budget: bool,
    ) -> PyResult<Py<PyAny>> {
        let p: core::Principal = from_py(principal, "principal")?;
        let r: core::ChatRequest = from_py(request, "request")?;
        let ctx = request_context(context)?;
        let engine = self.inner.clone();
        let (store, budget): (Arc<dyn Storage>, bool) = match store {
            Some(s) => (Arc::clone(&s.inner), budget),
            None => (Arc::new(CoreMemoryStore::new()), false),
        };
        detached(py, move || {
            let mut stores = core::Stores::new(store.as_ref());
            if budget {
                stores = stores.with_budget(store.as_ref(), store.as_ref());
            }
            engine.evaluate(&p, &r, &ctx, &stores)
        })
    }

    /// Begin a request's lifecycle: the input chain, the reservation (unless `budget=False`),
    /// and what to send. Returns an `Exchange`; a refusal is already answered and written
    /// (`exchange.refusal`).
    #[pyo3(signature = (principal, request, store=None, context=None, budget=true))]
    fn begin(
        &self,
        py: Python<'_>,
        principal: &Bound<'_, PyAny>,
        request: &Bound<'_, PyAny>,
        store: Option<PyRef<'_, Store>>,
        context: Option<&Bound<'_, PyAny>>,
        budget: bool,
    ) -> PyResult<Exchange> {
        let p: core::Principal = from_py(principal, "principal")?;
        let r: core::ChatRequest = from_py(request, "request")?;
        let ctx = request_context(context)?;
        let engine = self.inner.clone();
        let (store, budget): (Arc<dyn Storage>, bool) = match store {
            Some(s) => (Arc::clone(&s.inner), budget),
            None => (Arc::new(CoreMemoryStore::new()), false),
        };
        let s = Arc::clone(&store);
        let state = py
            .detach(move || -> std::result::Result<ExchangeState, Error> {
                let mut stores = core::Stores::new(s.as_ref());
                if budget {
                    stores = stores.with_budget(s.as_ref(), s.as_ref());
                }
                Ok(
                    match core::exchange::Exchange::begin(&engine, None, &p, &r, &ctx, &stores)? {
                        core::exchange::Begin::Forward(x) => ExchangeState {
                            x: Some(x),
                            refusal: None,
                        },
                        core::exchange::Begin::Answer(a) => {
                            a.close
                                .clone()
                                .commit(s.as_ref(), Some(s.as_ref()), ctx.now_ms)?;
                            ExchangeState {
                                x: None,
                                refusal: Some(*a),
                            }
                        }
                    },
                )
            })
            .map_err(PyErr::from)?;
        Ok(Exchange {
            state: std::sync::Mutex::new(state),
            store,
        })
    }

    /// Evaluate a provider response (output phase). Returns the decision as a dict.
    #[pyo3(signature = (principal, response, context=None))]
    fn evaluate_output(
        &self,
        py: Python<'_>,
        principal: &Bound<'_, PyAny>,
        response: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let p: core::Principal = from_py(principal, "principal")?;
        let r: core::ChatResponse = from_py(response, "response")?;
        let ctx = request_context(context)?;
        let engine = self.inner.clone();
        detached(py, move || engine.evaluate_output(&p, &r, &ctx))
    }
}

/// Validate a pack: `{"valid", "errors", "warnings"}`.
#[pyfunction]
fn lint(py: Python<'_>, source: &str) -> PyResult<Py<PyAny>> {
    let src = source.to_owned();
    let report = py.detach(move || match core::pack::parse(&src) {
        Ok(p) => serde_json::json!({ "valid": true, "errors": [], "warnings": p.warnings }),
        Err(e) => serde_json::json!({ "valid": false, "errors": e.errors, "warnings": e.warnings }),
    });
    to_py(py, &report)
}

fn detector(entities: Option<&Bound<'_, PyAny>>) -> Result<BuiltinDetector> {
    let types: Vec<EntityType> =
        optional(entities, "entities")?.unwrap_or_else(BuiltinDetector::all_types);
    BuiltinDetector::new(&types, &[], &[]).map_err(|(_, e)| Error::Argument(e))
}

fn redactor(py: Python<'_>, format: &str, hash_key: &str) -> Result<Redactor> {
    let marker_format = from_py(&pyo3::types::PyString::new(py, format).into_any(), "format")?;
    let options = core::pack::spec::RedactionOptions {
        marker_format: Some(marker_format),
        ..Default::default()
    };
    Ok(Redactor::new(
        Some(&options),
        Vec::new(),
        key_from(hash_key),
    ))
}

/// Finds sensitive values; spans in Python character indices, sorted, without overlaps.
#[pyfunction]
#[pyo3(signature = (text, entities=None))]
fn scan<'py>(
    py: Python<'py>,
    text: &str,
    entities: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, pyo3::types::PyList>> {
    use pyo3::types::PyList;
    let d = detector(entities)?;
    // the str's UTF-8 form is borrowed, not copied: the argument keeps it alive while the GIL is
    // released, and Python strings do not change
    let found = py.detach(|| {
        let mut found = Vec::new();
        d.scan(text, &mut found);
        resolve_overlaps(&mut found);
        let at = offsets(text, &found, OffsetUnit::Char);
        found
            .iter()
            .zip(at)
            .map(|(f, (start, end))| (start, end, f.entity))
            .collect::<Vec<_>>()
    });
    // a dense 1 MB text has ~30,000 spans: they are small frozen objects holding plain data,
    // not dicts
    PyList::new(
        py,
        found
            .into_iter()
            .map(|(start, end, entity)| Span { start, end, entity }),
    )
}

/// A detected value: `text[span.start:span.end]` is it (Python character offsets); `span.type`
/// its entity type. Reads like the dict `{"start", "end", "type"}` too: `span["start"]`,
/// `dict(span)`, `span == {"start": …, "end": …, "type": …}`.
#[pyclass(frozen, freelist = 4096, module = "keeptrusts._native")]
struct Span {
    #[pyo3(get)]
    start: usize,
    #[pyo3(get)]
    end: usize,
    entity: EntityType,
}

#[pymethods]
impl Span {
    /// The entity type (`EMAIL`, `US_SSN`, …).
    #[getter(r#type)]
    fn kind<'py>(&self, py: Python<'py>) -> Bound<'py, pyo3::types::PyString> {
        pyo3::types::PyString::intern(py, self.entity.as_str())
    }

    fn __getitem__(&self, py: Python<'_>, key: &str) -> PyResult<Py<PyAny>> {
        match key {
            "start" => Ok(self.start.into_pyobject(py)?.into_any().unbind()),
            "end" => Ok(self.end.into_pyobject(py)?.into_any().unbind()),
            "type" => Ok(self.kind(py).into_any().unbind()),
            other => Err(pyo3::exceptions::PyKeyError::new_err(other.to_owned())),
        }
    }

    fn keys(&self) -> [&'static str; 3] {
        ["start", "end", "type"]
    }

    fn __len__(&self) -> usize {
        3
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        if let Ok(o) = other.cast::<Span>() {
            let o = o.get();
            return Ok(o.start == self.start && o.end == self.end && o.entity == self.entity);
        }
        let Ok(d) = other.cast::<pyo3::types::PyDict>() else {
            return Ok(false);
        };
        Ok(d.len() == 3
            && d.get_item("start")?
                .is_some_and(|v| v.eq(self.start).unwrap_or(false))
            && d.get_item("end")?
                .is_some_and(|v| v.eq(self.end).unwrap_or(false))
            && d.get_item("type")?
                .is_some_and(|v| v.eq(self.entity.as_str()).unwrap_or(false)))
    }

    fn __repr__(&self) -> String {
        format!(
            "{{'start': {}, 'end': {}, 'type': '{}'}}",
            self.start,
            self.end,
            self.entity.as_str()
        )
    }
}

/// Redacts text: `format` is label, mask, hash or partial; `hash_key` keys the hash format.
#[pyfunction]
#[pyo3(signature = (text, format="label", entities=None, hash_key=""))]
fn redact(
    py: Python<'_>,
    text: &str,
    format: &str,
    entities: Option<&Bound<'_, PyAny>>,
    hash_key: &str,
) -> PyResult<String> {
    let d = detector(entities)?;
    let r = redactor(py, format, hash_key)?;
    Ok(py.detach(|| {
        let mut found = Vec::new();
        d.scan(text, &mut found);
        resolve_overlaps(&mut found);
        r.redact(text, &found)
    }))
}

/// Redacts a text stream chunk by chunk (an LLM's streamed answer): `push` returns what is safe
/// to send now, `finish` the rest. The output equals `redact()` of the whole text.
#[pyclass(module = "keeptrusts._native")]
struct StreamRedactor {
    inner: core::redact::StreamRedactor<'static>,
}

#[pymethods]
impl StreamRedactor {
    #[new]
    #[pyo3(signature = (format="label", entities=None, hash_key=""))]
    fn new(
        py: Python<'_>,
        format: &str,
        entities: Option<&Bound<'_, PyAny>>,
        hash_key: &str,
    ) -> PyResult<Self> {
        let d: Arc<dyn Detector> = Arc::new(detector(entities)?);
        let r = Arc::new(redactor(py, format, hash_key)?);
        Ok(StreamRedactor {
            inner: core::redact::StreamRedactor::shared(d, r),
        })
    }

    /// Adds a chunk; returns the redacted text that can be sent now (possibly empty).
    fn push(&mut self, py: Python<'_>, chunk: &str) -> String {
        let inner = &mut self.inner;
        py.detach(move || inner.push(chunk))
    }

    /// Ends the stream: returns the rest, redacted.
    fn finish(&mut self, py: Python<'_>) -> String {
        let inner = &mut self.inner;
        py.detach(move || inner.finish())
    }

    /// Whether anything emitted so far was redacted.
    #[getter]
    fn redacted(&self) -> bool {
        self.inner.redacted()
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Engine>()?;
    m.add_class::<Store>()?;
    m.add_class::<MemoryStore>()?;
    m.add_class::<SqliteStore>()?;
    m.add_class::<PostgresStore>()?;
    m.add_class::<StreamRedactor>()?;
    m.add_class::<Exchange>()?;
    m.add_class::<Span>()?;
    m.add_function(wrap_pyfunction!(lint, m)?)?;
    m.add_function(wrap_pyfunction!(scan, m)?)?;
    m.add_function(wrap_pyfunction!(redact, m)?)?;
    m.add("KeeptrustsError", py.get_type::<KeeptrustsError>())?;
    m.add("PackError", py.get_type::<PackError_>())?;
    m.add("RequestError", py.get_type::<RequestError_>())?;
    m.add("StoreError", py.get_type::<StoreError_>())?;
    m.add("AdminError", py.get_type::<AdminError_>())?;
    m.add("WalletError", py.get_type::<WalletError_>())?;
    m.add("InvalidArgument", py.get_type::<InvalidArgument>())?;
    Ok(())
}

/// An answer, and its closing to write.
fn written(a: core::exchange::Answer) -> (core::exchange::Answer, Option<event::Closing>) {
    let c = a.close.clone();
    (a, Some(c))
}

/// The state of one request in flight: the core's lifecycle, and the refusal it began with.
struct ExchangeState {
    x: Option<Box<core::exchange::Exchange>>,
    refusal: Option<core::exchange::Answer>,
}

/// One request through its lifecycle (`Engine.begin`): the host calls its provider (or app)
/// with `next_call()` and reports what happened; every closing (settlement or release, and the
/// event) is written to the store the exchange began with.
#[pyclass(module = "keeptrusts._native")]
struct Exchange {
    state: std::sync::Mutex<ExchangeState>,
    store: Arc<dyn Storage>,
}

impl Exchange {
    /// Runs `f` on the lifecycle without the GIL; writes the closing it returns, if any, and
    /// converts the value.
    fn with<T: Serialize + Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut core::exchange::Exchange) -> (T, Option<event::Closing>) + Send,
    ) -> PyResult<Py<PyAny>> {
        let store = Arc::clone(&self.store);
        let state = &self.state;
        let v = py
            .detach(move || -> std::result::Result<T, Error> {
                let mut g = state
                    .lock()
                    .map_err(|_| Error::Argument("the exchange was poisoned".into()))?;
                let x = g.x.as_mut().ok_or_else(|| {
                    Error::Argument("the request was refused: nothing to call".into())
                })?;
                let (v, close) = f(x);
                if let Some(c) = close {
                    c.commit(store.as_ref(), Some(store.as_ref()), now(None))?;
                }
                Ok(v)
            })
            .map_err(PyErr::from)?;
        to_py(py, &v)
    }
}

#[pymethods]
impl Exchange {
    /// The refusal (`{"status", "body", "verdict", "close"}`) when the request was answered
    /// before any call (its closing is already written); None when it goes through.
    #[getter]
    fn refusal(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let g = self
            .state
            .lock()
            .map_err(|_| PyErr::from(Error::Argument("the exchange was poisoned".into())))?;
        to_py(py, &g.refusal)
    }

    /// The input decision (verdict, policy results, reservation, estimate).
    #[getter]
    fn decision(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.with(py, |x| (x.decision().clone(), None))
    }

    /// The request to send next (the governed request with its output limit), or None when
    /// every candidate was tried.
    fn next_call(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.with(py, |x| (x.next_call().map(|c| c.request), None))
    }

    /// The call failed before any answer (nothing is charged for it).
    fn failed(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.with(py, |x| {
            x.failed();
            ((), None)
        })
    }

    /// Every call failed: the 502 answer; the reservation is released and the event written.
    fn exhausted(&self, py: Python<'_>, message: &str) -> PyResult<Py<PyAny>> {
        let m = message.to_owned();
        self.with(py, move |x| written(x.exhausted(&m)))
    }

    /// A whole chat completion answered: the output phase and the settlement on its usage (its
    /// whole bound without one). Returns `{"status", "body", "verdict", "close"}`.
    fn answer(&self, py: Python<'_>, response: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let r: core::ChatResponse = from_py(response, "response")?;
        self.with(py, move |x| written(x.answer(&r)))
    }

    /// A 2xx answer that could not be read: 502, and the whole bound settled.
    fn broken(&self, py: Python<'_>, message: &str) -> PyResult<Py<PyAny>> {
        let m = message.to_owned();
        self.with(py, move |x| written(x.broken(&m)))
    }

    /// One streamed chat completion chunk through the output filter: the chunks to send now.
    fn push_chunk(&self, py: Python<'_>, chunk: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let c: serde_json::Value = from_py(chunk, "chunk")?;
        self.with(py, move |x| (x.push_chunk(&c), None))
    }

    /// Ends the stream (`end`: `complete`, `broken` with `message`, or `client_gone`): returns
    /// `{"chunks", "close"}`, the chunks to send last (held-back text, the usage chunk when
    /// the client asked, or the error event); the closing is written.
    #[pyo3(signature = (end="complete", message=""))]
    fn finish_stream(&self, py: Python<'_>, end: &str, message: &str) -> PyResult<Py<PyAny>> {
        let end = core::exchange::StreamEnd::named(end, message).ok_or_else(|| {
            PyErr::from(Error::Argument(format!(
                "unknown stream end `{end}`: complete, broken or client_gone"
            )))
        })?;
        self.with(py, move |x| {
            let (chunks, done) = x.finish_chunks(end);
            let c = done.close.clone();
            (
                serde_json::json!({"chunks": chunks, "close": done.close, "verdict": done.verdict}),
                Some(c),
            )
        })
    }

    /// The client went away: the closing (released before any call, the whole bound while a
    /// call was under way) is written.
    fn abandon(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.with(py, |x| {
            let c = x.abandon();
            (c.clone(), c)
        })
    }
}
