//! The console's pages: HTML rendered on the server from admin API answers, and the forms that
//! become admin API calls. Nothing here decides who may see or change what: a refusal is the
//! API's, shown with its message (next to the form's field, or as the page with its status).
//!
//! Answers are read as `serde_json::Value` with `value["field"]`, which yields `Null` for a
//! missing field or a value of another shape and never panics; that is what the lint is told.
#![allow(clippy::indexing_slicing)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;

use hyper::{Method, Response};
use keeptrusts_core::{Principal, Role};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::{admin, encode, html, ApiError};
use crate::backend;
use crate::gateway::{App, GwBody};

mod events;
mod forms;
mod members;

use events::{event_detail, events};
pub(crate) use forms::act;
use members::{members, wallets};

/// A page being rendered for a signed-in principal.
pub(crate) struct Page {
    pub app: Arc<App>,
    pub actor: Principal,
    pub csrf: String,
    /// The team the page shows (`*`: the org's roll-up).
    pub team: String,
    pub query: HashMap<String, String>,
    pub rid: String,
    pub flash: Option<String>,
    /// `overview`, `events`, `events/12`, `settings/members`, …
    pub section: String,
}

/// A form the API refused: which form and field, and the API's message and status.
#[derive(Debug, Clone)]
pub(crate) struct FormError {
    pub op: String,
    pub field: String,
    pub message: String,
    pub status: u16,
}

/// What a form led to.
pub(crate) enum Done {
    /// Back to the page, with a message.
    Redirect(String),
    /// The page with something shown once (a new key).
    Show(Shown),
}

/// A key just issued, shown once.
pub(crate) struct Shown {
    pub secret: String,
    pub id: String,
    pub user: String,
}

const SECTIONS: [(&str, &str); 7] = [
    ("overview", "Overview"),
    ("events", "Events"),
    ("spend", "Spend"),
    ("escalations", "Escalations"),
    ("usage", "Usage"),
    ("settings/members", "Members & Teams"),
    ("settings/wallets", "Wallets"),
];

/// HTML-escapes text.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value as text (`-` for null).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn dec(v: &Value) -> Decimal {
    match v {
        Value::String(s) => Decimal::from_str(s).unwrap_or_default(),
        Value::Number(n) => Decimal::from_str(&n.to_string()).unwrap_or_default(),
        _ => Decimal::ZERO,
    }
}

fn to_f64(d: Decimal) -> f64 {
    d.to_string().parse().unwrap_or(0.0)
}

/// UTC date and time of epoch milliseconds: `2026-12-02T13:04:05Z`.
pub(crate) fn iso(ms: i64) -> String {
    keeptrusts_core::time::utc_time(ms).replacen(' ', "T", 1)
}

/// Epoch milliseconds of 00:00 UTC on a date `2026-12-02`; `None` for anything else.
fn day_start(date: &str) -> Option<i64> {
    keeptrusts_core::time::parse_utc_date(date)
}

/// The UTC date of epoch milliseconds: `2026-12-02`.
fn date(ms: i64) -> String {
    keeptrusts_core::time::utc_date(ms)
}

/// A `<time>` the script shows in the viewer's time zone (UTC without script).
fn time(v: &Value) -> String {
    match v.as_i64() {
        Some(ms) => {
            let t = iso(ms);
            format!(
                "<time datetime=\"{t}\">{} UTC</time>",
                t.replace('T', " ").trim_end_matches('Z')
            )
        }
        None => "-".into(),
    }
}

/// A day (`<time data-day>`: the script shows the date only).
fn day(ms: i64) -> String {
    let t = iso(ms);
    format!(
        "<time datetime=\"{t}\" data-day>{}</time>",
        t.get(..10).unwrap_or(&t)
    )
}

/// An amount in a currency (the script formats it for the viewer's locale).
fn money(d: Decimal, currency: &str) -> String {
    let d = d.normalize();
    let shown = if d.scale() < 2 {
        format!("{d:.2}")
    } else {
        d.to_string()
    };
    format!(
        "<data class=\"money\" value=\"{shown}\" data-currency=\"{c}\">{shown} {c}</data>",
        c = esc(currency)
    )
}

