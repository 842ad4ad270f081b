//! The write-behind ledger decides exactly as the store alone would, never lets two writers of
//! one file overspend, and leaves the file exact once closed.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;

use keeptrusts_core::event::{verify, EventDraft, EventStore};
use keeptrusts_core::pricing::Currency;
use keeptrusts_core::wallet::{
    Grant, Lease, LeaseStatus, ReserveOutcome, ReserveRequest, WalletError, WalletScope,
    WalletStore,
};
use keeptrusts_core::{Storage, WalletKey};
use keeptrusts_store::{open_write_behind, BlockingHook, PgStore, SqliteStore, WriteBehind};
use rust_decimal::Decimal;

mod common;

fn hook() -> BlockingHook {
    Arc::new(|f: &mut dyn FnMut()| f())
}

fn db(name: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("kt-wb-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ledger.db");
    let url = format!("sqlite:{}", path.display());
    (path, url)
}

fn team() -> WalletKey {
    WalletKey::new(WalletScope::Team, "engineering")
}

fn request(id: &str, amount: Decimal) -> ReserveRequest {
    ReserveRequest {
        lease_id: format!("rsv_{id}").into(),
        cascade: vec![WalletKey::new(WalletScope::User, "dev@yourco.com"), team()],
        amount,
        currency: Currency::USD,
        ttl_ms: 60_000,
        price: None,
        force: None,
    }
}

fn draft(request_id: &str) -> EventDraft {
    common::event_draft(request_id, 1)
}

/// A request id issued by `wb` and its reservation of 1.00 at `now`.
fn reserved(wb: &WriteBehind, now: i64) -> (String, Lease) {
    let id = wb.new_request_id().unwrap();
    let ReserveOutcome::Reserved(l) = wb.reserve(&request(&id, Decimal::ONE), now).unwrap() else {
        panic!("reserved")
    };
    (id, l)
}

/// What another connection to the file at `path` reads at `now`: the team wallet's spent (its
/// reserved must be zero) and the number of events.
fn written(path: &std::path::Path, now: i64) -> (Decimal, usize) {
    let other = SqliteStore::open(path).unwrap();
    let w = WalletStore::get(&other, &team(), now).unwrap().unwrap();
    assert_eq!(w.reserved, Decimal::ZERO);
    (w.spent, EventStore::list(&other, "default").unwrap().len())
}

/// Reserves 1.00 and settles 0.73 until the cascade runs dry; returns how many went through.
fn drain(wallets: &dyn WalletStore, wb: Option<&WriteBehind>, tag: &str) -> usize {
    let mut n = 0;
    loop {
        let id = wb.map_or_else(|| format!("{tag}-{n}"), |w| w.new_request_id().unwrap());
        match wallets.reserve(&request(&id, Decimal::ONE), 5).unwrap() {
            ReserveOutcome::Reserved(l) => {
                assert_eq!(l.wallet, team());
                match wb {
                    Some(wb) => {
                        wb.complete(Some(&l.id), Some(Decimal::new(73, 2)), 6, Some(draft(&id)))
                            .unwrap();
                    }
                    None => {
                        wallets.settle(&l.id, Decimal::new(73, 2), 6).unwrap();
                    }
                }
                n += 1;
            }
            ReserveOutcome::Insufficient => return n,
        }
    }
}

