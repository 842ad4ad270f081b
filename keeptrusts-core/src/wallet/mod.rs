//! Wallets: allocations per scope, the user → team → org cascade, reservation leases and
//! idempotent settlement (`docs/wallets.md`). Money is `rust_decimal` end to end and every operation is
//! checked.
//!
//! The rules live in [`Ledger`], a plain in-memory value: [`MemoryWallets`] wraps one in a mutex,
//! and a SQL store can load the rows an operation touches into a `Ledger` inside one transaction,
//! apply the same method, and write the rows back, so every store decides identically.
//!
//! ## Overrun
//! A reservation is an estimate. Settlement charges the provider's actual usage to the wallet
//! that held the lease, even when it is above the estimate; the wallet's available balance can
//! then go below zero, and no further reservation succeeds on it until it is funded. Settling an
//! expired or released lease still charges the actual cost (the provider was called). The other
//! way below zero is an owner lowering an allocation under what is already spent or reserved:
//! nothing held is revoked, and the wallet refuses new reservations until it is funded or its
//! period resets.

pub mod budget;
pub mod key;
pub mod queue;
pub mod ticket;

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::authority::{authorize, Action};
use crate::error::{AdminError, StoreError};
use crate::identity::{Principal, Role};
pub use crate::pack::spec::WalletScope;
use crate::pricing::{Currency, Price};
use crate::time::{month_start, Millis};
pub use key::WalletKey;

/// How often `spent` starts again from zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// At 00:00 UTC on the first day of each month.
    Monthly,
}

/// One wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    /// Which wallet.
    pub key: WalletKey,
    /// ISO 4217 code.
    pub currency: Currency,
    /// Budget.
    pub allocated: Decimal,
    /// Charged in the current period.
    pub spent: Decimal,
    /// Held by active leases.
    pub reserved: Decimal,
    /// Optional reset period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Start of the current period (ms), for periodic wallets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<Millis>,
}

impl Wallet {
    /// `allocated − spent − reserved` (negative after an overrun).
    pub fn available(&self) -> Decimal {
        self.allocated - self.spent - self.reserved
    }

    /// Starts a new period if `now` is past the current one.
    pub fn roll(&mut self, now: Millis) {
        if self.period == Some(Period::Monthly) {
            let start = month_start(now);
            if self.period_start.is_none_or(|s| s < start) {
                self.spent = Decimal::ZERO;
                self.period_start = Some(start);
            }
        }
    }
}

/// Lifecycle of a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaseStatus {
    /// Holding its amount.
    Active,
    /// Charged (see `charged`).
    Settled,
    /// Given back without a charge (the request failed before the provider billed).
    Released,
    /// Passed its TTL unsettled and given back.
    Expired,
}

/// A reservation: an amount held on one wallet for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Id (`rsv_<request id>`).
    pub id: Arc<str>,
    /// The wallet holding it.
    pub wallet: WalletKey,
    /// Amount held.
    pub amount: Decimal,
    /// Currency.
    pub currency: Currency,
    /// Price used for the estimate, so settlement can price the actual usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    /// Creation time.
    pub created_at: Millis,
    /// After this, an active lease is released by [`WalletStore::expire`].
    pub expires_at: Millis,
    /// Status.
    pub status: LeaseStatus,
    /// Amount charged at settlement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charged: Option<Decimal>,
    /// Reserved beyond the available balance on an approver's authority (cost ticket).
    #[serde(default)]
    pub approved_overrun: bool,
}

/// What to reserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveRequest {
    /// Lease id; reserving an id that exists returns the existing lease (idempotent retries).
    pub lease_id: Arc<str>,
    /// Wallets to try, in order; the first with enough available balance is used.
    pub cascade: Vec<WalletKey>,
    /// Amount to hold.
    pub amount: Decimal,
    /// Currency; wallets in another currency are skipped.
    pub currency: Currency,
    /// Lease lifetime.
    pub ttl_ms: Millis,
    /// Price to remember for settlement.
    pub price: Option<Price>,
    /// Hold on this wallet whatever its balance (an approved cost ticket).
    pub force: Option<WalletKey>,
}