/// Human text for a sign-in notice code.
pub(crate) fn reason_text(code: &str) -> String {
    match code {
        "signed_out" => "You are signed out.".into(),
        "expired" => "Your session ended; sign in again.".into(),
        "key_revoked" => "Your key was revoked: the session ended.".into(),
        "key_expired" => "Your key expired: the session ended.".into(),
        "not_a_member" => "You are no longer a member of the key's team: the session ended.".into(),
        "team_archived" => "Your team was archived: the session ended.".into(),
        _ => "Sign in again.".into(),
    }
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{t} · keeptrusts console</title>\
<link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
<script src=\"/console/assets/console.js\" defer></script></head>\n<body>{body}</body></html>\n",
        t = esc(title)
    )
}

/// The sign-in page.
pub(crate) fn sign_in(csrf: &str, error: Option<&str>, notice: Option<&str>) -> String {
    let notice = notice
        .map(|n| format!("<p class=\"notice\" role=\"status\">{}</p>", esc(n)))
        .unwrap_or_default();
    let (err, invalid) = match error {
        Some(e) => (
            format!(
                "<p class=\"error\" id=\"key-error\" role=\"alert\">{}</p>",
                esc(e)
            ),
            " aria-invalid=\"true\" aria-describedby=\"key-error\"",
        ),
        None => (String::new(), ""),
    };
    document(
        "Sign in",
        &format!(
            "<main id=\"main\" class=\"narrow\"><h1>keeptrusts console</h1>{notice}\
<form method=\"post\" action=\"/console/sign-in\" class=\"card\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<label for=\"key\">Your personal API key</label>\
<input id=\"key\" name=\"key\" type=\"password\" autocomplete=\"off\" required placeholder=\"kt_…\"{invalid}>{err}\
<button type=\"submit\">Sign in</button></form>\
<p class=\"hint\">No key yet? Ask an admin to run <code>kt console link --email you@yourco.com</code> \
and open the link it prints.</p></main>"
        ),
    )
}

/// The page a sign-in link opens: a button, so that fetching the link (a mail scanner, a
/// preview) does not use it up.
pub(crate) fn link(csrf: &str, token: &str, error: Option<&str>) -> String {
    let err = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    document(
        "Sign in with a link",
        &format!(
            "<main id=\"main\" class=\"narrow\"><h1>Sign in with a link</h1>{err}\
<form method=\"post\" action=\"/console/link\" class=\"card\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"hidden\" name=\"token\" value=\"{t}\">\
<p>This link signs you in once.</p><button type=\"submit\">Sign in</button></form></main>",
            t = esc(token)
        ),
    )
}

impl Page {
    /// A console URL for `section` on this page's team, with more query parameters.
    pub fn href(&self, section: &str, extra: &[(&str, &str)]) -> String {
        let mut s = format!("/console/{section}?team={}", encode(&self.team));
        for (k, v) in extra {
            let _ = write!(s, "&{k}={}", encode(v));
        }
        s
    }

    async fn api(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: Option<Value>,
    ) -> Result<Value, ApiError> {
        admin(&self.app, &self.actor, &self.rid, method, path, query, body).await
    }

    async fn get(&self, path: &str, query: &str) -> Result<Value, ApiError> {
        self.api(Method::GET, path, query, None).await
    }

    fn team_q(&self) -> String {
        format!("team={}", encode(&self.team))
    }

