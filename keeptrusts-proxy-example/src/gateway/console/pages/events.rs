//! The events section: the chain's events a viewer may see, and one event in full.
#![allow(clippy::indexing_slicing)]

use super::*;

pub(super) async fn events(page: &Page) -> Section {
    let q = |k: &str| page.query.get(k).cloned().unwrap_or_default();
    let mut query = format!("{}&limit=25", page.team_q());
    for k in ["verdict", "policy", "user", "cursor"] {
        let v = q(k);
        if !v.is_empty() {
            let _ = write!(query, "&{k}={}", encode(&v));
        }
    }
    // `?since=` / `?until=` are UTC dates (`2026-12-01`), the day's start and end
    for (k, api, end) in [("since", "from", false), ("until", "to", true)] {
        if let Some(ms) = day_start(&q(k)) {
            let ms = if end { ms + 86_399_999 } else { ms };
            let _ = write!(query, "&{api}={ms}");
        }
    }
    let v = page.get("/v1/events", &query).await?;
    let rows = v["rows"].as_array().cloned().unwrap_or_default();
    let mut verdicts = vec![("", "any")];
    verdicts.extend(VERDICTS.iter().map(|v| (*v, *v)));
    let mut policies = vec![("", "any")];
    policies.extend(POLICIES.iter().map(|v| (*v, *v)));
    let filters = format!(
        "<form method=\"get\" action=\"/console/events\" class=\"filters\">\
<input type=\"hidden\" name=\"team\" value=\"{}\">{}{}\
<label for=\"f-user\">User</label><input id=\"f-user\" name=\"user\" type=\"email\" value=\"{}\">\
<label for=\"f-since\">From (UTC)</label><input id=\"f-since\" name=\"since\" type=\"date\" value=\"{}\">\
<label for=\"f-until\">To (UTC)</label><input id=\"f-until\" name=\"until\" type=\"date\" value=\"{}\">\
<button type=\"submit\">Filter</button></form>",
        esc(&page.team),
        select("f-verdict", "verdict", "Verdict", &verdicts, &q("verdict")),
        select("f-policy", "policy", "Policy", &policies, &q("policy")),
        esc(&q("user")),
        esc(&q("since")),
        esc(&q("until"))
    );
    if rows.is_empty() {
        return Ok((
            "Events",
            format!(
                "{filters}{}",
                empty("No events match. Clear the filters, or send a request through the gateway with a key of this team.")
            ),
        ));
    }
    let mut t = String::new();
    for e in &rows {
        let seq = text(&e["seq"]);
        let what = e["admin"]["action"]
            .as_str()
            .map(|a| format!("admin: {}", esc(a)))
            .unwrap_or_else(|| esc(&text(&e["model"])));
        let _ = write!(
            t,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{what}</td><td><span class=\"verdict v-{v}\">{v}</span></td><td class=\"num\">{}</td><td>{}</td><td><a href=\"{}\">Details<span class=\"sr\"> of event {seq}</span></a></td></tr>",
            time(&e["timestamp"]),
            esc(&text(&e["team"])),
            esc(&text(&e["user"])),
            text(&e["status"]),
            findings(e),
            esc(&page.href(&format!("events/{seq}"), &[])),
            v = esc(&text(&e["verdict"])),
        );
    }
    let more = match v["next"].as_u64() {
        Some(n) => {
            let mut extra = vec![("cursor", n.to_string())];
            for k in ["verdict", "policy", "user", "since", "until"] {
                if !q(k).is_empty() {
                    extra.push((k, q(k)));
                }
            }
            let refs: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
            format!(
                "<p class=\"pager\"><a href=\"{}\" rel=\"next\">Older events →</a></p>",
                esc(&page.href("events", &refs))
            )
        }
        None => String::new(),
    };
    let newest = if q("cursor").is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"pager\"><a href=\"{}\">← Newest</a></p>",
            esc(&page.href("events", &[]))
        )
    };
    Ok((
        "Events",
        format!(
            "{filters}<table><caption>Events, newest first</caption><thead><tr><th scope=\"col\">Time</th><th scope=\"col\">Team</th><th scope=\"col\">User</th><th scope=\"col\">Model / action</th><th scope=\"col\">Verdict</th><th scope=\"col\">Status</th><th scope=\"col\">Findings</th><th scope=\"col\"><span class=\"sr\">Details</span></th></tr></thead><tbody>{t}</tbody></table>{newest}{more}"
        ),
    ))
}

