//! The APIs a client calls, each over the one lifecycle of chat completions: a request in the
//! API's own shape is translated to the chat completion request the exchange governs (its texts
//! scanned, its limits bounded, its answer settled), and the governed answer, whole or streamed,
//! is written back in the API's shape. Pure functions over JSON values; the gateway does the I/O.
//!
//! - [`Api::Chat`]: `POST /v1/chat/completions`, as is.
//! - [`Api::Responses`]: `POST /v1/responses` ([`responses`]).
//! - [`Api::Messages`]: `POST /v1/messages`, Anthropic's Messages API ([`messages`]).
//! - [`Api::Embeddings`]: `POST /v1/embeddings` ([`embeddings`]).

pub mod embeddings;
pub mod messages;
pub mod responses;

use bytes::Bytes;
use keeptrusts_core::decision::error_envelope;
use keeptrusts_core::exchange::Delta;
use keeptrusts_core::pricing::Usage;
use keeptrusts_core::request::ChatRequest;
use serde_json::Value;

/// The API a governed request came in by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// OpenAI chat completions.
    Chat,
    /// OpenAI Responses.
    Responses,
    /// Anthropic Messages.
    Messages,
    /// OpenAI embeddings.
    Embeddings,
}

/// A request the API's translation refused: always a 400, with the code and message the client
/// reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// `invalid_request`, `unsupported_parameter`, `unsupported_input`, …
    pub code: &'static str,
    /// What was wrong and where.
    pub message: String,
}

impl Unsupported {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Unsupported {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Unsupported::new("invalid_request", message)
    }

    /// The first field of `body` that is not in `known`, refused by name for `api`.
    pub(crate) fn unknown_field(body: &Value, known: &[&str], api: &str) -> Result<(), Self> {
        match body
            .as_object()
            .into_iter()
            .flatten()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            Some((k, _)) => Err(Unsupported::new(
                "unsupported_parameter",
                format!("`{k}` is not supported by the gateway's {api}"),
            )),
            None => Ok(()),
        }
    }
}

/// What a translation keeps of the client's request to write the answer back in its shape.
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    /// The request as the client sent it (the settings a Responses answer repeats, the embedding
    /// options); `Null` for chat completions.
    pub original: Value,
}

impl Api {
    /// The chat completion request this API's body stands for.
    ///
    /// # Errors
    /// The body is not this API's request, or asks for what the gateway does not translate.
    pub fn parse(self, body: &[u8]) -> Result<(ChatRequest, Inbound), Unsupported> {
        if self == Api::Chat {
            let r = serde_json::from_slice(body).map_err(|e| {
                Unsupported::invalid(format!("the body is not a chat completion request: {e}"))
            })?;
            return Ok((r, Inbound::default()));
        }
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| Unsupported::invalid(format!("the body is not JSON: {e}")))?;
        if !v.is_object() {
            return Err(Unsupported::invalid("the body must be a JSON object"));
        }
        let chat = match self {
            Api::Responses => responses::to_chat(&v)?,
            Api::Messages => messages::to_chat(&v)?,
            Api::Embeddings => embeddings::to_chat(&v)?,
            Api::Chat => unreachable!("handled above"),
        };
        let request = serde_json::from_value(chat).map_err(|e| {
            Unsupported::invalid(format!("the request could not be translated: {e}"))
        })?;
        Ok((request, Inbound { original: v }))
    }

    /// The governed chat completion `answer` in this API's shape (embeddings are answered from
    /// the provider's vectors instead: [`embeddings::answer`]).
    pub fn render(self, answer: Value, inbound: &Inbound, request_id: &str) -> Value {
        match self {
            Api::Chat | Api::Embeddings => answer,
            Api::Responses => responses::from_chat(&answer, &inbound.original, request_id),
            Api::Messages => messages::from_chat(&answer, request_id),
        }
    }

    /// The writer of a streamed answer in this API's shape.
    pub fn encoder(self, inbound: &Inbound, request_id: &str, model: &str) -> Box<dyn Encoder> {
        match self {
            Api::Responses => {
                Box::new(responses::Stream::new(&inbound.original, request_id, model))
            }
            Api::Messages => Box::new(messages::Stream::new(request_id, model)),
            Api::Chat | Api::Embeddings => Box::new(ChatStream::new(request_id, model)),
        }
    }

    /// The error body in this API's shape, from the gateway's envelope (`{"error": {type, code,
    /// message, request_id, …}}`).
    pub fn error_body(self, status: u16, envelope: Value) -> Value {
        match self {
            Api::Messages => messages::error_body(status, envelope),
            _ => envelope,
        }
    }
}

