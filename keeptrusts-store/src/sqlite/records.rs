//! The record stores over SQLite: escalations, rate counters, tickets, events, the journal and the directory, with the row helpers they share.

use super::*;

pub(super) fn insert_row<T: Serialize>(
    tx: &Transaction<'_>,
    table: &str,
    id: &str,
    team: Option<&str>,
    created_at: Millis,
    row: &T,
) -> Result<(), StoreError> {
    let n = tx
        .prepare_cached(&format!(
            "INSERT INTO {table} (id, team, created_at, body) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING"
        ))
        .map_err(unavailable)?
        .execute(params![id, team, created_at, to_json(row)?])
        .map_err(unavailable)?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("{table} row `{id}` exists")));
    }
    Ok(())
}

pub(super) fn get_row<T: DeserializeOwned>(
    tx: &Transaction<'_>,
    table: &str,
    id: &str,
) -> Result<Option<T>, StoreError> {
    tx.prepare_cached(&format!("SELECT body FROM {table} WHERE id = ?1"))
        .map_err(unavailable)?
        .query_row(params![id], |r| r.get::<_, String>(0))
        .optional()
        .map_err(unavailable)?
        .map(|b| from_json(&b))
        .transpose()
}

pub(super) fn update_row<T: Serialize>(
    tx: &Transaction<'_>,
    table: &str,
    id: &str,
    row: &T,
) -> Result<(), StoreError> {
    tx.prepare_cached(&format!("UPDATE {table} SET body = ?2 WHERE id = ?1"))
        .map_err(unavailable)?
        .execute(params![id, to_json(row)?])
        .map_err(unavailable)?;
    Ok(())
}

/// Loads row `id` (locked where the database can), applies `f` — which returns its result and
/// whether the row changed — and saves the row if it did. `None` when there is no such row.
pub(super) fn modify_row<T: Serialize + DeserializeOwned, R>(
    tx: &Transaction<'_>,
    table: &str,
    id: &str,
    f: impl FnOnce(&mut T) -> (R, bool),
) -> Result<Option<R>, StoreError> {
    let Some(mut row) = get_row::<T>(tx, table, id)? else {
        return Ok(None);
    };
    let (out, changed) = f(&mut row);
    if changed {
        update_row(tx, table, id, &row)?;
    }
    Ok(Some(out))
}

pub(super) fn list_rows<T: DeserializeOwned>(
    tx: &Transaction<'_>,
    table: &str,
    team: Option<&str>,
) -> Result<Vec<T>, StoreError> {
    let sql = format!(
        "SELECT body FROM {table} WHERE (?1 IS NULL OR team = ?1) ORDER BY created_at DESC, id ASC"
    );
    let mut stmt = tx.prepare_cached(&sql).map_err(unavailable)?;
    let rows = stmt
        .query_map(params![team], |r| r.get::<_, String>(0))
        .map_err(unavailable)?;
    rows.map(|b| from_json(&b.map_err(unavailable)?)).collect()
}

impl EscalationStore for SqliteStore {
    fn insert(&self, e: &Escalation) -> Result<(), StoreError> {
        self.tx(|tx| insert_row(tx, "escalations", &e.id, e.team.as_deref(), e.created_at, e))
    }

    fn get(&self, id: &str) -> Result<Option<Escalation>, StoreError> {
        self.tx(|tx| get_row(tx, "escalations", id))
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

impl TicketStore for SqliteStore {
    fn insert(&self, t: &Ticket) -> Result<(), StoreError> {
        self.tx(|tx| insert_row(tx, "tickets", &t.id, t.team.as_deref(), t.created_at, t))
    }

    fn get(&self, id: &str) -> Result<Option<Ticket>, StoreError> {
        self.tx(|tx| get_row(tx, "tickets", id))
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
                head: SqliteRows(tx)
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
            let head = SqliteRows(tx)
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

pub(super) fn query_bodies<T: DeserializeOwned>(
    tx: &Transaction<'_>,
    sql: &str,
    arg: Option<&str>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = tx.prepare_cached(sql).map_err(unavailable)?;
    let rows = stmt
        .query_map(params![arg], |r| r.get::<_, String>(0))
        .map_err(unavailable)?;
    rows.map(|b| from_json(&b.map_err(unavailable)?)).collect()
}

pub(super) fn conflict_on_unique(e: rusqlite::Error, what: String) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(what)
        }
        e => unavailable(e),
    }
}

impl Directory for SqliteStore {
    fn create_team(&self, team: &Team) -> Result<(), StoreError> {
        self.tx(|tx| {
            tx.prepare_cached("INSERT INTO teams (slug, body) VALUES (?1, ?2)")
                .map_err(unavailable)?
                .execute(params![team.slug, to_json(team)?])
                .map_err(|e| conflict_on_unique(e, format!("team `{}` exists", team.slug)))?;
            Ok(())
        })
    }

