//! Providers, consumer groups and routing (`docs/routing.md`).
//!
//! A [`Router`] is compiled from the pack's `providers` and a secret resolver the host supplies
//! (the core reads no environment). For a request it returns an ordered candidate list; the host
//! tries them in order and reports each outcome back ([`Router::record_success`],
//! [`Router::record_failure`]), which feeds the latency averages and the circuit breakers.
//!
//! Routing state is per target and kept in atomics, so many threads route and record at once
//! without a lock.
//!
//! Strategies: `ordered` keeps config order; `round_robin` rotates the starting target on every
//! route; `lowest_latency` puts targets never observed first (so every target gets explored), then
//! ranks by an exponentially weighted moving average (α = 1/8) of observed latency (time to first
//! token for streams); `cost_optimized` ranks by the cost of this request at each target's price
//! (unknown prices last). Targets whose secret is missing are unavailable; targets whose breaker is
//! open are skipped.
//!
//! Breaker: closed → open after `failure_threshold` consecutive failures → after `cooldown_ms`
//! half-open, when exactly one route may probe it → a success closes it, a failure opens it again.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;

use crate::error::{Diagnostic, Severity};
use crate::identity::Principal;
use crate::pack::spec::{PackSpec, ProviderKind, Routing};
use crate::pack::yaml::Mark;
use crate::pricing::{self, Price};
use crate::request::ChatRequest;
use crate::time::Millis;

/// The default base URL of a provider (`None`: the pack must give one).
pub fn default_base_url(kind: ProviderKind) -> Option<&'static str> {
    match kind {
        ProviderKind::Openai => Some("https://api.openai.com/v1"),
        ProviderKind::Anthropic => Some("https://api.anthropic.com/v1"),
        ProviderKind::Mock => Some("mock://local"),
        ProviderKind::Azure | ProviderKind::OpenaiCompatible => None,
    }
}

/// One upstream target, resolved.
#[derive(Clone, Serialize)]
pub struct Target {
    /// Id from the pack.
    pub id: String,
    /// Provider flavour.
    pub provider: ProviderKind,
    /// Model name at the provider.
    pub model: String,
    /// Base URL (the pack's, or the provider default).
    pub base_url: String,
    /// The API key, read by the host's resolver at load time. Never serialized or printed.
    #[serde(skip)]
    pub secret: Option<String>,
    /// Whether the target can be used (its secret resolved, or it needs none).
    pub available: bool,
    /// Price: the pack's override, else the built-in table.
    pub price: Option<Price>,
    /// The price per 1M tokens in units of 1e-9, for ranking only (money stays decimal).
    #[serde(skip)]
    rank_price: Option<(u64, u64)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("available", &self.available)
            .finish()
    }
}

/// Sorts candidates by `(key, position)`, computing each key once. Up to 16 candidates are sorted
/// in a stack buffer as single integers: bit 127 is the flag (sorts last), the key saturates at
/// 2^122, and the low 4 bits hold the position, which keeps ties in config order.
fn sort_by_keys(candidates: &mut Vec<usize>, key: impl Fn(usize) -> (bool, u128)) {
    const N: usize = 16;
    const MAX_KEY: u128 = (1 << 122) - 1;
    if candidates.len() <= N {
        let mut packed = [0u128; N];
        for (pos, (slot, &i)) in packed.iter_mut().zip(candidates.iter()).enumerate() {
            let (flag, k) = key(i);
            *slot = (u128::from(flag) << 127) | (k.min(MAX_KEY) << 4) | pos as u128;
        }
        let original: [usize; N] = std::array::from_fn(|j| candidates.get(j).copied().unwrap_or(0));
        if let Some(keys) = packed.get_mut(..candidates.len()) {
            keys.sort_unstable();
            for (c, k) in candidates.iter_mut().zip(keys.iter()) {
                *c = original.get((k & 15) as usize).copied().unwrap_or(*c);
            }
        }
    } else {
        let mut keyed: Vec<((bool, u128), usize)> =
            candidates.iter().map(|&i| (key(i), i)).collect();
        keyed.sort_unstable();
        candidates.clear();
        candidates.extend(keyed.into_iter().map(|(_, i)| i));
    }
}

/// `d` in units of 1e-9, rounded up (ranking only); `None` if negative or above ~1.8e10.
fn scaled(d: rust_decimal::Decimal) -> Option<u64> {
    let v = d
        .checked_mul(rust_decimal::Decimal::from(1_000_000_000u32))?
        .ceil();
    let whole = v.mantissa().checked_div(10i128.checked_pow(v.scale())?)?;
    u64::try_from(whole).ok()
}