    fn csrf_field(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            self.csrf
        )
    }

    /// Owners and org admins may look at any team and the org's roll-up (the API decides
    /// again on every call; this only chooses whether to offer the switcher).
    fn org_wide(&self) -> bool {
        self.actor.role == Some(Role::Owner) || self.actor.org_admin
    }

    /// The currency of the page team's wallet (USD when it has none).
    async fn currency(&self) -> String {
        let wallets = self
            .get("/v1/wallets/balance", "")
            .await
            .unwrap_or_default();
        wallets
            .as_array()
            .into_iter()
            .flatten()
            .find(|w| w["key"]["scope"] == "team" && w["key"]["id"] == self.team.as_str())
            .or_else(|| wallets.as_array().and_then(|a| a.first()))
            .and_then(|w| w["currency"].as_str())
            .unwrap_or("USD")
            .to_owned()
    }

    async fn chrome(&self, title: &str, content: &str) -> String {
        let mut nav = String::new();
        for (s, label) in SECTIONS {
            let current = if self.section == s || self.section.starts_with(&format!("{s}/")) {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(
                nav,
                "<li><a href=\"{}\"{current}>{label}</a></li>",
                esc(&self.href(s, &[]))
            );
        }
        let role = self
            .actor
            .role
            .map(|r| format!("{r:?}").to_lowercase())
            .unwrap_or_default();
        let who = format!(
            "{} · {} of {}{}",
            esc(self.actor.user.as_deref().unwrap_or("-")),
            role,
            esc(self.actor.team.as_deref().unwrap_or("-")),
            if self.actor.org_admin {
                " · org admin"
            } else {
                ""
            }
        );
        let switcher = if self.org_wide() {
            let teams = self.get("/v1/teams", "").await.unwrap_or_default();
            let mut opts = format!(
                "<option value=\"*\"{}>Whole org (roll-up)</option>",
                if self.team == "*" { " selected" } else { "" }
            );
            for t in teams.as_array().into_iter().flatten() {
                let slug = text(&t["slug"]);
                let _ = write!(
                    opts,
                    "<option value=\"{s}\"{sel}>{n}</option>",
                    s = esc(&slug),
                    sel = if slug == self.team { " selected" } else { "" },
                    n = esc(&text(&t["name"]))
                );
            }
            format!(
                "<form method=\"get\" action=\"/console/{}\" class=\"switcher\">\
<label for=\"team-switch\">Team</label><select id=\"team-switch\" name=\"team\" data-autosubmit>{opts}</select>\
<button type=\"submit\">Show</button></form>",
                // an event's page switches to the other team's event list
                esc(if self.section.starts_with("events/") { "events" } else { &self.section })
            )
        } else {
            format!(
                "<p class=\"switcher\">Team <strong>{}</strong></p>",
                esc(&self.team)
            )
        };
        let flash = self
            .flash
            .as_deref()
            .map(|f| format!("<p class=\"notice\" role=\"status\">{}</p>", esc(f)))
            .unwrap_or_default();
        document(
            title,
            &format!(
                "<a class=\"skip\" href=\"#main\">Skip to content</a>\
<header><div class=\"bar\"><span class=\"brand\">keeptrusts</span><span class=\"who\">{who}</span>\
<form method=\"post\" action=\"/console/sign-out\" class=\"signout\">{csrf}<button type=\"submit\">Sign out</button></form></div>\
<nav aria-label=\"Sections\"><ul>{nav}</ul></nav>{switcher}</header>\
<main id=\"main\"><h1>{t}</h1>{flash}{content}</main>",
                csrf = self.csrf_field(),
                t = esc(title),
            ),
        )
    }
}

/// A refused read as a page: the API's status and message.
async fn refused(page: &Page, e: &ApiError) -> Response<GwBody> {
    let body = page
        .chrome(
            if e.status == 404 {
                "Not found"
            } else if e.status == 403 {
                "Not allowed"
            } else {
                "Error"
            },
            &format!(
                "<p class=\"error\" role=\"alert\">{} <span class=\"code\">({})</span></p>\
<p><a href=\"/console/overview\">Back to your team's overview</a></p>",
                esc(&e.message),
                esc(&e.code)
            ),
        )
        .await;
    html(e.status, body, &[])
}

