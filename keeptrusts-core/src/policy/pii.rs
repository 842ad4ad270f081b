//! `pii-detector`: personal data and secrets found by the built-in detector and the pack's own
//! patterns, redacted or blocked.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::detector::{ApplyTo, DetectAction, DetectorPolicy};
use super::kind::{Checks, FailMode, Kind, Policy};
use crate::detect::builtin::BuiltinDetector;
use crate::detect::EntityType;
use crate::pack::yaml::Seg;
use crate::redact::{RedactionOptions, Redactor};

/// Most `detect_patterns` one detector may have.
pub const MAX_CUSTOM_PATTERNS: usize = 64;

/// A named custom pattern of `pii-detector`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomPattern {
    /// Name, used as the marker label (`[EMPLOYEE_ID]`).
    pub name: String,
    /// A regular expression (Rust `regex` syntax, linear time).
    pub pattern: String,
}

/// `policy.pii-detector`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiOptions {
    /// `redact` (default) or `block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<DetectAction>,
    /// Entity types to detect (default: every PII type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<EntityType>>,
    /// Detect payment cards (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_mode: Option<bool>,
    /// Named custom regexes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect_patterns: Option<Vec<CustomPattern>>,
    /// Values never flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_list: Option<Vec<String>>,
    /// `input`, `output` or `both` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_to: Option<ApplyTo>,
    /// Marker options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<RedactionOptions>,
    /// `closed` (default) or `open`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_mode: Option<FailMode>,
}

impl Kind for PiiOptions {
    fn fail_mode(&self) -> Option<FailMode> {
        self.fail_mode
    }

    fn overlay(self, inline: &Self) -> Self {
        overlay!(
            PiiOptions {
                action,
                entities,
                pci_mode,
                detect_patterns,
                allow_list,
                apply_to,
                redaction,
                fail_mode,
            },
            self,
            inline
        )
    }

    fn check(&self, _base: Option<&Self>, checks: &mut dyn Checks) {
        let Some(patterns) = &self.detect_patterns else {
            return;
        };
        if patterns.len() > MAX_CUSTOM_PATTERNS {
            checks.error(
                "E007",
                &[Seg::K("detect_patterns")],
                format!(
                    "{} custom patterns; the limit is {MAX_CUSTOM_PATTERNS}",
                    patterns.len()
                ),
                None,
            );
        }
        let mut names = HashSet::new();
        for (k, cp) in patterns.iter().enumerate() {
            let name_at = [Seg::K("detect_patterns"), Seg::I(k), Seg::K("name")];
            let pattern_at = [Seg::K("detect_patterns"), Seg::I(k), Seg::K("pattern")];
            let valid_name = !cp.name.is_empty()
                && cp.name.len() <= 64
                && cp
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid_name {
                checks.error(
                    "E003",
                    &name_at,
                    "a pattern name is 1-64 characters of letters, digits, `_` and `-`".into(),
                    None,
                );
            } else if !names.insert(cp.name.as_str()) {
                checks.error(
                    "E004",
                    &name_at,
                    format!("duplicate pattern name `{}`", cp.name),
                    None,
                );
            }
            if let Err(e) = regex::RegexBuilder::new(&cp.pattern)
                .size_limit(1 << 20)
                .build()
            {
                let msg = e.to_string();
                let first = msg
                    .lines()
                    .last()
                    .unwrap_or("invalid regex")
                    .trim()
                    .to_owned();
                checks.error(
                    "E003",
                    &pattern_at,
                    format!("invalid regex: {first}"),
                    None,
                );
            } else if regex::Regex::new(&cp.pattern).is_ok_and(|r| r.is_match("")) {
                checks.error(
                    "E003",
                    &pattern_at,
                    "the pattern matches the empty string".into(),
                    None,
                );
            }
        }
    }

    fn compile(merged: Option<&Self>, key: &[u8; 32]) -> Result<Box<dyn Policy>, String> {
        let o = merged.cloned().unwrap_or_default();
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
        Ok(Box::new(DetectorPolicy::new(
            "pii-detector",
            "pii_detected",
            o.action,
            o.apply_to,
            Arc::new(detector),
            Redactor::new(o.redaction.as_ref(), names, *key),
        )))
    }
}
