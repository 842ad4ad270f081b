//! The wallet ledger against a simple reference model, under concurrency, and at scale.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use keeptrusts_core::pricing::Currency;
use keeptrusts_core::wallet::{
    Grant, Ledger, MemoryWallets, ReserveOutcome, ReserveRequest, WalletScope, WalletStore,
};
use keeptrusts_core::WalletKey;
use proptest::prelude::*;
use rust_decimal::Decimal;

#[path = "support/wallet_reference.rs"]
mod reference;

use reference::Op;

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

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn ledger_matches_the_reference_model(ops in proptest::collection::vec(op(), 1..80)) {
        if let Err(e) = reference::run(&ops) {
            prop_assert!(false, "{}", e);
        }
    }
}

#[test]
fn sixteen_threads_never_overspend_and_the_ledger_equals_the_settlements() {
    const THREADS: usize = 16;
    const PER_THREAD: usize = 10_000;
    let store = Arc::new(MemoryWallets::new());
    let key = WalletKey::new(WalletScope::Team, "engineering");
    let budget = Decimal::new(50_000, 2); // 500.00
    store.allocate(&key, &Grant::set(budget, "USD"), 0).unwrap();
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
    let budget = Decimal::new(1_000_000, 0);
    ledger
        .allocate(&key, &Grant::set(budget, "USD"), 0)
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
