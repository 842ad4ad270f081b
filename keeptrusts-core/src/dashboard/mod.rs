//! Team dashboards (`docs/events.md`, the seed's table): overview, events, spend, escalations, usage —
//! aggregated from events for a viewing principal, with visibility applied here, in the core.
//!
//! Visibility: an owner sees every team; an admin sees all of their own team; a member sees their
//! own events and usage plus team aggregates (per-day totals, spend by model and period), never
//! another member's events, escalations or per-user figures.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::decision::Verdict;
use crate::error::AdminError;
use crate::event::tally::{self, Grouping, Tally, TallyKey, TallyQuery};
use crate::event::{Event, EventStore};
use crate::identity::{Principal, Role};
use crate::pack::spec::PolicyKind;
use crate::time::{day_of, month_start, week_of, Millis};

pub use crate::event::tally::cost_of;

/// A dashboard section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    /// Request volume, cost and policy events per day.
    Overview,
    /// The events themselves.
    Events,
    /// Cost by model, by user, by period.
    Spend,
    /// Escalations.
    Escalations,
    /// Per-member usage.
    Usage,
}

/// Spend period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// UTC days.
    #[default]
    Day,
    /// ISO weeks (Monday 00:00 UTC).
    Week,
    /// UTC months.
    Month,
}

/// Event filters (all optional, combined with AND).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventFilter {
    /// Final verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// A policy that ran and did not allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyKind>,
    /// User.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// From (inclusive, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Millis>,
    /// To (exclusive, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Millis>,
}

impl EventFilter {
    fn keeps(&self, e: &Event) -> bool {
        let b = &e.body;
        self.verdict.is_none_or(|v| b.verdict == v)
            && self.policy.is_none_or(|k| {
                b.policies
                    .iter()
                    .any(|p| p.kind == k && p.verdict != Verdict::Allow)
            })
            && self
                .user
                .as_ref()
                .is_none_or(|u| b.user.as_ref() == Some(u))
            && self.from.is_none_or(|f| b.timestamp >= f)
            && self.to.is_none_or(|t| b.timestamp < t)
    }
}

/// What to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// Team slug.
    pub team: String,
    /// Section.
    pub section: Section,
    /// Filters (events, escalations; the time range applies to every section).
    #[serde(default)]
    pub filter: EventFilter,
    /// Spend period.
    #[serde(default)]
    pub granularity: Granularity,
    /// The events section in pages: at most this many rows, newest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// The next page: only events older than this seq (the previous page's `next`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
}

impl Query {
    /// A query of `section` for `team`, unfiltered.
    pub fn new(team: &str, section: Section) -> Query {
        Query {
            team: team.to_owned(),
            section,
            filter: EventFilter::default(),
            granularity: Granularity::default(),
            limit: None,
            before: None,
        }
    }
}

/// One day of the overview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRow {
    /// Day start (ms, UTC).
    pub day: Millis,
    /// Requests.
    pub requests: u64,
    /// Cost.
    pub cost: Decimal,
    /// Requests where a policy did not simply allow.
    pub policy_events: u64,
}

/// One escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationRow {
    /// The escalation id.
    pub escalation_id: String,
    /// The event id.
    pub event_id: String,
    /// Requester.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Reason code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When.
    pub timestamp: Millis,
    /// Final verdict of that request (escalate, or allow once approved and re-sent).
    pub verdict: Verdict,
}

/// One member's usage.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UsageRow {
    /// User.
    pub user: String,
    /// Requests.
    pub requests: u64,
    /// Requests not let through.
    pub denied: u64,
    /// Cost.
    pub cost: Decimal,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

/// A section's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "section", rename_all = "lowercase")]
pub enum View {
    /// Team aggregates per day.
    Overview {
        /// Days with traffic, ascending.
        days: Vec<DayRow>,
    },
    /// Events: in chain order, or with a `limit`, one page newest first.
    Events {
        /// The rows.
        rows: Vec<Event>,
        /// Pass as `before` for the next (older) page; absent on the last page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<u64>,
    },
    /// Spend.
    Spend {
        /// Team total.
        total: Decimal,
        /// By model.
        by_model: BTreeMap<String, Decimal>,
        /// By user (a member sees only their own row).
        by_user: BTreeMap<String, Decimal>,
        /// By period start.
        by_period: BTreeMap<Millis, Decimal>,
    },
    /// Escalations.
    Escalations {
        /// The rows.
        rows: Vec<EscalationRow>,
    },
    /// Usage per member.
    Usage {
        /// Rows by user.
        members: Vec<UsageRow>,
    },
}

/// How much of a team a viewer may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Everything of the team.
    Full,
    /// Own rows plus team aggregates.
    Own(String),
}

/// The team name of the whole org's roll-up (owners and org admins).
pub const ORG_ROLLUP: &str = "*";

