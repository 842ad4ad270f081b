//! What each form of the console does: the admin API call it becomes.
#![allow(clippy::indexing_slicing)]

use super::*;

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
