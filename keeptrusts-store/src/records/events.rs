//! The audit chain's tables (events, their anchors after a prune, the chain heads), written once
//! for both SQL stores: what `EventStore` reads and prunes outside the batch path
//! ([`event_store!`]). Appends go through the batch path, which writes events, heads and the day
//! tallies in bulk in each dialect's own statements.

use keeptrusts_core::event::{prune_plan, Anchor, Chain, Event, EventQuery, Head};
use keeptrusts_core::time::Millis;
use keeptrusts_core::StoreError;

use super::{rows, to_json, Bind, Sql};
use crate::tallies;

fn corrupt(sql: &dyn Sql, what: &str) -> StoreError {
    StoreError::Corrupt(format!("{}: {what}", sql.name()))
}

fn seq_arg(sql: &dyn Sql, seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| corrupt(sql, "a sequence number past i64"))
}

/// The events of `org`, in chain order.
pub(crate) fn list(sql: &mut dyn Sql, org: &str) -> Result<Vec<Event>, StoreError> {
    rows(
        sql,
        "SELECT body FROM events WHERE org = ?1 ORDER BY seq",
        &[Bind::Text(Some(org))],
    )
}

/// Where the kept chain of `org` starts, after a prefix was pruned.
pub(crate) fn anchor(sql: &mut dyn Sql, org: &str) -> Result<Option<Anchor>, StoreError> {
    let found = sql.seq_rows(
        "SELECT seq, prev_hash FROM event_anchors WHERE org = ?1",
        &[Bind::Text(Some(org))],
    )?;
    found
        .into_iter()
        .next()
        .map(|(seq, prev_hash)| {
            Ok(Anchor {
                seq: u64::try_from(seq).map_err(|_| corrupt(sql, "a negative anchor"))?,
                prev_hash,
            })
        })
        .transpose()
}

/// The head of `org`'s chain as recorded with its last append (a row with seq -1, which
/// PostgreSQL's batch path creates to lock on, is no head).
fn head(sql: &mut dyn Sql, org: &str) -> Result<Option<Head>, StoreError> {
    let found = sql.seq_rows(
        "SELECT seq, hash FROM event_heads WHERE org = ?1",
        &[Bind::Text(Some(org))],
    )?;
    Ok(found.into_iter().next().and_then(|(seq, hash)| {
        Some(Head {
            seq: u64::try_from(seq).ok()?,
            hash,
        })
    }))
}

/// The events of `org` that `q` selects, oldest first. Only the conditions `q` has are in the
/// statement, so the planner can use the (org, team, usr, seq) and (org, team, timestamp)
/// indexes.
pub(crate) fn query(
    sql: &mut dyn Sql,
    org: &str,
    q: &EventQuery,
) -> Result<Vec<Event>, StoreError> {
    let before = q.before.map(|b| seq_arg(sql, b)).transpose()?;
    let mut text = String::from("SELECT body FROM events WHERE org = ?1");
    let mut args = vec![Bind::Text(Some(org))];
    let conds = [
        ("team =", q.team.as_deref().map(|t| Bind::Text(Some(t)))),
        ("usr =", q.user.as_deref().map(|u| Bind::Text(Some(u)))),
        ("verdict =", q.verdict.map(|v| Bind::Text(Some(v.as_str())))),
        ("timestamp >=", q.from.map(Bind::Int)),
        ("timestamp <", q.to.map(Bind::Int)),
        ("seq <", before.map(Bind::Int)),
    ];
    for (cond, arg) in conds {
        if let Some(arg) = arg {
            args.push(arg);
            text.push_str(&format!(" AND {cond} ?{}", args.len()));
        }
    }
    if q.escalated {
        text.push_str(" AND escalation IS NOT NULL");
    }
    text.push_str(" ORDER BY seq DESC");
    if let Some(n) = q.limit {
        text.push_str(&format!(" LIMIT {n}"));
    }
    let mut out: Vec<Event> = rows(sql, &text, &args)?;
    out.reverse();
    Ok(out)
}

/// The whole chain of `org`, read in one snapshot: an append or a prune committed meanwhile is
/// not half seen.
pub(crate) fn snapshot(sql: &mut dyn Sql, org: &str) -> Result<Chain, StoreError> {
    sql.read_snapshot()?;
    Ok(Chain {
        events: list(sql, org)?,
        anchor: anchor(sql, org)?,
        head: head(sql, org)?,
    })
}

/// The last `n` events of `org` with the anchor and head to check them against, in one
/// snapshot.
pub(crate) fn tail(sql: &mut dyn Sql, org: &str, n: usize) -> Result<Chain, StoreError> {
    sql.read_snapshot()?;
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let mut events: Vec<Event> = rows(
        sql,
        "SELECT body FROM events WHERE org = ?1 ORDER BY seq DESC LIMIT ?2",
        &[Bind::Text(Some(org)), Bind::Int(n)],
    )?;
    events.reverse();
    let head = head(sql, org)?;
    Ok(Chain::tail(events, anchor(sql, org)?, head))
}

