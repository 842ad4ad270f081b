//! A reference model of the wallet ledger, shared by the property test
//! (`tests/wallet_model.rs`) and the fuzz target (`fuzz/fuzz_targets/wallet_ops.rs`): money is an
//! integer count of micro-units (1e-6), an independent, obviously exact account of what the
//! decimal ledger must hold after each operation.

use std::collections::HashMap;

use keeptrusts_core::pricing::Currency;
use keeptrusts_core::wallet::{
    Grant, LeaseStatus, Ledger, ReserveOutcome, ReserveRequest, WalletScope,
};
use keeptrusts_core::WalletKey;
use rust_decimal::Decimal;

/// Micro-units as a decimal.
pub fn money(micros: i64) -> Decimal {
    Decimal::new(micros, 6)
}

/// The three wallets of a run: a user's, a team's, an org's.
pub fn keys() -> [WalletKey; 3] {
    [
        WalletKey::new(WalletScope::User, "u@yourco.com"),
        WalletKey::new(WalletScope::Team, "engineering"),
        WalletKey::new(WalletScope::Org, "acme"),
    ]
}

/// One ledger operation.
#[derive(Debug, Clone)]
pub enum Op {
    Allocate {
        wallet: usize,
        micros: i64,
        top_up: bool,
    },
    Reserve {
        cascade: Vec<usize>,
        micros: i64,
        ttl: i64,
    },
    Settle {
        lease: usize,
        micros: i64,
    },
    Release {
        lease: usize,
    },
    Expire,
    Advance {
        ms: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum St {
    Active,
    Settled(i64),
    Released,
}

#[derive(Debug, Default)]
struct Model {
    wallets: HashMap<usize, (i64, i64, i64)>, // allocated, spent, reserved (micros)
    overrun: [bool; 3],
    leases: Vec<(usize, i64, i64, St)>, // wallet, amount, expires_at, status
}

impl Model {
    fn available(&self, w: usize) -> Option<i64> {
        self.wallets.get(&w).map(|(a, s, r)| a - s - r)
    }
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Runs `ops` on a fresh [`Ledger`] and on the model; the first difference, as a message.
/// Wallet indexes must be below 3.
pub fn run(ops: &[Op]) -> Result<(), String> {
    let keys = keys();
    let mut ledger = Ledger::default();
    let mut model = Model::default();
    let mut now: i64 = 1_000_000;
    let err = |e: keeptrusts_core::wallet::WalletError| e.to_string();
    for (step, op) in ops.iter().enumerate() {
        match op.clone() {
            Op::Allocate {
                wallet,
                micros,
                top_up,
            } => {
                let grant = if top_up {
                    Grant::top_up(money(micros), "USD")
                } else {
                    Grant::set(money(micros), "USD")
                };
                ledger.allocate(&keys[wallet], &grant, now).map_err(err)?;
                let w = model.wallets.entry(wallet).or_insert((0, 0, 0));
                w.0 = if top_up { w.0 + micros } else { micros };
                // lowering a budget below what is spent and held is allowed (documented)
                if w.0 < w.1 + w.2 {
                    model.overrun[wallet] = true;
                }
            }
            Op::Reserve {
                cascade,
                micros,
                ttl,
            } => {
                let req = ReserveRequest {
                    lease_id: format!("l{}", model.leases.len()).into(),
                    cascade: cascade.iter().map(|i| keys[*i].clone()).collect(),
                    amount: money(micros),
                    currency: Currency::USD,
                    ttl_ms: ttl,
                    price: None,
                    force: None,
                };
                let got = ledger.reserve(&req, now).map_err(err)?;
                let want = cascade
                    .iter()
                    .copied()
                    .find(|w| model.available(*w).is_some_and(|a| a >= micros));
                match (got, want) {
                    (ReserveOutcome::Reserved(lease), Some(w)) => {
                        ensure!(lease.wallet == keys[w], "step {step}: cascade order");
                        model.wallets.entry(w).or_default().2 += micros;
                        model.leases.push((w, micros, now + ttl, St::Active));
                    }
                    (ReserveOutcome::Insufficient, None) => {}
                    (got, want) => {
                        return Err(format!(
                            "step {step}: reserve got {got:?}, the model wants {want:?}"
                        ))
                    }
                }
            }
            Op::Settle { lease, micros } => {
                if lease >= model.leases.len() {
                    continue;
                }
                let s = ledger
                    .settle(&format!("l{lease}"), money(micros), now)
                    .map_err(err)?;
                let (w, amount, _, st) = model.leases[lease];
                match st {
                    St::Settled(first) => {
                        ensure!(s.replay, "step {step}: settling twice charges once");
                        ensure!(
                            s.charged == money(first),
                            "step {step}: a replay reports the first charge"
                        );
                    }
                    St::Active | St::Released => {
                        ensure!(!s.replay, "step {step}: a first settlement is no replay");
                        let mw = model.wallets.entry(w).or_default();
                        if st == St::Active {
                            mw.2 -= amount;
                        }
                        mw.1 += micros;
                        if micros > amount || st == St::Released {
                            model.overrun[w] |= micros > 0;
                        }
                        model.leases[lease].3 = St::Settled(micros);
                    }
                }
            }
            Op::Release { lease } => {
                if lease >= model.leases.len() {
                    continue;
                }
                ledger
                    .release(&format!("l{lease}"), LeaseStatus::Released)
                    .map_err(err)?;
                let (w, amount, _, st) = model.leases[lease];
                if st == St::Active {
                    model.wallets.entry(w).or_default().2 -= amount;
                    model.leases[lease].3 = St::Released;
                }
            }
            Op::Expire => {
                let n = ledger.expire(now).map_err(err)?;
                let mut m = 0;
                for l in model.leases.iter_mut() {
                    if l.3 == St::Active && now >= l.2 {
                        model.wallets.entry(l.0).or_default().2 -= l.1;
                        l.3 = St::Released;
                        m += 1;
                    }
                }
                ensure!(n == m, "step {step}: expiry released {n}, the model {m}");
            }
            Op::Advance { ms } => now += ms,
        }
        // the ledger equals the model, wallet by wallet
        for (i, k) in keys.iter().enumerate() {
            match (ledger.get(k, now), model.wallets.get(&i)) {
                (None, None) => {}
                (Some(w), Some(&(a, s, r))) => {
                    ensure!(
                        (w.allocated, w.spent, w.reserved) == (money(a), money(s), money(r)),
                        "step {step} wallet {i}: ledger {w:?}, model ({a}, {s}, {r}) micros"
                    );
                    ensure!(
                        w.reserved >= Decimal::ZERO,
                        "step {step}: reserved below zero"
                    );
                    ensure!(
                        model.overrun[i] || w.available() >= Decimal::ZERO,
                        "step {step}: available went negative without an overrun"
                    );
                }
                (got, want) => {
                    return Err(format!(
                        "step {step}: wallet {i} exists on one side only: {got:?} / {want:?}"
                    ))
                }
            }
        }
        // money is conserved: what was charged is what was spent; what is held is reserved
        let charged: i64 = model
            .leases
            .iter()
            .map(|l| if let St::Settled(c) = l.3 { c } else { 0 })
            .sum();
        let spent: Decimal = keys
            .iter()
            .filter_map(|k| ledger.get(k, now))
            .map(|w| w.spent)
            .sum();
        ensure!(
            spent == money(charged),
            "step {step}: spent {spent}, charged {charged} micros"
        );
        let held: Decimal = ledger
            .leases
            .values()
            .filter(|l| l.status == LeaseStatus::Active)
            .map(|l| l.amount)
            .sum();
        let reserved: Decimal = keys
            .iter()
            .filter_map(|k| ledger.get(k, now))
            .map(|w| w.reserved)
            .sum();
        ensure!(
            held == reserved,
            "step {step}: leases hold {held}, wallets reserve {reserved}"
        );
    }
    Ok(())
}
