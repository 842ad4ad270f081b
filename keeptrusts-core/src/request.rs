//! OpenAI-style chat requests and responses, as the engine sees them.
//!
//! Unknown fields are kept (`extra`) so a rewritten request or response can be forwarded with
//! everything the engine did not touch.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// `POST /v1/chat/completions` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The conversation.
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
    /// Output token limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Every other field, forwarded untouched.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, `tool`, …
    #[serde(default)]
    pub role: String,
    /// Text or content parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Tool calls (assistant messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Every other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatMessage {
    /// A plain text message.
    pub fn text(role: &str, content: &str) -> Self {
        ChatMessage {
            role: role.to_owned(),
            content: Some(Content::Text(content.to_owned())),
            ..Default::default()
        }
    }
}

/// Message content: a string or a list of parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Typed parts (`text`, `image_url`, …).
    Parts(Vec<ContentPart>),
}

/// One content part.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContentPart {
    /// Part type.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Text of a `text` part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Every other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A tool call.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ToolCall {
    /// The function called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCall>,
    /// Every other field (`id`, `type`, `index`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The function part of a tool call.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FunctionCall {
    /// JSON-encoded arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
    /// Every other field (`name`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A chat completion response (or one streaming chunk, with `delta` instead of `message`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatResponse {
    /// Choices.
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// Every other field (`id`, `usage`, `model`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One choice.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Choice {
    /// The message (non-streaming).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<ChatMessage>,
    /// The delta (streaming).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<ChatMessage>,
    /// Every other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a governed text is. Every text a detector scans and a redactor rewrites is one of
/// these; [`Texts::fields`] lists them in one fixed order, and so does [`Texts::texts_mut`].
///
/// In a request: each message's `content` (a string, or the `text` of each part), `refusal`
/// (the message's, or a `refusal` part's), `name`, `tool_calls[].function.arguments`, the
/// legacy `function_call.arguments` and `audio.transcript`; the `description` of each of
/// `tools[].function` and of the legacy `functions[]`, and every `description` and `title`
/// inside their `parameters` schema; `response_format.json_schema`'s `description` and the
/// `description`s and `title`s of its `schema`; `prediction.content` (a string or text parts);
/// `user`; and the string values of `metadata`. In an answer: the same fields of each choice's
/// `message` and `delta`. A field anywhere else is not a text: the schema's structure (types,
/// property names, `enum`, `pattern`, `$schema`), ids, names of functions, numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `content` (string or text parts).
    Content,
    /// `refusal` (of a message or a content part).
    Refusal,
    /// `name` of a message.
    Name,
    /// `tool_calls[].function.arguments`.
    ToolArguments,
    /// The legacy `function_call.arguments`.
    FunctionArguments,
    /// `audio.transcript`.
    AudioTranscript,
    /// `description` of a tool or a legacy function.
    ToolDescription,
    /// A `description` or `title` inside a tool's `parameters` or a response schema, or the
    /// response schema's own `description`.
    SchemaText,
    /// `prediction.content`.
    Prediction,
    /// `user` (the end-user id).
    User,
    /// A string value of `metadata`.
    Metadata,
}

impl Field {
    /// The field's JSON path, as docs and diagnostics name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Content => "content",
            Field::Refusal => "refusal",
            Field::Name => "name",
            Field::ToolArguments => "tool_calls.function.arguments",
            Field::FunctionArguments => "function_call.arguments",
            Field::AudioTranscript => "audio.transcript",
            Field::ToolDescription => "function.description",
            Field::SchemaText => "schema.description",
            Field::Prediction => "prediction.content",
            Field::User => "user",
            Field::Metadata => "metadata",
        }
    }
}

/// One governed text: the role of the message it belongs to (`""` for fields of the request
/// itself, such as tools), what it is, and the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text<'a> {
    /// The message's role, or `""`.
    pub role: &'a str,
    /// Which field.
    pub field: Field,
    /// The text.
    pub text: &'a String,
}

