//! The wallet ledger against a simple reference model, under concurrency, and at scale.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use keeptrusts_core::pricing::Currency;
use keeptrusts_core::wallet::{
    AllocateMode, LeaseStatus, Ledger, MemoryWallets, ReserveOutcome, ReserveRequest, WalletScope,
    WalletStore,
};
use keeptrusts_core::WalletKey;
use proptest::prelude::*;
use rust_decimal::Decimal;

/// Money in the model is an integer count of micro-units (1e-6): an independent, obviously exact
/// reference for the decimal ledger.
fn money(micros: i64) -> Decimal {
    Decimal::new(micros, 6)
}

fn keys() -> [WalletKey; 3] {
    [
        WalletKey::new(WalletScope::User, "u@yourco.com"),
        WalletKey::new(WalletScope::Team, "engineering"),
        WalletKey::new(WalletScope::Org, "acme"),
    ]
}

#[derive(Debug, Clone)]
enum Op {
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

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0usize..3, 0i64..5_000_000, any::<bool>()).prop_map(|(wallet, micros, top_up)| Op::Allocate {
            wallet,
            micros: if top_up { micros.max(1) } else { micros },
            top_up
        }),
        4 => (proptest::sample::subsequence(vec![0usize, 1, 2], 0..=3), 0i64..2_000_000, 1i64..5_000)
            .prop_map(|(cascade, micros, ttl)| Op::Reserve { cascade, micros, ttl }),
        3 => (0usize..64, 0i64..3_000_000).prop_map(|(lease, micros)| Op::Settle { lease, micros }),
        1 => (0usize..64).prop_map(|lease| Op::Release { lease }),
        1 => Just(Op::Expire),
        1 => (1i64..3_000).prop_map(|ms| Op::Advance { ms }),
    ]
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn ledger_matches_the_reference_model(ops in proptest::collection::vec(op(), 1..80)) {
        let keys = keys();
        let mut ledger = Ledger::default();
        let mut model = Model::default();
        let mut now: i64 = 1_000_000;
        for (step, op) in ops.iter().enumerate() {
            match op.clone() {
                Op::Allocate { wallet, micros, top_up } => {
                    let mode = if top_up { AllocateMode::TopUp } else { AllocateMode::Set };
                    ledger.allocate(&keys[wallet], money(micros), "USD", None, mode, now).unwrap();
                    let w = model.wallets.entry(wallet).or_insert((0, 0, 0));
                    w.0 = if top_up { w.0 + micros } else { micros };
                    // lowering a budget below what is spent and held is allowed (documented)
                    if w.0 < w.1 + w.2 { model.overrun[wallet] = true; }
                }
                Op::Reserve { cascade, micros, ttl } => {
                    let req = ReserveRequest {
                        lease_id: format!("l{}", model.leases.len()).into(),
                        cascade: cascade.iter().map(|i| keys[*i].clone()).collect(),
                        amount: money(micros),
                        currency: Currency::USD,
                        ttl_ms: ttl,
                        price: None,
                        force: None,
                    };
                    let got = ledger.reserve(&req, now).unwrap();
                    let want = cascade.iter().copied().find(|w| model.available(*w).is_some_and(|a| a >= micros));
                    match (got, want) {
                        (ReserveOutcome::Reserved(lease), Some(w)) => {
                            prop_assert_eq!(&lease.wallet, &keys[w], "cascade order");
                            model.wallets.get_mut(&w).unwrap().2 += micros;
                            model.leases.push((w, micros, now + ttl, St::Active));
                        }
                        (ReserveOutcome::Insufficient, None) => {}
                        (got, want) => prop_assert!(false, "step {}: reserve got {:?}, model wants {:?}", step, got, want),
                    }
                }
                Op::Settle { lease, micros } => {
                    if lease >= model.leases.len() { continue; }
                    let s = ledger.settle(&format!("l{lease}"), money(micros), now).unwrap();
                    let (w, amount, _, st) = model.leases[lease];
                    match st {
                        St::Settled(first) => {
                            prop_assert!(s.replay, "settling twice charges once");
                            prop_assert_eq!(s.charged, money(first));
                        }
                        St::Active | St::Released => {
                            prop_assert!(!s.replay);
                            let mw = model.wallets.get_mut(&w).unwrap();
                            if st == St::Active { mw.2 -= amount; }
                            mw.1 += micros;
                            if micros > amount || st == St::Released { model.overrun[w] |= micros > 0; }
                            model.leases[lease].3 = St::Settled(micros);
                        }
                    }
                }
                Op::Release { lease } => {
                    if lease >= model.leases.len() { continue; }
                    ledger.release(&format!("l{lease}"), LeaseStatus::Released).unwrap();
                    let (w, amount, _, st) = model.leases[lease];
                    if st == St::Active {
                        model.wallets.get_mut(&w).unwrap().2 -= amount;
                        model.leases[lease].3 = St::Released;
                    }
                }
                Op::Expire => {
                    let n = ledger.expire(now).unwrap();
                    let mut m = 0;
                    for l in model.leases.iter_mut() {
                        if l.3 == St::Active && now >= l.2 {
                            model.wallets.get_mut(&l.0).unwrap().2 -= l.1;
                            l.3 = St::Released;
                            m += 1;
                        }
                    }
                    prop_assert_eq!(n, m, "expiry releases exactly the due leases");
                }
                Op::Advance { ms } => now += ms,
            }
            // the ledger equals the model, wallet by wallet
            for (i, k) in keys.iter().enumerate() {
                let got = ledger.get(k, now);
                let want = model.wallets.get(&i);
                match (got, want) {
                    (None, None) => {}
                    (Some(w), Some(&(a, s, r))) => {
                        prop_assert_eq!((w.allocated, w.spent, w.reserved), (money(a), money(s), money(r)), "step {} wallet {}", step, i);
                        prop_assert!(w.reserved >= Decimal::ZERO);
                        prop_assert!(model.overrun[i] || w.available() >= Decimal::ZERO, "available went negative without an overrun");
                    }
                    (got, want) => prop_assert!(false, "wallet {} exists in one side only: {:?} / {:?}", i, got, want),
                }
            }
            // money is conserved: what was charged is what was spent; what is held is reserved
            let charged: i64 = model.leases.iter().map(|l| if let St::Settled(c) = l.3 { c } else { 0 }).sum();
            let spent: Decimal = keys.iter().filter_map(|k| ledger.get(k, now)).map(|w| w.spent).sum();
            prop_assert_eq!(spent, money(charged));
            let held: Decimal = ledger.leases.values().filter(|l| l.status == LeaseStatus::Active).map(|l| l.amount).sum();
            let reserved: Decimal = keys.iter().filter_map(|k| ledger.get(k, now)).map(|w| w.reserved).sum();
            prop_assert_eq!(held, reserved);
        }
    }
}

