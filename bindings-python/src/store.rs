//! Stores: the memory, SQLite and PostgreSQL stores and what a host does with them (admin commands, wallets, tickets, escalations, events, dashboards).

use super::*;
use keeptrusts_core::wallet::budget::DEFAULT_ORG;

/// Where everything is kept: teams and keys, wallets, tickets, escalations, the audit chain.
/// Build one with `MemoryStore()`, `SqliteStore(path)`, `PostgresStore(url)` or `Store.open(url)`;
/// it is safe to share between threads.
#[pyclass(subclass, frozen, module = "keeptrusts._native")]
pub(crate) struct Store {
    pub(crate) inner: Arc<dyn Storage>,
}

/// Kept in this process only.
#[pyclass(extends = Store, frozen, module = "keeptrusts._native")]
pub(crate) struct MemoryStore;

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
pub(crate) struct SqliteStore;

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
pub(crate) struct PostgresStore;

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
        let call = admin_call(optional(actor, "actor")?, now_ms, request_id, org)?;
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
        let call = admin_call(optional(actor, "actor")?, now_ms, None, None)?;
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
        let call = admin_call(optional(actor, "actor")?, now_ms, None, None)?;
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
        let call = admin_call(optional(actor, "actor")?, now_ms, None, None)?;
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
            let ctx = Ctx::new(None, DEFAULT_ORG, now(now_ms), "keys", [0; 32]);
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
        self.authenticated(py, secret, org, now_ms, |r| r.ok())
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
        self.authenticated(py, secret, org, now_ms, |r| match r {
            Ok(p) => serde_json::json!({ "principal": p }),
            Err(r) => serde_json::json!({ "refused": r.code(), "message": r.message() }),
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
        let call = admin_call(optional(actor, "actor")?, now_ms, None, None)?;
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
        let call = admin_call(Some(from_py(reviewer, "reviewer")?), now_ms, None, None)?;
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
        let call = admin_call(Some(from_py(reviewer, "reviewer")?), now_ms, None, None)?;
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
            .unwrap_or_else(|| DEFAULT_ORG.into());
        let s = Arc::clone(&self.inner);
        detached(py, move || {
            let mut query = query;
            query.team = directory::slug_of(s.as_ref(), &query.team)?;
            dashboard::load(s.as_ref(), &org, &viewer, &query)
        })
    }
}

impl Store {
    /// What `secret` stands for in `org` at `now_ms`, as `shown` puts it (without the GIL).
    fn authenticated<T: Serialize + Send>(
        &self,
        py: Python<'_>,
        secret: &str,
        org: &str,
        now_ms: Option<i64>,
        shown: impl FnOnce(std::result::Result<core::Principal, directory::Refused>) -> T + Send,
    ) -> PyResult<Py<PyAny>> {
        let (s, secret, org) = (Arc::clone(&self.inner), secret.to_owned(), org.to_owned());
        detached(py, move || {
            directory::authenticate(s.as_ref(), &secret, &org, now(now_ms)).map(shown)
        })
    }
}
