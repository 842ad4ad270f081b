//! Notifications: what the pack's `notifications:` webhooks are told, and how it is signed
//! (docs/notifications.md). Pure: the host decides when to call these and delivers the bodies.
//!
//! A notification carries ids, amounts and states, never a prompt, an answer or a detected
//! value: it is built from the refusal's error fields, an administrative command's result, or a
//! wallet's figures, none of which hold request text.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::admin::Command;
use crate::identity::Principal;
use crate::time::Millis;
use crate::wallet::{Wallet, WalletKey};

/// The event types a webhook may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A request was refused for its budget and opened a cost ticket.
    TicketCreated,
    /// A cost ticket was approved or denied.
    TicketResolved,
    /// A request was held for human review.
    EscalationCreated,
    /// An escalation was approved or denied.
    EscalationResolved,
    /// A wallet's spending reached one of `wallets.alerts` (percent of its allocation).
    BudgetThresholdReached,
    /// An API key was revoked.
    KeyRevoked,
}

impl Kind {
    /// Every type, in the order the docs list them.
    pub const ALL: [Kind; 6] = [
        Kind::TicketCreated,
        Kind::TicketResolved,
        Kind::EscalationCreated,
        Kind::EscalationResolved,
        Kind::BudgetThresholdReached,
        Kind::KeyRevoked,
    ];

    /// The type's name in the pack and in the body (`ticket.created`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::TicketCreated => "ticket.created",
            Kind::TicketResolved => "ticket.resolved",
            Kind::EscalationCreated => "escalation.created",
            Kind::EscalationResolved => "escalation.resolved",
            Kind::BudgetThresholdReached => "budget.threshold_reached",
            Kind::KeyRevoked => "key.revoked",
        }
    }
}

/// Not an event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownKind;

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(UnknownKind)
    }
}

/// Whether `url` can be a webhook: `http://` or `https://`, a host, no spaces.
///
/// # Errors
/// What is wrong with it.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.rsplit('@').next().is_none_or(str::is_empty) {
        return Err(format!("`{url}` names no host"));
    }
    if url.chars().any(char::is_whitespace) {
        return Err(format!("`{url}` holds a space"));
    }
    Ok(())
}

/// One notification, before it is addressed and signed.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Its type.
    pub kind: Kind,
    /// The team it concerns, when one.
    pub team: Option<String>,
    /// Ids, amounts and states.
    pub data: Value,
}

impl Notification {
    /// The JSON body a webhook receives: `id` (unique per delivery), `type`, `created_at` (ms
    /// since the Unix epoch), `org`, `team`, `data`.
    pub fn body(&self, id: &str, org: &str, now: Millis) -> Value {
        json!({"id": id, "type": self.kind.as_str(), "created_at": now, "org": org,
            "team": self.team, "data": self.data})
    }
}

/// The notification a refused request raises, if it opened something someone must act on: a
/// new cost ticket (`budget_exceeded` with the ticket of this very request, not a retry's) or a
/// new escalation. `estimate` is the request's reserved estimate and its currency.
pub fn of_refusal(
    request_id: &str,
    principal: &Principal,
    body: &Value,
    model: Option<&str>,
    estimate: Option<(Decimal, &str)>,
) -> Option<Notification> {
    let error = body.get("error")?;
    let code = error.get("code").and_then(Value::as_str)?;
    let (kind, field, id) = match code {
        "budget_exceeded" => (
            Kind::TicketCreated,
            "ticket_id",
            format!("tkt_{request_id}"),
        ),
        "escalation_required" => (
            Kind::EscalationCreated,
            "escalation_id",
            format!("esc_{request_id}"),
        ),
        _ => return None,
    };
    if error.get(field).and_then(Value::as_str) != Some(id.as_str()) {
        return None;
    }
    let mut data = serde_json::Map::new();
    data.insert(field.into(), json!(id));
    data.insert("user".into(), json!(principal.user));
    data.insert("model".into(), json!(model));
    if let Some((amount, currency)) = estimate {
        data.insert("estimate".into(), json!(amount.to_string()));
        data.insert("currency".into(), json!(currency));
    }
    let data = Value::Object(data);
    Some(Notification {
        kind,
        team: principal.team.clone(),
        data,
    })
}

