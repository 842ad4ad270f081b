//! OpenAI's Responses API (`POST /v1/responses`) over chat completions. Stateless: the whole
//! conversation comes in `input`; `previous_response_id`, `store: true`, `background` and
//! `conversation` are refused (`unsupported_parameter`), as are built-in tools (only `function`
//! tools are translated).
//!
//! Translated: `instructions` (the first system message), `input` as a string or as items
//! (messages of any role with `input_text`/`output_text`/`refusal`/`input_image` parts,
//! `function_call` and `function_call_output` items; `reasoning` items are left out),
//! `max_output_tokens`, `temperature`, `top_p`, `tools`, `tool_choice`, `parallel_tool_calls`,
//! `text.format` (→ `response_format`), `reasoning.effort`, `user`, `metadata`, `stream`.
//! Answers: one `message` item with an `output_text` (or `refusal`) part, one `function_call`
//! item per tool call, `usage` as `input_tokens`/`output_tokens`; a `length` finish is an
//! `incomplete` response. Streams: the Responses events, from `response.created` to
//! `response.completed` (or `response.incomplete`, `response.failed`).

use bytes::Bytes;
use keeptrusts_core::exchange::Delta;
use keeptrusts_core::pricing::Usage;
use serde_json::{json, Map, Value};

use super::{sse_event, text_of, usage_of, Encoder, Unsupported};

/// Fields of a Responses request the translation reads besides the [`ECHOED`] settings; any
/// other field is refused by name.
const READ: &[&str] = &[
    "model",
    "input",
    "stream",
    "store",
    "truncation",
    "include",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
];

