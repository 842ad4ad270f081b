//! PostgreSQL implementation: many gateway instances on one set of wallets, tickets, escalations
//! and events.
//!
//! Every atomic trait method is one transaction. Wallet rows are locked `FOR UPDATE` in one
//! global key order; operations on a lease id (and allocations of a wallet that may not exist
//! yet) also take a transaction-scoped advisory lock on that id, so two instances can never both
//! create the same lease or wallet. Deadlocks and serialization failures are retried (up to five
//! attempts). Connections come from a small pool; connecting and every statement time out after
//! five seconds, so an unreachable or stuck server fails closed with `StoreError::Unavailable`.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use keeptrusts_core::directory::{ApiKey, Directory, Member, Team};
use keeptrusts_core::escalation::{Escalation, EscalationStore, Redeem, Resolution};
use keeptrusts_core::event::tally::{Tally, TallyKey, TallyQuery};
use keeptrusts_core::event::{
    prune_plan, Anchor, Chain, Event, EventDraft, EventQuery, EventStore, Head, Journal,
};
use keeptrusts_core::ratelimit::{admits, Correction, Hit, RateCounters, Taken};
use keeptrusts_core::time::Millis;
use keeptrusts_core::wallet::ticket::{Ticket, TicketRedeem, TicketResolution, TicketStore};
use keeptrusts_core::wallet::{
    AllocateMode, Lease, LeaseStatus, Ledger, Period, ReserveOutcome, ReserveRequest, Settlement,
    Wallet, WalletError, WalletKey, WalletStore,
};
use keeptrusts_core::StoreError;
use postgres::{Client, Config, NoTls, Statement, Transaction};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::batch::{self, BatchRows, Combiner, Done, Op};
use crate::ledger::Rows;
use crate::tallies::{self, Arg, Columns, Delta, Dialect};

const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE wallets (scope TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (scope, id));
CREATE TABLE leases (id TEXT PRIMARY KEY, status TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, body TEXT NOT NULL);
CREATE INDEX leases_active ON leases (status, expires_at);
CREATE TABLE tickets (id TEXT PRIMARY KEY, team TEXT, created_at BIGINT NOT NULL, body TEXT NOT NULL);
CREATE TABLE escalations (id TEXT PRIMARY KEY, team TEXT, created_at BIGINT NOT NULL, body TEXT NOT NULL);
CREATE TABLE events (org TEXT NOT NULL, seq BIGINT NOT NULL, timestamp BIGINT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (org, seq));
CREATE TABLE event_heads (org TEXT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE event_anchors (org TEXT PRIMARY KEY, seq BIGINT NOT NULL, prev_hash TEXT NOT NULL);
",
    r"
CREATE TABLE teams (slug TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE members (team TEXT NOT NULL, usr TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (team, usr));
CREATE TABLE api_keys (hash TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, team TEXT NOT NULL, created_at BIGINT NOT NULL, body TEXT NOT NULL);
",
    // events are read by team, user and verdict in SQL (dashboards, pages of events)
    r"
ALTER TABLE events ADD COLUMN team TEXT, ADD COLUMN usr TEXT, ADD COLUMN verdict TEXT;
UPDATE events SET team = body::jsonb->>'team', usr = body::jsonb->>'user', verdict = body::jsonb->>'verdict';
CREATE INDEX events_team ON events (org, team, seq);
CREATE INDEX events_team_user ON events (org, team, usr, seq);
",
    // dashboards over a time range
    r"
CREATE INDEX events_team_time ON events (org, team, timestamp);
",
    // dashboards from day tallies (filled from the existing events on upgrade, see `backfill`),
    // and escalations without reading every event
    r"
ALTER TABLE events ADD COLUMN requests BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN denied BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN policy_events BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN cost NUMERIC NOT NULL DEFAULT 0,
    ADD COLUMN prompt_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN completion_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN model TEXT,
    ADD COLUMN escalation TEXT;
CREATE INDEX events_time ON events (org, timestamp);
CREATE INDEX events_escalated ON events (org, team, seq) WHERE escalation IS NOT NULL;
CREATE TABLE tallies (org TEXT NOT NULL, team TEXT NOT NULL, day BIGINT NOT NULL, usr TEXT NOT NULL,
    model TEXT NOT NULL, requests BIGINT NOT NULL, denied BIGINT NOT NULL,
    policy_events BIGINT NOT NULL, cost NUMERIC NOT NULL, prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL, PRIMARY KEY (org, team, day, usr, model));
CREATE INDEX tallies_user ON tallies (org, team, usr, day);
CREATE INDEX tallies_day ON tallies (org, day);
",
    // the same tallies without the user: what overviews and spend by day and model read
    r"
CREATE TABLE team_tallies (org TEXT NOT NULL, team TEXT NOT NULL, day BIGINT NOT NULL,
    model TEXT NOT NULL, requests BIGINT NOT NULL, denied BIGINT NOT NULL,
    policy_events BIGINT NOT NULL, cost NUMERIC NOT NULL, prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL, PRIMARY KEY (org, team, day, model));
CREATE INDEX team_tallies_day ON team_tallies (org, day);
INSERT INTO team_tallies SELECT org, team, day, model, sum(requests), sum(denied),
    sum(policy_events), sum(cost), sum(prompt_tokens), sum(completion_tokens)
    FROM tallies GROUP BY org, team, day, model;
",
    // rate-limit counters: one row per counter and fixed window
    r"
CREATE TABLE rate_counters (counter TEXT NOT NULL, window_start BIGINT NOT NULL, window_end BIGINT NOT NULL, used BIGINT NOT NULL, PRIMARY KEY (counter, window_start));
CREATE INDEX rate_counters_end ON rate_counters (window_end);
",
];

/// The migration that added the tallies; a schema upgraded across it is backfilled.
const TALLIES: usize = 5;

const TIMEOUT: Duration = Duration::from_secs(5);
/// Connections a store opens at most; more callers wait (up to [`TIMEOUT`]) for one to be free.
const MAX_OPEN: usize = 8;

/// A pooled connection and the statements prepared on it (the request path's statements are
/// prepared once per connection, so each costs one round trip instead of two).
struct Conn {
    client: Client,
    prepared: HashMap<&'static str, Statement>,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Conn>,
    open: usize,
}

/// A PostgreSQL database holding the ledger, shared by any number of processes.
pub struct PgStore {
    config: Config,
    schema: Option<String>,
    pool: Mutex<Pool>,
    freed: Condvar,
    combiner: Combiner,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgStore")
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("postgres: {e}"))
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("postgres: {e}"))
}

/// Deadlocks and serialization failures are worth retrying; everything else is reported.
fn pg(e: postgres::Error) -> StoreError {
    let retry = e.code().is_some_and(|c| {
        *c == postgres::error::SqlState::T_R_DEADLOCK_DETECTED
            || *c == postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
    });
    let detail = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    if retry {
        StoreError::Conflict(format!("{RETRY}: {detail}"))
    } else {
        unavailable(detail)
    }
}

const RETRY: &str = "postgres transaction conflict";

trait Retryable {
    fn retryable(&self) -> bool;
}

impl Retryable for StoreError {
    fn retryable(&self) -> bool {
        matches!(self, StoreError::Conflict(m) if m.starts_with(RETRY))
    }
}