/// Renders the page's section, with a refused form's error or something shown once.
pub(crate) async fn render(
    page: &Page,
    error: Option<FormError>,
    shown: Option<Shown>,
) -> Response<GwBody> {
    let status = error.as_ref().map_or(200, |e| e.status);
    let out = match page.section.as_str() {
        "overview" => overview(page).await,
        "events" => events(page).await,
        s if s.starts_with("events/") => event_detail(page, s.trim_start_matches("events/")).await,
        "spend" => spend(page).await,
        "escalations" => escalations(page, error.as_ref()).await,
        "usage" => usage(page).await,
        "settings/members" => members(page, error.as_ref(), shown.as_ref()).await,
        "settings/wallets" => wallets(page, error.as_ref()).await,
        _ => Err(ApiError {
            status: 404,
            code: "not_found".into(),
            message: format!("no console page `{}`", page.section),
        }),
    };
    match out {
        Ok((title, mut content)) => {
            // a refused form whose field is not on the page (a key the viewer may not list):
            // its message goes on top
            if let Some(e) = error.as_ref() {
                let shown = esc(&e.message);
                if !content.contains(&shown) {
                    content = format!("<p class=\"error\" role=\"alert\">{shown}</p>{content}");
                }
            }
            html(status, page.chrome(title, &content).await, &[])
        }
        Err(e) => refused(page, &e).await,
    }
}

type Section = Result<(&'static str, String), ApiError>;

/// A bar chart as inline SVG (no script, no style attribute: the CSP allows it as is), with at
/// least `slots` bar positions so that a few bars stay bars; the first and last labels and the
/// largest value are written under it.
fn bars(label: &str, points: &[(String, f64, String)], slots: usize) -> String {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return String::new();
    };
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let top = max.max(1e-12);
    let (w, h, gap) = (600.0, 120.0, 2.0);
    let n = points.len().max(slots).max(1) as f64;
    let bw = ((w - gap * n) / n).max(1.0);
    let peak = points
        .iter()
        .find(|p| (p.1 - max).abs() < f64::EPSILON)
        .map_or(String::new(), |p| p.2.clone());
    let mut s = format!(
        "<figure><figcaption>{l}</figcaption><svg viewBox=\"0 0 {w} {h2}\" role=\"img\" aria-label=\"{l}, highest {p}\" class=\"chart\" preserveAspectRatio=\"none\"><line x1=\"0\" y1=\"{h}\" x2=\"{w}\" y2=\"{h}\" class=\"axis\"></line>",
        l = esc(label),
        p = esc(&peak),
        h2 = h + 2.0
    );
    for (i, (x, v, shown)) in points.iter().enumerate() {
        let bh = (v / top * h).max(if *v > 0.0 { 1.0 } else { 0.0 });
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\"><title>{}: {}</title></rect>",
            i as f64 * (bw + gap),
            h - bh,
            esc(x),
            esc(shown)
        );
    }
    let _ = write!(
        s,
        "</svg><div class=\"axis-labels\"><span>{}</span><span>highest {}</span><span>{}</span></div></figure>",
        esc(&first.0),
        esc(&peak),
        esc(&last.0)
    );
    s
}

fn empty(what: &str) -> String {
    format!("<p class=\"empty\">{what}</p>")
}

