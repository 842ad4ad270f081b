//! `human-oversight`: hold requests for a human reviewer.
//!
//! `require_review: true` escalates every request the entry applies to; `require_human_for`
//! escalates only requests whose user or system text mentions a category keyword (whole words,
//! ASCII case-insensitive). Built-in categories are listed in [`BUILTIN_CATEGORIES`]; a pack
//! extends them, or defines new ones, under `categories`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::{Deserialize, Serialize};

use super::kind::{Checks, FailMode, Inputs, Kind, Outcome, Policy, PolicyFailure};
use crate::decision::Verdict;
use crate::escalation::{redeem_outcome, Escalation, EscalationStatus, Redeem};
use crate::pack::de::suggest;
use crate::pack::yaml::Seg;
use crate::request::{ChatRequest, Texts};
use crate::time::Millis;

/// What `human-oversight` does with a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OversightAction {
    /// Hold for review (default).
    Escalate,
    /// Refuse outright.
    Block,
}

/// `policy.human-oversight`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OversightOptions {
    /// Escalate every matching request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_review: Option<bool>,
    /// Escalate only requests in these categories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_human_for: Option<Vec<String>>,
    /// Extra keywords per category (extends a built-in category or defines a new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<BTreeMap<String, Vec<String>>>,
    /// `escalate` (default) or `block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<OversightAction>,
    /// Pending escalations expire (= deny) after this long. Default 86400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// Who reviews by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_assignee: Option<String>,
    /// `closed` (default) or `open`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_mode: Option<FailMode>,
}


/// Built-in categories and their keywords.
pub const BUILTIN_CATEGORIES: &[(&str, &[&str])] = &[
    (
        "medical_decisions",
        &[
            "diagnosis",
            "diagnose",
            "prescribe",
            "prescription",
            "dosage",
            "dose of",
            "treatment plan",
            "medication",
            "surgery",
            "prognosis",
            "contraindication",
            "should i take",
            "symptoms",
        ],
    ),
    (
        "legal_opinions",
        &[
            "legal advice",
            "legal opinion",
            "lawsuit",
            "sue",
            "liability",
            "litigation",
            "is it legal",
            "contract dispute",
            "court",
            "statute of limitations",
            "attorney",
        ],
    ),
    (
        "financial_advice",
        &[
            "financial advice",
            "investment advice",
            "should i invest",
            "buy stock",
            "sell stock",
            "portfolio",
            "retirement plan",
            "tax advice",
            "securities",
        ],
    ),
    (
        "employment_decisions",
        &[
            "terminate employee",
            "fire employee",
            "termination",
            "performance improvement plan",
            "layoff",
            "promotion decision",
            "disciplinary action",
        ],
    ),
];

#[derive(Debug)]
pub(crate) struct Oversight {
    require_review: bool,
    categories: Vec<String>,
    matcher: Option<AhoCorasick>,
    /// pattern index → index into `categories`
    pattern_category: Vec<usize>,
    action: OversightAction,
    timeout_ms: Millis,
    assignee: Option<String>,
}

fn word_boundary(text: &str, start: usize, end: usize) -> bool {
    let before = text.get(..start).and_then(|s| s.chars().next_back());
    let after = text.get(end..).and_then(|s| s.chars().next());
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}


