//! Detection and redaction: `scan`, `redact` (and their async forms) and the streaming redactor.

use super::*;

pub(crate) fn detector(entities: Option<Vec<String>>) -> Result<BuiltinDetector> {
    let types: Vec<EntityType> = match entities {
        Some(list) => from_js(Value::from(list), "entities")?,
        None => BuiltinDetector::all_types(),
    };
    BuiltinDetector::new(&types, &[], &[]).map_err(|(_, e)| js_error(argument(e)))
}

pub(crate) fn redactor(format: Option<String>, hash_key: Option<&str>) -> Result<Redactor> {
    let marker_format = from_js(
        Value::from(format.unwrap_or_else(|| "label".into())),
        "format",
    )?;
    let o = core::pack::spec::RedactionOptions {
        marker_format: Some(marker_format),
        ..Default::default()
    };
    Ok(Redactor::new(
        Some(&o),
        Vec::new(),
        key_from(hash_key.unwrap_or("")),
    ))
}

pub(crate) fn spans(d: &BuiltinDetector, text: &str) -> Value {
    let mut found = Vec::new();
    d.scan(text, &mut found);
    resolve_overlaps(&mut found);
    let spans: Vec<Value> = found
        .iter()
        .zip(offsets(text, &found, OffsetUnit::Utf16))
        .map(|(f, (start, end))| serde_json::json!({"start": start, "end": end, "type": f.entity.as_str()}))
        .collect();
    Value::from(spans)
}

pub(crate) fn redacted(d: &BuiltinDetector, r: &Redactor, text: &str) -> String {
    let mut found = Vec::new();
    d.scan(text, &mut found);
    resolve_overlaps(&mut found);
    r.redact(text, &found)
}

/// Sensitive values in `text`: `{start, end, type}` in UTF-16 code units (JavaScript string
/// indices), sorted, without overlaps.
#[napi(ts_return_type = "Span[]")]
pub fn scan(text: String, entities: Option<Vec<String>>) -> Result<Value> {
    let d = detector(entities)?;
    Ok(spans(&d, &text))
}

/// `scan` on the libuv thread pool: the event loop keeps running meanwhile.
#[napi(ts_return_type = "Promise<Span[]>")]
pub fn scan_async(text: String, entities: Option<Vec<String>>) -> AsyncTask<Job> {
    task(detector(entities).map(|d| Job::new(move || Ok(spans(&d, &text)))))
}

/// Options of [`redact`].
#[napi(object)]
pub struct RedactOptions {
    /// `label` (default), `mask`, `hash` or `partial`.
    #[napi(ts_type = "MarkerFormat")]
    pub format: Option<String>,
    /// Entity types to look for (default: all).
    pub entities: Option<Vec<String>>,
    /// Keys the `hash` format.
    pub hash_key: Option<String>,
}

pub(crate) fn redact_parts(options: Option<RedactOptions>) -> Result<(BuiltinDetector, Redactor)> {
    let (format, entities, key) = match options {
        Some(o) => (o.format, o.entities, o.hash_key),
        None => (None, None, None),
    };
    Ok((detector(entities)?, redactor(format, key.as_deref())?))
}

/// `text` with every detected value replaced by a marker.
#[napi]
pub fn redact(text: String, options: Option<RedactOptions>) -> Result<String> {
    let (d, r) = redact_parts(options)?;
    Ok(redacted(&d, &r, &text))
}

/// `redact` on the libuv thread pool.
#[napi(ts_return_type = "Promise<string>")]
pub fn redact_async(text: String, options: Option<RedactOptions>) -> AsyncTask<Job> {
    task(
        redact_parts(options)
            .map(|(d, r)| Job::new(move || Ok(Value::String(redacted(&d, &r, &text))))),
    )
}

/// Redacts a text stream chunk by chunk (an LLM's streamed answer): `push` returns what is safe
/// to send now, `finish` the rest. The output equals `redact()` of the whole text.
#[napi]
pub struct StreamRedactor {
    inner: core::redact::StreamRedactor<'static>,
}

#[napi]
impl StreamRedactor {
    #[napi(constructor)]
    pub fn new(options: Option<RedactOptions>) -> Result<Self> {
        let (d, r) = redact_parts(options)?;
        let d: Arc<dyn Detector> = Arc::new(d);
        Ok(StreamRedactor {
            inner: core::redact::StreamRedactor::shared(d, Arc::new(r)),
        })
    }

    /// Adds a chunk; returns the redacted text that can be sent now (possibly empty).
    #[napi]
    pub fn push(&mut self, chunk: String) -> String {
        self.inner.push(&chunk)
    }

    /// Ends the stream: returns the rest, redacted.
    #[napi]
    pub fn finish(&mut self) -> String {
        self.inner.finish()
    }

    /// Whether anything emitted so far was redacted.
    #[napi(getter)]
    pub fn redacted(&self) -> bool {
        self.inner.redacted()
    }
}
