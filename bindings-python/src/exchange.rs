//! One request's lifecycle ([`Exchange`]), as the core runs it.

use super::*;

/// An answer, and its closing to write.
pub(crate) fn written(
    a: core::exchange::Answer,
) -> (core::exchange::Answer, Option<event::Closing>) {
    let c = a.close.clone();
    (a, Some(c))
}

/// The state of one request in flight: the core's lifecycle, and the refusal it began with.
pub(crate) struct ExchangeState {
    pub(crate) x: Option<Box<core::exchange::Exchange>>,
    pub(crate) refusal: Option<core::exchange::Answer>,
}

/// One request through its lifecycle (`Engine.begin`): the host calls its provider (or app)
/// with `next_call()` and reports what happened; every closing (settlement or release, and the
/// event) is written to the store the exchange began with.
#[pyclass(module = "keeptrusts._native")]
pub(crate) struct Exchange {
    pub(crate) state: std::sync::Mutex<ExchangeState>,
    pub(crate) store: Arc<dyn Storage>,
}

impl Exchange {
    /// Runs `f` on the lifecycle without the GIL; writes the closing it returns, if any, and
    /// converts the value.
    fn with<T: Serialize + Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut core::exchange::Exchange) -> (T, Option<event::Closing>) + Send,
    ) -> PyResult<Py<PyAny>> {
        let store = Arc::clone(&self.store);
        let state = &self.state;
        let v = py
            .detach(move || -> std::result::Result<T, Error> {
                let mut g = state
                    .lock()
                    .map_err(|_| Error::Argument("the exchange was poisoned".into()))?;
                let x = g.x.as_mut().ok_or_else(|| {
                    Error::Argument("the request was refused: nothing to call".into())
                })?;
                let (v, close) = f(x);
                if let Some(c) = close {
                    c.commit(store.as_ref(), Some(store.as_ref()), now(None))?;
                }
                Ok(v)
            })
            .map_err(PyErr::from)?;
        to_py(py, &v)
    }
}

#[pymethods]
impl Exchange {
    /// The refusal (`{"status", "body", "verdict", "close"}`) when the request was answered
    /// before any call (its closing is already written); None when it goes through.
    #[getter]
    fn refusal(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let g = self
            .state
            .lock()
            .map_err(|_| PyErr::from(Error::Argument("the exchange was poisoned".into())))?;
        to_py(py, &g.refusal)
    }

    /// The input decision (verdict, policy results, reservation, estimate).
    #[getter]
    fn decision(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.with(py, |x| (x.decision().clone(), None))
    }

    /// The request to send next (the governed request with its output limit), or None when
    /// every candidate was tried.
    fn next_call(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.with(py, |x| (x.next_call().map(|c| c.request), None))
    }

    /// The call failed before any answer (nothing is charged for it).
    fn failed(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.with(py, |x| {
            x.failed();
            ((), None)
        })
    }

    /// Every call failed: the 502 answer; the reservation is released and the event written.
    fn exhausted(&self, py: Python<'_>, message: &str) -> PyResult<Py<PyAny>> {
        let m = message.to_owned();
        self.with(py, move |x| written(x.exhausted(&m)))
    }

    /// A whole chat completion answered: the output phase and the settlement on its usage (its
    /// whole bound without one). Returns `{"status", "body", "verdict", "close"}`.
    fn answer(&self, py: Python<'_>, response: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let r: core::ChatResponse = from_py(response, "response")?;
        self.with(py, move |x| written(x.answer(&r)))
    }

    /// A 2xx answer that could not be read: 502, and the whole bound settled.
    fn broken(&self, py: Python<'_>, message: &str) -> PyResult<Py<PyAny>> {
        let m = message.to_owned();
        self.with(py, move |x| written(x.broken(&m)))
    }

    /// One streamed chat completion chunk through the output filter: the chunks to send now.
    fn push_chunk(&self, py: Python<'_>, chunk: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let c: serde_json::Value = from_py(chunk, "chunk")?;
        self.with(py, move |x| (x.push_chunk(&c), None))
    }

    /// Ends the stream (`end`: `complete`, `broken` with `message`, or `client_gone`): returns
    /// `{"chunks", "close"}`, the chunks to send last (held-back text, the usage chunk when
    /// the client asked, or the error event); the closing is written.
    #[pyo3(signature = (end="complete", message=""))]
    fn finish_stream(&self, py: Python<'_>, end: &str, message: &str) -> PyResult<Py<PyAny>> {
        let end = core::exchange::StreamEnd::named(end, message).ok_or_else(|| {
            PyErr::from(Error::Argument(format!(
                "unknown stream end `{end}`: complete, broken or client_gone"
            )))
        })?;
        self.with(py, move |x| {
            let (chunks, done) = x.finish_chunks(end);
            let c = done.close.clone();
            (
                serde_json::json!({"chunks": chunks, "close": done.close, "verdict": done.verdict}),
                Some(c),
            )
        })
    }

    /// The client went away: the closing (released before any call, the whole bound while a
    /// call was under way) is written.
    fn abandon(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.with(py, |x| {
            let c = x.abandon();
            (c.clone(), c)
        })
    }
}

/// The error envelope `{"error": {type, code, message, request_id}}` of an error the host raises
/// itself (a body too large, no key), typed by the core's one status mapping.
#[pyfunction]
pub(crate) fn error_envelope(
    py: Python<'_>,
    status: u16,
    code: &str,
    message: &str,
    request_id: &str,
) -> PyResult<Py<PyAny>> {
    to_py(
        py,
        &core::decision::error_envelope(status, code, message, request_id),
    )
}
