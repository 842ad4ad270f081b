//! Rate limits (`docs/rate-limits.md`): which limits apply to a request, the window arithmetic, the decision,
//! and the `Retry-After` / `X-RateLimit-*` values. Pure: time comes in as `now`, counters
//! through the [`RateCounters`] trait (in memory here; SQLite and PostgreSQL in
//! `keeptrusts-store`).
//!
//! ## Windows
//! Fixed windows aligned on the Unix epoch in UTC: a minute window is `[k·60 s, (k+1)·60 s)`, a
//! day window `[k·86 400 s, (k+1)·86 400 s)` (UTC midnight to midnight). A request is counted in
//! the windows that contain the `now` at which it was admitted, and its token correction at
//! settlement goes to those same windows.
//!
//! ## The decision
//! A request is admitted only if, for **every** limit that applies to it, `used + amount ≤
//! limit` (`amount` is 1 for `requests_per_minute`, the request's token reservation for the token
//! limits); then every counter is increased by its amount, atomically (one store transaction),
//! else none is. So within one window and one counter the admitted total never exceeds the limit
//! (before settlement corrections); across a window boundary a client can be admitted up to
//! `limit` at the end of one window and `limit` again at the start of the next: **over any
//! sliding interval of the window's length at most twice the limit** is admitted. That is the
//! error bound of fixed windows; nothing is admitted beyond it.
//!
//! Tokens are counted at admission as the reservation's bound (input bytes + output limit, the
//! same bound the wallet reserves) and corrected at settlement to the provider's usage (0 for a
//! request no provider served). A provider that bills above the forwarded limit (an overrun)
//! raises the counter above the limit; later requests are then refused until the window ends.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::escalation::Millis;
use crate::pack::spec::{PackSpec, RateLimitSpec};

/// One minute, in milliseconds.
pub const MINUTE_MS: Millis = 60_000;
/// One day, in milliseconds.
pub const DAY_MS: Millis = 86_400_000;

/// Which limit of a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// `requests_per_minute`.
    RequestsPerMinute,
    /// `tokens_per_minute`.
    TokensPerMinute,
    /// `tokens_per_day`.
    TokensPerDay,
}

impl LimitKind {
    /// The pack key.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::RequestsPerMinute => "requests_per_minute",
            LimitKind::TokensPerMinute => "tokens_per_minute",
            LimitKind::TokensPerDay => "tokens_per_day",
        }
    }

    /// The window length.
    pub fn window_ms(self) -> Millis {
        match self {
            LimitKind::RequestsPerMinute | LimitKind::TokensPerMinute => MINUTE_MS,
            LimitKind::TokensPerDay => DAY_MS,
        }
    }

    fn short(self) -> &'static str {
        match self {
            LimitKind::RequestsPerMinute => "rpm",
            LimitKind::TokensPerMinute => "tpm",
            LimitKind::TokensPerDay => "tpd",
        }
    }

    fn counts_tokens(self) -> bool {
        !matches!(self, LimitKind::RequestsPerMinute)
    }
}

/// Whose counter a limit is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitScope {
    /// One API key (`rate_limit_defaults`, or its team's override).
    Key,
    /// A whole consumer group, all of its keys together.
    ConsumerGroup,
}

/// The window `[start, end)` of length `window_ms` that contains `now`.
pub fn window(now: Millis, window_ms: Millis) -> (Millis, Millis) {
    let w = window_ms.max(1);
    let start = now - now.rem_euclid(w);
    (start, start.saturating_add(w))
}

/// The compiled limits of one scope (`None`: that limit is not set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// `requests_per_minute`.
    pub requests_per_minute: Option<u64>,
    /// `tokens_per_minute`.
    pub tokens_per_minute: Option<u64>,
    /// `tokens_per_day`.
    pub tokens_per_day: Option<u64>,
    /// `response_headers`: send `X-RateLimit-*` on answers (default false).
    pub response_headers: bool,
}

impl Limits {
    fn of(spec: Option<&RateLimitSpec>) -> Limits {
        Limits::default().over(spec)
    }

