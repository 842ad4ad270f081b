//! Group commit for the operations every request makes: reserve, settle, append (and settle +
//! append together). Concurrent callers' operations are collected and applied in one
//! transaction: the rows they touch are loaded (and locked) once, each operation is applied in
//! turn by the core's `Ledger` and event chain — exactly as it would be alone — and the changed
//! rows are written back with one commit. A caller gets its answer only after that commit; if the
//! transaction fails, every operation in it fails and nothing of it is written.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex};

use keeptrusts_core::event::{Event, EventDraft, GENESIS};
use keeptrusts_core::time::Millis;
use keeptrusts_core::wallet::{
    Lease, LeaseStatus, Ledger, ReserveOutcome, ReserveRequest, Settlement, Wallet, WalletError,
    WalletKey,
};
use keeptrusts_core::StoreError;
use rust_decimal::Decimal;

use crate::ledger::Rows;

/// One request-path operation.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Reserve(ReserveRequest, Millis),
    Settle(Arc<str>, Decimal, Millis),
    Append(EventDraft),
    SettleAppend(Arc<str>, Decimal, Millis, EventDraft),
    /// Gives an active lease back.
    Release(Arc<str>, Millis),
    /// Records a reservation that was already covered elsewhere (a write-behind float): held
    /// on the cascade's first wallet that covers it, else on its first wallet regardless.
    Book(ReserveRequest, Millis),
    /// A write-behind float on `request.force`'s wallet; see [`float_amount`].
    Float(ReserveRequest, FloatSize, Millis),
}

/// The answer to one [`Op`], in the same order.
#[derive(Debug)]
pub(crate) enum Done {
    Reserve(Result<ReserveOutcome, WalletError>),
    Settle(Result<Settlement, WalletError>),
    Append(Event),
    SettleAppend(Result<(Settlement, Option<Event>), WalletError>),
    Release(Result<Lease, WalletError>),
    Book(Result<ReserveOutcome, WalletError>),
    Float(Result<Floated, WalletError>),
}

/// The error for an answer of the wrong kind (a bug, reported rather than panicking).
pub(crate) fn mismatch(done: &Done) -> StoreError {
    StoreError::Corrupt(format!(
        "store batch answered with the wrong kind: {done:?}"
    ))
}

/// Bulk row access inside one open transaction; loads lock rows where the database can.
pub(crate) trait BatchRows: Rows {
    /// Takes whatever lock guards the creation of these lease ids (sorted, deduplicated).
    fn lock_leases(&mut self, _ids: &[&str]) -> Result<(), StoreError> {
        Ok(())
    }

    fn load_leases(&mut self, ids: &[&str]) -> Result<Vec<Lease>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.load_lease(id)?);
        }
        Ok(out)
    }

    /// `keys` arrive sorted and deduplicated, so concurrent transactions lock in one order.
    fn load_wallets(&mut self, keys: &[&WalletKey]) -> Result<Vec<Wallet>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.extend(self.load_wallet(k)?);
        }
        Ok(out)
    }

    /// The org chain's head (seq and hash of its last event), locked until commit.
    fn load_head(&mut self, org: &str) -> Result<Option<(u64, String)>, StoreError>;

    /// Writes what a batch changed.
    fn save(&mut self, changes: &Changes<'_>) -> Result<(), StoreError>;
}

/// What a batch changed: wallets and leases, new events, and each touched org's new head
/// (org, seq, hash).
pub(crate) struct Changes<'a> {
    pub wallets: Vec<&'a Wallet>,
    pub leases: Vec<&'a Lease>,
    pub events: &'a [Event],
    pub heads: Vec<(&'a str, u64, &'a str)>,
}

/// The org chains a batch appends to: each head loaded once, then advanced in memory.
#[derive(Default)]
struct Chain<'a> {
    heads: HashMap<&'a str, Option<(u64, String)>>,
    events: Vec<Event>,
}

impl<'a> Chain<'a> {
    fn push(
        &mut self,
        rows: &mut dyn BatchRows,
        draft: &'a EventDraft,
    ) -> Result<Event, StoreError> {
        let head = match self.heads.entry(draft.org.as_str()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(rows.load_head(&draft.org)?),
        };
        let (seq, prev_hash) = match head.take() {
            Some((s, h)) => (s + 1, h),
            None => (0, GENESIS.to_owned()),
        };
        let event = Event::chained(seq, draft.clone(), prev_hash);
        *head = Some((seq, event.hash.clone()));
        self.events.push(event.clone());
        Ok(event)
    }
}

