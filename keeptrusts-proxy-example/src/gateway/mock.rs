//! The local mock provider (`provider: mock`): answers without a network, echoing the governed prompt.

use super::*;

/// Tokens of the mock provider's answers: one per 4 bytes.
pub(super) fn mock_tokens(bytes: usize) -> u64 {
    u64::try_from(bytes.div_ceil(4)).unwrap_or(u64::MAX)
}

/// What the mock provider answers.
pub(super) struct MockReply {
    /// The answer's text (none when it calls a tool).
    pub(super) text: String,
    /// A call of the request's first function tool: (call id, name, JSON arguments).
    pub(super) call: Option<(String, String, String)>,
    pub(super) usage: Usage,
}

/// The text of a message's content.
pub(super) fn content_text(content: Option<&Content>) -> String {
    match content {
        Some(Content::Text(t)) => t.clone(),
        Some(Content::Parts(p)) => p
            .iter()
            .filter_map(|x| x.text.clone())
            .collect::<Vec<_>>()
            .join(" "),
        None => String::new(),
    }
}

/// The mock provider: answers with the (already governed) last user message, cut to the
/// forwarded output limit as a real provider would, and reports its usage. With `tools` (and a
/// `tool_choice` other than `none`) it first calls the first function tool with that message
/// as `{"text": …}`; once the conversation ends with the tool's result, it echoes the result.
pub(super) fn mock_answer(r: &ChatRequest) -> MockReply {
    let last = r.messages.last();
    let said = r
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| content_text(m.content.as_ref()))
        .unwrap_or_default();
    let tool = r
        .extra
        .get("tools")
        .and_then(serde_json::Value::as_array)
        .and_then(|t| t.first())
        .and_then(|t| t.pointer("/function/name"))
        .and_then(serde_json::Value::as_str)
        .filter(|_| {
            r.extra
                .get("tool_choice")
                .and_then(serde_json::Value::as_str)
                != Some("none")
        });
    let prompt = serde_json::to_vec(&r.messages).map_or(0, |v| v.len());
    if let (Some(name), Some("user")) = (tool, last.map(|m| m.role.as_str())) {
        let arguments = serde_json::json!({"text": said}).to_string();
        return MockReply {
            text: String::new(),
            usage: Usage {
                prompt_tokens: mock_tokens(prompt),
                completion_tokens: mock_tokens(arguments.len()),
            },
            call: Some(("call_mock_0".to_owned(), name.to_owned(), arguments)),
        };
    }
    let mut text = match last {
        Some(m) if m.role == "tool" => format!("Echo: {}", content_text(m.content.as_ref())),
        _ => format!("Echo: {said}"),
    };
    let limit = r
        .max_tokens
        .map(u64::from)
        .or_else(|| {
            r.extra
                .get("max_completion_tokens")
                .and_then(serde_json::Value::as_u64)
        })
        .unwrap_or(u64::MAX);
    let max_bytes = usize::try_from(limit.saturating_mul(4)).unwrap_or(usize::MAX);
    if text.len() > max_bytes {
        let mut cut = max_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    MockReply {
        usage: Usage {
            prompt_tokens: mock_tokens(prompt),
            completion_tokens: mock_tokens(text.len()),
        },
        text,
        call: None,
    }
}
