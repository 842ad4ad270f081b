//! The dashboards' day counts in PostgreSQL: adding, removing and backfilling them.

use super::*;

/// Adds rows to the day tallies, per user and (summed in the statement) per team, with exact
/// `NUMERIC` sums; the rows arrive sorted by key, so concurrent writers lock them in one order.
pub(super) const ADD_TALLIES: &str = "WITH d AS (
     SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[],
         $6::BIGINT[], $7::BIGINT[], $8::BIGINT[], $9::TEXT[]::NUMERIC[], $10::BIGINT[],
         $11::BIGINT[])
         AS d(org, team, day, usr, model, requests, denied, policy_events, cost, prompt_tokens,
              completion_tokens)),
 u AS (INSERT INTO tallies SELECT * FROM d
     ON CONFLICT (org, team, day, usr, model) DO UPDATE SET
         requests = tallies.requests + excluded.requests,
         denied = tallies.denied + excluded.denied,
         policy_events = tallies.policy_events + excluded.policy_events,
         cost = tallies.cost + excluded.cost,
         prompt_tokens = tallies.prompt_tokens + excluded.prompt_tokens,
         completion_tokens = tallies.completion_tokens + excluded.completion_tokens)
 INSERT INTO team_tallies
     SELECT org, team, day, model, sum(requests), sum(denied), sum(policy_events), sum(cost),
         sum(prompt_tokens), sum(completion_tokens)
     FROM d GROUP BY org, team, day, model ORDER BY org, team, day, model
     ON CONFLICT (org, team, day, model) DO UPDATE SET
         requests = team_tallies.requests + excluded.requests,
         denied = team_tallies.denied + excluded.denied,
         policy_events = team_tallies.policy_events + excluded.policy_events,
         cost = team_tallies.cost + excluded.cost,
         prompt_tokens = team_tallies.prompt_tokens + excluded.prompt_tokens,
         completion_tokens = team_tallies.completion_tokens + excluded.completion_tokens";

pub(super) fn add_tallies(
    tx: &mut Transaction<'_>,
    st: &(impl postgres::ToStatement + ?Sized),
    deltas: &[Delta],
) -> Result<(), StoreError> {
    let text = |f: fn(&Delta) -> &str| deltas.iter().map(f).collect::<Vec<&str>>();
    let int = |f: fn(&Delta) -> i64| deltas.iter().map(f).collect::<Vec<i64>>();
    let cost: Vec<String> = deltas.iter().map(|d| d.cost.to_string()).collect();
    tx.execute(
        st,
        &[
            &text(|d| &d.org),
            &text(|d| &d.team),
            &int(|d| d.day),
            &text(|d| &d.user),
            &text(|d| &d.model),
            &int(|d| d.requests),
            &int(|d| d.denied),
            &int(|d| d.policy_events),
            &cost,
            &int(|d| d.prompt_tokens),
            &int(|d| d.completion_tokens),
        ],
    )
    .map_err(pg)?;
    Ok(())
}

/// Subtracts pruned events from the day tallies.
pub(super) fn remove_tallies(tx: &mut Transaction<'_>, deltas: &[Delta]) -> Result<(), StoreError> {
    if deltas.is_empty() {
        return Ok(());
    }
    add_tallies(tx, ADD_TALLIES, deltas)?;
    tx.batch_execute(
        "DELETE FROM tallies WHERE requests <= 0; DELETE FROM team_tallies WHERE requests <= 0;",
    )
    .map_err(pg)?;
    Ok(())
}

/// Fills the tally columns and the day tallies from the events stored before they existed, a
/// chunk of events at a time (an upgraded schema may hold millions).
pub(super) fn backfill(tx: &mut Transaction<'_>) -> Result<(), StoreError> {
    let mut after = (String::new(), -1_i64);
    loop {
        let events: Vec<Event> = tx
            .query(
                "SELECT body FROM events WHERE (org, seq) > ($1, $2) ORDER BY org, seq
                 LIMIT 10000",
                &[&after.0, &after.1],
            )
            .map_err(pg)?
            .iter()
            .map(|r| from_json(r.get::<_, &str>(0)))
            .collect::<Result<_, _>>()?;
        let Some(last) = events.last() else {
            return Ok(());
        };
        after = (last.body.org.clone(), seq_i64(last.seq)?);
        let cols = events
            .iter()
            .map(Columns::of)
            .collect::<Result<Vec<_>, _>>()?;
        let org: Vec<&str> = events.iter().map(|e| e.body.org.as_str()).collect();
        let seq = events
            .iter()
            .map(|e| seq_i64(e.seq))
            .collect::<Result<Vec<i64>, _>>()?;
        let int = |f: fn(&Columns) -> i64| cols.iter().map(f).collect::<Vec<i64>>();
        let cost: Vec<&str> = cols.iter().map(|c| c.cost.as_str()).collect();
        let model: Vec<Option<&str>> = cols.iter().map(|c| c.model.as_deref()).collect();
        let escalation: Vec<Option<&str>> = cols.iter().map(|c| c.escalation.as_deref()).collect();
        tx.execute(
            "UPDATE events e SET requests = u.requests, denied = u.denied,
                 policy_events = u.policy_events, cost = u.cost,
                 prompt_tokens = u.prompt_tokens, completion_tokens = u.completion_tokens,
                 model = u.model, escalation = u.escalation
             FROM unnest($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[],
                 $6::TEXT[]::NUMERIC[], $7::BIGINT[], $8::BIGINT[], $9::TEXT[], $10::TEXT[])
                 AS u(org, seq, requests, denied, policy_events, cost, prompt_tokens,
                      completion_tokens, model, escalation)
             WHERE e.org = u.org AND e.seq = u.seq",
            &[
                &org,
                &seq,
                &int(|c| c.requests),
                &int(|c| c.denied),
                &int(|c| c.policy_events),
                &cost,
                &int(|c| c.prompt_tokens),
                &int(|c| c.completion_tokens),
                &model,
                &escalation,
            ],
        )
        .map_err(pg)?;
        let deltas = tallies::deltas(&events, 1)?;
        if !deltas.is_empty() {
            add_tallies(tx, ADD_TALLIES, &deltas)?;
        }
    }
}