/// The chat completion request for a Responses request.
///
/// # Errors
/// What cannot be translated, named with its place (`input[2].content[0]`, …).
pub fn to_chat(v: &Value) -> Result<Value, Unsupported> {
    let refused = |field: &str, why: &str| {
        Err(Unsupported::new(
            "unsupported_parameter",
            format!("`{field}` {why}"),
        ))
    };
    for (k, val) in v.as_object().into_iter().flatten() {
        match k.as_str() {
            "previous_response_id" | "conversation" if !val.is_null() => {
                return refused(
                    k,
                    "is not supported: the gateway keeps no conversation state; send the whole conversation in `input`",
                );
            }
            "background" if val.as_bool() == Some(true) => {
                return refused(
                    k,
                    "is not supported: the gateway answers each request while it is open",
                )
            }
            "previous_response_id" | "conversation" | "background" => {}
            "store" if val.as_bool() == Some(true) => {
                return refused(
                    k,
                    "must be false or left out: the gateway stores no responses (its audit events keep no prompt text)",
                )
            }
            "truncation" if !(val.is_null() || val == "disabled") => {
                return refused(k, "can only be `disabled`")
            }
            "include" if val.as_array().is_some_and(|a| !a.is_empty()) => {
                return refused(k, "is not supported (no extra output items are produced)")
            }
            _ if READ.contains(&k.as_str()) || ECHOED.contains(&k.as_str()) => {}
            _ => return refused(k, "is not supported by the gateway's Responses API"),
        }
    }
    let mut messages = Vec::new();
    if let Some(i) = v.get("instructions").filter(|i| !i.is_null()) {
        let Some(text) = i.as_str() else {
            return Err(Unsupported::invalid("`instructions` must be a string"));
        };
        messages.push(json!({"role": "system", "content": text}));
    }
    match v.get("input") {
        Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                input_item(&mut messages, item, i)?;
            }
        }
        _ => {
            return Err(Unsupported::invalid(
                "`input` is required: a string or a list of input items",
            ))
        }
    }
    let mut chat = Map::new();
    if let Some(m) = v.get("model") {
        chat.insert("model".into(), m.clone());
    }
    chat.insert("messages".into(), messages.into());
    if let Some(n) = v.get("max_output_tokens").filter(|n| !n.is_null()) {
        chat.insert("max_completion_tokens".into(), n.clone());
    }
    for k in [
        "temperature",
        "top_p",
        "parallel_tool_calls",
        "user",
        "metadata",
    ] {
        if let Some(x) = v.get(k).filter(|x| !x.is_null()) {
            chat.insert(k.into(), x.clone());
        }
    }
    if let Some(tools) = v.get("tools").and_then(Value::as_array) {
        let mut out = Vec::with_capacity(tools.len());
        for (i, t) in tools.iter().enumerate() {
            match t.get("type").and_then(Value::as_str) {
                Some("function") => {
                    let mut f = Map::new();
                    for k in ["name", "description", "parameters", "strict"] {
                        if let Some(x) = t.get(k).filter(|x| !x.is_null()) {
                            f.insert(k.into(), x.clone());
                        }
                    }
                    out.push(json!({"type": "function", "function": f}));
                }
                other => {
                    return Err(Unsupported::new(
                        "unsupported_tool",
                        format!(
                            "tools[{i}]: the built-in tool `{}` is not supported: only `function` tools are",
                            other.unwrap_or("?")
                        ),
                    ))
                }
            }
        }
        if !out.is_empty() {
            chat.insert("tools".into(), out.into());
        }
    }
    match v.get("tool_choice") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if ["auto", "none", "required"].contains(&s.as_str()) => {
            chat.insert("tool_choice".into(), s.as_str().into());
        }
        Some(c) if c.get("type").and_then(Value::as_str) == Some("function") => {
            let name = c.get("name").cloned().unwrap_or_default();
            chat.insert(
                "tool_choice".into(),
                json!({"type": "function", "function": {"name": name}}),
            );
        }
        Some(_) => {
            return Err(Unsupported::new(
                "unsupported_parameter",
                "`tool_choice` must be `auto`, `none`, `required` or a function",
            ))
        }
    }
    if let Some(format) = v.pointer("/text/format").filter(|f| !f.is_null()) {
        match format.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => {
                chat.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some("json_schema") => {
                let mut schema = Map::new();
                for k in ["name", "description", "schema", "strict"] {
                    if let Some(x) = format.get(k).filter(|x| !x.is_null()) {
                        schema.insert(k.into(), x.clone());
                    }
                }
                chat.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": schema}),
                );
            }
            other => {
                return Err(Unsupported::new(
                    "unsupported_parameter",
                    format!(
                        "`text.format.type` `{}` is not supported",
                        other.unwrap_or("?")
                    ),
                ))
            }
        }
    }
    if let Some(e) = v.pointer("/reasoning/effort").filter(|e| !e.is_null()) {
        chat.insert("reasoning_effort".into(), e.clone());
    }
    if v.get("stream").and_then(Value::as_bool) == Some(true) {
        chat.insert("stream".into(), true.into());
        // the stream's last event carries the usage
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Value::Object(chat))
}

