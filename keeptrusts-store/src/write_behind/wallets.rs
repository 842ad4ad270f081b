//! The write-behind ledger as a [`WalletStore`]: reservations from memory, the rest passed to
//! the store.

use super::*;

impl WalletStore for WriteBehind {
    fn allocate(&self, key: &WalletKey, grant: &Grant, now: Millis) -> Result<Wallet, WalletError> {
        let store = &self.shared.store;
        let w = self.blocking(|| store.allocate(key, grant, now))??;
        lock(&self.shared.state).skip.remove(key);
        Ok(w)
    }

    /// The wallet as this process sees it: what is written, less the unused part of its float.
    fn get(&self, key: &WalletKey, now: Millis) -> Result<Option<Wallet>, StoreError> {
        let st = lock(&self.shared.state);
        let st = self.wait_batch(st)?;
        let headroom = st.floats.get(key).map(Float::left);
        drop(st);
        let store = &self.shared.store;
        let w = self.blocking(|| WalletStore::get(&**store, key, now))??;
        Ok(w.map(|mut w| {
            w.reserved -= headroom.unwrap_or_default();
            w
        }))
    }

    fn list(&self, now: Millis) -> Result<Vec<Wallet>, StoreError> {
        let st = lock(&self.shared.state);
        let st = self.wait_batch(st)?;
        let headroom: HashMap<WalletKey, Decimal> = st
            .floats
            .iter()
            .map(|(k, f)| (k.clone(), f.left()))
            .collect();
        drop(st);
        let store = &self.shared.store;
        let mut ws = self.blocking(|| WalletStore::list(&**store, now))??;
        for w in &mut ws {
            w.reserved -= headroom.get(&w.key).copied().unwrap_or_default();
        }
        Ok(ws)
    }

    fn reserve(&self, r: &ReserveRequest, now: Millis) -> Result<ReserveOutcome, WalletError> {
        if r.amount.is_sign_negative() {
            return Err(WalletError::Invalid(
                "a reservation cannot be negative".into(),
            ));
        }
        let mut st = lock(&self.shared.state);
        match st.local.get(&r.lease_id) {
            Some(Local::Active(l)) => return Ok(ReserveOutcome::Reserved((**l).clone())),
            Some(Local::Finished) => return Err(WalletError::LeaseReused(r.lease_id.to_string())),
            Some(Local::Durable) => {
                drop(st);
                return self.reserve_durably(r, now);
            }
            None => {}
        }
        // a forced reservation (an approved ticket) is the store's to make; so is every one while
        // the writer is failing (the store refuses while it is down)
        if r.force.is_some() || st.failure.is_some() {
            drop(st);
            return self.reserve_durably(r, now);
        }
        if st.closing {
            return Err(WalletError::Store(StoreError::Unavailable(
                "the store is closing".into(),
            )));
        }
        // the writer is behind (a slow disk or database): new requests wait for it rather than
        // letting unwritten work pile up in memory
        while st.queue.len() >= MAX_QUEUE {
            st = self.wait_batch(st)?;
        }
        for key in &r.cascade {
            if st.skip.get(key).is_some_and(|&t| t > now) {
                continue;
            }
            if let Some(lease) = self.take(&mut st, key, r, now) {
                return Ok(ReserveOutcome::Reserved(lease));
            }
            if st.floats.get(key).is_some_and(|f| f.currency != r.currency) {
                continue;
            }
            // ask the writer to grow the float (or hold a first one) by this request; if the
            // next batch has already started giving the float back, ask the one after it
            for _ in 0..GROW_TRIES {
                st.demand
                    .entry(key.clone())
                    .or_insert((Decimal::ZERO, r.currency))
                    .0 += r.amount;
                // the batch wait_batch waits for: it starts after now, so it sees this demand
                let asked_in = st.started + 1;
                st = self.wait_batch(st)?;
                if st.skip.get(key).is_some_and(|&t| t > now) {
                    break;
                }
                if let Some(lease) = self.take(&mut st, key, r, now) {
                    return Ok(ReserveOutcome::Reserved(lease));
                }
                // stop when the wallet had no more to give this request; retry while the float
                // is being resized, when the batch granted every request that asked but another
                // thread took this one's share first, or when the float was given back (idle)
                // before this thread could take from it
                let dry = st.dry.get(key).is_some_and(|&b| b >= asked_in);
                match st.floats.get(key) {
                    _ if dry => break,
                    None => {}
                    Some(f) if f.shrink || !f.short => {}
                    Some(_) => break,
                }
            }
        }
        Ok(ReserveOutcome::Insufficient)
    }

    fn settle(&self, id: &str, actual: Decimal, now: Millis) -> Result<Settlement, WalletError> {
        keeptrusts_core::wallet::check_settlement(actual)?;
        if !self.holds(id) {
            let store = &self.shared.store;
            return self.blocking(|| store.settle(id, actual, now))?;
        }
        match self.complete(Some(id), Some(actual), now, None)? {
            Some(lease) => Ok(Settlement {
                lease,
                charged: actual,
                replay: false,
            }),
            None => {
                drop(self.wait_batch(lock(&self.shared.state))?);
                let store = &self.shared.store;
                self.blocking(|| store.settle(id, actual, now))?
            }
        }
    }

    fn release(&self, lease_id: &str, now: Millis) -> Result<Lease, WalletError> {
        if self.holds(lease_id) {
            if let Some(lease) = self.complete(Some(lease_id), None, now, None)? {
                return Ok(lease);
            }
            drop(self.wait_batch(lock(&self.shared.state))?);
        }
        let store = &self.shared.store;
        self.blocking(|| store.release(lease_id, now))?
    }

    fn expire(&self, now: Millis) -> Result<usize, WalletError> {
        let store = &self.shared.store;
        self.blocking(|| store.expire(now))?
    }

    fn lease(&self, lease_id: &str) -> Result<Option<Lease>, StoreError> {
        {
            let st = lock(&self.shared.state);
            match st.local.get(lease_id) {
                Some(Local::Active(l)) => return Ok(Some((**l).clone())),
                // finished here: its booking may still be queued
                Some(Local::Finished) => drop(self.wait_batch(st)?),
                Some(Local::Durable) | None => {}
            }
        }
        let store = &self.shared.store;
        self.blocking(|| store.lease(lease_id))?
    }

    fn prune(&self, before: Millis) -> Result<usize, StoreError> {
        let store = &self.shared.store;
        self.blocking(|| WalletStore::prune(&**store, before))?
    }
}
