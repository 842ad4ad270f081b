//! The store behind the gateway and the CLI: `--store sqlite:PATH` or `--store postgres://…`.

use std::sync::Arc;

use keeptrusts_core::{Storage, StoreError};

/// Default for `--store`.
pub const DEFAULT_STORE: &str = "sqlite:keeptrusts.db";

/// Opens the store a `--store` value names (see [`keeptrusts_store::open`]).
///
/// # Errors
/// A message naming the value and what is wrong with it.
pub fn open(spec: &str) -> Result<Arc<dyn Storage>, String> {
    keeptrusts_store::open(spec).map_err(|e| format!("--store {e}"))
}

/// Opens the store with the gateway's write-behind ledger in front of it (see
/// [`keeptrusts_store::WriteBehind`]).
///
/// # Errors
/// As [`open`].
pub fn open_gateway(
    spec: &str,
) -> Result<(Arc<dyn Storage>, Arc<keeptrusts_store::WriteBehind>), String> {
    keeptrusts_store::open_write_behind(spec, Arc::new(block)).map_err(|e| format!("--store {e}"))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    keeptrusts_store::host::now_ms()
}

/// `30d`, `12h`, `90m`, `3600s` in milliseconds.
///
/// # Errors
/// A message naming what was expected.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("`{s}`: expected a number and a unit, like 30d, 12h, 90m or 3600s");
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| bad())?;
    let ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1_000,
        _ => return Err(bad()),
    };
    if n <= 0 {
        return Err(format!("`{s}`: the duration must be positive"));
    }
    n.checked_mul(ms).ok_or_else(bad)
}

/// 32 random bytes from the operating system.
///
/// # Errors
/// The OS refused.
pub fn random32() -> Result<[u8; 32], String> {
    keeptrusts_store::host::random::<32>()
}

/// Runs a blocking store call from an async worker: the worker hands its other tasks on first
/// (`block_in_place`), so one request waiting for the store does not stall the rest. The
/// gateway's runtime is multi-threaded; outside a runtime the call just runs.
pub fn block(f: &mut dyn FnMut()) {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f);
        }
        _ => f(),
    }
}

fn blocking<T>(f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    let mut f = Some(f);
    let mut out = None;
    block(&mut || out = f.take().map(|f| f()));
    out.unwrap_or_else(|| {
        Err(StoreError::Unavailable(
            "the blocking section did not run".into(),
        ))
    })
}

/// The escalation and ticket stores for an evaluation that runs on an async worker: each call
/// goes through [`block`]. (Reservations go through the write-behind ledger instead.)
pub struct Inline(pub Arc<dyn Storage>);

keeptrusts_core::forward_escalations!(Inline, |s| s.0.as_ref(), blocking);

keeptrusts_core::forward_tickets!(Inline, |s| s.0.as_ref(), blocking);

/// The store's rate-limit counters for an evaluation on an async worker (the gateway on
/// PostgreSQL): each call goes through [`block`].
pub struct InlineRate(pub Arc<dyn Storage>);

keeptrusts_core::forward_rate_counters!(InlineRate, |s| s.0.as_ref(), blocking);