    fn team(&self, slug: &str) -> Result<Option<Team>, StoreError> {
        self.tx(|tx| {
            Ok(
                query_bodies(tx, "SELECT body FROM teams WHERE slug = ?1", Some(slug))?
                    .into_iter()
                    .next(),
            )
        })
    }

    fn teams(&self) -> Result<Vec<Team>, StoreError> {
        self.tx(|tx| {
            query_bodies(
                tx,
                "SELECT body FROM teams WHERE ?1 IS NULL ORDER BY slug",
                None,
            )
        })
    }

    fn put_member(&self, m: &Member) -> Result<(), StoreError> {
        self.tx(|tx| {
            tx.prepare_cached(
                "INSERT INTO members (team, user, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (team, user) DO UPDATE SET body = excluded.body",
            )
            .map_err(unavailable)?
            .execute(params![m.team, m.user, to_json(m)?])
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn members(&self, team: Option<&str>) -> Result<Vec<Member>, StoreError> {
        self.tx(|tx| {
            query_bodies(
                tx,
                "SELECT body FROM members WHERE ?1 IS NULL OR team = ?1 ORDER BY team, user",
                team,
            )
        })
    }

    fn insert_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.tx(|tx| {
            tx.prepare_cached(
                "INSERT INTO api_keys (hash, id, team, created_at, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(unavailable)?
            .execute(params![key.hash, key.id, key.team, key.created_at, to_json(key)?])
            .map_err(|e| conflict_on_unique(e, format!("key `{}` exists", key.id)))?;
            Ok(())
        })
    }

    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.tx(|tx| {
            Ok(
                query_bodies(tx, "SELECT body FROM api_keys WHERE hash = ?1", Some(hash))?
                    .into_iter()
                    .next(),
            )
        })
    }

    fn keys(&self, team: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
        self.tx(|tx| {
            query_bodies(
                tx,
                "SELECT body FROM api_keys WHERE ?1 IS NULL OR team = ?1 ORDER BY created_at DESC, id",
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
            let Some(mut team) =
                query_bodies::<Team>(tx, "SELECT body FROM teams WHERE slug = ?1", Some(slug))?
                    .into_iter()
                    .next()
            else {
                return Ok(None);
            };
            change(&mut team);
            slug.clone_into(&mut team.slug);
            tx.prepare_cached("UPDATE teams SET body = ?2 WHERE slug = ?1")
                .map_err(unavailable)?
                .execute(params![slug, to_json(&team)?])
                .map_err(unavailable)?;
            Ok(Some(team))
        })
    }

    fn remove_member(&self, team: &str, user: &str) -> Result<Option<Member>, StoreError> {
        self.tx(|tx| {
            let mut stmt = tx
                .prepare_cached("DELETE FROM members WHERE team = ?1 AND user = ?2 RETURNING body")
                .map_err(unavailable)?;
            let mut rows = stmt.query(params![team, user]).map_err(unavailable)?;
            match rows.next().map_err(unavailable)? {
                Some(r) => Ok(Some(from_json(
                    &r.get::<_, String>(0).map_err(unavailable)?,
                )?)),
                None => Ok(None),
            }
        })
    }

    fn key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        self.tx(|tx| {
            Ok(
                query_bodies(tx, "SELECT body FROM api_keys WHERE id = ?1", Some(id))?
                    .into_iter()
                    .next(),
            )
        })
    }

    fn update_key(
        &self,
        id: &str,
        change: &dyn Fn(&mut ApiKey),
    ) -> Result<Option<ApiKey>, StoreError> {
        self.tx(|tx| {
            let Some(mut key) =
                query_bodies::<ApiKey>(tx, "SELECT body FROM api_keys WHERE id = ?1", Some(id))?
                    .into_iter()
                    .next()
            else {
                return Ok(None);
            };
            let (id, hash, team) = (key.id.clone(), key.hash.clone(), key.team.clone());
            change(&mut key);
            (key.id, key.hash, key.team) = (id, hash, team);
            tx.prepare_cached("UPDATE api_keys SET body = ?2 WHERE id = ?1")
                .map_err(unavailable)?
                .execute(params![key.id, to_json(&key)?])
                .map_err(unavailable)?;
            Ok(Some(key))
        })
    }
}
