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

pub use postgres::PgStore;
pub use sqlite::SqliteStore;
