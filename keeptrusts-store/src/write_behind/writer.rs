//! The writer's side of the write-behind ledger: batches committed in order, floats refilled
//! and expired, leases of gone processes released.

use super::*;

impl Shared {
    /// Releases the active floats of processes known to be gone (see [`Holder::knows_gone`]);
    /// returns what it released, as log lines.
    pub(super) fn release_gone(&self, now: Millis) -> Result<Vec<String>, StoreError> {
        let Some(list) = &self.floats_of else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for id in list()? {
            let Some(h) = Holder::of(&id) else { continue };
            if !self.holder.knows_gone(&h) {
                continue;
            }
            match self.store.release(&id, now) {
                Ok(l) => out.push(format!(
                    "released float {id} ({} {} on {}) of process {}, which is gone",
                    l.amount,
                    l.currency,
                    l.wallet,
                    h.pid()
                )),
                // pruned meanwhile (a release of a finished lease changes nothing)
                Err(WalletError::UnknownLease(_)) => {}
                Err(WalletError::Store(e)) => return Err(e),
                Err(e) => out.push(format!("could not release float {id}: {e}")),
            }
        }
        Ok(out)
    }

    /// The writer thread: runs a batch whenever there is work, and looks after idle floats.
    pub(super) fn writer(&self) {
        let mut st = lock(&self.state);
        loop {
            if st.stopped {
                return;
            }
            let now = now_ms();
            let due = st.failure.is_some()
                || !st.queue.is_empty()
                || !st.demand.is_empty()
                || st.wanted > st.finished
                || st.closing
                || st.floats.values().any(|f| {
                    f.shrink
                        || (f.last_take + IDLE_MS < now && f.left() > Decimal::ZERO)
                        || f.created + REFRESH_MS < now
                })
                || st.recent.front().is_some_and(|(t, _)| t + RECENT_MS < now)
                || st.last_expire + EXPIRE_MS < now;
            if !due {
                st = self
                    .work
                    .wait_timeout(st, TICK)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                continue;
            }
            drop(st);
            let ok = self.batch(now);
            if !ok {
                std::thread::sleep(RETRY);
            }
            st = lock(&self.state);
        }
    }

