//! SQLite implementation.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use keeptrusts_core::event::tally::{Tally, TallyKey, TallyQuery};
use keeptrusts_core::event::Event;
use keeptrusts_core::ratelimit::{admits, Correction, Hit, RateCounters, Taken};
use keeptrusts_core::time::Millis;
use keeptrusts_core::StoreError;
use rusqlite::{params, Connection, OptionalExtension, ToSql, Transaction, TransactionBehavior};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::batch::{self, BatchRows, Changes, Combiner, Done, Op};
use crate::ledger::Rows;
use crate::records::{Bind, Sql};
use crate::tallies::{self, Arg, Columns, Delta, Dialect};

mod events;

/// The columns of what a day tally adds up (`tallies` and `team_tallies`).
macro_rules! tally_figures {
    () => {
        "    requests INTEGER NOT NULL,
    denied INTEGER NOT NULL,
    policy_events INTEGER NOT NULL,
    cost TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
"
    };
}

/// Migrations, applied in order on open; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE wallets (
    scope TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (scope, id)
);
CREATE TABLE leases (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX leases_active ON leases (status, expires_at);
CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    team TEXT,
    created_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE escalations (
    id TEXT PRIMARY KEY,
    team TEXT,
    created_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE events (
    org TEXT NOT NULL,
    seq INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (org, seq)
);
CREATE TABLE event_heads (
    org TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE event_anchors (
    org TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    prev_hash TEXT NOT NULL
);
",
    r"
CREATE TABLE teams (slug TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE members (team TEXT NOT NULL, user TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (team, user));
CREATE TABLE api_keys (hash TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, team TEXT NOT NULL, created_at INTEGER NOT NULL, body TEXT NOT NULL);
",
    // events are read by team, user and verdict in SQL (dashboards, pages of events)
    r"
ALTER TABLE events ADD COLUMN team TEXT;
ALTER TABLE events ADD COLUMN usr TEXT;
ALTER TABLE events ADD COLUMN verdict TEXT;
UPDATE events SET team = json_extract(body, '$.team'), usr = json_extract(body, '$.user'),
    verdict = json_extract(body, '$.verdict');
CREATE INDEX events_team ON events (org, team, seq);
CREATE INDEX events_team_user ON events (org, team, usr, seq);
",
    // dashboards over a time range
    r"
CREATE INDEX events_team_time ON events (org, team, timestamp);
",
    // dashboards from day tallies (filled from the existing events on upgrade, see `backfill`),
    // and escalations without reading every event
    concat!(
        r"
ALTER TABLE events ADD COLUMN requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN denied INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN policy_events INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN cost TEXT NOT NULL DEFAULT '0';
ALTER TABLE events ADD COLUMN prompt_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN completion_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN model TEXT;
ALTER TABLE events ADD COLUMN escalation TEXT;
CREATE INDEX events_time ON events (org, timestamp);
CREATE INDEX events_escalated ON events (org, team, seq) WHERE escalation IS NOT NULL;
CREATE TABLE tallies (
    org TEXT NOT NULL,
    team TEXT NOT NULL,
    day INTEGER NOT NULL,
    usr TEXT NOT NULL,
    model TEXT NOT NULL,
",
        tally_figures!(),
        r"    PRIMARY KEY (org, team, day, usr, model)
) WITHOUT ROWID;
CREATE INDEX tallies_user ON tallies (org, team, usr, day);
CREATE INDEX tallies_day ON tallies (org, day);
"
    ),
    // the same tallies without the user: what overviews and spend by day and model read
    concat!(
        r"
CREATE TABLE team_tallies (
    org TEXT NOT NULL,
    team TEXT NOT NULL,
    day INTEGER NOT NULL,
    model TEXT NOT NULL,
",
        tally_figures!(),
        r"    PRIMARY KEY (org, team, day, model)
) WITHOUT ROWID;
CREATE INDEX team_tallies_day ON team_tallies (org, day);
INSERT INTO team_tallies SELECT org, team, day, model, sum(requests), sum(denied),
    sum(policy_events), kt_decimal_sum(cost), sum(prompt_tokens), sum(completion_tokens)
    FROM tallies GROUP BY org, team, day, model;
"
    ),
    // rate-limit counters: one row per counter and fixed window
    r"
CREATE TABLE rate_counters (
    counter TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (counter, window_start)
);
CREATE INDEX rate_counters_end ON rate_counters (window_end);
",
];

/// The migration that added the tallies; a database upgraded across it is backfilled.
const TALLIES: usize = 5;

/// A SQLite database holding wallets, leases, tickets, escalations and events.
///
/// Cheap to clone; clones share one connection, which serializes this process's writers (SQLite
/// allows one writer at a time anyway). Other processes may open the same file: writers wait up to
/// the busy timeout, then fail with `StoreError::Unavailable`, never hang.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    combiner: Arc<Combiner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(corrupt)
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(corrupt)
}

impl SqliteStore {
    /// Opens (creating if needed) a database file, switches it to WAL and applies migrations.
    ///
    /// # Errors
    /// `Unavailable` if the file cannot be opened; `Corrupt` if it holds a newer schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(unavailable)?;
        Self::init(conn, true)
    }

    /// An in-memory database (tests).
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(unavailable)?, false)
    }

    fn init(mut conn: Connection, wal: bool) -> Result<Self, StoreError> {
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(unavailable)?;
        if wal {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(unavailable)?;
            // checkpoint every 4,000 pages (16 MiB of log) instead of SQLite's 1,000: the hot
            // pages (wallets, chain heads, tallies, index interiors) are copied back a quarter as
            // often (docs/PERFORMANCE.md, issue 25)
            conn.pragma_update(None, "wal_autocheckpoint", 4000)
                .map_err(unavailable)?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(unavailable)?;
        register_decimals(&conn)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let version: usize = tx
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map_err(unavailable)
            .map(|v| usize::try_from(v).unwrap_or(0))?;
        if version > MIGRATIONS.len() {
            return Err(corrupt(format!(
                "the database schema is version {version}, newer than this build's {}",
                MIGRATIONS.len()
            )));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(m).map_err(unavailable)?;
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(i + 1).unwrap_or(i64::MAX),
            )
            .map_err(unavailable)?;
        }
        if version > 0 && version < TALLIES {
            backfill(&tx)?;
        }
        tx.commit().map_err(unavailable)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            combiner: Arc::default(),
        })
    }

    /// The ids of every process's active floats (see `write_behind`).
    pub(crate) fn active_floats(&self) -> Result<Vec<String>, StoreError> {
        self.tx(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id FROM leases WHERE status = 'active' AND substr(id, 1, 4) = 'flt_'",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(unavailable)?;
            rows.collect::<Result<_, _>>().map_err(unavailable)
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| unavailable("connection lock poisoned"))
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction; commits on `Ok`, rolls back on `Err`.
    fn tx<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let out = f(&tx)?;
        tx.commit().map_err(unavailable)?;
        Ok(out)
    }

    /// Runs `f` over one transaction as the shared record layer sees it ([`crate::records`]).
    fn records<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, E>,
    ) -> Result<T, E> {
        self.tx(|tx| f(&mut SqliteSql(tx)))
    }

    /// Queues a request-path operation; concurrent ones share one transaction.
    fn submit(&self, op: Op) -> Result<Done, StoreError> {
        self.combiner.submit(op, |ops| self.run_batch(ops))
    }

    /// Applies `ops` in order in one transaction (all or nothing).
    pub(crate) fn run_batch(&self, ops: &[Op]) -> Result<Vec<Done>, StoreError> {
        self.tx(|tx| batch::apply(&mut SqliteSql(tx), ops))
    }
}

