//! Detection and redaction: `scan`, `redact`, spans and the streaming redactor.

use super::*;

pub(crate) fn detector(entities: Option<&Bound<'_, PyAny>>) -> Result<BuiltinDetector> {
    let types: Vec<EntityType> =
        optional(entities, "entities")?.unwrap_or_else(BuiltinDetector::all_types);
    BuiltinDetector::new(&types, &[], &[]).map_err(|(_, e)| Error::Argument(e))
}

pub(crate) fn redactor(py: Python<'_>, format: &str, hash_key: &str) -> Result<Redactor> {
    let marker_format = from_py(&pyo3::types::PyString::new(py, format).into_any(), "format")?;
    let options = core::pack::spec::RedactionOptions {
        marker_format: Some(marker_format),
        ..Default::default()
    };
    Ok(Redactor::new(
        Some(&options),
        Vec::new(),
        key_from(hash_key),
    ))
}

/// Finds sensitive values; spans in Python character indices, sorted, without overlaps.
#[pyfunction]
#[pyo3(signature = (text, entities=None))]
pub(crate) fn scan<'py>(
    py: Python<'py>,
    text: &str,
    entities: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, pyo3::types::PyList>> {
    use pyo3::types::PyList;
    let d = detector(entities)?;
    // the str's UTF-8 form is borrowed, not copied: the argument keeps it alive while the GIL is
    // released, and Python strings do not change
    let found = py.detach(|| {
        let mut found = Vec::new();
        d.scan(text, &mut found);
        resolve_overlaps(&mut found);
        let at = offsets(text, &found, OffsetUnit::Char);
        found
            .iter()
            .zip(at)
            .map(|(f, (start, end))| (start, end, f.entity))
            .collect::<Vec<_>>()
    });
    // a dense 1 MB text has ~30,000 spans: they are small frozen objects holding plain data,
    // not dicts
    PyList::new(
        py,
        found
            .into_iter()
            .map(|(start, end, entity)| Span { start, end, entity }),
    )
}

/// A detected value: `text[span.start:span.end]` is it (Python character offsets); `span.type`
/// its entity type. Reads like the dict `{"start", "end", "type"}` too: `span["start"]`,
/// `dict(span)`, `span == {"start": …, "end": …, "type": …}`.
#[pyclass(frozen, freelist = 4096, module = "keeptrusts._native")]
pub(crate) struct Span {
    #[pyo3(get)]
    start: usize,
    #[pyo3(get)]
    end: usize,
    entity: EntityType,
}

#[pymethods]
impl Span {
    /// The entity type (`EMAIL`, `US_SSN`, …).
    #[getter(r#type)]
    fn kind<'py>(&self, py: Python<'py>) -> Bound<'py, pyo3::types::PyString> {
        pyo3::types::PyString::intern(py, self.entity.as_str())
    }

    fn __getitem__(&self, py: Python<'_>, key: &str) -> PyResult<Py<PyAny>> {
        match key {
            "start" => Ok(self.start.into_pyobject(py)?.into_any().unbind()),
            "end" => Ok(self.end.into_pyobject(py)?.into_any().unbind()),
            "type" => Ok(self.kind(py).into_any().unbind()),
            other => Err(pyo3::exceptions::PyKeyError::new_err(other.to_owned())),
        }
    }

    fn keys(&self) -> [&'static str; 3] {
        ["start", "end", "type"]
    }

    fn __len__(&self) -> usize {
        3
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        if let Ok(o) = other.cast::<Span>() {
            let o = o.get();
            return Ok(o.start == self.start && o.end == self.end && o.entity == self.entity);
        }
        let Ok(d) = other.cast::<pyo3::types::PyDict>() else {
            return Ok(false);
        };
        Ok(d.len() == 3
            && d.get_item("start")?
                .is_some_and(|v| v.eq(self.start).unwrap_or(false))
            && d.get_item("end")?
                .is_some_and(|v| v.eq(self.end).unwrap_or(false))
            && d.get_item("type")?
                .is_some_and(|v| v.eq(self.entity.as_str()).unwrap_or(false)))
    }

    fn __repr__(&self) -> String {
        format!(
            "{{'start': {}, 'end': {}, 'type': '{}'}}",
            self.start,
            self.end,
            self.entity.as_str()
        )
    }
}

/// Redacts text: `format` is label, mask, hash or partial; `hash_key` keys the hash format.
#[pyfunction]
#[pyo3(signature = (text, format="label", entities=None, hash_key=""))]
pub(crate) fn redact(
    py: Python<'_>,
    text: &str,
    format: &str,
    entities: Option<&Bound<'_, PyAny>>,
    hash_key: &str,
) -> PyResult<String> {
    let d = detector(entities)?;
    let r = redactor(py, format, hash_key)?;
    Ok(py.detach(|| {
        let mut found = Vec::new();
        d.scan(text, &mut found);
        resolve_overlaps(&mut found);
        r.redact(text, &found)
    }))
}

/// Redacts a text stream chunk by chunk (an LLM's streamed answer): `push` returns what is safe
/// to send now, `finish` the rest. The output equals `redact()` of the whole text.
#[pyclass(module = "keeptrusts._native")]
pub(crate) struct StreamRedactor {
    inner: core::redact::StreamRedactor<'static>,
}

#[pymethods]
impl StreamRedactor {
    #[new]
    #[pyo3(signature = (format="label", entities=None, hash_key=""))]
    fn new(
        py: Python<'_>,
        format: &str,
        entities: Option<&Bound<'_, PyAny>>,
        hash_key: &str,
    ) -> PyResult<Self> {
        let d: Arc<dyn Detector> = Arc::new(detector(entities)?);
        let r = Arc::new(redactor(py, format, hash_key)?);
        Ok(StreamRedactor {
            inner: core::redact::StreamRedactor::shared(d, r),
        })
    }

    /// Adds a chunk; returns the redacted text that can be sent now (possibly empty).
    fn push(&mut self, py: Python<'_>, chunk: &str) -> String {
        let inner = &mut self.inner;
        py.detach(move || inner.push(chunk))
    }

    /// Ends the stream: returns the rest, redacted.
    fn finish(&mut self, py: Python<'_>) -> String {
        let inner = &mut self.inner;
        py.detach(move || inner.finish())
    }

    /// Whether anything emitted so far was redacted.
    #[getter]
    fn redacted(&self) -> bool {
        self.inner.redacted()
    }
}
