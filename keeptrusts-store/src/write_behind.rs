//! Write-behind ledger for one gateway process: reservations answered from memory, durable writes
//! batched behind them, and still no overspend across processes.
//!
//! The process holds a **float** on each wallet it spends from: an ordinary durable lease (id
//! `flt_…`) in the store, so every other process (the `kt` CLI, another gateway, the bindings)
//! sees that money as reserved and cannot spend it. A request's reservation is taken from the
//! float in memory; its settlement and event are queued. One writer thread turns the queue into
//! one transaction per batch: give the old float back, book each finished request as its own
//! lease (reserved, then settled at the provider's usage or released), append its event, and
//! hold a new float covering the requests still in flight plus some headroom. Nothing of a batch
//! is written unless all of it is.
//!
//! The decision a reservation gets is the one the store would give: a float that cannot cover a
//! request first asks the writer to grow it, which holds whatever the wallet still has; only when
//! that is not enough does the cascade move on.
//!
//! A float's id names the process holding it (`crate::holder`). When a gateway starts, and at
//! every sweep (`EXPIRE_MS`), the floats of processes of its own machine and pid namespace that
//! are gone (a crash, a SIGKILL) are released at once; the floats of a crashed process elsewhere
//! expire `FLOAT_TTL_MS` after their last refresh and the next sweep of any running process
//! releases them. So a crashed process's floats stop counting as reserved: on its restart, at
//! once; meanwhile, within `EXPIRE_MS` (5 s) for a neighbour on the same machine and within
//! `FLOAT_TTL_MS + EXPIRE_MS` (35 s) for one elsewhere. A float is never taken from after
//! `FLOAT_TTL_MS - STALE_MS` without a refresh, so a process cut off from its store cannot spend a
//! float another process may already have released.
//!
//! Any request id may be reserved from a float. The ledger remembers where it made each lease: one
//! taken from a float is booked by the writer; one it had to make in the store (an approved
//! ticket's forced reservation, or any reservation while the writer is failing) and any lease it
//! does not know are settled and released through the store, with their events, by the same
//! `complete` call. Every non-request operation goes to the store directly.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use keeptrusts_core::event::EventDraft;
use keeptrusts_core::pricing::Currency;
use keeptrusts_core::time::Millis;
use keeptrusts_core::wallet::{
    Grant, Lease, LeaseStatus, ReserveOutcome, ReserveRequest, Settlement, Wallet, WalletError,
    WalletKey, WalletStore,
};
use keeptrusts_core::{MemoryStore, Storage, StoreError};
use rust_decimal::Decimal;

use crate::batch::{book_with, float_with, Done, FloatSize, Floated, Op};
use crate::holder::Holder;
use crate::{locate, Location, PgStore, SqliteStore};

/// A float lives this long without a refresh (a crashed process's floats expire then).
const FLOAT_TTL_MS: Millis = 30_000;
/// Floats are re-held (with a new expiry) at least this often.
const REFRESH_MS: Millis = 10_000;
/// A float this close to its expiry (not refreshed, the store unreachable) is not taken from.
const STALE_MS: Millis = 5_000;
/// A float nobody took from for this long is given back.
const IDLE_MS: Millis = 250;
/// A wallet found missing (or in another currency) is not asked about again for this long.
const SKIP_MS: Millis = 1_000;
/// Finished requests are remembered this long, so a replayed id is recognized in memory.
const RECENT_MS: Millis = 2_000;
/// A wallet with less than this many of its largest requests free is tight (see `Float::tight`).
const TIGHT: i64 = 16;
/// Finished requests waiting to be written beyond which new reservations wait for the writer.
const MAX_QUEUE: usize = 4_096;
/// How many batches a reservation waits for while its float is being resized under it.
const GROW_TRIES: usize = 32;
/// Back-off after a batch failed.
const RETRY: Duration = Duration::from_millis(50);
/// The writer looks at idle floats this often.
const TICK: Duration = Duration::from_millis(100);
/// Expired leases and the floats of processes known to be gone are released this often.
const EXPIRE_MS: Millis = 5_000;

