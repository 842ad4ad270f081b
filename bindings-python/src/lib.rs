//! Python bindings: type conversion and error mapping only; every rule lives in keeptrusts-core.

use std::sync::Arc;

use keeptrusts_core::escalation::{self, EscalationStore, Resolution};
use keeptrusts_core::{self as core, AdminError, PackError, RequestError};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pythonize::{depythonize, pythonize};
use serde::de::DeserializeOwned;
use serde::Serialize;

create_exception!(
    _native,
    KeeptrustsError,
    PyException,
    "Base class of keeptrusts errors; `.code` is stable."
);
create_exception!(
    _native,
    PackError_,
    KeeptrustsError,
    "An invalid pack; `.errors` lists every diagnostic."
);
create_exception!(
    _native,
    RequestError_,
    KeeptrustsError,
    "A request that cannot be evaluated."
);
create_exception!(
    _native,
    StoreError_,
    KeeptrustsError,
    "A storage backend failed."
);
create_exception!(
    _native,
    AdminError_,
    KeeptrustsError,
    "An administrative operation was refused."
);
create_exception!(
    _native,
    InvalidArgument,
    KeeptrustsError,
    "An argument has the wrong shape."
);

/// The one place errors become Python exceptions.
enum Error {
    Pack(PackError),
    Request(RequestError),
    Admin(AdminError),
    Argument(String),
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        Python::attach(|py| {
            let (err, code, errors) = match &e {
                Error::Pack(p) => (
                    PackError_::new_err(p.to_string()),
                    p.code().to_owned(),
                    Some(p),
                ),
                Error::Request(r) => match r {
                    RequestError::Store(s) => (
                        StoreError_::new_err(r.to_string()),
                        s.code().to_owned(),
                        None,
                    ),
                    _ => (
                        RequestError_::new_err(r.to_string()),
                        r.code().to_owned(),
                        None,
                    ),
                },
                Error::Admin(a) => match a {
                    AdminError::Store(s) => (
                        StoreError_::new_err(a.to_string()),
                        s.code().to_owned(),
                        None,
                    ),
                    _ => (
                        AdminError_::new_err(a.to_string()),
                        a.code().to_owned(),
                        None,
                    ),
                },
                Error::Argument(m) => (
                    InvalidArgument::new_err(m.clone()),
                    "invalid_argument".to_owned(),
                    None,
                ),
            };
            let value = err.value(py);
            let _ = value.setattr("code", code);
            if let Some(p) = errors {
                if let Ok(list) = pythonize(py, &p.errors) {
                    let _ = value.setattr("errors", list);
                }
                if let Ok(list) = pythonize(py, &p.warnings) {
                    let _ = value.setattr("warnings", list);
                }
            }
            err
        })
    }
}

fn from_py<T: DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> Result<T, Error> {
    depythonize(obj).map_err(|e| Error::Argument(format!("invalid {what}: {e}")))
}

fn to_py<T: Serialize>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    Ok(pythonize(py, value)
        .map_err(|e| PyException::new_err(e.to_string()))?
        .unbind())
}

fn to_context(obj: Option<&Bound<'_, PyAny>>) -> Result<core::RequestContext, Error> {
    match obj {
        Some(o) if !o.is_none() => from_py(o, "context"),
        _ => Ok(core::RequestContext::default()),
    }
}

/// In-memory escalation store.
#[pyclass(frozen, module = "keeptrusts._native")]
struct MemoryEscalations {
    inner: Arc<core::MemoryEscalations>,
}

#[pymethods]
impl MemoryEscalations {
    #[new]
    fn new() -> Self {
        MemoryEscalations {
            inner: Arc::new(core::MemoryEscalations::new()),
        }
    }

    /// Approve or deny an escalation as `reviewer` (an owner, or an admin of its team).
    fn resolve(
        &self,
        py: Python<'_>,
        reviewer: &Bound<'_, PyAny>,
        escalation_id: &str,
        resolution: &str,
        now_ms: i64,
    ) -> PyResult<Py<PyAny>> {
        let reviewer: core::Principal = from_py(reviewer, "reviewer")?;
        let resolution: Resolution =
            serde_json::from_value(serde_json::Value::String(resolution.to_owned()))
                .map_err(|_| Error::Argument("resolution must be `approve` or `deny`".into()))?;
        let store = Arc::clone(&self.inner);
        let id = escalation_id.to_owned();
        let out = py
            .detach(move || escalation::resolve(store.as_ref(), &reviewer, &id, resolution, now_ms))
            .map_err(Error::Admin)?;
        to_py(py, &out)
    }

    /// One escalation, or None.
    fn get(&self, py: Python<'_>, escalation_id: &str) -> PyResult<Py<PyAny>> {
        let e = self
            .inner
            .get(escalation_id)
            .map_err(|e| Error::Request(RequestError::Store(e)))?;
        to_py(py, &e)
    }

    /// Escalations of a team (every team when None), newest first.
    #[pyo3(signature = (team=None))]
    fn list(&self, py: Python<'_>, team: Option<&str>) -> PyResult<Py<PyAny>> {
        let v = self
            .inner
            .list(team)
            .map_err(|e| Error::Request(RequestError::Store(e)))?;
        to_py(py, &v)
    }
}

/// A compiled, immutable pack; safe to share between threads.
#[pyclass(frozen, module = "keeptrusts._native")]
struct Engine {
    inner: core::Engine,
}

#[pymethods]
impl Engine {
    /// Parse, validate and compile a YAML pack. Raises PackError.
    #[staticmethod]
    fn from_yaml(py: Python<'_>, source: &str) -> PyResult<Self> {
        let src = source.to_owned();
        let inner = py
            .detach(move || core::Engine::from_yaml(&src))
            .map_err(Error::Pack)?;
        Ok(Engine { inner })
    }

