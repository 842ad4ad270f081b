//! The output phase of a stream: [`Delta`]s parsed from the provider's chunks, each choice's
//! texts through the principal's output detectors ([`Relay`]).

use super::*;

/// One piece of a streamed answer, as the host parsed it from the provider's events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Delta {
    /// Text of a choice.
    Text {
        /// Choice index.
        choice: u32,
        /// The text.
        text: String,
    },
    /// Refusal text of a choice (`delta.refusal`).
    Refusal {
        /// Choice index.
        choice: u32,
        /// The text.
        text: String,
    },
    /// A piece of a tool call of a choice.
    ToolCall {
        /// Choice index.
        choice: u32,
        /// Tool call index within the choice.
        index: u32,
        /// Call id (first piece).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Function name (first piece).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// A piece of the JSON arguments.
        arguments: String,
    },
    /// A choice finished.
    Finish {
        /// Choice index.
        choice: u32,
        /// `stop`, `length`, `tool_calls`, …
        reason: String,
    },
    /// The provider's usage (never passed on as is: see [`StreamClose::usage`]).
    Usage {
        /// Prompt tokens.
        prompt_tokens: u64,
        /// Completion tokens.
        completion_tokens: u64,
    },
}

impl Delta {
    /// The deltas of one OpenAI chat completion chunk: each choice's text, refusal, tool-call
    /// pieces and finish, and the usage chunk. Nothing else of a chunk is passed on (neither
    /// `logprobs`, which cannot be redacted, nor audio).
    pub fn from_chunk(v: &serde_json::Value) -> Vec<Delta> {
        let index = |v: Option<&serde_json::Value>, default: usize| {
            v.and_then(serde_json::Value::as_u64)
                .and_then(|i| u32::try_from(i).ok())
                .unwrap_or(u32::try_from(default).unwrap_or(u32::MAX))
        };
        let mut out = Vec::new();
        for c in v
            .get("choices")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            let choice = index(c.get("index"), 0);
            let delta = c.get("delta");
            if let Some(t) = delta
                .and_then(|d| d.get("content"))
                .and_then(serde_json::Value::as_str)
                .filter(|t| !t.is_empty())
            {
                out.push(Delta::Text {
                    choice,
                    text: t.to_owned(),
                });
            }
            if let Some(t) = delta
                .and_then(|d| d.get("refusal"))
                .and_then(serde_json::Value::as_str)
                .filter(|t| !t.is_empty())
            {
                out.push(Delta::Refusal {
                    choice,
                    text: t.to_owned(),
                });
            }
            for (k, tc) in delta
                .and_then(|d| d.get("tool_calls"))
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let s = |p: &str| {
                    tc.pointer(p)
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned)
                };
                out.push(Delta::ToolCall {
                    choice,
                    index: index(tc.get("index"), k),
                    id: s("/id"),
                    name: s("/function/name"),
                    arguments: s("/function/arguments").unwrap_or_default(),
                });
            }
            if let Some(r) = c.get("finish_reason").and_then(serde_json::Value::as_str) {
                out.push(Delta::Finish {
                    choice,
                    reason: r.to_owned(),
                });
            }
        }
        if let Some(u) = v.get("usage").and_then(usage_of) {
            out.push(Delta::Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            });
        }
        out
    }

    /// The chat completion chunk that carries this delta.
    pub fn to_chunk(
        &self,
        id: &serde_json::Value,
        created: &serde_json::Value,
        model: &serde_json::Value,
    ) -> serde_json::Value {
        let choice = |index: u32, delta: serde_json::Value, finish: Option<&str>| {
            serde_json::json!({"id": id, "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": [{"index": index, "delta": delta, "finish_reason": finish}]})
        };
        match self {
            Delta::Text { choice: c, text } => {
                choice(*c, serde_json::json!({"content": text}), None)
            }
            Delta::Refusal { choice: c, text } => {
                choice(*c, serde_json::json!({"refusal": text}), None)
            }
            Delta::ToolCall {
                choice: c,
                index,
                id: call_id,
                name,
                arguments,
            } => {
                let mut function = serde_json::Map::new();
                if let Some(n) = name {
                    function.insert("name".into(), serde_json::json!(n));
                }
                function.insert("arguments".into(), serde_json::json!(arguments));
                let mut call = serde_json::Map::new();
                call.insert("index".into(), serde_json::json!(index));
                if let Some(i) = call_id {
                    call.insert("id".into(), serde_json::json!(i));
                    call.insert("type".into(), serde_json::json!("function"));
                }
                call.insert("function".into(), serde_json::Value::Object(function));
                choice(*c, serde_json::json!({"tool_calls": [call]}), None)
            }
            Delta::Finish { choice: c, reason } => choice(*c, serde_json::json!({}), Some(reason)),
            Delta::Usage {
                prompt_tokens,
                completion_tokens,
            } => {
                serde_json::json!({"id": id, "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": [],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens.saturating_add(*completion_tokens)}})
            }
        }
    }
}