/// Applies the core's retention to `org`'s chain: tombstones and a cut prefix (anchored), the
/// day tallies lowered by what was removed. How many events it touched.
pub(crate) fn prune(
    sql: &mut dyn Sql,
    org: &str,
    now: Millis,
    default_days: u32,
) -> Result<usize, StoreError> {
    // the head row serializes prunes and appends of the org
    let lock = sql.for_update();
    sql.bodies(
        &format!("SELECT org FROM event_heads WHERE org = ?1{lock}"),
        &[Bind::Text(Some(org))],
    )?;
    let events = list(sql, org)?;
    let plan = prune_plan(&events, now, default_days);
    sql.add_tallies(&tallies::deltas(plan.removed(&events), -1)?)?;
    for t in &plan.tombstones {
        let (seq, body) = (seq_arg(sql, t.seq)?, to_json(sql, t)?);
        sql.execute(
            "UPDATE events SET body = ?3, team = NULL, usr = NULL, requests = 0, denied = 0, \
             policy_events = 0, cost = '0', prompt_tokens = 0, completion_tokens = 0, \
             model = NULL, escalation = NULL WHERE org = ?1 AND seq = ?2",
            &[
                Bind::Text(Some(org)),
                Bind::Int(seq),
                Bind::Text(Some(&body)),
            ],
            &String::new,
        )?;
    }
    if let Some(anchor) = &plan.cut {
        let cut = seq_arg(sql, anchor.seq)?;
        sql.execute(
            "DELETE FROM events WHERE org = ?1 AND seq < ?2",
            &[Bind::Text(Some(org)), Bind::Int(cut)],
            &String::new,
        )?;
        sql.execute(
            "INSERT INTO event_anchors (org, seq, prev_hash) VALUES (?1, ?2, ?3) \
             ON CONFLICT (org) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash",
            &[
                Bind::Text(Some(org)),
                Bind::Int(cut),
                Bind::Text(Some(&anchor.prev_hash)),
            ],
            &String::new,
        )?;
    }
    Ok(plan.len())
}

/// The core's `EventStore` and `Journal` for a store with the inherent `records` of
/// [`record_stores!`], a `submit` that queues a batch operation and a `tallies` that answers a
/// dashboard's tally query in its dialect: appends (and a settlement with its event) go through
/// the batch path, the rest through [`crate::records::events`].
///
/// [`record_stores!`]: crate::records::record_stores
macro_rules! event_store {
    ($store:ty) => {
        impl keeptrusts_core::event::EventStore for $store {
            fn append(
                &self,
                draft: keeptrusts_core::event::EventDraft,
            ) -> Result<keeptrusts_core::event::Event, keeptrusts_core::StoreError> {
                match self.submit($crate::batch::Op::Append(draft))? {
                    $crate::batch::Done::Append(e) => Ok(e),
                    other => Err($crate::batch::mismatch(&other)),
                }
            }

            fn list(
                &self,
                org: &str,
            ) -> Result<Vec<keeptrusts_core::event::Event>, keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::events::list(sql, org))
            }

            fn anchor(
                &self,
                org: &str,
            ) -> Result<Option<keeptrusts_core::event::Anchor>, keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::events::anchor(sql, org))
            }

            fn query(
                &self,
                org: &str,
                q: &keeptrusts_core::event::EventQuery,
            ) -> Result<Vec<keeptrusts_core::event::Event>, keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::events::query(sql, org, q))
            }

            fn tally(
                &self,
                org: &str,
                q: &keeptrusts_core::event::tally::TallyQuery,
            ) -> Result<
                Vec<(
                    keeptrusts_core::event::tally::TallyKey,
                    keeptrusts_core::event::tally::Tally,
                )>,
                keeptrusts_core::StoreError,
            > {
                self.tallies(org, q)
            }

            fn snapshot(
                &self,
                org: &str,
            ) -> Result<keeptrusts_core::event::Chain, keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::events::snapshot(sql, org))
            }

            fn tail(
                &self,
                org: &str,
                n: usize,
            ) -> Result<keeptrusts_core::event::Chain, keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::events::tail(sql, org, n))
            }

            fn prune(
                &self,
                org: &str,
                now: keeptrusts_core::time::Millis,
                default_days: u32,
            ) -> Result<usize, keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::events::prune(sql, org, now, default_days))
            }
        }

        impl keeptrusts_core::event::Journal for $store {
            fn settle_and_append(
                &self,
                lease_id: &str,
                actual: rust_decimal::Decimal,
                now: keeptrusts_core::time::Millis,
                draft: keeptrusts_core::event::EventDraft,
            ) -> Result<
                (
                    keeptrusts_core::wallet::Settlement,
                    Option<keeptrusts_core::event::Event>,
                ),
                keeptrusts_core::wallet::WalletError,
            > {
                match self.submit($crate::batch::Op::SettleAppend(
                    lease_id.into(),
                    actual,
                    now,
                    draft,
                ))? {
                    $crate::batch::Done::SettleAppend(r) => r,
                    other => Err($crate::batch::mismatch(&other).into()),
                }
            }
        }
    };
}

pub(crate) use event_store;
