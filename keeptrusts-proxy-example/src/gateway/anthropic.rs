//! The Anthropic Messages API behind the OpenAI chat completions API: requests are translated to
//! `POST /v1/messages`, answers and stream events back to chat completions. Pure functions over
//! JSON values; the gateway does the I/O.
//!
//! Translated: system messages (joined into `system`), user and assistant text (plain or parts),
//! image parts given as data URLs, assistant `tool_calls` (→ `tool_use` blocks) and `tool`
//! messages (→ `tool_result` blocks), `tools` and `tool_choice`, `max_tokens` /
//! `max_completion_tokens` (Anthropic requires one: the pack's default applies), `temperature`,
//! `top_p`, `stop` (→ `stop_sequences`), `stream`, `user` (→ `metadata.user_id`). Answers: text
//! blocks joined, `tool_use` blocks as `tool_calls`, `stop_reason` as `finish_reason`, usage as
//! `prompt_tokens` / `completion_tokens`.

use keeptrusts_core::exchange::Delta;
use serde_json::{json, Map, Value};

/// The version header Anthropic requires.
pub const VERSION: &str = "2023-06-01";

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// A message's content as Anthropic blocks.
fn blocks(content: &Value) -> Result<Vec<Value>, String> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![json!({"type": "text", "text": s})]),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p.get("type").and_then(Value::as_str) {
                Some("text") => Ok(json!({"type": "text", "text": p.get("text").cloned().unwrap_or_default()})),
                Some("image_url") => {
                    let url = p
                        .pointer("/image_url/url")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let (media, data) = url
                        .strip_prefix("data:")
                        .and_then(|u| u.split_once(";base64,"))
                        .ok_or("an image for anthropic must be a base64 data: URL")?;
                    Ok(json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}))
                }
                other => Err(format!(
                    "content part type `{}` cannot be sent to anthropic",
                    other.unwrap_or("?")
                )),
            })
            .collect(),
        _ => Err("`content` must be a string or a list of parts".into()),
    }
}

/// Appends a message, merging it into the previous one when the role repeats (Anthropic wants
/// user and assistant turns to alternate; consecutive tool results form one user turn).
fn push(out: &mut Vec<Value>, role: &str, mut content: Vec<Value>) {
    if let Some(last) = out.last_mut() {
        if last.get("role").and_then(Value::as_str) == Some(role) {
            if let Some(Value::Array(c)) = last.get_mut("content") {
                c.append(&mut content);
                return;
            }
        }
    }
    out.push(json!({"role": role, "content": content}));
}

/// The calls of an OpenAI message's `tool_calls`: each one's id, function name and arguments
/// (JSON text; `{}` when absent).
pub fn tool_calls(message: Option<&Value>) -> impl Iterator<Item = (Value, Value, &str)> {
    let calls = message
        .and_then(|m| m.get("tool_calls"))
        .and_then(Value::as_array);
    calls.into_iter().flatten().map(|call| {
        let id = call.get("id").cloned().unwrap_or_default();
        let name = call.pointer("/function/name").cloned().unwrap_or_default();
        let args = call.pointer("/function/arguments").and_then(Value::as_str);
        (id, name, args.unwrap_or("{}"))
    })
}

