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

use keeptrusts_core::event::tally::{Tally, TallyKey, TallyQuery};
use keeptrusts_core::event::Event;
use keeptrusts_core::ratelimit::{admits, Correction, Hit, RateCounters, Taken};
use keeptrusts_core::time::Millis;
use keeptrusts_core::wallet::{Lease, Wallet, WalletError, WalletKey};
use keeptrusts_core::StoreError;
use postgres::{Client, Config, NoTls, Statement, Transaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::batch::{self, BatchRows, Changes, Combiner, Done, Op};
use crate::records::{Bind, Sql};
use crate::tallies::{self, Arg, Columns, Delta, Dialect};

mod day_counts;
mod events;

use day_counts::*;

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

    /// Runs `f` over one transaction as the shared record layer sees it ([`crate::records`]),
    /// again if the database asks for a retry.
    fn records<T, E: From<StoreError> + Retryable>(
        &self,
        mut f: impl FnMut(&mut dyn Sql) -> Result<T, E>,
    ) -> Result<T, E> {
        self.tx_prepared(|tx, prepared| f(&mut PgSql { tx, prepared }))
    }

    /// Applies `ops` in order in one transaction (all or nothing).
    pub(crate) fn run_batch(&self, ops: &[Op]) -> Result<Vec<Done>, StoreError> {
        self.tx_prepared(|tx, prepared| batch::apply(&mut PgSql { tx, prepared }, ops))
    }
}

crate::records::record_stores!(PgStore);
crate::records::wallets::wallet_store!(PgStore);
crate::records::events::event_store!(PgStore);

/// One transaction in PostgreSQL's dialect for the shared record layer (placeholders `?n`
/// become `$n`) and for the batch path (bulk statements, prepared once per connection).
struct PgSql<'a, 'c> {
    tx: &'a mut Transaction<'c>,
    prepared: &'a mut HashMap<&'static str, Statement>,
}

fn binds<'b>(args: &'b [Bind<'_>]) -> Vec<&'b (dyn postgres::types::ToSql + Sync)> {
    args.iter()
        .map(|a| match a {
            Bind::Text(s) => s as &(dyn postgres::types::ToSql + Sync),
            Bind::Int(i) => i as &(dyn postgres::types::ToSql + Sync),
        })
        .collect()
}

impl Sql for PgSql<'_, '_> {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn execute(
        &mut self,
        sql: &str,
        args: &[Bind<'_>],
        conflict: &dyn Fn() -> String,
    ) -> Result<u64, StoreError> {
        self.tx
            .execute(&sql.replace('?', "$"), &binds(args))
            .map_err(|e| {
                if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
                    StoreError::Conflict(conflict())
                } else {
                    pg(e)
                }
            })
    }

    fn bodies(&mut self, sql: &str, args: &[Bind<'_>]) -> Result<Vec<String>, StoreError> {
        self.tx
            .query(&sql.replace('?', "$"), &binds(args))
            .map_err(pg)?
            .iter()
            .map(|r| r.try_get::<_, String>(0).map_err(corrupt))
            .collect()
    }

    fn for_update(&self) -> &'static str {
        " FOR UPDATE"
    }

    fn member_user(&self) -> &'static str {
        "usr"
    }

    fn lock_name(&mut self, name: &str) -> Result<(), StoreError> {
        lock_name(self.tx, name)
    }

    fn as_dyn(&mut self) -> &mut dyn Sql {
        self
    }

    fn seq_rows(&mut self, sql: &str, args: &[Bind<'_>]) -> Result<Vec<(i64, String)>, StoreError> {
        self.tx
            .query(&sql.replace('?', "$"), &binds(args))
            .map_err(pg)?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(corrupt)?,
                    r.try_get(1).map_err(corrupt)?,
                ))
            })
            .collect()
    }

    fn read_snapshot(&mut self) -> Result<(), StoreError> {
        self.tx
            .batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .map_err(pg)
    }

    fn add_tallies(&mut self, deltas: &[Delta]) -> Result<(), StoreError> {
        remove_tallies(self.tx, deltas)
    }
}

impl PgSql<'_, '_> {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql).map_err(pg)?;
        self.prepared.insert(sql, s.clone());
        Ok(s)
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

const POSTGRES: Dialect = Dialect {
    placeholder: |n, int| format!("${n}::{}", if int { "BIGINT" } else { "TEXT" }),
    cost_sum: "sum(cost)::TEXT",
};

fn seq_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(corrupt)
}

impl BatchRows for PgSql<'_, '_> {
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

    fn save(&mut self, changes: &Changes<'_>) -> Result<(), StoreError> {
        let Changes {
            wallets,
            leases,
            events,
            heads,
        } = changes;
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
        let deltas = tallies::deltas(*events, 1)?;
        if !deltas.is_empty() {
            let st = self.statement(ADD_TALLIES)?;
            add_tallies(self.tx, &st, &deltas)?;
        }
        Ok(())
    }
}

/// The store cannot answer now (the request fails closed): `postgres: ` and the cause.
fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("postgres: {e}"))
}

/// What the store holds cannot be read back: `postgres: ` and the cause.
fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("postgres: {e}"))
}
