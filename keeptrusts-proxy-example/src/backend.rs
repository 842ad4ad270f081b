//! The store behind the gateway and the CLI: `--store sqlite:PATH` or `--store postgres://…`.

use std::sync::Arc;

use keeptrusts_core::directory::Directory;
use keeptrusts_core::event::Journal;
use keeptrusts_core::{EscalationStore, TicketStore};
use keeptrusts_store::{PgStore, SqliteStore};

/// Everything the gateway keeps: teams and keys, wallets, tickets, escalations, events.
pub trait Backend: Directory + Journal + TicketStore + EscalationStore + Send + Sync {}

impl<T: Directory + Journal + TicketStore + EscalationStore + Send + Sync> Backend for T {}

/// Default for `--store`.
pub const DEFAULT_STORE: &str = "sqlite:keeptrusts.db";

/// Opens the store a `--store` value names.
///
/// # Errors
/// A message naming the value and what is wrong with it.
pub fn open(spec: &str) -> Result<Arc<dyn Backend>, String> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        if path.is_empty() {
            return Err("--store sqlite: needs a file path, e.g. sqlite:keeptrusts.db".into());
        }
        return SqliteStore::open(path)
            .map(|s| Arc::new(s) as Arc<dyn Backend>)
            .map_err(|e| format!("--store {spec}: {e}"));
    }
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        return PgStore::connect(spec)
            .map(|s| Arc::new(s) as Arc<dyn Backend>)
            .map_err(|e| format!("--store {spec}: {e}"));
    }
    Err(format!(
        "--store `{spec}`: expected sqlite:PATH or postgres://user@host:port/db"
    ))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// 32 random bytes from the operating system.
///
/// # Errors
/// The OS refused.
pub fn random32() -> Result<[u8; 32], String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness from the OS: {e}"))?;
    Ok(b)
}
