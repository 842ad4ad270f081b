//! The built-in policy kinds. Each kind is one module holding its options, their checks, merge
//! and compilation ([`kind::Kind`]) and its evaluation ([`kind::Policy`]); the table below
//! registers it, and everything else (the pack's `policy:` block and chain entries, validation,
//! targeting, the engine) works from the table. `docs/architecture.md` walks through adding one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[macro_use]
mod kind;
pub(crate) mod detector;

pub use kind::FailMode;
pub(crate) use kind::{Checks, Inputs, Kind, OptionsReader, Outcome, Policy, PolicyFailure};

kinds! {
    /// Identity and role gate.
    Rbac(Rbac: RbacOptions) rbac = "rbac";
    /// PII detection and redaction.
    PiiDetector(Pii: PiiOptions) pii = "pii-detector";
    /// HIPAA Safe Harbor PHI detection.
    HipaaPhiDetector(Phi: PhiOptions) phi = "hipaa-phi-detector";
    /// Escalation to a human reviewer.
    HumanOversight(Oversight: OversightOptions) oversight = "human-oversight";
    /// Stamps audit settings on the decision's event.
    AuditLogger(Audit: AuditOptions) audit = "audit-logger";
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy kind name that is not one of the built-ins.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy kind")]
pub struct UnknownKind;

impl FromStr for PolicyKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PolicyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(UnknownKind)
    }
}