/// Appends the chat message(s) of input item `i`.
fn input_item(messages: &mut Vec<Value>, item: &Value, i: usize) -> Result<(), Unsupported> {
    let kind = item.get("type").and_then(Value::as_str);
    match kind {
        None | Some("message") => {
            let role = match item.get("role").and_then(Value::as_str) {
                Some("developer" | "system") => "system",
                Some("user") => "user",
                Some("assistant") => "assistant",
                other => {
                    return Err(Unsupported::invalid(format!(
                        "input[{i}]: role `{}` is not one of user, assistant, system, developer",
                        other.unwrap_or("(none)")
                    )))
                }
            };
            let content = match item.get("content") {
                Some(Value::String(s)) => Value::String(s.clone()),
                Some(Value::Array(parts)) => {
                    let mut out = Vec::with_capacity(parts.len());
                    for (j, p) in parts.iter().enumerate() {
                        out.push(part(p, i, j)?);
                    }
                    // a system or assistant turn in chat completions takes text only
                    if role != "user" {
                        Value::String(text_of(&Value::Array(out)))
                    } else {
                        Value::Array(out)
                    }
                }
                _ => {
                    return Err(Unsupported::invalid(format!(
                        "input[{i}]: `content` must be a string or a list of parts"
                    )))
                }
            };
            messages.push(json!({"role": role, "content": content}));
        }
        Some("function_call") => {
            let call = json!({"id": item.get("call_id").cloned().unwrap_or_default(), "type": "function",
                "function": {"name": item.get("name").cloned().unwrap_or_default(),
                             "arguments": item.get("arguments").cloned().unwrap_or_else(|| "{}".into())}});
            // consecutive calls are one assistant turn
            let merged = messages.last_mut().is_some_and(|last| {
                if last.get("role").and_then(Value::as_str) != Some("assistant") {
                    return false;
                }
                match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
                    Some(calls) => {
                        calls.push(call.clone());
                        true
                    }
                    None => false,
                }
            });
            if !merged {
                messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
            }
        }
        Some("function_call_output") => {
            let output = match item.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(o @ Value::Array(_)) => text_of(o),
                _ => {
                    return Err(Unsupported::invalid(format!(
                        "input[{i}]: `output` must be a string"
                    )))
                }
            };
            messages.push(json!({"role": "tool",
                "tool_call_id": item.get("call_id").cloned().unwrap_or_default(), "content": output}));
        }
        // the model's own reasoning from an earlier answer: not sent back (no provider behind
        // chat completions reads it)
        Some("reasoning") => {}
        Some(other) => {
            return Err(Unsupported::new(
                "unsupported_input",
                format!("input[{i}]: items of type `{other}` are not supported"),
            ))
        }
    }
    Ok(())
}

/// A content part of input item `i` as a chat content part.
fn part(p: &Value, i: usize, j: usize) -> Result<Value, Unsupported> {
    match p.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text" | "text") => {
            Ok(json!({"type": "text", "text": p.get("text").cloned().unwrap_or_default()}))
        }
        Some("refusal") => {
            Ok(json!({"type": "text", "text": p.get("refusal").cloned().unwrap_or_default()}))
        }
        Some("input_image") => {
            let Some(url) = p.get("image_url").and_then(Value::as_str) else {
                return Err(Unsupported::new(
                    "unsupported_input",
                    format!("input[{i}].content[{j}]: an image must be given by `image_url` (file ids need stored files)"),
                ));
            };
            let mut image = Map::new();
            image.insert("url".into(), url.into());
            if let Some(d) = p.get("detail").filter(|d| !d.is_null()) {
                image.insert("detail".into(), d.clone());
            }
            Ok(json!({"type": "image_url", "image_url": image}))
        }
        other => Err(Unsupported::new(
            "unsupported_input",
            format!(
                "input[{i}].content[{j}]: parts of type `{}` are not supported",
                other.unwrap_or("?")
            ),
        )),
    }
}

/// Settings of the request a response repeats (the translation reads them too).
const ECHOED: &[&str] = &[
    "instructions",
    "max_output_tokens",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "text",
    "reasoning",
    "metadata",
    "user",
];

/// The response object around `output`.
fn response(original: &Value, id: &str, created: u64, model: &Value) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("id".into(), id.into());
    r.insert("object".into(), "response".into());
    r.insert("created_at".into(), created.into());
    r.insert("status".into(), "in_progress".into());
    r.insert("model".into(), model.clone());
    r.insert("output".into(), json!([]));
    r.insert("error".into(), Value::Null);
    r.insert("incomplete_details".into(), Value::Null);
    r.insert("previous_response_id".into(), Value::Null);
    r.insert("store".into(), false.into());
    for k in ECHOED {
        r.insert(
            (*k).into(),
            original.get(*k).cloned().unwrap_or(Value::Null),
        );
    }
    for (k, default) in [
        ("tools", json!([])),
        ("tool_choice", json!("auto")),
        ("parallel_tool_calls", json!(true)),
        ("metadata", json!({})),
        ("text", json!({"format": {"type": "text"}})),
    ] {
        if r.get(k).is_none_or(Value::is_null) {
            r.insert(k.into(), default);
        }
    }
    r
}