/// Breaker and latency settings (host-level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterOptions {
    /// Consecutive failures that open a target's breaker. Default 5.
    pub failure_threshold: u32,
    /// How long a breaker stays open before one probe is allowed. Default 30 s.
    pub cooldown_ms: Millis,
    /// Output tokens assumed for cost ranking when the request sets no `max_tokens`. Default 1024.
    pub default_max_output_tokens: u32,
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions {
            failure_threshold: 5,
            cooldown_ms: 30_000,
            default_max_output_tokens: 1024,
        }
    }
}

/// Lock-free per-target state.
#[derive(Debug, Default)]
struct TargetState {
    /// EWMA of latency in microseconds; 0 = never observed.
    ewma_us: AtomicU64,
    failures: AtomicU32,
    /// When the breaker opened (ms); 0 = closed.
    opened_at: AtomicI64,
    /// When a half-open probe was handed out (ms); 0 = none. A probe that is never reported goes
    /// stale after a cooldown, so a route that did not try its probe cannot wedge the breaker.
    probing: AtomicI64,
}

/// A set of names: a linear scan while small (cheaper than hashing a short key), a hash set when
/// large.
#[derive(Debug)]
enum Names {
    Few(Vec<String>),
    Many(HashSet<String>),
}

impl Names {
    fn new(v: Vec<String>) -> Self {
        if v.len() <= 16 {
            Names::Few(v)
        } else {
            Names::Many(v.into_iter().collect())
        }
    }

    fn contains(&self, name: &str) -> bool {
        match self {
            Names::Few(v) => v.iter().any(|n| n == name),
            Names::Many(s) => s.contains(name),
        }
    }
}

#[derive(Debug)]
struct Group {
    name: String,
    teams: Option<Names>,
    targets: Vec<usize>,
    routing: Routing,
    cursor: AtomicUsize,
}

/// Why a request cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The request names a consumer group the pack does not define.
    #[error("unknown consumer group `{0}`")]
    UnknownGroup(String),
    /// The caller's team may not use the group.
    #[error("team is not allowed to use consumer group `{0}`")]
    GroupForbidden(String),
    /// No target serves the requested model (no group named).
    #[error("no target serves the requested model")]
    NoTargetForModel,
    /// Every candidate is unavailable or behind an open breaker.
    #[error("no target is available: missing secrets or open circuit breakers")]
    NoTargetAvailable,
}

impl RouteError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            RouteError::UnknownGroup(_) => "unknown_consumer_group",
            RouteError::GroupForbidden(_) => "consumer_group_forbidden",
            RouteError::NoTargetForModel => "model_not_routable",
            RouteError::NoTargetAvailable => "no_target_available",
        }
    }

    /// HTTP status the gateway answers.
    pub fn status(&self) -> u16 {
        match self {
            RouteError::UnknownGroup(_) | RouteError::NoTargetForModel => 400,
            RouteError::GroupForbidden(_) => 403,
            RouteError::NoTargetAvailable => 503,
        }
    }
}

/// An ordered candidate list for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<'r> {
    /// The consumer group used, if any.
    pub group: Option<&'r str>,
    /// Indices into [`Router::targets`], best first.
    pub candidates: Vec<usize>,
}

/// Compiled providers and consumer groups with their live routing state.
#[derive(Debug)]
pub struct Router {
    targets: Vec<Target>,
    state: Vec<TargetState>,
    groups: Vec<Group>,
    /// Group name → index, used when there are many groups (a scan is faster for a few).
    by_name: HashMap<String, usize>,
    options: RouterOptions,
}

