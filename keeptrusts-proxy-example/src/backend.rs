//! The store behind the gateway and the CLI: `--store sqlite:PATH` or `--store postgres://…`.

use std::sync::Arc;

pub use keeptrusts_core::Storage as Backend;

/// Default for `--store`.
pub const DEFAULT_STORE: &str = "sqlite:keeptrusts.db";

/// Opens the store a `--store` value names (see [`keeptrusts_store::open`]).
///
/// # Errors
/// A message naming the value and what is wrong with it.
pub fn open(spec: &str) -> Result<Arc<dyn Backend>, String> {
    keeptrusts_store::open(spec).map_err(|e| format!("--store {e}"))
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
