//! Stores that do I/O, implementing the storage traits of `keeptrusts-core`: [`SqliteStore`] (the
//! embedded default) and [`PgStore`] (many gateway instances on one ledger).
//!
//! [`SqliteStore`] is the embedded default: one file, WAL journal, versioned migrations applied on
//! open, every atomic trait method one `BEGIN IMMEDIATE` transaction. Wallet operations load the
//! rows they touch into a `keeptrusts_core::wallet::Ledger`, apply the core's own rule, and write
//! the changed rows back, so SQLite decides exactly as the in-memory store does.

mod batch;
mod ledger;
mod postgres;
mod sqlite;
mod write_behind;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use write_behind::{open_write_behind, random_id, BlockingHook, WriteBehind};

use std::sync::Arc;

use keeptrusts_core::{MemoryStore, Storage, StoreError};

/// What a store URL names.
pub(crate) enum Location<'a> {
    Memory,
    Sqlite(&'a str),
    Postgres,
}

/// Reads a store URL: `memory`, `sqlite:PATH` or `postgres://…`.
pub(crate) fn locate(url: &str) -> Result<Location<'_>, StoreError> {
    if url == "memory" {
        return Ok(Location::Memory);
    }
    if let Some(path) = url.strip_prefix("sqlite:") {
        if path.is_empty() {
            return Err(StoreError::Unavailable(
                "`sqlite:` needs a file path, e.g. sqlite:keeptrusts.db".into(),
            ));
        }
        return Ok(Location::Sqlite(path));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Location::Postgres);
    }
    Err(StoreError::Unavailable(format!(
        "`{url}`: expected memory, sqlite:PATH or postgres://user@host:port/db"
    )))
}

/// Opens the store a URL names: `memory` (nothing kept after the process), `sqlite:PATH` (the
/// file is created and migrated), or `postgres://user@host:port/db` (migrated on connect).
///
/// # Errors
/// `Unavailable`, naming the URL and what is wrong: an unknown form, a file that cannot be opened,
/// a server that cannot be reached.
pub fn open(url: &str) -> Result<Arc<dyn Storage>, StoreError> {
    let fail = |e: StoreError| StoreError::Unavailable(format!("`{url}`: {e}"));
    Ok(match locate(url)? {
        Location::Memory => Arc::new(MemoryStore::new()),
        Location::Sqlite(path) => Arc::new(SqliteStore::open(path).map_err(fail)?),
        Location::Postgres => Arc::new(PgStore::connect(url).map_err(fail)?),
    })
}
