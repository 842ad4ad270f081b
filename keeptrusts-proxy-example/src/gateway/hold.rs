//! Held requests (`wallets.queue`, docs/wallets.md "Held requests"): an over-budget request is
//! kept open after its cost ticket is created, and replayed with its ticket when the ticket is
//! approved, denied or expires, or when a wallet of its cascade is funded; when its hold ends
//! first it gets the 402 it was given.
//!
//! When to release is the core's rule ([`keeptrusts_core::wallet::queue::release`]); this file
//! waits: it reads the ticket and the cascade's wallets from the store every [`POLL`], so an
//! approval or an allocation made by another gateway or the CLI on the same store releases it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;
use hyper::Response;
use keeptrusts_core::wallet::queue::{self, QueueConfig, Release};
use keeptrusts_core::wallet::ticket::TicketStore;
use keeptrusts_core::wallet::{Wallet, WalletStore};
use keeptrusts_core::{ChatRequest, Principal, RequestContext};

use super::{backend, blocking, error, exchange, App, GwBody};
use crate::gateway::api::{self, Api};

/// How often a held request reads its ticket and wallets again.
pub(crate) const POLL: Duration = Duration::from_millis(250);

/// The cost ticket of a 402 answer, put in its response's extensions by [`exchange`].
#[derive(Clone, Debug)]
pub(crate) struct TicketOf(pub String);

/// The gateway's held requests: how many per team, the shutdown signal they listen to, and what
/// became of them (for `/metrics`).
pub(crate) struct Holds {
    per_team: Mutex<HashMap<String, u32>>,
    stopping: tokio::sync::watch::Sender<bool>,
    released: AtomicU64,
    timed_out: AtomicU64,
    refused_full: AtomicU64,
}

impl Default for Holds {
    fn default() -> Self {
        Holds {
            per_team: Mutex::new(HashMap::new()),
            stopping: tokio::sync::watch::channel(false).0,
            released: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            refused_full: AtomicU64::new(0),
        }
    }
}

impl Holds {
    /// Tells every held request that the gateway stops: each answers 503 with its ticket.
    pub(crate) fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// A place for one more held request of `team`, if it has fewer than `max` held.
    fn enter(self: &Arc<Self>, team: &str, max: u32) -> Option<Slot> {
        let mut m = self.per_team.lock().ok()?;
        let n = m.entry(team.to_owned()).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            holds: Arc::clone(self),
            team: team.to_owned(),
        })
    }

    /// The `/metrics` lines of held requests.
    pub(crate) fn render(&self) -> String {
        let held: u32 = self
            .per_team
            .lock()
            .map(|m| m.values().sum())
            .unwrap_or_default();
        format!(
            "# HELP keeptrusts_held_requests Over-budget requests held open now, waiting for their ticket.\n# TYPE keeptrusts_held_requests gauge\nkeeptrusts_held_requests {held}\n# HELP keeptrusts_holds_total Held requests by how their hold ended.\n# TYPE keeptrusts_holds_total counter\nkeeptrusts_holds_total{{outcome=\"released\"}} {}\nkeeptrusts_holds_total{{outcome=\"timed_out\"}} {}\nkeeptrusts_holds_total{{outcome=\"queue_full\"}} {}\n",
            self.released.load(Ordering::Relaxed),
            self.timed_out.load(Ordering::Relaxed),
            self.refused_full.load(Ordering::Relaxed),
        )
    }
}

/// One held request's place in its team's count; given back when dropped (the hold ended, or
/// the client went away).
struct Slot {
    holds: Arc<Holds>,
    team: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.holds.per_team.lock() {
            if let Some(n) = m.get_mut(&self.team) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&self.team);
                }
            }
        }
    }
}

/// A ticket marked held in the store ([`TicketStore::hold`]) while this lives; unmarked when
/// dropped, also when the client goes away mid-hold.
struct Marked {
    app: Arc<App>,
    ticket: String,
}

impl Drop for Marked {
    fn drop(&mut self) {
        let app = Arc::clone(&self.app);
        let id = std::mem::take(&mut self.ticket);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn_blocking(move || {
                if let Err(e) = TicketStore::hold(app.store.as_ref(), &id, None) {
                    tracing::warn!(ticket = %id, "the ticket's hold was not cleared: {e}");
                }
            });
        }
    }
}

/// How a hold ended.
enum Ended {
    /// Replay the request with its ticket.
    Replay(Release),
    /// The hold's time ran out: the 402 stands.
    TimedOut,
    /// The gateway stops.
    Stopping,
}