/// The largest page of events one call returns.
pub const MAX_PAGE: usize = 1_000;

/// What the store must read for `query` as `viewer` sees it: the team, the time range, and for
/// the sections that list rows (events, escalations, usage) the member's own user, the verdict
/// and the page. [`view`] applies every rule again on what is read, so a store that reads more
/// changes nothing.
///
/// # Errors
/// As [`visibility`].
pub fn fetch(viewer: &Principal, query: &Query) -> Result<crate::event::EventQuery, AdminError> {
    let vis = visibility(viewer, &query.team)?;
    let rows = matches!(
        query.section,
        Section::Events | Section::Escalations | Section::Usage
    );
    let own = match &vis {
        Visibility::Own(u) if rows => Some(u.clone()),
        _ => None,
    };
    let events = query.section == Section::Events;
    let user = match (own, &query.filter.user) {
        (Some(u), _) => Some(u),
        (None, Some(u)) if events => Some(u.clone()),
        _ => None,
    };
    Ok(crate::event::EventQuery {
        team: (query.team != ORG_ROLLUP).then(|| query.team.clone()),
        user,
        verdict: query.filter.verdict.filter(|_| events),
        from: query.filter.from,
        to: query.filter.to,
        before: query.before.filter(|_| events),
        escalated: query.section == Section::Escalations,
        // one more than the page, so the view knows whether there is a next one; with a policy
        // filter (applied in the view) the store reads the whole range
        limit: query
            .limit
            .filter(|_| events && query.filter.policy.is_none())
            .map(|n| n.min(MAX_PAGE).saturating_add(1)),
    })
}

/// A section as `viewer` sees it, read from `store` with only what it needs: the tallies of
/// [`tallies`] for the sections of sums, the rows of [`fetch`] for the others.
///
/// # Errors
/// As [`view`], or a store failure.
pub fn load(
    store: &dyn EventStore,
    org: &str,
    viewer: &Principal,
    query: &Query,
) -> Result<View, AdminError> {
    let mut query = query.clone();
    query.limit = query.limit.map(|n| n.min(MAX_PAGE));
    let vis = visibility(viewer, &query.team)?;
    if let Ok(sum) = Sum::of(query.section) {
        let sums = tallies(&vis, &query, sum)
            .iter()
            .map(|q| store.tally(org, q))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(summed(&query, sum, sums));
    }
    let events = store.query(org, &fetch(viewer, &query)?)?;
    view(viewer, &query, &events)
}

/// The sections made of sums.
#[derive(Debug, Clone, Copy)]
enum Sum {
    Overview,
    Spend,
    Usage,
}

/// The sections that list rows.
#[derive(Debug, Clone, Copy)]
enum Listing {
    Events,
    Escalations,
}

impl Sum {
    fn of(section: Section) -> Result<Sum, Listing> {
        match section {
            Section::Overview => Ok(Sum::Overview),
            Section::Spend => Ok(Sum::Spend),
            Section::Usage => Ok(Sum::Usage),
            Section::Events => Err(Listing::Events),
            Section::Escalations => Err(Listing::Escalations),
        }
    }
}

/// The tallies a section of sums is made of, in the order [`summed`] takes them. A member's own
/// rows are filtered here: usage and spend by user cover only them.
fn tallies(vis: &Visibility, query: &Query, sum: Sum) -> Vec<TallyQuery> {
    let base = TallyQuery {
        team: (query.team != ORG_ROLLUP).then(|| query.team.clone()),
        user: None,
        from: query.filter.from,
        to: query.filter.to,
        by: Grouping::default(),
    };
    let own = match vis {
        Visibility::Own(u) => Some(u.clone()),
        Visibility::Full => None,
    };
    let by = |day, user, model| Grouping { day, user, model };
    let per_user = TallyQuery {
        user: own,
        by: by(false, true, false),
        ..base.clone()
    };
    match sum {
        Sum::Overview => vec![TallyQuery {
            by: by(true, false, false),
            ..base
        }],
        Sum::Spend => vec![
            TallyQuery {
                by: by(true, false, true),
                ..base
            },
            per_user,
        ],
        Sum::Usage => vec![per_user],
    }
}