impl Retryable for WalletError {
    fn retryable(&self) -> bool {
        matches!(self, WalletError::Store(s) if s.retryable())
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(corrupt)
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(corrupt)
}

fn text<T: Serialize>(v: &T) -> Result<String, StoreError> {
    match serde_json::to_value(v).map_err(corrupt)? {
        serde_json::Value::String(s) => Ok(s),
        _ => Err(corrupt("expected a string")),
    }
}

fn lock_name(tx: &mut Transaction<'_>, name: &str) -> Result<(), StoreError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&name],
    )
    .map_err(pg)?;
    Ok(())
}

impl PgStore {
    /// Connects (`postgres://user@host:port/db`), and applies migrations.
    ///
    /// # Errors
    /// `Unavailable` if the URL is malformed or the server cannot be reached within 5 s.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_in_schema(url, None)
    }

    /// Like [`PgStore::connect`], inside a schema of its own (created if needed): tests, or
    /// several independent ledgers in one database.
    ///
    /// # Errors
    /// As [`PgStore::connect`].
    pub fn connect_in_schema(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        let mut config =
            Config::from_str(url).map_err(|e| unavailable(format!("invalid url: {e}")))?;
        config.connect_timeout(TIMEOUT);
        if let Some(s) = schema {
            if !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(unavailable(
                    "a schema name is lowercase letters, digits and `_`",
                ));
            }
        }
        let store = PgStore {
            config,
            schema: schema.map(str::to_owned),
            pool: Mutex::new(Pool::default()),
            freed: Condvar::new(),
            combiner: Combiner::default(),
        };
        store.tx(|tx| {
            lock_name(tx, "keeptrusts:migrations")?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS keeptrusts_schema (version INT NOT NULL)")
                .map_err(pg)?;
            let version: i32 = tx
                .query_opt("SELECT version FROM keeptrusts_schema", &[])
                .map_err(pg)?
                .map_or(0, |r| r.get(0));
            let version = usize::try_from(version).unwrap_or(0);
            if version > MIGRATIONS.len() {
                return Err(corrupt(format!(
                    "schema version {version} is newer than this build's {}",
                    MIGRATIONS.len()
                )));
            }
            for m in MIGRATIONS.iter().skip(version) {
                tx.batch_execute(m).map_err(pg)?;
            }
            if version > 0 && version < TALLIES {
                backfill(tx)?;
            }
            let now = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
            tx.execute("DELETE FROM keeptrusts_schema", &[])
                .map_err(pg)?;
            tx.execute(
                "INSERT INTO keeptrusts_schema (version) VALUES ($1)",
                &[&now],
            )
            .map_err(pg)?;
            Ok::<_, StoreError>(())
        })?;
        Ok(store)
    }

    /// The ids of every process's active floats (see `write_behind`).
    pub(crate) fn active_floats(&self) -> Result<Vec<String>, StoreError> {
        self.tx(|tx| {
            Ok(tx
                .query(
                    "SELECT id FROM leases WHERE status = 'active' AND substr(id, 1, 4) = 'flt_'",
                    &[],
                )
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    fn client(&self) -> Result<Conn, StoreError> {
        let deadline = Instant::now() + TIMEOUT;
        let mut pool = self
            .pool
            .lock()
            .map_err(|_| unavailable("pool lock poisoned"))?;
        loop {
            if let Some(c) = pool.idle.pop() {
                if !c.client.is_closed() {
                    return Ok(c);
                }
                pool.open -= 1;
                continue;
            }
            if pool.open < MAX_OPEN {
                pool.open += 1;
                drop(pool);
                return self.open_connection().inspect_err(|_| {
                    if let Ok(mut p) = self.pool.lock() {
                        p.open -= 1;
                    }
                    self.freed.notify_one();
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(unavailable("no connection became free within 5 s"));
            }
            pool = self
                .freed
                .wait_timeout(pool, deadline - now)
                .map_err(|_| unavailable("pool lock poisoned"))?
                .0;
        }
    }

    fn open_connection(&self) -> Result<Conn, StoreError> {
        let mut c = self.config.connect(NoTls).map_err(pg)?;
        let mut setup = format!(
            "SET statement_timeout = {ms}; SET lock_timeout = {ms};",
            ms = TIMEOUT.as_millis()
        );
        if let Some(s) = &self.schema {
            setup.push_str(&format!(
                "CREATE SCHEMA IF NOT EXISTS {s}; SET search_path = {s};"
            ));
        }
        c.batch_execute(&setup).map_err(pg)?;
        Ok(Conn {
            client: c,
            prepared: HashMap::new(),
        })
    }

    fn give_back(&self, c: Conn) {
        if let Ok(mut pool) = self.pool.lock() {
            if c.client.is_closed() {
                pool.open -= 1;
            } else {
                pool.idle.push(c);
            }
        }
        self.freed.notify_one();
    }

    /// Runs `f` in one transaction, retrying deadlocks and serialization failures.
    fn tx<T, E: From<StoreError> + Retryable>(
        &self,
        mut f: impl FnMut(&mut Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.tx_prepared(|tx, _| f(tx))
    }

    /// [`PgStore::tx`], with the connection's prepared statements at hand.
    fn tx_prepared<T, E: From<StoreError> + Retryable>(
        &self,
        mut f: impl FnMut(&mut Transaction<'_>, &mut HashMap<&'static str, Statement>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.client()?;
            let result = (|| {
                let mut tx = conn.client.transaction().map_err(pg)?;
                let out = f(&mut tx, &mut conn.prepared)?;
                tx.commit().map_err(pg)?;
                Ok(out)
            })();
            self.give_back(conn);
            match result {
                Err(e) if attempt < 5 && Retryable::retryable(&e) => continue,
                other => return other,
            }
        }
    }

    /// Queues a request-path operation; concurrent ones share one transaction.
    fn submit(&self, op: Op) -> Result<Done, StoreError> {
        self.combiner.submit(op, |ops| self.run_batch(ops))
    }

    /// Applies `ops` in order in one transaction (all or nothing).
    pub(crate) fn run_batch(&self, ops: &[Op]) -> Result<Vec<Done>, StoreError> {
        self.tx_prepared(|tx, prepared| batch::apply(&mut PgBatch { tx, prepared }, ops))
    }
}

struct PgRows<'a, 'c>(&'a mut Transaction<'c>);

impl Rows for PgRows<'_, '_> {
    fn load_wallet(&mut self, key: &WalletKey) -> Result<Option<Wallet>, StoreError> {
        let scope = text(&key.scope)?;
        self.0
            .query_opt(
                "SELECT body FROM wallets WHERE scope = $1 AND id = $2 FOR UPDATE",
                &[&scope, &&*key.id],
            )
            .map_err(pg)?
            .map(|r| from_json(r.get::<_, &str>(0)))
            .transpose()
    }

    fn save_wallet(&mut self, w: &Wallet) -> Result<(), StoreError> {
        let scope = text(&w.key.scope)?;
        self.0
            .execute(
                "INSERT INTO wallets (scope, id, body) VALUES ($1, $2, $3)
                 ON CONFLICT (scope, id) DO UPDATE SET body = excluded.body",
                &[&scope, &&*w.key.id, &to_json(w)?],
            )
            .map_err(pg)?;
        Ok(())
    }

    fn load_lease(&mut self, id: &str) -> Result<Option<Lease>, StoreError> {
        self.0
            .query_opt("SELECT body FROM leases WHERE id = $1 FOR UPDATE", &[&id])
            .map_err(pg)?
            .map(|r| from_json(r.get::<_, &str>(0)))
            .transpose()
    }

    fn save_lease(&mut self, l: &Lease) -> Result<(), StoreError> {
        self.0
            .execute(
                "INSERT INTO leases (id, status, created_at, expires_at, body) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, body = excluded.body",
                &[&&*l.id, &text(&l.status)?, &l.created_at, &l.expires_at, &to_json(l)?],
            )
            .map_err(pg)?;
        Ok(())
    }
}

/// The batch path's rows: bulk statements, prepared once per connection.
struct PgBatch<'a, 'c> {
    tx: &'a mut Transaction<'c>,
    prepared: &'a mut HashMap<&'static str, Statement>,
}

impl PgBatch<'_, '_> {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql).map_err(pg)?;
        self.prepared.insert(sql, s.clone());
        Ok(s)
    }
}

impl Rows for PgBatch<'_, '_> {
    fn load_wallet(&mut self, key: &WalletKey) -> Result<Option<Wallet>, StoreError> {
        PgRows(self.tx).load_wallet(key)
    }

    fn save_wallet(&mut self, w: &Wallet) -> Result<(), StoreError> {
        PgRows(self.tx).save_wallet(w)
    }

    fn load_lease(&mut self, id: &str) -> Result<Option<Lease>, StoreError> {
        PgRows(self.tx).load_lease(id)
    }

    fn save_lease(&mut self, l: &Lease) -> Result<(), StoreError> {
        PgRows(self.tx).save_lease(l)
    }
}

const LOCK_LEASES: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended(n, 0)) FROM unnest($1::TEXT[]) AS n";
const LOAD_LEASES: &str = "SELECT body FROM leases WHERE id = ANY($1::TEXT[]) FOR UPDATE";
/// Locks in the order of the keys given (the core's key order, as the single-operation path).
const LOAD_WALLETS: &str = "SELECT w.body FROM wallets w
     JOIN unnest($1::TEXT[], $2::TEXT[], $3::INT[]) AS k(scope, id, ord) ON w.scope = k.scope AND w.id = k.id
     ORDER BY k.ord FOR UPDATE OF w";
const LOAD_HEAD: &str = "INSERT INTO event_heads (org, seq, hash) VALUES ($1, -1, '')
     ON CONFLICT (org) DO UPDATE SET seq = event_heads.seq RETURNING seq, hash";
const SAVE: &str = "WITH
 w AS (INSERT INTO wallets (scope, id, body) SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[])
       ON CONFLICT (scope, id) DO UPDATE SET body = excluded.body),
 l AS (INSERT INTO leases (id, status, created_at, expires_at, body)
       SELECT * FROM unnest($4::TEXT[], $5::TEXT[], $6::BIGINT[], $7::BIGINT[], $8::TEXT[])
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, body = excluded.body),
 e AS (INSERT INTO events (org, seq, timestamp, body, team, usr, verdict, requests, denied,
                         policy_events, cost, prompt_tokens, completion_tokens, model, escalation)
       SELECT * FROM unnest($9::TEXT[], $10::BIGINT[], $11::BIGINT[], $12::TEXT[], $16::TEXT[],
                            $17::TEXT[], $18::TEXT[], $19::BIGINT[], $20::BIGINT[], $21::BIGINT[],
                            $22::TEXT[]::NUMERIC[], $23::BIGINT[], $24::BIGINT[], $25::TEXT[],
                            $26::TEXT[])),
 h AS (UPDATE event_heads SET seq = n.seq, hash = n.hash
       FROM unnest($13::TEXT[], $14::BIGINT[], $15::TEXT[]) AS n(org, seq, hash)
       WHERE event_heads.org = n.org)
SELECT 1";

/// Adds rows to the day tallies, per user and (summed in the statement) per team, with exact
/// `NUMERIC` sums; the rows arrive sorted by key, so concurrent writers lock them in one order.
const ADD_TALLIES: &str = "WITH d AS (
     SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[],
         $6::BIGINT[], $7::BIGINT[], $8::BIGINT[], $9::TEXT[]::NUMERIC[], $10::BIGINT[],
         $11::BIGINT[])
         AS d(org, team, day, usr, model, requests, denied, policy_events, cost, prompt_tokens,
              completion_tokens)),
 u AS (INSERT INTO tallies SELECT * FROM d
     ON CONFLICT (org, team, day, usr, model) DO UPDATE SET
         requests = tallies.requests + excluded.requests,
         denied = tallies.denied + excluded.denied,
         policy_events = tallies.policy_events + excluded.policy_events,
         cost = tallies.cost + excluded.cost,
         prompt_tokens = tallies.prompt_tokens + excluded.prompt_tokens,
         completion_tokens = tallies.completion_tokens + excluded.completion_tokens)
 INSERT INTO team_tallies
     SELECT org, team, day, model, sum(requests), sum(denied), sum(policy_events), sum(cost),
         sum(prompt_tokens), sum(completion_tokens)
     FROM d GROUP BY org, team, day, model ORDER BY org, team, day, model
     ON CONFLICT (org, team, day, model) DO UPDATE SET
         requests = team_tallies.requests + excluded.requests,
         denied = team_tallies.denied + excluded.denied,
         policy_events = team_tallies.policy_events + excluded.policy_events,
         cost = team_tallies.cost + excluded.cost,
         prompt_tokens = team_tallies.prompt_tokens + excluded.prompt_tokens,
         completion_tokens = team_tallies.completion_tokens + excluded.completion_tokens";

