//! The wallets and leases tables, written once for both SQL stores: the rows the core's
//! `Ledger` is loaded from and written back to ([`Rows`], for every [`Sql`]), and the
//! `WalletStore` methods that do not go through the batch path ([`wallet_store!`]).

use keeptrusts_core::time::Millis;
use keeptrusts_core::wallet::{Lease, Ledger, Wallet, WalletError, WalletKey};
use keeptrusts_core::StoreError;
use serde::Serialize;

use super::{row, rows, to_json, Bind, Sql};
use crate::ledger::Rows;

/// A unit enum's serde name (a wallet's scope, a lease's status): the text its column holds.
fn name_of<T: Serialize>(sql: &dyn Sql, v: &T) -> Result<String, StoreError> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(StoreError::Corrupt(format!(
            "{}: a wallet scope or lease status that is not a name",
            sql.name()
        ))),
    }
}

/// Wallet `key`, its row locked for change when `lock`.
fn load_wallet(
    sql: &mut dyn Sql,
    key: &WalletKey,
    lock: bool,
) -> Result<Option<Wallet>, StoreError> {
    let scope = name_of(sql, &key.scope)?;
    let lock = if lock { sql.for_update() } else { "" };
    row(
        sql,
        &format!("SELECT body FROM wallets WHERE scope = ?1 AND id = ?2{lock}"),
        &[Bind::Text(Some(&scope)), Bind::Text(Some(&key.id))],
    )
}

/// Lease `id`, its row locked for change when `lock`.
fn load_lease(sql: &mut dyn Sql, id: &str, lock: bool) -> Result<Option<Lease>, StoreError> {
    let lock = if lock { sql.for_update() } else { "" };
    row(
        sql,
        &format!("SELECT body FROM leases WHERE id = ?1{lock}"),
        &[Bind::Text(Some(id))],
    )
}

impl<S: Sql + ?Sized> Rows for S {
    fn load_wallet(&mut self, key: &WalletKey) -> Result<Option<Wallet>, StoreError> {
        load_wallet(self.as_dyn(), key, true)
    }

    fn save_wallet(&mut self, w: &Wallet) -> Result<(), StoreError> {
        let sql = self.as_dyn();
        let (scope, body) = (name_of(sql, &w.key.scope)?, to_json(sql, w)?);
        sql.execute(
            "INSERT INTO wallets (scope, id, body) VALUES (?1, ?2, ?3) \
             ON CONFLICT (scope, id) DO UPDATE SET body = excluded.body",
            &[
                Bind::Text(Some(&scope)),
                Bind::Text(Some(&w.key.id)),
                Bind::Text(Some(&body)),
            ],
            &|| format!("wallet `{}` exists", w.key),
        )?;
        Ok(())
    }

    fn load_lease(&mut self, id: &str) -> Result<Option<Lease>, StoreError> {
        load_lease(self.as_dyn(), id, true)
    }

    fn save_lease(&mut self, l: &Lease) -> Result<(), StoreError> {
        let sql = self.as_dyn();
        let (status, body) = (name_of(sql, &l.status)?, to_json(sql, l)?);
        sql.execute(
            "INSERT INTO leases (id, status, created_at, expires_at, body) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, body = excluded.body",
            &[
                Bind::Text(Some(&l.id)),
                Bind::Text(Some(&status)),
                Bind::Int(l.created_at),
                Bind::Int(l.expires_at),
                Bind::Text(Some(&body)),
            ],
            &|| format!("lease `{}` exists", l.id),
        )?;
        Ok(())
    }
}

/// Applies `f` to a ledger of the wallets `keys` and the leases `lease_ids` (with their
/// wallets), after taking the database's lock on each lease id (a lease that does not exist
/// yet has no row to lock), and writes back what changed.
pub(crate) fn with_ledger<T>(
    sql: &mut dyn Sql,
    keys: &[WalletKey],
    lease_ids: &[&str],
    f: impl FnOnce(&mut Ledger) -> Result<T, WalletError>,
) -> Result<T, WalletError> {
    for id in lease_ids {
        sql.lock_name(&format!("lease:{id}"))?;
    }
    crate::ledger::with_ledger(sql, keys, lease_ids, f)
}

/// Creates or tops up wallet `key` (`WalletStore::allocate`), under the wallet's lock (its row
/// may not exist yet).
pub(crate) fn allocate(
    sql: &mut dyn Sql,
    key: &WalletKey,
    f: impl FnOnce(&mut Ledger) -> Result<Wallet, WalletError>,
) -> Result<Wallet, WalletError> {
    sql.lock_name(&format!("wallet:{key}"))?;
    with_ledger(sql, std::slice::from_ref(key), &[], f)
}

/// Wallet `key` as of `now` (its period rolled over), not locked.
pub(crate) fn get(
    sql: &mut dyn Sql,
    key: &WalletKey,
    now: Millis,
) -> Result<Option<Wallet>, StoreError> {
    Ok(load_wallet(sql, key, false)?.map(|mut w| {
        w.roll(now);
        w
    }))
}

