//! Rate counters, events and the journal over SQLite (escalations, tickets and the directory
//! are the shared record layer's, `crate::records`).

use super::*;

// ---------- rate-limit counters ----------

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
                let mut add = tx
                    .prepare_cached(
                        "INSERT INTO rate_counters (counter, window_start, window_end, used)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (counter, window_start) DO UPDATE SET used = used + excluded.used",
                    )
                    .map_err(unavailable)?;
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
            let mut add = tx
                .prepare_cached(
                    "INSERT INTO rate_counters (counter, window_start, window_end, used)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (counter, window_start) DO UPDATE SET used = used + excluded.used",
                )
                .map_err(unavailable)?;
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

impl EventStore for SqliteStore {
    fn append(&self, draft: EventDraft) -> Result<Event, StoreError> {
        match self.submit(Op::Append(draft))? {
            Done::Append(e) => Ok(e),
            other => Err(batch::mismatch(&other)),
        }
    }

    fn list(&self, org: &str) -> Result<Vec<Event>, StoreError> {
        self.tx(|tx| load_events(tx, org))
    }

    fn anchor(&self, org: &str) -> Result<Option<Anchor>, StoreError> {
        self.tx(|tx| load_anchor(tx, org))
    }

    fn query(&self, org: &str, q: &EventQuery) -> Result<Vec<Event>, StoreError> {
        // only the conditions a query has, so the planner can use the (org, team, usr, seq) and
        // (org, team, timestamp) indexes
        let mut sql = String::from("SELECT body FROM events WHERE org = ?");
        let mut args: Vec<rusqlite::types::Value> = vec![org.to_owned().into()];
        let mut cond = |c: &str, v: rusqlite::types::Value| {
            sql.push_str(" AND ");
            sql.push_str(c);
            args.push(v);
        };
        if let Some(t) = &q.team {
            cond("team = ?", t.clone().into());
        }
        if let Some(u) = &q.user {
            cond("usr = ?", u.clone().into());
        }
        if let Some(v) = q.verdict {
            cond("verdict = ?", v.as_str().to_owned().into());
        }
        if let Some(f) = q.from {
            cond("timestamp >= ?", f.into());
        }
        if let Some(t) = q.to {
            cond("timestamp < ?", t.into());
        }
        if let Some(b) = q.before {
            cond("seq < ?", i64::try_from(b).map_err(corrupt)?.into());
        }
        if q.escalated {
            sql.push_str(" AND escalation IS NOT NULL");
        }
        sql.push_str(" ORDER BY seq DESC");
        if let Some(n) = q.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        self.tx(|tx| {
            let mut stmt = tx.prepare_cached(&sql).map_err(unavailable)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    r.get::<_, String>(0)
                })
                .map_err(unavailable)?;
            let mut out: Vec<Event> = rows
                .map(|b| from_json(&b.map_err(unavailable)?))
                .collect::<Result<_, StoreError>>()?;
            out.reverse();
            Ok(out)
        })
    }

    fn tally(&self, org: &str, q: &TallyQuery) -> Result<Vec<(TallyKey, Tally)>, StoreError> {
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

    fn snapshot(&self, org: &str) -> Result<Chain, StoreError> {
        // one transaction: an append or a prune cannot fall between the reads
        self.tx(|tx| {
            Ok(Chain {
                events: load_events(tx, org)?,
                anchor: load_anchor(tx, org)?,
                head: SqliteSql(tx)
                    .load_head(org)?
                    .map(|(seq, hash)| Head { seq, hash }),
            })
        })
    }

    fn tail(&self, org: &str, n: usize) -> Result<Chain, StoreError> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.tx(|tx| {
            let mut stmt = tx
                .prepare_cached("SELECT body FROM events WHERE org = ?1 ORDER BY seq DESC LIMIT ?2")
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![org, n], |r| r.get::<_, String>(0))
                .map_err(unavailable)?;
            let mut events: Vec<Event> = rows
                .map(|b| from_json(&b.map_err(unavailable)?))
                .collect::<Result<_, StoreError>>()?;
            events.reverse();
            let head = SqliteSql(tx)
                .load_head(org)?
                .map(|(seq, hash)| Head { seq, hash });
            Ok(Chain::tail(events, load_anchor(tx, org)?, head))
        })
    }

    fn prune(&self, org: &str, now: Millis, default_days: u32) -> Result<usize, StoreError> {
        self.tx(|tx| {
            let events = load_events(tx, org)?;
            let plan = prune_plan(&events, now, default_days);
            add_tallies(tx, &tallies::deltas(plan.removed(&events), -1)?)?;
            for t in &plan.tombstones {
                let seq = i64::try_from(t.seq).map_err(corrupt)?;
                tx.prepare_cached(
                    "UPDATE events SET body = ?3, team = NULL, usr = NULL, requests = 0, denied = 0,
                         policy_events = 0, cost = '0', prompt_tokens = 0, completion_tokens = 0,
                         model = NULL, escalation = NULL
                     WHERE org = ?1 AND seq = ?2",
                )
                    .map_err(unavailable)?
                    .execute(params![org, seq, to_json(t)?])
                    .map_err(unavailable)?;
            }
            if let Some(anchor) = &plan.cut {
                let cut = i64::try_from(anchor.seq).map_err(corrupt)?;
                tx.prepare_cached("DELETE FROM events WHERE org = ?1 AND seq < ?2")
                    .map_err(unavailable)?
                    .execute(params![org, cut])
                    .map_err(unavailable)?;
                tx.prepare_cached(
                    "INSERT INTO event_anchors (org, seq, prev_hash) VALUES (?1, ?2, ?3)
                     ON CONFLICT (org) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash",
                )
                .map_err(unavailable)?
                .execute(params![org, cut, &anchor.prev_hash])
                .map_err(unavailable)?;
            }
            Ok(plan.len())
        })
    }
}

pub(super) fn load_events(tx: &Transaction<'_>, org: &str) -> Result<Vec<Event>, StoreError> {
    let mut stmt = tx
        .prepare_cached("SELECT body FROM events WHERE org = ?1 ORDER BY seq")
        .map_err(unavailable)?;
    let rows = stmt
        .query_map(params![org], |r| r.get::<_, String>(0))
        .map_err(unavailable)?;
    rows.map(|b| from_json(&b.map_err(unavailable)?)).collect()
}

pub(super) fn load_anchor(tx: &Transaction<'_>, org: &str) -> Result<Option<Anchor>, StoreError> {
    tx.prepare_cached("SELECT seq, prev_hash FROM event_anchors WHERE org = ?1")
        .map_err(unavailable)?
        .query_row(params![org], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .optional()
        .map_err(unavailable)?
        .map(|(s, h)| {
            Ok(Anchor {
                seq: u64::try_from(s).map_err(corrupt)?,
                prev_hash: h,
            })
        })
        .transpose()
}

impl Journal for SqliteStore {
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
