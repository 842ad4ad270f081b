//! Calls to the providers: the request each target's API takes, whole answers, streams and embeddings, within the size and time bounds.

use super::*;

/// The most a provider's whole answer may weigh: beyond it the answer is refused (502
/// `upstream_too_large`) rather than buffered.
pub(super) const UPSTREAM_MAX_BODY: usize = 16 << 20;
/// The longest SSE line a provider may send in a stream.
pub(super) const UPSTREAM_MAX_LINE: usize = 1 << 20;

/// Why a 2xx answer could not be used: a code for the client and a message that names no URL.
pub(super) struct Broken {
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl Broken {
    pub(super) fn new(message: impl Into<String>) -> Self {
        Broken {
            code: "upstream_error",
            message: message.into(),
        }
    }
}

/// Calls a target for a whole answer. `Err`: the call failed before a 2xx status (nothing was
/// billed); `Ok(Err)`: a 2xx whose body could not be read.
pub(super) async fn call_json(
    app: &Arc<App>,
    target: &Target,
    r: &ChatRequest,
) -> Result<Result<ChatResponse, Broken>, String> {
    if target.provider == ProviderKind::Mock {
        let MockReply { text, call, usage } = mock_answer(r);
        let (message, finish) = match call {
            Some((id, name, arguments)) => (
                serde_json::json!({"role": "assistant", "content": null, "tool_calls": [{"id": id,
                    "type": "function", "function": {"name": name, "arguments": arguments}}]}),
                "tool_calls",
            ),
            None => (
                serde_json::json!({"role": "assistant", "content": text}),
                "stop",
            ),
        };
        let v = serde_json::json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": backend::now_ms() / 1000,
            "model": target.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                      "total_tokens": usage.prompt_tokens + usage.completion_tokens},
        });
        return Ok(serde_json::from_value(v).map_err(|e| Broken::new(e.to_string())));
    }
    let body = upstream_body(target, r, false)?;
    let resp = send(app, target, chat_path(target), body).await?;
    let bytes = match read_upstream(app, target, resp).await {
        Ok(b) => b,
        Err(b) => return Ok(Err(b)),
    };
    if target.provider == ProviderKind::Anthropic {
        return Ok(serde_json::from_slice::<serde_json::Value>(&bytes)
            .map_err(|e| format!("the provider answered with something that is not JSON: {e}"))
            .and_then(|v| anthropic::response_to_chat(&v, backend::now_ms() / 1000))
            .and_then(|chat| serde_json::from_value(chat).map_err(|e| e.to_string()))
            .map_err(Broken::new));
    }
    Ok(serde_json::from_slice(&bytes).map_err(|e| {
        Broken::new(format!(
            "the provider answered with something that is not a chat completion: {e}"
        ))
    }))
}