/// Every wallet as of `now`, by key.
pub(crate) fn list(sql: &mut dyn Sql, now: Millis) -> Result<Vec<Wallet>, StoreError> {
    let mut v: Vec<Wallet> = rows(sql, "SELECT body FROM wallets", &[])?;
    for w in &mut v {
        w.roll(now);
    }
    v.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(v)
}

/// Expires the active leases whose time is up at `now`; how many.
pub(crate) fn expire(sql: &mut dyn Sql, now: Millis) -> Result<usize, WalletError> {
    let ids = sql.bodies(
        "SELECT id FROM leases WHERE status = 'active' AND expires_at <= ?1 ORDER BY id",
        &[Bind::Int(now)],
    )?;
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    with_ledger(sql, &[], &refs, |l| l.expire(now))
}

/// Lease `id`, not locked.
pub(crate) fn lease(sql: &mut dyn Sql, id: &str) -> Result<Option<Lease>, StoreError> {
    load_lease(sql, id, false)
}

/// Deletes the leases no longer active that were created before `before`; how many.
pub(crate) fn prune(sql: &mut dyn Sql, before: Millis) -> Result<usize, StoreError> {
    let n = sql.execute(
        "DELETE FROM leases WHERE status <> 'active' AND created_at < ?1",
        &[Bind::Int(before)],
        &String::new,
    )?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// The core's `WalletStore` for a store with the inherent `records` of [`record_stores!`]
/// (generic over its error type) and a `submit` that queues a batch operation: reservations
/// and settlements go through the batch path, the rest runs in a transaction of its own.
///
/// [`record_stores!`]: crate::records::record_stores
macro_rules! wallet_store {
    ($store:ty) => {
        impl keeptrusts_core::wallet::WalletStore for $store {
            fn allocate(
                &self,
                key: &keeptrusts_core::wallet::WalletKey,
                grant: &keeptrusts_core::wallet::Grant,
                now: keeptrusts_core::time::Millis,
            ) -> Result<keeptrusts_core::wallet::Wallet, keeptrusts_core::wallet::WalletError> {
                self.records(|sql| {
                    $crate::records::wallets::allocate(sql, key, |l| {
                        l.allocate(key, grant, now)
                    })
                })
            }

            fn get(
                &self,
                key: &keeptrusts_core::wallet::WalletKey,
                now: keeptrusts_core::time::Millis,
            ) -> Result<Option<keeptrusts_core::wallet::Wallet>, keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::wallets::get(sql, key, now))
            }

            fn list(
                &self,
                now: keeptrusts_core::time::Millis,
            ) -> Result<Vec<keeptrusts_core::wallet::Wallet>, keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::wallets::list(sql, now))
            }

            fn reserve(
                &self,
                request: &keeptrusts_core::wallet::ReserveRequest,
                now: keeptrusts_core::time::Millis,
            ) -> Result<keeptrusts_core::wallet::ReserveOutcome, keeptrusts_core::wallet::WalletError>
            {
                match self.submit($crate::batch::Op::Reserve(request.clone(), now))? {
                    $crate::batch::Done::Reserve(r) => r,
                    other => Err($crate::batch::mismatch(&other).into()),
                }
            }

            fn settle(
                &self,
                lease_id: &str,
                actual: rust_decimal::Decimal,
                now: keeptrusts_core::time::Millis,
            ) -> Result<keeptrusts_core::wallet::Settlement, keeptrusts_core::wallet::WalletError>
            {
                match self.submit($crate::batch::Op::Settle(lease_id.into(), actual, now))? {
                    $crate::batch::Done::Settle(r) => r,
                    other => Err($crate::batch::mismatch(&other).into()),
                }
            }

            fn release(
                &self,
                lease_id: &str,
                _now: keeptrusts_core::time::Millis,
            ) -> Result<keeptrusts_core::wallet::Lease, keeptrusts_core::wallet::WalletError> {
                self.records(|sql| {
                    $crate::records::wallets::with_ledger(sql, &[], &[lease_id], |l| {
                        l.release(lease_id, keeptrusts_core::wallet::LeaseStatus::Released)
                    })
                })
            }

            fn expire(
                &self,
                now: keeptrusts_core::time::Millis,
            ) -> Result<usize, keeptrusts_core::wallet::WalletError> {
                self.records(|sql| $crate::records::wallets::expire(sql, now))
            }

            fn lease(
                &self,
                lease_id: &str,
            ) -> Result<Option<keeptrusts_core::wallet::Lease>, keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::wallets::lease(sql, lease_id))
            }

            fn prune(
                &self,
                before: keeptrusts_core::time::Millis,
            ) -> Result<usize, keeptrusts_core::StoreError> {
                self.records(|sql| $crate::records::wallets::prune(sql, before))
            }
        }
    };
}

pub(crate) use wallet_store;
