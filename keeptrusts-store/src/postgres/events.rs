//! Rate counters, events and the journal over PostgreSQL (escalations, tickets and the
//! directory are the shared record layer's, `crate::records`).

use super::*;

// ---------- rate-limit counters ----------

pub(super) fn prepared_statement(
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

pub(super) fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The order rows are locked in: by counter, then window (no lock-order deadlocks between
/// gateways).
pub(super) fn lock_order<T>(items: &[T], key: impl Fn(&T) -> (&str, Millis)) -> Vec<usize> {
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

impl PgStore {
    /// A dashboard's tally query (`EventStore::tally`), in PostgreSQL's dialect.
    pub(super) fn tallies(
        &self,
        org: &str,
        q: &TallyQuery,
    ) -> Result<Vec<(TallyKey, Tally)>, StoreError> {
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
}
