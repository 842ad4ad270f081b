//! The initial built-in recognizers: anchored regexes followed by validators (Luhn, SSN rules,
//! mod-97, octet ranges) and context words for ambiguous shapes.
//!
//! Every regex here comes from the `regex` crate, so each scan is linear in the input; a value
//! that fails its checksum is not a finding.

use std::collections::HashSet;

use regex::Regex;

use super::{Detector, EntityType, Finding};

struct Recognizer {
    entity: EntityType,
    regex: Regex,
    /// Capture group holding the value (0 = whole match).
    group: usize,
    validate: fn(&str) -> bool,
    confidence: u8,
}

fn always(_: &str) -> bool {
    true
}

fn digits(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

/// Luhn checksum over the digits of `s`.
pub fn luhn(s: &str) -> bool {
    let d = digits(s);
    if d.len() < 2 {
        return false;
    }
    let mut sum = 0u32;
    for (i, &x) in d.iter().rev().enumerate() {
        let mut v = u32::from(x);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn card(s: &str) -> bool {
    let d = digits(s);
    if !(13..=19).contains(&d.len()) || !luhn(s) {
        return false;
    }
    let prefix = |n: usize| -> u32 { d.iter().take(n).fold(0u32, |a, &x| a * 10 + u32::from(x)) };
    let p2 = prefix(2);
    let p4 = prefix(4);
    d.first() == Some(&4)
        || (51..=55).contains(&p2)
        || (2221..=2720).contains(&p4)
        || p2 == 34
        || p2 == 37
        || p4 == 6011
        || p2 == 65
        || p2 == 35
        || p2 == 36
        || p2 == 38
        || p2 == 30
        || p2 == 62
}

fn ssn(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 9 {
        return false;
    }
    let area = d.iter().take(3).fold(0u32, |a, &x| a * 10 + u32::from(x));
    let group = d
        .iter()
        .skip(3)
        .take(2)
        .fold(0u32, |a, &x| a * 10 + u32::from(x));
    let serial = d.iter().skip(5).fold(0u32, |a, &x| a * 10 + u32::from(x));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && (p.len() == 1 || !p.starts_with('0'))
                && p.parse::<u16>().is_ok_and(|v| v <= 255)
        })
}

fn iban(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem = 0u32;
    for &b in tail.iter().chain(head) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn nanp(s: &str) -> bool {
    let d = digits(s);
    let d: &[u8] = if d.len() == 11 && d.first() == Some(&1) {
        d.get(1..).unwrap_or(&[])
    } else {
        &d
    };
    d.len() == 10 && d.first().is_some_and(|&x| x >= 2) && d.get(3).is_some_and(|&x| x >= 2)
}

const SPECS: &[(EntityType, &str, usize, u8)] = &[
    (
        EntityType::Email,
        r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}\b",
        0,
        95,
    ),
    (EntityType::UsSsn, r"\b\d{3}[- ]\d{2}[- ]\d{4}\b", 0, 85),
    (
        EntityType::UsSsn,
        r"(?i)\b(?:ssn|social security(?: number| no\.?)?)\s*[:#]?\s*(\d{9})\b",
        1,
        90,
    ),
    (EntityType::CreditCard, r"\b\d(?:[ \-]?\d){12,18}\b", 0, 90),
    (
        EntityType::Phone,
        r"(?:\+1[ .\-]?)?(?:\(\d{3}\)|\b\d{3})[ .\-]?\d{3}[ .\-]\d{4}\b",
        0,
        75,
    ),
    (EntityType::Phone, r"\+[2-9]\d(?:[ .\-]?\d){7,12}\b", 0, 70),
    (
        EntityType::IpAddress,
        r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b",
        0,
        80,
    ),
    (
        EntityType::Iban,
        r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
        0,
        90,
    ),
    (
        EntityType::Url,
        r#"\bhttps?://[^\s<>"']+[^\s<>"'.,;:!?)]"#,
        0,
        90,
    ),
    (
        EntityType::DateOfBirth,
        r"(?i)\b(?:dob|d\.o\.b\.|date of birth|born on)\s*[:#]?\s*(\d{1,2}[/\-.]\d{1,2}[/\-.]\d{2,4}|\d{4}-\d{2}-\d{2})\b",
        1,
        90,
    ),
    (
        EntityType::MedicalRecordNumber,
        r"(?i)\b(?:mrn|medical record(?: number| no\.?| #)?)\s*[:#]?\s*([A-Z0-9][A-Z0-9\-]{4,14})\b",
        1,
        90,
    ),
    (
        EntityType::AwsAccessKey,
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        0,
        99,
    ),
    (
        EntityType::GithubToken,
        r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b",
        0,
        99,
    ),
    (
        EntityType::GitlabToken,
        r"\bglpat-[A-Za-z0-9_\-]{20,}",
        0,
        99,
    ),
    (
        EntityType::SlackToken,
        r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",
        0,
        99,
    ),
    (
        EntityType::ApiKey,
        r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}",
        0,
        95,
    ),
    (
        EntityType::PrivateKey,
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]{1,8192}?-----END [A-Z ]*PRIVATE KEY-----",
        0,
        99,
    ),
    (
        EntityType::Jwt,
        r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}",
        0,
        95,
    ),
    (
        EntityType::Person,
        r"(?:\b(?:Patient|Dear|Mr\.|Mrs\.|Ms\.|Dr\.|Name)\s*:?\s+)(\p{Lu}\p{Ll}+(?:\s\p{Lu}\p{Ll}+){0,2})",
        1,
        70,
    ),
];

