//! Rate counters, events and the journal over SQLite (escalations, tickets and the directory
//! are the shared record layer's, `crate::records`).

use super::*;

// ---------- rate-limit counters ----------

/// Adds `?4` to a counter's window, creating it if needed.
const ADD_USED: &str = "INSERT INTO rate_counters (counter, window_start, window_end, used)
    VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (counter, window_start) DO UPDATE SET used = used + excluded.used";

pub(super) fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl RateCounters for SqliteStore {
    /// One `BEGIN IMMEDIATE` transaction: read the counters, decide with the core's rule, add.
    fn take(&self, hits: &[Hit]) -> Result<Taken, StoreError> {
        self.tx(|tx| {
            let mut used = Vec::with_capacity(hits.len());
            {
                let mut read = tx
                    .prepare_cached(
                        "SELECT used FROM rate_counters WHERE counter = ?1 AND window_start = ?2",
                    )
                    .map_err(unavailable)?;
                for h in hits {
                    let v: Option<i64> = read
                        .query_row(params![h.counter, h.window_start], |r| r.get(0))
                        .optional()
                        .map_err(unavailable)?;
                    used.push(v.map_or(0, |v| u64::try_from(v).unwrap_or(0)));
                }
            }
            let admitted = admits(hits, &used);
            if admitted {
                let mut add = tx.prepare_cached(ADD_USED).map_err(unavailable)?;
                for h in hits {
                    add.execute(params![
                        h.counter,
                        h.window_start,
                        h.window_end,
                        signed(h.amount)
                    ])
                    .map_err(unavailable)?;
                }
            }
            Ok::<_, StoreError>(Taken { admitted, used })
        })
    }

    fn adjust(&self, corrections: &[Correction]) -> Result<(), StoreError> {
        self.tx(|tx| {
            let mut add = tx.prepare_cached(ADD_USED).map_err(unavailable)?;
            let mut sub = tx
                .prepare_cached(
                    "UPDATE rate_counters SET used = max(used - ?3, 0)
                     WHERE counter = ?1 AND window_start = ?2",
                )
                .map_err(unavailable)?;
            for c in corrections {
                if c.delta > 0 {
                    add.execute(params![c.counter, c.window_start, c.window_end, c.delta])
                        .map_err(unavailable)?;
                } else {
                    let d = c.delta.checked_neg().unwrap_or(i64::MAX);
                    sub.execute(params![c.counter, c.window_start, d])
                        .map_err(unavailable)?;
                }
            }
            Ok::<_, StoreError>(())
        })
    }

    fn prune_windows(&self, now: Millis) -> Result<usize, StoreError> {
        self.tx(|tx| {
            tx.execute(
                "DELETE FROM rate_counters WHERE window_end <= ?1",
                params![now],
            )
            .map_err(unavailable)
        })
    }
}

// ---------- events ----------

impl SqliteStore {
    /// A dashboard's tally query (`EventStore::tally`), in SQLite's dialect.
    pub(super) fn tallies(
        &self,
        org: &str,
        q: &TallyQuery,
    ) -> Result<Vec<(TallyKey, Tally)>, StoreError> {
        let (sql, args) = tallies::query(org, q, &SQLITE);
        let args: Vec<rusqlite::types::Value> = args
            .into_iter()
            .map(|a| match a {
                Arg::Text(s) => s.into(),
                Arg::Int(i) => i.into(),
            })
            .collect();
        let rows = self.tx(|tx| {
            let mut stmt = tx.prepare_cached(&sql).map_err(unavailable)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    Ok(tallies::Row {
                        day: r.get(0)?,
                        user: r.get(1)?,
                        model: r.get(2)?,
                        requests: r.get(3)?,
                        denied: r.get(4)?,
                        policy_events: r.get(5)?,
                        cost: r.get(6)?,
                        prompt_tokens: r.get(7)?,
                        completion_tokens: r.get(8)?,
                    })
                })
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })?;
        tallies::collect(rows)
    }
}
