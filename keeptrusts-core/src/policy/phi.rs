//! `hipaa-phi-detector`: the HIPAA Safe Harbor identifiers, redacted or blocked.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::detector::{ApplyTo, DetectAction, DetectorPolicy};
use super::kind::{FailMode, Kind, Policy};
use crate::detect::builtin::BuiltinDetector;
use crate::detect::EntityType;
use crate::redact::{RedactionOptions, Redactor};

/// The HIPAA Safe Harbor identifiers the PHI detector covers with recognizers (the mapping of
/// each of the 18 identifiers is in docs/detection.md).
pub(crate) const HIPAA_18: &[EntityType] = &[
    EntityType::Person,
    EntityType::Address,
    EntityType::ZipCode,
    EntityType::Date,
    EntityType::DateOfBirth,
    EntityType::Phone,
    EntityType::Fax,
    EntityType::Email,
    EntityType::UsSsn,
    EntityType::MedicalRecordNumber,
    EntityType::HealthPlanId,
    EntityType::AccountNumber,
    EntityType::BankAccount,
    EntityType::CreditCard,
    EntityType::LicenseNumber,
    EntityType::UsDriverLicense,
    EntityType::UsPassport,
    EntityType::UsItin,
    EntityType::VehicleId,
    EntityType::DeviceId,
    EntityType::Url,
    EntityType::IpAddress,
    EntityType::Npi,
];

/// PHI detection mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhiMode {
    /// The 18 Safe Harbor identifiers of 45 CFR 164.514(b)(2).
    #[serde(rename = "hipaa_18")]
    Hipaa18,
}

/// `policy.hipaa-phi-detector`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhiOptions {
    /// Only `hipaa_18` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<PhiMode>,
    /// `redact` (default) or `block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<DetectAction>,
    /// `input`, `output` or `both` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_to: Option<ApplyTo>,
    /// Values never flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_list: Option<Vec<String>>,
    /// Marker options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<RedactionOptions>,
    /// `closed` (default) or `open`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_mode: Option<FailMode>,
}

impl Kind for PhiOptions {
    fn fail_mode(&self) -> Option<FailMode> {
        self.fail_mode
    }

    fn overlay(self, inline: &Self) -> Self {
        overlay!(
            PhiOptions {
                mode,
                action,
                apply_to,
                allow_list,
                redaction,
                fail_mode,
            },
            self,
            inline
        )
    }

    fn compile(merged: Option<&Self>, key: &[u8; 32]) -> Result<Box<dyn Policy>, String> {
        let o = merged.cloned().unwrap_or_default();
        let detector = BuiltinDetector::new(HIPAA_18, &[], o.allow_list.as_deref().unwrap_or(&[]))
            .map_err(|(_, e)| e)?;
        Ok(Box::new(DetectorPolicy::new(
            "hipaa-phi-detector",
            "phi_detected",
            o.action,
            o.apply_to,
            Arc::new(detector),
            Redactor::new(o.redaction.as_ref(), Vec::new(), *key),
        )))
    }
}