impl Lease {
    /// The active lease `r` holds on `wallet` from `now` (a host that holds money its own way,
    /// such as a write-behind float, records its requests' leases with this).
    pub fn held(r: &ReserveRequest, wallet: WalletKey, now: Millis) -> Lease {
        Lease {
            id: Arc::clone(&r.lease_id),
            wallet,
            amount: r.amount,
            currency: r.currency,
            price: r.price,
            created_at: now,
            expires_at: now.saturating_add(r.ttl_ms),
            status: LeaseStatus::Active,
            charged: None,
            approved_overrun: r.force.is_some(),
        }
    }
}

/// Result of a reservation attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Held.
    Reserved(Lease),
    /// No wallet in the cascade could cover the amount.
    Insufficient,
}

/// Result of a settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// The lease after settlement.
    pub lease: Lease,
    /// What was charged (the first settlement's amount, on a replay).
    pub charged: Decimal,
    /// True when the lease was already settled and nothing was charged now.
    pub replay: bool,
}

/// Set or add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocateMode {
    /// `allocated = amount`.
    Set,
    /// `allocated += amount`.
    TopUp,
}

/// A wallet operation that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    /// No lease with that id.
    #[error("unknown lease `{0}`")]
    UnknownLease(String),
    /// A reservation reused the id of a lease that is no longer active.
    #[error("lease `{0}` was already used")]
    LeaseReused(String),
    /// No wallet with that key.
    #[error("no wallet {0}")]
    UnknownWallet(String),
    /// The wallet holds another currency.
    #[error("currency mismatch: wallet {wallet} is in {has}, not {wanted}")]
    CurrencyMismatch {
        /// The wallet.
        wallet: String,
        /// Its currency.
        has: Currency,
        /// The one asked for.
        wanted: Currency,
    },
    /// A negative, zero (for top-ups) or malformed amount, or an unknown currency code.
    #[error("invalid amount or currency: {0}")]
    Invalid(String),
    /// Arithmetic overflow; nothing changed.
    #[error("amount overflow")]
    Overflow,
    /// The store failed; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WalletError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            WalletError::UnknownLease(_) => "unknown_lease",
            WalletError::LeaseReused(_) => "lease_reused",
            WalletError::UnknownWallet(_) => "unknown_wallet",
            WalletError::CurrencyMismatch { .. } => "currency_mismatch",
            WalletError::Invalid(_) => "invalid_amount",
            WalletError::Overflow => "amount_overflow",
            WalletError::Store(e) => e.code(),
        }
    }
}

fn add(a: Decimal, b: Decimal) -> Result<Decimal, WalletError> {
    a.checked_add(b).ok_or(WalletError::Overflow)
}

fn sub(a: Decimal, b: Decimal) -> Result<Decimal, WalletError> {
    a.checked_sub(b).ok_or(WalletError::Overflow)
}

/// Wallets and leases, with every rule of `docs/wallets.md`. Each method either applies completely or
/// returns an error and changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Wallets by key.
    pub wallets: HashMap<WalletKey, Wallet>,
    /// Leases by id.
    pub leases: HashMap<Arc<str>, Lease>,
}

/// What an allocation gives a wallet: an amount in a currency, the period its `spent` resets
/// on (`None` keeps the wallet's), and whether the amount replaces the allocation or adds to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant<'a> {
    /// The amount (never negative; a top-up above zero).
    pub amount: Decimal,
    /// ISO 4217 code, upper case.
    pub currency: &'a str,
    /// When `spent` resets.
    pub period: Option<Period>,
    /// Set or top up.
    pub mode: AllocateMode,
}

impl<'a> Grant<'a> {
    /// Sets the allocation to `amount` in `currency`, keeping the wallet's period.
    pub fn set(amount: Decimal, currency: &'a str) -> Self {
        Grant {
            amount,
            currency,
            period: None,
            mode: AllocateMode::Set,
        }
    }