/// Runs a blocking section: the gateway passes `tokio::task::block_in_place`, so a reservation
/// that must wait for the store does not stall the async workers' other tasks.
pub type BlockingHook = Arc<dyn Fn(&mut dyn FnMut()) + Send + Sync>;

type Runner = Box<dyn Fn(&[Op]) -> Result<Vec<Done>, StoreError> + Send + Sync>;
/// Lists the ids of the active floats in the store (every process's).
type FloatLister = Box<dyn Fn() -> Result<Vec<String>, StoreError> + Send + Sync>;

mod wallets;
mod writer;

use crate::host::now_ms;

/// `prefix` and 32 hex digits of OS randomness.
pub fn random_id(prefix: &str) -> Result<String, StoreError> {
    crate::host::fresh_id::<16>(prefix).map_err(StoreError::Unavailable)
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS once per process and perturbed per instance
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// The part of this process's hold on one wallet that is in memory.
#[derive(Debug)]
struct Float {
    /// The durable lease holding `amount`.
    id: Arc<str>,
    amount: Decimal,
    /// Estimates of this process's requests held on it and not yet booked.
    taken: Decimal,
    currency: Currency,
    /// Taken since the last batch (sizes the next float).
    since: Decimal,
    biggest: Decimal,
    last_take: Millis,
    created: Millis,
    /// Being given back: nothing may be taken from it.
    shrink: bool,
    /// The wallet has little free beyond the floats: hold no headroom, so that other processes
    /// see what is left.
    tight: bool,
    /// The last batch could not grant all that was asked (the wallet had no more free).
    short: bool,
}

impl Float {
    fn left(&self) -> Decimal {
        self.amount - self.taken
    }
}

/// A request this ledger reserved.
#[derive(Debug)]
enum Local {
    /// Reserved from a float; boxed: most entries are finished ones, kept small.
    Active(Box<Lease>),
    /// Reserved in the store (a forced reservation, or while the writer was failing): settled
    /// and released through the store, by the writer.
    Durable,
    /// Settled or released; its booking is queued or written.
    Finished,
}

/// Work for the writer.
#[derive(Debug)]
enum Pending {
    /// A request reserved from a float: book it, then settle (`Some`) or release it.
    Local {
        lease: Lease,
        actual: Option<Decimal>,
        now: Millis,
        draft: Option<EventDraft>,
    },
    Settle(Arc<str>, Decimal, Millis, Option<EventDraft>),
    Release(Arc<str>, Millis, Option<EventDraft>),
    Append(EventDraft),
}

#[derive(Default)]
struct State {
    floats: HashMap<WalletKey, Float>,
    /// Wallets that do not exist or hold another currency, until then.
    skip: HashMap<WalletKey, Millis>,
    /// Wallets on which the batch of this number could not grant what waiting requests asked
    /// (no float, or a short one): the wallet had no more to give them.
    dry: HashMap<WalletKey, u64>,
    /// The requests this ledger reserved, by lease id: where a lease was made decides how it
    /// is finished, whatever its id looks like. Finished ones are forgotten after a while; an id
    /// not here is settled or released through the store.
    local: HashMap<Arc<str>, Local>,
    /// Finished requests, oldest first.
    recent: VecDeque<(Millis, Arc<str>)>,
    queue: Vec<Pending>,
    /// Floats to grow, by how much, and in which currency.
    demand: HashMap<WalletKey, (Decimal, Currency)>,
    /// Finished requests (settlements, releases, events) ever queued, and of those the ones
    /// committed: the queue is written in order, so the first `committed` are in the store.
    queued: u64,
    committed: u64,
    /// Batches started, finished, and asked for.
    started: u64,
    finished: u64,
    wanted: u64,
    /// The last batch failed: nothing is served from memory until one succeeds.
    failure: Option<StoreError>,
    /// Operations of committed batches that were refused (for the host to log).
    errors: Vec<String>,
    /// What the ledger did on its own that an operator should know (floats of gone processes
    /// released).
    notices: Vec<String>,
    closing: bool,
    stopped: bool,
    last_expire: Millis,
    next_float: u64,
}

struct Shared {
    run: Runner,
    store: Arc<dyn Storage>,
    /// The store's active floats (none for the in-memory store, which no other process sees).
    floats_of: Option<FloatLister>,
    holder: Holder,
    nonce: u64,
    state: Mutex<State>,
    /// The writer waits here for work.
    work: Condvar,
    /// Callers wait here for a batch to finish.
    done: Condvar,
    /// Told the number of committed items after each batch that wrote some.
    on_commit: Mutex<Option<CommitHook>>,
}

/// Told how many queued items are committed (see [`WriteBehind::on_commit`]).
pub type CommitHook = Box<dyn Fn(u64) + Send + Sync>;

/// See the module documentation.
pub struct WriteBehind {
    shared: Arc<Shared>,
    hook: BlockingHook,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for WriteBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteBehind")
    }
}

