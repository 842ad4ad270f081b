//! `pii-detector` and `hipaa-phi-detector`: scan texts, then redact or block.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Outcome;
use crate::decision::Verdict;
use crate::detect::builtin::BuiltinDetector;
use crate::detect::{resolve_overlaps, Detector, EntityType, Finding};
use crate::pack::spec::{ApplyTo, DetectAction, PhiOptions, PiiOptions, PolicyKind};
use crate::redact::Redactor;
use crate::request::Texts;

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

#[derive(Debug)]
pub(crate) struct DetectorPolicy {
    kind: PolicyKind,
    action: DetectAction,
    apply_to: ApplyTo,
    detector: Arc<dyn Detector>,
    redactor: Arc<Redactor>,
}

impl DetectorPolicy {
    pub fn pii(o: Option<&PiiOptions>, key: [u8; 32]) -> Result<Self, String> {
        let o = o.cloned().unwrap_or_default();
        let mut entities: Vec<EntityType> = match &o.entities {
            Some(list) => list.clone(),
            None => EntityType::PII
                .iter()
                .chain(EntityType::SECRETS)
                .copied()
                .collect(),
        };
        if o.pci_mode == Some(false) {
            entities.retain(|e| *e != EntityType::CreditCard);
        } else if !entities.contains(&EntityType::CreditCard) && o.entities.is_none() {
            entities.push(EntityType::CreditCard);
        }
        let patterns = o.detect_patterns.unwrap_or_default();
        let names: Vec<String> = patterns.iter().map(|p| p.name.clone()).collect();
        let regexes: Vec<String> = patterns.into_iter().map(|p| p.pattern).collect();
        let detector =
            BuiltinDetector::new(&entities, &regexes, o.allow_list.as_deref().unwrap_or(&[]))
                .map_err(|(i, e)| format!("detect_patterns[{i}]: {e}"))?;
        Ok(DetectorPolicy {
            kind: PolicyKind::PiiDetector,
            action: o.action.unwrap_or(DetectAction::Redact),
            apply_to: o.apply_to.unwrap_or(ApplyTo::Both),
            detector: Arc::new(detector),
            redactor: Arc::new(Redactor::new(o.redaction.as_ref(), names, key)),
        })
    }

    pub fn phi(o: Option<&PhiOptions>, key: [u8; 32]) -> Result<Self, String> {
        let o = o.cloned().unwrap_or_default();
        let detector = BuiltinDetector::new(HIPAA_18, &[], o.allow_list.as_deref().unwrap_or(&[]))
            .map_err(|(_, e)| e)?;
        Ok(DetectorPolicy {
            kind: PolicyKind::HipaaPhiDetector,
            action: o.action.unwrap_or(DetectAction::Redact),
            apply_to: o.apply_to.unwrap_or(ApplyTo::Both),
            detector: Arc::new(detector),
            redactor: Arc::new(Redactor::new(o.redaction.as_ref(), Vec::new(), key)),
        })
    }

    /// The parts a streaming filter needs: kind, whether it blocks, detector, redactor (shared,
    /// so a filter can outlive the borrow of the engine: a binding's object owns it).
    pub fn stream_parts(&self) -> (PolicyKind, bool, Arc<dyn Detector>, Arc<Redactor>) {
        (
            self.kind,
            self.action == DetectAction::Block,
            Arc::clone(&self.detector),
            Arc::clone(&self.redactor),
        )
    }

    pub fn applies(&self, input: bool) -> bool {
        if input {
            self.apply_to.input()
        } else {
            self.apply_to.output()
        }
    }

    /// Scans every text of `target`; redacts in place (returning whether anything changed) or
    /// reports a block. `target` is only borrowed mutably when a redaction is needed.
    pub fn run<T: Texts + Clone>(&self, target: &mut std::borrow::Cow<'_, T>) -> Outcome {
        let mut per_text: Vec<(usize, Vec<Finding>)> = Vec::new();
        let mut entities: BTreeMap<String, u32> = BTreeMap::new();
        for (i, (_, text)) in target.texts().into_iter().enumerate() {
            let mut found = Vec::new();
            self.detector.scan(text, &mut found);
            if found.is_empty() {
                continue;
            }
            resolve_overlaps(&mut found);
            for f in &found {
                *entities.entry(f.entity.as_str().to_owned()).or_default() += 1;
            }
            per_text.push((i, found));
        }
        if per_text.is_empty() {
            return Outcome::allow();
        }
        let reason = match self.kind {
            PolicyKind::HipaaPhiDetector => "phi_detected",
            _ => "pii_detected",
        };
        let mut out = match self.action {
            DetectAction::Block => Outcome::deny(
                Verdict::Block,
                409,
                "policy_blocked",
                reason,
                format!("{} found sensitive data and blocks it", self.kind),
            ),
            DetectAction::Redact => {
                let mut texts = target.to_mut().texts_mut();
                for (i, found) in &per_text {
                    if let Some(t) = texts.get_mut(*i) {
                        let redacted = self.redactor.redact(t, found);
                        **t = redacted;
                    }
                }
                let mut o = Outcome::allow();
                o.verdict = Verdict::Redact;
                o.reason = Some(reason.to_owned());
                o
            }
        };
        out.entities = entities;
        out
    }
}