    /// Adds `amount` in `currency` to the allocation.
    pub fn top_up(amount: Decimal, currency: &'a str) -> Self {
        Grant {
            mode: AllocateMode::TopUp,
            ..Grant::set(amount, currency)
        }
    }

    /// The same, with `spent` resetting every `period`.
    pub fn every(self, period: Period) -> Self {
        Grant {
            period: Some(period),
            ..self
        }
    }
}

/// A settlement is never negative (a provider's usage cannot refund a wallet).
///
/// # Errors
/// `Invalid` for a negative `actual`.
pub fn check_settlement(actual: Decimal) -> Result<(), WalletError> {
    if actual.is_sign_negative() {
        return Err(WalletError::Invalid(
            "a settlement cannot be negative".into(),
        ));
    }
    Ok(())
}

impl Ledger {
    /// Sets or tops up a wallet, creating it if needed.
    ///
    /// # Errors
    /// `Invalid` for a negative amount, a non-positive top-up or a bad currency code;
    /// `CurrencyMismatch` if the wallet exists in another currency; `Overflow`.
    pub fn allocate(
        &mut self,
        key: &WalletKey,
        grant: &Grant,
        now: Millis,
    ) -> Result<Wallet, WalletError> {
        let Grant {
            amount,
            currency,
            period,
            mode,
        } = *grant;
        let currency: Currency = currency
            .parse()
            .map_err(|_| WalletError::Invalid(format!("`{currency}` is not an ISO 4217 code")))?;
        if amount.is_sign_negative() || (mode == AllocateMode::TopUp && amount.is_zero()) {
            return Err(WalletError::Invalid("the amount must be positive".into()));
        }
        let mut w = match self.wallets.get(key) {
            Some(w) => {
                if w.currency != currency {
                    return Err(WalletError::CurrencyMismatch {
                        wallet: key.to_string(),
                        has: w.currency,
                        wanted: currency,
                    });
                }
                w.clone()
            }
            None => Wallet {
                key: key.clone(),
                currency,
                allocated: Decimal::ZERO,
                spent: Decimal::ZERO,
                reserved: Decimal::ZERO,
                period: None,
                period_start: None,
            },
        };
        if period.is_some() {
            w.period = period;
        }
        w.roll(now);
        w.allocated = match mode {
            AllocateMode::Set => amount,
            AllocateMode::TopUp => add(w.allocated, amount)?,
        };
        self.wallets.insert(key.clone(), w.clone());
        Ok(w)
    }

    /// A wallet as of `now` (its period rolled).
    pub fn get(&mut self, key: &WalletKey, now: Millis) -> Option<Wallet> {
        let w = self.wallets.get_mut(key)?;
        w.roll(now);
        Some(w.clone())
    }