#[test]
fn decides_exactly_as_the_store_alone_and_leaves_the_file_exact() {
    let (_, url_a) = db("exact-a");
    let plain = SqliteStore::open(url_a.trim_start_matches("sqlite:")).unwrap();
    common::fund(&plain, &team(), 10);
    let direct = drain(&plain, None, "direct");

    let (path, url) = db("exact-b");
    let (store, wb) = open_write_behind(&url, hook()).unwrap();
    common::fund(store.as_ref(), &team(), 10);
    let behind = drain(wb.as_ref(), Some(&wb), "behind");
    // 10.00 at 0.73 a request, each needing 1.00 available: 13 requests either way
    assert_eq!((direct, behind), (13, 13));

    // another connection sees the float held for this process as reserved until it is given
    // back; the process itself sees only what its requests hold
    let other = SqliteStore::open(&path).unwrap();
    wb.flush().unwrap();
    let mine = WalletStore::get(wb.as_ref(), &team(), 7).unwrap().unwrap();
    assert_eq!(mine.reserved, Decimal::ZERO);
    assert_eq!(mine.spent, Decimal::new(949, 2));
    wb.close().unwrap();
    let w = WalletStore::get(&other, &team(), 7).unwrap().unwrap();
    let p = WalletStore::get(&plain, &team(), 7).unwrap().unwrap();
    assert_eq!((w.spent, w.reserved), (p.spent, p.reserved));
    assert_eq!((w.spent, w.reserved), (Decimal::new(949, 2), Decimal::ZERO));
    // every request left its lease (settled) and its event, in one verified chain
    let events = EventStore::list(&other, "default").unwrap();
    assert_eq!(events.len(), 13);
    verify(&events, None).unwrap();
    let first = events[0].body.request_id.clone();
    let lease = WalletStore::lease(&other, &format!("rsv_{first}"))
        .unwrap()
        .unwrap();
    assert_eq!(lease.status, LeaseStatus::Settled);
    assert_eq!(lease.charged, Some(Decimal::new(73, 2)));
}

/// Two write-behind ledgers (two gateway processes) and a writer through the store itself
/// spend one wallet of 300.00 at once, past its end: exactly what was settled is spent, nothing
/// stays reserved, nothing goes over, and what the floats held comes back.
fn never_overspend(a: &Arc<WriteBehind>, b: &Arc<WriteBehind>, plain: &Arc<dyn Storage>) {
    // real time: the ledgers' writers expire the store's leases by the clock every 5 s, so a
    // lease stamped at a made-up time in 1970 would be expired under a slow run and its
    // settlement (which charges an expired lease, as a provider's bill must be) would overspend
    let now = || {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(i64::MAX)
    };
    common::fund(plain.as_ref(), &team(), 300);
    let mut handles = Vec::new();
    for wb in [a, a, b, b] {
        let wb = Arc::clone(wb);
        handles.push(std::thread::spawn(move || {
            let (mut charged, mut refused) = (Decimal::ZERO, 0);
            for _ in 0..150 {
                let id = wb.new_request_id().unwrap();
                if let ReserveOutcome::Reserved(l) =
                    wb.reserve(&request(&id, Decimal::ONE), now()).unwrap()
                {
                    wb.complete(
                        Some(&l.id),
                        Some(Decimal::new(73, 2)),
                        now(),
                        Some(draft(&id)),
                    )
                    .unwrap();
                    charged += Decimal::new(73, 2);
                } else {
                    refused += 1;
                }
            }
            (charged, refused)
        }));
    }
    // a third writer (the CLI, the bindings) reserving through the store itself meanwhile
    let p2 = Arc::clone(plain);
    let direct = std::thread::spawn(move || {
        let mut charged = Decimal::ZERO;
        for i in 0..150 {
            if let ReserveOutcome::Reserved(l) = p2
                .reserve(&request(&format!("cli-{i}"), Decimal::ONE), now())
                .unwrap()
            {
                charged += p2
                    .settle(&l.id, Decimal::new(73, 2), now())
                    .unwrap()
                    .charged;
            }
        }
        charged
    });
    let (mut behind, mut refused) = (Decimal::ZERO, 0);
    for h in handles {
        let (c, r) = h.join().unwrap();
        behind += c;
        refused += r;
    }
    let direct = direct.join().unwrap();
    a.close().unwrap();
    b.close().unwrap();
    // 750 attempts of 1.00 against 300.00 at 0.73 (about 410 fit): the end was reached
    assert!(refused > 0);
    let w = WalletStore::get(plain.as_ref(), &team(), now())
        .unwrap()
        .unwrap();
    assert_eq!(
        w.spent,
        behind + direct,
        "the ledger holds exactly what was settled"
    );
    assert_eq!(w.reserved, Decimal::ZERO, "both floats were given back");
    assert!(w.spent <= w.allocated);
    // what a float held while its process was idle is usable again: the rest drains to the end
    let rest = drain(plain.as_ref(), None, "rest");
    let w = WalletStore::get(plain.as_ref(), &team(), now())
        .unwrap()
        .unwrap();
    assert!(w.available() < Decimal::ONE, "{w:?}");
    assert!(w.spent <= w.allocated);
    assert!(
        rest < 60,
        "{rest} more after the run: the floats hid too much"
    );
    // one event per request settled behind, in one verified chain
    let events = EventStore::list(plain.as_ref(), "default").unwrap();
    verify(&events, None).unwrap();
    assert_eq!(Decimal::from(events.len()) * Decimal::new(73, 2), behind);
}

