//! Stores that do I/O, implementing the storage traits of `keeptrusts-core`: [`SqliteStore`] (the
//! embedded default) and [`PgStore`] (many gateway instances on one ledger).
//!
//! [`SqliteStore`] is the embedded default: one file, WAL journal, versioned migrations applied on
//! open, every atomic trait method one `BEGIN IMMEDIATE` transaction. Wallet operations load the
//! rows they touch into a `keeptrusts_core::wallet::Ledger`, apply the core's own rule, and write
//! the changed rows back, so SQLite decides exactly as the in-memory store does.

mod batch;
mod holder;
pub mod host;
mod ledger;
mod postgres;
mod records;
mod sqlite;
mod tallies;
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

/// A store URL as it may be shown in errors and logs: a password in it (`user:PASSWORD@host`, or
/// a `password=` parameter) is replaced by `***`.
pub fn redacted_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out
            .get(rest_start..)
            .and_then(|r| r.find(['/', '?']))
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out
            .get(rest_start..authority_end)
            .and_then(|a| a.rfind('@'))
        {
            let userinfo = rest_start..rest_start + at;
            if let Some(colon) = out.get(userinfo.clone()).and_then(|u| u.find(':')) {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    // `password=...` up to the next `&` (libpq key/value parameters)
    let mut from = 0;
    while let Some(i) = out.get(from..).and_then(|r| r.find("password=")) {
        let start = from + i + "password=".len();
        let end = out
            .get(start..)
            .and_then(|r| r.find(['&', ' ']))
            .map_or(out.len(), |j| start + j);
        out.replace_range(start..end, "***");
        from = start + 3;
    }
    out
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
        "`{}`: expected memory, sqlite:PATH or postgres://user@host:port/db",
        redacted_url(url)
    )))
}

/// Opens the store a URL names: `memory` (nothing kept after the process), `sqlite:PATH` (the
/// file is created and migrated), or `postgres://user@host:port/db` (migrated on connect).
///
/// # Errors
/// `Unavailable`, naming the URL and what is wrong: an unknown form, a file that cannot be opened,
/// a server that cannot be reached.
pub fn open(url: &str) -> Result<Arc<dyn Storage>, StoreError> {
    let fail = |e: StoreError| StoreError::Unavailable(format!("`{}`: {e}", redacted_url(url)));
    Ok(match locate(url)? {
        Location::Memory => Arc::new(MemoryStore::new()),
        Location::Sqlite(path) => Arc::new(SqliteStore::open(path).map_err(fail)?),
        Location::Postgres => Arc::new(PgStore::connect(url).map_err(fail)?),
    })
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn passwords_never_reach_an_error() {
        assert_eq!(
            redacted_url("postgres://postgres:S3cretPw@db.internal:5432/kt"),
            "postgres://postgres:***@db.internal:5432/kt"
        );
        assert_eq!(
            redacted_url("postgresql://u:p%40ss@h/db?sslmode=require&password=again"),
            "postgresql://u:***@h/db?sslmode=require&password=***"
        );
        // nothing to hide: unchanged
        for url in [
            "postgres://postgres@127.0.0.1/test",
            "sqlite:kt.db",
            "memory",
        ] {
            assert_eq!(redacted_url(url), url);
        }
        // the error of a store that cannot be reached names the URL without its password
        let e = match super::open("postgres://kt:S3cretPw@127.0.0.1:1/none") {
            Err(e) => e.to_string(),
            Ok(_) => panic!("nothing listens on port 1"),
        };
        assert!(!e.contains("S3cretPw"), "{e}");
        assert!(e.contains("kt:***@127.0.0.1:1"), "{e}");
    }
}