pub(super) async fn event_detail(page: &Page, seq: &str) -> Section {
    let not_found = || ApiError {
        status: 404,
        code: "not_found".into(),
        message: format!("no event {seq} you may see in team `{}`", page.team),
    };
    let n: u64 = seq.parse().map_err(|_| not_found())?;
    // the page of one event just older than `n + 1`, through the same scoped listing
    let v = page
        .get(
            "/v1/events",
            &format!("{}&limit=1&cursor={}", page.team_q(), n.saturating_add(1)),
        )
        .await?;
    let e = v["rows"]
        .as_array()
        .and_then(|r| r.first())
        .filter(|e| e["seq"].as_u64() == Some(n))
        .cloned()
        .ok_or_else(not_found)?;
    let mut dl = String::new();
    for (label, key) in [
        ("Event id", "id"),
        ("Request id", "request_id"),
        ("Team", "team"),
        ("User", "user"),
        ("Role", "role"),
        ("Consumer group", "consumer_group"),
        ("Model", "model"),
        ("Target", "target"),
        ("Verdict", "verdict"),
        ("HTTP status", "status"),
        ("Reason", "reason"),
        ("Escalation", "escalation_id"),
        ("Ticket", "ticket_id"),
    ] {
        if !e[key].is_null() {
            let _ = write!(dl, "<dt>{label}</dt><dd>{}</dd>", esc(&text(&e[key])));
        }
    }
    let _ = write!(dl, "<dt>Time</dt><dd>{}</dd>", time(&e["timestamp"]));
    if let Some(a) = e["admin"]["action"].as_str() {
        let _ = write!(dl, "<dt>Admin action</dt><dd>{}</dd>", esc(a));
    }
    if !e["cost"].is_null() {
        let c = &e["cost"];
        let cur = c["currency"].as_str().unwrap_or("USD");
        let amount = ["settled", "amount", "estimate"]
            .iter()
            .find(|k| !c[**k].is_null())
            .map(|k| money(dec(&c[*k]), cur))
            .unwrap_or_else(|| esc(&c.to_string()));
        let _ = write!(dl, "<dt>Cost</dt><dd>{amount}</dd>");
    }
    if !e["tokens"].is_null() {
        let _ = write!(
            dl,
            "<dt>Tokens</dt><dd>{} prompt, {} completion</dd>",
            text(&e["tokens"]["prompt_tokens"]),
            text(&e["tokens"]["completion_tokens"])
        );
    }
    let mut pol = String::new();
    for p in e["policies"].as_array().into_iter().flatten() {
        let ents = p["entities"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, n)| format!("{} × {}", esc(k), text(n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".into());
        let _ = write!(
            pol,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{ents}</td></tr>",
            esc(&text(&p["kind"])),
            esc(&text(&p["verdict"])),
            esc(&text(&p["reason"]))
        );
    }
    let pol = if pol.is_empty() {
        empty("No policy ran on this event.")
    } else {
        format!("<table><caption>Policies (finding types and counts; values are never recorded)</caption><thead><tr><th scope=\"col\">Policy</th><th scope=\"col\">Verdict</th><th scope=\"col\">Reason</th><th scope=\"col\">Findings</th></tr></thead><tbody>{pol}</tbody></table>")
    };
    Ok((
        "Event",
        format!(
            "<p><a href=\"{}\">← Events</a></p><dl class=\"detail\">{dl}</dl>{pol}",
            esc(&page.href("events", &[]))
        ),
    ))
}