crate::records::record_stores!(SqliteStore);
crate::records::wallets::wallet_store!(SqliteStore);
crate::records::events::event_store!(SqliteStore);

/// One transaction in SQLite's dialect for the shared record layer.
struct SqliteSql<'a, 'c>(&'a Transaction<'c>);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            Bind::Text(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Bind::Text(None) => ToSqlOutput::Owned(Value::Null),
            Bind::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
        })
    }
}

impl Sql for SqliteSql<'_, '_> {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn execute(
        &mut self,
        sql: &str,
        args: &[Bind<'_>],
        conflict: &dyn Fn() -> String,
    ) -> Result<u64, StoreError> {
        let n = self
            .0
            .prepare_cached(sql)
            .map_err(unavailable)?
            .execute(rusqlite::params_from_iter(args))
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    StoreError::Conflict(conflict())
                }
                e => unavailable(e),
            })?;
        Ok(n as u64)
    }

    fn bodies(&mut self, sql: &str, args: &[Bind<'_>]) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.0.prepare_cached(sql).map_err(unavailable)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))
            .map_err(unavailable)?;
        rows.collect::<Result<_, _>>().map_err(unavailable)
    }

    fn for_update(&self) -> &'static str {
        ""
    }

    fn member_user(&self) -> &'static str {
        "user"
    }

    fn lock_name(&mut self, _name: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn as_dyn(&mut self) -> &mut dyn Sql {
        self
    }

    fn seq_rows(&mut self, sql: &str, args: &[Bind<'_>]) -> Result<Vec<(i64, String)>, StoreError> {
        let mut stmt = self.0.prepare_cached(sql).map_err(unavailable)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(unavailable)?;
        rows.collect::<Result<_, _>>().map_err(unavailable)
    }

    fn read_snapshot(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn add_tallies(&mut self, deltas: &[Delta]) -> Result<(), StoreError> {
        add_tallies(self.0, deltas)
    }
}

impl BatchRows for SqliteSql<'_, '_> {
    fn load_head(&mut self, org: &str) -> Result<Option<(u64, String)>, StoreError> {
        let head: Option<(i64, String)> = self
            .0
            .prepare_cached("SELECT seq, hash FROM event_heads WHERE org = ?1")
            .map_err(unavailable)?
            .query_row(params![org], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(unavailable)?;
        head.map(|(s, h)| Ok((u64::try_from(s).map_err(corrupt)?, h)))
            .transpose()
    }

    fn save(&mut self, changes: &Changes<'_>) -> Result<(), StoreError> {
        for w in &changes.wallets {
            self.save_wallet(w)?;
        }
        for l in &changes.leases {
            self.save_lease(l)?;
        }
        for e in changes.events {
            insert_event(self.0, e)?;
        }
        add_tallies(self.0, &tallies::deltas(changes.events, 1)?)?;
        let mut head = self
            .0
            .prepare_cached(
                "INSERT INTO event_heads (org, seq, hash) VALUES (?1, ?2, ?3)
                 ON CONFLICT (org) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            )
            .map_err(unavailable)?;
        for (org, seq, hash) in &changes.heads {
            let seq = i64::try_from(*seq).map_err(corrupt)?;
            head.execute(params![org, seq, hash]).map_err(unavailable)?;
        }
        Ok(())
    }
}

const INSERT_EVENT: &str = "INSERT INTO events (org, seq, timestamp, body, team, usr, verdict,
    requests, denied, policy_events, cost, prompt_tokens, completion_tokens, model, escalation)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

fn insert_event(tx: &Transaction<'_>, e: &Event) -> Result<(), StoreError> {
    let seq = i64::try_from(e.seq).map_err(corrupt)?;
    let b = &e.body;
    let c = Columns::of(e)?;
    let body = to_json(e)?;
    let verdict = b.verdict.as_str();
    let row: [&dyn ToSql; 7] = [
        &b.org,
        &seq,
        &b.timestamp,
        &body,
        &b.team,
        &b.user,
        &verdict,
    ];
    let values = row.into_iter().chain(figures(&c));
    tx.prepare_cached(INSERT_EVENT)
        .map_err(unavailable)?
        .execute(rusqlite::params_from_iter(values))
        .map_err(unavailable)?;
    Ok(())
}

/// An event's tally columns as bound values, in the order of the `events` table.
fn figures(c: &Columns) -> [&dyn ToSql; 8] {
    [
        &c.requests,
        &c.denied,
        &c.policy_events,
        &c.cost,
        &c.prompt_tokens,
        &c.completion_tokens,
        &c.model,
        &c.escalation,
    ]
}

/// Adds `deltas` to the day tallies, per user and per team (exact decimal sums); after a prune's
/// negative deltas, drops the rows that fell to nothing.
fn add_tallies(tx: &Transaction<'_>, deltas: &[Delta]) -> Result<(), StoreError> {
    if deltas.is_empty() {
        return Ok(());
    }
    upsert_tallies(tx, "tallies", "usr, ", deltas)?;
    upsert_tallies(tx, "team_tallies", "", &tallies::per_team(deltas))?;
    // a prune subtracts: drop the rows it emptied (appends only add, and skip the scan)
    if deltas.iter().any(|d| d.requests < 0) {
        tx.execute_batch(
            "DELETE FROM tallies WHERE requests <= 0; DELETE FROM team_tallies WHERE requests <= 0;",
        )
        .map_err(unavailable)?;
    }
    Ok(())
}

/// Adds `rows` to `table`, keyed by org, team, day, (`user`: the user column, or nothing) and
/// model.
fn upsert_tallies(
    tx: &Transaction<'_>,
    table: &str,
    user: &str,
    rows: &[Delta],
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO {table} (org, team, day, {user}model, requests, denied, policy_events, cost,
             prompt_tokens, completion_tokens)
         VALUES (:org, :team, :day, {}:model, :requests, :denied, :policy, :cost, :prompt,
             :completion)
         ON CONFLICT (org, team, day, {user}model) DO UPDATE SET
             requests = requests + excluded.requests,
             denied = denied + excluded.denied,
             policy_events = policy_events + excluded.policy_events,
             cost = kt_decimal_add(cost, excluded.cost),
             prompt_tokens = prompt_tokens + excluded.prompt_tokens,
             completion_tokens = completion_tokens + excluded.completion_tokens",
        if user.is_empty() { "" } else { ":usr, " }
    );
    let mut upsert = tx.prepare_cached(&sql).map_err(unavailable)?;
    for d in rows {
        let cost = d.cost.to_string();
        let mut args: Vec<(&str, &dyn rusqlite::ToSql)> = vec![
            (":org", &d.org),
            (":team", &d.team),
            (":day", &d.day),
            (":model", &d.model),
            (":requests", &d.requests),
            (":denied", &d.denied),
            (":policy", &d.policy_events),
            (":cost", &cost),
            (":prompt", &d.prompt_tokens),
            (":completion", &d.completion_tokens),
        ];
        if !user.is_empty() {
            args.push((":usr", &d.user));
        }
        upsert.execute(args.as_slice()).map_err(unavailable)?;
    }
    Ok(())
}

/// Fills the tally columns and the day tallies from the events stored before they existed, a
/// chunk of events at a time (an upgraded database may hold millions).
fn backfill(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let mut after = (String::new(), -1_i64);
    loop {
        let events: Vec<Event> = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT body FROM events WHERE (org, seq) > (?1, ?2) ORDER BY org, seq
                     LIMIT 10000",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![after.0, after.1], |r| r.get::<_, String>(0))
                .map_err(unavailable)?;
            rows.map(|b| from_json(&b.map_err(unavailable)?))
                .collect::<Result<_, StoreError>>()?
        };
        let Some(last) = events.last() else {
            return Ok(());
        };
        after = (
            last.body.org.clone(),
            i64::try_from(last.seq).map_err(corrupt)?,
        );
        let mut update = tx
            .prepare_cached(
                "UPDATE events SET requests = ?3, denied = ?4, policy_events = ?5, cost = ?6,
                     prompt_tokens = ?7, completion_tokens = ?8, model = ?9, escalation = ?10
                 WHERE org = ?1 AND seq = ?2",
            )
            .map_err(unavailable)?;
        for e in &events {
            let c = Columns::of(e)?;
            let seq = i64::try_from(e.seq).map_err(corrupt)?;
            let key: [&dyn ToSql; 2] = [&e.body.org, &seq];
            let values = key.into_iter().chain(figures(&c));
            update
                .execute(rusqlite::params_from_iter(values))
                .map_err(unavailable)?;
        }
        add_tallies(tx, &tallies::deltas(&events, 1)?)?;
    }
}