/// Writes a governed stream in an API's shape: the deltas that passed the output detectors,
/// then the end (the settled usage, or the error that stopped it).
pub trait Encoder: Send {
    /// The frames sent before the first delta.
    fn open(&mut self) -> Vec<Bytes>;
    /// The frames of one governed delta.
    fn delta(&mut self, d: &Delta) -> Vec<Bytes>;
    /// The last frames: `usage` is what was settled (`None` when the client did not ask for it
    /// in a chat completion stream); `error` (code, message, status) ends the stream instead.
    fn close(&mut self, usage: Option<Usage>, error: Option<(&str, &str, u16)>) -> Vec<Bytes>;
    /// The last frames of a stream whose settlement and event the store did not commit in
    /// time: an error (503 `audit_unavailable`) instead of the end.
    fn withheld(&mut self, message: &str) -> Vec<Bytes> {
        self.close(None, Some(("audit_unavailable", message, 503)))
    }
}

/// One SSE frame with only `data:`.
pub fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// One SSE frame with an `event:` name.
pub fn sse_event(name: &str, v: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {v}\n\n"))
}

/// A chat completion stream: chunks, the usage chunk when asked for, `[DONE]`.
struct ChatStream {
    id: Value,
    created: Value,
    model: Value,
    request_id: String,
}

impl ChatStream {
    fn new(request_id: &str, model: &str) -> Self {
        ChatStream {
            id: format!("chatcmpl-{request_id}").into(),
            created: (crate::backend::now_ms() / 1000).into(),
            model: model.into(),
            request_id: request_id.to_owned(),
        }
    }
}

impl Encoder for ChatStream {
    fn open(&mut self) -> Vec<Bytes> {
        Vec::new()
    }

    fn delta(&mut self, d: &Delta) -> Vec<Bytes> {
        vec![sse(&d.to_chunk(&self.id, &self.created, &self.model))]
    }

    fn close(&mut self, usage: Option<Usage>, error: Option<(&str, &str, u16)>) -> Vec<Bytes> {
        let mut out = Vec::new();
        match error {
            Some((code, message, status)) => {
                out.push(sse(&error_envelope(
                    status,
                    code,
                    message,
                    &self.request_id,
                )));
            }
            None => {
                if let Some(u) = usage {
                    let d = Delta::Usage {
                        prompt_tokens: u.prompt_tokens,
                        completion_tokens: u.completion_tokens,
                    };
                    out.push(sse(&d.to_chunk(&self.id, &self.created, &self.model)));
                }
            }
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        out
    }

    /// The error event instead of `[DONE]`: the stream is not complete.
    fn withheld(&mut self, message: &str) -> Vec<Bytes> {
        vec![sse(&error_envelope(
            503,
            "audit_unavailable",
            message,
            &self.request_id,
        ))]
    }
}

/// The text of a string or of a list of parts' `text` fields (joined without separator).
pub(crate) fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// The usage of a chat completion answer.
pub(crate) fn usage_of(answer: &Value) -> Usage {
    answer
        .get("usage")
        .and_then(keeptrusts_core::exchange::usage_of)
        .unwrap_or_default()
}