/// Which text of a choice a relay filter governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Text,
    Refusal,
    Tool(u32),
}

/// The output phase of a stream: each choice's text, refusal and tool call arguments through
/// the principal's output detectors, with their hold-back; usage kept for the settlement.
#[derive(Debug)]
pub struct Relay {
    engine: Engine,
    principal: Principal,
    /// (choice, which text) → filter.
    slots: Vec<((u32, Slot), crate::engine::OutputFilter<'static>)>,
    /// Choices the provider finished.
    finished: Vec<u32>,
    usage: Option<Usage>,
    seen: bool,
    /// `id`, `created` and `model` of the provider's chunks (for [`Relay::push_chunk`]).
    meta: Option<(serde_json::Value, serde_json::Value, serde_json::Value)>,
}

impl Relay {
    pub(super) fn new(engine: &Engine, principal: &Principal) -> Relay {
        Relay {
            engine: engine.clone(),
            principal: principal.clone(),
            slots: Vec::new(),
            finished: Vec::new(),
            usage: None,
            seen: false,
            meta: None,
        }
    }

    /// Feeds `text` to the filter of `key` (made on first use).
    fn filter(&mut self, key: (u32, Slot), text: &str) -> Result<String, String> {
        let pos = match self.slots.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                self.slots
                    .push((key, self.engine.output_filter(&self.principal)));
                self.slots.len() - 1
            }
        };
        match self.slots.get_mut(pos) {
            Some((_, f)) => f.push(text).map_err(|k| k.to_string()),
            None => Ok(text.to_owned()),
        }
    }

    /// Whether the provider sent anything yet.
    pub fn started(&self) -> bool {
        self.seen
    }

    /// The usage the provider reported, if it did.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Feeds one delta; returns what is safe to send now.
    ///
    /// # Errors
    /// The name of the policy whose `action: block` found sensitive data: stop the stream.
    pub fn push(&mut self, delta: Delta) -> Result<Vec<Delta>, String> {
        self.seen = true;
        match delta {
            Delta::Text { choice, text } => {
                let safe = self.filter((choice, Slot::Text), &text)?;
                Ok(if safe.is_empty() {
                    Vec::new()
                } else {
                    vec![Delta::Text { choice, text: safe }]
                })
            }
            Delta::Refusal { choice, text } => {
                let safe = self.filter((choice, Slot::Refusal), &text)?;
                Ok(if safe.is_empty() {
                    Vec::new()
                } else {
                    vec![Delta::Refusal { choice, text: safe }]
                })
            }
            Delta::ToolCall {
                choice,
                index,
                id,
                name,
                arguments,
            } => {
                let safe = self.filter((choice, Slot::Tool(index)), &arguments)?;
                if safe.is_empty() && id.is_none() && name.is_none() {
                    return Ok(Vec::new());
                }
                Ok(vec![Delta::ToolCall {
                    choice,
                    index,
                    id,
                    name,
                    arguments: safe,
                }])
            }
            Delta::Finish { choice, reason } => {
                let mut out = self.flush(Some(choice))?;
                self.finished.push(choice);
                out.push(Delta::Finish { choice, reason });
                Ok(out)
            }
            Delta::Usage {
                prompt_tokens,
                completion_tokens,
            } => {
                self.usage = Some(Usage {
                    prompt_tokens,
                    completion_tokens,
                });
                Ok(Vec::new())
            }
        }
    }

    /// The provider ended the stream: the text still held back, redacted, then a `stop` finish
    /// for each choice the provider left unfinished (some OpenAI-compatible servers send none).
    ///
    /// # Errors
    /// As [`Relay::push`].
    pub fn end(&mut self) -> Result<Vec<Delta>, String> {
        let mut out = self.flush(None)?;
        let mut open: Vec<u32> = self.slots.iter().map(|((c, _), _)| *c).collect();
        if open.is_empty() && self.finished.is_empty() {
            open.push(0);
        }
        open.sort_unstable();
        open.dedup();
        for choice in open {
            if !self.finished.contains(&choice) {
                self.finished.push(choice);
                out.push(Delta::Finish {
                    choice,
                    reason: "stop".into(),
                });
            }
        }
        Ok(out)
    }

    /// Feeds one OpenAI chat completion chunk (as a provider or an app streams it); returns the
    /// chunks that are safe to send now, in the same shape (its `id`, `created` and `model`).
    ///
    /// # Errors
    /// As [`Relay::push`].
    pub fn push_chunk(
        &mut self,
        chunk: &serde_json::Value,
    ) -> Result<Vec<serde_json::Value>, String> {
        let field = |k: &str| chunk.get(k).cloned().unwrap_or(serde_json::Value::Null);
        if self.meta.is_none() || chunk.get("id").is_some() {
            self.meta = Some((field("id"), field("created"), field("model")));
        }
        let mut out = Vec::new();
        for d in Delta::from_chunk(chunk) {
            out.extend(self.push(d)?);
        }
        Ok(out.iter().map(|d| self.chunk_of(d)).collect())
    }

    /// [`Relay::end`] as chunks (see [`Relay::push_chunk`]).
    ///
    /// # Errors
    /// As [`Relay::push`].
    pub fn end_chunks(&mut self) -> Result<Vec<serde_json::Value>, String> {
        let out = self.end()?;
        Ok(out.iter().map(|d| self.chunk_of(d)).collect())
    }

    /// The chunk that carries `d`, with the stream's `id`, `created` and `model`.
    pub fn chunk_of(&self, d: &Delta) -> serde_json::Value {
        let null = serde_json::Value::Null;
        let (id, created, model) = match &self.meta {
            Some((i, c, m)) => (i, c, m),
            None => (&null, &null, &null),
        };
        d.to_chunk(id, created, model)
    }

    /// The text still held back (of one choice, or of all), redacted: send it before the end.
    ///
    /// # Errors
    /// As [`Relay::push`].
    pub fn flush(&mut self, choice: Option<u32>) -> Result<Vec<Delta>, String> {
        let mut out = Vec::new();
        for ((c, tool), f) in &mut self.slots {
            if choice.is_some_and(|x| x != *c) {
                continue;
            }
            let rest = f.finish().map_err(|k| k.to_string())?;
            if rest.is_empty() {
                continue;
            }
            out.push(match tool {
                Slot::Text => Delta::Text {
                    choice: *c,
                    text: rest,
                },
                Slot::Refusal => Delta::Refusal {
                    choice: *c,
                    text: rest,
                },
                Slot::Tool(index) => Delta::ToolCall {
                    choice: *c,
                    index: *index,
                    id: None,
                    name: None,
                    arguments: rest,
                },
            });
        }
        Ok(out)
    }
}