#[test]
fn sixteen_threads_never_overspend_and_the_ledger_equals_the_settlements() {
    const THREADS: usize = 16;
    const PER_THREAD: usize = 10_000;
    let store = Arc::new(MemoryWallets::new());
    let key = WalletKey::new(WalletScope::Team, "engineering");
    store
        .allocate(
            &key,
            Decimal::new(50_000, 2),
            "USD",
            None,
            AllocateMode::Set,
            0,
        )
        .unwrap(); // 500.00
    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (store, key, done) = (Arc::clone(&store), key.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut samples = 0u64;
            while !done.load(Ordering::Relaxed) {
                let w = store.get(&key, 0).unwrap().unwrap();
                assert!(
                    w.spent + w.reserved <= w.allocated,
                    "reserved past the allocation: {w:?}"
                );
                samples += 1;
            }
            samples
        })
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, key) = (Arc::clone(&store), key.clone());
            std::thread::spawn(move || {
                let mut charged = Decimal::ZERO;
                let mut reserved = 0usize;
                for i in 0..PER_THREAD {
                    let req = ReserveRequest {
                        lease_id: format!("t{t}-{i}").into(),
                        cascade: vec![key.clone()],
                        amount: Decimal::new(1, 2), // 0.01
                        currency: Currency::USD,
                        ttl_ms: 60_000,
                        price: None,
                        force: None,
                    };
                    if let ReserveOutcome::Reserved(lease) = store.reserve(&req, 0).unwrap() {
                        reserved += 1;
                        // actual cost between 0.001 and 0.01, never above the estimate
                        let actual =
                            Decimal::new(((t * 7919 + i * 104_729) % 9_000 + 1_000) as i64, 6);
                        charged += store.settle(&lease.id, actual, 0).unwrap().charged;
                    }
                }
                (charged, reserved)
            })
        })
        .collect();
    let mut total = Decimal::ZERO;
    let mut reservations = 0;
    for w in workers {
        let (c, n) = w.join().unwrap();
        total += c;
        reservations += n;
    }
    done.store(true, Ordering::Relaxed);
    let samples = monitor.join().unwrap();
    let w = store.get(&key, 0).unwrap().unwrap();
    assert_eq!(w.spent, total, "the ledger equals the sum of settlements");
    assert_eq!(w.reserved, Decimal::ZERO);
    assert!(w.spent <= w.allocated);
    assert!(reservations > 0 && samples > 0);
    // the wallet ran dry: some reservations were refused, and what remains is below one estimate
    assert!(reservations < THREADS * PER_THREAD, "{reservations}");
    assert!(w.available() < Decimal::new(1, 2) + Decimal::new(1, 2));
}

#[test]
fn a_million_sub_cent_settlements_sum_exactly() {
    let mut ledger = Ledger::default();
    let key = WalletKey::new(WalletScope::Org, "acme");
    ledger
        .allocate(
            &key,
            Decimal::new(1_000_000, 0),
            "USD",
            None,
            AllocateMode::Set,
            0,
        )
        .unwrap();
    let mut exact: i128 = 0; // in units of 1e-9
    for i in 0..1_000_000i64 {
        let units = (i * 7919) % 999_983 + 1; // 1e-9 .. ~0.001: sub-cent
        let req = ReserveRequest {
            lease_id: i.to_string().into(),
            cascade: vec![key.clone()],
            amount: Decimal::new(1, 3),
            currency: Currency::USD,
            ttl_ms: 1_000,
            price: None,
            force: None,
        };
        ledger.reserve(&req, i).unwrap();
        ledger
            .settle(&req.lease_id, Decimal::new(units, 9), i)
            .unwrap();
        exact += i128::from(units);
        if i % 10_000 == 9_999 {
            ledger.prune(i);
        }
    }
    let w = ledger.get(&key, 0).unwrap();
    assert_eq!(w.spent.mantissa() * 10i128.pow(9 - w.spent.scale()), exact);
    assert_eq!(w.reserved, Decimal::ZERO);
    assert_eq!(w.allocated - w.available(), w.spent);
}
