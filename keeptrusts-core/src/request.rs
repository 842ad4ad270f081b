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

impl ChatMessage {
    /// The message's texts (content, content parts, tool-call arguments) without allocating.
    pub(crate) fn texts(&self) -> impl Iterator<Item = &String> {
        let (single, parts) = match &self.content {
            Some(Content::Text(t)) => (Some(t), None),
            Some(Content::Parts(p)) => (None, Some(p)),
            None => (None, None),
        };
        let args = self
            .tool_calls
            .iter()
            .flatten()
            .filter_map(|c| c.function.as_ref().and_then(|f| f.arguments.as_ref()));
        single
            .into_iter()
            .chain(parts.into_iter().flatten().filter_map(|p| p.text.as_ref()))
            .chain(args)
    }

    fn texts_mut(&mut self) -> Vec<&mut String> {
        let mut v: Vec<&mut String> = match &mut self.content {
            Some(Content::Text(t)) => vec![t],
            Some(Content::Parts(parts)) => {
                parts.iter_mut().filter_map(|p| p.text.as_mut()).collect()
            }
            None => Vec::new(),
        };
        v.extend(
            self.tool_calls
                .iter_mut()
                .flatten()
                .filter_map(|c| c.function.as_mut().and_then(|f| f.arguments.as_mut())),
        );
        v
    }
}

/// Anything whose text the detectors scan and rewrite.
pub trait Texts {
    /// Every text, in a fixed order, with the role of the message it belongs to.
    fn texts(&self) -> Vec<(&str, &String)>;
    /// The same texts, mutable, in the same order.
    fn texts_mut(&mut self) -> Vec<&mut String>;
}

impl Texts for ChatRequest {
    fn texts(&self) -> Vec<(&str, &String)> {
        self.messages
            .iter()
            .flat_map(|m| m.texts().map(move |t| (m.role.as_str(), t)))
            .collect()
    }

    fn texts_mut(&mut self) -> Vec<&mut String> {
        self.messages
            .iter_mut()
            .flat_map(ChatMessage::texts_mut)
            .collect()
    }
}

impl Texts for ChatResponse {
    fn texts(&self) -> Vec<(&str, &String)> {
        self.choices
            .iter()
            .flat_map(|c| c.message.iter().chain(c.delta.iter()))
            .flat_map(|m| m.texts().map(move |t| (m.role.as_str(), t)))
            .collect()
    }

    fn texts_mut(&mut self) -> Vec<&mut String> {
        self.choices
            .iter_mut()
            .flat_map(|c| c.message.iter_mut().chain(c.delta.iter_mut()))
            .flat_map(ChatMessage::texts_mut)
            .collect()
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
