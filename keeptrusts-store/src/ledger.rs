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
pub(crate) fn with_ledger<T, R: Rows + ?Sized>(
    rows: &mut R,
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
        if changed(before.wallets.get(k), w) {
            rows.save_wallet(w)?;
        }
    }
    for (id, l) in &ledger.leases {
        if changed(before.leases.get(id), l) {
            rows.save_lease(l)?;
        }
    }
    Ok(out)
}

/// Whether a row must be written back: it is new, its value changed, or only its decimal
/// scale did (`0` became `0.00`: equal as numbers, but stored and shown differently, so the
/// SQL stores keep exactly what the in-memory store keeps).
pub(crate) fn changed<T: PartialEq + serde::Serialize>(before: Option<&T>, after: &T) -> bool {
    match before {
        None => true,
        Some(b) if b != after => true,
        Some(b) => serde_json::to_string(b).ok() != serde_json::to_string(after).ok(),
    }
}