    /// Holds `amount` on the first wallet of the cascade that can cover it.
    ///
    /// # Errors
    /// `Invalid` for a negative amount; `UnknownWallet` / `CurrencyMismatch` for a forced
    /// wallet that is missing or in another currency; `Overflow`.
    pub fn reserve(
        &mut self,
        r: &ReserveRequest,
        now: Millis,
    ) -> Result<ReserveOutcome, WalletError> {
        if r.amount.is_sign_negative() {
            return Err(WalletError::Invalid(
                "a reservation cannot be negative".into(),
            ));
        }
        let slot = match self.leases.entry(Arc::clone(&r.lease_id)) {
            // a retry of the same request while its lease is held: the same lease
            Entry::Occupied(existing) if existing.get().status == LeaseStatus::Active => {
                return Ok(ReserveOutcome::Reserved(existing.get().clone()))
            }
            // the id was used by a request that already settled or gave its lease back: reusing
            // it must not ride on that lease (it would never be charged)
            Entry::Occupied(_) => return Err(WalletError::LeaseReused(r.lease_id.to_string())),
            Entry::Vacant(slot) => slot,
        };
        // Find the wallet and hold the amount on it in one lookup per candidate.
        let mut held = None;
        match &r.force {
            Some(key) => {
                let w = self
                    .wallets
                    .get_mut(key)
                    .ok_or_else(|| WalletError::UnknownWallet(key.to_string()))?;
                if w.currency != r.currency {
                    return Err(WalletError::CurrencyMismatch {
                        wallet: key.to_string(),
                        has: w.currency,
                        wanted: r.currency,
                    });
                }
                w.roll(now);
                w.reserved = add(w.reserved, r.amount)?;
                held = Some(key);
            }
            None => {
                for key in &r.cascade {
                    let Some(w) = self.wallets.get_mut(key) else {
                        continue;
                    };
                    if w.currency != r.currency {
                        continue;
                    }
                    w.roll(now);
                    if w.available() >= r.amount {
                        w.reserved = add(w.reserved, r.amount)?;
                        held = Some(key);
                        break;
                    }
                }
            }
        }
        let Some(key) = held else {
            return Ok(ReserveOutcome::Insufficient);
        };
        let lease = Lease::held(r, key.clone(), now);
        slot.insert(lease.clone());
        Ok(ReserveOutcome::Reserved(lease))
    }

    /// Charges `actual` for a lease, once: a second settlement of the same lease charges nothing
    /// and returns the first one.
    ///
    /// # Errors
    /// `UnknownLease`, `Invalid` for a negative amount, `Overflow`.
    pub fn settle(
        &mut self,
        lease_id: &str,
        actual: Decimal,
        now: Millis,
    ) -> Result<Settlement, WalletError> {
        check_settlement(actual)?;
        let lease = self
            .leases
            .get_mut(lease_id)
            .ok_or_else(|| WalletError::UnknownLease(lease_id.to_owned()))?;
        if lease.status == LeaseStatus::Settled {
            let charged = lease.charged.unwrap_or(Decimal::ZERO);
            return Ok(Settlement {
                lease: lease.clone(),
                charged,
                replay: true,
            });
        }
        let w = self
            .wallets
            .get_mut(&lease.wallet)
            .ok_or_else(|| WalletError::UnknownWallet(lease.wallet.to_string()))?;
        w.roll(now);
        let reserved = if lease.status == LeaseStatus::Active {
            sub(w.reserved, lease.amount)?
        } else {
            w.reserved
        };
        let spent = add(w.spent, actual)?;
        w.reserved = reserved;
        w.spent = spent;
        lease.status = LeaseStatus::Settled;
        lease.charged = Some(actual);
        Ok(Settlement {
            lease: lease.clone(),
            charged: actual,
            replay: false,
        })
    }

    /// Gives an active lease back without a charge. Releasing a lease that is no longer active
    /// changes nothing.
    ///
    /// # Errors
    /// `UnknownLease`, `Overflow`.
    pub fn release(&mut self, lease_id: &str, status: LeaseStatus) -> Result<Lease, WalletError> {
        let lease = self
            .leases
            .get(lease_id)
            .ok_or_else(|| WalletError::UnknownLease(lease_id.to_owned()))?
            .clone();
        if lease.status != LeaseStatus::Active {
            return Ok(lease);
        }
        if let Some(w) = self.wallets.get_mut(&lease.wallet) {
            w.reserved = sub(w.reserved, lease.amount)?;
        }
        let mut released = lease;
        released.status = status;
        self.leases
            .insert(Arc::clone(&released.id), released.clone());
        Ok(released)
    }

    /// Forgets finished (settled, released, expired) leases created before `before`; returns how
    /// many. Settlement is idempotent for as long as a lease is remembered, so keep at least the
    /// longest delay after which a host may retry a settlement.
    pub fn prune(&mut self, before: Millis) -> usize {
        let n = self.leases.len();
        self.leases
            .retain(|_, l| l.status == LeaseStatus::Active || l.created_at >= before);
        n - self.leases.len()
    }