/// Opens the store a URL names (as [`crate::open`]) with a write-behind ledger in front of it.
/// Returns the store (for everything else) and the ledger.
///
/// # Errors
/// As [`crate::open`].
pub fn open_write_behind(
    url: &str,
    hook: BlockingHook,
) -> Result<(Arc<dyn Storage>, Arc<WriteBehind>), StoreError> {
    let fail =
        |e: StoreError| StoreError::Unavailable(format!("`{}`: {e}", crate::redacted_url(url)));
    match locate(url)? {
        Location::Sqlite(path) => {
            let s = SqliteStore::open(path).map_err(fail)?;
            Ok((Arc::new(s.clone()), WriteBehind::sqlite(s, hook)?))
        }
        Location::Postgres => {
            let s = Arc::new(PgStore::connect(url).map_err(fail)?);
            Ok((
                Arc::clone(&s) as Arc<dyn Storage>,
                WriteBehind::postgres(s, hook)?,
            ))
        }
        Location::Memory => {
            let s: Arc<dyn Storage> = Arc::new(MemoryStore::new());
            let r = Arc::clone(&s);
            let wb = WriteBehind::start(
                Arc::clone(&s),
                Box::new(move |ops| one_by_one(r.as_ref(), ops)),
                None,
                hook,
            )?;
            Ok((s, wb))
        }
    }
}

/// Applies `ops` one at a time (the in-memory store, whose operations cannot fail half-way).
fn one_by_one(store: &dyn Storage, ops: &[Op]) -> Result<Vec<Done>, StoreError> {
    ops.iter()
        .map(|op| {
            Ok(match op {
                Op::Reserve(r, now) => Done::Reserve(store.reserve(r, *now)),
                Op::Settle(id, a, now) => Done::Settle(store.settle(id, *a, *now)),
                Op::Append(d) => Done::Append(store.append(d.clone())?),
                Op::SettleAppend(id, a, now, d) => {
                    Done::SettleAppend(store.settle_and_append(id, *a, *now, d.clone()))
                }
                Op::Release(id, now) => Done::Release(store.release(id, *now)),
                Op::Book(r, now) => Done::Book(book_with(r, |r| store.reserve(r, *now))),
                Op::Float(r, size, now) => Done::Float(memory_float(store, r, *size, *now)),
            })
        })
        .collect()
}