async fn overview(page: &Page) -> Section {
    let from = backend::now_ms() - 30 * 86_400_000;
    let v = page
        .get(
            "/v1/dashboard/overview",
            &format!("{}&from={from}", page.team_q()),
        )
        .await?;
    let cur = page.currency().await;
    let days = v["days"].as_array().cloned().unwrap_or_default();
    if days.is_empty() {
        return Ok((
            "Overview",
            empty("No requests in the last 30 days. Point an OpenAI client at this gateway with a team key \
(<code>Authorization: Bearer kt_…</code>) and its traffic shows up here."),
        ));
    }
    let (mut req, mut cost, mut pol) = (0u64, Decimal::ZERO, 0u64);
    let mut rows = String::new();
    for d in &days {
        req += d["requests"].as_u64().unwrap_or(0);
        cost += dec(&d["cost"]);
        pol += d["policy_events"].as_u64().unwrap_or(0);
        let _ = write!(
            rows,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            day(d["day"].as_i64().unwrap_or(0)),
            text(&d["requests"]),
            money(dec(&d["cost"]), &cur),
            text(&d["policy_events"])
        );
    }
    // every one of the 30 days has its place on the axis, traffic or not
    let today = keeptrusts_core::time::day_of(backend::now_ms());
    let by_day: HashMap<i64, &Value> = days
        .iter()
        .map(|d| (d["day"].as_i64().unwrap_or(0), d))
        .collect();
    let none = json!({"day": 0, "requests": 0, "cost": "0", "policy_events": 0});
    let axis: Vec<(i64, &Value)> = (0..30)
        .rev()
        .map(|i| {
            let t = today - i * 86_400_000;
            (t, by_day.get(&t).copied().unwrap_or(&none))
        })
        .collect();
    let chart = |title: &str, f: &dyn Fn(&Value) -> (f64, String)| {
        let pts: Vec<_> = axis
            .iter()
            .map(|(t, d)| {
                let (v, s) = f(d);
                (date(*t), v, s)
            })
            .collect();
        bars(title, &pts, 30)
    };
    let c1 = chart("Requests per day", &|d| {
        (d["requests"].as_f64().unwrap_or(0.0), text(&d["requests"]))
    });
    let c2 = chart("Cost per day", &|d| {
        (
            to_f64(dec(&d["cost"])),
            format!("{} {cur}", dec(&d["cost"])),
        )
    });
    let c3 = chart("Policy events per day", &|d| {
        (
            d["policy_events"].as_f64().unwrap_or(0.0),
            text(&d["policy_events"]),
        )
    });
    Ok((
        "Overview",
        format!(
            "<div class=\"tiles\"><div class=\"tile\"><span>Requests (30 days)</span><strong>{req}</strong></div>\
<div class=\"tile\"><span>Cost (30 days)</span><strong>{}</strong></div>\
<div class=\"tile\"><span>Policy events (30 days)</span><strong>{pol}</strong></div></div>\
<div class=\"charts\">{c1}{c2}{c3}</div>\
<table><caption>Per day</caption><thead><tr><th scope=\"col\">Day</th><th scope=\"col\">Requests</th><th scope=\"col\">Cost</th><th scope=\"col\">Policy events</th></tr></thead><tbody>{rows}</tbody></table>",
            money(cost, &cur)
        ),
    ))
}

/// The types of findings of an event and their counts (never the values: events hold none).
fn findings(e: &Value) -> String {
    let mut counts: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for p in e["policies"].as_array().into_iter().flatten() {
        for (k, n) in p["entities"].as_object().into_iter().flatten() {
            *counts.entry(k.clone()).or_default() += n.as_u64().unwrap_or(0);
        }
    }
    if counts.is_empty() {
        return "-".into();
    }
    counts
        .iter()
        .map(|(k, n)| format!("{} × {n}", esc(k)))
        .collect::<Vec<_>>()
        .join(", ")
}

const VERDICTS: [&str; 5] = ["allow", "redact", "ticket", "escalate", "block"];
const POLICIES: [&str; 5] = [
    "rbac",
    "pii-detector",
    "hipaa-phi-detector",
    "human-oversight",
    "audit-logger",
];

fn select(id: &str, name: &str, label: &str, choices: &[(&str, &str)], current: &str) -> String {
    let mut s = format!("<label for=\"{id}\">{label}</label><select id=\"{id}\" name=\"{name}\">");
    for (v, l) in choices {
        let _ = write!(
            s,
            "<option value=\"{v}\"{}>{l}</option>",
            if *v == current { " selected" } else { "" }
        );
    }
    s.push_str("</select>");
    s
}