/// A section of sums from its tallies (as [`tallies`] lists them).
fn summed(query: &Query, sum: Sum, sums: Vec<Vec<(TallyKey, Tally)>>) -> View {
    let mut sums = sums.into_iter();
    let mut next = || sums.next().unwrap_or_default();
    match sum {
        Sum::Overview => View::Overview {
            days: next()
                .into_iter()
                .map(|(k, t)| DayRow {
                    day: k.day,
                    requests: t.requests,
                    cost: t.cost,
                    policy_events: t.policy_events,
                })
                .collect(),
        },
        Sum::Spend => {
            let mut total = Decimal::ZERO;
            let mut by_model = BTreeMap::new();
            let mut by_period = BTreeMap::new();
            for (k, t) in next() {
                total += t.cost;
                *by_model.entry(k.model).or_insert(Decimal::ZERO) += t.cost;
                *by_period
                    .entry(period_start(k.day, query.granularity))
                    .or_insert(Decimal::ZERO) += t.cost;
            }
            let by_user = next().into_iter().map(|(k, t)| (k.user, t.cost)).collect();
            View::Spend {
                total,
                by_model,
                by_user,
                by_period,
            }
        }
        Sum::Usage => View::Usage {
            members: next()
                .into_iter()
                .map(|(k, t)| UsageRow {
                    user: k.user,
                    requests: t.requests,
                    denied: t.denied,
                    cost: t.cost,
                    prompt_tokens: t.prompt_tokens,
                    completion_tokens: t.completion_tokens,
                })
                .collect(),
        },
    }
}

/// The viewer's visibility of `team`.
///
/// # Errors
/// `Forbidden` for an unauthenticated viewer, another team's admin or member, or a member
/// without a user id.
pub fn visibility(viewer: &Principal, team: &str) -> Result<Visibility, AdminError> {
    let forbidden = || AdminError::Forbidden(format!("the viewer may not see team `{team}`"));
    if !viewer.authenticated {
        return Err(forbidden());
    }
    let own_team = viewer.team.as_deref() == Some(team);
    if team == ORG_ROLLUP {
        let org_wide = viewer.role == Some(Role::Owner)
            || (viewer.role == Some(Role::Admin) && viewer.org_admin);
        return if org_wide {
            Ok(Visibility::Full)
        } else {
            Err(AdminError::Forbidden(
                "only owners and org admins see the whole org's roll-up (`team=*`)".into(),
            ))
        };
    }
    match viewer.role {
        Some(Role::Owner) => Ok(Visibility::Full),
        Some(Role::Admin) if own_team || viewer.org_admin => Ok(Visibility::Full),
        Some(Role::Member) if own_team => viewer
            .user
            .clone()
            .map(Visibility::Own)
            .ok_or_else(forbidden),
        _ => Err(forbidden()),
    }
}

fn period_start(t: Millis, g: Granularity) -> Millis {
    match g {
        Granularity::Day => day_of(t),
        Granularity::Week => week_of(t),
        Granularity::Month => month_start(t),
    }
}

/// Builds one section for `viewer` over `events` (any order; other teams' events are ignored).
///
/// # Errors
/// `Forbidden` per [`visibility`].
pub fn view(viewer: &Principal, query: &Query, events: &[Event]) -> Result<View, AdminError> {
    let vis = visibility(viewer, &query.team)?;
    let listing = match Sum::of(query.section) {
        Ok(sum) => {
            let sums = tallies(&vis, query, sum)
                .iter()
                .map(|q| tally::tally(events, q))
                .collect();
            return Ok(summed(query, sum, sums));
        }
        Err(listing) => listing,
    };
    let own = |e: &Event| match &vis {
        Visibility::Full => true,
        Visibility::Own(u) => e.body.user.as_ref() == Some(u),
    };
    let range = EventFilter {
        from: query.filter.from,
        to: query.filter.to,
        ..EventFilter::default()
    };
    let rollup = query.team == ORG_ROLLUP;
    let team = events.iter().filter(|e| {
        (if rollup {
            e.body.team.is_some()
        } else {
            e.body.team.as_deref() == Some(query.team.as_str())
        }) && range.keeps(e)
    });
    Ok(match listing {
        Listing::Events => {
            let rows = team
                .filter(|e| own(e) && query.filter.keeps(e))
                .filter(|e| query.before.is_none_or(|b| e.seq < b));
            match query.limit {
                None => View::Events {
                    rows: rows.cloned().collect(),
                    next: None,
                },
                Some(n) => {
                    let mut page: Vec<Event> =
                        rows.rev().take(n.saturating_add(1)).cloned().collect();
                    let more = page.len() > n;
                    page.truncate(n);
                    View::Events {
                        next: if more {
                            page.last().map(|e| e.seq)
                        } else {
                            None
                        },
                        rows: page,
                    }
                }
            }
        }
        Listing::Escalations => View::Escalations {
            rows: team
                .filter(|e| e.body.admin.is_none() && own(e) && query.filter.keeps(e))
                .filter_map(|e| {
                    Some(EscalationRow {
                        escalation_id: e.body.escalation_id.clone()?,
                        event_id: e.body.id.clone(),
                        user: e.body.user.clone(),
                        reason: e.body.reason.clone(),
                        timestamp: e.body.timestamp,
                        verdict: e.body.verdict,
                    })
                })
                .collect(),
        },
    })
}
