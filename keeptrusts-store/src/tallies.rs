//! The day tallies both SQL stores keep (`keeptrusts_core::event::tally`): `tallies` per team,
//! day, user and model, and `team_tallies` per team, day and model (what a question without a
//! user reads: a hundred rows for a team's year instead of thousands); the columns an event row
//! carries so a partial day is summed in SQL; and the one query that answers a [`TallyQuery`]
//! from whole days plus partial days. The two dialects differ only in
//! placeholders and in how a decimal column is summed.

use keeptrusts_core::event::tally::{self, Tally, TallyKey, TallyQuery};
use keeptrusts_core::event::Event;
use keeptrusts_core::StoreError;
use rust_decimal::Decimal;

/// What an event row stores besides its body, for sums and filters.
pub(crate) struct Columns {
    /// 1 for a request that counts in the tallies, else 0 (and the figures below are 0).
    pub requests: i64,
    pub denied: i64,
    pub policy_events: i64,
    pub cost: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub model: Option<String>,
    pub escalation: Option<String>,
}

fn count(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|e| StoreError::Corrupt(format!("a count out of range: {e}")))
}

impl Columns {
    pub(crate) fn of(e: &Event) -> Result<Columns, StoreError> {
        let c = tally::contribution(e);
        let t = c.as_ref().map(|c| &c.tally);
        let n = |f: fn(&Tally) -> u64| t.map_or(Ok(0), |t| count(f(t)));
        Ok(Columns {
            requests: n(|t| t.requests)?,
            denied: n(|t| t.denied)?,
            policy_events: n(|t| t.policy_events)?,
            cost: t.map_or(Decimal::ZERO, |t| t.cost).to_string(),
            prompt_tokens: n(|t| t.prompt_tokens)?,
            completion_tokens: n(|t| t.completion_tokens)?,
            model: e.body.model.clone(),
            escalation: e.body.escalation_id.clone(),
        })
    }
}

/// One row of the day tallies to add to (or, with `sign` -1, subtract from) the stored row.
pub(crate) struct Delta {
    pub org: String,
    pub team: String,
    pub day: i64,
    pub user: String,
    pub model: String,
    pub requests: i64,
    pub denied: i64,
    pub policy_events: i64,
    pub cost: Decimal,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// The day-tally changes `events` make, each multiplied by `sign` (1 on append, -1 on prune),
/// sorted by key so concurrent writers lock rows in one order.
pub(crate) fn deltas<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    sign: i64,
) -> Result<Vec<Delta>, StoreError> {
    tally::deltas(events)
        .into_iter()
        .map(|((org, team, k), t)| {
            Ok(Delta {
                org,
                team,
                day: k.day,
                user: k.user,
                model: k.model,
                requests: sign * count(t.requests)?,
                denied: sign * count(t.denied)?,
                policy_events: sign * count(t.policy_events)?,
                cost: Decimal::from(sign) * t.cost,
                prompt_tokens: sign * count(t.prompt_tokens)?,
                completion_tokens: sign * count(t.completion_tokens)?,
            })
        })
        .collect()
}

/// `deltas` summed per team, day and model (the user left empty): the rows of `team_tallies`
/// they change, sorted by key.
pub(crate) fn per_team(deltas: &[Delta]) -> Vec<Delta> {
    let mut out: std::collections::BTreeMap<(&str, &str, i64, &str), Delta> =
        std::collections::BTreeMap::new();
    for d in deltas {
        let row = out
            .entry((&d.org, &d.team, d.day, &d.model))
            .or_insert_with(|| Delta {
                org: d.org.clone(),
                team: d.team.clone(),
                day: d.day,
                user: String::new(),
                model: d.model.clone(),
                requests: 0,
                denied: 0,
                policy_events: 0,
                cost: Decimal::ZERO,
                prompt_tokens: 0,
                completion_tokens: 0,
            });
        row.requests += d.requests;
        row.denied += d.denied;
        row.policy_events += d.policy_events;
        row.cost += d.cost;
        row.prompt_tokens += d.prompt_tokens;
        row.completion_tokens += d.completion_tokens;
    }
    out.into_values().collect()
}

/// A bound value of the tally query.
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// How a dialect writes a placeholder and a decimal sum.
pub(crate) struct Dialect {
    /// The `n`-th placeholder (from 1) of a value of kind `int`.
    pub placeholder: fn(usize, bool) -> String,
    /// The expression summing the `cost` column, as text.
    pub cost_sum: &'static str,
}