/// The Messages API body for a chat completion request.
///
/// # Errors
/// A message naming what cannot be translated (an unknown role, a non-data image URL, …).
pub fn request_body(
    request: &Value,
    model: &str,
    stream: bool,
    default_max_tokens: u32,
) -> Result<Value, String> {
    let mut system = Vec::new();
    let mut messages = Vec::new();
    for (i, m) in request
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let content = m.get("content").unwrap_or(&Value::Null);
        match m.get("role").and_then(Value::as_str).unwrap_or_default() {
            "system" | "developer" => system.push(text_of(content)),
            "user" => push(&mut messages, "user", blocks(content)?),
            "assistant" => {
                let mut b = blocks(content)?;
                for (id, name, args) in tool_calls(Some(m)) {
                    let input: Value = serde_json::from_str(args).map_err(|e| {
                        format!("messages[{i}]: tool call arguments are not JSON: {e}")
                    })?;
                    b.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
                }
                push(&mut messages, "assistant", b);
            }
            "tool" => push(
                &mut messages,
                "user",
                vec![json!({"type": "tool_result",
                    "tool_use_id": m.get("tool_call_id").cloned().unwrap_or_default(),
                    "content": text_of(content)})],
            ),
            other => {
                return Err(format!(
                    "messages[{i}]: role `{other}` cannot be sent to anthropic"
                ))
            }
        }
    }
    let max_tokens = request
        .get("max_tokens")
        .or_else(|| request.get("max_completion_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(u64::from(default_max_tokens));
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("max_tokens".into(), max_tokens.into());
    body.insert("messages".into(), messages.into());
    if !system.is_empty() {
        body.insert("system".into(), system.join("\n\n").into());
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = request.get(key) {
            body.insert(key.into(), v.clone());
        }
    }
    match request.get("stop") {
        Some(Value::String(s)) => {
            body.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            body.insert("stop_sequences".into(), a.clone().into());
        }
        _ => {}
    }
    if let Some(user) = request.get("user").and_then(Value::as_str) {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(tools) = request.get("tools").and_then(Value::as_array) {
        let t: Vec<Value> = tools
            .iter()
            .filter_map(|t| t.get("function"))
            .map(|f| {
                json!({"name": f.get("name").cloned().unwrap_or_default(),
                "description": f.get("description").cloned().unwrap_or_default(),
                "input_schema": f.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object"}))})
            })
            .collect();
        body.insert("tools".into(), t.into());
    }
    match request.get("tool_choice") {
        Some(Value::String(s)) if s == "auto" => {
            body.insert("tool_choice".into(), json!({"type": "auto"}));
        }
        Some(Value::String(s)) if s == "required" => {
            body.insert("tool_choice".into(), json!({"type": "any"}));
        }
        Some(Value::String(s)) if s == "none" => {
            body.remove("tools");
        }
        Some(v) => {
            if let Some(name) = v.pointer("/function/name") {
                body.insert("tool_choice".into(), json!({"type": "tool", "name": name}));
            }
        }
        None => {}
    }
    if stream {
        body.insert("stream".into(), true.into());
    }
    Ok(Value::Object(body))
}

/// `stop_reason` → `finish_reason`.
pub fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// A Messages API answer as a chat completion.
///
/// # Errors
/// The answer is not a message (no `content` list).
pub fn response_to_chat(v: &Value, created: i64) -> Result<Value, String> {
    let content = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or("the provider's answer has no `content` list")?;
    let text: String = content
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    let calls: Vec<Value> = content
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
        .map(|b| {
            json!({"id": b.get("id").cloned().unwrap_or_default(), "type": "function",
            "function": {"name": b.get("name").cloned().unwrap_or_default(),
                         "arguments": b.get("input").map(Value::to_string).unwrap_or_else(|| "{}".into())}})
        })
        .collect();
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    let content = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        text.into()
    };
    message.insert("content".into(), content);
    if !calls.is_empty() {
        message.insert("tool_calls".into(), calls.into());
    }
    let input = v
        .pointer("/usage/input_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let output = v
        .pointer("/usage/output_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Ok(json!({
        "id": v.get("id").cloned().unwrap_or_else(|| "msg".into()),
        "object": "chat.completion",
        "created": created,
        "model": v.get("model").cloned().unwrap_or_default(),
        "choices": [{"index": 0, "message": message,
                     "finish_reason": finish_reason(v.get("stop_reason").and_then(Value::as_str))}],
        "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output},
    }))
}

/// Reads a Messages API stream event by event into chat-completion deltas: text, `tool_use`
/// blocks as tool calls (numbered among the tool calls), the stop reason as a finish, and the
/// usage (input tokens from `message_start`, output tokens from `message_delta`).
#[derive(Debug, Default)]
pub struct StreamReader {
    input_tokens: u64,
    /// Content block index → tool call index.
    tools: Vec<(u64, u32)>,
}

impl StreamReader {
    /// The deltas of one `data:` payload, and whether the message is complete.
    ///
    /// # Errors
    /// The error type the provider reported mid-stream.
    pub fn event(&mut self, v: &Value) -> Result<(Vec<Delta>, bool), String> {
        let block = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        let tool = |s: &Self| s.tools.iter().find(|(b, _)| *b == block).map(|(_, t)| *t);
        let out = match v.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                self.input_tokens = v
                    .pointer("/message/usage/input_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                Vec::new()
            }
            Some("content_block_start")
                if v.pointer("/content_block/type").and_then(Value::as_str) == Some("tool_use") =>
            {
                let index = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                self.tools.push((block, index));
                let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
                vec![Delta::ToolCall {
                    choice: 0,
                    index,
                    id: s("/content_block/id"),
                    name: s("/content_block/name"),
                    arguments: String::new(),
                }]
            }
            Some("content_block_delta") => {
                match (v.pointer("/delta/type").and_then(Value::as_str), tool(self)) {
                    (Some("input_json_delta"), Some(index)) => vec![Delta::ToolCall {
                        choice: 0,
                        index,
                        id: None,
                        name: None,
                        arguments: v
                            .pointer("/delta/partial_json")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    }],
                    _ => match v.pointer("/delta/text").and_then(Value::as_str) {
                        Some(t) if !t.is_empty() => vec![Delta::Text {
                            choice: 0,
                            text: t.to_owned(),
                        }],
                        _ => Vec::new(),
                    },
                }
            }
            Some("message_delta") => {
                let mut out = Vec::new();
                if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    out.push(Delta::Finish {
                        choice: 0,
                        reason: finish_reason(Some(r)).to_owned(),
                    });
                }
                if let Some(o) = v.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                    let input = v
                        .pointer("/usage/input_tokens")
                        .and_then(Value::as_u64)
                        .unwrap_or(self.input_tokens);
                    out.push(Delta::Usage {
                        prompt_tokens: input,
                        completion_tokens: o,
                    });
                }
                out
            }
            Some("message_stop") => return Ok((Vec::new(), true)),
            Some("error") => {
                return Err(v
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .unwrap_or("error")
                    .to_owned())
            }
            _ => Vec::new(),
        };
        Ok((out, false))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn a_conversation_with_system_tools_and_results() {
        let r = json!({"model": "claude-sonnet-4", "temperature": 0.2, "stop": "END", "user": "u1",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]}
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "description": "w",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "auto"});
        let b = request_body(&r, "claude-sonnet-4-20250514", false, 1024).unwrap();
        assert_eq!(b["model"], "claude-sonnet-4-20250514");
        assert_eq!(b["system"], "Be brief.");
        assert_eq!(b["max_tokens"], 1024);
        assert_eq!(b["stop_sequences"], json!(["END"]));
        assert_eq!(b["metadata"]["user_id"], "u1");
        assert_eq!(b["tool_choice"], json!({"type": "auto"}));
        assert_eq!(
            b["tools"][0]["input_schema"]["properties"]["city"]["type"],
            "string"
        );
        let m = b["messages"].as_array().unwrap();
        // user, assistant (tool_use), user (tool_result + the next question, merged)
        assert_eq!(m.len(), 3);
        assert_eq!(m[1]["content"][0]["type"], "tool_use");
        assert_eq!(m[1]["content"][0]["input"]["city"], "Paris");
        assert_eq!(m[2]["content"][0]["type"], "tool_result");
        assert_eq!(m[2]["content"][0]["tool_use_id"], "call_1");
        assert_eq!(m[2]["content"][1]["text"], "And tomorrow?");
        assert!(b.get("stream").is_none());
        assert_eq!(request_body(&r, "m", true, 1).unwrap()["stream"], true);
    }

    #[test]
    fn what_cannot_be_translated_is_named() {
        let r = json!({"messages": [{"role": "oracle", "content": "x"}]});
        assert!(request_body(&r, "m", false, 1)
            .unwrap_err()
            .contains("messages[0]: role `oracle`"));
        let r = json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]});
        assert!(request_body(&r, "m", false, 1)
            .unwrap_err()
            .contains("data: URL"));
        let r = json!({"max_completion_tokens": 77, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]});
        let b = request_body(&r, "m", false, 1).unwrap();
        assert_eq!(b["max_tokens"], 77);
        assert_eq!(
            b["messages"][0]["content"][0]["source"]["media_type"],
            "image/png"
        );
    }

    #[test]
    fn answers_become_chat_completions() {
        let a = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4",
            "content": [{"type": "text", "text": "Let me check. "}, {"type": "tool_use", "id": "tu_1", "name": "weather", "input": {"city": "Paris"}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 12, "output_tokens": 7}});
        let c = response_to_chat(&a, 5).unwrap();
        assert_eq!(c["object"], "chat.completion");
        assert_eq!(c["choices"][0]["message"]["content"], "Let me check. ");
        assert_eq!(c["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            c["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Paris\"}"
        );
        assert_eq!(
            c["usage"],
            json!({"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19})
        );
        assert!(response_to_chat(&json!({"error": {}}), 0).is_err());
        assert_eq!(finish_reason(Some("max_tokens")), "length");
        assert_eq!(finish_reason(Some("end_turn")), "stop");
    }

    #[test]
    fn stream_events() {
        let mut r = StreamReader::default();
        let start = json!({"type": "message_start", "message": {"usage": {"input_tokens": 9}}});
        assert_eq!(r.event(&start).unwrap(), (vec![], false));
        let d = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}});
        assert_eq!(
            r.event(&d).unwrap().0,
            vec![Delta::Text {
                choice: 0,
                text: "Hi".into()
            }]
        );
        let tool = json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "tu_1", "name": "weather", "input": {}}});
        assert_eq!(
            r.event(&tool).unwrap().0,
            vec![Delta::ToolCall {
                choice: 0,
                index: 0,
                id: Some("tu_1".into()),
                name: Some("weather".into()),
                arguments: String::new()
            }]
        );
        let args = json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\""}});
        assert_eq!(
            r.event(&args).unwrap().0,
            vec![Delta::ToolCall {
                choice: 0,
                index: 0,
                id: None,
                name: None,
                arguments: "{\"city\"".into()
            }]
        );
        let end = json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 20}});
        assert_eq!(
            r.event(&end).unwrap().0,
            vec![
                Delta::Finish {
                    choice: 0,
                    reason: "tool_calls".into()
                },
                Delta::Usage {
                    prompt_tokens: 9,
                    completion_tokens: 20
                }
            ]
        );
        assert_eq!(
            r.event(&json!({"type": "message_stop"})).unwrap(),
            (vec![], true)
        );
        assert_eq!(r.event(&json!({"type": "ping"})).unwrap(), (vec![], false));
        assert_eq!(
            r.event(&json!({"type": "error", "error": {"type": "overloaded_error"}})),
            Err("overloaded_error".into())
        );
    }
}