fn add_tallies(
    tx: &mut Transaction<'_>,
    st: &(impl postgres::ToStatement + ?Sized),
    deltas: &[Delta],
) -> Result<(), StoreError> {
    let text = |f: fn(&Delta) -> &str| deltas.iter().map(f).collect::<Vec<&str>>();
    let int = |f: fn(&Delta) -> i64| deltas.iter().map(f).collect::<Vec<i64>>();
    let cost: Vec<String> = deltas.iter().map(|d| d.cost.to_string()).collect();
    tx.execute(
        st,
        &[
            &text(|d| &d.org),
            &text(|d| &d.team),
            &int(|d| d.day),
            &text(|d| &d.user),
            &text(|d| &d.model),
            &int(|d| d.requests),
            &int(|d| d.denied),
            &int(|d| d.policy_events),
            &cost,
            &int(|d| d.prompt_tokens),
            &int(|d| d.completion_tokens),
        ],
    )
    .map_err(pg)?;
    Ok(())
}

/// Subtracts pruned events from the day tallies.
fn remove_tallies(tx: &mut Transaction<'_>, deltas: &[Delta]) -> Result<(), StoreError> {
    if deltas.is_empty() {
        return Ok(());
    }
    add_tallies(tx, ADD_TALLIES, deltas)?;
    tx.batch_execute(
        "DELETE FROM tallies WHERE requests <= 0; DELETE FROM team_tallies WHERE requests <= 0;",
    )
    .map_err(pg)?;
    Ok(())
}