/// The SQL and arguments answering `q` for `org`: the day tallies of the whole days, and the
/// event rows of the partial days, summed per group. Rows come back as
/// `(day, usr, model, requests, denied, policy_events, cost, prompt_tokens, completion_tokens)`.
pub(crate) fn query(org: &str, q: &TallyQuery, d: &Dialect) -> (String, Vec<Arg>) {
    let plan = q.plan();
    let mut args: Vec<Arg> = Vec::new();
    let mut ph = |a: Arg| {
        let int = matches!(a, Arg::Int(_));
        args.push(a);
        (d.placeholder)(args.len(), int)
    };
    let mut parts: Vec<String> = Vec::new();
    let scope = |ph: &mut dyn FnMut(Arg) -> String| {
        let mut s = format!("org = {}", ph(Arg::Text(org.to_owned())));
        match &q.team {
            Some(t) => s.push_str(&format!(" AND team = {}", ph(Arg::Text(t.clone())))),
            None => s.push_str(" AND team IS NOT NULL"),
        }
        if let Some(u) = &q.user {
            s.push_str(&format!(" AND usr = {}", ph(Arg::Text(u.clone()))));
        }
        s
    };
    if let Some((from, to)) = plan.days {
        // without a user in the question, the per-team table (a row per day and model) answers
        let (table, usr) = if q.user.is_none() && !q.by.user {
            ("team_tallies", "'' AS usr")
        } else {
            ("tallies", "usr")
        };
        let mut s = format!(
            "SELECT day, {usr}, model, requests, denied, policy_events, cost, prompt_tokens, \
             completion_tokens FROM {table} WHERE {}",
            scope(&mut ph)
        );
        if let Some(f) = from {
            s.push_str(&format!(" AND day >= {}", ph(Arg::Int(f))));
        }
        if let Some(t) = to {
            s.push_str(&format!(" AND day < {}", ph(Arg::Int(t))));
        }
        parts.push(s);
    }
    for (day, from, to) in plan.edges {
        let day = ph(Arg::Int(day));
        let s = format!(
            "SELECT {day} AS day, coalesce(usr, '') AS usr, coalesce(model, '') AS model, \
             requests, denied, \
             policy_events, cost, prompt_tokens, completion_tokens FROM events WHERE {} \
             AND requests = 1 AND timestamp >= {} AND timestamp < {}",
            scope(&mut ph),
            ph(Arg::Int(from)),
            ph(Arg::Int(to)),
        );
        parts.push(s);
    }
    if parts.is_empty() {
        // an empty range: a query that returns nothing
        parts.push(
            "SELECT day, usr, model, requests, denied, policy_events, cost, prompt_tokens, \
             completion_tokens FROM tallies WHERE 1 = 0"
                .into(),
        );
    }
    let dim = |on: bool, col: &str, none: &str| if on { col.to_owned() } else { none.to_owned() };
    let by = q.by;
    let sql = format!(
        "SELECT {}, {}, {}, CAST(sum(requests) AS BIGINT), CAST(sum(denied) AS BIGINT), \
         CAST(sum(policy_events) AS BIGINT), {}, CAST(sum(prompt_tokens) AS BIGINT), \
         CAST(sum(completion_tokens) AS BIGINT) FROM ({}) AS parts GROUP BY 1, 2, 3",
        dim(by.day, "day", "CAST(0 AS BIGINT)"),
        dim(by.user, "usr", "''"),
        dim(by.model, "model", "''"),
        d.cost_sum,
        parts.join(" UNION ALL "),
    );
    (sql, args)
}

/// One result row, read by each dialect.
pub(crate) struct Row {
    pub day: i64,
    pub user: String,
    pub model: String,
    pub requests: i64,
    pub denied: i64,
    pub policy_events: i64,
    pub cost: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

fn unsigned(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|e| StoreError::Corrupt(format!("a negative tally: {e}")))
}

/// The result rows as the core's tallies, merged and sorted by key.
pub(crate) fn collect(rows: Vec<Row>) -> Result<Vec<(TallyKey, Tally)>, StoreError> {
    let rows = rows
        .into_iter()
        .map(|r| {
            Ok((
                TallyKey {
                    day: r.day,
                    user: r.user,
                    model: r.model,
                },
                Tally {
                    requests: unsigned(r.requests)?,
                    denied: unsigned(r.denied)?,
                    policy_events: unsigned(r.policy_events)?,
                    cost: r.cost.parse::<Decimal>().map_err(|e| {
                        StoreError::Corrupt(format!("a tallied cost `{}`: {e}", r.cost))
                    })?,
                    prompt_tokens: unsigned(r.prompt_tokens)?,
                    completion_tokens: unsigned(r.completion_tokens)?,
                },
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(tally::merge(rows))
}
