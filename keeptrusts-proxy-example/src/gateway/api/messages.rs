//! Anthropic's Messages API inbound (`POST /v1/messages`) over chat completions, so that the
//! Anthropic SDKs and the coding agents built on them can be pointed at the gateway; the target
//! may speak either API (an Anthropic target gets the Messages API back, `crate::gateway::anthropic`).
//!
//! Translated: `system` (a string or text blocks), user and assistant turns with `text`, `image`
//! (base64 or URL sources), `tool_use` and `tool_result` blocks, `max_tokens` (required, as
//! Anthropic requires it), `temperature`, `top_p`, `stop_sequences`, `tools`, `tool_choice`
//! (`auto`, `any`, `tool`, `none`), `metadata.user_id`, `stream`. `thinking` is accepted and not
//! forwarded (the answer has no thinking blocks); `top_k` and other blocks (`document`,
//! `thinking`, server tools) are refused. Answers: `text` and `tool_use` blocks, `stop_reason`,
//! `usage`; streams: `message_start` … `message_stop`; errors: `{"type": "error", "error": {type,
//! message}}` (with the gateway's `code` and `request_id` beside them).

use bytes::Bytes;
use keeptrusts_core::exchange::Delta;
use keeptrusts_core::pricing::Usage;
use serde_json::{json, Map, Value};

use super::{sse_event, text_of, usage_of, Encoder, Unsupported};

const KNOWN: &[&str] = &[
    "model",
    "messages",
    "system",
    "max_tokens",
    "temperature",
    "top_p",
    "stop_sequences",
    "tools",
    "tool_choice",
    "metadata",
    "stream",
    "thinking",
    "service_tier",
];

/// The chat completion request for a Messages request.
///
/// # Errors
/// What cannot be translated, named with its place (`messages[1].content[0]`, …).
pub fn to_chat(v: &Value) -> Result<Value, Unsupported> {
    Unsupported::unknown_field(v, KNOWN, "Messages API")?;
    let Some(max_tokens) = v.get("max_tokens").and_then(Value::as_u64) else {
        return Err(Unsupported::invalid(
            "`max_tokens` is required (a whole number)",
        ));
    };
    let mut messages = Vec::new();
    match v.get("system") {
        None | Some(Value::Null) => {}
        Some(s @ (Value::String(_) | Value::Array(_))) => {
            messages.push(json!({"role": "system", "content": text_of(s)}));
        }
        Some(_) => {
            return Err(Unsupported::invalid(
                "`system` must be a string or a list of text blocks",
            ))
        }
    }
    let Some(turns) = v.get("messages").and_then(Value::as_array) else {
        return Err(Unsupported::invalid(
            "`messages` is required: a list of turns",
        ));
    };
    for (i, m) in turns.iter().enumerate() {
        turn(&mut messages, m, i)?;
    }
    let mut chat = Map::new();
    if let Some(m) = v.get("model") {
        chat.insert("model".into(), m.clone());
    }
    chat.insert("messages".into(), messages.into());
    chat.insert("max_tokens".into(), max_tokens.into());
    for k in ["temperature", "top_p"] {
        if let Some(x) = v.get(k).filter(|x| !x.is_null()) {
            chat.insert(k.into(), x.clone());
        }
    }
    if let Some(s) = v.get("stop_sequences").filter(|s| !s.is_null()) {
        chat.insert("stop".into(), s.clone());
    }
    if let Some(u) = v.pointer("/metadata/user_id").filter(|u| !u.is_null()) {
        chat.insert("user".into(), u.clone());
    }
    if let Some(tools) = v.get("tools").and_then(Value::as_array) {
        let mut out = Vec::with_capacity(tools.len());
        for (i, t) in tools.iter().enumerate() {
            if let Some(kind) = t
                .get("type")
                .and_then(Value::as_str)
                .filter(|k| *k != "custom")
            {
                return Err(Unsupported::new(
                    "unsupported_tool",
                    format!("tools[{i}]: the server tool `{kind}` is not supported: only client tools are"),
                ));
            }
            let mut f = Map::new();
            f.insert("name".into(), t.get("name").cloned().unwrap_or_default());
            if let Some(d) = t.get("description").filter(|d| !d.is_null()) {
                f.insert("description".into(), d.clone());
            }
            f.insert(
                "parameters".into(),
                t.get("input_schema")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"})),
            );
            out.push(json!({"type": "function", "function": f}));
        }
        if !out.is_empty() {
            chat.insert("tools".into(), out.into());
        }
    }
    if let Some(c) = v.get("tool_choice").filter(|c| !c.is_null()) {
        let choice = match c.get("type").and_then(Value::as_str) {
            Some("auto") => json!("auto"),
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => {
                json!({"type": "function", "function": {"name": c.get("name").cloned().unwrap_or_default()}})
            }
            _ => {
                return Err(Unsupported::new(
                    "unsupported_parameter",
                    "`tool_choice.type` must be auto, any, tool or none",
                ))
            }
        };
        if c.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
            chat.insert("parallel_tool_calls".into(), false.into());
        }
        chat.insert("tool_choice".into(), choice);
    }
    if v.get("stream").and_then(Value::as_bool) == Some(true) {
        chat.insert("stream".into(), true.into());
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Value::Object(chat))
}

