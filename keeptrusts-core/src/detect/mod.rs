//! Detectors: find sensitive values in text and report them as typed byte spans.
//!
//! Every finding is `{entity, start, end, confidence}` with byte offsets on UTF-8 boundaries.
//! Overlapping findings resolve to the longest, then the most confident one.
//!
//! This module holds the detector interface the `pii-detector` and `hipaa-phi-detector`
//! policies plug into, and the initial built-in recognizers (see [`builtin`]).

pub mod builtin;
mod scan;
mod words;

#[cfg(test)]
mod cases;
#[cfg(test)]
mod cases_rounds;
#[cfg(test)]
mod cases_values;

pub use scan::{iban_ok, luhn_digits, LONGEST_VALUE, LOOK_BACK};

use std::fmt;

use serde::{Deserialize, Serialize};

/// Entity types (`docs/detection.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum EntityType {
    Email,
    Phone,
    UsSsn,
    CreditCard,
    Iban,
    IpAddress,
    Url,
    Person,
    Address,
    DateOfBirth,
    Date,
    UsDriverLicense,
    UsPassport,
    UsItin,
    BankAccount,
    RoutingNumber,
    ZipCode,
    MedicalRecordNumber,
    HealthPlanId,
    AccountNumber,
    LicenseNumber,
    VehicleId,
    DeviceId,
    Npi,
    Fax,
    AwsAccessKey,
    GithubToken,
    GitlabToken,
    SlackToken,
    ApiKey,
    PrivateKey,
    Jwt,
    /// A match of a pack's named `detect_patterns` entry.
    Custom,
}

impl EntityType {
    /// The spelling packs and events use, such as `US_SSN`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Email => "EMAIL",
            EntityType::Phone => "PHONE",
            EntityType::UsSsn => "US_SSN",
            EntityType::CreditCard => "CREDIT_CARD",
            EntityType::Iban => "IBAN",
            EntityType::IpAddress => "IP_ADDRESS",
            EntityType::Url => "URL",
            EntityType::Person => "PERSON",
            EntityType::Address => "ADDRESS",
            EntityType::DateOfBirth => "DATE_OF_BIRTH",
            EntityType::Date => "DATE",
            EntityType::UsDriverLicense => "US_DRIVER_LICENSE",
            EntityType::UsPassport => "US_PASSPORT",
            EntityType::UsItin => "US_ITIN",
            EntityType::BankAccount => "BANK_ACCOUNT",
            EntityType::RoutingNumber => "ROUTING_NUMBER",
            EntityType::ZipCode => "ZIP_CODE",
            EntityType::MedicalRecordNumber => "MEDICAL_RECORD_NUMBER",
            EntityType::HealthPlanId => "HEALTH_PLAN_ID",
            EntityType::AccountNumber => "ACCOUNT_NUMBER",
            EntityType::LicenseNumber => "LICENSE_NUMBER",
            EntityType::VehicleId => "VEHICLE_ID",
            EntityType::DeviceId => "DEVICE_ID",
            EntityType::Npi => "NPI",
            EntityType::Fax => "FAX",
            EntityType::AwsAccessKey => "AWS_ACCESS_KEY",
            EntityType::GithubToken => "GITHUB_TOKEN",
            EntityType::GitlabToken => "GITLAB_TOKEN",
            EntityType::SlackToken => "SLACK_TOKEN",
            EntityType::ApiKey => "API_KEY",
            EntityType::PrivateKey => "PRIVATE_KEY",
            EntityType::Jwt => "JWT",
            EntityType::Custom => "CUSTOM",
        }
    }

    /// The personal-data types a `pii-detector` scans for by default.
    pub const PII: &'static [EntityType] = &[
        EntityType::Email,
        EntityType::Phone,
        EntityType::UsSsn,
        EntityType::CreditCard,
        EntityType::Iban,
        EntityType::IpAddress,
        EntityType::Url,
        EntityType::Person,
        EntityType::Address,
        EntityType::DateOfBirth,
        EntityType::Date,
        EntityType::UsDriverLicense,
        EntityType::UsPassport,
        EntityType::UsItin,
        EntityType::BankAccount,
        EntityType::RoutingNumber,
        EntityType::ZipCode,
    ];

    /// Secrets, scanned by `pii-detector` as well (DLP).
    pub const SECRETS: &'static [EntityType] = &[
        EntityType::AwsAccessKey,
        EntityType::GithubToken,
        EntityType::GitlabToken,
        EntityType::SlackToken,
        EntityType::ApiKey,
        EntityType::PrivateKey,
        EntityType::Jwt,
    ];
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One detected value: where it is and what it is. Never holds the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Entity type.
    pub entity: EntityType,
    /// Byte offset of the first byte (on a char boundary).
    pub start: usize,
    /// Byte offset one past the last byte (on a char boundary).
    pub end: usize,
    /// 0–100.
    pub confidence: u8,
    /// For [`EntityType::Custom`]: index of the pattern in the detector's custom list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<u16>,
}

impl Finding {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// Whether the span is empty.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Something that finds sensitive values in text. Implementations must be linear-time, must not
/// panic on any input, and must report spans on UTF-8 boundaries.
pub trait Detector: Send + Sync + fmt::Debug {
    /// Appends findings for `text` to `out` (in any order, overlaps allowed).
    fn scan(&self, text: &str, out: &mut Vec<Finding>);

