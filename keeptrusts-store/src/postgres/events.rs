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

pub(super) fn pg_events(tx: &mut Transaction<'_>, org: &str) -> Result<Vec<Event>, StoreError> {
    tx.query(
        "SELECT body FROM events WHERE org = $1 ORDER BY seq",
        &[&org],
    )
    .map_err(pg)?
    .iter()
    .map(|r| from_json(r.get::<_, &str>(0)))
    .collect()
}

pub(super) fn pg_anchor(tx: &mut Transaction<'_>, org: &str) -> Result<Option<Anchor>, StoreError> {
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