impl Router {
    /// Builds a router. `secret` resolves a `secret_key_ref.env` name (the host reads the
    /// environment); a target whose secret does not resolve is marked unavailable and reported
    /// as a `W005` warning, not an error.
    pub fn new(
        spec: &PackSpec,
        secret: &dyn Fn(&str) -> Option<String>,
        options: RouterOptions,
    ) -> (Router, Vec<Diagnostic>) {
        let mut warnings = Vec::new();
        let providers = spec.providers.clone().unwrap_or_default();
        let targets: Vec<Target> = providers
            .targets
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let resolved = t.secret_key_ref.as_ref().map(|r| (r.env.clone(), secret(&r.env)));
                let available = match &resolved {
                    Some((env, None)) => {
                        warnings.push(Diagnostic::new(
                            "W005",
                            Severity::Warning,
                            &format!("providers.targets[{i}].secret_key_ref.env"),
                            Mark::default(),
                            format!("environment variable `{env}` is not set: target `{}` is unavailable", t.id),
                        ));
                        false
                    }
                    _ => true,
                };
                let price = match &t.pricing {
                    Some(p) => Some(Price {
                        input_per_1m: p.input_per_1m,
                        output_per_1m: p.output_per_1m,
                        currency: p.currency.as_deref().and_then(|c| c.parse().ok()).unwrap_or(pricing::Currency::USD),
                    }),
                    None => pricing::builtin_price(&t.model).map(|(p, _)| p),
                };
                let rank_price = price.as_ref().and_then(|p| Some((scaled(p.input_per_1m)?, scaled(p.output_per_1m)?)));
                Target {
                    rank_price,
                    base_url: t
                        .base_url
                        .clone()
                        .or_else(|| default_base_url(t.provider).map(str::to_owned))
                        .unwrap_or_default(),
                    id: t.id,
                    provider: t.provider,
                    model: t.model,
                    secret: resolved.and_then(|(_, s)| s),
                    available,
                    price,
                }
            })
            .collect();
        let groups: Vec<Group> = providers
            .consumer_groups
            .unwrap_or_default()
            .into_iter()
            .map(|g| Group {
                targets: g
                    .models
                    .iter()
                    .flat_map(|m| {
                        targets
                            .iter()
                            .enumerate()
                            .filter(move |(_, t)| t.provider == m.provider && t.model == m.model)
                            .map(|(i, _)| i)
                    })
                    .collect(),
                teams: g.teams.map(Names::new),
                routing: g.routing.unwrap_or(Routing::Ordered),
                cursor: AtomicUsize::new(0),
                name: g.name,
            })
            .collect();
        let by_name = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.name.clone(), i))
            .collect();
        let state = targets.iter().map(|_| TargetState::default()).collect();
        (
            Router {
                targets,
                state,
                groups,
                by_name,
                options,
            },
            warnings,
        )
    }

    /// Every target, in pack order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// One target.
    pub fn target(&self, index: usize) -> Option<&Target> {
        self.targets.get(index)
    }

    /// The models `principal` may route to, sorted and distinct: its consumer group's targets'
    /// when it names one (which its team must be allowed to use), else every target's.
    ///
    /// # Errors
    /// Unknown or forbidden group.
    pub fn models(&self, principal: &Principal) -> Result<Vec<&str>, RouteError> {
        let mut out: Vec<&str> = match principal.consumer_group.as_deref() {
            Some(name) => {
                let g = self
                    .groups
                    .iter()
                    .find(|g| g.name == name)
                    .ok_or_else(|| RouteError::UnknownGroup(name.to_owned()))?;
                if let Some(teams) = &g.teams {
                    if !principal.team.as_deref().is_some_and(|t| teams.contains(t)) {
                        return Err(RouteError::GroupForbidden(name.to_owned()));
                    }
                }
                g.targets
                    .iter()
                    .filter_map(|i| self.targets.get(*i))
                    .map(|t| t.model.as_str())
                    .collect()
            }
            None => self.targets.iter().map(|t| t.model.as_str()).collect(),
        };
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The ordered candidates for a request: from the principal's consumer group when it names
    /// one, else every target serving the requested model.
    ///
    /// # Errors
    /// Unknown or forbidden group, no target for the model, or nothing available.
    pub fn route(
        &self,
        principal: &Principal,
        request: &ChatRequest,
        now: Millis,
    ) -> Result<Route<'_>, RouteError> {
        let usable =
            |i: &usize| self.targets.get(*i).is_some_and(|t| t.available) && self.admits(*i, now);
        let (group, mut candidates, routing): (Option<&Group>, Vec<usize>, Routing) =
            match principal.consumer_group.as_deref() {
                Some(name) => {
                    let found = if self.groups.len() <= 16 {
                        self.groups.iter().find(|g| g.name == name)
                    } else {
                        self.by_name.get(name).and_then(|i| self.groups.get(*i))
                    };
                    let g = found.ok_or_else(|| RouteError::UnknownGroup(name.to_owned()))?;
                    if let Some(teams) = &g.teams {
                        if !principal.team.as_deref().is_some_and(|t| teams.contains(t)) {
                            return Err(RouteError::GroupForbidden(name.to_owned()));
                        }
                    }
                    let mut v = Vec::with_capacity(g.targets.len());
                    v.extend(g.targets.iter().copied().filter(usable));
                    (Some(g), v, g.routing)
                }
                None => {
                    let model = request
                        .model
                        .as_deref()
                        .ok_or(RouteError::NoTargetForModel)?;
                    let mut serving = false;
                    let mut v = Vec::new();
                    for (i, t) in self.targets.iter().enumerate() {
                        if t.model == model {
                            serving = true;
                            if usable(&i) {
                                v.push(i);
                            }
                        }
                    }
                    if !serving {
                        return Err(RouteError::NoTargetForModel);
                    }
                    (None, v, Routing::Ordered)
                }
            };
        if candidates.is_empty() {
            return Err(RouteError::NoTargetAvailable);
        }
        match routing {
            Routing::Ordered => {}
            Routing::RoundRobin => {
                if let Some(g) = group {
                    let n = candidates.len();
                    let start = g.cursor.fetch_add(1, Ordering::Relaxed) % n;
                    candidates.rotate_left(start);
                }
            }
            Routing::LowestLatency => {
                // never observed (0) first, then by average; ties keep config order. Keys are read
                // once, so concurrent updates cannot make the comparison inconsistent.
                sort_by_keys(&mut candidates, |i| {
                    let e = self
                        .state
                        .get(i)
                        .map_or(0, |s| s.ewma_us.load(Ordering::Relaxed));
                    (e != 0, u128::from(e))
                });
            }
            Routing::CostOptimized => {
                let input = u128::from(pricing::estimate_input_tokens(request));
                let output = u128::from(pricing::estimate_output_tokens(
                    request,
                    None,
                    self.options.default_max_output_tokens,
                ));
                // u64 × u64 always fits in u128: exact, no overflow checks on the hot path
                sort_by_keys(&mut candidates, |i| {
                    match self.targets.get(i).and_then(|t| t.rank_price) {
                        Some((pi, po)) => (
                            false,
                            (input * u128::from(pi)).saturating_add(output * u128::from(po)),
                        ),
                        None => (true, 0),
                    }
                });
            }
        }
        Ok(Route {
            group: group.map(|g| g.name.as_str()),
            candidates,
        })
    }

    /// Whether the breaker lets target `i` be tried now (taking the half-open probe if due).
    fn admits(&self, i: usize, now: Millis) -> bool {
        let Some(s) = self.state.get(i) else {
            return false;
        };
        let opened = s.opened_at.load(Ordering::Acquire);
        if opened == 0 {
            return true;
        }
        if now < opened.saturating_add(self.options.cooldown_ms) {
            return false;
        }
        let probe = s.probing.load(Ordering::Acquire);
        if probe != 0 && now < probe.saturating_add(self.options.cooldown_ms) {
            return false;
        }
        s.probing
            .compare_exchange(probe, now.max(1), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// A call to target `i` succeeded after `latency_us` (time to first token for streams).
    pub fn record_success(&self, i: usize, latency_us: u64, _now: Millis) {
        let Some(s) = self.state.get(i) else { return };
        let sample = latency_us.max(1);
        let _ = s
            .ewma_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    sample
                } else {
                    (old - old / 8 + sample / 8).max(1)
                })
            });
        s.failures.store(0, Ordering::Relaxed);
        s.opened_at.store(0, Ordering::Release);
        s.probing.store(0, Ordering::Release);
    }

    /// A call to target `i` failed (error, timeout, 5xx).
    pub fn record_failure(&self, i: usize, now: Millis) {
        let Some(s) = self.state.get(i) else { return };
        let failures = s.failures.fetch_add(1, Ordering::AcqRel).saturating_add(1);
        let half_open = s.probing.swap(0, Ordering::AcqRel) != 0;
        if half_open || failures >= self.options.failure_threshold {
            s.opened_at.store(now.max(1), Ordering::Release);
        }
    }

    /// The breaker state of target `i` at `now`: `closed`, `open` or `half_open`.
    pub fn breaker(&self, i: usize, now: Millis) -> &'static str {
        let Some(s) = self.state.get(i) else {
            return "closed";
        };
        let opened = s.opened_at.load(Ordering::Acquire);
        if opened == 0 {
            "closed"
        } else if now < opened.saturating_add(self.options.cooldown_ms) {
            "open"
        } else {
            "half_open"
        }
    }

    /// The latency average of target `i` in microseconds (`None` before the first observation).
    pub fn latency_us(&self, i: usize) -> Option<u64> {
        self.state
            .get(i)
            .map(|s| s.ewma_us.load(Ordering::Relaxed))
            .filter(|e| *e != 0)
    }
}