/// Fills the tally columns and the day tallies from the events stored before they existed, a
/// chunk of events at a time (an upgraded schema may hold millions).
fn backfill(tx: &mut Transaction<'_>) -> Result<(), StoreError> {
    let mut after = (String::new(), -1_i64);
    loop {
        let events: Vec<Event> = tx
            .query(
                "SELECT body FROM events WHERE (org, seq) > ($1, $2) ORDER BY org, seq
                 LIMIT 10000",
                &[&after.0, &after.1],
            )
            .map_err(pg)?
            .iter()
            .map(|r| from_json(r.get::<_, &str>(0)))
            .collect::<Result<_, _>>()?;
        let Some(last) = events.last() else {
            return Ok(());
        };
        after = (last.body.org.clone(), seq_i64(last.seq)?);
        let cols = events
            .iter()
            .map(Columns::of)
            .collect::<Result<Vec<_>, _>>()?;
        let org: Vec<&str> = events.iter().map(|e| e.body.org.as_str()).collect();
        let seq = events
            .iter()
            .map(|e| seq_i64(e.seq))
            .collect::<Result<Vec<i64>, _>>()?;
        let int = |f: fn(&Columns) -> i64| cols.iter().map(f).collect::<Vec<i64>>();
        let cost: Vec<&str> = cols.iter().map(|c| c.cost.as_str()).collect();
        let model: Vec<Option<&str>> = cols.iter().map(|c| c.model.as_deref()).collect();
        let escalation: Vec<Option<&str>> = cols.iter().map(|c| c.escalation.as_deref()).collect();
        tx.execute(
            "UPDATE events e SET requests = u.requests, denied = u.denied,
                 policy_events = u.policy_events, cost = u.cost,
                 prompt_tokens = u.prompt_tokens, completion_tokens = u.completion_tokens,
                 model = u.model, escalation = u.escalation
             FROM unnest($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[],
                 $6::TEXT[]::NUMERIC[], $7::BIGINT[], $8::BIGINT[], $9::TEXT[], $10::TEXT[])
                 AS u(org, seq, requests, denied, policy_events, cost, prompt_tokens,
                      completion_tokens, model, escalation)
             WHERE e.org = u.org AND e.seq = u.seq",
            &[
                &org,
                &seq,
                &int(|c| c.requests),
                &int(|c| c.denied),
                &int(|c| c.policy_events),
                &cost,
                &int(|c| c.prompt_tokens),
                &int(|c| c.completion_tokens),
                &model,
                &escalation,
            ],
        )
        .map_err(pg)?;
        let deltas = tallies::deltas(&events, 1)?;
        if !deltas.is_empty() {
            add_tallies(tx, ADD_TALLIES, &deltas)?;
        }
    }
}

const POSTGRES: Dialect = Dialect {
    placeholder: |n, int| format!("${n}::{}", if int { "BIGINT" } else { "TEXT" }),
    cost_sum: "sum(cost)::TEXT",
};

fn seq_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(corrupt)
}

impl BatchRows for PgBatch<'_, '_> {
    fn lock_leases(&mut self, ids: &[&str]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = ids.iter().map(|id| format!("lease:{id}")).collect();
        let st = self.statement(LOCK_LEASES)?;
        self.tx.execute(&st, &[&names]).map_err(pg)?;
        Ok(())
    }

    fn load_leases(&mut self, ids: &[&str]) -> Result<Vec<Lease>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let st = self.statement(LOAD_LEASES)?;
        self.tx
            .query(&st, &[&ids])
            .map_err(pg)?
            .iter()
            .map(|r| from_json(r.get::<_, &str>(0)))
            .collect()
    }

    fn load_wallets(&mut self, keys: &[&WalletKey]) -> Result<Vec<Wallet>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let scopes = keys
            .iter()
            .map(|k| text(&k.scope))
            .collect::<Result<Vec<String>, _>>()?;
        let ids: Vec<&str> = keys.iter().map(|k| &*k.id).collect();
        let ords: Vec<i32> = (0..keys.len())
            .map(|i| i32::try_from(i).unwrap_or(i32::MAX))
            .collect();
        let st = self.statement(LOAD_WALLETS)?;
        self.tx
            .query(&st, &[&scopes, &ids, &ords])
            .map_err(pg)?
            .iter()
            .map(|r| from_json(r.get::<_, &str>(0)))
            .collect()
    }

    fn load_head(&mut self, org: &str) -> Result<Option<(u64, String)>, StoreError> {
        let st = self.statement(LOAD_HEAD)?;
        let row = self.tx.query_one(&st, &[&org]).map_err(pg)?;
        let (seq, hash): (i64, String) = (row.get(0), row.get(1));
        if seq < 0 {
            return Ok(None);
        }
        Ok(Some((u64::try_from(seq).map_err(corrupt)?, hash)))
    }

    fn save(
        &mut self,
        wallets: &[&Wallet],
        leases: &[&Lease],
        events: &[Event],
        heads: &[(&str, u64, &str)],
    ) -> Result<(), StoreError> {
        if wallets.is_empty() && leases.is_empty() && events.is_empty() {
            return Ok(());
        }
        let w_scope = wallets
            .iter()
            .map(|w| text(&w.key.scope))
            .collect::<Result<Vec<String>, _>>()?;
        let w_id: Vec<&str> = wallets.iter().map(|w| &*w.key.id).collect();
        let w_body = wallets
            .iter()
            .map(to_json)
            .collect::<Result<Vec<String>, _>>()?;
        let l_id: Vec<&str> = leases.iter().map(|l| &*l.id).collect();
        let l_status = leases
            .iter()
            .map(|l| text(&l.status))
            .collect::<Result<Vec<String>, _>>()?;
        let l_created: Vec<i64> = leases.iter().map(|l| l.created_at).collect();
        let l_expires: Vec<i64> = leases.iter().map(|l| l.expires_at).collect();
        let l_body = leases
            .iter()
            .map(to_json)
            .collect::<Result<Vec<String>, _>>()?;
        let e_org: Vec<&str> = events.iter().map(|e| e.body.org.as_str()).collect();
        let e_seq = events
            .iter()
            .map(|e| seq_i64(e.seq))
            .collect::<Result<Vec<i64>, _>>()?;
        let e_ts: Vec<i64> = events.iter().map(|e| e.body.timestamp).collect();
        let e_body = events
            .iter()
            .map(to_json)
            .collect::<Result<Vec<String>, _>>()?;
        let e_team: Vec<Option<&str>> = events.iter().map(|e| e.body.team.as_deref()).collect();
        let e_user: Vec<Option<&str>> = events.iter().map(|e| e.body.user.as_deref()).collect();
        let e_verdict: Vec<&str> = events.iter().map(|e| e.body.verdict.as_str()).collect();
        let cols = events
            .iter()
            .map(Columns::of)
            .collect::<Result<Vec<_>, _>>()?;
        let c_requests: Vec<i64> = cols.iter().map(|c| c.requests).collect();
        let c_denied: Vec<i64> = cols.iter().map(|c| c.denied).collect();
        let c_policy: Vec<i64> = cols.iter().map(|c| c.policy_events).collect();
        let c_cost: Vec<&str> = cols.iter().map(|c| c.cost.as_str()).collect();
        let c_prompt: Vec<i64> = cols.iter().map(|c| c.prompt_tokens).collect();
        let c_completion: Vec<i64> = cols.iter().map(|c| c.completion_tokens).collect();
        let c_model: Vec<Option<&str>> = cols.iter().map(|c| c.model.as_deref()).collect();
        let c_escalation: Vec<Option<&str>> =
            cols.iter().map(|c| c.escalation.as_deref()).collect();
        let h_org: Vec<&str> = heads.iter().map(|h| h.0).collect();
        let h_seq = heads
            .iter()
            .map(|h| seq_i64(h.1))
            .collect::<Result<Vec<i64>, _>>()?;
        let h_hash: Vec<&str> = heads.iter().map(|h| h.2).collect();
        let st = self.statement(SAVE)?;
        self.tx
            .execute(
                &st,
                &[
                    &w_scope,
                    &w_id,
                    &w_body,
                    &l_id,
                    &l_status,
                    &l_created,
                    &l_expires,
                    &l_body,
                    &e_org,
                    &e_seq,
                    &e_ts,
                    &e_body,
                    &h_org,
                    &h_seq,
                    &h_hash,
                    &e_team,
                    &e_user,
                    &e_verdict,
                    &c_requests,
                    &c_denied,
                    &c_policy,
                    &c_cost,
                    &c_prompt,
                    &c_completion,
                    &c_model,
                    &c_escalation,
                ],
            )
            .map_err(pg)?;
        let deltas = tallies::deltas(events, 1)?;
        if !deltas.is_empty() {
            let st = self.statement(ADD_TALLIES)?;
            add_tallies(self.tx, &st, &deltas)?;
        }
        Ok(())
    }
}