#[test]
fn two_writers_and_a_plain_store_on_one_sqlite_file_never_overspend() {
    let (path, url) = db("overspend");
    let plain: Arc<dyn Storage> = Arc::new(SqliteStore::open(&path).unwrap());
    let a = open_write_behind(&url, hook()).unwrap().1;
    let b = open_write_behind(&url, hook()).unwrap().1;
    never_overspend(&a, &b, &plain);
}

#[test]
fn two_writers_and_a_plain_store_on_postgres_never_overspend() {
    let Ok(url) = std::env::var("KEEPTRUSTS_TEST_POSTGRES_URL") else {
        eprintln!("KEEPTRUSTS_TEST_POSTGRES_URL is not set: PostgreSQL test not run");
        return;
    };
    let schema = format!("kt_test_{}_write_behind", std::process::id());
    let mut c = postgres::Client::connect(&url, postgres::NoTls)
        .expect("KEEPTRUSTS_TEST_POSTGRES_URL is set but the server is unreachable");
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .unwrap();
    let open = || Arc::new(PgStore::connect_in_schema(&url, Some(&schema)).unwrap());
    let plain: Arc<dyn Storage> = open();
    let a = WriteBehind::postgres(open(), hook()).unwrap();
    let b = WriteBehind::postgres(open(), hook()).unwrap();
    never_overspend(&a, &b, &plain);
    c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}

#[test]
fn client_ids_are_held_in_memory_and_replays_are_refused() {
    let (path, url) = db("ids");
    let (store, wb) = open_write_behind(&url, hook()).unwrap();
    common::fund(store.as_ref(), &team(), 10);
    let other = SqliteStore::open(&path).unwrap();
    // a client's own request id: held from the float like an issued one (where a lease was
    // made decides how it is finished, not the shape of its id)
    let r = request("client-chosen", Decimal::ONE);
    assert!(matches!(
        wb.reserve(&r, 5).unwrap(),
        ReserveOutcome::Reserved(_)
    ));
    let l = WalletStore::lease(wb.as_ref(), "rsv_client-chosen")
        .unwrap()
        .unwrap();
    assert_eq!(l.status, LeaseStatus::Active);
    wb.complete(
        Some(&l.id),
        Some(Decimal::new(5, 1)),
        6,
        Some(draft("client-chosen")),
    )
    .unwrap();
    // an issued id, settled, then replayed: refused in memory, then by the store once written
    let (id, l) = reserved(&wb, 5);
    wb.complete(Some(&l.id), Some(Decimal::new(5, 1)), 6, Some(draft(&id)))
        .unwrap();
    assert!(matches!(
        wb.reserve(&request(&id, Decimal::ONE), 5),
        Err(WalletError::LeaseReused(_))
    ));
    // settling twice charges once
    assert_eq!(
        wb.complete(Some(&l.id), Some(Decimal::new(5, 1)), 7, Some(draft(&id)))
            .unwrap(),
        None
    );
    // a float holding the balance does not make the store refuse a request it can cover
    let big = request("client-big", Decimal::new(8, 0));
    assert!(matches!(
        wb.reserve(&big, 5).unwrap(),
        ReserveOutcome::Reserved(_)
    ));
    wb.complete(Some("rsv_client-big"), None, 6, None).unwrap();
    wb.close().unwrap();
    let w = WalletStore::get(&other, &team(), 7).unwrap().unwrap();
    assert_eq!((w.spent, w.reserved), (Decimal::ONE, Decimal::ZERO));
    assert_eq!(EventStore::list(&other, "default").unwrap().len(), 2);
    assert_eq!(
        WalletStore::lease(&other, "rsv_client-big")
            .unwrap()
            .unwrap()
            .status,
        LeaseStatus::Released
    );
}