    /// Releases every active lease whose TTL has passed; returns how many.
    ///
    /// # Errors
    /// `Overflow` (nothing is released then).
    pub fn expire(&mut self, now: Millis) -> Result<usize, WalletError> {
        let due: Vec<Arc<str>> = self
            .leases
            .values()
            .filter(|l| l.status == LeaseStatus::Active && now >= l.expires_at)
            .map(|l| l.id.clone())
            .collect();
        let mut copy = self.clone();
        for id in &due {
            copy.release(id, LeaseStatus::Expired)?;
        }
        *self = copy;
        Ok(due.len())
    }
}

/// Storage of wallets and leases. Every method is atomic: a SQL store makes each one statement or
/// one transaction (for example by loading the touched rows `FOR UPDATE` into a [`Ledger`]).
pub trait WalletStore: Send + Sync {
    /// See [`Ledger::allocate`].
    ///
    /// # Errors
    /// As [`Ledger::allocate`], or a store failure.
    fn allocate(&self, key: &WalletKey, grant: &Grant, now: Millis) -> Result<Wallet, WalletError>;

    /// One wallet, period rolled.
    ///
    /// # Errors
    /// A store failure.
    fn get(&self, key: &WalletKey, now: Millis) -> Result<Option<Wallet>, StoreError>;

    /// Every wallet, sorted by key.
    ///
    /// # Errors
    /// A store failure.
    fn list(&self, now: Millis) -> Result<Vec<Wallet>, StoreError>;

    /// See [`Ledger::reserve`].
    ///
    /// # Errors
    /// As [`Ledger::reserve`], or a store failure.
    fn reserve(&self, request: &ReserveRequest, now: Millis)
        -> Result<ReserveOutcome, WalletError>;

    /// See [`Ledger::settle`].
    ///
    /// # Errors
    /// As [`Ledger::settle`], or a store failure.
    fn settle(&self, id: &str, actual: Decimal, now: Millis) -> Result<Settlement, WalletError>;

    /// Releases an active lease (the request failed).
    ///
    /// # Errors
    /// As [`Ledger::release`], or a store failure.
    fn release(&self, lease_id: &str, now: Millis) -> Result<Lease, WalletError>;

    /// Releases expired leases; returns how many.
    ///
    /// # Errors
    /// A store failure.
    fn expire(&self, now: Millis) -> Result<usize, WalletError>;

    /// One lease.
    ///
    /// # Errors
    /// A store failure.
    fn lease(&self, lease_id: &str) -> Result<Option<Lease>, StoreError>;

    /// See [`Ledger::prune`].
    ///
    /// # Errors
    /// A store failure.
    fn prune(&self, before: Millis) -> Result<usize, StoreError>;
}

/// In-memory wallet store: one [`Ledger`] behind a mutex.
#[derive(Debug, Default)]
pub struct MemoryWallets {
    ledger: Mutex<Ledger>,
}

impl MemoryWallets {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Ledger) -> Result<T, WalletError>,
    ) -> Result<T, WalletError> {
        let mut l = self
            .ledger
            .lock()
            .map_err(|_| StoreError::Unavailable("wallet store lock poisoned".into()))?;
        f(&mut l)
    }

    /// A copy of the whole ledger (tests, exports).
    ///
    /// # Errors
    /// A poisoned lock.
    pub fn snapshot(&self) -> Result<Ledger, StoreError> {
        self.ledger
            .lock()
            .map(|l| l.clone())
            .map_err(|_| StoreError::Unavailable("wallet store lock poisoned".into()))
    }
}

fn store_err(e: WalletError) -> StoreError {
    match e {
        WalletError::Store(s) => s,
        other => StoreError::Corrupt(other.to_string()),
    }
}

impl WalletStore for MemoryWallets {
    fn allocate(&self, key: &WalletKey, grant: &Grant, now: Millis) -> Result<Wallet, WalletError> {
        self.with(|l| l.allocate(key, grant, now))
    }