    /// Where a value starts that may still be growing at the end of `text` but that
    /// [`scan`](Self::scan) does not report yet (or not whole), if the detector knows of one:
    /// a stream ([`StreamRedactor`](crate::redact::StreamRedactor)) releases no text from there.
    /// Values that `scan` reports as far as they go once 512 bytes past their start are seen
    /// need no such hint. The default knows of none.
    fn unfinished(&self, text: &str) -> Option<usize> {
        let _ = text;
        None
    }
}

/// Sorts findings and resolves overlaps: of overlapping findings the longest wins, then the most
/// confident, then the earliest. Linear when nothing overlaps (the usual case: the scanner emits
/// findings in order); each cluster of overlapping findings is resolved on its own, O(k log k).
pub fn resolve_overlaps(findings: &mut Vec<Finding>) {
    findings.retain(|f| !f.is_empty());
    if !findings.is_sorted_by_key(|f| f.start) {
        findings.sort_by_key(|f| f.start);
    }
    if findings
        .windows(2)
        .all(|w| matches!(w, [a, b] if a.end <= b.start))
    {
        return;
    }
    let all = std::mem::take(findings);
    let mut cluster: Vec<Finding> = Vec::new();
    let mut reach = 0;
    for f in all {
        if !cluster.is_empty() && f.start >= reach {
            resolve_cluster(&mut cluster, findings);
        }
        reach = reach.max(f.end);
        cluster.push(f);
    }
    resolve_cluster(&mut cluster, findings);
}

/// Resolves one cluster of transitively overlapping findings into `out` (in start order).
fn resolve_cluster(cluster: &mut Vec<Finding>, out: &mut Vec<Finding>) {
    if cluster.len() == 1 {
        out.append(cluster);
        return;
    }
    cluster.sort_by(|a, b| {
        b.len()
            .cmp(&a.len())
            .then(b.confidence.cmp(&a.confidence))
            .then(a.start.cmp(&b.start))
    });
    // kept spans by start; they never overlap, so only the last one starting before `f.end`
    // can overlap `f`
    let mut kept: std::collections::BTreeMap<usize, Finding> = std::collections::BTreeMap::new();
    for f in cluster.drain(..) {
        let clash = kept
            .range(..f.end)
            .next_back()
            .is_some_and(|(_, k)| k.end > f.start);
        if !clash {
            kept.insert(f.start, f);
        }
    }
    out.extend(kept.into_values());
}

/// How offsets count: UTF-8 bytes (Rust), Unicode scalars (Python), UTF-16 code units
/// (JavaScript).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetUnit {
    /// UTF-8 bytes.
    Byte,
    /// Unicode scalar values (Python `str` indices).
    Char,
    /// UTF-16 code units (JavaScript string indices).
    Utf16,
}

/// The `(start, end)` of each finding in `units` (findings in any order), counted in one pass
/// over the text that stops at the last finding's end.
pub fn offsets(text: &str, findings: &[Finding], units: OffsetUnit) -> Vec<(usize, usize)> {
    if units == OffsetUnit::Byte {
        return findings.iter().map(|f| (f.start, f.end)).collect();
    }
    // every boundary asked for, sorted, converted by one pass over the text up to the last one
    let mut wanted: Vec<usize> = findings.iter().flat_map(|f| [f.start, f.end]).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let bytes = text.as_bytes();
    let mut converted = Vec::with_capacity(wanted.len());
    let (mut pos, mut unit) = (0, 0);
    for &w in &wanted {
        let w = w.min(bytes.len());
        if w > pos {
            unit += count_units(bytes.get(pos..w).unwrap_or_default(), units);
            pos = w;
        }
        converted.push(unit);
    }
    let at = |b: usize| {
        wanted
            .binary_search(&b)
            .ok()
            .and_then(|i| converted.get(i))
            .copied()
            .unwrap_or(0)
    };
    findings.iter().map(|f| (at(f.start), at(f.end))).collect()
}

/// Characters (or UTF-16 code units) in a run of UTF-8 bytes: every byte that does not continue
/// a character starts one, and each 4-byte character is two UTF-16 units. Plain byte loops, so
/// the compiler vectorizes them.
fn count_units(b: &[u8], units: OffsetUnit) -> usize {
    let chars = b.iter().filter(|&&x| !(0x80..0xC0).contains(&x)).count();
    match units {
        OffsetUnit::Utf16 => chars + b.iter().filter(|&&x| x >= 0xF0).count(),
        _ => chars,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(entity: EntityType, start: usize, end: usize, confidence: u8) -> Finding {
        Finding {
            entity,
            start,
            end,
            confidence,
            custom: None,
        }
    }

    #[test]
    fn offsets_in_chars_and_utf16() {
        let text = "é😀 a@b.co";
        let fs = [f(EntityType::Email, 7, 13, 90)];
        assert_eq!(offsets(text, &fs, OffsetUnit::Byte), vec![(7, 13)]);
        assert_eq!(offsets(text, &fs, OffsetUnit::Char), vec![(3, 9)]);
        assert_eq!(offsets(text, &fs, OffsetUnit::Utf16), vec![(4, 10)]);
    }

    #[test]
    fn overlaps_keep_longest_then_most_confident() {
        let mut v = vec![
            f(EntityType::Phone, 0, 10, 90),
            f(EntityType::CreditCard, 0, 16, 80),
            f(EntityType::Email, 20, 30, 50),
            f(EntityType::Url, 20, 30, 70),
        ];
        resolve_overlaps(&mut v);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].entity, EntityType::CreditCard);
        assert_eq!(v[1].entity, EntityType::Url);
    }
}