/// Appends the chat message(s) of turn `i`: its blocks in order, each run of tool results as
/// `tool` messages.
fn turn(messages: &mut Vec<Value>, m: &Value, i: usize) -> Result<(), Unsupported> {
    let role = match m.get("role").and_then(Value::as_str) {
        Some(r @ ("user" | "assistant")) => r,
        other => {
            return Err(Unsupported::invalid(format!(
                "messages[{i}]: role `{}` is not user or assistant",
                other.unwrap_or("(none)")
            )))
        }
    };
    let blocks = match m.get("content") {
        Some(Value::String(s)) => {
            messages.push(json!({"role": role, "content": s}));
            return Ok(());
        }
        Some(Value::Array(b)) => b,
        _ => {
            return Err(Unsupported::invalid(format!(
                "messages[{i}]: `content` must be a string or a list of blocks"
            )))
        }
    };
    let mut parts: Vec<Value> = Vec::new();
    let mut calls: Vec<Value> = Vec::new();
    let flush = |messages: &mut Vec<Value>, parts: &mut Vec<Value>, calls: &mut Vec<Value>| {
        if parts.is_empty() && calls.is_empty() {
            return;
        }
        let content = if role == "assistant" {
            let t = text_of(&Value::Array(std::mem::take(parts)));
            if t.is_empty() {
                Value::Null
            } else {
                t.into()
            }
        } else {
            Value::Array(std::mem::take(parts))
        };
        let mut msg = Map::new();
        msg.insert("role".into(), role.into());
        msg.insert("content".into(), content);
        if !calls.is_empty() {
            msg.insert("tool_calls".into(), Value::Array(std::mem::take(calls)));
        }
        messages.push(Value::Object(msg));
    };
    for (j, b) in blocks.iter().enumerate() {
        let at = || format!("messages[{i}].content[{j}]");
        match b.get("type").and_then(Value::as_str) {
            Some("text") => {
                parts.push(
                    json!({"type": "text", "text": b.get("text").cloned().unwrap_or_default()}),
                );
            }
            Some("image") if role == "user" => {
                let url = match b.pointer("/source/type").and_then(Value::as_str) {
                    Some("base64") => format!(
                        "data:{};base64,{}",
                        b.pointer("/source/media_type")
                            .and_then(Value::as_str)
                            .unwrap_or("image/png"),
                        b.pointer("/source/data")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                    ),
                    Some("url") => b
                        .pointer("/source/url")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    _ => {
                        return Err(Unsupported::new(
                            "unsupported_input",
                            format!("{}: an image source must be base64 or url", at()),
                        ))
                    }
                };
                parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            Some("tool_use") if role == "assistant" => {
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(
                    json!({"id": b.get("id").cloned().unwrap_or_default(), "type": "function",
                    "function": {"name": b.get("name").cloned().unwrap_or_default(),
                                 "arguments": input.to_string()}}),
                );
            }
            Some("tool_result") if role == "user" => {
                flush(messages, &mut parts, &mut calls);
                let mut content = b.get("content").map(text_of).unwrap_or_default();
                if b.get("is_error").and_then(Value::as_bool) == Some(true) {
                    content = format!("(error) {content}");
                }
                messages.push(json!({"role": "tool",
                    "tool_call_id": b.get("tool_use_id").cloned().unwrap_or_default(),
                    "content": content}));
            }
            other => {
                return Err(Unsupported::new(
                    "unsupported_input",
                    format!(
                        "{}: `{}` blocks are not supported in a {role} turn",
                        at(),
                        other.unwrap_or("?")
                    ),
                ))
            }
        }
    }
    flush(messages, &mut parts, &mut calls);
    Ok(())
}

/// `finish_reason` → `stop_reason`.
fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Tool call arguments as the `input` object (`{}` when they are not JSON).
fn input_of(arguments: &str) -> Value {
    serde_json::from_str(arguments).unwrap_or_else(|_| json!({}))
}

/// The governed chat completion `answer` as a Messages answer.
pub fn from_chat(answer: &Value, request_id: &str) -> Value {
    let choice = answer.pointer("/choices/0");
    let message = choice.and_then(|c| c.get("message"));
    let mut content = Vec::new();
    let text = message
        .and_then(|m| m.get("content"))
        .map(text_of)
        .unwrap_or_default();
    let refusal = message
        .and_then(|m| m.get("refusal"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    for t in [text.as_str(), refusal] {
        if !t.is_empty() {
            content.push(json!({"type": "text", "text": t}));
        }
    }
    for (id, name, args) in crate::gateway::anthropic::tool_calls(message) {
        content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input_of(args)}));
    }
    let u = usage_of(answer);
    json!({"id": format!("msg_{request_id}"), "type": "message", "role": "assistant",
        "model": answer.get("model").cloned().unwrap_or_default(), "content": content,
        "stop_reason": stop_reason(choice.and_then(|c| c.get("finish_reason")).and_then(Value::as_str)),
        "stop_sequence": null,
        "usage": {"input_tokens": u.prompt_tokens, "output_tokens": u.completion_tokens}})
}

