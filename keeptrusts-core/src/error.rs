//! Errors, one enum per surface, each with a stable `code()`.
//!
//! Messages are lowercase, one line, and never echo scanned text or detected values.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::pack::yaml::Mark;

/// How serious a pack diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The pack is rejected.
    Error,
    /// The pack loads, but something in it is probably a mistake.
    Warning,
}

/// One finding of the pack validator: a code, where, and what.
///
/// Codes: `E000` YAML syntax, `E001` unknown policy kind, `E002` unknown key, `E003` bad value or
/// type, `E004` duplicate id, `E005` dangling reference, `E006` missing required key, `E007` a
/// resource limit exceeded; warnings `W001` unreachable chain entry, `W002` targeted team unknown
/// to the data, `W003` policy block for a kind not in the chain, `W004` policy that can never act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Stable code such as `E002`.
    pub code: String,
    /// Error or warning.
    pub severity: Severity,
    /// YAML path such as `policy.pii-detector.action` (empty for the document itself).
    pub path: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// One lowercase line saying what is wrong.
    pub message: String,
    /// A "did you mean" suggestion, when one is close enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl Diagnostic {
    pub(crate) fn new(
        code: &str,
        severity: Severity,
        path: &str,
        mark: Mark,
        message: String,
    ) -> Self {
        Diagnostic {
            code: code.to_owned(),
            severity,
            path: path.to_owned(),
            line: mark.line,
            column: mark.column,
            message,
            suggestion: None,
        }
    }

    pub(crate) fn with_suggestion(mut self, suggestion: Option<String>) -> Self {
        self.suggestion = suggestion;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}: {sev}[{}]", self.line, self.column, self.code)?;
        if !self.path.is_empty() {
            write!(f, " {}:", self.path)?;
        }
        write!(f, " {}", self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean `{s}`?)")?;
        }
        Ok(())
    }
}

/// A pack that failed validation. It carries every error found (and the warnings), so a linter
/// can show them all at once; nothing of the pack was loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PackError {
    /// The errors, in document order; never empty.
    pub errors: Vec<Diagnostic>,
    /// Warnings found before validation stopped.
    pub warnings: Vec<Diagnostic>,
}

impl PackError {
    /// The code of the first error, such as `E002`.
    pub fn code(&self) -> &str {
        self.errors.first().map_or("E000", |d| d.code.as_str())
    }
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.first() {
            Some(first) if self.errors.len() == 1 => write!(f, "invalid pack: {first}"),
            Some(first) => write!(
                f,
                "invalid pack: {first} (and {} more error(s))",
                self.errors.len() - 1
            ),
            None => write!(f, "invalid pack"),
        }
    }
}

/// A storage backend failed. Stores map their own failures onto these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or timed out.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A write conflicted with a concurrent one and was not applied.
    #[error("store conflict: {0}")]
    Conflict(String),
    /// Stored data could not be read back.
    #[error("store data corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "store_unavailable",
            StoreError::Conflict(_) => "store_conflict",
            StoreError::Corrupt(_) => "store_corrupt",
        }
    }
}

/// A request that cannot be evaluated at all (as opposed to one that is denied, which is a
/// [`Decision`](crate::engine::Decision)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The request body is not a chat request.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A store the evaluation needs failed; nothing was charged or recorded.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RequestError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::Invalid(_) => "invalid_request",
            RequestError::Store(e) => e.code(),
        }
    }
}

/// An administrative operation (approving an escalation, …) that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The acting principal may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The record does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The record is not in a state that allows this (already resolved, expired, …).
    #[error("conflict: {0}")]
    Conflict(String),
    /// An argument is malformed.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The store failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an action was refused (a message for the caller, naming the rule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

impl From<Denied> for AdminError {
    fn from(d: Denied) -> Self {
        AdminError::Forbidden(d.0)
    }
}

impl AdminError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Forbidden(_) => "forbidden",
            AdminError::NotFound(_) => "not_found",
            AdminError::Conflict(_) => "conflict",
            AdminError::Invalid(_) => "invalid_argument",
            AdminError::Store(e) => e.code(),
        }
    }
}
