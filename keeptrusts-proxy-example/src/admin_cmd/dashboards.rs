//! `kt dashboard`: a dashboard section as a member of the store sees it, as text tables or
//! (`--json`) as the admin API answers it.

use super::*;

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// The user whose view to show (their role comes from their membership).
    #[arg(long = "as")]
    pub(super) viewer: String,
    #[arg(long)]
    pub(super) team: String,
    /// overview, events, spend, escalations or usage
    #[arg(long, default_value = "overview")]
    pub(super) section: String,
    #[command(flatten)]
    pub(super) common: Common,
}

pub fn dashboard(a: &DashboardArgs) -> u8 {
    done((|| {
        let section: Section = serde_json::from_value(serde_json::Value::String(a.section.clone()))
            .map_err(|_| {
                eprintln!(
                    "kt: --section `{}`: expected overview, events, spend, escalations or usage",
                    a.section
                );
                2
            })?;
        let s = open(&a.common)?;
        let membership = s
            .members(None)
            .map_err(|e| report(&e.into()))?
            .into_iter()
            .filter(|m| m.user == a.viewer)
            .max_by_key(|m| (m.role, m.team == a.team));
        let Some(m) = membership else {
            eprintln!("kt: `{}` is not a member of any team", a.viewer);
            return Err(2);
        };
        let mut viewer = Principal::new(&a.viewer, &m.team, m.role);
        viewer.org_admin = keeptrusts_core::directory::is_org_admin(s.as_ref(), &a.viewer)
            .map_err(|e| report(&e.into()))?;
        let team = keeptrusts_core::directory::slug_of(s.as_ref(), &a.team)
            .map_err(|e| report(&e.into()))?;
        let q = Query::new(&team, section);
        let v =
            dashboard::load(s.as_ref(), &a.common.org_id, &viewer, &q).map_err(|e| report(&e))?;
        let v = serde_json::to_value(&v).unwrap_or_default();
        print(&a.common, &v, || dashboard_text(&v));
        Ok(())
    })())
}

/// Rows as a text table: a header, then one line per row, columns padded to their widest cell.
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// A dashboard section as text tables (`--json` prints it as the admin API answers it).
pub(super) fn dashboard_text(v: &serde_json::Value) -> String {
    use serde_json::Value;
    let cell = |x: &Value| match x {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let ms = |x: &Value| {
        x.as_i64()
            .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
    };
    let day = |x: &Value| ms(x).map_or_else(|| cell(x), keeptrusts_core::time::utc_date);
    let list = |k: &str| {
        v.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let pairs = |k: &str, key: &dyn Fn(&str) -> String| -> Vec<Vec<String>> {
        v.get(k)
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(a, b)| vec![key(a), cell(b)]).collect())
            .unwrap_or_default()
    };
    let empty = |what: &str| format!("(no {what} yet for this view)");
    let section = v.get("section").and_then(Value::as_str).unwrap_or_default();
    match section {
        "overview" => {
            let rows: Vec<Vec<String>> = list("days")
                .iter()
                .map(|d| {
                    vec![
                        day(at(d, "day")),
                        cell(at(d, "requests")),
                        cell(at(d, "cost")),
                        cell(at(d, "policy_events")),
                    ]
                })
                .collect();
            if rows.is_empty() {
                return empty("requests");
            }
            table(&["day (UTC)", "requests", "cost", "policy events"], &rows)
        }
        "spend" => {
            let as_day = |k: &str| {
                k.parse::<i64>()
                    .map_or_else(|_| k.to_owned(), keeptrusts_core::time::utc_date)
            };
            let same = |k: &str| k.to_owned();
            format!(
                "total spent: {}\n\n{}\n\n{}\n\n{}",
                cell(at(v, "total")),
                table(&["model", "spent"], &pairs("by_model", &same)),
                table(&["user", "spent"], &pairs("by_user", &same)),
                table(&["period (UTC)", "spent"], &pairs("by_period", &as_day)),
            )
        }
        "usage" => {
            let rows: Vec<Vec<String>> = list("members")
                .iter()
                .map(|m| {
                    [
                        "user",
                        "requests",
                        "denied",
                        "cost",
                        "prompt_tokens",
                        "completion_tokens",
                    ]
                    .iter()
                    .map(|k| cell(at(m, k)))
                    .collect()
                })
                .collect();
            if rows.is_empty() {
                return empty("usage");
            }
            table(
                &[
                    "user",
                    "requests",
                    "denied",
                    "cost",
                    "prompt tokens",
                    "completion tokens",
                ],
                &rows,
            )
        }
        "events" | "escalations" => {
            let rows: Vec<Vec<String>> = list("rows")
                .iter()
                .map(|e| {
                    vec![
                        cell(at(e, "seq")),
                        ms(at(e, "timestamp"))
                            .map_or_else(|| "-".into(), keeptrusts_core::time::utc_time),
                        cell(at(e, "user")),
                        cell(at(e, "model")),
                        cell(at(e, "verdict")),
                        cell(at(e, "status")),
                        cell(at(e, "reason")),
                        cell(at(at(e, "cost"), "settled")),
                        cell(
                            e.get("escalation_id")
                                .or_else(|| e.get("ticket_id"))
                                .unwrap_or(&Value::Null),
                        ),
                    ]
                })
                .collect();
            if rows.is_empty() {
                return empty(section);
            }
            let mut out = table(
                &[
                    "seq",
                    "time",
                    "user",
                    "model",
                    "verdict",
                    "status",
                    "reason",
                    "cost",
                    "escalation/ticket",
                ],
                &rows,
            );
            if let Some(next) = v.get("next").filter(|n| !n.is_null()) {
                out.push_str(&format!(
                    "\n(more: the next page starts before seq {})",
                    cell(next)
                ));
            }
            out
        }
        _ => serde_json::to_string_pretty(v).unwrap_or_default(),
    }
}