    /// These limits with the keys `spec` sets replacing them (a key-by-key merge, as inline
    /// chain options merge over `policy.<kind>`).
    fn over(self, spec: Option<&RateLimitSpec>) -> Limits {
        let Some(s) = spec else { return self };
        Limits {
            requests_per_minute: s
                .requests_per_minute
                .map(|l| l.get())
                .or(self.requests_per_minute),
            tokens_per_minute: s
                .tokens_per_minute
                .map(|l| l.get())
                .or(self.tokens_per_minute),
            tokens_per_day: s.tokens_per_day.map(|l| l.get()).or(self.tokens_per_day),
            response_headers: s.response_headers.unwrap_or(self.response_headers),
        }
    }

    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.requests_per_minute.is_some()
            || self.tokens_per_minute.is_some()
            || self.tokens_per_day.is_some()
    }

    fn each(&self) -> impl Iterator<Item = (LimitKind, u64)> {
        [
            (LimitKind::RequestsPerMinute, self.requests_per_minute),
            (LimitKind::TokensPerMinute, self.tokens_per_minute),
            (LimitKind::TokensPerDay, self.tokens_per_day),
        ]
        .into_iter()
        .filter_map(|(k, l)| l.map(|l| (k, l)))
    }
}

/// Who a request is counted for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    /// The organization (counters of one store are kept apart per org).
    pub org: &'a str,
    /// The API key's stable identity (the gateway passes
    /// [`ApiKey::rate_identity`](crate::directory::ApiKey::rate_identity), which survives
    /// rotation); without one, per-key limits do not apply.
    pub key: Option<&'a str>,
    /// The team the request is attributed to (selects the team's override).
    pub team: Option<&'a str>,
    /// The consumer group the request runs in.
    pub consumer_group: Option<&'a str>,
}

/// One counter a request adds to, with the limit it must stay within.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    /// The counter's name (`<scope>:<org>:<id>:<rpm|tpm|tpd>`).
    pub counter: String,
    /// Start of the window (ms since the epoch).
    pub window_start: Millis,
    /// End of the window (exclusive); the counter may be forgotten after it.
    pub window_end: Millis,
    /// The limit.
    pub limit: u64,
    /// What this request adds (1 request, or its token reservation).
    pub amount: u64,
    /// Which limit.
    pub kind: LimitKind,
    /// Whose limit.
    pub scope: LimitScope,
    /// Whether this limit's scope asks for response headers.
    pub headers: bool,
}

/// What [`RateCounters::take`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// Whether the amounts were added (the request is admitted).
    pub admitted: bool,
    /// Each hit's counter value before this request, in the order of the hits.
    pub used: Vec<u64>,
}

/// A signed change to a token counter (a settlement's correction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    /// The counter.
    pub counter: String,
    /// Its window's start.
    pub window_start: Millis,
    /// Its window's end.
    pub window_end: Millis,
    /// Added to the counter; the counter never goes below 0.
    pub delta: i64,
}

/// Whether a request whose hits see counters at `used` is admitted: every hit must fit. This is
/// the one rule; every [`RateCounters`] store applies it inside its atomic step.
pub fn admits(hits: &[Hit], used: &[u64]) -> bool {
    hits.iter().enumerate().all(|(i, h)| {
        let u = used.get(i).copied().unwrap_or(0);
        u.checked_add(h.amount).is_some_and(|t| t <= h.limit)
    })
}

/// Counters of fixed windows. Every method is atomic.
pub trait RateCounters: Send + Sync {
    /// Reads each hit's counter (0 when it does not exist), decides with [`admits`], and when
    /// admitted adds every hit's amount; all in one atomic step, so concurrent callers (other
    /// threads, other gateways on the store) never see a partial request.
    ///
    /// # Errors
    /// A store failure; nothing is added then.
    fn take(&self, hits: &[Hit]) -> Result<Taken, StoreError>;

    /// Adds each correction's delta to its counter, flooring at 0 (a counter already forgotten
    /// is created again only by a positive delta).
    ///
    /// # Errors
    /// A store failure.
    fn adjust(&self, corrections: &[Correction]) -> Result<(), StoreError>;

    /// Forgets counters whose window ended at or before `now`; returns how many.
    ///
    /// # Errors
    /// A store failure.
    fn prune_windows(&self, now: Millis) -> Result<usize, StoreError>;
}

/// In-memory [`RateCounters`] (tests, and the gateway on SQLite: one process). One mutex; a
/// lookup allocates nothing (counter name → its windows, usually one or two).
#[derive(Debug, Default)]
pub struct MemoryRateCounters {
    counters: Mutex<Windows>,
}

/// counter → its windows: (start, end, used)
type Windows = HashMap<String, Vec<(Millis, Millis, u64)>>;

fn slot(m: &Windows, counter: &str, start: Millis) -> Option<u64> {
    m.get(counter)?.iter().find(|w| w.0 == start).map(|w| w.2)
}

