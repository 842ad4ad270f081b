//! Console sessions (`docs/console.md`): kept in the gateway's memory, one per sign-in.
//!
//! A session holds the SHA-256 of the key it was opened with (never the secret), its CSRF
//! token, and its times. The cookie carries only the session id (32 random bytes, hex); the
//! table is keyed by the id's SHA-256, so the table alone does not let anyone replay a cookie.
//! A session ends after [`idle`] without a request, after [`lifetime`] in any case, at sign-out,
//! or at the first request after its key stopped authenticating (the caller checks the key
//! against the store on every request). Sessions do not survive a restart of the gateway, and
//! each gateway of several sharing a store has its own: sign in again after a restart or behind
//! a load balancer without sticky sessions.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use keeptrusts_core::time::Millis;
use sha2::{Digest, Sha256};

use crate::backend;

/// The session cookie.
pub const COOKIE: &str = "kt_session";
/// The cookie of the sign-in forms' CSRF token, before there is a session (double submit).
pub const PRE_COOKIE: &str = "kt_presign";

/// Most sessions held at once; beyond, the oldest are dropped.
const MAX_SESSIONS: usize = 10_000;

/// One session.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the key, hex (as the store keeps it).
    pub key_hash: String,
    /// The token every form of the session must send back.
    pub csrf: String,
    /// When it was opened.
    pub created: Millis,
    /// Its last request.
    pub seen: Millis,
    /// A message for the next page (one-shot).
    pub flash: Option<String>,
    /// The key a sign-in link made for this session: revoked at sign-out.
    pub link_key: Option<String>,
}

fn table() -> &'static Mutex<HashMap<String, Session>> {
    static T: OnceLock<Mutex<HashMap<String, Session>>> = OnceLock::new();
    T.get_or_init(|| Mutex::new(HashMap::new()))
}

fn duration_env(name: &str, default: Millis) -> Millis {
    std::env::var(name)
        .ok()
        .and_then(|v| backend::parse_duration(&v).ok())
        .unwrap_or(default)
}

/// How long a session lives without a request: `KT_CONSOLE_IDLE` (`30m` by default).
pub fn idle() -> Millis {
    duration_env("KT_CONSOLE_IDLE", 30 * 60_000)
}

/// How long a session lives at most: `KT_CONSOLE_LIFETIME` (`12h` by default).
pub fn lifetime() -> Millis {
    duration_env("KT_CONSOLE_LIFETIME", 12 * 3_600_000)
}

/// 32 random bytes as hex.
///
/// # Errors
/// The OS gave no randomness.
pub fn token() -> Result<String, String> {
    Ok(hex(&backend::random32()?))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn slot(id: &str) -> String {
    hex(&Sha256::digest(id.as_bytes()))
}

/// Opens a session for a key; its id (for the cookie) and CSRF token.
///
/// # Errors
/// The OS gave no randomness.
pub fn open(
    key_hash: &str,
    link_key: Option<String>,
    now: Millis,
) -> Result<(String, String), String> {
    let id = token()?;
    let csrf = token()?;
    let s = Session {
        key_hash: key_hash.to_owned(),
        csrf: csrf.clone(),
        created: now,
        seen: now,
        flash: None,
        link_key,
    };
    let mut t = table()
        .lock()
        .map_err(|_| "the session table is poisoned")?;
    if t.len() >= MAX_SESSIONS {
        let (idle, life) = (idle(), lifetime());
        t.retain(|_, s| live(s, now, idle, life));
        while t.len() >= MAX_SESSIONS {
            let Some(oldest) = t.iter().min_by_key(|(_, s)| s.seen).map(|(k, _)| k.clone()) else {
                break;
            };
            t.remove(&oldest);
        }
    }
    t.insert(slot(&id), s);
    Ok((id, csrf))
}

fn live(s: &Session, now: Millis, idle: Millis, life: Millis) -> bool {
    now.saturating_sub(s.seen) < idle && now.saturating_sub(s.created) < life
}

/// The live session of a cookie's id, marked as seen now; an expired one is removed.
pub fn touch(id: &str, now: Millis) -> Option<Session> {
    let mut t = table().lock().ok()?;
    let key = slot(id);
    let s = t.get_mut(&key)?;
    if !live(s, now, idle(), lifetime()) {
        t.remove(&key);
        return None;
    }
    s.seen = now;
    let out = s.clone();
    s.flash = None;
    Some(out)
}

/// Ends a session; what it was.
pub fn close(id: &str) -> Option<Session> {
    table().lock().ok()?.remove(&slot(id))
}

/// Leaves a message for the session's next page.
pub fn flash(id: &str, message: &str) {
    if let Ok(mut t) = table().lock() {
        if let Some(s) = t.get_mut(&slot(id)) {
            s.flash = Some(message.to_owned());
        }
    }
}

/// Whether two tokens are equal, in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A cookie's value in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path `/console`, Secure when `secure`;
/// `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> String {
    let mut c = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_when_idle_and_at_close() {
        let (id, csrf) = open("h", None, 1_000).unwrap();
        assert_eq!(touch(&id, 2_000).unwrap().csrf, csrf);
        assert!(touch("not-a-session", 2_000).is_none());
        assert!(touch(&id, 2_000 + idle()).is_none(), "idle too long");
        let (id, _) = open("h", None, 1_000).unwrap();
        assert!(close(&id).is_some());
        assert!(touch(&id, 1_001).is_none());
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("", ""));
        assert!(!same("abc", "abcd"));
        assert_eq!(cookie("a=1; kt_session=xyz; b=2", COOKIE), Some("xyz"));
    }
}
