//! What `pii-detector` and `hipaa-phi-detector` compile to: scan texts, then redact or block.
//! Their options and compilation are in `pii.rs` and `phi.rs`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::kind::{Inputs, Outcome, Policy, PolicyFailure, StreamParts};
use crate::decision::Verdict;
use crate::detect::{resolve_overlaps, Detector, Finding};
use crate::redact::Redactor;
use crate::request::{ChatRequest, ChatResponse, Texts};

/// What a detector does with a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectAction {
    /// Rewrite the text with markers.
    Redact,
    /// Stop the request.
    Block,
}

/// Which direction a detector scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyTo {
    /// Requests only.
    Input,
    /// Responses only.
    Output,
    /// Both (default).
    Both,
}

impl ApplyTo {
    /// Whether requests are scanned.
    pub fn input(self) -> bool {
        matches!(self, ApplyTo::Input | ApplyTo::Both)
    }

    /// Whether responses are scanned.
    pub fn output(self) -> bool {
        matches!(self, ApplyTo::Output | ApplyTo::Both)
    }
}

#[derive(Debug)]
pub(crate) struct DetectorPolicy {
    /// The kind's YAML name, for messages.
    name: &'static str,
    /// The reason of a finding (`pii_detected`).
    reason: &'static str,
    action: DetectAction,
    apply_to: ApplyTo,
    detector: Arc<dyn Detector>,
    redactor: Arc<Redactor>,
}

impl DetectorPolicy {
    pub fn new(
        name: &'static str,
        reason: &'static str,
        action: Option<DetectAction>,
        apply_to: Option<ApplyTo>,
        detector: Arc<dyn Detector>,
        redactor: Redactor,
    ) -> Self {
        DetectorPolicy {
            name,
            reason,
            action: action.unwrap_or(DetectAction::Redact),
            apply_to: apply_to.unwrap_or(ApplyTo::Both),
            detector,
            redactor: Arc::new(redactor),
        }
    }

    /// The parts a streaming filter needs: whether it blocks, detector, redactor (shared, so a
    /// filter can outlive the borrow of the engine: a binding's object owns it).
    fn stream_parts(&self) -> StreamParts {
        (
            self.action == DetectAction::Block,
            Arc::clone(&self.detector),
            Arc::clone(&self.redactor),
        )
    }

    fn applies(&self, input: bool) -> bool {
        if input {
            self.apply_to.input()
        } else {
            self.apply_to.output()
        }
    }

    /// Scans every text of `target`; redacts in place (returning whether anything changed) or
    /// reports a block. `target` is only borrowed mutably when a redaction is needed.
    fn run<T: Texts + Clone>(&self, target: &mut std::borrow::Cow<'_, T>) -> Outcome {
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
        let reason = self.reason;
        let mut out = match self.action {
            DetectAction::Block => Outcome::deny(
                Verdict::Block,
                409,
                "policy_blocked",
                reason,
                format!("{} found sensitive data and blocks it", self.name),
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

impl Policy for DetectorPolicy {
    fn input(
        &self,
        request: &mut Cow<'_, ChatRequest>,
        _inputs: &Inputs<'_>,
    ) -> Option<Result<Outcome, PolicyFailure>> {
        self.applies(true).then(|| Ok(self.run(request)))
    }

    fn output(&self, response: &mut Cow<'_, ChatResponse>) -> Option<Outcome> {
        self.applies(false).then(|| self.run(response))
    }

    fn stream(&self) -> Option<StreamParts> {
        self.applies(false).then(|| self.stream_parts())
    }
}
