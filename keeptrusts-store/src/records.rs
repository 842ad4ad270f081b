//! The record tables both SQL stores keep (escalations, tickets and the directory's teams,
//! members and API keys) written once. Each store hands [`record_stores!`] a [`Sql`] over one
//! open transaction; the statements are the same text for both databases (placeholders `?1`,
//! `?2`, …, spelled `$1`, … on PostgreSQL), and what the databases disagree on is one method of
//! [`Sql`] each: the lock a read for change takes, the lock a row that does not exist yet takes,
//! the name of the members' user column, how a unique violation is recognized, and a few reads
//! and writes each does its own way. The wallets and leases tables are in [`wallets`], the
//! audit chain's in [`events`].

use keeptrusts_core::time::Millis;
use keeptrusts_core::StoreError;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub(crate) mod events;
pub(crate) mod wallets;

/// A value bound to a placeholder.
pub(crate) enum Bind<'a> {
    Text(Option<&'a str>),
    Int(i64),
}

/// One open transaction, in its database's dialect.
pub(crate) trait Sql {
    /// `sqlite` or `postgres`, the prefix of its errors.
    fn name(&self) -> &'static str;
    /// Runs a statement; the number of rows it changed. A unique constraint's violation is
    /// `StoreError::Conflict(conflict())`.
    fn execute(
        &mut self,
        sql: &str,
        args: &[Bind<'_>],
        conflict: &dyn Fn() -> String,
    ) -> Result<u64, StoreError>;
    /// The first column, as text, of each row `sql` returns.
    fn bodies(&mut self, sql: &str, args: &[Bind<'_>]) -> Result<Vec<String>, StoreError>;
    /// What follows a read whose row the transaction will change: ` FOR UPDATE` where rows are
    /// locked one by one (PostgreSQL); empty where the transaction holds the write lock already
    /// (SQLite's `BEGIN IMMEDIATE`).
    fn for_update(&self) -> &'static str;
    /// The members table's user column (`usr` on PostgreSQL, where `user` is a keyword).
    fn member_user(&self) -> &'static str;
    /// Takes a lock on `name` until the transaction ends, for rows that may not exist yet (a
    /// wallet's creation, a lease's): an advisory lock on PostgreSQL; nothing on SQLite, whose
    /// transaction holds the write lock already.
    fn lock_name(&mut self, name: &str) -> Result<(), StoreError>;
    /// This transaction as the shared layer takes it.
    fn as_dyn(&mut self) -> &mut dyn Sql;
    /// The first two columns, an integer and a text, of each row `sql` returns.
    fn seq_rows(&mut self, sql: &str, args: &[Bind<'_>]) -> Result<Vec<(i64, String)>, StoreError>;
    /// Makes the transaction's reads one snapshot, before its first statement (PostgreSQL's
    /// `REPEATABLE READ, READ ONLY`; SQLite's transaction is one already).
    fn read_snapshot(&mut self) -> Result<(), StoreError>;
    /// Adds `deltas` (negative after a prune) to the day tallies and drops the rows they
    /// emptied, in the dialect's bulk statements.
    fn add_tallies(&mut self, deltas: &[crate::tallies::Delta]) -> Result<(), StoreError>;
}

fn to_json<T: Serialize>(sql: &dyn Sql, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("{}: {e}", sql.name())))
}

fn from_json<T: DeserializeOwned>(sql: &dyn Sql, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{}: {e}", sql.name())))
}

/// The rows of `query`, read from their bodies.
pub(crate) fn rows<T: DeserializeOwned>(
    sql: &mut dyn Sql,
    query: &str,
    args: &[Bind<'_>],
) -> Result<Vec<T>, StoreError> {
    let bodies = sql.bodies(query, args)?;
    bodies.iter().map(|b| from_json(sql, b)).collect()
}

/// The first row of `query`, if any (the queries that use it select by key: one row or none).
pub(crate) fn row<T: DeserializeOwned>(
    sql: &mut dyn Sql,
    query: &str,
    args: &[Bind<'_>],
) -> Result<Option<T>, StoreError> {
    Ok(rows(sql, query, args)?.into_iter().next())
}

/// Inserts a record of a table keyed by `id` (escalations, tickets); a second with the same id
/// is a conflict.
pub(crate) fn insert_row<T: Serialize>(
    sql: &mut dyn Sql,
    table: &str,
    id: &str,
    team: Option<&str>,
    created_at: Millis,
    value: &T,
) -> Result<(), StoreError> {
    let body = to_json(sql, value)?;
    let n = sql.execute(
        &format!(
            "INSERT INTO {table} (id, team, created_at, body) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (id) DO NOTHING"
        ),
        &[
            Bind::Text(Some(id)),
            Bind::Text(team),
            Bind::Int(created_at),
            Bind::Text(Some(&body)),
        ],
        &|| format!("{table} row `{id}` exists"),
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("{table} row `{id}` exists")));
    }
    Ok(())
}

/// Record `id` of `table`, locked for change when `lock`.
pub(crate) fn get_row<T: DeserializeOwned>(
    sql: &mut dyn Sql,
    table: &str,
    id: &str,
    lock: bool,
) -> Result<Option<T>, StoreError> {
    let lock = if lock { sql.for_update() } else { "" };
    row(
        sql,
        &format!("SELECT body FROM {table} WHERE id = ?1{lock}"),
        &[Bind::Text(Some(id))],
    )
}

/// The records of `table` (of one team, or all), newest first.
pub(crate) fn list_rows<T: DeserializeOwned>(
    sql: &mut dyn Sql,
    table: &str,
    team: Option<&str>,
) -> Result<Vec<T>, StoreError> {
    rows(
        sql,
        &format!(
            "SELECT body FROM {table} WHERE (CAST(?1 AS TEXT) IS NULL OR team = ?1) \
             ORDER BY created_at DESC, id ASC"
        ),
        &[Bind::Text(team)],
    )
}

/// Loads record `id` (locked), applies `f` — which returns its result and whether the record
/// changed — and saves the record if it did. `None` when there is no such record.
pub(crate) fn modify_row<T: Serialize + DeserializeOwned, R>(
    sql: &mut dyn Sql,
    table: &str,
    id: &str,
    f: impl FnOnce(&mut T) -> (R, bool),
) -> Result<Option<R>, StoreError> {
    let Some(mut value) = get_row::<T>(sql, table, id, true)? else {
        return Ok(None);
    };
    let (out, changed) = f(&mut value);
    if changed {
        let body = to_json(sql, &value)?;
        sql.execute(
            &format!("UPDATE {table} SET body = ?2 WHERE id = ?1"),
            &[Bind::Text(Some(id)), Bind::Text(Some(&body))],
            &|| format!("{table} row `{id}` exists"),
        )?;
    }
    Ok(Some(out))
}

/// Loads the row `select` finds (locked), applies `change`, and writes it back with `update`
/// (`?1` the key, `?2` the body). `None` when there is no such row.
fn update_one<T: Serialize + DeserializeOwned>(
    sql: &mut dyn Sql,
    select: &str,
    update: &str,
    key: &str,
    change: impl FnOnce(&mut T),
) -> Result<Option<T>, StoreError> {
    let lock = sql.for_update();
    let Some(mut value) = row::<T>(sql, &format!("{select}{lock}"), &[Bind::Text(Some(key))])?
    else {
        return Ok(None);
    };
    change(&mut value);
    let body = to_json(sql, &value)?;
    sql.execute(
        update,
        &[Bind::Text(Some(key)), Bind::Text(Some(&body))],
        &|| format!("`{key}` exists"),
    )?;
    Ok(Some(value))
}

/// The directory's tables: teams by slug, members by team and user, API keys by hash and id.
pub(crate) mod directory {
    use keeptrusts_core::directory::{ApiKey, Member, Team};

    use super::*;

    pub(crate) fn create_team(sql: &mut dyn Sql, team: &Team) -> Result<(), StoreError> {
        let body = to_json(sql, team)?;
        sql.execute(
            "INSERT INTO teams (slug, body) VALUES (?1, ?2)",
            &[Bind::Text(Some(&team.slug)), Bind::Text(Some(&body))],
            &|| format!("team `{}` exists", team.slug),
        )?;
        Ok(())
    }

    pub(crate) fn team(sql: &mut dyn Sql, slug: &str) -> Result<Option<Team>, StoreError> {
        row(
            sql,
            "SELECT body FROM teams WHERE slug = ?1",
            &[Bind::Text(Some(slug))],
        )
    }

    pub(crate) fn teams(sql: &mut dyn Sql) -> Result<Vec<Team>, StoreError> {
        rows(sql, "SELECT body FROM teams ORDER BY slug", &[])
    }

    pub(crate) fn update_team(
        sql: &mut dyn Sql,
        slug: &str,
        change: &dyn Fn(&mut Team),
    ) -> Result<Option<Team>, StoreError> {
        update_one(
            sql,
            "SELECT body FROM teams WHERE slug = ?1",
            "UPDATE teams SET body = ?2 WHERE slug = ?1",
            slug,
            |team: &mut Team| {
                change(team);
                slug.clone_into(&mut team.slug);
            },
        )
    }

    pub(crate) fn put_member(sql: &mut dyn Sql, m: &Member) -> Result<(), StoreError> {
        let user = sql.member_user();
        let body = to_json(sql, m)?;
        sql.execute(
            &format!(
                "INSERT INTO members (team, {user}, body) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (team, {user}) DO UPDATE SET body = excluded.body"
            ),
            &[
                Bind::Text(Some(&m.team)),
                Bind::Text(Some(&m.user)),
                Bind::Text(Some(&body)),
            ],
            &|| format!("member `{}` of `{}` exists", m.user, m.team),
        )?;
        Ok(())
    }

    pub(crate) fn members(
        sql: &mut dyn Sql,
        team: Option<&str>,
    ) -> Result<Vec<Member>, StoreError> {
        let user = sql.member_user();
        rows(
            sql,
            &format!(
                "SELECT body FROM members WHERE CAST(?1 AS TEXT) IS NULL OR team = ?1 \
                 ORDER BY team, {user}"
            ),
            &[Bind::Text(team)],
        )
    }

    pub(crate) fn remove_member(
        sql: &mut dyn Sql,
        team: &str,
        user: &str,
    ) -> Result<Option<Member>, StoreError> {
        let column = sql.member_user();
        row(
            sql,
            &format!("DELETE FROM members WHERE team = ?1 AND {column} = ?2 RETURNING body"),
            &[Bind::Text(Some(team)), Bind::Text(Some(user))],
        )
    }

    pub(crate) fn insert_key(sql: &mut dyn Sql, key: &ApiKey) -> Result<(), StoreError> {
        let body = to_json(sql, key)?;
        sql.execute(
            "INSERT INTO api_keys (hash, id, team, created_at, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            &[
                Bind::Text(Some(&key.hash)),
                Bind::Text(Some(&key.id)),
                Bind::Text(Some(&key.team)),
                Bind::Int(key.created_at),
                Bind::Text(Some(&body)),
            ],
            &|| format!("key `{}` exists", key.id),
        )?;
        Ok(())
    }

    pub(crate) fn key_by(
        sql: &mut dyn Sql,
        column: &str,
        value: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        row(
            sql,
            &format!("SELECT body FROM api_keys WHERE {column} = ?1"),
            &[Bind::Text(Some(value))],
        )
    }

    pub(crate) fn keys(sql: &mut dyn Sql, team: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
        rows(
            sql,
            "SELECT body FROM api_keys WHERE CAST(?1 AS TEXT) IS NULL OR team = ?1 \
             ORDER BY created_at DESC, id",
            &[Bind::Text(team)],
        )
    }

    /// Changes key `id`'s body; its id, hash and team stay what they are.
    pub(crate) fn update_key(
        sql: &mut dyn Sql,
        id: &str,
        change: &dyn Fn(&mut ApiKey),
    ) -> Result<Option<ApiKey>, StoreError> {
        update_one(
            sql,
            "SELECT body FROM api_keys WHERE id = ?1",
            "UPDATE api_keys SET body = ?2 WHERE id = ?1",
            id,
            |key: &mut ApiKey| {
                let (id, hash, team) = (key.id.clone(), key.hash.clone(), key.team.clone());
                change(key);
                (key.id, key.hash, key.team) = (id, hash, team);
            },
        )
    }
}

/// The core's record traits (`EscalationStore`, `TicketStore`, `Directory`) for a store with an
/// inherent `fn records<T>(&self, f: impl FnMut(&mut dyn Sql) -> Result<T, StoreError>) ->
/// Result<T, StoreError>` that runs `f` in one transaction.
macro_rules! record_stores {
    ($store:ty) => {
        impl keeptrusts_core::escalation::EscalationStore for $store {
            fn insert(
                &self,
                e: &keeptrusts_core::escalation::Escalation,
            ) -> Result<(), keeptrusts_core::StoreError> {
                self.records(|sql| {
                    $crate::records::insert_row(
                        sql,
                        "escalations",
                        &e.id,
                        e.team.as_deref(),
                        e.created_at,
                        e,
                    )
                })
            }

            fn get(
                &self,
                id: &str,
            ) -> Result<Option<keeptrusts_core::escalation::Escalation>, keeptrusts_core::StoreError>
            {
                self.records(|sql| $crate::records::get_row(sql, "escalations", id, false))
            }

            fn list(
                &self,
                team: Option<&str>,
            ) -> Result<Vec<keeptrusts_core::escalation::Escalation>, keeptrusts_core::StoreError>
            {
                self.records(|sql| $crate::records::list_rows(sql, "escalations", team))
            }

            fn resolve(
                &self,
                id: &str,
                resolution: keeptrusts_core::escalation::Resolution,
                by: &str,
                now: keeptrusts_core::time::Millis,
            ) -> Result<Option<keeptrusts_core::escalation::Escalation>, keeptrusts_core::StoreError>
            {
                self.records(|sql| {
                    $crate::records::modify_row(
                        sql,
                        "escalations",
                        id,
                        |e: &mut keeptrusts_core::escalation::Escalation| {
                            let changed = e.resolve_at(resolution, by, now);
                            (e.clone(), changed)
                        },
                    )
                })
            }

            fn redeem(
                &self,
                id: &str,
                fingerprint: &str,
                team: Option<&str>,
                now: keeptrusts_core::time::Millis,
            ) -> Result<keeptrusts_core::escalation::Redeem, keeptrusts_core::StoreError> {
                use keeptrusts_core::escalation::Redeem;
                self.records(|sql| {
                    let out = $crate::records::modify_row(
                        sql,
                        "escalations",
                        id,
                        |e: &mut keeptrusts_core::escalation::Escalation| {
                            let out = e.redeem_at(fingerprint, team, now);
                            let changed = out == Redeem::Granted;
                            (out, changed)
                        },
                    )?;
                    Ok(out.unwrap_or(Redeem::Invalid("no such escalation")))
                })
            }
        }

        impl keeptrusts_core::wallet::ticket::TicketStore for $store {
            fn insert(
                &self,
                t: &keeptrusts_core::wallet::ticket::Ticket,
            ) -> Result<(), keeptrusts_core::StoreError> {
                self.records(|sql| {
                    $crate::records::insert_row(
                        sql,
                        "tickets",
                        &t.id,
                        t.team.as_deref(),
                        t.created_at,
                        t,
                    )
                })
            }

            fn get(
                &self,
                id: &str,
            ) -> Result<Option<keeptrusts_core::wallet::ticket::Ticket>, keeptrusts_core::StoreError>
            {
                self.records(|sql| $crate::records::get_row(sql, "tickets", id, false))
            }

            fn list(
                &self,
                team: Option<&str>,
            ) -> Result<Vec<keeptrusts_core::wallet::ticket::Ticket>, keeptrusts_core::StoreError>
            {
                self.records(|sql| $crate::records::list_rows(sql, "tickets", team))
            }

            fn resolve(
                &self,
                id: &str,
                resolution: &keeptrusts_core::wallet::ticket::TicketResolution,
                by: &str,
                now: keeptrusts_core::time::Millis,
            ) -> Result<Option<keeptrusts_core::wallet::ticket::Ticket>, keeptrusts_core::StoreError>
            {
                self.records(|sql| {
                    $crate::records::modify_row(
                        sql,
                        "tickets",
                        id,
                        |t: &mut keeptrusts_core::wallet::ticket::Ticket| {
                            let changed = t.resolve_at(resolution, by, now);
                            (t.clone(), changed)
                        },
                    )
                })
            }

            fn redeem(
                &self,
                id: &str,
                fingerprint: &str,
                team: Option<&str>,
                now: keeptrusts_core::time::Millis,
            ) -> Result<keeptrusts_core::wallet::ticket::TicketRedeem, keeptrusts_core::StoreError>
            {
                use keeptrusts_core::wallet::ticket::TicketRedeem;
                self.records(|sql| {
                    let out = $crate::records::modify_row(
                        sql,
                        "tickets",
                        id,
                        |t: &mut keeptrusts_core::wallet::ticket::Ticket| {
                            let out = t.redeem_at(fingerprint, team, now);
                            let changed = matches!(out, TicketRedeem::Approved(_));
                            (out, changed)
                        },
                    )?;
                    Ok(out.unwrap_or(TicketRedeem::Invalid("no such ticket")))
                })
            }

            fn fulfill(
                &self,
                id: &str,
                now: keeptrusts_core::time::Millis,
            ) -> Result<(), keeptrusts_core::StoreError> {
                self.records(|sql| {
                    $crate::records::modify_row(
                        sql,
                        "tickets",
                        id,
                        |t: &mut keeptrusts_core::wallet::ticket::Ticket| ((), t.fulfill_at(now)),
                    )?;
                    Ok(())
                })
            }

            fn restore(&self, id: &str) -> Result<(), keeptrusts_core::StoreError> {
                self.records(|sql| {
                    $crate::records::modify_row(
                        sql,
                        "tickets",
                        id,
                        |t: &mut keeptrusts_core::wallet::ticket::Ticket| ((), t.restore_at()),
                    )?;
                    Ok(())
                })
            }

            fn hold(
                &self,
                id: &str,
                until: Option<keeptrusts_core::time::Millis>,
            ) -> Result<(), keeptrusts_core::StoreError> {
                self.records(|sql| {
                    $crate::records::modify_row(
                        sql,
                        "tickets",
                        id,
                        |t: &mut keeptrusts_core::wallet::ticket::Ticket| {
                            let changed = t.held_until != until;
                            t.held_until = until;
                            ((), changed)
                        },
                    )?;
                    Ok(())
                })
            }
        }

        impl keeptrusts_core::directory::Directory for $store {
            fn create_team(
                &self,
                team: &keeptrusts_core::directory::Team,
            ) -> Result<(), keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::directory::create_team(sql, team))
            }

            fn team(
                &self,
                slug: &str,
            ) -> Result<Option<keeptrusts_core::directory::Team>, keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::directory::team(sql, slug))
            }