/// The one walk over the governed fields (see [`Field`]), written once and expanded twice: over
/// shared references (to scan) and over mutable ones (to rewrite), so the two cannot visit
/// different fields or visit them in a different order. `[$($m)*]` is empty or `mut`; the role
/// passed to the visitor lives as long as the walk's borrow only for the shared walk
/// (`[$($rl)?]` = `'a`).
macro_rules! walk {
    ($schema:ident, $function:ident, $message:ident, $request:ident, $response:ident,
     [$($m:tt)*], [$($rl:lifetime)?]) => {
        /// Every `description` and `title` string inside a JSON schema (any depth).
        fn $schema<'a>(
            v: &'a $($m)* Value,
            f: &mut dyn FnMut(&$($rl)? str, Field, &'a $($m)* String),
        ) {
            match v {
                Value::Object(map) => {
                    for (k, v) in map {
                        match (k.as_str(), v) {
                            ("description" | "title", Value::String(t)) => {
                                f("", Field::SchemaText, t)
                            }
                            (_, v @ (Value::Object(_) | Value::Array(_))) => $schema(v, f),
                            _ => {}
                        }
                    }
                }
                Value::Array(items) => {
                    for v in items {
                        $schema(v, f);
                    }
                }
                _ => {}
            }
        }

        /// A tool's `function` or a legacy `functions[]` entry: its description and schema.
        fn $function<'a>(
            v: &'a $($m)* Value,
            f: &mut dyn FnMut(&$($rl)? str, Field, &'a $($m)* String),
        ) {
            let Value::Object(map) = v else { return };
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("description", Value::String(t)) => f("", Field::ToolDescription, t),
                    ("parameters", v) => $schema(v, f),
                    _ => {}
                }
            }
        }

        fn $message<'a>(
            m: &'a $($m)* ChatMessage,
            f: &mut dyn FnMut(&$($rl)? str, Field, &'a $($m)* String),
        ) {
            let ChatMessage { role, content, tool_calls, extra } = m;
            let role: &$($rl)? str = role.as_str();
            match content {
                Some(Content::Text(t)) => f(role, Field::Content, t),
                Some(Content::Parts(parts)) => {
                    for p in parts {
                        let ContentPart { text, extra, .. } = p;
                        if let Some(t) = text {
                            f(role, Field::Content, t);
                        }
                        for (k, v) in extra {
                            if let ("refusal", Value::String(t)) = (k.as_str(), v) {
                                f(role, Field::Refusal, t);
                            }
                        }
                    }
                }
                None => {}
            }
            if let Some(calls) = tool_calls {
                for c in calls {
                    if let Some(FunctionCall { arguments: Some(t), .. }) = &$($m)* c.function {
                        f(role, Field::ToolArguments, t);
                    }
                }
            }
            for (k, v) in extra {
                match (k.as_str(), v) {
                    ("refusal", Value::String(t)) => f(role, Field::Refusal, t),
                    ("name", Value::String(t)) => f(role, Field::Name, t),
                    ("function_call", Value::Object(call)) => {
                        for (k, v) in call {
                            if let ("arguments", Value::String(t)) = (k.as_str(), v) {
                                f(role, Field::FunctionArguments, t);
                            }
                        }
                    }
                    ("audio", Value::Object(audio)) => {
                        for (k, v) in audio {
                            if let ("transcript", Value::String(t)) = (k.as_str(), v) {
                                f(role, Field::AudioTranscript, t);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }

        fn $request<'a>(
            r: &'a $($m)* ChatRequest,
            f: &mut dyn FnMut(&$($rl)? str, Field, &'a $($m)* String),
        ) {
            let ChatRequest { messages, extra, .. } = r;
            for m in messages {
                $message(m, f);
            }
            for (k, v) in extra {
                match (k.as_str(), v) {
                    ("tools", Value::Array(tools)) => {
                        for tool in tools {
                            let Value::Object(tool) = tool else { continue };
                            for (k, v) in tool {
                                if k == "function" {
                                    $function(v, f);
                                }
                            }
                        }
                    }
                    ("functions", Value::Array(functions)) => {
                        for v in functions {
                            $function(v, f);
                        }
                    }
                    ("response_format", Value::Object(format)) => {
                        for (k, v) in format {
                            let ("json_schema", Value::Object(js)) = (k.as_str(), v) else {
                                continue;
                            };
                            for (k, v) in js {
                                match (k.as_str(), v) {
                                    ("description", Value::String(t)) => {
                                        f("", Field::SchemaText, t)
                                    }
                                    ("schema", v) => $schema(v, f),
                                    _ => {}
                                }
                            }
                        }
                    }
                    ("prediction", Value::Object(p)) => {
                        for (k, v) in p {
                            match (k.as_str(), v) {
                                ("content", Value::String(t)) => f("", Field::Prediction, t),
                                ("content", Value::Array(parts)) => {
                                    for part in parts {
                                        let Value::Object(part) = part else { continue };
                                        for (k, v) in part {
                                            if let ("text", Value::String(t)) = (k.as_str(), v) {
                                                f("", Field::Prediction, t);
                                            }
                                        }
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    ("user", Value::String(t)) => f("", Field::User, t),
                    ("metadata", Value::Object(meta)) => {
                        for (_, v) in meta {
                            if let Value::String(t) = v {
                                f("", Field::Metadata, t);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }

        fn $response<'a>(
            r: &'a $($m)* ChatResponse,
            f: &mut dyn FnMut(&$($rl)? str, Field, &'a $($m)* String),
        ) {
            for c in &$($m)* r.choices {
                let Choice { message, delta, .. } = c;
                for m in message.into_iter().chain(delta) {
                    $message(m, f);
                }
            }
        }
    };
}

walk!(
    schema_texts,
    function_texts,
    message_texts,
    request_texts,
    response_texts,
    [],
    ['a]
);
walk!(
    schema_texts_mut,
    function_texts_mut,
    message_texts_mut,
    request_texts_mut,
    response_texts_mut,
    [mut],
    []
);

/// Anything whose text the detectors scan and rewrite: requests and answers. The fields are
/// those of [`Field`], in one fixed order shared by every method.
pub trait Texts {
    /// Every governed text, in the walk's order.
    fn fields(&self) -> Vec<Text<'_>>;

    /// The same texts, mutable, in the same order.
    fn texts_mut(&mut self) -> Vec<&mut String>;

    /// Every governed text with the role of the message it belongs to (`""` for fields of the
    /// request itself).
    fn texts(&self) -> Vec<(&str, &String)> {
        self.fields()
            .into_iter()
            .map(|t| (t.role, t.text))
            .collect()
    }
}

impl Texts for ChatRequest {
    fn fields(&self) -> Vec<Text<'_>> {
        let mut out = Vec::new();
        request_texts(self, &mut |role, field, text| {
            out.push(Text { role, field, text });
        });
        out
    }

    fn texts_mut(&mut self) -> Vec<&mut String> {
        let mut out = Vec::new();
        request_texts_mut(self, &mut |_, _, text| out.push(text));
        out
    }
}

impl Texts for ChatResponse {
    fn fields(&self) -> Vec<Text<'_>> {
        let mut out = Vec::new();
        response_texts(self, &mut |role, field, text| {
            out.push(Text { role, field, text });
        });
        out
    }

    fn texts_mut(&mut self) -> Vec<&mut String> {
        let mut out = Vec::new();
        response_texts_mut(self, &mut |_, _, text| out.push(text));
        out
    }
}

impl ChatResponse {
    /// Drops every choice's `logprobs` (sets it to `null`): they repeat the answer token by
    /// token and list alternatives, so no redaction can be made in them. Returns whether any
    /// choice carried some.
    pub fn drop_logprobs(&mut self) -> bool {
        let mut dropped = false;
        for c in &mut self.choices {
            if let Some(v) = c.extra.get_mut("logprobs") {
                if !v.is_null() {
                    *v = Value::Null;
                    dropped = true;
                }
            }
        }
        dropped
    }

    /// Whether any choice carries `logprobs`.
    pub fn has_logprobs(&self) -> bool {
        self.choices
            .iter()
            .any(|c| c.extra.get("logprobs").is_some_and(|v| !v.is_null()))
    }
}

impl ChatRequest {
    /// A request with one user message.
    pub fn user(model: &str, text: &str) -> Self {
        ChatRequest {
            model: Some(model.to_owned()),
            messages: vec![ChatMessage::text("user", text)],
            ..Default::default()
        }
    }

    /// Hex SHA-256 of everything the request bills and says: the model, every message whole
    /// (texts, names, tool calls, images), `max_tokens`, and every other field (`n`, `tools`,
    /// `max_completion_tokens`, `response_format`, …) except how the answer is delivered
    /// (`stream`, `stream_options`). Each part is length-prefixed canonical JSON (keys sorted), so
    /// no two different requests share an encoding. An approval (escalation or cost ticket)
    /// binds this value: a retry that asks for more output, more choices or other tools is
    /// another request.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |b: &[u8]| {
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        };
        field(b"kt-fingerprint-v2");
        field(self.model.as_deref().unwrap_or("").as_bytes());
        for m in &self.messages {
            field(&serde_json::to_vec(m).unwrap_or_default());
        }
        field(b"max_tokens");
        field(&serde_json::to_vec(&self.max_tokens).unwrap_or_default());
        for (k, v) in &self.extra {
            if k == "stream" || k == "stream_options" {
                continue;
            }
            field(k.as_bytes());
            field(&serde_json::to_vec(v).unwrap_or_default());
        }
        let digest = h.finalize();
        hex(&digest)
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A request with a text in every governed field.
    fn every_field() -> ChatRequest {
        serde_json::from_value(serde_json::json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "user", "name": "n", "content": [{"type": "text", "text": "t"}]},
                {"role": "assistant", "content": "c", "refusal": "r",
                 "function_call": {"name": "f", "arguments": "{}"},
                 "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                 "audio": {"id": "a", "transcript": "tr"}},
                {"role": "assistant", "content": [{"type": "refusal", "refusal": "r2"}]}
            ],
            "tools": [{"type": "function", "function": {"name": "f", "description": "d",
                "parameters": {"type": "object", "properties": {"p": {"type": "string", "description": "pd"}}}}}],
            "functions": [{"name": "g", "description": "d2", "parameters": {"title": "pt"}}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "description": "sd",
                "schema": {"type": "object", "description": "sd2"}}},
            "prediction": {"type": "content", "content": [{"type": "text", "text": "p"}]},
            "user": "u",
            "metadata": {"k": "v"}
        }))
        .unwrap()
    }

    #[test]
    fn one_walk_names_every_field_in_one_order() {
        let r = every_field();
        let fields: std::collections::HashSet<Field> = r.fields().iter().map(|t| t.field).collect();
        assert_eq!(fields.len(), 11, "{fields:?}");
        let shared: Vec<String> = r.texts().into_iter().map(|(_, t)| t.clone()).collect();
        let mut m = r.clone();
        let mutable: Vec<String> = m.texts_mut().into_iter().map(|t| t.clone()).collect();
        assert_eq!(shared, mutable);
        assert_eq!(shared.len(), 17, "{shared:?}");
        // the schema's structure is no text
        assert!(!shared
            .iter()
            .any(|t| t == "object" || t == "string" || t == "f"));
    }

    #[test]
    fn the_fingerprint_and_the_estimate_cover_every_governed_field() {
        // both read the whole request, a superset of the governed fields: growing any governed
        // text changes the fingerprint and raises the input bound by at least its bytes
        let r = every_field();
        let (fp, bound) = (r.fingerprint(), crate::pricing::estimate_input_tokens(&r));
        let n = r.fields().len();
        for i in 0..n {
            let mut grown = r.clone();
            if let Some(t) = grown.texts_mut().into_iter().nth(i) {
                t.push_str(&"x".repeat(1000));
            }
            assert_ne!(grown.fingerprint(), fp, "field {i}");
            assert!(
                crate::pricing::estimate_input_tokens(&grown) >= bound + 1000,
                "field {i}"
            );
        }
    }

    #[test]
    fn numbers_pass_through_unchanged() {
        // a fuzz finding (fuzz/seeds/gateway_request/regression-ecfccd81fe7b): without
        // serde_json's float_roundtrip, 9.9000000009e70 came back as 9.900000000899999e70
        let src =
            r#"{"model":"gpt-4o-mini","messages":[],"messageq":9.9000000009e70,"temperature":0.7}"#;
        let r: ChatRequest = serde_json::from_str(src).unwrap();
        let out = serde_json::to_string(&r).unwrap();
        let again: ChatRequest = serde_json::from_str(&out).unwrap();
        assert_eq!(serde_json::to_string(&again).unwrap(), out);
        assert!(out.contains("9.9000000009e+70"), "{out}");
    }

    #[test]
    fn the_fingerprint_binds_everything_billable() {
        let base = ChatRequest::user("gpt-4o-mini", "summarise this");
        let fp = base.fingerprint();
        let mut more_output = base.clone();
        more_output.max_tokens = Some(4000);
        let mut more_choices = base.clone();
        more_choices.extra.insert("n".into(), serde_json::json!(8));
        let mut tools = base.clone();
        tools
            .extra
            .insert("tools".into(), serde_json::json!([{"type": "function"}]));
        let mut image = base.clone();
        image.messages[0].content = Some(Content::Parts(vec![ContentPart {
            kind: "image_url".into(),
            text: None,
            extra: serde_json::from_value(
                serde_json::json!({"image_url": {"url": "https://x.test/a.png"}}),
            )
            .unwrap(),
        }]));
        for other in [&more_output, &more_choices, &tools, &image] {
            assert_ne!(other.fingerprint(), fp);
        }
        // how the answer is delivered does not change the request
        let mut streamed = base.clone();
        streamed
            .extra
            .insert("stream".into(), serde_json::Value::Bool(true));
        assert_eq!(streamed.fingerprint(), fp);
    }
}