async fn spend(page: &Page) -> Section {
    let g = page
        .query
        .get("granularity")
        .cloned()
        .filter(|g| ["day", "week", "month"].contains(&g.as_str()))
        .unwrap_or_else(|| "day".into());
    let v = page
        .get(
            "/v1/dashboard/spend",
            &format!("{}&granularity={g}", page.team_q()),
        )
        .await?;
    let cur = page.currency().await;
    let form = format!(
        "<form method=\"get\" action=\"/console/spend\" class=\"filters\"><input type=\"hidden\" name=\"team\" value=\"{}\">{}<button type=\"submit\">Show</button></form>",
        esc(&page.team),
        select("f-gran", "granularity", "Period", &[("day", "day"), ("week", "week"), ("month", "month")], &g)
    );
    let table = |caption: &str, head: &str, m: &Value, key: &dyn Fn(&str) -> String| {
        let mut rows = String::new();
        for (k, a) in m.as_object().into_iter().flatten() {
            let _ = write!(
                rows,
                "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
                key(k),
                money(dec(a), &cur)
            );
        }
        if rows.is_empty() {
            return String::new();
        }
        format!("<table><caption>{caption}</caption><thead><tr><th scope=\"col\">{head}</th><th scope=\"col\">Spend</th></tr></thead><tbody>{rows}</tbody></table>")
    };
    let by_period = &v["by_period"];
    if by_period.as_object().is_none_or(serde_json::Map::is_empty) {
        return Ok((
            "Spend",
            format!("{form}{}", empty("Nothing spent yet. Spend appears once requests are settled against this team's wallets.")),
        ));
    }
    let pts: Vec<_> = by_period
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, a)| {
            let d = k.parse::<i64>().map(date).unwrap_or_else(|_| k.clone());
            (d, to_f64(dec(a)), format!("{} {cur}", dec(a)))
        })
        .collect();
    Ok((
        "Spend",
        format!(
            "{form}<div class=\"tiles\"><div class=\"tile\"><span>Total</span><strong>{}</strong></div></div>{}<div class=\"cols\">{}{}{}</div>",
            money(dec(&v["total"]), &cur),
            bars(&format!("Spend per {g}"), &pts, 12),
            table("By model", "Model", &v["by_model"], &|k| esc(k)),
            table("By user", "User", &v["by_user"], &|k| esc(k)),
            table(&format!("By {g}"), "Period starting", by_period, &|k| k.parse::<i64>().map(day).unwrap_or_else(|_| esc(k))),
        ),
    ))
}

fn in_team(page: &Page, row: &Value) -> bool {
    page.team == "*" || row["team"].as_str() == Some(page.team.as_str())
}

fn field_error(err: Option<&FormError>, op: &str, field: &str) -> (String, String) {
    match err.filter(|e| e.op == op && e.field == field) {
        Some(e) => (
            format!(" aria-invalid=\"true\" aria-describedby=\"err-{op}-{field}\""),
            format!(
                "<p class=\"error\" id=\"err-{op}-{field}\" role=\"alert\">{}</p>",
                esc(&e.message)
            ),
        ),
        None => (String::new(), String::new()),
    }
}

/// A form-level error (for forms whose only input is a button).
fn form_error(err: Option<&FormError>, op: &str, id: &str) -> String {
    match err.filter(|e| e.op == op && e.field == id) {
        Some(e) => format!("<p class=\"error\" role=\"alert\">{}</p>", esc(&e.message)),
        None => String::new(),
    }
}

async fn escalations(page: &Page, err: Option<&FormError>) -> Section {
    let v = page.get("/v1/escalations", "").await?;
    let rows: Vec<Value> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| in_team(page, r))
        .cloned()
        .collect();
    if rows.is_empty() {
        return Ok((
            "Escalations",
            empty("No escalations. Requests a human-oversight policy holds back wait here for a reviewer."),
        ));
    }
    let mut t = String::new();
    for r in &rows {
        let id = text(&r["id"]);
        let pending = r["status"] == "pending";
        let actions = if pending {
            format!(
                "<form method=\"post\" action=\"{a}\" class=\"inline\">{c}<input type=\"hidden\" name=\"op\" value=\"escalation\"><input type=\"hidden\" name=\"id\" value=\"{i}\">\
<button type=\"submit\" name=\"ruling\" value=\"approve\">Approve<span class=\"sr\"> {i}</span></button> \
<button type=\"submit\" name=\"ruling\" value=\"deny\" class=\"danger\">Deny<span class=\"sr\"> {i}</span></button></form>{e}",
                a = esc(&page.href("escalations", &[])),
                c = page.csrf_field(),
                i = esc(&id),
                e = form_error(err, "escalation", &id)
            )
        } else {
            format!(
                "{} by {}",
                esc(&text(&r["status"])),
                esc(&text(&r["resolved_by"]))
            )
        };
        let _ = write!(
            t,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td><span class=\"excerpt\">{}</span></td><td>{}</td><td>{actions}</td></tr>",
            esc(&id),
            time(&r["created_at"]),
            esc(&text(&r["team"])),
            esc(&text(&r["user"])),
            r["excerpt"].as_str().map_or_else(
                || format!("<span class=\"hint\">{}</span>", esc(&text(&r["reason"]))),
                |x| format!("{}<br><span class=\"hint\">{}</span>", esc(x), esc(&text(&r["reason"])))
            ),
            esc(&text(&r["status"])),
        );
    }
    Ok((
        "Escalations",
        format!(
            "<p class=\"hint\">An approval lets the held request through once, when its sender retries it with \
<code>X-Keeptrusts-Escalation-Id</code>. Each row shows the start of the held request with every detected value replaced by its type, and the policy's reason.</p>\
<table><caption>Review queue</caption><thead><tr><th scope=\"col\">Escalation</th><th scope=\"col\">Raised</th><th scope=\"col\">Team</th><th scope=\"col\">User</th><th scope=\"col\">Request (redacted) and reason</th><th scope=\"col\">Status</th><th scope=\"col\">Decision</th></tr></thead><tbody>{t}</tbody></table>"
        ),
    ))
}