/// The body sent to a target: the exchange's request as is for OpenAI-style targets, translated
/// for Anthropic's Messages API (its `max_tokens` is the exchange's limit).
pub(super) fn upstream_body(
    target: &Target,
    r: &ChatRequest,
    stream: bool,
) -> Result<Bytes, String> {
    if target.provider == ProviderKind::Anthropic {
        let v = serde_json::to_value(r).map_err(|e| e.to_string())?;
        let limit = r.max_tokens.unwrap_or(1024);
        let body = anthropic::request_body(&v, &target.model, stream, limit)?;
        return serde_json::to_vec(&body)
            .map(Bytes::from)
            .map_err(|e| e.to_string());
    }
    if !matches!(
        target.provider,
        ProviderKind::Openai | ProviderKind::OpenaiCompatible | ProviderKind::Azure
    ) {
        return Err(format!(
            "provider `{:?}` is not supported by this gateway build yet",
            target.provider
        ));
    }
    serde_json::to_vec(r)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

/// Calls a target's embeddings API with the governed inputs. `Err`: the call failed before a
/// 2xx status (nothing billed); `Ok(Err)`: a 2xx whose body could not be read.
pub(super) async fn call_embeddings(
    app: &Arc<App>,
    target: &Target,
    r: &ChatRequest,
    original: &serde_json::Value,
) -> Result<Result<serde_json::Value, Broken>, String> {
    if target.provider == ProviderKind::Mock {
        let base64 = original
            .get("encoding_format")
            .and_then(serde_json::Value::as_str)
            == Some("base64");
        let dims = original
            .get("dimensions")
            .and_then(serde_json::Value::as_u64)
            .and_then(|d| usize::try_from(d).ok())
            .unwrap_or(8)
            .clamp(1, 4096);
        let inputs = api::embeddings::inputs(r);
        let tokens: u64 = inputs.iter().map(|t| mock_tokens(t.len())).sum();
        let data: Vec<serde_json::Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                serde_json::json!({"object": "embedding", "index": i,
                    "embedding": api::embeddings::encode(&api::embeddings::mock_vector(t, dims), base64)})
            })
            .collect();
        return Ok(Ok(
            serde_json::json!({"object": "list", "data": data, "model": target.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
        ));
    }
    if !matches!(
        target.provider,
        ProviderKind::Openai | ProviderKind::OpenaiCompatible | ProviderKind::Azure
    ) {
        return Err(format!(
            "target `{}` ({:?}) has no embeddings API",
            target.id, target.provider
        ));
    }
    let body = api::embeddings::upstream_body(r, original, &target.model);
    let resp = send(app, target, "embeddings", Bytes::from(body.to_string())).await?;
    Ok(read_json(app, target, resp).await)
}

/// A provider's whole 2xx answer as JSON, within [`UPSTREAM_MAX_BODY`] and the upstream
/// timeout.
pub(super) async fn read_json(
    app: &Arc<App>,
    target: &Target,
    resp: Response<Incoming>,
) -> Result<serde_json::Value, Broken> {
    let bytes = read_upstream(app, target, resp).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Broken::new(format!(
            "the provider answered with something that is not JSON: {e}"
        ))
    })
}

/// A provider's whole 2xx answer, within [`UPSTREAM_MAX_BODY`] and the upstream timeout.
pub(super) async fn read_upstream(
    app: &Arc<App>,
    target: &Target,
    resp: Response<Incoming>,
) -> Result<Bytes, Broken> {
    let limited = http_body_util::Limited::new(resp.into_body(), UPSTREAM_MAX_BODY);
    match tokio::time::timeout(app.upstream_timeout, limited.collect()).await {
        Err(_) => Err(Broken::new("the provider stopped sending")),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(Broken {
            code: "upstream_too_large",
            message: format!(
                "target `{}` answered with more than {UPSTREAM_MAX_BODY} bytes",
                target.id
            ),
        }),
        Ok(Err(_)) => Err(Broken::new("the provider's answer broke off")),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

/// Starts a streamed completion; once the provider's status is 2xx, the receiver yields the
/// deltas of each of its events (Err: the stream broke).
pub(super) async fn call_stream(
    app: &Arc<App>,
    target: &Target,
    r: &ChatRequest,
) -> Result<mpsc::Receiver<Result<Vec<Delta>, String>>, String> {
    let (tx, rx) = mpsc::channel(64);
    if target.provider == ProviderKind::Mock {
        let MockReply { text, call, usage } = mock_answer(r);
        tokio::spawn(async move {
            let mut pieces: Vec<Delta> = text
                .split_inclusive(' ')
                .map(|piece| Delta::Text {
                    choice: 0,
                    text: piece.to_owned(),
                })
                .collect();
            let finish = if let Some((id, name, arguments)) = call {
                pieces.push(Delta::ToolCall {
                    choice: 0,
                    index: 0,
                    id: Some(id),
                    name: Some(name),
                    arguments: String::new(),
                });
                // the arguments in two pieces, as providers stream them
                let mut cut = arguments.len() / 2;
                while !arguments.is_char_boundary(cut) {
                    cut -= 1;
                }
                for a in [&arguments[..cut], &arguments[cut..]] {
                    pieces.push(Delta::ToolCall {
                        choice: 0,
                        index: 0,
                        id: None,
                        name: None,
                        arguments: a.to_owned(),
                    });
                }
                "tool_calls"
            } else {
                "stop"
            };
            for d in pieces {
                if tx.send(Ok(vec![d])).await.is_err() {
                    return;
                }
            }
            let end = vec![
                Delta::Finish {
                    choice: 0,
                    reason: finish.into(),
                },
                Delta::Usage {
                    prompt_tokens: usage.prompt_tokens,
                    completion_tokens: usage.completion_tokens,
                },
            ];
            let _ = tx.send(Ok(end)).await;
        });
        return Ok(rx);
    }
    // relay: SSE events are parsed as they arrive and their deltas passed on at once
    let body = upstream_body(target, r, true)?;
    let resp = send(app, target, chat_path(target), body).await?;
    let idle = app.upstream_timeout;
    let messages_api = target.provider == ProviderKind::Anthropic;
    tokio::spawn(async move {
        let mut body = resp.into_body();
        let mut pending: Vec<u8> = Vec::new();
        let mut seen_event = false;
        let mut messages = anthropic::StreamReader::default();
        loop {
            let frame = match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => {
                    let _ = tx.send(Err("the provider stopped sending".into())).await;
                    return;
                }
                // a stream that ends without `[DONE]` is complete if it carried any event
                // (some OpenAI-compatible servers omit the marker), broken if it carried none
                Ok(None) => {
                    if !seen_event {
                        let _ = tx
                            .send(Err("the provider closed the stream without an event".into()))
                            .await;
                    }
                    return;
                }
                Ok(Some(Err(e))) => {
                    let _ = tx.send(Err(format!("the stream broke: {e}"))).await;
                    return;
                }
                Ok(Some(Ok(f))) => f,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            if pending.len() > UPSTREAM_MAX_LINE && !pending.contains(&b'\n') {
                let _ = tx
                    .send(Err(format!(
                        "the provider sent a stream line longer than {UPSTREAM_MAX_LINE} bytes"
                    )))
                    .await;
                return;
            }
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line);
                let Some(event) = line.trim_end().strip_prefix("data:") else {
                    continue;
                };
                let event = event.trim();
                if event == "[DONE]" {
                    return;
                }
                seen_event = true;
                let Ok(v) = serde_json::from_str::<serde_json::Value>(event) else {
                    let _ = tx
                        .send(Err("the provider sent a malformed event".into()))
                        .await;
                    return;
                };
                let (deltas, stop) = if messages_api {
                    match messages.event(&v) {
                        Ok(x) => x,
                        Err(e) => {
                            let _ = tx
                                .send(Err(format!("the provider reported `{e}` mid-stream")))
                                .await;
                            return;
                        }
                    }
                } else {
                    (Delta::from_chunk(&v), false)
                };
                if !deltas.is_empty() && tx.send(Ok(deltas)).await.is_err() {
                    return;
                }
                if stop {
                    return;
                }
            }
        }
    });
    Ok(rx)
}