fn with_ledger<T>(
    tx: &mut Transaction<'_>,
    keys: &[WalletKey],
    lease_ids: &[&str],
    f: impl FnOnce(&mut Ledger) -> Result<T, WalletError>,
) -> Result<T, WalletError> {
    for id in lease_ids {
        lock_name(tx, &format!("lease:{id}"))?;
    }
    crate::ledger::with_ledger(&mut PgRows(tx), keys, lease_ids, f)
}

impl WalletStore for PgStore {
    fn allocate(
        &self,
        key: &WalletKey,
        amount: Decimal,
        currency: &str,
        period: Option<Period>,
        mode: AllocateMode,
        now: Millis,
    ) -> Result<Wallet, WalletError> {
        self.tx(|tx| {
            lock_name(tx, &format!("wallet:{key}"))?;
            with_ledger(tx, std::slice::from_ref(key), &[], |l| {
                l.allocate(key, amount, currency, period, mode, now)
            })
        })
    }

    fn get(&self, key: &WalletKey, now: Millis) -> Result<Option<Wallet>, StoreError> {
        self.tx(|tx| {
            let scope = text(&key.scope)?;
            Ok(tx
                .query_opt(
                    "SELECT body FROM wallets WHERE scope = $1 AND id = $2",
                    &[&scope, &&*key.id],
                )
                .map_err(pg)?
                .map(|r| from_json::<Wallet>(r.get::<_, &str>(0)))
                .transpose()?
                .map(|mut w| {
                    w.roll(now);
                    w
                }))
        })
    }

    fn list(&self, now: Millis) -> Result<Vec<Wallet>, StoreError> {
        self.tx(|tx| {
            let mut v = Vec::new();
            for r in tx.query("SELECT body FROM wallets", &[]).map_err(pg)? {
                let mut w: Wallet = from_json(r.get::<_, &str>(0))?;
                w.roll(now);
                v.push(w);
            }
            v.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(v)
        })
    }

    fn reserve(
        &self,
        request: &ReserveRequest,
        now: Millis,
    ) -> Result<ReserveOutcome, WalletError> {
        match self.submit(Op::Reserve(request.clone(), now))? {
            Done::Reserve(r) => r,
            other => Err(batch::mismatch(&other).into()),
        }
    }

    fn settle(
        &self,
        lease_id: &str,
        actual: Decimal,
        now: Millis,
    ) -> Result<Settlement, WalletError> {
        match self.submit(Op::Settle(lease_id.into(), actual, now))? {
            Done::Settle(r) => r,
            other => Err(batch::mismatch(&other).into()),
        }
    }

    fn release(&self, lease_id: &str, _now: Millis) -> Result<Lease, WalletError> {
        self.tx(|tx| {
            with_ledger(tx, &[], &[lease_id], |l| {
                l.release(lease_id, LeaseStatus::Released)
            })
        })
    }

    fn expire(&self, now: Millis) -> Result<usize, WalletError> {
        self.tx(|tx| {
            let ids: Vec<String> = tx
                .query("SELECT id FROM leases WHERE status = 'active' AND expires_at <= $1 ORDER BY id", &[&now])
                .map_err(pg)?
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect();
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            with_ledger(tx, &[], &refs, |l| l.expire(now))
        })
    }

    fn lease(&self, lease_id: &str) -> Result<Option<Lease>, StoreError> {
        self.tx(|tx| {
            tx.query_opt("SELECT body FROM leases WHERE id = $1", &[&lease_id])
                .map_err(pg)?
                .map(|r| from_json(r.get::<_, &str>(0)))
                .transpose()
        })
    }

    fn prune(&self, before: Millis) -> Result<usize, StoreError> {
        self.tx(|tx| {
            let n = tx
                .execute(
                    "DELETE FROM leases WHERE status <> 'active' AND created_at < $1",
                    &[&before],
                )
                .map_err(pg)?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }
}

fn insert_row<T: Serialize>(
    tx: &mut Transaction<'_>,
    table: &str,
    id: &str,
    team: Option<&str>,
    created_at: Millis,
    row: &T,
) -> Result<(), StoreError> {
    let n = tx
        .execute(
            &format!("INSERT INTO {table} (id, team, created_at, body) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING"),
            &[&id, &team, &created_at, &to_json(row)?],
        )
        .map_err(pg)?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("{table} row `{id}` exists")));
    }
    Ok(())
}

