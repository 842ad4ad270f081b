//! The built-in detector: the one-pass [`scan`](super::scan) over every entity type,
//! plus a pack's named `detect_patterns` (regexes, linear-time by construction of the `regex`
//! crate) and its `allow_list` (exact values that are never findings).

use std::collections::HashSet;

use regex::Regex;

use super::scan::{self, Scanner};
use super::{Detector, EntityType, Finding};

/// Luhn checksum over the digits of `s`.
pub fn luhn(s: &str) -> bool {
    let d: Vec<u8> = s
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    scan::luhn_digits(&d)
}

/// A detector over a set of built-in entity types plus named custom patterns.
#[derive(Debug)]
pub struct BuiltinDetector {
    scanner: Scanner,
    custom: Vec<Regex>,
    allow_list: HashSet<String>,
}

impl BuiltinDetector {
    /// Every built-in entity type (PII, secrets and the PHI extras).
    pub fn all_types() -> Vec<EntityType> {
        let mut v: Vec<EntityType> = EntityType::PII
            .iter()
            .chain(EntityType::SECRETS)
            .copied()
            .collect();
        v.extend([
            EntityType::MedicalRecordNumber,
            EntityType::HealthPlanId,
            EntityType::AccountNumber,
            EntityType::LicenseNumber,
            EntityType::VehicleId,
            EntityType::DeviceId,
            EntityType::Npi,
            EntityType::Fax,
        ]);
        v
    }

    /// Builds a detector for `entities` (built-in types) and `custom` regexes.
    ///
    /// # Errors
    /// A custom pattern that is not a valid regex, or exceeds the size limit, is returned as
    /// `(index, message)`.
    pub fn new(
        entities: &[EntityType],
        custom: &[String],
        allow_list: &[String],
    ) -> Result<Self, (usize, String)> {
        let custom = custom
            .iter()
            .enumerate()
            .map(|(i, p)| {
                regex::RegexBuilder::new(p)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| (i, e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BuiltinDetector {
            scanner: Scanner::new(entities),
            custom,
            allow_list: allow_list.iter().cloned().collect(),
        })
    }
}

impl Detector for BuiltinDetector {
    fn unfinished(&self, text: &str) -> Option<usize> {
        self.scanner.unfinished(text)
    }

    fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        let first = out.len();
        self.scanner.scan(text, out);
        for (i, re) in self.custom.iter().enumerate() {
            for m in re.find_iter(text) {
                if !m.is_empty() {
                    out.push(Finding {
                        entity: EntityType::Custom,
                        start: m.start(),
                        end: m.end(),
                        confidence: 90,
                        custom: u16::try_from(i).ok(),
                    });
                }
            }
        }
        if !self.allow_list.is_empty() {
            let mut k = first;
            while k < out.len() {
                let allowed = out
                    .get(k)
                    .and_then(|f| text.get(f.start..f.end))
                    .is_some_and(|v| self.allow_list.contains(v));
                if allowed {
                    out.swap_remove(k);
                } else {
                    k += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::resolve_overlaps;

    fn scan(text: &str) -> Vec<(EntityType, String)> {
        let all: Vec<EntityType> = EntityType::PII
            .iter()
            .chain(EntityType::SECRETS)
            .copied()
            .chain([EntityType::MedicalRecordNumber])
            .collect();
        let d = BuiltinDetector::new(&all, &[], &[]).unwrap();
        let mut v = Vec::new();
        d.scan(text, &mut v);
        resolve_overlaps(&mut v);
        v.into_iter()
            .map(|f| (f.entity, text[f.start..f.end].to_string()))
            .collect()
    }

    #[test]
    fn finds_core_types() {
        let found = scan("Mail jane.doe@example.com, SSN 123-45-6789, card 4111 1111 1111 1111, call (415) 555-0132.");
        let types: Vec<EntityType> = found.iter().map(|f| f.0).collect();
        assert_eq!(
            types,
            vec![
                EntityType::Email,
                EntityType::UsSsn,
                EntityType::CreditCard,
                EntityType::Phone
            ]
        );
    }

    #[test]
    fn checksums_reject_lookalikes() {
        assert!(scan("card 4111 1111 1111 1112").is_empty());
        assert!(scan("ssn 000-12-3456 or 666-12-3456").is_empty());
        assert!(scan("host 999.1.1.1").is_empty());
        assert_eq!(
            scan("IBAN GB82 WEST 1234 5698 7654 32")[0].0,
            EntityType::Iban
        );
        assert!(scan("IBAN GB83 WEST 1234 5698 7654 32").is_empty());
    }

    #[test]
    fn context_types() {
        assert_eq!(
            scan("MRN: 00123456")[0],
            (EntityType::MedicalRecordNumber, "00123456".into())
        );
        assert_eq!(
            scan("Patient: John Smith")[0],
            (EntityType::Person, "John Smith".into())
        );
        assert_eq!(
            scan("key AKIAIOSFODNN7EXAMPLE")[0].0,
            EntityType::AwsAccessKey
        );
    }

    #[test]
    fn allow_list_and_custom() {
        let d = BuiltinDetector::new(
            &[EntityType::Email],
            &["EMP-\\d{6}".into()],
            &["ok@example.com".into()],
        )
        .unwrap();
        let mut v = Vec::new();
        d.scan("ok@example.com bad@example.com EMP-123456", &mut v);
        resolve_overlaps(&mut v);
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].custom, Some(0));
    }
}