/// A governed request, held while it is refused for its budget with a cost ticket and the pack
/// (and the client's `Prefer: wait=N`) allow it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn governed_held(
    app: &Arc<App>,
    principal: &Principal,
    rate_key: Option<std::sync::Arc<str>>,
    mut ctx: RequestContext,
    request: &ChatRequest,
    inbound: &api::Inbound,
    api: Api,
    mut rid: String,
    started: Instant,
    prefer: Option<&str>,
) -> Response<GwBody> {
    let queue = app.engine.queue();
    let hold_ms = queue.map_or(0, |q: QueueConfig| q.hold_ms(prefer));
    let mut hold: Option<(Instant, Slot)> = None;
    // what the cascade's wallets had available when the request was last replayed for funding:
    // a replay that was refused again waits for them to change, so it cannot spin
    let mut funded_at: Option<Vec<rust_decimal::Decimal>> = None;
    loop {
        let resp = exchange(
            app,
            principal,
            rate_key.as_deref(),
            &ctx,
            request,
            inbound,
            api,
            rid.clone(),
            started,
        )
        .await;
        let (Some(q), Some(TicketOf(ticket))) =
            (queue, resp.extensions().get::<TicketOf>().cloned())
        else {
            return applied(resp, hold.is_some().then_some(hold_ms));
        };
        if hold_ms == 0 {
            return resp;
        }
        if hold.is_none() {
            let team = principal.team.as_deref().unwrap_or("-");
            let Some(slot) = app.holds.enter(team, q.max_held_per_team) else {
                app.holds.refused_full.fetch_add(1, Ordering::Relaxed);
                tracing::info!(request_id = %rid, ticket = %ticket, team, "not held: the team has max_held_per_team requests held");
                return resp;
            };
            let deadline = Instant::now() + Duration::from_millis(hold_ms.unsigned_abs());
            hold = Some((deadline, slot));
        }
        let Some((deadline, _)) = &hold else {
            return resp;
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            app.holds.timed_out.fetch_add(1, Ordering::Relaxed);
            return applied(resp, Some(hold_ms));
        }
        let until = backend::now_ms()
            .saturating_add(i64::try_from(remaining.as_millis()).unwrap_or(i64::MAX));
        let marked = mark(app, &ticket, until).await;
        tracing::info!(request_id = %rid, ticket = %ticket, hold_ms = remaining.as_millis() as u64, "held");
        let ended = wait(app, principal, &ticket, *deadline, &mut funded_at).await;
        drop(marked);
        match ended {
            Ended::Replay(why) => {
                app.holds.released.fetch_add(1, Ordering::Relaxed);
                tracing::info!(request_id = %rid, ticket = %ticket, release = ?why, "released: replayed with its ticket");
                let Ok(next) = keeptrusts_store::random_id("req_") else {
                    return resp;
                };
                rid = next;
                let escalation = ctx.escalation_id.take();
                ctx = RequestContext::new(&rid, backend::now_ms());
                ctx.escalation_id = escalation;
                ctx.ticket_id = Some(ticket);
            }
            Ended::TimedOut => {
                app.holds.timed_out.fetch_add(1, Ordering::Relaxed);
                return applied(resp, Some(hold_ms));
            }
            Ended::Stopping => {
                return error(
                    503,
                    "gateway_stopping",
                    &format!("the gateway stopped while the request was held: its cost ticket `{ticket}` stays; re-send the request with X-Keeptrusts-Ticket-Id: {ticket} once it is approved or a wallet is funded"),
                    &rid,
                );
            }
        }
    }
}

/// `resp` saying how long it was held at most (`Preference-Applied: wait=N`, RFC 7240).
fn applied(mut resp: Response<GwBody>, hold_ms: Option<i64>) -> Response<GwBody> {
    if let Some(ms) = hold_ms {
        if let Ok(v) = HeaderValue::from_str(&format!("wait={}", ms / 1000)) {
            resp.headers_mut().insert("preference-applied", v);
        }
    }
    resp
}

/// Marks `ticket` held until `until` in the store (visible in the ticket lists); a store that
/// fails is logged, and the request is held all the same.
async fn mark(app: &Arc<App>, ticket: &str, until: i64) -> Marked {
    let store = Arc::clone(&app.store);
    let id = ticket.to_owned();
    if let Some(Err(e)) =
        blocking(move || TicketStore::hold(store.as_ref(), &id, Some(until))).await
    {
        tracing::warn!(ticket, "the ticket was not marked held: {e}");
    }
    Marked {
        app: Arc::clone(app),
        ticket: ticket.to_owned(),
    }
}

/// Waits until the core says the held request may go on, its deadline passes, or the gateway
/// stops. A release for funding counts only when the wallets' available amounts differ from
/// `funded_at` (those of the last replay for funding), which it then records.
async fn wait(
    app: &Arc<App>,
    principal: &Principal,
    ticket: &str,
    deadline: Instant,
    funded_at: &mut Option<Vec<rust_decimal::Decimal>>,
) -> Ended {
    let mut stopping = app.holds.stopping.subscribe();
    let keys = app.engine.wallet_cascade(principal);
    loop {
        if *stopping.borrow() {
            return Ended::Stopping;
        }
        let store = Arc::clone(&app.store);
        let (id, keys2) = (ticket.to_owned(), keys.clone());
        let read = blocking(move || {
            let now = backend::now_ms();
            let t = TicketStore::get(store.as_ref(), &id)?;
            let mut wallets: Vec<Wallet> = Vec::new();
            for k in &keys2 {
                if let Some(w) = WalletStore::get(store.as_ref(), k, now)? {
                    wallets.push(w);
                }
            }
            let available: Vec<_> = wallets.iter().map(Wallet::available).collect();
            Ok::<_, keeptrusts_core::StoreError>((
                queue::release(t.as_ref(), &wallets, now),
                available,
            ))
        })
        .await;
        match read {
            Some(Ok((Some(Release::Funded), available))) => {
                if funded_at.as_ref() != Some(&available) {
                    *funded_at = Some(available);
                    return Ended::Replay(Release::Funded);
                }
            }
            Some(Ok((Some(why), _))) => return Ended::Replay(why),
            Some(Ok((None, _))) => {}
            Some(Err(e)) => tracing::warn!(ticket, "a held request could not read its ticket: {e}"),
            None => tracing::warn!(ticket, "a held request could not read its ticket"),
        }
        let now = Instant::now();
        if now >= deadline {
            return Ended::TimedOut;
        }
        tokio::select! {
            () = tokio::time::sleep(POLL.min(deadline - now)) => {}
            _ = stopping.changed() => return Ended::Stopping,
        }
    }
}