fn memory_float(
    store: &dyn Storage,
    r: &ReserveRequest,
    size: FloatSize,
    now: Millis,
) -> Result<Floated, WalletError> {
    float_with(
        r,
        size,
        |k| Ok(WalletStore::get(store, k, now)?),
        |held| store.reserve(held, now),
    )
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WriteBehind {
    /// A write-behind ledger in front of a SQLite store (its batches are one transaction each).
    ///
    /// # Errors
    /// The writer thread cannot start.
    pub fn sqlite(store: SqliteStore, hook: BlockingHook) -> Result<Arc<Self>, StoreError> {
        let (r, f) = (store.clone(), store.clone());
        Self::start(
            Arc::new(store),
            Box::new(move |ops| r.run_batch(ops)),
            Some(Box::new(move || f.active_floats())),
            hook,
        )
    }

    /// A write-behind ledger in front of a PostgreSQL store (its batches are one transaction
    /// each; other instances on the same database keep their own floats).
    ///
    /// # Errors
    /// The writer thread cannot start.
    pub fn postgres(store: Arc<PgStore>, hook: BlockingHook) -> Result<Arc<Self>, StoreError> {
        let (r, f) = (Arc::clone(&store), Arc::clone(&store));
        Self::start(
            store,
            Box::new(move |ops| r.run_batch(ops)),
            Some(Box::new(move || f.active_floats())),
            hook,
        )
    }

    /// Releases the floats left by processes known to be gone, then starts the writer thread.
    ///
    /// # Errors
    /// The store cannot list or release those floats, or the writer thread cannot start.
    fn start(
        store: Arc<dyn Storage>,
        run: Runner,
        floats_of: Option<FloatLister>,
        hook: BlockingHook,
    ) -> Result<Arc<Self>, StoreError> {
        let shared = Arc::new(Shared {
            run,
            store,
            floats_of,
            holder: Holder::current(),
            nonce: random_u64(),
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            on_commit: Mutex::new(None),
        });
        let released = shared.release_gone(now_ms())?;
        lock(&shared.state).notices.extend(released);
        let s2 = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("kt-store-writer".into())
            .spawn(move || s2.writer())
            .map_err(|e| StoreError::Unavailable(format!("cannot start the store writer: {e}")))?;
        Ok(Arc::new(WriteBehind {
            shared,
            hook,
            writer: Mutex::new(Some(writer)),
        }))
    }

    /// A new request id: `req_` and 32 hex digits from the operating system's randomness, so
    /// that no client can guess another's id. Any id may be reserved from memory: the ledger
    /// remembers which leases it made and where.
    ///
    /// # Errors
    /// The operating system gave no randomness.
    pub fn new_request_id(&self) -> Result<String, StoreError> {
        random_id("req_")
    }

    /// Runs `f` in the host's blocking section.
    fn blocking<T>(&self, f: impl FnOnce() -> T) -> Result<T, StoreError> {
        let mut f = Some(f);
        let mut out = None;
        (self.hook)(&mut || {
            if let Some(f) = f.take() {
                out = Some(f());
            }
        });
        out.ok_or_else(|| StoreError::Unavailable("the blocking section did not run".into()))
    }

    /// Asks for a batch that starts after now and waits until it has finished.
    fn wait_batch<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
    ) -> Result<MutexGuard<'a, State>, StoreError> {
        let target = st.started + 1;
        st.wanted = st.wanted.max(target);
        self.shared.work.notify_one();
        let mut slot = Some(st);
        let mut out = None;
        (self.hook)(&mut || {
            if let Some(mut g) = slot.take() {
                while g.finished < target && !g.stopped {
                    g = self
                        .shared
                        .done
                        .wait(g)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                out = Some(g);
            }
        });
        let g =
            out.ok_or_else(|| StoreError::Unavailable("the blocking section did not run".into()))?;
        if g.stopped && g.finished < target {
            return Err(StoreError::Unavailable(
                "the store writer has stopped".into(),
            ));
        }
        match &g.failure {
            Some(e) => Err(e.clone()),
            None => Ok(g),
        }
    }

    /// A receipt for everything queued so far: once [`Self::committed`] reaches it, every
    /// settlement, release and event queued before this call is in the store.
    pub fn receipt(&self) -> u64 {
        lock(&self.shared.state).queued
    }

    /// How many queued items are committed (in queue order).
    pub fn committed(&self) -> u64 {
        lock(&self.shared.state).committed
    }

    /// Items queued and not yet committed.
    pub fn queue_depth(&self) -> u64 {
        let st = lock(&self.shared.state);
        st.queued - st.committed
    }

    /// Calls `hook` with [`Self::committed`] after every batch that wrote queued items (from the
    /// writer thread, under the ledger's lock: keep it short and never call the ledger from it;
    /// a channel send).
    pub fn on_commit(&self, hook: CommitHook) {
        *self
            .shared
            .on_commit
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(hook);
    }

    /// Waits (blocking, through the hook) until `receipt` is committed, at most `timeout`.
    /// Returns whether it was.
    pub fn wait_committed(&self, receipt: u64, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut st = lock(&self.shared.state);
        while st.committed < receipt && !st.stopped {
            self.shared.work.notify_one();
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .shared
                .done
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        st.committed >= receipt
    }

    /// Writes everything queued and waits for it.
    ///
    /// # Errors
    /// The batch failed (nothing of it was written; it is retried).
    pub fn flush(&self) -> Result<(), StoreError> {
        drop(self.wait_batch(lock(&self.shared.state))?);
        Ok(())
    }

    /// Refused operations of committed batches since the last call (a bug or an outside change,
    /// such as a wallet deleted under a request); the host logs them.
    pub fn take_errors(&self) -> Vec<String> {
        std::mem::take(&mut lock(&self.shared.state).errors)
    }

    /// Takes what the ledger did on its own since the last call (at start and at each sweep:
    /// the floats of processes known to be gone that it released), as log lines.
    pub fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut lock(&self.shared.state).notices)
    }

    /// Writes everything queued, gives every float back, and stops the writer.
    ///
    /// # Errors
    /// The last batch failed: what it held stays queued in memory and is lost, and the floats
    /// stay reserved until they expire.
    pub fn close(&self) -> Result<(), StoreError> {
        let mut st = lock(&self.shared.state);
        if st.stopped {
            return Ok(());
        }
        st.closing = true;
        let mut result = Ok(());
        for _ in 0..3 {
            st = match self.wait_batch(st) {
                Ok(g) => g,
                Err(e) => {
                    result = Err(e);
                    lock(&self.shared.state)
                }
            };
            if st.queue.is_empty() && st.floats.is_empty() {
                result = Ok(());
                break;
            }
        }
        st.stopped = true;
        drop(st);
        self.shared.work.notify_all();
        self.shared.done.notify_all();
        if let Some(h) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = h.join();
        }
        result
    }

    /// Settles (`Some(actual)`) or releases (`None`) a request's lease and writes its event,
    /// behind; without a lease, only the event. Returns the settled or released lease.
    ///
    /// A lease this ledger did not reserve from a float (one it reserved in the store, or
    /// another process's) is settled or released by the writer through the store (a refusal
    /// there, such as an unknown lease, is reported by [`Self::take_errors`]).
    ///
    /// # Errors
    /// None at present; the `Result` leaves room for a ledger that refuses work.
    pub fn complete(
        &self,
        lease_id: Option<&str>,
        actual: Option<Decimal>,
        now: Millis,
        draft: Option<EventDraft>,
    ) -> Result<Option<Lease>, WalletError> {
        let mut st = lock(&self.shared.state);
        let Some(id) = lease_id else {
            if let Some(d) = draft {
                st.queue.push(Pending::Append(d));
                st.queued += 1;
                self.shared.work.notify_one();
            }
            return Ok(None);
        };
        match st.local.get(id) {
            Some(Local::Active(_)) => {}
            // a replay: settled once, nothing more to write
            Some(Local::Finished) => return Ok(None),
            Some(Local::Durable) | None => {
                let id: Arc<str> = Arc::from(id);
                if st.local.contains_key(&id) {
                    st.local.insert(Arc::clone(&id), Local::Finished);
                    st.recent.push_back((now_ms(), Arc::clone(&id)));
                }
                st.queue.push(match actual {
                    Some(a) => Pending::Settle(id, a, now, draft),
                    None => Pending::Release(id, now, draft),
                });
                st.queued += 1;
                self.shared.work.notify_one();
                return Ok(None);
            }
        }
        let id: Arc<str> = Arc::from(id);
        let Some(Local::Active(lease)) = st.local.insert(Arc::clone(&id), Local::Finished) else {
            return Err(WalletError::UnknownLease(id.to_string()));
        };
        let lease = *lease;
        if actual.is_none() {
            if let Some(f) = st.floats.get_mut(&lease.wallet) {
                f.taken -= lease.amount;
            }
        }
        let mut out = lease.clone();
        out.status = if actual.is_some() {
            LeaseStatus::Settled
        } else {
            LeaseStatus::Released
        };
        out.charged = actual;
        st.queue.push(Pending::Local {
            lease,
            actual,
            now,
            draft,
        });
        st.queued += 1;
        self.shared.work.notify_one();
        Ok(Some(out))
    }

    /// Takes `r` from the float on `key` if it covers it.
    fn take(
        &self,
        st: &mut State,
        key: &WalletKey,
        r: &ReserveRequest,
        now: Millis,
    ) -> Option<Lease> {
        let f = st.floats.get_mut(key)?;
        if f.shrink
            || f.currency != r.currency
            || f.left() < r.amount
            || f.created + FLOAT_TTL_MS - STALE_MS < now_ms()
        {
            return None;
        }
        f.taken += r.amount;
        f.since += r.amount;
        f.biggest = f.biggest.max(r.amount);
        f.last_take = now_ms();
        let lease = Lease::held(r, key.clone(), now);
        st.local.insert(
            Arc::clone(&r.lease_id),
            Local::Active(Box::new(lease.clone())),
        );
        Some(lease)
    }

    /// Reserves through the store; if the store finds no wallet with enough, gives back the
    /// headroom of this process's floats on the cascade and asks once more.
    fn reserve_durably(
        &self,
        r: &ReserveRequest,
        now: Millis,
    ) -> Result<ReserveOutcome, WalletError> {
        let store = &self.shared.store;
        let out = self.blocking(|| store.reserve(r, now))??;
        if out != ReserveOutcome::Insufficient {
            self.made_durably(r, &out);
            return Ok(out);
        }
        let mut st = lock(&self.shared.state);
        let mut any = false;
        for k in &r.cascade {
            if let Some(f) = st.floats.get_mut(k) {
                f.shrink = true;
                any = true;
            }
        }
        if !any {
            return Ok(out);
        }
        drop(self.wait_batch(st)?);
        let out = self.blocking(|| store.reserve(r, now))??;
        self.made_durably(r, &out);
        Ok(out)
    }

    /// Remembers a reservation made in the store, so that it is finished through the store.
    fn made_durably(&self, r: &ReserveRequest, out: &ReserveOutcome) {
        if let ReserveOutcome::Reserved(_) = out {
            lock(&self.shared.state)
                .local
                .insert(Arc::clone(&r.lease_id), Local::Durable);
        }
    }

    /// Whether `lease_id` was reserved from one of this ledger's floats and is still active.
    fn holds(&self, lease_id: &str) -> bool {
        matches!(
            lock(&self.shared.state).local.get(lease_id),
            Some(Local::Active(_))
        )
    }
}

/// Settlement (with its event) or release (then its event) of one lease.
fn push_finish(
    ops: &mut Vec<Op>,
    id: &Arc<str>,
    actual: Option<Decimal>,
    now: Millis,
    draft: Option<&EventDraft>,
) {
    match (actual, draft) {
        (Some(a), Some(d)) => ops.push(Op::SettleAppend(Arc::clone(id), a, now, d.clone())),
        (Some(a), None) => ops.push(Op::Settle(Arc::clone(id), a, now)),
        (None, d) => {
            ops.push(Op::Release(Arc::clone(id), now));
            if let Some(d) = d {
                ops.push(Op::Append(d.clone()));
            }
        }
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
