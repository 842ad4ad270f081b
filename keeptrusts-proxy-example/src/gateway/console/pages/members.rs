//! The members and wallets sections, with their forms.
#![allow(clippy::indexing_slicing)]

use super::*;

pub(super) async fn members(
    page: &Page,
    err: Option<&FormError>,
    shown: Option<&Shown>,
) -> Section {
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

pub(super) async fn wallets(page: &Page, err: Option<&FormError>) -> Section {
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