#[test]
fn missing_wallets_are_skipped_and_failures_release() {
    let (path, url) = db("cascade");
    let (store, wb) = open_write_behind(&url, hook()).unwrap();
    common::fund(store.as_ref(), &team(), 5);
    // no user wallet: the team pays, and keeps paying without asking the store each time
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, l) = reserved(&wb, 5);
        assert_eq!(l.wallet, team());
        ids.push(l.id);
    }
    // a request that failed upstream gives its reservation back
    for id in &ids {
        let released = wb.complete(Some(id), None, 6, None).unwrap().unwrap();
        assert_eq!(released.status, LeaseStatus::Released);
    }
    // the user wallet appears: allocations through the ledger are seen at once
    wb.allocate(
        &WalletKey::new(WalletScope::User, "dev@yourco.com"),
        &Grant::set(Decimal::new(2, 0), "USD"),
        7,
    )
    .unwrap();
    let (_, l) = reserved(&wb, 8);
    assert_eq!(l.wallet.scope, WalletScope::User);
    wb.complete(Some(&l.id), Some(Decimal::ONE), 9, None)
        .unwrap();
    wb.close().unwrap();
    let other = SqliteStore::open(&path).unwrap();
    let t = WalletStore::get(&other, &team(), 9).unwrap().unwrap();
    assert_eq!((t.spent, t.reserved), (Decimal::ZERO, Decimal::ZERO));
    let u = WalletStore::get(
        &other,
        &WalletKey::new(WalletScope::User, "dev@yourco.com"),
        9,
    )
    .unwrap()
    .unwrap();
    assert_eq!((u.spent, u.reserved), (Decimal::ONE, Decimal::ZERO));
}

#[test]
fn a_locked_file_stops_the_memory_path_and_nothing_is_lost() {
    let (path, url) = db("locked");
    let (store, wb) = open_write_behind(&url, hook()).unwrap();
    common::fund(store.as_ref(), &team(), 100);
    let (id, l) = reserved(&wb, 5);
    // another process holds the write lock: the settlement waits in memory, the batch fails,
    // and new reservations are refused until the file is back
    let locker = rusqlite_lock(&path);
    wb.complete(Some(&l.id), Some(Decimal::new(5, 1)), 6, Some(draft(&id)))
        .unwrap();
    assert!(wb.flush().is_err());
    let id2 = wb.new_request_id().unwrap();
    assert!(matches!(
        wb.reserve(&request(&id2, Decimal::ONE), 5),
        Err(WalletError::Store(_))
    ));
    drop(locker);
    wb.flush().unwrap();
    wb.close().unwrap();
    let (spent, events) = written(&path, 7);
    assert_eq!(spent, Decimal::new(5, 1));
    assert_eq!(events, 1);
}

#[test]
fn a_receipt_is_committed_only_once_its_settlement_and_event_are_in_the_store() {
    let (path, url) = db("receipt");
    let (store, wb) = open_write_behind(&url, hook()).unwrap();
    common::fund(store.as_ref(), &team(), 100);
    let told = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let t2 = Arc::clone(&told);
    wb.on_commit(Box::new(move |c| {
        t2.store(c, std::sync::atomic::Ordering::SeqCst)
    }));
    let (id, l) = reserved(&wb, 5);
    // the store is locked: the receipt is not committed, and waiting for it times out
    let locker = rusqlite_lock(&path);
    wb.complete(Some(&l.id), Some(Decimal::new(5, 1)), 6, Some(draft(&id)))
        .unwrap();
    let receipt = wb.receipt();
    assert_eq!(wb.queue_depth(), 1);
    assert!(!wb.wait_committed(receipt, std::time::Duration::from_millis(300)));
    drop(locker);
    // once the file is back: committed, told, and really in the store
    let back = std::time::Instant::now();
    assert!(
        wb.wait_committed(receipt, std::time::Duration::from_secs(10)),
        "not committed {:?} after the file was back: {:?}",
        back.elapsed(),
        wb.take_errors()
    );
    let other = SqliteStore::open(&path).unwrap();
    assert!(wb.committed() >= receipt);
    assert!(told.load(std::sync::atomic::Ordering::SeqCst) >= receipt);
    assert_eq!(wb.queue_depth(), 0);
    assert_eq!(EventStore::list(&other, "default").unwrap().len(), 1);
    let w = WalletStore::get(&other, &team(), 7).unwrap().unwrap();
    assert_eq!(w.spent, Decimal::new(5, 1));
    wb.close().unwrap();
}

