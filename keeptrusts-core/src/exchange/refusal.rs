//! The answers of requests refused before the chain runs (a routing or pack error, a rate
//! limit), each with its refusal event.

use super::*;

/// A refusal: the envelope and its event.
pub(super) fn refusal(
    principal: &Principal,
    request_id: &str,
    model: Option<&str>,
    now: Millis,
    status: u16,
    code: &str,
    message: String,
) -> Answer {
    let mut d = Decision::allowed();
    d.deny(request_id, Verdict::Block, status, code, message);
    let body = d.error_body().unwrap_or_default();
    Answer {
        status,
        body,
        verdict: Verdict::Block,
        close: Closing {
            lease: None,
            actual: None,
            draft: EventDraft::from_decision(principal, &d, request_id, model, now),
            restore_ticket: None,
            rate: None,
        },
        dropped: Vec::new(),
        rate_headers: Vec::new(),
    }
}

/// The 429 of a request over a rate limit: the envelope (`rate_limited`, naming the limit),
/// `Retry-After`, the `X-RateLimit-*` headers when asked for, and a refusal event.
pub(super) fn rate_limited(
    principal: &Principal,
    request_id: &str,
    model: Option<&str>,
    now: Millis,
    limited: &Limited,
    headers: Option<RateHeaders>,
) -> Answer {
    let mut d = Decision::allowed();
    d.deny(
        request_id,
        Verdict::Block,
        429,
        "rate_limited",
        limited.message(),
    );
    let mut draft = EventDraft::refused(Some(principal), request_id, 429, "rate_limited", now);
    draft.model = model.map(str::to_owned);
    let mut rate_headers = vec![("retry-after", limited.retry_after.to_string())];
    rate_headers.extend(headers.map(|h| h.pairs()).unwrap_or_default());
    if limited.never {
        // it can never fit: tell the OpenAI SDKs not to retry it
        rate_headers.push(("x-should-retry", "false".to_owned()));
    }
    Answer {
        status: 429,
        body: d.error_body().unwrap_or_default(),
        verdict: Verdict::Block,
        close: Closing::event(draft),
        dropped: Vec::new(),
        rate_headers,
    }
}