/// Applies `ops` in order on the rows they touch and writes the result (the caller commits).
pub(crate) fn apply(rows: &mut dyn BatchRows, ops: &[Op]) -> Result<Vec<Done>, StoreError> {
    let mut lease_ids: Vec<&str> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Reserve(r, _) | Op::Book(r, _) | Op::Float(r, ..) => Some(&*r.lease_id),
            Op::Settle(id, ..) | Op::SettleAppend(id, ..) | Op::Release(id, _) => Some(&**id),
            Op::Append(_) => None,
        })
        .collect();
    lease_ids.sort_unstable();
    lease_ids.dedup();
    rows.lock_leases(&lease_ids)?;
    let leases = rows.load_leases(&lease_ids)?;

    let mut keys: Vec<&WalletKey> = leases.iter().map(|l| &l.wallet).collect();
    for op in ops {
        if let Op::Reserve(r, _) | Op::Book(r, _) | Op::Float(r, ..) = op {
            keys.extend(r.cascade.iter());
            keys.extend(r.force.iter());
        }
    }
    keys.sort_unstable();
    keys.dedup();
    let wallets = rows.load_wallets(&keys)?;

    let mut ledger = Ledger::default();
    for w in wallets {
        ledger.wallets.insert(w.key.clone(), w);
    }
    for l in leases {
        ledger.leases.insert(Arc::clone(&l.id), l);
    }
    let before = ledger.clone();

    let mut chain = Chain::default();
    let mut done = Vec::with_capacity(ops.len());
    for op in ops {
        done.push(match op {
            Op::Reserve(r, now) => Done::Reserve(ledger.reserve(r, *now)),
            Op::Settle(id, actual, now) => Done::Settle(ledger.settle(id, *actual, *now)),
            Op::Append(draft) => Done::Append(chain.push(rows, draft)?),
            Op::SettleAppend(id, actual, now, draft) => {
                Done::SettleAppend(match ledger.settle(id, *actual, *now) {
                    Ok(s) if s.replay => Ok((s, None)),
                    Ok(s) => Ok((s, Some(chain.push(rows, draft)?))),
                    Err(e) => Err(e),
                })
            }
            Op::Release(id, _) => Done::Release(ledger.release(id, LeaseStatus::Released)),
            Op::Book(r, now) => Done::Book(book_with(r, |r| ledger.reserve(r, *now))),
            Op::Float(r, size, now) => Done::Float(float(&mut ledger, r, *size, *now)),
        });
    }

    let wallets: Vec<&Wallet> = ledger
        .wallets
        .iter()
        .filter(|(k, w)| crate::ledger::changed(before.wallets.get(*k), *w))
        .map(|(_, w)| w)
        .collect();
    let leases: Vec<&Lease> = ledger
        .leases
        .iter()
        .filter(|(id, l)| crate::ledger::changed(before.leases.get(*id), *l))
        .map(|(_, l)| l)
        .collect();
    let mut seen = HashSet::new();
    let heads: Vec<(&str, u64, &str)> = chain
        .events
        .iter()
        .rev()
        .filter(|e| seen.insert(e.body.org.as_str()))
        .map(|e| (e.body.org.as_str(), e.seq, e.hash.as_str()))
        .collect();
    let events = &chain.events;
    rows.save(&Changes {
        wallets,
        leases,
        events,
        heads,
    })?;
    Ok(done)
}

/// How much a write-behind float asks for (see [`float_amount`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FloatSize {
    /// What it must keep covering (requests in flight, and headroom another thread may be
    /// taking from while the batch runs).
    pub floor: Decimal,
    /// What a waiting request asked for.
    pub need: Decimal,
    /// Floor, need and headroom together.
    pub want: Decimal,
}

/// A float's new headroom is at most this share of what the wallet has free, so that near
/// exhaustion other processes' floats do not sit on the money a request elsewhere needs.
const FREE_SHARE: i64 = 16;

