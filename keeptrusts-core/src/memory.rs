//! A locked table of records keyed by id: the shared body of the in-memory stores.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::error::StoreError;
use crate::time::Millis;

/// What the in-memory tables need to know about a record.
pub(crate) trait Row: Clone {
    fn id(&self) -> &str;
    fn team(&self) -> Option<&str>;
    fn created_at(&self) -> Millis;
}

#[derive(Debug)]
pub(crate) struct Table<T> {
    what: &'static str,
    rows: Mutex<HashMap<String, T>>,
}

impl<T: Row> Table<T> {
    pub fn new(what: &'static str) -> Self {
        Table {
            what,
            rows: Mutex::new(HashMap::new()),
        }
    }

    pub fn lock(&self) -> Result<MutexGuard<'_, HashMap<String, T>>, StoreError> {
        self.rows
            .lock()
            .map_err(|_| StoreError::Unavailable(format!("{} store lock poisoned", self.what)))
    }

    /// Inserts a new record; an existing id is a conflict.
    pub fn insert(&self, row: &T) -> Result<(), StoreError> {
        let mut rows = self.lock()?;
        if rows.contains_key(row.id()) {
            return Err(StoreError::Conflict(format!(
                "{} `{}` exists",
                self.what,
                row.id()
            )));
        }
        rows.insert(row.id().to_owned(), row.clone());
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Option<T>, StoreError> {
        Ok(self.lock()?.get(id).cloned())
    }

    /// Records of one team (all when `None`), newest first, then by id.
    pub fn list(&self, team: Option<&str>) -> Result<Vec<T>, StoreError> {
        let rows = self.lock()?;
        let mut v: Vec<T> = rows
            .values()
            .filter(|r| team.is_none() || r.team() == team)
            .cloned()
            .collect();
        v.sort_by(|a, b| b.created_at().cmp(&a.created_at()).then(a.id().cmp(b.id())));
        Ok(v)
    }
}