fn decimal_arg(ctx: &rusqlite::functions::Context<'_>, i: usize) -> rusqlite::Result<Decimal> {
    let s: String = ctx.get(i)?;
    s.parse::<Decimal>()
        .map_err(|e| rusqlite::Error::UserFunctionError(format!("not a decimal `{s}`: {e}").into()))
}

/// Exact decimal arithmetic for the tallies: `kt_decimal_add(a, b)` and the aggregate
/// `kt_decimal_sum(x)`, over decimal text (SQLite has no decimal type; its `sum` would round).
struct DecimalSum;

impl rusqlite::functions::Aggregate<Decimal, String> for DecimalSum {
    fn init(&self, _: &mut rusqlite::functions::Context<'_>) -> rusqlite::Result<Decimal> {
        Ok(Decimal::ZERO)
    }

    fn step(
        &self,
        ctx: &mut rusqlite::functions::Context<'_>,
        acc: &mut Decimal,
    ) -> rusqlite::Result<()> {
        let x = decimal_arg(ctx, 0)?;
        *acc = acc
            .checked_add(x)
            .ok_or_else(|| rusqlite::Error::UserFunctionError("a cost sum overflows".into()))?;
        Ok(())
    }

    fn finalize(
        &self,
        _: &mut rusqlite::functions::Context<'_>,
        acc: Option<Decimal>,
    ) -> rusqlite::Result<String> {
        Ok(acc.unwrap_or(Decimal::ZERO).to_string())
    }
}

fn register_decimals(conn: &Connection) -> Result<(), StoreError> {
    use rusqlite::functions::FunctionFlags;
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("kt_decimal_add", 2, flags, |ctx| {
        let (a, b) = (decimal_arg(ctx, 0)?, decimal_arg(ctx, 1)?);
        a.checked_add(b)
            .map(|s| s.to_string())
            .ok_or_else(|| rusqlite::Error::UserFunctionError("a cost sum overflows".into()))
    })
    .map_err(unavailable)?;
    conn.create_aggregate_function("kt_decimal_sum", 1, flags, DecimalSum)
        .map_err(unavailable)
}

const SQLITE: Dialect = Dialect {
    placeholder: |_, _| "?".to_owned(),
    cost_sum: "kt_decimal_sum(cost)",
};

/// The store cannot answer now (the request fails closed): `sqlite: ` and the cause.
fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

/// What the store holds cannot be read back: `sqlite: ` and the cause.
fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("sqlite: {e}"))
}