/// Anthropic's error type for a status.
fn error_type(status: u16) -> &'static str {
    match status {
        400 | 408 | 413 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// The gateway's error envelope in Anthropic's shape; the gateway's fields (`code`,
/// `request_id`, `escalation_id`, …) stay beside `type` and `message`.
pub fn error_body(status: u16, envelope: Value) -> Value {
    let mut e = match envelope.get("error") {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    };
    e.insert("type".into(), error_type(status).into());
    if !e.contains_key("message") {
        e.insert("message".into(), "the request failed".into());
    }
    json!({"type": "error", "error": e})
}

/// A Messages event stream; see the module documentation.
pub struct Stream {
    id: String,
    model: String,
    /// The open content block: its index, and the tool call it carries (`None`: text).
    open: Option<(usize, Option<u32>)>,
    blocks: usize,
    finish: Option<String>,
}

impl Stream {
    /// A stream for the request `request_id` answered by `model`.
    pub fn new(request_id: &str, model: &str) -> Self {
        Stream {
            id: format!("msg_{request_id}"),
            model: model.to_owned(),
            open: None,
            blocks: 0,
            finish: None,
        }
    }

    fn stop_block(&mut self) -> Vec<Bytes> {
        match self.open.take() {
            Some((index, _)) => vec![sse_event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            )],
            None => Vec::new(),
        }
    }

    fn start_block(&mut self, tool: Option<u32>, block: Value) -> Vec<Bytes> {
        let mut out = self.stop_block();
        let index = self.blocks;
        self.blocks += 1;
        self.open = Some((index, tool));
        out.push(sse_event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        out
    }
}

impl Encoder for Stream {
    fn open(&mut self) -> Vec<Bytes> {
        vec![sse_event(
            "message_start",
            &json!({"type": "message_start", "message": {"id": self.id, "type": "message",
                "role": "assistant", "model": self.model, "content": [], "stop_reason": null,
                "stop_sequence": null, "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        )]
    }

    fn delta(&mut self, d: &Delta) -> Vec<Bytes> {
        match d {
            Delta::Text { choice: 0, text } | Delta::Refusal { choice: 0, text } => {
                let mut out = Vec::new();
                if !matches!(self.open, Some((_, None))) {
                    out = self.start_block(None, json!({"type": "text", "text": ""}));
                }
                let index = self.open.map_or(0, |(i, _)| i);
                out.push(sse_event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "text_delta", "text": text}}),
                ));
                out
            }
            Delta::ToolCall {
                choice: 0,
                index: tool,
                id,
                name,
                arguments,
            } => {
                let mut out = Vec::new();
                if self.open.map(|(_, t)| t) != Some(Some(*tool)) {
                    out = self.start_block(
                        Some(*tool),
                        json!({"type": "tool_use", "id": id.clone().unwrap_or_default(),
                            "name": name.clone().unwrap_or_default(), "input": {}}),
                    );
                }
                if !arguments.is_empty() {
                    let index = self.open.map_or(0, |(i, _)| i);
                    out.push(sse_event(
                        "content_block_delta",
                        &json!({"type": "content_block_delta", "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": arguments}}),
                    ));
                }
                out
            }
            Delta::Finish { choice: 0, reason } => {
                self.finish = Some(reason.clone());
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn close(&mut self, usage: Option<Usage>, error: Option<(&str, &str, u16)>) -> Vec<Bytes> {
        let mut out = self.stop_block();
        if let Some((code, message, status)) = error {
            out.push(sse_event(
                "error",
                &json!({"type": "error", "error": {"type": error_type(status), "code": code,
                    "message": message}}),
            ));
            return out;
        }
        let u = usage.unwrap_or_default();
        out.push(sse_event(
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason(self.finish.as_deref()), "stop_sequence": null},
                "usage": {"input_tokens": u.prompt_tokens, "output_tokens": u.completion_tokens}}),
        ));
        out.push(sse_event("message_stop", &json!({"type": "message_stop"})));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_with_tools_images_and_results_translate() {
        let v = json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "system": [{"type": "text", "text": "be brief"}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "look"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]},
                {"role": "assistant", "content": [{"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "toolu_1", "name": "see", "input": {"x": 1}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "seen"},
                    {"type": "text", "text": "and?"}]}],
            "tools": [{"name": "see", "description": "d", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any"}, "stop_sequences": ["END"], "metadata": {"user_id": "u1"}});
        let c = to_chat(&v).unwrap();
        let m = c["messages"].as_array().unwrap();
        assert_eq!(m[0], json!({"role": "system", "content": "be brief"}));
        assert_eq!(
            m[1]["content"][1]["image_url"]["url"],
            "data:image/png;base64,AAAA"
        );
        assert_eq!(m[2]["content"], "calling");
        assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], "{\"x\":1}");
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "toolu_1", "content": "seen"})
        );
        assert_eq!(m[4]["content"][0]["text"], "and?");
        assert_eq!(c["tool_choice"], "required");
        assert_eq!(c["stop"], json!(["END"]));
        assert_eq!(c["user"], "u1");
        assert_eq!(c["max_tokens"], 100);
    }

    #[test]
    fn what_cannot_be_translated_is_refused_by_place() {
        for (v, code, needle) in [
            (json!({"messages": []}), "invalid_request", "max_tokens"),
            (
                json!({"max_tokens": 1, "top_k": 5, "messages": []}),
                "unsupported_parameter",
                "top_k",
            ),
            (
                json!({"max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "document"}]}]}),
                "unsupported_input",
                "messages[0].content[0]",
            ),
            (
                json!({"max_tokens": 1, "messages": [], "tools": [{"type": "web_search_20250305", "name": "w"}]}),
                "unsupported_tool",
                "web_search",
            ),
        ] {
            let e = to_chat(&v).unwrap_err();
            assert_eq!(e.code, code, "{v}");
            assert!(e.message.contains(needle), "{}", e.message);
        }
    }

    #[test]
    fn answers_errors_and_streams_are_in_anthropic_shape() {
        let answer = json!({"model": "m", "choices": [{"finish_reason": "tool_calls", "message": {
            "content": "ok", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{\"a\":2}"}}]}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4}});
        let r = from_chat(&answer, "rid");
        assert_eq!(
            r["content"][1],
            json!({"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 2}})
        );
        assert_eq!(r["stop_reason"], "tool_use");
        assert_eq!(r["usage"], json!({"input_tokens": 9, "output_tokens": 4}));
        let e = error_body(
            402,
            json!({"error": {"type": "insufficient_quota", "code": "budget_exceeded", "message": "m"}}),
        );
        assert_eq!(e["type"], "error");
        assert_eq!(e["error"]["type"], "billing_error");
        assert_eq!(e["error"]["code"], "budget_exceeded");
        let mut s = Stream::new("rid", "m");
        let mut frames = s.open();
        frames.extend(s.delta(&Delta::Text {
            choice: 0,
            text: "hi".into(),
        }));
        frames.extend(s.delta(&Delta::ToolCall {
            choice: 0,
            index: 0,
            id: Some("c".into()),
            name: Some("f".into()),
            arguments: "{}".into(),
        }));
        frames.extend(s.delta(&Delta::Finish {
            choice: 0,
            reason: "tool_calls".into(),
        }));
        frames.extend(s.close(
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 1,
            }),
            None,
        ));
        let names: Vec<String> = frames
            .iter()
            .map(|f| {
                std::str::from_utf8(f)
                    .unwrap()
                    .lines()
                    .next()
                    .unwrap()
                    .trim_start_matches("event: ")
                    .to_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert!(std::str::from_utf8(&frames[7])
            .unwrap()
            .contains("\"stop_reason\":\"tool_use\""));
    }
}
