//! HTTP helpers: the response body, the error envelope and its status mapping, request ids, headers, bearer keys, bodies.

use super::*;

/// A response body: whole, or a stream of SSE frames.
pub enum GwBody {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl Body for GwBody {
    type Data = Bytes;
    type Error = Infallible;

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            GwBody::Full(Some(b)) => hyper::body::SizeHint::with_exact(b.len() as u64),
            GwBody::Full(None) => hyper::body::SizeHint::with_exact(0),
            GwBody::Stream(_) => hyper::body::SizeHint::default(),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, GwBody::Full(None))
    }

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            GwBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            GwBody::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }
}

pub(crate) fn json_response(
    status: u16,
    request_id: &str,
    body: &serde_json::Value,
) -> Response<GwBody> {
    let mut r = Response::new(GwBody::Full(Some(Bytes::from(body.to_string()))));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        r.headers_mut().insert("x-request-id", v);
    }
    // a governance answer does not change on its own: tell the OpenAI SDKs (which retry 409 by
    // default) not to resend it; a retry must carry the escalation or ticket id instead. A 429
    // does change (its window ends): the SDKs retry it after `Retry-After`
    if (400..500).contains(&status) && status != 429 {
        r.headers_mut()
            .insert("x-should-retry", HeaderValue::from_static("false"));
    }
    r
}

/// The error envelope (`docs/gateway.md`) for errors the gateway itself raises.
pub(crate) fn error(status: u16, code: &str, message: &str, request_id: &str) -> Response<GwBody> {
    json_response(
        status,
        request_id,
        &keeptrusts_core::decision::error_envelope(status, code, message, request_id),
    )
}

/// The request's id: unguessable, and unique even when the client sends its own
/// `X-Request-Id` (then it is that id, a dot and a random suffix), so that no client can borrow
/// another's id or ride on a request in flight. `None`: the OS gave no randomness.
pub(super) fn request_id(req: &Request<Incoming>) -> Option<String> {
    let given = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 96
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        });
    match given {
        Some(v) => keeptrusts_store::random_id(&format!("{v}.")).ok(),
        None => keeptrusts_store::random_id("req_").ok(),
    }
}

pub(super) fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// An error with its sources, for the log.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The bearer secret a request presents.
pub(crate) fn bearer(req: &Request<Incoming>) -> Option<&str> {
    let h = req.headers();
    h.get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        // the Anthropic SDKs send the key as `x-api-key`
        .or_else(|| h.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

/// Reads a body up to `limit` bytes: `Err(413)` above it, `Err(400)` if the connection fails.
/// The request body, at most `limit` bytes, within `timeout`: Err(413) when larger, Err(408)
/// when the client is too slow, Err(400) when the connection breaks.
pub async fn read_body(
    req: Request<Incoming>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, u16> {
    let limited = http_body_util::Limited::new(req.into_body(), limit);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(408),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(413),
        Ok(Err(_)) => Err(400),
    }
}

/// `resp` with the rate-limit headers of its answer.
pub(super) fn with_headers(
    mut resp: Response<GwBody>,
    headers: &[(&'static str, String)],
) -> Response<GwBody> {
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.headers_mut().insert(*name, v);
        }
    }
    resp
}

/// A durable answer whose settlement and event the store did not commit in time.
pub(super) fn withheld(rid: &str) -> Response<GwBody> {
    error(
        503,
        "audit_unavailable",
        "the answer is withheld: its settlement and audit event could not be written in time (they are written once the store is back)",
        rid,
    )
}

/// The answer to a request whose exchange was already closed (a bug: every path closes once).
pub(super) fn finished_twice(rid: &str) -> Response<GwBody> {
    error(500, "internal_error", "the request was finished twice", rid)
}
