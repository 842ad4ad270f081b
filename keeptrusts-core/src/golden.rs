//! Golden cases: a principal and a request with the decision expected for them.
//!
//! `kt policy test` runs them against a pack, and the shared conformance vectors use the same
//! shape for their evaluation steps. Every field of [`Expectation`] is optional: only the fields
//! present are checked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::decision::{AuditStamp, Decision, Verdict};
use crate::engine::{Engine, RequestContext, Stores};
use crate::error::PackError;
use crate::identity::Principal;
use crate::pack::de::from_node;
use crate::pack::spec::PolicyKind;
use crate::pack::yaml;
use crate::request::{ChatRequest, Texts};

/// What a case expects of the decision.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Overall verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Error code; `none` asserts there is no error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Reason code of the deciding policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The deciding policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyKind>,
    /// The effective chain, in execution order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<Vec<PolicyKind>>,
    /// Entity counts summed over every policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<BTreeMap<String, u32>>,
    /// The audit stamp (`audit-logger` settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditStamp>,
    /// The escalation raised or used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_id: Option<String>,
    /// Strings the forwarded request text must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_contains: Option<Vec<String>>,
    /// Strings the forwarded request text must not contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_excludes: Option<Vec<String>>,
}

/// One golden case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldenCase {
    /// Short name.
    pub name: String,
    /// Why the case exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The caller.
    pub principal: Principal,
    /// The chat request.
    pub request: ChatRequest,
    /// Request id, time and replay ids (defaults: `req-<case index>`, time 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<RequestContext>,
    /// The expected decision.
    pub expect: Expectation,
}

/// Differences between a decision and an expectation, one line each (empty = pass).
pub fn check(decision: &Decision, expect: &Expectation) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = expect.verdict {
        if decision.verdict != v {
            out.push(format!("verdict: expected {v}, got {}", decision.verdict));
        }
    }
    if let Some(s) = expect.status {
        if decision.status != s {
            out.push(format!("status: expected {s}, got {}", decision.status));
        }
    }
    if let Some(c) = &expect.code {
        let got = decision.code().unwrap_or("none");
        if got != c {
            out.push(format!("code: expected {c}, got {got}"));
        }
    }
    if let Some(r) = &expect.reason {
        let got = decision.reason.as_deref().unwrap_or("none");
        if got != r {
            out.push(format!("reason: expected {r}, got {got}"));
        }
    }
    if let Some(p) = expect.policy {
        let got = decision.error.as_ref().and_then(|e| e.policy);
        if got != Some(p) {
            out.push(format!(
                "policy: expected {p}, got {}",
                got.map_or("none", PolicyKind::as_str)
            ));
        }
    }
    if let Some(chain) = &expect.chain {
        if &decision.chain != chain {
            let show =
                |c: &[PolicyKind]| c.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
            out.push(format!(
                "chain: expected [{}], got [{}]",
                show(chain),
                show(&decision.chain)
            ));
        }
    }
    if let Some(a) = &expect.audit {
        if decision.audit.as_ref() != Some(a) {
            out.push(format!("audit: expected {a:?}, got {:?}", decision.audit));
        }
    }
    if let Some(id) = &expect.escalation_id {
        if decision.escalation_id.as_ref() != Some(id) {
            out.push(format!(
                "escalation_id: expected {id}, got {}",
                decision.escalation_id.as_deref().unwrap_or("none")
            ));
        }
    }
    if let Some(e) = &expect.entities {
        let mut got: BTreeMap<String, u32> = BTreeMap::new();
        for r in &decision.results {
            for (k, n) in &r.entities {
                *got.entry(k.clone()).or_default() += n;
            }
        }
        if &got != e {
            out.push(format!("entities: expected {e:?}, got {got:?}"));
        }
    }
    out
}

/// Checks the text a host would forward (the rewritten request, or the original).
pub fn check_forwarded(
    original: &ChatRequest,
    decision: &Decision,
    expect: &Expectation,
) -> Vec<String> {
    let forwarded = decision.request.as_ref().unwrap_or(original);
    let text: String = forwarded
        .texts()
        .into_iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    for s in expect.forwarded_contains.iter().flatten() {
        if !text.contains(s.as_str()) {
            out.push(format!("forwarded text lacks `{s}`"));
        }
    }
    // excluded values are looked for in the whole forwarded JSON too, not only in the fields
    // the engine governs: a value in a field it does not know is still a value sent
    let json = serde_json::to_string(forwarded).unwrap_or_default();
    for (i, s) in expect.forwarded_excludes.iter().flatten().enumerate() {
        if text.contains(s.as_str()) || json.contains(s.as_str()) {
            out.push(format!("forwarded text still holds excluded value #{i}"));
        }
    }
    out
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseReport {
    /// Case name.
    pub name: String,
    /// Whether every expectation held.
    pub passed: bool,
    /// What differed.
    pub mismatches: Vec<String>,
    /// The decision, for inspection.
    pub decision: Option<Decision>,
}

/// Runs one case.
pub fn run_case(
    engine: &Engine,
    case: &GoldenCase,
    ordinal: usize,
    stores: &Stores<'_>,
) -> CaseReport {
    let ctx = case
        .context
        .clone()
        .unwrap_or_else(|| RequestContext::new(&format!("req-{ordinal}"), 0));
    match engine.evaluate(&case.principal, &case.request, &ctx, stores) {
        Ok(d) => {
            let mut mismatches = check(&d, &case.expect);
            mismatches.extend(check_forwarded(&case.request, &d, &case.expect));
            CaseReport {
                name: case.name.clone(),
                passed: mismatches.is_empty(),
                mismatches,
                decision: Some(d),
            }
        }
        Err(e) => CaseReport {
            name: case.name.clone(),
            passed: false,
            mismatches: vec![format!("evaluation failed: {e} ({})", e.code())],
            decision: None,
        },
    }
}

/// Parses golden cases from YAML (or JSON): a list of cases, or a map with a `cases` list.
///
/// # Errors
/// Located diagnostics, as for packs.
pub fn parse_cases(src: &str) -> Result<Vec<GoldenCase>, PackError> {
    let root = yaml::load(src)?;
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wrapped {
        cases: Vec<GoldenCase>,
    }
    let as_list = matches!(root.kind, yaml::NodeKind::Seq(_));
    let result = if as_list {
        from_node::<Vec<GoldenCase>>(&root, "")
    } else {
        from_node::<Wrapped>(&root, "").map(|w| w.cases)
    };
    result.map_err(|e| PackError {
        errors: vec![e.into_diagnostic()],
        warnings: Vec::new(),
    })
}
