//! Which wallet: [`WalletKey`], a scope and the id of a user, team or org.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::AdminError;
use crate::pack::spec::WalletScope;

/// Which wallet: a scope and the id of the user, team or org.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WalletKey {
    /// `user`, `team` or `org`.
    pub scope: WalletScope,
    /// User id, team slug or org id.
    pub id: Arc<str>,
}

impl WalletKey {
    /// A key.
    pub fn new(scope: WalletScope, id: &str) -> Self {
        WalletKey {
            scope,
            id: Arc::from(id),
        }
    }
}

impl fmt::Display for WalletKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self.scope {
            WalletScope::User => "user",
            WalletScope::Team => "team",
            WalletScope::Org => "org",
        };
        write!(f, "{s}:{}", self.id)
    }
}

impl std::str::FromStr for WalletKey {
    type Err = AdminError;

    /// Parses `team:ID`, `user:EMAIL` or `org:ID`.
    fn from_str(s: &str) -> Result<Self, AdminError> {
        let (scope, id) = s.split_once(':').ok_or_else(|| {
            AdminError::Invalid(format!("`{s}`: expected team:ID, user:EMAIL or org:ID"))
        })?;
        let scope = match scope {
            "team" => WalletScope::Team,
            "user" => WalletScope::User,
            "org" => WalletScope::Org,
            _ => {
                return Err(AdminError::Invalid(format!(
                    "`{scope}` is not a wallet scope (team, user, org)"
                )))
            }
        };
        if id.is_empty() {
            return Err(AdminError::Invalid(format!(
                "`{s}`: the wallet id is empty"
            )));
        }
        Ok(WalletKey::new(scope, id))
    }
}