/// Holds the file's write lock (an exclusive transaction on another connection) until dropped.
fn rusqlite_lock(path: &std::path::Path) -> std::process::Child {
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\nsys.stdin.read()\nc.execute('ROLLBACK')",
            path.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = [0u8; 7];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut line).unwrap();
    child
}

#[test]
fn a_long_request_is_settled_after_shorter_ones_were_forgotten() {
    let (path, url) = db("long");
    let (store, wb) = open_write_behind(&url, hook()).unwrap();
    common::fund(store.as_ref(), &team(), 100);
    // a stream that lasts longer than finished requests are remembered (2 s)
    let long = wb.new_request_id().unwrap();
    let ReserveOutcome::Reserved(held) = wb.reserve(&request(&long, Decimal::ONE), 5).unwrap()
    else {
        panic!("reserved")
    };
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_millis(2_600) {
        let (id, l) = reserved(&wb, 5);
        wb.complete(Some(&l.id), Some(Decimal::new(1, 2)), 6, Some(draft(&id)))
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let settled = wb
        .complete(
            Some(&held.id),
            Some(Decimal::new(5, 1)),
            7,
            Some(draft(&long)),
        )
        .unwrap()
        .expect("settled from memory");
    assert_eq!(settled.status, LeaseStatus::Settled);
    wb.close().unwrap();
    assert!(wb.take_errors().is_empty());
    let other = SqliteStore::open(&path).unwrap();
    let lease = WalletStore::lease(&other, &held.id).unwrap().unwrap();
    assert_eq!(
        (lease.status, lease.charged),
        (LeaseStatus::Settled, Some(Decimal::new(5, 1)))
    );
    let w = WalletStore::get(&other, &team(), 8).unwrap().unwrap();
    assert_eq!(w.reserved, Decimal::ZERO);
    assert!(EventStore::list(&other, "default")
        .unwrap()
        .iter()
        .any(|e| e.body.request_id == long));
}

#[test]
fn a_wallet_with_plenty_never_refuses_under_contention() {
    let (_, url) = db("plenty");
    let (store, wb) = open_write_behind(&url, hook()).unwrap();
    common::fund(store.as_ref(), &team(), 1_000_000_000);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let wb = Arc::clone(&wb);
            std::thread::spawn(move || {
                let mut refused = 0;
                for _ in 0..2_000 {
                    let id = wb.new_request_id().unwrap();
                    match wb.reserve(&request(&id, Decimal::new(7, 5)), 5).unwrap() {
                        ReserveOutcome::Reserved(l) => {
                            wb.complete(Some(&l.id), Some(Decimal::new(3, 5)), 6, None)
                                .unwrap();
                        }
                        ReserveOutcome::Insufficient => refused += 1,
                    }
                }
                refused
            })
        })
        .collect();
    let refused: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(refused, 0, "refused with 1,000,000,000 free");
    wb.close().unwrap();
    let w = WalletStore::get(store.as_ref(), &team(), 7)
        .unwrap()
        .unwrap();
    assert_eq!(
        (w.spent, w.reserved),
        (Decimal::new(3, 5) * Decimal::from(16_000), Decimal::ZERO)
    );
}