            fn teams(
                &self,
            ) -> Result<Vec<keeptrusts_core::directory::Team>, keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::directory::teams(sql))
            }

            fn put_member(
                &self,
                m: &keeptrusts_core::directory::Member,
            ) -> Result<(), keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::directory::put_member(sql, m))
            }

            fn members(
                &self,
                team: Option<&str>,
            ) -> Result<Vec<keeptrusts_core::directory::Member>, keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::directory::members(sql, team))
            }

            fn insert_key(
                &self,
                key: &keeptrusts_core::directory::ApiKey,
            ) -> Result<(), keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::directory::insert_key(sql, key))
            }

            fn key_by_hash(
                &self,
                hash: &str,
            ) -> Result<Option<keeptrusts_core::directory::ApiKey>, keeptrusts_core::StoreError>
            {
                self.records(|sql| $crate::records::directory::key_by(sql, "hash", hash))
            }

            fn keys(
                &self,
                team: Option<&str>,
            ) -> Result<Vec<keeptrusts_core::directory::ApiKey>, keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::directory::keys(sql, team))
            }

            fn update_team(
                &self,
                slug: &str,
                change: &dyn Fn(&mut keeptrusts_core::directory::Team),
            ) -> Result<Option<keeptrusts_core::directory::Team>, keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::directory::update_team(sql, slug, change))
            }

            fn remove_member(
                &self,
                team: &str,
                user: &str,
            ) -> Result<Option<keeptrusts_core::directory::Member>, keeptrusts_core::StoreError>
            {
                self.records(|sql| $crate::records::directory::remove_member(sql, team, user))
            }

            fn key(
                &self,
                id: &str,
            ) -> Result<Option<keeptrusts_core::directory::ApiKey>, keeptrusts_core::StoreError>
            {
                self.records(|sql| $crate::records::directory::key_by(sql, "id", id))
            }

            fn update_key(
                &self,
                id: &str,
                change: &dyn Fn(&mut keeptrusts_core::directory::ApiKey),
            ) -> Result<Option<keeptrusts_core::directory::ApiKey>, keeptrusts_core::StoreError>
            {
                self.records(|sql| $crate::records::directory::update_key(sql, id, change))
            }
        }
    };
}

pub(crate) use record_stores;