/// The amount a float holds on a wallet with `available` (its old float already given back):
/// never below the floor (forced if need be: those requests are already on their way); above
/// it, the need and the headroom, but no more than is free, and headroom beyond the need only up
/// to a sixteenth of what is free. Zero holds nothing.
pub(crate) fn float_amount(available: Decimal, size: FloatSize) -> Decimal {
    let free = (available - size.floor).max(Decimal::ZERO);
    let extra = (size.want - size.floor).max(Decimal::ZERO);
    // rounded down to the scale of the amounts involved: a float's amount is added to and later
    // taken from `reserved`, which must cancel exactly
    let share = (free / Decimal::from(FREE_SHARE))
        .round_dp_with_strategy(free.scale(), rust_decimal::RoundingStrategy::ToZero);
    let cap = size.need.max(share);
    size.floor.max(Decimal::ZERO) + extra.min(cap).min(free)
}

/// See [`Op::Book`]: `reserve` holds a request (the ledger's, or a store's).
pub(crate) fn book_with(
    r: &ReserveRequest,
    mut reserve: impl FnMut(&ReserveRequest) -> Result<ReserveOutcome, WalletError>,
) -> Result<ReserveOutcome, WalletError> {
    match reserve(r)? {
        ReserveOutcome::Insufficient => {
            let mut forced = r.clone();
            forced.force = r.cascade.first().cloned();
            reserve(&forced)
        }
        held => Ok(held),
    }
}

/// What a float holds and what the wallet had free beyond its floor.
pub(crate) type Floated = (Option<Lease>, Decimal);

/// See [`Op::Float`]: `get` reads the wallet, `reserve` holds the sized request.
pub(crate) fn float_with(
    r: &ReserveRequest,
    size: FloatSize,
    get: impl FnOnce(&WalletKey) -> Result<Option<Wallet>, WalletError>,
    reserve: impl FnOnce(&ReserveRequest) -> Result<ReserveOutcome, WalletError>,
) -> Result<Floated, WalletError> {
    let key = r
        .force
        .as_ref()
        .ok_or_else(|| WalletError::Invalid("a float names its wallet".into()))?;
    let w = get(key)?.ok_or_else(|| WalletError::UnknownWallet(key.to_string()))?;
    if w.currency != r.currency {
        return Err(WalletError::CurrencyMismatch {
            wallet: key.to_string(),
            has: w.currency,
            wanted: r.currency,
        });
    }
    let free = (w.available() - size.floor).max(Decimal::ZERO);
    let amount = float_amount(w.available(), size);
    if amount <= Decimal::ZERO {
        return Ok((None, free));
    }
    let mut held = r.clone();
    held.amount = amount;
    match reserve(&held)? {
        ReserveOutcome::Reserved(l) => Ok((Some(l), free)),
        ReserveOutcome::Insufficient => {
            Err(WalletError::Invalid("a forced float was refused".into()))
        }
    }
}

/// See [`Op::Float`].
fn float(
    ledger: &mut Ledger,
    r: &ReserveRequest,
    size: FloatSize,
    now: Millis,
) -> Result<Floated, WalletError> {
    let w = r.force.as_ref().and_then(|k| ledger.get(k, now));
    float_with(r, size, |_| Ok(w), |held| ledger.reserve(held, now))
}

/// How many operations one transaction takes at most.
const MAX_BATCH: usize = 256;

/// Where one caller waits: for its answer, or for its turn to lead a batch.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    wake: Condvar,
}

#[derive(Default)]
struct SlotState {
    done: Option<Result<Done, StoreError>>,
    lead: bool,
}

impl Slot {
    fn set(&self, f: impl FnOnce(&mut SlotState)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
        self.wake.notify_one();
    }
}

#[derive(Default)]
struct Queue {
    pending: Vec<(Op, Arc<Slot>)>,
    running: bool,
}

/// Collects concurrent callers' operations. One caller at a time leads: it takes everything
/// queued, runs it as one batch, hands each caller its answer, and passes the lead to the
/// oldest caller still queued (or stands down when none is). Each caller sleeps on its own slot,
/// so a batch wakes exactly the callers it answered plus the next leader.
#[derive(Default)]
pub(crate) struct Combiner {
    queue: Mutex<Queue>,
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("store queue lock poisoned".into())
}