async fn usage(page: &Page) -> Section {
    let v = page.get("/v1/dashboard/usage", &page.team_q()).await?;
    let o = page.get("/v1/dashboard/overview", &page.team_q()).await?;
    let cur = page.currency().await;
    let members = v["members"].as_array().cloned().unwrap_or_default();
    let (mut req, mut cost) = (0u64, Decimal::ZERO);
    for d in o["days"].as_array().into_iter().flatten() {
        req += d["requests"].as_u64().unwrap_or(0);
        cost += dec(&d["cost"]);
    }
    if members.is_empty() {
        return Ok((
            "Usage",
            empty("No usage yet. Each member's requests, denials, tokens and cost appear here once they use their key."),
        ));
    }
    let mut t = String::new();
    for m in &members {
        let _ = write!(
            t,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&text(&m["user"])),
            text(&m["requests"]),
            text(&m["denied"]),
            text(&m["prompt_tokens"]),
            text(&m["completion_tokens"]),
            money(dec(&m["cost"]), &cur)
        );
    }
    Ok((
        "Usage",
        format!(
            "<table><caption>Usage per member</caption><thead><tr><th scope=\"col\">Member</th><th scope=\"col\">Requests</th><th scope=\"col\">Denied</th><th scope=\"col\">Prompt tokens</th><th scope=\"col\">Completion tokens</th><th scope=\"col\">Cost</th></tr></thead>\
<tbody>{t}</tbody><tfoot><tr><th scope=\"row\">Team total</th><td class=\"num\">{req}</td><td></td><td></td><td></td><td class=\"num\">{}</td></tr></tfoot></table>",
            money(cost, &cur)
        ),
    ))
}

fn input(
    op: &str,
    name: &str,
    label: &str,
    kind: &str,
    value: &str,
    err: Option<&FormError>,
    extra: &str,
) -> String {
    let (attrs, msg) = field_error(err, op, name);
    format!(
        "<div class=\"field\"><label for=\"{op}-{name}\">{label}</label><input id=\"{op}-{name}\" name=\"{name}\" type=\"{kind}\" value=\"{v}\"{attrs}{extra}>{msg}</div>",
        v = esc(value)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_escaping() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_795_000_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(day_start("2000-02-29"), Some(951_782_400_000));
        assert_eq!(day_start("1970-01-01"), Some(0));
        assert_eq!(day_start("2026-02-31"), None);
        assert_eq!(day_start("2026-1-1"), None);
        assert_eq!(day_start("x"), None);
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn money_keeps_its_precision() {
        assert!(money(Decimal::from_str("0.0000261").unwrap(), "USD").contains(">0.0000261 USD<"));
        assert!(money(Decimal::from_str("5").unwrap(), "EUR").contains(">5.00 EUR<"));
    }
}