fn usage(u: Usage) -> Value {
    json!({"input_tokens": u.prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": u.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.prompt_tokens.saturating_add(u.completion_tokens)})
}

/// The status and `incomplete_details` of a finish reason.
fn finished(reason: Option<&str>) -> (&'static str, Value) {
    match reason {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

fn now_s() -> u64 {
    u64::try_from(crate::backend::now_ms() / 1000).unwrap_or(0)
}

/// The governed chat completion `answer` as a Responses response.
pub fn from_chat(answer: &Value, original: &Value, request_id: &str) -> Value {
    let model = answer.get("model").cloned().unwrap_or_default();
    let mut r = response(original, &format!("resp_{request_id}"), now_s(), &model);
    let choice = answer.pointer("/choices/0");
    let message = choice.and_then(|c| c.get("message"));
    let mut output = Vec::new();
    let mut parts = Vec::new();
    if let Some(t) = message
        .and_then(|m| m.get("content"))
        .map(text_of)
        .filter(|t| !t.is_empty())
    {
        parts.push(json!({"type": "output_text", "text": t, "annotations": []}));
    }
    if let Some(t) = message
        .and_then(|m| m.get("refusal"))
        .and_then(Value::as_str)
    {
        parts.push(json!({"type": "refusal", "refusal": t}));
    }
    if !parts.is_empty() {
        output.push(json!({"id": format!("msg_{request_id}"), "type": "message",
            "status": "completed", "role": "assistant", "content": parts}));
    }
    for (k, call) in message
        .and_then(|m| m.get("tool_calls"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        output.push(json!({"id": format!("fc_{request_id}_{k}"), "type": "function_call",
            "status": "completed", "call_id": call.get("id").cloned().unwrap_or_default(),
            "name": call.pointer("/function/name").cloned().unwrap_or_default(),
            "arguments": call.pointer("/function/arguments").cloned().unwrap_or_else(|| "{}".into())}));
    }
    let (status, incomplete) = finished(
        choice
            .and_then(|c| c.get("finish_reason"))
            .and_then(Value::as_str),
    );
    r.insert("status".into(), status.into());
    r.insert("incomplete_details".into(), incomplete);
    r.insert("output".into(), output.into());
    r.insert("usage".into(), usage(usage_of(answer)));
    Value::Object(r)
}

/// One open output item of a stream.
#[derive(Debug)]
enum Item {
    /// The message: its content parts so far (`output_text` or `refusal`, and the text).
    Message { parts: Vec<(&'static str, String)> },
    /// A function call: its index among the provider's tool calls, call id, name, arguments.
    Call {
        index: u32,
        call_id: String,
        name: String,
        arguments: String,
    },
}

/// A Responses event stream; see the module documentation.
pub struct Stream {
    response: Map<String, Value>,
    request_id: String,
    sequence: u64,
    /// Items in output order, and whether each is done.
    items: Vec<(Item, bool)>,
    finish: Option<String>,
}

impl Stream {
    /// A stream answering `original` (its settings are repeated in each response snapshot).
    pub fn new(original: &Value, request_id: &str, model: &str) -> Self {
        Stream {
            response: response(
                original,
                &format!("resp_{request_id}"),
                now_s(),
                &model.into(),
            ),
            request_id: request_id.to_owned(),
            sequence: 0,
            items: Vec::new(),
            finish: None,
        }
    }

    fn event(&mut self, kind: &str, mut body: Map<String, Value>) -> Bytes {
        body.insert("type".into(), kind.into());
        body.insert("sequence_number".into(), self.sequence.into());
        self.sequence += 1;
        sse_event(kind, &Value::Object(body))
    }

    fn item_id(&self, output_index: usize) -> String {
        match self.items.get(output_index) {
            Some((Item::Call { index, .. }, _)) => format!("fc_{}_{index}", self.request_id),
            _ => format!("msg_{}", self.request_id),
        }
    }

    /// The item as the client sees it (`status`: in_progress or completed).
    fn item_json(&self, output_index: usize, status: &str) -> Value {
        let id = self.item_id(output_index);
        match self.items.get(output_index) {
            Some((
                Item::Call {
                    call_id,
                    name,
                    arguments,
                    ..
                },
                _,
            )) => json!({"id": id, "type": "function_call", "status": status,
                "call_id": call_id, "name": name, "arguments": arguments}),
            Some((Item::Message { parts }, _)) => {
                let content: Vec<Value> = parts.iter().map(|(k, t)| part_json(k, t)).collect();
                json!({"id": id, "type": "message", "status": status, "role": "assistant",
                    "content": content})
            }
            None => Value::Null,
        }
    }

    /// Closes every open item.
    fn close_items(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        for i in 0..self.items.len() {
            if self.items.get(i).is_some_and(|(_, done)| *done) {
                continue;
            }
            let id = self.item_id(i);
            match self.items.get(i).map(|(item, _)| item) {
                Some(Item::Message { parts }) => {
                    let parts = parts.clone();
                    for (j, (kind, text)) in parts.iter().enumerate() {
                        let (done_kind, field) = if *kind == "refusal" {
                            ("response.refusal.done", "refusal")
                        } else {
                            ("response.output_text.done", "text")
                        };
                        let mut b = Map::new();
                        b.insert("item_id".into(), id.clone().into());
                        b.insert("output_index".into(), i.into());
                        b.insert("content_index".into(), j.into());
                        b.insert(field.into(), text.clone().into());
                        if *kind != "refusal" {
                            b.insert("logprobs".into(), json!([]));
                        }
                        out.push(self.event(done_kind, b));
                        let mut b = Map::new();
                        b.insert("item_id".into(), id.clone().into());
                        b.insert("output_index".into(), i.into());
                        b.insert("content_index".into(), j.into());
                        b.insert("part".into(), part_json(kind, text));
                        out.push(self.event("response.content_part.done", b));
                    }
                }
                Some(Item::Call { arguments, .. }) => {
                    let mut b = Map::new();
                    b.insert("item_id".into(), id.clone().into());
                    b.insert("output_index".into(), i.into());
                    b.insert("arguments".into(), arguments.clone().into());
                    out.push(self.event("response.function_call_arguments.done", b));
                }
                None => {}
            }
            if let Some((_, done)) = self.items.get_mut(i) {
                *done = true;
            }
            let mut b = Map::new();
            b.insert("output_index".into(), i.into());
            b.insert("item".into(), self.item_json(i, "completed"));
            out.push(self.event("response.output_item.done", b));
        }
        out
    }

    /// Text of kind `kind` (`output_text` or `refusal`) for the message item.
    fn text(&mut self, kind: &'static str, text: &str) -> Vec<Bytes> {
        let mut out = Vec::new();
        let open = self
            .items
            .iter()
            .position(|(item, done)| !done && matches!(item, Item::Message { .. }));
        let i = match open {
            Some(i) => i,
            None => {
                out.extend(self.close_items());
                self.items
                    .push((Item::Message { parts: Vec::new() }, false));
                let i = self.items.len() - 1;
                let mut b = Map::new();
                b.insert("output_index".into(), i.into());
                b.insert("item".into(), self.item_json(i, "in_progress"));
                out.push(self.event("response.output_item.added", b));
                i
            }
        };
        let id = self.item_id(i);
        let Some((Item::Message { parts }, _)) = self.items.get_mut(i) else {
            return out;
        };
        let j = match parts.iter().position(|(k, _)| *k == kind) {
            Some(j) => j,
            None => {
                parts.push((kind, String::new()));
                let j = parts.len() - 1;
                let mut b = Map::new();
                b.insert("item_id".into(), id.clone().into());
                b.insert("output_index".into(), i.into());
                b.insert("content_index".into(), j.into());
                b.insert("part".into(), part_json(kind, ""));
                out.push(self.event("response.content_part.added", b));
                j
            }
        };
        if let Some((Item::Message { parts }, _)) = self.items.get_mut(i) {
            if let Some((_, t)) = parts.get_mut(j) {
                t.push_str(text);
            }
        }
        let mut b = Map::new();
        b.insert("item_id".into(), id.into());
        b.insert("output_index".into(), i.into());
        b.insert("content_index".into(), j.into());
        b.insert("delta".into(), text.into());
        let kind = if kind == "refusal" {
            "response.refusal.delta"
        } else {
            b.insert("logprobs".into(), json!([]));
            "response.output_text.delta"
        };
        out.push(self.event(kind, b));
        out
    }
}

fn part_json(kind: &str, text: &str) -> Value {
    if kind == "refusal" {
        json!({"type": "refusal", "refusal": text})
    } else {
        json!({"type": "output_text", "text": text, "annotations": []})
    }
}

impl Encoder for Stream {
    fn open(&mut self) -> Vec<Bytes> {
        let snapshot = Value::Object(self.response.clone());
        let mut b = Map::new();
        b.insert("response".into(), snapshot.clone());
        let created = self.event("response.created", b);
        let mut b = Map::new();
        b.insert("response".into(), snapshot);
        vec![created, self.event("response.in_progress", b)]
    }

    fn delta(&mut self, d: &Delta) -> Vec<Bytes> {
        match d {
            // one choice is asked for (Responses has no `n`)
            Delta::Text { choice: 0, text } => self.text("output_text", text),
            Delta::Refusal { choice: 0, text } => self.text("refusal", text),
            Delta::ToolCall {
                choice: 0,
                index,
                id,
                name,
                arguments,
            } => {
                let mut out = Vec::new();
                let open = self.items.iter().position(|(item, done)| {
                    !done && matches!(item, Item::Call { index: k, .. } if k == index)
                });
                let i = match open {
                    Some(i) => i,
                    None => {
                        out.extend(self.close_items());
                        self.items.push((
                            Item::Call {
                                index: *index,
                                call_id: id.clone().unwrap_or_default(),
                                name: name.clone().unwrap_or_default(),
                                arguments: String::new(),
                            },
                            false,
                        ));
                        let i = self.items.len() - 1;
                        let mut b = Map::new();
                        b.insert("output_index".into(), i.into());
                        b.insert("item".into(), self.item_json(i, "in_progress"));
                        out.push(self.event("response.output_item.added", b));
                        i
                    }
                };
                if arguments.is_empty() {
                    return out;
                }
                if let Some((Item::Call { arguments: a, .. }, _)) = self.items.get_mut(i) {
                    a.push_str(arguments);
                }
                let mut b = Map::new();
                b.insert("item_id".into(), self.item_id(i).into());
                b.insert("output_index".into(), i.into());
                b.insert("delta".into(), arguments.clone().into());
                out.push(self.event("response.function_call_arguments.delta", b));
                out
            }
            Delta::Finish { choice: 0, reason } => {
                self.finish = Some(reason.clone());
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn close(&mut self, usage_: Option<Usage>, error: Option<(&str, &str, u16)>) -> Vec<Bytes> {
        let mut out = self.close_items();
        let output: Vec<Value> = (0..self.items.len())
            .map(|i| self.item_json(i, "completed"))
            .collect();
        self.response.insert("output".into(), output.into());
        if let Some(u) = usage_ {
            self.response.insert("usage".into(), usage(u));
        }
        let kind = match error {
            Some((code, message, _)) => {
                self.response.insert("status".into(), "failed".into());
                self.response.insert(
                    "error".into(),
                    json!({"code": code, "message": message, "request_id": self.request_id}),
                );
                "response.failed"
            }
            None => {
                let (status, incomplete) = finished(self.finish.as_deref());
                self.response.insert("status".into(), status.into());
                self.response
                    .insert("incomplete_details".into(), incomplete);
                if status == "incomplete" {
                    "response.incomplete"
                } else {
                    "response.completed"
                }
            }
        };
        let mut b = Map::new();
        b.insert("response".into(), Value::Object(self.response.clone()));
        out.push(self.event(kind, b));
        out
    }
}

#[cfg(test)]
mod tests;
