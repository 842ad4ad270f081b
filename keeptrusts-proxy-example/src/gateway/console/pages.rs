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

async fn events(page: &Page) -> Section {
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

async fn event_detail(page: &Page, seq: &str) -> Section {
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

async fn members(page: &Page, err: Option<&FormError>, shown: Option<&Shown>) -> Section {
    let teams = page.get("/v1/teams", "").await?;
    let mut tt = String::new();
    for t in teams.as_array().into_iter().flatten() {
        let slug = text(&t["slug"]);
        let _ = write!(
            tt,
            "<tr><td><a href=\"/console/settings/members?team={}\">{}</a></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            encode(&slug),
            esc(&text(&t["name"])),
            esc(&slug),
            esc(t["description"].as_str().unwrap_or("")),
            if t["archived_at"].is_null() { "active" } else { "archived" }
        );
    }
    let c = page.csrf_field();
    let action = esc(&page.href("settings/members", &[]));
    let create_team = format!(
        "<form method=\"post\" action=\"{action}\" class=\"card\"><h3>Create a team</h3>{c}<input type=\"hidden\" name=\"op\" value=\"create_team\">{}{}<button type=\"submit\">Create team</button></form>",
        input("create_team", "name", "Name", "text", "", err, " required"),
        input("create_team", "description", "Description", "text", "", err, ""),
    );
    let teams_html = format!(
        "<section><h2>Teams</h2><table><caption>Teams of the org</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Slug</th><th scope=\"col\">Description</th><th scope=\"col\">State</th></tr></thead><tbody>{tt}</tbody></table>{create_team}</section>"
    );
    if page.team == "*" {
        return Ok((
            "Members & Teams",
            format!("{teams_html}<p class=\"empty\">Choose a team above to manage its members and keys.</p>"),
        ));
    }
    let team_path = encode(&page.team);
    let shown_html = shown.map(|s| {
        format!(
            "<div class=\"card secret\" role=\"status\"><h3>New key for {u} ({i})</h3><p>Copy it now: it is shown once and cannot be shown again.</p>\
<p><code id=\"new-key\">{k}</code> <button type=\"button\" data-copy=\"new-key\">Copy</button></p></div>",
            u = esc(&s.user),
            i = esc(&s.id),
            k = esc(&s.secret)
        )
    }).unwrap_or_default();
    let members_html = match page
        .get(&format!("/v1/teams/{team_path}/members"), "")
        .await
    {
        Ok(m) => {
            let mut rows = String::new();
            for m in m.as_array().into_iter().flatten() {
                let user = text(&m["user"]);
                let role = text(&m["role"]);
                let rid = format!("role-{}", encode(&user).replace('%', "_"));
                let _ = write!(
                    rows,
                    "<tr><td>{u}</td><td><form method=\"post\" action=\"{action}\" class=\"inline\">{c}<input type=\"hidden\" name=\"op\" value=\"set_member\"><input type=\"hidden\" name=\"email\" value=\"{u}\">{sel}<button type=\"submit\">Change role<span class=\"sr\"> of {u}</span></button></form></td>\
<td><form method=\"post\" action=\"{action}\" class=\"inline\">{c}<input type=\"hidden\" name=\"op\" value=\"remove_member\"><input type=\"hidden\" name=\"email\" value=\"{u}\"><button type=\"submit\" class=\"danger\">Remove<span class=\"sr\"> {u}</span></button></form>{e}</td></tr>",
                    u = esc(&user),
                    sel = select(&rid, "role", "Role", &[("member", "member"), ("admin", "admin"), ("owner", "owner")], &role),
                    e = form_error(err, "member", &user),
                );
            }
            if rows.is_empty() {
                empty("No members yet: add the first one below.")
            } else {
                format!("<table><caption>Members of {}</caption><thead><tr><th scope=\"col\">Member</th><th scope=\"col\">Role</th><th scope=\"col\"><span class=\"sr\">Remove</span></th></tr></thead><tbody>{rows}</tbody></table>", esc(&page.team))
            }
        }
        // another team's members or keys: the page is refused as the API refused the call;
        // on the viewer's own team, the API's reason is shown in place
        Err(e) if page.actor.team.as_deref() != Some(page.team.as_str()) => return Err(e),
        Err(e) => format!("<p class=\"notice\">{}</p>", esc(&e.message)),
    };
    let add_member = format!(
        "<form method=\"post\" action=\"{action}\" class=\"card\"><h3>Add a member</h3>{c}<input type=\"hidden\" name=\"op\" value=\"add_member\">{}<div class=\"field\">{}</div><button type=\"submit\">Add member</button></form>",
        input("add_member", "email", "Email", "email", "", err, " required"),
        select("add_member-role", "role", "Role", &[("member", "member"), ("admin", "admin"), ("owner", "owner")], "member"),
    );
    let keys_html = match page.get("/v1/keys", &page.team_q()).await {
        Ok(k) => {
            let mut rows = String::new();
            for k in k.as_array().into_iter().flatten() {
                let id = text(&k["id"]);
                let active = k["status"] == "active";
                let revoke = if active {
                    format!(
                        "<form method=\"post\" action=\"{action}\" class=\"inline\">{c}<input type=\"hidden\" name=\"op\" value=\"revoke_key\"><input type=\"hidden\" name=\"id\" value=\"{i}\"><button type=\"submit\" class=\"danger\">Revoke<span class=\"sr\"> {i}</span></button></form>{e}",
                        i = esc(&id),
                        e = form_error(err, "revoke_key", &id)
                    )
                } else {
                    String::new()
                };
                let _ = write!(
                    rows,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{revoke}</td></tr>",
                    esc(&id),
                    esc(&text(&k["user"])),
                    esc(k["label"].as_str().unwrap_or("")),
                    esc(&text(&k["status"])),
                    time(&k["created_at"]),
                    time(&k["last_used_at"]),
                );
            }
            if rows.is_empty() {
                empty("No keys yet: create one below, then hand it to its member.")
            } else {
                format!("<table><caption>Keys of {}</caption><thead><tr><th scope=\"col\">Key</th><th scope=\"col\">Member</th><th scope=\"col\">Label</th><th scope=\"col\">Status</th><th scope=\"col\">Created</th><th scope=\"col\">Last used</th><th scope=\"col\"><span class=\"sr\">Revoke</span></th></tr></thead><tbody>{rows}</tbody></table>", esc(&page.team))
            }
        }
        // another team's members or keys: the page is refused as the API refused the call;
        // on the viewer's own team, the API's reason is shown in place
        Err(e) if page.actor.team.as_deref() != Some(page.team.as_str()) => return Err(e),
        Err(e) => format!("<p class=\"notice\">{}</p>", esc(&e.message)),
    };
    let create_key = format!(
        "<form method=\"post\" action=\"{action}\" class=\"card\"><h3>Create a key</h3>{c}<input type=\"hidden\" name=\"op\" value=\"create_key\">{}{}{}<button type=\"submit\">Create key</button></form>",
        input("create_key", "email", "Member's email", "email", "", err, " required"),
        input("create_key", "label", "Label (what it is for)", "text", "", err, ""),
        input("create_key", "expires_in", "Expires in (e.g. 30d; empty: never)", "text", "", err, ""),
    );
    Ok((
        "Members & Teams",
        format!(
            "{shown_html}{teams_html}<section><h2>Members of {t}</h2>{members_html}{add_member}</section><section><h2>Keys of {t}</h2>{keys_html}{create_key}</section>",
            t = esc(&page.team)
        ),
    ))
}

async fn wallets(page: &Page, err: Option<&FormError>) -> Section {
    let w = page.get("/v1/wallets/balance", "").await?;
    let c = page.csrf_field();
    let action = esc(&page.href("settings/wallets", &[]));
    let mut rows = String::new();
    for w in w.as_array().into_iter().flatten() {
        let scope = text(&w["key"]["scope"]);
        let id = text(&w["key"]["id"]);
        if page.team != "*" && scope == "team" && id != page.team {
            continue;
        }
        let cur = w["currency"].as_str().unwrap_or("USD");
        let (alloc, spent, res) = (dec(&w["allocated"]), dec(&w["spent"]), dec(&w["reserved"]));
        let avail = (alloc - spent - res).max(Decimal::ZERO);
        let total = to_f64(alloc).max(1e-12);
        let ws = (to_f64(spent) / total * 300.0).clamp(0.0, 300.0);
        let wr = (to_f64(res) / total * 300.0).clamp(0.0, 300.0 - ws);
        let _ = write!(
            rows,
            "<tr><td>{scope}:{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
<td><svg viewBox=\"0 0 300 14\" class=\"meter\" role=\"img\" aria-label=\"{sp} spent, {rs} reserved of {al}\"><rect class=\"m-all\" x=\"0\" y=\"0\" width=\"300\" height=\"14\"></rect>\
<rect class=\"m-spent\" x=\"0\" y=\"0\" width=\"{ws:.1}\" height=\"14\"></rect><rect class=\"m-res\" x=\"{ws:.1}\" y=\"0\" width=\"{wr:.1}\" height=\"14\"></rect></svg></td></tr>",
            esc(&id),
            w["period"].as_str().map_or("one-off", |p| p),
            money(alloc, cur),
            money(spent, cur),
            money(res, cur),
            money(avail, cur),
            sp = spent,
            rs = res,
            al = alloc,
        );
    }
    let table = if rows.is_empty() {
        empty("No wallets yet. Allocate a budget below; requests are refused with 402 and a ticket when none can pay.")
    } else {
        format!("<table><caption>Wallets</caption><thead><tr><th scope=\"col\">Wallet</th><th scope=\"col\">Period</th><th scope=\"col\">Allocated</th><th scope=\"col\">Spent</th><th scope=\"col\">Reserved</th><th scope=\"col\">Available</th><th scope=\"col\">Used</th></tr></thead><tbody>{rows}</tbody></table>")
    };
    let default_id = if page.team == "*" {
        ""
    } else {
        page.team.as_str()
    };
    let allocate = format!(
        "<form method=\"post\" action=\"{action}\" class=\"card\"><h3>Allocate</h3>{c}<input type=\"hidden\" name=\"op\" value=\"allocate\">\
<div class=\"field\">{}</div>{}{}{}<div class=\"field\">{}</div><div class=\"field\">{}</div><button type=\"submit\">Allocate</button></form>",
        select("allocate-scope", "scope", "Wallet of", &[("team", "a team"), ("user", "a user"), ("org", "the org")], "team"),
        input("allocate", "id", "Team, user email or org id", "text", default_id, err, " required"),
        input("allocate", "amount", "Amount", "text", "", err, " required inputmode=\"decimal\""),
        input("allocate", "currency", "Currency", "text", "USD", err, " required"),
        select("allocate-period", "period", "Period", &[("", "one-off"), ("monthly", "monthly (spent resets each month)")], ""),
        select("allocate-mode", "mode", "Mode", &[("set", "set the allocation"), ("top_up", "add to it")], "set"),
    );
    let tickets = page.get("/v1/tickets", "").await?;
    let mut tr = String::new();
    for t in tickets
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| in_team(page, t))
    {
        let id = text(&t["id"]);
        let cur = t["currency"].as_str().unwrap_or("USD");
        let decide = if t["status"] == "pending" {
            let (attrs, msg) = field_error(err, "ticket", &format!("charge_to-{id}"));
            format!(
                "<form method=\"post\" action=\"{action}\" class=\"inline\">{c}<input type=\"hidden\" name=\"op\" value=\"ticket\"><input type=\"hidden\" name=\"id\" value=\"{i}\">\
<label for=\"ct-{i}\">Charge to</label><input id=\"ct-{i}\" name=\"charge_to\" type=\"text\" value=\"team:{team}\"{attrs}>\
<button type=\"submit\" name=\"ruling\" value=\"approve\">Approve<span class=\"sr\"> {i}</span></button> <button type=\"submit\" name=\"ruling\" value=\"deny\" class=\"danger\">Deny<span class=\"sr\"> {i}</span></button></form>{msg}",
                i = esc(&id),
                team = esc(t["team"].as_str().unwrap_or("")),
            )
        } else {
            esc(&text(&t["status"]))
        };
        // a gateway holds the request open until its hold ends (`wallets.queue`)
        let held = t["held_until"]
            .as_i64()
            .filter(|u| *u > crate::backend::now_ms())
            .map_or_else(String::new, |_| {
                format!(
                    " <span class=\"badge\">held until {}</span>",
                    time(&t["held_until"])
                )
            });
        let _ = write!(
            tr,
            "<tr><td><code>{}</code>{held}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{decide}</td></tr>",
            esc(&id),
            time(&t["created_at"]),
            esc(&text(&t["team"])),
            esc(&text(&t["user"])),
            esc(&text(&t["model"])),
            money(dec(&t["estimate"]), cur),
        );
    }
    let tickets_html = if tr.is_empty() {
        empty("No cost tickets. A request no wallet can pay is answered 402 with a ticket, which appears here.")
    } else {
        format!("<table><caption>Cost tickets</caption><thead><tr><th scope=\"col\">Ticket</th><th scope=\"col\">Opened</th><th scope=\"col\">Team</th><th scope=\"col\">User</th><th scope=\"col\">Model</th><th scope=\"col\">Estimate</th><th scope=\"col\">Decision</th></tr></thead><tbody>{tr}</tbody></table>")
    };
    Ok((
        "Wallets",
        format!("<section><h2>Balances</h2>{table}{allocate}</section><section><h2>Tickets</h2>{tickets_html}</section>"),
    ))
}

/// Runs one form of the page's section as an admin API call.
pub(crate) async fn act(page: &Page, f: &HashMap<String, String>) -> Result<Done, FormError> {
    let op = f.get("op").cloned().unwrap_or_default();
    let val = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let fail = |field: &str, e: ApiError| FormError {
        op: op.clone(),
        field: field.to_owned(),
        message: e.message,
        status: e.status,
    };
    let team = encode(&page.team);
    let ruling = |r: &str| if r == "deny" { "deny" } else { "approve" };
    match (page.section.as_str(), op.as_str()) {
        ("settings/members", "create_team") => {
            let mut body = json!({"name": val("name")});
            if !val("description").is_empty() {
                body["description"] = json!(val("description"));
            }
            let t = page
                .api(Method::POST, "/v1/teams", "", Some(body))
                .await
                .map_err(|e| fail("name", e))?;
            Ok(Done::Redirect(format!(
                "Team {} created.",
                text(&t["slug"])
            )))
        }
        ("settings/members", "add_member" | "set_member") => {
            let field = if op == "add_member" {
                "email".to_owned()
            } else {
                val("email")
            };
            let op_name = if op == "add_member" {
                "add_member"
            } else {
                "member"
            };
            page.api(
                Method::POST,
                &format!("/v1/teams/{team}/members"),
                "",
                Some(json!({"email": val("email"), "role": val("role")})),
            )
            .await
            .map_err(|e| FormError {
                op: op_name.into(),
                field,
                message: e.message,
                status: e.status,
            })?;
            Ok(Done::Redirect(format!(
                "{} is now {} of {}.",
                val("email"),
                val("role"),
                page.team
            )))
        }
        ("settings/members", "remove_member") => {
            page.api(
                Method::DELETE,
                &format!("/v1/teams/{team}/members/{}", encode(&val("email"))),
                "",
                None,
            )
            .await
            .map_err(|e| FormError {
                op: "member".into(),
                field: val("email"),
                message: e.message,
                status: e.status,
            })?;
            Ok(Done::Redirect(format!(
                "{} was removed from {}.",
                val("email"),
                page.team
            )))
        }
        ("settings/members", "create_key") => {
            let mut body = json!({"team": page.team, "email": val("email")});
            if !val("label").is_empty() {
                body["label"] = json!(val("label"));
            }
            if !val("expires_in").is_empty() {
                body["expires_in"] = json!(val("expires_in"));
            }
            let k = page
                .api(Method::POST, "/v1/keys", "", Some(body))
                .await
                .map_err(|e| {
                    fail(
                        if e.message.contains("expires_in") {
                            "expires_in"
                        } else {
                            "email"
                        },
                        e,
                    )
                })?;
            Ok(Done::Show(Shown {
                secret: text(&k["key"]),
                id: text(&k["id"]),
                user: text(&k["user"]),
            }))
        }
        ("settings/members", "revoke_key") => {
            page.api(
                Method::DELETE,
                &format!("/v1/keys/{}", encode(&val("id"))),
                "",
                None,
            )
            .await
            .map_err(|e| fail(&val("id"), e))?;
            Ok(Done::Redirect(format!("Key {} revoked.", val("id"))))
        }
        ("settings/wallets", "allocate") => {
            let scope = match val("scope").as_str() {
                "user" => "user",
                "org" => "org",
                _ => "team",
            };
            let mut body =
                json!({scope: val("id"), "amount": val("amount"), "currency": val("currency")});
            if val("period") == "monthly" {
                body["period"] = json!("monthly");
            }
            if val("mode") == "top_up" {
                body["mode"] = json!("top_up");
            }
            page.api(Method::POST, "/v1/wallets/allocate", "", Some(body))
                .await
                .map_err(|e| {
                    let field = if e.message.contains("amount") {
                        "amount"
                    } else if e.message.contains("currency") {
                        "currency"
                    } else {
                        "id"
                    };
                    fail(field, e)
                })?;
            Ok(Done::Redirect(format!(
                "Allocated {} {} to {scope}:{}.",
                val("amount"),
                val("currency"),
                val("id")
            )))
        }
        ("settings/wallets", "ticket") => {
            let r = ruling(&val("ruling"));
            let body = (r == "approve" && !val("charge_to").is_empty())
                .then(|| json!({"charge_to": val("charge_to")}));
            page.api(
                Method::POST,
                &format!("/v1/tickets/{}/{r}", encode(&val("id"))),
                "",
                body,
            )
            .await
            .map_err(|e| fail(&format!("charge_to-{}", val("id")), e))?;
            Ok(Done::Redirect(format!(
                "Ticket {} {}.",
                val("id"),
                if r == "deny" { "denied" } else { "approved" }
            )))
        }
        ("escalations", "escalation") => {
            let r = ruling(&val("ruling"));
            page.api(
                Method::POST,
                &format!("/v1/escalations/{}/{r}", encode(&val("id"))),
                "",
                None,
            )
            .await
            .map_err(|e| fail(&val("id"), e))?;
            Ok(Done::Redirect(format!(
                "Escalation {} {}.",
                val("id"),
                if r == "deny" { "denied" } else { "approved" }
            )))
        }
        _ => Err(FormError {
            op,
            field: String::new(),
            message: "this page has no such form".into(),
            status: 400,
        }),
    }
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