/// The notification an administrative command raises once it succeeded with `result`: a
/// ticket or an escalation resolved, a key revoked (or rotated, which revokes the old key).
pub fn of_command(command: &Command, result: &Value, actor: Option<&str>) -> Option<Notification> {
    let s = |k: &str| result.get(k).cloned().unwrap_or(Value::Null);
    let team = result
        .get("team")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (kind, data) = match command {
        Command::ResolveTicket { .. } => (
            Kind::TicketResolved,
            json!({"ticket_id": s("id"), "status": s("status"), "user": s("user"),
                "estimate": s("estimate"), "currency": s("currency"),
                "charge_to": result.get("charge_to").and_then(|w| serde_json::from_value::<WalletKey>(w.clone()).ok()).map(|w| w.to_string()),
                "resolved_by": s("resolved_by")}),
        ),
        Command::ResolveEscalation { .. } => (
            Kind::EscalationResolved,
            json!({"escalation_id": s("id"), "status": s("status"), "user": s("user"),
                "reason": s("reason"), "resolved_by": s("resolved_by")}),
        ),
        Command::RevokeKey { id } | Command::RotateKey { id, .. } => (
            Kind::KeyRevoked,
            json!({"key_id": id, "user": s("user"), "revoked_by": actor,
                "rotated": matches!(command, Command::RotateKey { .. })}),
        ),
        _ => return None,
    };
    Some(Notification { kind, team, data })
}

/// The alerts when the pack sets none.
pub const DEFAULT_ALERTS: [u32; 2] = [80, 100];

/// Which of a wallet's alert thresholds it has reached: the highest percentage `t` of `alerts`
/// with `spent ≥ t % of allocated` (0 for none, or for a wallet with nothing allocated).
pub fn level(alerts: &[u32], w: &Wallet) -> u32 {
    if w.allocated <= Decimal::ZERO {
        return 0;
    }
    alerts
        .iter()
        .copied()
        .filter(|t| w.spent * Decimal::ONE_HUNDRED >= w.allocated * Decimal::from(*t))
        .max()
        .unwrap_or(0)
}

/// What a host has seen of the wallets, to tell each threshold once per wallet and period.
#[derive(Debug, Clone, Default)]
pub struct BudgetWatch {
    alerts: Vec<u32>,
    seen: HashMap<WalletKey, (Option<Millis>, u32)>,
}

impl BudgetWatch {
    /// A watch of `alerts` (percentages).
    pub fn new(alerts: &[u32]) -> BudgetWatch {
        BudgetWatch {
            alerts: alerts.to_vec(),
            seen: HashMap::new(),
        }
    }

    /// The thresholds `wallets` reached since the last call. The first call only records
    /// (what was reached before the host started is not told again). A threshold is told once
    /// per period; when an allocation is raised below a reached threshold, it can be told again.
    pub fn observe(&mut self, wallets: &[Wallet], first: bool) -> Vec<Notification> {
        let mut out = Vec::new();
        for w in wallets {
            let now_level = level(&self.alerts, w);
            let before = self.seen.insert(w.key.clone(), (w.period_start, now_level));
            let told = match before {
                _ if first => None,
                None => (now_level > 0).then_some(now_level),
                Some((period, _)) if period != w.period_start => {
                    (now_level > 0).then_some(now_level)
                }
                Some((_, was)) => (now_level > was).then_some(now_level),
            };
            if let Some(threshold) = told {
                out.push(Notification {
                    kind: Kind::BudgetThresholdReached,
                    team: (w.key.scope == crate::wallet::WalletScope::Team)
                        .then(|| w.key.id.to_string()),
                    data: json!({"wallet": w.key.to_string(), "threshold": threshold,
                        "spent": w.spent.to_string(), "allocated": w.allocated.to_string(),
                        "currency": w.currency.as_str(), "period_start": w.period_start}),
                });
            }
        }
        out
    }
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    let digest;
    let key = if key.len() > 64 {
        digest = Sha256::digest(key);
        digest.as_slice()
    } else {
        key
    };
    for (b, k) in block.iter_mut().zip(key) {
        *b = *k;
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The `X-Keeptrusts-Signature` header of a delivery at `timestamp` (ms): `t=<timestamp>,
/// v1=<hex of HMAC-SHA256(key, "<timestamp>.<body>")>`. A receiver recomputes it and compares
/// in constant time, and refuses old timestamps to stop replays.
pub fn signature(key: &[u8], timestamp: Millis, body: &[u8]) -> String {
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    let mut out = format!("t={timestamp},v1=");
    for b in hmac_sha256(key, &message) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Role;
    use crate::pricing::Currency;
    use crate::wallet::WalletScope;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // test cases 1, 2 and 6 (a key longer than the block)
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert!(signature(b"k", 17, b"{}").starts_with("t=17,v1="));
        assert_eq!(signature(b"k", 17, b"{}").len(), "t=17,v1=".len() + 64);
    }

    #[test]
    fn event_types_and_urls_are_checked() {
        for k in Kind::ALL {
            assert_eq!(k.as_str().parse::<Kind>(), Ok(k));
        }
        assert!("ticket.create".parse::<Kind>().is_err());
        assert!(check_url("https://hooks.example.com/kt").is_ok());
        assert!(check_url("http://127.0.0.1:9000").is_ok());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("https:///path").is_err());
        assert!(check_url("https://a b").is_err());
    }

