//! What the engine answers: verdicts, per-policy results, and the HTTP shape of a denial.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::pack::spec::PolicyKind;
use crate::pricing::Estimate;
use crate::request::{ChatRequest, ChatResponse};
use crate::wallet::Lease;

/// A verdict, ordered by precedence: `block` > `escalate` > `ticket` > `redact` > `allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Forward unchanged.
    Allow,
    /// Forward the rewritten request / return the rewritten response.
    Redact,
    /// No wallet can cover the estimate; a cost ticket queues the request.
    Ticket,
    /// Held for human review.
    Escalate,
    /// Stopped.
    Block,
}

impl Verdict {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Redact => "redact",
            Verdict::Ticket => "ticket",
            Verdict::Escalate => "escalate",
            Verdict::Block => "block",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which side of the provider call was evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The request, before the provider is called.
    Input,
    /// The provider's response.
    Output,
}

/// The settings `audit-logger` stamps on the decision's event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditStamp {
    /// Days events are kept.
    pub retention_days: u32,
    /// Events are append-only.
    pub immutable: bool,
    /// Allowed requests are logged too.
    pub log_all_access: bool,
    /// HIPAA audit controls apply.
    pub hipaa_audit_controls: bool,
}

impl Default for AuditStamp {
    /// `audit-logger`'s defaults: a year, append-only, every access logged, no HIPAA controls.
    fn default() -> Self {
        AuditStamp {
            retention_days: 365,
            immutable: true,
            log_all_access: true,
            hipaa_audit_controls: false,
        }
    }
}

/// One policy's say on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyResult {
    /// The policy kind.
    pub kind: PolicyKind,
    /// Its verdict.
    pub verdict: Verdict,
    /// Why, as a stable reason code (`missing_team`, `pii_detected`, `require_review`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Entity type → count of findings (never the values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub entities: BTreeMap<String, u32>,
}

/// Something worth knowing about the evaluation that is not itself a verdict (a policy that
/// failed and was failed closed or open, an escalation id that could not be used, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionDiagnostic {
    /// The policy concerned.
    pub kind: PolicyKind,
    /// Stable code.
    pub code: String,
    /// One line; never holds request text.
    pub message: String,
}

/// The error envelope of a non-allow decision, OpenAI-SDK friendly: serialize
/// [`Decision::error_body`] as the HTTP body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// OpenAI-style error type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Stable code: `unauthenticated`, `rbac_denied`, `policy_blocked`, `escalation_required`, …
    pub code: String,
    /// One line for humans; never holds request text or detected values.
    pub message: String,
    /// The deciding policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyKind>,
    /// The request id.
    pub request_id: String,
    /// For `escalation_required`: the id to re-send in `X-Keeptrusts-Escalation-Id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_id: Option<String>,
    /// For `budget_exceeded`: the id to re-send in `X-Keeptrusts-Ticket-Id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
}

/// The engine's answer for one phase of one request. The host performs the I/O it implies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Input or output.
    pub phase: Phase,
    /// The overall verdict (highest precedence among the policies).
    pub verdict: Verdict,
    /// HTTP status the gateway answers: 200, 401, 402, 403 or 409.
    pub status: u16,
    /// Reason code of the deciding policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Error envelope for every non-allow, non-redact verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// The effective chain, in execution order.
    pub chain: Vec<PolicyKind>,
    /// One result per policy that ran, in order (policies after a block do not run).
    pub results: Vec<PolicyResult>,
    /// The rewritten request, when a policy redacted it (input phase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<ChatRequest>,
    /// The rewritten response, when a policy redacted it (output phase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ChatResponse>,
    /// Escalation raised or used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_id: Option<String>,
    /// Cost ticket opened or used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    /// The reservation held for this request (settle it with the provider's usage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<Lease>,
    /// The cost estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
    /// Audit settings, when `audit-logger` is in the effective chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditStamp>,
    /// Diagnostics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<DecisionDiagnostic>,
    /// Fields of the answer that were removed because no redaction can be made in them
    /// (`logprobs`, whenever an output detector applies): the host tells the client, as the
    /// gateway does with [`LOGPROBS_DROPPED_HEADER`](crate::exchange::LOGPROBS_DROPPED_HEADER).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
}

impl Decision {
    /// Whether the host should forward (the request) or return (the response).
    pub fn forwards(&self) -> bool {
        matches!(self.verdict, Verdict::Allow | Verdict::Redact)
    }

    /// The error code, if the decision is a denial.
    pub fn code(&self) -> Option<&str> {
        self.error.as_ref().map(|e| e.code.as_str())
    }

    /// An allowing input decision on which no policy ran (a refusal before the chain is made
    /// from it with [`Decision::deny`]).
    pub(crate) fn allowed() -> Decision {
        Decision {
            phase: Phase::Input,
            verdict: Verdict::Allow,
            status: 200,
            reason: None,
            error: None,
            chain: Vec::new(),
            results: Vec::new(),
            request: None,
            response: None,
            escalation_id: None,
            ticket_id: None,
            reservation: None,
            estimate: None,
            audit: None,
            diagnostics: Vec::new(),
            dropped: Vec::new(),
        }
    }

    /// Turns an allowing decision into a denial that no policy made (the budget step).
    pub(crate) fn deny(
        &mut self,
        request_id: &str,
        verdict: Verdict,
        status: u16,
        code: &str,
        message: String,
    ) {
        let request_id = request_id.to_owned();
        self.verdict = verdict;
        self.status = status;
        self.reason = Some(code.to_owned());
        self.error = Some(ErrorInfo {
            kind: error_type(status).to_owned(),
            code: code.to_owned(),
            message,
            policy: None,
            request_id,
            escalation_id: None,
            ticket_id: None,
        });
    }

    /// `{"error": {...}}` for a denial, `None` otherwise.
    pub fn error_body(&self) -> Option<serde_json::Value> {
        self.error
            .as_ref()
            .map(|e| serde_json::json!({ "error": e }))
    }
}

/// The OpenAI error `type` of an HTTP status (`402` is `insufficient_quota`, `409` a policy's
/// block, …): the one mapping every host's error envelope uses, for refusals the core decides
/// and for errors a host raises itself (a body too large, a request timed out, an unknown route).
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 | 408 | 413 => "invalid_request_error",
        401 => "authentication_error",
        402 => "insufficient_quota",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "policy_error",
        429 => "rate_limit_error",
        _ => "api_error",
    }
}

/// The error envelope `{"error": {type, code, message, request_id}}` of an error a host or the
/// lifecycle raises (a refusal's envelope, with its policy, is [`Decision::error_body`]).
pub fn error_envelope(
    status: u16,
    code: &str,
    message: &str,
    request_id: &str,
) -> serde_json::Value {
    serde_json::json!({"error": {
        "type": error_type(status), "code": code, "message": message, "request_id": request_id
    }})
}