    fn get(&self, key: &WalletKey, now: Millis) -> Result<Option<Wallet>, StoreError> {
        self.with(|l| Ok(l.get(key, now))).map_err(store_err)
    }

    fn list(&self, now: Millis) -> Result<Vec<Wallet>, StoreError> {
        self.with(|l| {
            let keys: Vec<WalletKey> = l.wallets.keys().cloned().collect();
            let mut v: Vec<Wallet> = keys.iter().filter_map(|k| l.get(k, now)).collect();
            v.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(v)
        })
        .map_err(store_err)
    }

    fn reserve(
        &self,
        request: &ReserveRequest,
        now: Millis,
    ) -> Result<ReserveOutcome, WalletError> {
        self.with(|l| l.reserve(request, now))
    }

    fn settle(&self, id: &str, actual: Decimal, now: Millis) -> Result<Settlement, WalletError> {
        self.with(|l| l.settle(id, actual, now))
    }

    fn release(&self, lease_id: &str, _now: Millis) -> Result<Lease, WalletError> {
        self.with(|l| l.release(lease_id, LeaseStatus::Released))
    }

    fn expire(&self, now: Millis) -> Result<usize, WalletError> {
        self.with(|l| l.expire(now))
    }

    fn lease(&self, lease_id: &str) -> Result<Option<Lease>, StoreError> {
        self.with(|l| Ok(l.leases.get(lease_id).cloned()))
            .map_err(store_err)
    }

    fn prune(&self, before: Millis) -> Result<usize, StoreError> {
        self.with(|l| Ok(l.prune(before))).map_err(store_err)
    }
}

/// Whether `actor` may fund or charge `key`: owners anywhere; admins their own team's wallet and
/// the wallets of users who belong to their team (`user_teams`: the user's teams, as the
/// directory stores them); members never. See [`crate::authority`].
pub fn may_manage(actor: &Principal, key: &WalletKey, user_teams: &[String]) -> bool {
    authorize(actor, &Action::ManageWallet { key, user_teams }).is_ok()
}

/// Sets or tops up a wallet on behalf of `actor` (the seed's `POST /v1/wallets/allocate`).
///
/// # Errors
/// `Forbidden` unless [`may_manage`]; `Invalid` for a bad amount or currency; `Conflict` for a
/// currency mismatch; `Store`.
pub fn allocate(
    store: &dyn WalletStore,
    actor: &Principal,
    key: &WalletKey,
    user_teams: &[String],
    grant: &Grant,
    now: Millis,
) -> Result<Wallet, AdminError> {
    authorize(actor, &Action::ManageWallet { key, user_teams })?;
    store.allocate(key, grant, now).map_err(admin_error)
}

/// The seed's allocation body (`POST /v1/wallets/allocate`): `{"team_id": "legal", "amount": 1000.00,
/// "currency": "USD", "period": "monthly"}` as the seed writes it, or `team` / `user` / `org` (and
/// `user_id` / `org_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allocation {
    /// A team wallet.
    #[serde(default, alias = "team_id", skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// A user wallet.
    #[serde(default, alias = "user_id", skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// An org wallet.
    #[serde(default, alias = "org_id", skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The amount.
    pub amount: Decimal,
    /// ISO currency code (default USD).
    #[serde(default = "usd")]
    pub currency: String,
    /// When `spent` resets (default: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// `set` (default) or `top_up`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<AllocateMode>,
    /// Accepted for older clients and ignored: who may manage a user wallet follows the teams
    /// the directory says the user belongs to, never a claim in the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_team: Option<String>,
}

fn usd() -> String {
    "USD".into()
}