fn validator(entity: EntityType, pattern_index: usize) -> fn(&str) -> bool {
    match entity {
        EntityType::UsSsn => ssn,
        EntityType::CreditCard => card,
        EntityType::IpAddress => ipv4,
        EntityType::Iban => iban,
        EntityType::Phone if pattern_index == 4 => nanp,
        _ => always,
    }
}

/// A detector over a set of built-in entity types plus named custom patterns.
#[derive(Debug)]
pub struct BuiltinDetector {
    recognizers: Vec<RecognizerDebug>,
    custom: Vec<Regex>,
    allow_list: HashSet<String>,
}

/// Wrapper so the detector can derive `Debug` without printing regex internals.
struct RecognizerDebug(Recognizer);

impl std::fmt::Debug for RecognizerDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.entity)
    }
}

impl BuiltinDetector {
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
        let mut recognizers = Vec::new();
        for (i, (entity, pattern, group, confidence)) in SPECS.iter().enumerate() {
            if !entities.contains(entity) {
                continue;
            }
            let regex = Regex::new(pattern).map_err(|e| (usize::MAX, e.to_string()))?;
            recognizers.push(RecognizerDebug(Recognizer {
                entity: *entity,
                regex,
                group: *group,
                validate: validator(*entity, i),
                confidence: *confidence,
            }));
        }
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
            recognizers,
            custom,
            allow_list: allow_list.iter().cloned().collect(),
        })
    }

    fn allowed(&self, value: &str) -> bool {
        !self.allow_list.is_empty() && self.allow_list.contains(value)
    }
}

impl Detector for BuiltinDetector {
    fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        for RecognizerDebug(r) in &self.recognizers {
            for caps in r.regex.captures_iter(text) {
                let Some(m) = caps.get(r.group) else { continue };
                let value = m.as_str();
                if (r.validate)(value) && !self.allowed(value) {
                    out.push(Finding {
                        entity: r.entity,
                        start: m.start(),
                        end: m.end(),
                        confidence: r.confidence,
                        custom: None,
                    });
                }
            }
        }
        for (i, re) in self.custom.iter().enumerate() {
            for m in re.find_iter(text) {
                if !m.is_empty() && !self.allowed(m.as_str()) {
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