#[test]
fn a_store_made_reservation_is_settled_and_audited_through_the_same_path() {
    // an approved ticket forces its reservation on a wallet beyond its balance: the ledger makes
    // it in the store, and must finish it there (it was refused as an unknown lease, nothing
    // was charged and no event written)
    let (path, url) = db("forced");
    let (store, wb) = open_write_behind(&url, hook()).unwrap();
    common::fund(store.as_ref(), &team(), 10);
    let id = wb.new_request_id().unwrap();
    let mut forced = request(&id, Decimal::new(15, 0));
    forced.force = Some(team());
    let ReserveOutcome::Reserved(l) = wb.reserve(&forced, 5).unwrap() else {
        panic!("a forced reservation is held")
    };
    assert!(l.approved_overrun);
    wb.complete(Some(&l.id), Some(Decimal::new(3, 0)), 6, Some(draft(&id)))
        .unwrap();
    // a client-chosen id next to it, from the float
    let ReserveOutcome::Reserved(c) = wb
        .reserve(&request("client-id-7", Decimal::new(1, 1)), 7)
        .unwrap()
    else {
        panic!("reserved")
    };
    wb.complete(
        Some(&c.id),
        Some(Decimal::new(1, 1)),
        8,
        Some(draft("client-id-7")),
    )
    .unwrap();
    wb.close().unwrap();
    assert!(wb.take_errors().is_empty());
    let (spent, events) = written(&path, 9);
    assert_eq!(spent, Decimal::new(31, 1));
    assert_eq!(events, 2);
}

#[test]
fn issued_request_ids_are_unguessable() {
    let (_, url) = db("ids");
    let (_store, wb) = open_write_behind(&url, hook()).unwrap();
    let a = wb.new_request_id().unwrap();
    let b = wb.new_request_id().unwrap();
    assert_eq!(a.len(), 4 + 32);
    // not a counter on a nonce: consecutive ids share no long prefix
    let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    assert!(common < 12, "{a} {b}");
    wb.close().unwrap();
}

/// A provider (or a caller) that reports a negative cost must not refund a wallet: a negative
/// settlement is refused by every store — the memory ledger, SQLite, the write-behind ledger on
/// a lease it holds and on one only the store knows — and leaves the lease active and the
/// wallet as it was.
#[test]
fn a_negative_settlement_never_refunds_a_wallet() {
    let (path, url) = db("negative");
    let (store, wb) = open_write_behind(&url, hook()).unwrap();
    common::fund(store.as_ref(), &team(), 10);
    let plain = SqliteStore::open(&path).unwrap();
    let memory = keeptrusts_core::wallet::MemoryWallets::new();
    common::fund(&memory, &team(), 10);
    let refund = Decimal::new(-500, 2);
    let stores: [(&str, &dyn WalletStore); 3] = [
        ("memory", &memory),
        ("sqlite", &plain),
        ("write-behind", wb.as_ref()),
    ];
    for (i, (name, s)) in stores.into_iter().enumerate() {
        let r = request(&format!("neg-{i}"), Decimal::ONE);
        let ReserveOutcome::Reserved(l) = s.reserve(&r, 5).unwrap() else {
            panic!("{name}: reserved")
        };
        let before = WalletStore::get(s, &team(), 6).unwrap().unwrap();
        let err = s.settle(&l.id, refund, 6).unwrap_err();
        assert_eq!(err.code(), "invalid_amount", "{name}: {err}");
        let after = WalletStore::get(s, &team(), 6).unwrap().unwrap();
        assert_eq!(
            (after.spent, after.reserved),
            (before.spent, before.reserved),
            "{name}"
        );
        let lease = s.lease(&l.id).unwrap().unwrap();
        assert_eq!(lease.status, LeaseStatus::Active, "{name}");
    }
    // a lease the write-behind ledger does not hold (made through the store) goes to the store
    let r = request("neg-store", Decimal::ONE);
    let ReserveOutcome::Reserved(l) = plain.reserve(&r, 7).unwrap() else {
        panic!("reserved")
    };
    assert_eq!(
        wb.settle(&l.id, refund, 8).unwrap_err().code(),
        "invalid_amount"
    );
    wb.flush().unwrap();
    let w = WalletStore::get(&plain, &team(), 9).unwrap().unwrap();
    assert!(w.spent >= Decimal::ZERO && w.spent <= w.allocated, "{w:?}");
}