impl Allocation {
    /// The wallet the body names.
    ///
    /// # Errors
    /// `Invalid` unless exactly one of `team`, `user`, `org` is given.
    pub fn key(&self) -> Result<WalletKey, AdminError> {
        match (&self.team, &self.user, &self.org) {
            (Some(t), None, None) => Ok(WalletKey::new(WalletScope::Team, t)),
            (None, Some(u), None) => Ok(WalletKey::new(WalletScope::User, u)),
            (None, None, Some(o)) => Ok(WalletKey::new(WalletScope::Org, o)),
            _ => Err(AdminError::Invalid(
                "name exactly one of `team`, `user`, `org`".into(),
            )),
        }
    }
}

/// The wallets `viewer` may see: an owner every wallet; anyone else their team's and their own.
pub fn visible(viewer: &Principal, wallets: Vec<Wallet>) -> Vec<Wallet> {
    if !viewer.authenticated {
        return Vec::new();
    }
    wallets
        .into_iter()
        .filter(|w| {
            viewer.role == Some(Role::Owner)
                || (viewer.standing() == crate::Standing::OrgAdmin
                    && w.key.scope != WalletScope::Org)
                || (w.key.scope == WalletScope::Team && viewer.team.as_deref() == Some(&*w.key.id))
                || (w.key.scope == WalletScope::User && viewer.user.as_deref() == Some(&*w.key.id))
        })
        .collect()
}

pub(crate) fn admin_error(e: WalletError) -> AdminError {
    match e {
        WalletError::Store(s) => AdminError::Store(s),
        e @ WalletError::CurrencyMismatch { .. } => AdminError::Conflict(e.to_string()),
        e @ (WalletError::UnknownLease(_) | WalletError::UnknownWallet(_)) => {
            AdminError::NotFound(e.to_string())
        }
        e @ WalletError::LeaseReused(_) => AdminError::Conflict(e.to_string()),
        e => AdminError::Invalid(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::Currency;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn monthly_wallets_reset_spent() {
        let mut l = Ledger::default();
        let k = WalletKey::new(WalletScope::Team, "engineering");
        let oct = 1_790_812_800_000 + 5 * 86_400_000;
        l.allocate(
            &k,
            &Grant::set(d("1000"), "USD").every(Period::Monthly),
            oct,
        )
        .unwrap();
        let r = ReserveRequest {
            lease_id: "a".into(),
            cascade: vec![k.clone()],
            amount: d("10"),
            currency: Currency::USD,
            ttl_ms: 1000,
            price: None,
            force: None,
        };
        l.reserve(&r, oct).unwrap();
        l.settle("a", d("7.5"), oct).unwrap();
        assert_eq!(l.get(&k, oct).unwrap().spent, d("7.5"));
        let nov = 1_793_491_200_000 + 1;
        assert_eq!(l.get(&k, nov).unwrap().spent, Decimal::ZERO);
        assert_eq!(l.get(&k, nov).unwrap().available(), d("1000"));
    }

    #[test]
    fn admins_manage_their_team_only() {
        let admin = Principal::new("a@x.com", "support", Role::Admin);
        assert!(may_manage(
            &admin,
            &WalletKey::new(WalletScope::Team, "support"),
            &[]
        ));
        assert!(!may_manage(
            &admin,
            &WalletKey::new(WalletScope::Team, "engineering"),
            &[]
        ));
        assert!(may_manage(
            &admin,
            &WalletKey::new(WalletScope::User, "u@x.com"),
            &["support".to_owned()]
        ));
        assert!(!may_manage(
            &admin,
            &WalletKey::new(WalletScope::User, "u@x.com"),
            &["legal".to_owned()]
        ));
        assert!(!may_manage(
            &admin,
            &WalletKey::new(WalletScope::Org, "acme"),
            &[]
        ));
        let member = Principal::new("m@x.com", "support", Role::Member);
        assert!(!may_manage(
            &member,
            &WalletKey::new(WalletScope::Team, "support"),
            &[]
        ));
        let owner = Principal::new("o@x.com", "any", Role::Owner);
        assert!(may_manage(
            &owner,
            &WalletKey::new(WalletScope::Org, "acme"),
            &[]
        ));
    }
}