impl Oversight {
    pub fn new(o: Option<&OversightOptions>) -> Result<Self, String> {
        let o = o.cloned().unwrap_or_default();
        let wanted = o.require_human_for.clone().unwrap_or_default();
        let extra = o.categories.clone().unwrap_or_default();
        let mut patterns: Vec<String> = Vec::new();
        let mut pattern_category = Vec::new();
        for (ci, name) in wanted.iter().enumerate() {
            let builtin = BUILTIN_CATEGORIES
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, words)| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>())
                .unwrap_or_default();
            let custom = extra.get(name).cloned().unwrap_or_default();
            if builtin.is_empty() && custom.is_empty() {
                return Err(format!("unknown category `{name}`"));
            }
            for w in builtin.into_iter().chain(custom) {
                patterns.push(w.trim().to_owned());
                pattern_category.push(ci);
            }
        }
        let matcher = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)
                    .map_err(|e| e.to_string())?,
            )
        };
        Ok(Oversight {
            require_review: o.require_review.unwrap_or(false),
            categories: wanted,
            matcher,
            pattern_category,
            action: o.action.unwrap_or(OversightAction::Escalate),
            timeout_ms: i64::try_from(o.timeout_seconds.unwrap_or(86_400))
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000),
            assignee: o.default_assignee,
        })
    }

    fn category(&self, request: &ChatRequest) -> Option<&str> {
        let matcher = self.matcher.as_ref()?;
        for (role, text) in request.texts() {
            if role != "user" && role != "system" {
                continue;
            }
            for m in matcher.find_iter(text.as_str()) {
                if word_boundary(text, m.start(), m.end()) {
                    let ci = self.pattern_category.get(m.pattern().as_usize())?;
                    return self.categories.get(*ci).map(String::as_str);
                }
            }
        }
        None
    }

    pub fn check(&self, request: &ChatRequest, ctx: &Inputs<'_>) -> Result<Outcome, PolicyFailure> {
        let reason = if self.require_review {
            "require_review".to_owned()
        } else {
            match self.category(request) {
                Some(c) => format!("category:{c}"),
                None => return Ok(Outcome::allow()),
            }
        };
        if self.action == OversightAction::Block {
            return Ok(Outcome::deny(
                Verdict::Block,
                409,
                "policy_blocked",
                &reason,
                "human-oversight blocks this kind of request".into(),
            ));
        }
        let fingerprint = request.fingerprint();
        let store_err = |e: crate::error::StoreError| PolicyFailure {
            code: "store_unavailable",
            message: format!("escalation store failed: {e}"),
        };
        let mut note = None;
        if let Some(id) = ctx.escalation_id {
            // Only look here: the approval is consumed by the engine once the request is
            // certain to go through (after the budget step), so a request that is then refused
            // does not use it up.
            let outcome = match ctx.store.get(id).map_err(store_err)? {
                Some(esc) => {
                    redeem_outcome(&esc, &fingerprint, ctx.principal.team.as_deref(), ctx.now)
                }
                None => Redeem::Invalid("no such escalation"),
            };
            match outcome {
                Redeem::Granted => {
                    let mut o = Outcome::allow();
                    o.reason = Some("escalation_approved".into());
                    o.escalation_id = Some(id.to_owned());
                    o.consume = Some(fingerprint);
                    return Ok(o);
                }
                Redeem::Pending(id) => return Ok(escalated(&reason, id)),
                Redeem::Denied => {
                    let mut o = Outcome::deny(
                        Verdict::Block,
                        409,
                        "escalation_denied",
                        "escalation_denied",
                        "a reviewer denied this request".into(),
                    );
                    o.escalation_id = Some(id.to_owned());
                    return Ok(o);
                }
                Redeem::Expired => {
                    let mut o = Outcome::deny(
                        Verdict::Block,
                        409,
                        "escalation_expired",
                        "escalation_expired",
                        "the escalation expired before it was approved".into(),
                    );
                    o.escalation_id = Some(id.to_owned());
                    return Ok(o);
                }
                Redeem::Invalid(why) => note = Some(why),
            }
        }
        let p = ctx.principal;
        let esc = Escalation {
            id: format!("esc_{}", ctx.request_id),
            fingerprint,
            org: p.org.clone(),
            team: p.team.clone(),
            user: p.user.clone(),
            role: p.role,
            reason: reason.clone(),
            excerpt: crate::escalation::excerpt(request),
            assignee: self.assignee.clone(),
            status: EscalationStatus::Pending,
            created_at: ctx.now,
            expires_at: ctx.now.saturating_add(self.timeout_ms),
            resolved_at: None,
            resolved_by: None,
            redeemed_at: None,
        };
        match ctx.store.insert(&esc) {
            Ok(()) => {}
            Err(crate::error::StoreError::Conflict(_)) => {
                // The same request id again (a host retry): reuse the record if it is this
                // request's, otherwise fail closed.
                match ctx.store.get(&esc.id).map_err(store_err)? {
                    Some(existing) if existing.fingerprint == esc.fingerprint => {}
                    _ => {
                        return Err(PolicyFailure {
                            code: "duplicate_request_id",
                            message: "request id reused for a different request".into(),
                        })
                    }
                }
            }
            Err(e) => return Err(store_err(e)),
        }
        let mut o = escalated(&reason, esc.id);
        if let Some(why) = note {
            o.message = Some(format!(
                "held for human review (the escalation id sent could not be used: {why})"
            ));
        }
        Ok(o)
    }
}

