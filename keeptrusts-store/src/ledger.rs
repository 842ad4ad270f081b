//! The one way every SQL store applies a wallet operation: load the rows it touches into the
//! core's `Ledger`, apply the core's method, write back the rows that changed.

use keeptrusts_core::wallet::{Lease, Ledger, Wallet, WalletError, WalletKey};
use keeptrusts_core::StoreError;

/// Row access inside one open transaction. Loads lock the row where the database supports it.
pub(crate) trait Rows {
    fn load_wallet(&mut self, key: &WalletKey) -> Result<Option<Wallet>, StoreError>;
    fn save_wallet(&mut self, w: &Wallet) -> Result<(), StoreError>;
    fn load_lease(&mut self, id: &str) -> Result<Option<Lease>, StoreError>;
    fn save_lease(&mut self, l: &Lease) -> Result<(), StoreError>;
}

/// Loads `keys` (in sorted order, so concurrent transactions lock rows in one global order) and
/// the leases `lease_ids` with their wallets, applies `f`, and saves what changed.
pub(crate) fn with_ledger<T>(
    rows: &mut dyn Rows,
    keys: &[WalletKey],
    lease_ids: &[&str],
    f: impl FnOnce(&mut Ledger) -> Result<T, WalletError>,
) -> Result<T, WalletError> {
    let mut ledger = Ledger::default();
    let mut sorted: Vec<&WalletKey> = keys.iter().collect();
    sorted.sort();
    sorted.dedup();
    for k in sorted {
        if let Some(w) = rows.load_wallet(k)? {
            ledger.wallets.insert(k.clone(), w);
        }
    }
    for id in lease_ids {
        if let Some(l) = rows.load_lease(id)? {
            if !ledger.wallets.contains_key(&l.wallet) {
                if let Some(w) = rows.load_wallet(&l.wallet)? {
                    ledger.wallets.insert(l.wallet.clone(), w);
                }
            }
            ledger.leases.insert(l.id.clone(), l);
        }
    }
    let before = ledger.clone();
    let out = f(&mut ledger)?;
    for (k, w) in &ledger.wallets {
        if before.wallets.get(k) != Some(w) {
            rows.save_wallet(w)?;
        }
    }
    for (id, l) in &ledger.leases {
        if before.leases.get(id) != Some(l) {
            rows.save_lease(l)?;
        }
    }
    Ok(out)
}
