//! `audit-logger`: the audit settings stamped on each decision's event (retention,
//! immutability, access logging, HIPAA audit controls). It runs after every other kind.

use serde::{Deserialize, Serialize};

use super::kind::{Checks, FailMode, Kind, Policy};
use crate::decision::AuditStamp;
use crate::pack::yaml::Seg;

/// `policy.audit-logger`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditOptions {
    /// 1–36500, default 365.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_all_access: Option<bool>,
    /// Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hipaa_audit_controls: Option<bool>,
    /// `closed` (default) or `open`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_mode: Option<FailMode>,
}

/// The stamp of an `audit-logger` entry, its defaults filled in.
pub(crate) fn audit_stamp(o: Option<&AuditOptions>) -> AuditStamp {
    let (o, d) = (o.cloned().unwrap_or_default(), AuditStamp::default());
    AuditStamp {
        retention_days: o.retention_days.unwrap_or(d.retention_days),
        immutable: o.immutable.unwrap_or(d.immutable),
        log_all_access: o.log_all_access.unwrap_or(d.log_all_access),
        hipaa_audit_controls: o.hipaa_audit_controls.unwrap_or(d.hipaa_audit_controls),
    }
}

/// A compiled `audit-logger`: it evaluates nothing, it only stamps.
#[derive(Debug)]
struct AuditLogger(AuditStamp);

impl Policy for AuditLogger {
    fn audit(&self) -> Option<AuditStamp> {
        Some(self.0)
    }
}

impl Kind for AuditOptions {
    const RANK: u8 = 2;
    const WARN_SHADOWED: bool = false;

    fn fail_mode(&self) -> Option<FailMode> {
        self.fail_mode
    }

    fn overlay(self, inline: &Self) -> Self {
        overlay!(
            AuditOptions {
                retention_days,
                immutable,
                log_all_access,
                hipaa_audit_controls,
                fail_mode,
            },
            self,
            inline
        )
    }

    fn check(&self, _base: Option<&Self>, checks: &mut dyn Checks) {
        if let Some(d) = self.retention_days {
            if !(1..=36_500).contains(&d) {
                checks.error(
                    "E003",
                    &[Seg::K("retention_days")],
                    format!("retention_days must be between 1 and 36500, found {d}"),
                    None,
                );
            }
        }
    }

    fn compile(merged: Option<&Self>, _key: &[u8; 32]) -> Result<Box<dyn Policy>, String> {
        Ok(Box::new(AuditLogger(audit_stamp(merged))))
    }
}