impl Kind for OversightOptions {
    fn fail_mode(&self) -> Option<FailMode> {
        self.fail_mode
    }

    fn overlay(self, inline: &Self) -> Self {
        overlay!(
            OversightOptions {
                require_review,
                require_human_for,
                categories,
                action,
                timeout_seconds,
                default_assignee,
                fail_mode,
            },
            self,
            inline
        )
    }

    fn check(&self, base: Option<&Self>, checks: &mut dyn Checks) {
        if self.timeout_seconds == Some(0) {
            checks.error(
                "E003",
                &[Seg::K("timeout_seconds")],
                "timeout_seconds must be at least 1".into(),
                None,
            );
        }
        let mut known: Vec<String> = BUILTIN_CATEGORIES
            .iter()
            .map(|(n, _)| (*n).to_owned())
            .collect();
        let base_cats = base.and_then(|b| b.categories.clone());
        for cats in [&self.categories, &base_cats].into_iter().flatten() {
            known.extend(cats.keys().cloned());
        }
        if let Some(cats) = &self.categories {
            for (name, words) in cats {
                if words.iter().any(|w| w.trim().is_empty()) || words.is_empty() {
                    checks.error(
                        "E003",
                        &[Seg::K("categories"), Seg::K(name)],
                        format!("category `{name}` needs at least one non-empty keyword"),
                        None,
                    );
                }
            }
        }
        if let Some(list) = &self.require_human_for {
            for (k, cat) in list.iter().enumerate() {
                if !known.iter().any(|c| c == cat) {
                    checks.error(
                        "E005",
                        &[Seg::K("require_human_for"), Seg::I(k)],
                        format!(
                            "unknown category `{cat}`; built-in categories are `{}`, or define it under `categories`",
                            BUILTIN_CATEGORIES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join("`, `")
                        ),
                        suggest(cat, known.iter().map(String::as_str)),
                    );
                }
            }
        }
    }

    fn check_entry(merged: Option<&Self>, checks: &mut dyn Checks) {
        let acts = merged.is_some_and(|o| {
            o.require_review == Some(true)
                || o.require_human_for.as_ref().is_some_and(|v| !v.is_empty())
        });
        if !acts {
            checks.entry_warning(
                "W004",
                "human-oversight has neither `require_review: true` nor `require_human_for`: it never escalates".into(),
            );
        }
    }

    fn compile(merged: Option<&Self>, _key: &[u8; 32]) -> Result<Box<dyn Policy>, String> {
        Ok(Box::new(Oversight::new(merged)?))
    }
}

impl Policy for Oversight {
    fn input(
        &self,
        request: &mut Cow<'_, ChatRequest>,
        inputs: &Inputs<'_>,
    ) -> Option<Result<Outcome, PolicyFailure>> {
        Some(self.check(request, inputs))
    }
}

fn escalated(reason: &str, id: String) -> Outcome {
    let mut o = Outcome::deny(
        Verdict::Escalate,
        409,
        "escalation_required",
        reason,
        "held for human review; re-send with X-Keeptrusts-Escalation-Id once approved".into(),
    );
    o.escalation_id = Some(id);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_only() {
        let o = Oversight::new(Some(&OversightOptions {
            require_human_for: Some(vec!["legal_opinions".into()]),
            ..Default::default()
        }))
        .unwrap();
        let hit = ChatRequest::user("m", "Can I SUE my landlord?");
        let miss = ChatRequest::user("m", "The issue is a pseudo-random suet recipe");
        assert_eq!(o.category(&hit), Some("legal_opinions"));
        assert_eq!(o.category(&miss), None);
    }
}
