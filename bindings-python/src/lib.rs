//! Python bindings: type conversion and error mapping only; every rule lives in keeptrusts-core.

use std::sync::Arc;

use keeptrusts_core::admin::{self, Command, Ctx, NewKey};
use keeptrusts_core::dashboard::{self, EventFilter, Granularity, Query, Section};
use keeptrusts_core::detect::builtin::BuiltinDetector;
use keeptrusts_core::detect::{offsets, resolve_overlaps, Detector, EntityType, OffsetUnit};
use keeptrusts_core::directory;
use keeptrusts_core::escalation::Resolution;
use keeptrusts_core::event::{self, EventStore};
use keeptrusts_core::pricing::Usage;
use keeptrusts_core::redact::{key_from, Redactor};
use keeptrusts_core::wallet::{self, Allocation, WalletError, WalletKey};
use keeptrusts_core::{
    self as core, AdminError, MemoryStore as CoreMemoryStore, PackError, RequestError, Role,
    Storage, StoreError,
};
use keeptrusts_store::host::{self, now_or as now, AdminCall};
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
    WalletError_,
    KeeptrustsError,
    "A wallet operation was refused (unknown lease, currency mismatch, overflow)."
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
    Wallet(WalletError),
    Store(StoreError),
    Argument(String),
}

impl From<PackError> for Error {
    fn from(e: PackError) -> Self {
        Error::Pack(e)
    }
}
impl From<RequestError> for Error {
    fn from(e: RequestError) -> Self {
        Error::Request(e)
    }
}
impl From<AdminError> for Error {
    fn from(e: AdminError) -> Self {
        Error::Admin(e)
    }
}
impl From<WalletError> for Error {
    fn from(e: WalletError) -> Self {
        Error::Wallet(e)
    }
}
impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        Python::attach(|py| {
            let store = |s: &StoreError| (StoreError_::new_err(s.to_string()), s.code());
            let (err, code) = match &e {
                Error::Pack(p) => (PackError_::new_err(p.to_string()), p.code()),
                Error::Request(RequestError::Store(s))
                | Error::Admin(AdminError::Store(s))
                | Error::Wallet(WalletError::Store(s))
                | Error::Store(s) => store(s),
                Error::Request(r) => (RequestError_::new_err(r.to_string()), r.code()),
                Error::Admin(a) => (AdminError_::new_err(a.to_string()), a.code()),
                Error::Wallet(w) => (WalletError_::new_err(w.to_string()), w.code()),
                Error::Argument(m) => (InvalidArgument::new_err(m.clone()), "invalid_argument"),
            };
            let value = err.value(py);
            let _ = value.setattr("code", code);
            if let Error::Pack(p) = &e {
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

type Result<T> = std::result::Result<T, Error>;

fn from_py<T: DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> Result<T> {
    depythonize(obj).map_err(|e| Error::Argument(format!("invalid {what}: {e}")))
}

/// A value from a Python string through its serde name (`"approve"`, `"spend"`, …).
fn from_name<T: DeserializeOwned>(name: &str, what: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|e| Error::Argument(format!("invalid {what} `{name}`: {e}")))
}

fn to_py<T: Serialize>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    Ok(pythonize(py, value)
        .map_err(|e| PyException::new_err(e.to_string()))?
        .unbind())
}

fn optional<T: DeserializeOwned>(obj: Option<&Bound<'_, PyAny>>, what: &str) -> Result<Option<T>> {
    match obj {
        Some(o) if !o.is_none() => from_py(o, what).map(Some),
        _ => Ok(None),
    }
}

/// The host's parts of an administrative call ([`AdminCall`]).
fn admin_call(
    actor: Option<core::Principal>,
    now_ms: Option<i64>,
    request_id: Option<String>,
    org: Option<String>,
) -> Result<AdminCall> {
    AdminCall::new(actor, now_ms, request_id, org).map_err(Error::Argument)
}

/// `approve` or `deny`.
fn ruling(resolution: &str) -> Result<bool> {
    host::ruling(resolution).map_err(Error::Argument)
}

/// The request context; `now_ms` defaults to the host clock, as in every store method, and
/// `request_id` to a fresh random id.
fn request_context(context: Option<&Bound<'_, PyAny>>) -> Result<core::RequestContext> {
    let v =
        host::request_context_defaults(optional(context, "context")?).map_err(Error::Argument)?;
    serde_json::from_value(v).map_err(|e| Error::Argument(format!("invalid context: {e}")))
}

/// Runs `f` without the GIL and converts its answer.
fn detached<T: Serialize + Send, E: Into<Error> + Send>(
    py: Python<'_>,
    f: impl FnOnce() -> std::result::Result<T, E> + Send,
) -> PyResult<Py<PyAny>> {
    let v = py.detach(f).map_err(|e| PyErr::from(e.into()))?;
    to_py(py, &v)
}

mod detect;
mod engine;
mod exchange;
mod store;

use detect::*;
use engine::*;
use exchange::*;
use store::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Engine>()?;
    m.add_class::<Store>()?;
    m.add_class::<MemoryStore>()?;
    m.add_class::<SqliteStore>()?;
    m.add_class::<PostgresStore>()?;
    m.add_class::<StreamRedactor>()?;
    m.add_class::<Exchange>()?;
    m.add_class::<Span>()?;
    m.add_function(wrap_pyfunction!(engine::lint, m)?)?;
    m.add_function(wrap_pyfunction!(exchange::error_envelope, m)?)?;
    m.add_function(wrap_pyfunction!(detect::scan, m)?)?;
    m.add_function(wrap_pyfunction!(detect::redact, m)?)?;
    m.add("KeeptrustsError", py.get_type::<KeeptrustsError>())?;
    m.add("PackError", py.get_type::<PackError_>())?;
    m.add("RequestError", py.get_type::<RequestError_>())?;
    m.add("StoreError", py.get_type::<StoreError_>())?;
    m.add("AdminError", py.get_type::<AdminError_>())?;
    m.add("WalletError", py.get_type::<WalletError_>())?;
    m.add("InvalidArgument", py.get_type::<InvalidArgument>())?;
    Ok(())
}