    #[test]
    fn a_refusal_notifies_only_what_it_opened_and_never_its_text() {
        let p = Principal::new("ann@yourco.com", "support", Role::Member);
        let body = json!({"error": {"code": "budget_exceeded", "ticket_id": "tkt_req_1",
            "message": "no wallet can pay"}});
        let n = of_refusal(
            "req_1",
            &p,
            &body,
            Some("gpt-4o"),
            Some((Decimal::new(3, 1), "USD")),
        )
        .unwrap();
        assert_eq!(n.kind, Kind::TicketCreated);
        assert_eq!(n.team.as_deref(), Some("support"));
        assert_eq!(n.data["ticket_id"], "tkt_req_1");
        assert_eq!(n.data["estimate"], "0.3");
        // a retry that is refused again with its old ticket opened nothing
        assert_eq!(of_refusal("req_2", &p, &body, None, None), None);
        let esc = json!({"error": {"code": "escalation_required", "escalation_id": "esc_req_3"}});
        assert_eq!(
            of_refusal("req_3", &p, &esc, None, None).map(|n| n.kind),
            Some(Kind::EscalationCreated)
        );
        let blocked = json!({"error": {"code": "policy_blocked"}});
        assert_eq!(of_refusal("req_4", &p, &blocked, None, None), None);
        let text = n.body("ntf_1", "default", 5).to_string();
        assert!(!text.contains("no wallet can pay"), "{text}");
    }

    fn wallet(allocated: i64, spent: i64, period_start: Option<Millis>) -> Wallet {
        Wallet {
            key: WalletKey::new(WalletScope::Team, "support"),
            currency: Currency::USD,
            allocated: Decimal::from(allocated),
            spent: Decimal::from(spent),
            reserved: Decimal::ZERO,
            period: None,
            period_start,
        }
    }

    #[test]
    fn each_threshold_is_told_once_per_wallet_and_period() {
        let mut w = BudgetWatch::new(&[50, 80, 100]);
        // what was reached before the host started is not told
        assert!(w.observe(&[wallet(100, 60, None)], true).is_empty());
        assert!(w.observe(&[wallet(100, 70, None)], false).is_empty());
        let told = w.observe(&[wallet(100, 100, None)], false);
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].data["threshold"], 100);
        assert_eq!(told[0].data["wallet"], "team:support");
        assert!(w.observe(&[wallet(100, 120, None)], false).is_empty());
        // raised allocation, then spent past 80 % again: told again
        assert!(w.observe(&[wallet(1000, 120, None)], false).is_empty());
        assert_eq!(
            w.observe(&[wallet(1000, 850, None)], false)[0].data["threshold"],
            80
        );
        // a new period starts from nothing
        assert!(w.observe(&[wallet(1000, 0, Some(1))], false).is_empty());
        assert_eq!(
            w.observe(&[wallet(1000, 500, Some(1))], false)[0].data["threshold"],
            50
        );
        assert_eq!(level(&[50], &wallet(0, 5, None)), 0);
    }
}