fn get_row<T: DeserializeOwned>(
    tx: &mut Transaction<'_>,
    table: &str,
    id: &str,
    lock: bool,
) -> Result<Option<T>, StoreError> {
    let sql = format!(
        "SELECT body FROM {table} WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    tx.query_opt(&sql, &[&id])
        .map_err(pg)?
        .map(|r| from_json(r.get::<_, &str>(0)))
        .transpose()
}

fn update_row<T: Serialize>(
    tx: &mut Transaction<'_>,
    table: &str,
    id: &str,
    row: &T,
) -> Result<(), StoreError> {
    tx.execute(
        &format!("UPDATE {table} SET body = $2 WHERE id = $1"),
        &[&id, &to_json(row)?],
    )
    .map_err(pg)?;
    Ok(())
}

/// Loads row `id` (locked where the database can), applies `f` — which returns its result and
/// whether the row changed — and saves the row if it did. `None` when there is no such row.
fn modify_row<T: Serialize + DeserializeOwned, R>(
    tx: &mut Transaction<'_>,
    table: &str,
    id: &str,
    f: impl FnOnce(&mut T) -> (R, bool),
) -> Result<Option<R>, StoreError> {
    let Some(mut row) = get_row::<T>(tx, table, id, true)? else {
        return Ok(None);
    };
    let (out, changed) = f(&mut row);
    if changed {
        update_row(tx, table, id, &row)?;
    }
    Ok(Some(out))
}

fn list_rows<T: DeserializeOwned>(
    tx: &mut Transaction<'_>,
    table: &str,
    team: Option<&str>,
) -> Result<Vec<T>, StoreError> {
    let sql = format!("SELECT body FROM {table} WHERE ($1::TEXT IS NULL OR team = $1) ORDER BY created_at DESC, id ASC");
    tx.query(&sql, &[&team])
        .map_err(pg)?
        .iter()
        .map(|r| from_json(r.get::<_, &str>(0)))
        .collect()
}

// ---------- rate-limit counters ----------

fn prepared_statement(
    tx: &mut Transaction<'_>,
    prepared: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
) -> Result<Statement, StoreError> {
    if let Some(s) = prepared.get(sql) {
        return Ok(s.clone());
    }
    let s = tx.prepare(sql).map_err(pg)?;
    prepared.insert(sql, s.clone());
    Ok(s)
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The order rows are locked in: by counter, then window (no lock-order deadlocks between
/// gateways).
fn lock_order<T>(items: &[T], key: impl Fn(&T) -> (&str, Millis)) -> Vec<usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        let ka = items.get(a).map(&key);
        let kb = items.get(b).map(&key);
        ka.cmp(&kb)
    });
    order
}

impl RateCounters for PgStore {
    /// One transaction: each counter row is created if missing and locked (`INSERT … ON CONFLICT
    /// DO UPDATE … RETURNING`, in one global order), the core's rule decides, and the amounts
    /// are added. Gateways sharing the server wait for one another on the rows, so none admits
    /// past a limit.
    fn take(&self, hits: &[Hit]) -> Result<Taken, StoreError> {
        let order = lock_order(hits, |h| (h.counter.as_str(), h.window_start));
        self.tx_prepared(|tx, prepared| {
            let lock = prepared_statement(
                tx,
                prepared,
                "INSERT INTO rate_counters (counter, window_start, window_end, used) VALUES ($1, $2, $3, 0)
                 ON CONFLICT (counter, window_start) DO UPDATE SET used = rate_counters.used RETURNING used",
            )?;
            let mut used = vec![0u64; hits.len()];
            for &i in &order {
                let (Some(h), Some(slot)) = (hits.get(i), used.get_mut(i)) else {
                    continue;
                };
                let row = tx
                    .query_one(&lock, &[&h.counter, &h.window_start, &h.window_end])
                    .map_err(pg)?;
                *slot = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
            }
            let admitted = admits(hits, &used);
            if admitted {
                let add = prepared_statement(
                    tx,
                    prepared,
                    "UPDATE rate_counters SET used = used + $3 WHERE counter = $1 AND window_start = $2",
                )?;
                for &i in &order {
                    if let Some(h) = hits.get(i) {
                        tx.execute(&add, &[&h.counter, &h.window_start, &signed(h.amount)])
                            .map_err(pg)?;
                    }
                }
            }
            Ok(Taken { admitted, used: used.clone() })
        })
    }

    fn adjust(&self, corrections: &[Correction]) -> Result<(), StoreError> {
        let order = lock_order(corrections, |c| (c.counter.as_str(), c.window_start));
        self.tx_prepared(|tx, prepared| {
            let add = prepared_statement(
                tx,
                prepared,
                "INSERT INTO rate_counters (counter, window_start, window_end, used) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (counter, window_start) DO UPDATE SET used = rate_counters.used + excluded.used",
            )?;
            let sub = prepared_statement(
                tx,
                prepared,
                "UPDATE rate_counters SET used = GREATEST(used - $3, 0) WHERE counter = $1 AND window_start = $2",
            )?;
            for &i in &order {
                let Some(c) = corrections.get(i) else {
                    continue;
                };
                if c.delta > 0 {
                    tx.execute(&add, &[&c.counter, &c.window_start, &c.window_end, &c.delta])
                        .map_err(pg)?;
                } else {
                    let d = c.delta.checked_neg().unwrap_or(i64::MAX);
                    tx.execute(&sub, &[&c.counter, &c.window_start, &d])
                        .map_err(pg)?;
                }
            }
            Ok::<_, StoreError>(())
        })
    }

