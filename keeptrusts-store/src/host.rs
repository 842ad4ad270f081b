//! What every host supplies the core and the core cannot make itself: the clock, randomness and
//! fresh ids, and the defaults an administrative call or a request context takes from them. The
//! gateway and both bindings use these, so they default alike.

use std::sync::Arc;

use keeptrusts_core::admin::Ctx;
use keeptrusts_core::time::Millis;
use keeptrusts_core::wallet::budget::DEFAULT_ORG;
use keeptrusts_core::{MemoryStore, Principal, Storage};

/// Milliseconds since the Unix epoch, by the host's clock.
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
        })
}

/// `now_ms` as given, else the host's clock.
pub fn now_or(now_ms: Option<Millis>) -> Millis {
    now_ms.unwrap_or_else(self::now_ms)
}

/// `N` random bytes from the operating system.
///
/// # Errors
/// The operating system has no randomness to give, in words.
pub fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness from the OS: {e}"))?;
    Ok(b)
}

/// `prefix` followed by `N` random bytes in lowercase hex (`adm_` and 8 bytes: 16 digits).
///
/// # Errors
/// As [`random`].
pub fn fresh_id<const N: usize>(prefix: &str) -> Result<String, String> {
    let mut s = String::with_capacity(prefix.len() + 2 * N);
    s.push_str(prefix);
    for x in random::<N>()? {
        for nibble in [x >> 4, x & 15] {
            s.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
        }
    }
    Ok(s)
}

/// What an administrative call takes from the host: the actor (`None`: the host itself), the
/// org whose chain records it (default: the actor's, else [`DEFAULT_ORG`]), the time (default:
/// the host's clock), an id (default: a fresh `adm_…`) and 32 random bytes for a new key's
/// secret.
#[derive(Debug, Clone)]
pub struct AdminCall {
    actor: Option<Principal>,
    org: String,
    now: Millis,
    request_id: String,
    random: [u8; 32],
}

impl AdminCall {
    /// The call's parts, defaults filled in.
    ///
    /// # Errors
    /// As [`random`].
    pub fn new(
        actor: Option<Principal>,
        now_ms: Option<Millis>,
        request_id: Option<String>,
        org: Option<String>,
    ) -> Result<Self, String> {
        let request_id = match request_id {
            Some(id) => id,
            None => fresh_id::<8>("adm_")?,
        };
        let org = org
            .or_else(|| actor.as_ref().and_then(|a| a.org.clone()))
            .unwrap_or_else(|| DEFAULT_ORG.into());
        Ok(AdminCall {
            actor,
            org,
            now: now_or(now_ms),
            request_id,
            random: random::<32>()?,
        })
    }

    /// The core's context of the call.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx::new(
            self.actor.as_ref(),
            &self.org,
            self.now,
            &self.request_id,
            self.random,
        )
    }
}

/// `approve` (true) or `deny` (false).
///
/// # Errors
/// Any other word, named.
pub fn ruling(resolution: &str) -> Result<bool, String> {
    match resolution {
        "approve" => Ok(true),
        "deny" => Ok(false),
        other => Err(format!(
            "resolution must be `approve` or `deny`, not `{other}`"
        )),
    }
}

/// A request context as JSON with its defaults filled in: `now_ms` the host's clock, and
/// `request_id` a fresh `req_…` (each request needs its own id: the reservation and the ticket
/// are named after it). A context that is not an object is left as it is.
///
/// # Errors
/// As [`random`].
pub fn request_context_defaults(
    context: Option<serde_json::Value>,
) -> Result<serde_json::Value, String> {
    let mut v = match context {
        None | Some(serde_json::Value::Null) => serde_json::json!({}),
        Some(v) => v,
    };
    if let Some(o) = v.as_object_mut() {
        o.entry("now_ms").or_insert_with(|| now_ms().into());
        if !o.contains_key("request_id") {
            o.insert("request_id".into(), fresh_id::<12>("req_")?.into());
        }
    }
    Ok(v)
}

/// The store a binding's call runs against, and whether it budgets: the caller's store
/// (budgeting unless told not to), or, without one, a fresh in-memory store that keeps this
/// call's escalations and never budgets.
pub fn call_store(
    store: Option<Arc<dyn Storage>>,
    budget: Option<bool>,
) -> (Arc<dyn Storage>, bool) {
    match store {
        Some(s) => (s, budget.unwrap_or(true)),
        None => (Arc::new(MemoryStore::new()), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let id = fresh_id::<8>("adm_").unwrap_or_default();
        assert!(id.starts_with("adm_") && id.len() == 20, "{id}");
        assert_ne!(fresh_id::<8>("adm_").unwrap_or_default(), id);
        let call = AdminCall::new(None, Some(5), None, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(call.org, DEFAULT_ORG);
        assert_eq!(call.now, 5);
        let v = request_context_defaults(Some(serde_json::json!({"request_id": "r1"})))
            .unwrap_or_default();
        assert_eq!(v["request_id"], "r1");
        assert!(v["now_ms"].as_i64().is_some_and(|t| t > 0));
        assert_eq!(ruling("deny"), Ok(false));
        assert!(ruling("maybe").is_err_and(|e| e.contains("`maybe`")));
    }
}