    /// Read a YAML pack from a file. Raises OSError or PackError.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let src = std::fs::read_to_string(&path)?;
        Engine::from_yaml(py, &src)
    }

    /// Validation warnings.
    #[getter]
    fn warnings(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_py(py, &self.inner.warnings())
    }

    /// Team slugs named by targeting lists.
    fn named_teams(&self) -> Vec<String> {
        self.inner.named_teams()
    }

    /// The effective chain (policy kind names, execution order) for a principal dict.
    fn effective_chain(&self, principal: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let p: core::Principal = from_py(principal, "principal")?;
        Ok(self
            .inner
            .effective_chain(&p)
            .kinds
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect())
    }

    /// Evaluate a request (input phase). Returns the decision as a dict.
    #[pyo3(signature = (principal, request, escalations, context=None))]
    fn evaluate(
        &self,
        py: Python<'_>,
        principal: &Bound<'_, PyAny>,
        request: &Bound<'_, PyAny>,
        escalations: &MemoryEscalations,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let p: core::Principal = from_py(principal, "principal")?;
        let r: core::ChatRequest = from_py(request, "request")?;
        let ctx = to_context(context)?;
        let engine = self.inner.clone();
        let store = Arc::clone(&escalations.inner);
        let d = py
            .detach(move || {
                let stores = core::Stores::new(store.as_ref());
                engine.evaluate(&p, &r, &ctx, &stores)
            })
            .map_err(Error::Request)?;
        to_py(py, &d)
    }

    /// Evaluate a provider response (output phase). Returns the decision as a dict.
    #[pyo3(signature = (principal, response, context=None))]
    fn evaluate_output(
        &self,
        py: Python<'_>,
        principal: &Bound<'_, PyAny>,
        response: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let p: core::Principal = from_py(principal, "principal")?;
        let r: core::ChatResponse = from_py(response, "response")?;
        let ctx = to_context(context)?;
        let engine = self.inner.clone();
        let d = py
            .detach(move || engine.evaluate_output(&p, &r, &ctx))
            .map_err(Error::Request)?;
        to_py(py, &d)
    }
}

/// Validate a pack: `{"valid", "errors", "warnings"}`.
#[pyfunction]
fn lint(py: Python<'_>, source: &str) -> PyResult<Py<PyAny>> {
    let src = source.to_owned();
    let report = py.detach(move || match core::pack::parse(&src) {
        Ok(p) => serde_json::json!({ "valid": true, "errors": [], "warnings": p.warnings }),
        Err(e) => serde_json::json!({ "valid": false, "errors": e.errors, "warnings": e.warnings }),
    });
    to_py(py, &report)
}

fn detector(
    entities: Option<&Bound<'_, PyAny>>,
) -> Result<core::detect::builtin::BuiltinDetector, Error> {
    let types: Vec<core::detect::EntityType> = match entities {
        Some(e) if !e.is_none() => from_py(e, "entities")?,
        _ => core::detect::builtin::BuiltinDetector::all_types(),
    };
    core::detect::builtin::BuiltinDetector::new(&types, &[], &[])
        .map_err(|(_, e)| Error::Argument(e))
}

/// Finds sensitive values; spans in Python character indices, sorted, without overlaps.
#[pyfunction]
#[pyo3(signature = (text, entities=None))]
fn scan(py: Python<'_>, text: &str, entities: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
    use core::detect::{offsets, resolve_overlaps, Detector, OffsetUnit};
    let d = detector(entities)?;
    let t = text.to_owned();
    let spans = py.detach(move || {
        let mut found = Vec::new();
        d.scan(&t, &mut found);
        resolve_overlaps(&mut found);
        found
            .iter()
            .zip(offsets(&t, &found, OffsetUnit::Char))
            .map(|(f, (start, end))| serde_json::json!({"start": start, "end": end, "type": f.entity.as_str()}))
            .collect::<Vec<_>>()
    });
    to_py(py, &spans)
}

/// Redacts text: `format` is label, mask, hash or partial; `hash_key` keys the hash format.
#[pyfunction]
#[pyo3(signature = (text, format="label", entities=None, hash_key=""))]
fn redact(
    py: Python<'_>,
    text: &str,
    format: &str,
    entities: Option<&Bound<'_, PyAny>>,
    hash_key: &str,
) -> PyResult<String> {
    use core::detect::{resolve_overlaps, Detector};
    let d = detector(entities)?;
    let marker_format = from_py(&pyo3::types::PyString::new(py, format).into_any(), "format")?;
    let options = core::pack::spec::RedactionOptions {
        marker_format: Some(marker_format),
        ..Default::default()
    };
    let r =
        core::redact::Redactor::new(Some(&options), Vec::new(), core::redact::key_from(hash_key));
    let t = text.to_owned();
    Ok(py.detach(move || {
        let mut found = Vec::new();
        d.scan(&t, &mut found);
        resolve_overlaps(&mut found);
        r.redact(&t, &found)
    }))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Engine>()?;
    m.add_class::<MemoryEscalations>()?;
    m.add_function(wrap_pyfunction!(lint, m)?)?;
    m.add_function(wrap_pyfunction!(scan, m)?)?;
    m.add_function(wrap_pyfunction!(redact, m)?)?;
    m.add("KeeptrustsError", py.get_type::<KeeptrustsError>())?;
    m.add("PackError", py.get_type::<PackError_>())?;
    m.add("RequestError", py.get_type::<RequestError_>())?;
    m.add("StoreError", py.get_type::<StoreError_>())?;
    m.add("AdminError", py.get_type::<AdminError_>())?;
    m.add("InvalidArgument", py.get_type::<InvalidArgument>())?;
    Ok(())
}