/// Applies `f` to a counter's value in a window; a missing one is created (from 0) only when
/// `create`. One hash lookup when the counter exists.
fn update(
    m: &mut Windows,
    counter: &str,
    (start, end): (Millis, Millis),
    create: bool,
    f: impl FnOnce(u64) -> u64,
) {
    match m.get_mut(counter) {
        Some(windows) => match windows.iter_mut().find(|w| w.0 == start) {
            Some(w) => w.2 = f(w.2),
            None if create => windows.push((start, end, f(0))),
            None => {}
        },
        None if create => {
            m.insert(counter.to_owned(), vec![(start, end, f(0))]);
        }
        None => {}
    }
}

impl MemoryRateCounters {
    /// No counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter's value (0 when absent).
    pub fn value(&self, counter: &str, window_start: Millis) -> u64 {
        self.counters
            .lock()
            .ok()
            .and_then(|m| slot(&m, counter, window_start))
            .unwrap_or(0)
    }
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("rate counters: lock poisoned".into())
}

/// `used + delta`, floored at 0.
pub fn corrected(used: u64, delta: i64) -> u64 {
    if delta >= 0 {
        used.saturating_add(delta.unsigned_abs())
    } else {
        used.saturating_sub(delta.unsigned_abs())
    }
}

impl RateCounters for MemoryRateCounters {
    fn take(&self, hits: &[Hit]) -> Result<Taken, StoreError> {
        let mut m = self.counters.lock().map_err(|_| poisoned())?;
        let used: Vec<u64> = hits
            .iter()
            .map(|h| slot(&m, &h.counter, h.window_start).unwrap_or(0))
            .collect();
        let admitted = admits(hits, &used);
        if admitted {
            for h in hits {
                update(
                    &mut m,
                    &h.counter,
                    (h.window_start, h.window_end),
                    true,
                    |v| v.saturating_add(h.amount),
                );
            }
        }
        Ok(Taken { admitted, used })
    }

    fn adjust(&self, corrections: &[Correction]) -> Result<(), StoreError> {
        let mut m = self.counters.lock().map_err(|_| poisoned())?;
        for c in corrections {
            update(
                &mut m,
                &c.counter,
                (c.window_start, c.window_end),
                c.delta > 0,
                |v| corrected(v, c.delta),
            );
        }
        Ok(())
    }

    fn prune_windows(&self, now: Millis) -> Result<usize, StoreError> {
        let mut m = self.counters.lock().map_err(|_| poisoned())?;
        let mut pruned = 0;
        m.retain(|_, windows| {
            let before = windows.len();
            windows.retain(|w| w.1 > now);
            pruned += before - windows.len();
            !windows.is_empty()
        });
        Ok(pruned)
    }
}

/// The limits of a pack, compiled: `rate_limit_defaults` per key, `teams.<slug>.rate_limits`
/// merged key by key over them for that team's keys, and `providers.consumer_groups[].rate_limits`
/// per group.
#[derive(Debug, Clone)]
pub struct RateLimits {
    defaults: Limits,
    teams: HashMap<String, Limits>,
    groups: HashMap<String, Limits>,
    /// No limit anywhere (computed once).
    empty: bool,
}

impl Default for RateLimits {
    /// No limits.
    fn default() -> Self {
        RateLimits {
            defaults: Limits::default(),
            teams: HashMap::new(),
            groups: HashMap::new(),
            empty: true,
        }
    }
}

/// What the client is told about its most constrained limit (`X-RateLimit-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateHeaders {
    /// `X-RateLimit-Limit`.
    pub limit: u64,
    /// `X-RateLimit-Remaining`, after this request.
    pub remaining: u64,
    /// `X-RateLimit-Reset`: whole seconds until that limit's window ends (rounded up).
    pub reset_seconds: u64,
}

impl RateHeaders {
    /// The header names and values.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("x-ratelimit-limit", self.limit.to_string()),
            ("x-ratelimit-remaining", self.remaining.to_string()),
            ("x-ratelimit-reset", self.reset_seconds.to_string()),
        ]
    }
}

/// A refusal: which limit, and when to come back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limited {
    /// The limit that refused (the one whose window ends last, when several did).
    pub kind: LimitKind,
    /// Its scope.
    pub scope: LimitScope,
    /// The limit.
    pub limit: u64,
    /// What the request needed of it.
    pub amount: u64,
    /// `Retry-After`, in whole seconds (at least 1): when every refusing window has ended.
    pub retry_after: u64,
    /// Whether the request could never fit (its amount alone is above the limit).
    pub never: bool,
}

