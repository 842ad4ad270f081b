//! The built-in policy kinds, compiled from their options.

pub(crate) mod detector;
pub mod oversight;
pub(crate) mod rbac;

use std::collections::BTreeMap;

use crate::decision::{AuditStamp, Verdict};
use crate::pack::spec::{AuditOptions, FailMode};

/// A policy's verdict plus how the gateway should report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub verdict: Verdict,
    pub status: u16,
    pub code: Option<&'static str>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub entities: BTreeMap<String, u32>,
    pub escalation_id: Option<String>,
    /// An approved escalation to consume (with this fingerprint) once the request goes through.
    pub consume: Option<String>,
}

impl Outcome {
    pub fn allow() -> Self {
        Outcome {
            verdict: Verdict::Allow,
            status: 200,
            code: None,
            reason: None,
            message: None,
            entities: BTreeMap::new(),
            escalation_id: None,
            consume: None,
        }
    }

    pub fn deny(
        verdict: Verdict,
        status: u16,
        code: &'static str,
        reason: &str,
        message: String,
    ) -> Self {
        Outcome {
            verdict,
            status,
            code: Some(code),
            reason: Some(reason.to_owned()),
            message: Some(message),
            entities: BTreeMap::new(),
            escalation_id: None,
            consume: None,
        }
    }
}

/// A policy failed to evaluate (a store error, …): failed closed or open per `fail_mode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyFailure {
    pub code: &'static str,
    pub message: String,
}

pub(crate) fn audit_stamp(o: Option<&AuditOptions>) -> AuditStamp {
    let o = o.cloned().unwrap_or_default();
    AuditStamp {
        retention_days: o.retention_days.unwrap_or(365),
        immutable: o.immutable.unwrap_or(true),
        log_all_access: o.log_all_access.unwrap_or(true),
        hipaa_audit_controls: o.hipaa_audit_controls.unwrap_or(false),
    }
}

pub(crate) fn fail_mode(m: Option<FailMode>) -> FailMode {
    m.unwrap_or(FailMode::Closed)
}