    /// One batch. Returns false if it failed.
    #[allow(clippy::too_many_lines)]
    fn batch(&self, now: Millis) -> bool {
        let mut st = lock(&self.state);
        st.started += 1;
        let number = st.started;
        // forget old finished requests
        while let Some((t, _)) = st.recent.front() {
            if t + RECENT_MS >= now {
                break;
            }
            if let Some((_, id)) = st.recent.pop_front() {
                st.local.remove(&id);
            }
        }
        let expire = st.last_expire + EXPIRE_MS < now;
        if expire {
            st.last_expire = now;
        }
        let items = std::mem::take(&mut st.queue);
        let n_items = items.len() as u64;
        let demand = std::mem::take(&mut st.demand);
        let mut booked: HashMap<WalletKey, Decimal> = HashMap::new();
        for it in &items {
            if let Pending::Local {
                lease,
                actual: Some(_),
                ..
            } = it
            {
                *booked.entry(lease.wallet.clone()).or_default() += lease.amount;
            }
        }
        struct Plan {
            key: WalletKey,
            old: Option<Arc<str>>,
            size: FloatSize,
            currency: Currency,
            booked: Decimal,
        }
        let mut plans = Vec::new();
        let closing = st.closing;
        for (key, f) in &mut st.floats {
            let b = booked.get(key).copied().unwrap_or_default();
            let asked = demand.get(key).map(|d| d.0);
            let idle = f.last_take + IDLE_MS < now && f.left() > Decimal::ZERO;
            if b.is_zero()
                && asked.is_none()
                && !f.shrink
                && !closing
                && !idle
                && f.created + REFRESH_MS >= now
            {
                continue;
            }
            // given back, idle, or on a wallet with little left: hold only what is in flight
            // (and what a waiting request needs), and let nothing be taken meanwhile
            if closing || idle || f.tight {
                f.shrink = true;
            }
            let need = if closing {
                Decimal::ZERO
            } else {
                asked.unwrap_or_default()
            };
            let size = if f.shrink {
                let held = f.taken - b;
                FloatSize {
                    floor: held,
                    need,
                    want: held + need,
                }
            } else {
                let headroom = (f.since * Decimal::from(4)).max(f.biggest * Decimal::from(32));
                let floor = f.amount - b;
                // a waiting request's need comes on top of the floor: what the floor leaves
                // over may be taken by other threads while the batch runs
                FloatSize {
                    floor,
                    need,
                    want: (floor + need).max(f.taken - b + headroom + need),
                }
            };
            f.since = Decimal::ZERO;
            plans.push(Plan {
                key: key.clone(),
                old: Some(Arc::clone(&f.id)),
                size,
                currency: f.currency,
                booked: b,
            });
        }
        for (key, (amount, currency)) in &demand {
            if !st.floats.contains_key(key) && !closing {
                plans.push(Plan {
                    key: key.clone(),
                    old: None,
                    size: FloatSize {
                        floor: Decimal::ZERO,
                        need: *amount,
                        want: *amount * Decimal::from(32),
                    },
                    currency: *currency,
                    booked: Decimal::ZERO,
                });
            }
        }
        let mut float_ids = Vec::with_capacity(plans.len());
        for _ in &plans {
            st.next_float += 1;
            float_ids.push(self.holder.float_id(self.nonce, st.next_float));
        }
        drop(st);

        let mut ops = Vec::with_capacity(items.len() * 3 + plans.len() * 2);
        for p in &plans {
            if let Some(old) = &p.old {
                ops.push(Op::Release(Arc::clone(old), now));
            }
        }
        for it in &items {
            match it {
                Pending::Local {
                    lease,
                    actual,
                    now: at,
                    draft,
                    ..
                } => {
                    ops.push(Op::Book(
                        ReserveRequest {
                            lease_id: Arc::clone(&lease.id),
                            cascade: vec![lease.wallet.clone()],
                            amount: lease.amount,
                            currency: lease.currency,
                            ttl_ms: lease.expires_at - lease.created_at,
                            price: lease.price,
                            force: None,
                        },
                        lease.created_at,
                    ));
                    push_finish(&mut ops, &lease.id, *actual, *at, draft.as_ref());
                }
                Pending::Settle(id, a, at, draft) => {
                    push_finish(&mut ops, id, Some(*a), *at, draft.as_ref());
                }
                Pending::Release(id, at, draft) => {
                    push_finish(&mut ops, id, None, *at, draft.as_ref());
                }
                Pending::Append(d) => ops.push(Op::Append(d.clone())),
            }
        }
        for (p, id) in plans.iter().zip(&float_ids) {
            ops.push(Op::Float(
                ReserveRequest {
                    lease_id: Arc::from(id.as_str()),
                    cascade: vec![p.key.clone()],
                    amount: p.size.want,
                    currency: p.currency,
                    ttl_ms: FLOAT_TTL_MS,
                    price: None,
                    force: Some(p.key.clone()),
                },
                p.size,
                now,
            ));
        }
        let result = if ops.is_empty() {
            Ok(Vec::new())
        } else {
            (self.run)(&ops)
        };
        // sweep only when the store just answered (a locked or unreachable store would make the
        // retry of the work wait for the sweep too)
        let expired = if expire && result.is_ok() {
            match self.release_gone(now) {
                Ok(released) => {
                    lock(&self.state).notices.extend(released);
                    self.store.expire(now).map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            }
        } else {
            Ok(0)
        };

        let mut st = lock(&self.state);
        if let Err(e) = expired {
            st.errors.push(format!("releasing expired leases: {e}"));
        }
        let ok = match result {
            Err(e) => {
                // nothing was written: keep the work, in order, for the next attempt
                let newer = std::mem::replace(&mut st.queue, items);
                st.queue.extend(newer);
                if st.failure.is_none() {
                    st.errors.push(format!("a batch failed, retrying: {e}"));
                }
                st.failure = Some(e);
                false
            }
            Ok(done) => {
                if !ops.is_empty() {
                    st.failure = None;
                }
                let mut floats_done = Vec::new();
                for d in done {
                    match d {
                        Done::Float(r) => floats_done.push(r),
                        Done::Book(Err(e)) | Done::Release(Err(e)) | Done::Settle(Err(e)) => {
                            st.errors.push(e.to_string());
                        }
                        Done::SettleAppend(Err(e)) => st.errors.push(e.to_string()),
                        _ => {}
                    }
                }
                for (p, r) in plans.iter().zip(floats_done) {
                    let held = st.floats.get(&p.key).map(|f| f.taken - p.booked);
                    match r {
                        Ok((Some(lease), free)) => {
                            let f = st.floats.entry(p.key.clone()).or_insert_with(|| Float {
                                id: Arc::clone(&lease.id),
                                amount: Decimal::ZERO,
                                taken: Decimal::ZERO,
                                currency: p.currency,
                                since: Decimal::ZERO,
                                biggest: Decimal::ZERO,
                                last_take: now,
                                created: now,
                                shrink: false,
                                tight: false,
                                short: false,
                            });
                            f.id = Arc::clone(&lease.id);
                            f.amount = lease.amount;
                            f.taken = held.unwrap_or_default();
                            f.created = now;
                            f.shrink = false;
                            f.tight = free < Decimal::from(TIGHT) * f.biggest.max(p.size.need);
                            f.short = lease.amount < p.size.floor + p.size.need;
                            if f.short {
                                st.dry.insert(p.key.clone(), number);
                            }
                        }
                        Ok((None, _)) => {
                            st.floats.remove(&p.key);
                            if p.size.need > Decimal::ZERO {
                                st.dry.insert(p.key.clone(), number);
                            }
                        }
                        Err(e) => {
                            st.floats.remove(&p.key);
                            if matches!(
                                e,
                                WalletError::UnknownWallet(_)
                                    | WalletError::CurrencyMismatch { .. }
                            ) {
                                st.skip.insert(p.key.clone(), now + SKIP_MS);
                            } else {
                                st.errors.push(format!("float on {}: {e}", p.key));
                            }
                        }
                    }
                }
                for it in &items {
                    if let Pending::Local { lease, .. } = it {
                        st.recent.push_back((now, Arc::clone(&lease.id)));
                    }
                }
                st.committed += n_items;
                true
            }
        };
        st.finished = number;
        // the hook is told before the state lock is let go, so whoever sees a receipt committed
        // (`wait_committed`) finds the hook told as well
        if ok && n_items > 0 {
            if let Some(hook) = self
                .on_commit
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
            {
                hook(st.committed);
            }
        }
        drop(st);
        self.done.notify_all();
        ok
    }
}