impl Limited {
    /// The message of the 429 envelope (names the limit, never the key).
    pub fn message(&self) -> String {
        let whose = match self.scope {
            LimitScope::Key => "this API key",
            LimitScope::ConsumerGroup => "the consumer group",
        };
        if self.never {
            format!(
                "the request needs {} tokens, more than {whose}'s {} of {}: it can never be admitted",
                self.amount,
                self.kind.as_str(),
                self.limit
            )
        } else {
            format!(
                "{whose} reached its {} of {}; retry after {} s",
                self.kind.as_str(),
                self.limit,
                self.retry_after
            )
        }
    }
}

/// What was counted for an admitted request, to correct its tokens at settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateCharge {
    /// The token counters (counter, window start, window end) the reservation was added to.
    pub counters: Vec<(String, Millis, Millis)>,
    /// The tokens reserved in each.
    pub reserved: u64,
}

impl RateCharge {
    /// The corrections that replace the reservation by `actual` tokens.
    pub fn corrections(&self, actual: u64) -> Vec<Correction> {
        let delta = i64::try_from(actual)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(self.reserved).unwrap_or(i64::MAX));
        if delta == 0 {
            return Vec::new();
        }
        self.counters
            .iter()
            .map(|(counter, start, end)| Correction {
                counter: counter.clone(),
                window_start: *start,
                window_end: *end,
                delta,
            })
            .collect()
    }
}

/// The outcome of [`RateLimits::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateDecision {
    /// No limit applies to this request.
    Unlimited,
    /// Admitted and counted.
    Admitted {
        /// Headers to send (when a scope asked for them).
        headers: Option<RateHeaders>,
        /// The token counting to correct at settlement (`None` without token limits).
        charge: Option<RateCharge>,
    },
    /// Refused: 429 `rate_limited`, nothing counted.
    Limited {
        /// Which limit and when to retry.
        limited: Limited,
        /// Headers to send (when a scope asked for them).
        headers: Option<RateHeaders>,
    },
}

fn ceil_seconds(ms: Millis) -> u64 {
    u64::try_from(ms.max(0)).unwrap_or(0).div_ceil(1000)
}

