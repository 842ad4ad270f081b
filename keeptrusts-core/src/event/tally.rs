//! Tallies: what the dashboards add up (requests, refusals, policy events, cost, tokens), per
//! team, UTC day, user and model. [`tally`] computes them from events and is the reference; the
//! SQL stores keep the same sums per day in a table updated in each append's transaction, and
//! answer a range from those days plus, for the partial days at its ends, the events themselves
//! ([`TallyQuery::plan`]), so a dashboard over a million events reads a few hundred rows.
//!
//! Money stays exact: costs are summed as decimals (SQLite through a decimal sum registered on
//! the connection, PostgreSQL as `NUMERIC`), never as floating point.

use std::collections::BTreeMap;
use std::ops::AddAssign;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Event, EventQuery};
use crate::decision::Verdict;
use crate::time::{day_of, Millis, DAY};

/// Sums over some requests.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tally {
    /// Requests.
    pub requests: u64,
    /// Requests not let through (neither allowed nor redacted).
    pub denied: u64,
    /// Requests where a policy did not simply allow.
    pub policy_events: u64,
    /// Cost (see [`cost_of`]).
    pub cost: Decimal,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

impl AddAssign<&Tally> for Tally {
    fn add_assign(&mut self, o: &Tally) {
        self.requests += o.requests;
        self.denied += o.denied;
        self.policy_events += o.policy_events;
        self.cost += o.cost;
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
    }
}

/// Where a tally belongs. A dimension the query does not group by is zero or empty; a request
/// without a user or a model counts under the empty string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct TallyKey {
    /// Day start (ms, UTC).
    pub day: Millis,
    /// User.
    pub user: String,
    /// Model.
    pub model: String,
}

/// What one event adds to its team's tallies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution {
    /// The team.
    pub team: String,
    /// Its day, user and model.
    pub key: TallyKey,
    /// One request's figures.
    pub tally: Tally,
}

/// What a request cost: the settled amount, else the reserved estimate of a request that went
/// through; zero for requests that were not let through.
pub fn cost_of(e: &Event) -> Decimal {
    let b = &e.body;
    match &b.cost {
        Some(c) => c
            .settled
            .unwrap_or(if matches!(b.verdict, Verdict::Allow | Verdict::Redact) {
                c.estimated
            } else {
                Decimal::ZERO
            }),
        None => Decimal::ZERO,
    }
}

/// What `e` adds to the tallies: nothing for administrative events, events of no team (refusals
/// before authentication) and pruned events.
pub fn contribution(e: &Event) -> Option<Contribution> {
    let b = &e.body;
    if b.admin.is_some() {
        return None;
    }
    let team = b.team.clone()?;
    let tokens = b.tokens.unwrap_or_default();
    Some(Contribution {
        team,
        key: TallyKey {
            day: day_of(b.timestamp),
            user: b.user.clone().unwrap_or_default(),
            model: b.model.clone().unwrap_or_default(),
        },
        tally: Tally {
            requests: 1,
            denied: u64::from(!matches!(b.verdict, Verdict::Allow | Verdict::Redact)),
            policy_events: u64::from(b.is_policy_event()),
            cost: cost_of(e),
            prompt_tokens: tokens.prompt_tokens,
            completion_tokens: tokens.completion_tokens,
        },
    })
}

/// The dimensions a tally query groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Grouping {
    /// By UTC day.
    #[serde(default)]
    pub day: bool,
    /// By user.
    #[serde(default)]
    pub user: bool,
    /// By model.
    #[serde(default)]
    pub model: bool,
}

/// Which requests to add up, and how to group them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TallyQuery {
    /// Team; `None` adds up every team of the org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Only this user's requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// From (inclusive, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Millis>,
    /// To (exclusive, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Millis>,
    /// Grouping.
    #[serde(default)]
    pub by: Grouping,
}

/// How a store answers a [`TallyQuery`]: whole days from its day tallies, the rest from events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TallyPlan {
    /// Day tallies with `from <= day < to` (an open end unbounded); `None` when no whole day is
    /// in the range.
    pub days: Option<(Option<Millis>, Option<Millis>)>,
    /// Partial days read from events: `(day, from, to)`, `from <= timestamp < to`, all within
    /// `day`.
    pub edges: Vec<(Millis, Millis, Millis)>,
}

impl TallyQuery {
    /// The events this query adds up (as an event query: team, user, range).
    pub fn events(&self) -> EventQuery {
        EventQuery {
            team: self.team.clone(),
            user: self.user.clone(),
            from: self.from,
            to: self.to,
            ..EventQuery::default()
        }
    }

    /// `key` with the dimensions this query does not group by cleared.
    pub fn group(&self, key: &TallyKey) -> TallyKey {
        TallyKey {
            day: if self.by.day { key.day } else { 0 },
            user: if self.by.user {
                key.user.clone()
            } else {
                String::new()
            },
            model: if self.by.model {
                key.model.clone()
            } else {
                String::new()
            },
        }
    }

    /// Splits the range into whole days and partial days at its ends.
    pub fn plan(&self) -> TallyPlan {
        if let (Some(f), Some(t)) = (self.from, self.to) {
            if f >= t {
                return TallyPlan {
                    days: None,
                    edges: Vec::new(),
                };
            }
            if day_of(f) == day_of(t) {
                return TallyPlan {
                    days: None,
                    edges: vec![(day_of(f), f, t)],
                };
            }
        }
        let mut edges = Vec::new();
        // the first whole day on or after `from`, and the partial day before it
        let first = self.from.map(|f| {
            let d = day_of(f);
            if d == f {
                f
            } else {
                edges.push((d, f, d + DAY));
                d + DAY
            }
        });
        // the first day not wholly before `to`, and the partial day from it
        let end = self.to.map(|t| {
            let d = day_of(t);
            if d != t {
                edges.push((d, d, t));
            }
            d
        });
        let days = match (first, end) {
            (Some(a), Some(b)) if a >= b => None,
            range => Some(range),
        };
        TallyPlan { days, edges }
    }
}

/// Adds up `events` (any order; other teams' are ignored) as `query` says, sorted by key: the
/// reference the SQL stores are tested against.
pub fn tally(events: &[Event], query: &TallyQuery) -> Vec<(TallyKey, Tally)> {
    let wanted = query.events();
    let mut out: BTreeMap<TallyKey, Tally> = BTreeMap::new();
    for e in events.iter().filter(|e| wanted.keeps(e)) {
        if let Some(c) = contribution(e) {
            *out.entry(query.group(&c.key)).or_default() += &c.tally;
        }
    }
    out.into_iter().collect()
}

/// Adds up the contributions of `events` per team, day, user and model: what an append (or,
/// subtracted, a prune) changes in a store's day tallies.
pub fn deltas<'a>(
    events: impl IntoIterator<Item = &'a Event>,
) -> BTreeMap<(String, String, TallyKey), Tally> {
    let mut out: BTreeMap<(String, String, TallyKey), Tally> = BTreeMap::new();
    for e in events {
        if let Some(c) = contribution(e) {
            *out.entry((e.body.org.clone(), c.team, c.key)).or_default() += &c.tally;
        }
    }
    out
}

/// Merges rows of one grouping (a store's day tallies and its partial days) into sorted rows.
pub fn merge(rows: impl IntoIterator<Item = (TallyKey, Tally)>) -> Vec<(TallyKey, Tally)> {
    let mut out: BTreeMap<TallyKey, Tally> = BTreeMap::new();
    for (k, t) in rows {
        *out.entry(k).or_default() += &t;
    }
    out.into_iter().collect()
}