    fn prune_windows(&self, now: Millis) -> Result<usize, StoreError> {
        self.tx(|tx| {
            let n = tx
                .execute("DELETE FROM rate_counters WHERE window_end <= $1", &[&now])
                .map_err(pg)?;
            Ok::<_, StoreError>(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }
}

impl EscalationStore for PgStore {
    fn insert(&self, e: &Escalation) -> Result<(), StoreError> {
        self.tx(|tx| insert_row(tx, "escalations", &e.id, e.team.as_deref(), e.created_at, e))
    }

    fn get(&self, id: &str) -> Result<Option<Escalation>, StoreError> {
        self.tx(|tx| get_row(tx, "escalations", id, false))
    }

    fn list(&self, team: Option<&str>) -> Result<Vec<Escalation>, StoreError> {
        self.tx(|tx| list_rows(tx, "escalations", team))
    }

    fn resolve(
        &self,
        id: &str,
        resolution: Resolution,
        by: &str,
        now: Millis,
    ) -> Result<Option<Escalation>, StoreError> {
        self.tx(|tx| {
            modify_row(tx, "escalations", id, |e: &mut Escalation| {
                let changed = e.resolve_at(resolution, by, now);
                (e.clone(), changed)
            })
        })
    }

    fn redeem(
        &self,
        id: &str,
        fingerprint: &str,
        team: Option<&str>,
        now: Millis,
    ) -> Result<Redeem, StoreError> {
        self.tx(|tx| {
            let out = modify_row(tx, "escalations", id, |e: &mut Escalation| {
                let out = e.redeem_at(fingerprint, team, now);
                let changed = out == Redeem::Granted;
                (out, changed)
            })?;
            Ok(out.unwrap_or(Redeem::Invalid("no such escalation")))
        })
    }
}

impl TicketStore for PgStore {
    fn insert(&self, t: &Ticket) -> Result<(), StoreError> {
        self.tx(|tx| insert_row(tx, "tickets", &t.id, t.team.as_deref(), t.created_at, t))
    }

    fn get(&self, id: &str) -> Result<Option<Ticket>, StoreError> {
        self.tx(|tx| get_row(tx, "tickets", id, false))
    }

    fn list(&self, team: Option<&str>) -> Result<Vec<Ticket>, StoreError> {
        self.tx(|tx| list_rows(tx, "tickets", team))
    }

    fn resolve(
        &self,
        id: &str,
        resolution: &TicketResolution,
        by: &str,
        now: Millis,
    ) -> Result<Option<Ticket>, StoreError> {
        self.tx(|tx| {
            modify_row(tx, "tickets", id, |t: &mut Ticket| {
                let changed = t.resolve_at(resolution, by, now);
                (t.clone(), changed)
            })
        })
    }

    fn redeem(
        &self,
        id: &str,
        fingerprint: &str,
        team: Option<&str>,
        now: Millis,
    ) -> Result<TicketRedeem, StoreError> {
        self.tx(|tx| {
            let out = modify_row(tx, "tickets", id, |t: &mut Ticket| {
                let out = t.redeem_at(fingerprint, team, now);
                let changed = matches!(out, TicketRedeem::Approved(_));
                (out, changed)
            })?;
            Ok(out.unwrap_or(TicketRedeem::Invalid("no such ticket")))
        })
    }

    fn fulfill(&self, id: &str, now: Millis) -> Result<(), StoreError> {
        self.tx(|tx| {
            modify_row(tx, "tickets", id, |t: &mut Ticket| ((), t.fulfill_at(now)))?;
            Ok(())
        })
    }

    fn restore(&self, id: &str) -> Result<(), StoreError> {
        self.tx(|tx| {
            modify_row(tx, "tickets", id, |t: &mut Ticket| ((), t.restore_at()))?;
            Ok(())
        })
    }

    fn hold(&self, id: &str, until: Option<Millis>) -> Result<(), StoreError> {
        self.tx(|tx| {
            modify_row(tx, "tickets", id, |t: &mut Ticket| {
                let changed = t.held_until != until;
                t.held_until = until;
                ((), changed)
            })?;
            Ok(())
        })
    }
}

impl EventStore for PgStore {
    fn append(&self, draft: EventDraft) -> Result<Event, StoreError> {
        match self.submit(Op::Append(draft))? {
            Done::Append(e) => Ok(e),
            other => Err(batch::mismatch(&other)),
        }
    }

    fn list(&self, org: &str) -> Result<Vec<Event>, StoreError> {
        self.tx(|tx| pg_events(tx, org))
    }

    fn anchor(&self, org: &str) -> Result<Option<Anchor>, StoreError> {
        self.tx(|tx| pg_anchor(tx, org))
    }

    fn query(&self, org: &str, q: &EventQuery) -> Result<Vec<Event>, StoreError> {
        // only the conditions a query has, so the planner can use the team indexes
        let before = q.before.map(i64::try_from).transpose().map_err(corrupt)?;
        let verdict = q.verdict.map(|v| v.as_str());
        let mut sql = String::from("SELECT body FROM events WHERE org = $1");
        let mut args: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&org];
        let conds: [(&str, Option<&(dyn postgres::types::ToSql + Sync)>); 6] = [
            ("team =", q.team.as_ref().map(|t| t as _)),
            ("usr =", q.user.as_ref().map(|u| u as _)),
            ("verdict =", verdict.as_ref().map(|v| v as _)),
            ("timestamp >=", q.from.as_ref().map(|f| f as _)),
            ("timestamp <", q.to.as_ref().map(|t| t as _)),
            ("seq <", before.as_ref().map(|b| b as _)),
        ];
        for (c, v) in conds {
            if let Some(v) = v {
                args.push(v);
                sql.push_str(&format!(" AND {c} ${}", args.len()));
            }
        }
        if q.escalated {
            sql.push_str(" AND escalation IS NOT NULL");
        }
        sql.push_str(" ORDER BY seq DESC");
        if let Some(n) = q.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        self.tx(|tx| {
            let rows = tx.query(sql.as_str(), &args).map_err(pg)?;
            let mut out: Vec<Event> = rows
                .iter()
                .map(|r| from_json(r.get::<_, &str>(0)))
                .collect::<Result<_, StoreError>>()?;
            out.reverse();
            Ok(out)
        })
    }

    fn tally(&self, org: &str, q: &TallyQuery) -> Result<Vec<(TallyKey, Tally)>, StoreError> {
        let (sql, args) = tallies::query(org, q, &POSTGRES);
        let args: Vec<Box<dyn postgres::types::ToSql + Sync>> = args
            .into_iter()
            .map(|a| -> Box<dyn postgres::types::ToSql + Sync> {
                match a {
                    Arg::Text(s) => Box::new(s),
                    Arg::Int(i) => Box::new(i),
                }
            })
            .collect();
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = args.iter().map(|a| &**a).collect();
        let rows = self.tx(|tx| {
            tx.query(sql.as_str(), &refs)
                .map_err(pg)?
                .iter()
                .map(|r| {
                    Ok(tallies::Row {
                        day: r.try_get(0).map_err(corrupt)?,
                        user: r.try_get(1).map_err(corrupt)?,
                        model: r.try_get(2).map_err(corrupt)?,
                        requests: r.try_get(3).map_err(corrupt)?,
                        denied: r.try_get(4).map_err(corrupt)?,
                        policy_events: r.try_get(5).map_err(corrupt)?,
                        cost: r.try_get(6).map_err(corrupt)?,
                        prompt_tokens: r.try_get(7).map_err(corrupt)?,
                        completion_tokens: r.try_get(8).map_err(corrupt)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })?;
        tallies::collect(rows)
    }

    fn snapshot(&self, org: &str) -> Result<Chain, StoreError> {
        // one snapshot: an append or a prune committed meanwhile is not half seen
        self.tx(|tx| {
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .map_err(pg)?;
            let head = tx
                .query_opt("SELECT seq, hash FROM event_heads WHERE org = $1", &[&org])
                .map_err(pg)?
                .and_then(|r| {
                    let seq = u64::try_from(r.get::<_, i64>(0)).ok()?;
                    Some(Head {
                        seq,
                        hash: r.get(1),
                    })
                });
            Ok(Chain {
                events: pg_events(tx, org)?,
                anchor: pg_anchor(tx, org)?,
                head,
            })
        })
    }

    fn tail(&self, org: &str, n: usize) -> Result<Chain, StoreError> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.tx(|tx| {
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .map_err(pg)?;
            let mut events: Vec<Event> = tx
                .query(
                    "SELECT body FROM events WHERE org = $1 ORDER BY seq DESC LIMIT $2",
                    &[&org, &n],
                )
                .map_err(pg)?
                .iter()
                .map(|r| from_json(r.get::<_, &str>(0)))
                .collect::<Result<_, StoreError>>()?;
            events.reverse();
            let head = tx
                .query_opt("SELECT seq, hash FROM event_heads WHERE org = $1", &[&org])
                .map_err(pg)?
                // as `snapshot` reads it (a seq of -1 is a head row without an event)
                .and_then(|r| {
                    Some(Head {
                        seq: u64::try_from(r.get::<_, i64>(0)).ok()?,
                        hash: r.get(1),
                    })
                });
            Ok(Chain::tail(events, pg_anchor(tx, org)?, head))
        })
    }

    fn prune(&self, org: &str, now: Millis, default_days: u32) -> Result<usize, StoreError> {
        self.tx(|tx| {
            // the head row serializes prunes and appends of the org
            tx.execute("SELECT 1 FROM event_heads WHERE org = $1 FOR UPDATE", &[&org])
                .map_err(pg)?;
            let events = pg_events(tx, org)?;
            let plan = prune_plan(&events, now, default_days);
            remove_tallies(tx, &tallies::deltas(plan.removed(&events), -1)?)?;
            for t in &plan.tombstones {
                let seq = i64::try_from(t.seq).map_err(corrupt)?;
                tx.execute(
                    "UPDATE events SET body = $3, team = NULL, usr = NULL, requests = 0, denied = 0,
                         policy_events = 0, cost = 0, prompt_tokens = 0, completion_tokens = 0,
                         model = NULL, escalation = NULL
                     WHERE org = $1 AND seq = $2",
                    &[&org, &seq, &to_json(t)?],
                )
                .map_err(pg)?;
            }
            if let Some(anchor) = &plan.cut {
                let cut = i64::try_from(anchor.seq).map_err(corrupt)?;
                tx.execute(
                    "DELETE FROM events WHERE org = $1 AND seq < $2",
                    &[&org, &cut],
                )
                .map_err(pg)?;
                tx.execute(
                    "INSERT INTO event_anchors (org, seq, prev_hash) VALUES ($1, $2, $3)
                     ON CONFLICT (org) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash",
                    &[&org, &cut, &anchor.prev_hash],
                )
                .map_err(pg)?;
            }
            Ok(plan.len())
        })
    }
}

fn pg_events(tx: &mut Transaction<'_>, org: &str) -> Result<Vec<Event>, StoreError> {
    tx.query(
        "SELECT body FROM events WHERE org = $1 ORDER BY seq",
        &[&org],
    )
    .map_err(pg)?
    .iter()
    .map(|r| from_json(r.get::<_, &str>(0)))
    .collect()
}

fn pg_anchor(tx: &mut Transaction<'_>, org: &str) -> Result<Option<Anchor>, StoreError> {
    tx.query_opt(
        "SELECT seq, prev_hash FROM event_anchors WHERE org = $1",
        &[&org],
    )
    .map_err(pg)?
    .map(|r| {
        Ok(Anchor {
            seq: u64::try_from(r.get::<_, i64>(0)).map_err(corrupt)?,
            prev_hash: r.get(1),
        })
    })
    .transpose()
}

impl Journal for PgStore {
    fn settle_and_append(
        &self,
        lease_id: &str,
        actual: Decimal,
        now: Millis,
        draft: EventDraft,
    ) -> Result<(Settlement, Option<Event>), WalletError> {
        match self.submit(Op::SettleAppend(lease_id.into(), actual, now, draft))? {
            Done::SettleAppend(r) => r,
            other => Err(batch::mismatch(&other).into()),
        }
    }
}

fn bodies<T: DeserializeOwned>(
    tx: &mut Transaction<'_>,
    sql: &str,
    arg: Option<&str>,
) -> Result<Vec<T>, StoreError> {
    tx.query(sql, &[&arg])
        .map_err(pg)?
        .iter()
        .map(|r| from_json(r.get::<_, &str>(0)))
        .collect()
}

fn unique_violation(e: postgres::Error, what: String) -> StoreError {
    if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(what)
    } else {
        pg(e)
    }
}

impl Directory for PgStore {
    fn create_team(&self, team: &Team) -> Result<(), StoreError> {
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO teams (slug, body) VALUES ($1, $2)",
                &[&team.slug, &to_json(team)?],
            )
            .map_err(|e| unique_violation(e, format!("team `{}` exists", team.slug)))?;
            Ok(())
        })
    }

    fn team(&self, slug: &str) -> Result<Option<Team>, StoreError> {
        self.tx(|tx| {
            Ok(bodies(
                tx,
                "SELECT body FROM teams WHERE slug = $1::TEXT",
                Some(slug),
            )?
            .into_iter()
            .next())
        })
    }

    fn teams(&self) -> Result<Vec<Team>, StoreError> {
        self.tx(|tx| {
            bodies(
                tx,
                "SELECT body FROM teams WHERE $1::TEXT IS NULL ORDER BY slug",
                None,
            )
        })
    }

    fn put_member(&self, m: &Member) -> Result<(), StoreError> {
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO members (team, usr, body) VALUES ($1, $2, $3)
                 ON CONFLICT (team, usr) DO UPDATE SET body = excluded.body",
                &[&m.team, &m.user, &to_json(m)?],
            )
            .map_err(pg)?;
            Ok(())
        })
    }

    fn members(&self, team: Option<&str>) -> Result<Vec<Member>, StoreError> {
        self.tx(|tx| {
            bodies(
                tx,
                "SELECT body FROM members WHERE $1::TEXT IS NULL OR team = $1 ORDER BY team, usr",
                team,
            )
        })
    }

    fn insert_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO api_keys (hash, id, team, created_at, body) VALUES ($1, $2, $3, $4, $5)",
                &[&key.hash, &key.id, &key.team, &key.created_at, &to_json(key)?],
            )
            .map_err(|e| unique_violation(e, format!("key `{}` exists", key.id)))?;
            Ok(())
        })
    }

    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.tx(|tx| {
            Ok(bodies(
                tx,
                "SELECT body FROM api_keys WHERE hash = $1::TEXT",
                Some(hash),
            )?
            .into_iter()
            .next())
        })
    }

    fn keys(&self, team: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
        self.tx(|tx| {
            bodies(
                tx,
                "SELECT body FROM api_keys WHERE $1::TEXT IS NULL OR team = $1 ORDER BY created_at DESC, id",
                team,
            )
        })
    }

    fn update_team(
        &self,
        slug: &str,
        change: &dyn Fn(&mut Team),
    ) -> Result<Option<Team>, StoreError> {
        self.tx(|tx| {
            let Some(mut team) = bodies::<Team>(
                tx,
                "SELECT body FROM teams WHERE slug = $1::TEXT FOR UPDATE",
                Some(slug),
            )?
            .into_iter()
            .next() else {
                return Ok(None);
            };
            change(&mut team);
            slug.clone_into(&mut team.slug);
            tx.execute(
                "UPDATE teams SET body = $2 WHERE slug = $1",
                &[&slug, &to_json(&team)?],
            )
            .map_err(pg)?;
            Ok(Some(team))
        })
    }

    fn remove_member(&self, team: &str, user: &str) -> Result<Option<Member>, StoreError> {
        self.tx(|tx| {
            let rows = tx
                .query(
                    "DELETE FROM members WHERE team = $1 AND usr = $2 RETURNING body",
                    &[&team, &user],
                )
                .map_err(pg)?;
            match rows.first() {
                Some(r) => Ok(Some(from_json(&r.get::<_, String>(0))?)),
                None => Ok(None),
            }
        })
    }

    fn key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        self.tx(|tx| {
            Ok(bodies(
                tx,
                "SELECT body FROM api_keys WHERE id = $1::TEXT",
                Some(id),
            )?
            .into_iter()
            .next())
        })
    }

    fn update_key(
        &self,
        id: &str,
        change: &dyn Fn(&mut ApiKey),
    ) -> Result<Option<ApiKey>, StoreError> {
        self.tx(|tx| {
            let Some(mut key) = bodies::<ApiKey>(
                tx,
                "SELECT body FROM api_keys WHERE id = $1::TEXT FOR UPDATE",
                Some(id),
            )?
            .into_iter()
            .next() else {
                return Ok(None);
            };
            let (id, hash, team) = (key.id.clone(), key.hash.clone(), key.team.clone());
            change(&mut key);
            (key.id, key.hash, key.team) = (id, hash, team);
            tx.execute(
                "UPDATE api_keys SET body = $2 WHERE id = $1",
                &[&key.id, &to_json(&key)?],
            )
            .map_err(pg)?;
            Ok(Some(key))
        })
    }
}