impl Combiner {
    /// Submits `op` and returns its answer. `run` executes one batch in one transaction.
    pub(crate) fn submit(
        &self,
        op: Op,
        run: impl Fn(&[Op]) -> Result<Vec<Done>, StoreError>,
    ) -> Result<Done, StoreError> {
        let slot = Arc::new(Slot::default());
        {
            let mut q = self.queue.lock().map_err(|_| poisoned())?;
            q.pending.push((op, Arc::clone(&slot)));
            if !q.running {
                q.running = true;
                drop(q);
                slot.set(|s| s.lead = true);
            }
        }
        loop {
            let mut st = slot.state.lock().map_err(|_| poisoned())?;
            while st.done.is_none() && !st.lead {
                st = slot.wake.wait(st).map_err(|_| poisoned())?;
            }
            if let Some(done) = st.done.take() {
                return done;
            }
            st.lead = false;
            drop(st);
            self.lead(&run)?;
        }
    }

    /// Runs one batch of what is queued, answers it, and passes the lead on.
    fn lead(
        &self,
        run: &impl Fn(&[Op]) -> Result<Vec<Done>, StoreError>,
    ) -> Result<(), StoreError> {
        let batch: Vec<(Op, Arc<Slot>)> = {
            let mut q = self.queue.lock().map_err(|_| poisoned())?;
            let take = q.pending.len().min(MAX_BATCH);
            q.pending.drain(..take).collect()
        };
        let (ops, slots): (Vec<Op>, Vec<Arc<Slot>>) = batch.into_iter().unzip();
        let leading = Leading(self, &slots);
        let result = run(&ops);
        std::mem::forget(leading);
        match result {
            Ok(done) if done.len() == slots.len() => {
                for (slot, d) in slots.iter().zip(done) {
                    slot.set(|s| s.done = Some(Ok(d)));
                }
            }
            Ok(_) => answer_all(
                &slots,
                &StoreError::Corrupt("a batch lost an answer".into()),
            ),
            Err(e) => answer_all(&slots, &e),
        }
        self.pass_lead();
        Ok(())
    }

    fn pass_lead(&self) {
        let Ok(mut q) = self.queue.lock() else {
            return;
        };
        match q.pending.first() {
            Some((_, next)) => next.set(|s| s.lead = true),
            None => q.running = false,
        }
    }
}

fn answer_all(slots: &[Arc<Slot>], e: &StoreError) {
    for slot in slots {
        slot.set(|s| s.done = Some(Err(e.clone())));
    }
}

/// If a batch panics: fails its operations (nothing of it was committed) and passes the lead on,
/// so the callers still waiting are not stranded.
struct Leading<'a>(&'a Combiner, &'a [Arc<Slot>]);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        answer_all(
            self.1,
            &StoreError::Unavailable("a store batch panicked".into()),
        );
        self.0.pass_lead();
    }
}

#[cfg(test)]
mod tests {
    use super::{float_amount, FloatSize};
    use rust_decimal::Decimal;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn size(floor: &str, need: &str, want: &str) -> FloatSize {
        FloatSize {
            floor: d(floor),
            need: d(need),
            want: d(want),
        }
    }

    #[test]
    fn a_float_keeps_its_floor_grants_the_need_and_caps_the_headroom() {
        // plenty free: headroom up to a sixteenth of what is free beyond the floor (998 / 16,
        // rounded down at the wallet's scale)
        assert_eq!(float_amount(d("1000"), size("2", "1", "100")), d("64"));
        assert_eq!(float_amount(d("1000"), size("2", "1", "10")), d("10"));
        // little free: the need is granted whole, headroom is not
        assert_eq!(float_amount(d("5"), size("2", "1", "100")), d("3"));
        // less free than needed: what there is
        assert_eq!(float_amount(d("2.5"), size("2", "1", "100")), d("2.5"));
        // overdrawn (an approved overrun elsewhere): the floor is held regardless
        assert_eq!(float_amount(d("-3"), size("2", "1", "100")), d("2"));
        // nothing in flight and nothing asked: nothing held
        assert_eq!(float_amount(d("10"), size("0", "0", "0")), d("0"));
    }

    #[test]
    fn float_amounts_never_carry_more_digits_than_the_wallet() {
        // 1/16 of 0.01 is 0.000625; rounded down at the wallet's scale it is 0.00, so the
        // amount added to and later taken from `reserved` cancels exactly
        let a = float_amount(d("0.01"), size("0", "0", "1"));
        assert_eq!(a, d("0.00"));
        let a = float_amount(d("300.00"), size("1.00", "1.00", "40.00"));
        assert!(a.scale() <= 2, "{a}");
        assert_eq!(a, d("19.68"));
    }
}