/// The path of a target's chat API under its `base_url`.
pub(super) fn chat_path(target: &Target) -> &'static str {
    if target.provider == ProviderKind::Anthropic {
        "messages"
    } else {
        "chat/completions"
    }
}

/// Sends a body to `path` under a target's `base_url`; returns the response once the headers
/// arrive.
pub(super) async fn send(
    app: &Arc<App>,
    target: &Target,
    path: &str,
    body: Bytes,
) -> Result<Response<Incoming>, String> {
    let url = format!("{}/{path}", target.base_url.trim_end_matches('/'));
    // what the client reads names the target, never its URL or the connection's details (they
    // are in the log)
    let fail = |client: &str, detail: &dyn std::fmt::Display| {
        tracing::warn!(target = %target.id, %url, "upstream: {client}: {detail}");
        format!("target `{}`: {client}", target.id)
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(fail(
            "its URL does not start with http:// or https://",
            &"check the pack",
        ));
    }
    let mut req = Request::post(&url)
        .header(CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(body))
        .map_err(|e| e.to_string())?;
    if target.provider == ProviderKind::Anthropic {
        req.headers_mut().insert(
            "anthropic-version",
            HeaderValue::from_static(anthropic::VERSION),
        );
        if let Some(v) = target
            .secret
            .as_ref()
            .and_then(|s| HeaderValue::from_str(s).ok())
        {
            req.headers_mut().insert("x-api-key", v);
        }
    } else if let Some(s) = &target.secret {
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {s}")) {
            req.headers_mut().insert(AUTHORIZATION, v);
        }
    }
    let resp = tokio::time::timeout(app.upstream_timeout, app.client.request(req))
        .await
        .map_err(|_| fail("the provider did not answer in time", &"timeout"))?
        .map_err(|e| fail("the provider could not be reached", &error_chain(&e)))?;
    if !resp.status().is_success() {
        let status = resp.status();
        return Err(fail(&format!("the provider answered {status}"), &status));
    }
    Ok(resp)
}