fn id_part(s: &str) -> std::borrow::Cow<'_, str> {
    // counters are named `scope:org:id:kind`; keep the separator out of ids
    if s.contains([':', '%']) {
        std::borrow::Cow::Owned(s.replace('%', "%25").replace(':', "%3A"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

impl RateLimits {
    /// Compiles the pack's limits.
    pub fn new(spec: &PackSpec) -> RateLimits {
        let defaults = Limits::of(spec.rate_limit_defaults.as_ref());
        let teams = spec
            .teams
            .iter()
            .flatten()
            .map(|(slug, t)| (slug.clone(), defaults.over(t.rate_limits.as_ref())))
            .collect();
        let groups = spec
            .providers
            .as_ref()
            .and_then(|p| p.consumer_groups.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|g| {
                g.rate_limits
                    .as_ref()
                    .map(|r| (g.name.clone(), Limits::of(Some(r))))
            })
            .collect();
        let mut limits = RateLimits {
            defaults,
            teams,
            groups,
            empty: true,
        };
        limits.empty = !limits.defaults.any()
            && limits.teams.values().all(|l| !l.any())
            && limits.groups.values().all(|l| !l.any());
        limits
    }

    /// Whether the pack sets no limit anywhere (the host then skips counting entirely).
    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// The per-key limits of a team's keys (its override merged over the defaults).
    pub fn key_limits(&self, team: Option<&str>) -> Limits {
        team.and_then(|t| self.teams.get(t))
            .copied()
            .unwrap_or(self.defaults)
    }

    /// The limits of a consumer group, if it has any.
    pub fn group_limits(&self, group: &str) -> Option<Limits> {
        self.groups.get(group).copied()
    }

    /// The counters a request adds to at `now`: its key's limits (when it has a key) and its
    /// consumer group's. `tokens`: the request's token reservation.
    pub fn hits(&self, subject: &Subject<'_>, tokens: u64, now: Millis) -> Vec<Hit> {
        let mut out = Vec::new();
        let mut add = |scope: LimitScope, id: &str, limits: Limits| {
            let prefix = match scope {
                LimitScope::Key => "key",
                LimitScope::ConsumerGroup => "group",
            };
            // `prefix:org:id:` once, then each kind (no formatting machinery on the hot path)
            let (org, id) = (id_part(subject.org), id_part(id));
            let mut base = String::with_capacity(prefix.len() + org.len() + id.len() + 7);
            for part in [prefix, ":", &org, ":", &id, ":"] {
                base.push_str(part);
            }
            for (kind, limit) in limits.each() {
                let (window_start, window_end) = window(now, kind.window_ms());
                let mut counter = base.clone();
                counter.push_str(kind.short());
                out.push(Hit {
                    counter,
                    window_start,
                    window_end,
                    limit,
                    amount: if kind.counts_tokens() { tokens } else { 1 },
                    kind,
                    scope,
                    headers: limits.response_headers,
                });
            }
        };
        if let Some(key) = subject.key {
            add(LimitScope::Key, key, self.key_limits(subject.team));
        }
        if let Some(g) = subject.consumer_group {
            if let Some(l) = self.group_limits(g) {
                add(LimitScope::ConsumerGroup, g, l);
            }
        }
        out
    }

    /// Counts a request and decides: see the module documentation.
    ///
    /// # Errors
    /// A store failure; nothing is counted then.
    pub fn check(
        &self,
        counters: &dyn RateCounters,
        subject: &Subject<'_>,
        tokens: u64,
        now: Millis,
    ) -> Result<RateDecision, StoreError> {
        let hits = self.hits(subject, tokens, now);
        if hits.is_empty() {
            return Ok(RateDecision::Unlimited);
        }
        let taken = counters.take(&hits)?;
        Ok(decide(&hits, &taken, now))
    }
}

/// The decision, headers and charge for hits whose counters were `taken` at `now`.
pub fn decide(hits: &[Hit], taken: &Taken, now: Millis) -> RateDecision {
    let after = |i: usize, h: &Hit| {
        let u = taken.used.get(i).copied().unwrap_or(0);
        if taken.admitted {
            u.saturating_add(h.amount)
        } else {
            u
        }
    };
    // the most constrained limit: least remaining as a share of the limit (first on ties)
    let headers = hits.iter().any(|h| h.headers).then(|| {
        let mut best: Option<(u128, u128, RateHeaders)> = None;
        for (i, h) in hits.iter().enumerate() {
            let remaining = h.limit.saturating_sub(after(i, h));
            let cand = RateHeaders {
                limit: h.limit,
                remaining,
                reset_seconds: ceil_seconds(h.window_end - now),
            };
            // remaining/limit < best.remaining/best.limit, compared without division
            let better = best
                .as_ref()
                .is_none_or(|(r, l, _)| u128::from(remaining) * l < r * u128::from(h.limit.max(1)));
            if better {
                best = Some((u128::from(remaining), u128::from(h.limit.max(1)), cand));
            }
        }
        best.map(|b| b.2).unwrap_or(RateHeaders {
            limit: 0,
            remaining: 0,
            reset_seconds: 0,
        })
    });
    if taken.admitted {
        let token_hits: Vec<&Hit> = hits.iter().filter(|h| h.kind.counts_tokens()).collect();
        let charge = token_hits.first().map(|first| RateCharge {
            counters: token_hits
                .iter()
                .map(|h| (h.counter.clone(), h.window_start, h.window_end))
                .collect(),
            reserved: first.amount,
        });
        return RateDecision::Admitted { headers, charge };
    }
    let refusing = hits.iter().enumerate().filter(|(i, h)| {
        taken
            .used
            .get(*i)
            .copied()
            .unwrap_or(0)
            .checked_add(h.amount)
            .is_none_or(|t| t > h.limit)
    });
    // a request larger than a limit can never fit: name that limit
    let impossible = hits.iter().find(|h| h.amount > h.limit);
    let never = impossible.is_some();
    let mut worst: Option<&Hit> = impossible;
    if worst.is_none() {
        for (_, h) in refusing {
            if worst.is_none_or(|w| h.window_end > w.window_end) {
                worst = Some(h);
            }
        }
    }
    let limited = match worst {
        Some(h) => Limited {
            kind: h.kind,
            scope: h.scope,
            limit: h.limit,
            amount: h.amount,
            retry_after: ceil_seconds(h.window_end - now).max(1),
            never,
        },
        // a store that refused although every hit fits: report the first limit
        None => Limited {
            kind: hits
                .first()
                .map_or(LimitKind::RequestsPerMinute, |h| h.kind),
            scope: hits.first().map_or(LimitScope::Key, |h| h.scope),
            limit: hits.first().map_or(0, |h| h.limit),
            amount: hits.first().map_or(0, |h| h.amount),
            retry_after: 1,
            never,
        },
    };
    RateDecision::Limited { limited, headers }
}

#[cfg(test)]
mod tests;
