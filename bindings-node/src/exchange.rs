//! One request's lifecycle (`Exchange`), as the core runs it.

use super::*;

/// An answer, and its closing to write.
pub(crate) fn written(
    a: core::exchange::Answer,
) -> (core::exchange::Answer, Option<event::Closing>) {
    let c = a.close.clone();
    (a, Some(c))
}

/// One request through its lifecycle (`Engine#begin`): the host calls its provider (or app)
/// with `nextCall()` and reports what happened; every closing (settlement or release, and the
/// event) is written to the store the exchange began with.
#[napi]
pub struct Exchange {
    pub(crate) x: Option<Box<core::exchange::Exchange>>,
    pub(crate) refusal: Option<core::exchange::Answer>,
    pub(crate) store: Arc<dyn Storage>,
}

impl Exchange {
    /// Runs `f` on the lifecycle, writes the closing it returns, and converts the value.
    fn with<T: serde::Serialize>(
        &mut self,
        f: impl FnOnce(&mut core::exchange::Exchange) -> (T, Option<event::Closing>),
    ) -> Result<Value> {
        let x = self.x.as_mut().ok_or_else(|| {
            js_error(argument(
                "the request was refused: nothing to call".to_owned(),
            ))
        })?;
        let (v, close) = f(x);
        if let Some(c) = close {
            c.commit(self.store.as_ref(), Some(self.store.as_ref()), now(None))
                .map_err(fail)?;
        }
        to_js(&v).map_err(js_error)
    }
}

#[napi]
impl Exchange {
    /// The refusal (`{status, body, verdict, close}`) when the request was answered before any
    /// call (its closing is already written); null when it goes through.
    #[napi(getter, ts_return_type = "ExchangeAnswer | null")]
    pub fn refusal(&self) -> Result<Value> {
        to_js(&self.refusal).map_err(js_error)
    }

    /// The input decision (verdict, policy results, reservation, estimate).
    #[napi(getter, ts_return_type = "Decision")]
    pub fn decision(&mut self) -> Result<Value> {
        self.with(|x| (x.decision().clone(), None))
    }

    /// The request to send next (the governed request with its output limit), or null when
    /// every candidate was tried.
    #[napi(ts_return_type = "ChatRequest | null")]
    pub fn next_call(&mut self) -> Result<Value> {
        self.with(|x| (x.next_call().map(|c| c.request), None))
    }

    /// The call failed before any answer (nothing is charged for it).
    #[napi]
    pub fn failed(&mut self) -> Result<()> {
        self.with(|x| {
            x.failed();
            ((), None)
        })
        .map(|_| ())
    }

    /// Every call failed: the 502 answer; the reservation is released and the event written.
    #[napi(ts_return_type = "ExchangeAnswer")]
    pub fn exhausted(&mut self, message: String) -> Result<Value> {
        self.with(|x| written(x.exhausted(&message)))
    }

    /// A whole chat completion answered: the output phase and the settlement on its usage (its
    /// whole bound without one).
    #[napi(
        ts_args_type = "response: ChatResponse",
        ts_return_type = "ExchangeAnswer"
    )]
    pub fn answer(&mut self, response: Value) -> Result<Value> {
        let r: core::ChatResponse = from_js(response, "response")?;
        self.with(|x| written(x.answer(&r)))
    }

    /// A 2xx answer that could not be read: 502, and the whole bound settled.
    #[napi(ts_return_type = "ExchangeAnswer")]
    pub fn broken(&mut self, message: String) -> Result<Value> {
        self.with(|x| written(x.broken(&message)))
    }

    /// One streamed chat completion chunk through the output filter: the chunks to send now.
    #[napi(
        ts_args_type = "chunk: Record<string, any>",
        ts_return_type = "Record<string, any>[]"
    )]
    pub fn push_chunk(&mut self, chunk: Value) -> Result<Value> {
        self.with(|x| (x.push_chunk(&chunk), None))
    }

    /// Ends the stream (`end`: `complete`, `broken` with `message`, or `client_gone`): returns
    /// `{chunks, close, verdict}`, the chunks to send last; the closing is written.
    #[napi(
        ts_args_type = "end?: 'complete' | 'broken' | 'client_gone' | null, message?: string | null",
        ts_return_type = "StreamFinish"
    )]
    pub fn finish_stream(&mut self, end: Option<String>, message: Option<String>) -> Result<Value> {
        let name = end.unwrap_or_else(|| "complete".to_owned());
        let end = core::exchange::StreamEnd::named(&name, message.as_deref().unwrap_or(""))
            .ok_or_else(|| {
                js_error(argument(format!(
                    "unknown stream end `{name}`: complete, broken or client_gone"
                )))
            })?;
        self.with(|x| {
            let (chunks, done) = x.finish_chunks(end);
            let c = done.close.clone();
            (
                serde_json::json!({"chunks": chunks, "close": done.close, "verdict": done.verdict}),
                Some(c),
            )
        })
    }

    /// The client went away: the closing (released before any call, the whole bound while a
    /// call was under way) is written; null if the request was already closed.
    #[napi(ts_return_type = "Record<string, any> | null")]
    pub fn abandon(&mut self) -> Result<Value> {
        self.with(|x| {
            let c = x.abandon();
            (c.clone(), c)
        })
    }
}

/// The error envelope `{ error: { type, code, message, request_id } }` of an error the host
/// raises itself (a body too large, no key), typed by the core's one status mapping.
#[napi(ts_return_type = "ErrorEnvelope")]
pub fn error_envelope(status: u16, code: String, message: String, request_id: String) -> Value {
    core::decision::error_envelope(status, &code, &message, &request_id)
}
